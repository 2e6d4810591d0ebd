//! CONTRACT §8 on a live server: token buckets (burst = 5 × the rate) on start, callback, app
//! creation and token reads; 429 `rate_limited` with `Retry-After`; per tenant, except the
//! callback, which is per client IP address, read from `X-Forwarded-For` only when the peer
//! is one of `server.trusted_proxies`.
//!
//! Limits are set to 1 per second, so a bucket holds 5 requests and refills one a second:
//! a quick loop drains it, and the tests count answers instead of timing them.

use crate::support;
use crate::support::fake_provider;

use std::future::Future;
use std::net::IpAddr;

use dravo::Config;
use dravo::config::{ProviderConfig, TrustedProxies};
use fake_provider::{FakeProvider, Kind};
use serde_json::{Value, json};
use support::{TestApp, app_body, assert_error, spawn_app_with};
use url::Url;

/// Requests until the bucket is drained; more than this many answers without a 429 fails.
const MAX_TRIES: usize = 100;
/// 1 per second, so the burst is 5.
const BURST: usize = 5;

/// Every limit at 1 per second.
fn slow(config: &mut Config) {
    config.limits.start_per_second = 1;
    config.limits.callback_per_second = 1;
    config.limits.create_per_second = 1;
    config.limits.token_per_second = 1;
    config.limits.change_per_second = 1;
}

/// An X default app, so `start` answers 200 without a BYOK app.
fn with_default_x_app(config: &mut Config) {
    config.providers.set(
        "x".parse().unwrap(),
        ProviderConfig {
            client_id: Some("x-client-id".into()),
            client_secret: Some(secrecy::SecretString::from("x-client-secret".to_owned())),
            ..Default::default()
        },
    );
}

/// Sends `send(i)` for i = 0, 1, … until an answer is 429: the statuses before it, and the
/// 429 (checked: the JSON error, `Retry-After` whole seconds ≥ 1; returned with its message).
async fn until_limited<F, Fut>(mut send: F) -> (Vec<u16>, String)
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = reqwest::Response>,
{
    let mut before = Vec::new();
    for i in 0..MAX_TRIES {
        let resp = send(i).await;
        if resp.status() == 429 {
            let retry_after: u64 = resp
                .headers()
                .get("retry-after")
                .expect("a 429 carries Retry-After")
                .to_str()
                .unwrap()
                .parse()
                .expect("Retry-After is whole seconds");
            // At 1 per second the next request always fits within a second.
            assert_eq!(retry_after, 1, "Retry-After");
            let message = assert_error(resp, 429, "rate_limited").await;
            assert!(message.contains("retry after 1 s"), "{message}");
            return (before, message);
        }
        before.push(resp.status().as_u16());
    }
    panic!("{MAX_TRIES} requests and none was limited: {before:?}");
}

/// The burst went through with `status` each time, and not much more did.
fn assert_burst(before: &[u16], status: u16) {
    assert!(
        before.len() >= BURST,
        "the burst of {BURST} was cut short: {before:?}"
    );
    // Only a stall of seconds between requests could let more through.
    assert!(before.len() < 3 * BURST, "{before:?}");
    assert!(before.iter().all(|s| *s == status), "{before:?}");
}

async fn start(app: &TestApp, tenant: &str) -> reqwest::Response {
    app.get_as(tenant, "/v1/oauth/x/start").await
}

#[tokio::test]
async fn start_is_limited_per_tenant_and_another_tenant_is_not_slowed() {
    let app = spawn_app_with(|c| {
        slow(c);
        with_default_x_app(c);
    })
    .await;
    let (before, message) = until_limited(|_| start(&app, "alice")).await;
    assert_burst(&before, 200);
    assert_eq!(
        message,
        "too many connect starts for this tenant (limit: 1 per second); retry after 1 s"
    );
    // Alice is at her limit; Bob gets his whole burst.
    for i in 0..BURST {
        assert_eq!(start(&app, "bob").await.status(), 200, "bob's request {i}");
    }
    app.stop().await;
}

#[tokio::test]
async fn app_creation_is_limited_per_tenant() {
    let app = spawn_app_with(slow).await;
    let a = &app;
    let (before, message) = until_limited(move |i| async move {
        a.create_app("alice", &app_body("x", &format!("App {i}")))
            .await
    })
    .await;
    assert_burst(&before, 201);
    assert!(message.contains("OAuth app creations"), "{message}");
    // The refused creation stored nothing.
    assert_eq!(app.list_apps("alice").await.len(), before.len());
    for i in 0..BURST {
        let resp = app
            .create_app("bob", &app_body("x", &format!("App {i}")))
            .await;
        assert_eq!(resp.status(), 201, "bob's request {i}");
    }
    // Other operations are not limited: listing is not creating.
    for _ in 0..3 * BURST {
        assert_eq!(app.get_as("alice", "/v1/oauth-apps").await.status(), 200);
    }
    app.stop().await;
}

