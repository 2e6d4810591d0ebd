//! The one error type of the core. Each variant says what went wrong in one sentence; the
//! HTTP face maps variants to status codes in `api::error`, the CLI to exit codes in `cli`.

/// Everything the core can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller sent something malformed or out of range (HTTP 400).
    #[error("{0}")]
    InvalidRequest(String),
    /// The dashboard token is missing, malformed, expired or forged (HTTP 401).
    #[error("{0}")]
    Unauthorized(String),
    /// The object does not exist for this tenant (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// The change clashes with what is stored (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// No app given and no default app configured for the provider (HTTP 409).
    #[error("{0}")]
    NoDefaultApp(String),
    /// The configuration cannot be used; names the key.
    #[error("{0}")]
    Config(String),
    /// Key material is missing, malformed, or does not belong to this database.
    #[error("{0}")]
    Key(String),
    /// A sealed value did not open: it was moved between rows, altered, or sealed by another key.
    #[error("{0}")]
    Unseal(String),
    /// The database failed.
    #[error("database error: {0}")]
    Store(String),
    /// Anything else that should not happen; the detail goes to the log, never to a client.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidRequest(msg.into())
    }

    pub fn unauthorized(msg: impl Into<String>) -> Self {
        Error::Unauthorized(msg.into())
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        Error::NotFound(msg.into())
    }

    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        Error::Store(err.to_string())
    }
}

impl From<r2d2::Error> for Error {
    fn from(err: r2d2::Error) -> Self {
        Error::Store(err.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
