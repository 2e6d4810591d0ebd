//! Phishing-proof connects (`connect.require_confirmation`), played against a fake X on
//! 127.0.0.1. The attack: a tenant ("mallory") starts a connect with the platform's default
//! app and sends the consent URL to a victim, who sees X's genuine consent screen and agrees.
//! Without confirmation the victim's account lands in mallory's tenant and its token is hers
//! to read. With confirmation, the consent becomes a pending connection whose one-time code
//! only reaches the victim's browser (the dashboard), and mallory gets nothing.

use crate::support;
use crate::support::fake_provider;

use std::collections::HashMap;
use std::sync::Arc;

use dravo::Config;
use dravo::clock::{Clock, ManualClock};
use dravo::config::ProviderConfig;
use fake_provider::{FakeProvider, Kind};
use serde_json::{Value, json};
use support::{TestApp, assert_error};
use url::Url;

const CLIENT_ID: &str = "fake-client-id-123";
const CLIENT_SECRET: &str = "fake-client-secret-456";
const DASH: &str = "https://dash.example.com/connected";
const MALLORY: &str = "tenant-mallory";
const VICTIM: &str = "tenant-victim";

fn configure(config: &mut Config, fake: &FakeProvider, require_confirmation: bool) {
    let (authorize, token, api) = fake.config_urls();
    *config.providers.entry("x".parse().unwrap()) = ProviderConfig {
        authorize_url: Some(Url::parse(&authorize).unwrap()),
        token_url: Some(Url::parse(&token).unwrap()),
        api_base: Some(Url::parse(&api).unwrap()),
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(secrecy::SecretString::from(CLIENT_SECRET.to_owned())),
        ..Default::default()
    };
    config.dashboard.allowed_return_urls = vec!["https://dash.example.com".into()];
    config.connect.require_confirmation = require_confirmation;
    // Events are queued in the outbox; nothing listens on the discard port, so they stay.
    config.webhooks.url = Some(Url::parse("http://127.0.0.1:9/hooks").unwrap());
    config.webhooks.secret = Some(secrecy::SecretString::from(
        "whsec_test_0123456789abcdef".to_owned(),
    ));
}

/// The types of the webhook events queued so far, oldest first.
async fn webhook_types(app: &TestApp) -> Vec<String> {
    let mut types: Vec<String> = app
        .dravo
        .list_webhooks(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    types.reverse();
    types
}

struct Setup {
    app: TestApp,
    fake: FakeProvider,
    clock: ManualClock,
}

async fn setup(require_confirmation: bool) -> Setup {
    let clock = ManualClock::starting_now();
    let fake = FakeProvider::start(Kind::X, CLIENT_ID, CLIENT_SECRET).await;
    fake.set_account("victim-x-id", Some("victim"), Some("The Victim"));
    let app = support::spawn_app_with_clock(
        |c| configure(c, &fake, require_confirmation),
        Arc::new(clock.clone()),
    )
    .await;
    Setup { app, fake, clock }
}

/// `tenant` starts a connect; returns the consent URL it would send to someone.
async fn start(app: &TestApp, tenant: &str) -> String {
    let url =
        Url::parse_with_params(&app.url("/v1/oauth/x/start"), &[("return_url", DASH)]).unwrap();
    let resp = app
        .http
        .get(url)
        .bearer_auth(app.token(tenant))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["authorize_url"].as_str().unwrap().to_owned()
}

/// Whoever opens `authorize_url` consents at the fake; the browser then follows Dravo's
/// callback. Returns the query of the URL the browser lands on at the dashboard.
async fn consent(app: &TestApp, authorize_url: &str) -> HashMap<String, String> {
    let consent = app.http.get(authorize_url).send().await.unwrap();
    assert_eq!(consent.status(), 302, "the fake's consent");
    let callback = consent.headers()["location"].to_str().unwrap().to_owned();
    let done = app.http.get(callback).send().await.unwrap();
    assert_eq!(done.status(), 302, "Dravo's callback");
    let back = Url::parse(done.headers()["location"].to_str().unwrap()).unwrap();
    assert!(back.as_str().starts_with(DASH), "{back}");
    back.query_pairs().into_owned().collect()
}

async fn accounts(app: &TestApp, tenant: &str) -> Vec<Value> {
    let resp = app.get_as(tenant, "/v1/accounts").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["data"].as_array().unwrap().clone()
}

async fn confirm(app: &TestApp, tenant: &str, id: &str, code: &str) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/v1/accounts/{id}/confirm")))
        .bearer_auth(app.token(tenant))
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap()
}

