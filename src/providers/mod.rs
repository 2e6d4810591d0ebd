//! The providers Dravo can connect: one file each behind the `OAuthProvider` trait, and the
//! registry that names them. A provider's quirks (URLs, parameter names, scope separators,
//! client authentication, token parsing) live in its own file; the rest of the code asks the
//! registry for the provider and never matches on names.
//!
//! Adding a provider: write `src/providers/<name>.rs` with a unit struct implementing
//! `OAuthProvider`, declare the module below, and add it to `REGISTRY` (`registry.rs`).

pub mod atproto;
pub mod guard;
pub mod http;
pub mod mastodon;
mod registry;

mod facebook;
mod google;
mod google_business;
mod instagram;
mod linkedin;
mod pinterest;
mod reddit;
mod threads;
mod tiktok;
mod x;
mod youtube;

use async_trait::async_trait;
use secrecy::SecretString;
use serde_json::Value;
use url::Url;

pub use crate::domain::Provider;
use crate::domain::{AccountKind, Scopes};
pub use http::{ProviderError, ProviderHttp, ProviderResponse};
pub use registry::{UnknownProvider, all, closest, display_names, expected, get, ids, suggest};

/// How a provider wants the OAuth client to prove itself at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with client id and secret (RFC 6749 §2.3.1), form body.
    Basic,
    /// Client id (under the given parameter name) and secret in the form body.
    FormBody { id_param: &'static str },
    /// A GET with client id and secret in the query (Meta's Graph API).
    Query,
}

/// Where a provider's OAuth server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hosting {
    /// One service at fixed addresses: the tenant registers an app there and brings its
    /// client id and secret.
    Central,
    /// Each user names their own server (a Mastodon instance) with the start parameter
    /// `param`; Dravo registers the tenant's app on each server it meets, so the app holds
    /// what to register, not credentials.
    Instances { param: &'static str },
}

impl Hosting {
    /// The start parameter naming the user's server, if users name one.
    pub fn server_param(self) -> Option<&'static str> {
        match self {
            Hosting::Central => None,
            Hosting::Instances { param } => Some(param),
        }
    }

    /// Whether the tenant brings a client id and secret for an app.
    pub fn app_has_credentials(self) -> bool {
        self == Hosting::Central
    }
}

/// The real addresses of a provider, before any `providers.<name>.*_url` override.
pub struct DefaultEndpoints {
    pub authorize_url: String,
    pub token_url: String,
    pub api_base: String,
}

/// How a provider renews an account's access without the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// A refresh token (RFC 6749 §6). With `rotates`, each use returns a new one and the old
    /// one stops working, so the new one must be stored before anyone else refreshes. With
    /// `dies_unused_after`, a refresh token unused for that many seconds stops working
    /// (Google's 6 months), so the background renews it before then.
    RefreshToken {
        rotates: bool,
        dies_unused_after: Option<i64>,
    },
    /// The access token itself is traded for a fresh one, once it is at least
    /// `min_age_seconds` old and before it expires (Instagram).
    AccessToken { min_age_seconds: i64 },
    /// Nothing renews it: the token's expiry is a deadline for a new consent (Facebook).
    Never,
}

/// What a provider says about an app's client id and secret, asked without a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialCheck {
    /// The provider accepted them.
    Proven,
    /// The provider refused them; its own error code and description.
    Refused(String),
    /// Cannot be told: the provider offers no such call, or it did not answer. Says which.
    Unknown(String),
}

