//! The OAuth `state` parameter: a compact, URL-safe value sealed with AES-256-SIV that binds
//! provider, tenant, app, return URL, expiry and a random nonce. Sealed rather than signed:
//! the tenant id (possibly an email) and the return URL are nobody's business at the provider,
//! in its logs or in browser history. The callback trusts only what opens under the key, so
//! no session row is needed before the callback; the nonce makes each state single-use (see
//! the store's `consume_state_nonce`).
//!
//! The PKCE verifier is derived from the state key and the nonce: it never travels through
//! the browser, and the callback can recompute it from the opened state alone.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::crypto::seal::key_id_of;
use crate::crypto::{KeyId, Sealer};
use crate::domain::{AppId, Owner, Provider, Timestamp};

type HmacSha256 = Hmac<Sha256>;

/// Version 2: sealed, with the provider by name (version 1 was signed and held the
/// provider's position in a list, which broke states in flight when the list changed).
const VERSION: u8 = 2;
const NONCE_LEN: usize = 16;
const SEAL_CONTEXT: &[u8] = b"dravo/oauth-state/v2";
const PKCE_LABEL: &[u8] = b"dravo/pkce-verifier/v1\0";

/// Longest provider name a state can carry.
const MAX_PROVIDER_LEN: usize = 32;
/// Longest `return_url` accepted, in bytes of its normalised (percent-encoded) form: what the
/// state carries. `start` checks the same number, so every URL it accepts fits a state.
pub const MAX_RETURN_URL_LEN: usize = 2048;
/// Longest server origin a state can carry (a Mastodon instance: `https://`, a host name of
/// at most 253 bytes, a port).
pub const MAX_SERVER_LEN: usize = 300;
/// The sealed value's own bytes: the sealer's header (version and key id), nonce and SIV tag.
const SEAL_OVERHEAD: usize = crate::crypto::seal::OVERHEAD;
/// The largest payload: version, expiry, nonce, then five length-prefixed fields at their
/// maxima (a tenant is at most 128 characters of up to 4 bytes each).
const MAX_PAYLOAD_LEN: usize = 1
    + 8
    + NONCE_LEN
    + (2 + MAX_PROVIDER_LEN)
    + (2 + Owner::MAX_LEN * 4)
    + (2 + AppId::LEN)
    + (2 + MAX_RETURN_URL_LEN)
    + (2 + MAX_SERVER_LEN);
/// Longest encoded state accepted; anything longer is refused before any work. Derived from
/// the maxima above, so the limits cannot disagree.
pub const MAX_ENCODED_LEN: usize = (MAX_PAYLOAD_LEN + SEAL_OVERHEAD).div_ceil(3) * 4;

/// How long a state is valid after `start`.
pub const STATE_TTL_SECONDS: i64 = 600;

/// What a state carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateClaims {
    pub provider: Provider,
    pub tenant: String,
    /// The OAuth app id, or `None` for the provider's default app.
    pub app_id: Option<String>,
    pub return_url: Option<String>,
    /// The origin of the server the user named (a Mastodon instance), for providers whose
    /// users name one.
    pub server: Option<String>,
    pub nonce: [u8; NONCE_LEN],
    pub expires_at: Timestamp,
}

