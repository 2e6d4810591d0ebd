//! A fake AT Protocol world for tests, on 127.0.0.1: handle documents, a PLC directory, a PDS
//! (protected-resource metadata and `app.bsky.actor.getProfile`, which wants a DPoP-bound
//! token) and its authorization server, which checks what the atproto profile requires of a
//! client: PAR; the client metadata fetched from the `client_id` URL and naming that URL; the
//! client assertion against the JWKS the metadata points to; every DPoP proof (signature with
//! the header's key, `htm`, `htu`, a recent `iat`, a fresh `jti`, the current nonce, `ath`,
//! the key the session was bound to); PKCE S256; single-use codes; rotating refresh tokens.
//! A test may tell it to refuse one check (`refuse`) to see what Dravo makes of the refusal.
//! The client's own site (metadata document and JWKS) is a second server ([`ClientSite`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use poem::http::{Method, StatusCode};
use poem::web::{Data, Form, Path, Query};
use poem::{EndpointExt, Request, Response, Route, handler};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use url::Url;

use super::client::CLIENT_ASSERTION_TYPE;
use super::dpop::access_token_hash;
use super::keys::{EsKey, jwk_thumbprint, public_key_from_jwk, verify_jws};
use super::resolve::TxtLookup;
use super::{b64, random_token};

/// A check the fake authorization server or PDS makes, which a test can tell it to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    DpopSignature,
    DpopMethod,
    DpopUrl,
    DpopIssuedAt,
    DpopReplay,
    DpopTokenHash,
    ClientMetadata,
    ClientAssertion,
    Pkce,
}

/// What the fake holds.
pub struct State {
    /// `http://127.0.0.1:port`: the PDS, the authorization server's issuer, and the host of
    /// handle documents (`/handles/…`) and the PLC directory (`/plc/…`).
    pub base: String,
    /// Handle → the text of its `/.well-known/atproto-did`.
    pub handles: HashMap<String, String>,
    /// DID → its document.
    pub dids: HashMap<String, Value>,
    /// DID → its profile.
    pub profiles: HashMap<String, Value>,
    /// The account every consent is given for.
    pub account: String,
    /// What the protected-resource metadata names as the authorization server.
    pub authorization_server: String,
    /// The authorization-server metadata.
    pub metadata: Value,
    /// The nonce proofs must carry.
    pub nonce: String,
    /// How often a proof came without the current nonce.
    pub nonce_demands: usize,
    pub refuse: Option<Check>,
    seen_jti: HashSet<String>,
    /// PAR `request_uri` → the request.
    pushed: HashMap<String, Grant>,
    /// Code → the grant and whether it was used.
    codes: HashMap<String, (Grant, bool)>,
    /// Refresh token → session id; only the session's latest works.
    refresh_tokens: HashMap<String, usize>,
    /// Access token → session id.
    access_tokens: HashMap<String, usize>,
    sessions: Vec<Session>,
    /// Every form the token endpoint was sent, for tests to look at.
    pub token_forms: Vec<HashMap<String, String>>,
    /// Tokens revoked.
    pub revoked: Vec<String>,
    /// The document `/.well-known/did.json` serves (the server as a did:web host).
    pub did_web: Option<Value>,
    /// An entryway: no protected-resource metadata, only the authorization server's.
    pub entryway: bool,
}

#[derive(Clone)]
struct Grant {
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: String,
    code_challenge: String,
    jkt: String,
}

struct Session {
    client_id: String,
    jkt: String,
    scope: String,
    refresh_token: Option<String>,
}

/// The fake world, running.
pub struct World {
    pub base: Url,
    pub state: Arc<Mutex<State>>,
}

