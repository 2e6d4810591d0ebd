//! A fake OAuth provider for tests: a real HTTP server on 127.0.0.1 (port 0) that behaves like
//! one of x, linkedin, facebook, instagram or tiktok, and checks what the real provider checks
//! (client authentication, the PKCE verifier, the redirect URI, code reuse, refresh-token
//! rotation).
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

/// The default instagram user id: larger than 2^53, sent as a JSON number, so that parsing it
/// through an f64 changes it.
pub const DEFAULT_INSTAGRAM_USER_ID: &str = "17841400000000001234";

/// Which provider the fake behaves like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    X,
    Linkedin,
    Facebook,
    Instagram,
    Tiktok,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::X,
        Kind::Linkedin,
        Kind::Facebook,
        Kind::Instagram,
        Kind::Tiktok,
    ];

    /// The provider name as Dravo spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::X => "x",
            Kind::Linkedin => "linkedin",
            Kind::Facebook => "facebook",
            Kind::Instagram => "instagram",
            Kind::Tiktok => "tiktok",
        }
    }

    /// The kind for a provider name (`"x"`, `"linkedin"`, ...).
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The name of the client id parameter: `client_key` for tiktok, `client_id` otherwise.
    pub fn client_id_param(self) -> &'static str {
        match self {
            Kind::Tiktok => "client_key",
            _ => "client_id",
        }
    }

    /// How the provider joins scopes: space for x and linkedin, comma for the others.
    pub fn scope_separator(self) -> char {
        match self {
            Kind::X | Kind::Linkedin => ' ',
            _ => ',',
        }
    }

    /// Whether the authorize step requires PKCE (S256).
    pub fn uses_pkce(self) -> bool {
        self == Kind::X
    }

    fn default_account(self) -> Account {
        let (id, username) = match self {
            Kind::X => ("1234567890", Some("fakeuser")),
            Kind::Linkedin => ("fAkEsUb123", None),
            Kind::Facebook => ("1029384756473829", None),
            Kind::Instagram => (DEFAULT_INSTAGRAM_USER_ID, Some("fakeuser")),
            Kind::Tiktok => ("-000fAkE0pEnId-1234567890abcdef", Some("fakeuser")),
        };
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
            issued_together: HashMap::new(),
            refresh_lifetime: DEFAULT_REFRESH_LIFETIME,
            issue_refresh_tokens: true,
            clock: None,
            repeat_access_tokens: false,
            refresh_lifetime_on_refresh: true,
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
    };
    let (kind, fault, is_token) = {
        let mut st = lock(&state);
        st.requests.push(recorded);
        let is_token = is_token_path(st.kind, &path);
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

fn is_token_path(kind: Kind, path: &str) -> bool {
    path == "/token"
        || (kind == Kind::Instagram && (path == "/access_token" || path == "/refresh_access_token"))
}

/// `/v25.0/me` → `Some("/me")`.
fn strip_graph_version(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v")?;
    let slash = rest.find('/')?;
    let (version, tail) = rest.split_at(slash);
    let (major, minor) = version.split_once('.')?;
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (numeric(major) && numeric(minor)).then_some(tail)
}

fn route(st: &mut State, c: &Ctx) -> Response {
    let kind = st.kind;
    let graph_tail = if kind == Kind::Facebook {
        strip_graph_version(&c.path)
    } else {
        None
    };
    match (kind, c.path.as_str(), graph_tail) {
        (_, "/authorize", _) => authorize(st, c),
        (_, "/token", _) => token(st, c),
        (Kind::Instagram, "/access_token", _) => {
            render_token(Shape::Graph, false, instagram_exchange(st, c))
        }
        (Kind::Instagram, "/refresh_access_token", _) => {
            render_token(Shape::Graph, false, instagram_refresh(st, c))
        }
        (Kind::X, "/2/users/me", _)
        | (Kind::Linkedin, "/v2/userinfo", _)
        | (Kind::Facebook, _, Some("/me"))
        | (Kind::Instagram, "/me", _)
        | (Kind::Tiktok, "/v2/user/info/", _) => identity(st, c),
        (Kind::X, "/2/oauth2/revoke", _)
        | (Kind::Linkedin, "/revoke", _)
        | (Kind::Tiktok, "/v2/oauth/revoke/", _)
        | (Kind::Facebook, _, Some("/me/permissions")) => revoke(st, c),
        (Kind::Facebook, _, Some("/me/accounts")) => facebook_pages(st, c),
        (Kind::Linkedin, "/rest/organizationAcls", _) => linkedin_organization_acls(st, c),
        (Kind::Linkedin, path, _) if path.starts_with("/rest/organizations/") => {
            linkedin_organization(st, c, &path["/rest/organizations/".len()..])
        }
        _ => json_response(
            404,
            &json!({"error": "not_found", "error_description":
                format!("fake {kind} provider has no route {} {}", c.method, c.path)}),
        ),
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

/// The instagram user id as a JSON number when it fits in a u64, else a string.
fn instagram_user_id(id: &str) -> Value {
    id.parse::<u64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::String(id.into()))
}

/// An app-scoped id distinct from (but stable for) the user id, as Graph's `id` field.
fn app_scoped_id(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    let mut eight = [0u8; 8];
    eight.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(eight) % 9_000_000_000_000_000 + 1_000_000_000_000_000).to_string()
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
}

fn token_shape(kind: Kind, path: &str) -> Shape {
    match kind {
        Kind::X | Kind::Linkedin => Shape::OAuth,
        Kind::Tiktok => Shape::Tiktok,
        Kind::Facebook => Shape::Graph,
        Kind::Instagram if path == "/token" => Shape::InstagramApi,
        Kind::Instagram => Shape::Graph,
    }
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
            if kind == Kind::X {
                "unauthorized_client"
            } else {
                "invalid_client"
            },
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
    render_token(token_shape(kind, path), force_200, Err(e))
}

/// The identity endpoint's error shape.
fn identity_error(kind: Kind, status: u16, message: &str) -> Response {
    let body = match kind {
        Kind::X => {
            let title = match status {
                401 => "Unauthorized",
                403 => "Forbidden",
                429 => "Too Many Requests",
                s if s >= 500 => "Service Unavailable",
                _ => "Invalid Request",
            };
            json!({"title": title, "type": "about:blank", "status": status, "detail": message})
        }
        Kind::Linkedin => json!({
            "serviceErrorCode": if status == 401 { 65600 } else { 100 },
            "message": message,
            "status": status,
        }),
        Kind::Facebook | Kind::Instagram => json!({"error": {
            "message": message,
            "type": "OAuthException",
            "code": match status { 429 => 4, s if s >= 500 => 2, 400 | 401 | 403 => 190, _ => 1 },
            "fbtrace_id": random_string(11),
        }}),
        Kind::Tiktok => json!({
            "data": {},
            "error": {
                "code": match status {
                    401 => "access_token_invalid",
                    403 => "scope_not_authorized",
                    429 => "rate_limit_exceeded",
                    s if s >= 500 => "internal_error",
                    _ => "invalid_params",
                },
                "message": message,
                "log_id": log_id(),
            },
        }),
    };
    json_response(status, &body)
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
            match kind {
                Kind::X | Kind::Tiktok => {
                    pairs.append_pair("error", "access_denied");
                    pairs.append_pair("error_description", "The user denied the request.");
                }
                Kind::Linkedin => {
                    pairs.append_pair("error", "user_cancelled_authorize");
                    pairs.append_pair("error_description", "The user cancelled the authorization");
                }
                Kind::Facebook | Kind::Instagram => {
                    pairs.append_pair("error", "access_denied");
                    pairs.append_pair("error_reason", "user_denied");
                    pairs.append_pair("error_description", "Permissions error.");
                }
            }
            pairs.append_pair("state", &state);
        }
        return redirect_to(redirect.as_str());
    }
    let code = random_string(40);
    st.issued_codes.push(code.clone());
    st.codes.insert(code.clone(), grant);
    let hash_in_query = st.fault == Fault::CodeWithHashSuffixInQuery;
    {
        let mut pairs = redirect.query_pairs_mut();
        if kind == Kind::Instagram {
            pairs.append_pair("state", &state);
        }
        if hash_in_query {
            pairs.append_pair("code", &format!("{code}#_"));
        } else {
            pairs.append_pair("code", &code);
        }
        if kind != Kind::Instagram {
            pairs.append_pair("state", &state);
        }
    }
    if kind == Kind::Instagram && !hash_in_query {
        redirect.set_fragment(Some("_"));
    }
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
        None if kind == Kind::Tiktok && q.has("client_id") => {
            return Err("tiktok expects the app id as `client_key`, not `client_id`".into());
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
    let scopes = parse_scopes(kind, scope)?;
    let code_challenge = if kind.uses_pkce() {
        let challenge = q
            .non_empty("code_challenge")
            .ok_or("missing `code_challenge` (x requires PKCE)")?;
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
    let grant = CodeGrant {
        redirect_uri: redirect_uri.to_owned(),
        client_id: client_id.to_owned(),
        scopes,
        code_challenge,
        used: false,
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
    let kind = st.kind;
    let result = match kind {
        Kind::X => x_token(st, c),
        Kind::Linkedin => linkedin_token(st, c),
        Kind::Facebook => facebook_token(st, c),
        Kind::Instagram => instagram_token(st, c),
        Kind::Tiktok => tiktok_token(st, c),
    };
    render_token(token_shape(kind, &c.path), false, result)
}

fn x_token(st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
    require_post_form(c)?;
    let f = &c.form;
    let unauthorized = || {
        terr(
            401,
            "unauthorized_client",
            "Missing valid authorization header",
        )
    };
    let (id, secret) = c.basic().ok_or_else(unauthorized)?;
    let decoded = |s: &str| {
        url::form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    if !st.secret_matches(&id, &secret) && !st.secret_matches(&decoded(&id), &decoded(&secret)) {
        return Err(unauthorized());
    }
    if f.get("client_id")
        .is_some_and(|body_id| body_id != st.client_id)
    {
        return Err(terr(
            401,
            "unauthorized_client",
            "client_id in the body does not match the authorization header",
        ));
    }
    let client_id = st.client_id.clone();
    match f.get("grant_type") {
        Some("authorization_code") => {
            let code = f.non_empty("code").ok_or_else(|| missing("code"))?;
            let redirect_uri = f
                .non_empty("redirect_uri")
                .ok_or_else(|| missing("redirect_uri"))?;
            let verifier = f
                .non_empty("code_verifier")
                .ok_or_else(|| missing("code_verifier"))?;
            let invalid = || {
                terr(
                    400,
                    "invalid_request",
                    "Value passed for the authorization code was invalid.",
                )
            };
            let grant = st
                .take_code(code, &client_id, redirect_uri)
                .map_err(|_| invalid())?;
            let verifier_ok = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if !verifier_ok || grant.code_challenge.as_deref() != Some(challenge.as_str()) {
                return Err(invalid());
            }
            Ok(x_tokens(st, grant.scopes))
        }
        Some("refresh_token") => {
            let old = f
                .non_empty("refresh_token")
                .ok_or_else(|| missing("refresh_token"))?;
            let r = st.use_refresh(old, true).ok_or_else(|| {
                terr(
                    400,
                    "invalid_grant",
                    "Value passed for the token was invalid.",
                )
            })?;
            Ok(x_tokens(st, r.scopes))
        }
        Some(other) => Err(terr(
            400,
            "unsupported_grant_type",
            format!("grant_type `{other}` is not supported"),
        )),
        None => Err(missing("grant_type")),
    }
}

fn x_tokens(st: &mut State, scopes: Vec<String>) -> Value {
    let access = st.new_access(Stage::Normal, scopes.clone());
    let mut body = json!({
        "token_type": "bearer",
        "expires_in": 7200,
        "access_token": access,
        "scope": scopes.join(" "),
    });
    if scopes.iter().any(|s| s == "offline.access") {
        body["refresh_token"] = Value::String(st.new_refresh(scopes));
    }
    body
}

fn linkedin_token(st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
    require_post_form(c)?;
    let f = &c.form;
    let (id, secret) = match (f.non_empty("client_id"), f.non_empty("client_secret")) {
        (Some(id), Some(secret)) => (id, secret),
        _ if c.has_basic() => {
            return Err(terr(
                401,
                "invalid_client",
                "Client authentication failed: client_id and client_secret must be in the \
                 request body (HTTP Basic is not accepted)",
            ));
        }
        (None, _) => {
            return Err(terr(
                400,
                "invalid_request",
                "A required parameter \"client_id\" is missing",
            ));
        }
        (_, None) => {
            return Err(terr(
                400,
                "invalid_request",
                "A required parameter \"client_secret\" is missing",
            ));
        }
    };
    if !st.secret_matches(id, secret) {
        return Err(terr(401, "invalid_client", "Client authentication failed"));
    }
    let client_id = id.to_owned();
    match f.get("grant_type") {
        Some("authorization_code") => {
            let code = f.non_empty("code").ok_or_else(|| missing("code"))?;
            let redirect_uri = f
                .non_empty("redirect_uri")
                .ok_or_else(|| missing("redirect_uri"))?;
            let grant = st.take_code(code, &client_id, redirect_uri).map_err(|_| {
                terr(
                    400,
                    "invalid_grant",
                    "Unable to retrieve access token: appid/redirect uri/code verifier does \
                         not match authorization code. Or authorization code expired.",
                )
            })?;
            let access = st.new_access(Stage::Normal, grant.scopes.clone());
            let mut body = json!({
                "access_token": access,
                "expires_in": 5_184_000,
                "scope": grant.scopes.join(","),
                "token_type": "Bearer",
            });
            if st.issue_refresh_tokens {
                body["refresh_token"] = Value::String(st.new_refresh(grant.scopes.clone()));
                body["refresh_token_expires_in"] = Value::from(st.refresh_lifetime);
            }
            if grant.scopes.iter().any(|s| s == "openid") {
                body["id_token"] = Value::String(linkedin_id_token(st));
            }
            Ok(body)
        }
        Some("refresh_token") => {
            let token = f
                .non_empty("refresh_token")
                .ok_or_else(|| missing("refresh_token"))?;
            let r = st.use_refresh(token, false).ok_or_else(|| {
                terr(
                    400,
                    "invalid_grant",
                    "The provided authorization grant or refresh token is invalid, expired or \
                     revoked.",
                )
            })?;
            let access = st.new_access(Stage::Normal, r.scopes.clone());
            let left = st.refresh_left(&r);
            let mut body = json!({
                "access_token": access,
                "expires_in": 5_184_000,
                "refresh_token": token,
                "refresh_token_expires_in": left,
                "scope": r.scopes.join(","),
                "token_type": "Bearer",
            });
            if !st.refresh_lifetime_on_refresh {
                body.as_object_mut()
                    .unwrap()
                    .remove("refresh_token_expires_in");
            }
            Ok(body)
        }
        Some(other) => Err(terr(
            400,
            "unsupported_grant_type",
            format!("grant_type `{other}` is not supported"),
        )),
        None => Err(missing("grant_type")),
    }
}

/// An unsigned-looking OpenID id_token (the signature is not real; Dravo should not need it).
fn linkedin_id_token(st: &State) -> String {
    let header = json!({"alg": "RS256", "kid": "fake", "typ": "JWT"});
    let claims = json!({
        "iss": "https://www.linkedin.com/oauth",
        "aud": st.client_id,
        "sub": st.account.id,
        "name": st.account.display_name,
        "iat": 1_700_000_000u64,
        "exp": 4_100_000_000u64,
    });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode("fake-signature"),
    )
}

fn facebook_token(st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
    if c.method != Method::GET {
        return Err(terr(
            405,
            "invalid_request",
            "fake: the facebook token endpoint is called with GET and query parameters",
        ));
    }
    let q = &c.query;
    let id = q
        .non_empty("client_id")
        .ok_or_else(|| terr(400, "invalid_request", "Missing client_id parameter.").graph(101))?;
    if id != st.client_id {
        return Err(terr(
            400,
            "invalid_client",
            "Error validating application. Invalid application ID.",
        )
        .graph(101));
    }
    let secret = q
        .non_empty("client_secret")
        .ok_or_else(|| terr(400, "invalid_client", "Missing client_secret parameter.").graph(1))?;
    if secret != st.client_secret {
        return Err(terr(400, "invalid_client", "Error validating client secret.").graph(1));
    }
    match q.get("grant_type") {
        // Meta's app access token: `{app id}|{random}` for a good id and secret (checked above).
        Some("client_credentials") => Ok(json!({
            "access_token": format!("{}|{}", st.client_id, random_string(27)),
            "token_type": "bearer",
        })),
        Some("fb_exchange_token") => {
            let old = q.non_empty("fb_exchange_token").ok_or_else(|| {
                terr(
                    400,
                    "invalid_request",
                    "Missing fb_exchange_token parameter.",
                )
                .graph(100)
            })?;
            let scopes = exchangeable(st, old, &[Stage::Short, Stage::Long])?;
            let access = st.new_access(Stage::Long, scopes);
            Ok(json!({"access_token": access, "token_type": "bearer", "expires_in": 5_184_000}))
        }
        Some(other) => Err(terr(
            400,
            "unsupported_grant_type",
            format!("Unsupported grant_type `{other}`."),
        )),
        None => {
            let code = q
                .non_empty("code")
                .ok_or_else(|| terr(400, "invalid_request", "Missing code parameter."))?;
            let redirect_uri = q
                .non_empty("redirect_uri")
                .ok_or_else(|| terr(400, "invalid_request", "Missing redirect_uri parameter."))?;
            let client_id = st.client_id.clone();
            let grant = st
                .take_code(code, &client_id, redirect_uri)
                .map_err(|p| terr(400, "invalid_grant", graph_code_message(p)))?;
            let access = st.new_access(Stage::Short, grant.scopes);
            Ok(json!({"access_token": access, "token_type": "bearer", "expires_in": 5183}))
        }
    }
}

fn graph_code_message(problem: CodeProblem) -> &'static str {
    match problem {
        CodeProblem::Unknown => "Invalid verification code format.",
        CodeProblem::Used => "This authorization code has been used.",
        CodeProblem::WrongClient => "Error validating verification code. App id mismatch.",
        CodeProblem::WrongRedirect => {
            "Error validating verification code. Please make sure your redirect_uri is \
             identical to the one you used in the OAuth dialog request"
        }
    }
}

/// Checks a token handed to an exchange/refresh call: it must be valid and of one of
/// `stages`. A short-lived token is single use.
fn exchangeable(st: &mut State, token: &str, stages: &[Stage]) -> Result<Vec<String>, TokErr> {
    let invalid = || {
        terr(
            400,
            "invalid_grant",
            "Error validating access token: The session is invalid or has expired.",
        )
        .graph(190)
    };
    let record = st
        .access
        .get_mut(token)
        .filter(|a| a.valid && stages.contains(&a.stage))
        .ok_or_else(invalid)?;
    if record.stage == Stage::Short {
        record.valid = false;
    }
    Ok(record.scopes.clone())
}

fn instagram_token(st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
    require_post_form(c)?;
    let f = &c.form;
    let bad = |m: &str| terr(400, "invalid_request", m);
    match f.non_empty("client_id") {
        Some(id) if id == st.client_id => {}
        Some(_) => return Err(bad("Invalid platform app")),
        None => return Err(bad("Missing required parameter client_id")),
    }
    match f.non_empty("client_secret") {
        Some(secret) if secret == st.client_secret => {}
        Some(_) => return Err(bad("Error validating client secret.")),
        None => return Err(bad("Missing required parameter client_secret")),
    }
    match f.get("grant_type") {
        Some("authorization_code") => {}
        Some(_) => return Err(bad("Invalid grant_type: expected authorization_code")),
        None => return Err(bad("Missing required parameter grant_type")),
    }
    let redirect_uri = f
        .non_empty("redirect_uri")
        .ok_or_else(|| bad("Missing required parameter redirect_uri"))?;
    let code = f
        .non_empty("code")
        .ok_or_else(|| bad("Missing required parameter code"))?;
    if code.contains('#') {
        return Err(bad("Invalid authorization code"));
    }
    let client_id = st.client_id.clone();
    let grant = st
        .take_code(code, &client_id, redirect_uri)
        .map_err(|p| match p {
            CodeProblem::Unknown => bad("Invalid authorization code"),
            CodeProblem::Used => bad("This authorization code has been used"),
            other => bad(graph_code_message(other)),
        })?;
    let access = st.new_access(Stage::Short, grant.scopes.clone());
    let body = json!({
        "access_token": access,
        "user_id": instagram_user_id(&st.account.id),
        "permissions": grant.scopes.join(","),
    });
    if st.fault == Fault::InstagramDataWrapper {
        Ok(json!({"data": [body]}))
    } else {
        Ok(body)
    }
}

fn require_get(c: &Ctx) -> Result<(), TokErr> {
    if c.method == Method::GET {
        Ok(())
    } else {
        Err(terr(
            405,
            "invalid_request",
            format!("Unsupported {} request.", c.method),
        ))
    }
}

fn instagram_exchange(st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
    require_get(c)?;
    let q = &c.query;
    if q.get("grant_type") != Some("ig_exchange_token") {
        return Err(terr(
            400,
            "invalid_request",
            "grant_type must be ig_exchange_token",
        ));
    }
    match q.non_empty("client_secret") {
        Some(secret) if secret == st.client_secret => {}
        Some(_) => {
            return Err(terr(400, "invalid_client", "Error validating client secret.").graph(1));
        }
        None => {
            return Err(terr(400, "invalid_client", "Missing client_secret parameter.").graph(1));
        }
    }
    let short = q
        .non_empty("access_token")
        .ok_or_else(|| terr(400, "invalid_request", "Missing access_token parameter."))?;
    let scopes = exchangeable(st, short, &[Stage::Short])?;
    let access = st.new_access(Stage::Long, scopes);
    Ok(json!({"access_token": access, "token_type": "bearer", "expires_in": 5_184_000}))
}

fn instagram_refresh(st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
    require_get(c)?;
    let q = &c.query;
    if q.get("grant_type") != Some("ig_refresh_token") {
        return Err(terr(
            400,
            "invalid_request",
            "grant_type must be ig_refresh_token",
        ));
    }
    let long = q
        .non_empty("access_token")
        .ok_or_else(|| terr(400, "invalid_request", "Missing access_token parameter."))?;
    let scopes = exchangeable(st, long, &[Stage::Long])?;
    let access = st.new_access(Stage::Long, scopes);
    Ok(json!({"access_token": access, "token_type": "bearer", "expires_in": 5_184_000}))
}

fn tiktok_token(st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
    require_post_form(c)?;
    let f = &c.form;
    let key = match f.non_empty("client_key") {
        Some(key) => key,
        None if f.has("client_id") => {
            return Err(terr(
                400,
                "invalid_request",
                "client_key is required (tiktok does not read `client_id`)",
            ));
        }
        None => return Err(terr(400, "invalid_request", "client_key is required")),
    };
    let secret = f
        .non_empty("client_secret")
        .ok_or_else(|| terr(400, "invalid_request", "client_secret is required"))?;
    if !st.secret_matches(key, secret) {
        return Err(terr(
            401,
            "invalid_client",
            "Client key or secret is incorrect.",
        ));
    }
    let client_id = key.to_owned();
    if f.get("grant_type") == Some("client_credentials") {
        // A client access token for the key and secret checked above; no user, no refresh.
        return Ok(json!({
            "access_token": format!("clt.{}", random_string(40)),
            "expires_in": 7200,
            "token_type": "Bearer",
        }));
    }
    let scopes = match f.get("grant_type") {
        Some("authorization_code") => {
            let code = f
                .non_empty("code")
                .ok_or_else(|| terr(400, "invalid_request", "code is required"))?;
            let redirect_uri = f
                .non_empty("redirect_uri")
                .ok_or_else(|| terr(400, "invalid_request", "redirect_uri is required"))?;
            let grant = st.take_code(code, &client_id, redirect_uri).map_err(|p| {
                let m = match p {
                    CodeProblem::Used => "Authorization code has been used.",
                    CodeProblem::WrongRedirect => "redirect_uri does not match.",
                    _ => "Authorization code is expired or invalid.",
                };
                terr(400, "invalid_grant", m)
            })?;
            // The user unticked video.upload on the consent screen.
            grant
                .scopes
                .into_iter()
                .filter(|s| s != "video.upload")
                .collect()
        }
        Some("refresh_token") => {
            let old = f
                .non_empty("refresh_token")
                .ok_or_else(|| terr(400, "invalid_request", "refresh_token is required"))?;
            st.use_refresh(old, true)
                .ok_or_else(|| terr(400, "invalid_grant", "Refresh token is invalid or expired."))?
                .scopes
        }
        Some(other) => {
            return Err(terr(
                400,
                "invalid_request",
                format!("grant_type `{other}` is not supported"),
            ));
        }
        None => return Err(terr(400, "invalid_request", "grant_type is required")),
    };
    let scopes: Vec<String> = scopes;
    let access = st.new_access(Stage::Normal, scopes.clone());
    let refresh = st.new_refresh(scopes.clone());
    Ok(json!({
        "open_id": st.account.id,
        "scope": scopes.join(","),
        "access_token": access,
        "expires_in": 86_400,
        "refresh_token": refresh,
        "refresh_expires_in": st.refresh_lifetime,
        "token_type": "Bearer",
    }))
}

// ---------------------------------------------------------------------------------------------
// Identity

fn identity(st: &mut State, c: &Ctx) -> Response {
    let kind = st.kind;
    if let Fault::MeStatus(status) = st.fault {
        return identity_error(kind, status, "fake: forced identity failure");
    }
    if c.method != Method::GET {
        return identity_error(kind, 405, "the identity endpoint is a GET");
    }
    let token = match kind {
        Kind::Facebook | Kind::Instagram => c.bearer_or_query(),
        _ => c.bearer(),
    };
    let Some(record) = token.as_deref().and_then(|t| st.access.get(t)) else {
        return identity_error(kind, 401, "Invalid or missing access token");
    };
    if !record.valid {
        return identity_error(kind, 401, "The access token is invalid, expired or revoked");
    }
    let has = |scope: &str| record.scopes.iter().any(|s| s == scope);
    let account = &st.account;
    match kind {
        Kind::X => {
            if !(has("users.read") && has("tweet.read")) {
                return identity_error(
                    kind,
                    403,
                    "GET /2/users/me needs users.read and tweet.read",
                );
            }
            let mut user = Map::new();
            user.insert("id".into(), json!(account.id));
            if let Some(name) = &account.display_name {
                user.insert("name".into(), json!(name));
            }
            if let Some(username) = &account.username {
                user.insert("username".into(), json!(username));
            }
            json_response(200, &json!({"data": user}))
        }
        Kind::Linkedin => {
            if !has("openid") {
                return identity_error(
                    kind,
                    403,
                    "Not enough permissions to access: userinfo.GET.NO_VERSION",
                );
            }
            let mut body = Map::new();
            body.insert("sub".into(), json!(account.id));
            if has("profile") {
                if let Some(name) = &account.display_name {
                    body.insert("name".into(), json!(name));
                }
                body.insert(
                    "picture".into(),
                    json!(format!("{}/static/{}.jpg", st.base_url, account.id)),
                );
            }
            json_response(200, &Value::Object(body))
        }
        Kind::Facebook | Kind::Instagram => graph_me(st, c, record.stage),
        Kind::Tiktok => {
            if !has("user.info.basic") {
                return identity_error(kind, 403, "user.info.basic was not granted");
            }
            let Some(fields) = c.query.non_empty("fields") else {
                return identity_error(kind, 400, "fields is required");
            };
            let mut user = Map::new();
            for field in fields.split(',') {
                let value = match field {
                    "open_id" => json!(account.id),
                    "union_id" => json!(format!("union-{}", account.id)),
                    "avatar_url" | "avatar_url_100" | "avatar_large_url" => {
                        json!(format!("{}/static/{}.jpg", st.base_url, account.id))
                    }
                    "display_name" => match &account.display_name {
                        Some(name) => json!(name),
                        None => continue,
                    },
                    "username" => match &account.username {
                        Some(name) => json!(name),
                        None => continue,
                    },
                    "bio_description" | "profile_deep_link" | "is_verified" | "follower_count"
                    | "following_count" | "likes_count" | "video_count" => {
                        continue;
                    }
                    other => {
                        return identity_error(kind, 400, &format!("invalid field `{other}`"));
                    }
                };
                user.insert(field.into(), value);
            }
            json_response(
                200,
                &json!({
                    "data": {"user": user},
                    "error": {"code": "ok", "message": "", "log_id": log_id()},
                }),
            )
        }
    }
}

/// facebook `/v{N}/me` and instagram `/me`: only the long-lived token is accepted; only the
/// requested fields (plus `id`) come back, as Graph does.
/// The user's token, checked as the identity endpoint checks it, with `scope` granted.
fn api_token<'a>(st: &'a State, c: &Ctx, scope: &[&str]) -> Result<&'a AccessToken, Box<Response>> {
    let kind = st.kind;
    let token = match kind {
        Kind::Facebook | Kind::Instagram => c.bearer_or_query(),
        _ => c.bearer(),
    };
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

