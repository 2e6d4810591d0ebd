//! Connected accounts: storing one after a successful connect (tokens sealed and bound to the
//! row), and the read side.

use secrecy::ExposeSecret;

use serde_json::json;

use super::Dravo;
use super::events::{AccountEvent, EventDraft};
use super::lifecycle::fingerprint;
use super::seal_contexts::{ACCESS, Cursors, cursor_context};
use crate::domain::AccountFilter;
use crate::domain::{
    AccountId, AccountKind, AccountStatus, AppId, Deleted, Event, Owner, Provider, Timestamp,
    clean_provider_text,
};
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
}

impl Dravo {
    /// Stores a newly connected account, or updates it when the same provider account was
    /// connected before by this owner (same id, fresh tokens), in one transaction with its
    /// `connected` or `reconnected` event (and `recovered` when it needed a new consent).
    pub(super) async fn save_connected(&self, c: Connected) -> Result<Account> {
        let now = self.now();
        let policy = self.policy();
        let this = self.clone();
        let renewal = providers::get(c.provider).renewal();
        let record = self
            .0
            .store
            .write(move |tx| {
                let existing =
                    tx.find_account(&c.owner, c.provider, &c.identity.provider_account_id)?;
                let before = match &existing {
                    Some(e) => tx.account_by_id(&e.id)?,
                    None => None,
                };
                let (id, created_at) = match existing {
                    Some(e) => (e.id, e.created_at),
                    None => (
                        c.preferred_id.unwrap_or_else(AccountId::generate),
                        now,
                    ),
                };
                let mut record = AccountRecord {
                    id,
                    owner: c.owner.clone(),
                    provider: c.provider,
                    oauth_app_id: c.oauth_app_id,
                    provider_account_id: c.identity.provider_account_id.clone(),
                    username: c.identity.username.and_then(clean_provider_text),
                    display_name: c.identity.display_name.and_then(clean_provider_text),
                    scopes: c.tokens.granted_scopes.clone().unwrap_or(c.requested_scopes),
                    status: AccountStatus::Active,
                    status_reason: None,
                    access_token_sealed: Vec::new(),
                    // A new consent starts a new grant: the old refresh token is not kept.
                    refresh_token_sealed: None,
                    expires_at: None,
                    refresh_expires_at: None,
                    reauth_by: None,
                    token_issued_at: None,
                    next_refresh_at: None,
                    refresh_failures: 0,
                    warned_for: None,
                    created_at,
                    updated_at: now,
                    kind: AccountKind::User,
                    parent_id: None,
                    tasks: None,
                    // `apply_tokens` moves it on from the replaced tokens' version.
                    token_version: before.as_ref().map_or(0, |b| b.token_version),
                };
                let keys = this.sealing_keys(tx)?;
                let expiring =
                    this.apply_tokens(&keys, &mut record, &c.tokens, renewal, c.issued_at, policy);
                this.put_family(tx, &record, now)?;
                let detail = json!({
                    "fingerprint": fingerprint(c.tokens.access_token.expose_secret()),
                    "expires_at": record.expires_at.map(|t| t.to_string()),
                    "scopes": record.scopes,
                });
                match &before {
                    None => this.record_event(
                        tx,
                        &record,
                        EventDraft::new(AccountEvent::Connected, detail),
                        now,
                    )?,
                    Some(old) => {
                        this.record_event(
                            tx,
                            &record,
                            EventDraft::new(AccountEvent::Reconnected, detail),
                            now,
                        )?;
                        if old.status == AccountStatus::NeedsReauth || old.refresh_failures > 0 {
                            this.record_event(
                                tx,
                                &record,
                                EventDraft::new(
                                    AccountEvent::Recovered,
                                    json!({"via": "reconnect", "previous_status": old.status.as_str()}),
                                ),
                                now,
                            )?;
                        }
                    }
                }
                if let Some(expiring) = expiring {
                    this.record_event(tx, &record, expiring, now)?;
                }
                if let Some(children) = &c.children {
                    this.sync_children(tx, &record, children, now)?;
                }
                Ok(record)
            })
            .await?;
        Ok(record.into())
    }

    /// One page of the owner's accounts (see `Store::list_accounts_page`).
    pub async fn list_accounts_page(
        &self,
        owner: &Owner,
        filter: AccountFilter,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<ListPage<Account>> {
        let list = Cursors::Accounts;
        let after = cursor
            .map(|c| self.open_cursor(list, owner, c))
            .transpose()?;
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
        let before = cursor
            .map(|c| self.open_cursor(list, owner, c))
            .transpose()?;
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
        let this = self.clone();
        let (owner, id_owned, row_copy) = (owner.clone(), id.clone(), row.clone());
        let detail = json!({"revoked": revoked, "revoke_error": revoke_error});
        let deleted = self
            .0
            .store
            .write(move |tx| {
                for child in tx.children_of(&id_owned)? {
                    if tx.delete_account(&owner, &child.id)? {
                        this.record_deleted(
                            tx,
                            &child,
                            json!({"revoked": revoked, "revoke_error": null, "with_parent": row_copy.id}),
                            now,
                        )?;
                    }
                }
                let gone = tx.delete_account(&owner, &id_owned)?;
                if gone {
                    this.record_deleted(tx, &row_copy, detail, now)?;
                }
                Ok(gone)
            })
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
        let creds = self.account_credentials(row).await?;
        Ok(providers::get(row.provider)
            .revoke(
                self.http(),
                self.endpoints(row.provider),
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
        self.0
            .store
            .get_account(owner, id)
            .await?
            .ok_or_else(|| Error::not_found(format!("no account with id {id}")))
    }

    pub async fn get_account(&self, owner: &Owner, id: &AccountId) -> Result<Account> {
        self.account_record(owner, id).await.map(Account::from)
    }

    /// Opens an account's stored access token as it is, without any refresh (tests use it
    /// to prove the seal is bound to the row).
    pub async fn account_access_token(&self, owner: &Owner, id: &AccountId) -> Result<String> {
        let row = self.account_record(owner, id).await?;
        self.open_token(&row, ACCESS, &row.access_token_sealed)
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
    fn open_cursor(&self, list: Cursors, owner: &Owner, cursor: &str) -> Result<i64> {
        use base64::Engine as _;
        let refused = || Error::invalid("cursor is not one this server returned for this list");
        let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| refused())?;
        let plain = self
            .open_sealed(&cursor_context(list, owner), &sealed)
            .map_err(|_| refused())?;
        <[u8; 8]>::try_from(plain.as_slice())
            .ok()
            .map(i64::from_be_bytes)
            .filter(|p| *p >= 0)
            .ok_or_else(refused)
    }
}
