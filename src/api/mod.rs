//! The HTTP face: poem-openapi endpoints (one file per tag), dashboard auth, the error
//! mapping, and the middleware every request passes (body limit, JSON errors, request log).

pub mod accounts;
pub mod allow;
pub mod client_ip;
pub mod error;
pub mod health;
pub mod limits;
pub mod oauth;
pub mod oauth_apps;
pub mod payload;
pub mod spec;
pub mod types;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route};
use poem_openapi::auth::Bearer;
use poem_openapi::{OpenApiService, SecurityScheme, Tags};

use crate::api::client_ip::{ClientIp, client_ip};
use crate::api::error::{CoreError, PayloadTooLarge, render_poem_error};
use crate::api::limits::RateLimits;
use crate::domain::Owner;
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
    /// Liveness.
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
            oauth_apps::OAuthAppsApi,
            oauth::OAuthApi,
            accounts::AccountsApi,
            health::HealthApi,
        ),
        "Dravo",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Self-hosted OAuth connections for X, LinkedIn, Facebook, Instagram and TikTok. \
         OAuth apps hold your BYOK credentials per provider.",
    )
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

/// Builds the whole HTTP application around a core, with the rate limiters it enforces
/// (`RateLimits::new(&config.limits)`; the caller prunes them).
pub fn build_app(dravo: Dravo, limits: RateLimits) -> impl Endpoint<Output = Response> {
    let service = api_service();
    let served = spec::Spec::new(&service, Some(dravo.public_url()));
    let docs = served.swagger_ui(&service);
    let spec = served.endpoint();
    Route::new()
        .nest("/", service)
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .around(move |next, req| edge(next, req, dravo.clone(), limits.clone()))
}

/// What every request passes through, as one layer (each poem layer costs a boxed future per
/// request): the core, the rate limiters and the client's IP address in the request's data,
/// the body limit, every error as the JSON error body, the response headers, and one log line.
async fn edge<E: Endpoint>(
    next: E,
    mut req: Request,
    dravo: Dravo,
    limits: RateLimits,
) -> poem::Result<Response> {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    // `net` serves TCP only, so the peer is always a socket address; the fallback is for an
    // endpoint driven some other way.
    let peer = req
        .remote_addr()
        .as_socket_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    let client = client_ip(peer, req.headers(), &dravo.config().server.trusted_proxies);
    req.extensions_mut().insert(ClientIp(client));
    req.extensions_mut().insert(limits);
    req.extensions_mut().insert(dravo);
    let mut resp = match limit_body(&mut req).await {
        // A browser pointed at the server lands on the API docs. (Here rather than as a
        // route: the API service is nested at `/` and owns that path.)
        Ok(()) if path == "/" && method == Method::GET => {
            poem::web::Redirect::see_other("/docs").into_response()
        }
        Err(e) => render_poem_error(e),
        Ok(()) => match next.call(req).await {
            Ok(resp) => resp.into_response(),
            Err(e) => render_poem_error(e),
        },
    };
    // Answers may carry codes, states or tokens: keep them out of caches and out of the
    // Referer of whatever page the browser opens next.
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(methods) = allow::allowed_methods(&path)
    {
        resp.headers_mut().insert(header::ALLOW, methods);
    }
    let headers = resp.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
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
        path = %path,
        client_ip = %client,
        status = resp.status().as_u16(),
        latency_ms = %format_args!("{:.3}", start.elapsed().as_secs_f64() * 1000.0),
        "request"
    );
    Ok(resp)
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

/// Refuses bodies over `MAX_BODY_BYTES` with 413, whether or not they declare their length.
async fn limit_body(req: &mut Request) -> poem::Result<()> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(PayloadTooLarge(MAX_BODY_BYTES).into());
    }
    let body = req
        .take_body()
        .into_bytes_limit(MAX_BODY_BYTES)
        .await
        .map_err(|e| match e {
            poem::error::ReadBodyError::PayloadTooLarge => {
                poem::Error::from(PayloadTooLarge(MAX_BODY_BYTES))
            }
            other => other.into(),
        })?;
    req.set_body(body);
    Ok(())
}
