//! Storage: the interface the core uses, and its backends. SQL lives only below this module.
//!
//! The core asks for domain operations (`list_apps`, `get_account`, …) and, when several
//! changes must commit together, for a write transaction: `store.write(|tx| …)` runs the
//! closure's future with a `WriteTx` and commits everything it did, or nothing. `WriteTx` is
//! one trait per aggregate (`AppTx`, `AccountTx`, …) summed into one. Between its calls the
//! work is plain computation (sealing, building rows): SQLite drives it on the blocking pool,
//! where its calls are synchronous; PostgreSQL awaits each statement on the async runtime.
//!
//! Two backends implement `Store` and `WriteTx`: SQLite (`sqlite`, one file) and PostgreSQL
//! (`postgres`, one database several nodes share). Every operation takes the tenant
//! (`Owner`), so one tenant can never read or change another's rows by id.

pub mod codec;
pub mod copy;
mod location;
pub mod postgres;
pub mod sealed_sql;
pub mod sqlite;
pub mod tables;

use async_trait::async_trait;

use crate::domain::{
    Account, AccountId, AccountKind, AccountStatus, AppCheck, AppId, EventId, Owner, Provider,
    Timestamp,
};
use crate::error::{Error, Result};

pub use crate::domain::AccountFilter;
pub use location::DatabaseLocation;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// A token for the state of the database a read saw, where the backend can tell it cheaply:
/// SQLite's `PRAGMA data_version` on one of this process's read connections, with that
/// connection's number (unique in the process, never reused; the pragma's values are only
/// comparable on one connection). SQLite documents that the value changes on a connection
/// when any other connection commits, and the read connections never write. So two equal
/// tokens mean no commit by anyone, this process or another (the CLI), landed between the
/// two readings; and whatever was read after a token was taken is at least as new as the
/// database was at that token. Nothing else is promised: a different token may name the same
/// data (another connection, or a commit that changed other rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReadVersion {
    connection: u64,
    data_version: i64,
}

impl ReadVersion {
    pub(crate) fn new(connection: u64, data_version: i64) -> ReadVersion {
        ReadVersion {
            connection,
            data_version,
        }
    }
}

/// An OAuth app as stored, with its secret still sealed.
#[derive(Debug, Clone)]
pub struct AppRecord {
    pub id: AppId,
    pub owner: Owner,
    pub provider: Provider,
    pub name: String,
    pub client_id: String,
    pub client_secret_sealed: Vec<u8>,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    /// Why the provider last refused the app's credentials; cleared when its secret changes.
    pub credentials_error: Option<String>,
    pub credentials_error_at: Option<Timestamp>,
    /// When its name, scopes or secret last changed (its creation until then).
    pub updated_at: Timestamp,
    /// The last check of its configuration; cleared when its scopes or secret change.
    pub last_check: Option<AppCheck>,
    /// The `User-Agent` of its calls to the provider, when the tenant set one.
    pub user_agent: Option<String>,
    /// The website it registers with on the servers its users name (Mastodon).
    pub website: Option<String>,
}

/// An app's registration on a server its users name (a Mastodon instance), secret sealed.
#[derive(Debug, Clone)]
pub struct RegistrationRecord {
    pub id: String,
    pub owner: Owner,
    pub provider: Provider,
    pub app_id: AppId,
    /// The server's origin, `https://host[:port]`.
    pub server: String,
    pub client_id: String,
    pub client_secret_sealed: Vec<u8>,
    /// What it was registered with: a change of either means registering again.
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub authorize_url: String,
    pub token_url: String,
    pub revoke_url: String,
    /// The server takes PKCE S256.
    pub pkce: bool,
    pub created_at: Timestamp,
}