/// `GET /me/accounts?fields=id,name,access_token,tasks[&after=]`: the Pages the user manages,
/// a page at a time, with Meta's `paging.cursors.after` and a `next` URL while more follow.
fn facebook_pages(st: &State, c: &Ctx) -> Response {
    let record = match api_token(st, c, &["pages_show_list"]) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    if record.stage != Stage::Long {
        return identity_error(st.kind, 400, "fake: exchange for a long-lived token first");
    }
    let fields: Vec<&str> = c
        .query
        .non_empty("fields")
        .unwrap_or("id,name")
        .split(',')
        .collect();
    let start = match c.query.non_empty("after") {
        None => 0,
        Some(cursor) => match URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<usize>().ok())
        {
            Some(n) => n,
            None => return identity_error(st.kind, 400, "Invalid cursor"),
        },
    };
    let limit = c
        .query
        .non_empty("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(25)
        .clamp(1, LIST_PAGE_SIZE);
    let slice: Vec<&FakePage> = st.pages.iter().skip(start).take(limit).collect();
    let data: Vec<Value> = slice
        .iter()
        .map(|p| {
            let mut page = Map::new();
            page.insert("id".into(), json!(p.id));
            if fields.contains(&"name") {
                page.insert("name".into(), json!(p.name));
            }
            if fields.contains(&"access_token") {
                page.insert("access_token".into(), json!(p.token));
            }
            if fields.contains(&"tasks") {
                page.insert("tasks".into(), json!(p.tasks));
            }
            Value::Object(page)
        })
        .collect();
    let end = start + slice.len();
    let cursor = |n: usize| URL_SAFE_NO_PAD.encode(n.to_string());
    let mut paging = json!({"cursors": {"before": cursor(start), "after": cursor(end)}});
    if end < st.pages.len() {
        paging["next"] = json!(format!(
            "{}{}?after={}&access_token=SECRET-DO-NOT-FOLLOW",
            st.base_url,
            c.path,
            cursor(end)
        ));
    }
    json_response(200, &json!({"data": data, "paging": paging}))
}

