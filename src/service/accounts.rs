//! Connected accounts: the read side, deleting one, and what a successful connect hands the
//! connect flow to store (`Connected`; `Connect::save_connected` stores it).

use serde_json::json;

use super::Dravo;
use super::seal_contexts::{ACCESS, Cursors, cursor_context};
use crate::domain::AccountFilter;
use crate::domain::{AccountId, AppId, Deleted, Event, Owner, Provider, Timestamp};
use crate::error::{Error, Result};
use crate::providers::{self, ChildAccount, Identity, TokenSet};
use crate::store::AccountRecord;

pub use crate::domain::Account;

impl From<AccountRecord> for Account {
    fn from(row: AccountRecord) -> Self {
        Account {
            id: row.id.into(),
            provider: row.provider,
            oauth_app_id: row.oauth_app_id.map(String::from),
            provider_account_id: row.provider_account_id,
            username: row.username,
            display_name: row.display_name,
            scopes: row.scopes,
            status: row.status,
            status_reason: row.status_reason,
            expires_at: row.expires_at,
            reauth_by: row.reauth_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
            kind: row.kind,
            parent_id: row.parent_id.map(String::from),
            tasks: row.tasks,
        }
    }
}

/// One page of a list and the cursor of the next.
#[derive(Debug, Clone)]
pub struct ListPage<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The page size a caller may ask for: 1 to 500, 100 by default.
pub fn page_limit(limit: Option<u32>) -> Result<usize> {
    match limit {
        None => Ok(100),
        Some(n @ 1..=500) => Ok(n as usize),
        Some(n) => Err(Error::invalid(format!(
            "limit must be between 1 and 500, got {n}"
        ))),
    }
}

/// What a successful connect stores.
pub(super) struct Connected {
    pub owner: Owner,
    pub provider: Provider,
    pub oauth_app_id: Option<AppId>,
    pub identity: Identity,
    pub tokens: TokenSet,
    /// Used when the provider does not say which scopes were granted.
    pub requested_scopes: Vec<String>,
    /// When the provider issued the tokens (a confirmed connection's were issued earlier).
    pub issued_at: Timestamp,
    /// The id a new account gets (a confirmed connection's); a fresh one when `None`.
    pub preferred_id: Option<AccountId>,
    /// The Pages or organizations the user manages, as the provider listed them; `None`:
    /// not listed (the provider has none, or listing failed), so stored ones stay as they are.
    pub children: Option<Vec<ChildAccount>>,
    /// Why the provider did not list them, for the `connected` event: its error, and who is
    /// to blame (`app` for an API the app is not approved for).
    pub children_unlisted: Option<serde_json::Value>,
    /// The server the tokens belong to, for a provider whose users name theirs.
    pub server: Option<String>,
}