/// A connected account as stored, tokens still sealed.
#[derive(Debug, Clone)]
pub struct AccountRecord {
    pub id: AccountId,
    pub owner: Owner,
    pub provider: Provider,
    pub oauth_app_id: Option<AppId>,
    pub provider_account_id: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub scopes: Vec<String>,
    pub status: AccountStatus,
    /// Why it is expiring or needs re-authorization.
    pub status_reason: Option<String>,
    pub access_token_sealed: Vec<u8>,
    pub refresh_token_sealed: Option<Vec<u8>>,
    pub expires_at: Option<Timestamp>,
    pub refresh_expires_at: Option<Timestamp>,
    /// After this only a new consent helps.
    pub reauth_by: Option<Timestamp>,
    /// When the current access token was obtained.
    pub token_issued_at: Option<Timestamp>,
    /// When the background refresher next looks at it; `None`: never.
    pub next_refresh_at: Option<Timestamp>,
    /// Transient refresh failures since the last success.
    pub refresh_failures: i64,
    /// The `reauth_by` an `expiring` event was recorded for (so it is recorded once).
    pub warned_for: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// A connected user, or a Page or organization it manages (a child).
    pub kind: AccountKind,
    /// A child's user account.
    pub parent_id: Option<AccountId>,
    /// What the user may do on a Page (Facebook's `tasks`, e.g. `CREATE_CONTENT`).
    pub tasks: Option<Vec<String>>,
    /// Incremented by every write of its tokens. Refreshes decide on it, never on the tokens
    /// themselves: a provider may answer a refresh with the very token it was given.
    pub token_version: i64,
    /// The origin of the server its tokens belong to, for providers whose users name their
    /// server (a Mastodon instance); `None` for the others.
    pub server: Option<String>,
}

/// One entry of an account's event log.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub id: EventId,
    pub account_id: AccountId,
    pub owner: Owner,
    pub kind: String,
    pub created_at: Timestamp,
    /// A JSON object; never a token.
    pub detail: serde_json::Value,
    /// Its position in the log (assigned by the store; 0 before insertion).
    pub seq: i64,
}

/// Where a database's schema stands: the migrations applied to it, and how many this build
/// has. A database migrated by a newer build is ahead (`found > latest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaVersion {
    pub found: usize,
    pub latest: usize,
}

/// What a database (or a backup file) holds, read without changing it: what `dravo doctor`,
/// `backup` and `restore` check before trusting it.
#[derive(Debug, Clone)]
pub struct DatabaseFacts {
    /// `ok`, or what SQLite's integrity check found (PostgreSQL checks its own pages: `ok`).
    pub integrity: String,
    /// The migrations applied to it, and how many this build has.
    pub schema_version: i64,
    pub latest_version: i64,
    /// The master keys its secrets are sealed with (none recorded: a database never used).
    pub keys: Vec<MasterKeyRecord>,
    /// One app, to prove the key opens its secret.
    pub sample_app: Option<AppRecord>,
    /// Per sealed column: how many values it holds, how many each of `keys` seals, and the
    /// first of them, to prove the key opens it (`None` when not read: PostgreSQL, or a
    /// SQLite schema older than this build's).
    pub sealed: Option<Vec<SealedSample>>,
    pub apps: i64,
    pub accounts: i64,
    pub bytes: u64,
}

/// What one sealed column of a database holds, for proving the key (see `DatabaseFacts`).
#[derive(Debug, Clone)]
pub struct SealedSample {
    pub counts: SealedCounts,
    /// The first value sealed with one of the recorded keys.
    pub first: Option<SealedRow>,
}

/// The webhook events waiting for delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WebhookBacklog {
    pub pending: u64,
    /// When the oldest of them was recorded; `None` when none waits.
    pub oldest_created_at: Option<Timestamp>,
}

/// A webhook event waiting in the outbox (or delivered, or given up).
#[derive(Debug, Clone)]
pub struct OutboxRecord {
    pub id: String,
    pub kind: String,
    pub owner: Owner,
    /// The JSON body, exactly as it is sent.
    pub body: String,
    pub created_at: Timestamp,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
    /// Its position in the outbox (assigned by the store; 0 before insertion).
    pub seq: i64,
}

