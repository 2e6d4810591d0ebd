//! DPoP (RFC 9449): every request to an AT Protocol authorization server or PDS carries a
//! proof, a JWS signed by the session's own key, naming the method and URL (and, with an
//! access token, its hash) so a stolen token is useless without the key. The servers demand
//! a nonce of their own in each proof: they answer `use_dpop_nonce` with a `DPoP-Nonce`
//! header, and the request is sent again, once, with it. The latest nonce per server is kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use url::Url;

use super::keys::EsKey;
use super::{AtprotoHttp, MAX_JSON_BYTES, RawAnswer, b64, random_token};
use crate::clock::{Clock, Timestamp};
use crate::providers::http::{ProviderError, ProviderResponse};

/// The latest `DPoP-Nonce` each server gave, by origin. Cheap to clone: clones share it, so
/// one store can serve every session of an app, or each session can keep its own.
#[derive(Clone, Default)]
pub struct NonceStore(Arc<Mutex<HashMap<String, String>>>);

impl std::fmt::Debug for NonceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let servers = self.0.lock().map(|map| map.len()).unwrap_or(0);
        write!(f, "NonceStore({servers} servers)")
    }
}

impl NonceStore {
    pub fn new() -> NonceStore {
        NonceStore::default()
    }

    /// The nonce last given by the server of `url`.
    pub fn get(&self, url: &Url) -> Option<String> {
        self.lock().get(&origin(url)).cloned()
    }

    /// Keeps `nonce` as the server's latest.
    pub fn set(&self, url: &Url, nonce: &str) {
        self.lock().insert(origin(url), nonce.to_owned());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        // A panic elsewhere while holding the lock leaves a map that is still whole.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// The `htu` of a proof: the URL without query and fragment (RFC 9449 §4.2).
pub fn htu(url: &Url) -> String {
    let mut bare = url.clone();
    bare.set_query(None);
    bare.set_fragment(None);
    bare.to_string()
}

/// `ath`: base64url(SHA-256(access token)).
pub fn access_token_hash(access_token: &str) -> String {
    b64(Sha256::digest(access_token.as_bytes()))
}

/// A DPoP proof for `method url` at `now`: header `typ: dpop+jwt`, `alg: ES256` and the
/// public key; claims `jti` (random), `htm`, `htu`, `iat`, and `nonce` and `ath` when given.
pub fn proof(
    key: &EsKey,
    method: &str,
    url: &Url,
    nonce: Option<&str>,
    access_token: Option<&str>,
    now: Timestamp,
) -> String {
    let header = json!({"typ": "dpop+jwt", "jwk": key.bare_public_jwk()});
    let mut claims = json!({
        "jti": random_token(),
        "htm": method,
        "htu": htu(url),
        "iat": now.unix(),
    });
    if let Some(nonce) = nonce {
        claims["nonce"] = Value::from(nonce);
    }
    if let Some(token) = access_token {
        claims["ath"] = Value::from(access_token_hash(token));
    }
    key.sign_jws(&header, &claims)
}

/// Whether an answer asks for the server's nonce: a 400 from an authorization server with
/// `{"error": "use_dpop_nonce"}`, or a 401 from a resource server with
/// `WWW-Authenticate: DPoP error="use_dpop_nonce"`.
pub fn asks_for_nonce(answer: &RawAnswer) -> bool {
    match answer.status {
        400 | 401
            if answer
                .json_body()
                .is_some_and(|b| b["error"] == "use_dpop_nonce") =>
        {
            true
        }
        401 => answer.header("www-authenticate").is_some_and(|value| {
            value.trim_start().to_ascii_lowercase().starts_with("dpop")
                && value.contains("use_dpop_nonce")
        }),
        _ => false,
    }
}

/// A session's DPoP: its key, the nonce store, and the clock proofs are dated by. `Debug`
/// shows the key's `kid` only.
#[derive(Clone)]
pub struct Dpop {
    key: EsKey,
    nonces: NonceStore,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Dpop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dpop")
            .field("key", &self.key)
            .field("nonces", &self.nonces)
            .finish()
    }
}

impl Dpop {
    pub fn new(key: EsKey, nonces: NonceStore, clock: Arc<dyn Clock>) -> Dpop {
        Dpop { key, nonces, clock }
    }