fn pending_rows(app: &TestApp) -> i64 {
    support::Db::open(&app.db_path())
        .value("SELECT count(*) FROM pending_connections", &[])
        .int()
}

#[tokio::test]
async fn without_confirmation_the_attack_works_the_victims_token_is_mallorys() {
    let s = setup(false).await;
    let link = start(&s.app, MALLORY).await;
    let landed = consent(&s.app, &link).await;
    assert_eq!(landed["status"], "connected");
    let listed = accounts(&s.app, MALLORY).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["username"], "victim");
    let token: Value = s
        .app
        .get_as(
            MALLORY,
            &format!("/v1/accounts/{}/access-token", landed["account_id"]),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        token["access_token"].as_str().unwrap(),
        s.fake.issued_access_tokens().last().unwrap(),
        "this is the hole require_confirmation closes"
    );
}

#[tokio::test]
async fn with_confirmation_the_victims_account_never_reaches_mallory() {
    let s = setup(true).await;
    let link = start(&s.app, MALLORY).await;
    // The victim consents; the browser, and with it the code, lands at the dashboard.
    let landed = consent(&s.app, &link).await;
    assert_eq!(landed["status"], "pending");
    assert_eq!(landed["provider"], "x");
    assert!(!landed.contains_key("account_id"), "{landed:?}");
    let (id, code) = (&landed["connection_id"], &landed["confirm"]);
    assert!(id.starts_with("acc_"), "{id}");
    assert!(code.len() >= 40, "a code worth guessing: {code}");

    // Mallory, without the code, sees and reads nothing.
    assert!(accounts(&s.app, MALLORY).await.is_empty());
    for tail in ["", "/access-token", "/events"] {
        let resp = s
            .app
            .get_as(MALLORY, &format!("/v1/accounts/{id}{tail}"))
            .await;
        assert_error(resp, 404, "not_found").await;
    }
    let refresh = s
        .app
        .http
        .post(s.app.url(&format!("/v1/accounts/{id}/refresh")))
        .bearer_auth(s.app.token(MALLORY))
        .send()
        .await
        .unwrap();
    assert_error(refresh, 404, "not_found").await;
    let guessed = confirm(
        &s.app,
        MALLORY,
        id,
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    )
    .await;
    let message = assert_error(guessed, 400, "invalid_request").await;
    assert!(message.contains("confirmation code"), "{message}");

    // The victim's dashboard, signed in as the victim's tenant, confirms what it received:
    // the connection is not the victim's tenant's, so nothing happens.
    let wrong_tenant = confirm(&s.app, VICTIM, id, code).await;
    assert_error(wrong_tenant, 404, "not_found").await;
    assert!(accounts(&s.app, VICTIM).await.is_empty());
    assert!(accounts(&s.app, MALLORY).await.is_empty());

    // Ten minutes later it is gone, tokens and all.
    s.clock.advance(601);
    s.app.dravo.forget_unconfirmed(s.clock.now()).await.unwrap();
    assert_eq!(pending_rows(&s.app), 0);
    assert!(accounts(&s.app, MALLORY).await.is_empty());
}

