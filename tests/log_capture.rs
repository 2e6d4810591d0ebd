//! CONTRACT §4 (secrets at rest) in the logs: a client secret is never logged, at any level.
//!
//! A crate of its own, apart from `tests/api/`: the test installs a process-wide log
//! subscriber at TRACE, which in the shared test binary would record (and slow down) every
//! other test running beside it, for the rest of the run.

// The helpers of `tests/api/`, of which this uses a few.
#[allow(dead_code, unused_imports)]
#[path = "api/support/mod.rs"]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use dravo::Error;
use dravo::domain::{AppId, Owner};
use serde_json::{Value, json};
use support::{TestApp, random_suffix, spawn_app};

// As in `tests/api/sealing.rs`.
fn alice() -> Owner {
    Owner::parse("tenant", "alice").unwrap()
}

fn body_with_secret(provider: &str, name: &str, client_id: &str, secret: &str) -> Value {
    json!({
        "provider": provider,
        "name": name,
        "client_id": client_id,
        "client_secret": secret,
    })
}

async fn create(app: &TestApp, provider: &str, name: &str, secret: &str) -> AppId {
    let body = app
        .create_ok(
            "alice",
            &body_with_secret(provider, name, "client-id-for-sealing", secret),
        )
        .await;
    AppId::parse(body["id"].as_str().unwrap()).unwrap()
}

/// Opens the app's secret through the core, as the connect flow will.
async fn open_secret(app: &TestApp, owner: &Owner, id: &AppId) -> Result<String, Error> {
    app.dravo
        .app_credentials(owner, id)
        .await
        .map(|c| c.client_secret.expose().to_owned())
}

#[derive(Clone)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs (once per test binary) a subscriber that records every event at every level.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = SharedBuf(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("install log capture");
        buf
    })
    .clone()
}

#[tokio::test]
async fn secret_never_appears_in_logs() {
    let logs = captured_logs();
    let app = spawn_app().await;
    let secret = format!("SEKRIT-{}", random_suffix());
    let id = create(&app, "x", "Logged", &secret).await;
    // A duplicate, a rejected body, reads, the core opening it, and a delete.
    let dup = app
        .create_app("alice", &body_with_secret("x", "Logged", "cid", &secret))
        .await;
    assert!(dup.status().is_client_error());
    let bad = app
        .create_app(
            "alice",
            &body_with_secret("x", "Bad", "cid", &format!("{secret}\u{7}")),
        )
        .await;
    assert_eq!(bad.status().as_u16(), 400);
    app.list_apps("alice").await;
    assert_eq!(open_secret(&app, &alice(), &id).await.unwrap(), secret);
    let resp = app
        .delete_as("alice", &format!("/v1/oauth-apps/{}", id.as_str()))
        .await;
    assert_eq!(resp.status().as_u16(), 204);
    app.stop().await;

    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    // The capture works: the create was logged, with the app's id.
    assert!(
        text.contains(id.as_str()),
        "log capture saw nothing of this test"
    );
    assert!(!text.contains(&secret), "a log line contains the secret");
}
