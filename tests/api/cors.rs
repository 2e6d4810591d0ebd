//! CORS for a browser dashboard on another origin (`dashboard.cors_origins`): preflights
//! from a listed origin are answered before routing, rate limits and auth; every answer to a
//! listed origin, errors included, lets the browser read it; other origins, and a server with
//! no origins listed, get no CORS header at all.

use crate::support;

use reqwest::{Method, Response};
use support::{TestApp, app_body, assert_error, spawn_app, spawn_app_with};

const DASHBOARD: &str = "https://dash.example.com";
const LOCAL_DASHBOARD: &str = "http://localhost:3000";
const OTHER: &str = "https://evil.example.net";

async fn with_origins() -> TestApp {
    spawn_app_with(|config| {
        config.dashboard.cors_origins = vec![DASHBOARD.into(), LOCAL_DASHBOARD.into()];
        // One start per second: a preflight that reached the limiter would soon be refused.
        config.limits.start_per_second = 1;
    })
    .await
}

async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> Response {
    app.http
        .request(Method::OPTIONS, app.url(path))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap()
}

fn header<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).map(|v| v.to_str().unwrap())
}

/// The names of the response's `Access-Control-*` headers.
fn cors_headers(resp: &Response) -> Vec<String> {
    resp.headers()
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

#[tokio::test]
async fn a_preflight_from_a_listed_origin_gets_the_allowed_methods_and_headers() {
    let app = with_origins().await;
    for origin in [DASHBOARD, LOCAL_DASHBOARD] {
        for (path, method) in [
            ("/v1/accounts", "GET"),
            ("/v1/oauth-apps", "POST"),
            ("/v1/oauth-apps/oa_abcdefghijklmnopqrst", "PATCH"),
            ("/v1/accounts/acc_abcdefghijklmnopqrst", "DELETE"),
        ] {
            let resp = preflight(&app, path, origin, method).await;
            assert_eq!(resp.status(), 204, "{origin} {method} {path}");
            assert_eq!(header(&resp, "access-control-allow-origin"), Some(origin));
            assert_eq!(
                header(&resp, "access-control-allow-methods"),
                Some("GET, POST, PATCH, DELETE")
            );
            assert_eq!(
                header(&resp, "access-control-allow-headers"),
                Some("Authorization, Content-Type, X-Request-Id")
            );
            assert_eq!(header(&resp, "access-control-max-age"), Some("3600"));
            assert_eq!(
                header(&resp, "vary"),
                Some("Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
            );
            assert_eq!(header(&resp, "access-control-allow-credentials"), None);
            assert!(header(&resp, "x-request-id").is_some());
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn preflights_meet_neither_auth_nor_the_rate_limiter_nor_the_405_handler() {
    let app = with_origins().await;
    // Far past `start`'s burst of 5: every one is still answered, none needs a token.
    for _ in 0..20 {
        let resp = preflight(&app, "/v1/oauth/x/start", DASHBOARD, "GET").await;
        assert_eq!(resp.status(), 204);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_preflight_from_another_origin_gets_no_cors_headers() {
    let app = with_origins().await;
    for origin in [OTHER, "https://dash.example.com.evil.net", "null"] {
        let resp = preflight(&app, "/v1/accounts", origin, "GET").await;
        assert!(cors_headers(&resp).is_empty(), "{origin}: {resp:?}");
        // The answer any OPTIONS request gets: the API has no such method.
        assert_error(resp, 405, "method_not_allowed").await;
    }
    app.stop().await;
}

#[tokio::test]
async fn answers_to_a_listed_origin_errors_included_let_the_dashboard_read_them() {
    let app = with_origins().await;
    let token = app.token("tenant-cors");
    let ok = app
        .http
        .get(app.url("/v1/oauth-apps"))
        .header("origin", DASHBOARD)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(header(&ok, "access-control-allow-origin"), Some(DASHBOARD));
    assert_eq!(
        header(&ok, "access-control-expose-headers"),
        Some("X-Request-Id, Location, Retry-After, WWW-Authenticate")
    );
    assert_eq!(header(&ok, "vary"), Some("Origin"));

    let created = app
        .http
        .post(app.url("/v1/oauth-apps"))
        .header("origin", LOCAL_DASHBOARD)
        .bearer_auth(&token)
        .json(&app_body("x", "From the dashboard"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(
        header(&created, "access-control-allow-origin"),
        Some(LOCAL_DASHBOARD)
    );

    // Errors: no token, an unknown route, a wrong method, an over-limit body.
    let no_token = app
        .http
        .get(app.url("/v1/accounts"))
        .header("origin", DASHBOARD)
        .send()
        .await
        .unwrap();
    let unknown = app
        .http
        .get(app.url("/v1/nothing"))
        .header("origin", DASHBOARD)
        .send()
        .await
        .unwrap();
    let wrong_method = app
        .http
        .put(app.url("/v1/oauth-apps"))
        .header("origin", DASHBOARD)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let too_large = app
        .http
        .post(app.url("/v1/oauth-apps"))
        .header("origin", DASHBOARD)
        .header("content-type", "application/json")
        .bearer_auth(&token)
        .body(vec![b' '; 70 * 1024])
        .send()
        .await
        .unwrap();
    for (resp, status, code) in [
        (no_token, 401, "unauthorized"),
        (unknown, 404, "not_found"),
        (wrong_method, 405, "method_not_allowed"),
        (too_large, 413, "payload_too_large"),
    ] {
        assert_eq!(
            header(&resp, "access-control-allow-origin"),
            Some(DASHBOARD),
            "{code}"
        );
        assert_error(resp, status, code).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn requests_from_another_origin_are_answered_without_cors_headers() {
    let app = with_origins().await;
    let resp = app
        .http
        .get(app.url("/v1/oauth-apps"))
        .header("origin", OTHER)
        .bearer_auth(app.token("tenant-cors"))
        .send()
        .await
        .unwrap();
    // Not refused: CORS is the browser's check, and this browser will not let the page read it.
    assert_eq!(resp.status(), 200);
    assert!(cors_headers(&resp).is_empty(), "{resp:?}");
    assert_eq!(header(&resp, "vary"), Some("Origin"));
    app.stop().await;
}

#[tokio::test]
async fn without_cors_origins_no_answer_has_a_cors_header() {
    let app = spawn_app().await;
    let resp = preflight(&app, "/v1/accounts", DASHBOARD, "GET").await;
    assert!(cors_headers(&resp).is_empty(), "{resp:?}");
    assert_error(resp, 405, "method_not_allowed").await;
    let resp = app
        .http
        .get(app.url("/v1/oauth-apps"))
        .header("origin", DASHBOARD)
        .bearer_auth(app.token("tenant-cors"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(cors_headers(&resp).is_empty(), "{resp:?}");
    assert_eq!(header(&resp, "vary"), None);
    app.stop().await;
}

#[test]
fn cors_origins_that_are_not_exact_origins_stop_dravo_at_start() {
    use support::cmd::dravo_with;
    let dir = tempfile::tempdir().unwrap();
    for (value, says) in [
        (
            "*",
            "dashboard.cors_origins does not accept `*`: list each dashboard origin exactly",
        ),
        (
            "https://dash.example.com/",
            "dashboard.cors_origins entry `https://dash.example.com/` is not an origin as browsers send it: write `https://dash.example.com`",
        ),
        (
            "https://dash.example.com/app",
            "write `https://dash.example.com` (scheme://host[:port], without a path or trailing slash)",
        ),
        (
            "https://Dash.example.com:443",
            "write `https://dash.example.com`",
        ),
        (
            "dash.example.com",
            "dashboard.cors_origins entry `dash.example.com` is not an http(s) origin such as https://dashboard.example.com",
        ),
    ] {
        let env = [
            ("DRAVO_DASHBOARD_CORS_ORIGINS", value),
            ("DRAVO_SERVER_BIND", "127.0.0.1:0"),
        ];
        dravo_with(dir.path(), &env, &["serve"], "").assert_config_error(&[says]);
    }
}
