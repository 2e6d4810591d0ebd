//! The OAuth `state` parameter: a compact, URL-safe token signed with HMAC-SHA256 that binds
//! provider, tenant, app, return URL, expiry and a random nonce. The callback trusts only what
//! the signature covers, so no session row is needed before the callback; the nonce makes
//! each state single-use (see `store::oauth_states`).
//!
//! The PKCE verifier is derived from the state key and the nonce: it never travels through
//! the browser, and the callback can recompute it from the verified state alone.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::providers::Provider;

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 16;
const TAG_LEN: usize = 32;
const STATE_LABEL: &[u8] = b"dravo/oauth-state/v1\0";
const PKCE_LABEL: &[u8] = b"dravo/pkce-verifier/v1\0";
/// Longest encoded state accepted; anything longer is refused before any work.
const MAX_ENCODED_LEN: usize = 4096;

/// How long a state is valid after `start`.
pub const STATE_TTL_SECONDS: u64 = 600;

/// What a state carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateClaims {
    pub provider: Provider,
    pub tenant: String,
    /// The OAuth app id, or `None` for the provider's default app.
    pub app_id: Option<String>,
    pub return_url: Option<String>,
    pub nonce: [u8; NONCE_LEN],
    /// Unix seconds.
    pub expires_at: u64,
}

/// Why a state was refused. All of them end the flow with a 400 page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the state is malformed")]
    Malformed,
    #[error("the state's signature is invalid")]
    BadSignature,
    #[error("the state has expired")]
    Expired,
}

impl StateClaims {
    /// New claims with a fresh random nonce, valid for `STATE_TTL_SECONDS` from `now`.
    pub fn new(
        provider: Provider,
        tenant: &str,
        app_id: Option<&str>,
        return_url: Option<&str>,
        now: u64,
    ) -> Self {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        StateClaims {
            provider,
            tenant: tenant.to_owned(),
            app_id: app_id.map(str::to_owned),
            return_url: return_url.map(str::to_owned),
            nonce,
            expires_at: now + STATE_TTL_SECONDS,
        }
    }

