//! The token lifecycle: handing out fresh access tokens, refreshing them the provider's way,
//! announcing deadlines, and classifying failures so that a passing outage never costs an
//! account and a dead one is never handed out.
//!
//! The rules are pure functions of an account row and the time (`deadline`, `status_at`,
//! `next_look`, `decide`); `Tokens::renew` runs a refresh under the account's lease.
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

use rand::Rng;
use secrecy::ExposeSecret;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::children::{put_family, sync_children};
use super::events::{AccountEvent, EventDraft, Outbox};
use super::flow_apps::FlowApps;
use super::keys::Vault;
use super::provider_calls::ProviderCalls;
use super::seal_contexts::{ACCESS, REFRESH, token_context};
use super::{Account, Dravo};
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::Keys;
use crate::domain::{AccessToken, AccountId, AccountKind, AccountStatus, Owner, Timestamp};
use crate::error::{Error, FailureClass, ProviderError, RefreshBackoff, RefreshFailure, Result};
use crate::metrics::{Metrics, RefreshOutcome};
use crate::providers::{self, Renewal, TokenRefresh, TokenSet};
use crate::store::{AccountRecord, Store};

/// Backoff after transient failures: 1 minute, doubling, at most an hour. With jitter this
/// keeps a failing account to a handful of provider calls in its first hour and one an hour
/// after that.
const BACKOFF_FIRST_SECONDS: i64 = 60;
const BACKOFF_MAX_SECONDS: i64 = 3600;
/// After the provider refused the app's credentials, its accounts wait this long.
const APP_COOLDOWN_SECONDS: i64 = 3600;
/// Instagram-style renewals happen this long before expiry (well before, as they can only
/// run on a live token); so do renewals of a refresh token that dies unused.
const SELF_RENEW_LEAD_SECONDS: i64 = 10 * 86_400;
/// Renewals the background schedules are spread over up to this long (at most a tenth of
/// their period), so that accounts connected or renewed together do not stay in step.
const KEEPALIVE_JITTER_SECONDS: i64 = 3600;

/// What started a refresh (recorded with its events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// An access-token request found the token about to expire.
    Request,
    /// Someone asked for a refresh (`POST …/refresh`, `dravo accounts refresh`,
    /// `force_refresh=true`).
    Explicit,
    /// The background refresher.
    Background,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Request => "request",
            Trigger::Explicit => "explicit",
            Trigger::Background => "background",
        }
    }
}

/// The timing settings the rules use.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub skew_seconds: i64,
    pub warn_seconds: i64,
    /// The background renews an account that had no renewal for this long (0: never).
    pub keepalive_seconds: i64,
}

impl Policy {
    /// The rules' settings from `[refresh]`.
    pub fn of(r: &crate::config::RefreshConfig) -> Policy {
        let seconds = |n: u64, unit: u64| i64::try_from(n.saturating_mul(unit)).unwrap_or(i64::MAX);
        Policy {
            skew_seconds: seconds(r.skew_seconds, 1),
            warn_seconds: seconds(r.warn_days, 86_400),
            keepalive_seconds: seconds(r.keepalive_hours, 3600),
        }
    }
}

/// The moment after which only a new consent helps, if one is known: the token's own expiry
/// when nothing renews it (Facebook, or no refresh token), else the refresh token's expiry.
pub fn deadline(
    renewal: Renewal,
    has_refresh_token: bool,
    expires_at: Option<Timestamp>,
    refresh_expires_at: Option<Timestamp>,
) -> Option<Timestamp> {
    match renewal {
        Renewal::Never => expires_at,
        Renewal::RefreshToken { .. } if !has_refresh_token => expires_at,
        Renewal::RefreshToken { .. } => refresh_expires_at,
        Renewal::AccessToken { .. } => None,
    }
}

/// `active`, or `expiring` when the deadline is within the warning window.
pub fn status_at(
    reauth_by: Option<Timestamp>,
    now: Timestamp,
    policy: Policy,
) -> (AccountStatus, Option<String>) {
    match reauth_by {
        Some(by) if by.unix() - now.unix() <= policy.warn_seconds => (
            AccountStatus::Expiring,
            Some(format!("a new consent is needed by {by}")),
        ),
        _ => (AccountStatus::Active, None),
    }
}

