//! Backups of the SQLite file: a consistent copy taken while others read and write
//! (`VACUUM INTO`), what a copy holds (read without changing it), and putting a copy in
//! place. A lock file beside the database tells a restore that a server is using it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::{apps, create_private, keys, meta_get, migrations_list};
use crate::domain::Timestamp;
use crate::error::{Error, Result};
use crate::store::MasterKeyRecord;

pub use crate::store::DatabaseFacts as BackupFacts;

/// Writes a consistent copy of the database behind `conn` to `target`, a new file created
/// with mode 0600 (the copy holds every sealed secret).
pub(super) fn copy_into(conn: &Connection, target: &Path) -> Result<()> {
    if target.exists() {
        return Err(Error::invalid(format!(
            "{} already exists: back up to a new file",
            target.display()
        )));
    }
    create_private(target)?;
    let name = target
        .to_str()
        .ok_or_else(|| Error::invalid(format!("{} is not a UTF-8 path", target.display())))?;
    if let Err(e) = conn.execute("VACUUM INTO ?1", [name]) {
        let _ = std::fs::remove_file(target);
        return Err(Error::store_caused(
            format!("cannot write the backup {}", target.display()),
            e,
        ));
    }
    Ok(())
}

/// Reads what a backup holds. A file that is not a Dravo database is an error that says so.
pub fn inspect(path: &Path) -> Result<BackupFacts> {
    let not_a_backup =
        |why: String| Error::invalid(format!("{} is not a Dravo backup: {why}", path.display()));
    let bytes = std::fs::metadata(path)
        .map_err(|e| not_a_backup(e.to_string()))?
        .len();
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| not_a_backup(e.to_string()))?;
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| not_a_backup(e.to_string()))?;
    let schema_version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| not_a_backup(e.to_string()))?;
    let count = |table: &str| -> Result<i64> {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|e| not_a_backup(e.to_string()))
    };
    let (apps, accounts) = (count("oauth_apps")?, count("accounts")?);
    let has_key_table: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'master_keys'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| not_a_backup(e.to_string()))?;
    // Before key rotation (schema 8 and older) the one key's fingerprint was a meta value.
    let keys = if has_key_table {
        keys::list(&conn).map_err(|e| not_a_backup(e.to_string()))?
    } else {
        meta_get(&conn, "master_key_check")
            .map_err(|e| not_a_backup(e.to_string()))?
            .map(|check_value| MasterKeyRecord {
                id: 1,
                check_value,
                added_at: Timestamp::from_unix(0),
                retired_at: None,
                accept_until: None,
            })
            .into_iter()
            .collect()
    };
    Ok(BackupFacts {
        integrity,
        schema_version,
        latest_version: migrations_list().len() as i64,
        keys,
        sample_app: apps::first(&conn)?,
        apps,
        accounts,
        bytes,
    })
}

fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn open_lock_file(db: &Path) -> Result<File> {
    let path = lock_path(db);
    create_private(&path)?;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| Error::store_caused(format!("cannot open {}", path.display()), e))
}

/// Held by `dravo serve` while it runs (shared: several servers may share a database), so
/// that a restore can tell the database is in use.
pub fn hold_for_serving(db: &Path) -> Result<File> {
    let file = open_lock_file(db)?;
    file.lock_shared()
        .map_err(|e| Error::store_caused(format!("cannot lock {}", lock_path(db).display()), e))?;
    Ok(file)
}

/// Puts the backup `source` in place of the database `db`, unless a server holds it: the
/// copy is written beside it (mode 0600), synced, and renamed over it; the old write-ahead
/// log goes with the old file.
pub fn replace_database(db: &Path, source: &Path) -> Result<()> {
    let lock = open_lock_file(db)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(Error::Conflict(format!(
                "a server is running on {}: stop it before restoring (it holds {})",
                db.display(),
                lock_path(db).display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(Error::store_caused(
                format!("cannot lock {}", lock_path(db).display()),
                e,
            ));
        }
    }
    let mut staging = db.as_os_str().to_owned();
    staging.push(".restoring");
    let staging = PathBuf::from(staging);
    let _ = std::fs::remove_file(&staging);
    create_private(&staging)?;
    let write = || -> std::io::Result<()> {
        let mut from = File::open(source)?;
        let mut to = std::fs::OpenOptions::new().write(true).open(&staging)?;
        std::io::copy(&mut from, &mut to)?;
        to.flush()?;
        to.sync_all()?;
        for suffix in ["-wal", "-shm"] {
            let mut side = db.as_os_str().to_owned();
            side.push(suffix);
            match std::fs::remove_file(PathBuf::from(side)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(&staging, db)?;
        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&staging);
        Error::store_caused(format!("cannot restore into {}", db.display()), e)
    })?;
    drop(lock);
    Ok(())
}