impl Dravo {
    /// One page of the owner's accounts (see `Store::list_accounts_page`).
    pub async fn list_accounts_page(
        &self,
        owner: &Owner,
        filter: AccountFilter,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<ListPage<Account>> {
        let list = Cursors::Accounts;
        let after = match cursor {
            Some(c) => Some(self.open_cursor(list, owner, c).await?),
            None => None,
        };
        let limit = page_limit(limit)?;
        let page = self
            .0
            .store
            .list_accounts_page(owner, filter, after, limit)
            .await?;
        Ok(ListPage {
            next_cursor: page
                .next_after
                .map(|after| self.seal_cursor(list, owner, after)),
            items: page.items,
        })
    }

    /// Every account of the owner matching `filter`, following the pages.
    pub async fn list_accounts(
        &self,
        owner: &Owner,
        filter: AccountFilter,
    ) -> Result<Vec<Account>> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .list_accounts_page(owner, filter.clone(), cursor.as_deref(), Some(500))
                .await?;
            all.extend(page.items.iter().cloned());
            match &page.next_cursor {
                Some(next) => cursor = Some(next.clone()),
                None => return Ok(all),
            }
        }
    }

    /// One page of the account's events, newest first.
    pub async fn account_events(
        &self,
        owner: &Owner,
        id: &AccountId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<ListPage<Event>> {
        self.account_record(owner, id).await?;
        let list = Cursors::Events(id);
        let before = match cursor {
            Some(c) => Some(self.open_cursor(list, owner, c).await?),
            None => None,
        };
        let page = self
            .0
            .store
            .list_events(owner, id, before, page_limit(limit)?)
            .await?;
        Ok(ListPage {
            items: page.items.into_iter().map(Event::from).collect(),
            next_cursor: page
                .next_after
                .map(|before| self.seal_cursor(list, owner, before)),
        })
    }

    /// Revokes the account at its provider where the provider can, then deletes it (and its
    /// event log) whatever the provider said, with an `account.deleted` webhook. A user
    /// account's Pages and organizations go with it (one `account.deleted` each); a child
    /// alone is only deleted here: its access ends with its user account's grant.
    pub async fn delete_account(&self, owner: &Owner, id: &AccountId) -> Result<Deleted> {
        let row = self.account_record(owner, id).await?;
        let (revoked, revoke_error) = match &row.parent_id {
            Some(parent) => (
                false,
                Some(format!(
                    "a {} is not revoked on its own: its access ends with its user account {parent}",
                    row.kind
                )),
            ),
            None => match self.revoke_at_provider(&row).await {
                Ok(true) => (true, None),
                Ok(false) => (
                    false,
                    Some(format!(
                        "{} has no endpoint to revoke a token",
                        row.provider
                    )),
                ),
                Err(e) => (false, Some(e.to_string())),
            },
        };
        let now = self.now();
        let outbox = self.0.outbox.clone();
        let (owner, id_owned, row_copy) = (owner.clone(), id.clone(), row.clone());
        let detail = json!({"revoked": revoked, "revoke_error": revoke_error});
        let deleted = self
            .0
            .store
            .write(move |tx| Box::pin(async move {
                for child in tx.children_of(&id_owned).await? {
                    if tx.delete_account(&owner, &child.id).await? {
                        outbox.record_deleted(
                            tx,
                            &child,
                            json!({"revoked": revoked, "revoke_error": null, "with_parent": row_copy.id}),
                            now,
                        ).await?;
                    }
                }
                let gone = tx.delete_account(&owner, &id_owned).await?;
                if gone {
                    outbox.record_deleted(tx, &row_copy, detail, now).await?;
                }
                Ok(gone)
            }))
            .await?;
        if !deleted {
            return Err(Error::not_found(format!("no account with id {id}")));
        }
        Ok(Deleted {
            account: row.into(),
            revoked,
            revoke_error,
        })
    }

    /// Asks the provider to revoke the account's grant with its app's credentials.
    async fn revoke_at_provider(&self, row: &AccountRecord) -> Result<bool> {
        let creds = self.0.tokens.account_credentials(row).await?;
        Ok(providers::get(row.provider)
            .revoke(
                &self
                    .0
                    .calls
                    .http_for(row.provider, creds.user_agent.as_deref()),
                creds.endpoints(&self.0.calls, row.provider),
                &creds.as_refresh(),
            )
            .await?)
    }

    /// One of the owner's accounts as stored.
    pub(super) async fn account_record(
        &self,
        owner: &Owner,
        id: &AccountId,
    ) -> Result<AccountRecord> {
        self.0.tokens.account_record(owner, id).await
    }

    pub async fn get_account(&self, owner: &Owner, id: &AccountId) -> Result<Account> {
        self.account_record(owner, id).await.map(Account::from)
    }

    /// Opens an account's stored access token as it is, without any refresh (tests use it
    /// to prove the seal is bound to the row).
    pub async fn account_access_token(&self, owner: &Owner, id: &AccountId) -> Result<String> {
        let row = self.account_record(owner, id).await?;
        self.0
            .tokens
            .open_token(&row, ACCESS, &row.access_token_sealed)
            .await
    }
}

impl Dravo {
    /// A cursor for `list`: the position to continue from, sealed to the tenant and the
    /// list. Positions are global, so in the clear their gaps would count other tenants'
    /// rows; sealed, a cursor tells nothing and works only where it was given.
    fn seal_cursor(&self, list: Cursors, owner: &Owner, position: i64) -> String {
        use base64::Engine as _;
        let sealed = self
            .keys()
            .current()
            .sealer()
            .seal(&cursor_context(list, owner), &position.to_be_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed)
    }

    /// The position a cursor of `list` continues from; one this server did not give for
    /// this tenant and list is a 400.
    async fn open_cursor(&self, list: Cursors<'_>, owner: &Owner, cursor: &str) -> Result<i64> {
        use base64::Engine as _;
        let refused = || Error::invalid("cursor is not one this server returned for this list");
        let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| refused())?;
        let plain = self
            .open_sealed(&cursor_context(list, owner), &sealed)
            .await
            .map_err(|_| refused())?;
        <[u8; 8]>::try_from(plain.as_slice())
            .ok()
            .map(i64::from_be_bytes)
            .filter(|p| *p >= 0)
            .ok_or_else(refused)
    }
}
