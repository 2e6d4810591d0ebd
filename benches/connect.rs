//! Connect-flow latency: `cargo bench --bench connect`.
//!
//! Runs Dravo in-process against a fake X on 127.0.0.1 and times, per connect, the start call
//! and the callback (which includes Dravo's two calls to the provider: the code exchange and
//! "who am I"). The browser's visit to the provider's consent screen is not timed. The
//! callback figure is therefore an upper bound on Dravo's own time.
//!
//! Each connect is a new account: connect `i` is made by its own tenant with its own BYOK app
//! (created before the timing), as many different users would make them.
//!
//! - CONNECT_ITERATIONS (default 300): how many connects are timed, after 20 warm-up ones.
//! - CONNECT_CONCURRENCY (default 1): how many clients connect at once, each taking the next
//!   connect as soon as its previous one finished. `CONNECT_CONCURRENCY=50
//!   CONNECT_ITERATIONS=500` is the load target: 500 connects from 50 clients, all succeed.
//!
//! Any connect that does not end in `status=connected` counts as a failure; the run reports
//! how many (with the first reasons) and exits 1 when there was any.

// The tests' fake, of which this uses a part.
#[allow(dead_code)]
#[path = "../tests/api/support/fake_provider/mod.rs"]
mod fake_provider;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dravo::config::{LimitsConfig, ProviderConfig};
use dravo::domain::{AppName, ClientId, ClientSecret, Owner};
use dravo::service::NewApp;
use dravo::{Config, Dravo};
use fake_provider::{FakeProvider, Kind};
use url::Url;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<34} median {:>7.3} ms   p90 {:>7.3} ms   p99 {:>7.3} ms   (n={})",
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.9)),
        ms(percentile(&samples, 0.99)),
        samples.len()
    );
}

/// One connect: the start call and the callback, timed; the consent step in between is not.
async fn connect(
    http: &reqwest::Client,
    start_url: &str,
    jwt: &str,
) -> Result<(Duration, Duration), String> {
    let t0 = Instant::now();
    let resp = http
        .get(start_url)
        .bearer_auth(jwt)
        .send()
        .await
        .map_err(|e| format!("start: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("start answered {}", resp.status()));
    }
    let body: serde_json::Value = resp.json().await.map_err(|e| format!("start: {e}"))?;
    let start_time = t0.elapsed();
    let authorize = body["authorize_url"]
        .as_str()
        .ok_or("start gave no authorize_url")?;

    // The browser at the provider: not Dravo's time.
    let consent = http
        .get(authorize)
        .send()
        .await
        .map_err(|e| format!("consent: {e}"))?;
    let callback_url = consent
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .ok_or_else(|| {
            format!(
                "the consent step answered {} without a redirect",
                consent.status()
            )
        })?
        .to_owned();

    let t1 = Instant::now();
    let done = http
        .get(&callback_url)
        .send()
        .await
        .map_err(|e| format!("callback: {e}"))?;
    let callback_time = t1.elapsed();
    let location = done
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default();
    if !location.contains("status=connected") {
        return Err(format!(
            "the callback answered {} to `{location}`",
            done.status()
        ));
    }
    Ok((start_time, callback_time))
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} must be a whole number, got `{v}`"))
        })
        .unwrap_or(default)
}

const WARM_UP: usize = 20;

#[tokio::main]
async fn main() {
    let iterations = env_usize("CONNECT_ITERATIONS", 300);
    let concurrency = env_usize("CONNECT_CONCURRENCY", 1).max(1);
    let fake = FakeProvider::start(Kind::X, "bench-client", "bench-secret").await;
    let (authorize, token, api) = fake.config_urls();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.database.path = dir.path().join("dravo.db");
    config.dashboard.allowed_return_urls = vec!["https://dash.example.com".into()];
    // The rate limits at their highest: every callback comes from 127.0.0.1, and the run is
    // about Dravo's work, not the limits.
    let max = LimitsConfig::MAX_PER_SECOND;
    config.limits.start_per_second = max;
    config.limits.callback_per_second = max;
    config.limits.create_per_second = max;
    config.limits.token_per_second = max;
    config.providers.set(
        "x".parse().unwrap(),
        ProviderConfig {
            authorize_url: Some(Url::parse(&authorize).unwrap()),
            token_url: Some(Url::parse(&token).unwrap()),
            api_base: Some(Url::parse(&api).unwrap()),
            ..Default::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dravo = Dravo::open(config, Some(addr)).await.unwrap();

    // One tenant, app and token per connect, made before any timing.
    let mut flows = Vec::with_capacity(WARM_UP + iterations);
    for i in 0..WARM_UP + iterations {
        let tenant = format!("bench-{i}");
        let owner = Owner::parse("tenant", &tenant).unwrap();
        let app = dravo
            .create_app(
                &owner,
                NewApp {
                    provider: "x".parse().unwrap(),
                    name: AppName::parse("bench").unwrap(),
                    client_id: Some(ClientId::parse("bench-client").unwrap()),
                    client_secret: Some(ClientSecret::parse("bench-secret").unwrap()),
                    website: None,
                    scopes: None,
                    user_agent: None,
                },
            )
            .await
            .unwrap();
        let start_url = format!(
            "http://{addr}/v1/oauth/x/start?oauth_app_id={}&return_url=https://dash.example.com/done",
            app.id
        );
        flows.push((start_url, dravo.issue_token(&tenant, 3600).unwrap()));
    }
    tokio::spawn(dravo::run(
        listener,
        dravo.clone(),
        dravo::CancellationToken::new(),
    ));

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The first connects warm up connections and caches, one at a time.
    for (start_url, jwt) in &flows[..WARM_UP] {
        connect(&http, start_url, jwt)
            .await
            .unwrap_or_else(|e| panic!("a warm-up connect failed: {e}"));
    }

    let flows = Arc::new(flows.split_off(WARM_UP));
    let next = Arc::new(AtomicUsize::new(0));
    let began = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (http, flows, next) = (http.clone(), flows.clone(), next.clone());
        clients.spawn(async move {
            let mut results = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((start_url, jwt)) = flows.get(i) else {
                    return results;
                };
                results.push(connect(&http, start_url, jwt).await);
            }
        });
    }
    let (mut starts, mut callbacks, mut totals, mut failures) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    while let Some(results) = clients.join_next().await {
        for result in results.expect("a client task panicked") {
            match result {
                Ok((start, callback)) => {
                    starts.push(start);
                    callbacks.push(callback);
                    totals.push(start + callback);
                }
                Err(e) => failures.push(e),
            }
        }
    }
    let wall = began.elapsed();

    println!(
        "connect flow against a fake X on 127.0.0.1: {iterations} connects from {concurrency} concurrent client(s), each a new account"
    );
    println!(
        "  {:.1} s wall, {:.0} connects/s; failures: {} (must be 0)",
        wall.as_secs_f64(),
        iterations as f64 / wall.as_secs_f64(),
        failures.len()
    );
    for reason in failures.iter().take(5) {
        println!("  failure: {reason}");
    }
    if !starts.is_empty() {
        report("start", starts);
        report("callback (incl. 2 provider calls)", callbacks);
        report("start + callback", totals);
    }
    if !failures.is_empty() {
        std::process::exit(1);
    }
}
