//! Rate limits (CONTRACT §8): one keyed token bucket per limited operation, built from
//! `[limits]` when the server starts. Connect starts, app creations, token reads and changes
//! by id are counted per tenant, callbacks (which carry no token) per client IP address. A request over
//! its limit gets 429 `rate_limited` with `Retry-After`. Only the HTTP face is limited: the
//! CLI is the operator's own.
//!
//! Buckets hold `LimitsConfig::BURST_SECONDS` × the rate, so a key left alone for that long
//! is back where it started and its state can go: `run_pruner` drops such keys periodically,
//! which keeps memory to the keys seen in the last few seconds.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use poem_openapi::payload::Json;
use tokio_util::sync::CancellationToken;

use crate::api::error::{ErrorBody, ErrorCode, ErrorDetail, RateLimited};
use crate::config::LimitsConfig;
use crate::domain::Owner;

/// How often refilled keys are dropped: the state then holds at most the keys used in the
/// last 5 s (the longest a bucket takes to refill) plus this long.
const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// The limited operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `/v1/oauth/{provider}/start`, per tenant.
    Start,
    /// `/v1/oauth/{provider}/callback`, per client IP address.
    Callback,
    /// `POST /v1/oauth-apps`, per tenant.
    Create,
    /// `/v1/accounts/{id}/access-token` and `/refresh`, one bucket per tenant for both.
    Token,
    /// Changes by id (`PATCH`/`DELETE` of an app, `DELETE` of an account, confirming a
    /// connection), one bucket per tenant: guessing at them costs.
    Change,
}

impl Limit {
    /// This limit's rate in `config`.
    pub fn rate(self, config: &LimitsConfig) -> u32 {
        match self {
            Limit::Start => config.start_per_second,
            Limit::Callback => config.callback_per_second,
            Limit::Create => config.create_per_second,
            Limit::Token => config.token_per_second,
            Limit::Change => config.change_per_second,
        }
    }

    /// The 429 message: what was limited, at which rate, and when to try again.
    pub fn message(self, rate: u32, retry_after_secs: u64) -> String {
        let (what, whose) = match self {
            Limit::Start => ("connect starts", "for this tenant"),
            Limit::Callback => ("OAuth callbacks", "from this client IP address"),
            Limit::Create => ("OAuth app creations and checks", "for this tenant"),
            Limit::Token => ("access-token reads and refreshes", "for this tenant"),
            Limit::Change => (
                "app and account changes and connection confirmations",
                "for this tenant",
            ),
        };
        format!(
            "too many {what} {whose} (limit: {rate} per second); retry after {retry_after_secs} s"
        )
    }
}

/// A keyed GCRA limiter on clock `C` (the real one, or a fake one in tests).
type Keyed<K, C> = RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One operation's buckets, one per key.
struct Bucket<K: Hash + Eq + Clone, C: Clock = DefaultClock> {
    limit: Limit,
    rate: u32,
    limiter: Keyed<K, C>,
}

impl<K: Hash + Eq + Clone, C: Clock> Bucket<K, C> {
    fn new(limit: Limit, config: &LimitsConfig, clock: C) -> Self {
        // Out-of-range rates are refused when the configuration is loaded; a `Config` built
        // in code is clamped into the same range rather than panicking here.
        let rate = limit.rate(config).clamp(1, LimitsConfig::MAX_PER_SECOND);
        let per_second = NonZeroU32::new(rate).expect("clamped to at least 1");
        let burst = NonZeroU32::new(rate * LimitsConfig::BURST_SECONDS)
            .expect("a positive rate times a positive number of seconds");
        let quota = Quota::per_second(per_second).allow_burst(burst);
        Bucket {
            limit,
            rate,
            limiter: RateLimiter::dashmap_with_clock(quota, clock),
        }
    }

    fn check(&self, key: &K) -> Result<(), RateLimited> {
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            let secs = retry_after_secs(wait);
            RateLimited::TooManyRequests(
                Json(ErrorBody {
                    error: ErrorDetail {
                        code: ErrorCode::RateLimited,
                        message: self.limit.message(self.rate, secs),
                        refresh: None,
                    },
                }),
                secs,
            )
        })
    }

    fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.limiter.len()
    }
}