/// What every provider answers.
#[async_trait]
pub trait OAuthProvider: Send + Sync + 'static {
    /// Its name: in URLs, config tables (`[providers.<name>]`) and the database.
    fn id(&self) -> Provider;

    /// Its name as the provider writes it, for people ("LinkedIn").
    fn display_name(&self) -> &'static str;

    /// Where its OAuth server is, and so what a tenant's app for it holds.
    fn hosting(&self) -> Hosting {
        Hosting::Central
    }

    /// Other names people know it by, in lower case (`twitter` for X): never accepted, only
    /// suggested back as `id` when someone uses one.
    fn other_names(&self) -> &'static [&'static str] {
        &[]
    }

    /// The scopes requested when an app does not name its own (README's provider table lists
    /// them).
    fn default_scopes(&self) -> &'static [&'static str];

    /// The API version used when `providers.<name>.api_version` is unset; `None` when the
    /// provider has no versioned API (the key is then refused).
    fn default_api_version(&self) -> Option<&'static str> {
        None
    }

    /// The real endpoints, for the API version in use.
    fn default_endpoints(&self, api_version: Option<&str>) -> DefaultEndpoints;

    /// The `User-Agent` of calls for an app that sets none of its own; `None` keeps the
    /// client's `dravo/<version>`. For providers that throttle generic user agents (Reddit).
    fn default_user_agent(&self) -> Option<String> {
        None
    }

    /// Whether the authorization-code flow uses PKCE (S256).
    fn uses_pkce(&self) -> bool {
        false
    }

    /// How the client authenticates at the token endpoint.
    fn client_auth(&self) -> ClientAuth;

    /// The query parameter that carries the client id on the consent screen.
    fn client_id_param(&self) -> &'static str {
        "client_id"
    }

    /// What joins scopes in the `scope` parameter.
    fn scope_separator(&self) -> &'static str {
        " "
    }

    /// Parameters of the consent-screen URL that only this provider has (Google's
    /// `access_type=offline`), fixed for every connect.
    fn extra_authorize_params(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// The consent-screen URL: `response_type=code`, the client id, `redirect_uri`, `scope`,
    /// `state`, the provider's own parameters, and the S256 challenge when the provider uses
    /// PKCE.
    fn authorize_url(&self, endpoints: &Endpoints, p: &AuthorizeParams<'_>) -> String {
        let scope = p.scopes.join(self.scope_separator());
        let mut params = vec![
            ("response_type", "code"),
            (self.client_id_param(), p.client_id),
            ("redirect_uri", p.redirect_uri),
            ("scope", scope.as_str()),
            ("state", p.state),
        ];
        params.extend_from_slice(self.extra_authorize_params());
        if let Some(challenge) = p.code_challenge {
            params.push(("code_challenge", challenge));
            params.push(("code_challenge_method", "S256"));
        }
        url_with_query(&endpoints.authorize_url, &params)
    }

    /// The token endpoint's answer as JSON, or the refusal it carries. The default reads
    /// OAuth's error shapes; a provider with its own (Pinterest's `{code, message}`) reads
    /// them here, for every grant.
    fn token_answer(&self, resp: ProviderResponse) -> Result<Value, ProviderError> {
        resp.into_success()
    }

    /// Reads the token endpoint's answer (a provider with extra fields adds them here).
    fn read_tokens(&self, body: &Value) -> Result<TokenSet, ProviderError> {
        parse_token_response(body)
    }

    /// The authorization code as the provider wants it back (Instagram appends `#_`).
    fn clean_code<'a>(&self, code: &'a str) -> &'a str {
        code
    }

    /// Trades an authorization code for tokens (RFC 6749 §4.1.3, with the PKCE verifier when
    /// there is one). Errors outside RFC 6749's vocabulary are normalised by the caller
    /// (`exchange` below).
    async fn exchange_code(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        ex: &CodeExchange<'_>,
    ) -> Result<TokenSet, ProviderError> {
        let mut params = vec![
            ("grant_type", "authorization_code"),
            ("code", ex.code),
            ("redirect_uri", ex.redirect_uri),
        ];
        if let Some(verifier) = ex.code_verifier {
            params.push(("code_verifier", verifier));
        }
        let body = token_call_reading(
            http,
            endpoints,
            self.client_auth(),
            ex.client_id,
            ex.client_secret,
            &params,
            |resp| self.token_answer(resp),
        )
        .await?;
        self.read_tokens(&body)
    }

    /// How access is renewed; most providers use a refresh token that is not rotated.
    fn renewal(&self) -> Renewal {
        Renewal::RefreshToken {
            rotates: false,
            dies_unused_after: None,
        }
    }

    /// The access-token lifetime assumed when an answer has no `expires_in`: the shortest the
    /// provider documents, so such a token is refreshed (or warned about) early rather than
    /// found dead. `None` only where the provider documents tokens that never expire
    /// (Mastodon).
    fn assumed_lifetime_seconds(&self) -> Option<i64>;

    /// Renews the account's tokens (`renewal` says how). The default is the RFC 6749
    /// refresh-token grant at the token endpoint, the client authenticated the provider's way.
    async fn refresh_tokens(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        r: &TokenRefresh<'_>,
    ) -> Result<TokenSet, ProviderError> {
        let Some(refresh_token) = r.refresh_token else {
            return Err(ProviderError::Rejected {
                code: "invalid_grant".into(),
                description: Some("the account has no refresh token".into()),
            });
        };
        let body = token_call_reading(
            http,
            endpoints,
            self.client_auth(),
            r.client_id,
            r.client_secret,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
            |resp| self.token_answer(resp),
        )
        .await?;
        self.read_tokens(&body)
    }

    /// Revokes the account's grant at the provider. `Ok(false)`: the provider has no way to
    /// revoke (the default).
    async fn revoke(
        &self,
        _http: &ProviderHttp,
        _endpoints: &Endpoints,
        _r: &TokenRefresh<'_>,
    ) -> Result<bool, ProviderError> {
        Ok(false)
    }

    /// The Pages or organizations the user behind `access_token` manages, following every
    /// page of the provider's answer. `None`: this provider (or, for LinkedIn, this grant's
    /// scopes) has none to list, and children already stored stay as they are.
    async fn list_children(
        &self,
        _http: &ProviderHttp,
        _endpoints: &Endpoints,
        _access_token: &str,
        _granted_scopes: &[String],
    ) -> Result<Option<Vec<ChildAccount>>, ProviderError> {
        Ok(None)
    }

    /// Proves the app's client id and secret at the provider without a user, where the
    /// provider offers a grant for that (RFC 6749 §4.4). The default says it cannot be told.
    async fn check_credentials(
        &self,
        _http: &ProviderHttp,
        _endpoints: &Endpoints,
        _client_id: &str,
        _client_secret: &str,
    ) -> CredentialCheck {
        CredentialCheck::Unknown(format!(
            "{} offers no server-side call that proves client credentials: a wrong secret \
             shows at the first connect",
            self.id()
        ))
    }

    /// The requested scopes the user did not grant (unticked on the consent screen), given
    /// the scopes the provider says were granted. The default compares names; a provider
    /// that answers other names for the same scopes (Google's `email`) says so here.
    fn missing_scopes(&self, requested: &[String], granted: &[String]) -> Vec<String> {
        requested
            .iter()
            .filter(|scope| !granted.contains(scope))
            .cloned()
            .collect()
    }

    /// Every scope the provider documents for this kind of app; a scope outside it is most
    /// likely a typo, and the consent screen would refuse it.
    fn known_scopes(&self) -> &'static [&'static str];

    /// The scopes Dravo's own calls need when an app requests `requested`: reading the
    /// account's identity after a connect (and, for Facebook, listing Pages).
    fn identity_scopes(&self, requested: &[String]) -> &'static [&'static str];

    /// The provider's own rules for a redirect URI beyond the ones every provider has, as a
    /// sentence saying what is wrong. The default: `https`, or `http` on a loopback host
    /// (which providers accept for development).
    fn check_redirect_uri(&self, uri: &Url) -> Result<(), String> {
        if uri.scheme() == "https" || (uri.scheme() == "http" && is_loopback(uri)) {
            return Ok(());
        }
        Err(format!(
            "{} accepts only https redirect URIs, except on a loopback host (localhost, \
             127.0.0.1, [::1])",
            self.id()
        ))
    }

    /// Asks the provider who the token belongs to.
    async fn identify(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        tokens: &TokenSet,
    ) -> Result<Identity, ProviderError>;
}

