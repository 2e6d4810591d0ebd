//! A master key and the sub-keys derived from it with HKDF-SHA256 under distinct labels, so
//! one secret serves sealing, state signing and JWTs without any two uses sharing a key.
//! Where keys come from, and how several live side by side, is `crypto::ring`.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hkdf::Hkdf;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

use crate::crypto::seal::{KeyId, Sealer};
use crate::error::{Error, Result};

/// Length of the master key in bytes.
pub const MASTER_KEY_LEN: usize = 64;

const LABEL_SEAL: &[u8] = b"dravo/seal/aes-256-siv/v1";
const LABEL_STATE: &[u8] = b"dravo/oauth-state/hmac-sha256/v1";
const LABEL_STATE_SEAL: &[u8] = b"dravo/oauth-state/aes-256-siv/v2";
const LABEL_JWT: &[u8] = b"dravo/jwt/hs256/v1";
const LABEL_CHECK: &[u8] = b"dravo/key-check/v1";

/// 64 secret bytes; never printed.
pub struct MasterKey(SecretBox<[u8; MASTER_KEY_LEN]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

impl MasterKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut bytes = Box::new([0u8; MASTER_KEY_LEN]);
        rand::rng().fill_bytes(bytes.as_mut());
        MasterKey(SecretBox::new(bytes))
    }

    /// Parses base64 (standard alphabet, padding optional) of exactly 64 bytes.
    /// `source` names where the text came from, for the error sentence.
    pub fn from_base64(text: &str, source: &str) -> Result<Self> {
        let text = text.trim();
        let decoded = STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
            .map_err(|_| Error::Key(format!("{source} is not valid base64")))?;
        let bytes: [u8; MASTER_KEY_LEN] = decoded.as_slice().try_into().map_err(|_| {
            Error::Key(format!(
                "{source} must be base64 of {MASTER_KEY_LEN} bytes, but it decodes to {} bytes (make one with `dravo keys generate`)",
                decoded.len()
            ))
        })?;
        Ok(MasterKey(SecretBox::new(Box::new(bytes))))
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.expose_secret())
    }

    fn derive<const N: usize>(&self, label: &[u8]) -> [u8; N] {
        let mut out = [0u8; N];
        Hkdf::<Sha256>::new(None, self.0.expose_secret())
            .expand(label, &mut out)
            .expect("HKDF-SHA256 can expand to this length");
        out
    }

    /// The verification keys kept for a retired key's grace period: its state sealing key,
    /// its PKCE key and its JWT secret, but nothing that opens a sealed secret.
    pub fn grace_material(&self) -> GraceMaterial {
        let mut bytes = Box::new([0u8; GRACE_LEN]);
        bytes[..64].copy_from_slice(&self.derive::<64>(LABEL_STATE_SEAL));
        bytes[64..96].copy_from_slice(&self.derive::<32>(LABEL_STATE));
        bytes[96..].copy_from_slice(&self.derive::<32>(LABEL_JWT));
        GraceMaterial(SecretBox::new(bytes))
    }

    /// The public fingerprint of this key (see `Keys::check_value`).
    pub fn check_value(&self) -> String {
        let check: [u8; 16] = self.derive(LABEL_CHECK);
        check.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Length of a retired key's grace material: state sealing key, PKCE key, JWT secret.
pub const GRACE_LEN: usize = 64 + 32 + 32;

/// What a retired key leaves behind for its grace period (see `MasterKey::grace_material`).
pub struct GraceMaterial(SecretBox<[u8; GRACE_LEN]>);

impl std::fmt::Debug for GraceMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GraceMaterial([REDACTED])")
    }
}

