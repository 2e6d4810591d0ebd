//! Backups of the SQLite file: a consistent copy taken while others read and write
//! (`VACUUM INTO`), what a copy holds (read without changing it), and putting a copy in
//! place. A lock file beside the database tells a restore that a server is using it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::meta::meta_get;
use super::{apps, create_private, keys, migrations_list};
use crate::domain::Timestamp;
use crate::error::{Error, Result};
use crate::store::MasterKeyRecord;

pub use crate::store::DatabaseFacts as BackupFacts;

/// Writes a consistent copy of the database behind `conn` to `target`, a new file of mode
/// 0600 (the copy holds every sealed secret). Nothing is ever written through a link: the
/// copy is made in a private directory (mode 0700) created beside `target`, then linked to
/// `target`, which fails if anything, a dangling symbolic link included, is there already.
pub(super) fn copy_into(conn: &Connection, target: &Path) -> Result<()> {
    refuse_existing(target)?;
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let staging = private_dir_in(&dir)?;
    let copy = staging.join("backup.db");
    let made = (|| {
        create_new_private(&copy)
            .map_err(|e| Error::store_caused(format!("cannot create {}", copy.display()), e))?;
        let name = copy
            .to_str()
            .ok_or_else(|| Error::invalid(format!("{} is not a UTF-8 path", target.display())))?;
        conn.execute("VACUUM INTO ?1", [name]).map_err(|e| {
            Error::store_caused(format!("cannot write the backup {}", target.display()), e)
        })?;
        File::open(&copy)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::store_caused(format!("cannot sync {}", copy.display()), e))?;
        // link(2) never follows or replaces what is at `target`.
        std::fs::hard_link(&copy, target).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                refuse_existing(target).err().unwrap_or_else(|| {
                    Error::Conflict(format!(
                        "{} appeared while the backup was written: back up to a new file",
                        target.display()
                    ))
                })
            } else {
                Error::store_caused(format!("cannot create the backup {}", target.display()), e)
            }
        })
    })();
    let _ = std::fs::remove_dir_all(&staging);
    made
}

/// Refuses a backup target that exists, or is a symbolic link (dangling or not).
fn refuse_existing(target: &Path) -> Result<()> {
    match std::fs::symlink_metadata(target) {
        Ok(meta) if meta.file_type().is_symlink() => Err(Error::Conflict(format!(
            "{} is a symbolic link, and a backup is never written through one: back up to a new file",
            target.display()
        ))),
        Ok(_) => Err(Error::invalid(format!(
            "{} already exists: back up to a new file",
            target.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::store_caused(
            format!("cannot look at {}", target.display()),
            e,
        )),
    }
}

/// Creates `path` with `O_CREAT | O_EXCL | O_NOFOLLOW` and mode 0600.
fn create_new_private(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// A new directory of mode 0700 in `dir`, for writing a file no one else can reach.
fn private_dir_in(dir: &Path) -> Result<PathBuf> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    let mut last = None;
    for _ in 0..8 {
        let path = dir.join(format!(".dravo-backup-{:016x}", rand::random::<u64>()));
        match builder.create(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                return Err(Error::store_caused(
                    format!("cannot create a directory in {}", dir.display()),
                    e,
                ));
            }
        }
    }
    Err(Error::store_caused(
        format!("cannot create a directory in {}", dir.display()),
        last.expect("the loop ran"),
    ))
}

/// Reads what a backup file holds, trusting nothing in it: it must be a regular file (looked
/// at without opening it, so a FIFO cannot block), at this build's schema version, and its
/// schema must be exactly what this build's migrations create (no trigger, view, table or
/// index more or less, none changed). `prefixes` gives the byte prefixes of a key id's values.
pub fn inspect_backup(path: &Path, prefixes: &dyn Fn(u32) -> Vec<Vec<u8>>) -> Result<BackupFacts> {
    let not_a_backup =
        |why: String| Error::invalid(format!("{} is not a Dravo backup: {why}", path.display()));
    let meta = std::fs::symlink_metadata(path).map_err(|e| not_a_backup(e.to_string()))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        return Err(not_a_backup(format!(
            "it is not a regular file but {}",
            describe_file_type(&kind)
        )));
    }
    let facts = inspect(path, prefixes)?;
    if facts.integrity != "ok" || facts.schema_version > facts.latest_version {
        // The caller says why (damaged, or from a newer Dravo).
        return Ok(facts);
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| not_a_backup(e.to_string()))?;
    let found = schema_of(&conn).map_err(|e| not_a_backup(e.to_string()))?;
    // An older backup is held to the schema its own version had; the server migrates it on
    // its next start, as it would the database it was taken from.
    let version = usize::try_from(facts.schema_version)
        .map_err(|_| not_a_backup(format!("schema version {}", facts.schema_version)))?;
    let expected = reference_schema(version)?;
    if let Some(why) = schema_difference(&found, &expected) {
        return Err(not_a_backup(why));
    }
    Ok(facts)
}

fn describe_file_type(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_block_device() || kind.is_char_device() {
            return "a device";
        }
    }
    if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "a special file"
    }
}

