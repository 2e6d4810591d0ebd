//! Observability: `GET /metrics` (what given requests, connects, refreshes and webhook
//! events make it say), `server.metrics_bind`, `GET /readyz` beside `/healthz`,
//! `X-Request-Id`, and `log.format = "json"` in a real `dravo serve` process.

use crate::support;
use crate::support::fake_provider;

use std::collections::HashMap;
use std::sync::Arc;

use dravo::Config;
use dravo::clock::ManualClock;
use dravo::config::ProviderConfig;
use fake_provider::{FakeProvider, Kind};
use serde_json::{Value, json};
use support::process::{Server, http, runtime, tempdir};
use support::{Db, TestApp, app_body, assert_error, dravo_cmd, spawn_app};
use url::Url;

const CLIENT_ID: &str = "fake-client-id-123";
const CLIENT_SECRET: &str = "fake-client-secret-456";
const RETURN_URL: &str = "https://dash.example.com/connected";
const TENANT: &str = "tenant-metrics";

// ---------------------------------------------------------------------------------------------
// Reading a scrape

/// One scrape: every sample by `name{labels}` exactly as written, with its value.
struct Scrape {
    text: String,
    samples: HashMap<String, f64>,
}

impl Scrape {
    fn parse(text: String) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').expect("`series value`");
                (series.to_owned(), value.parse().expect("a number"))
            })
            .collect();
        Scrape { text, samples }
    }

    /// The value of `series`, failing the test (with the scrape) when it is absent.
    fn value(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("no sample `{series}` in the scrape:\n{}", self.text))
    }

    /// The value of `series`, 0 when absent (a series appears with its first event).
    fn value_or_zero(&self, series: &str) -> f64 {
        self.samples.get(series).copied().unwrap_or(0.0)
    }
}

async fn scrape_at(http: &reqwest::Client, url: &str) -> Scrape {
    let resp = http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200, "GET {url}");
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    Scrape::parse(resp.text().await.unwrap())
}

async fn scrape(app: &TestApp) -> Scrape {
    scrape_at(&app.http, &app.url("/metrics")).await
}

fn requests(route: &str, method: &str, status: u16) -> String {
    format!(
        "dravo_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}}"
    )
}

// ---------------------------------------------------------------------------------------------
// Request metrics

#[tokio::test]
async fn requests_are_counted_by_route_template_method_and_status_with_latency_histograms() {
    let app = spawn_app().await;
    let created = app.create_ok(TENANT, &app_body("x", "Metrics app")).await;
    let app_id = created["id"].as_str().unwrap();
    let missing_account = "acc_abcdefghijklmnopqrst";
    let before = scrape(&app).await;

    for _ in 0..2 {
        assert_eq!(app.get_as(TENANT, "/v1/oauth-apps").await.status(), 200);
    }
    let path = format!("/v1/oauth-apps/{app_id}");
    assert_eq!(app.get_as(TENANT, &path).await.status(), 200);
    let path = format!("/v1/accounts/{missing_account}");
    assert_error(app.get_as(TENANT, &path).await, 404, "not_found").await;
    // No token: refused by auth, still counted under the operation's template.
    let resp = app
        .http
        .get(app.url("/v1/oauth-apps"))
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "unauthorized").await;
    let resp = app
        .http
        .get(app.url("/no/such/thing"))
        .send()
        .await
        .unwrap();
    assert_error(resp, 404, "not_found").await;
    let resp = app.http.delete(app.url("/healthz")).send().await.unwrap();
    assert_error(resp, 405, "method_not_allowed").await;
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let after = scrape(&app).await;
    let grew = |series: String| after.value(&series) - before.value_or_zero(&series);
    assert_eq!(grew(requests("/v1/oauth-apps", "GET", 200)), 2.0);
    assert_eq!(grew(requests("/v1/oauth-apps/{id}", "GET", 200)), 1.0);
    assert_eq!(grew(requests("/v1/accounts/{id}", "GET", 404)), 1.0);
    assert_eq!(grew(requests("/v1/oauth-apps", "GET", 401)), 1.0);
    assert_eq!(grew(requests("unmatched", "GET", 404)), 1.0);
    assert_eq!(grew(requests("unmatched", "DELETE", 405)), 1.0);
    assert_eq!(grew(requests("/healthz", "GET", 200)), 1.0);
    // The scrape before this one, counted once it was answered.
    assert_eq!(after.value(&requests("/metrics", "GET", 200)), 1.0);

    // The latency histogram of a route: its count, and every bucket up to +Inf.
    let count =
        "dravo_http_request_duration_seconds_count{route=\"/v1/oauth-apps\",method=\"GET\"}";
    assert_eq!(grew(count.to_owned()), 3.0, "two 200s and a 401");
    let inf = "dravo_http_request_duration_seconds_bucket{route=\"/v1/oauth-apps\",method=\"GET\",le=\"+Inf\"}";
    assert_eq!(after.value(inf), after.value(count));
    assert!(
        after
            .text
            .contains("# TYPE dravo_http_request_duration_seconds histogram")
    );
    assert!(
        after
            .samples
            .contains_key("dravo_http_request_duration_seconds_bucket{route=\"/v1/oauth-apps\",method=\"GET\",le=\"0.005\"}"),
        "{}",
        after.text
    );
    // Ids stay out of the labels.
    for id in [app_id, missing_account, "/no/such/thing"] {
        assert!(!after.text.contains(id), "`{id}` is in the scrape");
    }
    app.stop().await;
}

