//! Mastodon on any instance: apps without credentials that Dravo registers on each instance at
//! its first connect there, discovery with PKCE on 4.3+ and the classic endpoints before,
//! identities scoped to their instance, tokens that never expire, revocation through the
//! registration, and the guard on the hosts users name (SSRF).

use serde_json::{Value, json};
use url::Url;

use crate::support::cmd::dravo_with;
use crate::support::fake_provider::{FakeProvider, Kind};
use crate::support::{TestApp, assert_error, spawn_app_with};
use dravo::config::{Config, ProviderConfig};

const TENANT: &str = "tenant-mastodon";
const DASH: &str = "https://dash.example.com";
const RETURN_URL: &str = "https://dash.example.com/connected";

fn mastodon_config(config: &mut Config, allow_private: bool) {
    config.providers.set(
        "mastodon".parse().unwrap(),
        ProviderConfig {
            allow_private_addresses: allow_private,
            ..Default::default()
        },
    );
    config.dashboard.allowed_return_urls = vec![DASH.into()];
}

async fn app_allowing_private() -> TestApp {
    spawn_app_with(|c| mastodon_config(c, true)).await
}

async fn fake() -> FakeProvider {
    FakeProvider::start(Kind::Mastodon, "unregistered", "unregistered").await
}

async fn create_mastodon_app(app: &TestApp) -> Value {
    let resp = app
        .create_app(
            TENANT,
            &json!({
                "provider": "mastodon",
                "name": "Scheduler",
                "website": "https://scheduler.example",
            }),
        )
        .await;
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

async fn start(app: &TestApp, app_id: &str, instance: &str) -> reqwest::Response {
    let url = Url::parse_with_params(
        &app.url("/v1/oauth/mastodon/start"),
        [
            ("oauth_app_id", app_id),
            ("instance", instance),
            ("return_url", RETURN_URL),
        ],
    )
    .unwrap();
    app.http
        .get(url)
        .bearer_auth(app.token(TENANT))
        .send()
        .await
        .unwrap()
}

/// start → the instance's consent screen → Dravo's callback; returns the account id.
async fn connect(app: &TestApp, app_id: &str, fake: &FakeProvider) -> (Url, String) {
    let resp = start(app, app_id, &fake.base_url).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let body: Value = resp.json().await.unwrap();
    let authorize = Url::parse(body["authorize_url"].as_str().unwrap()).unwrap();
    let consent = app.http.get(authorize.clone()).send().await.unwrap();
    assert_eq!(
        consent.status(),
        302,
        "the instance refused: {}",
        consent.text().await.unwrap()
    );
    let callback = consent.headers()["location"].to_str().unwrap().to_owned();
    let done = app.http.get(&callback).send().await.unwrap();
    assert_eq!(done.status(), 302);
    let back = Url::parse(done.headers()["location"].to_str().unwrap()).unwrap();
    let params: Vec<(String, String)> = back.query_pairs().into_owned().collect();
    assert!(
        params.contains(&("status".into(), "connected".into())),
        "{back}"
    );
    let account = params
        .iter()
        .find(|(k, _)| k == "account_id")
        .map(|(_, v)| v.clone())
        .unwrap();
    (authorize, account)
}

/// `GET path` as the tenant, its JSON body.
async fn get_json(app: &TestApp, path: &str) -> Value {
    let resp = app.get_as(TENANT, path).await;
    assert_eq!(resp.status(), 200, "GET {path}");
    resp.json().await.unwrap()
}

/// The id of a new mastodon app.
async fn new_app_id(app: &TestApp) -> String {
    create_mastodon_app(app).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn host_of(fake: &FakeProvider) -> String {
    fake.base_url.trim_start_matches("http://").to_owned()
}

#[tokio::test]
async fn a_mastodon_app_is_registered_on_each_instance_at_its_first_connect() {
    let app = app_allowing_private().await;
    let fake = fake().await;

    // The app holds what to register, not credentials.
    let created = create_mastodon_app(&app).await;
    assert_eq!(created["client_id"], Value::Null, "{created}");
    assert_eq!(created["website"], "https://scheduler.example");
    assert_eq!(created["servers"], json!([]));
    assert_eq!(
        created["scopes"],
        json!(["read:accounts", "write:statuses", "write:media"])
    );
    let app_id = created["id"].as_str().unwrap().to_owned();
    let with_secret = app
        .create_app(
            TENANT,
            &json!({"provider": "mastodon", "name": "B", "client_id": "x", "client_secret": "y"}),
        )
        .await;
    let message = assert_error(with_secret, 400, "invalid_request").await;
    assert!(
        message.contains("client_id is not taken for mastodon")
            && message.contains("registers the app on each server"),
        "{message}"
    );
    let without_secret = app
        .create_app(TENANT, &json!({"provider": "x", "name": "X"}))
        .await;
    let message = assert_error(without_secret, 400, "invalid_request").await;
    assert!(message.contains("client_id is required"), "{message}");

    // No instance: a clear 400, nothing registered.
    let url = format!("/v1/oauth/mastodon/start?oauth_app_id={app_id}");
    let message = assert_error(app.get_as(TENANT, &url).await, 400, "invalid_request").await;
    assert!(
        message.starts_with("instance is required for mastodon"),
        "{message}"
    );
    // An instance for a provider that has none.
    let message = assert_error(
        app.get_as(TENANT, "/v1/oauth/x/start?instance=mastodon.social")
            .await,
        400,
        "invalid_request",
    )
    .await;
    assert!(message.contains("x has no server to name"), "{message}");
    assert!(fake.registrations().is_empty());

    // The first connect registers the app, with discovery's PKCE and `profile` (4.3+).
    let (authorize, account_id) = connect(&app, &app_id, &fake).await;
    let registrations = fake.registrations();
    assert_eq!(registrations.len(), 1);
    let registered = &registrations[0];
    assert_eq!(registered.client_name, "Scheduler");
    assert_eq!(
        registered.website.as_deref(),
        Some("https://scheduler.example")
    );
    assert_eq!(
        registered.redirect_uris,
        [app.url("/v1/oauth/mastodon/callback")]
    );
    assert_eq!(
        registered.scopes,
        ["profile", "write:statuses", "write:media"]
    );
    assert!(
        authorize
            .as_str()
            .starts_with(&format!("{}/oauth/authorize?", fake.base_url))
    );
    let param = |name: &str| {
        authorize
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(
        param("client_id").as_deref(),
        Some(registered.client_id.as_str())
    );
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    let exchange = fake.requests_to("/oauth/token");
    assert_eq!(exchange.len(), 1);
    assert!(exchange[0].param("code_verifier").is_some());
    assert!(
        exchange[0]
            .param("client_secret")
            .is_some_and(|s| s.starts_with("mastodon-secret-"))
    );

    // The account: instance-scoped identity, a token that never expires.
    let account = get_json(&app, &format!("/v1/accounts/{account_id}")).await;
    let host = host_of(&fake);
    assert_eq!(
        account["provider_account_id"],
        format!("109876543210@{host}")
    );
    assert_eq!(account["username"], format!("@fakeuser@{host}"));
    assert_eq!(account["expires_at"], Value::Null, "{account}");
    assert_eq!(account["reauth_by"], Value::Null);
    assert_eq!(account["status"], "active");
    let token = get_json(&app, &format!("/v1/accounts/{account_id}/access-token")).await;
    assert_eq!(
        token["access_token"].as_str(),
        fake.issued_access_tokens().last().map(String::as_str)
    );

    // The app shows where it is registered; a second connect there registers nothing more.
    let shown = get_json(&app, &format!("/v1/oauth-apps/{app_id}")).await;
    let servers = shown["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 1, "{shown}");
    assert_eq!(servers[0]["server"], fake.base_url);
    assert_eq!(servers[0]["client_id"], registered.client_id);
    assert_eq!(servers[0]["pkce"], true);
    assert!(!shown.to_string().contains("mastodon-secret-"), "{shown}");
    connect(&app, &app_id, &fake).await;
    assert_eq!(fake.registrations().len(), 1);

    // The secret is sealed at rest.
    let secret = exchange[0].param("client_secret").unwrap().to_owned();
    let db = std::fs::read(app.db_path()).unwrap_or_default();
    assert!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the registration secret is stored in clear"
    );

    // Delete revokes through the registration (the reconnect's token is the current one).
    let token = fake.issued_access_tokens().last().unwrap().clone();
    assert_ne!(token, token_before_reconnect(&fake));
    let deleted: Value = app
        .http
        .delete(app.url(&format!("/v1/accounts/{account_id}")))
        .bearer_auth(app.token(TENANT))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(deleted["revoked"], true, "{deleted}");
    assert!(fake.revoked_tokens().contains(&token));
    assert!(!fake.access_token_valid(&token));
}

#[tokio::test]
async fn an_older_instance_connects_on_the_classic_endpoints_without_pkce() {
    let app = app_allowing_private().await;
    let fake = fake().await;
    fake.set_modern_instance(false);
    let app_id = new_app_id(&app).await;
    let (authorize, account_id) = connect(&app, &app_id, &fake).await;
    assert!(
        !authorize.query_pairs().any(|(k, _)| k == "code_challenge"),
        "{authorize}"
    );
    assert_eq!(
        fake.registrations()[0].scopes,
        ["read:accounts", "write:statuses", "write:media"]
    );
    assert_eq!(
        fake.requests_to("/oauth/token")[0].param("code_verifier"),
        None
    );
    let shown = get_json(&app, &format!("/v1/oauth-apps/{app_id}")).await;
    assert_eq!(shown["servers"][0]["pkce"], false);
    assert!(account_id.starts_with("acc_"));
}

#[tokio::test]
async fn the_same_account_id_on_two_instances_is_two_accounts() {
    let app = app_allowing_private().await;
    let (one, two) = (fake().await, fake().await);
    let app_id = new_app_id(&app).await;
    let (_, first) = connect(&app, &app_id, &one).await;
    let (_, second) = connect(&app, &app_id, &two).await;
    assert_ne!(first, second);
    let list = get_json(&app, "/v1/accounts").await;
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["provider_account_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            format!("109876543210@{}", host_of(&one)),
            format!("109876543210@{}", host_of(&two))
        ]
    );
    // Each instance got its own registration.
    let shown = get_json(&app, &format!("/v1/oauth-apps/{app_id}")).await;
    assert_eq!(shown["servers"].as_array().unwrap().len(), 2, "{shown}");
}

#[tokio::test]
async fn deleting_the_app_revokes_its_accounts_and_forgets_its_registrations() {
    let app = app_allowing_private().await;
    let fake = fake().await;
    let app_id = new_app_id(&app).await;
    connect(&app, &app_id, &fake).await;
    let token = fake.issued_access_tokens().last().unwrap().clone();
    let resp = app
        .http
        .delete(app.url(&format!("/v1/oauth-apps/{app_id}?cascade=true")))
        .bearer_auth(app.token(TENANT))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(fake.revoked_tokens().contains(&token));
    let rows = crate::support::backend::Db::open(&app.db_path())
        .query("SELECT COUNT(*) FROM instance_registrations", &[]);
    assert_eq!(rows[0][0].opt_int(), Some(0), "registrations are forgotten");
}

/// The hosts a user may name are guarded: without `allow_private_addresses`, loopback,
/// private, link-local and IPv4-mapped addresses, names of this machine, a name that resolves
/// to such an address, and plain http are each refused with a 400 naming the host, before
/// anything is registered or stored.
#[tokio::test]
async fn instances_at_private_addresses_are_refused_and_nothing_is_stored() {
    let app = spawn_app_with(|c| mastodon_config(c, false)).await;
    let fake = fake().await;
    let app_id = new_app_id(&app).await;
    let port = fake.base_url.rsplit(':').next().unwrap().to_owned();
    let mut cases: Vec<(String, String)> = vec![
        (
            format!("127.0.0.1:{port}"),
            "`127.0.0.1` is not a public address".into(),
        ),
        (
            "10.1.2.3".into(),
            "`10.1.2.3` is not a public address".into(),
        ),
        (
            "192.168.0.10".into(),
            "`192.168.0.10` is not a public address".into(),
        ),
        (
            "169.254.169.254".into(),
            "`169.254.169.254` is not a public address".into(),
        ),
        ("[::1]".into(), "`[::1]` is not a public address".into()),
        (
            "[::ffff:127.0.0.1]".into(),
            "is not a public address".into(),
        ),
        (
            "[fe80::1]".into(),
            "`[fe80::1]` is not a public address".into(),
        ),
        (
            format!("localhost:{port}"),
            "`localhost` names this machine".into(),
        ),
        (
            "http://mastodon.example".into(),
            "`mastodon.example` must be reached over https, not http".into(),
        ),
        (
            "https://user:pw@mastodon.example".into(),
            "carries a user name or password".into(),
        ),
    ];
    // A DNS name that resolves to this machine (the host name, in /etc/hosts): refused at
    // connection time by the resolver, naming the address it resolved to.
    let hostname = std::fs::read_to_string("/etc/hostname")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let resolves_private = !hostname.is_empty()
        && tokio::net::lookup_host((hostname.as_str(), 443))
            .await
            .is_ok_and(|mut addrs| addrs.all(|a| !a.ip().is_global_candidate()));
    if resolves_private {
        cases.push((
            format!("{hostname}:{port}"),
            format!("`{hostname}` resolves to"),
        ));
    } else {
        eprintln!("skipped: the host name `{hostname}` does not resolve to a private address here");
    }
    for (instance, says) in &cases {
        let resp = start(&app, &app_id, instance).await;
        let message = assert_error(resp, 400, "invalid_request").await;
        assert!(
            message.starts_with("instance is refused:") && message.contains(says.as_str()),
            "{instance}: {message}"
        );
    }
    assert!(fake.requests().is_empty(), "the instance was never reached");
    let shown = get_json(&app, &format!("/v1/oauth-apps/{app_id}")).await;
    assert_eq!(shown["servers"], json!([]), "nothing registered");
    let rows = crate::support::backend::Db::open(&app.db_path())
        .query("SELECT COUNT(*) FROM instance_registrations", &[]);
    assert_eq!(rows[0][0].opt_int(), Some(0));
}

/// The token the first connect issued.
fn token_before_reconnect(fake: &FakeProvider) -> String {
    fake.issued_access_tokens()[0].clone()
}

/// A loopback or private address, as the resolver would judge it (std's `is_global` is not
/// stable): enough for the host names a test machine's /etc/hosts maps.
trait GlobalCandidate {
    fn is_global_candidate(&self) -> bool;
}

impl GlobalCandidate for std::net::IpAddr {
    fn is_global_candidate(&self) -> bool {
        match self {
            std::net::IpAddr::V4(v4) => {
                !(v4.is_loopback() || v4.is_private() || v4.is_link_local())
            }
            std::net::IpAddr::V6(v6) => !(v6.is_loopback() || v6.is_unicast_link_local()),
        }
    }
}

/// The CLI starts a connect on an instance as the API does, and creates apps without
/// credentials.
#[tokio::test]
async fn the_cli_creates_a_mastodon_app_and_starts_a_connect_on_an_instance() {
    let app = app_allowing_private().await;
    let fake = fake().await;
    let dir = app.dir.path().to_owned();
    let base = fake.base_url.clone();
    let env = [("DRAVO_PROVIDERS_MASTODON_ALLOW_PRIVATE_ADDRESSES", "true")];
    let (created, started) = tokio::task::spawn_blocking(move || {
        let created = dravo_with(
            &dir,
            &env,
            &[
                "oauth-apps",
                "create",
                "--owner",
                TENANT,
                "--provider",
                "mastodon",
                "--name",
                "From the CLI",
                "--website",
                "https://cli.example",
                "--json",
            ],
            "",
        );
        created.assert_success();
        let id = created.json()["id"].as_str().unwrap().to_owned();
        let started = dravo_with(
            &dir,
            &env,
            &[
                "accounts",
                "connect",
                "--owner",
                TENANT,
                "--provider",
                "mastodon",
                "--app",
                &id,
                "--instance",
                &base,
            ],
            "",
        );
        (created, started)
    })
    .await
    .unwrap();
    assert_eq!(created.json()["client_id"], Value::Null);
    started.assert_success();
    let url = started.stdout.trim();
    assert!(
        url.starts_with(&format!("{}/oauth/authorize?", fake.base_url)),
        "{url}"
    );
    assert_eq!(fake.registrations().len(), 1);
    assert_eq!(fake.registrations()[0].client_name, "From the CLI");
}