impl World {
    pub async fn start() -> World {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let did = format!("did:plc:{}", "a".repeat(24));
        let state = State {
            handles: HashMap::from([("alice.test".to_owned(), did.clone())]),
            dids: HashMap::from([(did.clone(), did_document(&did, "alice.test", &base))]),
            profiles: HashMap::from([(
                did.clone(),
                json!({"did": did, "handle": "alice.test", "displayName": "Alice"}),
            )]),
            account: did,
            authorization_server: base.clone(),
            metadata: server_metadata(&base),
            base: base.clone(),
            nonce: "nonce-1".into(),
            nonce_demands: 0,
            refuse: None,
            seen_jti: HashSet::new(),
            pushed: HashMap::new(),
            codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
            sessions: Vec::new(),
            token_forms: Vec::new(),
            revoked: Vec::new(),
            did_web: None,
            entryway: false,
        };
        let state = Arc::new(Mutex::new(state));
        let app = Route::new()
            .at(
                "/handles/:handle/.well-known/atproto-did",
                poem::get(handle_did),
            )
            .at("/plc/:did", poem::get(plc))
            .at("/.well-known/did.json", poem::get(did_web_document))
            .at(
                "/.well-known/oauth-protected-resource",
                poem::get(protected_resource),
            )
            .at(
                "/.well-known/oauth-authorization-server",
                poem::get(as_metadata),
            )
            .at("/oauth/par", poem::post(par_endpoint))
            .at("/oauth/authorize", poem::get(authorize_endpoint))
            .at("/oauth/token", poem::post(token_endpoint))
            .at("/oauth/revoke", poem::post(revoke_endpoint))
            .at(
                "/xrpc/app.bsky.actor.getProfile",
                poem::get(profile_endpoint),
            )
            .data(state.clone());
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
        World {
            base: Url::parse(&base).unwrap(),
            state,
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    pub fn did(&self) -> String {
        self.lock().account.clone()
    }

    /// The PLC directory's base URL.
    pub fn plc(&self) -> Url {
        self.base.join("/plc").unwrap()
    }

    /// Where handle documents are served (`Resolver::with_handle_documents_at`).
    pub fn handles(&self) -> Url {
        self.base.join("/handles").unwrap()
    }

    /// The issuer, as metadata writes it.
    pub fn issuer(&self) -> String {
        self.lock().base.clone()
    }
}

/// A DID document naming `handle` and the PDS at `pds`.
pub fn did_document(did: &str, handle: &str, pds: &str) -> Value {
    json!({
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": did,
        "alsoKnownAs": [format!("at://{handle}")],
        "verificationMethod": [],
        "service": [{
            "id": "#atproto_pds",
            "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": pds,
        }],
    })
}

/// Authorization-server metadata as the atproto profile requires it.
pub fn server_metadata(base: &str) -> Value {
    json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "pushed_authorization_request_endpoint": format!("{base}/oauth/par"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "require_pushed_authorization_requests": true,
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
        "dpop_signing_alg_values_supported": ["ES256"],
        "scopes_supported": ["atproto", "transition:generic"],
    })
}

/// DNS answers for tests: name → TXT strings; every other name has none.
#[derive(Default)]
pub struct FakeDns(pub HashMap<String, Vec<String>>);

#[async_trait]
impl TxtLookup for FakeDns {
    async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        Ok(self.0.get(name).cloned().unwrap_or_default())
    }
}

/// The metadata document and the JWKS a client site serves, which tests may change.
type SiteDocuments = (Arc<Mutex<Value>>, Arc<Mutex<Value>>);

/// The client's own site: its metadata document at `client_id` and its JWKS.
pub struct ClientSite {
    pub client_id: String,
    pub redirect_uri: String,
    pub document: Arc<Mutex<Value>>,
    pub jwks: Arc<Mutex<Value>>,
}

