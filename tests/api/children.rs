//! Facebook Pages and LinkedIn organizations as child accounts, against fake providers on
//! 127.0.0.1 that serve `/me/accounts` and `organizationAcls` a couple of items a page.

use crate::support;
use crate::support::fake_provider;

use std::collections::HashMap;
use std::sync::Arc;

use dravo::Config;
use dravo::clock::{Clock as _, ManualClock};
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

// ---------------------------------------------------------------------------------------------
// YouTube channels and Google Business Profile locations

const YT_UPLOAD: &str = "https://www.googleapis.com/auth/youtube.upload";

/// The account's events, oldest first, as `(type, detail)`.
async fn events(s: &Setup, id: &str) -> Vec<(String, Value)> {
    let resp = s
        .app
        .get_as(TENANT, &format!("/v1/accounts/{id}/events"))
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let mut out: Vec<(String, Value)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["type"].as_str().unwrap().to_owned(), e["detail"].clone()))
        .collect();
    out.reverse();
    out
}

#[tokio::test]
async fn youtube_channels_are_children_used_with_the_google_token_and_never_silently_deleted() {
    let s = setup(Kind::Youtube, None).await;
    s.fake.set_channels(&[
        ("UC_main", "Ana Bakes", "@anabakes"),
        ("UC_brand", "Bakery Brand", "@bakerybrand"),
        ("UC_shorts", "Bakery Shorts", "@bakeryshorts"),
    ]);
    let user = connect(&s).await;
    // Three channels over two pages of the fake's list.
    let channels = list(&s, "?kind=channel").await;
    assert_eq!(channels.len(), 3, "{channels:#?}");
    let brand = by_provider_id(&channels, "UC_brand");
    assert_eq!(brand["kind"], "channel");
    assert_eq!(brand["parent_id"], user.as_str());
    assert_eq!(brand["username"], "@bakerybrand");
    assert_eq!(brand["display_name"], "Bakery Brand");
    assert_eq!(brand["status"], "active");
    let brand_id = brand["id"].as_str().unwrap().to_owned();

    // A channel is used with the Google account's token.
    let user_token: Value = token_of(&s, &user).await.json().await.unwrap();
    let channel_token: Value = token_of(&s, &brand_id).await.json().await.unwrap();
    assert_eq!(channel_token["access_token"], user_token["access_token"]);

    // A refresh keeps the one refresh token (Google does not rotate them) and lists the
    // channels again: a lost one stays, `needs_reauth`.
    s.fake.set_channels(&[
        ("UC_main", "Ana Bakes", "@anabakes"),
        ("UC_new", "Bakery Live", "@bakerylive"),
    ]);
    let refresh_token = s.fake.issued_refresh_tokens();
    assert_eq!(
        refresh_token.len(),
        1,
        "offline access gave a refresh token"
    );
    let resp = refresh(&s, &user).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(s.fake.issued_refresh_tokens(), refresh_token, "not rotated");
    assert!(s.fake.refresh_token_valid(&refresh_token[0]));
    let channels = list(&s, "?kind=channel").await;
    assert_eq!(channels.len(), 4, "{channels:#?}");
    let lost = by_provider_id(&channels, "UC_brand");
    assert_eq!(lost["status"], "needs_reauth");
    assert!(
        lost["status_reason"]
            .as_str()
            .unwrap()
            .starts_with("channel_access_removed"),
        "{lost}"
    );
    assert_eq!(by_provider_id(&channels, "UC_new")["status"], "active");
    // Refreshed twice with the same refresh token: the second refresh keeps it too.
    let resp = refresh(&s, &user).await;
    assert_eq!(resp.status(), 200);
    let again: Value = token_of(&s, &user).await.json().await.unwrap();
    assert_ne!(again["access_token"], user_token["access_token"]);

    // The CLI indents channels under their Google account.
    let dir = s.app.dir.path().to_owned();
    let listed = tokio::task::spawn_blocking(move || {
        let out = dravo_cmd(&dir)
            .args(["accounts", "list", "--owner", TENANT])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    })
    .await
    .unwrap();
    let lines: Vec<&str> = listed.lines().collect();
    assert!(lines[1].starts_with(&user), "{listed}");
    assert_eq!(
        lines[2..]
            .iter()
            .filter(|l| l.starts_with("  └ acc_") && l.contains("channel"))
            .count(),
        4,
        "{listed}"
    );

    // Deleting the Google account revokes its refresh token at Google's revoke endpoint.
    let resp = s
        .app
        .http
        .delete(s.app.url(&format!("/v1/accounts/{user}")))
        .bearer_auth(s.app.token(TENANT))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let deleted: Value = resp.json().await.unwrap();
    assert_eq!(deleted["revoked"], true, "{deleted}");
    assert_eq!(s.fake.revoked_tokens(), refresh_token);
    assert!(list(&s, "").await.is_empty());
}