/// A connect waiting for the dashboard's confirmation (`connect.require_confirmation`). Kept
/// apart from accounts, so no account read can return it.
#[derive(Debug, Clone)]
pub struct PendingRecord {
    /// The id the account gets once confirmed.
    pub id: AccountId,
    pub owner: Owner,
    pub provider: Provider,
    pub oauth_app_id: Option<AppId>,
    /// SHA-256 of the one-time confirmation code.
    pub confirm_hash: Vec<u8>,
    /// The identity and tokens, sealed and bound to this row.
    pub sealed: Vec<u8>,
    /// When the provider issued the tokens.
    pub issued_at: Timestamp,
    /// Unconfirmed after this, it is gone.
    pub expires_at: Timestamp,
}

/// A master key as the database records it (see `crypto::ring`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterKeyRecord {
    /// The id sealed values carry.
    pub id: u32,
    /// The key's public fingerprint.
    pub check_value: String,
    pub added_at: Timestamp,
    /// Set once no value is sealed with it any more.
    pub retired_at: Option<Timestamp>,
    /// A retired key's OAuth states and dashboard tokens are accepted until then.
    pub accept_until: Option<Timestamp>,
}

/// A column that holds sealed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SealedColumn {
    AppClientSecret,
    AccessToken,
    RefreshToken,
    PendingConnection,
    RegistrationSecret,
}

impl SealedColumn {
    /// Every sealed column, in the order a rotation re-seals them.
    pub const ALL: [SealedColumn; 5] = [
        SealedColumn::AppClientSecret,
        SealedColumn::AccessToken,
        SealedColumn::RefreshToken,
        SealedColumn::PendingConnection,
        SealedColumn::RegistrationSecret,
    ];

    /// What the column holds, for people.
    pub fn describe(self) -> &'static str {
        match self {
            SealedColumn::AppClientSecret => "OAuth app client secret",
            SealedColumn::AccessToken => "account access token",
            SealedColumn::RefreshToken => "account refresh token",
            SealedColumn::PendingConnection => "pending connection",
            SealedColumn::RegistrationSecret => "instance registration client secret",
        }
    }
}

/// One sealed value and the row fields its associated data is made of.
#[derive(Debug, Clone)]
pub struct SealedRow {
    /// Its position in its table (a rotation's cursor).
    pub rowid: i64,
    pub id: String,
    pub owner: String,
    pub provider: Provider,
    /// Accounts: the provider account id; registrations: the server.
    pub provider_account_id: Option<String>,
    pub sealed: Vec<u8>,
}

/// How many values a column holds, and how many of them each key seals.
#[derive(Debug, Clone)]
pub struct SealedCounts {
    pub column: SealedColumn,
    /// Every value (an empty one, a Page without its own token, is none).
    pub total: u64,
    /// For each key asked about, in the order asked.
    pub by_key: Vec<u64>,
}

/// One page of a list, and where the next one starts.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The position after the last item, when more may follow.
    pub next_after: Option<i64>,
}

impl<T> Page<T> {
    /// A page from what a query read in page order, asking for one item more than `limit`:
    /// that extra item only tells that more follow. `position` gives an item's position.
    pub fn from_read(mut items: Vec<T>, limit: usize, position: impl Fn(&T) -> i64) -> Page<T> {
        let next_after = if items.len() > limit {
            items.truncate(limit);
            items.last().map(position)
        } else {
            None
        };
        Page { items, next_after }
    }

    /// The same page with each item changed by `f`.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_after: self.next_after,
        }
    }
}

/// The number of events kept per account; older ones are dropped as new ones arrive.
pub const EVENTS_KEPT_PER_ACCOUNT: i64 = 200;

/// An account row's identity, found before it is written (its sealed tokens are bound to
/// its id, so the id must be known first).
#[derive(Debug, Clone)]
pub struct ExistingAccount {
    pub id: AccountId,
    pub created_at: Timestamp,
}

/// The changes a write transaction can make, one trait per aggregate. Every call is part of
/// the one transaction the store opened for `write`.
pub trait WriteTx: AppTx + AccountTx + EventTx + PendingTx + KeyTx + MetaTx + Send {}

