use crate::support;

use support::spawn_app;

#[tokio::test]
async fn healthz_answers_ok_after_the_database_answers() {
    let app = spawn_app().await;
    let resp = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok"}));
    app.stop().await;
}

#[tokio::test]
async fn the_root_sends_a_browser_to_the_api_docs() {
    let app = spawn_app().await;
    let resp = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"], "/docs");
    // Only GET: anything else at the root is still an unknown route.
    let resp = app.http.post(app.url("/")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    app.stop().await;
}
