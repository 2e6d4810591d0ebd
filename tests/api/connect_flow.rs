//! The OAuth connect flow end to end, against a fake provider on 127.0.0.1 for each of x,
//! linkedin, facebook, instagram and tiktok (README "Connecting an account, end to end"):
//!
//! `GET /v1/oauth/{p}/start` → the fake's `/authorize` (the browser step, which checks the URL
//! the way the real provider would) → Dravo's callback → the dashboard's return URL →
//! `GET /v1/accounts`.
//!
//! Every rejected request is followed by a check that the `accounts` table did not change.

use crate::support;
use crate::support::fake_provider;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use dravo::Config;
use dravo::clock::ManualClock;
use dravo::config::ProviderConfig;
use fake_provider::{
    DEFAULT_GOOGLE_SUB, DEFAULT_INSTAGRAM_USER_ID, DEFAULT_THREADS_USER_ID, FakeProvider, Fault,
    Kind,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::{Db, TestApp, assert_error, dravo_cmd, is_postgres, spawn_app_with_clock};
use url::Url;

const CLIENT_ID: &str = "fake-client-id-123";
const CLIENT_SECRET: &str = "fake-client-secret-456";
/// The one prefix in `dashboard.allowed_return_urls`.
const DASH: &str = "https://dash.example.com";
const RETURN_URL: &str = "https://dash.example.com/connected";
const TENANT: &str = "tenant-alice";
const OTHER_TENANT: &str = "tenant-bob";

// ---------------------------------------------------------------------------------------------
// Harness

/// Dravo pointed at one fake provider, with `https://dash.example.com` as the allowed
/// return-URL prefix.
struct Flow {
    app: TestApp,
    fake: FakeProvider,
}

/// What a completed connect left behind.
struct Connected {
    authorize_url: Url,
    callback_url: Url,
    redirect: Url,
    account_id: String,
}

fn slot(config: &mut Config, kind: Kind) -> &mut ProviderConfig {
    config.providers.entry(kind.as_str().parse().unwrap())
}

/// `providers.<p>` pointing at the fake (no default app).
fn point_at(config: &mut Config, fake: &FakeProvider) {
    if fake.kind == Kind::Mastodon {
        // Each connect names the instance; the fake's is on 127.0.0.1 over http.
        *slot(config, fake.kind) = ProviderConfig {
            allow_private_addresses: true,
            ..Default::default()
        };
        return;
    }
    let (authorize, token, api) = fake.config_urls();
    *slot(config, fake.kind) = ProviderConfig {
        authorize_url: Some(Url::parse(&authorize).unwrap()),
        token_url: Some(Url::parse(&token).unwrap()),
        api_base: Some(Url::parse(&api).unwrap()),
        ..Default::default()
    };
}

/// Makes the fake's app the provider's default app in the config.
fn with_default_app(config: &mut Config, kind: Kind) {
    let provider = slot(config, kind);
    provider.client_id = Some(CLIENT_ID.into());
    provider.client_secret = Some(secrecy::SecretString::from(CLIENT_SECRET.to_owned()));
}

impl Flow {
    async fn new(kind: Kind) -> Flow {
        Flow::with(kind, |_| {}).await
    }

    /// `tweak` runs after the provider and the allowed return URLs are set.
    async fn with(kind: Kind, tweak: impl FnOnce(&mut Config)) -> Flow {
        Flow::with_clock(kind, ManualClock::starting_now(), tweak).await
    }

    /// `with`, on a clock the test moves.
    async fn with_clock(kind: Kind, clock: ManualClock, tweak: impl FnOnce(&mut Config)) -> Flow {
        let fake = FakeProvider::start(kind, CLIENT_ID, CLIENT_SECRET).await;
        let app = spawn_app_with_clock(
            |config| {
                point_at(config, &fake);
                config.dashboard.allowed_return_urls = vec![DASH.into()];
                tweak(config);
            },
            std::sync::Arc::new(clock),
        )
        .await;
        Flow { app, fake }
    }

    fn provider(&self) -> &'static str {
        self.fake.kind.as_str()
    }

    /// `{base_url}/v1/oauth/{p}/callback`.
    fn redirect_uri(&self) -> String {
        format!(
            "{}/v1/oauth/{}/callback",
            self.app.base_url,
            self.provider()
        )
    }

    /// Creates a BYOK app with the fake's credentials over HTTP (mastodon: none, Dravo
    /// registers it on the instance); returns its id.
    async fn create_app(&self, tenant: &str) -> String {
        let mut body = json!({
            "provider": self.provider(),
            "name": format!("{} app", self.provider()),
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        });
        if self.fake.kind == Kind::Mastodon {
            body = json!({"provider": "mastodon", "name": "mastodon app"});
        }
        let app = self.app.create_ok(tenant, &body).await;
        app["id"].as_str().unwrap().to_owned()
    }

    /// `GET /v1/oauth/{provider}/start?query` with a token for `tenant` (none when `None`).
    async fn request_start(
        &self,
        provider: &str,
        tenant: Option<&str>,
        query: &[(&str, &str)],
    ) -> reqwest::Response {
        let url =
            Url::parse_with_params(&self.app.url(&format!("/v1/oauth/{provider}/start")), query)
                .unwrap();
        let mut req = self.app.http.get(url);
        if let Some(tenant) = tenant {
            req = req.bearer_auth(self.app.token(tenant));
        }
        req.send().await.unwrap()
    }

    /// Starts a flow and returns the authorize URL.
    async fn start(&self, tenant: &str, app_id: Option<&str>, return_url: Option<&str>) -> Url {
        let mut query = Vec::new();
        if self.fake.kind == Kind::Mastodon {
            query.push(("instance", self.fake.base_url.as_str()));
        }
        if let Some(id) = app_id {
            query.push(("oauth_app_id", id));
        }
        if let Some(r) = return_url {
            query.push(("return_url", r));
        }
        let resp = self
            .request_start(self.provider(), Some(tenant), &query)
            .await;
        assert_eq!(resp.status(), 200, "start for {}", self.provider());
        let body: Value = resp.json().await.unwrap();
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["authorize_url"], "start body {body}");
        Url::parse(body["authorize_url"].as_str().unwrap()).unwrap()
    }

    /// The browser step: the fake checks the authorize URL and redirects back to Dravo.
    /// Returns the callback URL it redirected to.
    async fn consent(&self, authorize_url: &Url) -> Url {
        let resp = self
            .app
            .http
            .get(authorize_url.clone())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        if status != 302 {
            panic!(
                "the fake {} refused the authorize URL {authorize_url}: {status} {}",
                self.provider(),
                resp.text().await.unwrap_or_default()
            );
        }
        let callback = location(&resp);
        assert_eq!(
            without_query(&callback),
            self.redirect_uri(),
            "the provider redirects to Dravo's callback"
        );
        callback
    }

    /// The browser follows the provider's redirect to Dravo's callback (no auth).
    async fn callback(&self, url: &Url) -> reqwest::Response {
        self.app.http.get(url.clone()).send().await.unwrap()
    }

    /// start → consent → callback; asserts the redirect to `return_url` says connected.
    async fn connect(&self, tenant: &str, app_id: Option<&str>, return_url: &str) -> Connected {
        let authorize_url = self.start(tenant, app_id, Some(return_url)).await;
        let callback_url = self.consent(&authorize_url).await;
        let resp = self.callback(&callback_url).await;
        let (redirect, account_id) = assert_connected_redirect(&resp, return_url, self.provider());
        Connected {
            authorize_url,
            callback_url,
            redirect,
            account_id,
        }
    }

    /// start → consent, returning the callback URL with a valid state (not yet used).
    async fn until_callback(&self, tenant: &str, app_id: Option<&str>) -> Url {
        let authorize_url = self.start(tenant, app_id, Some(RETURN_URL)).await;
        self.consent(&authorize_url).await
    }

    async fn get_json(&self, tenant: &str, path: &str) -> (Value, String) {
        let resp = self.app.get_as(tenant, path).await;
        assert_eq!(resp.status(), 200, "GET {path}");
        let text = resp.text().await.unwrap();
        (serde_json::from_str(&text).unwrap(), text)
    }

    async fn list(&self, tenant: &str) -> Vec<Value> {
        let (body, _) = self.get_json(tenant, "/v1/accounts").await;
        assert_eq!(body["next_cursor"], Value::Null, "{body}");
        body["data"].as_array().expect("an array").clone()
    }

    fn rows(&self) -> Vec<Vec<String>> {
        account_rows(&self.app.db_path())
    }

    /// The access token Dravo stored for an account (opened through the core).
    async fn stored_access_token(&self, tenant: &str, account_id: &str) -> String {
        let owner = dravo::domain::Owner::parse("tenant", tenant).unwrap();
        let id = dravo::domain::AccountId::parse(account_id).unwrap();
        self.app
            .dravo
            .account_access_token(&owner, &id)
            .await
            .unwrap()
    }
}

/// Every row of `accounts` in insertion order, every column as text (blobs as hex).
fn account_rows(db: &Path) -> Vec<Vec<String>> {
    let (hex, order) = if is_postgres() {
        ("upper(encode({}, 'hex'))", "seq")
    } else {
        ("hex({})", "rowid")
    };
    let sql = format!(
        "SELECT id, owner, provider, oauth_app_id, provider_account_id, username,
                display_name, scopes, status, {}, {}, CAST(expires_at AS TEXT),
                CAST(refresh_expires_at AS TEXT), CAST(created_at AS TEXT),
                CAST(updated_at AS TEXT)
         FROM accounts ORDER BY {order}",
        hex.replace("{}", "access_token_sealed"),
        hex.replace("{}", "refresh_token_sealed"),
    );
    Db::open(db)
        .query(&sql, &[])
        .iter()
        .map(|row| row.iter().map(|v| format!("{:?}", v.opt_text())).collect())
        .collect()
}

