//! Response hardening: answers that may carry tokens, codes or states are never cached, never
//! leak through `Referer`, are never sniffed as another type; the callback's page runs under
//! a strict Content-Security-Policy.

use crate::support;

use reqwest::Response;
use reqwest::redirect::Policy;
use support::TestApp;

fn header<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The headers every answer carries.
fn assert_hardened(resp: &Response, what: &str) {
    assert_eq!(header(resp, "cache-control"), Some("no-store"), "{what}");
    assert_eq!(
        header(resp, "referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
    assert_eq!(
        header(resp, "x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
}

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> Response {
    let client = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let mut req = client.get(app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn every_kind_of_answer_is_hardened() {
    let app = support::spawn_app().await;
    let token = app.token("tenant-a");
    let cases: Vec<(&str, Option<&str>, u16)> = vec![
        ("/v1/oauth-apps", Some(&token), 200),
        ("/v1/accounts", Some(&token), 200),
        ("/v1/oauth-apps", None, 401),
        (
            "/v1/accounts/acc_aaaaaaaaaaaaaaaaaaaa/access-token",
            Some(&token),
            404,
        ),
        ("/v1/nothing-here", None, 404),
        ("/healthz", None, 200),
        ("/openapi.json", None, 200),
        ("/", None, 303),
    ];
    for (path, auth, status) in cases {
        let resp = get(&app, path, auth).await;
        assert_eq!(resp.status().as_u16(), status, "{path}");
        assert_hardened(&resp, path);
        assert!(
            header(&resp, "content-security-policy").is_none(),
            "only the callback page has the strict policy: {path}"
        );
    }
}

#[tokio::test]
async fn the_callback_page_runs_under_a_strict_content_security_policy() {
    let app = support::spawn_app().await;
    // A refused callback (no state) answers the HTML page.
    let resp = get(&app, "/v1/oauth/x/callback?code=abc", None).await;
    assert_eq!(resp.status(), 400);
    assert_hardened(&resp, "callback page");
    let csp = header(&resp, "content-security-policy").expect("a CSP on the callback page");
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("script-src"), "no script may run: {csp}");
    assert!(
        header(&resp, "content-type")
            .unwrap()
            .starts_with("text/html")
    );
}