impl ClientSite {
    /// Serves the metadata of a confidential client whose JWKS holds `key`.
    pub async fn start(key: &EsKey) -> ClientSite {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let client_id = format!("{base}/client-metadata.json");
        let redirect_uri = format!("{base}/callback");
        let jwks_uri = format!("{base}/jwks.json");
        let document = super::client::web_client_metadata(&super::client::WebClient {
            client_id: &client_id,
            client_name: "Dravo test",
            client_uri: &base,
            logo_uri: None,
            redirect_uri: &redirect_uri,
            scope: super::client::DEFAULT_SCOPE,
            jwks_uri: &jwks_uri,
        });
        let document = Arc::new(Mutex::new(document));
        let jwks = Arc::new(Mutex::new(super::keys::jwks(&[key])));
        #[handler]
        fn serve_document(Data(doc): Data<&SiteDocuments>) -> Response {
            json_response(StatusCode::OK, &doc.0.lock().unwrap())
        }
        #[handler]
        fn serve_jwks(Data(doc): Data<&SiteDocuments>) -> Response {
            json_response(StatusCode::OK, &doc.1.lock().unwrap())
        }
        let app = Route::new()
            .at("/client-metadata.json", poem::get(serve_document))
            .at("/jwks.json", poem::get(serve_jwks))
            .data((document.clone(), jwks.clone()));
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
        ClientSite {
            client_id,
            redirect_uri,
            document,
            jwks,
        }
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(body.to_string())
}

/// An OAuth error answer, with the current nonce.
fn oauth_error(state: &State, status: StatusCode, code: &str, description: &str) -> Response {
    let mut resp = json_response(
        status,
        &json!({"error": code, "error_description": description}),
    );
    resp.headers_mut()
        .insert("DPoP-Nonce", state.nonce.parse().unwrap());
    resp
}

fn with_nonce(state: &State, mut resp: Response) -> Response {
    resp.headers_mut()
        .insert("DPoP-Nonce", state.nonce.parse().unwrap());
    resp
}

fn now() -> i64 {
    crate::clock::Timestamp::now_system().unix()
}

/// Whether a test told the fake to fail `check`, or it failed by itself.
fn fails(state: &State, check: Check, ok: bool) -> bool {
    !ok || state.refuse == Some(check)
}

/// RFC 9449 §4.3, as an authorization server (`resource: false`: 400 `use_dpop_nonce`) or a
/// resource server (401 with `WWW-Authenticate`). Returns the key's thumbprint.
fn check_dpop(
    state: &mut State,
    req: &Request,
    path: &str,
    access_token: Option<&str>,
    resource: bool,
) -> Result<String, Box<Response>> {
    let invalid = |state: &State, why: &str| {
        let code = if resource {
            "invalid_token"
        } else {
            "invalid_dpop_proof"
        };
        let status = if resource {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        Box::new(oauth_error(state, status, code, why))
    };
    let Some(proof) = req.header("dpop") else {
        return Err(invalid(state, "DPoP proof required"));
    };
    let header: Value = proof
        .split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    if header["typ"] != "dpop+jwt" || header["alg"] != "ES256" || header["jwk"].get("d").is_some() {
        return Err(invalid(
            state,
            "DPoP proof header is not a dpop+jwt ES256 public key",
        ));
    }
    let key = public_key_from_jwk(&header["jwk"]);
    let verified = key.as_ref().and_then(|key| verify_jws(proof, key).ok());
    if fails(state, Check::DpopSignature, verified.is_some()) {
        return Err(invalid(state, "DPoP proof signature is invalid"));
    }
    let (_, claims) = verified.unwrap();
    if fails(
        state,
        Check::DpopMethod,
        claims["htm"] == req.method().as_str(),
    ) {
        return Err(invalid(state, "DPoP htm mismatch"));
    }
    let expected_htu = format!("{}{path}", state.base);
    if fails(
        state,
        Check::DpopUrl,
        claims["htu"] == expected_htu.as_str(),
    ) {
        return Err(invalid(state, "DPoP htu mismatch"));
    }
    let iat = claims["iat"].as_i64().unwrap_or(0);
    if fails(state, Check::DpopIssuedAt, (iat - now()).abs() <= 60) {
        return Err(invalid(state, "DPoP proof iat is too old or in the future"));
    }
    let jti = claims["jti"].as_str().unwrap_or_default().to_owned();
    if fails(
        state,
        Check::DpopReplay,
        !jti.is_empty() && !state.seen_jti.contains(&jti),
    ) {
        return Err(invalid(state, "DPoP proof jti was already used"));
    }
    state.seen_jti.insert(jti);
    if claims["nonce"] != state.nonce.as_str() {
        state.nonce_demands += 1;
        let mut resp = if resource {
            Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header(
                    "WWW-Authenticate",
                    r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#,
                )
                .body(r#"{"error":"use_dpop_nonce"}"#)
        } else {
            json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": "use_dpop_nonce", "error_description": "Authorization server requires nonce in DPoP proof"}),
            )
        };
        resp.headers_mut()
            .insert("DPoP-Nonce", state.nonce.parse().unwrap());
        return Err(Box::new(resp));
    }
    if let Some(token) = access_token {
        let ath_ok = claims["ath"] == access_token_hash(token).as_str();
        if fails(state, Check::DpopTokenHash, ath_ok) {
            return Err(invalid(state, "DPoP ath does not match the access token"));
        }
    }
    Ok(jwk_thumbprint(&header["jwk"]).unwrap())
}

/// The client's metadata (fetched from its `client_id`, or built for a loopback id) and its
/// JWKS when it is confidential; refusals as `invalid_client` descriptions.
async fn fetch_client(client_id: &str) -> Result<(Value, Option<Value>), String> {
    if client_id.starts_with("http://localhost") {
        let url = Url::parse(client_id).map_err(|_| "the loopback client_id is not a URL")?;
        let mut redirect_uris: Vec<String> = url
            .query_pairs()
            .filter(|(k, _)| k == "redirect_uri")
            .map(|(_, v)| v.into_owned())
            .collect();
        if redirect_uris.is_empty() {
            redirect_uris = vec!["http://127.0.0.1/".into(), "http://[::1]/".into()];
        }
        let scope = url
            .query_pairs()
            .find(|(k, _)| k == "scope")
            .map_or("atproto".to_owned(), |(_, v)| v.into_owned());
        return Ok((
            json!({
                "client_id": client_id,
                "redirect_uris": redirect_uris,
                "scope": scope,
                "token_endpoint_auth_method": "none",
                "dpop_bound_access_tokens": true,
                "application_type": "native",
            }),
            None,
        ));
    }
    let http = reqwest::Client::new();
    let document: Value = http
        .get(client_id)
        .send()
        .await
        .map_err(|_| "the client metadata cannot be fetched")?
        .json()
        .await
        .map_err(|_| "the client metadata is not JSON")?;
    if document["client_id"] != client_id {
        return Err("the client metadata's client_id does not match the URL it came from".into());
    }
    if document["dpop_bound_access_tokens"] != true {
        return Err("the client metadata does not ask for DPoP-bound tokens".into());
    }
    if document["token_endpoint_auth_method"] != "private_key_jwt" {
        return Ok((document, None));
    }
    let jwks_uri = document["jwks_uri"]
        .as_str()
        .ok_or("a private_key_jwt client has no jwks_uri")?;
    let jwks: Value = http
        .get(jwks_uri)
        .send()
        .await
        .map_err(|_| "the client's JWKS cannot be fetched")?
        .json()
        .await
        .map_err(|_| "the client's JWKS is not JSON")?;
    Ok((document, Some(jwks)))
}

/// The client authentication of a request: the assertion when the client is confidential
/// (signed by a key of its JWKS, `iss` = `sub` = client_id, `aud` = the issuer, unexpired,
/// fresh `jti`), none for a public one.
fn check_client(
    state: &mut State,
    form: &HashMap<String, String>,
    client: &Result<(Value, Option<Value>), String>,
) -> Result<String, String> {
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    let (_, jwks) = client.as_ref().map_err(Clone::clone)?;
    if state.refuse == Some(Check::ClientMetadata) {
        return Err("the client metadata is refused".into());
    }
    let assertion = form.get("client_assertion");
    let Some(jwks) = jwks else {
        if assertion.is_some() {
            return Err("a public client sent a client assertion".into());
        }
        return Ok(client_id);
    };
    if form.get("client_assertion_type").map(String::as_str) != Some(CLIENT_ASSERTION_TYPE) {
        return Err("client_assertion_type is not jwt-bearer".into());
    }
    let assertion = assertion.ok_or("the client assertion is missing")?;
    let header: Value = assertion
        .split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    let key = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == header["kid"]))
        .and_then(public_key_from_jwk);
    let claims = key
        .and_then(|key| verify_jws(assertion, &key).ok())
        .map(|(_, c)| c);
    let Some(claims) = claims.filter(|_| state.refuse != Some(Check::ClientAssertion)) else {
        return Err("the client assertion is not signed by a key of the client's JWKS".into());
    };
    if claims["iss"] != client_id.as_str() || claims["sub"] != client_id.as_str() {
        return Err("the client assertion's iss and sub are not the client_id".into());
    }
    if claims["aud"] != state.base.as_str() {
        return Err("the client assertion's aud is not this issuer".into());
    }
    if claims["exp"].as_i64().unwrap_or(0) <= now() {
        return Err("the client assertion has expired".into());
    }
    let jti = format!("assertion:{}", claims["jti"].as_str().unwrap_or_default());
    if !state.seen_jti.insert(jti) {
        return Err("the client assertion's jti was already used".into());
    }
    Ok(client_id)
}

