//! Facebook Pages and LinkedIn organizations as child accounts, against fake providers on
//! 127.0.0.1 that serve `/me/accounts` and `organizationAcls` a couple of items a page.

use crate::support;
use crate::support::fake_provider;

use std::collections::HashMap;
use std::sync::Arc;

use dravo::Config;
use dravo::clock::ManualClock;
use dravo::config::ProviderConfig;
use fake_provider::{FakeProvider, Kind};
use serde_json::{Value, json};
use support::{TestApp, assert_error, dravo_cmd};
use url::Url;

const CLIENT_ID: &str = "fake-client-id-123";
const CLIENT_SECRET: &str = "fake-client-secret-456";
const DASH: &str = "https://dash.example.com/connected";
const TENANT: &str = "tenant-alice";
const DAY: i64 = 86_400;

const POSTING: &[&str] = &["CREATE_CONTENT", "MODERATE", "ANALYZE"];
const ANALYST: &[&str] = &["ANALYZE"];

fn configure(config: &mut Config, fake: &FakeProvider, scopes: Option<&[&str]>) {
    let (authorize, token, api) = fake.config_urls();
    *config.providers.entry(fake.kind.as_str().parse().unwrap()) = ProviderConfig {
        authorize_url: Some(Url::parse(&authorize).unwrap()),
        token_url: Some(Url::parse(&token).unwrap()),
        api_base: Some(Url::parse(&api).unwrap()),
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(secrecy::SecretString::from(CLIENT_SECRET.to_owned())),
        scopes: scopes.map(|s| s.iter().map(|s| (*s).to_owned()).collect()),
        ..Default::default()
    };
    config.dashboard.allowed_return_urls = vec!["https://dash.example.com".into()];
    // Events are queued in the outbox; nothing listens on the discard port, so they stay.
    config.webhooks.url = Some(Url::parse("http://127.0.0.1:9/hooks").unwrap());
    config.webhooks.secret = Some(secrecy::SecretString::from(
        "whsec_test_0123456789abcdef".to_owned(),
    ));
}

struct Setup {
    app: TestApp,
    fake: FakeProvider,
    clock: ManualClock,
}

async fn setup(kind: Kind, scopes: Option<&[&str]>) -> Setup {
    setup_with(kind, scopes, |_| {}).await
}

async fn setup_with(kind: Kind, scopes: Option<&[&str]>, tweak: impl FnOnce(&mut Config)) -> Setup {
    let clock = ManualClock::starting_now();
    let fake = FakeProvider::start(kind, CLIENT_ID, CLIENT_SECRET).await;
    let app = support::spawn_app_with_clock(
        |c| {
            configure(c, &fake, scopes);
            tweak(c);
        },
        Arc::new(clock.clone()),
    )
    .await;
    Setup { app, fake, clock }
}

/// start → consent → callback; the query the browser lands on at the dashboard.
async fn consent(s: &Setup) -> HashMap<String, String> {
    let url = Url::parse_with_params(
        &s.app
            .url(&format!("/v1/oauth/{}/start", s.fake.kind.as_str())),
        &[("return_url", DASH)],
    )
    .unwrap();
    let body: Value = s
        .app
        .http
        .get(url)
        .bearer_auth(s.app.token(TENANT))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let consent = s
        .app
        .http
        .get(body["authorize_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), 302, "the fake's consent");
    let callback = consent.headers()["location"].to_str().unwrap().to_owned();
    let done = s.app.http.get(callback).send().await.unwrap();
    assert_eq!(done.status(), 302, "Dravo's callback");
    let back = Url::parse(done.headers()["location"].to_str().unwrap()).unwrap();
    back.query_pairs().into_owned().collect()
}

async fn connect(s: &Setup) -> String {
    let landed = consent(s).await;
    assert_eq!(landed["status"], "connected", "{landed:?}");
    landed["account_id"].clone()
}

async fn list(s: &Setup, query: &str) -> Vec<Value> {
    let resp = s.app.get_as(TENANT, &format!("/v1/accounts{query}")).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["data"].as_array().unwrap().clone()
}

fn by_provider_id<'a>(accounts: &'a [Value], id: &str) -> &'a Value {
    accounts
        .iter()
        .find(|a| a["provider_account_id"] == id)
        .unwrap_or_else(|| panic!("no account {id} in {accounts:#?}"))
}

