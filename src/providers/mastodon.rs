//! Mastodon's side of a connect, on any instance: there is no central app, so Dravo registers
//! one on each instance a tenant's app is used with (`POST /api/v1/apps`), finds the
//! instance's OAuth endpoints (RFC 8414 discovery on Mastodon 4.3+, which also says whether it
//! takes PKCE; the classic `/oauth/*` paths before), reads who connected
//! (`verify_credentials`) and revokes (`/oauth/revoke`). Every call goes to a host a user
//! chose, so through `ProviderHttp::guarded`. Tokens never expire and have no refresh.
//!
//! An account id is unique only within its instance: the identity Dravo stores is
//! `{id}@{host}`.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

use super::http::{ProviderError, ProviderHttp, string_field};
use super::{
    ClientAuth, DefaultEndpoints, Endpoints, Hosting, Identity, OAuthProvider, Provider, Renewal,
    TokenRefresh, TokenSet,
};

/// An instance's OAuth endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceEndpoints {
    /// `https://host[:port]/`: where the API lives.
    pub origin: Url,
    pub authorize_url: Url,
    pub token_url: Url,
    pub revoke_url: Url,
    /// The instance takes PKCE S256 (it says so in its metadata).
    pub pkce: bool,
    /// The scopes it says it supports; `None` before 4.3 (no metadata).
    pub scopes_supported: Option<Vec<String>>,
}

impl InstanceEndpoints {
    /// The classic endpoints every Mastodon has: `/oauth/authorize`, `/oauth/token`,
    /// `/oauth/revoke`, without PKCE.
    pub fn classic(origin: &Url) -> InstanceEndpoints {
        let at = |path: &str| origin.join(path).expect("a path joins an origin");
        InstanceEndpoints {
            origin: origin.clone(),
            authorize_url: at("/oauth/authorize"),
            token_url: at("/oauth/token"),
            revoke_url: at("/oauth/revoke"),
            pkce: false,
            scopes_supported: None,
        }
    }

    /// These endpoints as a provider's `Endpoints`: the API at the origin.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            authorize_url: self.authorize_url.clone(),
            token_url: self.token_url.clone(),
            api_base: self.origin.clone(),
            api_version: String::new(),
            revoke_url: Some(self.revoke_url.clone()),
        }
    }

    /// The scopes to register and request when the app names none: `profile` (reading only
    /// who connected) where the instance has it (4.3+), `read:accounts` before; and posting.
    pub fn default_scopes(&self) -> Vec<String> {
        let who = match &self.scopes_supported {
            Some(scopes) if scopes.iter().any(|s| s == "profile") => "profile",
            _ => "read:accounts",
        };
        [who, "write:statuses", "write:media"]
            .map(String::from)
            .to_vec()
    }
}

/// The instance's endpoints: from `/.well-known/oauth-authorization-server` when it answers
/// one (Mastodon 4.3+), else the classic ones. The metadata may only name endpoints on the
/// instance itself, so that it cannot steer Dravo elsewhere.
pub async fn discover(
    http: &ProviderHttp,
    origin: &Url,
) -> Result<InstanceEndpoints, ProviderError> {
    let url = origin
        .join("/.well-known/oauth-authorization-server")
        .expect("a path joins an origin");
    // Before 4.3 there is no such document: a 404 page, often HTML. Anything but a JSON
    // success means the classic endpoints; not reaching the instance is an error.
    let body = match http.send(http.client().get(url)).await {
        Ok(answer) if (200..300).contains(&answer.status) && answer.body.is_object() => answer.body,
        Ok(_) | Err(ProviderError::Malformed(_)) => return Ok(InstanceEndpoints::classic(origin)),
        Err(other) => return Err(other),
    };
    let endpoint = |field: &str| -> Result<Url, ProviderError> {
        let text = body[field].as_str().ok_or_else(|| {
            ProviderError::malformed(format!("the instance's OAuth metadata has no `{field}`"))
        })?;
        let url = Url::parse(text).map_err(|_| {
            ProviderError::malformed(format!("the instance's `{field}` is not a URL"))
        })?;
        if url.origin() != origin.origin() {
            return Err(ProviderError::malformed(format!(
                "the instance's `{field}` is on another host ({}): refused",
                url.host_str().unwrap_or("none")
            )));
        }
        Ok(url)
    };
    let classic = InstanceEndpoints::classic(origin);
    Ok(InstanceEndpoints {
        origin: origin.clone(),
        authorize_url: endpoint("authorization_endpoint")?,
        token_url: endpoint("token_endpoint")?,
        revoke_url: if body.get("revocation_endpoint").is_some() {
            endpoint("revocation_endpoint")?
        } else {
            classic.revoke_url
        },
        pkce: body["code_challenge_methods_supported"]
            .as_array()
            .is_some_and(|methods| methods.iter().any(|m| m == "S256")),
        scopes_supported: body["scopes_supported"].as_array().map(|scopes| {
            scopes
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        }),
    })
}

