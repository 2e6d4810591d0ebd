//! Phishing-proof connects (`connect.require_confirmation`). A connect link is worth stealing
//! into once tokens can be read back: a tenant could start a flow and send the consent URL to
//! a victim, whose account would land in that tenant. With confirmation on, the callback does
//! not create the account: it keeps the consent as a *pending connection* and sends the
//! browser back to the dashboard with a one-time code. Only the tenant that started the flow,
//! holding that code (which only reaches the browser that gave consent), can turn it into an
//! account. Unconfirmed connections are gone after `CONFIRM_WITHIN_SECONDS`.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use std::sync::Arc;

use super::accounts::Connected;
use super::keys::Vault;
use super::seal_contexts::pending_context;
use crate::clock::Clock;
use crate::domain::{AccountId, Owner, Timestamp};
use crate::error::{Error, Result};
use crate::providers::{ChildAccount, Identity, TokenSet};
use crate::store::{PendingRecord, Store};

/// How long a pending connection waits for its confirmation.
pub const CONFIRM_WITHIN_SECONDS: i64 = 600;

/// What the callback hands the dashboard instead of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingConnection {
    /// The id the account gets once confirmed (an existing account's id on a reconnect).
    pub id: String,
    /// The one-time confirmation code; shown once, stored only as a hash.
    pub code: String,
}

/// The consent's result as sealed in the pending row: the identity and the tokens.
#[derive(Serialize, Deserialize)]
struct Held {
    provider_account_id: String,
    username: Option<String>,
    display_name: Option<String>,
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<i64>,
    refresh_expires_in: Option<i64>,
    granted_scopes: Option<Vec<String>>,
    requested_scopes: Vec<String>,
    /// The Pages or organizations listed at the callback; `None`: not listed.
    children: Option<Vec<HeldChild>>,
    /// Why they were not listed (held since this field was added).
    #[serde(default)]
    children_unlisted: Option<serde_json::Value>,
    /// The server the tokens belong to (a Mastodon instance; held since this field was added).
    #[serde(default)]
    server: Option<String>,
}

/// A listed Page or organization, as held.
#[derive(Serialize, Deserialize)]
struct HeldChild {
    kind: String,
    provider_account_id: String,
    username: Option<String>,
    display_name: Option<String>,
    tasks: Option<Vec<String>>,
    access_token: Option<String>,
}

impl From<&ChildAccount> for HeldChild {
    fn from(c: &ChildAccount) -> Self {
        HeldChild {
            kind: c.kind.as_str().to_owned(),
            provider_account_id: c.provider_account_id.clone(),
            username: c.username.clone(),
            display_name: c.display_name.clone(),
            tasks: c.tasks.clone(),
            access_token: c
                .access_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
        }
    }
}

impl HeldChild {
    fn into_child(self) -> Result<ChildAccount> {
        Ok(ChildAccount {
            kind: self
                .kind
                .parse()
                .map_err(|e: String| Error::Internal(format!("a pending connection holds {e}")))?,
            provider_account_id: self.provider_account_id,
            username: self.username,
            display_name: self.display_name,
            tasks: self.tasks,
            access_token: self.access_token.map(SecretString::from),
        })
    }
}

fn code_hash(code: &str) -> Vec<u8> {
    Sha256::digest(code.as_bytes()).to_vec()
}

fn new_code() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The consents that wait for their confirmation. It is handed the store (where they wait),
/// the vault (which seals what they hold) and the clock.
pub(super) struct Pending {
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    clock: Arc<dyn Clock>,
}

