//! The OAuth calls of an AT Protocol connect, each with a DPoP proof and (for a confidential
//! client) a client assertion: the pushed authorization request (RFC 9126) and the redirect
//! that follows, the code exchange, refresh, revocation; the check every client must make of
//! the token answer (its `sub` is an account this server speaks for, its scope has
//! `atproto`); and the profile call, the first use of the token at the PDS.

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;
use url::Url;

use super::client::ClientAuth;
use super::dpop::Dpop;
use super::resolve::{Account, AuthServer, Did, Resolver, mismatch};
use super::{AtprotoHttp, host_of};
use crate::providers::http::{ProviderError, string_field};
use crate::providers::{Identity, TokenSet};

/// What a pushed authorization request asks for.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest<'a> {
    pub redirect_uri: &'a str,
    /// Space-separated; must contain `atproto`.
    pub scope: &'a str,
    pub state: &'a str,
    /// The PKCE S256 challenge.
    pub code_challenge: &'a str,
    /// What the user typed (handle or DID), when they named an account.
    pub login_hint: Option<&'a str>,
}

/// The server's answer to PAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedRequest {
    pub request_uri: String,
    pub expires_in: Option<i64>,
}

/// `POST` the authorization request to the server's PAR endpoint, with the client's
/// authentication and a DPoP proof (which binds the session's key from the start).
pub async fn push_authorization_request(
    http: &AtprotoHttp,
    dpop: &Dpop,
    server: &AuthServer,
    client: &ClientAuth,
    request: &AuthorizationRequest<'_>,
) -> Result<PushedRequest, ProviderError> {
    let mut form: Vec<(&str, String)> = vec![
        ("response_type", "code".into()),
        ("redirect_uri", request.redirect_uri.into()),
        ("scope", request.scope.into()),
        ("state", request.state.into()),
        ("code_challenge", request.code_challenge.into()),
        ("code_challenge_method", "S256".into()),
    ];
    if let Some(hint) = request.login_hint {
        form.push(("login_hint", hint.into()));
    }
    let body = token_endpoint_call(
        http,
        dpop,
        server,
        client,
        &server.pushed_authorization_request_endpoint,
        form,
    )
    .await?;
    let request_uri = string_field(&body, "request_uri").ok_or_else(|| {
        ProviderError::malformed(format!(
            "the PAR answer of {} has no `request_uri`",
            server.issuer
        ))
    })?;
    Ok(PushedRequest {
        request_uri,
        expires_in: crate::providers::http::int_field(&body, "expires_in"),
    })
}

/// Where the user's browser goes after PAR: `authorization_endpoint?client_id&request_uri`.
pub fn authorize_url(server: &AuthServer, client_id: &str, request_uri: &str) -> Url {
    let mut url = server.authorization_endpoint.clone();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("request_uri", request_uri);
    url
}

/// RFC 9207: the callback's `iss` must be the issuer the request was pushed to, so a code
/// from another server is never sent to this one.
pub fn check_callback_issuer(server: &AuthServer, iss: Option<&str>) -> Result<(), ProviderError> {
    match iss {
        Some(iss) if iss == server.issuer => Ok(()),
        Some(other) => Err(mismatch(format!(
            "the callback came from the issuer `{}`, not {}",
            other.chars().take(100).collect::<String>(),
            server.issuer
        ))),
        None => Err(ProviderError::malformed(format!(
            "the callback from {} has no `iss`",
            server.issuer
        ))),
    }
}

