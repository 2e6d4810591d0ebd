//! The HTTP face: poem-openapi endpoints (one file per tag), dashboard auth, the error
//! mapping, and the middleware every request passes (request id, CORS, body limit, JSON
//! errors, metrics, request log).

pub mod accounts;
pub mod allow;
pub mod client_ip;
pub mod cors;
pub mod error;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod oauth;
pub mod oauth_apps;
pub mod payload;
pub mod rendered;
pub mod request_id;
pub mod spec;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;
use std::time::Instant;

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route};
use poem_openapi::auth::Bearer;
use poem_openapi::{OpenApi, OpenApiService, OperationId, SecurityScheme, Tags};
use tracing::Instrument;

use crate::api::client_ip::{ClientIp, client_ip};
use crate::api::cors::Cors;
use crate::api::error::{CoreError, PayloadTooLarge, render_poem_error};
use crate::api::limits::RateLimits;
use crate::domain::Owner;
use crate::metrics::{UNMATCHED_ROUTE, method_label};
use crate::providers;
use crate::service::Dravo;

/// Request bodies above this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The spec's tags. poem-openapi lists tags by name; `api::spec` puts them in `FLOW` order,
/// which Swagger UI follows.
#[derive(Tags)]
pub enum ApiTags {
    /// BYOK OAuth app configs: your client_id/client_secret per provider. Start here.
    #[oai(rename = "OAuth apps")]
    OauthApps,
    /// Connect an account interactively: the provider's consent screen and Dravo's callback.
    Connect,
    /// Connected accounts.
    Accounts,
    /// Liveness and readiness, for load balancers and orchestrators.
    Health,
}

impl ApiTags {
    /// The order a person meets them in: store an app, connect, read accounts; health last.
    pub const FLOW: [ApiTags; 4] = [
        ApiTags::OauthApps,
        ApiTags::Connect,
        ApiTags::Accounts,
        ApiTags::Health,
    ];
}

/// Dashboard JWT: `Authorization: Bearer <JWT>`; the tenant is the `auth.tenant_claim` claim.
#[derive(SecurityScheme)]
#[oai(
    rename = "dashboardJwt",
    ty = "bearer",
    bearer_format = "JWT",
    checker = "check_dashboard_token"
)]
pub struct DashboardAuth(pub Owner);

async fn check_dashboard_token(req: &Request, bearer: Bearer) -> poem::Result<Owner> {
    let dravo = req
        .data::<Dravo>()
        .expect("the app is built with a Dravo in its data");
    dravo
        .authenticate(&bearer.token)
        .map_err(|e| poem::Error::from(CoreError(e)))
}

/// In `ApiTags::FLOW` order, which is also the order of the spec's paths.
type Apis = (
    oauth_apps::OAuthAppsApi,
    oauth::OAuthApi,
    accounts::AccountsApi,
    health::HealthApi,
);

fn api_service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            oauth_apps::OAuthAppsApi::default(),
            oauth::OAuthApi,
            accounts::AccountsApi::default(),
            health::HealthApi,
        ),
        "Dravo",
        env!("CARGO_PKG_VERSION"),
    )
    .description(format!(
        "Self-hosted OAuth connections for {}. OAuth apps hold your BYOK credentials per \
         provider.",
        providers::display_names()
    ))
}

/// The OpenAPI document as pretty JSON, without `servers`: what `openapi/dravo.json` holds
/// and `dravo openapi` prints, the same on every machine.
pub fn spec_json() -> String {
    spec::Spec::new(&api_service(), None).json()
}

/// The OpenAPI document as YAML, like `spec_json`.
pub fn spec_yaml() -> String {
    spec::Spec::new(&api_service(), None).yaml()
}

/// The OpenAPI document a server at `public_url` serves: `spec_json` with that URL in
/// `servers` (so "Try it out" reaches it) and in the examples' URLs.
pub fn served_spec_json(public_url: &str) -> String {
    spec::Spec::new(&api_service(), Some(public_url)).json()
}

/// The path of `/metrics` on the main address (when `server.metrics_bind` is unset) and on
/// the metrics address.
pub const METRICS_PATH: &str = "/metrics";

/// The `route` label of a CORS preflight: it is answered before routing.
const PREFLIGHT_ROUTE: &str = "cors_preflight";