impl dyn OAuthProvider {
    /// The provider's default scopes as a checked list.
    pub fn default_scope_list(&self) -> Scopes {
        Scopes::from_static(self.default_scopes())
    }

    /// The endpoints in use: the real ones, with any configured override applied.
    pub fn endpoints(&self, overrides: &EndpointOverrides) -> Endpoints {
        let api_version = overrides
            .api_version
            .clone()
            .or_else(|| self.default_api_version().map(str::to_owned));
        let defaults = self.default_endpoints(api_version.as_deref());
        let pick = |over: Option<&Url>, default: String| {
            over.cloned()
                .unwrap_or_else(|| Url::parse(&default).expect("built-in provider URLs are valid"))
        };
        Endpoints {
            authorize_url: pick(overrides.authorize_url.as_ref(), defaults.authorize_url),
            token_url: pick(overrides.token_url.as_ref(), defaults.token_url),
            api_base: pick(overrides.api_base.as_ref(), defaults.api_base),
            api_version: api_version.unwrap_or_default(),
            revoke_url: None,
        }
    }

    /// Renews tokens; a refusal in the provider's own vocabulary comes back as
    /// `invalid_grant` (so callers classify one set of codes).
    pub async fn refresh(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        r: &TokenRefresh<'_>,
    ) -> Result<TokenSet, ProviderError> {
        self.refresh_tokens(http, endpoints, r)
            .await
            .map_err(standard_token_error)
    }

