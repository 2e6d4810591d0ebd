//! The key file on disk: where the master keys come from (`KeySource`), reading it with its
//! mode checked, creating it on first use, and replacing it atomically after a rotation.
//! The ring's text format and everything cryptographic stay in `crypto::ring`, which is
//! handed the text and never touches a file.

use std::io::Write;
use std::path::{Path, PathBuf};

use secrecy::ExposeSecret;

use crate::config::Config;
use crate::crypto::ring::RingKey;
use crate::crypto::{KeyId, MasterKey, RingFile};
use crate::error::{Error, Result};

/// Where the master keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `security.master_key`: one key, no file.
    Inline,
    /// The key file (and whether a mode open to others is accepted).
    File { path: PathBuf, allow_insecure: bool },
}

impl KeySource {
    pub fn of(config: &Config) -> KeySource {
        match config.security.master_key {
            Some(_) => KeySource::Inline,
            None => KeySource::File {
                path: config.master_key_file(),
                allow_insecure: config.security.allow_insecure_key_file,
            },
        }
    }

    /// Where the keys come from, for messages.
    pub fn describe(&self) -> String {
        match self {
            KeySource::Inline => "security.master_key".into(),
            KeySource::File { path, .. } => {
                format!("the key file {} (security.master_key_file)", path.display())
            }
        }
    }
}

/// Loads the keys `config` names. Without `security.master_key`, reads the key file,
/// creating it (one new key, mode 0600) when `may_create` is true and it does not exist.
/// On Unix a key file that others may access is refused (see `check_key_file_mode`).
pub fn load(config: &Config, may_create: bool) -> Result<RingFile> {
    if let Some(text) = &config.security.master_key {
        let key = MasterKey::from_base64(text.expose_secret(), "security.master_key")?;
        return Ok(RingFile {
            keys: vec![RingKey { id: None, key }],
            graces: Vec::new(),
        });
    }
    let path = config.master_key_file();
    let source = KeySource::of(config).describe();
    match std::fs::File::open(&path) {
        Ok(file) => {
            check_key_file_mode(&file, &path, config.security.allow_insecure_key_file)?;
            let text = std::io::read_to_string(file)
                .map_err(|e| Error::Key(format!("cannot read {source}: {e}")))?;
            RingFile::parse(&text, &source)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && may_create => create_file(&path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Key(format!(
            "the key file {} (security.master_key_file) is missing, but the database was sealed with a master key: restore that file or set security.master_key",
            path.display()
        ))),
        Err(e) => Err(Error::Key(format!("cannot read {source}: {e}"))),
    }
}

/// A new key file with one fresh key (key 1), as bare base64; another process that
/// created it first wins, and its key is used.
fn create_file(path: &Path) -> Result<RingFile> {
    let key = MasterKey::generate();
    match private_file(path) {
        Ok(mut file) => {
            writeln!(file, "{}", key.to_base64())
                .and_then(|_| file.sync_all())
                .map_err(|e| {
                    Error::Key(format!("cannot write the key file {}: {e}", path.display()))
                })?;
            tracing::info!(path = %path.display(), "created a new master key file");
            Ok(RingFile {
                keys: vec![RingKey {
                    id: Some(KeyId::FIRST),
                    key,
                }],
                graces: Vec::new(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::Key(format!("cannot read the key file {}: {e}", path.display()))
            })?;
            RingFile::parse(&text, &format!("the key file {}", path.display()))
        }
        Err(e) => Err(Error::Key(format!(
            "cannot create the key file {} (security.master_key_file): {e}",
            path.display()
        ))),
    }
}

/// Replaces the key file at `path` with this ring, atomically: a new private file beside
/// it, synced, renamed over it, and the directory synced. A crash leaves the old file or
/// the new one, never a mix.
pub fn write(ring: &RingFile, path: &Path) -> Result<()> {
    let mut staging = path.as_os_str().to_owned();
    staging.push(".new");
    let staging = PathBuf::from(staging);
    let fail = |e: std::io::Error| {
        Error::Key(format!("cannot write the key file {}: {e}", path.display()))
    };
    match std::fs::remove_file(&staging) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
        _ => {}
    }
    let mut file = private_file(&staging).map_err(fail)?;
    file.write_all(ring.render().as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(fail)?;
    drop(file);
    std::fs::rename(&staging, path).map_err(fail)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(fail)?;
    }
    Ok(())
}

/// Creates `path` for writing with mode 0600; fails if it exists.
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Refuses a key file that users other than its owner may access (any group or other
/// permission bit, as ssh does for private keys), unless `security.allow_insecure_key_file`.
/// Only regular files are checked: reading anything else fails with its own error.
#[cfg(unix)]
pub(crate) fn check_key_file_mode(
    file: &std::fs::File,
    path: &Path,
    allow_insecure: bool,
) -> Result<()> {
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
pub(crate) fn check_key_file_mode(_: &std::fs::File, _: &Path, _: bool) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let err = load(&config, false).err().unwrap().to_string();
            assert!(err.contains(&format!("mode {mode:04o}")), "{err}");
            assert!(
                err.contains(&format!("chmod 600 {}", path.display())),
                "{err}"
            );
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        load(&config, false).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        config.security.allow_insecure_key_file = true;
        load(&config, false).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn writing_a_ring_replaces_the_file_with_a_private_one() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dravo.key");
        std::fs::write(&path, "old").unwrap();
        let ring = RingFile {
            keys: vec![RingKey {
                id: KeyId::new(4),
                key: MasterKey::generate(),
            }],
            graces: Vec::new(),
        };
        write(&ring, &path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, ring.render());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
