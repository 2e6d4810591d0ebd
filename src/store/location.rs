//! Where a database named by a person lives: a SQLite file or a PostgreSQL URL. The store
//! tells the two apart, so the faces (`--database`, `store copy --from/--to`) never look at
//! the text themselves.

use std::path::{Path, PathBuf};

/// A database named on the command line: a SQLite file or a PostgreSQL URL.
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