/// Why a state was refused. All of them end the flow with a 400 page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the state is malformed")]
    Malformed,
    #[error("the state was altered or was not issued by this server")]
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
        now: Timestamp,
    ) -> Self {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        StateClaims {
            provider,
            tenant: tenant.to_owned(),
            app_id: app_id.map(str::to_owned),
            return_url: return_url.map(str::to_owned),
            server: None,
            nonce,
            expires_at: now.plus_seconds(STATE_TTL_SECONDS),
        }
    }

    /// The same claims for a connect on the server `server` (an origin of at most
    /// `MAX_SERVER_LEN` bytes, checked by the caller).
    pub fn on_server(mut self, server: Option<&str>) -> Self {
        self.server = server.map(str::to_owned);
        self
    }

    /// The nonce as text, the key of the single-use table.
    pub fn nonce_hex(&self) -> String {
        self.nonce.iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn push_field(out: &mut Vec<u8>, value: &str) {
    let len = u16::try_from(value.len()).expect("fields are bounded well below 64 KiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value.as_bytes());
}

/// Seals claims into the compact state string.
pub fn seal(sealer: &Sealer, claims: &StateClaims) -> String {
    let mut payload = Vec::with_capacity(64 + claims.tenant.len());
    payload.push(VERSION);
    payload.extend_from_slice(&claims.expires_at.unix().to_be_bytes());
    payload.extend_from_slice(&claims.nonce);
    push_field(&mut payload, claims.provider.as_str());
    push_field(&mut payload, &claims.tenant);
    push_field(&mut payload, claims.app_id.as_deref().unwrap_or(""));
    push_field(&mut payload, claims.return_url.as_deref().unwrap_or(""));
    // Last and only when there is one: a state without it reads as before the field existed.
    if let Some(server) = &claims.server {
        push_field(&mut payload, server);
    }
    URL_SAFE_NO_PAD.encode(sealer.seal(&[SEAL_CONTEXT], &payload))
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

/// The master key a state names (its sealer's header), so the caller can pick the keys that
/// open it; `None` for a state that cannot be one of ours.
pub fn key_id(state: &str) -> Option<KeyId> {
    if state.is_empty() || state.len() > MAX_ENCODED_LEN {
        return None;
    }
    key_id_of(&URL_SAFE_NO_PAD.decode(state).ok()?)
}

/// Why a state is refused when no key at hand opens it: malformed when it cannot be a state
/// at all, else not issued by this server (or by a key whose grace period is over).
pub fn keyless_error(state: &str) -> StateError {
    if state.is_empty() || state.len() > MAX_ENCODED_LEN || URL_SAFE_NO_PAD.decode(state).is_err() {
        StateError::Malformed
    } else {
        StateError::BadSignature
    }
}

/// Opens a state (any altered byte fails) and checks its expiry against `now`.
pub fn open(sealer: &Sealer, state: &str, now: Timestamp) -> Result<StateClaims, StateError> {
    if state.is_empty() || state.len() > MAX_ENCODED_LEN {
        return Err(StateError::Malformed);
    }
    let raw = URL_SAFE_NO_PAD
        .decode(state)
        .map_err(|_| StateError::Malformed)?;
    let payload = sealer
        .open(&[SEAL_CONTEXT], &raw)
        .map_err(|_| StateError::BadSignature)?;

    let mut r = Reader(&payload);
    if r.take(1)?[0] != VERSION {
        return Err(StateError::Malformed);
    }
    let expires_at =
        Timestamp::from_unix(i64::from_be_bytes(r.take(8)?.try_into().expect("8 bytes")));
    let nonce: [u8; NONCE_LEN] = r.take(NONCE_LEN)?.try_into().expect("16 bytes");
    let provider = r
        .field()?
        .ok_or(StateError::Malformed)?
        .parse::<Provider>()
        .map_err(|_| StateError::Malformed)?;
    let tenant = r.field()?.ok_or(StateError::Malformed)?;
    let app_id = r.field()?;
    let return_url = r.field()?;
    let server = if r.0.is_empty() { None } else { r.field()? };
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
        server,
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

    const NOW: Timestamp = Timestamp::from_unix(1_800_000_000);

    fn sealer() -> Sealer {
        Sealer::new(KeyId::FIRST, &[9u8; 64])
    }

    fn x() -> Provider {
        "x".parse().unwrap()
    }

    fn claims() -> StateClaims {
        StateClaims::new(
            x(),
            "alice@example.com",
            Some("oa_abcdefghijklmnopqrst"),
            Some("https://dash.example.com/done"),
            NOW,
        )
    }

    #[test]
    fn round_trip() {
        let c = claims();
        let s = seal(&sealer(), &c);
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(open(&sealer(), &s, NOW.plus_seconds(1)).unwrap(), c);
    }

    #[test]
    fn the_state_is_opaque() {
        let s = seal(&sealer(), &claims());
        let raw = URL_SAFE_NO_PAD.decode(&s).unwrap();
        for needle in [
            &b"alice@example.com"[..],
            b"dash.example.com",
            b"oa_abcdefghijklmnopqrst",
        ] {
            assert!(
                !raw.windows(needle.len()).any(|w| w == needle),
                "the decoded state shows {}",
                String::from_utf8_lossy(needle)
            );
        }
    }

    #[test]
    fn a_server_round_trips_and_a_state_without_one_reads_as_before() {
        let plain = StateClaims::new(x(), "alice", None, None, NOW);
        let on = plain.clone().on_server(Some("https://mastodon.example"));
        let (plain_sealed, on_sealed) = (seal(&sealer(), &plain), seal(&sealer(), &on));
        assert_eq!(open(&sealer(), &on_sealed, NOW).unwrap(), on);
        assert_eq!(open(&sealer(), &plain_sealed, NOW).unwrap().server, None);
        assert!(on_sealed.len() > plain_sealed.len());
    }

    #[test]
    fn default_app_and_no_return_url_round_trip() {
        let c = StateClaims::new("tiktok".parse().unwrap(), "bob", None, None, NOW);
        assert_eq!(open(&sealer(), &seal(&sealer(), &c), NOW).unwrap(), c);
    }

    #[test]
    fn the_largest_claims_fit_the_encoded_limit() {
        let tenant = "𝕏".repeat(Owner::MAX_LEN);
        let url = format!(
            "https://dash.example.com/{}",
            "a".repeat(MAX_RETURN_URL_LEN - 25)
        );
        assert_eq!(url.len(), MAX_RETURN_URL_LEN);
        let c = StateClaims::new(
            "instagram".parse().unwrap(),
            &tenant,
            Some("oa_abcdefghijklmnopqrst"),
            Some(&url),
            NOW,
        )
        .on_server(Some(&"s".repeat(MAX_SERVER_LEN)));
        let s = seal(&sealer(), &c);
        assert!(
            s.len() <= MAX_ENCODED_LEN,
            "{} > {MAX_ENCODED_LEN}",
            s.len()
        );
        assert_eq!(open(&sealer(), &s, NOW).unwrap(), c);
    }

    #[test]
    fn expires_after_ten_minutes() {
        let s = seal(&sealer(), &claims());
        assert!(open(&sealer(), &s, NOW.plus_seconds(STATE_TTL_SECONDS - 1)).is_ok());
        assert_eq!(
            open(&sealer(), &s, NOW.plus_seconds(STATE_TTL_SECONDS)),
            Err(StateError::Expired)
        );
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let s = seal(&sealer(), &claims());
        let raw = URL_SAFE_NO_PAD.decode(&s).unwrap();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            let forged = URL_SAFE_NO_PAD.encode(&bad);
            assert!(
                open(&sealer(), &forged, NOW).is_err(),
                "byte {i} flipped was accepted"
            );
        }
    }

    #[test]
    fn other_key_and_garbage_are_refused() {
        let s = seal(&sealer(), &claims());
        assert_eq!(
            open(&Sealer::new(KeyId::FIRST, &[1u8; 64]), &s, NOW),
            Err(StateError::BadSignature)
        );
        assert_eq!(open(&sealer(), "", NOW), Err(StateError::Malformed));
        assert_eq!(open(&sealer(), "!!!", NOW), Err(StateError::Malformed));
        assert!(open(&sealer(), &s[..20], NOW).is_err());
    }

    #[test]
    fn a_state_names_the_key_that_sealed_it() {
        let key3 = Sealer::new(KeyId::new(3).unwrap(), &[9u8; 64]);
        let c = claims();
        let s = seal(&key3, &c);
        assert_eq!(key_id(&s), KeyId::new(3));
        assert_eq!(key_id("!!!"), None);
        assert_eq!(key_id(""), None);
        // Same key material under id 1: the header is bound, so it does not open.
        assert_eq!(open(&sealer(), &s, NOW), Err(StateError::BadSignature));
        assert_eq!(open(&key3, &s, NOW).unwrap(), c);
    }

    #[test]
    fn pkce_matches_rfc7636_shape() {
        let key = [9u8; 32];
        let c = claims();
        let v = pkce_verifier(&key, &c.nonce);
        assert_eq!(v.len(), 43);
        assert_eq!(v, pkce_verifier(&key, &c.nonce));
        // RFC 7636 appendix B test vector.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// Any claims survive the round trip exactly.
            #[test]
            fn any_claims_round_trip(
                tenant in "\\PC{1,128}",
                app in proptest::option::of("oa_[a-z2-7]{20}"),
                url in proptest::option::of("https://[a-z]{1,20}\\.example\\.com/[ -~]{0,200}"),
            ) {
                let c = StateClaims::new(x(), &tenant, app.as_deref(), url.as_deref(), NOW);
                let opened = open(&sealer(), &seal(&sealer(), &c), NOW).unwrap();
                prop_assert_eq!(opened, c);
            }

            /// Random text never panics and never opens.
            #[test]
            fn garbage_never_opens(raw in "\\PC{0,600}") {
                prop_assert!(open(&sealer(), &raw, NOW).is_err());
            }

            /// A state with any bytes changed, cut or extended never opens.
            #[test]
            fn tampered_states_never_open(
                edits in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
                cut in proptest::option::of(any::<prop::sample::Index>()),
                extra in proptest::collection::vec(any::<u8>(), 0..4),
            ) {
                let s = seal(&sealer(), &claims());
                let mut raw = URL_SAFE_NO_PAD.decode(&s).unwrap();
                for (at, xor) in &edits {
                    let i = at.index(raw.len());
                    raw[i] ^= xor;
                }
                if let Some(at) = cut {
                    raw.truncate(at.index(raw.len()));
                }
                raw.extend_from_slice(&extra);
                let forged = URL_SAFE_NO_PAD.encode(&raw);
                prop_assume!(forged != s);
                prop_assert!(open(&sealer(), &forged, NOW).is_err());
            }
        }
    }
}