#[tokio::test]
async fn a_youtube_user_who_unticks_upload_is_connected_with_a_warning_that_outlives_refreshes() {
    let s = setup(Kind::Youtube, None).await;
    s.fake
        .set_channels(&[("UC_main", "Ana Bakes", "@anabakes")]);
    s.fake.decline_scopes(&[YT_UPLOAD]);
    let user = connect(&s).await;
    let account: Value = s
        .app
        .get_as(TENANT, &format!("/v1/accounts/{user}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(account["status"], "active");
    let scopes: Vec<&str> = account["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(!scopes.contains(&YT_UPLOAD), "{scopes:?}");
    let reason = account["status_reason"].as_str().expect("a warning");
    assert!(
        reason.starts_with("scopes_not_granted") && reason.contains(YT_UPLOAD),
        "{reason}"
    );
    let logged = events(&s, &user).await;
    let (kind, detail) = &logged[0];
    assert_eq!(kind, "connected");
    assert_eq!(detail["missing_scopes"], json!([YT_UPLOAD]), "{detail}");
    // The channel shares the grant, and the warning.
    let channel = &list(&s, "?kind=channel").await[0];
    assert_eq!(channel["status_reason"], reason);

    let resp = refresh(&s, &user).await;
    assert_eq!(resp.status(), 200);
    let after: Value = resp.json().await.unwrap();
    assert_eq!(
        after["status_reason"], reason,
        "a refresh grants nothing new"
    );

    // Every scope granted: no warning.
    let s = setup(Kind::Youtube, None).await;
    let user = connect(&s).await;
    let account: Value = s
        .app
        .get_as(TENANT, &format!("/v1/accounts/{user}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(account["status_reason"], Value::Null, "{account}");
    assert_eq!(events(&s, &user).await[0].1.get("missing_scopes"), None);
}

#[tokio::test]
async fn a_google_app_in_testing_has_its_refresh_deadline_and_invalid_grant_needs_a_new_consent() {
    let s = setup(Kind::Youtube, None).await;
    s.fake.use_clock({
        let clock = s.clock.clone();
        move || clock.now().unix()
    });
    s.fake.set_refresh_lifetime(7 * DAY as u64);
    let user = connect(&s).await;
    let account: Value = s
        .app
        .get_as(TENANT, &format!("/v1/accounts/{user}"))
        .await
        .json()
        .await
        .unwrap();
    let created = time::OffsetDateTime::parse(
        account["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let reauth_by = time::OffsetDateTime::parse(
        account["reauth_by"].as_str().expect("a deadline"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!((reauth_by - created).whole_seconds(), 7 * DAY, "{account}");

    // Google refuses the refresh token: only a new consent helps.
    s.fake.invalidate_refresh_tokens();
    let resp = s
        .app
        .get_as(
            TENANT,
            &format!("/v1/accounts/{user}/access-token?force_refresh=true"),
        )
        .await;
    let msg = assert_error(resp, 409, "needs_reauth").await;
    assert!(msg.contains("invalid_grant"), "{msg}");
    let account: Value = s
        .app
        .get_as(TENANT, &format!("/v1/accounts/{user}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(account["status"], "needs_reauth");
}

#[tokio::test]
async fn google_business_locations_of_every_account_are_children_across_pages() {
    let s = setup(Kind::GoogleBusiness, None).await;
    s.fake.set_business_accounts(&[
        (
            "111",
            &[
                ("1", "Bakery North"),
                ("2", "Bakery South"),
                ("3", "Bakery East"),
            ],
        ),
        ("222", &[]),
        ("333", &[("9", "Deli")]),
    ]);
    let user = connect(&s).await;
    let locations = list(&s, "?kind=location").await;
    assert_eq!(locations.len(), 4, "{locations:#?}");
    let deli = by_provider_id(&locations, "accounts/333/locations/9");
    assert_eq!(deli["kind"], "location");
    assert_eq!(deli["display_name"], "Deli");
    assert_eq!(deli["parent_id"], user.as_str());
    // Every list call carried a readMask and followed the pages.
    let calls = s.fake.requests_to("/v1/accounts/111/locations");
    assert_eq!(calls.len(), 2, "two pages of three locations");
    assert!(calls.iter().all(|c| c.param("readMask").is_some()));
    assert_eq!(list(&s, "?kind=channel").await.len(), 0);
    assert_eq!(list(&s, "?kind=user").await.len(), 1);
}

#[tokio::test]
async fn google_business_behind_the_approval_gate_blames_the_app_never_the_account() {
    for status in [429, 403] {
        let s = setup(Kind::GoogleBusiness, None).await;
        s.fake
            .set_business_accounts(&[("111", &[("1", "Bakery North")])]);
        s.fake.set_fault(fake_provider::Fault::QuotaGate(status));
        // The connect succeeds; what went wrong is in its event.
        let user = connect(&s).await;
        assert!(list(&s, "?kind=location").await.is_empty());
        let logged = events(&s, &user).await;
        let unlisted = &logged[0].1["children_unlisted"];
        assert_eq!(unlisted["blame"], "app", "{status}: {unlisted}");
        assert_eq!(unlisted["error"], "resource_exhausted", "{unlisted}");
        assert!(
            unlisted["error_description"]
                .as_str()
                .unwrap()
                .contains("Quota exceeded"),
            "{unlisted}"
        );

        // A refresh renews the token, then says the listing is refused to the app.
        let resp = refresh(&s, &user).await;
        assert_eq!(resp.status(), 502, "{status}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "provider_error", "{body}");
        assert_eq!(body["error"]["refresh"]["failure"], "app", "{body}");
        assert_eq!(
            body["error"]["refresh"]["account_status"], "active",
            "{body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Quota exceeded"),
            "{body}"
        );
        let account: Value = s
            .app
            .get_as(TENANT, &format!("/v1/accounts/{user}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(account["status"], "active", "never a dead account");
        assert_eq!(token_of(&s, &user).await.status(), 200);

        // Once Google approves, the next refresh lists the locations.
        s.fake.set_fault(fake_provider::Fault::None);
        assert_eq!(refresh(&s, &user).await.status(), 200);
        assert_eq!(list(&s, "?kind=location").await.len(), 1);
    }
}
