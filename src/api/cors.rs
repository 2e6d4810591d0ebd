//! CORS for a browser dashboard on another origin (`dashboard.cors_origins`).
//!
//! poem's `Cors` middleware does not fit: it refuses every request from an origin outside
//! its list with a plain-text 403 (CORS is the browser's check; a server-side client that
//! sends `Origin` must not be refused for it), its errors bypass the JSON error body, and
//! with an empty list it allows every origin. Here:
//!
//! - no origins configured: no CORS header at all;
//! - a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from a listed
//!   origin: 204 with the allowed methods and headers, answered before routing, rate limits
//!   and auth (a preflight carries no token);
//! - any other request from a listed origin: answered as usual, errors included, with
//!   `Access-Control-Allow-Origin` so the dashboard can read the body;
//! - an origin not listed: answered as if CORS did not exist (a preflight then meets the
//!   405 every unknown method meets), so the browser refuses it.
//!
//! No credentials mode: the dashboard token travels in `Authorization`, not in cookies.

use std::sync::Arc;

use poem::Response;
use poem::http::{HeaderMap, HeaderValue, Method, StatusCode, header};

/// What a dashboard may send: the API's methods and headers.
const ALLOW_METHODS: &str = "GET, POST, PATCH, DELETE";
const ALLOW_HEADERS: &str = "Authorization, Content-Type, X-Request-Id";
/// What a dashboard may read beyond the CORS-safelisted response headers.
const EXPOSE_HEADERS: &str = "X-Request-Id, Location, Retry-After, WWW-Authenticate";
/// How long a browser may reuse a preflight's answer (Chromium caps it at 2 hours).
const MAX_AGE_SECONDS: &str = "3600";
/// Answers differ by these request headers, so caches must key on them.
const VARY_PREFLIGHT: &str =
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

/// The allowed origins, exactly as browsers send them in `Origin` (checked by `config`).
#[derive(Clone)]
pub struct Cors {
    origins: Arc<[HeaderValue]>,
}

impl Cors {
    /// `None` when no origin is listed: then nothing about CORS is added anywhere.
    pub fn new(origins: &[String]) -> Option<Cors> {
        let origins: Vec<HeaderValue> = origins
            .iter()
            .map(|o| HeaderValue::from_str(o).expect("origins are checked at config load"))
            .collect();
        (!origins.is_empty()).then(|| Cors {
            origins: origins.into(),
        })
    }

    /// The request's `Origin` when it is one of the allowed ones.
    pub fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        self.origins
            .iter()
            .any(|o| o == origin)
            .then(|| origin.clone())
    }

    /// Whether the request is a preflight (from an allowed origin: the caller checked).
    pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
        method == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// The answer to a preflight from `origin`, an allowed origin.
    pub fn preflight(&self, origin: HeaderValue) -> Response {
        let mut resp = Response::builder().status(StatusCode::NO_CONTENT).finish();
        let headers = resp.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE_SECONDS),
        );
        headers.insert(header::VARY, HeaderValue::from_static(VARY_PREFLIGHT));
        resp
    }

    /// Adds the CORS headers of an actual (non-preflight) answer: the origin's permission when
    /// it is allowed, and in every case `Vary: Origin`, since the answer depends on it.
    pub fn decorate(&self, origin: Option<HeaderValue>, headers: &mut HeaderMap) {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = origin {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSE_HEADERS),
            );
        }
    }
}