fn as_map(form: Vec<(String, String)>) -> HashMap<String, String> {
    form.into_iter().collect()
}

#[handler]
fn handle_did(Path(handle): Path<String>, Data(state): Data<&Arc<Mutex<State>>>) -> Response {
    match state.lock().unwrap().handles.get(&handle) {
        Some(text) => Response::builder()
            .content_type("text/plain")
            .body(text.clone()),
        None => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body("no such handle"),
    }
}

#[handler]
fn plc(Path(did): Path<String>, Data(state): Data<&Arc<Mutex<State>>>) -> Response {
    match state.lock().unwrap().dids.get(&did) {
        Some(doc) => json_response(StatusCode::OK, doc),
        None => json_response(
            StatusCode::NOT_FOUND,
            &json!({"message": "DID not registered"}),
        ),
    }
}

#[handler]
fn did_web_document(Data(state): Data<&Arc<Mutex<State>>>) -> Response {
    match &state.lock().unwrap().did_web {
        Some(doc) => json_response(StatusCode::OK, doc),
        None => Response::builder().status(StatusCode::NOT_FOUND).finish(),
    }
}

#[handler]
fn protected_resource(Data(state): Data<&Arc<Mutex<State>>>) -> Response {
    let state = state.lock().unwrap();
    if state.entryway {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body("Not Found");
    }
    json_response(
        StatusCode::OK,
        &json!({"resource": state.base, "authorization_servers": [state.authorization_server]}),
    )
}