    pub fn key(&self) -> &EsKey {
        &self.key
    }

    pub fn nonces(&self) -> &NonceStore {
        &self.nonces
    }

    /// The clock proofs (and the assertions sent with them) are dated by.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Sends the request `build` makes, with a proof (and, given an access token,
    /// `Authorization: DPoP <token>` and `ath`). A `DPoP-Nonce` in any answer is kept; when
    /// the answer asks for the nonce and brought one, `build` makes the request again and it
    /// is sent once more with the nonce. The answer is read as `ProviderHttp::send` reads.
    pub async fn send(
        &self,
        http: &AtprotoHttp,
        access_token: Option<&SecretString>,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<ProviderResponse, ProviderError> {
        let mut retried = false;
        loop {
            let mut request = build(http.client())
                .header(reqwest::header::ACCEPT, "application/json")
                .build()
                .map_err(|_| ProviderError::Malformed("the request cannot be built".into()))?;
            let url = request.url().clone();
            let nonce = self.nonces.get(&url);
            let token = access_token.map(|t| t.expose_secret());
            let proof = proof(
                &self.key,
                request.method().as_str(),
                &url,
                nonce.as_deref(),
                token,
                self.clock.now(),
            );
            let headers = request.headers_mut();
            headers.insert(
                "DPoP",
                HeaderValue::from_str(&proof).expect("a JWS is a valid header value"),
            );
            if let Some(token) = token {
                let mut value = HeaderValue::from_str(&format!("DPoP {token}")).map_err(|_| {
                    ProviderError::Malformed("the access token is not a header value".into())
                })?;
                value.set_sensitive(true);
                headers.insert(AUTHORIZATION, value);
            }
            let answer = http.execute(request, MAX_JSON_BYTES).await?;
            let fresh = answer
                .header("dpop-nonce")
                .filter(|n| !n.is_empty())
                .map(str::to_owned);
            if let Some(fresh) = &fresh {
                self.nonces.set(&url, fresh);
            }
            let retry = !retried && fresh.is_some() && fresh != nonce && asks_for_nonce(&answer);
            if !retry {
                if asks_for_nonce(&answer) {
                    let why = if fresh.is_none() {
                        "asks for a DPoP nonce without giving one (no DPoP-Nonce header)"
                    } else {
                        "still asks for a DPoP nonce after it was sent the one it gave"
                    };
                    return Err(ProviderError::Rejected {
                        code: "use_dpop_nonce".into(),
                        description: Some(format!("{} {why}", super::host_of(&url))),
                    });
                }
                return answer.into_response();
            }
            retried = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use poem::http::StatusCode;
    use poem::web::Data;
    use poem::{EndpointExt, Response, Route, handler};

    use super::*;
    use crate::clock::SystemClock;
    use crate::providers::atproto::keys::{public_key_from_jwk, verify_jws};

    fn checked_claims(proof: &str) -> (Value, Value) {
        use base64::Engine as _;
        let header_part = proof.split('.').next().unwrap();
        let header: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(header_part)
                .unwrap(),
        )
        .unwrap();
        let key = public_key_from_jwk(&header["jwk"]).expect("the header carries the key");
        verify_jws(proof, &key).unwrap()
    }

    #[test]
    fn a_proof_names_the_method_the_bare_url_and_the_key() {
        let key = EsKey::generate();
        let url =
            Url::parse("https://pds.example/xrpc/app.bsky.actor.getProfile?actor=x#f").unwrap();
        let now = Timestamp::from_unix(1_800_000_000);
        let proof = proof(&key, "GET", &url, None, None, now);
        let (header, claims) = checked_claims(&proof);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["jwk"], key.bare_public_jwk());
        assert!(header["jwk"].get("d").is_none());
        assert_eq!(claims["htm"], "GET");
        assert_eq!(
            claims["htu"],
            "https://pds.example/xrpc/app.bsky.actor.getProfile"
        );
        assert_eq!(claims["iat"], 1_800_000_000);
        assert!(claims.get("nonce").is_none());
        assert!(claims.get("ath").is_none());
        assert!(claims["jti"].as_str().unwrap().len() >= 22);
    }

    #[test]
    fn a_proof_carries_the_nonce_and_the_access_token_hash_and_a_fresh_jti() {
        let key = EsKey::generate();
        let url = Url::parse("https://as.example/oauth/token").unwrap();
        let now = Timestamp::from_unix(1_800_000_000);
        let one = proof(&key, "POST", &url, Some("n-1"), Some("tok"), now);
        let two = proof(&key, "POST", &url, Some("n-1"), Some("tok"), now);
        let (_, first) = checked_claims(&one);
        let (_, second) = checked_claims(&two);
        assert_eq!(first["nonce"], "n-1");
        // RFC 9449 §4.2: base64url(SHA-256("tok")), computed apart with Python's hashlib.
        assert_eq!(first["ath"], "GnZ0607njffhrEOak8P6jjyUV4TU3sn9jjARc4svHWI");
        assert_ne!(first["jti"], second["jti"]);
    }

    #[test]
    fn the_nonce_store_keeps_the_latest_nonce_per_origin() {
        let store = NonceStore::new();
        let a = Url::parse("https://as.example/oauth/par").unwrap();
        let a_token = Url::parse("https://as.example/oauth/token").unwrap();
        let b = Url::parse("https://pds.example/xrpc/x").unwrap();
        assert_eq!(store.get(&a), None);
        store.set(&a, "one");
        store.set(&b, "other");
        assert_eq!(store.get(&a_token).as_deref(), Some("one"));
        store.set(&a_token, "two");
        assert_eq!(store.get(&a).as_deref(), Some("two"));
        assert_eq!(store.get(&b).as_deref(), Some("other"));
        let shared = store.clone();
        std::thread::spawn(move || shared.set(&Url::parse("https://as.example/").unwrap(), "3"))
            .join()
            .unwrap();
        assert_eq!(store.get(&a).as_deref(), Some("3"));
    }

    /// How the fake server answers a request without its nonce.
    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        /// An authorization server: 400 `{"error": "use_dpop_nonce"}`.
        Authorization,
        /// A resource server: 401 with `WWW-Authenticate`.
        Resource,
        /// A server that keeps asking, with a new nonce each time.
        Stubborn,
        /// A server that asks for no nonce but gives a new one with every answer.
        Rotating,
        /// A server that asks for a nonce without giving one.
        Silent,
    }

