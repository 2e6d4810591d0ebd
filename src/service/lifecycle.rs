//! The token lifecycle: handing out fresh access tokens, refreshing them the provider's way,
//! announcing deadlines, and classifying failures so that a passing outage never costs an
//! account and a dead one is never handed out.
//!
//! The rules are pure functions of an account row and the time (`renewal`: `deadline`,
//! `status_at`, `next_look`, `decide`); `Tokens::renew` runs a refresh under the account's
//! lease.
//!
//! Single flight, decided on versions: every write of an account's tokens moves its
//! `token_version` on (a provider may answer a refresh with the very token it was given, so
//! the token itself proves nothing). Inside a process, callers queue on the account's async
//! mutex; across processes (the CLI, another server, another node), a refresh first takes
//! the account's lease in the database with a conditional update on the version it read, and
//! its result is written only if the tokens are still at that version. Whoever waited decides
//! again from the row it then reads (`take_lease`): a newer version is the refresh it waited
//! for; a token still due is renewed.
//!
//! The budget: the background renews only what the provider or the keep-alive forces
//! (`next_renewal`); access tokens are renewed when a caller asks for one about to expire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::json;

use super::children::{put_family, sync_children};
use super::events::{AccountEvent, EventDraft, Outbox};
use super::flow_apps::FlowApps;
use super::instances::Instances;
use super::keys::Vault;
use super::provider_calls::ProviderCalls;
use super::renewal::*;
use super::seal_contexts::{ACCESS, REFRESH, token_context};
use super::{Account, Dravo};
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::Keys;
use crate::domain::{AccessToken, AccountId, AccountStatus, Owner, Provider, Timestamp};
use crate::error::{Error, FailureClass, ProviderError, RefreshBackoff, RefreshFailure, Result};
use crate::metrics::{Metrics, RefreshOutcome};
use crate::providers::{self, Endpoints, Renewal, TokenRefresh, TokenSet};
use crate::store::{AccountRecord, Store};

/// An account's app credentials and opened tokens, for one call to its provider.
pub(super) struct AccountCredentials {
    /// Where the account's server is, when it is one its user named (a Mastodon instance);
    /// `None`: the provider's own endpoints.
    pub(super) endpoints: Option<Endpoints>,
    client_id: String,
    client_secret: crate::domain::ClientSecret,
    access_token: String,
    refresh_token: Option<String>,
    /// The app's own `User-Agent`, if it has one.
    pub(super) user_agent: Option<String>,
}

impl AccountCredentials {
    /// The endpoints to call for the account: its server's, else the provider's.
    pub(super) fn endpoints<'a>(
        &'a self,
        calls: &'a ProviderCalls,
        provider: Provider,
    ) -> &'a Endpoints {
        self.endpoints
            .as_ref()
            .unwrap_or_else(|| calls.endpoints(provider))
    }

    pub(super) fn as_refresh(&self) -> TokenRefresh<'_> {
        TokenRefresh {
            client_id: &self.client_id,
            client_secret: self.client_secret.expose(),
            access_token: &self.access_token,
            refresh_token: self.refresh_token.as_deref(),
        }
    }
}

/// One async mutex per account being refreshed in this process.
#[derive(Default)]
struct RefreshLocks(Mutex<HashMap<AccountId, Weak<tokio::sync::Mutex<()>>>>);

impl RefreshLocks {
    fn get(&self, id: &AccountId) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(lock) = map.get(id).and_then(Weak::upgrade) {
            return lock;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(id.clone(), Arc::downgrade(&lock));
        lock
    }
}

/// The outcome of a renewal attempt, as written.
enum Outcome {
    Renewed(TokenSet),
    Failed(ProviderError, FailureClass),
}

/// What a refresher found under the account's lock, before any call to the provider.
enum Turn {
    /// The lease is taken: renew the row.
    Leased(AccountRecord),
    /// No renewal is to be made (someone else renewed, the account is cooling down, …).
    Decided(AccountRecord, Decision),
}

/// The token lifecycle of every account: handing out access tokens, refreshing them under
/// the account's lock and lease, and the background refresher's work. It owns the refresh
/// locks of this process and the refresh policy (from `[refresh]`); it is handed the store,
/// the vault (sealing and opening tokens), the clock, the provider calls, the apps flows run
/// with (a refresh uses the account's app), the outbox (its events) and the metrics (its
/// outcomes).
pub(super) struct Tokens {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    clock: Arc<dyn Clock>,
    calls: Arc<ProviderCalls>,
    flow_apps: Arc<FlowApps>,
    /// The registrations of apps on the servers users name (an account there speaks with its
    /// app's registration).
    instances: Arc<Instances>,
    outbox: Arc<Outbox>,
    metrics: Metrics,
    /// Refreshes in flight in this process, one queue per account.
    locks: RefreshLocks,
}