/// One entry of `sqlite_schema`: type, name, table, and its SQL with whitespace normalised.
type SchemaEntry = (String, String, String, String);

fn schema_of(conn: &Connection) -> rusqlite::Result<std::collections::BTreeSet<SchemaEntry>> {
    let mut stmt =
        conn.prepare("SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema")?;
    let rows = stmt.query_map([], |r| {
        let sql: String = r.get(3)?;
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            sql.split_whitespace().collect::<Vec<_>>().join(" "),
        ))
    })?;
    rows.filter(|r| {
        // ANALYZE's statistics steer the query planner only.
        !matches!(r, Ok((_, name, _, _)) if name.starts_with("sqlite_stat"))
    })
    .collect()
}

/// The schema this build's migrations create, on an empty in-memory database.
/// The schema Dravo's first `version` migrations create.
fn reference_schema(version: usize) -> Result<std::collections::BTreeSet<SchemaEntry>> {
    let mut conn = Connection::open_in_memory()?;
    let mut list = migrations_list();
    list.truncate(version);
    rusqlite_migration::Migrations::new(list)
        .to_latest(&mut conn)
        .map_err(|e| Error::store_caused("cannot build the reference schema", e))?;
    Ok(schema_of(&conn)?)
}

/// The first way `found` differs from `expected`, in words.
fn schema_difference(
    found: &std::collections::BTreeSet<SchemaEntry>,
    expected: &std::collections::BTreeSet<SchemaEntry>,
) -> Option<String> {
    let named = |set: &std::collections::BTreeSet<SchemaEntry>, entry: &SchemaEntry| {
        set.iter().any(|e| e.0 == entry.0 && e.1 == entry.1)
    };
    if let Some(extra) = found.difference(expected).next() {
        return Some(if named(expected, extra) {
            format!(
                "its {} `{}` differs from the one Dravo's migrations create",
                extra.0, extra.1
            )
        } else {
            format!(
                "it holds a {} `{}` that Dravo's migrations do not create",
                extra.0, extra.1
            )
        });
    }
    expected.difference(found).next().map(|missing| {
        format!(
            "it lacks the {} `{}` that Dravo's migrations create",
            missing.0, missing.1
        )
    })
}

/// Reads what a database holds. A file that is not a Dravo database is an error that says so.
/// `prefixes` gives the byte prefixes of a key id's values.
pub fn inspect(path: &Path, prefixes: &dyn Fn(u32) -> Vec<Vec<u8>>) -> Result<BackupFacts> {
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
    let latest_version = migrations_list().len() as i64;
    // The sealed columns are where this build's schema has them.
    let sealed = if integrity == "ok" && schema_version == latest_version {
        let by_key: Vec<Vec<Vec<u8>>> = keys.iter().map(|k| prefixes(k.id)).collect();
        let any_key = by_key.concat();
        let counts = super::keys::count(&conn, &by_key).map_err(|e| not_a_backup(e.to_string()))?;
        let mut samples = Vec::new();
        for counts in counts {
            let first = if counts.total > 0 && !any_key.is_empty() {
                super::keys::page(&conn, counts.column, i64::MIN, &any_key, 1)
                    .map_err(|e| not_a_backup(e.to_string()))?
                    .into_iter()
                    .next()
            } else {
                None
            };
            samples.push(crate::store::SealedSample { counts, first });
        }
        Some(samples)
    } else {
        None
    };
    Ok(BackupFacts {
        integrity,
        sealed,
        schema_version,
        latest_version,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A backup from an older Dravo (schema 12, before the covering index and the tokens'
    /// version) is held to schema 12's shape, and accepted: the server migrates it.
    #[test]
    fn an_older_backup_is_checked_against_its_own_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v12.db");
        let mut conn = Connection::open(&path).unwrap();
        let mut upto_12 = migrations_list();
        upto_12.truncate(12);
        rusqlite_migration::Migrations::new(upto_12)
            .to_latest(&mut conn)
            .unwrap();
        drop(conn);
        let facts = inspect_backup(&path, &|_| Vec::new()).unwrap();
        assert_eq!(facts.schema_version, 12);
        assert!(facts.sample_app.is_none());

        // An app of schema 12 is read as a sample, the columns added since as NULL.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "INSERT INTO oauth_apps (id, owner, provider, name, client_id, client_secret_sealed,
                 scopes, created_at)
             VALUES ('oa_aaaaaaaaaaaaaaaaaaaa', 'alice', 'x', 'Old', 'cid', x'01', '[]', 1)",
        )
        .unwrap();
        drop(conn);
        let facts = inspect_backup(&path, &|_| Vec::new()).unwrap();
        let sample = facts.sample_app.expect("the old app");
        assert_eq!(sample.name, "Old");
        assert_eq!(sample.user_agent, None);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("DELETE FROM oauth_apps").unwrap();
        drop(conn);

        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE VIEW spy AS SELECT * FROM accounts")
            .unwrap();
        drop(conn);
        let refused = inspect_backup(&path, &|_| Vec::new()).unwrap_err();
        assert!(refused.to_string().contains("`spy`"), "{refused}");
    }
}