#[handler]
fn as_metadata(Data(state): Data<&Arc<Mutex<State>>>) -> Response {
    json_response(StatusCode::OK, &state.lock().unwrap().metadata)
}

#[handler]
async fn par_endpoint(
    req: &Request,
    Form(form): Form<Vec<(String, String)>>,
    Data(state): Data<&Arc<Mutex<State>>>,
) -> Response {
    let form = as_map(form);
    let jkt = {
        let mut st = state.lock().unwrap();
        match check_dpop(&mut st, req, "/oauth/par", None, false) {
            Ok(jkt) => jkt,
            Err(resp) => return *resp,
        }
    };
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    let client = fetch_client(&client_id).await;
    let mut st = state.lock().unwrap();
    if let Err(why) = check_client(&mut st, &form, &client) {
        return oauth_error(&st, StatusCode::BAD_REQUEST, "invalid_client", &why);
    }
    let (document, _) = client.unwrap();
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let redirect_uri = field("redirect_uri");
    let registered = document["redirect_uris"]
        .as_array()
        .is_some_and(|uris| uris.iter().any(|u| u == redirect_uri.as_str()));
    if !registered {
        return oauth_error(
            &st,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri is not registered",
        );
    }
    let declared: Vec<&str> = document["scope"]
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .collect();
    let scope = field("scope");
    if !scope.split(' ').any(|s| s == "atproto") || !scope.split(' ').all(|s| declared.contains(&s))
    {
        return oauth_error(
            &st,
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "the scope must contain atproto and be declared by the client",
        );
    }
    if field("response_type") != "code"
        || field("code_challenge_method") != "S256"
        || field("code_challenge").len() < 43
        || field("state").is_empty()
    {
        return oauth_error(
            &st,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "response_type=code, S256 PKCE and state are required",
        );
    }
    let request_uri = format!("urn:ietf:params:oauth:request_uri:{}", random_token());
    st.pushed.insert(
        request_uri.clone(),
        Grant {
            client_id,
            redirect_uri,
            scope,
            state: field("state"),
            code_challenge: field("code_challenge"),
            jkt,
        },
    );
    with_nonce(
        &st,
        json_response(
            StatusCode::CREATED,
            &json!({"request_uri": request_uri, "expires_in": 299}),
        ),
    )
}