impl<T: AppTx + AccountTx + EventTx + PendingTx + KeyTx + MetaTx + Send> WriteTx for T {}

/// Write-transaction calls on one aggregate: the OAuth apps (`oauth_apps`).
#[async_trait]
pub trait AppTx: Send {
    /// Inserts a new app; a duplicate (owner, provider, name) is `Error::Conflict`.
    async fn insert_app(&mut self, app: &AppRecord) -> Result<()>;
    /// Stores an app's registration on a server, replacing any earlier one of the same app
    /// and server.
    async fn put_registration(&mut self, registration: &RegistrationRecord) -> Result<()>;
    /// Deletes one of the owner's apps; false when there was none.
    async fn delete_app(&mut self, owner: &Owner, id: &AppId) -> Result<bool>;
    /// One of the owner's apps, read inside this transaction.
    async fn get_app(&mut self, owner: &Owner, id: &AppId) -> Result<Option<AppRecord>>;
    /// Writes an app's name, scopes, sealed secret, credentials error, last check and
    /// `updated_at` (the row named by its owner and id); false when there is none. A name another of the
    /// owner's apps of the provider has is `Error::Conflict`.
    async fn update_app(&mut self, app: &AppRecord) -> Result<bool>;
    /// How many of the owner's connected accounts use the app.
    async fn count_app_accounts(&mut self, owner: &Owner, id: &AppId) -> Result<u64>;
    /// Makes the app's accounts that wait on a cooldown after failed refreshes (active or
    /// expiring, with failures) due at `now`; returns how many.
    async fn make_app_accounts_due(&mut self, app_id: &AppId, now: Timestamp) -> Result<usize>;
    /// Records (or, with `None`, clears) the provider's refusal of an app's credentials.
    async fn set_app_credentials_error(
        &mut self,
        app_id: &AppId,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<()>;
    /// Records the last check of an app's configuration, replacing the one before.
    async fn set_app_last_check(&mut self, app_id: &AppId, check: &AppCheck) -> Result<()>;
}

/// Write-transaction calls on one aggregate: the connected accounts (`accounts`) and their refresh leases.
#[async_trait]
pub trait AccountTx: Send {
    /// The owner's user account for this provider account, if connected before.
    async fn find_account(
        &mut self,
        owner: &Owner,
        provider: Provider,
        provider_account_id: &str,
    ) -> Result<Option<ExistingAccount>>;
    /// Inserts the account, or replaces the mutable fields of the row with its id.
    async fn put_account(&mut self, account: &AccountRecord) -> Result<()>;
    /// One account, read inside this transaction (by id alone: the refresher works across
    /// tenants; callers check the owner).
    async fn account_by_id(&mut self, id: &AccountId) -> Result<Option<AccountRecord>>;
    /// The children (Pages, organizations) of a user account, in insertion order.
    async fn children_of(&mut self, parent_id: &AccountId) -> Result<Vec<AccountRecord>>;
    /// Deletes an account and its event log; false when there was none.
    async fn delete_account(&mut self, owner: &Owner, id: &AccountId) -> Result<bool>;
    /// Takes the account's refresh lease for `holder` until `until`, unless another holder's
    /// lease is still running at `now` or its tokens are no longer at `version`. True when
    /// taken.
    async fn take_refresh_lease(
        &mut self,
        id: &AccountId,
        version: i64,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool>;
    /// Gives the lease back, if `holder` still holds it.
    async fn release_refresh_lease(&mut self, id: &AccountId, holder: &str) -> Result<()>;
    /// Whether `holder` holds the account's lease at `now`.
    async fn holds_refresh_lease(
        &mut self,
        id: &AccountId,
        holder: &str,
        now: Timestamp,
    ) -> Result<bool>;
}

/// Write-transaction calls on one aggregate: the account event log (`account_events`) and the webhook outbox (`webhook_outbox`).
#[async_trait]
pub trait EventTx: Send {
    /// Appends an event to its account's log and drops the oldest beyond
    /// `EVENTS_KEPT_PER_ACCOUNT`.
    async fn insert_event(&mut self, event: &EventRecord) -> Result<()>;
    /// Adds a webhook event to the outbox.
    async fn enqueue_webhook(&mut self, event: &OutboxRecord) -> Result<()>;
    /// Claims for `holder`, until `until`, the oldest pending webhook event due at `now` that
    /// no other sender holds a running claim on, and returns it. Two senders never get the
    /// same event while a claim runs; a claim whose sender died runs out at `until`.
    async fn claim_due_webhook(
        &mut self,
        now: Timestamp,
        holder: &str,
        until: Timestamp,
    ) -> Result<Option<OutboxRecord>>;
    /// Moves `holder`'s claim on a pending webhook event to `until` (its sender is still
    /// posting it); false when `holder` holds it no more: another sender took the event over
    /// after the claim ran out, or the outcome was recorded. A claim that ran out but that
    /// nobody took over is `holder`'s still, and is extended.
    async fn extend_webhook_claim(
        &mut self,
        id: &str,
        holder: &str,
        until: Timestamp,
    ) -> Result<bool>;
    /// One webhook event of the outbox, read inside this transaction.
    async fn get_webhook(&mut self, id: &str) -> Result<Option<OutboxRecord>>;
    /// Marks a pending webhook event delivered after `attempts` attempts, and ends the claim,
    /// if `holder` holds it; false (nothing changed) when it does not (another sender took
    /// the event over and records its own outcome).
    async fn webhook_delivered(
        &mut self,
        id: &str,
        holder: &str,
        attempts: i64,
        at: Timestamp,
    ) -> Result<bool>;
    /// Records a failed attempt of a pending webhook event, and ends the claim, if `holder`
    /// holds it (false, nothing changed, when not): tried again at `next`, or, with `None`,
    /// given up (status `failed`). `error` is shown to operators.
    async fn webhook_attempt_failed(
        &mut self,
        id: &str,
        holder: &str,
        attempts: i64,
        next: Option<Timestamp>,
        error: &str,
    ) -> Result<bool>;
    /// Makes a webhook event pending again, due at `now`; false when there is none. A claim
    /// still running at `now` is kept (its sender is posting the event), so no second
    /// sender posts it meanwhile.
    async fn requeue_webhook(&mut self, id: &str, now: Timestamp) -> Result<bool>;
    /// Marks `failed`, with `error` as the last error, up to `limit` pending webhook events
    /// created at or before `created_before` and due at or before `due_before` that no sender
    /// holds a running claim on at `now`; returns how many. For a server that sends no
    /// webhooks: events no sender took within their window do not wait forever.
    async fn give_up_unsent_webhooks(
        &mut self,
        created_before: Timestamp,
        due_before: Timestamp,
        now: Timestamp,
        error: &str,
        limit: usize,
    ) -> Result<usize>;
    /// Deletes up to `limit` delivered or failed webhook events recorded before
    /// `created_before`, oldest first; returns how many. Pending events are never touched.
    async fn prune_webhooks(&mut self, created_before: Timestamp, limit: usize) -> Result<usize>;
}

/// Write-transaction calls on one aggregate: connects in flight: used state nonces (`oauth_states`) and connects that wait for confirmation (`pending_connections`).
#[async_trait]
pub trait PendingTx: Send {
    /// Records a state's nonce as used; false when it was used before. Forgets nonces whose
    /// states expired before `now` (they can no longer be presented).
    async fn consume_state_nonce(
        &mut self,
        nonce: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool>;
    /// Stores a connect that waits for confirmation.
    async fn insert_pending(&mut self, pending: &PendingRecord) -> Result<()>;
    /// The owner's pending connection `id`, unless it expired by `now`.
    async fn pending_connection(
        &mut self,
        owner: &Owner,
        id: &AccountId,
        now: Timestamp,
    ) -> Result<Option<PendingRecord>>;
    /// Deletes a pending connection; false when there was none.
    async fn delete_pending(&mut self, id: &AccountId) -> Result<bool>;
    /// Forgets pending connections that expired by `now`; returns how many.
    async fn purge_expired_pending(&mut self, now: Timestamp) -> Result<usize>;
}

/// Write-transaction calls on one aggregate: the master keys (`master_keys`) and the sealed values they seal (rotation).
#[async_trait]
pub trait KeyTx: Send {
    /// The master keys the database records, by id.
    async fn master_keys(&mut self) -> Result<Vec<MasterKeyRecord>>;
    /// The id of the key that seals new values: the newest one not retired.
    async fn current_key_id(&mut self) -> Result<Option<u32>>;
    /// Records a new master key.
    async fn add_master_key(&mut self, key: &MasterKeyRecord) -> Result<()>;
    /// Marks a key retired at `at`; its states and tokens count until `accept_until`.
    async fn retire_master_key(
        &mut self,
        id: u32,
        at: Timestamp,
        accept_until: Timestamp,
    ) -> Result<()>;
    /// Counts the sealed values of every column, and those that start with each key's
    /// prefixes (`keys[i]` is one key's prefixes; see `crypto::seal::prefixes_of`).
    async fn count_sealed(&mut self, keys: &[Vec<Vec<u8>>]) -> Result<Vec<SealedCounts>>;
    /// Up to `limit` values of `column` that start with one of `prefixes`, after the row at
    /// `after_rowid`, in row order.
    async fn sealed_rows(
        &mut self,
        column: SealedColumn,
        after_rowid: i64,
        prefixes: &[Vec<u8>],
        limit: usize,
    ) -> Result<Vec<SealedRow>>;
    /// Writes `new` over the value of row `id` only if it still holds `old`; false when not.
    async fn replace_sealed(
        &mut self,
        column: SealedColumn,
        id: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool>;
}

/// Write-transaction calls on one aggregate: the `meta` table, and whole rows copied from another database (`store copy`).
#[async_trait]
pub trait MetaTx: Send {
    /// A value of the `meta` table, read inside this transaction.
    async fn meta_get(&mut self, key: &str) -> Result<Option<String>>;
    /// Sets a value of the `meta` table.
    async fn meta_set(&mut self, key: &str, value: &str) -> Result<()>;
    /// Removes a value of the `meta` table.
    async fn meta_delete(&mut self, key: &str) -> Result<()>;
    /// Inserts rows exported from another database, positions and all (`store copy`).
    async fn import_rows(&mut self, table: &tables::Table, rows: &[copy::CopyRow]) -> Result<()>;
}

/// What a write transaction's work returns: a future that borrows the transaction.
pub type TxFuture<'t, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 't>>;

/// Work to run inside one write transaction.
pub type WriteWork = Box<dyn for<'t> FnOnce(&'t mut dyn WriteTx) -> TxFuture<'t, ()> + Send>;

/// What the core needs from a database.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Answers once the database answers.
    async fn ping(&self) -> Result<()>;