async fn token_of(s: &Setup, id: &str) -> reqwest::Response {
    s.app
        .get_as(TENANT, &format!("/v1/accounts/{id}/access-token"))
        .await
}

async fn refresh(s: &Setup, id: &str) -> reqwest::Response {
    s.app
        .http
        .post(s.app.url(&format!("/v1/accounts/{id}/refresh")))
        .bearer_auth(s.app.token(TENANT))
        .send()
        .await
        .unwrap()
}

/// The webhook types queued so far, oldest first.
async fn webhook_types(app: &TestApp) -> Vec<String> {
    let mut types: Vec<String> = app
        .dravo
        .list_webhooks(None, 200)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    types.reverse();
    types
}

fn count(types: &[String], kind: &str) -> usize {
    types.iter().filter(|t| *t == kind).count()
}

#[tokio::test]
async fn a_facebook_connect_stores_every_page_with_its_own_sealed_token() {
    let s = setup(Kind::Facebook, None).await;
    s.fake.set_pages(&[
        ("101", "Bakery", POSTING),
        ("102", "Bakery Fans", ANALYST),
        ("103", "Bakery Jobs", POSTING),
    ]);
    let user = connect(&s).await;

    let all = list(&s, "").await;
    assert_eq!(all.len(), 4, "{all:#?}");
    let parent = all.iter().find(|a| a["id"] == user.as_str()).unwrap();
    assert_eq!(parent["kind"], "user");
    assert_eq!(parent["parent_id"], Value::Null);
    for (id, name, tasks) in [
        ("101", "Bakery", POSTING),
        ("102", "Bakery Fans", ANALYST),
        ("103", "Bakery Jobs", POSTING),
    ] {
        let page = by_provider_id(&all, id);
        assert!(page["id"].as_str().unwrap().starts_with("acc_"));
        assert_eq!(page["kind"], "page");
        assert_eq!(page["parent_id"], user.as_str());
        assert_eq!(page["display_name"], name);
        assert_eq!(page["tasks"], json!(tasks));
        assert_eq!(page["status"], "active");
        assert_eq!(
            page["reauth_by"], parent["reauth_by"],
            "a Page dies with its user's grant"
        );
    }
    // The Page without CREATE_CONTENT is stored as it is: the dashboard decides.
    assert!(
        !by_provider_id(&all, "102")["tasks"]
            .as_array()
            .unwrap()
            .contains(&json!("CREATE_CONTENT"))
    );

    // Each Page's token is its own, and it is sealed at rest.
    let db: Vec<u8> = support::database_bytes(&s.app.db_path())
        .into_iter()
        .flat_map(|(_, bytes)| bytes)
        .collect();
    assert!(
        !db.is_empty(),
        "nothing stored: the search would prove nothing"
    );
    for fake_page in s.fake.pages() {
        let page = by_provider_id(&all, &fake_page.id);
        let resp = token_of(&s, page["id"].as_str().unwrap()).await;
        assert_eq!(resp.status(), 200);
        let token: Value = resp.json().await.unwrap();
        assert_eq!(token["access_token"], fake_page.token.as_str());
        assert!(
            !db.windows(fake_page.token.len())
                .any(|w| w == fake_page.token.as_bytes()),
            "a Page token in the clear in the database file"
        );
    }

    // Paging followed the cursor on the configured host, never the `next` URL Meta sent.
    let listed = s.fake.requests_to("/v25.0/me/accounts");
    assert_eq!(listed.len(), 2, "3 Pages at 2 a page");
    assert_eq!(listed[0].param("after"), None);
    assert!(listed[1].param("after").is_some());
    assert!(listed.iter().all(|r| r.param("access_token").is_none()));
    assert!(
        listed
            .iter()
            .all(|r| r.param("fields") == Some("id,name,access_token,tasks"))
    );

    // Filters.
    assert_eq!(list(&s, "?kind=page").await.len(), 3);
    assert_eq!(list(&s, "?kind=user").await.len(), 1);
    assert_eq!(list(&s, &format!("?parent_id={user}")).await.len(), 3);
    assert_eq!(list(&s, "?kind=organization").await.len(), 0);
    let bad = s.app.get_as(TENANT, "/v1/accounts?kind=group").await;
    assert_error(bad, 400, "invalid_request").await;
    let other = s
        .app
        .get_as("tenant-bob", &format!("/v1/accounts?parent_id={user}"))
        .await;
    let other: Value = other.json().await.unwrap();
    assert_eq!(other["data"], json!([]), "another tenant sees none of them");

    let types = webhook_types(&s.app).await;
    assert_eq!(count(&types, "account.connected"), 4, "{types:?}");
}