#[derive(serde::Deserialize)]
struct AuthorizeQuery {
    client_id: Option<String>,
    request_uri: Option<String>,
    /// Anything but `request_uri` means a request that was not pushed.
    redirect_uri: Option<String>,
}

/// The consent screen, approved at once: a redirect to the client with the code.
#[handler]
fn authorize_endpoint(
    Query(q): Query<AuthorizeQuery>,
    Data(state): Data<&Arc<Mutex<State>>>,
) -> Response {
    let mut st = state.lock().unwrap();
    if q.redirect_uri.is_some() || q.request_uri.is_none() {
        return oauth_error(
            &st,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "pushed authorization requests are required",
        );
    }
    let Some(grant) = st
        .pushed
        .remove(q.request_uri.as_deref().unwrap_or_default())
    else {
        return oauth_error(
            &st,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unknown request_uri",
        );
    };
    if q.client_id.as_deref() != Some(grant.client_id.as_str()) {
        return oauth_error(
            &st,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id does not match the pushed request",
        );
    }
    let code = random_token();
    let mut location = Url::parse(&grant.redirect_uri).unwrap();
    location
        .query_pairs_mut()
        .append_pair("iss", &st.base)
        .append_pair("state", &grant.state)
        .append_pair("code", &code);
    st.codes.insert(code, (grant, false));
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header("Location", location.as_str())
        .finish()
}

/// Issues tokens for session `id`.
fn issue(st: &mut State, id: usize) -> Response {
    let access = random_token();
    let refresh = random_token();
    st.access_tokens.insert(access.clone(), id);
    st.refresh_tokens.insert(refresh.clone(), id);
    st.sessions[id].refresh_token = Some(refresh.clone());
    let body = json!({
        "access_token": access,
        "token_type": "DPoP",
        "refresh_token": refresh,
        "scope": st.sessions[id].scope,
        "sub": st.account,
        "expires_in": 300,
    });
    with_nonce(st, json_response(StatusCode::OK, &body))
}

