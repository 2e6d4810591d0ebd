//! `dravo init`: creates the database and key file where the configuration puts them, as
//! `serve` would, without serving; or checks that the existing ones open together.

use std::path::{Path, PathBuf};

use super::Dravo;
use crate::config::Config;
use crate::error::Result;

/// What `init` found or made of the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseSetup {
    /// The SQLite file existed; nothing changed.
    Existed,
    /// The PostgreSQL database (which exists before `init`) has its schema and key record.
    PostgresReady,
    /// The SQLite file was created.
    Created,
}

/// Which master key the database opens with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySetup {
    /// `security.master_key`: no key file is involved.
    FromConfig,
    /// The key file existed.
    KeyFile(PathBuf),
    /// The key file was created (the database cannot be read without it).
    NewKeyFile(PathBuf),
}

/// What `init` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// Where the database is, for people (no password).
    pub database: String,
    pub setup: DatabaseSetup,
    pub key: KeySetup,
}

/// Opens the configured database as `serve` opens it, creating it and its key file when
/// missing, so `init`s racing each other (or a starting server) agree on one key.
pub async fn init(config: Config) -> Result<InitReport> {
    let database = config.database.describe();
    let location = config.database.location();
    let existed = location.local_file().is_some_and(Path::exists);
    let key_file = config
        .security
        .master_key
        .is_none()
        .then(|| config.master_key_file());
    let key_existed = key_file.as_ref().is_some_and(|k| k.exists());
    drop(Dravo::open(config, None).await?);
    let key = match key_file {
        None => KeySetup::FromConfig,
        Some(k) if key_existed => KeySetup::KeyFile(k),
        Some(k) => KeySetup::NewKeyFile(k),
    };
    let setup = if existed {
        DatabaseSetup::Existed
    } else if location.local_file().is_none() {
        DatabaseSetup::PostgresReady
    } else {
        DatabaseSetup::Created
    };
    Ok(InitReport {
        database,
        setup,
        key,
    })
}