/// LinkedIn's versioned REST API refuses calls without its version headers.
fn linkedin_rest_headers(c: &Ctx) -> Result<(), Box<Response>> {
    let header = |name: &str| c.headers.get(name).and_then(|v| v.to_str().ok());
    let version_ok = header("LinkedIn-Version")
        .is_some_and(|v| v.len() == 6 && v.bytes().all(|b| b.is_ascii_digit()));
    if !version_ok {
        return Err(Box::new(json_response(
            426,
            &json!({"status": 426, "code": "NONEXISTENT_VERSION", "message": "Requested version is not active"}),
        )));
    }
    if header("X-Restli-Protocol-Version") != Some("2.0.0") {
        return Err(Box::new(json_response(
            400,
            &json!({"status": 400, "message": "X-Restli-Protocol-Version 2.0.0 is required"}),
        )));
    }
    Ok(())
}

const ORGANIZATION_SCOPES: [&str; 3] = [
    "r_organization_admin",
    "rw_organization_admin",
    "w_organization_social",
];

/// `GET /rest/organizationAcls?q=roleAssignee&role=ADMINISTRATOR&state=APPROVED&start&count`.
fn linkedin_organization_acls(st: &State, c: &Ctx) -> Response {
    if let Err(resp) = linkedin_rest_headers(c) {
        return *resp;
    }
    if let Err(resp) = api_token(st, c, &ORGANIZATION_SCOPES) {
        return *resp;
    }
    for (name, want) in [
        ("q", "roleAssignee"),
        ("role", "ADMINISTRATOR"),
        ("state", "APPROVED"),
    ] {
        if c.query.get(name) != Some(want) {
            return json_response(
                400,
                &json!({"status": 400, "message": format!("fake: expected {name}={want}")}),
            );
        }
    }
    let start: usize = c
        .query
        .get("start")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let count: usize = c
        .query
        .get("count")
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
        .clamp(1, LIST_PAGE_SIZE);
    let elements: Vec<Value> = st
        .organizations
        .iter()
        .skip(start)
        .take(count)
        .map(|o| {
            json!({
                "organization": format!("urn:li:organization:{}", o.id),
                "role": "ADMINISTRATOR",
                "state": "APPROVED",
                "roleAssignee": format!("urn:li:person:{}", st.account.id),
            })
        })
        .collect();
    json_response(
        200,
        &json!({"elements": elements, "paging": {"start": start, "count": count, "total": st.organizations.len()}}),
    )
}

