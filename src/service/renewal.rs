//! The renewal rules: pure functions of an account row, its provider's renewal model and the
//! time. When a token dies (`deadline`), what status that means (`status_at`), when the
//! refresher next looks (`next_look`, `next_renewal`), whether to refresh now (`decide`), how
//! long to back off, and how to read a failure (`classify`). `lifecycle` runs them.

use rand::Rng;
use sha2::{Digest, Sha256};

use crate::domain::{AccountStatus, Timestamp};
use crate::error::{FailureClass, ProviderError};
use crate::providers::Renewal;
use crate::store::AccountRecord;

/// Backoff after transient failures: 1 minute, doubling, at most an hour. With jitter this
/// keeps a failing account to a handful of provider calls in its first hour and one an hour
/// after that.
pub(super) const BACKOFF_FIRST_SECONDS: i64 = 60;
pub(super) const BACKOFF_MAX_SECONDS: i64 = 3600;
/// After the provider refused the app's credentials, its accounts wait this long.
pub(super) const APP_COOLDOWN_SECONDS: i64 = 3600;
/// Instagram-style renewals happen this long before expiry (well before, as they can only
/// run on a live token); so do renewals of a refresh token that dies unused.
pub(super) const SELF_RENEW_LEAD_SECONDS: i64 = 10 * 86_400;
/// Renewals the background schedules are spread over up to this long (at most a tenth of
/// their period), so that accounts connected or renewed together do not stay in step.
pub(super) const KEEPALIVE_JITTER_SECONDS: i64 = 3600;

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
    pub(super) fn as_str(self) -> &'static str {
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
pub(super) fn renewable_from(renewal: Renewal, row: &AccountRecord) -> Option<Timestamp> {
    match renewal {
        Renewal::Never => None,
        Renewal::RefreshToken { .. } => row.refresh_token_sealed.as_ref().map(|_| row.created_at),
        Renewal::AccessToken { min_age_seconds } => {
            Some(last_renewal(row).plus_seconds(min_age_seconds))
        }
    }
}

/// When the account's tokens were last obtained from the provider.
pub(super) fn last_renewal(row: &AccountRecord) -> Timestamp {
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
pub(super) fn unrenewable_reason(
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
        (Renewal::Never, _) if row.expires_at.is_none() => format!(
            "{} offers no refresh, and none is needed: account {}'s token does not expire (it works until revoked)",
            row.provider, row.id
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
        ProviderError::AppRefused { .. } => FailureClass::AppCredentials,
        ProviderError::Unavailable(_)
        | ProviderError::Failing { .. }
        | ProviderError::Malformed(_)
        | ProviderError::Refused(_)
        | ProviderError::RateLimited { .. } => FailureClass::Transient,
    }
}

/// The first 8 hex digits of the token's SHA-256: enough to tell tokens apart in a log,
/// useless to an attacker.
pub fn fingerprint(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn jitter(max_seconds: i64) -> i64 {
    if max_seconds <= 0 {
        0
    } else {
        rand::rng().random_range(0..=max_seconds)
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
            server: None,
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
