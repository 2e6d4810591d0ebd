-- Connects that wait for the dashboard's confirmation (`connect.require_confirmation`). They
-- live apart from `accounts`, so no account read can ever list or return one; confirming
-- moves the connection into `accounts` in one transaction.
CREATE TABLE pending_connections (
    id           TEXT PRIMARY KEY NOT NULL, -- acc_…, the id the account gets once confirmed
    owner        TEXT NOT NULL,
    provider     TEXT NOT NULL,
    oauth_app_id TEXT,                      -- NULL: the provider's default app
    confirm_hash BLOB NOT NULL,             -- SHA-256 of the one-time confirmation code
    sealed       BLOB NOT NULL,             -- the identity and tokens, sealed and bound to this row
    issued_at    INTEGER NOT NULL,          -- when the provider issued the tokens
    expires_at   INTEGER NOT NULL           -- unconfirmed after this, it is gone
) STRICT;
CREATE INDEX pending_connections_expiry ON pending_connections (expires_at);
