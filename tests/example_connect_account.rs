//! Runs `examples/connect_account.rs` against a live server and a fake X: the example prints
//! the consent URL, the test plays the browser, and the example must then print the account.

#[path = "support/fake_provider.rs"]
mod fake_provider;
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use dravo::config::ProviderConfig;
use fake_provider::{FakeProvider, Kind};
use support::{app_body, spawn_app_with};
use url::Url;

/// The example binary cargo built next to this test (target/debug/examples/).
fn example_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds examples before integration tests",
        path.display()
    );
    path
}

#[tokio::test]
async fn connect_account_example_prints_the_url_and_then_the_connected_account() {
    let fake = FakeProvider::start(Kind::X, "x-client", "x-secret").await;
    let (authorize, token_url, api_base) = fake.config_urls();
    let app = spawn_app_with(|c| {
        c.providers.set(
            "x".parse().unwrap(),
            ProviderConfig {
                authorize_url: Some(Url::parse(&authorize).unwrap()),
                token_url: Some(Url::parse(&token_url).unwrap()),
                api_base: Some(Url::parse(&api_base).unwrap()),
                ..Default::default()
            },
        );
    })
    .await;
    let mut body = app_body("x", "Example app");
    body["client_id"] = "x-client".into();
    body["client_secret"] = "x-secret".into();
    let created: serde_json::Value = app.create_app("alice", &body).await.json().await.unwrap();
    let app_id = created["id"].as_str().unwrap().to_owned();

    let mut child = Command::new(example_binary("connect_account"))
        .env("DRAVO_URL", &app.base_url)
        .env("DRAVO_TOKEN", app.token("alice"))
        .env("PROVIDER", "x")
        .env("OAUTH_APP_ID", &app_id)
        .env("WAIT_SECONDS", "60")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Read the example's output on a thread; hand each line back.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });

    let mut authorize_url = None;
    while let Some(line) = rx.recv().await {
        if line.starts_with(&fake.base_url) {
            authorize_url = Some(line);
            break;
        }
    }
    let authorize_url = authorize_url.expect("the example printed the authorize URL");

    // The browser: consent at the provider, then back to Dravo's callback.
    let consent = app.http.get(&authorize_url).send().await.unwrap();
    assert_eq!(consent.status().as_u16(), 302);
    let callback = consent.headers()["location"].to_str().unwrap().to_owned();
    let done = app.http.get(&callback).send().await.unwrap();
    assert!(done.status().is_success() || done.status().is_redirection());

    let rest: Vec<String> = {
        let mut lines = Vec::new();
        while let Some(line) = rx.recv().await {
            lines.push(line);
        }
        lines
    };
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "example failed; output: {rest:?}");
    let text = rest.join("\n");
    assert!(text.contains("Connected account:"), "{text}");
    assert!(
        text.contains("\"provider_account_id\": \"1234567890\""),
        "{text}"
    );
    assert!(text.contains(&app_id), "{text}");
    app.stop().await;
}

#[test]
fn connect_account_example_without_a_token_explains_how_to_get_one() {
    let out = Command::new(example_binary("connect_account"))
        .env_remove("DRAVO_TOKEN")
        .env("DRAVO_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("token issue"), "{stderr}");
}