/// A token answer of the atproto profile, checked for its shape (not yet for who `sub` is:
/// [`verify_subject`]). `Debug` hides the tokens.
pub struct Tokens {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    /// The account's DID.
    pub sub: Did,
    pub scope: Vec<String>,
    /// Seconds from now.
    pub expires_in: Option<i64>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("sub", &self.sub)
            .field("scope", &self.scope)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

impl Tokens {
    /// As every provider's tokens are stored; the DID is the account hint.
    pub fn into_token_set(self) -> TokenSet {
        TokenSet {
            access_token: self.access_token,
            refresh_token: self.refresh_token,
            expires_in: self.expires_in,
            refresh_expires_in: None,
            granted_scopes: Some(self.scope),
            account_hint: Some(self.sub.as_str().to_owned()),
        }
    }
}

/// Reads a token answer: an access token, `token_type` DPoP (a Bearer token would not be
/// bound to the key), `sub` a DID, and a `scope` that contains `atproto`.
pub fn read_tokens(issuer: &str, body: &Value) -> Result<Tokens, ProviderError> {
    let refuse =
        |why: &str| ProviderError::malformed(format!("the token answer of {issuer} {why}"));
    let access = string_field(body, "access_token").ok_or_else(|| refuse("has no access_token"))?;
    let token_type = string_field(body, "token_type").unwrap_or_default();
    if !token_type.eq_ignore_ascii_case("DPoP") {
        return Err(refuse(&format!(
            "has the token_type `{}`, not DPoP",
            token_type.chars().take(20).collect::<String>()
        )));
    }
    let sub = string_field(body, "sub").ok_or_else(|| refuse("has no `sub`"))?;
    let sub = Did::parse(&sub).map_err(|why| refuse(&format!("has a `sub` that {why}")))?;
    let scope = string_field(body, "scope").ok_or_else(|| refuse("has no `scope`"))?;
    let scope: Vec<String> = scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if !scope.iter().any(|s| s == "atproto") {
        return Err(refuse("grants no `atproto` scope"));
    }
    Ok(Tokens {
        access_token: SecretString::from(access),
        refresh_token: string_field(body, "refresh_token").map(SecretString::from),
        sub,
        scope,
        expires_in: crate::providers::http::int_field(body, "expires_in"),
    })
}

/// Trades the code for tokens (with the PKCE verifier), then checks the answer's shape.
pub async fn exchange_code(
    http: &AtprotoHttp,
    dpop: &Dpop,
    server: &AuthServer,
    client: &ClientAuth,
    code: &str,
    redirect_uri: &str,
    code_verifier: &str,
) -> Result<Tokens, ProviderError> {
    let form = vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.into()),
        ("redirect_uri", redirect_uri.into()),
        ("code_verifier", code_verifier.into()),
    ];
    let body =
        token_endpoint_call(http, dpop, server, client, &server.token_endpoint, form).await?;
    read_tokens(&server.issuer, &body)
}

/// Renews the tokens of the session of `did` with its (single-use) refresh token; the new
/// refresh token replaces it. The answer must be for the same account.
pub async fn refresh(
    http: &AtprotoHttp,
    dpop: &Dpop,
    server: &AuthServer,
    client: &ClientAuth,
    did: &Did,
    refresh_token: &SecretString,
) -> Result<Tokens, ProviderError> {
    let form = vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", refresh_token.expose_secret().to_owned()),
    ];
    let body =
        token_endpoint_call(http, dpop, server, client, &server.token_endpoint, form).await?;
    let tokens = read_tokens(&server.issuer, &body)?;
    if &tokens.sub != did {
        return Err(mismatch(format!(
            "a refresh of the session of {did} at {} answered for {}",
            server.issuer, tokens.sub
        )));
    }
    Ok(tokens)
}

/// Revokes a token (RFC 7009) where the server has a revocation endpoint; `Ok(false)` when
/// it has none.
pub async fn revoke(
    http: &AtprotoHttp,
    dpop: &Dpop,
    server: &AuthServer,
    client: &ClientAuth,
    token: &SecretString,
) -> Result<bool, ProviderError> {
    let Some(endpoint) = &server.revocation_endpoint else {
        return Ok(false);
    };
    let form = vec![("token", token.expose_secret().to_owned())];
    token_endpoint_call(http, dpop, server, client, endpoint, form).await?;
    Ok(true)
}

