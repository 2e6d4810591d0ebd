//! The master key: where it comes from (config, key file, or a key file created on first use)
//! and the sub-keys derived from it with HKDF-SHA256 under distinct labels, so one secret
//! serves sealing, state signing and JWTs without any two uses sharing a key.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hkdf::Hkdf;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

use crate::config::Config;
use crate::crypto::seal::Sealer;
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

    /// Loads the master key named by the config. Without `security.master_key`, reads the key
    /// file, creating it (mode 0600) when `may_create` is true and it does not exist yet. On
    /// Unix a key file that others may access is refused (see `check_key_file_mode`).
    pub fn load(config: &Config, may_create: bool) -> Result<Self> {
        if let Some(text) = &config.security.master_key {
            return Self::from_base64(text.expose_secret(), "security.master_key");
        }
        let path = config.master_key_file();
        let source = format!("the key file {} (security.master_key_file)", path.display());
        match std::fs::File::open(&path) {
            Ok(file) => {
                check_key_file_mode(&file, &path, config.security.allow_insecure_key_file)?;
                let text = std::io::read_to_string(file)
                    .map_err(|e| Error::Key(format!("cannot read {source}: {e}")))?;
                Self::from_base64(&text, &source)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && may_create => {
                Self::create_file(&path)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Key(format!(
                "the key file {} (security.master_key_file) is missing, but the database was sealed with a master key: restore that file or set security.master_key",
                path.display()
            ))),
            Err(e) => Err(Error::Key(format!("cannot read {source}: {e}"))),
        }
    }

    fn create_file(path: &Path) -> Result<Self> {
        let key = Self::generate();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(path) {
            Ok(mut file) => {
                writeln!(file, "{}", key.to_base64())
                    .and_then(|_| file.sync_all())
                    .map_err(|e| {
                        Error::Key(format!("cannot write the key file {}: {e}", path.display()))
                    })?;
                tracing::info!(path = %path.display(), "created a new master key file");
                Ok(key)
            }
            // Another process (the server, or a CLI call) created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::thread::sleep(std::time::Duration::from_millis(20));
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::Key(format!("cannot read the key file {}: {e}", path.display()))
                })?;
                Self::from_base64(&text, &format!("the key file {}", path.display()))
            }
            Err(e) => Err(Error::Key(format!(
                "cannot create the key file {} (security.master_key_file): {e}",
                path.display()
            ))),
        }
    }
}

/// Refuses a key file that users other than its owner may access (any group or other
/// permission bit, as ssh does for private keys), unless `security.allow_insecure_key_file`.
/// Only regular files are checked: reading anything else fails with its own error.
#[cfg(unix)]
fn check_key_file_mode(file: &std::fs::File, path: &Path, allow_insecure: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = file.metadata().map_err(|e| {
        Error::Key(format!(
            "cannot read the key file {} (security.master_key_file): {e}",
            path.display()
        ))
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if allow_insecure || !meta.is_file() || mode & 0o077 == 0 {
        return Ok(());
    }
    Err(Error::Key(format!(
        "the key file {path} (security.master_key_file) has mode {mode:04o}, so users other than its owner may read it: run `chmod 600 {path}`, or set security.allow_insecure_key_file = true to accept it",
        path = path.display()
    )))
}

#[cfg(not(unix))]
fn check_key_file_mode(_: &std::fs::File, _: &Path, _: bool) -> Result<()> {
    Ok(())
}

/// The sub-keys the rest of the program uses.
pub struct Keys {
    sealer: Sealer,
    state_sealer: Sealer,
    state_key: SecretBox<[u8; 32]>,
    derived_jwt_secret: SecretBox<[u8; 32]>,
    check_value: String,
}

impl Keys {
    pub fn derive(master: &MasterKey) -> Self {
        let check: [u8; 16] = master.derive(LABEL_CHECK);
        Keys {
            sealer: Sealer::new(&master.derive::<64>(LABEL_SEAL)),
            state_sealer: Sealer::new(&master.derive::<64>(LABEL_STATE_SEAL)),
            state_key: SecretBox::new(Box::new(master.derive(LABEL_STATE))),
            derived_jwt_secret: SecretBox::new(Box::new(master.derive(LABEL_JWT))),
            check_value: check.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The AES-256-SIV key that seals OAuth `state`, so the browser, the provider and their
    /// logs see an opaque string.
    pub fn state_sealer(&self) -> &Sealer {
        &self.state_sealer
    }

    /// The HMAC-SHA256 key that derives PKCE verifiers from a state's nonce.
    pub fn state_key(&self) -> &[u8; 32] {
        self.state_key.expose_secret()
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
            Keys::derive(&key).check_value(),
            Keys::derive(&again).check_value()
        );
        let short = STANDARD.encode([0u8; 32]);
        let err = MasterKey::from_base64(&short, "security.master_key").unwrap_err();
        assert!(err.to_string().contains("64 bytes"), "{err}");
        assert!(MasterKey::from_base64("not base64!!", "k").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_open_to_others_is_refused_unless_allowed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.database.path = dir.path().join("dravo.db");
        let path = config.master_key_file();
        std::fs::write(&path, MasterKey::generate().to_base64()).unwrap();
        for mode in [0o640, 0o604, 0o620] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = MasterKey::load(&config, false).unwrap_err().to_string();
            assert!(err.contains(&format!("mode {mode:04o}")), "{err}");
            assert!(
                err.contains(&format!("chmod 600 {}", path.display())),
                "{err}"
            );
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        MasterKey::load(&config, false).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        config.security.allow_insecure_key_file = true;
        MasterKey::load(&config, false).unwrap();
    }

    #[test]
    fn sub_keys_differ() {
        let keys = Keys::derive(&MasterKey::generate());
        assert_ne!(keys.state_key(), keys.derived_jwt_secret());
    }
}
