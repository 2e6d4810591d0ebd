//! Checking an OAuth app's configuration (`POST /v1/oauth-apps/{id}/check`,
//! `dravo oauth-apps check`): credentials proven at fake Facebook and TikTok providers on
//! 127.0.0.1 (which check the client id and secret as the real ones do), `unknown` where the
//! provider has no such grant, redirect URI and scope rules, `public_url` reachability as a
//! warning, the result stored as the app's `last_check` (also by a refresh the provider
//! refuses the app's credentials in), tenant isolation, and the CLI.

use crate::support;
use crate::support::fake_provider;

use dravo::Config;
use dravo::config::ProviderConfig;
use fake_provider::{FakeProvider, Fault, Kind};
use serde_json::{Value, json};
use support::cmd::dravo_with;
use support::{Db, TestApp, assert_error, spawn_app_with};
use url::Url;

const CLIENT_ID: &str = "fake-client-id-123";
const CLIENT_SECRET: &str = "fake-client-secret-456";
/// A secret the fake providers refuse; distinctive, so a leak anywhere is found.
const WRONG_SECRET: &str = "wr0ng-S3cret-Qx7Lp2-must-never-show";
const TENANT: &str = "tenant-alice";
const DASH: &str = "https://dash.example.com/done";

/// Points `kind`'s endpoints at `fake`.
fn use_fake(config: &mut Config, kind: Kind, fake: &FakeProvider) {
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
}

/// A server whose `kind` provider is `fake`, after `tweak`.
async fn server_with_fake(
    kind: Kind,
    fake: &FakeProvider,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    spawn_app_with(|config| {
        use_fake(config, kind, fake);
        config.dashboard.allowed_return_urls = vec![DASH.into()];
        config.refresh.background = false;
        tweak(config);
    })
    .await
}

/// Creates a `provider` app for `TENANT` and returns its id.
async fn create(app: &TestApp, provider: &str, secret: &str, scopes: Option<&[&str]>) -> String {
    let mut body = json!({"provider": provider, "name": "Checked app", "client_id": CLIENT_ID,
                          "client_secret": secret});
    if let Some(scopes) = scopes {
        body["scopes"] = json!(scopes);
    }
    app.create_ok(TENANT, &body).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `POST /v1/oauth-apps/{id}/check` as `tenant`.
async fn post_check(app: &TestApp, tenant: &str, id: &str) -> reqwest::Response {
    app.send_as(
        tenant,
        reqwest::Method::POST,
        &format!("/v1/oauth-apps/{id}/check"),
    )
    .await
}

/// Checks the app as `TENANT`, expecting 200; returns the raw body and its JSON.
async fn check(app: &TestApp, id: &str) -> (String, Value) {
    let resp = post_check(app, TENANT, id).await;
    assert_eq!(resp.status(), 200, "POST check");
    let raw = resp.text().await.unwrap();
    let body = serde_json::from_str(&raw).unwrap();
    (raw, body)
}

/// The named check of a check answer.
fn result<'a>(check: &'a Value, name: &str) -> &'a Value {
    check["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no `{name}` check in {check}"))
}

/// The `last_check` column of app `id`, as stored.
fn stored_last_check(app: &TestApp, id: &str) -> Option<String> {
    Db::open(&app.db_path())
        .value(
            "SELECT last_check FROM oauth_apps WHERE id = ?1",
            &[id.into()],
        )
        .opt_text()
}

/// The parameters of the fake's client-credentials calls.
fn client_credentials_calls(fake: &FakeProvider) -> Vec<fake_provider::RecordedRequest> {
    fake.requests_to("/token")
        .into_iter()
        .filter(|r| r.param("grant_type") == Some("client_credentials"))
        .collect()
}

