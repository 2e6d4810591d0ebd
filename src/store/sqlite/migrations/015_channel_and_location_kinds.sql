-- Two more kinds of child account: a YouTube channel (`channel`) and a Google Business Profile
-- location (`location`). SQLite cannot change a CHECK constraint in place, so `accounts` is
-- rebuilt as migration 013 built it, with the wider `kind` list and `token_version` (014).
-- `seq` is copied, so every account keeps its rowid and pagination cursors stay valid.
CREATE TABLE accounts_v15 (
    seq                  INTEGER PRIMARY KEY,
    id                   TEXT NOT NULL UNIQUE,
    owner                TEXT NOT NULL,
    provider             TEXT NOT NULL,
    oauth_app_id         TEXT,          -- NULL: the provider's default app from the config
    provider_account_id  TEXT NOT NULL, -- a Page's id, an organization's URN for children
    username             TEXT,
    display_name         TEXT,
    scopes               TEXT NOT NULL, -- JSON array of the granted scopes
    status               TEXT NOT NULL DEFAULT 'active'
                         CHECK (status IN ('active', 'expiring', 'needs_reauth')),
    status_reason        TEXT,
    access_token_sealed  BLOB NOT NULL, -- empty for an organization: it uses its parent's
    refresh_token_sealed BLOB,
    expires_at           INTEGER,
    refresh_expires_at   INTEGER,
    reauth_by            INTEGER,
    token_issued_at      INTEGER,
    next_refresh_at      INTEGER,       -- never set on a child: its parent is refreshed
    refresh_failures     INTEGER NOT NULL DEFAULT 0,
    refresh_lease_until  INTEGER,
    refresh_lease_holder TEXT,
    warned_for           INTEGER,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    kind                 TEXT NOT NULL DEFAULT 'user'
                         CHECK (kind IN ('user', 'page', 'organization', 'channel', 'location')),
    parent_id            TEXT,          -- the user account of a child (page, organization, channel, location)
    tasks                TEXT,          -- JSON array: what the user may do on a Page
    token_version        INTEGER NOT NULL DEFAULT 0,
    CHECK ((kind = 'user') = (parent_id IS NULL))
) STRICT;

INSERT INTO accounts_v15 (seq, id, owner, provider, oauth_app_id, provider_account_id,
    username, display_name, scopes, status, status_reason, access_token_sealed,
    refresh_token_sealed, expires_at, refresh_expires_at, reauth_by, token_issued_at,
    next_refresh_at, refresh_failures, refresh_lease_until, refresh_lease_holder, warned_for,
    created_at, updated_at, kind, parent_id, tasks, token_version)
SELECT seq, id, owner, provider, oauth_app_id, provider_account_id, username, display_name,
       scopes, status, status_reason, access_token_sealed, refresh_token_sealed, expires_at,
       refresh_expires_at, reauth_by, token_issued_at, next_refresh_at, refresh_failures,
       refresh_lease_until, refresh_lease_holder, warned_for, created_at, updated_at, kind,
       parent_id, tasks, token_version
FROM accounts ORDER BY seq;

DROP TABLE accounts;
ALTER TABLE accounts_v15 RENAME TO accounts;

CREATE UNIQUE INDEX accounts_identity
    ON accounts (owner, provider, provider_account_id, ifnull(parent_id, ''));
-- The columns of `codec::LISTED_ACCOUNT_COLUMNS`, the filters of a page first after the
-- position (provider, status, kind, parent_id), so that a filtered page reads no row either.
CREATE INDEX accounts_listed ON accounts (owner, seq, provider, status, kind, parent_id, id,
    oauth_app_id, provider_account_id, username, display_name, scopes, status_reason,
    expires_at, reauth_by, created_at, updated_at, tasks);
CREATE INDEX accounts_due ON accounts (next_refresh_at, id) WHERE next_refresh_at IS NOT NULL;
-- With `parent_id`, counting an app's user accounts reads this index alone.
CREATE INDEX accounts_by_app ON accounts (oauth_app_id, owner, parent_id);
CREATE INDEX accounts_by_parent ON accounts (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX accounts_by_provider_status ON accounts (provider, status);
