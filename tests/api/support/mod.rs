//! Shared test helpers: start the real server in-process on 127.0.0.1:0 with a temp
//! directory, mint tokens, and run the real `dravo` binary against the same files.

pub mod backend;
pub mod cmd;
pub mod fake_provider;
pub mod fake_x_server;
pub mod process;

#[allow(unused_imports)]
pub use backend::{Db, Val, is_postgres, sqlite_only};

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
    shutdown: dravo::CancellationToken,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// The configuration every test starts from: database and key file in `dir` (on
/// PostgreSQL, the database is `dir`'s schema; see `backend`).
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config::default();
    config.database.path = dir.join("dravo.db");
    config.database.url = backend::database_url_for(dir).map(Into::into);
    config.server.bind = "127.0.0.1:0".into();
    config
}

/// Starts a server with the default test configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A temp directory and the test configuration for it, after `tweak` adjusted it.
fn tweaked_config(tweak: impl FnOnce(&mut Config)) -> (TempDir, Config) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(dir.path());
    tweak(&mut config);
    (dir, config)
}

/// Starts a server after `tweak` adjusted the configuration.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let (dir, config) = tweaked_config(tweak);
    spawn_app_in(dir, config).await
}

/// Starts a server after `tweak` adjusted the configuration, on a clock the test controls.
pub async fn spawn_app_with_clock(
    tweak: impl FnOnce(&mut Config),
    clock: std::sync::Arc<dyn dravo::clock::Clock>,
) -> TestApp {
    let (dir, config) = tweaked_config(tweak);
    start_app(dir, config, clock, None).await
}

/// Starts a server on an existing directory and configuration.
pub async fn spawn_app_in(dir: TempDir, config: Config) -> TestApp {
    start_app(dir, config, system_clock(), None).await
}

/// Starts a server on an existing directory and configuration, on a clock the test controls
/// (a restart of a stopped server, later in time).
pub async fn spawn_app_in_with_clock(
    dir: TempDir,
    config: Config,
    clock: std::sync::Arc<dyn dravo::clock::Clock>,
) -> TestApp {
    start_app(dir, config, clock, None).await
}

/// Starts a server with these connection limits (`dravo::run_with`) after `tweak` adjusted
/// the configuration.
pub async fn spawn_app_limited(
    limits: dravo::ConnectionLimits,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    let (dir, config) = tweaked_config(tweak);
    start_app(dir, config, system_clock(), Some(limits)).await
}

fn system_clock() -> std::sync::Arc<dyn dravo::clock::Clock> {
    std::sync::Arc::new(dravo::clock::SystemClock)
}

/// Serves through `dravo::run`, or `dravo::run_with` when `limits` are given.
async fn start_app(
    dir: TempDir,
    config: Config,
    clock: std::sync::Arc<dyn dravo::clock::Clock>,
    limits: Option<dravo::ConnectionLimits>,
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    let dravo = Dravo::open_with_clock(config, Some(addr), clock)
        .await
        .expect("open dravo");
    let shutdown = dravo::CancellationToken::new();
    let server = match limits {
        None => tokio::spawn(dravo::run(listener, dravo.clone(), shutdown.clone())),
        Some(limits) => tokio::spawn(dravo::run_with(
            listener,
            dravo.clone(),
            shutdown.clone(),
            limits,
        )),
    };
    TestApp {
        base_url: format!("http://{addr}"),
        dir,
        dravo,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        shutdown,
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
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
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
/// variables to use `dir`'s database (on PostgreSQL, `dir`'s schema).
pub fn dravo_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dravo"));
    without_dravo_env(&mut cmd);
    cmd.current_dir(dir)
        .env("DRAVO_DATABASE_PATH", dir.join("dravo.db"));
    if let Some(url) = backend::database_url_for(dir) {
        cmd.env("DRAVO_DATABASE_URL", url);
    }
    cmd
}

/// `cmd` without the `DRAVO_*` variables (and `RUST_LOG`) of the environment the tests run
/// in: a user's own settings (a config file, a master key, a bind) must not reach the
/// processes a test starts. The test sets what it means to.
pub fn without_dravo_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("DRAVO_") || name == "RUST_LOG" {
            cmd.env_remove(&key);
        }
    }
}

/// Opens the test database directly (as another process would), waiting for the server's
/// writers instead of failing.
pub fn open_db(db: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(db).expect("open the test database");
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    conn
}