fn location(resp: &reqwest::Response) -> Url {
    assert_eq!(resp.status(), 302, "expected a redirect");
    let raw = resp
        .headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .unwrap();
    Url::parse(raw).unwrap_or_else(|e| panic!("Location `{raw}` is not absolute: {e}"))
}

/// scheme://host:port/path, without query or fragment.
fn without_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

fn pairs(url: &Url) -> Vec<(String, String)> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param(url: &Url, name: &str) -> Option<String> {
    let found: Vec<String> = url
        .query_pairs()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect();
    assert!(
        found.len() <= 1,
        "`{name}` appears {} times in {url}",
        found.len()
    );
    found.into_iter().next()
}

fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn is_account_id(id: &str) -> bool {
    id.len() == 24
        && id.starts_with("acc_")
        && id[4..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

/// A 302 to `return_url` (path and query kept) with exactly `status=connected&provider=p&
/// account_id=acc_…` appended. Returns the Location and the account id.
fn assert_connected_redirect(
    resp: &reqwest::Response,
    return_url: &str,
    provider: &str,
) -> (Url, String) {
    let loc = location(resp);
    let base = Url::parse(return_url).unwrap();
    assert_eq!(without_query(&loc), without_query(&base), "Location {loc}");
    let all = pairs(&loc);
    let account_id = param(&loc, "account_id").expect("account_id in the redirect");
    assert!(is_account_id(&account_id), "account id {account_id}");
    let mut expected = pairs(&base);
    expected.extend(owned(&[
        ("status", "connected"),
        ("provider", provider),
        ("account_id", &account_id),
    ]));
    assert_eq!(all, expected, "Location {loc}");
    (loc, account_id)
}

/// A 302 to `return_url` with `status=error&provider=p&error=<code>` appended (and, optionally,
/// an `error_description`), never an account id. Returns the Location.
fn assert_error_redirect(
    resp: &reqwest::Response,
    return_url: &str,
    provider: &str,
    error: &str,
) -> Url {
    let loc = location(resp);
    let base = Url::parse(return_url).unwrap();
    assert_eq!(without_query(&loc), without_query(&base), "Location {loc}");
    let all: Vec<(String, String)> = pairs(&loc)
        .into_iter()
        .filter(|(k, _)| k != "error_description")
        .collect();
    let mut expected = pairs(&base);
    expected.extend(owned(&[
        ("status", "error"),
        ("provider", provider),
        ("error", error),
    ]));
    assert_eq!(all, expected, "Location {loc}");
    let _ = param(&loc, "error_description");
    loc
}

fn content_type(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// An HTML page with `status`, and no redirect. Returns the page.
async fn assert_html_page(resp: reqwest::Response, status: u16) -> String {
    assert_eq!(resp.status().as_u16(), status, "status");
    assert!(
        resp.headers().get("location").is_none(),
        "a page, never a redirect: Location {:?}",
        resp.headers().get("location")
    );
    let ct = content_type(&resp);
    assert!(ct.starts_with("text/html"), "content-type {ct}");
    let body = resp.text().await.unwrap();
    assert!(body.contains("<html"), "{body}");
    body
}

/// The 400 page a bad state gets.
async fn assert_refused_page(resp: reqwest::Response) -> String {
    assert_html_page(resp, 400).await
}

/// `url` with its `state` replaced (or removed, with `None`).
fn with_state(url: &Url, state: Option<&str>) -> Url {
    let mut out = url.clone();
    let kept: Vec<(String, String)> = pairs(url)
        .into_iter()
        .filter(|(k, _)| k != "state")
        .collect();
    {
        let mut q = out.query_pairs_mut();
        q.clear();
        q.extend_pairs(kept.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if let Some(s) = state {
            q.append_pair("state", s);
        }
    }
    out
}

/// `url` without the parameter `name`.
fn without_param(url: &Url, name: &str) -> Url {
    let mut out = url.clone();
    let kept: Vec<(String, String)> = pairs(url).into_iter().filter(|(k, _)| k != name).collect();
    out.query_pairs_mut()
        .clear()
        .extend_pairs(kept.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    out
}

fn rfc3339(text: &str) -> time::OffsetDateTime {
    assert!(text.ends_with('Z'), "UTC timestamp expected: {text}");
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("`{text}` is not RFC 3339: {e}"))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// What each provider expects and answers (the fake's default accounts)

struct Expect {
    /// Authorize parameters, exactly (`state`, `redirect_uri` and `code_challenge` are checked
    /// separately).
    param_names: &'static [&'static str],
    requested_scopes: &'static [&'static str],
    granted_scopes: &'static [&'static str],
    provider_account_id: &'static str,
    username: Option<&'static str>,
    display_name: Option<&'static str>,
    /// The lifetime of the token that must be stored, in seconds.
    expires_in: i64,
    /// Token-endpoint calls for one connect.
    token_calls: usize,
}

fn expect(kind: Kind) -> Expect {
    const OAUTH: &[&str] = &[
        "client_id",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
    ];
    const GOOGLE: &[&str] = &[
        "access_type",
        "client_id",
        "code_challenge",
        "code_challenge_method",
        "include_granted_scopes",
        "prompt",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
    ];
    match kind {
        Kind::X => Expect {
            param_names: &[
                "client_id",
                "code_challenge",
                "code_challenge_method",
                "redirect_uri",
                "response_type",
                "scope",
                "state",
            ],
            requested_scopes: &[
                "tweet.read",
                "tweet.write",
                "users.read",
                "offline.access",
                "media.write",
            ],
            granted_scopes: &[
                "tweet.read",
                "tweet.write",
                "users.read",
                "offline.access",
                "media.write",
            ],
            provider_account_id: "1234567890",
            username: Some("fakeuser"),
            display_name: Some("Fake User"),
            expires_in: 7200,
            token_calls: 1,
        },
        Kind::Linkedin => Expect {
            param_names: OAUTH,
            requested_scopes: &["openid", "profile", "w_member_social"],
            granted_scopes: &["openid", "profile", "w_member_social"],
            provider_account_id: "fAkEsUb123",
            username: None,
            display_name: Some("Fake User"),
            expires_in: 5_184_000,
            token_calls: 1,
        },
        Kind::Facebook => Expect {
            param_names: OAUTH,
            requested_scopes: &[
                "pages_show_list",
                "pages_manage_posts",
                "pages_read_engagement",
                "business_management",
            ],
            granted_scopes: &[
                "pages_show_list",
                "pages_manage_posts",
                "pages_read_engagement",
                "business_management",
            ],
            provider_account_id: "1029384756473829",
            username: None,
            display_name: Some("Fake User"),
            // The long-lived token's lifetime; the short-lived one lives 5183 seconds.
            expires_in: 5_184_000,
            token_calls: 2,
        },
        Kind::Instagram => Expect {
            param_names: OAUTH,
            requested_scopes: &[
                "instagram_business_basic",
                "instagram_business_content_publish",
            ],
            granted_scopes: &[
                "instagram_business_basic",
                "instagram_business_content_publish",
            ],
            provider_account_id: DEFAULT_INSTAGRAM_USER_ID,
            username: Some("fakeuser"),
            display_name: Some("Fake User"),
            expires_in: 5_184_000,
            token_calls: 2,
        },
        Kind::Threads => Expect {
            param_names: OAUTH,
            requested_scopes: &["threads_basic", "threads_content_publish"],
            // Threads' code exchange names no scopes: what was requested is kept.
            granted_scopes: &["threads_basic", "threads_content_publish"],
            provider_account_id: DEFAULT_THREADS_USER_ID,
            username: Some("fakeuser"),
            display_name: Some("Fake User"),
            expires_in: 5_184_000,
            token_calls: 2,
        },
        Kind::Youtube => Expect {
            param_names: GOOGLE,
            requested_scopes: &[
                "openid",
                "email",
                "profile",
                "https://www.googleapis.com/auth/youtube.upload",
                "https://www.googleapis.com/auth/youtube.readonly",
            ],
            // Google answers `email` and `profile` by their long names.
            granted_scopes: &[
                "openid",
                "https://www.googleapis.com/auth/userinfo.email",
                "https://www.googleapis.com/auth/userinfo.profile",
                "https://www.googleapis.com/auth/youtube.upload",
                "https://www.googleapis.com/auth/youtube.readonly",
            ],
            provider_account_id: DEFAULT_GOOGLE_SUB,
            username: Some("fake.user@example.com"),
            display_name: Some("Fake User"),
            expires_in: 3599,
            token_calls: 1,
        },
        Kind::GoogleBusiness => Expect {
            param_names: GOOGLE,
            requested_scopes: &[
                "openid",
                "email",
                "profile",
                "https://www.googleapis.com/auth/business.manage",
            ],
            granted_scopes: &[
                "openid",
                "https://www.googleapis.com/auth/userinfo.email",
                "https://www.googleapis.com/auth/userinfo.profile",
                "https://www.googleapis.com/auth/business.manage",
            ],
            provider_account_id: DEFAULT_GOOGLE_SUB,
            username: Some("fake.user@example.com"),
            display_name: Some("Fake User"),
            expires_in: 3599,
            token_calls: 1,
        },
        Kind::Tiktok => Expect {
            param_names: &[
                "client_key",
                "redirect_uri",
                "response_type",
                "scope",
                "state",
            ],
            requested_scopes: &["user.info.basic", "video.publish", "video.upload"],
            // The fake's user unticks video.upload.
            granted_scopes: &["user.info.basic", "video.publish"],
            provider_account_id: "-000fAkE0pEnId-1234567890abcdef",
            username: Some("fakeuser"),
            display_name: Some("Fake User"),
            expires_in: 86_400,
            token_calls: 1,
        },
        Kind::Pinterest => Expect {
            param_names: OAUTH,
            requested_scopes: &[
                "user_accounts:read",
                "boards:read",
                "pins:read",
                "pins:write",
            ],
            granted_scopes: &[
                "user_accounts:read",
                "boards:read",
                "pins:read",
                "pins:write",
            ],
            provider_account_id: "549755885175",
            username: Some("fakeuser"),
            display_name: Some("Fake User"),
            expires_in: 2_592_000,
            token_calls: 1,
        },
        Kind::Reddit => Expect {
            param_names: &[
                "client_id",
                "duration",
                "redirect_uri",
                "response_type",
                "scope",
                "state",
            ],
            requested_scopes: &["identity", "submit", "read"],
            granted_scopes: &["identity", "submit", "read"],
            provider_account_id: "1fakeid9",
            username: Some("fakeuser"),
            display_name: Some("Fake User"),
            expires_in: 3600,
            token_calls: 1,
        },
        // Its identity and client depend on the instance: `tests/api/mastodon.rs` checks its
        // connects; only the counts here are used by the shared tests.
        Kind::Mastodon => Expect {
            param_names: &[
                "client_id",
                "code_challenge",
                "code_challenge_method",
                "redirect_uri",
                "response_type",
                "scope",
                "state",
            ],
            requested_scopes: &["profile", "write:statuses", "write:media"],
            granted_scopes: &["profile", "write:statuses", "write:media"],
            provider_account_id: "109876543210",
            username: Some("fakeuser"),
            display_name: Some("Fake User"),
            expires_in: 0,
            token_calls: 1,
        },
    }
}

/// Checks the authorize URL against what the provider expects.
fn check_authorize_url(flow: &Flow, url: &Url) {
    let kind = flow.fake.kind;
    let want = expect(kind);
    assert_eq!(
        without_query(url),
        flow.fake.authorize_url(),
        "the configured authorize_url"
    );
    let names: Vec<String> = pairs(url).into_iter().map(|(k, _)| k).collect();
    let unique: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(unique.len(), names.len(), "duplicated parameter in {url}");
    let want_names: BTreeSet<&str> = want.param_names.iter().copied().collect();
    assert_eq!(unique, want_names, "{kind} authorize parameters in {url}");

    assert_eq!(param(url, "response_type").as_deref(), Some("code"));
    assert_eq!(
        param(url, kind.client_id_param()).as_deref(),
        Some(CLIENT_ID),
        "{kind} names the app with `{}`",
        kind.client_id_param()
    );
    if kind == Kind::Tiktok {
        assert_eq!(
            param(url, "client_id"),
            None,
            "tiktok takes client_key only"
        );
    }
    assert_eq!(
        param(url, "redirect_uri").unwrap(),
        flow.redirect_uri(),
        "redirect_uri"
    );
    let sep = kind.scope_separator().to_string();
    assert_eq!(
        param(url, "scope").unwrap(),
        want.requested_scopes.join(&sep),
        "{kind} scopes joined with {sep:?}"
    );
    let state = param(url, "state").unwrap();
    assert!(
        state.len() > 40
            && state
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "state is URL-safe base64: {state}"
    );
    if kind.uses_pkce() {
        let challenge = param(url, "code_challenge").unwrap();
        assert_eq!(challenge.len(), 43, "S256 challenge: {challenge}");
        assert!(URL_SAFE_NO_PAD.decode(&challenge).is_ok());
        assert_eq!(param(url, "code_challenge_method").as_deref(), Some("S256"));
    } else {
        assert_eq!(param(url, "code_challenge"), None, "{kind} uses no PKCE");
        assert_eq!(param(url, "code_challenge_method"), None);
    }
}

/// Checks a stored account's JSON against what the provider answered.
fn check_account(kind: Kind, account: &Value, id: &str, app_id: Option<&str>) {
    let want = expect(kind);
    let keys: BTreeSet<&str> = account
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let want_keys: BTreeSet<&str> = [
        "id",
        "provider",
        "oauth_app_id",
        "provider_account_id",
        "username",
        "display_name",
        "scopes",
        "status",
        "status_reason",
        "expires_at",
        "reauth_by",
        "created_at",
        "updated_at",
        "kind",
        "parent_id",
        "tasks",
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, want_keys, "account fields: {account}");
    assert_eq!(account["kind"], "user");
    assert_eq!(account["parent_id"], Value::Null);
    assert_eq!(account["id"], id);
    assert_eq!(account["provider"], kind.as_str());
    assert_eq!(account["oauth_app_id"], json!(app_id), "{account}");
    assert_eq!(
        account["provider_account_id"],
        json!(want.provider_account_id),
        "provider_account_id is the exact string: {account}"
    );
    assert_eq!(account["username"], json!(want.username), "{account}");
    assert_eq!(
        account["display_name"],
        json!(want.display_name),
        "{account}"
    );
    assert_eq!(
        account["scopes"],
        json!(want.granted_scopes),
        "the granted scopes: {account}"
    );
    assert_eq!(account["status"], "active");
    let created = rfc3339(account["created_at"].as_str().unwrap());
    let updated = rfc3339(account["updated_at"].as_str().unwrap());
    assert!(updated >= created, "{account}");
    let expires = rfc3339(account["expires_at"].as_str().expect("expires_at set"));
    let lifetime = (expires - created).whole_seconds();
    assert!(
        (want.expires_in - 60..=want.expires_in + 60).contains(&lifetime),
        "{kind}: expires_at is {lifetime} s after created_at, expected about {}",
        want.expires_in
    );
}

/// A full connect with a BYOK app, and everything it must leave behind.
async fn full_flow(kind: Kind) {
    let flow = Flow::new(kind).await;
    let app_id = flow.create_app(TENANT).await;
    let want = expect(kind);

    let authorize_url = flow.start(TENANT, Some(&app_id), Some(RETURN_URL)).await;
    check_authorize_url(&flow, &authorize_url);

    let callback_url = flow.consent(&authorize_url).await;
    assert_eq!(
        param(&callback_url, "state"),
        param(&authorize_url, "state"),
        "the provider hands the state back"
    );
    let resp = flow.callback(&callback_url).await;
    let (_, account_id) = assert_connected_redirect(&resp, RETURN_URL, kind.as_str());

    // The provider was called the provider's way, once per step.
    assert_eq!(flow.fake.token_requests(), want.token_calls, "{kind}");
    let token_calls = flow.fake.requests_to("/token");
    let exchange = &token_calls[0];
    assert_eq!(
        exchange.param("redirect_uri"),
        Some(flow.redirect_uri().as_str())
    );
    match kind {
        Kind::X => {
            let verifier = exchange.param("code_verifier").expect("a PKCE verifier");
            assert_eq!(
                URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
                param(&authorize_url, "code_challenge").unwrap(),
                "the verifier matches the challenge"
            );
            let basic = format!(
                "Basic {}",
                STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
            );
            assert_eq!(exchange.authorization.as_deref(), Some(basic.as_str()));
        }
        Kind::Tiktok => {
            assert_eq!(exchange.param("client_key"), Some(CLIENT_ID));
            assert_eq!(exchange.param("client_id"), None);
            assert_eq!(exchange.param("code_verifier"), None);
        }
        Kind::Youtube | Kind::GoogleBusiness => {
            let verifier = exchange.param("code_verifier").expect("a PKCE verifier");
            assert_eq!(
                URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
                param(&authorize_url, "code_challenge").unwrap(),
                "the verifier matches the challenge"
            );
            assert_eq!(exchange.param("client_secret"), Some(CLIENT_SECRET));
            assert_eq!(exchange.authorization, None, "Google: no HTTP Basic");
            for (name, value) in [
                ("access_type", "offline"),
                ("prompt", "consent"),
                ("include_granted_scopes", "true"),
            ] {
                assert_eq!(
                    param(&authorize_url, name).as_deref(),
                    Some(value),
                    "{kind}"
                );
            }
        }
        Kind::Pinterest | Kind::Reddit => {
            let basic = format!(
                "Basic {}",
                STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
            );
            assert_eq!(exchange.authorization.as_deref(), Some(basic.as_str()));
            assert_eq!(exchange.param("client_secret"), None, "{kind}: Basic only");
            assert_eq!(exchange.param("code_verifier"), None, "{kind} uses no PKCE");
        }
        _ => assert_eq!(exchange.param("code_verifier"), None, "{kind} uses no PKCE"),
    }

    // The account, as the API shows it.
    let (account, get_text) = flow
        .get_json(TENANT, &format!("/v1/accounts/{account_id}"))
        .await;
    check_account(kind, &account, &account_id, Some(&app_id));
    let list_resp = flow.app.get_as(TENANT, "/v1/accounts").await;
    assert_eq!(list_resp.status(), 200);
    let list_text = list_resp.text().await.unwrap();
    let list: Value = serde_json::from_str(&list_text).unwrap();
    assert_eq!(
        list,
        json!({"data": [account], "next_cursor": null}),
        "the list holds exactly the account"
    );
    let (filtered, _) = flow
        .get_json(TENANT, &format!("/v1/accounts?provider={kind}"))
        .await;
    assert_eq!(filtered["data"], json!([account]));
    assert_eq!(flow.rows().len(), 1);

    // Stored: the last token the provider issued (for facebook, instagram and threads the
    // long-lived one: the fake's identity endpoint refuses the short-lived one, and the
    // account exists).
    let issued = flow.fake.issued_access_tokens();
    assert_eq!(
        issued.len(),
        if matches!(kind, Kind::Facebook | Kind::Instagram | Kind::Threads) {
            2
        } else {
            1
        },
        "{kind} access tokens issued: {issued:?}"
    );
    let stored = flow.stored_access_token(TENANT, &account_id).await;
    assert_eq!(&stored, issued.last().unwrap(), "{kind} stored token");
    if matches!(kind, Kind::Facebook | Kind::Instagram) {
        assert!(
            stored.contains("-long-"),
            "long-lived token stored: {stored}"
        );
    }

    // Never a token in the API's answers, nor in the clear in the database files.
    let mut secrets = issued.clone();
    secrets.extend(flow.fake.issued_refresh_tokens());
    secrets.extend(flow.fake.issued_codes());
    for text in [&get_text, &list_text] {
        assert!(!text.contains("access_token") && !text.contains("refresh_token"));
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{secret} leaked in {text}");
        }
    }
    for (file, bytes) in support::database_bytes(&flow.app.db_path()) {
        for secret in issued.iter().chain(&flow.fake.issued_refresh_tokens()) {
            assert!(
                !contains(&bytes, secret.as_bytes()),
                "{kind}: the token {secret} is in the clear in {file}"
            );
        }
        assert!(!contains(&bytes, CLIENT_SECRET.as_bytes()), "{file}");
    }
}

// ---------------------------------------------------------------------------------------------
// Full flows, one per provider

#[tokio::test]
async fn x_connects_with_pkce_s256_and_space_separated_scopes() {
    full_flow(Kind::X).await;
}

#[tokio::test]
async fn linkedin_connects_with_credentials_in_the_body_and_openid_sub_as_id() {
    full_flow(Kind::Linkedin).await;
}

#[tokio::test]
async fn facebook_connects_and_stores_the_long_lived_token() {
    full_flow(Kind::Facebook).await;
}

#[tokio::test]
async fn instagram_connects_and_keeps_the_big_user_id_exact_and_the_long_lived_token() {
    full_flow(Kind::Instagram).await;
}

#[tokio::test]
async fn tiktok_connects_with_client_key_and_stores_only_the_granted_scopes() {
    full_flow(Kind::Tiktok).await;
}

#[tokio::test]
async fn threads_connects_with_its_own_app_and_stores_the_long_lived_token() {
    full_flow(Kind::Threads).await;
}

#[tokio::test]
async fn youtube_connects_with_offline_access_pkce_and_credentials_in_the_body() {
    full_flow(Kind::Youtube).await;
}

#[tokio::test]
async fn google_business_connects_with_offline_access_pkce_and_credentials_in_the_body() {
    full_flow(Kind::GoogleBusiness).await;
}

#[tokio::test]
async fn pinterest_connects_with_basic_auth_and_comma_separated_scopes() {
    full_flow(Kind::Pinterest).await;
}

#[tokio::test]
async fn reddit_connects_with_a_permanent_grant() {
    full_flow(Kind::Reddit).await;
}

#[tokio::test]
async fn reddit_calls_carry_dravos_default_user_agent_when_the_app_sets_none() {
    // The fake refuses a missing or generic user agent on the token and identity calls.
    let flow = Flow::new(Kind::Reddit).await;
    let app_id = flow.create_app(TENANT).await;
    flow.connect(TENANT, Some(&app_id), RETURN_URL).await;
    let want = format!(
        "web:dravo:{} (by Dravo, self-hosted)",
        env!("CARGO_PKG_VERSION")
    );
    let calls: Vec<_> = flow
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.path != "/authorize")
        .collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    for call in calls {
        assert_eq!(
            call.user_agent.as_deref(),
            Some(want.as_str()),
            "{}",
            call.path
        );
    }
}