/// `GET /rest/organizations/{id}`.
fn linkedin_organization(st: &State, c: &Ctx, id: &str) -> Response {
    if let Err(resp) = linkedin_rest_headers(c) {
        return *resp;
    }
    if let Err(resp) = api_token(st, c, &ORGANIZATION_SCOPES) {
        return *resp;
    }
    match st.organizations.iter().find(|o| o.id.to_string() == id) {
        Some(o) => json_response(
            200,
            &json!({"id": o.id, "localizedName": o.name, "vanityName": o.vanity_name}),
        ),
        None => json_response(404, &json!({"status": 404, "message": "Not Found"})),
    }
}

fn graph_me(st: &State, c: &Ctx, stage: Stage) -> Response {
    let kind = st.kind;
    if stage != Stage::Long {
        return identity_error(
            kind,
            400,
            "fake: this is the short-lived token; exchange it for a long-lived one first \
             (Error validating access token)",
        );
    }
    let account = &st.account;
    let default_fields = if kind == Kind::Facebook {
        "id,name"
    } else {
        "id"
    };
    let fields = c.query.non_empty("fields").unwrap_or(default_fields);
    let mut body = Map::new();
    let id = if kind == Kind::Facebook {
        account.id.clone()
    } else {
        app_scoped_id(&account.id)
    };
    body.insert("id".into(), json!(id));
    for field in fields.split(',').map(str::trim) {
        let value = match (kind, field) {
            (_, "id") => continue,
            (_, "name") => match &account.display_name {
                Some(name) => json!(name),
                None => continue,
            },
            (Kind::Facebook, "first_name" | "last_name" | "email" | "picture") => continue,
            (Kind::Instagram, "user_id") => instagram_user_id(&account.id),
            (Kind::Instagram, "username") => match &account.username {
                Some(name) => json!(name),
                None => continue,
            },
            (Kind::Instagram, "account_type") => json!("BUSINESS"),
            (
                Kind::Instagram,
                "profile_picture_url" | "followers_count" | "follows_count" | "media_count",
            ) => continue,
            (_, other) => {
                return json_response(
                    400,
                    &json!({"error": {
                        "message": format!("(#100) Tried accessing nonexisting field ({other})"),
                        "type": "OAuthException",
                        "code": 100,
                        "fbtrace_id": random_string(11),
                    }}),
                );
            }
        };
        body.insert(field.into(), value);
    }
    json_response(200, &Value::Object(body))
}

