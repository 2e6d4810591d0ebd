//! Backups: a consistent copy of the live database, checked before it is called a backup,
//! and restoring one, refused while a server holds the database or when these keys cannot
//! open what the backup seals.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Dravo;
use super::key_file::{self, KeySource};
use super::seal_contexts::secret_context;
use crate::config::Config;
use crate::crypto::{KeyId, Keys};
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
        check_backup(
            target,
            &self.keys().opening_keys(),
            &self.key_source().describe(),
        )
    }
}

/// Checks a backup file: not damaged, not from a newer Dravo, and sealed with master keys
/// among `keys` (from `source`): each key the backup still uses is there with the
/// fingerprint the backup recorded, and a sealed secret opens.
pub fn check_backup(
    path: &Path,
    keys: &BTreeMap<KeyId, Arc<Keys>>,
    source: &str,
) -> Result<BackupReport> {
    check_facts(
        backup::inspect_backup(path, &key_prefixes)?,
        path,
        keys,
        source,
    )
}

/// The byte prefixes of the values key `id` seals (none for an id no key can have).
fn key_prefixes(id: u32) -> Vec<Vec<u8>> {
    KeyId::new(id)
        .map(crate::crypto::seal::prefixes_of)
        .unwrap_or_default()
}

/// The checks of `check_backup` on what a database holds (`path` names it in messages).
fn check_facts(
    facts: BackupFacts,
    path: &Path,
    keys: &BTreeMap<KeyId, Arc<Keys>>,
    source: &str,
) -> Result<BackupReport> {
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
    let another_key = || {
        Error::Key(format!(
            "the backup {} was made with another master key: this key cannot open its secrets",
            path.display()
        ))
    };
    let ours = |id: u32, check: &str| {
        KeyId::new(id)
            .and_then(|id| keys.get(&id))
            .is_some_and(|k| k.check_value() == check)
    };
    // The keys the backup still needs: those that seal a value, and the current ones.
    let seals_values = |i: usize| {
        facts
            .sealed
            .iter()
            .flatten()
            .any(|s| s.counts.by_key.get(i).is_some_and(|&n| n > 0))
    };
    let needed: Vec<_> = facts
        .keys
        .iter()
        .enumerate()
        .filter(|&(i, r)| r.retired_at.is_none() || seals_values(i))
        .map(|(_, r)| r)
        .collect();
    // A key id the key ring lacks first: a backup from before a rotation needs the key file
    // saved with it, which is a fix, not a foreign database.
    if let Some(missing) = needed
        .iter()
        .find(|r| KeyId::new(r.id).and_then(|id| keys.get(&id)).is_none())
    {
        return Err(Error::Key(format!(
            "the backup {} needs master key {}, which {source} does not hold (a rotation retired it after the backup was made): put back the key file saved with the backup, restore, then run `dravo keys rotate` again",
            path.display(),
            missing.id
        )));
    }
    if !facts.keys.is_empty() && !facts.keys.iter().any(|r| ours(r.id, &r.check_value)) {
        return Err(another_key());
    }
    if needed.iter().any(|r| !ours(r.id, &r.check_value)) {
        return Err(another_key());
    }
    match &facts.sealed {
        Some(sealed) => {
            for sample in sealed {
                let counts = &sample.counts;
                let named: u64 = counts.by_key.iter().sum();
                if counts.total > named {
                    return Err(Error::Key(format!(
                        "the backup {} holds {} {} value(s) sealed with a master key that its master_keys table does not record, so they cannot be proven to be sealed with {source}",
                        path.display(),
                        counts.total - named,
                        counts.column.describe()
                    )));
                }
                let Some(row) = &sample.first else { continue };
                let opened = crate::crypto::seal::key_id_of(&row.sealed)
                    .and_then(|id| keys.get(&id))
                    .map(|k| {
                        k.sealer()
                            .open(&super::keys::row_context(counts.column, row), &row.sealed)
                    });
                if !matches!(opened, Some(Ok(_))) {
                    return Err(Error::Key(format!(
                        "an {} in the backup {} does not open with {source}",
                        counts.column.describe(),
                        path.display()
                    )));
                }
            }
        }
        // Not read (PostgreSQL, or an older schema): one app's secret must open.
        None => {
            if let Some(app) = &facts.sample_app {
                let opened = crate::crypto::seal::key_id_of(&app.client_secret_sealed)
                    .and_then(|id| keys.get(&id))
                    .map(|k| {
                        k.sealer().open(
                            &secret_context(app.id.as_str(), app.owner.as_str(), app.provider),
                            &app.client_secret_sealed,
                        )
                    });
                if !matches!(opened, Some(Ok(_))) {
                    return Err(Error::Key(format!(
                        "a secret in the backup {} does not open with {source}",
                        path.display()
                    )));
                }
            }
        }
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
/// the database, or when the configured keys cannot open the backup; the current database is
/// untouched then.
pub fn restore(config: &Config, source: &Path) -> Result<BackupReport> {
    let location = config.database.location();
    let Some(db) = location.local_file() else {
        return Err(Error::config(format!(
            "`dravo restore` replaces a SQLite file, and database.url names PostgreSQL ({}): to load a SQLite backup into it, use `dravo store copy --from {} --to <database.url>`",
            config.database.describe(),
            source.display()
        )));
    };
    let facts = backup::inspect_backup(source, &key_prefixes)?;
    let report = check_facts_with_configured_keys(config, facts, source)?;
    backup::replace_database(db, source)?;
    Ok(report)
}

/// Checks the database file `source` (a backup, or the live one) as `check_backup` does,
/// with the master keys the configuration names (its key file or `security.master_key`).
pub fn check_with_configured_keys(config: &Config, source: &Path) -> Result<BackupReport> {
    check_facts_with_configured_keys(config, backup::inspect(source, &key_prefixes)?, source)
}

/// The database server `database.url` names, checked as `check_with_configured_keys` checks
/// a file (read only: nothing is migrated).
pub fn check_server_with_configured_keys(
    config: &Config,
    facts: Result<BackupFacts>,
) -> Result<BackupReport> {
    let facts = facts?;
    let shown = PathBuf::from(config.database.describe());
    check_facts_with_configured_keys(config, facts, &shown)
}

fn check_facts_with_configured_keys(
    config: &Config,
    facts: BackupFacts,
    source: &Path,
) -> Result<BackupReport> {
    let file = key_file::load(config, false)?;
    // The key file names its keys' ids; `security.master_key` is found by its fingerprint.
    let keys: BTreeMap<KeyId, Arc<Keys>> = file
        .keys
        .iter()
        .filter_map(|k| {
            let id = k.id.or_else(|| {
                let check = k.key.check_value();
                facts
                    .keys
                    .iter()
                    .find(|r| r.check_value == check)
                    .and_then(|r| KeyId::new(r.id))
            })?;
            Some((id, Arc::new(Keys::derive(id, &k.key))))
        })
        .collect();
    check_facts(facts, source, &keys, &KeySource::of(config).describe())
}