/// Instagram quirks that must not break the connect.
async fn instagram_connects_despite(fault: Fault) {
    let flow = Flow::new(Kind::Instagram).await;
    flow.fake.set_fault(fault);
    let app_id = flow.create_app(TENANT).await;
    let done = flow.connect(TENANT, Some(&app_id), RETURN_URL).await;
    if fault == Fault::CodeWithHashSuffixInQuery {
        let code = param(&done.callback_url, "code").unwrap();
        assert!(code.ends_with("#_"), "the callback got {code}");
    }
    let (account, _) = flow
        .get_json(TENANT, &format!("/v1/accounts/{}", done.account_id))
        .await;
    check_account(Kind::Instagram, &account, &done.account_id, Some(&app_id));
    assert_eq!(
        flow.stored_access_token(TENANT, &done.account_id).await,
        *flow.fake.issued_access_tokens().last().unwrap()
    );
}

#[tokio::test]
async fn instagram_connects_when_the_token_answer_is_wrapped_in_data() {
    instagram_connects_despite(Fault::InstagramDataWrapper).await;
}

#[tokio::test]
async fn instagram_connects_when_the_code_carries_a_hash_suffix_in_the_query() {
    instagram_connects_despite(Fault::CodeWithHashSuffixInQuery).await;
}

