//! The one place where errors become HTTP: status, `{"error": {code, message}}` body, and the
//! `WWW-Authenticate` header on 401. Both the typed endpoint errors and everything poem or
//! poem-openapi reject on their own (bad JSON, unknown routes, 405, 413, 415) come through here.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaResponses, Registry};
use poem_openapi::{ApiResponse, Enum, Object};

use crate::domain::Timestamp;
use crate::error::{Error, FailureClass, RefreshBackoff, RefreshFailure};
use crate::service::NotReady;
use crate::wire::values::Checked;

/// The `code` of an error body: machine-readable, snake_case. Exactly the codes this server
/// can answer with; README's "Error codes" table says when each one happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    Conflict,
    NoDefaultApp,
    NeedsReauth,
    AppInUse,
    RequestTimeout,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    Internal,
    ProviderError,
    NotReady,
    RefreshBackoff,
}

impl ErrorCode {
    /// The one status each code is sent with.
    pub const fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Conflict
            | ErrorCode::NoDefaultApp
            | ErrorCode::NeedsReauth
            | ErrorCode::AppInUse => StatusCode::CONFLICT,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::ProviderError => StatusCode::BAD_GATEWAY,
            ErrorCode::NotReady | ErrorCode::RefreshBackoff => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

#[derive(Debug, Clone, Object)]
pub struct ErrorDetail {
    // No doc comment here: poem-openapi would wrap the `$ref` in an `allOf` to attach it,
    // which client generators reject; `ErrorCode` carries the description.
    pub code: ErrorCode,
    /// One human sentence.
    pub message: String,
    // No doc comment: see `code`.
    #[oai(skip_serializing_if_is_none)]
    pub refresh: Option<Box<RefreshErrorDetail>>,
}

/// How a failed refresh counts: `transient` (try later; nobody is to blame), `app` (the
/// provider refused the app's client credentials: fix the app, not the account), `account`
/// (the grant is gone: only a new consent helps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum RefreshFailureKind {
    /// Try again later; nobody is to blame (an outage, a rate limit, an unreadable answer).
    Transient,
    /// The provider refused the app's client credentials: fix the app, not the account.
    App,
    /// The grant is gone: only a new consent helps.
    Account,
}

impl From<FailureClass> for RefreshFailureKind {
    fn from(class: FailureClass) -> Self {
        match class {
            FailureClass::Transient => RefreshFailureKind::Transient,
            FailureClass::AppCredentials => RefreshFailureKind::App,
            FailureClass::Definitive => RefreshFailureKind::Account,
        }
    }
}

/// What a refresh that did not renew the account came to, in an error body with
/// `provider_error` or `needs_reauth` from a refresh, and with `refresh_backoff`.
#[derive(Debug, Clone, Object)]
pub struct RefreshErrorDetail {
    pub account_id: String,
    /// The account's status now: `active`, `expiring` or `needs_reauth`.
    pub account_status: String,
    /// The provider's own `error` code (`invalid_grant`, `server_error`, …), or Dravo's
    /// (`provider_unavailable`, `provider_invalid_response`, `rate_limited`) when the provider
    /// gave none. Absent when no call was made.
    #[oai(skip_serializing_if_is_none)]
    pub provider_error: Option<String>,
    /// The provider's `error_description`, or what went wrong on the way.
    #[oai(skip_serializing_if_is_none)]
    pub provider_error_description: Option<String>,
    // No doc comment: see `code`. Absent when no call was made.
    #[oai(skip_serializing_if_is_none)]
    pub failure: Option<RefreshFailureKind>,
    /// Failed refreshes in a row (with `refresh_backoff`).
    #[oai(skip_serializing_if_is_none)]
    pub failures: Option<i64>,
    /// When Dravo tries again by itself; absent once only a new consent helps.
    #[oai(skip_serializing_if_is_none)]
    pub next_attempt_at: Option<Checked<Timestamp>>,
}