    /// The nonce as text, the key of the single-use table.
    pub fn nonce_hex(&self) -> String {
        self.nonce.iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn mac(key: &[u8; 32]) -> HmacSha256 {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(STATE_LABEL);
    mac
}

fn push_field(out: &mut Vec<u8>, value: &str) {
    let len = u16::try_from(value.len()).expect("fields are bounded well below 64 KiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value.as_bytes());
}

/// Signs claims into the compact state string.
pub fn sign(key: &[u8; 32], claims: &StateClaims) -> String {
    let mut payload = Vec::with_capacity(64 + claims.tenant.len());
    payload.push(VERSION);
    let index = Provider::ALL
        .iter()
        .position(|p| *p == claims.provider)
        .expect("every provider is in ALL");
    payload.push(index as u8);
    payload.extend_from_slice(&claims.expires_at.to_be_bytes());
    payload.extend_from_slice(&claims.nonce);
    push_field(&mut payload, &claims.tenant);
    push_field(&mut payload, claims.app_id.as_deref().unwrap_or(""));
    push_field(&mut payload, claims.return_url.as_deref().unwrap_or(""));
    let mut mac = mac(key);
    mac.update(&payload);
    payload.extend_from_slice(&mac.finalize().into_bytes());
    URL_SAFE_NO_PAD.encode(payload)
}

/// A cursor over the payload bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StateError> {
        if self.0.len() < n {
            return Err(StateError::Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn field(&mut self) -> Result<Option<String>, StateError> {
        let len = u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")) as usize;
        let bytes = self.take(len)?;
        let text = std::str::from_utf8(bytes).map_err(|_| StateError::Malformed)?;
        Ok((!text.is_empty()).then(|| text.to_owned()))
    }
}

/// Checks the signature (in constant time) and expiry, and returns the claims.
pub fn verify(key: &[u8; 32], state: &str, now: u64) -> Result<StateClaims, StateError> {
    if state.is_empty() || state.len() > MAX_ENCODED_LEN {
        return Err(StateError::Malformed);
    }
    let raw = URL_SAFE_NO_PAD
        .decode(state)
        .map_err(|_| StateError::Malformed)?;
    if raw.len() < 1 + 1 + 8 + NONCE_LEN + 6 + TAG_LEN {
        return Err(StateError::Malformed);
    }
    let (payload, tag) = raw.split_at(raw.len() - TAG_LEN);
    let mut mac = mac(key);
    mac.update(payload);
    mac.verify_slice(tag)
        .map_err(|_| StateError::BadSignature)?;

    let mut r = Reader(payload);
    if r.take(1)?[0] != VERSION {
        return Err(StateError::Malformed);
    }
    let provider = *Provider::ALL
        .get(r.take(1)?[0] as usize)
        .ok_or(StateError::Malformed)?;
    let expires_at = u64::from_be_bytes(r.take(8)?.try_into().expect("8 bytes"));
    let nonce: [u8; NONCE_LEN] = r.take(NONCE_LEN)?.try_into().expect("16 bytes");
    let tenant = r.field()?.ok_or(StateError::Malformed)?;
    let app_id = r.field()?;
    let return_url = r.field()?;
    if !r.0.is_empty() {
        return Err(StateError::Malformed);
    }
    if now >= expires_at {
        return Err(StateError::Expired);
    }
    Ok(StateClaims {
        provider,
        tenant,
        app_id,
        return_url,
        nonce,
        expires_at,
    })
}

/// The PKCE code verifier for a state's nonce: 43 URL-safe characters (RFC 7636 §4.1).
pub fn pkce_verifier(key: &[u8; 32], nonce: &[u8; NONCE_LEN]) -> String {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(PKCE_LABEL);
    mac.update(nonce);
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// The S256 code challenge for a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [9u8; 32];
    const NOW: u64 = 1_800_000_000;

    fn claims() -> StateClaims {
        StateClaims::new(
            Provider::X,
            "alice",
            Some("oa_abcdefghijklmnopqrst"),
            Some("https://dash.example.com/done"),
            NOW,
        )
    }

    #[test]
    fn round_trip() {
        let c = claims();
        let s = sign(&KEY, &c);
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(verify(&KEY, &s, NOW + 1).unwrap(), c);
    }

    #[test]
    fn default_app_and_no_return_url_round_trip() {
        let c = StateClaims::new(Provider::Tiktok, "bob", None, None, NOW);
        assert_eq!(verify(&KEY, &sign(&KEY, &c), NOW).unwrap(), c);
    }

    #[test]
    fn expires_after_ten_minutes() {
        let s = sign(&KEY, &claims());
        assert!(verify(&KEY, &s, NOW + STATE_TTL_SECONDS - 1).is_ok());
        assert_eq!(
            verify(&KEY, &s, NOW + STATE_TTL_SECONDS),
            Err(StateError::Expired)
        );
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let s = sign(&KEY, &claims());
        let raw = URL_SAFE_NO_PAD.decode(&s).unwrap();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            let forged = URL_SAFE_NO_PAD.encode(&bad);
            assert!(
                verify(&KEY, &forged, NOW).is_err(),
                "byte {i} flipped was accepted"
            );
        }
    }

    #[test]
    fn other_key_and_garbage_are_refused() {
        let s = sign(&KEY, &claims());
        assert_eq!(verify(&[1u8; 32], &s, NOW), Err(StateError::BadSignature));
        assert_eq!(verify(&KEY, "", NOW), Err(StateError::Malformed));
        assert_eq!(verify(&KEY, "!!!", NOW), Err(StateError::Malformed));
        assert_eq!(verify(&KEY, &s[..20], NOW), Err(StateError::Malformed));
    }

    #[test]
    fn pkce_matches_rfc7636_shape() {
        let c = claims();
        let v = pkce_verifier(&KEY, &c.nonce);
        assert_eq!(v.len(), 43);
        assert_eq!(v, pkce_verifier(&KEY, &c.nonce));
        // RFC 7636 appendix B test vector.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