/// What registering an app on an instance gave.
pub struct Registration {
    pub client_id: String,
    pub client_secret: SecretString,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[sealed]")
            .finish()
    }
}

/// What an app is registered with on an instance.
pub struct AppToRegister<'a> {
    /// The name users see on the instance's consent screen.
    pub client_name: &'a str,
    pub website: Option<&'a str>,
    pub redirect_uri: &'a str,
    pub scopes: &'a [String],
}

/// `POST /api/v1/apps`: registers the app on the instance, once per (app, instance).
pub async fn register(
    http: &ProviderHttp,
    endpoints: &InstanceEndpoints,
    app: &AppToRegister<'_>,
) -> Result<Registration, ProviderError> {
    let url = endpoints
        .origin
        .join("/api/v1/apps")
        .expect("a path joins an origin");
    let scopes = app.scopes.join(" ");
    let mut form = vec![
        ("client_name", app.client_name),
        ("redirect_uris", app.redirect_uri),
        ("scopes", scopes.as_str()),
    ];
    if let Some(website) = app.website {
        form.push(("website", website));
    }
    let body = http
        .send(http.client().post(url).form(&form))
        .await?
        .into_success()?;
    let field = |name: &str| {
        string_field(&body, name).ok_or_else(|| {
            ProviderError::malformed(format!("the app registration answer has no `{name}`"))
        })
    };
    Ok(Registration {
        client_id: field("client_id")?,
        client_secret: SecretString::from(field("client_secret")?),
    })
}

/// The identity in a `verify_credentials` answer from the instance at `origin`.
fn identity_from(body: &Value, origin: &Url) -> Result<Identity, ProviderError> {
    let host = instance_name(origin);
    let id = super::required_id(body, "id")?;
    if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ProviderError::malformed(
            "the account id is not a plain id".to_owned(),
        ));
    }
    Ok(Identity {
        provider_account_id: format!("{id}@{host}"),
        username: string_field(body, "username").map(|u| format!("@{u}@{host}")),
        display_name: string_field(body, "display_name").filter(|d| !d.trim().is_empty()),
    })
}