impl From<&RefreshFailure> for RefreshErrorDetail {
    fn from(f: &RefreshFailure) -> Self {
        let description = f.error.provider_description();
        RefreshErrorDetail {
            account_id: f.account_id.clone(),
            account_status: f.account_status.to_owned(),
            provider_error: Some(f.error.provider_code().to_owned()),
            provider_error_description: (!description.is_empty()).then_some(description),
            failure: Some(f.class.into()),
            failures: None,
            next_attempt_at: f.next_attempt_at.map(Checked),
        }
    }
}

impl From<&RefreshBackoff> for RefreshErrorDetail {
    fn from(b: &RefreshBackoff) -> Self {
        RefreshErrorDetail {
            account_id: b.account_id.clone(),
            account_status: b.account_status.to_owned(),
            provider_error: None,
            provider_error_description: None,
            failure: None,
            failures: Some(b.failures),
            next_attempt_at: Some(Checked(b.next_attempt_at)),
        }
    }
}

/// Every non-2xx response has this body. Each error response of the spec shows the
/// examples of its own codes.
#[derive(Debug, Clone, Object)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

const BEARER_CHALLENGE: &str = "Bearer";
/// The 401 message when no bearer token was sent.
pub(crate) const MISSING_TOKEN: &str =
    "a bearer token is required: send `Authorization: Bearer <JWT>`";
pub(crate) const NOT_ALLOWED: &str = "this endpoint does not accept that HTTP method";
pub(crate) const NOT_JSON: &str =
    "the request body must be JSON, sent with `Content-Type: application/json`";

/// The error responses the typed endpoints declare and return. Each description says what
/// the status means here; `api::spec` adds the example bodies of the codes sent with it.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// `invalid_request`: malformed JSON, a missing, unknown or out-of-range field or
    /// parameter, or an OAuth app of another provider.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// `unauthorized`: the bearer token is missing, malformed, expired or wrongly signed.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    /// `not_found`: no such object for this tenant (another tenant's objects look missing).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// `conflict`: an app with this name already exists for the provider, or an explicit
    /// refresh the provider cannot make now (the message says why); or
    /// `no_default_app`: no `oauth_app_id` given and no default app configured; or
    /// `needs_reauth`: the account's grant is gone and only a new consent helps (the message
    /// says why); or `app_in_use`: the OAuth app still has connected accounts (delete them
    /// first, or delete the app with `?cascade=true`).
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// `request_timeout`: the request body did not arrive within the server's body timeout
    /// (`server.body_timeout_seconds`); the connection is closed.
    #[oai(status = 408)]
    RequestTimeout(Json<ErrorBody>),
    /// `payload_too_large`: the request body is larger than 64 KiB.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// `unsupported_media_type`: the request body is not `application/json`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// `internal`: something failed inside Dravo; the details are in its log, never here.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// `provider_error`: the provider failed or refused a call Dravo made for this request
    /// (a refresh during an outage, say); the account is not blamed and the message says what
    /// the provider answered and when the next attempt is.
    #[oai(status = 502)]
    BadGateway(Json<ErrorBody>),
}

/// The answer to a request over its rate limit (`api::limits`). Only the operations that are
/// limited declare it: `LimitedError` on the dashboard's, alone on the callback's.
#[derive(Debug, ApiResponse)]
pub enum RateLimited {
    /// `rate_limited`: too many requests like this one in a short time, from this tenant (for
    /// the callback: from this client IP address). The rates are Dravo's `limits.*` settings;
    /// each allows a burst of 5 seconds' worth.
    #[oai(status = 429)]
    TooManyRequests(
        Json<ErrorBody>,
        /// Whole seconds to wait before the next such request can succeed (at least 1).
        #[oai(header = "Retry-After")]
        u64,
    ),
}

