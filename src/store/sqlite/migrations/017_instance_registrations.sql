-- Providers whose users name their server (Mastodon): the tenant's app holds a website to
-- register with, and Dravo registers it on each instance it meets, keeping that instance's
-- client id and sealed secret (one registration per app and instance). An account records the
-- server its tokens belong to.
ALTER TABLE oauth_apps ADD COLUMN website TEXT;
ALTER TABLE accounts ADD COLUMN server TEXT;

CREATE TABLE instance_registrations (
    id                   TEXT PRIMARY KEY,
    owner                TEXT NOT NULL,
    provider             TEXT NOT NULL,
    app_id               TEXT NOT NULL,
    server               TEXT NOT NULL,
    client_id            TEXT NOT NULL,
    client_secret_sealed BLOB NOT NULL,
    redirect_uri         TEXT NOT NULL,
    scopes               TEXT NOT NULL,
    authorize_url        TEXT NOT NULL,
    token_url            TEXT NOT NULL,
    revoke_url           TEXT NOT NULL,
    pkce                 INTEGER NOT NULL,
    created_at           INTEGER NOT NULL,
    UNIQUE (app_id, server)
);
