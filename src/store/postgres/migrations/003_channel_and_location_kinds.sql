-- SQLite's migration 015: two more kinds of child account, a YouTube channel (`channel`) and a
-- Google Business Profile location (`location`).
ALTER TABLE accounts DROP CONSTRAINT accounts_kind_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check
    CHECK (kind IN ('user', 'page', 'organization', 'channel', 'location'));
