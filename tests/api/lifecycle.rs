//! The token lifecycle against fake providers on 127.0.0.1 that rotate and check refresh
//! tokens the way the real ones do: access tokens refreshed near expiry and exactly once
//! under concurrency (in one server, and between the server and a CLI process), rotation
//! stored before anyone sees the token, failures classified (definitive, app credentials,
//! transient), deadlines warned about and enforced, revoke on delete, and the event log.

use crate::support;
use crate::support::fake_provider;

use std::sync::Arc;

use dravo::Config;
use dravo::clock::{Clock, ManualClock};
use dravo::config::ProviderConfig;
use fake_provider::{FakeProvider, Fault, Kind};
use serde_json::{Value, json};
use support::{TestApp, assert_error, dravo_cmd, spawn_app_with_clock};
use url::Url;

const CLIENT_ID: &str = "fake-client-id-123";
const CLIENT_SECRET: &str = "fake-client-secret-456";
const DASH: &str = "https://dash.example.com/done";
const TENANT: &str = "tenant-alice";
const DAY: i64 = 86_400;

/// A server on a manual clock with one fake provider, its BYOK app, and one connected
/// account. The background refresher is off: tests run its passes themselves.
struct Connected {
    app: TestApp,
    fake: FakeProvider,
    clock: ManualClock,
    app_id: String,
    account_id: String,
}

async fn connected(kind: Kind) -> Connected {
    connected_with(kind, |_| {}).await
}

async fn connected_with(kind: Kind, tweak: impl FnOnce(&mut Config)) -> Connected {
    connected_prepared(kind, |_, _| {}, tweak).await
}