/// When a renewal may run: `None` when the account cannot be renewed now.
fn renewable_from(renewal: Renewal, row: &AccountRecord) -> Option<Timestamp> {
    match renewal {
        Renewal::Never => None,
        Renewal::RefreshToken { .. } => row.refresh_token_sealed.as_ref().map(|_| row.created_at),
        Renewal::AccessToken { min_age_seconds } => {
            Some(last_renewal(row).plus_seconds(min_age_seconds))
        }
    }
}

/// When the account's tokens were last obtained from the provider.
fn last_renewal(row: &AccountRecord) -> Timestamp {
    row.token_issued_at.unwrap_or(row.updated_at)
}

/// When the background renews the account, if ever. Never to keep the access token fresh (a
/// caller's request renews it within `skew_seconds` of its expiry); only when something else
/// forces it: a deadline the provider enforces on an unrenewed token (Instagram's 60 days), a
/// refresh token that dies unused, or the keep-alive, which proves the consent still stands.
/// `jitter_seconds` (at most a tenth of the time since the last renewal) only ever delays it,
/// so accounts renewed together drift apart and renewals never come closer than the rules.
pub fn next_renewal(
    row: &AccountRecord,
    renewal: Renewal,
    policy: Policy,
    jitter_seconds: i64,
) -> Option<Timestamp> {
    let from = renewable_from(renewal, row)?;
    let last = last_renewal(row);
    let mut times = Vec::with_capacity(2);
    if policy.keepalive_seconds > 0 {
        times.push(last.plus_seconds(policy.keepalive_seconds));
    }
    match renewal {
        Renewal::AccessToken { .. } => {
            times.extend(
                row.expires_at
                    .map(|e| e.plus_seconds(-SELF_RENEW_LEAD_SECONDS)),
            );
        }
        Renewal::RefreshToken {
            dies_unused_after: Some(idle),
            ..
        } => times.push(last.plus_seconds(idle - SELF_RENEW_LEAD_SECONDS.min(idle / 2))),
        Renewal::RefreshToken { .. } | Renewal::Never => {}
    }
    let base = times.into_iter().min()?;
    let spread = jitter_seconds.clamp(0, ((base.unix() - last.unix()) / 10).max(0));
    Some(base.plus_seconds(spread).max(from))
}

/// When the background refresher should next look at the account: its next renewal, its
/// warning, its deadline, whichever comes first. `None` once it needs re-authorization.
pub fn next_look(
    row: &AccountRecord,
    renewal: Renewal,
    policy: Policy,
    jitter_seconds: i64,
) -> Option<Timestamp> {
    if !row.status.usable() {
        return None;
    }
    let mut times = Vec::with_capacity(3);
    times.extend(next_renewal(row, renewal, policy, jitter_seconds));
    if let Some(by) = row.reauth_by {
        if row.warned_for != Some(by) {
            times.push(by.plus_seconds(-policy.warn_seconds));
        }
        times.push(by);
    }
    times.into_iter().min()
}

/// What to do with a request for the account's token, an explicit refresh, or the
/// background's look at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Hand out the stored token.
    UseStored,
    /// Renew first.
    Renew,
    /// The stored token is dead and cannot be renewed: the account needs a new consent.
    Dead(String),
    /// Renewal keeps failing and the next try is not before this moment: for a request, the
    /// stored token has expired; for an explicit refresh, none is made.
    CoolingDown(Timestamp),
    /// An explicit refresh the provider cannot make now (it offers none, or not yet); the
    /// stored token still works. Says why.
    Unrenewable(String),
}

/// Why the provider cannot renew the account's token now, and until when it works.
fn unrenewable_reason(
    row: &AccountRecord,
    renewal: Renewal,
    renewable_at: Option<Timestamp>,
) -> String {
    let valid = row
        .expires_at
        .map(|e| format!("; its token is valid until {e}"))
        .unwrap_or_default();
    match (renewal, renewable_at) {
        (Renewal::AccessToken { .. }, Some(at)) => format!(
            "{} renews a token only once it is old enough: account {}'s can be renewed from {at}{valid}",
            row.provider, row.id
        ),
        (Renewal::RefreshToken { .. }, _) => format!(
            "account {} has no refresh token (the provider issued none), so it cannot be refreshed{valid}, and a new consent is needed by then",
            row.id
        ),
        _ => format!(
            "{} offers no refresh: account {}'s token cannot be renewed{valid}, and a new consent is needed by then",
            row.provider, row.id
        ),
    }
}