impl Pending {
    pub(super) fn new(store: Arc<dyn Store>, vault: Arc<Vault>, clock: Arc<dyn Clock>) -> Self {
        Pending {
            store,
            vault,
            clock,
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Keeps a consent as a pending connection and returns its id and one-time code. Forgets
    /// connections that were never confirmed in time.
    pub(super) async fn hold(&self, c: Connected) -> Result<PendingConnection> {
        let now = self.now();
        let code = new_code();
        let held = Held {
            provider_account_id: c.identity.provider_account_id,
            username: c.identity.username,
            display_name: c.identity.display_name,
            access_token: c.tokens.access_token.expose_secret().to_owned(),
            refresh_token: c
                .tokens
                .refresh_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            expires_in: c.tokens.expires_in,
            refresh_expires_in: c.tokens.refresh_expires_in,
            granted_scopes: c.tokens.granted_scopes,
            requested_scopes: c.requested_scopes,
            children: c
                .children
                .as_ref()
                .map(|list| list.iter().map(HeldChild::from).collect()),
            children_unlisted: c.children_unlisted,
            server: c.server.clone(),
        };
        let plain = serde_json::to_vec(&held)
            .map_err(|e| Error::Internal(format!("cannot encode a pending connection: {e}")))?;
        let vault = self.vault.clone();
        let hash = code_hash(&code);
        let id = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    tx.purge_expired_pending(now).await?;
                    // A reconnect keeps the account's id, so the dashboard confirms the account
                    // it already knows.
                    let id = match tx
                        .find_account(&c.owner, c.provider, &held.provider_account_id)
                        .await?
                    {
                        Some(existing) => existing.id,
                        None => AccountId::generate(),
                    };
                    let sealed = vault.sealing_keys(tx).await?.sealer().seal(
                        &pending_context(id.as_str(), c.owner.as_str(), c.provider),
                        &plain,
                    );
                    tx.insert_pending(&PendingRecord {
                        id: id.clone(),
                        owner: c.owner.clone(),
                        provider: c.provider,
                        oauth_app_id: c.oauth_app_id,
                        confirm_hash: hash,
                        sealed,
                        issued_at: c.issued_at,
                        expires_at: now.plus_seconds(CONFIRM_WITHIN_SECONDS),
                    })
                    .await?;
                    Ok(id)
                })
            })
            .await?;
        Ok(PendingConnection {
            id: id.into(),
            code,
        })
    }

    /// Takes the owner's pending connection, when `code` is the one the callback gave, and
    /// returns the consent it held, for the connect flow to store. A wrong code leaves the
    /// connection waiting.
    pub(super) async fn take(
        &self,
        owner: &Owner,
        id: &AccountId,
        code: &str,
    ) -> Result<Connected> {
        let now = self.now();
        let (owner_c, id_c, hash) = (owner.clone(), id.clone(), code_hash(code));
        let pending = self.store
            .write(move |tx| Box::pin(async move {
                let Some(pending) = tx.pending_connection(&owner_c, &id_c, now).await? else {
                    return Err(Error::not_found(format!(
                        "no connection {id_c} waits for confirmation: it was confirmed already, never existed, or was not confirmed within {} minutes",
                        CONFIRM_WITHIN_SECONDS / 60
                    )));
                };
                if !bool::from(pending.confirm_hash.ct_eq(&hash)) {
                    return Err(Error::invalid(
                        "code is not the confirmation code of this connection",
                    ));
                }
                tx.delete_pending(&pending.id).await?;
                Ok(pending)
            }))
            .await?;
        let plain = self
            .vault
            .open_sealed(
                &pending_context(
                    pending.id.as_str(),
                    pending.owner.as_str(),
                    pending.provider,
                ),
                &pending.sealed,
            )
            .await?;
        let held: Held = serde_json::from_slice(&plain)
            .map_err(|e| Error::Internal(format!("a pending connection does not decode: {e}")))?;
        Ok(Connected {
            server: held.server,
            owner: owner.clone(),
            provider: pending.provider,
            oauth_app_id: pending.oauth_app_id,
            identity: Identity {
                provider_account_id: held.provider_account_id,
                username: held.username,
                display_name: held.display_name,
            },
            tokens: TokenSet {
                access_token: SecretString::from(held.access_token),
                refresh_token: held.refresh_token.map(SecretString::from),
                expires_in: held.expires_in,
                refresh_expires_in: held.refresh_expires_in,
                granted_scopes: held.granted_scopes,
                account_hint: None,
            },
            requested_scopes: held.requested_scopes,
            issued_at: pending.issued_at,
            preferred_id: Some(pending.id),
            children: held
                .children
                .map(|list| list.into_iter().map(HeldChild::into_child).collect())
                .transpose()?,
            children_unlisted: held.children_unlisted,
        })
    }

    /// Forgets pending connections whose time to be confirmed has passed (their sealed
    /// tokens with them); returns how many.
    pub(super) async fn forget_unconfirmed(&self, now: Timestamp) -> Result<usize> {
        self.store
            .write(move |tx| Box::pin(async move { tx.purge_expired_pending(now).await }))
            .await
    }
}