#[tokio::test]
async fn metrics_on_the_main_address_need_no_token_when_no_metrics_bind_is_set() {
    let app = spawn_app().await;
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let resp = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("# TYPE dravo_http_requests_total counter"),
        "{text}"
    );
    assert!(text.contains("dravo_build_info{version=\""), "{text}");
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Connects, refreshes, accounts

fn point_at_fake(config: &mut Config, fake: &FakeProvider) {
    let (authorize, token, api) = fake.config_urls();
    config.providers.set(
        fake.kind.as_str().parse().unwrap(),
        ProviderConfig {
            authorize_url: Some(Url::parse(&authorize).unwrap()),
            token_url: Some(Url::parse(&token).unwrap()),
            api_base: Some(Url::parse(&api).unwrap()),
            ..Default::default()
        },
    );
    config.dashboard.allowed_return_urls = vec!["https://dash.example.com".into()];
    // Refreshes happen when the test asks, never behind its back.
    config.refresh.background = false;
}

/// start → the fake's consent → Dravo's callback. Returns the callback's answer.
async fn connect(app: &TestApp, provider: &str, app_id: &str) -> reqwest::Response {
    let start = app
        .http
        .get(app.url(&format!("/v1/oauth/{provider}/start")))
        .query(&[("oauth_app_id", app_id), ("return_url", RETURN_URL)])
        .bearer_auth(app.token(TENANT))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 200);
    let body: Value = start.json().await.unwrap();
    let consent = app
        .http
        .get(body["authorize_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), 302, "the fake's consent redirects");
    let callback = consent.headers()["location"].to_str().unwrap().to_owned();
    app.http.get(callback).send().await.unwrap()
}

fn connected_account(resp: &reqwest::Response) -> String {
    assert_eq!(resp.status(), 302);
    let location = Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let pairs: HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(pairs["status"], "connected", "{location}");
    pairs["account_id"].clone()
}

fn connects(provider: &str, outcome: &str) -> String {
    format!("dravo_connects_total{{provider=\"{provider}\",outcome=\"{outcome}\"}}")
}

fn refreshes(provider: &str, outcome: &str) -> String {
    format!("dravo_refreshes_total{{provider=\"{provider}\",outcome=\"{outcome}\"}}")
}

fn accounts(provider: &str, status: &str) -> String {
    format!("dravo_accounts{{provider=\"{provider}\",status=\"{status}\"}}")
}

#[tokio::test]
async fn connects_refreshes_and_stored_accounts_show_by_provider_and_outcome() {
    let fake = FakeProvider::start(Kind::X, CLIENT_ID, CLIENT_SECRET).await;
    let clock = ManualClock::starting_now();
    let app = support::spawn_app_with_clock(
        |config| point_at_fake(config, &fake),
        Arc::new(clock.clone()),
    )
    .await;
    let body = json!({
        "provider": "x", "name": "Metrics X",
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
    });
    let app_id = app.create_ok(TENANT, &body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let fresh = scrape(&app).await;
    assert_eq!(fresh.value(&connects("x", "connected")), 0.0);
    assert_eq!(fresh.value(&accounts("x", "active")), 0.0);
    assert_eq!(fresh.value(&refreshes("x", "refreshed")), 0.0);

    let account = connected_account(&connect(&app, "x", &app_id).await);
    // A forged state: refused, and counted as such.
    let forged = app
        .http
        .get(app.url("/v1/oauth/x/callback"))
        .query(&[("code", "c"), ("state", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    // Within 5 s of the last count, the stored figures are that count's (a flood of scrapes
    // costs one count per 5 s); this process's own counters are live.
    let cached = scrape(&app).await;
    assert_eq!(cached.value(&connects("x", "connected")), 1.0);
    assert_eq!(
        cached.value(&accounts("x", "active")),
        0.0,
        "counted 0 s ago"
    );
    clock.advance(5);
    let after_connect = scrape(&app).await;
    assert_eq!(after_connect.value(&connects("x", "connected")), 1.0);
    assert_eq!(after_connect.value(&connects("x", "bad_state")), 1.0);
    assert_eq!(after_connect.value(&connects("linkedin", "connected")), 0.0);
    assert_eq!(after_connect.value(&accounts("x", "active")), 1.0);
    assert_eq!(after_connect.value(&accounts("x", "needs_reauth")), 0.0);

    let refresh = |app: &TestApp| {
        let url = app.url(&format!("/v1/accounts/{account}/refresh"));
        let token = app.token(TENANT);
        let http = app.http.clone();
        async move { http.post(url).bearer_auth(token).send().await.unwrap() }
    };
    assert_eq!(refresh(&app).await.status(), 200);
    assert_eq!(scrape(&app).await.value(&refreshes("x", "refreshed")), 1.0);

    // The provider forgets every refresh token: the next refresh is refused for good.
    fake.invalidate_refresh_tokens();
    assert_error(refresh(&app).await, 409, "needs_reauth").await;
    clock.advance(5);
    let after_refusal = scrape(&app).await;
    assert_eq!(after_refusal.value(&refreshes("x", "refreshed")), 1.0);
    assert_eq!(after_refusal.value(&refreshes("x", "needs_reauth")), 1.0);
    assert_eq!(after_refusal.value(&accounts("x", "active")), 0.0);
    assert_eq!(after_refusal.value(&accounts("x", "needs_reauth")), 1.0);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Webhook outbox

#[tokio::test]
async fn the_webhook_outbox_depth_and_oldest_pending_age_are_gauges() {
    // Webhooks go to a port nothing listens on: each event stays pending.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let receiver = format!("http://{}/hooks", closed.local_addr().unwrap());
    drop(closed);
    let fake = FakeProvider::start(Kind::X, CLIENT_ID, CLIENT_SECRET).await;
    let clock = ManualClock::starting_now();
    let app = support::spawn_app_with_clock(
        |config| {
            point_at_fake(config, &fake);
            config.webhooks.url = Some(Url::parse(&receiver).unwrap());
            config.webhooks.secret = Some("a-webhook-secret-of-32-chars!!!!".to_owned().into());
        },
        Arc::new(clock.clone()),
    )
    .await;
    let empty = scrape(&app).await;
    assert_eq!(empty.value("dravo_webhook_outbox_pending"), 0.0);
    assert_eq!(
        empty.value("dravo_webhook_outbox_oldest_pending_age_seconds"),
        0.0
    );

    let body = json!({
        "provider": "x", "name": "Outbox X",
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
    });
    let app_id = app.create_ok(TENANT, &body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    connected_account(&connect(&app, "x", &app_id).await);
    clock.advance(90);
    let one = scrape(&app).await;
    assert_eq!(
        one.value("dravo_webhook_outbox_pending"),
        1.0,
        "account.connected"
    );
    assert_eq!(
        one.value("dravo_webhook_outbox_oldest_pending_age_seconds"),
        90.0
    );
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Readiness

async fn readyz(app: &TestApp) -> reqwest::Response {
    app.http.get(app.url("/readyz")).send().await.unwrap()
}

#[tokio::test]
async fn readyz_is_ok_on_a_ready_server() {
    let app = spawn_app().await;
    let resp = readyz(&app).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    app.stop().await;
}

#[tokio::test]
async fn readyz_is_503_naming_the_schema_when_a_newer_build_migrated_the_database() {
    let app = spawn_app().await;
    let db = Db::open(&app.db_path());
    let current = db.schema_version();
    db.set_schema_version(current + 1);

    let message = assert_error(readyz(&app).await, 503, "not_ready").await;
    assert_eq!(
        message,
        format!(
            "not ready: migrations: the database schema is at version {}, newer than this build's {current} (a newer Dravo migrated it)",
            current + 1
        )
    );
    // Alive all the same: liveness is not readiness.
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    db.set_schema_version(current);
    assert_eq!(readyz(&app).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn readyz_is_503_naming_the_key_when_the_database_belongs_to_another_key() {
    let app = spawn_app().await;
    let db = Db::open(&app.db_path());
    let check = db
        .value("SELECT check_value FROM master_keys WHERE id = 1", &[])
        .text();
    // As if the database had been swapped for one sealed with another master key.
    db.execute(
        "UPDATE master_keys SET check_value = 'another-key' WHERE id = 1",
        &[],
    );
    let message = assert_error(readyz(&app).await, 503, "not_ready").await;
    assert_eq!(
        message,
        "not ready: key: the database seals with master key 1, and the key loaded here is another one"
    );
    db.execute(
        "UPDATE master_keys SET check_value = ?1 WHERE id = 1",
        &[check.into()],
    );
    assert_eq!(readyz(&app).await.status(), 200);
    app.stop().await;
}

/// Anyone may ask `/readyz`: a failed database check names the check, never where the
/// database lives (a PostgreSQL host, port and name, or a SQLite file) nor the driver's error.
#[tokio::test]
async fn readyz_names_the_failed_database_check_without_saying_where_the_database_lives() {
    let app = spawn_app().await;
    // The key check reads this table: without it the database check fails there.
    Db::open(&app.db_path()).batch("DROP TABLE master_keys");

    let message = assert_error(readyz(&app).await, 503, "not_ready").await;
    assert_eq!(
        message,
        "not ready: database: the database did not answer the readiness check (the server log says why)"
    );
    let path = app.db_path();
    let dir = path.parent().unwrap().to_string_lossy().into_owned();
    for leak in [
        dir.as_str(),
        "master_keys",
        "127.0.0.1",
        "localhost",
        "postgres",
        "dravo.db",
    ] {
        assert!(!message.contains(leak), "{leak} in {message}");
    }
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// X-Request-Id

#[tokio::test]
async fn a_sane_request_id_is_echoed_and_any_other_is_replaced_by_a_fresh_one() {
    let app = spawn_app().await;
    let send = |path: &str, id: Option<String>| {
        let mut req = app.http.get(app.url(path));
        if let Some(id) = id {
            req = req.header("x-request-id", id);
        }
        req
    };
    let id_of = |resp: &reqwest::Response| {
        resp.headers()
            .get("x-request-id")
            .expect("every answer carries X-Request-Id")
            .to_str()
            .unwrap()
            .to_owned()
    };
    let is_fresh = |id: &str| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());

    for path in ["/healthz", "/v1/oauth-apps", "/nowhere"] {
        let kept = "req-7f3c2a1e_4b5d:4c6e/8f90";
        let resp = send(path, Some(kept.into())).send().await.unwrap();
        assert_eq!(id_of(&resp), kept, "{path}");

        let first = id_of(&send(path, None).send().await.unwrap());
        let second = id_of(&send(path, None).send().await.unwrap());
        assert!(is_fresh(&first) && is_fresh(&second), "{first} {second}");
        assert_ne!(first, second);

        for bad in ["x".repeat(129), "has space".into(), String::new()] {
            let resp = send(path, Some(bad.clone())).send().await.unwrap();
            let id = id_of(&resp);
            assert!(is_fresh(&id), "{bad:?} was replaced by {id}");
        }
    }
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The real server process: metrics_bind, log format

/// `metrics on http://ADDR/metrics` from the logs.
fn metrics_url(logs: &str) -> Option<String> {
    let start = logs.find("metrics on http://")? + "metrics on ".len();
    let rest = &logs[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"')
        .unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

#[test]
fn metrics_bind_serves_metrics_on_its_own_address_and_not_on_the_main_one() {
    let dir = tempdir();
    let mut cmd = dravo_cmd(dir.path());
    cmd.env("DRAVO_SERVER_METRICS_BIND", "127.0.0.1:0");
    let mut server = Server::start(cmd);
    let logs = server
        .logs
        .wait_for("the metrics address", |t| metrics_url(t).is_some());
    let metrics = metrics_url(&logs).unwrap();
    assert_ne!(metrics, server.url("/metrics"));
    runtime().block_on(async {
        let http = http();
        assert_eq!(
            http.get(server.url("/healthz"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        let on_main = http.get(server.url("/metrics")).send().await.unwrap();
        assert_error(on_main, 404, "not_found").await;

        let scrape = scrape_at(&http, &metrics).await;
        assert_eq!(scrape.value(&requests("/healthz", "GET", 200)), 1.0);
        // The refused scrape on the main address counts there like any unknown route.
        assert_eq!(scrape.value(&requests("/metrics", "GET", 404)), 1.0);
        // The metrics address serves nothing else.
        let other = metrics.replace("/metrics", "/healthz");
        assert_error(http.get(other).send().await.unwrap(), 404, "not_found").await;
    });
    server.stop();
}

#[test]
fn json_logs_are_one_object_per_line_and_carry_request_ids() {
    let dir = tempdir();
    let mut cmd = dravo_cmd(dir.path());
    cmd.env("DRAVO_LOG_FORMAT", "json");
    let mut server = Server::start(cmd);
    let fresh_id = runtime().block_on(async {
        let http = http();
        // Not ready for a moment, so that a line is logged while a request is handled.
        let db = Db::open(&dir.path().join("dravo.db"));
        let schema = db.schema_version();
        db.set_schema_version(1000);
        let not_ready = http
            .get(server.url("/readyz"))
            .header("x-request-id", "not-ready-id")
            .send()
            .await
            .unwrap();
        assert_eq!(not_ready.status(), 503);
        db.set_schema_version(schema);
        let kept = http
            .get(server.url("/healthz"))
            .header("x-request-id", "client-chosen-id-42")
            .send()
            .await
            .unwrap();
        assert_eq!(kept.headers()["x-request-id"], "client-chosen-id-42");
        let fresh = http.get(server.url("/nowhere")).send().await.unwrap();
        assert_eq!(fresh.status(), 404);
        fresh.headers()["x-request-id"].to_str().unwrap().to_owned()
    });
    let logs = server.stop();

    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for line in &lines {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(line.get(key).is_some(), "no `{key}` in {line}");
        }
    }
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .unwrap()
            .starts_with("listening on http://")),
        "{logs}"
    );
    let request_line = |id: &str| {
        lines
            .iter()
            .find(|l| l["target"] == "dravo::http" && l["request_id"] == id)
            .unwrap_or_else(|| panic!("no request line with id {id}:\n{logs}"))
            .clone()
    };
    let kept = request_line("client-chosen-id-42");
    assert_eq!(kept["message"], "request");
    assert_eq!(kept["path"], "/healthz");
    assert_eq!(kept["method"], "GET");
    assert_eq!(kept["status"], 200);
    let fresh = request_line(&fresh_id);
    assert_eq!(fresh["path"], "/nowhere");
    assert_eq!(fresh["status"], 404);
    // A line logged while the request was handled names it in its span.
    let warning = lines
        .iter()
        .find(|l| l["level"] == "WARN" && l["span"]["request_id"] == "not-ready-id")
        .unwrap_or_else(|| panic!("no warning in the request's span:\n{logs}"));
    assert_eq!(warning["span"]["name"], "request");
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .starts_with("not ready: migrations:"),
        "{warning}"
    );
}

#[test]
fn text_logs_carry_the_request_id_in_the_request_line() {
    let dir = tempdir();
    let mut server = Server::start(dravo_cmd(dir.path()));
    runtime().block_on(async {
        let resp = http()
            .get(server.url("/healthz"))
            .header("x-request-id", "text-log-id-7")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    });
    let logs = server.stop();
    let line = logs
        .lines()
        .find(|l| l.contains("request_id=text-log-id-7"))
        .unwrap_or_else(|| panic!("no request line with the id:\n{logs}"));
    assert!(
        line.contains("path=/healthz") && line.contains("status=200"),
        "{line}"
    );
    assert!(
        serde_json::from_str::<Value>(line).is_err(),
        "text, not JSON: {line}"
    );
}

#[test]
fn a_bad_log_format_or_metrics_bind_stops_dravo_at_start_naming_the_key() {
    use support::cmd::{dravo_init, dravo_with};
    let dir = tempdir();
    dravo_init(dir.path(), &[]);
    for args in [&["serve"][..], &["oauth-apps", "list", "--owner", "a"][..]] {
        let env = [
            ("DRAVO_LOG_FORMAT", "xml"),
            ("DRAVO_SERVER_BIND", "127.0.0.1:0"),
        ];
        dravo_with(dir.path(), &env, args, "").assert_config_error(&[
            "`log.format`",
            "xml",
            "`text`",
            "`json`",
            "DRAVO_LOG_FORMAT",
        ]);
    }
    let env = [
        ("DRAVO_SERVER_METRICS_BIND", "9100"),
        ("DRAVO_SERVER_BIND", "127.0.0.1:0"),
    ];
    dravo_with(dir.path(), &env, &["serve"], "").assert_config_error(&[
        "server.metrics_bind must be a host and port like 127.0.0.1:8080 or localhost:8080, not `9100`",
    ]);
    // Taken already: the address is named.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let env = [
        ("DRAVO_SERVER_METRICS_BIND", address.as_str()),
        ("DRAVO_SERVER_BIND", "127.0.0.1:0"),
    ];
    dravo_with(dir.path(), &env, &["serve"], "")
        .assert_config_error(&["cannot listen on server.metrics_bind", &address]);
}
