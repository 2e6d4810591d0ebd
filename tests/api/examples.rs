//! Runs the compiled `examples/oauth_apps.rs` against a live in-process server, the way a
//! dashboard developer would run it against `dravo serve`.

use crate::support;

use std::path::PathBuf;
use std::process::{Command, Output};

use support::{TestApp, spawn_app};

/// `target/<profile>/examples/oauth_apps`, next to this test's `target/<profile>/deps/`.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary lives in target/<profile>/deps");
    let path = profile_dir
        .join("examples")
        .join(format!("oauth_apps{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "the example binary {} is missing: run the whole `cargo test` (which builds the examples) \
         or `cargo build --example oauth_apps` first",
        path.display()
    );
    path
}

/// The example with a clean environment: only what the test sets.
fn example_cmd() -> Command {
    let mut cmd = Command::new(example_binary());
    for (key, _) in std::env::vars() {
        if key.starts_with("DRAVO_")
            || key.starts_with("EXAMPLE_")
            || key.to_ascii_lowercase().ends_with("_proxy")
        {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs `cmd` on the blocking pool so the in-process server keeps answering meanwhile.
async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("run the example"))
        .await
        .unwrap()
}

fn run_against(app: &TestApp, token: &str, name: &str) -> Command {
    let mut cmd = example_cmd();
    cmd.env("DRAVO_URL", &app.base_url)
        .env("DRAVO_TOKEN", token)
        .env("EXAMPLE_PROVIDER", "x")
        .env("EXAMPLE_APP_NAME", name)
        .env("EXAMPLE_CLIENT_ID", "example-client-id")
        .env("EXAMPLE_CLIENT_SECRET", "example-secret-not-shown");
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn the_example_creates_an_app_and_prints_its_redirect_uri() {
    let app = spawn_app().await;
    let token = app.token("alice");

    let out = output(run_against(&app, &token, "Example X App")).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let redirect_uri = format!("{}/v1/oauth/x/callback", app.base_url);
    assert!(stdout.contains(&redirect_uri), "stdout:\n{stdout}");
    assert!(stdout.contains("Created oa_"), "stdout:\n{stdout}");
    assert!(
        !stdout.contains("example-secret-not-shown")
            && !stderr.contains("example-secret-not-shown"),
        "the secret leaked:\n{stdout}\n{stderr}"
    );

    let resp = app.get_as("alice", "/v1/oauth-apps").await;
    assert_eq!(resp.status().as_u16(), 200);
    let apps: Vec<serde_json::Value> = resp.json().await.unwrap();
    assert_eq!(apps.len(), 1, "{apps:?}");
    assert_eq!(apps[0]["name"], "Example X App");
    assert_eq!(apps[0]["provider"], "x");
    assert_eq!(apps[0]["client_id"], "example-client-id");
    assert_eq!(apps[0]["redirect_uri"], redirect_uri.as_str());

    // Another tenant sees none of it.
    let resp = app.get_as("bob", "/v1/oauth-apps").await;
    let apps: Vec<serde_json::Value> = resp.json().await.unwrap();
    assert!(apps.is_empty(), "{apps:?}");

    app.stop().await;
}

#[tokio::test]
async fn running_the_example_twice_keeps_one_app_and_exits_zero() {
    let app = spawn_app().await;
    let token = app.token("alice");

    let first = output(run_against(&app, &token, "Twice")).await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let second = output(run_against(&app, &token, "Twice")).await;
    let stdout = text(&second.stdout);
    assert_eq!(
        second.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&second.stderr)
    );
    assert!(stdout.contains("already exists"), "stdout:\n{stdout}");
    assert!(
        stdout.contains(&format!("{}/v1/oauth/x/callback", app.base_url)),
        "stdout:\n{stdout}"
    );

    let resp = app.get_as("alice", "/v1/oauth-apps").await;
    let apps: Vec<serde_json::Value> = resp.json().await.unwrap();
    assert_eq!(apps.len(), 1, "{apps:?}");

    app.stop().await;
}

#[tokio::test]
async fn without_a_token_the_example_exits_2_with_the_hint() {
    let app = spawn_app().await;
    let mut cmd = example_cmd();
    cmd.env("DRAVO_URL", &app.base_url);

    let out = output(cmd).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("DRAVO_TOKEN"), "stderr:\n{stderr}");
    assert!(stderr.contains("token issue --sub"), "stderr:\n{stderr}");

    app.stop().await;
}

#[tokio::test]
async fn an_api_error_is_printed_from_the_json_body_and_exits_nonzero() {
    let app = spawn_app().await;

    let out = output(run_against(&app, "not-a-jwt", "Example X App")).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("(unauthorized)"), "stderr:\n{stderr}");

    // An invalid provider is the API's 400, reported the same way.
    let token = app.token("alice");
    let mut cmd = run_against(&app, &token, "Example X App");
    cmd.env("EXAMPLE_PROVIDER", "myspace");
    let out = output(cmd).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("(invalid_request)"), "stderr:\n{stderr}");

    app.stop().await;
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = example_cmd();
    cmd.env("DRAVO_URL", format!("http://127.0.0.1:{port}"))
        .env("DRAVO_TOKEN", "whatever");
    let out = output(cmd).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("cannot reach Dravo"), "stderr:\n{stderr}");
}
