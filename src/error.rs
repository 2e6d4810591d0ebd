//! The one error type of the core. Each variant says what went wrong in one sentence; the
//! HTTP face maps variants to status codes in `api::error` (the only place), the CLI to exit
//! codes in `cli`.

use crate::clock::Timestamp;

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
    /// A refresh did not renew the account's tokens (HTTP 502 `provider_error`, or 409
    /// `needs_reauth` when the grant is gone), with what the provider answered.
    #[error("{0}")]
    RefreshFailed(Box<RefreshFailure>),
    /// A refresh asked for while the account waits out its backoff after failed refreshes:
    /// none was made (HTTP 503 `refresh_backoff`, with `Retry-After`).
    #[error("{0}")]
    RefreshBackoff(Box<RefreshBackoff>),
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
    /// The provider could not be reached, timed out, or failed on its side (5xx) without
    /// saying why.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider failed on its side (5xx) and said why in an OAuth error body: its own
    /// code and description, which never make the failure more than transient.
    #[error("the provider failed: HTTP {status} {code}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Failing {
        status: u16,
        code: String,
        description: Option<String>,
    },
    /// The provider answered with something Dravo cannot read.
    #[error("the provider's answer cannot be read: {0}")]
    Malformed(String),
    /// The provider refused the app, not the account: it has not approved the app for an API
    /// (Google Business Profile's quota of 0), or disabled it. Its own code and message.
    #[error("the provider refused the app: {code}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    AppRefused {
        code: String,
        description: Option<String>,
    },
    /// Dravo refused to call the host user input chose (a private address, plain http, a
    /// redirect elsewhere): the sentence says which host and why. Nothing was sent.
    #[error("{0}")]
    Refused(String),
    /// The provider answered 429; `retry_after` is its `Retry-After` in seconds, if given.
    #[error("the provider is rate limiting Dravo{}", retry_after.map(|s| format!(" (retry after {s} s)")).unwrap_or_default())]
    RateLimited { retry_after: Option<u64> },
}

impl ProviderError {
    /// The `error` code carried into the dashboard redirect: the provider's for a refusal,
    /// Dravo's own for a failure on the provider's side or the way to it.
    pub fn code(&self) -> &str {
        match self {
            ProviderError::Rejected { code, .. } | ProviderError::AppRefused { code, .. } => code,
            ProviderError::Unavailable(_) | ProviderError::Failing { .. } => "provider_unavailable",
            ProviderError::Malformed(_) => "provider_invalid_response",
            ProviderError::Refused(_) => "host_refused",
            ProviderError::RateLimited { .. } => "rate_limited",
        }
    }

    /// The provider's own `error` code when it gave one (even with a 5xx), else `code`.
    pub fn provider_code(&self) -> &str {
        match self {
            ProviderError::Rejected { code, .. } | ProviderError::Failing { code, .. } => code,
            _ => self.code(),
        }
    }

    /// The provider's own `error_description` when it gave a code, else `description`.
    pub fn provider_description(&self) -> String {
        match self {
            ProviderError::Failing { description, .. } => description.clone().unwrap_or_default(),
            _ => self.description(),
        }
    }

    /// `provider_code: provider_description`, or the code alone without a description.
    pub fn summary(&self) -> String {
        match self.provider_description() {
            d if d.is_empty() => self.provider_code().to_owned(),
            d => format!("{}: {d}", self.provider_code()),
        }
    }

    /// A short description for the redirect and the log.
    pub fn description(&self) -> String {
        match self {
            ProviderError::Rejected { description, .. }
            | ProviderError::AppRefused { description, .. } => {
                description.clone().unwrap_or_default()
            }
            ProviderError::Failing {
                status,
                code,
                description,
            } => match description {
                Some(d) => format!("HTTP {status} {code} ({d})"),
                None => format!("HTTP {status} {code}"),
            },
            ProviderError::Unavailable(d)
            | ProviderError::Malformed(d)
            | ProviderError::Refused(d) => d.clone(),
            ProviderError::RateLimited { .. } => self.to_string(),
        }
    }

    pub fn malformed(what: impl Into<String>) -> Self {
        ProviderError::Malformed(what.into())
    }
}

/// How a refresh failure counts, and who is to blame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Try again later; nobody is to blame (an outage, a rate limit, an unreadable answer).
    Transient,
    /// The provider refused the app (its client credentials, or access it has not been
    /// approved for): the account is not to blame.
    AppCredentials,
    /// The grant is gone: only a new consent helps.
    Definitive,
}

impl FailureClass {
    /// The name callers see (`failure` in an error body, `blame` in events).
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureClass::Transient => "transient",
            FailureClass::AppCredentials => "app",
            FailureClass::Definitive => "account",
        }
    }
}

/// A refresh that was made and failed: what the provider answered, how it counts, and where
/// it left the account. Statuses are their API names, as callers see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshFailure {
    pub account_id: String,
    pub error: ProviderError,
    pub class: FailureClass,
    /// The account's status after the failure (`active`, `expiring`, `needs_reauth`).
    pub account_status: &'static str,
    /// When Dravo tries again by itself; `None` once only a new consent helps.
    pub next_attempt_at: Option<Timestamp>,
}

impl std::fmt::Display for RefreshFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = &self.account_id;
        match self.class {
            FailureClass::Definitive => write!(
                f,
                "account {id} needs to be connected again: the provider refused its refresh ({})",
                self.error.summary()
            ),
            FailureClass::AppCredentials => write!(
                f,
                "the refresh of account {id} failed: the provider refused the app's client credentials ({}); the account stays {}",
                self.error.summary(),
                self.account_status
            ),
            FailureClass::Transient => write!(
                f,
                "the refresh of account {id} failed: {}; a transient failure, the account stays {}",
                self.error, self.account_status
            ),
        }?;
        match &self.next_attempt_at {
            Some(at) if self.class != FailureClass::Definitive => {
                write!(f, " and the next attempt is at {at}")
            }
            _ => Ok(()),
        }
    }
}

/// A refresh refused because the account waits out its backoff: no provider call was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshBackoff {
    pub account_id: String,
    /// Failed refreshes in a row so far.
    pub failures: i64,
    /// The account's status (`active` or `expiring`).
    pub account_status: &'static str,
    /// The next attempt.
    pub next_attempt_at: Timestamp,
    /// Whole seconds until then (at least 1).
    pub retry_after_seconds: u64,
}

impl std::fmt::Display for RefreshBackoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "account {} is not refreshed now: its last {} refreshes failed, and the next attempt is at {} (no call was made to the provider)",
            self.account_id, self.failures, self.next_attempt_at
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