impl GraceMaterial {
    /// Parses base64 of exactly `GRACE_LEN` bytes; `source` names where it came from.
    pub fn from_base64(text: &str, source: &str) -> Result<Self> {
        let decoded = STANDARD
            .decode(text.trim())
            .map_err(|_| Error::Key(format!("{source} is not valid base64")))?;
        let bytes: [u8; GRACE_LEN] = decoded.as_slice().try_into().map_err(|_| {
            Error::Key(format!(
                "{source} must be base64 of {GRACE_LEN} bytes, but it decodes to {} bytes",
                decoded.len()
            ))
        })?;
        Ok(GraceMaterial(SecretBox::new(Box::new(bytes))))
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.expose_secret())
    }

    /// The state keys and JWT secret of the retired key `id`.
    pub fn keys(&self, id: KeyId) -> (StateKeys, SecretBox<[u8; 32]>) {
        let bytes = self.0.expose_secret();
        let seal: [u8; 64] = bytes[..64].try_into().expect("64 bytes");
        let pkce: [u8; 32] = bytes[64..96].try_into().expect("32 bytes");
        let jwt: [u8; 32] = bytes[96..].try_into().expect("32 bytes");
        (
            StateKeys {
                sealer: Sealer::new(id, &seal),
                pkce_key: SecretBox::new(Box::new(pkce)),
            },
            SecretBox::new(Box::new(jwt)),
        )
    }
}

/// The keys that seal and open OAuth state, and derive PKCE verifiers from a state's nonce.
pub struct StateKeys {
    sealer: Sealer,
    pkce_key: SecretBox<[u8; 32]>,
}

impl StateKeys {
    /// The AES-256-SIV key that seals OAuth `state`, so the browser, the provider and their
    /// logs see an opaque string.
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The HMAC-SHA256 key that derives PKCE verifiers from a state's nonce.
    pub fn pkce_key(&self) -> &[u8; 32] {
        self.pkce_key.expose_secret()
    }
}

/// The sub-keys of one master key, the one named `id` in its database.
pub struct Keys {
    id: KeyId,
    sealer: Sealer,
    state: Arc<StateKeys>,
    derived_jwt_secret: SecretBox<[u8; 32]>,
    check_value: String,
}

impl Keys {
    pub fn derive(id: KeyId, master: &MasterKey) -> Self {
        Keys {
            id,
            sealer: Sealer::new(id, &master.derive::<64>(LABEL_SEAL)),
            state: Arc::new(StateKeys {
                sealer: Sealer::new(id, &master.derive::<64>(LABEL_STATE_SEAL)),
                pkce_key: SecretBox::new(Box::new(master.derive(LABEL_STATE))),
            }),
            derived_jwt_secret: SecretBox::new(Box::new(master.derive(LABEL_JWT))),
            check_value: master.check_value(),
        }
    }

    pub fn id(&self) -> KeyId {
        self.id
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The keys of OAuth state and PKCE.
    pub fn state(&self) -> &Arc<StateKeys> {
        &self.state
    }

    /// The AES-256-SIV key that seals OAuth `state`.
    pub fn state_sealer(&self) -> &Sealer {
        self.state.sealer()
    }

    /// The HMAC-SHA256 key that derives PKCE verifiers from a state's nonce.
    pub fn state_key(&self) -> &[u8; 32] {
        self.state.pkce_key()
    }

    /// The HS256 secret used when `auth.jwt_secret` is not set.
    pub fn derived_jwt_secret(&self) -> &[u8; 32] {
        self.derived_jwt_secret.expose_secret()
    }

    /// A public fingerprint of the master key, stored in the database to detect a wrong key.
    /// It is an HKDF output under its own label, so it reveals nothing about the other keys.
    pub fn check_value(&self) -> &str {
        &self.check_value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_and_length_check() {
        let key = MasterKey::generate();
        let again = MasterKey::from_base64(&key.to_base64(), "test").unwrap();
        assert_eq!(
            key.check_value(),
            Keys::derive(KeyId::FIRST, &again).check_value()
        );
        let short = STANDARD.encode([0u8; 32]);
        let err = MasterKey::from_base64(&short, "security.master_key").unwrap_err();
        assert!(err.to_string().contains("64 bytes"), "{err}");
        assert!(MasterKey::from_base64("not base64!!", "k").is_err());
    }

    #[test]
    fn sub_keys_differ() {
        let master = MasterKey::generate();
        let keys = Keys::derive(KeyId::FIRST, &master);
        assert_ne!(keys.state_key(), keys.derived_jwt_secret());
        // A retired key's grace material is exactly its state and JWT keys.
        let (state, jwt) = master.grace_material().keys(KeyId::FIRST);
        assert_eq!(state.pkce_key(), keys.state_key());
        assert_eq!(jwt.expose_secret(), keys.derived_jwt_secret());
        let sealed = keys.state_sealer().seal(&[b"s"], b"state");
        assert_eq!(state.sealer().open(&[b"s"], &sealed).unwrap(), b"state");
    }
}