/// The answer to a refresh asked for while the account waits out its backoff.
#[derive(Debug, ApiResponse)]
pub enum Backoff {
    /// `refresh_backoff`: the account's last refreshes failed and Dravo waits before the next
    /// (1 minute, doubling up to an hour; an hour after the provider refused the app's
    /// credentials). No call was made to the provider. `error.refresh` says how many failed
    /// and when the next attempt is.
    #[oai(status = 503)]
    ServiceUnavailable(
        Json<ErrorBody>,
        /// Whole seconds until the next attempt (at least 1).
        #[oai(header = "Retry-After")]
        u64,
    ),
}

/// The errors of an operation that may refresh an account (its access token, an explicit
/// refresh): `LimitedError`'s, and `Backoff`'s 503.
#[derive(Debug)]
pub enum RefreshError {
    Limited(LimitedError),
    Backoff(Backoff),
}

impl ApiResponse for RefreshError {
    fn meta() -> MetaResponses {
        let mut responses = LimitedError::meta().responses;
        responses.extend(Backoff::meta().responses);
        responses.sort_by_key(|r| r.status);
        MetaResponses { responses }
    }

    fn register(registry: &mut Registry) {
        LimitedError::register(registry);
        Backoff::register(registry);
    }
}

impl IntoResponse for RefreshError {
    fn into_response(self) -> Response {
        match self {
            RefreshError::Limited(e) => e.into_response(),
            RefreshError::Backoff(e) => e.into_response(),
        }
    }
}

impl From<RefreshError> for poem::Error {
    fn from(err: RefreshError) -> Self {
        match err {
            RefreshError::Limited(e) => e.into(),
            RefreshError::Backoff(e) => e.into(),
        }
    }
}

impl From<Error> for RefreshError {
    fn from(err: Error) -> Self {
        match &err {
            Error::RefreshBackoff(b) => RefreshError::Backoff(Backoff::ServiceUnavailable(
                Json(classify(&err).into_body()),
                b.retry_after_seconds,
            )),
            _ => RefreshError::Limited(err.into()),
        }
    }
}

impl From<RateLimited> for RefreshError {
    fn from(err: RateLimited) -> Self {
        RefreshError::Limited(err.into())
    }
}

/// The errors of a rate-limited dashboard operation: `ApiError`'s, and `RateLimited`'s 429.
/// (An `ApiResponse` by hand: the derive cannot nest one response enum in another.)
#[derive(Debug)]
pub enum LimitedError {
    Api(ApiError),
    RateLimited(RateLimited),
}

impl ApiResponse for LimitedError {
    fn meta() -> MetaResponses {
        let mut responses = ApiError::meta().responses;
        responses.extend(RateLimited::meta().responses);
        // In status order, as the derive lists its own.
        responses.sort_by_key(|r| r.status);
        MetaResponses { responses }
    }

    fn register(registry: &mut Registry) {
        ApiError::register(registry);
        RateLimited::register(registry);
    }
}

impl IntoResponse for LimitedError {
    fn into_response(self) -> Response {
        match self {
            LimitedError::Api(e) => e.into_response(),
            LimitedError::RateLimited(e) => e.into_response(),
        }
    }
}

impl From<LimitedError> for poem::Error {
    fn from(err: LimitedError) -> Self {
        match err {
            LimitedError::Api(e) => e.into(),
            LimitedError::RateLimited(e) => e.into(),
        }
    }
}

impl From<Error> for LimitedError {
    fn from(err: Error) -> Self {
        LimitedError::Api(err.into())
    }
}

impl From<RateLimited> for LimitedError {
    fn from(err: RateLimited) -> Self {
        LimitedError::RateLimited(err)
    }
}

/// The only failure `/healthz` declares: the database did not answer.
#[derive(Debug, ApiResponse)]
pub enum HealthError {
    /// `internal`: the database did not answer; the details are in Dravo's log.
    #[oai(status = 500)]
    Unavailable(Json<ErrorBody>),
}

impl From<Error> for HealthError {
    fn from(err: Error) -> Self {
        tracing::error!(error = %err, "health check failed");
        HealthError::Unavailable(Json(ErrorBody {
            error: ErrorDetail {
                code: ErrorCode::Internal,
                message: INTERNAL_MESSAGE.to_owned(),
                refresh: None,
            },
        }))
    }
}

