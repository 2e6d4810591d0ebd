//! Connected accounts: storing one after a successful connect (tokens sealed and bound to the
//! row), and the read side.

use secrecy::ExposeSecret;

use super::Dravo;
use crate::domain::{
    AccountId, Owner, clean_provider_text, now_rfc3339, rfc3339_from_unix, unix_now,
};
use crate::error::{Error, Result};
use crate::providers::{Identity, Provider, TokenSet};
use crate::store::accounts::{self, AccountRow};

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
    /// When the access token expires, RFC 3339 UTC.
    pub expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<AccountRow> for Account {
    fn from(row: AccountRow) -> Self {
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
    /// connected before by this owner (same id, fresh tokens).
    pub(super) async fn save_connected(&self, c: Connected) -> Result<Account> {
        let now = unix_now();
        let this = self.clone();
        let owner = c.owner.as_str().to_owned();
        let provider_account_id = c.identity.provider_account_id.clone();
        let row =
            self.0
                .store
                .call(move |conn| {
                    accounts::upsert(
                        conn,
                        &owner,
                        c.provider,
                        &provider_account_id,
                        AccountId::generate().to_string(),
                        |id, created_at| {
                            let sealer = this.0.keys.sealer();
                            let context = |kind| {
                                token_context(kind, &id, &owner, c.provider, &provider_account_id)
                            };
                            let access = sealer.seal(
                                &context(ACCESS),
                                c.tokens.access_token.expose_secret().as_bytes(),
                            );
                            let refresh = c.tokens.refresh_token.as_ref().map(|t| {
                                sealer.seal(&context(REFRESH), t.expose_secret().as_bytes())
                            });
                            let at = |secs: Option<i64>| {
                                secs.filter(|s| *s > 0)
                                    .map(|s| rfc3339_from_unix(now.saturating_add(s as u64)))
                            };
                            let stamp = now_rfc3339();
                            Ok(AccountRow {
                                id: id.clone(),
                                owner: owner.clone(),
                                provider: c.provider,
                                oauth_app_id: c.oauth_app_id,
                                provider_account_id: provider_account_id.clone(),
                                username: c.identity.username.and_then(clean_provider_text),
                                display_name: c.identity.display_name.and_then(clean_provider_text),
                                scopes: c.tokens.granted_scopes.unwrap_or(c.requested_scopes),
                                status: "active".into(),
                                access_token_sealed: access,
                                refresh_token_sealed: refresh,
                                expires_at: at(c.tokens.expires_in),
                                refresh_expires_at: at(c.tokens.refresh_expires_in),
                                created_at: created_at.unwrap_or_else(|| stamp.clone()),
                                updated_at: stamp,
                            })
                        },
                    )
                })
                .await?;
        Ok(row.into())
    }

    pub async fn list_accounts(
        &self,
        owner: &Owner,
        provider: Option<Provider>,
    ) -> Result<Vec<Account>> {
        let owner = owner.clone();
        let rows = self
            .0
            .store
            .call(move |c| accounts::list(c, &owner, provider))
            .await?;
        Ok(rows.into_iter().map(Account::from).collect())
    }

    /// One of the owner's accounts as stored.
    async fn account_row(&self, owner: &Owner, id: &AccountId) -> Result<AccountRow> {
        let (owner, id) = (owner.clone(), id.clone());
        self.0
            .store
            .call(move |c| {
                accounts::get(c, &owner, id.as_str())?
                    .ok_or_else(|| Error::not_found(format!("no account with id {id}")))
            })
            .await
    }

    pub async fn get_account(&self, owner: &Owner, id: &AccountId) -> Result<Account> {
        self.account_row(owner, id).await.map(Account::from)
    }

    /// Opens an account's access token (used by the token endpoints and by tests proving the
    /// seal is bound to the row).
    pub async fn account_access_token(&self, owner: &Owner, id: &AccountId) -> Result<String> {
        let row = self.account_row(owner, id).await?;
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