#[tokio::test]
async fn the_tenant_who_started_confirms_once_and_gets_a_working_account() {
    let s = setup(true).await;
    let link = start(&s.app, MALLORY).await;
    let landed = consent(&s.app, &link).await;
    let (id, code) = (&landed["connection_id"], &landed["confirm"]);
    assert_eq!(pending_rows(&s.app), 1);

    // The pending row holds the tokens sealed, not in the clear, and not the code.
    let row = support::Db::open(&s.app.db_path())
        .row("SELECT sealed, confirm_hash FROM pending_connections", &[]);
    let (sealed, hash) = (row[0].blob(), row[1].blob());
    let issued = s.fake.issued_access_tokens().last().unwrap().clone();
    let haystack = String::from_utf8_lossy(&sealed);
    assert!(!haystack.contains(&issued));
    assert!(!String::from_utf8_lossy(&hash).contains(code.as_str()));
    assert!(
        webhook_types(&s.app).await.is_empty(),
        "nothing is announced before confirmation"
    );

    s.clock.advance(540);
    let resp = confirm(&s.app, MALLORY, id, code).await;
    assert_eq!(resp.status(), 200);
    let account: Value = resp.json().await.unwrap();
    assert_eq!(account["id"], id.as_str());
    assert_eq!(account["status"], "active");
    assert_eq!(account["username"], "victim");
    assert_eq!(pending_rows(&s.app), 0);
    assert_eq!(webhook_types(&s.app).await, ["account.connected"]);

    // A normal account from now on: listed, its token readable, its log begun.
    assert_eq!(accounts(&s.app, MALLORY).await.len(), 1);
    let token: Value = s
        .app
        .get_as(MALLORY, &format!("/v1/accounts/{id}/access-token"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(token["access_token"].as_str().unwrap(), issued);
    let events: Value = s
        .app
        .get_as(MALLORY, &format!("/v1/accounts/{id}/events"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(events["data"][0]["type"], "connected");
    // The token's expiry counts from when X issued it, not from the confirmation.
    let expires = time::OffsetDateTime::parse(
        token["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp();
    assert_eq!(expires, s.clock.now().unix() - 540 + 7200);

    // The code works once.
    let again = confirm(&s.app, MALLORY, id, code).await;
    assert_error(again, 404, "not_found").await;
}

#[tokio::test]
async fn a_connection_not_confirmed_within_ten_minutes_cannot_be_confirmed() {
    let s = setup(true).await;
    let link = start(&s.app, MALLORY).await;
    let landed = consent(&s.app, &link).await;
    s.clock.advance(601);
    let late = confirm(
        &s.app,
        MALLORY,
        &landed["connection_id"],
        &landed["confirm"],
    )
    .await;
    let message = assert_error(late, 404, "not_found").await;
    assert!(message.contains("10 minutes"), "{message}");
    assert!(accounts(&s.app, MALLORY).await.is_empty());
}

#[tokio::test]
async fn a_reconnect_waits_too_and_the_account_keeps_its_old_token_until_confirmed() {
    let s = setup(true).await;
    let first = consent(&s.app, &start(&s.app, MALLORY).await).await;
    let id = first["connection_id"].clone();
    assert_eq!(
        confirm(&s.app, MALLORY, &id, &first["confirm"])
            .await
            .status(),
        200
    );
    let old_token = s.fake.issued_access_tokens().last().unwrap().clone();

    let second = consent(&s.app, &start(&s.app, MALLORY).await).await;
    assert_eq!(second["status"], "pending");
    assert_eq!(second["connection_id"], id, "a reconnect names the account");
    let token = |app: &TestApp| {
        let path = format!("/v1/accounts/{id}/access-token");
        let app = app
            .http
            .clone()
            .get(app.url(&path))
            .bearer_auth(app.token(MALLORY));
        async move {
            let body: Value = app.send().await.unwrap().json().await.unwrap();
            body["access_token"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(token(&s.app).await, old_token);
    assert_eq!(
        confirm(&s.app, MALLORY, &id, &second["confirm"])
            .await
            .status(),
        200
    );
    let new_token = s.fake.issued_access_tokens().last().unwrap().clone();
    assert_ne!(new_token, old_token);
    assert_eq!(token(&s.app).await, new_token);
    assert_eq!(accounts(&s.app, MALLORY).await.len(), 1);
}

#[tokio::test]
async fn start_needs_a_return_url_when_confirmation_is_required() {
    let s = setup(true).await;
    let resp = s.app.get_as(MALLORY, "/v1/oauth/x/start").await;
    let message = assert_error(resp, 400, "invalid_request").await;
    assert!(
        message.contains("connect.require_confirmation"),
        "{message}"
    );
}

#[tokio::test]
async fn confirm_refuses_a_malformed_body_and_id() {
    let s = setup(true).await;
    let resp = s
        .app
        .http
        .post(s.app.url("/v1/accounts/acc_aaaaaaaaaaaaaaaaaaaa/confirm"))
        .bearer_auth(s.app.token(MALLORY))
        .json(&json!({ "code": "" }))
        .send()
        .await
        .unwrap();
    assert_error(resp, 400, "invalid_request").await;
    let resp = confirm(&s.app, MALLORY, "not-an-id", "abc").await;
    assert_error(resp, 400, "invalid_request").await;
    let resp = confirm(&s.app, MALLORY, "acc_aaaaaaaaaaaaaaaaaaaa", "abc").await;
    assert_error(resp, 404, "not_found").await;
}
