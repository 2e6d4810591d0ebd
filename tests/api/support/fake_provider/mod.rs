//! A fake OAuth provider for tests: a real HTTP server on 127.0.0.1 (port 0) that behaves like
//! one of x, linkedin, facebook, instagram, tiktok, threads, pinterest or reddit, and checks what
//! the real provider checks
//! (client authentication, the PKCE verifier, the redirect URI, code reuse, refresh-token
//! rotation).
//!
//! As in `src/providers/`, each provider's behaviour lives in a file of its own (`x.rs`,
//! `linkedin.rs`, `facebook.rs`, `instagram.rs`, `tiktok.rs`) behind the [`ProviderFake`]
//! trait, and [`REGISTRY`] names them by provider id. This file holds what they share: the
//! server, its state, the browser step, codes and tokens, and the dispatch. Adding a provider
//! to Dravo means adding its fake here too (`fake_provider_selftest` fails until then).
//!
//! Paths, relative to `base_url` (Dravo's config gets `authorize_url = {base}/authorize`,
//! `token_url = {base}/token`, `api_base = {base}`):
//!
//! | kind | paths |
//! |---|---|
//! | all | `GET /authorize` (the browser step), `/token` |
//! | x | `GET /2/users/me`, `POST /2/oauth2/revoke` |
//! | linkedin | `GET /v2/userinfo`, `POST /revoke`, `GET /rest/organizationAcls`, `GET /rest/organizations/{id}` |
//! | facebook | `GET /token` (code and `fb_exchange_token`), `GET /v{N}/me`, `GET /v{N}/me/accounts`, `DELETE /v{N}/me/permissions` |
//! | instagram | `POST /token`, `GET /access_token`, `GET /refresh_access_token`, `GET /me` |
//! | tiktok | `GET /v2/user/info/`, `POST /v2/oauth/revoke/` |
//! | threads | `POST /token`, `GET /access_token`, `GET /refresh_access_token`, `GET /v1.0/me` |
//! | youtube | `GET /v1/userinfo`, `POST /revoke`, `GET /youtube/v3/channels` |
//! | google_business | `GET /v1/userinfo`, `POST /revoke`, `GET /v1/accounts`, `GET /v1/accounts/{id}/locations` |
//! | pinterest | `POST /token`, `GET /v5/user_account` |
//! | reddit | `POST /token`, `POST /revoke_token`, `GET /api/v1/me` (each refused without a descriptive `User-Agent`) |
//! | mastodon | `GET /.well-known/oauth-authorization-server` (4.3+ only), `POST /api/v1/apps`, `GET /oauth/authorize`, `POST /oauth/token`, `POST /oauth/revoke`, `GET /api/v1/accounts/verify_credentials` |
//!
//! A fault set with [`FakeProvider::set_fault`] stays until it is changed. Token faults apply to
//! every token-endpoint call (`/token`, and for instagram `/access_token` and
//! `/refresh_access_token`); every such call is counted by [`FakeProvider::token_requests`],
//! whether it succeeded or not. A code is consumed by the first exchange attempt that names it
//! (after client authentication passed), successful or not.
//!
//! Lists (Facebook's Pages, LinkedIn's organization roles) are served at most
//! [`LIST_PAGE_SIZE`] items a page, whatever the caller asks, so tests exercise paging.
//!
//! For facebook and tiktok, `/token` also grants `client_credentials` (an app token, after the
//! same client id and secret checks as every other grant): the call that checks an app's
//! credentials.

mod facebook;
mod google;
mod google_business;
mod graph;
mod instagram;
mod linkedin;
mod mastodon;
mod pinterest;
mod reddit;
mod threads;
mod tiktok;
mod x;
mod youtube;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use poem::http::{HeaderMap, Method, StatusCode, header};
use poem::listener::TcpAcceptor;
use poem::{Request, Response, Server};
use rand::Rng as _;
use rand::distr::Alphanumeric;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use url::Url;

/// The most items the fake puts on one page of a list.
pub const LIST_PAGE_SIZE: usize = 2;

/// A Facebook Page the fake user manages.
#[derive(Debug, Clone)]
pub struct FakePage {
    pub id: String,
    pub name: String,
    pub tasks: Vec<String>,
    /// Its Page access token, stable across listings.
    pub token: String,
}

/// A LinkedIn organization the fake member administers.
#[derive(Debug, Clone)]
pub struct FakeOrganization {
    pub id: u64,
    pub name: String,
    pub vanity_name: String,
}

/// A YouTube channel the fake Google account manages.
#[derive(Debug, Clone)]
pub struct FakeChannel {
    pub id: String,
    pub title: String,
    pub custom_url: String,
}

/// A Google Business Profile account of the fake Google account, with its locations as
/// `(id, title)`.
#[derive(Debug, Clone)]
pub struct FakeBusinessAccount {
    pub id: String,
    pub locations: Vec<(String, String)>,
}

/// The default Google account id (`sub`).
pub const DEFAULT_GOOGLE_SUB: &str = "108234567890123456789";

/// The default instagram user id: larger than 2^53, sent as a JSON number, so that parsing it
/// through an f64 changes it.
pub const DEFAULT_INSTAGRAM_USER_ID: &str = "17841400000000001234";
/// The default Threads user id (above 2^53, as Meta's ids are).
pub const DEFAULT_THREADS_USER_ID: &str = "25009876543210987";