    /// Trades an authorization code for tokens; a refusal in the provider's own vocabulary
    /// comes back as `invalid_grant`.
    pub async fn exchange(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        exchange: &CodeExchange<'_>,
    ) -> Result<TokenSet, ProviderError> {
        self.exchange_code(http, endpoints, exchange)
            .await
            .map_err(standard_token_error)
    }
}

/// Configured replacements for a provider's real addresses (proxies, tests).
#[derive(Debug, Clone, Default)]
pub struct EndpointOverrides {
    pub authorize_url: Option<Url>,
    pub token_url: Option<Url>,
    pub api_base: Option<Url>,
    pub api_version: Option<String>,
}

/// A token-endpoint call with the client authenticated the provider's way, its answer read
/// as OAuth's (`ProviderResponse::into_success`).
pub(crate) async fn token_call(
    http: &ProviderHttp,
    endpoints: &Endpoints,
    auth: ClientAuth,
    client_id: &str,
    client_secret: &str,
    params: &[(&str, &str)],
) -> Result<Value, ProviderError> {
    token_call_reading(
        http,
        endpoints,
        auth,
        client_id,
        client_secret,
        params,
        ProviderResponse::into_success,
    )
    .await
}

/// `token_call`, its answer read by `read` (a provider's own error shapes: `token_answer`).
pub(crate) async fn token_call_reading(
    http: &ProviderHttp,
    endpoints: &Endpoints,
    auth: ClientAuth,
    client_id: &str,
    client_secret: &str,
    params: &[(&str, &str)],
    read: impl FnOnce(ProviderResponse) -> Result<Value, ProviderError>,
) -> Result<Value, ProviderError> {
    let url = endpoints.token_url.clone();
    let req = match auth {
        ClientAuth::Basic => {
            let mut form: Vec<(&str, &str)> = params.to_vec();
            form.push(("client_id", client_id));
            http.client()
                .post(url)
                .basic_auth(client_id, Some(client_secret))
                .form(&form)
        }
        ClientAuth::FormBody { id_param } => {
            let mut form: Vec<(&str, &str)> = vec![(id_param, client_id)];
            form.push(("client_secret", client_secret));
            form.extend_from_slice(params);
            http.client().post(url).form(&form)
        }
        ClientAuth::Query => {
            let mut query: Vec<(&str, &str)> = vec![("client_id", client_id)];
            query.push(("client_secret", client_secret));
            query.extend_from_slice(params);
            http.client().get(url).query(&query)
        }
    };
    read(http.send(req).await?)
}

/// The client-credentials grant (RFC 6749 §4.4) at the token endpoint, the client
/// authenticated the provider's way: an access token proves the credentials; a refusal is the
/// provider's verdict on them; anything else (an outage, a 429, an unreadable answer) leaves it
/// unknown. The token is dropped unseen.
pub(crate) async fn client_credentials_grant(
    http: &ProviderHttp,
    endpoints: &Endpoints,
    auth: ClientAuth,
    client_id: &str,
    client_secret: &str,
) -> CredentialCheck {
    let answer = token_call(
        http,
        endpoints,
        auth,
        client_id,
        client_secret,
        &[("grant_type", "client_credentials")],
    )
    .await;
    credentials_verdict(endpoints, answer)
}

/// What a client-credentials grant's answer says of the credentials: an access token proves
/// them; a refusal is the provider's verdict; anything else leaves them unknown.
pub(crate) fn credentials_verdict(
    endpoints: &Endpoints,
    answer: Result<Value, ProviderError>,
) -> CredentialCheck {
    let host = endpoints.token_url.host_str().unwrap_or("the provider");
    match answer {
        Ok(body) if http::string_field(&body, "access_token").is_some() => CredentialCheck::Proven,
        Ok(_) => CredentialCheck::Unknown(format!(
            "{host} answered the client-credentials grant without an access token"
        )),
        Err(ProviderError::Rejected { code, description }) => {
            CredentialCheck::Refused(match description {
                Some(d) if !d.is_empty() => format!("{code}: {d}"),
                _ => code,
            })
        }
        Err(other) => {
            CredentialCheck::Unknown(format!("could not ask {host}: {}", other.description()))
        }
    }
}

