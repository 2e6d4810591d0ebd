//! Dravo as an AT Protocol OAuth client: the client metadata document an authorization
//! server fetches from the `client_id` URL, the `http://localhost` client id of local
//! development, and the client assertion (RFC 7523 `private_key_jwt`) that proves a
//! confidential client holds the key its JWKS publishes.

use serde_json::{Value, json};
use url::Url;

use super::keys::EsKey;
use super::random_token;
use crate::clock::Timestamp;

/// The scope Dravo asks for: the AT Protocol profile and the transitional scope that covers
/// posting (what an app password could do).
pub const DEFAULT_SCOPE: &str = "atproto transition:generic";

/// RFC 7523's assertion type.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long a client assertion is valid: long enough for one request.
pub const ASSERTION_LIFETIME_SECONDS: i64 = 60;

/// What the metadata document of a confidential web client says.
#[derive(Debug, Clone)]
pub struct WebClient<'a> {
    /// The https URL the document is served at.
    pub client_id: &'a str,
    pub client_name: &'a str,
    /// The client's home page; the spec asks for the `client_id`'s host.
    pub client_uri: &'a str,
    pub logo_uri: Option<&'a str>,
    pub redirect_uri: &'a str,
    /// Space-separated; must contain `atproto`.
    pub scope: &'a str,
    /// Where the client's JWKS is served.
    pub jwks_uri: &'a str,
}

/// The client metadata document of a confidential web client (atproto OAuth "Client ID
/// Metadata Document"): DPoP-bound tokens, `private_key_jwt` with ES256, the code and
/// refresh grants.
pub fn web_client_metadata(client: &WebClient<'_>) -> Value {
    let mut document = json!({
        "client_id": client.client_id,
        "client_name": client.client_name,
        "client_uri": client.client_uri,
        "application_type": "web",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "redirect_uris": [client.redirect_uri],
        "scope": client.scope,
        "dpop_bound_access_tokens": true,
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "ES256",
        "jwks_uri": client.jwks_uri,
    });
    if let Some(logo) = client.logo_uri {
        document["logo_uri"] = Value::from(logo);
    }
    document
}

/// Why a web client's settings cannot make a valid metadata document, as a sentence; `None`
/// when they can. The spec's rules: `client_id` and `jwks_uri` https without a port (the
/// default one included), the redirect URI and `client_uri` on the `client_id`'s host,
/// `atproto` among the scopes, `logo_uri` https.
pub fn check_web_client(client: &WebClient<'_>) -> Option<String> {
    let parse = |name: &str, value: &str| {
        Url::parse(value).map_err(|_| format!("the client's `{name}` is not a URL"))
    };
    let checks = || -> Result<(), String> {
        let id = parse("client_id", client.client_id)?;
        if id.scheme() != "https" || id.port().is_some() || !id.username().is_empty() {
            return Err("the `client_id` must be an https URL without a port".into());
        }
        for (name, value) in [
            ("redirect_uri", client.redirect_uri),
            ("client_uri", client.client_uri),
        ] {
            let url = parse(name, value)?;
            if url.scheme() != "https" || url.host_str() != id.host_str() {
                return Err(format!(
                    "the `{name}` must be an https URL on the `client_id`'s host ({})",
                    id.host_str().unwrap_or_default()
                ));
            }
        }
        let jwks = parse("jwks_uri", client.jwks_uri)?;
        if jwks.scheme() != "https" {
            return Err("the `jwks_uri` must be an https URL".into());
        }
        if let Some(logo) = client.logo_uri
            && parse("logo_uri", logo)?.scheme() != "https"
        {
            return Err("the `logo_uri` must be an https URL".into());
        }
        if !client.scope.split(' ').any(|s| s == "atproto") {
            return Err("the scope must contain `atproto`".into());
        }
        Ok(())
    };
    checks().err()
}