// ---------------------------------------------------------------------------------------------
// The start endpoint

#[tokio::test]
async fn an_apps_own_scopes_are_requested_and_stored() {
    let flow = Flow::new(Kind::X).await;
    let app = flow
        .app
        .create_ok(
            TENANT,
            &json!({
                "provider": "x",
                "name": "narrow",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "scopes": ["tweet.read", "users.read"],
            }),
        )
        .await;
    let app_id = app["id"].as_str().unwrap();
    let done = flow.connect(TENANT, Some(app_id), RETURN_URL).await;
    assert_eq!(
        param(&done.authorize_url, "scope").as_deref(),
        Some("tweet.read users.read")
    );
    let (account, _) = flow
        .get_json(TENANT, &format!("/v1/accounts/{}", done.account_id))
        .await;
    assert_eq!(account["scopes"], json!(["tweet.read", "users.read"]));
    assert!(
        flow.fake.issued_refresh_tokens().is_empty(),
        "no offline.access, no refresh token"
    );
}

#[tokio::test]
async fn provider_text_is_stored_without_control_bidi_or_invisible_characters() {
    let flow = Flow::new(Kind::X).await;
    flow.fake.set_account(
        "1234567890",
        Some("evil\u{1b}[31m\u{7}\u{202e}resu\nacc_forged\u{9b}2J"),
        Some("  Fake\u{200b}\t\r\n  User\u{2066} \u{feff} "),
    );
    let app_id = flow.create_app(TENANT).await;
    let done = flow.connect(TENANT, Some(&app_id), RETURN_URL).await;
    let (account, _) = flow
        .get_json(TENANT, &format!("/v1/accounts/{}", done.account_id))
        .await;
    assert_eq!(
        account["username"], "evil[31mresu acc_forged2J",
        "{account}"
    );
    assert_eq!(account["display_name"], "Fake User", "{account}");

    // Text with nothing visible left is no text at all.
    flow.fake
        .set_account("1234567891", Some("\u{200b}\u{202e} \n"), Some("\u{7}"));
    let done = flow.connect(TENANT, Some(&app_id), RETURN_URL).await;
    let (account, _) = flow
        .get_json(TENANT, &format!("/v1/accounts/{}", done.account_id))
        .await;
    assert!(account["username"].is_null(), "{account}");
    assert!(account["display_name"].is_null(), "{account}");
}

#[tokio::test]
async fn start_without_app_and_without_default_app_is_409_no_default_app() {
    let flow = Flow::new(Kind::X).await;
    let resp = flow
        .request_start("x", Some(TENANT), &[("return_url", RETURN_URL)])
        .await;
    assert_error(resp, 409, "no_default_app").await;
    assert!(flow.rows().is_empty());
    assert!(flow.fake.requests().is_empty());
}

#[tokio::test]
async fn default_app_from_the_config_connects_with_a_null_oauth_app_id() {
    let flow = Flow::with(Kind::Linkedin, |c| with_default_app(c, Kind::Linkedin)).await;
    let done = flow.connect(TENANT, None, RETURN_URL).await;
    check_authorize_url(&flow, &done.authorize_url);
    let (account, _) = flow
        .get_json(TENANT, &format!("/v1/accounts/{}", done.account_id))
        .await;
    check_account(Kind::Linkedin, &account, &done.account_id, None);
    assert!(account["oauth_app_id"].is_null());
}

#[tokio::test]
async fn default_app_with_pkce_provider_connects_too() {
    let flow = Flow::with(Kind::X, |c| with_default_app(c, Kind::X)).await;
    let done = flow.connect(TENANT, None, RETURN_URL).await;
    let (account, _) = flow
        .get_json(TENANT, &format!("/v1/accounts/{}", done.account_id))
        .await;
    check_account(Kind::X, &account, &done.account_id, None);
}

