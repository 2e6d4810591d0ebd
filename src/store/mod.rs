//! Storage: the interface the core uses, and its backends. SQL lives only below this module.
//!
//! The core asks for domain operations (`list_apps`, `get_account`, …) and, when several
//! changes must commit together, for a write transaction: `store.write(|tx| …)` runs the
//! closure with a `WriteTx` and commits everything it did, or nothing. The closure is plain
//! synchronous code (sealing, building rows), so a backend runs it where blocking is allowed.
//!
//! Today's backend is SQLite (`sqlite`); a PostgreSQL backend is one more module implementing
//! `Store` and `WriteTx`. Every operation takes the tenant (`Owner`), so one tenant can never
//! read or change another's rows by id.

pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{AccountId, AppId, Owner, Provider, Timestamp};
use crate::error::{Error, Result};

pub use sqlite::SqliteStore;

/// An OAuth app as stored, with its secret still sealed.
#[derive(Debug, Clone)]
pub struct AppRecord {
    pub id: String,
    pub owner: String,
    pub provider: Provider,
    pub name: String,
    pub client_id: String,
    pub client_secret_sealed: Vec<u8>,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
}

/// A connected account as stored, tokens still sealed.
#[derive(Debug, Clone)]
pub struct AccountRecord {
    pub id: String,
    pub owner: String,
    pub provider: Provider,
    pub oauth_app_id: Option<String>,
    pub provider_account_id: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub scopes: Vec<String>,
    pub status: String,
    pub access_token_sealed: Vec<u8>,
    pub refresh_token_sealed: Option<Vec<u8>>,
    pub expires_at: Option<Timestamp>,
    pub refresh_expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An account row's identity, found before it is written (its sealed tokens are bound to
/// its id, so the id must be known first).
#[derive(Debug, Clone)]
pub struct ExistingAccount {
    pub id: String,
    pub created_at: Timestamp,
}

/// The changes a write transaction can make. Every call is part of the one transaction the
/// store opened for `write`.
pub trait WriteTx {
    /// Inserts a new app; a duplicate (owner, provider, name) is `Error::Conflict`.
    fn insert_app(&mut self, app: &AppRecord) -> Result<()>;
    /// Deletes one of the owner's apps; false when there was none.
    fn delete_app(&mut self, owner: &Owner, id: &AppId) -> Result<bool>;
    /// The owner's account for this provider account, if connected before.
    fn find_account(
        &mut self,
        owner: &Owner,
        provider: Provider,
        provider_account_id: &str,
    ) -> Result<Option<ExistingAccount>>;
    /// Inserts the account, or replaces the mutable fields of the row with its id.
    fn put_account(&mut self, account: &AccountRecord) -> Result<()>;
    /// Records a state's nonce as used; false when it was used before. Forgets nonces whose
    /// states expired before `now` (they can no longer be presented).
    fn consume_state_nonce(
        &mut self,
        nonce: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool>;
}

/// Work to run inside one write transaction.
pub type WriteWork = Box<dyn FnOnce(&mut dyn WriteTx) -> Result<()> + Send>;

/// What the core needs from a database.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Answers once the database answers.
    async fn ping(&self) -> Result<()>;

    /// A value of the `meta` table (facts about this database, such as the key check).
    async fn meta_get(&self, key: &str) -> Result<Option<String>>;
    /// Stores `value` under `key` unless a value is there already; returns the stored value.
    async fn meta_init(&self, key: &str, value: &str) -> Result<String>;

    /// The owner's apps, oldest first, optionally for one provider. Shared and immutable: a
    /// backend may hand out the same list again while nothing has changed, so callers may
    /// memoise what they derive from it by its identity (`Arc::ptr_eq`).
    async fn list_apps(
        &self,
        owner: &Owner,
        provider: Option<Provider>,
    ) -> Result<Arc<[AppRecord]>>;
    /// One of the owner's apps.
    async fn get_app(&self, owner: &Owner, id: &AppId) -> Result<Option<Arc<AppRecord>>>;

    /// The owner's accounts, oldest first, optionally for one provider (shared like
    /// `list_apps`).
    async fn list_accounts(
        &self,
        owner: &Owner,
        provider: Option<Provider>,
    ) -> Result<Arc<[AccountRecord]>>;
    /// One of the owner's accounts.
    async fn get_account(&self, owner: &Owner, id: &AccountId) -> Result<Option<AccountRecord>>;

    /// Runs `work` in one write transaction; use `write` for a typed result.
    async fn write_work(&self, work: WriteWork) -> Result<()>;
}

impl dyn Store {
    /// Runs `f` in one write transaction and returns what it returns: all of its changes
    /// commit together, or none do (an error from `f` rolls back).
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn WriteTx) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.write_work(Box::new(move |w| {
            let value = f(w)?;
            // The receiver lives until `write_work` returns; it cannot be gone.
            let _ = tx.send(value);
            Ok(())
        }))
        .await?;
        rx.try_recv()
            .map_err(|_| Error::Internal("a write transaction returned no result".into()))
    }
}
