//! What `dravo serve` counts for Prometheus (`GET /metrics`): requests, connects, refreshes
//! and the database pool's waits as they happen, and the stored accounts and the webhook
//! backlog read from the database at scrape time.
//!
//! One `Metrics` per core (`Dravo`), never a global: two servers in one process (the tests)
//! count apart. Counters count what this process did since it started; what the CLI does in
//! its own process is not in them, while the scrape-time gauges see every writer.
//!
//! Recording is cheap enough for every request: label values are `&'static str` and numbers
//! (no allocation), a family's map is behind a read-mostly lock taken for a lookup, and a
//! counter is an atomic add. A histogram series holds a short mutex of its own per
//! observation, so only requests to the same route and method meet there.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::domain::{AccountStatus, Provider};

/// The `Content-Type` of a scrape: Prometheus's text format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Every metric's name starts with this and `_`.
const PREFIX: &str = "dravo";

/// Request latency buckets, in seconds: most answers take well under a millisecond, a
/// connect's callback waits on the provider for up to `providers.timeout_seconds`.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0,
];

/// Pool wait buckets, in seconds: a free connection is handed out in microseconds; a wait
/// ends at the pool's 10-second timeout.
const POOL_WAIT_BUCKETS: [f64; 10] = [
    0.00001, 0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0,
];

/// The `route` label of a request that matched no API operation (an unknown path, or a
/// method the path does not take): one value for all, so a scanner's paths cannot grow the
/// series without bound.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// How a connect's callback ended (`outcome` of `dravo_connects_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectOutcome {
    /// An account was stored (new or reconnected).
    Connected,
    /// `connect.require_confirmation`: the consent waits for the dashboard.
    Pending,
    /// The user declined, or the provider sent no code.
    Denied,
    /// The state was missing, forged, expired, replayed or for another provider.
    BadState,
    /// The provider refused or failed the code exchange or the identity call.
    ProviderError,
    /// Something failed inside Dravo.
    Internal,
}

impl ConnectOutcome {
    pub const ALL: [ConnectOutcome; 6] = [
        ConnectOutcome::Connected,
        ConnectOutcome::Pending,
        ConnectOutcome::Denied,
        ConnectOutcome::BadState,
        ConnectOutcome::ProviderError,
        ConnectOutcome::Internal,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ConnectOutcome::Connected => "connected",
            ConnectOutcome::Pending => "pending",
            ConnectOutcome::Denied => "denied",
            ConnectOutcome::BadState => "bad_state",
            ConnectOutcome::ProviderError => "provider_error",
            ConnectOutcome::Internal => "internal",
        }
    }
}

/// How a call to a provider to renew an account's tokens ended (`outcome` of
/// `dravo_refreshes_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// New tokens were issued.
    Refreshed,
    /// The grant is gone: the account now needs a new consent.
    NeedsReauth,
    /// The provider refused the app's credentials.
    AppCredentials,
    /// A failure worth retrying later (outage, rate limit, malformed answer).
    Transient,
}

impl RefreshOutcome {
    pub const ALL: [RefreshOutcome; 4] = [
        RefreshOutcome::Refreshed,
        RefreshOutcome::NeedsReauth,
        RefreshOutcome::AppCredentials,
        RefreshOutcome::Transient,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RefreshOutcome::Refreshed => "refreshed",
            RefreshOutcome::NeedsReauth => "needs_reauth",
            RefreshOutcome::AppCredentials => "app_credentials",
            RefreshOutcome::Transient => "transient",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
    method: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    provider: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AccountLabels {
    provider: &'static str,
    status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    commit: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The metrics one core records; cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: HistogramFamily<RouteLabels>,
    connects: Family<OutcomeLabels, Counter>,
    refreshes: Family<OutcomeLabels, Counter>,
    pool_wait: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix(PREFIX);
        let build = Info::new(BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
            commit: env!("DRAVO_GIT_COMMIT"),
        });
        registry.register("build", "The running Dravo's version and commit", build);
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let request_duration =
            HistogramFamily::<RouteLabels>::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's head to its response, by route template and method",
            Unit::Seconds,
            request_duration.clone(),
        );
        let connects = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "connects",
            "OAuth callbacks handled, by provider and outcome",
            connects.clone(),
        );
        let refreshes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "refreshes",
            "Token refresh calls to providers, by provider and outcome",
            refreshes.clone(),
        );
        // Every provider and outcome from the start: a series that appears only at its first
        // event makes `rate()` and `increase()` miss that event.
        for provider in crate::providers::ids() {
            for outcome in ConnectOutcome::ALL {
                connects
                    .get_or_create(&outcome_labels(provider, outcome.as_str()))
                    .inc_by(0);
            }
            for outcome in RefreshOutcome::ALL {
                refreshes
                    .get_or_create(&outcome_labels(provider, outcome.as_str()))
                    .inc_by(0);
            }
        }
        let pool_wait = Histogram::new(POOL_WAIT_BUCKETS);
        registry.register_with_unit(
            "db_pool_wait",
            "Time a database write waited for a pooled connection",
            Unit::Seconds,
            pool_wait.clone(),
        );
        Metrics(Arc::new(Inner {
            registry,
            requests,
            request_duration,
            connects,
            refreshes,
            pool_wait,
        }))
    }

    /// Records one answered request. `route` is the route template (never the raw path),
    /// `method` one of `method_label`'s values.
    pub fn observe_request(
        &self,
        route: &'static str,
        method: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        self.0
            .requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status,
            })
            .inc();
        self.0
            .request_duration
            .get_or_create(&RouteLabels { route, method })
            .observe(elapsed.as_secs_f64());
    }

    pub fn connect(&self, provider: Provider, outcome: ConnectOutcome) {
        self.0
            .connects
            .get_or_create(&outcome_labels(provider, outcome.as_str()))
            .inc();
    }

    pub fn refresh(&self, provider: Provider, outcome: RefreshOutcome) {
        self.0
            .refreshes
            .get_or_create(&outcome_labels(provider, outcome.as_str()))
            .inc();
    }

    /// The histogram the database pool reports its checkout waits to.
    pub fn pool_wait(&self) -> Histogram {
        self.0.pool_wait.clone()
    }

    /// The scrape: every metric recorded so far, then the scrape-time gauges from `stored`.
    pub fn render(&self, stored: &StoredFigures) -> String {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_text::encode(&mut out, &self.0.registry)
            .expect("writing to a String cannot fail");
        prometheus_text::encode(&mut out, &stored.registry())
            .expect("writing to a String cannot fail");
        out
    }
}