#[tokio::test]
async fn start_with_another_tenants_app_is_404() {
    let flow = Flow::new(Kind::X).await;
    let theirs = flow.create_app(OTHER_TENANT).await;
    let resp = flow
        .request_start(
            "x",
            Some(TENANT),
            &[("oauth_app_id", &theirs), ("return_url", RETURN_URL)],
        )
        .await;
    assert_error(resp, 404, "not_found").await;
    assert!(flow.rows().is_empty());
}

#[tokio::test]
async fn start_with_an_app_of_another_provider_is_400() {
    let flow = Flow::new(Kind::X).await;
    let linkedin_app = flow
        .app
        .create_ok(
            TENANT,
            &json!({
                "provider": "linkedin",
                "name": "li",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            }),
        )
        .await;
    let resp = flow
        .request_start(
            "x",
            Some(TENANT),
            &[("oauth_app_id", linkedin_app["id"].as_str().unwrap())],
        )
        .await;
    assert_error(resp, 400, "invalid_request").await;
    assert!(flow.rows().is_empty());
}

#[tokio::test]
async fn start_with_a_malformed_oauth_app_id_is_400() {
    let flow = Flow::new(Kind::X).await;
    for bad in [
        "oa_123",
        "not-an-id",
        "oa_ABCDEFGHIJKLMNOPQRST",
        "acc_abcdefghijklmnopqrst",
        "oa_abcdefghijklmnopqrst0",
        "",
    ] {
        let resp = flow
            .request_start("x", Some(TENANT), &[("oauth_app_id", bad)])
            .await;
        assert_eq!(resp.status(), 400, "oauth_app_id={bad:?}");
        assert_error(resp, 400, "invalid_request").await;
    }
    assert!(flow.rows().is_empty());
}

#[tokio::test]
async fn start_refuses_return_urls_outside_the_allowed_prefixes() {
    let flow = Flow::new(Kind::X).await;
    let app_id = flow.create_app(TENANT).await;
    for bad in [
        "https://evil.io/",
        "https://dash.example.com.evil.io/x",
        "https://dash.example.com@evil.io/",
        "http://dash.example.com/",
        "https://dash.example.com:8443/",
        "https://user:pw@dash.example.com/",
        "javascript:alert(1)",
        "/connected",
        "dash.example.com/connected",
        // Outside the documented length (1 to 2048 characters).
        "",
        &format!("https://dash.example.com/{}", "a".repeat(2048)),
    ] {
        let resp = flow
            .request_start(
                "x",
                Some(TENANT),
                &[("oauth_app_id", &app_id), ("return_url", bad)],
            )
            .await;
        assert_eq!(resp.status(), 400, "return_url={bad}");
        assert_error(resp, 400, "invalid_request").await;
    }
    assert!(flow.rows().is_empty());
    assert!(flow.fake.requests().is_empty());
}

#[tokio::test]
async fn an_allowed_return_url_keeps_its_path_and_query_and_gets_the_status_appended() {
    let flow = Flow::new(Kind::Tiktok).await;
    let app_id = flow.create_app(TENANT).await;
    let return_url = "https://dash.example.com/settings/connections?tab=social&from=start";
    let done = flow.connect(TENANT, Some(&app_id), return_url).await;
    assert_eq!(done.redirect.path(), "/settings/connections");
    assert_eq!(
        pairs(&done.redirect),
        owned(&[
            ("tab", "social"),
            ("from", "start"),
            ("status", "connected"),
            ("provider", "tiktok"),
            ("account_id", &done.account_id),
        ])
    );
}

#[tokio::test]
async fn start_without_a_token_is_401() {
    let flow = Flow::new(Kind::X).await;
    let resp = flow
        .request_start("x", None, &[("return_url", RETURN_URL)])
        .await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap()),
        Some("Bearer")
    );
    assert_error(resp, 401, "unauthorized").await;
    assert!(flow.rows().is_empty());
}