#[handler]
async fn token_endpoint(
    req: &Request,
    Form(form): Form<Vec<(String, String)>>,
    Data(state): Data<&Arc<Mutex<State>>>,
) -> Response {
    let form = as_map(form);
    state.lock().unwrap().token_forms.push(form.clone());
    let jkt = {
        let mut st = state.lock().unwrap();
        match check_dpop(&mut st, req, "/oauth/token", None, false) {
            Ok(jkt) => jkt,
            Err(resp) => return *resp,
        }
    };
    let client = fetch_client(form.get("client_id").map_or("", String::as_str)).await;
    let mut st = state.lock().unwrap();
    let client_id = match check_client(&mut st, &form, &client) {
        Ok(id) => id,
        Err(why) => return oauth_error(&st, StatusCode::BAD_REQUEST, "invalid_client", &why),
    };
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let invalid_grant =
        |st: &State, why: &str| oauth_error(st, StatusCode::BAD_REQUEST, "invalid_grant", why);
    match field("grant_type").as_str() {
        "authorization_code" => {
            let Some((grant, used)) = st.codes.get_mut(&field("code")) else {
                return invalid_grant(&st, "unknown code");
            };
            if *used {
                return invalid_grant(&st, "the code was already used");
            }
            *used = true;
            let grant = grant.clone();
            if grant.client_id != client_id || grant.redirect_uri != field("redirect_uri") {
                return invalid_grant(&st, "the code was issued to another client or redirect_uri");
            }
            let verifier_ok =
                b64(Sha256::digest(field("code_verifier").as_bytes())) == grant.code_challenge;
            if fails(&st, Check::Pkce, verifier_ok) {
                return invalid_grant(
                    &st,
                    "the PKCE code_verifier does not match the code_challenge",
                );
            }
            if grant.jkt != jkt {
                return invalid_grant(
                    &st,
                    "the DPoP key is not the one the request was pushed with",
                );
            }
            st.sessions.push(Session {
                client_id,
                jkt,
                scope: grant.scope,
                refresh_token: None,
            });
            let id = st.sessions.len() - 1;
            issue(&mut st, id)
        }
        "refresh_token" => {
            let presented = field("refresh_token");
            let Some(&id) = st.refresh_tokens.get(&presented) else {
                return invalid_grant(&st, "unknown refresh token");
            };
            if st.sessions[id].refresh_token.as_deref() != Some(presented.as_str()) {
                return invalid_grant(&st, "the refresh token was already used");
            }
            if st.sessions[id].client_id != client_id || st.sessions[id].jkt != jkt {
                return invalid_grant(
                    &st,
                    "the refresh token is bound to another client or DPoP key",
                );
            }
            issue(&mut st, id)
        }
        _ => oauth_error(
            &st,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "unsupported grant_type",
        ),
    }
}

#[handler]
async fn revoke_endpoint(
    req: &Request,
    Form(form): Form<Vec<(String, String)>>,
    Data(state): Data<&Arc<Mutex<State>>>,
) -> Response {
    let form = as_map(form);
    {
        let mut st = state.lock().unwrap();
        if let Err(resp) = check_dpop(&mut st, req, "/oauth/revoke", None, false) {
            return *resp;
        }
    }
    let client = fetch_client(form.get("client_id").map_or("", String::as_str)).await;
    let mut st = state.lock().unwrap();
    if let Err(why) = check_client(&mut st, &form, &client) {
        return oauth_error(&st, StatusCode::BAD_REQUEST, "invalid_client", &why);
    }
    let token = form.get("token").cloned().unwrap_or_default();
    let session = st
        .refresh_tokens
        .get(&token)
        .or_else(|| st.access_tokens.get(&token))
        .copied();
    if let Some(id) = session {
        st.sessions[id].refresh_token = None;
        st.access_tokens.retain(|_, s| *s != id);
    }
    st.revoked.push(token);
    with_nonce(&st, json_response(StatusCode::OK, &json!({})))
}

#[derive(serde::Deserialize)]
struct ProfileQuery {
    actor: String,
}

#[handler]
fn profile_endpoint(
    req: &Request,
    Query(q): Query<ProfileQuery>,
    Data(state): Data<&Arc<Mutex<State>>>,
) -> Response {
    let mut st = state.lock().unwrap();
    let unauthorized =
        |st: &State, why: &str| oauth_error(st, StatusCode::UNAUTHORIZED, "invalid_token", why);
    let Some(token) = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("DPoP "))
        .map(str::to_owned)
    else {
        return unauthorized(&st, "a DPoP-bound access token is required");
    };
    let Some(&id) = st.access_tokens.get(&token) else {
        return unauthorized(&st, "unknown or revoked access token");
    };
    let jkt = match check_dpop(
        &mut st,
        req,
        "/xrpc/app.bsky.actor.getProfile",
        Some(&token),
        true,
    ) {
        Ok(jkt) => jkt,
        Err(resp) => return *resp,
    };
    if st.sessions[id].jkt != jkt {
        return unauthorized(&st, "the access token is bound to another DPoP key");
    }
    if req.method() != Method::GET {
        return unauthorized(&st, "GET only");
    }
    match st.profiles.get(&q.actor) {
        Some(profile) => with_nonce(&st, json_response(StatusCode::OK, profile)),
        None => oauth_error(
            &st,
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "Profile not found",
        ),
    }
}