#[tokio::test]
async fn refreshing_the_user_relists_pages_adds_new_ones_and_marks_removed_ones() {
    let s = setup(Kind::Facebook, None).await;
    s.fake
        .set_pages(&[("101", "Bakery", POSTING), ("102", "Bakery Fans", ANALYST)]);
    let user = connect(&s).await;
    let before = list(&s, "?kind=page").await;
    let fans = by_provider_id(&before, "102")["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The user lost the Fans Page and gained a new one.
    s.fake
        .set_pages(&[("101", "Bakery", POSTING), ("104", "Bakery Deli", POSTING)]);
    let resp = refresh(&s, &user).await;
    assert_eq!(resp.status(), 200);
    let pages = list(&s, "?kind=page").await;
    assert_eq!(pages.len(), 3, "removed Pages are kept: {pages:#?}");
    let removed = by_provider_id(&pages, "102");
    assert_eq!(
        removed["id"],
        fans.as_str(),
        "same account, never silently deleted"
    );
    assert_eq!(removed["status"], "needs_reauth");
    assert!(
        removed["status_reason"]
            .as_str()
            .unwrap()
            .starts_with("page_access_removed"),
        "{removed}"
    );
    assert_eq!(by_provider_id(&pages, "104")["status"], "active");
    let msg = assert_error(token_of(&s, &fans).await, 409, "needs_reauth").await;
    assert!(msg.contains("page_access_removed"), "{msg}");

    // Refreshing a Page refreshes its user, and a Page listed again recovers.
    s.fake.set_pages(&[
        ("101", "Bakery", POSTING),
        ("102", "Bakery Fans", POSTING),
        ("104", "Bakery Deli", POSTING),
    ]);
    let resp = refresh(&s, &fans).await;
    assert_eq!(resp.status(), 200);
    let back: Value = resp.json().await.unwrap();
    assert_eq!(back["status"], "active");
    assert_eq!(back["tasks"], json!(POSTING), "fresh tasks");
    assert_eq!(token_of(&s, &fans).await.status(), 200);

    let types = webhook_types(&s.app).await;
    assert_eq!(
        count(&types, "account.connected"),
        4,
        "user, 2 Pages, then Deli: {types:?}"
    );
    assert_eq!(count(&types, "account.needs_reauth"), 1, "{types:?}");
    assert_eq!(count(&types, "account.recovered"), 1, "{types:?}");
}

#[tokio::test]
async fn pages_follow_their_user_into_expiring_and_needs_reauth() {
    let s = setup(Kind::Facebook, None).await;
    s.fake.set_pages(&[("101", "Bakery", POSTING)]);
    let user = connect(&s).await;
    let page = list(&s, "?kind=page").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Within refresh.warn_days (7) of Facebook's 60 days: the refresher warns the user, and
    // the Page shows it too.
    s.clock.advance(54 * DAY);
    s.app.dravo.tend_due_accounts().await.unwrap();
    let accounts = list(&s, "").await;
    for a in &accounts {
        assert_eq!(a["status"], "expiring", "{a}");
    }
    assert_eq!(
        token_of(&s, &page).await.status(),
        200,
        "expiring is usable"
    );

    // Past the deadline: the Page's token dies with the user's.
    s.clock.advance(7 * DAY);
    let msg = assert_error(token_of(&s, &page).await, 409, "needs_reauth").await;
    assert!(
        msg.contains(&user),
        "names the user account to reconnect: {msg}"
    );
    let accounts = list(&s, "").await;
    for a in &accounts {
        assert_eq!(a["status"], "needs_reauth", "{a}");
    }

    // Connecting the user again brings both back.
    s.clock.advance(DAY);
    assert_eq!(connect(&s).await, user);
    for a in list(&s, "").await {
        assert_eq!(a["status"], "active", "{a}");
    }
    assert_eq!(token_of(&s, &page).await.status(), 200);
}

#[tokio::test]
async fn deleting_the_user_deletes_its_pages_with_one_event_each_and_a_page_alone_is_not_revoked() {
    let s = setup(Kind::Facebook, None).await;
    s.fake.set_pages(&[
        ("101", "Bakery", POSTING),
        ("102", "Bakery Fans", ANALYST),
        ("103", "Bakery Jobs", POSTING),
    ]);
    let user = connect(&s).await;
    let pages = list(&s, "?kind=page").await;

    // A Page alone: deleted here, and the answer says why nothing was revoked.
    let one = pages[2]["id"].as_str().unwrap();
    let resp = s
        .app
        .delete_as(TENANT, &format!("/v1/accounts/{one}"))
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["revoked"], false);
    assert!(body["revoke_error"].as_str().unwrap().contains(&user));
    assert!(s.fake.requests_to("/v25.0/me/permissions").is_empty());

    let resp = s
        .app
        .delete_as(TENANT, &format!("/v1/accounts/{user}"))
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["revoked"], true);
    assert!(list(&s, "").await.is_empty());
    for page in &pages[..2] {
        let id = page["id"].as_str().unwrap();
        assert_error(
            s.app.get_as(TENANT, &format!("/v1/accounts/{id}")).await,
            404,
            "not_found",
        )
        .await;
    }
    let types = webhook_types(&s.app).await;
    assert_eq!(count(&types, "account.deleted"), 4, "{types:?}");
}

