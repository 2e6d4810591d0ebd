//! CONTRACT §3: every non-2xx answer, including unknown routes, 405s and internal failures, is
//! `{"error": {"code", "message"}}`, and a 500 leaks nothing.

use crate::support;

use reqwest::Method;
use serde_json::Value;
use support::{Db, app_body, app_rows, assert_error, spawn_app};

#[tokio::test]
async fn unknown_route_is_404_json_not_found() {
    let app = spawn_app().await;
    let resp = app
        .http
        .get(app.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_error(resp, 404, "not_found").await;
    app.stop().await;
}

#[tokio::test]
async fn unknown_v1_route_is_404_json_even_with_a_token() {
    let app = spawn_app().await;
    let resp = app.get_as("alice", "/v1/nothing-here").await;
    assert_error(resp, 404, "not_found").await;
    app.stop().await;
}

#[tokio::test]
async fn unknown_route_without_token_is_404_not_401() {
    let app = spawn_app().await;
    let resp = app
        .http
        .post(app.url("/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_error(resp, 404, "not_found").await;
    app.stop().await;
}

#[tokio::test]
async fn put_on_the_collection_is_405_json() {
    let app = spawn_app().await;
    app.create_ok("alice", &app_body("x", "Stays")).await;
    let before = app_rows(&app.db_path());
    let resp = app
        .http
        .put(app.url("/v1/oauth-apps"))
        .bearer_auth(app.token("alice"))
        .json(&app_body("x", "Via PUT"))
        .send()
        .await
        .unwrap();
    let message = assert_error(resp, 405, "method_not_allowed").await;
    assert!(message.contains("method"), "{message}");
    assert_eq!(app_rows(&app.db_path()), before);
    app.stop().await;
}

#[tokio::test]
async fn put_on_an_app_is_405_json() {
    let app = spawn_app().await;
    let created = app.create_ok("alice", &app_body("x", "Unpatched")).await;
    let before = app_rows(&app.db_path());
    let resp = app
        .http
        .put(app.url(&format!(
            "/v1/oauth-apps/{}",
            created["id"].as_str().unwrap()
        )))
        .bearer_auth(app.token("alice"))
        .json(&serde_json::json!({"name": "Patched"}))
        .send()
        .await
        .unwrap();
    assert_error(resp, 405, "method_not_allowed").await;
    assert_eq!(app_rows(&app.db_path()), before);
    app.stop().await;
}

#[tokio::test]
async fn delete_on_the_collection_is_405_json_and_deletes_nothing() {
    let app = spawn_app().await;
    app.create_ok("alice", &app_body("x", "Stays")).await;
    let before = app_rows(&app.db_path());
    let resp = app.send_as("alice", Method::DELETE, "/v1/oauth-apps").await;
    assert_error(resp, 405, "method_not_allowed").await;
    assert_eq!(app_rows(&app.db_path()), before);
    app.stop().await;
}

#[tokio::test]
async fn post_on_healthz_is_405_json() {
    let app = spawn_app().await;
    let resp = app.http.post(app.url("/healthz")).send().await.unwrap();
    assert_error(resp, 405, "method_not_allowed").await;
    app.stop().await;
}

/// RFC 9110 and CONTRACT §3: a 405 names what the route does take, for every route of the
/// spec and every method it does not declare (TRACE included, which schemathesis tries).
#[tokio::test]
async fn every_405_carries_allow_with_the_routes_own_methods() {
    let app = spawn_app().await;
    let spec: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut checked = 0;
    for (template, operations) in spec["paths"].as_object().unwrap() {
        let path = template
            .replace("{provider}", "x")
            .replace("{id}", "oa_aaaaaaaaaaaaaaaaaaaa");
        let mut declared: Vec<String> = operations
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_uppercase())
            .collect();
        if declared.iter().any(|m| m == "GET") {
            declared.push("HEAD".into());
        }
        declared.sort();
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "TRACE"] {
            if declared.iter().any(|m| m == method) {
                continue;
            }
            let resp = app
                .send_as(
                    "alice",
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    &path,
                )
                .await;
            let allow = resp
                .headers()
                .get("allow")
                .unwrap_or_else(|| panic!("{method} {path}: 405 without Allow"))
                .to_str()
                .unwrap()
                .to_owned();
            let mut listed: Vec<String> = allow.split(", ").map(str::to_owned).collect();
            listed.sort();
            assert_eq!(listed, declared, "{method} {path}");
            assert_error(resp, 405, "method_not_allowed").await;
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} method/route pairs checked");
    app.stop().await;
}

#[tokio::test]
async fn database_failure_is_500_internal_without_detail() {
    let app = spawn_app().await;
    app.create_ok("alice", &app_body("x", "Doomed")).await;
    Db::open(&app.db_path()).batch("DROP TABLE oauth_apps");

    let resp = app.get_as("alice", "/v1/oauth-apps").await;
    assert_eq!(resp.status().as_u16(), 500);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/json"), "{ct}");
    let raw = resp.text().await.unwrap();
    let body: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"error": {"code": "internal", "message": "internal server error"}})
    );
    let lower = raw.to_lowercase();
    for leak in ["table", "sqlite", "oauth_apps", "database", "no such"] {
        assert!(!lower.contains(leak), "500 body leaks {leak:?}: {raw}");
    }
    app.stop().await;
}

#[tokio::test]
async fn database_failure_on_create_is_500_internal_without_detail() {
    let app = spawn_app().await;
    Db::open(&app.db_path()).batch("DROP TABLE oauth_apps");
    let resp = app.create_app("alice", &app_body("x", "Nowhere")).await;
    assert_eq!(resp.status().as_u16(), 500);
    let raw = resp.text().await.unwrap();
    let body: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(body["error"]["code"], "internal");
    assert_eq!(body["error"]["message"], "internal server error");
    assert!(!raw.contains("s3cret-value-never-shown"), "{raw}");
    assert!(!raw.to_lowercase().contains("table"), "{raw}");
    app.stop().await;
}