/// The only failure `/readyz` declares: a check failed.
#[derive(Debug, ApiResponse)]
pub enum ReadyError {
    /// `not_ready`: the database does not answer, its schema is not the one this build
    /// migrates to, or it belongs to another master key; the message names each failed check.
    #[oai(status = 503)]
    NotReady(Json<ErrorBody>),
}

impl From<NotReady> for ReadyError {
    fn from(not_ready: NotReady) -> Self {
        let message = not_ready.to_string();
        tracing::warn!("{message}");
        ReadyError::NotReady(Json(ErrorBody {
            error: ErrorDetail {
                code: ErrorCode::NotReady,
                message,
                refresh: None,
            },
        }))
    }
}

/// What a core error becomes: its code (which fixes the status), message, and the facts of a
/// refresh that did not renew the account.
struct Classified {
    code: ErrorCode,
    message: String,
    refresh: Option<Box<RefreshErrorDetail>>,
    /// `Retry-After`, in seconds.
    retry_after: Option<u64>,
}

impl Classified {
    fn into_body(self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                refresh: self.refresh,
            },
        }
    }
}

/// The whole message of every 500: the details go to the log only.
pub(crate) const INTERNAL_MESSAGE: &str = "internal server error";

/// The one mapping from core errors to HTTP. Internal details are logged here and replaced by
/// a generic sentence.
fn classify(err: &Error) -> Classified {
    let plain = |code, message: &str| Classified {
        code,
        message: message.to_owned(),
        refresh: None,
        retry_after: None,
    };
    match err {
        Error::InvalidRequest(m) => plain(ErrorCode::InvalidRequest, m),
        Error::Unauthorized(m) => plain(ErrorCode::Unauthorized, m),
        Error::NotFound(m) => plain(ErrorCode::NotFound, m),
        Error::Conflict(m) => plain(ErrorCode::Conflict, m),
        Error::NoDefaultApp(m) => plain(ErrorCode::NoDefaultApp, m),
        Error::NeedsReauth(m) => plain(ErrorCode::NeedsReauth, m),
        Error::AppInUse(m) => plain(ErrorCode::AppInUse, m),
        Error::Provider(e) => {
            tracing::warn!(error = %e, "a provider call failed");
            plain(ErrorCode::ProviderError, &e.to_string())
        }
        Error::RefreshFailed(f) => Classified {
            code: match f.class {
                FailureClass::Definitive => ErrorCode::NeedsReauth,
                FailureClass::Transient | FailureClass::AppCredentials => ErrorCode::ProviderError,
            },
            message: f.to_string(),
            refresh: Some(Box::new(f.as_ref().into())),
            retry_after: None,
        },
        Error::RefreshBackoff(b) => Classified {
            code: ErrorCode::RefreshBackoff,
            message: b.to_string(),
            refresh: Some(Box::new(b.as_ref().into())),
            retry_after: Some(b.retry_after_seconds),
        },
        Error::Config(_)
        | Error::Key(_)
        | Error::Unseal(_)
        | Error::UnknownKey(_)
        | Error::Store { .. }
        | Error::Internal(_) => {
            tracing::error!(error = %err, "request failed");
            plain(ErrorCode::Internal, INTERNAL_MESSAGE)
        }
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let c = classify(&err);
        let code = c.code;
        let body = Json(c.into_body());
        match code {
            ErrorCode::InvalidRequest => ApiError::BadRequest(body),
            ErrorCode::Unauthorized => ApiError::Unauthorized(body, BEARER_CHALLENGE.into()),
            ErrorCode::NotFound => ApiError::NotFound(body),
            ErrorCode::Conflict
            | ErrorCode::NoDefaultApp
            | ErrorCode::NeedsReauth
            | ErrorCode::AppInUse => ApiError::Conflict(body),
            ErrorCode::ProviderError => ApiError::BadGateway(body),
            ErrorCode::PayloadTooLarge => ApiError::PayloadTooLarge(body),
            ErrorCode::RequestTimeout => ApiError::RequestTimeout(body),
            ErrorCode::UnsupportedMediaType => ApiError::UnsupportedMediaType(body),
            // Not a core error's code: endpoints never see a 405, and a 429 comes from
            // `api::limits` as `RateLimited`, never from the core. Only the operations that
            // refresh answer `refresh_backoff`, through `RefreshError`.
            ErrorCode::MethodNotAllowed
            | ErrorCode::RateLimited
            | ErrorCode::Internal
            | ErrorCode::NotReady
            | ErrorCode::RefreshBackoff => ApiError::Internal(body),
        }
    }
}