/// The one rule: what `trigger` wants of the account `row` at `now`.
/// - `Request`: a token good for at least `skew_seconds`, renewed only when it is not.
/// - `Explicit`: a renewal now (none during the backoff after failures).
/// - `Background`: a renewal when `next_renewal` says it is due.
pub fn decide(
    row: &AccountRecord,
    renewal: Renewal,
    now: Timestamp,
    policy: Policy,
    trigger: Trigger,
) -> Decision {
    if !row.status.usable() {
        return Decision::Dead(
            row.status_reason
                .clone()
                .unwrap_or_else(|| "the account needs a new consent".into()),
        );
    }
    if let Some(by) = row.reauth_by.filter(|by| *by <= now) {
        return Decision::Dead(format!("the consent ended at {by}"));
    }
    let expired = row.expires_at.is_some_and(|e| e <= now);
    let due = match trigger {
        Trigger::Explicit => true,
        Trigger::Request => row
            .expires_at
            .is_some_and(|e| e.unix() - now.unix() <= policy.skew_seconds),
        Trigger::Background => next_renewal(row, renewal, policy, 0).is_some_and(|t| t <= now),
    };
    if !due {
        return Decision::UseStored;
    }
    let renewable_at = renewable_from(renewal, row);
    if renewable_at.is_none_or(|from| from > now) {
        return if expired {
            Decision::Dead("the access token expired and the provider offers no refresh".into())
        } else if trigger == Trigger::Explicit {
            Decision::Unrenewable(unrenewable_reason(row, renewal, renewable_at))
        } else {
            Decision::UseStored
        };
    }
    let cooling = row.refresh_failures > 0 && row.next_refresh_at.is_some_and(|t| t > now);
    match (cooling, expired || trigger == Trigger::Explicit) {
        (true, true) => Decision::CoolingDown(row.next_refresh_at.unwrap_or(now)),
        (true, false) => Decision::UseStored,
        (false, _) => Decision::Renew,
    }
}

/// Seconds to wait after the `attempt`-th transient failure in a row, before jitter.
pub fn backoff_seconds(attempt: i64, retry_after: Option<u64>) -> i64 {
    let exp = BACKOFF_FIRST_SECONDS.saturating_mul(1 << (attempt - 1).clamp(0, 16));
    let base = exp.min(BACKOFF_MAX_SECONDS);
    match retry_after {
        Some(s) => base.max(i64::try_from(s).unwrap_or(i64::MAX).min(86_400)),
        None => base,
    }
}

pub fn classify(err: &ProviderError, renewal: Renewal) -> FailureClass {
    match err {
        ProviderError::Rejected { code, .. } => match code.as_str() {
            "invalid_client" | "unauthorized_client" | "unsupported_grant_type" => {
                FailureClass::AppCredentials
            }
            "invalid_grant" | "invalid_scope" => FailureClass::Definitive,
            // X refuses an old refresh token with `invalid_request`; the token refused here
            // is the latest one stored, so the refusal is final.
            "invalid_request" if matches!(renewal, Renewal::RefreshToken { rotates: true, .. }) => {
                FailureClass::Definitive
            }
            _ => FailureClass::Transient,
        },
        ProviderError::Unavailable(_)
        | ProviderError::Failing { .. }
        | ProviderError::Malformed(_)
        | ProviderError::RateLimited { .. } => FailureClass::Transient,
    }
}