/// The check the spec makes mandatory after the first token answer: `sub` matches the account
/// the user named (when they named one), and its DID document's PDS names this server as its
/// authorization server, whose metadata's `issuer` is this server's.
pub async fn verify_subject(
    resolver: &Resolver,
    server: &AuthServer,
    tokens: &Tokens,
    expected: Option<&Did>,
) -> Result<Account, ProviderError> {
    if let Some(expected) = expected
        && expected != &tokens.sub
    {
        return Err(mismatch(format!(
            "{} authorized {}, not the account the connect started for ({expected})",
            server.issuer, tokens.sub
        )));
    }
    let account = resolver.account_of_did(&tokens.sub).await?;
    let origin = resolver.authorization_server_url(&account.pds).await?;
    let confirmed = resolver.authorization_server(&origin).await?;
    if confirmed.issuer != server.issuer {
        return Err(mismatch(format!(
            "{} authorized {}, whose PDS ({}) names {} as its authorization server",
            server.issuer,
            tokens.sub,
            host_of(&account.pds),
            confirmed.issuer
        )));
    }
    Ok(account)
}

/// `app.bsky.actor.getProfile` at the account's PDS with the DPoP-bound token: who the
/// account is, as Dravo stores it (the DID is the id; `@handle` and the display name).
pub async fn get_profile(
    http: &AtprotoHttp,
    dpop: &Dpop,
    pds: &Url,
    access_token: &SecretString,
    did: &Did,
) -> Result<Identity, ProviderError> {
    let url = pds
        .join("/xrpc/app.bsky.actor.getProfile")
        .map_err(|_| ProviderError::malformed("the PDS URL cannot be joined"))?;
    let body = dpop
        .send(http, Some(access_token), |client| {
            client.get(url.clone()).query(&[("actor", did.as_str())])
        })
        .await?
        .into_success()?;
    if body["did"] != did.as_str() {
        return Err(mismatch(format!(
            "{} answered the profile of another account for {did}",
            host_of(pds)
        )));
    }
    Ok(Identity {
        provider_account_id: did.as_str().to_owned(),
        username: string_field(&body, "handle").map(|h| format!("@{h}")),
        display_name: string_field(&body, "displayName").filter(|d| !d.trim().is_empty()),
    })
}