#[tokio::test]
async fn facebook_proves_a_good_secret_with_its_client_credentials_grant() {
    let fake = FakeProvider::start(Kind::Facebook, CLIENT_ID, CLIENT_SECRET).await;
    let app = server_with_fake(Kind::Facebook, &fake, |_| {}).await;
    let id = create(&app, "facebook", CLIENT_SECRET, None).await;
    let (_, body) = check(&app, &id).await;
    let names: Vec<&str> = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "client_credentials",
            "redirect_uri",
            "scopes",
            "public_url_reachable"
        ]
    );
    let credentials = result(&body, "client_credentials");
    assert_eq!(credentials["status"], "ok", "{body}");
    assert_eq!(
        credentials["message"],
        "facebook accepted the client id and secret"
    );
    // Every check passes for a default Facebook app on a loopback server.
    assert_eq!(body["outcome"], "ok", "{body}");
    assert_eq!(body["source"], "check");
    // Meta's call: a GET with the credentials in the query.
    let calls = client_credentials_calls(&fake);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "GET");
    assert_eq!(calls[0].param("client_id"), Some(CLIENT_ID));
    assert_eq!(calls[0].param("client_secret"), Some(CLIENT_SECRET));
}

#[tokio::test]
async fn facebook_refuses_a_wrong_secret_in_its_own_words_and_the_secret_is_nowhere() {
    let fake = FakeProvider::start(Kind::Facebook, CLIENT_ID, CLIENT_SECRET).await;
    let app = server_with_fake(Kind::Facebook, &fake, |_| {}).await;
    let id = create(&app, "facebook", WRONG_SECRET, None).await;
    let (raw, body) = check(&app, &id).await;
    let credentials = result(&body, "client_credentials");
    assert_eq!(credentials["status"], "failed", "{body}");
    assert_eq!(
        credentials["message"],
        "facebook refused the client id and secret: oauth_exception: Error validating client \
         secret. (code 1)"
    );
    assert_eq!(body["outcome"], "failed");
    assert!(!raw.contains(WRONG_SECRET), "{raw}");
    let stored = stored_last_check(&app, &id).expect("stored");
    assert!(
        stored.contains("Error validating client secret."),
        "{stored}"
    );
    assert!(!stored.contains(WRONG_SECRET), "{stored}");
    // The secret did reach the provider: the check is real.
    assert_eq!(
        client_credentials_calls(&fake)[0].param("client_secret"),
        Some(WRONG_SECRET)
    );
}

#[tokio::test]
async fn an_unreachable_provider_leaves_the_credentials_unknown_without_the_secret() {
    // Meta's call carries the secret in its query: a transport error must name the host only.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let app = spawn_app_with(|config| {
        config.providers.set(
            "facebook".parse().unwrap(),
            ProviderConfig {
                token_url: Some(
                    Url::parse(&format!("http://127.0.0.1:{port}/oauth/access_token")).unwrap(),
                ),
                ..Default::default()
            },
        );
    })
    .await;
    let id = create(&app, "facebook", WRONG_SECRET, None).await;
    let (raw, body) = check(&app, &id).await;
    let credentials = result(&body, "client_credentials");
    assert_eq!(credentials["status"], "unknown", "{body}");
    let message = credentials["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "could not ask 127.0.0.1: cannot connect to 127.0.0.1:{port}"
        )),
        "{message}"
    );
    assert!(!raw.contains(WRONG_SECRET), "{raw}");
    assert!(!raw.contains("client_secret"), "{raw}");
    assert!(!stored_last_check(&app, &id).unwrap().contains(WRONG_SECRET));
}

#[tokio::test]
async fn a_provider_outage_is_unknown_not_failed() {
    let fake = FakeProvider::start(Kind::Tiktok, CLIENT_ID, CLIENT_SECRET).await;
    fake.set_fault(Fault::TokenStatus(503));
    let app = server_with_fake(Kind::Tiktok, &fake, |_| {}).await;
    let id = create(&app, "tiktok", CLIENT_SECRET, None).await;
    let (_, body) = check(&app, &id).await;
    let credentials = result(&body, "client_credentials");
    assert_eq!(credentials["status"], "unknown", "{body}");
    assert!(
        credentials["message"]
            .as_str()
            .unwrap()
            .starts_with("could not ask 127.0.0.1: HTTP 503"),
        "{body}"
    );
}

