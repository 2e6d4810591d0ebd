-- Child accounts: the Facebook Pages a connected user manages and the LinkedIn organizations a
-- member administers, each a row of its own under its user account (`parent_id`). One Page
-- may be managed by two connected users of a tenant, so identity is unique per parent.
--
-- `accounts` is rebuilt (its UNIQUE constraint and CHECK change), keeping every rowid, which
-- is also the pagination order. `pending` is gone from the statuses: connects that await
-- confirmation live in `pending_connections` (migration 006).
CREATE TABLE accounts_v7 (
    id                   TEXT PRIMARY KEY NOT NULL,
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
                         CHECK (kind IN ('user', 'page', 'organization')),
    parent_id            TEXT,          -- the user account of a page or organization
    tasks                TEXT,          -- JSON array: what the user may do on a Page
    CHECK ((kind = 'user') = (parent_id IS NULL))
) STRICT;

INSERT INTO accounts_v7 (rowid, id, owner, provider, oauth_app_id, provider_account_id,
    username, display_name, scopes, status, status_reason, access_token_sealed,
    refresh_token_sealed, expires_at, refresh_expires_at, reauth_by, token_issued_at,
    next_refresh_at, refresh_failures, refresh_lease_until, refresh_lease_holder, warned_for,
    created_at, updated_at)
SELECT rowid, id, owner, provider, oauth_app_id, provider_account_id, username, display_name,
       scopes, status, status_reason, access_token_sealed, refresh_token_sealed, expires_at,
       refresh_expires_at, reauth_by, token_issued_at, next_refresh_at, refresh_failures,
       refresh_lease_until, refresh_lease_holder, warned_for, created_at, updated_at
FROM accounts WHERE status != 'pending' ORDER BY rowid;

DROP TABLE accounts;
ALTER TABLE accounts_v7 RENAME TO accounts;

CREATE UNIQUE INDEX accounts_identity
    ON accounts (owner, provider, provider_account_id, ifnull(parent_id, ''));
CREATE INDEX accounts_by_owner ON accounts (owner);
CREATE INDEX accounts_due ON accounts (next_refresh_at) WHERE next_refresh_at IS NOT NULL;
CREATE INDEX accounts_by_app ON accounts (oauth_app_id, owner);
CREATE INDEX accounts_by_parent ON accounts (parent_id) WHERE parent_id IS NOT NULL;