/// Whether the URL's host is this machine: `localhost` (and `*.localhost`, RFC 6761), or a
/// loopback address.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The token-endpoint error codes of RFC 6749 §5.2.
const TOKEN_ERROR_CODES: [&str; 6] = [
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
];

/// A refusal at the token endpoint in a provider's own vocabulary (Meta's `oauth_exception`,
/// a bare HTTP status) becomes `invalid_grant`, the RFC 6749 code for a code that cannot be
/// exchanged, so dashboards see the same code for every provider. The original code stays in
/// the description.
fn standard_token_error(err: ProviderError) -> ProviderError {
    match err {
        ProviderError::Rejected { code, description }
            if !TOKEN_ERROR_CODES.contains(&code.as_str()) =>
        {
            let description = match description {
                Some(d) if !d.is_empty() => format!("{code}: {d}"),
                _ => code,
            };
            ProviderError::Rejected {
                code: "invalid_grant".into(),
                description: Some(description),
            }
        }
        other => other,
    }
}

/// Where a provider lives.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorize_url: Url,
    pub token_url: Url,
    pub api_base: Url,
    /// Graph API version (facebook).
    pub api_version: String,
    /// Where the server said it revokes tokens, when it said so (a Mastodon instance's
    /// metadata); the other providers' revoke URLs are their own business.
    pub revoke_url: Option<Url>,
}

impl Endpoints {
    /// `api_base` joined with `path` (which starts with `/`).
    pub fn api(&self, path: &str) -> String {
        format!("{}{}", self.api_base.as_str().trim_end_matches('/'), path)
    }

    /// The token URL with its last path segment replaced by `segment` (LinkedIn's revoke
    /// endpoint sits beside its token endpoint).
    pub fn beside_token_url(&self, segment: &str) -> Url {
        let mut url = self.token_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().pop().push(segment);
        }
        url.set_query(None);
        url
    }
}

/// What goes into the consent-screen URL.
pub struct AuthorizeParams<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scopes: &'a [String],
    pub state: &'a str,
    /// The S256 challenge, for providers that use PKCE.
    pub code_challenge: Option<&'a str>,
}

/// What a code exchange needs.
pub struct CodeExchange<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub redirect_uri: &'a str,
    pub code: &'a str,
    pub code_verifier: Option<&'a str>,
}

/// An account's credentials for a refresh or a revocation.
pub struct TokenRefresh<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub access_token: &'a str,
    pub refresh_token: Option<&'a str>,
}

/// `POST url` with `token` (and, for RFC 7009, `token_type_hint`) in a form, the client
/// authenticated the provider's way: the revoke call of X, LinkedIn and TikTok.
pub(crate) async fn revoke_call(
    http: &ProviderHttp,
    url: Url,
    auth: ClientAuth,
    client_id: &str,
    client_secret: &str,
    params: &[(&str, &str)],
) -> Result<(), ProviderError> {
    let endpoints = Endpoints {
        authorize_url: url.clone(),
        token_url: url.clone(),
        api_base: url,
        api_version: String::new(),
        revoke_url: None,
    };
    token_call(http, &endpoints, auth, client_id, client_secret, params)
        .await
        .map(|_| ())
}

/// RFC 7009 at `url`, the client authenticated the provider's way: the refresh token (which
/// ends the grant) when there is one, then the access token (X, Reddit).
pub(crate) async fn revoke_refresh_then_access(
    http: &ProviderHttp,
    url: Url,
    auth: ClientAuth,
    r: &TokenRefresh<'_>,
) -> Result<(), ProviderError> {
    let mut tokens = vec![];
    if let Some(refresh) = r.refresh_token {
        tokens.push((refresh, "refresh_token"));
    }
    tokens.push((r.access_token, "access_token"));
    for (token, hint) in tokens {
        revoke_call(
            http,
            url.clone(),
            auth,
            r.client_id,
            r.client_secret,
            &[("token", token), ("token_type_hint", hint)],
        )
        .await?;
    }
    Ok(())
}

