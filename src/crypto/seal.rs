//! Sealing secrets at rest with AES-256-SIV.
//!
//! The associated data names the row a value belongs to (kind, id, owner, provider…), so a
//! sealed value copied onto another row does not open. A random nonce is the last associated
//! data item (RFC 5297 §3), so sealing the same secret twice gives different bytes.

use aes_siv::KeyInit;
use aes_siv::siv::Aes256Siv;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};

use crate::error::{Error, Result};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 16;

/// Seals and opens values with a 64-byte AES-256-SIV key.
pub struct Sealer {
    key: SecretBox<[u8; 64]>,
}

impl Sealer {
    pub fn new(key: &[u8; 64]) -> Self {
        Sealer {
            key: SecretBox::new(Box::new(*key)),
        }
    }

    fn cipher(&self) -> Aes256Siv {
        Aes256Siv::new_from_slice(self.key.expose_secret()).expect("the key is 64 bytes")
    }

    /// Seals `plaintext` bound to `context`. Layout: version byte, nonce, SIV tag + ciphertext.
    pub fn seal(&self, context: &[&[u8]], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let headers = context.iter().copied().chain(std::iter::once(&nonce[..]));
        let ciphertext = self
            .cipher()
            .encrypt(headers, plaintext)
            .expect("AES-SIV encryption cannot fail for small inputs");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Opens a value sealed with the same `context`; any other context, key or a changed byte
    /// fails with `Error::Unseal`.
    pub fn open(&self, context: &[&[u8]], sealed: &[u8]) -> Result<Vec<u8>> {
        let fail = || {
            Error::Unseal(
                "a sealed secret failed to open: it was moved from another row, altered, or sealed with another master key".into(),
            )
        };
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
            return Err(fail());
        }
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
        let headers = context.iter().copied().chain(std::iter::once(nonce));
        self.cipher()
            .decrypt(headers, ciphertext)
            .map_err(|_| fail())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::new(&[7u8; 64])
    }

    #[test]
    fn round_trip_with_same_context() {
        let s = sealer();
        let sealed = s.seal(&[b"app", b"oa_1"], b"secret");
        assert_eq!(s.open(&[b"app", b"oa_1"], &sealed).unwrap(), b"secret");
    }

    #[test]
    fn other_context_does_not_open() {
        let s = sealer();
        let sealed = s.seal(&[b"app", b"oa_1"], b"secret");
        assert!(matches!(
            s.open(&[b"app", b"oa_2"], &sealed),
            Err(Error::Unseal(_))
        ));
        // Context items are separate: moving bytes between them changes the context.
        assert!(s.open(&[b"appoa_1"], &sealed).is_err());
    }

    #[test]
    fn other_key_or_tampering_does_not_open() {
        let sealed = sealer().seal(&[b"x"], b"secret");
        assert!(Sealer::new(&[8u8; 64]).open(&[b"x"], &sealed).is_err());
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(sealer().open(&[b"x"], &flipped).is_err());
        assert!(sealer().open(&[b"x"], &sealed[..5]).is_err());
    }

    #[test]
    fn sealing_is_randomised() {
        let s = sealer();
        assert_ne!(s.seal(&[b"x"], b"same"), s.seal(&[b"x"], b"same"));
    }
}