/// Which provider the fake behaves like: the tests' name for one of [`REGISTRY`]'s fakes, whose
/// behaviour lives in that provider's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    X,
    Linkedin,
    Facebook,
    Instagram,
    Tiktok,
    Threads,
    Youtube,
    GoogleBusiness,
    Pinterest,
    Reddit,
    Mastodon,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::X,
        Kind::Linkedin,
        Kind::Facebook,
        Kind::Instagram,
        Kind::Tiktok,
        Kind::Threads,
        Kind::Youtube,
        Kind::GoogleBusiness,
        Kind::Pinterest,
        Kind::Reddit,
        Kind::Mastodon,
    ];

    /// The provider name as Dravo spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::X => "x",
            Kind::Linkedin => "linkedin",
            Kind::Facebook => "facebook",
            Kind::Instagram => "instagram",
            Kind::Tiktok => "tiktok",
            Kind::Threads => "threads",
            Kind::Youtube => "youtube",
            Kind::GoogleBusiness => "google_business",
            Kind::Pinterest => "pinterest",
            Kind::Reddit => "reddit",
            Kind::Mastodon => "mastodon",
        }
    }

    /// The kind for a provider name (`"x"`, `"linkedin"`, ...).
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The name of the client id parameter: `client_key` for tiktok, `client_id` otherwise.
    pub fn client_id_param(self) -> &'static str {
        self.fake().client_id_param()
    }

    /// How the provider joins scopes: space for x and linkedin, comma for the others.
    pub fn scope_separator(self) -> char {
        self.fake().scope_separator()
    }

    /// Whether the authorize step requires PKCE (S256).
    pub fn uses_pkce(self) -> bool {
        self.fake().uses_pkce()
    }

    /// This provider's fake, from [`REGISTRY`].
    fn fake(self) -> &'static dyn ProviderFake {
        fake_for(self.as_str()).unwrap_or_else(|| {
            panic!("no fake for `{self}` in the REGISTRY of tests/api/support/fake_provider/")
        })
    }

    fn default_account(self) -> Account {
        let (id, username) = self.fake().default_account();
        Account {
            id: id.into(),
            username: username.map(Into::into),
            display_name: Some("Fake User".into()),
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A misbehaviour to inject. Stays in force until changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    #[default]
    None,
    /// Every token-endpoint call answers this status with the provider's error JSON
    /// (400 → `invalid_grant` / graph code 190, 401 → `invalid_client` (x: `unauthorized_client`),
    /// 429 → rate limited, 5xx → `server_error`).
    TokenStatus(u16),
    /// Every token-endpoint call sleeps this long before answering normally.
    TokenDelay(Duration),
    /// Every token-endpoint call answers 200 with the body `{not json`.
    TokenMalformedJson,
    /// Every token-endpoint call answers HTTP 200 with the provider's error JSON
    /// (tiktok: `{"error":"invalid_grant","error_description":…,"log_id":…}`).
    TokenErrorWith200,
    /// The identity endpoint answers this status with the provider's error JSON.
    MeStatus(u16),
    /// The revoke endpoint answers this status (a 5xx: the provider is down) and revokes
    /// nothing.
    RevokeStatus(u16),
    /// instagram: the code exchange answers `{"data":[{…}]}`. No effect on other kinds.
    InstagramDataWrapper,
    /// `/authorize` puts the literal `#_` inside the code parameter (`code=XYZ%23_`), so the
    /// callback receives `XYZ#_` and must strip it.
    CodeWithHashSuffixInQuery,
    /// `/authorize` redirects with the provider's denial parameters instead of a code.
    DenyConsent,
    /// google_business: the Business Profile APIs answer this status (403 or 429) with
    /// Google's `RESOURCE_EXHAUSTED` quota error, as they do for a project Google has not
    /// approved (a quota of 0).
    QuotaGate(u16),
}

/// One request the fake received (any path), in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// The body's parameters when it was `application/x-www-form-urlencoded`.
    pub form: Vec<(String, String)>,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub user_agent: Option<String>,
}