#[tokio::test]
async fn start_for_an_unknown_provider_is_400() {
    let flow = Flow::new(Kind::X).await;
    for provider in ["myspace", "X", "twitter", "instagram%20"] {
        let resp = flow
            .app
            .get_as(TENANT, &format!("/v1/oauth/{provider}/start"))
            .await;
        assert_eq!(resp.status(), 400, "provider {provider}");
        assert_error(resp, 400, "invalid_request").await;
    }
    assert!(flow.rows().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Callback with a bad state: a 400 page, never a redirect, nothing stored, provider not called

/// A flow whose config also names `dashboard.return_url`, so "never a redirect" means
/// something: there always is a place Dravo could redirect to.
async fn flow_with_fallback(kind: Kind) -> Flow {
    Flow::with(kind, |c| {
        c.dashboard.return_url = Some(Url::parse("https://dash.example.com/fallback").unwrap());
    })
    .await
}

#[tokio::test]
async fn callback_without_state_is_a_400_page() {
    let flow = flow_with_fallback(Kind::X).await;
    let app_id = flow.create_app(TENANT).await;
    let callback = flow.until_callback(TENANT, Some(&app_id)).await;
    for bad in [with_state(&callback, None), with_state(&callback, Some(""))] {
        assert_refused_page(flow.callback(&bad).await).await;
    }
    // A bare callback, nothing at all.
    let bare = Url::parse(&flow.redirect_uri()).unwrap();
    assert_refused_page(flow.callback(&bare).await).await;
    assert!(flow.rows().is_empty());
    assert_eq!(flow.fake.token_requests(), 0);
}

/// A browser sent to the callback of a provider this server does not know (a mistyped
/// redirect URI) gets the callback's page, as the spec documents, not a JSON error.
#[tokio::test]
async fn callback_for_an_unknown_provider_is_a_400_page() {
    let flow = flow_with_fallback(Kind::X).await;
    let app_id = flow.create_app(TENANT).await;
    let callback = flow.until_callback(TENANT, Some(&app_id)).await;
    let mut wrong = callback.clone();
    wrong.set_path("/v1/oauth/myspace/callback");
    let page = assert_html_page(flow.callback(&wrong).await, 400).await;
    assert!(
        page.contains("provider this server does not know"),
        "{page}"
    );
    assert!(flow.rows().is_empty());
    assert_eq!(flow.fake.token_requests(), 0);
    // The state was not spent: the right callback still connects.
    let resp = flow.callback(&callback).await;
    assert_eq!(resp.status().as_u16(), 302, "{:?}", resp.headers());
}

#[tokio::test]
async fn callback_with_a_garbage_state_is_a_400_page() {
    let flow = flow_with_fallback(Kind::Linkedin).await;
    let app_id = flow.create_app(TENANT).await;
    let callback = flow.until_callback(TENANT, Some(&app_id)).await;
    let long = "A".repeat(5000);
    for garbage in [
        "garbage",
        "!!!!",
        "AAAA",
        "eyJhbGciOiJub25lIn0.e30.",
        long.as_str(),
    ] {
        let resp = flow.callback(&with_state(&callback, Some(garbage))).await;
        assert_refused_page(resp).await;
    }
    // A denial with a bad state is still a bad state: no redirect.
    let mut denied = Url::parse(&flow.redirect_uri()).unwrap();
    denied
        .query_pairs_mut()
        .append_pair("error", "user_cancelled_login")
        .append_pair("state", "garbage");
    assert_refused_page(flow.callback(&denied).await).await;
    assert!(flow.rows().is_empty());
    assert_eq!(flow.fake.token_requests(), 0);
}

#[tokio::test]
async fn callback_with_a_tampered_state_is_a_400_page_in_every_region() {
    // One callback per byte of the state: far more than the callback limit's burst from one
    // address, which is not what this test is about.
    let flow = Flow::with(Kind::X, |c| {
        c.dashboard.return_url = Some(Url::parse("https://dash.example.com/fallback").unwrap());
        c.limits.callback_per_second = dravo::config::LimitsConfig::MAX_PER_SECOND;
    })
    .await;
    let app_id = flow.create_app(TENANT).await;
    let callback = flow.until_callback(TENANT, Some(&app_id)).await;
    let state = param(&callback, "state").unwrap();
    let raw = URL_SAFE_NO_PAD.decode(&state).unwrap();

    // The state is sealed: what it binds (tenant, app, return URL) cannot be read from it.
    for needle in [TENANT, app_id.as_str(), RETURN_URL, "dash.example.com"] {
        assert!(
            !raw.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "the decoded state shows {needle}"
        );
    }

    // Every byte: the sealer's version and nonce, the SIV tag, and the sealed payload.
    for index in 0..raw.len() {
        let mut forged = raw.clone();
        forged[index] ^= 0x01;
        let resp = flow
            .callback(&with_state(
                &callback,
                Some(&URL_SAFE_NO_PAD.encode(&forged)),
            ))
            .await;
        let status = resp.status();
        assert_eq!(status, 400, "flipped byte {index}");
        assert_refused_page(resp).await;
        assert!(flow.rows().is_empty(), "byte {index}");
    }
    // A trailing byte, a missing byte.
    let mut longer = raw.clone();
    longer.push(0);
    let shorter = raw[..raw.len() - 1].to_vec();
    for forged in [longer, shorter] {
        let resp = flow
            .callback(&with_state(
                &callback,
                Some(&URL_SAFE_NO_PAD.encode(&forged)),
            ))
            .await;
        assert_refused_page(resp).await;
    }
    // The same bytes with padding or the standard alphabet are not the state either.
    let padded = format!("{state}=");
    let resp = flow.callback(&with_state(&callback, Some(&padded))).await;
    assert_refused_page(resp).await;
    assert!(flow.rows().is_empty());
    assert_eq!(
        flow.fake.token_requests(),
        0,
        "the provider was never called"
    );

    // None of this used up the genuine state.
    let resp = flow.callback(&callback).await;
    assert_connected_redirect(&resp, RETURN_URL, "x");
    assert_eq!(flow.rows().len(), 1);
}

#[tokio::test]
async fn callback_with_a_state_older_than_ten_minutes_is_a_400_page() {
    // The core's clock is moved, not waited for: each state is issued "now", then the clock
    // jumps past its expiry before the callback.
    let clock = ManualClock::starting_now();
    let flow = Flow::with_clock(Kind::Linkedin, clock.clone(), |c| {
        c.dashboard.return_url = Some(Url::parse("https://dash.example.com/fallback").unwrap());
    })
    .await;
    let app_id = flow.create_app(TENANT).await;
    assert_eq!(dravo::crypto::state::STATE_TTL_SECONDS, 600);

    for age in [601, 3600, 86_400 * 365] {
        let callback = flow.until_callback(TENANT, Some(&app_id)).await;
        clock.advance(age);
        let resp = flow.callback(&callback).await;
        let page = assert_refused_page(resp).await;
        assert!(page.contains("expired"), "issued {age} s ago: {page}");
    }
    assert!(flow.rows().is_empty());
    assert_eq!(flow.fake.token_requests(), 0);

    // Control: a state issued the same way but only nine minutes old is accepted, so the
    // refusals above were about age.
    let callback = flow.until_callback(TENANT, Some(&app_id)).await;
    clock.advance(540);
    let resp = flow.callback(&callback).await;
    assert_connected_redirect(&resp, RETURN_URL, "linkedin");
    assert_eq!(flow.rows().len(), 1);
}

#[tokio::test]
async fn callback_with_a_replayed_state_is_a_400_page_and_does_not_duplicate() {
    let flow = flow_with_fallback(Kind::Tiktok).await;
    let app_id = flow.create_app(TENANT).await;
    let done = flow.connect(TENANT, Some(&app_id), RETURN_URL).await;
    let before = flow.rows();
    assert_eq!(before.len(), 1);
    let token_calls = flow.fake.token_requests();

    let resp = flow.callback(&done.callback_url).await;
    assert_refused_page(resp).await;
    // The same state with a fresh code from the provider is refused too.
    let fresh_code = flow.consent(&done.authorize_url).await;
    assert_eq!(
        param(&fresh_code, "state"),
        param(&done.callback_url, "state")
    );
    let resp = flow.callback(&fresh_code).await;
    assert_refused_page(resp).await;

    assert_eq!(flow.rows(), before, "nothing changed");
    assert_eq!(flow.fake.token_requests(), token_calls, "no exchange");
    assert_eq!(flow.list(TENANT).await.len(), 1);
}

#[tokio::test]
async fn a_state_from_xs_start_is_refused_on_linkedins_callback() {
    let flow = flow_with_fallback(Kind::X).await;
    let app_id = flow.create_app(TENANT).await;
    let callback = flow.until_callback(TENANT, Some(&app_id)).await;
    let mut on_linkedin = callback.clone();
    on_linkedin.set_path("/v1/oauth/linkedin/callback");
    let page = assert_refused_page(flow.callback(&on_linkedin).await).await;
    assert!(page.contains("another provider"), "{page}");
    assert!(flow.rows().is_empty());
    assert_eq!(flow.fake.token_requests(), 0);
}

// ---------------------------------------------------------------------------------------------
// Callback with a valid state that fails: back to the return URL with status=error

/// start → consent with `fault` set on the fake → callback; asserts the error redirect and
/// that nothing was stored.
async fn failing_connect(kind: Kind, fault: Fault, error: &str) -> Flow {
    let flow = Flow::with(kind, |c| c.providers.timeout_seconds = 2).await;
    let app_id = flow.create_app(TENANT).await;
    let authorize_url = flow.start(TENANT, Some(&app_id), Some(RETURN_URL)).await;
    flow.fake.set_fault(fault);
    let callback = flow.consent(&authorize_url).await;
    let resp = flow.callback(&callback).await;
    assert_error_redirect(&resp, RETURN_URL, kind.as_str(), error);
    assert!(flow.rows().is_empty(), "{kind} {fault:?}: nothing stored");
    assert!(flow.list(TENANT).await.is_empty());
    flow
}

#[tokio::test]
async fn denied_consent_redirects_with_the_providers_error_for_every_provider() {
    for kind in Kind::ALL {
        let error = if kind == Kind::Linkedin {
            "user_cancelled_authorize"
        } else {
            "access_denied"
        };
        let flow = failing_connect(kind, Fault::DenyConsent, error).await;
        assert_eq!(flow.fake.token_requests(), 0, "{kind}: no exchange");
    }
}

#[tokio::test]
async fn a_callback_without_code_redirects_with_invalid_request() {
    let flow = Flow::new(Kind::Facebook).await;
    let app_id = flow.create_app(TENANT).await;
    let callback = flow.until_callback(TENANT, Some(&app_id)).await;
    let resp = flow.callback(&without_param(&callback, "code")).await;
    assert_error_redirect(&resp, RETURN_URL, "facebook", "invalid_request");
    assert!(flow.rows().is_empty());
    assert_eq!(flow.fake.token_requests(), 0);
}

#[tokio::test]
async fn a_token_endpoint_400_redirects_with_invalid_grant() {
    for kind in [
        Kind::X,
        Kind::Linkedin,
        Kind::Tiktok,
        Kind::Pinterest,
        Kind::Reddit,
    ] {
        failing_connect(kind, Fault::TokenStatus(400), "invalid_grant").await;
    }
}

#[tokio::test]
async fn a_meta_token_endpoint_400_redirects_with_invalid_grant() {
    for kind in [Kind::Facebook, Kind::Instagram] {
        failing_connect(kind, Fault::TokenStatus(400), "invalid_grant").await;
    }
}

#[tokio::test]
async fn a_token_endpoint_503_redirects_with_provider_unavailable() {
    for kind in Kind::ALL {
        failing_connect(kind, Fault::TokenStatus(503), "provider_unavailable").await;
    }
}

#[tokio::test]
async fn a_token_endpoint_slower_than_the_timeout_redirects_with_provider_unavailable() {
    // providers.timeout_seconds is 2 in `failing_connect`.
    failing_connect(
        Kind::X,
        Fault::TokenDelay(Duration::from_secs(6)),
        "provider_unavailable",
    )
    .await;
}

/// Runs a connect whose token call fails in transport; returns the `error_description`.
async fn transport_failure(kind: Kind, tweak: impl FnOnce(&mut Config)) -> String {
    let flow = Flow::with(kind, |c| {
        c.providers.timeout_seconds = 2;
        tweak(c);
    })
    .await;
    let app_id = flow.create_app(TENANT).await;
    let authorize_url = flow.start(TENANT, Some(&app_id), Some(RETURN_URL)).await;
    flow.fake
        .set_fault(Fault::TokenDelay(Duration::from_secs(6)));
    let callback = flow.consent(&authorize_url).await;
    let resp = flow.callback(&callback).await;
    let loc = assert_error_redirect(&resp, RETURN_URL, kind.as_str(), "provider_unavailable");
    let description = param(&loc, "error_description").expect("a description");
    assert!(!description.contains(CLIENT_SECRET), "{description}");
    description
}

#[tokio::test]
async fn transport_failures_name_the_host_and_the_cause() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for kind in [Kind::X, Kind::Facebook] {
        let refused = transport_failure(kind, |c| {
            slot(c, kind).token_url =
                Some(Url::parse(&format!("http://127.0.0.1:{port}/oauth/token?x=1")).unwrap());
        })
        .await;
        assert_eq!(
            refused,
            format!("cannot connect to 127.0.0.1:{port}: connection refused"),
            "{kind}"
        );
    }
    let slow = transport_failure(Kind::X, |_| {}).await;
    assert!(
        slow.starts_with("127.0.0.1:") && slow.ends_with(" did not answer: timed out after 2 s"),
        "{slow}"
    );
}

#[tokio::test]
async fn malformed_token_json_redirects_with_provider_invalid_response() {
    for kind in Kind::ALL {
        failing_connect(kind, Fault::TokenMalformedJson, "provider_invalid_response").await;
    }
}

#[tokio::test]
async fn a_tiktok_error_inside_http_200_redirects_with_invalid_grant() {
    failing_connect(Kind::Tiktok, Fault::TokenErrorWith200, "invalid_grant").await;
}

#[tokio::test]
async fn an_identity_endpoint_401_redirects_with_an_error_and_stores_nothing() {
    for (kind, error) in [
        (Kind::X, "provider_rejected"),
        (Kind::Linkedin, "provider_rejected"),
        (Kind::Tiktok, "access_token_invalid"),
        (Kind::Pinterest, "provider_rejected"),
        (Kind::Reddit, "provider_rejected"),
    ] {
        let flow = failing_connect(kind, Fault::MeStatus(401), error).await;
        assert_eq!(flow.fake.token_requests(), expect(kind).token_calls);
    }
}

#[tokio::test]
async fn a_meta_identity_endpoint_401_redirects_with_an_error_and_stores_nothing() {
    // The exact code is not pinned here: Graph errors currently come back as their
    // exception type (see `a_meta_token_endpoint_400_redirects_with_invalid_grant`).
    for kind in [Kind::Facebook, Kind::Instagram] {
        let flow = Flow::new(kind).await;
        let app_id = flow.create_app(TENANT).await;
        let authorize_url = flow.start(TENANT, Some(&app_id), Some(RETURN_URL)).await;
        flow.fake.set_fault(Fault::MeStatus(401));
        let callback = flow.consent(&authorize_url).await;
        let loc = location(&flow.callback(&callback).await);
        assert_eq!(without_query(&loc), RETURN_URL);
        assert_eq!(param(&loc, "status").as_deref(), Some("error"));
        assert_eq!(param(&loc, "provider").as_deref(), Some(kind.as_str()));
        let error = param(&loc, "error").unwrap();
        assert!(
            !error.is_empty()
                && error != "provider_unavailable"
                && error != "provider_invalid_response",
            "{kind}: {error}"
        );
        assert_eq!(param(&loc, "account_id"), None);
        assert!(flow.rows().is_empty(), "{kind}");
        assert_eq!(flow.fake.token_requests(), 2, "{kind}");
    }
}

#[tokio::test]
async fn a_state_is_used_up_by_a_failed_exchange_too() {
    let flow = Flow::new(Kind::Linkedin).await;
    let app_id = flow.create_app(TENANT).await;
    let callback = flow.until_callback(TENANT, Some(&app_id)).await;
    flow.fake.set_fault(Fault::TokenStatus(503));
    let resp = flow.callback(&callback).await;
    assert_error_redirect(&resp, RETURN_URL, "linkedin", "provider_unavailable");
    flow.fake.set_fault(Fault::None);
    assert_refused_page(flow.callback(&callback).await).await;
    assert!(flow.rows().is_empty());
    assert_eq!(flow.fake.token_requests(), 1);
}

#[tokio::test]
async fn two_concurrent_callbacks_with_one_state_connect_once() {
    let flow = Flow::new(Kind::X).await;
    let app_id = flow.create_app(TENANT).await;
    let callback = flow.until_callback(TENANT, Some(&app_id)).await;
    let (a, b) = tokio::join!(flow.callback(&callback), flow.callback(&callback));
    let (ok, refused) = if a.status() == 302 { (a, b) } else { (b, a) };
    assert_connected_redirect(&ok, RETURN_URL, "x");
    assert_refused_page(refused).await;
    assert_eq!(flow.rows().len(), 1);
    assert_eq!(flow.fake.token_requests(), 1);
}

#[tokio::test]
async fn an_app_deleted_during_sign_in_redirects_with_app_not_found() {
    let flow = Flow::new(Kind::Tiktok).await;
    let app_id = flow.create_app(TENANT).await;
    let callback = flow.until_callback(TENANT, Some(&app_id)).await;
    let resp = flow
        .app
        .delete_as(TENANT, &format!("/v1/oauth-apps/{app_id}"))
        .await;
    assert_eq!(resp.status(), 204);
    let resp = flow.callback(&callback).await;
    assert_error_redirect(&resp, RETURN_URL, "tiktok", "app_not_found");
    assert!(flow.rows().is_empty());
    assert_eq!(flow.fake.token_requests(), 0);
}

#[tokio::test]
async fn a_return_url_added_to_the_callback_is_ignored() {
    let flow = Flow::new(Kind::Facebook).await;
    let app_id = flow.create_app(TENANT).await;
    let mut callback = flow.until_callback(TENANT, Some(&app_id)).await;
    callback
        .query_pairs_mut()
        .append_pair("return_url", "https://evil.io/steal");
    let resp = flow.callback(&callback).await;
    assert_connected_redirect(&resp, RETURN_URL, "facebook");
}

// ---------------------------------------------------------------------------------------------
// No return URL at all: a page instead of a redirect

#[tokio::test]
async fn without_any_return_url_a_connect_answers_a_200_page_naming_the_account() {
    let flow = Flow::new(Kind::X).await;
    let app_id = flow.create_app(TENANT).await;
    let authorize_url = flow.start(TENANT, Some(&app_id), None).await;
    let callback = flow.consent(&authorize_url).await;
    let page = assert_html_page(flow.callback(&callback).await, 200).await;
    let accounts = flow.list(TENANT).await;
    assert_eq!(accounts.len(), 1);
    let id = accounts[0]["id"].as_str().unwrap();
    assert!(page.contains(id), "{page}");
    assert!(page.contains("@fakeuser"), "{page}");
}

#[tokio::test]
async fn without_any_return_url_a_denial_is_a_400_page_and_a_provider_failure_a_502_page() {
    let flow = Flow::new(Kind::Linkedin).await;
    let app_id = flow.create_app(TENANT).await;

    flow.fake.set_fault(Fault::DenyConsent);
    let authorize_url = flow.start(TENANT, Some(&app_id), None).await;
    let callback = flow.consent(&authorize_url).await;
    let page = assert_html_page(flow.callback(&callback).await, 400).await;
    assert!(page.contains("user_cancelled_authorize"), "{page}");
    assert!(flow.rows().is_empty());

    flow.fake.set_fault(Fault::TokenStatus(400));
    let authorize_url = flow.start(TENANT, Some(&app_id), None).await;
    let callback = flow.consent(&authorize_url).await;
    let page = assert_html_page(flow.callback(&callback).await, 502).await;
    assert!(page.contains("invalid_grant"), "{page}");
    assert!(flow.rows().is_empty());
}

#[tokio::test]
async fn the_result_page_escapes_provider_supplied_text() {
    let flow = Flow::new(Kind::Tiktok).await;
    let app_id = flow.create_app(TENANT).await;
    let authorize_url = flow.start(TENANT, Some(&app_id), None).await;
    let state = param(&authorize_url, "state").unwrap();
    let mut callback = Url::parse(&flow.redirect_uri()).unwrap();
    callback
        .query_pairs_mut()
        .append_pair("error", "access_denied<img src=x onerror=alert(2)>")
        .append_pair(
            "error_description",
            "<script>alert(\"pwned\")</script> & 'quotes'",
        )
        .append_pair("state", &state);
    let page = assert_html_page(flow.callback(&callback).await, 400).await;
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert!(page.contains("&lt;script&gt;"), "{page}");
    assert!(!page.contains("\"pwned\""), "{page}");
    assert!(flow.rows().is_empty());
}

#[tokio::test]
async fn the_connected_page_escapes_the_providers_names() {
    let flow = Flow::new(Kind::X).await;
    flow.fake.set_account(
        "4242",
        Some("<img src=x onerror=alert(1)>"),
        Some("<script>alert(2)</script>"),
    );
    let app_id = flow.create_app(TENANT).await;
    let authorize_url = flow.start(TENANT, Some(&app_id), None).await;
    let callback = flow.consent(&authorize_url).await;
    let page = assert_html_page(flow.callback(&callback).await, 200).await;
    assert!(
        !page.contains("<img") && !page.contains("<script"),
        "{page}"
    );
    assert!(page.contains("&lt;img"), "{page}");
    // Stored as the provider sent it; escaping is the page's job.
    let accounts = flow.list(TENANT).await;
    assert_eq!(accounts[0]["username"], "<img src=x onerror=alert(1)>");
}

#[tokio::test]
async fn without_a_return_url_parameter_the_configured_dashboard_return_url_is_used() {
    let flow = Flow::with(Kind::X, |c| {
        c.dashboard.return_url =
            Some(Url::parse("https://dash.example.com/fallback?from=cfg").unwrap());
    })
    .await;
    let app_id = flow.create_app(TENANT).await;
    let authorize_url = flow.start(TENANT, Some(&app_id), None).await;
    let callback = flow.consent(&authorize_url).await;
    let resp = flow.callback(&callback).await;
    assert_connected_redirect(&resp, "https://dash.example.com/fallback?from=cfg", "x");

    flow.fake.set_fault(Fault::DenyConsent);
    let authorize_url = flow.start(TENANT, Some(&app_id), None).await;
    let callback = flow.consent(&authorize_url).await;
    let resp = flow.callback(&callback).await;
    assert_error_redirect(
        &resp,
        "https://dash.example.com/fallback?from=cfg",
        "x",
        "access_denied",
    );
}

// ---------------------------------------------------------------------------------------------
// Reconnects, tenants, and the CLI

#[tokio::test]
async fn reconnecting_the_same_provider_account_updates_it_in_place() {
    let flow = Flow::new(Kind::X).await;
    let app_id = flow.create_app(TENANT).await;
    let first = flow.connect(TENANT, Some(&app_id), RETURN_URL).await;
    let (before, _) = flow
        .get_json(TENANT, &format!("/v1/accounts/{}", first.account_id))
        .await;

    let second = flow.connect(TENANT, Some(&app_id), RETURN_URL).await;
    assert_eq!(second.account_id, first.account_id, "same account id");
    let (after, _) = flow
        .get_json(TENANT, &format!("/v1/accounts/{}", first.account_id))
        .await;
    assert_eq!(after["created_at"], before["created_at"]);
    assert!(
        rfc3339(after["updated_at"].as_str().unwrap())
            >= rfc3339(before["updated_at"].as_str().unwrap())
    );
    assert!(
        rfc3339(after["updated_at"].as_str().unwrap())
            >= rfc3339(after["created_at"].as_str().unwrap())
    );
    check_account(Kind::X, &after, &first.account_id, Some(&app_id));
    assert_eq!(flow.rows().len(), 1, "one row only");
    assert_eq!(flow.list(TENANT).await, vec![after]);
    // The fresh token replaced the old one.
    let issued = flow.fake.issued_access_tokens();
    assert_eq!(issued.len(), 2);
    assert_eq!(
        flow.stored_access_token(TENANT, &first.account_id).await,
        issued[1]
    );
}

#[tokio::test]
async fn a_different_account_at_the_same_provider_gets_a_second_row() {
    let flow = Flow::new(Kind::Linkedin).await;
    let app_id = flow.create_app(TENANT).await;
    let first = flow.connect(TENANT, Some(&app_id), RETURN_URL).await;
    flow.fake
        .set_account("sEcOnDsUb456", None, Some("Second Person"));
    let second = flow.connect(TENANT, Some(&app_id), RETURN_URL).await;
    assert_ne!(first.account_id, second.account_id);

    let list = flow.list(TENANT).await;
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], first.account_id.as_str(), "oldest first");
    assert_eq!(list[0]["provider_account_id"], "fAkEsUb123");
    assert_eq!(list[1]["id"], second.account_id.as_str());
    assert_eq!(list[1]["provider_account_id"], "sEcOnDsUb456");
    assert_eq!(list[1]["display_name"], "Second Person");
    assert_eq!(flow.rows().len(), 2);
}

