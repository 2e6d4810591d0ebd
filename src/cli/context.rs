//! What the commands share: the configuration (with `--database` applied), the core opened
//! on an existing database, and the runtime a command's async calls run on.

use std::path::PathBuf;

use crate::config::{Chosen, Config};
use crate::error::{Error, Result};
use crate::service::{DatabaseLocation, Dravo};

/// The global flags every command takes.
#[derive(Debug)]
pub struct Context {
    /// `--config`
    pub config: Option<PathBuf>,
    /// `--database`: a file, or a PostgreSQL URL.
    pub database: Option<PathBuf>,
}

impl Context {
    /// The configuration, with `--database` applied over the file and the environment.
    pub fn config(&self) -> Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(given) = &self.database {
            match DatabaseLocation::from_path(given) {
                DatabaseLocation::Postgres(url) => config.database.url = Some(url.into()),
                DatabaseLocation::Sqlite(path) => {
                    config.database.path = path;
                    config.origin.database_path = Chosen::Flag("--database");
                }
            }
        }
        Ok(config)
    }

    /// Opens the existing database for a command that uses it (see `Dravo::open_existing`).
    pub async fn open(&self) -> Result<Dravo> {
        Dravo::open_existing(self.config()?).await
    }

    /// Runs a command's async work to its end on a runtime of this thread alone.
    pub fn block_on<T>(&self, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?
            .block_on(fut)
    }
}