/// A core error travelling as a `poem::Error` (from the auth checker); rendered by
/// `render_poem_error`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CoreError(pub Error);

impl poem::error::ResponseError for CoreError {
    fn status(&self) -> StatusCode {
        classify(&self.0).code.status()
    }
}

/// What a connection over `server.max_connections_per_ip` is told before it is closed: a
/// complete HTTP/1.1 response, written before its request is read.
pub fn connection_refusal(limit: usize) -> bytes::Bytes {
    let body = ErrorBody {
        error: ErrorDetail {
            code: ErrorCode::RateLimited,
            message: format!(
                "too many connections from this address: at most {limit} at once; close some, or reuse them, and retry"
            ),
            refresh: None,
        },
    };
    let json = poem_openapi::types::ToJSON::to_json(&body)
        .map(|v| v.to_string())
        .unwrap_or_default();
    let head = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\nretry-after: 1\r\ncache-control: no-store\r\nconnection: close\r\n\r\n",
        json.len()
    );
    bytes::Bytes::from(head + &json)
}

/// The request body exceeded the limit.
#[derive(Debug, thiserror::Error)]
#[error("the request body is larger than {0} bytes")]
pub struct PayloadTooLarge(pub usize);

impl poem::error::ResponseError for PayloadTooLarge {
    fn status(&self) -> StatusCode {
        StatusCode::PAYLOAD_TOO_LARGE
    }
}

/// The `T` an I/O error carries, however deeply: reading a body wraps the body's own error in
/// another `io::Error` or two on the way.
fn find_cause<T: std::error::Error + 'static>(err: &std::io::Error) -> Option<&T> {
    let mut cause: &(dyn std::error::Error + 'static) = err;
    loop {
        if let Some(found) = cause.downcast_ref::<T>() {
            return Some(found);
        }
        cause = match cause.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref()?,
            None => cause.source()?,
        };
    }
}

/// Strips poem-openapi's nesting ("failed to parse \"X\": … (occurred while parsing \"Y\")")
/// so the message is the sentence the field's own check wrote.
fn clean_parse_reason(reason: &str) -> String {
    let mut s = reason.trim();
    while let Some(idx) = s.rfind(" (occurred while parsing \"") {
        if s.ends_with("\")") {
            s = &s[..idx];
        } else {
            break;
        }
    }
    while let Some(rest) = s.strip_prefix("failed to parse \"") {
        match rest.find("\": ") {
            Some(end) => s = &rest[end + 3..],
            None => break,
        }
    }
    s.trim_end_matches('.').to_owned()
}

/// "invalid parameter `id`: …" from a parameter parse failure. poem-openapi calls path
/// parameters `param0`…, so the name our own parse error carries wins.
fn parameter_message(reason: &str) -> String {
    let reason = clean_parse_reason(reason);
    let own = match reason.rfind("parameter `") {
        Some(i) => &reason[i..],
        None => reason.as_str(),
    };
    format!("invalid {own}")
}

/// The JSON error body with the status its code fixes.
fn json_response(code: ErrorCode, message: String) -> Response {
    classified_response(Classified {
        code,
        message,
        refresh: None,
        retry_after: None,
    })
}