/// An app check calls the provider: checks share the tenant's creation bucket, so a loop of
/// checks cannot turn Dravo into a hammer on a provider's token endpoint.
#[tokio::test]
async fn app_checks_share_the_creation_bucket() {
    let app = spawn_app_with(slow).await;
    let created = app.create_ok("carol", &app_body("x", "Checked")).await;
    let path = format!("/v1/oauth-apps/{}/check", created["id"].as_str().unwrap());
    let a = &app;
    let (before, message) = until_limited(move |_| {
        let path = path.clone();
        async move { a.send_as("carol", reqwest::Method::POST, &path).await }
    })
    .await;
    // One token of the burst went to the creation; a refill may add one more.
    assert!((BURST - 1..2 * BURST).contains(&before.len()), "{before:?}");
    assert!(before.iter().all(|s| *s == 200), "{before:?}");
    // The creation bucket's own words: the same limiter refused the check.
    assert!(
        message.contains("OAuth app creations and checks"),
        "{message}"
    );
    // Another tenant's checks and creations are untouched.
    let other = app.create_ok("dave", &app_body("x", "Checked")).await;
    let resp = app
        .send_as(
            "dave",
            reqwest::Method::POST,
            &format!("/v1/oauth-apps/{}/check", other["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(resp.status(), 200);
    app.stop().await;
}

/// Guessing at confirmation codes, renaming an app and deleting by id share one bucket per
/// tenant: 300 wrong codes in half a second are no longer possible.
#[tokio::test]
async fn confirmations_and_changes_by_id_share_one_bucket_per_tenant() {
    let app = spawn_app_with(slow).await;
    let a = &app;
    let (before, message) = until_limited(move |_| async move {
        a.http
            .post(a.url("/v1/accounts/acc_aaaaaaaaaaaaaaaaaaaa/confirm"))
            .bearer_auth(a.token("erin"))
            .json(&json!({"code": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}))
            .send()
            .await
            .unwrap()
    })
    .await;
    assert_burst(&before, 404);
    assert!(message.contains("connection confirmations"), "{message}");
    // The same bucket: a rename is refused too, and changed nothing.
    let created = app.create_ok("erin", &app_body("x", "Named")).await;
    let path = format!("/v1/oauth-apps/{}", created["id"].as_str().unwrap());
    let rename = app
        .http
        .patch(app.url(&path))
        .bearer_auth(app.token("erin"))
        .json(&json!({"name": "Renamed"}))
        .send()
        .await
        .unwrap();
    assert_error(rename, 429, "rate_limited").await;
    let shown: Value = app.get_as("erin", &path).await.json().await.unwrap();
    assert_eq!(shown["name"], "Named");
    // Another tenant is not slowed.
    let deleted = app
        .delete_as("frank", "/v1/accounts/acc_aaaaaaaaaaaaaaaaaaaa")
        .await;
    assert_error(deleted, 404, "not_found").await;
    app.stop().await;
}

const CLIENT_ID: &str = "fake-client-id-123";
const CLIENT_SECRET: &str = "fake-client-secret-456";
const DASH: &str = "https://dash.example.com/done";

/// Connects one X account for `tenant` through the fake provider; returns its id.
async fn connect(app: &TestApp, fake: &FakeProvider, tenant: &str) -> String {
    let created = app
        .create_ok(
            tenant,
            &json!({"provider": "x", "name": "App", "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET}),
        )
        .await;
    let start = Url::parse_with_params(
        &app.url("/v1/oauth/x/start"),
        &[
            ("oauth_app_id", created["id"].as_str().unwrap()),
            ("return_url", DASH),
        ],
    )
    .unwrap();
    let body: Value = app
        .http
        .get(start)
        .bearer_auth(app.token(tenant))
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
    let back = Url::parse(done.headers()["location"].to_str().unwrap()).unwrap();
    let pairs: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!(pairs["status"], "connected", "{back}");
    assert!(fake.token_requests() >= 1);
    pairs["account_id"].clone()
}

#[tokio::test]
async fn access_token_and_refresh_share_one_bucket_per_tenant() {
    let fake = FakeProvider::start(Kind::X, CLIENT_ID, CLIENT_SECRET).await;
    let app = spawn_app_with(|c| {
        slow(c);
        let (authorize, token, api) = fake.config_urls();
        c.providers.set(
            "x".parse().unwrap(),
            ProviderConfig {
                authorize_url: Some(Url::parse(&authorize).unwrap()),
                token_url: Some(Url::parse(&token).unwrap()),
                api_base: Some(Url::parse(&api).unwrap()),
                ..Default::default()
            },
        );
        c.dashboard.allowed_return_urls = vec![DASH.into()];
        c.refresh.background = false;
    })
    .await;
    let alice = connect(&app, &fake, "alice").await;
    let bob = connect(&app, &fake, "bob").await;
    // Alternating: with a bucket each, 2 × 5 would pass before the first 429.
    let (a, alice_id) = (&app, alice.as_str());
    let (before, message) = until_limited(move |i| async move {
        if i % 2 == 0 {
            read_token(a, "alice", alice_id).await
        } else {
            refresh(a, "alice", alice_id).await
        }
    })
    .await;
    assert_burst(&before, 200);
    assert!(before.len() < 2 * BURST, "two buckets? {before:?}");
    assert!(
        message.contains("access-token reads and refreshes"),
        "{message}"
    );
    for i in 0..BURST {
        let resp = read_token(&app, "bob", &bob).await;
        assert_eq!(resp.status(), 200, "bob's request {i}");
    }
    app.stop().await;
}

async fn read_token(app: &TestApp, tenant: &str, id: &str) -> reqwest::Response {
    app.get_as(tenant, &format!("/v1/accounts/{id}/access-token"))
        .await
}

async fn refresh(app: &TestApp, tenant: &str, id: &str) -> reqwest::Response {
    app.send_as(
        tenant,
        reqwest::Method::POST,
        &format!("/v1/accounts/{id}/refresh"),
    )
    .await
}

/// A client whose connections come from `local` (any 127.x.y.z reaches a 127.0.0.1 server).
fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local.parse::<IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A callback without a state: a 400 page when not limited.
async fn callback(client: &reqwest::Client, app: &TestApp, xff: Option<&str>) -> reqwest::Response {
    let mut req = client.get(app.url("/v1/oauth/x/callback?state=none"));
    if let Some(xff) = xff {
        req = req.header("x-forwarded-for", xff);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn callback_is_limited_per_client_ip_and_answers_the_json_error() {
    let app = spawn_app_with(slow).await;
    let first = client_from("127.0.0.1");
    let (before, message) = until_limited(|_| callback(&first, &app, None)).await;
    // Below the limit the callback answers its HTML page (400: no state).
    assert_burst(&before, 400);
    assert!(message.contains("from this client IP address"), "{message}");
    // Another address has its own bucket.
    let second = client_from("127.0.0.2");
    for i in 0..BURST {
        let resp = callback(&second, &app, None).await;
        assert_eq!(resp.status(), 400, "127.0.0.2's request {i}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/html"), "{ct}");
    }
    // Tenants' limits are not client IP limits: a dashboard call from the limited address
    // still works.
    let resp = first
        .get(app.url("/v1/oauth-apps"))
        .bearer_auth(app.token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_does_not_escape_the_limit() {
    // 127.0.0.1 is not a trusted proxy here (10.0.0.0/8 is): a new X-Forwarded-For on each
    // request must not give a new bucket.
    let app = spawn_app_with(|c| {
        slow(c);
        c.server.trusted_proxies = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
    })
    .await;
    let (client, app_ref) = (&client_from("127.0.0.1"), &app);
    let (before, _) = until_limited(move |i| async move {
        callback(client, app_ref, Some(&format!("203.0.113.{i}"))).await
    })
    .await;
    assert_burst(&before, 400);
    app.stop().await;
}

#[tokio::test]
async fn forwarded_for_from_a_trusted_peer_names_the_client() {
    let app = spawn_app_with(|c| {
        slow(c);
        c.server.trusted_proxies = TrustedProxies::parse(&["127.0.0.1"]).unwrap();
    })
    .await;
    let proxy = &client_from("127.0.0.1");
    let a = &app;
    // The client behind the proxy is limited by its own address, even when it sends its own
    // made-up X-Forwarded-For (the proxy appends the address it saw to it).
    let (before, _) = until_limited(move |i| async move {
        callback(proxy, a, Some(&format!("198.51.100.{i}, 203.0.113.7"))).await
    })
    .await;
    assert_burst(&before, 400);
    // Other clients behind the same proxy have their own buckets, and so does the proxy.
    for (xff, what) in [
        (Some("203.0.113.8"), "another client"),
        (Some("2001:db8::1"), "an IPv6 client"),
        (None, "the proxy itself"),
    ] {
        for i in 0..BURST {
            let resp = callback(proxy, a, xff).await;
            assert_eq!(resp.status(), 400, "{what}, request {i}");
        }
    }
    // A peer that is not the trusted proxy cannot claim to be someone else.
    let other = client_from("127.0.0.2");
    let (before, _) = until_limited(|_| callback(&other, a, Some("203.0.113.9"))).await;
    assert_burst(&before, 400);
    let resp = callback(proxy, a, Some("203.0.113.9")).await;
    assert_eq!(
        resp.status(),
        400,
        "203.0.113.9 behind the proxy was never limited"
    );
    app.stop().await;
}