    /// A value of the `meta` table (facts about this database, such as the key check).
    async fn meta_get(&self, key: &str) -> Result<Option<String>>;
    /// Stores `value` under `key` unless a value is there already; returns the stored value.
    async fn meta_init(&self, key: &str, value: &str) -> Result<String>;
    /// The database's schema version against the newest this build knows.
    async fn schema_version(&self) -> Result<SchemaVersion>;

    /// How many accounts there are of each provider and status, every tenant together; pairs
    /// without accounts are left out.
    async fn count_accounts(&self) -> Result<Vec<(Provider, AccountStatus, u64)>>;
    /// The webhook events waiting for delivery, every tenant together.
    async fn webhook_backlog(&self) -> Result<WebhookBacklog>;

    /// The master keys the database records, by id.
    async fn master_keys(&self) -> Result<Vec<MasterKeyRecord>>;
    /// `KeyTx::count_sealed` outside a write: a scan of every sealed column.
    async fn count_sealed(&self, keys: Vec<Vec<Vec<u8>>>) -> Result<Vec<SealedCounts>>;

    /// What the database looks like to this process's reads now, when the backend can tell
    /// cheaply (see `ReadVersion`); `None` when it cannot, and then nothing read may be
    /// reused.
    async fn read_version(&self) -> Result<Option<ReadVersion>>;