// ---------------------------------------------------------------------------------------------
// Revoke (paths are this fake's guess at where Dravo derives them; see the module docs)

fn revoke(st: &mut State, c: &Ctx) -> Response {
    let kind = st.kind;
    if let Fault::RevokeStatus(status) = st.fault {
        return json_response(
            status,
            &json!({"error": "server_error", "error_description": "fake: revoke is down"}),
        );
    }
    let token = match kind {
        Kind::Facebook => {
            if c.method != Method::DELETE {
                return identity_error(kind, 405, "use DELETE /me/permissions");
            }
            let Some(token) = c.bearer_or_query() else {
                return identity_error(kind, 401, "An active access token must be used");
            };
            if st.access_token(&token).is_none() {
                return identity_error(kind, 401, "Invalid OAuth access token");
            }
            token
        }
        _ => {
            let shape = token_shape(kind, &c.path);
            if let Err(e) = require_post_form(c) {
                return render_token(shape, false, Err(e));
            }
            let f = &c.form;
            let authenticated = match kind {
                Kind::X => c
                    .basic()
                    .is_some_and(|(id, secret)| st.secret_matches(&id, &secret)),
                _ => {
                    let id = f.get(kind.client_id_param()).unwrap_or("");
                    st.secret_matches(id, f.get("client_secret").unwrap_or(""))
                }
            };
            if !authenticated {
                let e = terr(401, "invalid_client", "Client authentication failed");
                return render_token(shape, false, Err(e));
            }
            match f.non_empty("token") {
                Some(token) => token.to_owned(),
                None => return render_token(shape, false, Err(missing("token"))),
            }
        }
    };
    if let Some(a) = st.access.get_mut(&token) {
        a.valid = false;
    }
    if let Some(r) = st.refresh.get_mut(&token) {
        r.valid = false;
    }
    st.revoked.push(token);
    match kind {
        Kind::X => json_response(200, &json!({"revoked": true})),
        Kind::Facebook => json_response(200, &json!({"success": true})),
        _ => json_response(200, &json!({})),
    }
}