#[tokio::test]
async fn tiktok_proves_a_good_key_and_refuses_a_wrong_secret_even_with_http_200() {
    let fake = FakeProvider::start(Kind::Tiktok, CLIENT_ID, CLIENT_SECRET).await;
    // Login Kit for Web wants https even on loopback: an https public URL (unreachable, so
    // that check only warns) keeps the redirect check out of the way.
    let app = server_with_fake(Kind::Tiktok, &fake, |config| {
        config.server.public_url = Some("https://127.0.0.1:1".parse().unwrap());
    })
    .await;
    let good = create(&app, "tiktok", CLIENT_SECRET, None).await;
    let (_, body) = check(&app, &good).await;
    assert_eq!(
        result(&body, "client_credentials")["status"],
        "ok",
        "{body}"
    );
    assert_eq!(result(&body, "redirect_uri")["status"], "ok", "{body}");
    assert_eq!(result(&body, "scopes")["status"], "ok", "{body}");
    assert_eq!(body["outcome"], "warning", "only public_url: {body}");
    let call = &client_credentials_calls(&fake)[0];
    assert_eq!(call.method, "POST");
    assert_eq!(call.param("client_key"), Some(CLIENT_ID));
    assert!(call.query.is_empty(), "credentials in the form body only");

    let wrong = app
        .create_ok(
            TENANT,
            &json!({"provider": "tiktok", "name": "Wrong", "client_id": CLIENT_ID,
                    "client_secret": WRONG_SECRET}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for fault in [Fault::None, Fault::TokenErrorWith200] {
        fake.set_fault(fault);
        let (raw, body) = check(&app, &wrong).await;
        let credentials = result(&body, "client_credentials");
        assert_eq!(credentials["status"], "failed", "{fault:?}: {body}");
        let message = credentials["message"].as_str().unwrap();
        assert!(
            message.starts_with("tiktok refused the client id and secret: invalid_"),
            "{message}"
        );
        assert!(!raw.contains(WRONG_SECRET), "{raw}");
        assert!(
            !stored_last_check(&app, &wrong)
                .unwrap()
                .contains(WRONG_SECRET)
        );
    }
    fake.set_fault(Fault::None);
    let (_, body) = check(&app, &wrong).await;
    assert_eq!(
        result(&body, "client_credentials")["message"],
        "tiktok refused the client id and secret: invalid_client: Client key or secret is \
         incorrect."
    );
}

#[tokio::test]
async fn reddit_proves_a_good_secret_with_an_app_only_token_and_refuses_a_wrong_one() {
    let fake = FakeProvider::start(Kind::Reddit, CLIENT_ID, CLIENT_SECRET).await;
    let app = server_with_fake(Kind::Reddit, &fake, |_| {}).await;
    let good = create(&app, "reddit", CLIENT_SECRET, None).await;
    let (_, body) = check(&app, &good).await;
    assert_eq!(
        result(&body, "client_credentials")["status"],
        "ok",
        "{body}"
    );
    let call = &client_credentials_calls(&fake)[0];
    assert_eq!(call.method, "POST");
    assert!(call.authorization.as_deref().unwrap().starts_with("Basic "));
    // The fake answers 429 to a generic user agent: this one is Reddit's default.
    assert!(
        call.user_agent
            .as_deref()
            .unwrap()
            .starts_with("web:dravo:"),
        "{call:?}"
    );

    let wrong = app
        .create_ok(
            TENANT,
            &json!({"provider": "reddit", "name": "Wrong", "client_id": CLIENT_ID,
                    "client_secret": WRONG_SECRET}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (raw, body) = check(&app, &wrong).await;
    assert_eq!(
        result(&body, "client_credentials")["message"],
        "reddit refused the client id and secret: invalid_client: Unauthorized",
        "{body}"
    );
    assert!(!raw.contains(WRONG_SECRET), "{raw}");
}

#[tokio::test]
async fn tiktok_refuses_an_http_redirect_uri_even_on_loopback() {
    let fake = FakeProvider::start(Kind::Tiktok, CLIENT_ID, CLIENT_SECRET).await;
    let app = server_with_fake(Kind::Tiktok, &fake, |_| {}).await;
    let id = create(&app, "tiktok", CLIENT_SECRET, None).await;
    let (_, body) = check(&app, &id).await;
    let redirect = result(&body, "redirect_uri");
    assert_eq!(redirect["status"], "failed", "{body}");
    assert!(
        redirect["message"]
            .as_str()
            .unwrap()
            .contains("accepts only https redirect URIs, loopback hosts included"),
        "{body}"
    );
    assert_eq!(body["outcome"], "failed");
}

#[tokio::test]
async fn x_linkedin_instagram_threads_and_pinterest_cannot_prove_credentials_and_say_why_without_calling()
 {
    for (kind, why) in [
        (
            Kind::X,
            "X has no server-side grant for an OAuth 2.0 client id and secret",
        ),
        (
            Kind::Linkedin,
            "LinkedIn grants client credentials only to apps it approved",
        ),
        (
            Kind::Instagram,
            "Instagram Login has no client-credentials grant",
        ),
        (
            Kind::Threads,
            "the Threads API has no client-credentials grant",
        ),
        (
            Kind::Pinterest,
            "Pinterest grants no client-credentials token to a consumer app",
        ),
    ] {
        let fake = FakeProvider::start(kind, CLIENT_ID, CLIENT_SECRET).await;
        let app = server_with_fake(kind, &fake, |_| {}).await;
        let id = create(&app, kind.as_str(), WRONG_SECRET, None).await;
        let (_, body) = check(&app, &id).await;
        let credentials = result(&body, "client_credentials");
        assert_eq!(credentials["status"], "unknown", "{kind}: {body}");
        let message = credentials["message"].as_str().unwrap();
        assert!(message.starts_with(why), "{kind}: {message}");
        assert!(message.contains("shows at the first connect"), "{message}");
        // Everything else passes for the provider's defaults on a loopback server, and
        // `unknown` is then the outcome: nothing wrong found, not everything provable.
        assert_eq!(body["outcome"], "unknown", "{kind}: {body}");
        assert!(fake.requests().is_empty(), "{kind} was called");
    }
}

#[tokio::test]
async fn an_http_public_url_off_loopback_fails_the_redirect_check() {
    let app = spawn_app_with(|config| {
        config.server.public_url = Some("http://dravo.invalid".parse().unwrap());
        config.providers.timeout_seconds = 2;
    })
    .await;
    let id = create(&app, "x", CLIENT_SECRET, None).await;
    let (_, body) = check(&app, &id).await;
    let redirect = result(&body, "redirect_uri");
    assert_eq!(redirect["status"], "failed", "{body}");
    assert_eq!(
        redirect["message"],
        "x accepts only https redirect URIs, except on a loopback host (localhost, 127.0.0.1, \
         [::1])"
    );
    assert_eq!(body["outcome"], "failed");
}

#[tokio::test]
async fn a_public_url_with_a_query_puts_the_callback_path_in_the_query() {
    let app = spawn_app_with(|config| {
        config.server.public_url = Some("https://dravo.invalid/base?tenant=1".parse().unwrap());
        config.providers.timeout_seconds = 2;
    })
    .await;
    let id = create(&app, "linkedin", CLIENT_SECRET, None).await;
    let (_, body) = check(&app, &id).await;
    let redirect = result(&body, "redirect_uri");
    assert_eq!(redirect["status"], "failed", "{body}");
    assert_eq!(
        redirect["message"],
        "server.public_url `https://dravo.invalid/base?tenant=1` has a query, which ends up \
         inside the redirect URI `https://dravo.invalid/base?tenant=1/v1/oauth/linkedin/callback`: \
         remove it"
    );
}

#[tokio::test]
async fn a_public_url_path_prefix_is_fine_and_the_message_says_what_to_register() {
    let app = spawn_app_with(|config| {
        config.server.public_url = Some("https://dravo.invalid/vault/".parse().unwrap());
        config.providers.timeout_seconds = 2;
    })
    .await;
    let id = create(&app, "x", CLIENT_SECRET, None).await;
    let (_, body) = check(&app, &id).await;
    let redirect = result(&body, "redirect_uri");
    assert_eq!(redirect["status"], "ok", "{body}");
    assert_eq!(
        redirect["message"],
        "register exactly `https://dravo.invalid/vault/v1/oauth/x/callback` as a redirect URI \
         at x"
    );
}

#[tokio::test]
async fn listening_on_every_interface_without_a_public_url_fails_the_redirect_check() {
    let app = spawn_app_with(|config| {
        config.server.bind = "0.0.0.0:0".into();
        config.providers.timeout_seconds = 2;
    })
    .await;
    let id = create(&app, "x", CLIENT_SECRET, None).await;
    let (_, body) = check(&app, &id).await;
    let redirect = result(&body, "redirect_uri");
    assert_eq!(redirect["status"], "failed", "{body}");
    assert!(
        redirect["message"]
            .as_str()
            .unwrap()
            .starts_with("0.0.0.0 is every interface of this machine"),
        "{body}"
    );
}

#[tokio::test]
async fn unknown_scopes_and_missing_identity_scopes_fail_the_scope_check() {
    let app = spawn_app_with(|_| {}).await;
    let id = create(
        &app,
        "x",
        CLIENT_SECRET,
        Some(&["tweet.read", "tweet.wirte"]),
    )
    .await;
    let (_, body) = check(&app, &id).await;
    let scopes = result(&body, "scopes");
    assert_eq!(scopes["status"], "failed", "{body}");
    assert_eq!(
        scopes["message"],
        "`tweet.wirte` is not among the scopes x documents: did you mean `tweet.write`?; \
         `users.read` is missing: Dravo needs it to identify the connected account"
    );
    let linkedin = create(&app, "linkedin", CLIENT_SECRET, Some(&["w_member_social"])).await;
    let (_, body) = check(&app, &linkedin).await;
    assert_eq!(
        result(&body, "scopes")["message"],
        "`openid`, `profile` are missing: Dravo needs them to identify the connected account"
    );
    // Facebook without any Pages permission needs none of Dravo's; with one, pages_show_list.
    let plain = create(&app, "facebook", CLIENT_SECRET, Some(&["public_profile"])).await;
    let (_, body) = check(&app, &plain).await;
    assert_eq!(result(&body, "scopes")["status"], "ok", "{body}");
    let pages = app
        .create_ok(
            TENANT,
            &json!({"provider": "facebook", "name": "Pages", "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET, "scopes": ["pages_manage_posts"]}),
        )
        .await;
    let (_, body) = check(&app, pages["id"].as_str().unwrap()).await;
    assert_eq!(
        result(&body, "scopes")["message"],
        "`pages_show_list` is missing: Dravo needs it to identify the connected account"
    );
}

#[tokio::test]
async fn an_unreachable_public_url_is_only_a_warning() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let public = format!("http://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let app = spawn_app_with(|config| {
        config.server.public_url = Some(public.parse().unwrap());
    })
    .await;
    let id = create(&app, "linkedin", CLIENT_SECRET, None).await;
    let (_, body) = check(&app, &id).await;
    let reachable = result(&body, "public_url_reachable");
    assert_eq!(reachable["status"], "warning", "{body}");
    let message = reachable["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "GET {public}/healthz from this machine failed (cannot connect"
        )),
        "{message}"
    );
    assert_eq!(result(&body, "redirect_uri")["status"], "ok", "{body}");
    assert_eq!(body["outcome"], "warning");

    // The server's own address answers as Dravo's health check.
    let reaching = spawn_app_with(|_| {}).await;
    let id = create(&reaching, "linkedin", CLIENT_SECRET, None).await;
    let (_, body) = check(&reaching, &id).await;
    assert_eq!(
        result(&body, "public_url_reachable")["message"],
        format!(
            "GET {}/healthz from this machine answered as Dravo's health check",
            reaching.base_url
        )
    );
}

#[tokio::test]
async fn a_public_url_answered_by_another_server_is_a_warning() {
    // The fake provider answers 404 JSON for /healthz: a server, but not Dravo.
    let other = FakeProvider::start(Kind::X, CLIENT_ID, CLIENT_SECRET).await;
    let app = spawn_app_with(|config| {
        config.server.public_url = Some(other.api_base().parse().unwrap());
    })
    .await;
    let id = create(&app, "x", CLIENT_SECRET, None).await;
    let (_, body) = check(&app, &id).await;
    let reachable = result(&body, "public_url_reachable");
    assert_eq!(reachable["status"], "warning", "{body}");
    assert!(
        reachable["message"]
            .as_str()
            .unwrap()
            .contains("answered HTTP 404 but not as Dravo's health check"),
        "{body}"
    );
}

#[tokio::test]
async fn the_last_check_is_stored_shown_on_the_app_and_cleared_by_a_new_secret() {
    let fake = FakeProvider::start(Kind::Facebook, CLIENT_ID, CLIENT_SECRET).await;
    let app = server_with_fake(Kind::Facebook, &fake, |_| {}).await;
    let id = create(&app, "facebook", WRONG_SECRET, None).await;
    let path = format!("/v1/oauth-apps/{id}");
    let fresh: Value = app.get_as(TENANT, &path).await.json().await.unwrap();
    assert!(fresh["last_check"].is_null(), "{fresh}");
    assert!(stored_last_check(&app, &id).is_none());

    let (_, checked) = check(&app, &id).await;
    let shown: Value = app.get_as(TENANT, &path).await.json().await.unwrap();
    assert_eq!(shown["last_check"], checked, "GET shows the check");
    let listed = app.list_apps(TENANT).await;
    assert_eq!(listed[0]["last_check"], checked, "the list shows it too");
    let checked_at = Db::open(&app.db_path())
        .value(
            "SELECT last_check_at FROM oauth_apps WHERE id = ?1",
            &[(&id).into()],
        )
        .int();
    let at = time::OffsetDateTime::parse(
        checked["checked_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(at.unix_timestamp(), checked_at);
    // `credentials_error` is the refresh engine's: a check leaves it alone.
    assert!(shown["credentials_error"].is_null(), "{shown}");

    // A new secret makes the old result meaningless; the next check proves the new one.
    let patched: Value = app
        .http
        .patch(app.url(&path))
        .bearer_auth(app.token(TENANT))
        .json(&json!({"client_secret": CLIENT_SECRET}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(patched["last_check"].is_null(), "{patched}");
    let (_, again) = check(&app, &id).await;
    assert_eq!(result(&again, "client_credentials")["status"], "ok");
    let renamed: Value = app
        .http
        .patch(app.url(&path))
        .bearer_auth(app.token(TENANT))
        .json(&json!({"name": "Renamed"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(renamed["last_check"], again, "a new name keeps the check");
}

#[tokio::test]
async fn another_tenants_app_is_not_found_and_stays_unchecked() {
    let app = spawn_app_with(|_| {}).await;
    let id = create(&app, "x", CLIENT_SECRET, None).await;
    let message = assert_error(post_check(&app, "tenant-bob", &id).await, 404, "not_found").await;
    assert_eq!(message, format!("no OAuth app with id {id}"));
    assert!(stored_last_check(&app, &id).is_none());
    assert_error(
        post_check(&app, TENANT, "oa_aaaaaaaaaaaaaaaaaaaa").await,
        404,
        "not_found",
    )
    .await;
    assert_error(post_check(&app, TENANT, "42").await, 400, "invalid_request").await;
    let anonymous = app
        .http
        .post(app.url(&format!("/v1/oauth-apps/{id}/check")))
        .send()
        .await
        .unwrap();
    assert_error(anonymous, 401, "unauthorized").await;
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
    let back = Url::parse(done.headers()["location"].to_str().unwrap()).unwrap();
    let pairs: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!(pairs["status"], "connected", "{back}");
    pairs["account_id"].clone()
}

#[tokio::test]
async fn a_refresh_refused_for_the_apps_credentials_records_a_failed_check() {
    let fake = FakeProvider::start(Kind::X, CLIENT_ID, CLIENT_SECRET).await;
    let app = server_with_fake(Kind::X, &fake, |_| {}).await;
    let id = create(&app, "x", CLIENT_SECRET, None).await;
    let account = connect(&app, &id, Kind::X).await;
    fake.set_fault(Fault::TokenStatus(401));
    let refreshed = app
        .send_as(
            TENANT,
            reqwest::Method::POST,
            &format!("/v1/accounts/{account}/refresh"),
        )
        .await;
    // The refresh the caller asked for failed, and the app is blamed: a 502 that says so.
    assert_eq!(refreshed.status(), 502);
    let body: Value = refreshed.json().await.unwrap();
    assert_eq!(body["error"]["code"], "provider_error", "{body}");
    assert_eq!(body["error"]["refresh"]["failure"], "app", "{body}");
    assert_eq!(
        body["error"]["refresh"]["account_status"], "active",
        "{body}"
    );
    assert_eq!(
        body["error"]["refresh"]["provider_error"], "unauthorized_client",
        "{body}"
    );
    let shown: Value = app
        .get_as(TENANT, &format!("/v1/oauth-apps/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let why = "unauthorized_client: fake: forced failure (client authentication failed)";
    assert_eq!(shown["credentials_error"], why, "kept as it was: {shown}");
    let last = &shown["last_check"];
    assert_eq!(last["source"], "refresh", "{shown}");
    assert_eq!(last["outcome"], "failed");
    assert_eq!(
        last["checks"],
        json!([{
            "name": "client_credentials",
            "status": "failed",
            "message": format!("x refused the client id and secret during a refresh: {why}"),
        }])
    );
    assert!(!shown.to_string().contains(CLIENT_SECRET));
}

#[tokio::test]
async fn the_specs_check_example_is_what_checking_a_default_x_app_answers() {
    let spec: Value = serde_json::from_str(&dravo::api::spec_json()).unwrap();
    let example = spec["components"]["schemas"]["OAuthAppCheck"]["example"].clone();
    let app = spawn_app_with(|_| {}).await;
    let id = create(&app, "x", CLIENT_SECRET, None).await;
    let (raw, _) = check(&app, &id).await;
    // The example names the default public URL; this server has its own.
    let mut answered: Value = serde_json::from_str(
        &raw.replace(&app.base_url, &dravo::wire::views::example_public_url()),
    )
    .unwrap();
    answered["checked_at"] = example["checked_at"].clone();
    assert_eq!(answered, example);
}

#[tokio::test]
async fn the_cli_checks_an_app_itself_with_table_and_json_output() {
    let fake = FakeProvider::start(Kind::Facebook, CLIENT_ID, CLIENT_SECRET).await;
    let app = server_with_fake(Kind::Facebook, &fake, |_| {}).await;
    let id = create(&app, "facebook", WRONG_SECRET, None).await;
    let dir = app.dir.path().to_owned();
    let token_url = fake.token_url();
    let public_url = app.base_url.clone();
    let run = move |json: bool| {
        let (dir, token_url, public_url, id) = (
            dir.clone(),
            token_url.clone(),
            public_url.clone(),
            id.clone(),
        );
        // A blocking thread: the server answering the reachability check runs on this
        // test's runtime.
        tokio::task::spawn_blocking(move || {
            let mut args = vec!["oauth-apps", "check", "--owner", TENANT, id.as_str()];
            if json {
                args.push("--json");
            }
            dravo_with(
                &dir,
                &[
                    ("DRAVO_PROVIDERS_FACEBOOK_TOKEN_URL", token_url.as_str()),
                    ("DRAVO_SERVER_PUBLIC_URL", public_url.as_str()),
                ],
                &args,
                "",
            )
        })
    };
    let out = run(true).await.unwrap();
    out.assert_success().assert_hides(WRONG_SECRET);
    let body = out.json();
    assert_eq!(body["outcome"], "failed", "{body}");
    assert_eq!(body["source"], "check");
    assert_eq!(result(&body, "client_credentials")["status"], "failed");
    assert_eq!(
        result(&body, "public_url_reachable")["status"],
        "ok",
        "{body}"
    );
    // The CLI stored it where the server reads it.
    let shown: Value = app
        .get_as(TENANT, &format!("/v1/oauth-apps/{}", body_id(&app).await))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["last_check"], body);

    let out = run(false).await.unwrap();
    out.assert_success().assert_hides(WRONG_SECRET);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "outcome:    failed", "{}", out.stdout);
    assert!(lines[1].starts_with("checked_at: "), "{}", out.stdout);
    assert_eq!(lines[2], "");
    assert!(
        lines[3].starts_with("CHECK")
            && lines[3].contains("STATUS")
            && lines[3].ends_with("MESSAGE"),
        "{}",
        out.stdout
    );
    let row = |name: &str| {
        lines[4..]
            .iter()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name}: {}", out.stdout))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(row("client_credentials")[1], "failed");
    assert_eq!(row("redirect_uri")[1], "ok");
    assert_eq!(row("scopes")[1], "ok");
    assert_eq!(row("public_url_reachable")[1], "ok");
    assert_eq!(lines.len(), 8, "{}", out.stdout);

    // `show` sums the stored check up in one line.
    let dir = app.dir.path().to_owned();
    let id = body_id(&app).await;
    let shown = tokio::task::spawn_blocking(move || {
        dravo_with(
            &dir,
            &[],
            &["oauth-apps", "show", "--owner", TENANT, &id],
            "",
        )
    })
    .await
    .unwrap();
    shown.assert_success();
    let line = shown
        .stdout
        .lines()
        .find(|l| l.starts_with("last_check:"))
        .unwrap_or_else(|| panic!("{}", shown.stdout));
    assert!(
        line.contains("failed at ") && line.ends_with("(by check): client_credentials failed"),
        "{line}"
    );
}

/// The id of `TENANT`'s only app.
async fn body_id(app: &TestApp) -> String {
    app.list_apps(TENANT).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Google has no client-credentials grant; a made-up code at its token endpoint tells good
/// credentials (`invalid_grant`: the code is refused) from bad ones (`invalid_client`), and
/// grants nothing either way.
#[tokio::test]
async fn google_providers_prove_credentials_with_a_made_up_code() {
    for kind in [Kind::Youtube, Kind::GoogleBusiness] {
        let fake = FakeProvider::start(kind, CLIENT_ID, CLIENT_SECRET).await;
        let app = server_with_fake(kind, &fake, |_| {}).await;
        let good = create(&app, kind.as_str(), CLIENT_SECRET, None).await;
        let (_, body) = check(&app, &good).await;
        let credentials = result(&body, "client_credentials");
        assert_eq!(credentials["status"], "ok", "{kind}: {body}");
        assert_eq!(body["outcome"], "ok", "{kind}: {body}");
        // The same app with a wrong secret.
        let resp = app
            .http
            .patch(app.url(&format!("/v1/oauth-apps/{good}")))
            .bearer_auth(app.token(TENANT))
            .json(&json!({"client_secret": WRONG_SECRET}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let (raw, body) = check(&app, &good).await;
        let credentials = result(&body, "client_credentials");
        assert_eq!(credentials["status"], "failed", "{kind}: {body}");
        assert!(
            credentials["message"]
                .as_str()
                .unwrap()
                .contains("invalid_client: Unauthorized"),
            "{body}"
        );
        assert!(!raw.contains(WRONG_SECRET), "{raw}");
        // Two calls, each a code exchange with the credentials in the body; no token issued.
        let calls = fake.requests_to("/token");
        assert_eq!(calls.len(), 2, "{kind}");
        for call in &calls {
            assert_eq!(call.method, "POST");
            assert_eq!(call.param("grant_type"), Some("authorization_code"));
            assert_eq!(call.param("client_id"), Some(CLIENT_ID));
        }
        assert!(fake.issued_access_tokens().is_empty(), "{kind}");
    }
}