/// Builds the whole HTTP application around a core, with the rate limiters it enforces
/// (`RateLimits::new(&config.limits)`; the caller prunes them). `/metrics` is served here,
/// without auth, unless `server.metrics_bind` moves it to an address of its own
/// (`metrics_app`).
pub fn build_app(dravo: Dravo, limits: RateLimits) -> impl Endpoint<Output = Response> {
    let docs = spec::ServedDocs::new(api_service, dravo.public_url());
    let mut route = Route::new()
        .nest("/", api_service())
        .at("/openapi.json", docs.json_endpoint())
        .nest("/docs", docs.swagger_ui());
    if dravo.config().server.metrics_bind.is_none() {
        route = route.at(METRICS_PATH, poem::get(metrics::scrape));
    }
    let cors = Cors::new(&dravo.config().dashboard.cors_origins);
    route.around(move |next, req| edge(next, req, dravo.clone(), limits.clone(), cors.clone()))
}

/// The application of `server.metrics_bind`: `GET /metrics` and nothing else (every other
/// path is a JSON 404). Its requests are not counted in the request metrics.
pub fn metrics_app(dravo: Dravo) -> impl Endpoint<Output = Response> {
    Route::new()
        .at(METRICS_PATH, poem::get(metrics::scrape))
        .around(move |next, mut req| {
            req.extensions_mut().insert(dravo.clone());
            async move {
                let mut resp = match next.call(req).await {
                    Ok(resp) => resp.into_response(),
                    Err(e) => render_poem_error(e),
                };
                harden(resp.headers_mut());
                Ok(resp)
            }
        })
}

/// What every request passes through, as one layer (each poem layer costs a boxed future per
/// request): its request id, CORS, the core, the rate limiters and the client's IP address in
/// the request's data, the body limit, every error as the JSON error body, the response
/// headers, the request metrics, and one log line.
async fn edge<E: Endpoint>(
    next: E,
    mut req: Request,
    dravo: Dravo,
    limits: RateLimits,
    cors: Option<Cors>,
) -> poem::Result<Response> {
    let start = Instant::now();
    let method = req.method().clone();
    let version = req.version();
    let path = req.uri().path().to_owned();
    let request_id = request_id::for_request(req.headers());
    let cors_origin = cors.as_ref().and_then(|c| c.allowed_origin(req.headers()));
    // `net` serves TCP only, so the peer is always a socket address; the fallback is for an
    // endpoint driven some other way.
    let peer = req
        .remote_addr()
        .as_socket_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    let client = client_ip(peer, req.headers(), &dravo.config().server.trusted_proxies);
    let metrics = dravo.metrics().clone();
    let id_text = request_id.to_str().unwrap_or_default();
    let (mut resp, route) = match (&cors, cors_origin.clone()) {
        // Before the body, the router, the limits and auth: a preflight carries no token.
        (Some(cors), Some(origin)) if Cors::is_preflight(&method, req.headers()) => {
            (cors.preflight(origin), PREFLIGHT_ROUTE)
        }
        _ => {
            req.extensions_mut().insert(ClientIp(client));
            req.extensions_mut().insert(limits);
            req.extensions_mut().insert(dravo);
            let (mut resp, route) = match limit_body(&mut req) {
                // A browser pointed at the server lands on the API docs. (Here rather than
                // as a route: the API service is nested at `/` and owns that path.)
                Ok(()) if path == "/" && method == Method::GET => {
                    (poem::web::Redirect::see_other("/docs").into_response(), "/")
                }
                Err(e) => (render_poem_error(e), route_label(None, &path)),
                Ok(()) => {
                    // Lines logged while the request is handled carry its id.
                    let span = tracing::info_span!("request", request_id = %id_text);
                    match next.call(req).instrument(span).await {
                        Ok(resp) => {
                            let resp = resp.into_response();
                            let route = route_label(resp.data::<OperationId>(), &path);
                            (resp, route)
                        }
                        Err(e) => {
                            let route = route_label(e.data::<OperationId>(), &path);
                            (render_poem_error(e), route)
                        }
                    }
                }
            };
            if let Some(cors) = &cors {
                cors.decorate(cors_origin, resp.headers_mut());
            }
            (resp, route)
        }
    };
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(methods) = allow::allowed_methods(&path)
    {
        resp.headers_mut().insert(header::ALLOW, methods);
    }
    if resp.status() == StatusCode::REQUEST_TIMEOUT && version < poem::http::Version::HTTP_2 {
        // What is left of a late body must not be read as the next request.
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let status = resp.status().as_u16();
    let elapsed = start.elapsed();
    metrics.observe_request(route, method_label(&method), status, elapsed);
    let headers = resp.headers_mut();
    harden(headers);
    if is_callback(&path) {
        // The callback's page shows provider text: it may load nothing, run nothing, be
        // framed by no one, and send no form anywhere.
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CALLBACK_CSP),
        );
    }
    // The path, never the query: it may carry codes or state.
    tracing::info!(
        target: "dravo::http",
        %method,
        path = %crate::domain::escape_untrusted(&path),
        client_ip = %client,
        status,
        latency_ms = %format_args!("{:.3}", elapsed.as_secs_f64() * 1000.0),
        request_id = %id_text,
        "request"
    );
    headers.insert(request_id::X_REQUEST_ID.clone(), request_id.clone());
    Ok(resp)
}

