//! The providers Dravo can connect, and the facts every one of them must answer.
//!
//! Each provider's quirks (URLs, parameter names, scope separators) live here, so that the rest
//! of the code asks a `Provider` instead of matching on names.

pub mod http;

mod facebook;
mod instagram;
mod linkedin;
mod tiktok;
mod x;

use std::fmt;
use std::str::FromStr;

use secrecy::SecretString;
use serde_json::Value;
use url::Url;

use crate::config::ProviderConfig;
pub use http::{ProviderError, ProviderHttp};

/// A social network Dravo connects accounts of. Spelled in lower case everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    Instagram,
    Facebook,
    X,
    Linkedin,
    Tiktok,
}

impl Provider {
    /// Every provider, in the order the seed page lists them.
    pub const ALL: [Provider; 5] = [
        Provider::Instagram,
        Provider::Facebook,
        Provider::X,
        Provider::Linkedin,
        Provider::Tiktok,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Instagram => "instagram",
            Provider::Facebook => "facebook",
            Provider::X => "x",
            Provider::Linkedin => "linkedin",
            Provider::Tiktok => "tiktok",
        }
    }

    /// The scopes Dravo requests when an app does not name its own (PROVIDERS.md).
    pub fn default_scopes(self) -> &'static [&'static str] {
        match self {
            Provider::X => &[
                "tweet.read",
                "tweet.write",
                "users.read",
                "offline.access",
                "media.write",
            ],
            Provider::Linkedin => &["openid", "profile", "w_member_social"],
            Provider::Facebook => &[
                "pages_show_list",
                "pages_manage_posts",
                "pages_read_engagement",
                "business_management",
            ],
            Provider::Instagram => &[
                "instagram_business_basic",
                "instagram_business_content_publish",
            ],
            Provider::Tiktok => &["user.info.basic", "video.publish", "video.upload"],
        }
    }

    /// Whether the authorization-code flow uses PKCE (S256).
    pub fn uses_pkce(self) -> bool {
        matches!(self, Provider::X)
    }

    /// The endpoints for this provider: the real ones, or the config's overrides.
    pub fn endpoints(self, config: Option<&ProviderConfig>) -> Endpoints {
        let version = config
            .and_then(|c| c.api_version.clone())
            .unwrap_or_else(|| facebook::DEFAULT_API_VERSION.to_owned());
        let (authorize, token, api) = match self {
            Provider::X => (
                x::AUTHORIZE_URL.to_owned(),
                x::TOKEN_URL.to_owned(),
                x::API_BASE.to_owned(),
            ),
            Provider::Linkedin => (
                linkedin::AUTHORIZE_URL.to_owned(),
                linkedin::TOKEN_URL.to_owned(),
                linkedin::API_BASE.to_owned(),
            ),
            Provider::Facebook => facebook::default_urls(&version),
            Provider::Instagram => (
                instagram::AUTHORIZE_URL.to_owned(),
                instagram::TOKEN_URL.to_owned(),
                instagram::API_BASE.to_owned(),
            ),
            Provider::Tiktok => (
                tiktok::AUTHORIZE_URL.to_owned(),
                tiktok::TOKEN_URL.to_owned(),
                tiktok::API_BASE.to_owned(),
            ),
        };
        let pick = |over: Option<&Url>, default: String| {
            over.cloned()
                .unwrap_or_else(|| Url::parse(&default).expect("built-in provider URLs are valid"))
        };
        Endpoints {
            authorize_url: pick(config.and_then(|c| c.authorize_url.as_ref()), authorize),
            token_url: pick(config.and_then(|c| c.token_url.as_ref()), token),
            api_base: pick(config.and_then(|c| c.api_base.as_ref()), api),
            api_version: version,
        }
    }

    /// The URL that sends the user to the provider's consent screen, with the provider's own
    /// parameter names and scope separator.
    pub fn authorize_url(self, endpoints: &Endpoints, params: &AuthorizeParams<'_>) -> String {
        match self {
            Provider::X => x::authorize_url(endpoints, params),
            Provider::Linkedin => linkedin::authorize_url(endpoints, params),
            Provider::Facebook => facebook::authorize_url(endpoints, params),
            Provider::Instagram => instagram::authorize_url(endpoints, params),
            Provider::Tiktok => tiktok::authorize_url(endpoints, params),
        }
    }

    /// Trades an authorization code for tokens, the provider's way (including any
    /// short-to-long-lived exchange).
    pub async fn exchange_code(
        self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        exchange: &CodeExchange<'_>,
    ) -> Result<TokenSet, ProviderError> {
        let result = match self {
            Provider::X => x::exchange_code(http, endpoints, exchange).await,
            Provider::Linkedin => linkedin::exchange_code(http, endpoints, exchange).await,
            Provider::Facebook => facebook::exchange_code(http, endpoints, exchange).await,
            Provider::Instagram => instagram::exchange_code(http, endpoints, exchange).await,
            Provider::Tiktok => tiktok::exchange_code(http, endpoints, exchange).await,
        };
        result.map_err(standard_token_error)
    }

    /// Asks the provider who the token belongs to.
    pub async fn identify(
        self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        tokens: &TokenSet,
    ) -> Result<Identity, ProviderError> {
        match self {
            Provider::X => x::identify(http, endpoints, tokens).await,
            Provider::Linkedin => linkedin::identify(http, endpoints, tokens).await,
            Provider::Facebook => facebook::identify(http, endpoints, tokens).await,
            Provider::Instagram => instagram::identify(http, endpoints, tokens).await,
            Provider::Tiktok => tiktok::identify(http, endpoints, tokens).await,
        }
    }

    /// The authorization code as the provider wants it back (Instagram appends `#_`).
    pub fn clean_code(self, code: &str) -> &str {
        match self {
            Provider::Instagram => instagram::clean_code(code),
            _ => code,
        }
    }

    /// The list of names accepted, for error messages.
    pub fn expected() -> &'static str {
        "instagram, facebook, x, linkedin or tiktok"
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a provider name Dravo does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider `{0}`: expected one of {expected}", expected = Provider::expected())]
pub struct UnknownProvider(pub String);

impl FromStr for Provider {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownProvider(s.chars().take(40).collect()))
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
}

impl Endpoints {
    /// `api_base` joined with `path` (which starts with `/`).
    pub fn api(&self, path: &str) -> String {
        format!("{}{}", self.api_base.as_str().trim_end_matches('/'), path)
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
    let mut out = String::with_capacity(base.as_str().len() + 256);
    out.push_str(&base[..url::Position::AfterQuery]);
    let start = match base.query() {
        Some(q) if !q.is_empty() => {
            out.push('&');
            out.len()
        }
        Some(_) => out.len(),
        None => {
            out.push('?');
            out.len()
        }
    };
    url::form_urlencoded::Serializer::for_suffix(out, start)
        .extend_pairs(params)
        .finish()
}

/// Reads the common OAuth token answer: `access_token`, `refresh_token?`, `expires_in?`,
/// `refresh_token_expires_in?`/`refresh_expires_in?`, `scope?`.
fn parse_token_response(body: &Value) -> Result<TokenSet, ProviderError> {
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

/// Requires `field` to be a non-empty id in an identity answer.
fn required_id(body: &Value, field: &str) -> Result<String, ProviderError> {
    http::string_field(body, field)
        .ok_or_else(|| ProviderError::malformed(format!("the identity response has no `{field}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for p in Provider::ALL {
            assert_eq!(p.as_str().parse::<Provider>().unwrap(), p);
        }
        assert!("X".parse::<Provider>().is_err());
        assert!("twitter".parse::<Provider>().is_err());
    }
}
