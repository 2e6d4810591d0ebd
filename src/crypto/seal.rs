//! Sealing secrets at rest with AES-256-SIV.
//!
//! The associated data names the row a value belongs to (kind, id, owner, provider…), so a
//! sealed value copied onto another row does not open. A random nonce is the last associated
//! data item (RFC 5297 §3), so sealing the same secret twice gives different bytes.
//!
//! Every value names the master key that sealed it, so a key ring can hold several keys while
//! a rotation re-seals values (see `crypto::ring`). Layouts:
//! - version 2 (written now): `0x02`, the key id (4 bytes, big-endian), nonce, SIV tag +
//!   ciphertext; the 5 header bytes are associated data too;
//! - version 1 (written before key ids existed, still read): `0x01`, nonce, SIV tag +
//!   ciphertext; it was sealed by key 1.

use aes_siv::KeyInit;
use aes_siv::siv::Aes256Siv;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};

use crate::error::{Error, Result};

const LEGACY_VERSION: u8 = 1;
const VERSION: u8 = 2;
const HEADER_LEN: usize = 5;
const NONCE_LEN: usize = 16;

/// The bytes a sealed value adds to its plaintext: header, nonce and SIV tag.
pub const OVERHEAD: usize = HEADER_LEN + NONCE_LEN + 16;

/// Which master key sealed a value: 1 for the first key of a database, one more for each
/// rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(u32);

impl KeyId {
    /// A database's first key, and the key of every value sealed before key ids existed.
    pub const FIRST: KeyId = KeyId(1);