/// Tokens as every provider's answer is normalised.
#[derive(Debug)]
pub struct TokenSet {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    /// Seconds from now.
    pub expires_in: Option<i64>,
    pub refresh_expires_in: Option<i64>,
    /// The scopes the user granted, when the provider says.
    pub granted_scopes: Option<Vec<String>>,
    /// The account id when the token response names it (Instagram `user_id`, TikTok `open_id`).
    pub account_hint: Option<String>,
}

/// Something a connected user manages and posts as, listed by the provider: a Facebook Page
/// (with its own Page token) or a LinkedIn organization (posted to with the member's token).
#[derive(Debug, Clone)]
pub struct ChildAccount {
    pub kind: AccountKind,
    pub provider_account_id: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
    /// What the user may do on it (Facebook's Page `tasks`).
    pub tasks: Option<Vec<String>>,
    /// Its own token, when it has one (a Page).
    pub access_token: Option<SecretString>,
}

/// Who an account is at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub provider_account_id: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
}

/// `base?k=v&…`, keeping any query and dropping any fragment the base has. Built as a
/// string: the base is already a valid URL, so only the new pairs need encoding.
fn url_with_query(base: &Url, params: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(base.as_str().len() + 384);
    out.push_str(&base[..url::Position::AfterQuery]);
    let mut separator = match base.query() {
        Some(q) if !q.is_empty() => "&",
        Some(_) => "",
        None => "?",
    };
    for (key, value) in params {
        out.push_str(separator);
        out.extend(url::form_urlencoded::byte_serialize(key.as_bytes()));
        out.push('=');
        out.extend(url::form_urlencoded::byte_serialize(value.as_bytes()));
        separator = "&";
    }
    out
}

/// Reads the common OAuth token answer: `access_token`, `refresh_token?`, `expires_in?`,
/// `refresh_token_expires_in?`/`refresh_expires_in?`, `scope?`.
pub(crate) fn parse_token_response(body: &Value) -> Result<TokenSet, ProviderError> {
    let access = http::string_field(body, "access_token")
        .ok_or_else(|| ProviderError::malformed("the token response has no access_token"))?;
    Ok(TokenSet {
        access_token: SecretString::from(access),
        refresh_token: http::string_field(body, "refresh_token").map(SecretString::from),
        expires_in: http::int_field(body, "expires_in"),
        refresh_expires_in: http::int_field(body, "refresh_token_expires_in")
            .or_else(|| http::int_field(body, "refresh_expires_in")),
        granted_scopes: body
            .get("scope")
            .and_then(Value::as_str)
            .map(crate::domain::split_list),
        account_hint: None,
    })
}

/// Meta's long-lived token for a short-lived one: `GET {api}/access_token?grant_type={grant}`
/// with the app secret (instagram `ig_exchange_token`, threads `th_exchange_token`).
async fn meta_long_lived(
    http: &ProviderHttp,
    endpoints: &Endpoints,
    grant: &str,
    client_secret: &str,
    short_token: &str,
) -> Result<TokenSet, ProviderError> {
    let req = http.client().get(endpoints.api("/access_token")).query(&[
        ("grant_type", grant),
        ("client_secret", client_secret),
        ("access_token", short_token),
    ]);
    parse_token_response(&http.send(req).await?.into_success()?)
}

/// A Meta long-lived token renewing itself: `GET {api}/refresh_access_token?grant_type={grant}`
/// (no secret; instagram `ig_refresh_token`, threads `th_refresh_token`).
async fn meta_self_refresh(
    http: &ProviderHttp,
    endpoints: &Endpoints,
    grant: &str,
    access_token: &str,
) -> Result<TokenSet, ProviderError> {
    let req = http
        .client()
        .get(endpoints.api("/refresh_access_token"))
        .query(&[("grant_type", grant), ("access_token", access_token)]);
    parse_token_response(&http.send(req).await?.into_success()?)
}

/// How many pages of a provider's list Dravo follows (100 items each): a bound on a provider
/// that keeps answering `next`.
pub(crate) const MAX_LIST_PAGES: usize = 50;

/// An array of strings, or `None` when the field is not one.
fn string_list(value: &Value) -> Option<Vec<String>> {
    value.as_array().map(|items| {
        items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    })
}