/// The client id of a public client in local development: `http://localhost` (no port, no
/// path) with the redirect URIs and the scope in its query. Authorization servers build its
/// metadata themselves; it has no key and makes no assertion. The spec allows only
/// `http://127.0.0.1…` and `http://[::1]…` redirect URIs for it (the port is not matched).
pub fn loopback_client_id(redirect_uris: &[&str], scope: &str) -> Result<String, String> {
    for uri in redirect_uris {
        let loopback = Url::parse(uri).is_ok_and(|url| {
            url.scheme() == "http" && matches!(url.host_str(), Some("127.0.0.1" | "[::1]"))
        });
        if !loopback {
            return Err(format!(
                "the development client's redirect URI `{}` is not http://127.0.0.1 or \
                 http://[::1]",
                uri.chars().take(100).collect::<String>()
            ));
        }
    }
    let mut id = Url::parse("http://localhost").expect("a constant URL");
    {
        let mut query = id.query_pairs_mut();
        for uri in redirect_uris {
            query.append_pair("redirect_uri", uri);
        }
        query.append_pair("scope", scope);
    }
    // The spec's form has no `/` before the query.
    Ok(id
        .to_string()
        .replacen("http://localhost/?", "http://localhost?", 1))
}

/// Whether `client_id` is a loopback development client id.
pub fn is_loopback_client_id(client_id: &str) -> bool {
    client_id == "http://localhost" || client_id.starts_with("http://localhost?")
}

/// An RFC 7523 client assertion: `iss` = `sub` = the client id, `aud` = the authorization
/// server's issuer, a fresh `jti`, `iat` and a short `exp`; the header names the key by `kid`.
pub fn client_assertion(key: &EsKey, client_id: &str, issuer: &str, now: Timestamp) -> String {
    key.sign_jws(
        &json!({"typ": "JWT", "kid": key.kid()}),
        &json!({
            "iss": client_id,
            "sub": client_id,
            "aud": issuer,
            "jti": random_token(),
            "iat": now.unix(),
            "exp": now.unix() + ASSERTION_LIFETIME_SECONDS,
        }),
    )
}

/// Who Dravo is to an authorization server: a confidential client with its key, or the
/// public loopback client of local development. `Debug` shows the key's `kid` only.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    Confidential { client_id: String, key: EsKey },
    Loopback { client_id: String },
}

impl ClientAuth {
    pub fn client_id(&self) -> &str {
        match self {
            ClientAuth::Confidential { client_id, .. } | ClientAuth::Loopback { client_id } => {
                client_id
            }
        }
    }

    /// The form fields that authenticate the client to `issuer`: `client_id`, and for a
    /// confidential client `client_assertion_type` and a new `client_assertion`.
    pub fn form_fields(&self, issuer: &str, now: Timestamp) -> Vec<(&'static str, String)> {
        let mut fields = vec![("client_id", self.client_id().to_owned())];
        if let ClientAuth::Confidential { client_id, key } = self {
            fields.push(("client_assertion_type", CLIENT_ASSERTION_TYPE.to_owned()));
            fields.push((
                "client_assertion",
                client_assertion(key, client_id, issuer, now),
            ));
        }
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::atproto::keys::{public_key_from_jwk, verify_jws};

    fn dravo() -> WebClient<'static> {
        WebClient {
            client_id: "https://dravo.example/v1/oauth/bluesky/client-metadata.json",
            client_name: "Dravo",
            client_uri: "https://dravo.example/",
            logo_uri: None,
            redirect_uri: "https://dravo.example/v1/oauth/bluesky/callback",
            scope: DEFAULT_SCOPE,
            jwks_uri: "https://dravo.example/v1/oauth/bluesky/jwks.json",
        }
    }

    #[test]
    fn the_metadata_document_declares_a_confidential_dpop_web_client() {
        let doc = web_client_metadata(&dravo());
        assert_eq!(
            doc,
            json!({
                "client_id": "https://dravo.example/v1/oauth/bluesky/client-metadata.json",
                "client_name": "Dravo",
                "client_uri": "https://dravo.example/",
                "application_type": "web",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "redirect_uris": ["https://dravo.example/v1/oauth/bluesky/callback"],
                "scope": "atproto transition:generic",
                "dpop_bound_access_tokens": true,
                "token_endpoint_auth_method": "private_key_jwt",
                "token_endpoint_auth_signing_alg": "ES256",
                "jwks_uri": "https://dravo.example/v1/oauth/bluesky/jwks.json",
            })
        );
        let with_logo = web_client_metadata(&WebClient {
            logo_uri: Some("https://dravo.example/logo.png"),
            ..dravo()
        });
        assert_eq!(with_logo["logo_uri"], "https://dravo.example/logo.png");
        assert_eq!(check_web_client(&dravo()), None);
    }

