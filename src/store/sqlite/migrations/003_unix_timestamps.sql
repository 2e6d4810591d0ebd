-- Timestamps in one form: unix seconds (INTEGER) in every table, as `oauth_state_nonces`
-- already had. SQLite cannot change a column's type, so both tables are rebuilt, keeping
-- their rows in insertion order (the tie-break of "oldest first").
CREATE TABLE oauth_apps_v3 (
    id                   TEXT PRIMARY KEY NOT NULL,
    owner                TEXT NOT NULL,
    provider             TEXT NOT NULL,
    name                 TEXT NOT NULL,
    client_id            TEXT NOT NULL,
    client_secret_sealed BLOB NOT NULL,
    scopes               TEXT NOT NULL, -- JSON array of strings
    created_at           INTEGER NOT NULL, -- unix seconds
    UNIQUE (owner, provider, name)
) STRICT;

INSERT INTO oauth_apps_v3
SELECT id, owner, provider, name, client_id, client_secret_sealed, scopes, unixepoch(created_at)
FROM oauth_apps ORDER BY rowid;

DROP TABLE oauth_apps;
ALTER TABLE oauth_apps_v3 RENAME TO oauth_apps;
CREATE INDEX oauth_apps_by_owner ON oauth_apps (owner, created_at);

CREATE TABLE accounts_v3 (
    id                   TEXT PRIMARY KEY NOT NULL,
    owner                TEXT NOT NULL,
    provider             TEXT NOT NULL,
    oauth_app_id         TEXT,          -- NULL: the provider's default app from the config
    provider_account_id  TEXT NOT NULL,
    username             TEXT,
    display_name         TEXT,
    scopes               TEXT NOT NULL, -- JSON array of the granted scopes
    status               TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'needs_reauth')),
    access_token_sealed  BLOB NOT NULL,
    refresh_token_sealed BLOB,
    expires_at           INTEGER,       -- unix seconds, when the access token expires
    refresh_expires_at   INTEGER,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    UNIQUE (owner, provider, provider_account_id)
) STRICT;

INSERT INTO accounts_v3
SELECT id, owner, provider, oauth_app_id, provider_account_id, username, display_name, scopes,
       status, access_token_sealed, refresh_token_sealed, unixepoch(expires_at),
       unixepoch(refresh_expires_at), unixepoch(created_at), unixepoch(updated_at)
FROM accounts ORDER BY rowid;

DROP TABLE accounts;
ALTER TABLE accounts_v3 RENAME TO accounts;
CREATE INDEX accounts_by_owner ON accounts (owner, created_at);
