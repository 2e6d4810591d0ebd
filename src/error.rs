//! The one error type of the core. Each variant says what went wrong in one sentence; the
//! HTTP face maps variants to status codes in `api::error` (the only place), the CLI to exit
//! codes in `cli`.

/// A boxed source error, kept so the cause of a failure is not flattened into a string.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

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
    /// The account's grant is gone: only a new consent helps (HTTP 409).
    #[error("{0}")]
    NeedsReauth(String),
    /// The OAuth app still has connected accounts; deleting it needs `cascade` (HTTP 409).
    #[error("{0}")]
    AppInUse(String),
    /// The provider refused or failed a call Dravo made.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The configuration cannot be used; names the key.
    #[error("{0}")]
    Config(String),
    /// Key material is missing, malformed, or does not belong to this database.
    #[error("{0}")]
    Key(String),
    /// A sealed value did not open: it was moved between rows, altered, or sealed by another key.
    #[error("{0}")]
    Unseal(String),
    /// A sealed value names a master key the key ring does not hold (HTTP 500, detail logged).
    #[error("{0}")]
    UnknownKey(String),
    /// The database failed; `source` is the driver's own error when there is one.
    #[error("{message}")]
    Store {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
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

    /// A database failure described by `message`, without a driver error behind it.
    pub fn store(message: impl Into<String>) -> Self {
        Error::Store {
            message: message.into(),
            source: None,
        }
    }

    /// A database failure with the driver's error as its source.
    pub fn store_caused(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        let message = message.into();
        Error::Store {
            message: format!("{message}: {source}"),
            source: Some(Box::new(source)),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        Error::store_caused("database error", err)
    }
}

impl From<r2d2::Error> for Error {
    fn from(err: r2d2::Error) -> Self {
        Error::store_caused("database error", err)
    }
}

/// How a call to a provider failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered with an OAuth or API error.
    #[error("the provider refused: {code}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rejected {
        code: String,
        description: Option<String>,
    },
    /// The provider could not be reached, timed out, or failed on its side (5xx).
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider answered with something Dravo cannot read.
    #[error("the provider's answer cannot be read: {0}")]
    Malformed(String),
    /// The provider answered 429; `retry_after` is its `Retry-After` in seconds, if given.
    #[error("the provider is rate limiting Dravo{}", retry_after.map(|s| format!(" (retry after {s} s)")).unwrap_or_default())]
    RateLimited { retry_after: Option<u64> },
}

impl ProviderError {
    /// The `error` code carried into the dashboard redirect.
    pub fn code(&self) -> &str {
        match self {
            ProviderError::Rejected { code, .. } => code,
            ProviderError::Unavailable(_) => "provider_unavailable",
            ProviderError::Malformed(_) => "provider_invalid_response",
            ProviderError::RateLimited { .. } => "rate_limited",
        }
    }

    /// A short description for the redirect and the log.
    pub fn description(&self) -> String {
        match self {
            ProviderError::Rejected { description, .. } => description.clone().unwrap_or_default(),
            ProviderError::Unavailable(d) | ProviderError::Malformed(d) => d.clone(),
            ProviderError::RateLimited { .. } => self.to_string(),
        }
    }

    pub fn malformed(what: impl Into<String>) -> Self {
        ProviderError::Malformed(what.into())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