/// A form `POST` to one of the server's endpoints with the client's authentication and DPoP;
/// the answer's body on success, the server's OAuth error otherwise.
async fn token_endpoint_call(
    http: &AtprotoHttp,
    dpop: &Dpop,
    server: &AuthServer,
    client: &ClientAuth,
    endpoint: &Url,
    form: Vec<(&str, String)>,
) -> Result<Value, ProviderError> {
    let answer = dpop
        .send(http, None, |reqwest_client| {
            // A new assertion each time: a retry after a nonce must not replay its `jti`.
            let mut fields = form.clone();
            fields.extend(client.form_fields(&server.issuer, dpop.clock().now()));
            reqwest_client.post(endpoint.clone()).form(&fields)
        })
        .await?;
    answer.into_success()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::clock::{ManualClock, SystemClock, Timestamp};
    use crate::providers::atproto::client::DEFAULT_SCOPE;
    use crate::providers::atproto::dpop::NonceStore;
    use crate::providers::atproto::fake::{Check, ClientSite, FakeDns, World};
    use crate::providers::atproto::keys::EsKey;
    use crate::providers::atproto::resolve::{Discovery, Handle, LoginInput};

    /// The fake world, Dravo's client site, and what a connect uses.
    struct Setup {
        world: World,
        site: ClientSite,
        client: ClientAuth,
        http: AtprotoHttp,
        resolver: Resolver,
    }

    async fn setup() -> Setup {
        let world = World::start().await;
        let key = EsKey::generate();
        let site = ClientSite::start(&key).await;
        let client = ClientAuth::Confidential {
            client_id: site.client_id.clone(),
            key,
        };
        let http = AtprotoHttp::guarded(Duration::from_secs(5), true);
        let resolver = Resolver::new(http.clone(), world.plc(), Arc::new(FakeDns::default()))
            .with_handle_documents_at(world.handles());
        Setup {
            world,
            site,
            client,
            http,
            resolver,
        }
    }

    fn session_dpop() -> Dpop {
        Dpop::new(EsKey::generate(), NonceStore::new(), Arc::new(SystemClock))
    }

    /// A fresh PKCE verifier and its challenge.
    fn pkce() -> (String, String) {
        let verifier = crate::providers::atproto::b64(rand::random::<[u8; 32]>());
        let challenge = crate::crypto::state::pkce_challenge(&verifier);
        (verifier, challenge)
    }

    async fn discover(s: &Setup) -> Discovery {
        let input = LoginInput::Handle(Handle::parse("alice.test").unwrap());
        s.resolver.discover(&input).await.unwrap()
    }

    async fn push(
        s: &Setup,
        dpop: &Dpop,
        server: &AuthServer,
        challenge: &str,
    ) -> Result<PushedRequest, ProviderError> {
        push_authorization_request(
            &s.http,
            dpop,
            server,
            &s.client,
            &AuthorizationRequest {
                redirect_uri: &s.site.redirect_uri,
                scope: DEFAULT_SCOPE,
                state: "state-1",
                code_challenge: challenge,
                login_hint: Some("alice.test"),
            },
        )
        .await
    }

    /// The user's browser at the authorization endpoint, approving at once: the callback's
    /// query.
    async fn approve(url: &Url) -> Vec<(String, String)> {
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let resp = browser.get(url.clone()).send().await.unwrap();
        assert_eq!(
            resp.status().as_u16(),
            303,
            "{}",
            resp.text().await.unwrap()
        );
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        Url::parse(&location)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect()
    }

    fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// PAR, consent and the code: (code, verifier).
    async fn consent(s: &Setup, dpop: &Dpop, server: &AuthServer) -> (String, String) {
        let (verifier, challenge) = pkce();
        let pushed = push(s, dpop, server, &challenge).await.unwrap();
        let callback = approve(&authorize_url(
            server,
            s.client.client_id(),
            &pushed.request_uri,
        ))
        .await;
        check_callback_issuer(server, param(&callback, "iss")).unwrap();
        assert_eq!(param(&callback, "state"), Some("state-1"));
        (param(&callback, "code").unwrap().to_owned(), verifier)
    }

    async fn exchange(
        s: &Setup,
        dpop: &Dpop,
        server: &AuthServer,
        code: &str,
        verifier: &str,
    ) -> Result<Tokens, ProviderError> {
        exchange_code(
            &s.http,
            dpop,
            server,
            &s.client,
            code,
            &s.site.redirect_uri,
            verifier,
        )
        .await
    }

    fn refused(err: &ProviderError) -> (String, String) {
        match err {
            ProviderError::Rejected { code, description } => {
                (code.clone(), description.clone().unwrap_or_default())
            }
            other => panic!("not a refusal: {other}"),
        }
    }

    /// The whole connect and a session's life: discovery from a handle, PAR (after the
    /// server's nonce demand), consent, code exchange, the `sub` check, the profile at the
    /// PDS (after the resource server's own nonce demand), a refresh that rotates the refresh
    /// token, the old one refused, and revocation.
    #[tokio::test]
    async fn a_handle_connects_refreshes_calls_the_pds_and_revokes() {
        let s = setup().await;
        let discovery = discover(&s).await;
        let account = discovery.account.clone().unwrap();
        assert_eq!(account.did.as_str(), s.world.did());
        assert_eq!(account.handle.as_ref().unwrap().as_str(), "alice.test");
        assert_eq!(discovery.server.issuer, s.world.issuer());
        assert_eq!(discovery.login_hint.as_deref(), Some("alice.test"));
        let server = discovery.server;

        let dpop = session_dpop();
        let (code, verifier) = consent(&s, &dpop, &server).await;
        assert_eq!(
            s.world.lock().nonce_demands,
            1,
            "PAR was retried with the nonce"
        );

        let tokens = exchange(&s, &dpop, &server, &code, &verifier)
            .await
            .unwrap();
        assert_eq!(tokens.sub, account.did);
        assert_eq!(tokens.scope, ["atproto", "transition:generic"]);
        assert_eq!(tokens.expires_in, Some(300));
        let shown = format!("{tokens:?}");
        assert!(
            !shown.contains(tokens.access_token.expose_secret()),
            "{shown}"
        );
        let verified = verify_subject(&s.resolver, &server, &tokens, Some(&account.did))
            .await
            .unwrap();
        assert_eq!(verified, account);
        // The code's form had the assertion and the verifier.
        let form = s.world.lock().token_forms[0].clone();
        assert_eq!(
            form["client_assertion_type"],
            super::super::client::CLIENT_ASSERTION_TYPE
        );
        assert_eq!(form["code_verifier"], verifier);

        s.world.lock().nonce = "nonce-2".into();
        let who = get_profile(
            &s.http,
            &dpop,
            &account.pds,
            &tokens.access_token,
            &account.did,
        )
        .await
        .unwrap();
        assert_eq!(
            who,
            Identity {
                provider_account_id: account.did.to_string(),
                username: Some("@alice.test".into()),
                display_name: Some("Alice".into()),
            }
        );
        assert_eq!(
            s.world.lock().nonce_demands,
            2,
            "the PDS asked once for its new nonce"
        );

        let old_refresh = tokens.refresh_token.clone().unwrap();
        let renewed = refresh(
            &s.http,
            &dpop,
            &server,
            &s.client,
            &account.did,
            &old_refresh,
        )
        .await
        .unwrap();
        let new_refresh = renewed.refresh_token.clone().unwrap();
        assert_ne!(new_refresh.expose_secret(), old_refresh.expose_secret());
        let reused = refresh(
            &s.http,
            &dpop,
            &server,
            &s.client,
            &account.did,
            &old_refresh,
        )
        .await
        .unwrap_err();
        assert_eq!(
            refused(&reused),
            (
                "invalid_grant".into(),
                "the refresh token was already used".into()
            )
        );
        get_profile(
            &s.http,
            &dpop,
            &account.pds,
            &renewed.access_token,
            &account.did,
        )
        .await
        .unwrap();

        assert!(
            revoke(&s.http, &dpop, &server, &s.client, &new_refresh)
                .await
                .unwrap()
        );
        assert_eq!(
            s.world.lock().revoked,
            [new_refresh.expose_secret().to_owned()]
        );
        let after = refresh(
            &s.http,
            &dpop,
            &server,
            &s.client,
            &account.did,
            &new_refresh,
        )
        .await
        .unwrap_err();
        assert_eq!(refused(&after).0, "invalid_grant");
        let token_set = renewed.into_token_set();
        assert_eq!(
            token_set.account_hint.as_deref(),
            Some(account.did.as_str())
        );
    }

    /// A public loopback client: no assertion is sent, and the server accepts it.
    #[tokio::test]
    async fn a_loopback_client_connects_without_an_assertion() {
        let mut s = setup().await;
        let redirect = "http://127.0.0.1/callback";
        s.client = ClientAuth::Loopback {
            client_id: super::super::client::loopback_client_id(&[redirect], DEFAULT_SCOPE)
                .unwrap(),
        };
        s.site.redirect_uri = redirect.into();
        let server = discover(&s).await.server;
        let dpop = session_dpop();
        let (code, verifier) = consent(&s, &dpop, &server).await;
        let tokens = exchange(&s, &dpop, &server, &code, &verifier)
            .await
            .unwrap();
        assert_eq!(tokens.sub.as_str(), s.world.did());
        let form = s.world.lock().token_forms[0].clone();
        assert!(!form.contains_key("client_assertion"));
    }

    /// Runs PAR with the fake told to refuse `check`: the refusal's code and description.
    async fn par_refused_by(check: Check) -> (String, String) {
        let s = setup().await;
        let server = discover(&s).await.server;
        s.world.lock().refuse = Some(check);
        let err = push(&s, &session_dpop(), &server, &pkce().1)
            .await
            .unwrap_err();
        refused(&err)
    }

    #[tokio::test]
    async fn a_bad_dpop_signature_is_named() {
        assert_eq!(
            par_refused_by(Check::DpopSignature).await,
            (
                "invalid_dpop_proof".into(),
                "DPoP proof signature is invalid".into()
            )
        );
    }

    #[tokio::test]
    async fn a_dpop_method_mismatch_is_named() {
        assert_eq!(
            par_refused_by(Check::DpopMethod).await,
            ("invalid_dpop_proof".into(), "DPoP htm mismatch".into())
        );
    }

    #[tokio::test]
    async fn a_dpop_url_mismatch_is_named() {
        assert_eq!(
            par_refused_by(Check::DpopUrl).await,
            ("invalid_dpop_proof".into(), "DPoP htu mismatch".into())
        );
    }

    #[tokio::test]
    async fn a_replayed_dpop_jti_is_named() {
        assert_eq!(
            par_refused_by(Check::DpopReplay).await,
            (
                "invalid_dpop_proof".into(),
                "DPoP proof jti was already used".into()
            )
        );
    }

    #[tokio::test]
    async fn refused_client_metadata_is_named() {
        assert_eq!(
            par_refused_by(Check::ClientMetadata).await,
            (
                "invalid_client".into(),
                "the client metadata is refused".into()
            )
        );
    }

    #[tokio::test]
    async fn a_refused_client_assertion_is_named() {
        assert_eq!(
            par_refused_by(Check::ClientAssertion).await,
            (
                "invalid_client".into(),
                "the client assertion is not signed by a key of the client's JWKS".into()
            )
        );
    }

    /// A proof dated ten minutes ago (Dravo's clock is wrong) is refused for its `iat`.
    #[tokio::test]
    async fn a_stale_dpop_proof_is_refused_for_its_iat() {
        let s = setup().await;
        let server = discover(&s).await.server;
        let late = ManualClock::new(Timestamp::now_system().plus_seconds(-600));
        let dpop = Dpop::new(EsKey::generate(), NonceStore::new(), Arc::new(late));
        let err = push(&s, &dpop, &server, &pkce().1).await.unwrap_err();
        assert_eq!(
            refused(&err),
            (
                "invalid_dpop_proof".into(),
                "DPoP proof iat is too old or in the future".into()
            )
        );
    }

    /// The metadata document must name the URL it is served at.
    #[tokio::test]
    async fn client_metadata_naming_another_client_id_is_refused() {
        let s = setup().await;
        let server = discover(&s).await.server;
        s.site.document.lock().unwrap()["client_id"] = json!("https://other.example/m.json");
        let err = push(&s, &session_dpop(), &server, &pkce().1)
            .await
            .unwrap_err();
        assert_eq!(
            refused(&err),
            (
                "invalid_client".into(),
                "the client metadata's client_id does not match the URL it came from".into()
            )
        );
    }

    /// An assertion signed by a key the served JWKS does not hold (a rotated-out key).
    #[tokio::test]
    async fn an_assertion_by_a_key_missing_from_the_jwks_is_refused() {
        let s = setup().await;
        let server = discover(&s).await.server;
        *s.site.jwks.lock().unwrap() = super::super::keys::jwks(&[&EsKey::generate()]);
        let err = push(&s, &session_dpop(), &server, &pkce().1)
            .await
            .unwrap_err();
        assert_eq!(
            refused(&err),
            (
                "invalid_client".into(),
                "the client assertion is not signed by a key of the client's JWKS".into()
            )
        );
    }

    /// An assertion for another issuer (`aud`) is refused.
    #[tokio::test]
    async fn an_assertion_for_another_issuer_is_refused() {
        let s = setup().await;
        let mut server = discover(&s).await.server;
        server.issuer = "https://other.example".into();
        let err = push(&s, &session_dpop(), &server, &pkce().1)
            .await
            .unwrap_err();
        assert_eq!(
            refused(&err),
            (
                "invalid_client".into(),
                "the client assertion's aud is not this issuer".into()
            )
        );
    }

    #[tokio::test]
    async fn a_wrong_pkce_verifier_is_refused() {
        let s = setup().await;
        let server = discover(&s).await.server;
        let dpop = session_dpop();
        let (code, _) = consent(&s, &dpop, &server).await;
        let (other_verifier, _) = pkce();
        let err = exchange(&s, &dpop, &server, &code, &other_verifier)
            .await
            .unwrap_err();
        assert_eq!(
            refused(&err),
            (
                "invalid_grant".into(),
                "the PKCE code_verifier does not match the code_challenge".into()
            )
        );
    }

    #[tokio::test]
    async fn a_code_works_once() {
        let s = setup().await;
        let server = discover(&s).await.server;
        let dpop = session_dpop();
        let (code, verifier) = consent(&s, &dpop, &server).await;
        exchange(&s, &dpop, &server, &code, &verifier)
            .await
            .unwrap();
        let err = exchange(&s, &dpop, &server, &code, &verifier)
            .await
            .unwrap_err();
        assert_eq!(
            refused(&err),
            ("invalid_grant".into(), "the code was already used".into())
        );
    }

    /// The code is bound to the DPoP key of the PAR: another key cannot redeem it.
    #[tokio::test]
    async fn a_code_redeemed_with_another_dpop_key_is_refused() {
        let s = setup().await;
        let server = discover(&s).await.server;
        let (code, verifier) = consent(&s, &session_dpop(), &server).await;
        let err = exchange(&s, &session_dpop(), &server, &code, &verifier)
            .await
            .unwrap_err();
        assert_eq!(
            refused(&err),
            (
                "invalid_grant".into(),
                "the DPoP key is not the one the request was pushed with".into()
            )
        );
    }

    /// The PDS checks `ath`; its refusal reaches the caller with its reason.
    #[tokio::test]
    async fn a_resource_call_with_a_bad_token_hash_is_refused() {
        let s = setup().await;
        let discovery = discover(&s).await;
        let account = discovery.account.unwrap();
        let dpop = session_dpop();
        let (code, verifier) = consent(&s, &dpop, &discovery.server).await;
        let tokens = exchange(&s, &dpop, &discovery.server, &code, &verifier)
            .await
            .unwrap();
        s.world.lock().refuse = Some(Check::DpopTokenHash);
        let err = get_profile(
            &s.http,
            &dpop,
            &account.pds,
            &tokens.access_token,
            &account.did,
        )
        .await
        .unwrap_err();
        assert_eq!(
            refused(&err),
            (
                "invalid_token".into(),
                "DPoP ath does not match the access token".into()
            )
        );
    }

    /// The authorize URL carries only `client_id` and `request_uri`; the server refuses an
    /// authorization request that was not pushed.
    #[tokio::test]
    async fn the_authorize_url_names_only_the_pushed_request() {
        let s = setup().await;
        let server = discover(&s).await.server;
        let url = authorize_url(&server, "https://dravo.example/m.json", "urn:x");
        let names: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
        assert_eq!(names, ["client_id", "request_uri"]);
        let mut unpushed = server.authorization_endpoint.clone();
        unpushed
            .query_pairs_mut()
            .append_pair("client_id", &s.site.client_id)
            .append_pair("redirect_uri", &s.site.redirect_uri);
        let resp = reqwest::get(unpushed).await.unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["error_description"],
            "pushed authorization requests are required"
        );
    }

    /// `sub` must be the account the connect started for.
    #[tokio::test]
    async fn tokens_for_another_account_than_the_one_named_are_refused() {
        let s = setup().await;
        let server = discover(&s).await.server;
        let dpop = session_dpop();
        let (code, verifier) = consent(&s, &dpop, &server).await;
        let tokens = exchange(&s, &dpop, &server, &code, &verifier)
            .await
            .unwrap();
        let someone_else = Did::parse(&format!("did:plc:{}", "b".repeat(24))).unwrap();
        let err = verify_subject(&s.resolver, &server, &tokens, Some(&someone_else))
            .await
            .unwrap_err();
        assert_eq!(
            refused(&err),
            (
                "identity_mismatch".into(),
                format!(
                    "{} authorized {}, not the account the connect started for ({someone_else})",
                    server.issuer, tokens.sub
                )
            )
        );
    }

    /// Started from a server, the `sub` must be an account whose PDS names this server: here
    /// the PDS names another authorization server.
    #[tokio::test]
    async fn tokens_from_a_server_the_accounts_pds_does_not_name_are_refused() {
        let s = setup().await;
        let other = World::start().await;
        let input = LoginInput::parse(s.world.base.as_str(), true).unwrap();
        let server = s.resolver.discover(&input).await.unwrap().server;
        let dpop = session_dpop();
        let (code, verifier) = consent(&s, &dpop, &server).await;
        let tokens = exchange(&s, &dpop, &server, &code, &verifier)
            .await
            .unwrap();
        s.world.lock().authorization_server = other.issuer();
        let err = verify_subject(&s.resolver, &server, &tokens, None)
            .await
            .unwrap_err();
        let (code, description) = refused(&err);
        assert_eq!(code, "identity_mismatch");
        assert!(
            description.ends_with(&format!(
                "names {} as its authorization server",
                other.issuer()
            )),
            "{description}"
        );
    }

    #[test]
    fn a_token_answer_must_be_dpop_for_a_did_with_the_atproto_scope() {
        let good = json!({
            "access_token": "a", "token_type": "DPoP", "refresh_token": "r",
            "sub": format!("did:plc:{}", "a".repeat(24)), "scope": "atproto transition:generic",
            "expires_in": 300,
        });
        assert!(read_tokens("https://as.example", &good).is_ok());
        let prefix =
            "the provider's answer cannot be read: the token answer of https://as.example ";
        let cases = [
            (
                "token_type",
                json!("Bearer"),
                "has the token_type `Bearer`, not DPoP",
            ),
            ("sub", Value::Null, "has no `sub`"),
            (
                "scope",
                json!("transition:generic"),
                "grants no `atproto` scope",
            ),
            ("scope", Value::Null, "has no `scope`"),
            ("access_token", Value::Null, "has no access_token"),
        ];
        for (field, value, why) in cases {
            let mut body = good.clone();
            body[field] = value;
            assert_eq!(
                read_tokens("https://as.example", &body)
                    .unwrap_err()
                    .to_string(),
                format!("{prefix}{why}"),
                "{field}"
            );
        }
        let mut handle_sub = good;
        handle_sub["sub"] = json!("alice.test");
        assert!(
            read_tokens("https://as.example", &handle_sub)
                .unwrap_err()
                .to_string()
                .contains("has a `sub` that")
        );
    }

    #[test]
    fn the_callback_must_come_from_the_issuer() {
        let server = AuthServer {
            issuer: "https://as.example".into(),
            authorization_endpoint: Url::parse("https://as.example/oauth/authorize").unwrap(),
            token_endpoint: Url::parse("https://as.example/oauth/token").unwrap(),
            pushed_authorization_request_endpoint: Url::parse("https://as.example/oauth/par")
                .unwrap(),
            revocation_endpoint: None,
        };
        assert!(check_callback_issuer(&server, Some("https://as.example")).is_ok());
        assert_eq!(
            refused(&check_callback_issuer(&server, Some("https://evil.example")).unwrap_err()),
            (
                "identity_mismatch".into(),
                "the callback came from the issuer `https://evil.example`, not https://as.example"
                    .into()
            )
        );
        assert!(check_callback_issuer(&server, None).is_err());
    }
}