    struct Counter(AtomicUsize);

    #[handler]
    fn endpoint(
        req: &poem::Request,
        Data(kind): Data<&Kind>,
        Data(counter): Data<&Arc<Counter>>,
    ) -> Response {
        let n = counter.0.fetch_add(1, Ordering::SeqCst);
        let proof = req.header("dpop").unwrap_or_default().to_owned();
        let (_, claims) = checked_claims(&proof);
        if *kind == Kind::Rotating {
            return Response::builder()
                .header("DPoP-Nonce", format!("rotated-{n}"))
                .content_type("application/json")
                .body(json!({"nonce_sent": claims["nonce"]}).to_string());
        }
        if *kind == Kind::Silent {
            return Response::builder()
                .status(StatusCode::BAD_REQUEST)
                .content_type("application/json")
                .body(r#"{"error":"use_dpop_nonce"}"#);
        }
        let current = format!("nonce-{}", if *kind == Kind::Stubborn { n } else { 0 });
        if claims["nonce"] != current.as_str() {
            let mut resp = match kind {
                Kind::Resource => Response::builder()
                    .status(StatusCode::UNAUTHORIZED)
                    .header(
                        "WWW-Authenticate",
                        r#"DPoP algs="ES256", error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#,
                    )
                    .body(""),
                _ => Response::builder()
                    .status(StatusCode::BAD_REQUEST)
                    .content_type("application/json")
                    .body(r#"{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}"#),
            };
            resp.headers_mut()
                .insert("DPoP-Nonce", current.parse().unwrap());
            return resp;
        }
        let authorization = req.header("authorization").unwrap_or_default();
        Response::builder()
            .header("DPoP-Nonce", "nonce-0")
            .content_type("application/json")
            .body(
                json!({"ok": true, "authorization": authorization, "ath": claims["ath"], "htu": claims["htu"]})
                    .to_string(),
            )
    }

    async fn server(kind: Kind) -> (Url, Arc<Counter>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let app = Route::new()
            .at("/call", poem::post(endpoint).get(endpoint))
            .data(kind)
            .data(counter.clone());
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
        (Url::parse(&format!("{base}/call")).unwrap(), counter)
    }

    fn dpop() -> Dpop {
        Dpop::new(EsKey::generate(), NonceStore::new(), Arc::new(SystemClock))
    }

    fn http() -> AtprotoHttp {
        AtprotoHttp::guarded(Duration::from_secs(5), true)
    }

    #[tokio::test]
    async fn an_authorization_server_nonce_demand_is_met_by_one_retry() {
        let (url, counter) = server(Kind::Authorization).await;
        let dpop = dpop();
        let answer = dpop
            .send(&http(), None, |client| {
                client.post(url.clone()).form(&[("a", "b")])
            })
            .await
            .unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["ok"], true);
        assert_eq!(counter.0.load(Ordering::SeqCst), 2, "one retry");
        assert_eq!(dpop.nonces().get(&url).as_deref(), Some("nonce-0"));
        // The nonce is now known: the next call needs no retry.
        dpop.send(&http(), None, |client| client.post(url.clone()))
            .await
            .unwrap();
        assert_eq!(counter.0.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_resource_server_nonce_demand_is_met_and_the_token_is_dpop_bound() {
        let (url, counter) = server(Kind::Resource).await;
        let token = SecretString::from("access-1".to_owned());
        let answer = dpop()
            .send(&http(), Some(&token), |client| client.get(url.clone()))
            .await
            .unwrap();
        assert_eq!(answer.body["authorization"], "DPoP access-1");
        assert_eq!(answer.body["ath"], access_token_hash("access-1"));
        assert_eq!(answer.body["htu"], url.as_str());
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_server_that_keeps_asking_is_retried_once_and_named() {
        let (url, counter) = server(Kind::Stubborn).await;
        let err = dpop()
            .send(&http(), None, |client| client.post(url.clone()))
            .await
            .unwrap_err();
        assert_eq!(counter.0.load(Ordering::SeqCst), 2, "exactly one retry");
        assert_eq!(err.code(), "use_dpop_nonce");
        assert!(
            err.to_string()
                .contains("still asks for a DPoP nonce after it was sent the one it gave"),
            "{err}"
        );
    }

    /// A nonce given with any answer, a success included, replaces the one kept.
    #[tokio::test]
    async fn a_nonce_on_a_successful_answer_updates_the_store() {
        let (url, counter) = server(Kind::Rotating).await;
        let dpop = dpop();
        let first = dpop
            .send(&http(), None, |client| client.get(url.clone()))
            .await
            .unwrap();
        assert_eq!(first.body["nonce_sent"], Value::Null);
        assert_eq!(dpop.nonces().get(&url).as_deref(), Some("rotated-0"));
        let second = dpop
            .send(&http(), None, |client| client.get(url.clone()))
            .await
            .unwrap();
        assert_eq!(second.body["nonce_sent"], "rotated-0");
        assert_eq!(dpop.nonces().get(&url).as_deref(), Some("rotated-1"));
        assert_eq!(counter.0.load(Ordering::SeqCst), 2, "no retries");
    }

    #[tokio::test]
    async fn a_nonce_demand_without_a_nonce_is_not_retried_and_is_named() {
        let (url, counter) = server(Kind::Silent).await;
        let err = dpop()
            .send(&http(), None, |client| client.post(url.clone()))
            .await
            .unwrap_err();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert!(
            err.to_string()
                .ends_with("asks for a DPoP nonce without giving one (no DPoP-Nonce header))"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_loopback_server_is_refused_without_allow_private() {
        let (url, counter) = server(Kind::Authorization).await;
        let guarded = AtprotoHttp::guarded(Duration::from_secs(5), false);
        let err = dpop()
            .send(&guarded, None, |client| client.post(url.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "host_refused");
        assert_eq!(counter.0.load(Ordering::SeqCst), 0);
    }
}