/// Requires `field` to be a non-empty id in an identity answer.
fn required_id(body: &Value, field: &str) -> Result<String, ProviderError> {
    http::string_field(body, field)
        .ok_or_else(|| ProviderError::malformed(format!("the identity response has no `{field}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of the README table whose header starts with `header`: their first cells.
    fn readme_table_providers(readme: &str, header: &str) -> Vec<String> {
        let rows = readme
            .lines()
            .skip_while(|line| !line.starts_with(header))
            .skip(2) // the header and its `|---|` line
            .take_while(|line| line.starts_with('|'));
        let mut names: Vec<String> = rows
            .map(|row| row.split('|').nth(1).unwrap_or_default().trim().to_owned())
            .collect();
        names.sort();
        names
    }
    /// Adding a provider is a file and a registry line; the places that name every provider
    /// for people (the example config, README's tables) must follow, and this says which.
    #[test]
    fn the_example_config_and_readme_name_every_registered_provider() {
        let example = include_str!("../../dravo.toml.example");
        let listed: Vec<&str> = ids().map(Provider::as_str).collect();
        let line = format!("# One table per provider: {}.", listed.join(", "));
        assert!(example.contains(&line), "dravo.toml.example lacks `{line}`");
        for name in &listed {
            let table = format!("# [providers.{name}]");
            assert!(
                example.contains(&table),
                "dravo.toml.example lacks `{table}`"
            );
        }

        let readme = include_str!("../../README.md");
        let mut registered: Vec<String> = listed.iter().map(|name| name.to_string()).collect();
        registered.sort();
        for header in [
            "| provider | access token |",
            "| provider | register this redirect URI |",
            "| provider | `client_credentials` |",
        ] {
            assert_eq!(
                readme_table_providers(readme, header),
                registered,
                "README's table `{header}` must have one row per registered provider"
            );
        }
    }
    #[test]
    fn query_is_appended_to_the_base_url() {
        let p = [("a", "x y"), ("b", "1,2")];
        let plain = Url::parse("https://e.com/auth").unwrap();
        assert_eq!(
            url_with_query(&plain, &p),
            "https://e.com/auth?a=x+y&b=1%2C2"
        );
        let with_query = Url::parse("https://e.com/auth?v=1#frag").unwrap();
        assert_eq!(
            url_with_query(&with_query, &p),
            "https://e.com/auth?v=1&a=x+y&b=1%2C2"
        );
        let empty_query = Url::parse("https://e.com/auth?").unwrap();
        assert_eq!(
            url_with_query(&empty_query, &p),
            "https://e.com/auth?a=x+y&b=1%2C2"
        );
        // Same as the url crate's own serialisation.
        let mut expected = plain.clone();
        expected.query_pairs_mut().extend_pairs(p);
        assert_eq!(url_with_query(&plain, &p), expected.as_str());
    }
    #[test]
    fn token_errors_outside_rfc6749_become_invalid_grant() {
        let meta = ProviderError::Rejected {
            code: "oauth_exception".into(),
            description: Some("code used".into()),
        };
        assert_eq!(
            standard_token_error(meta),
            ProviderError::Rejected {
                code: "invalid_grant".into(),
                description: Some("oauth_exception: code used".into())
            }
        );
        let standard = ProviderError::Rejected {
            code: "invalid_client".into(),
            description: None,
        };
        assert_eq!(standard_token_error(standard.clone()), standard);
        let down = ProviderError::Unavailable("HTTP 503".into());
        assert_eq!(standard_token_error(down.clone()), down);
    }

    mod properties {
        use proptest::prelude::*;
        use serde_json::json;

        use super::*;

        /// Arbitrary JSON, a few levels deep.
        fn any_json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(|f| json!(f)),
                "\\PC{0,40}".prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 24, 6, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                    proptest::collection::btree_map(
                        prop_oneof![
                            Just("access_token".to_owned()),
                            Just("refresh_token".to_owned()),
                            Just("expires_in".to_owned()),
                            Just("refresh_expires_in".to_owned()),
                            Just("scope".to_owned()),
                            Just("error".to_owned()),
                            Just("data".to_owned()),
                            Just("open_id".to_owned()),
                            Just("user_id".to_owned()),
                            "[a-z_]{1,12}",
                        ],
                        inner,
                        0..8,
                    )
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            /// Every provider reads any JSON answer without panicking; whatever it accepts
            /// has a non-empty access token.
            #[test]
            fn token_answers_never_panic(body in any_json()) {
                for provider in all() {
                    if let Ok(tokens) = provider.read_tokens(&body) {
                        prop_assert!(!secrecy::ExposeSecret::expose_secret(&tokens.access_token).is_empty());
                    }
                }
            }
        }
    }
}