/// Answers may carry codes, states or tokens: keep them out of caches and out of the Referer
/// of whatever page the browser opens next, and never let a browser guess their type.
fn harden(headers: &mut poem::http::HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// The `route` label of a request: the template of the API operation that answered it (never
/// the path, which holds ids), the fixed path of a page outside the API, or
/// `UNMATCHED_ROUTE`.
fn route_label(operation: Option<&OperationId>, path: &str) -> &'static str {
    static TEMPLATES: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    if let Some(OperationId(id)) = operation {
        let templates = TEMPLATES.get_or_init(|| {
            Apis::meta()
                .into_iter()
                .flat_map(|api| api.paths)
                .flat_map(|p| {
                    // Once per process, a few dozen bytes per route.
                    let template: &'static str = Box::leak(p.path.into_boxed_str());
                    p.operations
                        .into_iter()
                        .filter_map(move |op| Some((op.operation_id?, template)))
                })
                .collect()
        });
        if let Some(&template) = templates.get(id) {
            return template;
        }
    }
    match path {
        "/openapi.json" => "/openapi.json",
        METRICS_PATH => METRICS_PATH,
        "/docs" => "/docs",
        p if p.starts_with("/docs/") => "/docs",
        _ => UNMATCHED_ROUTE,
    }
}

/// The callback page's Content-Security-Policy: only its own inline style.
pub const CALLBACK_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `/v1/oauth/{provider}/callback`.
fn is_callback(path: &str) -> bool {
    path.strip_prefix("/v1/oauth/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(provider, tail)| !provider.is_empty() && tail == "callback")
}

/// Refuses a body declared larger than `MAX_BODY_BYTES` with 413 at once, and makes a body
/// that turns out larger fail with [`PayloadTooLarge`] when it is read. Nothing is read
/// here: a handler reads its body after its auth, and a handler that takes none never waits
/// for one (the connection is closed after the answer instead).
fn limit_body(req: &mut Request) -> poem::Result<()> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(PayloadTooLarge(MAX_BODY_BYTES).into());
    }
    let body = req.take_body();
    if body.is_empty() {
        req.set_body(body);
    } else {
        let body = http_body_util::combinators::BoxBody::from(body);
        let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
        let body = http_body_util::BodyExt::map_err(limited, |e| {
            if e.is::<http_body_util::LengthLimitError>() {
                std::io::Error::other(PayloadTooLarge(MAX_BODY_BYTES))
            } else {
                // The body's own `io::Error` (a timeout, a reset), boxed by `Limited`.
                match e.downcast::<std::io::Error>() {
                    Ok(io) => *io,
                    Err(other) => std::io::Error::other(other),
                }
            }
        });
        req.set_body(poem::Body::from(http_body_util::combinators::BoxBody::new(
            body,
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_labelled_with_its_route_template() {
        let mut seen = 0;
        for api in Apis::meta() {
            for path in api.paths {
                for op in path.operations {
                    let id = op
                        .operation_id
                        .expect("every operation has an operation id");
                    let label = route_label(Some(&OperationId(id)), "/raw/path");
                    assert_eq!(label, path.path, "{id}");
                    assert!(!label.contains(':'), "{id}: {label}");
                    seen += 1;
                }
            }
        }
        assert!(seen >= 16, "{seen}");
        assert_eq!(
            route_label(Some(&OperationId("getAccount")), "/v1/accounts/acc_x"),
            "/v1/accounts/{id}"
        );
    }

    #[test]
    fn requests_outside_the_api_get_a_fixed_label() {
        for (path, label) in [
            ("/openapi.json", "/openapi.json"),
            ("/metrics", "/metrics"),
            ("/docs", "/docs"),
            ("/docs/swagger-ui.css", "/docs"),
            (
                "/v1/accounts/acc_abcdefghijklmnopqrst/nope",
                UNMATCHED_ROUTE,
            ),
            ("/wp-login.php", UNMATCHED_ROUTE),
        ] {
            assert_eq!(route_label(None, path), label, "{path}");
        }
    }
}