/// Like `connected_with`, after `prepare` set up the fake (before the connect) on the
/// server's clock.
async fn connected_prepared(
    kind: Kind,
    prepare: impl FnOnce(&FakeProvider, &ManualClock),
    tweak: impl FnOnce(&mut Config),
) -> Connected {
    let fake = FakeProvider::start(kind, CLIENT_ID, CLIENT_SECRET).await;
    let clock = ManualClock::starting_now();
    prepare(&fake, &clock);
    let app = spawn_app_with_clock(
        |config| {
            let (authorize, token, api) = fake.config_urls();
            config.providers.set(
                kind.as_str().parse().unwrap(),
                ProviderConfig {
                    authorize_url: Some(Url::parse(&authorize).unwrap()),
                    token_url: Some(Url::parse(&token).unwrap()),
                    api_base: Some(Url::parse(&api).unwrap()),
                    ..Default::default()
                },
            );
            config.dashboard.allowed_return_urls = vec![DASH.into()];
            config.refresh.background = false;
            tweak(config);
        },
        Arc::new(clock.clone()),
    )
    .await;
    let created = app
        .create_ok(
            TENANT,
            &json!({"provider": kind.as_str(), "name": "App", "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET}),
        )
        .await;
    let app_id = created["id"].as_str().unwrap().to_owned();
    let account_id = connect(&app, &app_id, kind).await;
    Connected {
        app,
        fake,
        clock,
        app_id,
        account_id,
    }
}

/// start → the fake's consent screen → Dravo's callback; returns the account id.
async fn connect(app: &TestApp, app_id: &str, kind: Kind) -> String {
    let start = Url::parse_with_params(
        &app.url(&format!("/v1/oauth/{}/start", kind.as_str())),
        &[("oauth_app_id", app_id), ("return_url", DASH)],
    )
    .unwrap();
    let body: Value = app
        .http
        .get(start)
        .bearer_auth(app.token(TENANT))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let consent = app
        .http
        .get(body["authorize_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), 302, "the fake refused the authorize URL");
    let callback = consent.headers()["location"].to_str().unwrap().to_owned();
    let done = app.http.get(callback).send().await.unwrap();
    assert_eq!(done.status(), 302);
    let back = Url::parse(done.headers()["location"].to_str().unwrap()).unwrap();
    let pairs: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!(pairs["status"], "connected", "{back}");
    pairs["account_id"].clone()
}

impl Connected {
    fn path(&self, tail: &str) -> String {
        format!("/v1/accounts/{}{tail}", self.account_id)
    }

    async fn get(&self, tail: &str) -> reqwest::Response {
        self.app.get_as(TENANT, &self.path(tail)).await
    }

    async fn json(&self, tail: &str) -> Value {
        let resp = self.get(tail).await;
        assert_eq!(resp.status(), 200, "GET {tail}");
        resp.json().await.unwrap()
    }

    async fn access_token(&self) -> Value {
        self.json("/access-token").await
    }

    async fn account(&self) -> Value {
        self.json("").await
    }

    /// The event types of the account's log, newest first.
    async fn event_types(&self) -> Vec<String> {
        self.json("/events").await["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Moves the clock to `seconds` before the stored token expires.
    async fn near_expiry(&self, seconds: i64) {
        let expires = self.account().await["expires_at"]
            .as_str()
            .unwrap()
            .to_owned();
        let at =
            time::OffsetDateTime::parse(&expires, &time::format_description::well_known::Rfc3339)
                .unwrap()
                .unix_timestamp();
        self.clock
            .set(dravo::domain::Timestamp::from_unix(at - seconds));
    }

    async fn tend(&self) -> usize {
        self.app.dravo.tend_due_accounts().await.unwrap()
    }

    fn now(&self) -> i64 {
        self.clock.now().unix()
    }

    fn set_clock(&self, unix: i64) {
        self.clock.set(dravo::domain::Timestamp::from_unix(unix));
    }

    /// `n` concurrent requests of the account's `tail` (an access-token read), each answered
    /// 200; the tokens they got.
    async fn concurrent_tokens(&self, tail: &str, n: usize) -> Vec<String> {
        let url = self.app.url(&self.path(tail));
        let requests = (0..n).map(|_| {
            let (http, url, token) = (self.app.http.clone(), url.clone(), self.app.token(TENANT));
            async move {
                let resp = http.get(url).bearer_auth(token).send().await.unwrap();
                assert_eq!(resp.status(), 200);
                resp.json::<Value>().await.unwrap()["access_token"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            }
        });
        futures_join_all(requests).await
    }

    /// The refresh calls the fake has seen (not the code exchange).
    fn refresh_calls(&self) -> usize {
        self.fake
            .requests_to("/token")
            .iter()
            .filter(|r| r.param("grant_type") == Some("refresh_token"))
            .count()
    }
}

/// An RFC 3339 timestamp of the API as unix seconds.
fn unix(value: &Value) -> i64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {value}"));
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

#[tokio::test]
async fn x_refreshes_near_expiry_stores_the_rotated_token_and_the_old_one_is_dead() {
    refreshes_near_expiry_and_stores_the_rotated_token(Kind::X).await;
}

#[tokio::test]
async fn pinterest_refreshes_near_expiry_stores_the_rotated_token_and_the_old_one_is_dead() {
    refreshes_near_expiry_and_stores_the_rotated_token(Kind::Pinterest).await;
}

/// A provider whose refresh tokens rotate on every use (x, pinterest).
async fn refreshes_near_expiry_and_stores_the_rotated_token(kind: Kind) {
    let c = connected(kind).await;
    let first = c.access_token().await;
    assert_eq!(c.fake.token_requests(), 1, "fresh: no refresh");
    assert_eq!(first["token_type"], "bearer");
    assert_eq!(
        first["access_token"],
        c.fake.issued_access_tokens()[0].as_str()
    );

    c.near_expiry(299).await;
    let resp = c.get("/access-token").await;
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let second: Value = resp.json().await.unwrap();
    assert_eq!(c.fake.token_requests(), 2, "one refresh");
    assert_ne!(second["access_token"], first["access_token"]);
    assert_eq!(
        second["access_token"],
        c.fake.issued_access_tokens().last().unwrap().as_str()
    );
    // The refresh used the refresh token from the connect, which is now spent.
    let refreshes = c.fake.requests_to("/token");
    let used = refreshes.last().unwrap().param("refresh_token").unwrap();
    assert_eq!(used, c.fake.issued_refresh_tokens()[0]);
    assert!(!c.fake.refresh_token_valid(used), "the used one is spent");

    // A second refresh works only if the rotated token was stored.
    c.near_expiry(10).await;
    let third = c.access_token().await;
    assert_eq!(c.fake.token_requests(), 3);
    assert_ne!(third["access_token"], second["access_token"]);
    let used = c
        .fake
        .requests_to("/token")
        .last()
        .unwrap()
        .param("refresh_token")
        .unwrap()
        .to_owned();
    assert_eq!(used, c.fake.issued_refresh_tokens()[1]);
    let types = c.event_types().await;
    assert_eq!(types, ["refreshed", "refreshed", "connected"]);
    let events = c.json("/events").await;
    let fingerprint = events["data"][0]["detail"]["fingerprint"].as_str().unwrap();
    assert_eq!(fingerprint.len(), 8);
    assert!(
        !events
            .to_string()
            .contains(third["access_token"].as_str().unwrap())
    );
}

#[tokio::test]
async fn a_hundred_concurrent_requests_near_expiry_make_exactly_one_refresh() {
    a_hundred_concurrent_requests_make_one_refresh(Kind::X).await;
}

#[tokio::test]
async fn a_hundred_concurrent_pinterest_requests_near_expiry_make_exactly_one_refresh() {
    a_hundred_concurrent_requests_make_one_refresh(Kind::Pinterest).await;
}

/// A provider whose refresh tokens rotate: a second refresh with the spent token would fail.
async fn a_hundred_concurrent_requests_make_one_refresh(kind: Kind) {
    // The provider answers the refresh with the very access token it gave before (as one
    // issuing deterministic JWTs does within a second): the token is the same, so only the
    // tokens' version tells a waiter that the refresh it waited for happened.
    let c = connected(kind).await;
    c.fake.repeat_access_tokens(true);
    c.fake
        .set_fault(Fault::TokenDelay(std::time::Duration::from_millis(200)));
    c.near_expiry(60).await;
    let before = c.fake.token_requests();
    let tokens = c.concurrent_tokens("/access-token", 100).await;
    assert_eq!(c.fake.token_requests() - before, 1, "exactly one refresh");
    let issued = c.fake.issued_access_tokens();
    assert_eq!(issued.len(), 2);
    assert_eq!(issued[0], issued[1], "the fake repeated the token");
    assert!(tokens.iter().all(|t| *t == issued[1]), "all got the token");
    let account = c.account().await;
    assert!(unix(&account["expires_at"]) > c.now() + 3600, "{account}");
    assert_eq!(c.event_types().await, ["refreshed", "connected"]);
    // The rotated refresh token was stored: the next refresh works.
    assert_eq!(c.fake.issued_refresh_tokens().len(), 2);
    assert_eq!(
        c.get("/access-token?force_refresh=true").await.status(),
        200
    );
    assert_eq!(c.refresh_calls(), 2);
    assert_eq!(c.account().await["status"], "active");
}

#[tokio::test]
async fn concurrent_forced_refreshes_make_one_refresh_when_the_provider_repeats_the_token() {
    // Twenty callers ask for a new token at once. The first refresh's result answers them
    // all: it happened after each of them asked. A waiter comparing tokens would take
    // the repeated token for "nothing happened" and refresh again, twenty times in all.
    let c = connected(Kind::X).await;
    c.fake.repeat_access_tokens(true);
    // Slow enough that every request has read the account before the refresh ends.
    c.fake
        .set_fault(Fault::TokenDelay(std::time::Duration::from_millis(1500)));
    let tokens = c
        .concurrent_tokens("/access-token?force_refresh=true", 20)
        .await;
    assert_eq!(
        c.refresh_calls(),
        1,
        "one refresh for twenty forced requests"
    );
    let issued = c.fake.issued_access_tokens();
    assert_eq!(issued[0], issued[1], "the fake repeated the token");
    assert!(tokens.iter().all(|t| *t == issued[1]));
    // Asked again afterwards, a forced refresh is a new refresh.
    assert_eq!(
        c.get("/access-token?force_refresh=true").await.status(),
        200
    );
    assert_eq!(c.refresh_calls(), 2);
}

#[tokio::test]
async fn an_explicit_refresh_tells_a_provider_failure_the_backoff_and_invalid_grant_apart() {
    let c = connected(Kind::X).await;
    let path = c.path("/refresh");
    let refresh = || c.app.send_as(TENANT, reqwest::Method::POST, &path);

    // Success: 200 and the refreshed account.
    let ok = refresh().await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["id"], c.account_id.as_str());
    assert_eq!(c.refresh_calls(), 1);

    // The provider fails: 502 provider_error with what it answered, the failure's class,
    // the account's status, and when Dravo tries again.
    c.fake.set_fault(Fault::TokenStatus(500));
    let failed = refresh().await;
    assert_eq!(failed.status(), 502);
    let body: Value = failed.json().await.unwrap();
    let error = &body["error"];
    assert_eq!(error["code"], "provider_error", "{body}");
    assert_eq!(error["refresh"]["provider_error"], "server_error", "{body}");
    assert!(
        error["refresh"]["provider_error_description"].is_string(),
        "{body}"
    );
    assert_eq!(error["refresh"]["failure"], "transient", "{body}");
    assert_eq!(error["refresh"]["account_status"], "active", "{body}");
    let next = unix(&error["refresh"]["next_attempt_at"]);
    assert!(next >= c.now() + 60, "{body}");
    assert!(
        error["message"].as_str().unwrap().contains("server_error"),
        "{body}"
    );
    assert_eq!(c.refresh_calls(), 2);
    assert_eq!(c.account().await["status"], "active");

    // Asked again during the backoff: 503 refresh_backoff, Retry-After, and no call.
    c.fake.set_fault(Fault::TokenStatus(400));
    c.clock.advance(10);
    let refused = refresh().await;
    assert_eq!(refused.status(), 503);
    let retry_after: i64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry_after, next - c.now());
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "refresh_backoff", "{body}");
    assert_eq!(unix(&body["error"]["refresh"]["next_attempt_at"]), next);
    assert_eq!(body["error"]["refresh"]["failures"], 1, "{body}");
    assert_eq!(c.refresh_calls(), 2, "no call during the backoff");
    // So is a forced token request.
    let forced = c.get("/access-token?force_refresh=true").await;
    assert_eq!(forced.status(), 503);
    assert_eq!(c.refresh_calls(), 2);
    // A plain request still gets the working token.
    assert_eq!(c.get("/access-token").await.status(), 200);

    // After the backoff, the provider refuses the grant: 409 needs_reauth that says so.
    c.set_clock(next);
    let gone = refresh().await;
    assert_eq!(gone.status(), 409);
    let body: Value = gone.json().await.unwrap();
    assert_eq!(body["error"]["code"], "needs_reauth", "{body}");
    assert_eq!(body["error"]["refresh"]["provider_error"], "invalid_grant");
    assert_eq!(body["error"]["refresh"]["failure"], "account");
    assert_eq!(body["error"]["refresh"]["account_status"], "needs_reauth");
    assert!(
        body["error"]["refresh"].get("next_attempt_at").is_none(),
        "{body}"
    );
    assert_eq!(c.refresh_calls(), 3);
    assert_eq!(c.account().await["status"], "needs_reauth");
    // And from then on, without a call.
    assert_error(refresh().await, 409, "needs_reauth").await;
    assert_eq!(c.refresh_calls(), 3);
}

#[tokio::test]
async fn the_cli_says_why_a_refresh_failed_and_exits_non_zero() {
    let c = connected(Kind::X).await;
    let (authorize, token, api) = c.fake.config_urls();
    // Off the test's async thread: the fake provider answers on it.
    let cli = |args: &[&str]| {
        let mut cmd = dravo_cmd(c.app.dir.path());
        cmd.env("DRAVO_PROVIDERS_X_AUTHORIZE_URL", &authorize)
            .env("DRAVO_PROVIDERS_X_TOKEN_URL", &token)
            .env("DRAVO_PROVIDERS_X_API_BASE", &api)
            .args(args);
        async move {
            tokio::task::spawn_blocking(move || cmd.output().unwrap())
                .await
                .unwrap()
        }
    };
    c.fake.set_fault(Fault::TokenStatus(503));
    // A forced token that cannot be had prints no token, says why, and exits 1.
    let out = cli(&[
        "accounts",
        "token",
        "--owner",
        TENANT,
        &c.account_id,
        "--force-refresh",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "printed a token anyway");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("server_error"), "{stderr}");
    assert!(stderr.contains("transient"), "{stderr}");
    assert!(stderr.contains("next attempt"), "{stderr}");
    assert_eq!(c.refresh_calls(), 1);
    // Refreshing again during the backoff: refused without a call, and the next attempt.
    let out = cli(&["accounts", "refresh", "--owner", TENANT, &c.account_id]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no call was made"), "{stderr}");
    assert!(stderr.contains("next attempt is at"), "{stderr}");
    assert_eq!(c.refresh_calls(), 1);
}

/// `join_all` without a new dependency: spawn each and await in order.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn the_server_and_a_cli_process_refreshing_at_once_make_one_refresh_each_in_turn() {
    // The fake answers slowly, so the two refreshes overlap in time; each must use the
    // refresh token the other stored, or X's rotation would refuse the second.
    let c = connected(Kind::X).await;
    c.fake
        .set_fault(Fault::TokenDelay(std::time::Duration::from_millis(400)));
    let dir = c.app.dir.path().to_owned();
    let account = c.account_id.clone();
    // The CLI reads its configuration from the environment: the same fake as the server.
    let (authorize, token, api) = c.fake.config_urls();
    let cli = tokio::task::spawn_blocking(move || {
        dravo_cmd(&dir)
            .env("DRAVO_PROVIDERS_X_AUTHORIZE_URL", authorize)
            .env("DRAVO_PROVIDERS_X_TOKEN_URL", token)
            .env("DRAVO_PROVIDERS_X_API_BASE", api)
            .args(["accounts", "refresh", "--owner", TENANT, &account, "--json"])
            .output()
            .unwrap()
    });
    let forced = format!("{}?force_refresh=true", c.path("/access-token"));
    let server = c.app.get_as(TENANT, &forced);
    let (cli, server) = tokio::join!(cli, server);
    let cli = cli.unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert_eq!(server.status(), 200);
    let account = c.account().await;
    assert_eq!(account["status"], "active", "{account}");
    // Every refresh the fake saw used the latest refresh token: none was refused.
    let refreshes: Vec<_> = c
        .fake
        .requests_to("/token")
        .into_iter()
        .filter(|r| r.param("grant_type") == Some("refresh_token"))
        .collect();
    assert!((1..=2).contains(&refreshes.len()), "{}", refreshes.len());
    let issued = c.fake.issued_refresh_tokens();
    for (i, r) in refreshes.iter().enumerate() {
        assert_eq!(r.param("refresh_token").unwrap(), issued[i], "refresh {i}");
    }
    assert!(!c.event_types().await.contains(&"refresh_failed".to_owned()));
}

#[tokio::test]
async fn a_refresh_by_a_cli_process_in_flight_makes_the_server_wait_for_its_token() {
    // The CLI's refresh reaches the (slow) provider first and holds the account's lease; a
    // forced refresh in the server meanwhile must not call the provider with the same
    // refresh token (X would refuse it) but wait and hand out the token the CLI stored.
    let c = connected(Kind::X).await;
    c.fake
        .set_fault(Fault::TokenDelay(std::time::Duration::from_millis(1000)));
    let dir = c.app.dir.path().to_owned();
    let account = c.account_id.clone();
    let (authorize, token, api) = c.fake.config_urls();
    let cli = tokio::task::spawn_blocking(move || {
        dravo_cmd(&dir)
            .env("DRAVO_PROVIDERS_X_AUTHORIZE_URL", authorize)
            .env("DRAVO_PROVIDERS_X_TOKEN_URL", token)
            .env("DRAVO_PROVIDERS_X_API_BASE", api)
            .args(["accounts", "refresh", "--owner", TENANT, &account, "--json"])
            .output()
            .unwrap()
    });
    // Wait until the CLI's refresh is at the provider.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while c.refresh_calls() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the CLI never refreshed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let forced = format!("{}?force_refresh=true", c.path("/access-token"));
    let server = c.app.get_as(TENANT, &forced).await;
    assert_eq!(server.status(), 200);
    let served: Value = server.json().await.unwrap();
    let cli = cli.await.unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert_eq!(c.refresh_calls(), 1, "the server did not call the provider");
    assert_eq!(
        served["access_token"],
        c.fake.issued_access_tokens().last().unwrap().as_str(),
        "the server handed out the token the CLI stored"
    );
    let refresh = c.fake.requests_to("/token").pop().unwrap();
    assert_eq!(
        refresh.param("refresh_token").unwrap(),
        c.fake.issued_refresh_tokens()[0]
    );
    assert_eq!(c.account().await["status"], "active");
    assert_eq!(c.event_types().await, ["refreshed", "connected"]);
}

#[tokio::test]
async fn a_refused_refresh_token_means_needs_reauth_with_an_event_and_a_409() {
    let c = connected(Kind::Tiktok).await;
    c.fake.invalidate_refresh_tokens();
    c.near_expiry(30).await;
    let resp = c.get("/access-token").await;
    let message = assert_error(resp, 409, "needs_reauth").await;
    assert!(message.contains("invalid_grant"), "{message}");
    let account = c.account().await;
    assert_eq!(account["status"], "needs_reauth");
    assert!(
        account["status_reason"]
            .as_str()
            .unwrap()
            .contains("invalid_grant")
    );
    assert_eq!(
        c.event_types().await,
        ["needs_reauth", "refresh_failed", "connected"]
    );
    // Never retried: the refresher leaves it alone, the endpoint answers from the row.
    let calls = c.fake.token_requests();
    c.clock.advance(86_400);
    c.tend().await;
    assert_error(c.get("/access-token").await, 409, "needs_reauth").await;
    assert_eq!(c.fake.token_requests(), calls);
    let listed = c
        .app
        .get_as(TENANT, "/v1/accounts?status=needs_reauth")
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    let active = c
        .app
        .get_as(TENANT, "/v1/accounts?status=active")
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert!(active["data"].as_array().unwrap().is_empty());

    // A reconnect brings it back, with `recovered`.
    connect(&c.app, &c.app_id, Kind::Tiktok).await;
    assert_eq!(c.account().await["status"], "active");
    let types = c.event_types().await;
    assert_eq!(&types[..2], ["recovered", "reconnected"]);
}

#[tokio::test]
async fn an_outage_keeps_the_account_active_backs_off_and_recovers() {
    let c = connected(Kind::Linkedin).await;
    let stored = c.access_token().await["access_token"].clone();
    c.fake.set_fault(Fault::TokenStatus(503));
    c.near_expiry(100).await;
    // Still valid: the caller gets the stored token, the failure is recorded.
    let token = c.access_token().await;
    assert_eq!(token["access_token"], stored);
    let account = c.account().await;
    assert_eq!(account["status"], "active");
    let events = c.json("/events").await;
    let failed = &events["data"][0];
    assert_eq!(failed["type"], "refresh_failed");
    assert_eq!(failed["detail"]["attempt"], 1);
    assert_eq!(failed["detail"]["blame"], "account");
    assert!(failed["detail"]["next_attempt_at"].is_string());
    // Cooling down: more requests make no provider calls.
    let calls = c.fake.token_requests();
    for _ in 0..20 {
        c.access_token().await;
    }
    assert_eq!(
        c.fake.token_requests(),
        calls,
        "no retry before the backoff ends"
    );
    // Expired during the outage and still cooling down: a 502, not a dead token.
    c.clock.advance(101);
    assert_error(c.get("/access-token").await, 502, "provider_error").await;
    assert_eq!(c.account().await["status"], "active");

    // The provider is back; after the backoff the refresher renews it.
    c.fake.set_fault(Fault::None);
    c.clock.advance(3 * 3600);
    assert_eq!(c.tend().await, 1);
    let renewed = c.access_token().await;
    assert_ne!(renewed["access_token"], stored);
    assert_eq!(&c.event_types().await[..2], ["recovered", "refreshed"]);
}

#[tokio::test]
async fn a_failing_account_costs_a_handful_of_provider_calls_a_day() {
    let c = connected(Kind::X).await;
    c.fake.set_fault(Fault::TokenStatus(500));
    c.near_expiry(100).await;
    let before = c.fake.token_requests();
    // A day of refresher passes every 30 s and a caller asking every 30 s.
    for _ in 0..(86_400 / 30) {
        c.clock.advance(30);
        c.tend().await;
        let _ = c.get("/access-token").await;
    }
    let calls = c.fake.token_requests() - before;
    assert!(calls <= 30, "{calls} provider calls in a day");
    assert_eq!(c.account().await["status"], "active");
}

#[tokio::test]
async fn refused_app_credentials_blame_the_app_not_the_account() {
    refused_app_credentials_blame_the_app(Kind::X).await;
}

#[tokio::test]
async fn pinterest_and_reddit_refusing_the_apps_credentials_blame_the_app() {
    // Neither says `invalid_client`: Pinterest answers 401 `{code, message}`, Reddit 401
    // `{"message": "Unauthorized", "error": 401}`; both are the app's credentials.
    refused_app_credentials_blame_the_app(Kind::Pinterest).await;
    refused_app_credentials_blame_the_app(Kind::Reddit).await;
}

/// A refresh whose client authentication the provider refuses leaves the account active and
/// cools the app down.
async fn refused_app_credentials_blame_the_app(kind: Kind) {
    let c = connected(kind).await;
    c.fake.set_fault(Fault::TokenStatus(401));
    c.near_expiry(10).await;
    c.access_token().await;
    let account = c.account().await;
    assert_eq!(account["status"], "active", "{account}");
    let events = c.json("/events").await;
    assert_eq!(
        events["data"][0]["detail"]["blame"], "app",
        "{kind}: {events}"
    );
    let calls = c.fake.token_requests();
    c.clock.advance(30 * 60);
    c.tend().await;
    assert_eq!(c.fake.token_requests(), calls, "an hour's cooldown");
}

#[tokio::test]
async fn an_answer_without_a_refresh_token_keeps_the_stored_one_and_without_expires_in_gets_a_default()
 {
    // LinkedIn does not rotate: its refresh answer may omit the refresh token.
    keeps_the_stored_refresh_token(Kind::Linkedin).await;
}

#[tokio::test]
async fn reddit_refreshes_keep_the_stored_refresh_token() {
    // Reddit's refresh token neither rotates nor expires: answers carry none.
    keeps_the_stored_refresh_token(Kind::Reddit).await;
}

/// Two refreshes near expiry of a provider whose refresh token does not rotate use the same
/// stored refresh token.
async fn keeps_the_stored_refresh_token(kind: Kind) {
    let c = connected(kind).await;
    c.near_expiry(10).await;
    c.access_token().await;
    c.near_expiry(10).await;
    c.access_token().await;
    let refreshes: Vec<_> = c
        .fake
        .requests_to("/token")
        .into_iter()
        .filter(|r| r.param("grant_type") == Some("refresh_token"))
        .collect();
    assert_eq!(refreshes.len(), 2);
    assert_eq!(
        refreshes[0].param("refresh_token"),
        refreshes[1].param("refresh_token"),
        "the same refresh token, kept"
    );
    assert_eq!(
        refreshes[0].param("refresh_token"),
        Some(c.fake.issued_refresh_tokens()[0].as_str()),
        "{kind}: the one from the connect"
    );
    assert_eq!(c.account().await["status"], "active");
}

#[tokio::test]
async fn an_apps_own_user_agent_reaches_reddit_on_every_call() {
    const AGENT: &str = "web:com.example.scheduler:1.4 (by /u/example)";
    let c = connected(Kind::Reddit).await;
    // The connect went out with Reddit's default, which names Dravo.
    let default = format!(
        "web:dravo:{} (by Dravo, self-hosted)",
        env!("CARGO_PKG_VERSION")
    );
    let agents = |from: usize| -> Vec<(String, Option<String>)> {
        c.fake.requests()[from..]
            .iter()
            .filter(|r| r.path != "/authorize")
            .map(|r| (r.path.clone(), r.user_agent.clone()))
            .collect()
    };
    let connect_calls = agents(0);
    assert_eq!(connect_calls.len(), 2, "{connect_calls:?}");
    assert!(
        connect_calls
            .iter()
            .all(|(_, ua)| ua.as_deref() == Some(default.as_str())),
        "{connect_calls:?}"
    );

    let resp = c
        .app
        .http
        .patch(c.app.url(&format!("/v1/oauth-apps/{}", c.app_id)))
        .bearer_auth(c.app.token(TENANT))
        .json(&json!({"user_agent": AGENT}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let app: Value = resp.json().await.unwrap();
    assert_eq!(app["user_agent"], AGENT);

    let from = c.fake.requests().len();
    let again = connect(&c.app, &c.app_id, Kind::Reddit).await;
    assert_eq!(again, c.account_id, "a reconnect updates the account");
    assert_eq!(
        c.get("/access-token?force_refresh=true").await.status(),
        200
    );
    let check = c
        .app
        .send_as(
            TENANT,
            reqwest::Method::POST,
            &format!("/v1/oauth-apps/{}/check", c.app_id),
        )
        .await;
    assert_eq!(check.status(), 200);
    let check: Value = check.json().await.unwrap();
    assert_eq!(check["checks"][0]["status"], "ok", "{check}");
    let resp = c.app.delete_as(TENANT, &c.path("")).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["revoked"], true, "{body}");

    let calls = agents(from);
    let paths: Vec<&str> = calls.iter().map(|(p, _)| p.as_str()).collect();
    // Code exchange, identity, refresh, the check's app-only token, then the revokes of the
    // refresh token and the access token.
    assert_eq!(
        paths,
        [
            "/token",
            "/api/v1/me",
            "/token",
            "/token",
            "/revoke_token",
            "/revoke_token"
        ]
    );
    assert!(
        calls.iter().all(|(_, ua)| ua.as_deref() == Some(AGENT)),
        "{calls:?}"
    );
    let revoked = c.fake.revoked_tokens();
    assert_eq!(revoked.len(), 2);
    assert_eq!(
        revoked[0],
        *c.fake.issued_refresh_tokens().last().unwrap(),
        "the refresh token first: it ends the grant"
    );
}

#[tokio::test]
async fn facebook_warns_before_its_deadline_and_needs_reauth_at_it() {
    let c = connected(Kind::Facebook).await;
    let account = c.account().await;
    assert_eq!(account["reauth_by"], account["expires_at"], "{account}");
    // Eight days before: nothing yet.
    c.near_expiry(8 * 86_400).await;
    c.tend().await;
    assert_eq!(c.account().await["status"], "active");
    // Seven days before: expiring, once.
    c.near_expiry(7 * 86_400 - 60).await;
    c.tend().await;
    c.tend().await;
    let account = c.account().await;
    assert_eq!(account["status"], "expiring", "{account}");
    assert_eq!(c.event_types().await, ["expiring", "connected"]);
    // Still usable until the deadline, without any provider call (Facebook has no refresh).
    let calls = c.fake.token_requests();
    c.access_token().await;
    assert_eq!(c.fake.token_requests(), calls);
    // At the deadline: needs_reauth, and the token is not handed out.
    c.near_expiry(0).await;
    c.tend().await;
    assert_eq!(c.account().await["status"], "needs_reauth");
    assert_error(c.get("/access-token").await, 409, "needs_reauth").await;
}

#[tokio::test]
async fn instagram_refreshes_only_a_token_a_day_old_and_says_so_when_asked_sooner() {
    self_refreshes_only_a_token_a_day_old(Kind::Instagram).await;
}

#[tokio::test]
async fn threads_refreshes_only_a_token_a_day_old_and_says_so_when_asked_sooner() {
    self_refreshes_only_a_token_a_day_old(Kind::Threads).await;
}

/// A provider whose long-lived token renews itself once a day old (instagram, threads).
async fn self_refreshes_only_a_token_a_day_old(kind: Kind) {
    let c = connected(kind).await;
    let calls = c.fake.requests_to("/refresh_access_token").len();
    // Asked within the first day: no call, and an answer that says why (never a 200).
    let forced = format!("{}?force_refresh=true", c.path("/access-token"));
    let message = assert_error(c.app.get_as(TENANT, &forced).await, 409, "conflict").await;
    assert!(message.contains("can be renewed from"), "{message}");
    let refresh = c
        .app
        .send_as(TENANT, reqwest::Method::POST, &c.path("/refresh"))
        .await;
    let message = assert_error(refresh, 409, "conflict").await;
    assert!(message.contains("valid until"), "{message}");
    assert_eq!(
        c.fake.requests_to("/refresh_access_token").len(),
        calls,
        "a token younger than 24 h is not refreshed"
    );
    // A plain read still gets the stored token.
    c.access_token().await;
    c.clock.advance(86_400);
    let resp = c.app.get_as(TENANT, &forced).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(c.fake.requests_to("/refresh_access_token").len(), calls + 1);
}

#[tokio::test]
async fn an_explicit_refresh_of_facebook_reads_its_pages_again_and_a_forced_token_says_why_not() {
    let c = connected(Kind::Facebook).await;
    let page_lists = || {
        c.fake
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/me/accounts"))
            .count()
    };
    let pages = page_lists();
    let refresh = c
        .app
        .send_as(TENANT, reqwest::Method::POST, &c.path("/refresh"))
        .await;
    assert_eq!(refresh.status(), 200, "the Pages were read again");
    assert_eq!(page_lists(), pages + 1);
    let forced = format!("{}?force_refresh=true", c.path("/access-token"));
    let message = assert_error(c.app.get_as(TENANT, &forced).await, 409, "conflict").await;
    assert!(message.contains("facebook offers no refresh"), "{message}");
}

#[tokio::test]
async fn delete_revokes_at_the_provider_and_deletes_even_when_the_provider_is_down() {
    let c = connected(Kind::X).await;
    let token = c.access_token().await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = c.app.delete_as(TENANT, &c.path("")).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["revoked"], true, "{body}");
    assert!(c.fake.revoked_tokens().contains(&token));
    assert_error(c.get("").await, 404, "not_found").await;

    let again = connect(&c.app, &c.app_id, Kind::X).await;
    c.fake.set_fault(Fault::RevokeStatus(503));
    let resp = c
        .app
        .delete_as(TENANT, &format!("/v1/accounts/{again}"))
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["revoked"], false);
    assert!(
        body["revoke_error"].as_str().unwrap().contains("HTTP 503"),
        "{body}"
    );
    assert_error(
        c.app.get_as(TENANT, &format!("/v1/accounts/{again}")).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn the_cli_prints_the_token_and_the_events_and_another_tenant_sees_nothing() {
    let c = connected(Kind::X).await;
    let dir = c.app.dir.path().to_owned();
    let account = c.account_id.clone();
    let out = tokio::task::spawn_blocking(move || {
        let token = dravo_cmd(&dir)
            .args(["accounts", "token", "--owner", TENANT, &account])
            .output()
            .unwrap();
        let events = dravo_cmd(&dir)
            .args(["accounts", "events", "--owner", TENANT, &account])
            .output()
            .unwrap();
        let other = dravo_cmd(&dir)
            .args(["accounts", "token", "--owner", "someone-else", &account])
            .output()
            .unwrap();
        (token, events, other)
    })
    .await
    .unwrap();
    let (token, events, other) = out;
    assert!(token.status.success());
    assert_eq!(
        String::from_utf8(token.stdout).unwrap().trim(),
        c.fake.issued_access_tokens()[0]
    );
    let events = String::from_utf8(events.stdout).unwrap();
    assert!(events.contains("connected"), "{events}");
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("no account"));
    assert_error(
        c.app.get_as("someone-else", &c.path("/access-token")).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn account_lists_and_events_are_paginated() {
    let c = connected(Kind::X).await;
    for _ in 0..4 {
        c.app
            .dravo
            .refresh_account(
                &dravo::domain::Owner::parse("t", TENANT).unwrap(),
                &dravo::domain::AccountId::parse(&c.account_id).unwrap(),
            )
            .await
            .unwrap();
    }
    let first = c.json("/events?limit=2").await;
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = c.json(&format!("/events?limit=2&cursor={cursor}")).await;
    let cursor = rest["next_cursor"].as_str().unwrap();
    let last = c.json(&format!("/events?limit=2&cursor={cursor}")).await;
    assert_eq!(last["data"].as_array().unwrap().len(), 1);
    assert_eq!(last["data"][0]["type"], "connected");
    assert_eq!(last["next_cursor"], Value::Null);
    assert_error(
        c.get("/events?cursor=nonsense").await,
        400,
        "invalid_request",
    )
    .await;
    // A cursor is sealed to its tenant and list: it tells no position (positions are
    // global, and their gaps would count other tenants' rows) and opens nowhere else.
    use base64::Engine as _;
    let opened = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&opened).starts_with('p'),
        "a readable position: {cursor}"
    );
    let other_tenant = c
        .app
        .get_as("tenant-mallory", &format!("/v1/accounts?cursor={cursor}"))
        .await;
    assert_error(other_tenant, 400, "invalid_request").await;
    let other_list = c
        .app
        .get_as(TENANT, &format!("/v1/accounts?cursor={cursor}"))
        .await;
    assert_error(other_list, 400, "invalid_request").await;
    // Out of the documented range (1–500, a cursor of 1–64 characters): refused with a
    // sentence naming the parameter.
    for (query, name) in [
        ("limit=501", "limit"),
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("cursor=", "cursor"),
    ] {
        let message = assert_error(
            c.app.get_as(TENANT, &format!("/v1/accounts?{query}")).await,
            400,
            "invalid_request",
        )
        .await;
        assert!(message.contains(&format!("`{name}`")), "{query}: {message}");
        let message = assert_error(
            c.get(&format!("/events?{query}")).await,
            400,
            "invalid_request",
        )
        .await;
        assert!(message.contains(&format!("`{name}`")), "{query}: {message}");
    }
    let page = c
        .app
        .get_as(TENANT, "/v1/accounts?limit=1")
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["next_cursor"], Value::Null);
}

#[tokio::test]
async fn linkedin_without_a_refresh_token_lives_until_its_access_token_expires_and_never_refreshes()
{
    // LinkedIn issues refresh tokens only to apps it approved: this one gets none.
    let c = connected_prepared(
        Kind::Linkedin,
        |fake, _| fake.set_issue_refresh_tokens(false),
        |_| {},
    )
    .await;
    assert!(c.fake.issued_refresh_tokens().is_empty());
    let connected_at = c.now();
    let account = c.account().await;
    let expires = unix(&account["expires_at"]);
    assert_eq!(expires, connected_at + 60 * DAY, "{account}");
    assert_eq!(
        unix(&account["reauth_by"]),
        expires,
        "the access token's end is the deadline: {account}"
    );
    assert_eq!(account["status"], "active");

    // A minute before the warning (refresh.warn_days = 7): nothing yet.
    c.set_clock(expires - 7 * DAY - 60);
    c.tend().await;
    assert_eq!(c.account().await["status"], "active");
    assert_eq!(c.event_types().await, ["connected"]);
    // A minute into it: `expiring`, once, naming the deadline.
    c.set_clock(expires - 7 * DAY + 60);
    c.tend().await;
    c.tend().await;
    let account = c.account().await;
    assert_eq!(account["status"], "expiring", "{account}");
    assert_eq!(c.event_types().await, ["expiring", "connected"]);
    let events = c.json("/events").await;
    assert_eq!(unix(&events["data"][0]["detail"]["reauth_by"]), expires);

    // Inside refresh.skew_seconds of the end there is nothing to refresh with: the stored
    // token is handed out while it lives.
    c.set_clock(expires - 60);
    c.tend().await;
    assert_eq!(
        c.access_token().await["access_token"],
        c.fake.issued_access_tokens()[0].as_str()
    );
    // At its end: needs_reauth, a 409, and still no call to the provider.
    c.set_clock(expires);
    let message = assert_error(c.get("/access-token").await, 409, "needs_reauth").await;
    assert!(message.contains(&c.account_id), "{message}");
    let account = c.account().await;
    assert_eq!(account["status"], "needs_reauth", "{account}");
    assert_eq!(
        c.event_types().await,
        ["needs_reauth", "expiring", "connected"]
    );
    c.clock.advance(DAY);
    c.tend().await;
    assert_error(c.get("/access-token").await, 409, "needs_reauth").await;
    assert_eq!(c.fake.token_requests(), 1, "only the code exchange");
    assert_eq!(c.refresh_calls(), 0);
}

#[tokio::test]
async fn a_refresh_answer_without_the_refresh_tokens_lifetime_keeps_the_known_deadline() {
    // LinkedIn does not rotate: an answer naming the same refresh token without
    // `refresh_token_expires_in` says nothing new of its end, which stays the deadline.
    const LIFETIME: i64 = 200 * DAY + 12_345;
    let c = connected_prepared(
        Kind::Linkedin,
        |fake, _| {
            fake.set_refresh_lifetime(LIFETIME as u64);
            fake.set_refresh_lifetime_on_refresh(false);
        },
        |_| {},
    )
    .await;
    let end = c.now() + LIFETIME;
    assert_eq!(unix(&c.account().await["reauth_by"]), end);
    c.near_expiry(60).await;
    c.access_token().await;
    assert_eq!(c.refresh_calls(), 1);
    let account = c.account().await;
    assert_eq!(
        unix(&account["expires_at"]),
        c.now() + 60 * DAY,
        "{account}"
    );
    assert_eq!(
        unix(&account["reauth_by"]),
        end,
        "the deadline is kept: {account}"
    );
}

#[tokio::test]
async fn linkedins_refresh_token_end_is_the_deadline_and_refreshing_does_not_extend_it() {
    // An unusual lifetime, so that a hard-coded 365 days cannot pass for it.
    const LIFETIME: i64 = 200 * DAY + 12_345;
    let c = connected_prepared(
        Kind::Linkedin,
        |fake, clock| {
            fake.set_refresh_lifetime(LIFETIME as u64);
            let clock = clock.clone();
            fake.use_clock(move || clock.now().unix());
        },
        |_| {},
    )
    .await;
    let end = c.now() + LIFETIME;
    let account = c.account().await;
    assert_eq!(unix(&account["reauth_by"]), end, "{account}");
    assert_eq!(unix(&account["expires_at"]), c.now() + 60 * DAY);

    // Each refresh renews the access token for 60 days; LinkedIn answers what is left of the
    // refresh token's lifetime, so the deadline stays where it was.
    for round in 1..=2 {
        c.near_expiry(60).await;
        let token = c.access_token().await["access_token"].clone();
        assert_eq!(c.refresh_calls(), round, "refresh {round}");
        assert_eq!(
            token,
            c.fake.issued_access_tokens().last().unwrap().as_str()
        );
        let account = c.account().await;
        assert_eq!(
            unix(&account["expires_at"]),
            c.now() + 60 * DAY,
            "{account}"
        );
        assert_eq!(unix(&account["reauth_by"]), end, "after refresh {round}");
        assert_eq!(account["status"], "active");
    }
    let announced: Vec<_> = c
        .fake
        .requests_to("/token")
        .iter()
        .filter_map(|r| r.param("refresh_token").map(str::to_owned))
        .collect();
    assert_eq!(
        announced,
        [
            c.fake.issued_refresh_tokens()[0].clone(),
            c.fake.issued_refresh_tokens()[0].clone()
        ],
        "LinkedIn does not rotate: the one refresh token, twice"
    );

    // The warning comes warn_days before the refresh token's end (after a third refresh of
    // the by then expired access token, which does not move the end either).
    c.set_clock(end - 7 * DAY + 60);
    c.tend().await;
    c.tend().await;
    assert_eq!(c.refresh_calls(), 3);
    let account = c.account().await;
    assert_eq!(account["status"], "expiring", "{account}");
    assert_eq!(unix(&account["reauth_by"]), end);
    let types = c.event_types().await;
    assert_eq!(types[0], "expiring", "{types:?}");
    // At the end: needs_reauth without a call to the provider (the refresh token's end is
    // the deadline, as the README's table says, even though the access token from the last
    // refresh would still be accepted for a while).
    c.set_clock(end);
    assert_error(c.get("/access-token").await, 409, "needs_reauth").await;
    assert_eq!(c.refresh_calls(), 3);
    assert_eq!(c.account().await["status"], "needs_reauth");
}

#[tokio::test]
async fn tiktoks_refresh_expires_in_sets_the_deadline_each_answer_moves_it_and_it_is_enforced() {
    // Lifetimes read from each answer: none of them a round number.
    const FIRST: i64 = 30 * DAY + 12_345;
    const SECOND: i64 = 7 * DAY + 12_345; // just over refresh.warn_days
    const THIRD: i64 = 2 * DAY + 12_346;
    let c = connected_prepared(
        Kind::Tiktok,
        |fake, _| fake.set_refresh_lifetime(FIRST as u64),
        |_| {},
    )
    .await;
    let account = c.account().await;
    assert_eq!(unix(&account["reauth_by"]), c.now() + FIRST, "{account}");
    assert_eq!(unix(&account["expires_at"]), c.now() + DAY);
    assert_eq!(account["status"], "active");

    // A refresh whose answer says SECOND: the deadline moves to now + SECOND.
    c.fake.set_refresh_lifetime(SECOND as u64);
    c.near_expiry(60).await;
    c.access_token().await;
    assert_eq!(c.refresh_calls(), 1);
    let by = c.now() + SECOND;
    let account = c.account().await;
    assert_eq!(unix(&account["reauth_by"]), by, "{account}");
    assert_eq!(account["status"], "active", "{account}");

    // warn_days before it: not a minute sooner, then once (within the access token's day,
    // so no refresh moves it meanwhile).
    c.set_clock(by - 7 * DAY - 60);
    c.tend().await;
    assert_eq!(c.account().await["status"], "active");
    assert_eq!(c.event_types().await, ["refreshed", "connected"]);
    c.set_clock(by - 7 * DAY + 60);
    c.tend().await;
    c.tend().await;
    assert_eq!(c.refresh_calls(), 1, "no refresh while warning");
    let account = c.account().await;
    assert_eq!(account["status"], "expiring", "{account}");
    assert_eq!(
        c.event_types().await,
        ["expiring", "refreshed", "connected"]
    );
    let events = c.json("/events").await;
    assert_eq!(unix(&events["data"][0]["detail"]["reauth_by"]), by);

    // The next refresh's answer says THIRD: the deadline moves again.
    c.fake.set_refresh_lifetime(THIRD as u64);
    c.near_expiry(60).await;
    c.access_token().await;
    assert_eq!(c.refresh_calls(), 2);
    let by = c.now() + THIRD;
    let account = c.account().await;
    assert_eq!(unix(&account["reauth_by"]), by, "{account}");
    assert_eq!(account["status"], "expiring", "within warn_days: {account}");

    // The moved deadline is announced in the refresh's own transaction, once.
    let events = c.json("/events").await;
    assert_eq!(events["data"][0]["type"], "expiring", "{events}");
    assert_eq!(unix(&events["data"][0]["detail"]["reauth_by"]), by);
    c.tend().await;

    // At it: needs_reauth, without asking the provider.
    let calls = c.fake.token_requests();
    c.set_clock(by);
    c.tend().await;
    let account = c.account().await;
    assert_eq!(account["status"], "needs_reauth", "{account}");
    assert_error(c.get("/access-token").await, 409, "needs_reauth").await;
    assert_eq!(c.fake.token_requests(), calls);
    assert_eq!(
        c.event_types().await,
        [
            "needs_reauth",
            "expiring",
            "refreshed",
            "expiring",
            "refreshed",
            "connected"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// The refresh budget: 30 simulated days

/// How many idle accounts per provider the 30-day simulation connects: 20 in the suite (the
/// rules are per account, so the counts per account do not depend on it); set
/// `DRAVO_SIM_ACCOUNTS=1000` for the issue's full run.
fn simulated_accounts() -> usize {
    std::env::var("DRAVO_SIM_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// One provider of the simulation: its fake, app, idle accounts and the one account a
/// caller asks for once an hour.
struct Simulated {
    kind: Kind,
    fake: FakeProvider,
    idle: Vec<String>,
    hourly: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_simulated_days_renew_an_idle_account_at_most_once_a_day() {
    if support::sqlite_only("the budget's rules do not depend on the store; one backend runs it") {
        return;
    }
    const KINDS: [Kind; 10] = [
        Kind::X,
        Kind::Linkedin,
        Kind::Tiktok,
        Kind::Instagram,
        Kind::Facebook,
        Kind::Threads,
        Kind::Youtube,
        Kind::GoogleBusiness,
        Kind::Pinterest,
        Kind::Reddit,
    ];
    const TICK: i64 = 600;
    const DAYS: i64 = 30;
    let accounts = simulated_accounts();
    let clock = ManualClock::starting_now();
    let mut fakes = Vec::new();
    for kind in KINDS {
        fakes.push(FakeProvider::start(kind, CLIENT_ID, CLIENT_SECRET).await);
    }
    let app = spawn_app_with_clock(
        |config| {
            for fake in &fakes {
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
            }
            config.dashboard.allowed_return_urls = vec![DASH.into()];
            config.refresh.background = false;
            config.limits.start_per_second = 1000;
            config.limits.callback_per_second = 1000;
            config.limits.token_per_second = 1000;
        },
        Arc::new(clock.clone()),
    )
    .await;
    let mut sims = Vec::new();
    for fake in fakes {
        let kind = fake.kind;
        let created = app
            .create_ok(
                TENANT,
                &json!({"provider": kind.as_str(), "name": "App", "client_id": CLIENT_ID,
                        "client_secret": CLIENT_SECRET}),
            )
            .await;
        let app_id = created["id"].as_str().unwrap().to_owned();
        let mut ids = Vec::new();
        for i in 0..=accounts {
            fake.set_account(&format!("sim-{}-{i}", kind.as_str()), None, None);
            ids.push(connect(&app, &app_id, kind).await);
        }
        let hourly = ids.pop().unwrap();
        sims.push(Simulated {
            kind,
            fake,
            idle: ids,
            hourly,
        });
    }
    let calls_at_start: Vec<usize> = sims.iter().map(|s| s.fake.requests().len()).collect();
    // Each hourly account's token from its connect, so that a renewal at the first ask
    // (Reddit's one-hour token) counts too.
    let mut hourly_tokens: Vec<Vec<String>> = Vec::new();
    for sim in &sims {
        let token: Value = app
            .get_as(TENANT, &format!("/v1/accounts/{}/access-token", sim.hourly))
            .await
            .json()
            .await
            .unwrap();
        hourly_tokens.push(vec![token["access_token"].as_str().unwrap().to_owned()]);
    }

    // 30 days in steps of 10 minutes: the refresher's passes, and once an hour a caller.
    let start = clock.now().unix();
    let skew = 300;
    for step in 1..=(DAYS * 86_400 / TICK) {
        clock.set(dravo::domain::Timestamp::from_unix(start + step * TICK));
        while app.dravo.tend_due_accounts().await.unwrap() >= 200 {}
        if (step * TICK) % 3600 != 0 {
            continue;
        }
        for (sim, seen) in sims.iter().zip(hourly_tokens.iter_mut()) {
            let resp = app
                .get_as(TENANT, &format!("/v1/accounts/{}/access-token", sim.hourly))
                .await;
            assert_eq!(
                resp.status(),
                200,
                "{} on day {}",
                sim.kind.as_str(),
                step * TICK / 86_400
            );
            let token: Value = resp.json().await.unwrap();
            let left = unix(&token["expires_at"]) - clock.now().unix();
            assert!(
                left >= skew,
                "{}: a token handed out with {left} s left",
                sim.kind.as_str()
            );
            let token = token["access_token"].as_str().unwrap().to_owned();
            if seen.last() != Some(&token) {
                seen.push(token);
            }
        }
    }

    let mut report = Vec::new();
    for ((sim, start_calls), seen) in sims.iter().zip(calls_at_start).zip(&hourly_tokens) {
        let name = sim.kind.as_str();
        // Each idle account's renewals, from its own log.
        let mut per_account = Vec::new();
        for id in &sim.idle {
            let events: Value = app
                .get_as(TENANT, &format!("/v1/accounts/{id}/events?limit=200"))
                .await
                .json()
                .await
                .unwrap();
            let types: Vec<&str> = events["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["type"].as_str().unwrap())
                .collect();
            assert!(
                !types.iter().any(|t| *t != "refreshed" && *t != "connected"),
                "{name} {id}: {types:?}"
            );
            per_account.push(types.iter().filter(|t| **t == "refreshed").count());
        }
        let idle_calls: usize = per_account.iter().sum();
        let all_calls = sim.fake.requests().len() - start_calls;
        // Every other call renewed the hourly caller's account.
        let hourly_calls = all_calls
            .checked_sub(idle_calls)
            .unwrap_or_else(|| panic!("{name}: more renewals logged than calls made"));
        let hourly_tokens = seen.len() - 1;
        let (min, max) = (
            per_account.iter().min().copied().unwrap_or(0),
            per_account.iter().max().copied().unwrap_or(0),
        );
        report.push(format!(
            "{name}: idle accounts {min}-{max} calls each in {DAYS} days ({idle_calls} for {}), the hourly caller's account {hourly_calls}",
            sim.idle.len()
        ));
        // The caller saw every renewal of its account as a new token: no hidden calls. With
        // Google's one-hour tokens the refresher may renew it between two asks, once in a
        // while, so the caller sees only the second of two tokens.
        match sim.kind {
            Kind::Youtube | Kind::GoogleBusiness => assert!(
                (hourly_tokens..=hourly_tokens + DAYS as usize).contains(&hourly_calls),
                "{name}: {hourly_tokens} tokens seen, {hourly_calls} calls: {report:?}"
            ),
            _ => assert_eq!(hourly_calls, hourly_tokens, "{name}: {report:?}"),
        }
        // At most one call per idle account per day; for those that can be renewed, the
        // keep-alive does make one about every day.
        assert!(max <= DAYS as usize, "{name}: {report:?}");
        match sim.kind {
            Kind::Facebook => assert_eq!(max, 0, "nothing renews Facebook: {report:?}"),
            _ => assert!(min >= DAYS as usize - 2, "{name} keep-alive: {report:?}"),
        }
        // The hourly caller's account: X's two-hour tokens and Google's and Reddit's one-hour
        // tokens are renewed as it asks (twelve and 24 a day, the providers' own rule); the
        // others by the keep-alive, once a day.
        match sim.kind {
            Kind::X => assert!(hourly_calls > 10 * DAYS as usize, "{report:?}"),
            Kind::Youtube | Kind::GoogleBusiness | Kind::Reddit => assert!(
                (22 * DAYS as usize..=24 * DAYS as usize).contains(&hourly_calls),
                "{name}: {report:?}"
            ),
            Kind::Facebook => assert_eq!(hourly_calls, 0, "{report:?}"),
            _ => assert!(hourly_calls <= DAYS as usize, "{name}: {report:?}"),
        }
    }
    println!("refresh budget over {DAYS} days:\n{}", report.join("\n"));
    app.stop().await;
}
