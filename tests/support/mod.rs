//! Shared test helpers: start the real server in-process on 127.0.0.1:0 with a temp
//! directory, mint tokens, and run the real `dravo` binary against the same files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use dravo::{Config, Dravo};
use tempfile::TempDir;

/// A server running in this test process.
pub struct TestApp {
    pub base_url: String,
    pub dir: TempDir,
    pub dravo: Dravo,
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// The configuration every test starts from: database and key file in `dir`.
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config::default();
    config.database.path = dir.join("dravo.db");
    config.server.bind = "127.0.0.1:0".into();
    config
}

/// Starts a server with the default test configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a server after `tweak` adjusted the configuration.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(dir.path());
    tweak(&mut config);
    spawn_app_in(dir, config).await
}

/// Starts a server on an existing directory and configuration.
pub async fn spawn_app_in(dir: TempDir, config: Config) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    let dravo = Dravo::open(config, Some(addr)).expect("open dravo");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(dravo::run(listener, dravo.clone(), async move {
        let _ = rx.await;
    }));
    TestApp {
        base_url: format!("http://{addr}"),
        dir,
        dravo,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    /// A valid dashboard token for `tenant`, signed the way `dravo token issue` signs.
    pub fn token(&self, tenant: &str) -> String {
        self.dravo.issue_token(tenant, 3600).unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("dravo.db")
    }

    /// `POST /v1/oauth-apps` as `tenant` with a JSON body.
    pub async fn create_app(&self, tenant: &str, body: &serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.url("/v1/oauth-apps"))
            .bearer_auth(self.token(tenant))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `GET path` as `tenant`.
    pub async fn get_as(&self, tenant: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(self.token(tenant))
            .send()
            .await
            .unwrap()
    }

    /// Stops the server and waits until it has finished in-flight requests.
    pub async fn stop(mut self) -> TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        dir
    }
}

/// A JSON body for creating an app named `name` for provider `provider`.
pub fn app_body(provider: &str, name: &str) -> serde_json::Value {
    serde_json::json!({
        "provider": provider,
        "name": name,
        "client_id": "client-id-123",
        "client_secret": "s3cret-value-never-shown",
    })
}

/// Asserts the JSON error body shape and returns the message.
pub async fn assert_error(resp: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(resp.status().as_u16(), status, "status");
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    let body: serde_json::Value = resp.json().await.expect("JSON error body");
    assert_eq!(body["error"]["code"], code, "body {body}");
    let message = body["error"]["message"]
        .as_str()
        .expect("message")
        .to_owned();
    assert!(!message.is_empty());
    message
}

/// The real `dravo` binary with a clean environment, run in `dir`, configured by `DRAVO_*`
/// variables to use `dir`'s database.
pub fn dravo_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dravo"));
    for (key, _) in std::env::vars() {
        if key.starts_with("DRAVO_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir)
        .env("DRAVO_DATABASE_PATH", dir.join("dravo.db"));
    cmd
}