    #[test]
    fn web_client_settings_the_spec_forbids_are_named() {
        let cases = [
            (
                WebClient {
                    client_id: "http://dravo.example/m.json",
                    ..dravo()
                },
                "the `client_id` must be an https URL without a port",
            ),
            (
                WebClient {
                    client_id: "https://dravo.example:8443/m.json",
                    ..dravo()
                },
                "the `client_id` must be an https URL without a port",
            ),
            (
                WebClient {
                    redirect_uri: "https://elsewhere.example/cb",
                    ..dravo()
                },
                "the `redirect_uri` must be an https URL on the `client_id`'s host (dravo.example)",
            ),
            (
                WebClient {
                    scope: "transition:generic",
                    ..dravo()
                },
                "the scope must contain `atproto`",
            ),
            (
                WebClient {
                    logo_uri: Some("http://dravo.example/l.png"),
                    ..dravo()
                },
                "the `logo_uri` must be an https URL",
            ),
            (
                WebClient {
                    jwks_uri: "not a url",
                    ..dravo()
                },
                "the client's `jwks_uri` is not a URL",
            ),
        ];
        for (client, expected) in cases {
            assert_eq!(check_web_client(&client).as_deref(), Some(expected));
        }
    }

    #[test]
    fn the_loopback_client_id_carries_redirect_uris_and_scope_in_its_query() {
        let id = loopback_client_id(
            &["http://127.0.0.1:8080/callback", "http://[::1]/cb"],
            "atproto transition:generic",
        )
        .unwrap();
        assert_eq!(
            id,
            "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcallback\
             &redirect_uri=http%3A%2F%2F%5B%3A%3A1%5D%2Fcb&scope=atproto+transition%3Ageneric"
        );
        assert!(is_loopback_client_id(&id));
        let parsed = Url::parse(&id).unwrap();
        assert_eq!(parsed.host_str(), Some("localhost"));
        assert_eq!(parsed.port(), None);
        assert_eq!(parsed.path(), "/");
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        assert_eq!(pairs[0].1, "http://127.0.0.1:8080/callback");
        assert_eq!(
            pairs[2],
            ("scope".into(), "atproto transition:generic".into())
        );
        assert!(!is_loopback_client_id("https://dravo.example/m.json"));
        assert!(!is_loopback_client_id("http://localhost:8080"));
        for refused in [
            "http://localhost:8080/cb",
            "https://127.0.0.1/cb",
            "http://10.0.0.1/",
        ] {
            assert!(
                loopback_client_id(&[refused], "atproto")
                    .unwrap_err()
                    .contains("is not http://127.0.0.1 or http://[::1]"),
                "{refused}"
            );
        }
    }

    #[test]
    fn a_client_assertion_is_signed_for_the_issuer_and_expires_soon() {
        let key = EsKey::generate();
        let now = Timestamp::from_unix(1_800_000_000);
        let jws = client_assertion(
            &key,
            "https://dravo.example/m.json",
            "https://as.example",
            now,
        );
        let public = public_key_from_jwk(&key.public_jwk()).unwrap();
        let (header, claims) = verify_jws(&jws, &public).unwrap();
        assert_eq!(header["kid"], key.kid());
        assert_eq!(header["alg"], "ES256");
        assert_eq!(claims["iss"], "https://dravo.example/m.json");
        assert_eq!(claims["sub"], "https://dravo.example/m.json");
        assert_eq!(claims["aud"], "https://as.example");
        assert_eq!(claims["iat"], 1_800_000_000);
        assert_eq!(claims["exp"], 1_800_000_060);
        let again = client_assertion(
            &key,
            "https://dravo.example/m.json",
            "https://as.example",
            now,
        );
        let (_, second) = verify_jws(&again, &public).unwrap();
        assert_ne!(claims["jti"], second["jti"]);
    }

    #[test]
    fn only_a_confidential_client_sends_an_assertion() {
        let now = Timestamp::from_unix(1_800_000_000);
        let confidential = ClientAuth::Confidential {
            client_id: "https://dravo.example/m.json".into(),
            key: EsKey::generate(),
        };
        let fields = confidential.form_fields("https://as.example", now);
        let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            ["client_id", "client_assertion_type", "client_assertion"]
        );
        assert_eq!(fields[1].1, CLIENT_ASSERTION_TYPE);
        assert!(!format!("{confidential:?}").contains(&fields[2].1));
        let loopback = ClientAuth::Loopback {
            client_id: loopback_client_id(&[], "atproto").unwrap(),
        };
        assert_eq!(
            loopback.form_fields("https://as.example", now),
            [("client_id", "http://localhost?scope=atproto".to_owned())]
        );
    }
}
