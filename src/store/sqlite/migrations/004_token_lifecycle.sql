-- The token lifecycle: what refreshing, warning and re-authorizing an account need, the event
-- log of each account, and the outbox of webhook events.
--
-- `accounts` is rebuilt (SQLite cannot change a CHECK constraint), keeping insertion order.
CREATE TABLE accounts_v4 (
    id                   TEXT PRIMARY KEY NOT NULL,
    owner                TEXT NOT NULL,
    provider             TEXT NOT NULL,
    oauth_app_id         TEXT,          -- NULL: the provider's default app from the config
    provider_account_id  TEXT NOT NULL,
    username             TEXT,
    display_name         TEXT,
    scopes               TEXT NOT NULL, -- JSON array of the granted scopes
    status               TEXT NOT NULL DEFAULT 'active'
                         CHECK (status IN ('active', 'expiring', 'needs_reauth', 'pending')),
    status_reason        TEXT,          -- why the account is expiring or needs re-authorization
    access_token_sealed  BLOB NOT NULL,
    refresh_token_sealed BLOB,
    expires_at           INTEGER,       -- unix seconds, when the access token expires
    refresh_expires_at   INTEGER,       -- when the refresh token expires, if the provider says
    reauth_by            INTEGER,       -- after this only a new consent helps (NULL: no such end known)
    token_issued_at      INTEGER,       -- when the current access token was obtained
    next_refresh_at      INTEGER,       -- when the refresher next looks at it (NULL: never)
    refresh_failures     INTEGER NOT NULL DEFAULT 0, -- transient failures since the last success
    refresh_lease_until  INTEGER,       -- a refresh in flight owns the account until then
    refresh_lease_holder TEXT,          -- which refresh holds the lease
    warned_for           INTEGER,       -- the reauth_by an `expiring` event was sent for
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    UNIQUE (owner, provider, provider_account_id)
) STRICT;

-- Existing accounts: their token was obtained when they were last updated; the refresher
-- looks at each once at start.
INSERT INTO accounts_v4 (id, owner, provider, oauth_app_id, provider_account_id, username,
    display_name, scopes, status, access_token_sealed, refresh_token_sealed, expires_at,
    refresh_expires_at, token_issued_at, next_refresh_at, created_at, updated_at)
SELECT id, owner, provider, oauth_app_id, provider_account_id, username, display_name, scopes,
       status, access_token_sealed, refresh_token_sealed, expires_at, refresh_expires_at,
       updated_at, CASE WHEN status = 'active' THEN 0 END, created_at, updated_at
FROM accounts ORDER BY rowid;

DROP TABLE accounts;
ALTER TABLE accounts_v4 RENAME TO accounts;
-- An owner's accounts in insertion (rowid) order, which is also the pagination order.
CREATE INDEX accounts_by_owner ON accounts (owner);
-- The refresher's "due soon" query.
CREATE INDEX accounts_due ON accounts (next_refresh_at) WHERE next_refresh_at IS NOT NULL;

-- What happened to each account, newest last; the last 200 per account are kept.
CREATE TABLE account_events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,    -- evt_…, shared with the webhook event it caused
    account_id TEXT NOT NULL,
    owner      TEXT NOT NULL,
    type       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    detail     TEXT NOT NULL            -- JSON object; never a token
) STRICT;

CREATE INDEX account_events_by_account ON account_events (account_id, seq);

-- Webhook events, written in the transaction of the change they report and delivered
-- afterwards, so a crash or a receiver that is down loses nothing.
CREATE TABLE webhook_outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE, -- evt_…, what receivers deduplicate by
    type            TEXT NOT NULL,
    owner           TEXT NOT NULL,
    body            TEXT NOT NULL,        -- the JSON body, exactly as sent
    created_at      INTEGER NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,              -- while pending
    last_error      TEXT,
    delivered_at    INTEGER
) STRICT;

CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE status = 'pending';

-- Set when the provider refused the app's credentials; cleared when its secret changes.
ALTER TABLE oauth_apps ADD COLUMN credentials_error TEXT;
ALTER TABLE oauth_apps ADD COLUMN credentials_error_at INTEGER;
ALTER TABLE oauth_apps ADD COLUMN updated_at INTEGER;