fn outcome_labels(provider: Provider, outcome: &'static str) -> OutcomeLabels {
    OutcomeLabels {
        provider: provider.as_str(),
        outcome,
    }
}

/// The `method` label: the standard methods by name, anything else as `other` (a client may
/// send any token as a method).
pub fn method_label(method: &poem::http::Method) -> &'static str {
    use poem::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// What the database holds, read at scrape time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredFigures {
    /// (provider, status, how many accounts), for the pairs that have accounts.
    pub accounts: Vec<(Provider, AccountStatus, u64)>,
    /// Webhook events waiting for delivery.
    pub outbox_pending: u64,
    /// Seconds since the oldest of them was recorded; 0 when none waits.
    pub outbox_oldest_pending_seconds: i64,
}

impl StoredFigures {
    fn registry(&self) -> Registry {
        let mut registry = Registry::with_prefix(PREFIX);
        let accounts = Family::<AccountLabels, Gauge>::default();
        // Every provider and status, 0 where there is none: absent and zero read the same.
        for provider in crate::providers::ids() {
            for status in AccountStatus::ALL {
                accounts
                    .get_or_create(&AccountLabels {
                        provider: provider.as_str(),
                        status: status.as_str(),
                    })
                    .set(0);
            }
        }
        for &(provider, status, count) in &self.accounts {
            accounts
                .get_or_create(&AccountLabels {
                    provider: provider.as_str(),
                    status: status.as_str(),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        registry.register(
            "accounts",
            "Connected accounts stored, by provider and status",
            accounts,
        );
        let pending = Gauge::<i64>::default();
        pending.set(i64::try_from(self.outbox_pending).unwrap_or(i64::MAX));
        registry.register(
            "webhook_outbox_pending",
            "Webhook events waiting to be delivered",
            pending,
        );
        let oldest = Gauge::<i64>::default();
        oldest.set(self.outbox_oldest_pending_seconds.max(0));
        registry.register_with_unit(
            "webhook_outbox_oldest_pending_age",
            "Age of the oldest webhook event waiting to be delivered (0 when none waits)",
            Unit::Seconds,
            oldest,
        );
        registry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_names_every_metric_with_its_labels() {
        let metrics = Metrics::new();
        metrics.observe_request("/v1/accounts/{id}", "GET", 200, Duration::from_millis(3));
        metrics.connect("x".parse().unwrap(), ConnectOutcome::Connected);
        metrics.refresh("linkedin".parse().unwrap(), RefreshOutcome::Transient);
        let text = metrics.render(&StoredFigures {
            accounts: vec![("x".parse().unwrap(), AccountStatus::Active, 2)],
            outbox_pending: 3,
            outbox_oldest_pending_seconds: 42,
        });
        for line in [
            "# TYPE dravo_http_requests_total counter",
            "dravo_http_requests_total{route=\"/v1/accounts/{id}\",method=\"GET\",status=\"200\"} 1",
            "# TYPE dravo_http_request_duration_seconds histogram",
            "dravo_http_request_duration_seconds_bucket{route=\"/v1/accounts/{id}\",method=\"GET\",le=\"0.005\"} 1",
            "dravo_http_request_duration_seconds_bucket{route=\"/v1/accounts/{id}\",method=\"GET\",le=\"0.0025\"} 0",
            "dravo_http_request_duration_seconds_count{route=\"/v1/accounts/{id}\",method=\"GET\"} 1",
            "dravo_connects_total{provider=\"x\",outcome=\"connected\"} 1",
            "dravo_connects_total{provider=\"tiktok\",outcome=\"denied\"} 0",
            "dravo_refreshes_total{provider=\"linkedin\",outcome=\"transient\"} 1",
            "dravo_refreshes_total{provider=\"x\",outcome=\"refreshed\"} 0",
            "dravo_accounts{provider=\"x\",status=\"active\"} 2",
            "dravo_accounts{provider=\"facebook\",status=\"needs_reauth\"} 0",
            "dravo_webhook_outbox_pending 3",
            "dravo_webhook_outbox_oldest_pending_age_seconds 42",
            "# TYPE dravo_db_pool_wait_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line `{line}` in:\n{text}"
            );
        }
        assert!(text.contains("dravo_build_info{version=\""), "{text}");
    }

    #[test]
    fn methods_outside_the_standard_ones_share_one_label() {
        let custom = poem::http::Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&custom), "other");
        assert_eq!(method_label(&poem::http::Method::PATCH), "PATCH");
    }
}