impl Tokens {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        vault: Arc<Vault>,
        clock: Arc<dyn Clock>,
        calls: Arc<ProviderCalls>,
        flow_apps: Arc<FlowApps>,
        instances: Arc<Instances>,
        outbox: Arc<Outbox>,
        metrics: Metrics,
    ) -> Self {
        Tokens {
            config,
            store,
            vault,
            clock,
            calls,
            flow_apps,
            instances,
            outbox,
            metrics,
            locks: RefreshLocks::default(),
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// One of the owner's accounts as stored.
    pub(super) async fn account_record(
        &self,
        owner: &Owner,
        id: &AccountId,
    ) -> Result<AccountRecord> {
        self.store
            .get_account(owner, id)
            .await?
            .ok_or_else(|| Error::not_found(format!("no account with id {id}")))
    }

    pub(super) fn policy(&self) -> Policy {
        Policy::of(&self.config.refresh)
    }

    /// How long a refresh may hold an account: well past the provider call's own timeout.
    fn lease_seconds(&self) -> i64 {
        i64::try_from(self.config.providers.timeout_seconds)
            .unwrap_or(300)
            .saturating_mul(3)
            + 10
    }

    /// The account's access token, refreshed first when it expires within
    /// `refresh.skew_seconds` (or always, with `force`: then a refresh that fails or cannot
    /// run now is an error, never the old token). Never a token known to be dead. A Page
    /// answers its Page token and any other child its parent's token, once the parent's grant is
    /// known to be alive (and refreshed, when it is the parent's token that is used).
    pub async fn access_token(
        &self,
        owner: &Owner,
        id: &AccountId,
        force: bool,
    ) -> Result<AccessToken> {
        let trigger = if force {
            Trigger::Explicit
        } else {
            Trigger::Request
        };
        let row = self.account_record(owner, id).await?;
        let Some(parent_id) = &row.parent_id else {
            let row = self.fresh_row(row, trigger).await?;
            return Ok(AccessToken {
                access_token: self
                    .open_token(&row, ACCESS, &row.access_token_sealed)
                    .await?,
                token_type: "bearer",
                expires_at: row.expires_at,
                scopes: row.scopes.clone(),
            });
        };
        if !row.status.usable() {
            return Err(Error::NeedsReauth(needs_reauth_message(&row)));
        }
        let parent = self.account_record(owner, parent_id).await?;
        let parent = self.fresh_row(parent, trigger).await?;
        // Read again: the parent's refresh may have changed what the child follows.
        let row = self.account_record(owner, id).await?;
        if !row.status.usable() {
            return Err(Error::NeedsReauth(needs_reauth_message(&row)));
        }
        let (access_token, expires_at) = if row.kind.has_own_token() {
            (
                self.open_token(&row, ACCESS, &row.access_token_sealed)
                    .await?,
                row.expires_at,
            )
        } else {
            (
                self.open_token(&parent, ACCESS, &parent.access_token_sealed)
                    .await?,
                parent.expires_at,
            )
        };
        Ok(AccessToken {
            access_token,
            token_type: "bearer",
            expires_at,
            scopes: row.scopes.clone(),
        })
    }

    /// Refreshes the account now (where its provider can), reads its Pages or organizations
    /// again, and returns it. Refreshing a Page or an organization refreshes its user account.
    /// A refresh that fails is an error saying what the provider answered; one refused by the
    /// backoff after failures is `Error::RefreshBackoff`, and no call is made.
    pub async fn refresh_account(&self, owner: &Owner, id: &AccountId) -> Result<Account> {
        let row = self.account_record(owner, id).await?;
        let user = match &row.parent_id {
            None => row,
            Some(parent_id) => self.account_record(owner, parent_id).await?,
        };
        let renewal = providers::get(user.provider).renewal();
        let decision = decide(&user, renewal, self.now(), self.policy(), Trigger::Explicit);
        let user = match decision {
            // The token cannot be renewed now, but its Pages or organizations (and their
            // tokens) can be read again: that is the refresh, where the provider lists any.
            Decision::Unrenewable(why) => {
                if !self.relist_children(&user).await? {
                    return Err(Error::Conflict(why));
                }
                return self.account_record(owner, id).await.map(Account::from);
            }
            Decision::Renew => self.renew(user, Trigger::Explicit).await?,
            other => self.settle(user, other).await?,
        };
        self.relist_children(&user).await?;
        self.account_record(owner, id).await.map(Account::from)
    }

    /// The row with a token that is usable, renewing it if `decide` says so for `trigger`.
    async fn fresh_row(&self, row: AccountRecord, trigger: Trigger) -> Result<AccountRecord> {
        let renewal = providers::get(row.provider).renewal();
        match decide(&row, renewal, self.now(), self.policy(), trigger) {
            Decision::Renew => self.renew(row, trigger).await,
            other => self.settle(row, other).await,
        }
    }

    /// Acts on a decision that makes no call to the provider.
    async fn settle(&self, row: AccountRecord, decision: Decision) -> Result<AccountRecord> {
        match decision {
            Decision::UseStored => Ok(row),
            // Marked already: nothing to write.
            Decision::Dead(_) if !row.status.usable() => {
                Err(Error::NeedsReauth(needs_reauth_message(&row)))
            }
            Decision::Dead(reason) => {
                let row = self
                    .mark_needs_reauth(row, "token_expired", &reason)
                    .await?;
                Err(Error::NeedsReauth(needs_reauth_message(&row)))
            }
            Decision::CoolingDown(until) => {
                let now = self.now();
                Err(Error::RefreshBackoff(Box::new(RefreshBackoff {
                    account_id: row.id.to_string(),
                    failures: row.refresh_failures,
                    account_status: row.status.as_str(),
                    next_attempt_at: until,
                    retry_after_seconds: u64::try_from(until.unix() - now.unix())
                        .unwrap_or(0)
                        .max(1),
                })))
            }
            Decision::Unrenewable(why) => Err(Error::Conflict(why)),
            Decision::Renew => Err(Error::Internal(
                "a renewal was settled without a refresh".into(),
            )),
        }
    }

    /// Renews the account's tokens under its lock and lease, unless deciding again from the
    /// row found there says otherwise. Returns the stored row afterwards; an error when the
    /// renewal failed and the caller may not have the stored token (see `write_outcome`).
    pub(super) async fn renew(
        &self,
        seen: AccountRecord,
        trigger: Trigger,
    ) -> Result<AccountRecord> {
        let lock = self.locks.get(&seen.id);
        let _turn = lock.lock().await;
        let holder = format!("{}:{}", std::process::id(), jitter(i64::MAX - 1));
        let row = match self.take_lease(&seen, &holder, trigger).await? {
            Turn::Leased(row) => row,
            Turn::Decided(row, decision) => return self.settle(row, decision).await,
        };
        let outcome = self.call_refresh(&row).await;
        let outcome = match outcome {
            Ok(tokens) => Outcome::Renewed(tokens),
            Err(e) => {
                let class = classify(&e, providers::get(row.provider).renewal());
                Outcome::Failed(e, class)
            }
        };
        self.metrics.refresh(
            row.provider,
            match &outcome {
                Outcome::Renewed(_) => RefreshOutcome::Refreshed,
                Outcome::Failed(_, FailureClass::Definitive) => RefreshOutcome::NeedsReauth,
                Outcome::Failed(_, FailureClass::AppCredentials) => RefreshOutcome::AppCredentials,
                Outcome::Failed(_, FailureClass::Transient) => RefreshOutcome::Transient,
            },
        );
        self.write_outcome(row, holder, outcome, trigger).await
    }

    /// Decides again from the row as stored now, and takes the account's lease if that
    /// still says renew, waiting while another process's refresh holds it. Once the tokens'
    /// version differs from the one `seen` had, someone else renewed them after this caller
    /// looked, so the caller only needs a usable token (`Trigger::Request`'s rule): a waiter
    /// never renews again what another just renewed, even when the provider answered with
    /// the very same token.
    async fn take_lease(
        &self,
        seen: &AccountRecord,
        holder: &str,
        trigger: Trigger,
    ) -> Result<Turn> {
        let started = std::time::Instant::now();
        let max_wait = Duration::from_secs(u64::try_from(self.lease_seconds()).unwrap_or(60) + 1);
        let mut pause = Duration::from_millis(20);
        let renewal = providers::get(seen.provider).renewal();
        let policy = self.policy();
        loop {
            let now = self.now();
            let until = now.plus_seconds(self.lease_seconds());
            let (id, holder_owned, seen_version) =
                (seen.id.clone(), holder.to_owned(), seen.token_version);
            let turn =
                self.store
                    .write(move |tx| {
                        Box::pin(async move {
                            let current = tx.account_by_id(&id).await?.ok_or_else(|| {
                                Error::not_found(format!("no account with id {id}"))
                            })?;
                            let trigger = if current.token_version == seen_version {
                                trigger
                            } else {
                                Trigger::Request
                            };
                            match decide(&current, renewal, now, policy, trigger) {
                                Decision::Renew => {
                                    let taken = tx
                                        .take_refresh_lease(
                                            &id,
                                            current.token_version,
                                            &holder_owned,
                                            now,
                                            until,
                                        )
                                        .await?;
                                    Ok(taken.then_some(Turn::Leased(current)))
                                }
                                other => Ok(Some(Turn::Decided(current, other))),
                            }
                        })
                    })
                    .await?;
            if let Some(turn) = turn {
                return Ok(turn);
            }
            if started.elapsed() > max_wait {
                return Err(Error::Provider(ProviderError::Unavailable(
                    "another refresh of this account is still running".into(),
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// Calls the provider to renew the row's tokens with its app's credentials.
    async fn call_refresh(&self, row: &AccountRecord) -> Result<TokenSet, ProviderError> {
        let creds = self.account_credentials(row).await.map_err(|e| match e {
            Error::NotFound(_) | Error::NoDefaultApp(_) => ProviderError::Rejected {
                code: "invalid_client".into(),
                description: Some(format!("the account's app is gone: {e}")),
            },
            other => ProviderError::Unavailable(other.to_string()),
        })?;
        providers::get(row.provider)
            .refresh(
                &self
                    .calls
                    .http_for(row.provider, creds.user_agent.as_deref()),
                creds.endpoints(&self.calls, row.provider),
                &creds.as_refresh(),
            )
            .await
    }

    /// The account's app credentials and its opened tokens: what a refresh or a revocation
    /// sends to the provider.
    pub(super) async fn account_credentials(
        &self,
        row: &AccountRecord,
    ) -> Result<AccountCredentials> {
        let app = self
            .flow_apps
            .flow_app(&row.owner, row.provider, row.oauth_app_id.as_ref())
            .await?;
        let (endpoints, client_id, client_secret) = match (&row.server, &app.app_id) {
            (Some(server), Some(app_id)) => {
                let client = self.instances.registered(app_id, server).await?;
                (
                    Some(client.endpoints),
                    client.client_id,
                    client.client_secret,
                )
            }
            _ => {
                let secret = self.flow_apps.flow_secret(&app).await?;
                (None, app.client_id, secret)
            }
        };
        let access_token = self
            .open_token(row, ACCESS, &row.access_token_sealed)
            .await?;
        let refresh_token = match &row.refresh_token_sealed {
            Some(sealed) => Some(self.open_token(row, REFRESH, sealed).await?),
            None => None,
        };
        Ok(AccountCredentials {
            endpoints,
            client_id,
            client_secret,
            access_token,
            refresh_token,
            user_agent: app.user_agent,
        })
    }

    /// Writes a renewal's outcome, with its events, if the stored tokens are still at the
    /// version it renewed; releases the lease either way. A failure is an error for the
    /// caller when the grant is gone, when the refresh was asked for explicitly, or when the
    /// stored token has expired; a request whose token still works gets that token.
    async fn write_outcome(
        &self,
        from: AccountRecord,
        holder: String,
        outcome: Outcome,
        trigger: Trigger,
    ) -> Result<AccountRecord> {
        let now = self.now();
        let policy = self.policy();
        let (vault, outbox) = (self.vault.clone(), self.outbox.clone());
        let renewal = providers::get(from.provider).renewal();
        let (row, error) = self
            .store
            .write(move |tx| Box::pin(async move {
                let current = tx
                    .account_by_id(&from.id).await?
                    .ok_or_else(|| Error::not_found(format!("no account with id {}", from.id)))?;
                tx.release_refresh_lease(&from.id, &holder).await?;
                if current.token_version != from.token_version {
                    // Another writer (a reconnect) replaced the tokens meanwhile: keep theirs.
                    return Ok((current, None));
                }
                let mut events = Vec::new();
                let mut row = current.clone();
                let error = match outcome {
                    Outcome::Renewed(tokens) => {
                        let keys = vault.sealing_keys(tx).await?;
                        let expiring =
                            apply_tokens(&keys, &mut row, &tokens, renewal, now, policy);
                        events.push(EventDraft::new(
                            AccountEvent::Refreshed,
                            json!({
                                "fingerprint": fingerprint(tokens.access_token.expose_secret()),
                                "expires_at": row.expires_at.map(|t| t.to_string()),
                                "trigger": trigger.as_str(),
                            }),
                        ));
                        if current.refresh_failures > 0 {
                            events.push(EventDraft::new(
                                AccountEvent::Recovered,
                                json!({"via": "refresh", "after_failures": current.refresh_failures}),
                            ));
                        }
                        events.extend(expiring);
                        None
                    }
                    Outcome::Failed(err, class) => {
                        let attempt = current.refresh_failures + 1;
                        let detail = |next: Option<Timestamp>| {
                            json!({
                                "error": err.provider_code(),
                                "error_description": err.provider_description(),
                                "attempt": attempt,
                                "next_attempt_at": next.map(|t| t.to_string()),
                                "blame": match class {
                                    FailureClass::AppCredentials => "app",
                                    _ => "account",
                                },
                                "failure": class.as_str(),
                                "trigger": trigger.as_str(),
                            })
                        };
                        match class {
                            FailureClass::Definitive => {
                                row.status = AccountStatus::NeedsReauth;
                                row.status_reason = Some(format!(
                                    "{}: {}",
                                    err.code(),
                                    err.description()
                                ));
                                row.next_refresh_at = None;
                                events.push(EventDraft::new(AccountEvent::RefreshFailed, detail(None)));
                                events.push(EventDraft::new(
                                    AccountEvent::NeedsReauth,
                                    json!({"reason": row.status_reason}),
                                ));
                            }
                            FailureClass::AppCredentials | FailureClass::Transient => {
                                let wait = if class == FailureClass::AppCredentials {
                                    APP_COOLDOWN_SECONDS
                                } else {
                                    let retry_after = match &err {
                                        ProviderError::RateLimited { retry_after } => *retry_after,
                                        _ => None,
                                    };
                                    backoff_seconds(attempt, retry_after)
                                };
                                let next = now.plus_seconds(wait + jitter(wait / 5));
                                row.refresh_failures = attempt;
                                row.next_refresh_at = Some(next);
                                events.push(EventDraft::new(
                                    AccountEvent::RefreshFailed,
                                    detail(Some(next)),
                                ));
                                if class == FailureClass::AppCredentials {
                                    outbox.app_credentials_refused(tx, &row, &err, now).await?;
                                }
                            }
                        }
                        Some((err, class))
                    }
                };
                row.updated_at = now;
                put_family(tx, &row, now).await?;
                for event in events {
                    outbox.record_event(tx, &row, event, now).await?;
                }
                Ok((row, error))
            }))
            .await?;
        let Some((error, class)) = error else {
            return Ok(row);
        };
        let still_works = row.status.usable() && row.expires_at.is_none_or(|e| e > now);
        if still_works && trigger == Trigger::Request {
            // A failed renewal of a token that still works: hand out the working one.
            return Ok(row);
        }
        Err(Error::RefreshFailed(Box::new(RefreshFailure {
            account_id: row.id.to_string(),
            error,
            class,
            account_status: row.status.as_str(),
            next_attempt_at: row
                .next_refresh_at
                .filter(|_| class != FailureClass::Definitive),
        })))
    }

    /// Marks the account as needing a new consent (its deadline passed), with its events.
    async fn mark_needs_reauth(
        &self,
        row: AccountRecord,
        code: &'static str,
        why: &str,
    ) -> Result<AccountRecord> {
        let now = self.now();
        let outbox = self.outbox.clone();
        let why = why.to_owned();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    let Some(mut current) = tx.account_by_id(&row.id).await? else {
                        return Err(Error::not_found(format!("no account with id {}", row.id)));
                    };
                    if current.status == AccountStatus::NeedsReauth {
                        return Ok(current);
                    }
                    current.status = AccountStatus::NeedsReauth;
                    current.status_reason = Some(format!("{code}: {why}"));
                    current.next_refresh_at = None;
                    current.updated_at = now;
                    put_family(tx, &current, now).await?;
                    outbox
                        .record_event(
                            tx,
                            &current,
                            EventDraft::new(
                                AccountEvent::NeedsReauth,
                                json!({"reason": current.status_reason}),
                            ),
                            now,
                        )
                        .await?;
                    Ok(current)
                })
            })
            .await
    }

    /// Reads the provider's list of the user's Pages or organizations again and stores it.
    /// False when the provider lists none for this account (no such list, or not the scopes).
    pub(super) async fn relist_children(&self, parent: &AccountRecord) -> Result<bool> {
        let token = self
            .open_token(parent, ACCESS, &parent.access_token_sealed)
            .await?;
        // The parent's app names the user agent; an app gone meanwhile leaves the default.
        let user_agent = match self
            .flow_apps
            .flow_app(&parent.owner, parent.provider, parent.oauth_app_id.as_ref())
            .await
        {
            Ok(app) => app.user_agent,
            Err(Error::NotFound(_) | Error::NoDefaultApp(_)) => None,
            Err(other) => return Err(other),
        };
        let listed = providers::get(parent.provider)
            .list_children(
                &self.calls.http_for(parent.provider, user_agent.as_deref()),
                self.calls.endpoints(parent.provider),
                &token,
                &parent.scopes,
            )
            .await
            .map_err(|error| match error {
                // The app is refused an API it lists with: the account is not to blame, and
                // says so as a refresh that failed for the app does.
                ProviderError::AppRefused { .. } => {
                    Error::RefreshFailed(Box::new(RefreshFailure {
                        account_id: parent.id.to_string(),
                        error,
                        class: FailureClass::AppCredentials,
                        account_status: parent.status.as_str(),
                        next_attempt_at: None,
                    }))
                }
                other => other.into(),
            })?;
        let Some(listed) = listed else {
            return Ok(false);
        };
        let (now, id) = (self.now(), parent.id.clone());
        let (vault, outbox) = (self.vault.clone(), self.outbox.clone());
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    let parent = tx
                        .account_by_id(&id)
                        .await?
                        .ok_or_else(|| Error::not_found(format!("no account with id {id}")))?;
                    sync_children(&vault, &outbox, tx, &parent, &listed, now).await
                })
            })
            .await?;
        Ok(true)
    }

    /// Any account by id (the refresher's reads, and re-reads after waiting).
    async fn row_by_id(&self, id: &AccountId) -> Result<AccountRecord> {
        self.store
            .account_by_id(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("no account with id {id}")))
    }

    /// Opens one of the row's sealed tokens.
    pub(super) async fn open_token(
        &self,
        row: &AccountRecord,
        kind: &'static str,
        sealed: &[u8],
    ) -> Result<String> {
        let plain = self
            .vault
            .open_sealed(
                &token_context(
                    kind,
                    row.id.as_str(),
                    row.owner.as_str(),
                    row.provider,
                    &row.provider_account_id,
                ),
                sealed,
            )
            .await?;
        String::from_utf8(plain).map_err(|_| Error::Unseal("a sealed token is not UTF-8".into()))
    }

    /// The background refresher's work on one due account: renew it when the provider or
    /// the keep-alive forces it (`decide`'s `Background` rule), warn of its deadline, or mark
    /// it dead, and schedule the next look.
    pub async fn tend_account(&self, id: &AccountId) -> Result<()> {
        let row = self.row_by_id(id).await?;
        let now = self.now();
        let policy = self.policy();
        let renewal = providers::get(row.provider).renewal();
        if !row.status.usable() {
            return self.reschedule(row, None).await;
        }
        if row.reauth_by.is_some_and(|by| by <= now) {
            self.mark_needs_reauth(
                row,
                "consent_ended",
                "the deadline for a new consent passed",
            )
            .await?;
            return Ok(());
        }
        match decide(&row, renewal, now, policy, Trigger::Background) {
            Decision::Renew => {
                // A failure is recorded on the row; the refresher has no caller to tell.
                let _ = self.renew(row, Trigger::Background).await;
                return Ok(());
            }
            Decision::Dead(reason) => {
                self.mark_needs_reauth(row, "token_expired", &reason)
                    .await?;
                return Ok(());
            }
            Decision::UseStored | Decision::CoolingDown(_) | Decision::Unrenewable(_) => {}
        }
        if let Some(by) = row.reauth_by
            && by.unix() - now.unix() <= policy.warn_seconds
            && row.warned_for != Some(by)
        {
            return self.warn_expiring(row, by).await;
        }
        let next = next_look(&row, renewal, policy, jitter(KEEPALIVE_JITTER_SECONDS));
        self.reschedule(row, next).await
    }

    /// Records the `expiring` warning for the deadline `by`, once.
    async fn warn_expiring(&self, row: AccountRecord, by: Timestamp) -> Result<()> {
        let now = self.now();
        let policy = self.policy();
        let outbox = self.outbox.clone();
        let renewal = providers::get(row.provider).renewal();
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    let Some(mut current) = tx.account_by_id(&row.id).await? else {
                        return Ok(());
                    };
                    if current.warned_for == Some(by) || !current.status.usable() {
                        return Ok(());
                    }
                    current.status = AccountStatus::Expiring;
                    current.status_reason = Some(format!("a new consent is needed by {by}"));
                    current.warned_for = Some(by);
                    current.next_refresh_at = next_look(&current, renewal, policy, 0);
                    current.updated_at = now;
                    put_family(tx, &current, now).await?;
                    outbox
                        .record_event(tx, &current, expiring_event(by), now)
                        .await
                })
            })
            .await
    }

    /// Sets when the refresher next looks at the account.
    async fn reschedule(&self, row: AccountRecord, next: Option<Timestamp>) -> Result<()> {
        if row.next_refresh_at == next {
            return Ok(());
        }
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    let Some(mut current) = tx.account_by_id(&row.id).await? else {
                        return Ok(());
                    };
                    if current.token_version != row.token_version {
                        // Renewed meanwhile: the renewal scheduled its own next look.
                        return Ok(());
                    }
                    current.next_refresh_at = next;
                    tx.put_account(&current).await
                })
            })
            .await
    }

    /// One pass of the background refresher: every account due by now is renewed, warned
    /// about or marked, at most `refresh.concurrency` at once. Returns how many it tended.
    pub(super) async fn tend_due_accounts(self: &Arc<Self>) -> Result<usize> {
        let due = self.store.due_accounts(self.now(), DUE_BATCH).await?;
        let limit = usize::try_from(self.config.refresh.concurrency).unwrap_or(4);
        let gate = Arc::new(tokio::sync::Semaphore::new(limit.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for id in &due {
            let (this, id, gate) = (self.clone(), id.clone(), gate.clone());
            tasks.spawn(async move {
                let _slot = gate.acquire_owned().await;
                if let Err(e) = this.tend_account(&id).await {
                    tracing::warn!(account = %id, error = %e, "the refresher could not tend an account");
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        Ok(due.len())
    }
}

/// How many due accounts one pass of the refresher takes.
const DUE_BATCH: usize = 200;

/// The front's side of the lifecycle: it only delegates to `Tokens`, and runs the refresher
/// (which also forgets unconfirmed connections, the connect flow's).
impl Dravo {
    /// The account's access token, refreshed first when it expires within
    /// `refresh.skew_seconds` (see `Tokens::access_token`).
    pub async fn access_token(
        &self,
        owner: &Owner,
        id: &AccountId,
        force: bool,
    ) -> Result<AccessToken> {
        self.0.tokens.access_token(owner, id, force).await
    }

    /// Refreshes the account now (see `Tokens::refresh_account`).
    pub async fn refresh_account(&self, owner: &Owner, id: &AccountId) -> Result<Account> {
        self.0.tokens.refresh_account(owner, id).await
    }

    /// The background refresher's work on one due account (see `Tokens::tend_account`).
    pub async fn tend_account(&self, id: &AccountId) -> Result<()> {
        self.0.tokens.tend_account(id).await
    }

    /// One pass of the background refresher (see `Tokens::tend_due_accounts`).
    pub async fn tend_due_accounts(&self) -> Result<usize> {
        self.0.tokens.tend_due_accounts().await
    }

    /// The background refresher inside `dravo serve`: a pass every
    /// `refresh.interval_seconds` (sooner while passes come back full), until `stop`. With
    /// `connect.require_confirmation` on, each pass also forgets unconfirmed connections.
    pub async fn run_refresher(self, stop: tokio_util::sync::CancellationToken) {
        let interval = Duration::from_secs(self.0.config.refresh.interval_seconds);
        loop {
            if self.requires_confirmation()
                && let Err(e) = self.forget_unconfirmed(self.now()).await
            {
                tracing::warn!(error = %e, "could not forget unconfirmed connections");
            }
            let busy = match self.tend_due_accounts().await {
                Ok(n) => n >= DUE_BATCH,
                Err(e) => {
                    tracing::warn!(error = %e, "a refresher pass failed");
                    false
                }
            };
            let pause = if busy {
                Duration::from_millis(100)
            } else {
                // Jitter, so that servers sharing a database do not march in step.
                interval + Duration::from_millis(u64::try_from(jitter(1000)).unwrap_or(0))
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// The reason an active account gives when the user did not grant every requested scope.
pub(super) const SCOPES_NOT_GRANTED: &str = "scopes_not_granted";

/// Sets the row's tokens and timings from a provider's answer (a connect or a refresh),
/// and moves its tokens to a new version: a missing refresh token keeps the stored one
/// unless the provider rotates them (and a missing `refresh_token_expires_in` keeps the
/// known deadline likewise), a missing `expires_in` gets the provider's assumed lifetime.
/// Returns the `expiring` event when the answer leaves the account expiring for a
/// deadline not yet announced: the caller records it in the same transaction.
#[must_use]
pub(super) fn apply_tokens(
    keys: &Keys,
    row: &mut AccountRecord,
    tokens: &TokenSet,
    renewal: Renewal,
    now: Timestamp,
    policy: Policy,
) -> Option<EventDraft> {
    let provider = providers::get(row.provider);
    let sealer = keys.sealer();
    let context = |kind| {
        token_context(
            kind,
            row.id.as_str(),
            row.owner.as_str(),
            row.provider,
            &row.provider_account_id,
        )
    };
    row.access_token_sealed = sealer.seal(
        &context(ACCESS),
        tokens.access_token.expose_secret().as_bytes(),
    );
    match &tokens.refresh_token {
        Some(t) => {
            row.refresh_token_sealed =
                Some(sealer.seal(&context(REFRESH), t.expose_secret().as_bytes()));
            let rotates = matches!(renewal, Renewal::RefreshToken { rotates: true, .. });
            row.refresh_expires_at = match tokens.refresh_expires_in.filter(|s| *s > 0) {
                Some(s) => Some(now.plus_seconds(s)),
                // The same refresh token lives on: so does its known deadline. A rotated
                // one is a new token whose life the provider did not tell.
                None if !rotates => row.refresh_expires_at,
                None => None,
            };
        }
        None if matches!(renewal, Renewal::RefreshToken { rotates: true, .. }) => {
            // The old one was spent by this very refresh: the account lives until this
            // access token expires (`deadline` below then says so).
            row.refresh_token_sealed = None;
            row.refresh_expires_at = None;
        }
        None => {}
    }
    let lifetime = tokens
        .expires_in
        .filter(|s| *s > 0)
        .or_else(|| provider.assumed_lifetime_seconds());
    row.expires_at = lifetime.map(|seconds| now.plus_seconds(seconds));
    row.token_issued_at = Some(now);
    row.reauth_by = deadline(
        renewal,
        row.refresh_token_sealed.is_some(),
        row.expires_at,
        row.refresh_expires_at,
    );
    let (status, reason) = status_at(row.reauth_by, now, policy);
    row.status = status;
    // A grant without some requested scopes stays so until a new consent: a refresh keeps
    // saying so.
    row.status_reason = reason.or_else(|| {
        row.status_reason
            .take()
            .filter(|r| r.starts_with(SCOPES_NOT_GRANTED))
    });
    row.refresh_failures = 0;
    row.token_version += 1;
    let expiring = match row.reauth_by {
        Some(by) if status == AccountStatus::Expiring && row.warned_for != Some(by) => {
            row.warned_for = Some(by);
            Some(expiring_event(by))
        }
        _ => None,
    };
    row.next_refresh_at = next_look(row, renewal, policy, jitter(KEEPALIVE_JITTER_SECONDS));
    expiring
}

/// The `expiring` event for the deadline `by`.
fn expiring_event(by: Timestamp) -> EventDraft {
    EventDraft::new(AccountEvent::Expiring, json!({"reauth_by": by.to_string()}))
}

/// The 409 message for an account that needs a new consent.
fn needs_reauth_message(row: &AccountRecord) -> String {
    match &row.status_reason {
        Some(reason) => format!("account {} needs to be connected again ({reason})", row.id),
        None => format!("account {} needs to be connected again", row.id),
    }
}