/// The instance as people write it: its host, with the port when it is not 443.
pub fn instance_name(origin: &Url) -> String {
    let host = origin.host_str().unwrap_or_default();
    match origin.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// Mastodon, on whichever instance each connect names.
pub(super) struct Mastodon;

/// Every scope Mastodon documents (docs.joinmastodon.org, "OAuth scopes").
const KNOWN_SCOPES: &[&str] = &[
    "profile",
    "read",
    "write",
    "follow",
    "push",
    "read:accounts",
    "read:blocks",
    "read:bookmarks",
    "read:favourites",
    "read:filters",
    "read:follows",
    "read:lists",
    "read:mutes",
    "read:notifications",
    "read:search",
    "read:statuses",
    "write:accounts",
    "write:blocks",
    "write:bookmarks",
    "write:conversations",
    "write:favourites",
    "write:filters",
    "write:follows",
    "write:lists",
    "write:media",
    "write:mutes",
    "write:notifications",
    "write:reports",
    "write:statuses",
    "admin:read",
    "admin:write",
];

#[async_trait]
impl OAuthProvider for Mastodon {
    fn id(&self) -> Provider {
        Provider::named("mastodon")
    }

    fn display_name(&self) -> &'static str {
        "Mastodon"
    }

    fn hosting(&self) -> Hosting {
        Hosting::Instances { param: "instance" }
    }

    /// `read:accounts` rather than 4.3's narrower `profile`, which older instances refuse; an
    /// app left at these defaults asks each instance for `InstanceEndpoints::default_scopes`.
    fn default_scopes(&self) -> &'static [&'static str] {
        &["read:accounts", "write:statuses", "write:media"]
    }

    fn known_scopes(&self) -> &'static [&'static str] {
        KNOWN_SCOPES
    }

    /// `verify_credentials` takes any of `profile`, `read` and `read:accounts`.
    fn identity_scopes(&self, requested: &[String]) -> &'static [&'static str] {
        let has = |scope: &str| requested.iter().any(|s| s == scope);
        if has("profile") {
            &["profile"]
        } else if has("read") {
            &["read"]
        } else {
            &["read:accounts"]
        }
    }

    /// There are none: each connect's instance has its own (`discover`), and the config
    /// refuses endpoint overrides for Mastodon. The flagship instance's stand in.
    fn default_endpoints(&self, _api_version: Option<&str>) -> DefaultEndpoints {
        DefaultEndpoints {
            authorize_url: "https://mastodon.social/oauth/authorize".into(),
            token_url: "https://mastodon.social/oauth/token".into(),
            api_base: "https://mastodon.social".into(),
        }
    }

    fn client_auth(&self) -> ClientAuth {
        ClientAuth::FormBody {
            id_param: "client_id",
        }
    }

    fn renewal(&self) -> Renewal {
        Renewal::Never
    }

    /// Mastodon's tokens do not expire: they live until revoked.
    fn assumed_lifetime_seconds(&self) -> Option<i64> {
        None
    }

    /// `POST /oauth/revoke` (or the instance's `revocation_endpoint`) with the registration's
    /// credentials and the token.
    async fn revoke(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        r: &TokenRefresh<'_>,
    ) -> Result<bool, ProviderError> {
        let url = endpoints
            .revoke_url
            .clone()
            .unwrap_or_else(|| endpoints.beside_token_url("revoke"));
        let form = [
            ("client_id", r.client_id),
            ("client_secret", r.client_secret),
            ("token", r.access_token),
        ];
        http.send(http.client().post(url).form(&form))
            .await?
            .into_success()?;
        Ok(true)
    }

    /// `GET /api/v1/accounts/verify_credentials` on the instance: `{id}@{host}`,
    /// `@{username}@{host}` and the display name.
    async fn identify(
        &self,
        http: &ProviderHttp,
        endpoints: &Endpoints,
        tokens: &TokenSet,
    ) -> Result<Identity, ProviderError> {
        let origin = &endpoints.api_base;
        let url = origin
            .join("/api/v1/accounts/verify_credentials")
            .expect("a path joins an origin");
        let body = http
            .send(
                http.client()
                    .get(url)
                    .bearer_auth(tokens.access_token.expose_secret()),
            )
            .await?
            .into_success()?;
        identity_from(&body, origin)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use poem::web::{Data, Form, Json};
    use poem::{EndpointExt, Route, handler, http::StatusCode};
    use serde_json::json;

    use super::*;

    /// What the fake instance saw registered.
    #[derive(Default)]
    struct Seen {
        registered: Vec<Vec<(String, String)>>,
        revoked: Vec<Vec<(String, String)>>,
    }

    /// Where the metadata says the consent screen is: the instance itself, or (to test the
    /// refusal) another host.
    #[derive(Clone, Copy, PartialEq)]
    enum Metadata {
        None,
        Own,
        Elsewhere,
    }

    #[handler]
    fn metadata(Data(base): Data<&String>, Data(kind): Data<&Metadata>) -> Json<Value> {
        let authorize = match kind {
            Metadata::Elsewhere => "https://evil.example/oauth/authorize".to_owned(),
            _ => format!("{base}/oauth/authorize"),
        };
        Json(json!({
            "issuer": base,
            "authorization_endpoint": authorize,
            "token_endpoint": format!("{base}/oauth/token"),
            "revocation_endpoint": format!("{base}/oauth/revoke"),
            "scopes_supported": ["read", "profile", "write:statuses", "write:media"],
            "code_challenge_methods_supported": ["S256"],
        }))
    }

    #[handler]
    fn apps(
        Data(seen): Data<&Arc<Mutex<Seen>>>,
        Form(form): Form<Vec<(String, String)>>,
    ) -> Json<Value> {
        seen.lock().unwrap().registered.push(form);
        Json(json!({"id": "1", "client_id": "cid-xyz", "client_secret": "csecret-xyz"}))
    }

    #[handler]
    fn revoke_token(
        Data(seen): Data<&Arc<Mutex<Seen>>>,
        Form(form): Form<Vec<(String, String)>>,
    ) -> Json<Value> {
        seen.lock().unwrap().revoked.push(form);
        Json(json!({}))
    }

    #[handler]
    fn me(req: &poem::Request) -> poem::Result<Json<Value>> {
        match req.header("authorization") {
            Some("Bearer tok-1") => Ok(Json(json!({
                "id": "109876543210", "username": "alice", "acct": "alice",
                "display_name": "Alice", "url": "https://example/@alice"
            }))),
            _ => Err(poem::Error::from_status(StatusCode::UNAUTHORIZED)),
        }
    }

    /// A Mastodon on 127.0.0.1, with OAuth metadata (4.3+) or without.
    async fn instance(kind: Metadata) -> (Url, Arc<Mutex<Seen>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut route = Route::new()
            .at("/api/v1/apps", poem::post(apps))
            .at("/oauth/revoke", poem::post(revoke_token))
            .at("/api/v1/accounts/verify_credentials", poem::get(me));
        if kind != Metadata::None {
            route = route.at(
                "/.well-known/oauth-authorization-server",
                poem::get(metadata),
            );
        }
        let app = route.data(base.clone()).data(seen.clone()).data(kind);
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
        (Url::parse(&base).unwrap(), seen)
    }

    fn http() -> ProviderHttp {
        ProviderHttp::guarded(Duration::from_secs(5), true)
    }

    #[tokio::test]
    async fn a_modern_instance_is_discovered_with_pkce_and_profile() {
        let (origin, _) = instance(Metadata::Own).await;
        let endpoints = discover(&http(), &origin).await.unwrap();
        assert!(endpoints.pkce);
        assert_eq!(endpoints.token_url, origin.join("/oauth/token").unwrap());
        assert_eq!(
            endpoints.default_scopes(),
            ["profile", "write:statuses", "write:media"]
        );
    }

    #[tokio::test]
    async fn an_older_instance_gets_the_classic_endpoints_without_pkce() {
        let (origin, _) = instance(Metadata::None).await;
        let endpoints = discover(&http(), &origin).await.unwrap();
        assert_eq!(endpoints, InstanceEndpoints::classic(&origin));
        assert!(!endpoints.pkce);
        assert_eq!(
            endpoints.default_scopes(),
            ["read:accounts", "write:statuses", "write:media"]
        );
    }

    #[tokio::test]
    async fn metadata_naming_another_host_is_refused() {
        let (origin, _) = instance(Metadata::Elsewhere).await;
        let err = discover(&http(), &origin).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "the provider's answer cannot be read: the instance's `authorization_endpoint` is \
             on another host (evil.example): refused"
        );
    }

    #[tokio::test]
    async fn register_identify_and_revoke_on_an_instance() {
        let (origin, seen) = instance(Metadata::Own).await;
        let http = http();
        let endpoints = discover(&http, &origin).await.unwrap();
        let scopes = endpoints.default_scopes();
        let registration = register(
            &http,
            &endpoints,
            &AppToRegister {
                client_name: "Scheduler",
                website: Some("https://scheduler.example"),
                redirect_uri: "https://dravo.example/v1/oauth/mastodon/callback",
                scopes: &scopes,
            },
        )
        .await
        .unwrap();
        assert_eq!(registration.client_id, "cid-xyz");
        assert_eq!(registration.client_secret.expose_secret(), "csecret-xyz");
        assert!(!format!("{registration:?}").contains("csecret"));
        let form = seen.lock().unwrap().registered[0].clone();
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("client_name"), Some("Scheduler"));
        assert_eq!(get("scopes"), Some("profile write:statuses write:media"));
        assert_eq!(get("website"), Some("https://scheduler.example"));

        let provider: &dyn OAuthProvider = &Mastodon;
        let at = endpoints.endpoints();
        let who = provider
            .identify(&http, &at, &tokens("tok-1"))
            .await
            .unwrap();
        let host = instance_name(&origin);
        assert_eq!(who.provider_account_id, format!("109876543210@{host}"));
        assert_eq!(
            who.username.as_deref(),
            Some(format!("@alice@{host}").as_str())
        );
        assert!(
            provider
                .identify(&http, &at, &tokens("nope"))
                .await
                .is_err()
        );

        let revoked = provider
            .revoke(
                &http,
                &at,
                &TokenRefresh {
                    client_id: &registration.client_id,
                    client_secret: registration.client_secret.expose_secret(),
                    access_token: "tok-1",
                    refresh_token: None,
                },
            )
            .await
            .unwrap();
        assert!(revoked);
        let form = seen.lock().unwrap().revoked[0].clone();
        assert!(form.contains(&("client_secret".into(), "csecret-xyz".into())));
        assert!(form.contains(&("token".into(), "tok-1".into())));
    }

    fn tokens(access: &str) -> TokenSet {
        crate::providers::parse_token_response(&json!({"access_token": access})).unwrap()
    }

    #[test]
    fn the_same_id_on_two_instances_is_two_identities() {
        let body = json!({"id": "42", "username": "bob"});
        let one = identity_from(&body, &Url::parse("https://one.example/").unwrap()).unwrap();
        let two = identity_from(&body, &Url::parse("https://two.example:8443/").unwrap()).unwrap();
        assert_eq!(one.provider_account_id, "42@one.example");
        assert_eq!(two.provider_account_id, "42@two.example:8443");
        assert_ne!(one.provider_account_id, two.provider_account_id);
        assert!(
            identity_from(
                &json!({"id": "4/2"}),
                &Url::parse("https://one.example/").unwrap()
            )
            .is_err()
        );
    }

    /// Without `allow_private_addresses` a loopback instance is not reached at all.
    #[tokio::test]
    async fn a_loopback_instance_is_refused_by_the_guarded_client() {
        let (origin, seen) = instance(Metadata::Own).await;
        let guarded = ProviderHttp::guarded(Duration::from_secs(5), false);
        let err = discover(&guarded, &origin).await.unwrap_err();
        assert_eq!(err.code(), "host_refused", "{err}");
        assert!(seen.lock().unwrap().registered.is_empty());
    }
}
