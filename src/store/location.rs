//! Where a database lives: a SQLite file or a PostgreSQL URL, as the configuration or a
//! person names it. The store alone tells the two apart and acts on the difference (opening,
//! the serving lock, what is a local file), so the core and the faces (`--database`, `store
//! copy --from/--to`) never look at the text themselves.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use prometheus_client::metrics::histogram::Histogram;

use super::{PgStore, SqliteStore, Store};
use crate::error::{Error, Result};

/// A database: a SQLite file or a PostgreSQL URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    Sqlite(PathBuf),
    /// The URL (it may carry a password: never printed; `describe` is).
    Postgres(String),
}

impl DatabaseLocation {
    /// `postgres://…` or `postgresql://…` is PostgreSQL; anything else a SQLite path.
    pub fn parse(text: &str) -> DatabaseLocation {
        if super::postgres::is_url(text) {
            DatabaseLocation::Postgres(text.to_owned())
        } else {
            DatabaseLocation::Sqlite(PathBuf::from(text))
        }
    }

    /// `parse` of a path as the operating system gave it: a SQLite path stays exactly the
    /// path given, even when it is not UTF-8.
    pub fn from_path(path: &Path) -> DatabaseLocation {
        let text = path.to_string_lossy();
        if super::postgres::is_url(&text) {
            DatabaseLocation::Postgres(text.into_owned())
        } else {
            DatabaseLocation::Sqlite(path.to_path_buf())
        }
    }

    /// The file the database lives in, when it is one (SQLite): what may be created, backed
    /// up, restored and locked while served.
    pub fn local_file(&self) -> Option<&Path> {
        match self {
            DatabaseLocation::Sqlite(path) => Some(path),
            DatabaseLocation::Postgres(_) => None,
        }
    }

    /// Opens the database, migrating its schema to this build's (a missing SQLite file is
    /// created). `pool_wait` observes how long callers wait for a connection.
    pub async fn open(&self, pool_wait: Option<Histogram>) -> Result<Arc<dyn Store>> {
        match self {
            DatabaseLocation::Sqlite(path) => {
                let path = path.clone();
                Ok(Arc::new(
                    tokio::task::spawn_blocking(move || {
                        SqliteStore::open_observed(&path, pool_wait)
                    })
                    .await
                    .map_err(|e| Error::Internal(format!("opening the database failed: {e}")))??,
                ))
            }
            DatabaseLocation::Postgres(url) => {
                Ok(Arc::new(PgStore::connect(url, pool_wait).await?))
            }
        }
    }

    /// What a server holds while it serves this database, so that `dravo restore` refuses
    /// to replace it: a shared lock beside a SQLite file; nothing for PostgreSQL, which
    /// `restore` never replaces.
    pub fn hold_for_serving(&self) -> Result<Option<std::fs::File>> {
        self.local_file()
            .map(super::sqlite::backup::hold_for_serving)
            .transpose()
    }

    /// A configured `database.url`: a PostgreSQL URL that parses, or a configuration error
    /// that says what to write instead (never repeating the URL, which may hold a password).
    pub fn postgres(url: &str) -> Result<DatabaseLocation> {
        if !super::postgres::is_url(url) {
            return Err(Error::config(
                "database.url must be a PostgreSQL URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE); leave it unset to use the SQLite file at database.path",
            ));
        }
        super::postgres::parse_url(url)?;
        Ok(DatabaseLocation::Postgres(url.to_owned()))
    }

    /// What a database server holds, read without migrating or changing it (`dravo
    /// doctor`); `None` for a file, which `sqlite::backup::inspect` reads with its keys.
    pub async fn inspect_server(&self) -> Option<Result<super::DatabaseFacts>> {
        match self {
            DatabaseLocation::Sqlite(_) => None,
            DatabaseLocation::Postgres(url) => Some(PgStore::inspect(url).await),
        }
    }

    /// Where it is, for people (no password).
    pub fn describe(&self) -> String {
        match self {
            DatabaseLocation::Sqlite(path) => path.display().to_string(),
            DatabaseLocation::Postgres(url) => super::postgres::describe_text(url, "PostgreSQL"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_are_postgres_and_everything_else_a_file() {
        for url in ["postgres://u:p@db/dravo", "postgresql://db/dravo"] {
            assert_eq!(
                DatabaseLocation::parse(url),
                DatabaseLocation::Postgres(url.into())
            );
            assert_eq!(
                DatabaseLocation::from_path(Path::new(url)),
                DatabaseLocation::Postgres(url.into())
            );
        }
        for path in [
            "dravo.db",
            "data/postgres.db",
            "./postgres://x",
            "POSTGRES://db",
        ] {
            assert_eq!(
                DatabaseLocation::parse(path),
                DatabaseLocation::Sqlite(path.into())
            );
        }
    }

    #[test]
    fn a_url_is_described_without_its_password() {
        let shown =
            DatabaseLocation::parse("postgres://dravo:hunter2@db.internal:6543/vault").describe();
        assert_eq!(shown, "postgres://db.internal:6543/vault");
        assert_eq!(DatabaseLocation::parse("a/b.db").describe(), "a/b.db");
    }

    #[cfg(unix)]
    #[test]
    fn a_path_that_is_not_utf8_is_kept_as_given() {
        use std::os::unix::ffi::OsStrExt;
        let path = Path::new(std::ffi::OsStr::from_bytes(b"data/\xffdravo.db"));
        assert_eq!(
            DatabaseLocation::from_path(path),
            DatabaseLocation::Sqlite(path.to_path_buf())
        );
    }
}
