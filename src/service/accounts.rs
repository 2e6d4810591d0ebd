//! Connected accounts: storing one after a successful connect (tokens sealed and bound to the
//! row), and the read side.

use std::sync::Arc;

use secrecy::ExposeSecret;

use super::{Dravo, SharedList};
use crate::domain::{AccountId, Owner, Provider, Timestamp, clean_provider_text};
use crate::error::{Error, Result};
use crate::providers::{Identity, TokenSet};
use crate::store::AccountRecord;

/// A connected account as callers see it: never a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub provider: Provider,
    pub oauth_app_id: Option<String>,
    pub provider_account_id: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub scopes: Vec<String>,
    /// `active` or `needs_reauth`.
    pub status: String,
    /// When the access token expires.
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<AccountRecord> for Account {
    fn from(row: AccountRecord) -> Self {
        Account {
            id: row.id,
            provider: row.provider,
            oauth_app_id: row.oauth_app_id,
            provider_account_id: row.provider_account_id,
            username: row.username,
            display_name: row.display_name,
            scopes: row.scopes,
            status: row.status,
            expires_at: row.expires_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// Associated data for an account's sealed token: the kind of token and the row it belongs to.
pub(super) fn token_context<'a>(
    kind: &'static str,
    id: &'a str,
    owner: &'a str,
    provider: Provider,
    provider_account_id: &'a str,
) -> [&'a [u8]; 5] {
    [
        kind.as_bytes(),
        id.as_bytes(),
        owner.as_bytes(),
        provider.as_str().as_bytes(),
        provider_account_id.as_bytes(),
    ]
}

const ACCESS: &str = "account.access_token";
const REFRESH: &str = "account.refresh_token";

/// What a successful connect stores.
pub(super) struct Connected {
    pub owner: Owner,
    pub provider: Provider,
    pub oauth_app_id: Option<String>,
    pub identity: Identity,
    pub tokens: TokenSet,
    /// Used when the provider does not say which scopes were granted.
    pub requested_scopes: Vec<String>,
}

impl Dravo {
    /// Stores a newly connected account, or updates it when the same provider account was
    /// connected before by this owner (same id, fresh tokens), in one transaction.
    pub(super) async fn save_connected(&self, c: Connected) -> Result<Account> {
        let now = self.now();
        let this = self.clone();
        let record = self
            .0
            .store
            .write(move |tx| {
                let existing =
                    tx.find_account(&c.owner, c.provider, &c.identity.provider_account_id)?;
                let (id, created_at) = match existing {
                    Some(e) => (e.id, e.created_at),
                    None => (AccountId::generate().to_string(), now),
                };
                let owner = c.owner.as_str();
                let provider_account_id = c.identity.provider_account_id.as_str();
                let sealer = this.0.keys.sealer();
                let context =
                    |kind| token_context(kind, &id, owner, c.provider, provider_account_id);
                let access = sealer.seal(
                    &context(ACCESS),
                    c.tokens.access_token.expose_secret().as_bytes(),
                );
                let refresh = c
                    .tokens
                    .refresh_token
                    .as_ref()
                    .map(|t| sealer.seal(&context(REFRESH), t.expose_secret().as_bytes()));
                let after =
                    |secs: Option<i64>| secs.filter(|s| *s > 0).map(|s| now.plus_seconds(s));
                let record = AccountRecord {
                    id: id.clone(),
                    owner: owner.to_owned(),
                    provider: c.provider,
                    oauth_app_id: c.oauth_app_id,
                    provider_account_id: provider_account_id.to_owned(),
                    username: c.identity.username.and_then(clean_provider_text),
                    display_name: c.identity.display_name.and_then(clean_provider_text),
                    scopes: c.tokens.granted_scopes.unwrap_or(c.requested_scopes),
                    status: "active".into(),
                    access_token_sealed: access,
                    refresh_token_sealed: refresh,
                    expires_at: after(c.tokens.expires_in),
                    refresh_expires_at: after(c.tokens.refresh_expires_in),
                    created_at,
                    updated_at: now,
                };
                tx.put_account(&record)?;
                Ok(record)
            })
            .await?;
        Ok(record.into())
    }

    pub async fn list_accounts(
        &self,
        owner: &Owner,
        provider: Option<Provider>,
    ) -> Result<Vec<Account>> {
        Ok(self
            .list_accounts_shared(owner, provider)
            .await?
            .items
            .clone())
    }

    /// The owner's accounts, oldest first, as a shared list (the API's hot read).
    pub async fn list_accounts_shared(
        &self,
        owner: &Owner,
        provider: Option<Provider>,
    ) -> Result<Arc<SharedList<Account>>> {
        let rows = self.0.store.list_accounts(owner, provider).await?;
        Ok(self
            .0
            .account_lists
            .get_or_make((owner.as_str().to_owned(), provider), &rows, |rows| {
                SharedList {
                    items: rows.iter().cloned().map(Account::from).collect(),
                    rendered: Default::default(),
                }
            }))
    }

    /// One of the owner's accounts as stored.
    async fn account_record(&self, owner: &Owner, id: &AccountId) -> Result<AccountRecord> {
        self.0
            .store
            .get_account(owner, id)
            .await?
            .ok_or_else(|| Error::not_found(format!("no account with id {id}")))
    }

    pub async fn get_account(&self, owner: &Owner, id: &AccountId) -> Result<Account> {
        self.account_record(owner, id).await.map(Account::from)
    }

    /// Opens an account's access token (used by the token endpoints and by tests proving the
    /// seal is bound to the row).
    pub async fn account_access_token(&self, owner: &Owner, id: &AccountId) -> Result<String> {
        let row = self.account_record(owner, id).await?;
        let plain = self.0.keys.sealer().open(
            &token_context(
                ACCESS,
                &row.id,
                &row.owner,
                row.provider,
                &row.provider_account_id,
            ),
            &row.access_token_sealed,
        )?;
        String::from_utf8(plain).map_err(|_| Error::Unseal("a sealed token is not UTF-8".into()))
    }
}