/// A classified error as its response: the body, the status its code fixes, and its headers.
fn classified_response(c: Classified) -> Response {
    let (code, retry_after) = (c.code, c.retry_after);
    let mut resp = Json(c.into_body()).into_response();
    resp.set_status(code.status());
    if let Some(seconds) = retry_after {
        resp.headers_mut().insert(
            poem::http::header::RETRY_AFTER,
            poem::http::HeaderValue::from(seconds),
        );
    }
    if code == ErrorCode::Unauthorized {
        resp.headers_mut().insert(
            poem::http::header::WWW_AUTHENTICATE,
            poem::http::HeaderValue::from_static(BEARER_CHALLENGE),
        );
    }
    resp
}

/// Renders any error that escaped the typed endpoints as the JSON error body.
pub fn render_poem_error(err: poem::Error) -> Response {
    use poem::error::ReadBodyError;
    use poem_openapi::error::{
        AuthorizationError, ContentTypeError, ParseParamError, ParsePathError,
        ParseRequestPayloadError,
    };
    // Typed endpoint errors (`ApiError`) arrive already rendered.
    if err.is_from_response() {
        return err.into_response();
    }
    if let Some(CoreError(core)) = err.downcast_ref::<CoreError>() {
        return classified_response(classify(core));
    }
    if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
        let message = format!("invalid request body: {}", clean_parse_reason(&e.reason));
        return json_response(ErrorCode::InvalidRequest, message);
    }
    if let Some(e) = err.downcast_ref::<ParsePathError>() {
        let message = parameter_message(&e.reason);
        return json_response(ErrorCode::InvalidRequest, message);
    }
    if let Some(e) = err.downcast_ref::<ParseParamError>() {
        let message = parameter_message(&format!("parameter `{}`: {}", e.name, e.reason));
        return json_response(ErrorCode::InvalidRequest, message);
    }
    if let Some(ReadBodyError::Io(e)) = err.downcast_ref::<ReadBodyError>() {
        if let Some(timed_out) = find_cause::<crate::net::BodyTimedOut>(e) {
            return json_response(ErrorCode::RequestTimeout, timed_out.to_string());
        }
        if let Some(too_large) = find_cause::<PayloadTooLarge>(e) {
            return json_response(ErrorCode::PayloadTooLarge, too_large.to_string());
        }
    }
    if err.is::<ContentTypeError>() {
        return json_response(ErrorCode::UnsupportedMediaType, NOT_JSON.into());
    }
    if err.is::<AuthorizationError>() {
        return json_response(ErrorCode::Unauthorized, MISSING_TOKEN.into());
    }
    let (code, message) = match err.status() {
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, "no such endpoint".to_owned()),
        StatusCode::METHOD_NOT_ALLOWED => (ErrorCode::MethodNotAllowed, NOT_ALLOWED.to_owned()),
        StatusCode::PAYLOAD_TOO_LARGE => (ErrorCode::PayloadTooLarge, err.to_string()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (ErrorCode::UnsupportedMediaType, NOT_JSON.into()),
        StatusCode::UNAUTHORIZED => (ErrorCode::Unauthorized, "authentication failed".into()),
        s if s.is_client_error() => (
            ErrorCode::InvalidRequest,
            clean_parse_reason(&err.to_string()),
        ),
        _ => {
            tracing::error!(error = %err, "request failed");
            (ErrorCode::Internal, INTERNAL_MESSAGE.into())
        }
    };
    // Known client errors keep their status; any other becomes a 400, a server error a 500.
    json_response(code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reasons_are_unwrapped() {
        assert_eq!(
            clean_parse_reason(
                "failed to parse \"AppName\": name must be 1 to 120 characters long (got 0) (occurred while parsing \"CreateOAuthApp\")"
            ),
            "name must be 1 to 120 characters long (got 0)"
        );
        assert_eq!(
            clean_parse_reason("failed to parse \"CreateOAuthApp\": unknown field `x`."),
            "unknown field `x`"
        );
        assert_eq!(clean_parse_reason("EOF while parsing"), "EOF while parsing");
    }
}