const ORG_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "w_member_social",
    "w_organization_social",
    "r_organization_admin",
];

#[tokio::test]
async fn linkedin_with_organization_scopes_stores_the_organizations_a_member_administers() {
    let s = setup(Kind::Linkedin, Some(ORG_SCOPES)).await;
    s.fake.set_organizations(&[
        (2414183, "Dravo Inc", "dravo"),
        (5512, "Dravo Labs", "dravo-labs"),
        (77, "Bakery Co", "bakery"),
    ]);
    let user = connect(&s).await;
    let orgs = list(&s, "?kind=organization").await;
    assert_eq!(orgs.len(), 3, "{orgs:#?}");
    let inc = by_provider_id(&orgs, "urn:li:organization:2414183");
    assert_eq!(inc["display_name"], "Dravo Inc");
    assert_eq!(inc["username"], "dravo");
    assert_eq!(inc["parent_id"], user.as_str());
    assert_eq!(inc["tasks"], Value::Null);
    let acls = s.fake.requests_to("/rest/organizationAcls");
    assert_eq!(acls.len(), 2, "3 roles at 2 a page");
    assert_eq!(acls[1].param("start"), Some("2"));

    // An organization is posted to with the member's token, refreshed with it.
    let inc_id = inc["id"].as_str().unwrap().to_owned();
    let member: Value = token_of(&s, &user).await.json().await.unwrap();
    let org: Value = token_of(&s, &inc_id).await.json().await.unwrap();
    assert_eq!(org["access_token"], member["access_token"]);
    assert_eq!(org["expires_at"], member["expires_at"]);
    let forced: Value = s
        .app
        .get_as(
            TENANT,
            &format!("/v1/accounts/{inc_id}/access-token?force_refresh=true"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(forced["access_token"], member["access_token"]);
    assert_eq!(
        forced["access_token"].as_str().unwrap(),
        s.fake.issued_access_tokens().last().unwrap()
    );
    let member_now: Value = token_of(&s, &user).await.json().await.unwrap();
    assert_eq!(member_now["access_token"], forced["access_token"]);

    // The member no longer administers one.
    s.fake
        .set_organizations(&[(2414183, "Dravo Inc", "dravo"), (77, "Bakery Co", "bakery")]);
    assert_eq!(refresh(&s, &user).await.status(), 200);
    let orgs = list(&s, "?kind=organization").await;
    let labs = by_provider_id(&orgs, "urn:li:organization:5512");
    assert_eq!(labs["status"], "needs_reauth");
    assert!(
        labs["status_reason"]
            .as_str()
            .unwrap()
            .starts_with("organization_access_removed")
    );
}

#[tokio::test]
async fn linkedin_without_organization_scopes_lists_nothing() {
    let s = setup(Kind::Linkedin, None).await;
    s.fake.set_organizations(&[(2414183, "Dravo Inc", "dravo")]);
    let user = connect(&s).await;
    assert_eq!(list(&s, "").await.len(), 1);
    assert_eq!(refresh(&s, &user).await.status(), 200);
    assert_eq!(list(&s, "").await.len(), 1);
    assert!(s.fake.requests_to("/rest/organizationAcls").is_empty());
}

#[tokio::test]
async fn confirmed_connects_bring_their_pages_only_once_confirmed() {
    let s = setup_with(Kind::Facebook, None, |c| {
        c.connect.require_confirmation = true
    })
    .await;
    s.fake.set_pages(&[("101", "Bakery", POSTING)]);
    let landed = consent(&s).await;
    assert_eq!(landed["status"], "pending");
    assert!(list(&s, "").await.is_empty());
    let resp = s
        .app
        .http
        .post(
            s.app
                .url(&format!("/v1/accounts/{}/confirm", landed["connection_id"])),
        )
        .bearer_auth(s.app.token(TENANT))
        .json(&json!({"code": landed["confirm"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let pages = list(&s, "?kind=page").await;
    assert_eq!(pages.len(), 1);
    let token: Value = token_of(&s, pages[0]["id"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(token["access_token"], s.fake.pages()[0].token.as_str());
}

#[tokio::test]
async fn the_cli_shows_pages_indented_under_their_user() {
    let s = setup(Kind::Facebook, None).await;
    s.fake
        .set_pages(&[("101", "Bakery", POSTING), ("102", "Bakery Fans", ANALYST)]);
    let user = connect(&s).await;
    let dir = s.app.dir.path().to_owned();
    let (all, pages) = tokio::task::spawn_blocking(move || {
        let run = |args: &[&str]| {
            let out = dravo_cmd(&dir).args(args).output().unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        (
            run(&["accounts", "list", "--owner", TENANT]),
            run(&["accounts", "list", "--owner", TENANT, "--kind", "page"]),
        )
    })
    .await
    .unwrap();
    let lines: Vec<&str> = all.lines().collect();
    assert!(lines[0].starts_with("ID"), "{all}");
    assert!(lines[1].starts_with(&user), "{all}");
    assert!(lines[1].contains("user"), "{all}");
    for line in &lines[2..4] {
        assert!(line.starts_with("  └ acc_"), "{all}");
        assert!(line.contains("page"), "{all}");
    }
    assert_eq!(pages.lines().count(), 3, "{pages}");
    assert!(!pages.contains(&user), "{pages}");
}