    /// The owner's apps, oldest first, optionally for one provider.
    async fn list_apps(&self, owner: &Owner, provider: Option<Provider>) -> Result<Vec<AppRecord>>;
    /// One of the owner's apps.
    async fn get_app(&self, owner: &Owner, id: &AppId) -> Result<Option<AppRecord>>;
    /// The app's registration on `server` (an origin), if it has one.
    async fn registration(
        &self,
        app_id: &AppId,
        server: &str,
    ) -> Result<Option<RegistrationRecord>>;
    /// The owner's app's registrations, oldest first.
    async fn registrations(&self, owner: &Owner, app_id: &AppId)
    -> Result<Vec<RegistrationRecord>>;

    /// One of the owner's accounts.
    async fn get_account(&self, owner: &Owner, id: &AccountId) -> Result<Option<AccountRecord>>;
    /// One page of the owner's accounts matching `filter`, in the order
    /// they were first connected, starting after the position `after` (a value from an
    /// earlier page's `next_after`). Only what a list shows
    /// (`tables::ACCOUNT_LISTING`): a page never carries a sealed token.
    async fn list_accounts_page(
        &self,
        owner: &Owner,
        filter: AccountFilter,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Page<Account>>;
    /// One page of an account's events, newest first, starting before the position `before`.
    async fn list_events(
        &self,
        owner: &Owner,
        account: &AccountId,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Page<EventRecord>>;
    /// Any account by id (the core's own bookkeeping across tenants; callers check the owner).
    async fn account_by_id(&self, id: &AccountId) -> Result<Option<AccountRecord>>;
    /// Ids of accounts whose `next_refresh_at` is at or before `now`, soonest first.
    async fn due_accounts(&self, now: Timestamp, limit: usize) -> Result<Vec<AccountId>>;
    /// Ids of the owner's connected accounts that use the app, in
    /// the order they were first connected.
    async fn app_account_ids(&self, owner: &Owner, id: &AppId) -> Result<Vec<AccountId>>;

    /// The newest webhook events of every tenant, newest first, optionally with one status
    /// (`pending`, `delivered` or `failed`).
    async fn recent_webhooks(
        &self,
        status: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxRecord>>;

    /// Writes a consistent copy of the whole database to `target`, a new file, while others
    /// keep reading and writing.
    async fn backup_into(&self, target: &std::path::Path) -> Result<()>;

    /// Up to `limit` rows of `table` after the position `after`, in position order; a table
    /// without positions is read whole (`store copy`).
    async fn export_rows(
        &self,
        table: &'static tables::Table,
        after: i64,
        limit: usize,
    ) -> Result<Vec<copy::CopyRow>>;
    /// How many rows `table` holds.
    async fn count_rows(&self, table: &'static tables::Table) -> Result<u64>;

    /// Runs `work` in one write transaction; use `write` for a typed result.
    async fn write_work(&self, work: WriteWork) -> Result<()>;
}

impl dyn Store {
    /// Runs `f` in one write transaction and returns what it returns: all of its changes
    /// commit together, or none do (an error from `f` rolls back).
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut dyn WriteTx) -> TxFuture<'t, T> + Send + 'static,
    {
        let result = std::sync::Arc::new(std::sync::Mutex::new(None));
        let slot = result.clone();
        self.write_work(Box::new(move |tx| {
            Box::pin(async move {
                let value = f(tx).await?;
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
                Ok(())
            })
        }))
        .await?;
        let value = result.lock().unwrap_or_else(|e| e.into_inner()).take();
        value.ok_or_else(|| Error::Internal("a write transaction returned no result".into()))
    }
}