impl RecordedRequest {
    /// A parameter from the query, else from the form body.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .chain(self.form.iter())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
struct Account {
    id: String,
    username: Option<String>,
    display_name: Option<String>,
}

#[derive(Debug, Clone)]
struct CodeGrant {
    redirect_uri: String,
    client_id: String,
    scopes: Vec<String>,
    code_challenge: Option<String>,
    used: bool,
    /// Every parameter `/authorize` was given.
    authorize_params: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// x, linkedin, tiktok: the token from the code exchange or a refresh.
    Normal,
    /// facebook, instagram: the short-lived token from the code exchange.
    Short,
    /// facebook, instagram: the long-lived token from the exchange (or a refresh).
    Long,
}

#[derive(Debug, Clone)]
struct AccessToken {
    stage: Stage,
    scopes: Vec<String>,
    valid: bool,
}

#[derive(Debug, Clone)]
struct RefreshToken {
    scopes: Vec<String>,
    valid: bool,
    issued: Instant,
    /// When it was issued by the clock set with [`FakeProvider::use_clock`], if any.
    issued_unix: Option<i64>,
    /// The lifetime announced when it was issued (seconds).
    lifetime: u64,
}

/// The refresh-token lifetime announced unless a test sets another: 365 days.
const DEFAULT_REFRESH_LIFETIME: u64 = 31_536_000;

/// Unix seconds, as the test's clock tells them.
type UnixNow = Box<dyn Fn() -> i64 + Send>;

struct State {
    kind: Kind,
    base_url: String,
    client_id: String,
    client_secret: String,
    account: Account,
    fault: Fault,
    codes: HashMap<String, CodeGrant>,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    issued_codes: Vec<String>,
    issued_access: Vec<String>,
    issued_refresh: Vec<String>,
    revoked: Vec<String>,
    token_requests: usize,
    requests: Vec<RecordedRequest>,
    pages: Vec<FakePage>,
    organizations: Vec<FakeOrganization>,
    channels: Vec<FakeChannel>,
    business_accounts: Vec<FakeBusinessAccount>,
    /// Scopes the user unticks on the consent screen: never granted.
    declined_scopes: Vec<String>,
    /// access token → the refresh token issued in the same answer.
    issued_together: HashMap<String, String>,
    /// The `refresh_token_expires_in` / `refresh_expires_in` of refresh tokens issued from
    /// now on.
    refresh_lifetime: u64,
    /// linkedin: whether the code exchange issues a refresh token at all.
    issue_refresh_tokens: bool,
    /// The test's clock, if it set one; else refresh-token ages are real elapsed time.
    clock: Option<UnixNow>,
    /// linkedin: whether a refresh answer repeats `refresh_token_expires_in` (default yes).
    refresh_lifetime_on_refresh: bool,
    /// Answer every grant with the access token issued last at the same stage, as a provider
    /// whose tokens are deterministic JWTs does within a second (or Meta's self-refresh).
    repeat_access_tokens: bool,
    /// mastodon: the instance is 4.3+ (OAuth metadata, PKCE required) rather than older.
    modern_instance: bool,
    /// mastodon: every app registered (`POST /api/v1/apps`), in order.
    registrations: Vec<FakeRegistration>,
}

/// An app registered on the fake Mastodon instance.
#[derive(Debug, Clone)]
pub struct FakeRegistration {
    pub client_name: String,
    pub website: Option<String>,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub client_id: String,
}

/// A running fake provider. The server stops when this is dropped.
pub struct FakeProvider {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    pub kind: Kind,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeProvider {
    /// Starts a fake of `kind` for the app `client_id` / `client_secret`.
    pub async fn start(kind: Kind, client_id: &str, client_secret: &str) -> FakeProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake provider: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake provider: local addr");
        let base_url = format!("http://{addr}");
        let state = Arc::new(Mutex::new(State {
            kind,
            base_url: base_url.clone(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            account: kind.default_account(),
            fault: Fault::None,
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            issued_codes: Vec::new(),
            issued_access: Vec::new(),
            issued_refresh: Vec::new(),
            revoked: Vec::new(),
            token_requests: 0,
            requests: Vec::new(),
            pages: Vec::new(),
            organizations: Vec::new(),
            channels: Vec::new(),
            business_accounts: Vec::new(),
            declined_scopes: Vec::new(),
            issued_together: HashMap::new(),
            refresh_lifetime: DEFAULT_REFRESH_LIFETIME,
            issue_refresh_tokens: true,
            clock: None,
            repeat_access_tokens: false,
            refresh_lifetime_on_refresh: true,
            modern_instance: true,
            registrations: Vec::new(),
        }));
        let shared = state.clone();
        let endpoint = poem::endpoint::make(move |req: Request| {
            let shared = shared.clone();
            async move { handle(shared, req).await }
        });
        let acceptor = TcpAcceptor::from_tokio(listener).expect("fake provider: acceptor");
        let server = tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(endpoint).await;
        });
        FakeProvider {
            base_url,
            kind,
            state,
            server,
        }
    }

    /// Like [`FakeProvider::start`], with the provider named as Dravo spells it.
    /// Panics on an unknown name.
    pub async fn start_named(provider: &str, client_id: &str, client_secret: &str) -> FakeProvider {
        let kind = Kind::from_name(provider)
            .unwrap_or_else(|| panic!("fake provider: unknown provider `{provider}`"));
        FakeProvider::start(kind, client_id, client_secret).await
    }

    /// `(authorize_url, token_url, api_base)` for `providers.<p>` in Dravo's config.
    pub fn config_urls(&self) -> (String, String, String) {
        (self.authorize_url(), self.token_url(), self.api_base())
    }

