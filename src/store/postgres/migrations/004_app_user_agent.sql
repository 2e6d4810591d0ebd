-- SQLite's migration 016: the User-Agent an app's calls to its provider carry, when the
-- tenant set one; NULL uses the provider's default.
ALTER TABLE oauth_apps ADD COLUMN user_agent TEXT;