/// `Retry-After` is whole seconds: round up (waiting less would be refused again), at least 1.
fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// The key a client IP address is counted under. An IPv6 client is counted by its /64, the
/// block a single subscriber is given: otherwise one host could take a new address for each
/// request. An IPv4 address written as IPv6 counts as the IPv4 address.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

struct Buckets {
    start: Bucket<Owner>,
    callback: Bucket<IpAddr>,
    create: Bucket<Owner>,
    token: Bucket<Owner>,
    change: Bucket<Owner>,
}

/// Every rate limiter of the server; cheap to clone (handlers reach it in the request's data).
#[derive(Clone)]
pub struct RateLimits(Arc<Buckets>);

impl RateLimits {
    pub fn new(config: &LimitsConfig) -> Self {
        let clock = DefaultClock::default();
        RateLimits(Arc::new(Buckets {
            start: Bucket::new(Limit::Start, config, clock.clone()),
            callback: Bucket::new(Limit::Callback, config, clock.clone()),
            create: Bucket::new(Limit::Create, config, clock.clone()),
            token: Bucket::new(Limit::Token, config, clock.clone()),
            change: Bucket::new(Limit::Change, config, clock),
        }))
    }

    /// Counts a connect start by `owner`; the 429 answer when over the limit.
    pub fn start(&self, owner: &Owner) -> Result<(), RateLimited> {
        self.0.start.check(owner)
    }

    /// Counts an OAuth callback from `client`.
    pub fn callback(&self, client: IpAddr) -> Result<(), RateLimited> {
        self.0.callback.check(&ip_key(client))
    }

    /// Counts an OAuth app creation, or an app check (it calls the provider), by `owner`.
    pub fn create(&self, owner: &Owner) -> Result<(), RateLimited> {
        self.0.create.check(owner)
    }

    /// Counts an access-token read or an account refresh by `owner`.
    pub fn token(&self, owner: &Owner) -> Result<(), RateLimited> {
        self.0.token.check(owner)
    }

    /// Counts a change by id (an app's update or deletion, an account's deletion, a
    /// connection's confirmation) by `owner`.
    pub fn change(&self, owner: &Owner) -> Result<(), RateLimited> {
        self.0.change.check(owner)
    }

    /// Drops the state of every key whose bucket has refilled: it is the same as no state.
    pub fn prune(&self) {
        let b = &self.0;
        b.start.prune();
        b.callback.prune();
        b.create.prune();
        b.token.prune();
        b.change.prune();
    }

    /// How many keys have state, over every bucket.
    pub fn keys(&self) -> usize {
        let b = &self.0;
        b.start.len() + b.callback.len() + b.create.len() + b.token.len() + b.change.len()
    }