    pub fn authorize_url(&self) -> String {
        format!("{}/authorize", self.base_url)
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url)
    }

    pub fn api_base(&self) -> String {
        self.base_url.clone()
    }

    /// `base_url` + `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Who the identity endpoint answers for from now on. For instagram a numeric id is sent
    /// as a JSON number (as long as it fits in a u64).
    pub fn set_account(&self, id: &str, username: Option<&str>, display_name: Option<&str>) {
        self.lock().account = Account {
            id: id.into(),
            username: username.map(Into::into),
            display_name: display_name.map(Into::into),
        };
    }

    /// The provider account id the identity endpoint currently answers.
    pub fn account_id(&self) -> String {
        self.lock().account.id.clone()
    }

    /// facebook: the Pages the user manages, as `(id, name, tasks)`; each keeps its token
    /// across calls (a new one for a Page not listed before).
    pub fn set_pages(&self, pages: &[(&str, &str, &[&str])]) {
        let mut st = lock(&self.state);
        let old = std::mem::take(&mut st.pages);
        st.pages = pages
            .iter()
            .map(|(id, name, tasks)| FakePage {
                id: (*id).into(),
                name: (*name).into(),
                tasks: tasks.iter().map(|t| (*t).to_owned()).collect(),
                token: old
                    .iter()
                    .find(|p| p.id == *id)
                    .map(|p| p.token.clone())
                    .unwrap_or_else(|| format!("EAAPage{id}{}", random_string(24))),
            })
            .collect();
    }

    /// facebook: the Pages as the fake serves them.
    pub fn pages(&self) -> Vec<FakePage> {
        lock(&self.state).pages.clone()
    }

    /// linkedin: the organizations the member administers, as `(id, name, vanity name)`.
    pub fn set_organizations(&self, organizations: &[(u64, &str, &str)]) {
        lock(&self.state).organizations = organizations
            .iter()
            .map(|(id, name, vanity)| FakeOrganization {
                id: *id,
                name: (*name).into(),
                vanity_name: (*vanity).into(),
            })
            .collect();
    }

    /// youtube: the channels the Google account manages, as `(id, title, custom URL)`.
    pub fn set_channels(&self, channels: &[(&str, &str, &str)]) {
        lock(&self.state).channels = channels
            .iter()
            .map(|(id, title, custom_url)| FakeChannel {
                id: (*id).into(),
                title: (*title).into(),
                custom_url: (*custom_url).into(),
            })
            .collect();
    }

    /// google_business: the business accounts, each with its locations as `(id, title)`.
    pub fn set_business_accounts(&self, accounts: &[(&str, &[(&str, &str)])]) {
        lock(&self.state).business_accounts = accounts
            .iter()
            .map(|(id, locations)| FakeBusinessAccount {
                id: (*id).into(),
                locations: locations
                    .iter()
                    .map(|(l, t)| ((*l).into(), (*t).into()))
                    .collect(),
            })
            .collect();
    }

    /// Scopes the user unticks on the consent screen from now on: a grant leaves them out.
    pub fn decline_scopes(&self, scopes: &[&str]) {
        lock(&self.state).declined_scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
    }

    pub fn set_fault(&self, fault: Fault) {
        self.lock().fault = fault;
    }

    /// How many calls reached a token endpoint (code exchanges, long-lived exchanges,
    /// refreshes), failed ones included.
    pub fn token_requests(&self) -> usize {
        self.lock().token_requests
    }

    /// Every access token issued, oldest first (short- and long-lived ones alike).
    pub fn issued_access_tokens(&self) -> Vec<String> {
        self.lock().issued_access.clone()
    }

    /// Every refresh token issued, oldest first.
    pub fn issued_refresh_tokens(&self) -> Vec<String> {
        self.lock().issued_refresh.clone()
    }

    /// Every authorization code issued by `/authorize`, oldest first.
    pub fn issued_codes(&self) -> Vec<String> {
        self.lock().issued_codes.clone()
    }

    /// Tokens revoked through a revoke endpoint, in order.
    pub fn revoked_tokens(&self) -> Vec<String> {
        self.lock().revoked.clone()
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Requests received on `path`, in arrival order.
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Whether `token` is an access token the fake issued and still accepts.
    /// The refresh token issued in the same answer as `access_token`.
    pub fn refresh_token_issued_with(&self, access_token: &str) -> Option<String> {
        self.lock().issued_together.get(access_token).cloned()
    }

    /// Whether the fake would still accept `token` in a refresh.
    pub fn refresh_token_valid(&self, token: &str) -> bool {
        self.lock().refresh.get(token).is_some_and(|r| r.valid)
    }

    pub fn access_token_valid(&self, token: &str) -> bool {
        self.lock().access.get(token).is_some_and(|a| a.valid)
    }

    /// Makes every refresh token issued so far fail (`invalid_grant`), as if it expired or the
    /// user revoked the app.
    pub fn invalidate_refresh_tokens(&self) {
        for r in self.lock().refresh.values_mut() {
            r.valid = false;
        }
    }

    /// The refresh-token lifetime announced from now on, in seconds (default 365 days):
    /// linkedin's `refresh_token_expires_in` at the code exchange (a refresh then announces
    /// what is left of the token's lifetime, as LinkedIn does: refreshing does not extend it)
    /// and tiktok's `refresh_expires_in` on every answer.
    pub fn set_refresh_lifetime(&self, seconds: u64) {
        self.lock().refresh_lifetime = seconds;
    }

    /// linkedin: whether the code exchange issues a refresh token (default yes). LinkedIn
    /// issues them only to apps it approved for programmatic refresh; without one the answer
    /// has neither `refresh_token` nor `refresh_token_expires_in`.
    pub fn set_issue_refresh_tokens(&self, issue: bool) {
        self.lock().issue_refresh_tokens = issue;
    }

    /// Answers every grant from now on with the very access token it issued last (at the
    /// same stage): the refresh is real (refresh tokens still rotate and a reused one is
    /// refused), only the access token's string stays the same.
    pub fn repeat_access_tokens(&self, repeat: bool) {
        self.lock().repeat_access_tokens = repeat;
    }

    /// linkedin: whether a refresh answer repeats `refresh_token_expires_in` (default yes);
    /// without it the answer names the same refresh token and says nothing of its life.
    pub fn set_refresh_lifetime_on_refresh(&self, repeat: bool) {
        self.lock().refresh_lifetime_on_refresh = repeat;
    }

    /// Counts refresh-token ages on the test's clock (unix seconds) instead of real time, so
    /// that the lifetime left that linkedin announces follows a clock the test moves.
    pub fn use_clock(&self, now: impl Fn() -> i64 + Send + 'static) {
        self.lock().clock = Some(Box::new(now));
    }

    /// mastodon: whether the instance is 4.3+ (OAuth metadata, PKCE) from now on (default
    /// yes); an older one has only the classic endpoints and refuses a `code_challenge`.
    pub fn set_modern_instance(&self, modern: bool) {
        self.lock().modern_instance = modern;
    }

    /// mastodon: every app registered on the instance, in order.
    pub fn registrations(&self) -> Vec<FakeRegistration> {
        self.lock().registrations.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Request plumbing

struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: &str) -> Params {
        Params(
            url::form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Like `get`, but an empty value counts as missing.
    fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    fn duplicated(&self) -> Option<&str> {
        self.0.iter().enumerate().find_map(|(i, (k, _))| {
            self.0[..i]
                .iter()
                .any(|(earlier, _)| earlier == k)
                .then_some(k.as_str())
        })
    }
}

struct Ctx {
    method: Method,
    path: String,
    query: Params,
    form: Params,
    headers: HeaderMap,
    is_form: bool,
}

impl Ctx {
    fn bearer(&self) -> Option<String> {
        let value = self.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned())
            .filter(|t| !t.is_empty())
    }

    /// Bearer header, else the `access_token` query parameter (Graph APIs accept both).
    fn bearer_or_query(&self) -> Option<String> {
        self.bearer()
            .or_else(|| self.query.non_empty("access_token").map(str::to_owned))
    }

    fn basic(&self) -> Option<(String, String)> {
        let value = self.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, encoded) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
        let (user, pass) = decoded.split_once(':')?;
        Some((user.to_owned(), pass.to_owned()))
    }

    fn has_basic(&self) -> bool {
        self.headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.len() >= 6 && v[..6].eq_ignore_ascii_case("basic "))
    }
}