    /// `None` for 0, which names no key.
    pub fn new(id: u32) -> Option<KeyId> {
        (id > 0).then_some(KeyId(id))
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// The id the next key gets.
    pub fn next(self) -> KeyId {
        KeyId(
            self.0
                .checked_add(1)
                .expect("fewer than 4 billion rotations"),
        )
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The key a sealed value names, read from its header; `None` when the bytes are not a sealed
/// value this version reads (too short, or an unknown layout).
pub fn key_id_of(sealed: &[u8]) -> Option<KeyId> {
    match *sealed.first()? {
        LEGACY_VERSION if sealed.len() > NONCE_LEN => Some(KeyId::FIRST),
        VERSION if sealed.len() >= HEADER_LEN + NONCE_LEN => {
            KeyId::new(u32::from_be_bytes(sealed[1..HEADER_LEN].try_into().ok()?))
        }
        _ => None,
    }
}

/// The byte prefixes that mark a value sealed by `id`: what the store counts and selects by,
/// without opening a value.
pub fn prefixes_of(id: KeyId) -> Vec<Vec<u8>> {
    let mut prefixes = vec![header(id).to_vec()];
    if id == KeyId::FIRST {
        prefixes.push(vec![LEGACY_VERSION]);
    }
    prefixes
}

fn header(id: KeyId) -> [u8; HEADER_LEN] {
    let mut header = [VERSION, 0, 0, 0, 0];
    header[1..].copy_from_slice(&id.0.to_be_bytes());
    header
}

/// Seals and opens values with one master key's 64-byte AES-256-SIV key.
pub struct Sealer {
    id: KeyId,
    key: SecretBox<[u8; 64]>,
}

impl Sealer {
    pub fn new(id: KeyId, key: &[u8; 64]) -> Self {
        Sealer {
            id,
            key: SecretBox::new(Box::new(*key)),
        }
    }

    /// The key id this sealer writes into every value.
    pub fn key_id(&self) -> KeyId {
        self.id
    }

    fn cipher(&self) -> Aes256Siv {
        Aes256Siv::new_from_slice(self.key.expose_secret()).expect("the key is 64 bytes")
    }

    /// Seals `plaintext` bound to `context` (version 2 layout, see the module comment).
    pub fn seal(&self, context: &[&[u8]], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let header = header(self.id);
        let headers = context.iter().copied().chain([&header[..], &nonce[..]]);
        let ciphertext = self
            .cipher()
            .encrypt(headers, plaintext)
            .expect("AES-SIV encryption cannot fail for small inputs");
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Opens a value this key sealed with the same `context`; any other context, key or a
    /// changed byte fails with `Error::Unseal`.
    pub fn open(&self, context: &[&[u8]], sealed: &[u8]) -> Result<Vec<u8>> {
        let fail = || {
            Error::Unseal(
                "a sealed secret failed to open: it was moved from another row, altered, or sealed with another master key".into(),
            )
        };
        if key_id_of(sealed) != Some(self.id) {
            return Err(fail());
        }
        let opened = if sealed[0] == LEGACY_VERSION {
            let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
            let headers = context.iter().copied().chain(std::iter::once(nonce));
            self.cipher().decrypt(headers, ciphertext)
        } else {
            let (header, rest) = sealed.split_at(HEADER_LEN);
            let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
            let headers = context.iter().copied().chain([header, nonce]);
            self.cipher().decrypt(headers, ciphertext)
        };
        opened.map_err(|_| fail())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::new(KeyId::FIRST, &[7u8; 64])
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
        assert!(
            Sealer::new(KeyId::FIRST, &[8u8; 64])
                .open(&[b"x"], &sealed)
                .is_err()
        );
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

    #[test]
    fn a_value_names_its_key_and_only_that_key_opens_it() {
        let key2 = Sealer::new(KeyId::new(2).unwrap(), &[9u8; 64]);
        let sealed = key2.seal(&[b"x"], b"secret");
        assert_eq!(&sealed[..5], &[2, 0, 0, 0, 2]);
        assert_eq!(key_id_of(&sealed), KeyId::new(2));
        assert!(
            prefixes_of(KeyId::new(2).unwrap())
                .iter()
                .any(|p| sealed.starts_with(p))
        );
        assert!(
            !prefixes_of(KeyId::FIRST)
                .iter()
                .any(|p| sealed.starts_with(p))
        );
        // The same key material under another id does not open it: the header is bound.
        let renamed = Sealer::new(KeyId::new(3).unwrap(), &[9u8; 64]);
        assert!(renamed.open(&[b"x"], &sealed).is_err());
        let mut relabelled = sealed.clone();
        relabelled[4] = 3;
        assert!(renamed.open(&[b"x"], &relabelled).is_err());
    }

    /// Values sealed before key ids existed (version 1, no id) still open, as key 1's.
    #[test]
    fn a_version_1_value_is_key_1s_and_opens() {
        let key = [7u8; 64];
        let context: [&[u8]; 2] = [b"app", b"oa_1"];
        let nonce = [5u8; NONCE_LEN];
        let ciphertext = Aes256Siv::new_from_slice(&key)
            .unwrap()
            .encrypt(context.iter().copied().chain([&nonce[..]]), b"old secret")
            .unwrap();
        let sealed = [&[LEGACY_VERSION][..], &nonce, &ciphertext].concat();
        assert_eq!(key_id_of(&sealed), Some(KeyId::FIRST));
        assert!(
            prefixes_of(KeyId::FIRST)
                .iter()
                .any(|p| sealed.starts_with(p))
        );
        assert_eq!(
            Sealer::new(KeyId::FIRST, &key)
                .open(&context, &sealed)
                .unwrap(),
            b"old secret"
        );
        assert!(
            Sealer::new(KeyId::new(2).unwrap(), &key)
                .open(&context, &sealed)
                .is_err()
        );
    }

    #[test]
    fn garbage_names_no_key() {
        assert_eq!(key_id_of(b""), None);
        assert_eq!(key_id_of(&[9; 40]), None);
        assert_eq!(key_id_of(&[2, 0, 0, 0, 0, 1, 2]), None);
        assert_eq!(key_id_of(&[2, 0, 0, 0, 0].repeat(8)), None, "key id 0");
    }
}
