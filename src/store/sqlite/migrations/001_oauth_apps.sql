-- Key fingerprint and other facts about this database.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;

-- BYOK OAuth apps. The client secret is sealed (AES-256-SIV) with the id, owner and provider
-- as associated data; it never leaves this table in the clear.
CREATE TABLE oauth_apps (
    id                   TEXT PRIMARY KEY NOT NULL,
    owner                TEXT NOT NULL,
    provider             TEXT NOT NULL,
    name                 TEXT NOT NULL,
    client_id            TEXT NOT NULL,
    client_secret_sealed BLOB NOT NULL,
    scopes               TEXT NOT NULL, -- JSON array of strings
    created_at           TEXT NOT NULL, -- RFC 3339 UTC
    UNIQUE (owner, provider, name)
) STRICT;

CREATE INDEX oauth_apps_by_owner ON oauth_apps (owner, created_at);