#[tokio::test]
async fn accounts_are_isolated_between_tenants() {
    let flow = Flow::new(Kind::Facebook).await;
    let app_id = flow.create_app(TENANT).await;
    let done = flow.connect(TENANT, Some(&app_id), RETURN_URL).await;

    assert!(flow.list(OTHER_TENANT).await.is_empty());
    let (filtered, _) = flow
        .get_json(OTHER_TENANT, "/v1/accounts?provider=facebook")
        .await;
    assert_eq!(filtered["data"], json!([]));
    let resp = flow
        .app
        .get_as(OTHER_TENANT, &format!("/v1/accounts/{}", done.account_id))
        .await;
    assert_error(resp, 404, "not_found").await;
    // Unknown for everyone is reported the same way.
    let resp = flow
        .app
        .get_as(TENANT, "/v1/accounts/acc_aaaaaaaaaaaaaaaaaaaa")
        .await;
    assert_error(resp, 404, "not_found").await;

    // The same provider account connected by the other tenant is their own account and
    // leaves the first one alone.
    let (first_before, _) = flow
        .get_json(TENANT, &format!("/v1/accounts/{}", done.account_id))
        .await;
    let theirs_app = flow.create_app(OTHER_TENANT).await;
    let theirs = flow
        .connect(OTHER_TENANT, Some(&theirs_app), RETURN_URL)
        .await;
    assert_ne!(theirs.account_id, done.account_id);
    assert_eq!(flow.list(OTHER_TENANT).await.len(), 1);
    assert_eq!(flow.list(TENANT).await, vec![first_before]);
    assert_eq!(
        flow.stored_access_token(TENANT, &done.account_id).await,
        flow.fake.issued_access_tokens()[1],
        "the first tenant's token is untouched"
    );
}