async fn handle(state: Arc<Mutex<State>>, mut req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let raw_query = req.uri().query().unwrap_or("").to_owned();
    let headers = req.headers().clone();
    let body = req.take_body().into_vec().await.unwrap_or_default();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_form = content_type.as_deref().is_some_and(|ct| {
        ct.split(';').next().is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    let query = Params::parse(&raw_query);
    let form = if is_form {
        Params::parse(&String::from_utf8_lossy(&body))
    } else {
        Params(Vec::new())
    };
    let recorded = RecordedRequest {
        method: method.to_string(),
        path: path.clone(),
        query: query.0.clone(),
        form: form.0.clone(),
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        content_type,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let (kind, fault, is_token) = {
        let mut st = lock(&state);
        st.requests.push(recorded);
        let is_token = st.kind.fake().is_token_path(&path);
        if is_token {
            st.token_requests += 1;
        }
        (st.kind, st.fault, is_token)
    };
    if is_token {
        match fault {
            Fault::TokenDelay(delay) => tokio::time::sleep(delay).await,
            Fault::TokenStatus(status) => return forced_token_error(kind, &path, status, false),
            Fault::TokenErrorWith200 => return forced_token_error(kind, &path, 400, true),
            Fault::TokenMalformedJson => {
                return Response::builder()
                    .status(StatusCode::OK)
                    .content_type("application/json")
                    .body("{not json");
            }
            _ => {}
        }
    }
    let ctx = Ctx {
        method,
        path,
        query,
        form,
        headers,
        is_form,
    };
    let mut st = lock(&state);
    route(&mut st, &ctx)
}

fn route(st: &mut State, c: &Ctx) -> Response {
    let kind = st.kind;
    // `/authorize` is the browser's; every other call is Dravo's, and checked as the
    // provider checks calls (Reddit's user agents).
    if c.path != "/authorize"
        && let Some(refused) = kind.fake().refuse(c)
    {
        return refused;
    }
    let answer = match c.path.as_str() {
        "/authorize" => Some(authorize(st, c)),
        "/token" => Some(token(st, c)),
        _ => kind.fake().route(st, c),
    };
    answer.unwrap_or_else(|| {
        json_response(
            404,
            &json!({"error": "not_found", "error_description":
                format!("fake {kind} provider has no route {} {}", c.method, c.path)}),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// One fake per provider

/// Every provider's fake, keyed by the provider's id: the one list of them.
static REGISTRY: &[&dyn ProviderFake] = &[
    &x::X,
    &linkedin::Linkedin,
    &facebook::Facebook,
    &instagram::Instagram,
    &tiktok::Tiktok,
    &threads::Threads,
    &youtube::Youtube,
    &google_business::GoogleBusiness,
    &pinterest::Pinterest,
    &reddit::Reddit,
    &mastodon::Mastodon,
];

/// The fake of the provider Dravo calls `id`, if there is one.
fn fake_for(id: &str) -> Option<&'static dyn ProviderFake> {
    REGISTRY.iter().copied().find(|f| f.id() == id)
}

/// The ids of the providers that have a fake, in [`REGISTRY`]'s order.
pub fn faked_ids() -> Vec<&'static str> {
    REGISTRY.iter().map(|f| f.id()).collect()
}

/// What one provider's fake does differently from the others. The defaults are plain OAuth 2:
/// `client_id`, comma-separated scopes, no PKCE, `/token` alone, `{"error",
/// "error_description"}` errors, a bearer token for the API, and a revoke that takes the
/// client id and secret in its form body.
trait ProviderFake: Sync {
    /// The provider's name as Dravo spells it (`dravo::providers`' id).
    fn id(&self) -> &'static str;

    /// The id and username of the user a fresh fake signs in.
    fn default_account(&self) -> (&'static str, Option<&'static str>);

    /// The name of the client id parameter.
    fn client_id_param(&self) -> &'static str {
        "client_id"
    }

    /// How the provider joins scopes.
    fn scope_separator(&self) -> char {
        ','
    }

    /// Whether the authorize step requires PKCE (S256).
    fn uses_pkce(&self) -> bool {
        false
    }

    /// The redirect `/authorize` sends when the user refuses, as the provider words it.
    fn denial(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("error", "access_denied"),
            ("error_description", "The user denied the request."),
        ]
    }

    /// Puts the code (`code_value`: the code, with `#_` when the fault asks) and the state on
    /// the redirect of a consent.
    fn code_redirect(
        &self,
        redirect: &mut Url,
        code_value: &str,
        state: &str,
        _hash_in_query: bool,
    ) {
        let mut pairs = redirect.query_pairs_mut();
        pairs.append_pair("code", code_value);
        pairs.append_pair("state", state);
    }

    /// The provider's own requirements of the consent URL beyond the common ones (Reddit's
    /// `duration=permanent`), as the sentence `/authorize` answers 400 with.
    fn check_authorize(&self, _st: &State, _q: &Params) -> Result<(), String> {
        Ok(())
    }

    /// Whether the authorize step requires PKCE now (a Mastodon instance does from 4.3).
    fn uses_pkce_now(&self, _st: &State) -> bool {
        self.uses_pkce()
    }

    /// An answer that refuses a call (any path but `/authorize`) before it is routed, as the
    /// provider refuses calls whatever their path (Reddit, a missing or generic user agent).
    fn refuse(&self, _c: &Ctx) -> Option<Response> {
        None
    }

    /// Whether `path` is a token endpoint (faults apply and calls are counted).
    fn is_token_path(&self, path: &str) -> bool {
        path == "/token"
    }

    /// How the token endpoint at `path` shapes its errors.
    fn token_shape(&self, _path: &str) -> Shape {
        Shape::OAuth
    }

    /// The `error` of a failed client authentication at the token endpoint.
    fn invalid_client(&self) -> &'static str {
        "invalid_client"
    }

    /// `/token`: every grant the provider knows, its checks included.
    fn token(&self, st: &mut State, c: &Ctx) -> Result<Value, TokErr>;

    /// Any path but `/authorize` and `/token`; `None` for a path the provider does not have.
    fn route(&self, st: &mut State, c: &Ctx) -> Option<Response>;

    /// The user's access token on an API call.
    fn user_token(&self, c: &Ctx) -> Option<String> {
        c.bearer()
    }

    /// The body of an API error (identity, lists), as the provider shapes it.
    fn api_error(&self, status: u16, message: &str) -> Value;

    /// The identity endpoint's answer for a valid token `record`.
    fn me(&self, st: &State, c: &Ctx, record: &AccessToken) -> Response;

    /// Whether a revoke call authenticated the client.
    fn revoke_authenticated(&self, st: &State, c: &Ctx) -> bool {
        let id = c.form.get(self.client_id_param()).unwrap_or("");
        st.secret_matches(id, c.form.get("client_secret").unwrap_or(""))
    }

    /// The token a revoke call names, after its checks; else the error to answer.
    fn revoked_token(&self, st: &State, c: &Ctx) -> Result<String, Box<Response>> {
        let shape = self.token_shape(&c.path);
        require_post_form(c).map_err(|e| Box::new(render_token(shape, false, Err(e))))?;
        if !self.revoke_authenticated(st, c) {
            let e = terr(401, "invalid_client", "Client authentication failed");
            return Err(Box::new(render_token(shape, false, Err(e))));
        }
        match c.form.non_empty("token") {
            Some(token) => Ok(token.to_owned()),
            None => Err(Box::new(render_token(shape, false, Err(missing("token"))))),
        }
    }

    /// The body of a successful revoke.
    fn revoked_body(&self) -> Value {
        json!({})
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

fn json_response(status: u16, body: &Value) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("application/json")
        .body(body.to_string())
}

fn random_string(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn log_id() -> String {
    random_string(32).to_uppercase()
}

/// How a provider's token endpoint shapes its errors.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// x, linkedin: `{"error","error_description"}`.
    OAuth,
    /// tiktok: `{"error","error_description","log_id"}`.
    Tiktok,
    /// facebook, graph.instagram.com: `{"error":{"message","type","code","fbtrace_id"}}`.
    Graph,
    /// api.instagram.com: `{"error_type","code","error_message"}`.
    InstagramApi,
    /// pinterest: `{"code","message"}` (code 2 for failed authentication).
    Pinterest,
    /// reddit: OAuth's, but a failed client authentication is `{"message","error": 401}`.
    Reddit,
}

#[derive(Debug)]
struct TokErr {
    status: u16,
    error: &'static str,
    message: String,
    graph_code: u32,
}

fn terr(status: u16, error: &'static str, message: impl Into<String>) -> TokErr {
    TokErr {
        status,
        error,
        message: message.into(),
        graph_code: 100,
    }
}

impl TokErr {
    fn graph(mut self, code: u32) -> TokErr {
        self.graph_code = code;
        self
    }
}

fn error_body(shape: Shape, e: &TokErr) -> Value {
    match shape {
        Shape::OAuth => json!({"error": e.error, "error_description": e.message}),
        Shape::Tiktok => {
            json!({"error": e.error, "error_description": e.message, "log_id": log_id()})
        }
        Shape::Graph => json!({"error": {
            "message": e.message,
            "type": "OAuthException",
            "code": e.graph_code,
            "fbtrace_id": random_string(11),
        }}),
        Shape::InstagramApi => json!({
            "error_type": "OAuthException",
            "code": 400,
            "error_message": e.message,
        }),
        Shape::Reddit if e.error == "invalid_client" => {
            json!({"message": e.message, "error": e.status})
        }
        Shape::Reddit => json!({"error": e.error, "error_description": e.message}),
        Shape::Pinterest => json!({
            "code": if e.error == "invalid_client" { 2 } else { 1 },
            "message": e.message,
        }),
    }
}

fn render_token(shape: Shape, force_200: bool, result: Result<Value, TokErr>) -> Response {
    match result {
        Ok(body) => json_response(200, &body),
        Err(e) => json_response(
            if force_200 { 200 } else { e.status },
            &error_body(shape, &e),
        ),
    }
}

fn forced_token_error(kind: Kind, path: &str, status: u16, force_200: bool) -> Response {
    let e = match status {
        400 => terr(
            400,
            "invalid_grant",
            "fake: forced failure (the grant is invalid, expired or revoked)",
        )
        .graph(190),
        401 => terr(
            401,
            kind.fake().invalid_client(),
            "fake: forced failure (client authentication failed)",
        )
        .graph(1),
        429 => terr(
            429,
            "rate_limit_exceeded",
            "fake: forced failure (rate limit reached)",
        )
        .graph(4),
        s if s >= 500 => terr(
            s,
            "server_error",
            "fake: forced failure (temporarily unavailable, retry later)",
        )
        .graph(2),
        s => terr(s, "invalid_request", "fake: forced failure").graph(1),
    };
    render_token(kind.fake().token_shape(path), force_200, Err(e))
}

/// An API error (identity, lists) as `kind` shapes it.
fn identity_error(kind: Kind, status: u16, message: &str) -> Response {
    json_response(status, &kind.fake().api_error(status, message))
}

// ---------------------------------------------------------------------------------------------
// The browser step

fn authorize(st: &mut State, c: &Ctx) -> Response {
    if c.method != Method::GET {
        return json_response(
            405,
            &json!({"error": "invalid_request", "error_description": "authorize is a GET"}),
        );
    }
    let (mut redirect, state, grant) = match check_authorize(st, &c.query) {
        Ok(ok) => ok,
        Err(message) => {
            return json_response(
                400,
                &json!({"error": "invalid_request", "error_description": message}),
            );
        }
    };
    let kind = st.kind;
    if st.fault == Fault::DenyConsent {
        {
            let mut pairs = redirect.query_pairs_mut();
            for (name, value) in kind.fake().denial() {
                pairs.append_pair(name, value);
            }
            pairs.append_pair("state", &state);
        }
        return redirect_to(redirect.as_str());
    }
    let code = random_string(40);
    st.issued_codes.push(code.clone());
    st.codes.insert(code.clone(), grant);
    let hash_in_query = st.fault == Fault::CodeWithHashSuffixInQuery;
    let code_value = if hash_in_query {
        format!("{code}#_")
    } else {
        code
    };
    kind.fake()
        .code_redirect(&mut redirect, &code_value, &state, hash_in_query);
    redirect_to(redirect.as_str())
}

fn redirect_to(location: &str) -> Response {
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, location)
        .finish()
}

fn check_authorize(st: &State, q: &Params) -> Result<(Url, String, CodeGrant), String> {
    let kind = st.kind;
    if let Some(name) = q.duplicated() {
        return Err(format!("parameter `{name}` was given more than once"));
    }
    match q.get("response_type") {
        Some("code") => {}
        other => return Err(format!("response_type must be `code`, got {other:?}")),
    }
    let id_param = kind.client_id_param();
    let client_id = match q.non_empty(id_param) {
        Some(id) => id,
        None if id_param != "client_id" && q.has("client_id") => {
            return Err(format!(
                "{kind} expects the app id as `{id_param}`, not `client_id`"
            ));
        }
        None => return Err(format!("missing `{id_param}`")),
    };
    if client_id != st.client_id {
        return Err(format!("unknown {id_param} `{client_id}`"));
    }
    let redirect_uri = q
        .non_empty("redirect_uri")
        .ok_or("missing `redirect_uri`")?;
    let redirect = Url::parse(redirect_uri)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.fragment().is_none())
        .ok_or_else(|| format!("redirect_uri `{redirect_uri}` is not an absolute http(s) URL"))?;
    let state = q.non_empty("state").ok_or("missing `state`")?;
    let scope = q.non_empty("scope").ok_or("missing `scope`")?;
    let mut scopes = parse_scopes(kind, scope)?;
    scopes.retain(|s| !st.declined_scopes.contains(s));
    let code_challenge = if kind.fake().uses_pkce_now(st) {
        let challenge = q
            .non_empty("code_challenge")
            .ok_or_else(|| format!("missing `code_challenge` ({kind} requires PKCE)"))?;
        if q.get("code_challenge_method") != Some("S256") {
            return Err(format!(
                "code_challenge_method must be `S256`, got {:?}",
                q.get("code_challenge_method")
            ));
        }
        if challenge.len() != 43 || URL_SAFE_NO_PAD.decode(challenge).is_err() {
            return Err("code_challenge is not BASE64URL(SHA256(verifier)) without padding".into());
        }
        Some(challenge.to_owned())
    } else {
        if q.has("code_challenge") || q.has("code_challenge_method") {
            return Err(format!(
                "{kind} does not use PKCE here: unexpected code_challenge"
            ));
        }
        None
    };
    kind.fake().check_authorize(st, q)?;
    let grant = CodeGrant {
        redirect_uri: redirect_uri.to_owned(),
        client_id: client_id.to_owned(),
        scopes,
        code_challenge,
        used: false,
        authorize_params: q.0.clone(),
    };
    Ok((redirect, state.to_owned(), grant))
}

fn parse_scopes(kind: Kind, raw: &str) -> Result<Vec<String>, String> {
    let sep = kind.scope_separator();
    let (name, wrong, wrong_name) = if sep == ' ' {
        ("space", ',', "comma")
    } else {
        ("comma", ' ', "space")
    };
    if raw.contains(wrong) {
        return Err(format!(
            "{kind} scopes are {name}-separated, got a {wrong_name}-separated list `{raw}`"
        ));
    }
    let scopes: Vec<String> = raw.split(sep).map(str::to_owned).collect();
    if scopes.iter().any(String::is_empty) {
        return Err(format!("empty scope in `{raw}`"));
    }
    Ok(scopes)
}

// ---------------------------------------------------------------------------------------------
// Token endpoints

enum CodeProblem {
    Unknown,
    Used,
    WrongClient,
    WrongRedirect,
}

impl State {
    fn take_code(
        &mut self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
    ) -> Result<CodeGrant, CodeProblem> {
        let grant = self.codes.get_mut(code).ok_or(CodeProblem::Unknown)?;
        if grant.used {
            return Err(CodeProblem::Used);
        }
        grant.used = true;
        if grant.client_id != client_id {
            return Err(CodeProblem::WrongClient);
        }
        if grant.redirect_uri != redirect_uri {
            return Err(CodeProblem::WrongRedirect);
        }
        Ok(grant.clone())
    }

    fn new_access(&mut self, stage: Stage, scopes: Vec<String>) -> String {
        let prefix = match stage {
            Stage::Normal => "at",
            Stage::Short => "short",
            Stage::Long => "long",
        };
        let repeated = self
            .repeat_access_tokens
            .then(|| {
                self.issued_access
                    .iter()
                    .rev()
                    .find(|t| self.access.get(*t).is_some_and(|a| a.stage == stage))
                    .cloned()
            })
            .flatten();
        let token =
            repeated.unwrap_or_else(|| format!("{}-{prefix}-{}", self.kind, random_string(32)));
        self.access.insert(
            token.clone(),
            AccessToken {
                stage,
                scopes,
                valid: true,
            },
        );
        self.issued_access.push(token.clone());
        token
    }

    fn new_refresh(&mut self, scopes: Vec<String>) -> String {
        let token = format!("{}-rt-{}", self.kind, random_string(32));
        let issued_unix = self.clock.as_ref().map(|now| now());
        self.refresh.insert(
            token.clone(),
            RefreshToken {
                scopes,
                valid: true,
                issued: Instant::now(),
                issued_unix,
                lifetime: self.refresh_lifetime,
            },
        );
        self.issued_refresh.push(token.clone());
        // Every answer issues its access token first, then its refresh token.
        if let Some(access) = self.issued_access.last() {
            self.issued_together.insert(access.clone(), token.clone());
        }
        token
    }

    /// Seconds left of a refresh token's lifetime, on the test's clock if it set one.
    fn refresh_left(&self, r: &RefreshToken) -> u64 {
        let age = match (&self.clock, r.issued_unix) {
            (Some(now), Some(issued)) => u64::try_from(now() - issued).unwrap_or(0),
            _ => r.issued.elapsed().as_secs(),
        };
        r.lifetime.saturating_sub(age)
    }

    /// The scopes of a valid refresh token; with `rotate` it stops working.
    fn use_refresh(&mut self, token: &str, rotate: bool) -> Option<RefreshToken> {
        let r = self.refresh.get_mut(token).filter(|r| r.valid)?;
        let found = r.clone();
        if rotate {
            r.valid = false;
        }
        Some(found)
    }

    /// The record of an access token the fake issued and still accepts.
    fn access_token(&self, token: &str) -> Option<&AccessToken> {
        self.access.get(token).filter(|a| a.valid)
    }

    fn secret_matches(&self, id: &str, secret: &str) -> bool {
        id == self.client_id && secret == self.client_secret
    }
}

fn require_post_form(c: &Ctx) -> Result<(), TokErr> {
    if c.method != Method::POST {
        return Err(terr(
            405,
            "invalid_request",
            format!("the token endpoint expects POST, got {}", c.method),
        ));
    }
    if !c.is_form {
        return Err(terr(
            400,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        ));
    }
    Ok(())
}

fn missing(name: &str) -> TokErr {
    terr(
        400,
        "invalid_request",
        format!("Missing required parameter [{name}]."),
    )
}

fn token(st: &mut State, c: &Ctx) -> Response {
    let fake = st.kind.fake();
    let result = fake.token(st, c);
    render_token(fake.token_shape(&c.path), false, result)
}

// ---------------------------------------------------------------------------------------------
// Identity and API calls

/// The identity endpoint: the checks every provider makes, then the provider's answer.
fn identity(st: &mut State, c: &Ctx) -> Response {
    let kind = st.kind;
    if let Fault::MeStatus(status) = st.fault {
        return identity_error(kind, status, "fake: forced identity failure");
    }
    if c.method != Method::GET {
        return identity_error(kind, 405, "the identity endpoint is a GET");
    }
    let st: &State = st;
    let token = kind.fake().user_token(c);
    let Some(record) = token.as_deref().and_then(|t| st.access.get(t)) else {
        return identity_error(kind, 401, "Invalid or missing access token");
    };
    if !record.valid {
        return identity_error(kind, 401, "The access token is invalid, expired or revoked");
    }
    kind.fake().me(st, c, record)
}

/// The user's token, checked as the identity endpoint checks it, with `scope` granted.
fn api_token<'a>(st: &'a State, c: &Ctx, scope: &[&str]) -> Result<&'a AccessToken, Box<Response>> {
    let kind = st.kind;
    let token = kind.fake().user_token(c);
    let Some(record) = token.as_deref().and_then(|t| st.access.get(t)) else {
        return Err(Box::new(identity_error(
            kind,
            401,
            "Invalid or missing access token",
        )));
    };
    if !record.valid {
        return Err(Box::new(identity_error(
            kind,
            401,
            "The access token is invalid, expired or revoked",
        )));
    }
    if !record.scopes.iter().any(|s| scope.contains(&s.as_str())) {
        return Err(Box::new(identity_error(
            kind,
            403,
            &format!("this call needs one of the scopes {scope:?}"),
        )));
    }
    Ok(record)
}

// ---------------------------------------------------------------------------------------------
// Revoke (paths are this fake's guess at where Dravo derives them; see the module docs)

fn revoke(st: &mut State, c: &Ctx) -> Response {
    if let Fault::RevokeStatus(status) = st.fault {
        return json_response(
            status,
            &json!({"error": "server_error", "error_description": "fake: revoke is down"}),
        );
    }
    let fake = st.kind.fake();
    let token = match fake.revoked_token(st, c) {
        Ok(token) => token,
        Err(response) => return *response,
    };
    if let Some(a) = st.access.get_mut(&token) {
        a.valid = false;
    }
    if let Some(r) = st.refresh.get_mut(&token) {
        r.valid = false;
    }
    st.revoked.push(token);
    json_response(200, &fake.revoked_body())
}
