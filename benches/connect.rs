//! Connect-flow latency: `cargo bench --bench connect`.
//!
//! Runs Dravo in-process against a fake X on 127.0.0.1 and times, per connect, the start call
//! and the callback (which includes Dravo's two calls to the provider: the code exchange and
//! "who am I"). The browser's visit to the provider's consent screen is not timed. The
//! callback figure is therefore an upper bound on Dravo's own time. Iterations:
//! CONNECT_ITERATIONS (default 300).

#[path = "../tests/support/fake_provider.rs"]
mod fake_provider;

use std::time::{Duration, Instant};

use dravo::config::ProviderConfig;
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
        "{name:<22} median {:>7.3} ms   p90 {:>7.3} ms   p99 {:>7.3} ms   (n={})",
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.9)),
        ms(percentile(&samples, 0.99)),
        samples.len()
    );
}

#[tokio::main]
async fn main() {
    let iterations: usize = std::env::var("CONNECT_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let fake = FakeProvider::start(Kind::X, "bench-client", "bench-secret").await;
    let (authorize, token, api) = fake.config_urls();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.database.path = dir.path().join("dravo.db");
    config.dashboard.allowed_return_urls = vec!["https://dash.example.com".into()];
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
    let owner = Owner::parse("tenant", "bench").unwrap();
    let app = dravo
        .create_app(
            &owner,
            NewApp {
                provider: "x".parse().unwrap(),
                name: AppName::parse("bench").unwrap(),
                client_id: ClientId::parse("bench-client").unwrap(),
                client_secret: ClientSecret::parse("bench-secret").unwrap(),
                scopes: None,
            },
        )
        .await
        .unwrap();
    let jwt = dravo.issue_token("bench", 3600).unwrap();
    tokio::spawn(dravo::run(
        listener,
        dravo.clone(),
        dravo::CancellationToken::new(),
    ));

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let start_url = format!(
        "http://{addr}/v1/oauth/x/start?oauth_app_id={}&return_url=https://dash.example.com/done",
        app.id
    );
    let (mut starts, mut callbacks, mut totals) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..iterations + 20 {
        let t0 = Instant::now();
        let resp = http.get(&start_url).bearer_auth(&jwt).send().await.unwrap();
        let body: serde_json::Value = resp.json().await.unwrap();
        let start_time = t0.elapsed();

        // The browser at the provider: not Dravo's time.
        let consent = http
            .get(body["authorize_url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        let callback_url = consent.headers()["location"].to_str().unwrap().to_owned();

        let t1 = Instant::now();
        let done = http.get(&callback_url).send().await.unwrap();
        let callback_time = t1.elapsed();
        let location = done.headers()["location"].to_str().unwrap();
        assert!(location.contains("status=connected"), "{location}");
        if i >= 20 {
            // The first 20 warm up connections and caches.
            starts.push(start_time);
            callbacks.push(callback_time);
            totals.push(start_time + callback_time);
        }
    }
    println!("connect flow against a fake X on 127.0.0.1 ({iterations} connects)");
    report("start", starts);
    report("callback (incl. 2 provider calls)", callbacks);
    report("start + callback", totals);
}