/// Runs the real `dravo` binary on the test's database; returns stdout, failing on a non-zero
/// exit.
async fn run_cli(app: &TestApp, args: &[&str]) -> String {
    let mut cmd = dravo_cmd(app.dir.path());
    cmd.args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "dravo {args:?}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn the_cli_lists_and_shows_the_same_accounts_as_the_api() {
    let flow = Flow::new(Kind::Instagram).await;
    let app_id = flow.create_app(TENANT).await;
    let done = flow.connect(TENANT, Some(&app_id), RETURN_URL).await;
    flow.fake
        .set_account("17841400000000009999", Some("second"), None);
    flow.connect(TENANT, Some(&app_id), RETURN_URL).await;

    let (api_list, _) = flow.get_json(TENANT, "/v1/accounts").await;
    assert_eq!(api_list["data"].as_array().unwrap().len(), 2);
    let list_json = run_cli(
        &flow.app,
        &["accounts", "list", "--owner", TENANT, "--json"],
    )
    .await;
    let cli_list: Value = serde_json::from_str(&list_json).unwrap();
    assert_eq!(cli_list, api_list);

    let (api_one, _) = flow
        .get_json(TENANT, &format!("/v1/accounts/{}", done.account_id))
        .await;
    let show_json = run_cli(
        &flow.app,
        &[
            "accounts",
            "show",
            "--owner",
            TENANT,
            &done.account_id,
            "--json",
        ],
    )
    .await;
    let cli_one: Value = serde_json::from_str(&show_json).unwrap();
    assert_eq!(cli_one, api_one);
    assert_eq!(cli_one["provider_account_id"], DEFAULT_INSTAGRAM_USER_ID);

    let human = run_cli(
        &flow.app,
        &["accounts", "show", "--owner", TENANT, &done.account_id],
    )
    .await;
    assert!(human.contains(&done.account_id), "{human}");
    assert!(human.contains(DEFAULT_INSTAGRAM_USER_ID), "{human}");
    assert!(human.contains(&app_id), "{human}");
    let table = run_cli(&flow.app, &["accounts", "list", "--owner", TENANT]).await;
    assert!(table.contains(&done.account_id), "{table}");

    let empty = run_cli(
        &flow.app,
        &["accounts", "list", "--owner", OTHER_TENANT, "--json"],
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&empty).unwrap(),
        json!({"data": [], "next_cursor": null})
    );

    // Neither face ever prints a token.
    for token in flow.fake.issued_access_tokens() {
        for output in [&list_json, &show_json, &human, &table] {
            assert!(!output.contains(&token), "{token} printed: {output}");
        }
    }
}

/// Whether deleting an account revokes its grant at the provider (Instagram, Threads and
/// Pinterest have no revoke call). Exhaustive, so that a new provider must say.
fn revokes(kind: Kind) -> bool {
    match kind {
        Kind::X
        | Kind::Linkedin
        | Kind::Facebook
        | Kind::Tiktok
        | Kind::Youtube
        | Kind::GoogleBusiness
        | Kind::Reddit
        | Kind::Mastodon => true,
        Kind::Instagram | Kind::Threads | Kind::Pinterest => false,
    }
}

/// Every provider, the whole life of an account: connected, its token handed out, renewed the
/// provider's way (or, for Facebook, which renews nothing, its Pages read again), and deleted
/// with its grant revoked where the provider can.
#[tokio::test]
async fn every_provider_connects_hands_out_renews_and_revokes() {
    for kind in Kind::ALL {
        let clock = ManualClock::starting_now();
        let flow = Flow::with_clock(kind, clock.clone(), |_| {}).await;
        let app_id = flow.create_app(TENANT).await;
        let done = flow.connect(TENANT, Some(&app_id), RETURN_URL).await;
        let id = done.account_id;
        let (token, _) = flow
            .get_json(TENANT, &format!("/v1/accounts/{id}/access-token"))
            .await;
        let first = token["access_token"].as_str().expect("a token").to_owned();
        assert_eq!(
            &first,
            flow.fake.issued_access_tokens().last().unwrap(),
            "{kind}"
        );

        // A day later: Instagram and Threads renew only a token at least a day old.
        clock.advance(25 * 3600);
        let calls_before = flow.fake.token_requests();
        let resp = flow
            .app
            .http
            .post(flow.app.url(&format!("/v1/accounts/{id}/refresh")))
            .bearer_auth(flow.app.token(TENANT))
            .send()
            .await
            .unwrap();
        if kind == Kind::Mastodon {
            // Its tokens never expire and it has no refresh: an explicit one says so.
            let message = assert_error(resp, 409, "conflict").await;
            assert!(
                message.ends_with("token does not expire (it works until revoked)"),
                "{message}"
            );
        } else {
            assert_eq!(resp.status(), 200, "{kind}: {}", resp.text().await.unwrap());
        }
        let (token, _) = flow
            .get_json(TENANT, &format!("/v1/accounts/{id}/access-token"))
            .await;
        let renewed = token["access_token"].as_str().unwrap();
        if matches!(kind, Kind::Facebook | Kind::Mastodon) {
            assert_eq!(
                flow.fake.token_requests(),
                calls_before,
                "nothing renews {kind}"
            );
            assert_eq!(renewed, first);
        } else {
            assert_eq!(
                flow.fake.token_requests(),
                calls_before + 1,
                "{kind}: one renewal"
            );
            assert_eq!(
                renewed,
                flow.fake.issued_access_tokens().last().unwrap(),
                "{kind}: the renewed token is handed out"
            );
            assert_ne!(renewed, first, "{kind}");
        }

        let resp = flow
            .app
            .http
            .delete(flow.app.url(&format!("/v1/accounts/{id}")))
            .bearer_auth(flow.app.token(TENANT))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{kind}");
        let deleted: Value = resp.json().await.unwrap();
        assert_eq!(deleted["revoked"], revokes(kind), "{kind}: {deleted}");
        if revokes(kind) {
            assert!(!flow.fake.revoked_tokens().is_empty(), "{kind}");
            assert!(
                !flow.fake.access_token_valid(renewed),
                "{kind}: the grant ended"
            );
        }
        assert!(flow.list(TENANT).await.is_empty(), "{kind}");
    }
}
