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

pub use super::http::RawAnswer;
use super::http::{MAX_RESPONSE_BYTES, ProviderError, ProviderHttp, ProviderResponse};

/// The guarded client for the hosts an AT Protocol connect reaches, and whether it lets
/// private addresses and plain http through (tests, private deployments). DPoP needs the
/// `DPoP-Nonce` and `WWW-Authenticate` headers and handle resolution a text body, so those
/// calls go through [`AtprotoHttp::execute`] (`ProviderHttp::execute_raw`: the same guard
/// and size bound, headers kept).
#[derive(Clone)]
pub struct AtprotoHttp {
    http: ProviderHttp,
    allow_private: bool,
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
    /// bytes of its answer, headers kept.
    pub async fn execute(
        &self,
        request: reqwest::Request,
        limit: usize,
    ) -> Result<RawAnswer, ProviderError> {
        self.http.execute_raw(request, limit).await
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

/// The default bound on a JSON answer.
const MAX_JSON_BYTES: usize = MAX_RESPONSE_BYTES;