/// Every row of `oauth_apps` in insertion order, as text (the sealed secret as upper-case
/// hex). Compare before and after a rejected request to prove it changed nothing.
pub fn app_rows(db: &Path) -> Vec<Vec<String>> {
    let sql = if is_postgres() {
        "SELECT id, owner, provider, name, client_id, upper(encode(client_secret_sealed, 'hex')),
                scopes, CAST(created_at AS TEXT)
         FROM oauth_apps ORDER BY seq"
    } else {
        "SELECT id, owner, provider, name, client_id, hex(client_secret_sealed), scopes,
                CAST(created_at AS TEXT)
         FROM oauth_apps ORDER BY rowid"
    };
    Db::open(db)
        .query(sql, &[])
        .iter()
        .map(|row| row.iter().map(Val::text).collect())
        .collect()
}

/// What the database of `db` holds at rest, as bytes to search for secrets in the clear:
/// every file of the SQLite database (main file, WAL, shared memory); on PostgreSQL, every
/// row of each table as text and every sealed value as it is stored.
pub fn database_bytes(db: &Path) -> Vec<(String, Vec<u8>)> {
    if !is_postgres() {
        let dir = db.parent().unwrap();
        let name = db.file_name().unwrap().to_string_lossy().into_owned();
        return std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&name))
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
    }
    let db = Db::open(db);
    let mut found = Vec::new();
    for table in [
        "meta",
        "oauth_apps",
        "accounts",
        "account_events",
        "webhook_outbox",
        "pending_connections",
    ] {
        for row in db.query(&format!("SELECT CAST(t AS TEXT) FROM {table} t"), &[]) {
            found.push((table.to_owned(), row[0].text().into_bytes()));
        }
    }
    for table in ["oauth_apps", "accounts", "pending_connections"] {
        for row in db.query(&format!("SELECT * FROM {table}"), &[]) {
            for v in row {
                if let Val::Blob(bytes) = v {
                    found.push((format!("{table} (bytes)"), bytes));
                }
            }
        }
    }
    found
}

/// A port of 127.0.0.1 that nothing answers on, for as long as the returned socket lives: it
/// is bound but not listening, so connecting is refused and no other socket can take the port
/// meanwhile (a port freed right after binding could be handed to a server started beside).
pub fn unanswered_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind("127.0.0.1:0".parse().unwrap())
        .expect("bind 127.0.0.1:0");
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}

/// A random lowercase suffix, so values from one test never match another's by accident.
pub fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..16)
        .map(|_| (b'a' + rng.random_range(0..26u8)) as char)
        .collect()
}

impl TestApp {
    /// Any method on `path` as `tenant`, without a body.
    pub async fn send_as(
        &self,
        tenant: &str,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::Response {
        self.http
            .request(method, self.url(path))
            .bearer_auth(self.token(tenant))
            .send()
            .await
            .unwrap()
    }

    /// `DELETE path` as `tenant`.
    pub async fn delete_as(&self, tenant: &str, path: &str) -> reqwest::Response {
        self.send_as(tenant, reqwest::Method::DELETE, path).await
    }

    /// `POST /v1/oauth-apps` as `tenant` with a raw body and content type.
    pub async fn post_raw(
        &self,
        tenant: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.http
            .post(self.url("/v1/oauth-apps"))
            .bearer_auth(self.token(tenant))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Creates an app and returns its JSON, failing the test unless the answer is 201.
    pub async fn create_ok(&self, tenant: &str, body: &serde_json::Value) -> serde_json::Value {
        let resp = self.create_app(tenant, body).await;
        assert_eq!(resp.status().as_u16(), 201, "create {body}");
        resp.json().await.unwrap()
    }

    /// `GET /v1/oauth-apps` as `tenant`, expecting 200; returns the array.
    pub async fn list_apps(&self, tenant: &str) -> Vec<serde_json::Value> {
        let resp = self.get_as(tenant, "/v1/oauth-apps").await;
        assert_eq!(resp.status().as_u16(), 200, "list");
        resp.json().await.unwrap()
    }
}

/// Opens the database in `dir` in-process (as the CLI does) and returns the stored client
/// secret of app `id`.
pub fn stored_secret(dir: &Path, owner: &str, id: &str) -> String {
    let config = test_config(dir);
    let owner = dravo::domain::Owner::parse("owner", owner).unwrap();
    let id = dravo::domain::AppId::parse(id).unwrap();
    let creds = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let dravo = dravo::Dravo::open(config, None)
                .await
                .expect("open the database the CLI wrote");
            dravo.app_credentials(&owner, &id).await
        })
        .expect("app credentials");
    creds.client_secret.expose().to_owned()
}

/// The names in `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
