-- Connected accounts. Tokens are sealed (AES-256-SIV) with the account id, owner, provider
-- and provider account id as associated data.
CREATE TABLE accounts (
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
    expires_at           TEXT,          -- RFC 3339 UTC, when the access token expires
    refresh_expires_at   TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    UNIQUE (owner, provider, provider_account_id)
) STRICT;

CREATE INDEX accounts_by_owner ON accounts (owner, created_at);

-- Nonces of OAuth states already used at the callback: a state works once. Rows expire with
-- the state they belong to and are pruned.
CREATE TABLE oauth_state_nonces (
    nonce      TEXT PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL -- unix seconds
) STRICT;

CREATE INDEX oauth_state_nonces_by_expiry ON oauth_state_nonces (expires_at);