    /// Prunes every `PRUNE_EVERY` until `shutdown` is cancelled.
    pub async fn run_pruner(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(PRUNE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => self.prune(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn owner(name: &str) -> Owner {
        Owner::parse("owner", name).unwrap()
    }

    fn config(rate: u32) -> LimitsConfig {
        LimitsConfig {
            start_per_second: rate,
            callback_per_second: rate,
            create_per_second: rate,
            token_per_second: rate,
            change_per_second: rate,
        }
    }

    /// A start bucket at `rate` on a clock the test moves.
    fn fake_bucket(rate: u32) -> (Bucket<Owner, FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (
            Bucket::new(Limit::Start, &config(rate), clock.clone()),
            clock,
        )
    }

    fn retry_after(limited: RateLimited) -> u64 {
        let RateLimited::TooManyRequests(_, secs) = limited;
        secs
    }

    #[test]
    fn a_bucket_holds_five_seconds_of_its_rate_then_refills_at_the_rate() {
        let (bucket, clock) = fake_bucket(2);
        let alice = owner("alice");
        for i in 0..10 {
            assert!(bucket.check(&alice).is_ok(), "request {i} of the burst");
        }
        let RateLimited::TooManyRequests(body, secs) = bucket.check(&alice).unwrap_err();
        assert_eq!(body.0.error.code, ErrorCode::RateLimited);
        assert_eq!(
            body.0.error.message,
            "too many connect starts for this tenant (limit: 2 per second); retry after 1 s"
        );
        // The next request fits in 0.5 s: rounded up to a whole second.
        assert_eq!(secs, 1);
        clock.advance(Duration::from_millis(499));
        assert!(bucket.check(&alice).is_err());
        clock.advance(Duration::from_millis(1));
        assert!(bucket.check(&alice).is_ok());
        assert!(bucket.check(&alice).is_err());
        // Another tenant has a full bucket of its own.
        for _ in 0..10 {
            assert!(bucket.check(&owner("bob")).is_ok());
        }
    }

    #[test]
    fn retry_after_is_the_wait_rounded_up_to_whole_seconds() {
        // Rate 1: the next request fits exactly 1 s after the burst, then less and less.
        let (bucket, clock) = fake_bucket(1);
        let alice = owner("alice");
        for _ in 0..5 {
            bucket.check(&alice).unwrap();
        }
        assert_eq!(retry_after(bucket.check(&alice).unwrap_err()), 1);
        clock.advance(Duration::from_millis(999));
        assert_eq!(retry_after(bucket.check(&alice).unwrap_err()), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
    }

    #[test]
    fn pruning_drops_refilled_keys_and_keeps_the_others() {
        // Rate 1: one request takes 1 s to refill; a drained bucket (5) takes 5 s.
        let (bucket, clock) = fake_bucket(1);
        for n in 0..50 {
            bucket.check(&owner(&format!("idle-{n}"))).unwrap();
        }
        clock.advance(Duration::from_millis(500));
        let busy = owner("busy");
        for _ in 0..5 {
            bucket.check(&busy).unwrap();
        }
        bucket.prune();
        assert_eq!(bucket.len(), 51, "nothing has refilled yet");
        clock.advance(Duration::from_secs(2));
        bucket.prune();
        // The idle keys are full again (their state is gone); `busy` is not.
        assert_eq!(bucket.len(), 1);
        for _ in 0..2 {
            assert!(bucket.check(&busy).is_ok(), "2 s refilled 2 requests");
        }
        assert!(
            bucket.check(&busy).is_err(),
            "and no more: its state was kept"
        );
    }

    #[test]
    fn ipv6_clients_share_their_slash_64_and_mapped_ipv4_is_ipv4() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(ip_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(ip_key(ip("2001:db8:1:2:ffff::9")), ip("2001:db8:1:2::"));
        assert_ne!(ip_key(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
        assert_eq!(ip_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(ip_key(ip("192.0.2.1")), ip("192.0.2.1"));
        // A 1-per-second limit takes a second to refill: far longer than these checks.
        let limits = RateLimits::new(&config(1));
        for n in 0..5 {
            assert!(limits.callback(ip(&format!("2001:db8::{n}"))).is_ok());
        }
        assert!(limits.callback(ip("2001:db8::ffff")).is_err(), "same /64");
        assert!(limits.callback(ip("2001:db8:0:1::1")).is_ok(), "next /64");
    }

    #[test]
    fn each_operation_has_its_own_buckets() {
        let limits = RateLimits::new(&config(1));
        let alice = owner("alice");
        for _ in 0..5 {
            limits.start(&alice).unwrap();
        }
        assert!(limits.start(&alice).is_err());
        assert!(limits.create(&alice).is_ok());
        assert!(limits.token(&alice).is_ok());
        assert!(limits.start(&owner("bob")).is_ok());
        assert_eq!(limits.keys(), 4);
    }

    #[test]
    fn rates_outside_the_accepted_range_are_clamped_not_a_panic() {
        let (bucket, _clock) = {
            let clock = FakeRelativeClock::default();
            (
                Bucket::<Owner, _>::new(Limit::Create, &config(0), clock.clone()),
                clock,
            )
        };
        for _ in 0..5 {
            bucket.check(&owner("alice")).unwrap();
        }
        assert!(bucket.check(&owner("alice")).is_err());
        let huge = Bucket::<Owner, _>::new(
            Limit::Create,
            &config(u32::MAX),
            FakeRelativeClock::default(),
        );
        assert_eq!(huge.rate, LimitsConfig::MAX_PER_SECOND);
    }
}
