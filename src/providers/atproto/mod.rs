//! Bluesky, and any server of the AT Protocol: the building blocks of its OAuth profile
//! (<https://atproto.com/specs/oauth>), which differs from every other provider's. There is no
//! pre-registered app: the `client_id` is the URL of a metadata document Dravo serves, and
//! Dravo proves itself with an ES256 key (`private_key_jwt`) rather than a secret. The user's
//! server is found per connect (handle or DID → DID document → PDS → its authorization
//! server), every request to that server is bound to a per-session key with DPoP proofs, and
//! authorization requests are pushed (PAR).
//!
//! - [`keys`]: ES256 key pairs, their JWK and JWKS, compact JWS signing;
//! - [`dpop`]: DPoP proofs, the per-server nonce store and the send-with-retry helper;
//! - [`client`]: the client metadata document, the loopback client id, client assertions;
//! - [`resolve`]: handles, DIDs, DID documents, protected-resource and authorization-server
//!   metadata;
//! - [`oauth`]: PAR, the authorize redirect, code exchange, refresh, revocation, the check of
//!   the token's `sub`, and the profile call.
//!
//! Every host here comes from user input or from documents user input leads to, so every
//! call goes through `ProviderHttp::guarded` ([`AtprotoHttp`] wraps it: public https hosts
//! only unless private addresses are allowed, bounded answers).
//!
//! Not here yet: the `OAuthProvider` registration, the routes that serve the client metadata
//! and JWKS, and storage of the session (DPoP key, nonce, issuer, DID): this module is the
//! protocol, the connect flow wires it.

pub mod client;
pub mod dpop;
pub mod keys;
pub mod oauth;
pub mod resolve;

#[cfg(test)]
mod fake;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// base64url without padding, the encoding of every JOSE part.
fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A random URL-safe token of 16 bytes (128 bits): JWT ids.
fn random_token() -> String {
    b64(rand::random::<[u8; 16]>())
}

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::guard;
use super::http::{MAX_RESPONSE_BYTES, ProviderError, ProviderHttp, ProviderResponse, oauth_error};

/// The guarded client for the hosts an AT Protocol connect reaches, and whether it lets
/// private addresses and plain http through (tests, private deployments). `ProviderHttp`
/// reads JSON only and keeps response headers to itself; DPoP needs the `DPoP-Nonce` and
/// `WWW-Authenticate` headers and handle resolution a text body, so those calls go through
/// [`AtprotoHttp::execute`], which applies the same guard and size bound.
#[derive(Clone)]
pub struct AtprotoHttp {
    http: ProviderHttp,
    allow_private: bool,
}

/// An answer as it came: status, headers and at most the size asked for.
pub struct RawAnswer {
    pub status: u16,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl AtprotoHttp {
    /// A client of public https hosts only, unless `allow_private`.
    pub fn guarded(timeout: Duration, allow_private: bool) -> AtprotoHttp {
        AtprotoHttp {
            http: ProviderHttp::guarded(timeout, allow_private),
            allow_private,
        }
    }

    pub fn client(&self) -> &reqwest::Client {
        self.http.client()
    }

    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// `GET url` for a JSON document, with `ProviderHttp::send`'s rules.
    pub async fn get_json(&self, url: &url::Url) -> Result<ProviderResponse, ProviderError> {
        self.http.send(self.http.client().get(url.clone())).await
    }

    /// Sends a built request to a host that passes the guard, and reads at most `limit`
    /// bytes of its answer. Redirects are the client's business (followed only to hosts that
    /// pass the guard).
    pub async fn execute(
        &self,
        request: reqwest::Request,
        limit: usize,
    ) -> Result<RawAnswer, ProviderError> {
        if let Some(why) = guard::check_url(request.url(), self.allow_private) {
            return Err(ProviderError::Refused(why));
        }
        let host = host_of(request.url());
        let mut resp = self
            .http
            .client()
            .execute(request)
            .await
            .map_err(|e| transport_error(&host, &e))?;
        let status = resp.status().as_u16();
        if resp.status().is_redirection() {
            return Err(ProviderError::Malformed(format!(
                "HTTP {status} redirect from {host} (redirects are not followed)"
            )));
        }
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large(&host));
        }
        let headers = resp.headers().clone();
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| transport_error(&host, &e))? {
            if bytes.len() + chunk.len() > limit {
                return Err(too_large(&host));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(RawAnswer {
            status,
            headers,
            bytes,
        })
    }
}

impl RawAnswer {
    /// A header as text, when present and readable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON, `None` when it is not.
    pub fn json_body(&self) -> Option<Value> {
        serde_json::from_slice(&self.bytes).ok()
    }

    /// The answer as `ProviderHttp::send` would give it: a 429 is `RateLimited`, a 5xx
    /// `Unavailable` (or `Failing` with its OAuth error), a body that is not JSON `Malformed`
    /// unless it is an empty success.
    pub fn into_response(self) -> Result<ProviderResponse, ProviderError> {
        let status = self.status;
        let retry_after = self
            .header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if status == 429 {
            return Err(ProviderError::RateLimited { retry_after });
        }
        let body = match serde_json::from_slice::<Value>(&self.bytes) {
            Ok(v) => v,
            Err(_) if self.bytes.trim_ascii().is_empty() && status < 300 => Value::Null,
            Err(_) if status >= 500 => {
                return Err(ProviderError::Unavailable(format!("HTTP {status}")));
            }
            Err(_) => {
                return Err(ProviderError::Malformed(format!(
                    "HTTP {status} with a body that is not JSON"
                )));
            }
        };
        if status >= 500 {
            return Err(match oauth_error(&body) {
                Some((code, description)) => ProviderError::Failing {
                    status,
                    code,
                    description,
                },
                None => ProviderError::Unavailable(format!("HTTP {status}")),
            });
        }
        Ok(ProviderResponse {
            status,
            body,
            retry_after,
        })
    }
}

/// `host[:port]` of a URL, for error text (never its path or query).
fn host_of(url: &url::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => "the server".to_owned(),
    }
}

fn too_large(host: &str) -> ProviderError {
    ProviderError::Malformed(format!("the answer from {host} is too large"))
}

/// What failed on the way to `host`, with the innermost cause.
fn transport_error(host: &str, e: &reqwest::Error) -> ProviderError {
    let mut inner: &(dyn std::error::Error + 'static) = e;
    while let Some(source) = inner.source() {
        inner = source;
    }
    let cause = inner.to_string();
    let cause = cause.split(" (os error").next().unwrap_or(&cause).trim();
    ProviderError::Unavailable(if e.is_timeout() {
        format!("{host} did not answer in time")
    } else if e.is_connect() {
        format!("cannot connect to {host}: {cause}")
    } else {
        format!("the connection to {host} failed: {cause}")
    })
}

/// The default bound on a JSON answer.
const MAX_JSON_BYTES: usize = MAX_RESPONSE_BYTES;
