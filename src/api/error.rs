//! The one place where errors become HTTP: status, `{"error": {code, message}}` body, and the
//! `WWW-Authenticate` header on 401. Both the typed endpoint errors and everything poem or
//! poem-openapi reject on their own (bad JSON, unknown routes, 405, 413, 415) come through here.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Enum, Object};

use crate::error::Error;

/// The `code` of an error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    Conflict,
    NoDefaultApp,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    Internal,
    ProviderError,
}

#[derive(Debug, Clone, Object)]
pub struct ErrorDetail {
    /// Machine-readable, snake_case.
    pub code: ErrorCode,
    /// One human sentence.
    pub message: String,
}

/// Every non-2xx response has this body.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

impl Example for ErrorBody {
    fn example() -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: ErrorCode::InvalidRequest,
                message: "name must be 1 to 120 characters long (got 0)".into(),
            },
        }
    }
}

const BEARER_CHALLENGE: &str = "Bearer";
const NOT_JSON: &str = "the request body must be JSON, sent with `Content-Type: application/json`";

/// The error responses the typed endpoints declare and return.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed: bad JSON, a missing, unknown or out-of-range field.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// The bearer token is missing, malformed, expired or wrongly signed.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    /// No such object for this tenant.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The change clashes with stored data (a duplicate name), or no default app is set.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The request body is larger than 64 KiB.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The request body is not `application/json`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// Too many requests: wait `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
    /// Something failed inside Dravo; the details are in its log.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The provider refused or failed; the message carries the provider's own error code
    /// and description.
    #[oai(status = 502)]
    BadGateway(Json<ErrorBody>),
}

/// What a core error becomes: status, code, message, and `Retry-After` for 429.
struct Classified {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    retry_after: Option<u64>,
}

/// The one mapping from core errors to HTTP. Internal details are logged here and replaced by
/// a generic sentence.
fn classify(err: &Error) -> Classified {
    let plain = |status, code, message: &str| Classified {
        status,
        code,
        message: message.to_owned(),
        retry_after: None,
    };
    match err {
        Error::InvalidRequest(m) => plain(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, m),
        Error::Unauthorized(m) => plain(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, m),
        Error::NotFound(m) => plain(StatusCode::NOT_FOUND, ErrorCode::NotFound, m),
        Error::Conflict(m) => plain(StatusCode::CONFLICT, ErrorCode::Conflict, m),
        Error::NoDefaultApp(m) => plain(StatusCode::CONFLICT, ErrorCode::NoDefaultApp, m),
        Error::RateLimited {
            message,
            retry_after_seconds,
        } => Classified {
            retry_after: Some(*retry_after_seconds),
            ..plain(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                message,
            )
        },
        Error::Provider(e) => {
            tracing::warn!(error = %e, "a provider call failed");
            let message = match e.description() {
                d if d.is_empty() => format!("the provider answered `{}`", e.code()),
                d => format!("the provider answered `{}`: {d}", e.code()),
            };
            plain(StatusCode::BAD_GATEWAY, ErrorCode::ProviderError, &message)
        }
        Error::Config(_)
        | Error::Key(_)
        | Error::Unseal(_)
        | Error::Store { .. }
        | Error::Internal(_) => {
            tracing::error!(error = %err, "request failed");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "internal server error",
            )
        }
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let c = classify(&err);
        let body = Json(ErrorBody {
            error: ErrorDetail {
                code: c.code,
                message: c.message,
            },
        });
        match c.status {
            StatusCode::BAD_REQUEST => ApiError::BadRequest(body),
            StatusCode::UNAUTHORIZED => ApiError::Unauthorized(body, BEARER_CHALLENGE.into()),
            StatusCode::NOT_FOUND => ApiError::NotFound(body),
            StatusCode::CONFLICT => ApiError::Conflict(body),
            StatusCode::TOO_MANY_REQUESTS => {
                ApiError::TooManyRequests(body, c.retry_after.unwrap_or(1))
            }
            StatusCode::BAD_GATEWAY => ApiError::BadGateway(body),
            _ => ApiError::Internal(body),
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
        classify(&self.0).status
    }
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

fn json_response(status: StatusCode, code: ErrorCode, message: String) -> Response {
    let mut resp = Json(ErrorBody {
        error: ErrorDetail { code, message },
    })
    .into_response();
    resp.set_status(status);
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            poem::http::header::WWW_AUTHENTICATE,
            poem::http::HeaderValue::from_static(BEARER_CHALLENGE),
        );
    }
    resp
}

/// Renders any error that escaped the typed endpoints as the JSON error body.
pub fn render_poem_error(err: poem::Error) -> Response {
    use poem_openapi::error::{
        AuthorizationError, ContentTypeError, ParseParamError, ParsePathError,
        ParseRequestPayloadError,
    };
    // Typed endpoint errors (`ApiError`) arrive already rendered.
    if err.is_from_response() {
        return err.into_response();
    }
    if let Some(CoreError(core)) = err.downcast_ref::<CoreError>() {
        let c = classify(core);
        let mut resp = json_response(c.status, c.code, c.message);
        if let Some(seconds) = c.retry_after {
            resp.headers_mut().insert(
                poem::http::header::RETRY_AFTER,
                poem::http::HeaderValue::from(seconds),
            );
        }
        return resp;
    }
    if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
        let message = format!("invalid request body: {}", clean_parse_reason(&e.reason));
        return json_response(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, message);
    }
    if let Some(e) = err.downcast_ref::<ParsePathError>() {
        let message = parameter_message(&e.reason);
        return json_response(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, message);
    }
    if let Some(e) = err.downcast_ref::<ParseParamError>() {
        let message = parameter_message(&format!("parameter `{}`: {}", e.name, e.reason));
        return json_response(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, message);
    }
    if err.is::<ContentTypeError>() {
        return json_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            NOT_JSON.into(),
        );
    }
    if err.is::<AuthorizationError>() {
        return json_response(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "a bearer token is required: send `Authorization: Bearer <JWT>`".into(),
        );
    }
    let status = err.status();
    let (code, message) = match status {
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, "no such endpoint".to_owned()),
        StatusCode::METHOD_NOT_ALLOWED => (
            ErrorCode::MethodNotAllowed,
            "this endpoint does not accept that HTTP method".to_owned(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (ErrorCode::PayloadTooLarge, err.to_string()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (ErrorCode::UnsupportedMediaType, NOT_JSON.into()),
        StatusCode::UNAUTHORIZED => (ErrorCode::Unauthorized, "authentication failed".into()),
        s if s.is_client_error() => (
            ErrorCode::InvalidRequest,
            clean_parse_reason(&err.to_string()),
        ),
        _ => {
            tracing::error!(error = %err, "request failed");
            (ErrorCode::Internal, "internal server error".into())
        }
    };
    // Keep the status for known client errors; anything else is a 400 or 500 per its code.
    let status = match code {
        ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        _ => status,
    };
    json_response(status, code, message)
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