/// The first 8 hex digits of the token's SHA-256: enough to tell tokens apart in a log,
/// useless to an attacker.
pub fn fingerprint(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

fn jitter(max_seconds: i64) -> i64 {
    if max_seconds <= 0 {
        0
    } else {
        rand::rng().random_range(0..=max_seconds)
    }
}

/// An account's app credentials and opened tokens, for one call to its provider.
pub(super) struct AccountCredentials {
    client_id: String,
    client_secret: crate::domain::ClientSecret,
    access_token: String,
    refresh_token: Option<String>,
}

impl AccountCredentials {
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
    /// answers its Page token and an organization its member's, once the parent's grant is
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
        let (access_token, expires_at) = match row.kind {
            AccountKind::Organization => (
                self.open_token(&parent, ACCESS, &parent.access_token_sealed)
                    .await?,
                parent.expires_at,
            ),
            _ => (
                self.open_token(&row, ACCESS, &row.access_token_sealed)
                    .await?,
                row.expires_at,
            ),
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
                self.calls.http(),
                self.calls.endpoints(row.provider),
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
        let client_secret = self.flow_apps.flow_secret(&app).await?;
        let access_token = self
            .open_token(row, ACCESS, &row.access_token_sealed)
            .await?;
        let refresh_token = match &row.refresh_token_sealed {
            Some(sealed) => Some(self.open_token(row, REFRESH, sealed).await?),
            None => None,
        };
        Ok(AccountCredentials {
            client_id: app.client_id,
            client_secret,
            access_token,
            refresh_token,
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
        let listed = providers::get(parent.provider)
            .list_children(
                self.calls.http(),
                self.calls.endpoints(parent.provider),
                &token,
                &parent.scopes,
            )
            .await?;
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
        .unwrap_or_else(|| provider.assumed_lifetime_seconds());
    row.expires_at = Some(now.plus_seconds(lifetime));
    row.token_issued_at = Some(now);
    row.reauth_by = deadline(
        renewal,
        row.refresh_token_sealed.is_some(),
        row.expires_at,
        row.refresh_expires_at,
    );
    let (status, reason) = status_at(row.reauth_by, now, policy);
    row.status = status;
    row.status_reason = reason;
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

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        skew_seconds: 300,
        warn_seconds: 7 * 86_400,
        keepalive_seconds: 86_400,
    };
    /// Without the keep-alive: what the provider's own rules demand.
    const NO_KEEPALIVE: Policy = Policy {
        keepalive_seconds: 0,
        ..POLICY
    };
    use Trigger::{Background, Explicit, Request};

    fn row(expires_in: i64, refresh: bool) -> AccountRecord {
        AccountRecord {
            id: "acc_x".into(),
            owner: "me".into(),
            provider: "x".parse().unwrap(),
            oauth_app_id: None,
            provider_account_id: "1".into(),
            username: None,
            display_name: None,
            scopes: vec![],
            status: AccountStatus::Active,
            status_reason: None,
            access_token_sealed: vec![1],
            refresh_token_sealed: refresh.then(|| vec![2]),
            expires_at: Some(Timestamp::from_unix(1_000_000 + expires_in)),
            refresh_expires_at: None,
            reauth_by: None,
            token_issued_at: Some(Timestamp::from_unix(1_000_000 - 3600)),
            next_refresh_at: None,
            refresh_failures: 0,
            warned_for: None,
            created_at: Timestamp::from_unix(0),
            updated_at: Timestamp::from_unix(0),
            kind: crate::domain::AccountKind::User,
            parent_id: None,
            tasks: None,
            token_version: 0,
        }
    }

    const NOW: Timestamp = Timestamp::from_unix(1_000_000);
    const ROTATING: Renewal = Renewal::RefreshToken {
        rotates: true,
        dies_unused_after: None,
    };

    #[test]
    fn a_fresh_token_is_used_and_one_near_expiry_is_renewed() {
        assert_eq!(
            decide(&row(3600, true), ROTATING, NOW, POLICY, Request),
            Decision::UseStored
        );
        assert_eq!(
            decide(&row(3600, true), ROTATING, NOW, POLICY, Explicit),
            Decision::Renew
        );
        assert_eq!(
            decide(&row(299, true), ROTATING, NOW, POLICY, Request),
            Decision::Renew
        );
    }

    #[test]
    fn without_a_refresh_token_an_expired_token_is_dead_and_a_live_one_is_used() {
        assert_eq!(
            decide(&row(100, false), ROTATING, NOW, POLICY, Request),
            Decision::UseStored
        );
        assert!(matches!(
            decide(&row(0, false), ROTATING, NOW, POLICY, Request),
            Decision::Dead(_)
        ));
        assert!(matches!(
            decide(&row(-5, false), Renewal::Never, NOW, POLICY, Explicit),
            Decision::Dead(_)
        ));
        let mut gone = row(3600, true);
        gone.status = AccountStatus::NeedsReauth;
        assert!(matches!(
            decide(&gone, ROTATING, NOW, POLICY, Request),
            Decision::Dead(_)
        ));
    }

    #[test]
    fn a_cooling_account_is_not_renewed_before_its_next_attempt() {
        let mut r = row(-10, true);
        r.refresh_failures = 3;
        r.next_refresh_at = Some(NOW.plus_seconds(100));
        assert_eq!(
            decide(&r, ROTATING, NOW, POLICY, Request),
            Decision::CoolingDown(NOW.plus_seconds(100))
        );
        r.expires_at = Some(NOW.plus_seconds(60));
        assert_eq!(
            decide(&r, ROTATING, NOW, POLICY, Request),
            Decision::UseStored
        );
        // An explicit refresh during the backoff is refused, even while the token works.
        assert_eq!(
            decide(&r, ROTATING, NOW, POLICY, Explicit),
            Decision::CoolingDown(NOW.plus_seconds(100))
        );
        r.next_refresh_at = Some(NOW);
        assert_eq!(decide(&r, ROTATING, NOW, POLICY, Request), Decision::Renew);
        assert_eq!(decide(&r, ROTATING, NOW, POLICY, Explicit), Decision::Renew);
    }

    #[test]
    fn the_background_leaves_access_tokens_to_requests_and_renews_for_the_keepalive() {
        // Renewed an hour ago, its 2-hour token expired: nobody asked, nothing to do yet.
        let mut r = row(-60, true);
        r.token_issued_at = Some(NOW.plus_seconds(-3600));
        assert_eq!(
            decide(&r, ROTATING, NOW, POLICY, Background),
            Decision::UseStored
        );
        assert_eq!(
            next_renewal(&r, ROTATING, POLICY, 0),
            Some(NOW.plus_seconds(86_400 - 3600))
        );
        // A day after its last renewal the keep-alive is due.
        r.token_issued_at = Some(NOW.plus_seconds(-86_400));
        assert_eq!(
            decide(&r, ROTATING, NOW, POLICY, Background),
            Decision::Renew
        );
        // Without the keep-alive, a plain refresh token never needs the background.
        assert_eq!(next_renewal(&r, ROTATING, NO_KEEPALIVE, 0), None);
        assert_eq!(
            decide(&r, ROTATING, NOW, NO_KEEPALIVE, Background),
            Decision::UseStored
        );
    }

    #[test]
    fn a_refresh_token_that_dies_unused_is_renewed_before_it_dies() {
        let idle = 180 * 86_400;
        let google = Renewal::RefreshToken {
            rotates: false,
            dies_unused_after: Some(idle),
        };
        let mut r = row(3600, true);
        r.token_issued_at = Some(NOW);
        assert_eq!(
            next_renewal(&r, google, NO_KEEPALIVE, 0),
            Some(NOW.plus_seconds(idle - SELF_RENEW_LEAD_SECONDS))
        );
        assert_eq!(
            next_renewal(&r, google, POLICY, 0),
            Some(NOW.plus_seconds(86_400)),
            "the keep-alive comes first"
        );
    }

    #[test]
    fn jitter_only_delays_a_renewal_and_by_at_most_a_tenth_of_its_period() {
        let mut r = row(3600, true);
        r.token_issued_at = Some(NOW);
        let plain = next_renewal(&r, ROTATING, POLICY, 0).unwrap();
        assert_eq!(
            next_renewal(&r, ROTATING, POLICY, 600),
            Some(plain.plus_seconds(600))
        );
        assert_eq!(
            next_renewal(&r, ROTATING, POLICY, 10 * 86_400),
            Some(plain.plus_seconds(8640))
        );
    }

    #[test]
    fn instagram_renews_only_a_token_a_day_old() {
        let ig = Renewal::AccessToken {
            min_age_seconds: 86_400,
        };
        let mut r = row(100, false);
        r.token_issued_at = Some(NOW.plus_seconds(-3600));
        assert_eq!(decide(&r, ig, NOW, POLICY, Request), Decision::UseStored);
        assert!(
            matches!(decide(&r, ig, NOW, POLICY, Explicit), Decision::Unrenewable(why) if why.contains("can be renewed from")),
            "an explicit refresh says why not"
        );
        r.token_issued_at = Some(NOW.plus_seconds(-86_400));
        assert_eq!(decide(&r, ig, NOW, POLICY, Explicit), Decision::Renew);
        // Without the keep-alive: ten days before expiry, never before the token is a day old.
        let mut young = row(60 * 86_400, false);
        young.token_issued_at = Some(NOW);
        assert_eq!(
            next_look(&young, ig, NO_KEEPALIVE, 0),
            Some(NOW.plus_seconds(50 * 86_400))
        );
        assert_eq!(
            next_look(&young, ig, POLICY, 0),
            Some(NOW.plus_seconds(86_400))
        );
        let mut short = row(3600, false);
        short.token_issued_at = Some(NOW);
        assert_eq!(
            next_look(&short, ig, NO_KEEPALIVE, 0),
            Some(NOW.plus_seconds(86_400))
        );
    }

    #[test]
    fn deadlines_follow_what_can_renew_the_token() {
        let e = Some(NOW.plus_seconds(100));
        let r = Some(NOW.plus_seconds(1000));
        assert_eq!(deadline(Renewal::Never, false, e, None), e);
        assert_eq!(deadline(ROTATING, false, e, r), e);
        assert_eq!(deadline(ROTATING, true, e, r), r);
        assert_eq!(deadline(ROTATING, true, e, None), None);
        assert_eq!(
            deadline(Renewal::AccessToken { min_age_seconds: 1 }, false, e, None),
            None
        );
        assert_eq!(status_at(None, NOW, POLICY).0, AccountStatus::Active);
        assert_eq!(
            status_at(Some(NOW.plus_seconds(7 * 86_400)), NOW, POLICY).0,
            AccountStatus::Expiring
        );
        assert_eq!(
            status_at(Some(NOW.plus_seconds(7 * 86_400 + 1)), NOW, POLICY).0,
            AccountStatus::Active
        );
    }

    #[test]
    fn the_refresher_looks_at_the_warning_then_the_deadline() {
        let mut fb = row(30 * 86_400, false);
        fb.reauth_by = fb.expires_at;
        let by = fb.reauth_by.unwrap();
        assert_eq!(
            next_look(&fb, Renewal::Never, POLICY, 0),
            Some(by.plus_seconds(-7 * 86_400))
        );
        fb.warned_for = Some(by);
        assert_eq!(next_look(&fb, Renewal::Never, POLICY, 0), Some(by));
        fb.status = AccountStatus::NeedsReauth;
        assert_eq!(next_look(&fb, Renewal::Never, POLICY, 0), None);
    }

    #[test]
    fn failures_are_classified_the_way_the_issue_asks() {
        let rejected = |code: &str| ProviderError::Rejected {
            code: code.into(),
            description: None,
        };
        let plain = Renewal::RefreshToken {
            rotates: false,
            dies_unused_after: None,
        };
        assert_eq!(
            classify(&rejected("invalid_grant"), plain),
            FailureClass::Definitive
        );
        assert_eq!(
            classify(&rejected("invalid_request"), ROTATING),
            FailureClass::Definitive
        );
        assert_eq!(
            classify(&rejected("invalid_request"), plain),
            FailureClass::Transient
        );
        assert_eq!(
            classify(&rejected("invalid_client"), plain),
            FailureClass::AppCredentials
        );
        assert_eq!(
            classify(&rejected("unauthorized_client"), ROTATING),
            FailureClass::AppCredentials
        );
        assert_eq!(
            classify(&ProviderError::Unavailable("HTTP 503".into()), plain),
            FailureClass::Transient
        );
        assert_eq!(
            classify(
                &ProviderError::RateLimited {
                    retry_after: Some(9)
                },
                plain
            ),
            FailureClass::Transient
        );
    }

    #[test]
    fn backoff_doubles_to_an_hour_and_honours_retry_after() {
        assert_eq!(backoff_seconds(1, None), 60);
        assert_eq!(backoff_seconds(2, None), 120);
        assert_eq!(backoff_seconds(7, None), 3600);
        assert_eq!(backoff_seconds(60, None), 3600);
        assert_eq!(backoff_seconds(1, Some(900)), 900);
        assert_eq!(backoff_seconds(1, Some(5)), 60);
    }

    #[test]
    fn fingerprints_are_eight_hex_digits_of_sha256() {
        // sha256("abc") = ba7816bf…
        assert_eq!(fingerprint("abc"), "ba7816bf");
    }
}
