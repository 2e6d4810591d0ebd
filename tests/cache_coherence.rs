//! Reads are served from a cache; a write by another process (the CLI) must show up at once.

mod support;

use support::{app_body, dravo_cmd, spawn_app};

fn cli_create(dir: &std::path::Path, name: &str) -> String {
    let out = dravo_cmd(dir)
        .args([
            "oauth-apps",
            "create",
            "--owner",
            "alice",
            "--provider",
            "x",
            "--name",
            name,
            "--client-id",
            "cid",
            "--client-secret-env",
            "SECRET",
            "--json",
        ])
        .env("SECRET", "s3cret")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let app: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    app["id"].as_str().unwrap().to_owned()
}

async fn listed_ids(app: &support::TestApp) -> Vec<String> {
    let list: Vec<serde_json::Value> = app
        .get_as("alice", "/v1/oauth-apps")
        .await
        .json()
        .await
        .unwrap();
    list.iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn cli_writes_show_up_in_cached_reads_immediately() {
    let app = spawn_app().await;
    let first: serde_json::Value = app
        .create_app("alice", &app_body("x", "one"))
        .await
        .json()
        .await
        .unwrap();
    let first = first["id"].as_str().unwrap().to_owned();
    // Fill the caches: the list, the list filtered by provider, and the single app.
    assert_eq!(listed_ids(&app).await, vec![first.clone()]);
    assert_eq!(
        app.get_as("alice", "/v1/oauth-apps?provider=x")
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get_as("alice", &format!("/v1/oauth-apps/{first}"))
            .await
            .status(),
        200
    );

    let dir = app.dir.path().to_path_buf();
    let second = tokio::task::spawn_blocking(move || cli_create(&dir, "two"))
        .await
        .unwrap();
    assert_eq!(listed_ids(&app).await, vec![first.clone(), second.clone()]);
    let filtered: Vec<serde_json::Value> = app
        .get_as("alice", "/v1/oauth-apps?provider=x")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(filtered.len(), 2);

    let dir = app.dir.path().to_path_buf();
    let id = first.clone();
    let status = tokio::task::spawn_blocking(move || {
        dravo_cmd(&dir)
            .args(["oauth-apps", "delete", "--owner", "alice", &id])
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(status.success());
    assert_eq!(listed_ids(&app).await, vec![second]);
    assert_eq!(
        app.get_as("alice", &format!("/v1/oauth-apps/{first}"))
            .await
            .status(),
        404
    );
    let start = app
        .get_as("alice", &format!("/v1/oauth/x/start?oauth_app_id={first}"))
        .await;
    assert_eq!(start.status(), 404);
    app.stop().await;
}
