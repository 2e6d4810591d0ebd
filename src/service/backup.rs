//! Backups: a consistent copy of the live database, checked before it is called a backup,
//! and restoring one, refused while a server holds the database or when this key cannot open
//! what the backup seals.

use std::path::{Path, PathBuf};

use super::{Dravo, KEY_CHECK, secret_context};
use crate::config::Config;
use crate::crypto::{Keys, MasterKey};
use crate::error::{Error, Result};
use crate::store::sqlite::backup::{self, BackupFacts};

/// What a checked backup holds.
#[derive(Debug, Clone)]
pub struct BackupReport {
    pub path: PathBuf,
    pub bytes: u64,
    pub schema_version: i64,
    /// The schema this build migrates to.
    pub latest_schema_version: i64,
    pub apps: i64,
    pub accounts: i64,
}

impl Dravo {
    /// Copies the live database to `target` (a new file) and checks the copy.
    pub async fn backup(&self, target: &Path) -> Result<BackupReport> {
        self.0.store.backup_into(target).await?;
        check_backup(target, &self.0.keys)
    }
}

/// Checks a backup file: not damaged, not from a newer Dravo, and sealed with the master key
/// of `keys` (its recorded fingerprint matches and a sealed secret opens).
pub fn check_backup(path: &Path, keys: &Keys) -> Result<BackupReport> {
    let facts: BackupFacts = backup::inspect(path, KEY_CHECK)?;
    if facts.integrity != "ok" {
        return Err(Error::invalid(format!(
            "the backup {} is damaged: {}",
            path.display(),
            facts.integrity
        )));
    }
    if facts.schema_version > facts.latest_version {
        return Err(Error::invalid(format!(
            "the backup {} comes from a newer Dravo (schema {} > {}): upgrade Dravo first",
            path.display(),
            facts.schema_version,
            facts.latest_version
        )));
    }
    if let Some(recorded) = &facts.key_check
        && recorded != keys.check_value()
    {
        return Err(Error::Key(format!(
            "the backup {} was made with another master key: this key cannot open its secrets",
            path.display()
        )));
    }
    if let Some(app) = &facts.sample_app {
        keys.sealer()
            .open(
                &secret_context(&app.id, &app.owner, app.provider),
                &app.client_secret_sealed,
            )
            .map_err(|_| {
                Error::Key(format!(
                    "a secret in the backup {} does not open with this master key",
                    path.display()
                ))
            })?;
    }
    Ok(BackupReport {
        path: path.to_owned(),
        bytes: facts.bytes,
        schema_version: facts.schema_version,
        latest_schema_version: facts.latest_version,
        apps: facts.apps,
        accounts: facts.accounts,
    })
}

/// Puts a checked backup in place of the configured database. Refused while a server holds
/// the database, or when the configured key cannot open the backup; the current database is
/// untouched then.
pub fn restore(config: &Config, source: &Path) -> Result<BackupReport> {
    let keys = Keys::derive(&MasterKey::load(config, false)?);
    let report = check_backup(source, &keys)?;
    backup::replace_database(&config.database.path, source)?;
    Ok(report)
}
