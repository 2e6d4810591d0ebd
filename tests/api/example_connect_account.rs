//! Runs `examples/connect_account.rs` against a live server and a fake X: the example prints
//! the consent URL, the test plays the browser, and the example must then print the account,
//! or, when the sign-in fails and the browser comes back to the example's own loopback
//! RETURN_URL, stop at once with the provider's error.

use crate::support;
use crate::support::fake_provider;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use dravo::config::ProviderConfig;
use fake_provider::{FakeProvider, Fault, Kind};
use support::{TestApp, app_body, spawn_app_with};
use tokio::sync::mpsc::UnboundedReceiver;
use url::Url;

/// The example binary cargo built next to this test (target/debug/examples/).
fn example_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: the whole `cargo test` builds the examples; with `--test` alone, run \
         `cargo build --example connect_account` first",
        path.display()
    );
    path
}

/// The example with none of its knobs inherited from the test's environment.
fn example_cmd() -> Command {
    let mut cmd = Command::new(example_binary("connect_account"));
    support::without_dravo_env(&mut cmd);
    for knob in ["PROVIDER", "OAUTH_APP_ID", "RETURN_URL", "WAIT_SECONDS"] {
        cmd.env_remove(knob);
    }
    cmd
}

#[tokio::test]
async fn connect_account_example_prints_the_url_and_then_the_connected_account() {
    let fake = FakeProvider::start(Kind::X, "x-client", "x-secret").await;
    let (app, app_id) = server_for(&fake, &[]).await;

    let mut child = example_cmd()
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
    let out = example_cmd()
        .env("DRAVO_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("token issue"), "{stderr}");
}

/// A server whose X is `fake`, allowing return URLs under `allowed`, and alice's app for it.
async fn server_for(fake: &FakeProvider, allowed: &[String]) -> (TestApp, String) {
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
        c.dashboard.allowed_return_urls = allowed.to_vec();
    })
    .await;
    let mut body = app_body("x", "Example app");
    body["client_id"] = "x-client".into();
    body["client_secret"] = "x-secret".into();
    let created: serde_json::Value = app.create_app("alice", &body).await.json().await.unwrap();
    let app_id = created["id"].as_str().unwrap().to_owned();
    (app, app_id)
}

/// A loopback port nothing listens on (it was free a moment ago).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The running example: its stdout line by line, its stderr in full once it exits.
struct Running {
    child: Child,
    stdout: UnboundedReceiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Running {
    fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, stdout) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Running {
            child,
            stdout,
            stderr,
        }
    }

    /// The first printed line that starts with `prefix`.
    async fn line_starting(&mut self, prefix: &str) -> String {
        while let Some(line) = self.stdout.recv().await {
            if line.starts_with(prefix) {
                return line;
            }
        }
        panic!("the example exited without printing a line starting with {prefix}");
    }

    /// Waits for the exit, failing the test (and killing the example) after `limit`.
    async fn finish(mut self, limit: Duration) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the example was still running after {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut stdout = Vec::new();
        while let Some(line) = self.stdout.recv().await {
            stdout.push(line);
        }
        let stderr = tokio::task::spawn_blocking(move || self.stderr.join().unwrap())
            .await
            .unwrap();
        (status, stdout.join("\n"), stderr)
    }
}

/// The browser, from the consent URL to wherever Dravo sends it afterwards, which must be
/// `return_url`: the location it is redirected to.
async fn consent_and_return(app: &TestApp, authorize_url: &str, return_url: &str) -> String {
    let consent = app.http.get(authorize_url).send().await.unwrap();
    assert_eq!(consent.status().as_u16(), 302);
    let callback = consent.headers()["location"].to_str().unwrap().to_owned();
    let done = app.http.get(&callback).send().await.unwrap();
    assert_eq!(done.status().as_u16(), 302, "the callback redirects");
    let location = done.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(return_url), "{location}");
    location
}

/// A flow that ends in an error (declined consent, a refused code exchange) with the
/// example serving a loopback RETURN_URL: the example must stop at once, non-zero, with the
/// provider's error code, long before its WAIT_SECONDS (600) would end it.
#[tokio::test]
async fn a_failed_sign_in_stops_the_example_at_once_through_a_loopback_return_url() {
    for (fault, code) in [
        (Fault::DenyConsent, "access_denied"),
        (Fault::TokenStatus(400), "invalid_grant"),
    ] {
        let fake = FakeProvider::start(Kind::X, "x-client", "x-secret").await;
        fake.set_fault(fault);
        let origin = format!("http://127.0.0.1:{}", free_port());
        let (app, app_id) = server_for(&fake, std::slice::from_ref(&origin)).await;
        let return_url = format!("{origin}/done");

        let mut cmd = example_cmd();
        cmd.env("DRAVO_URL", &app.base_url)
            .env("DRAVO_TOKEN", app.token("alice"))
            .env("OAUTH_APP_ID", &app_id)
            .env("RETURN_URL", &return_url)
            .env("WAIT_SECONDS", "600");
        let mut example = Running::spawn(cmd);
        let authorize_url = example.line_starting(&fake.base_url).await;
        let back = consent_and_return(&app, &authorize_url, &return_url).await;
        assert!(back.contains("status=error"), "{back}");

        // The example serves the return URL and tells the browser what happened.
        let page = app.http.get(&back).send().await.unwrap();
        assert_eq!(page.status().as_u16(), 200, "{fault:?}");
        let page = page.text().await.unwrap();
        assert!(page.contains(code), "{fault:?}: {page}");

        let (status, stdout, stderr) = example.finish(Duration::from_secs(60)).await;
        assert!(!status.success(), "{fault:?}: {stdout}\n{stderr}");
        assert!(stderr.contains(code), "{fault:?}: {stderr}");
        assert!(!stdout.contains("Connected account"), "{fault:?}: {stdout}");
        app.stop().await;
    }
}

/// The connected case through the example's loopback RETURN_URL: the browser gets the
/// example's page naming the account, and the example prints that account.
#[tokio::test]
async fn a_connected_sign_in_comes_back_to_the_example_on_a_loopback_return_url() {
    let fake = FakeProvider::start(Kind::X, "x-client", "x-secret").await;
    let origin = format!("http://127.0.0.1:{}", free_port());
    let (app, app_id) = server_for(&fake, std::slice::from_ref(&origin)).await;
    let return_url = format!("{origin}/done?tab=accounts");

    let mut cmd = example_cmd();
    cmd.env("DRAVO_URL", &app.base_url)
        .env("DRAVO_TOKEN", app.token("alice"))
        .env("OAUTH_APP_ID", &app_id)
        .env("RETURN_URL", &return_url)
        .env("WAIT_SECONDS", "600");
    let mut example = Running::spawn(cmd);
    let authorize_url = example.line_starting(&fake.base_url).await;
    let back = consent_and_return(&app, &authorize_url, &format!("{origin}/done")).await;
    let account_id = Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "account_id")
        .map(|(_, v)| v.into_owned())
        .expect("the return URL names the account");

    let page = app.http.get(&back).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("Connected"), "{page}");
    assert!(page.contains(&account_id), "{page}");

    let (status, stdout, stderr) = example.finish(Duration::from_secs(60)).await;
    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Connected account:"), "{stdout}");
    assert!(stdout.contains(&account_id), "{stdout}");
    assert!(
        stdout.contains("\"provider_account_id\": \"1234567890\""),
        "{stdout}"
    );
    app.stop().await;
}

/// A loopback RETURN_URL the server does not allow: Dravo's 400, plus how to allow it.
#[tokio::test]
async fn a_return_url_the_server_refuses_comes_with_how_to_allow_it() {
    let fake = FakeProvider::start(Kind::X, "x-client", "x-secret").await;
    let (app, app_id) = server_for(&fake, &[]).await;
    let port = free_port();

    let mut cmd = example_cmd();
    cmd.env("DRAVO_URL", &app.base_url)
        .env("DRAVO_TOKEN", app.token("alice"))
        .env("OAUTH_APP_ID", &app_id)
        .env("RETURN_URL", format!("http://127.0.0.1:{port}/done"));
    let (status, stdout, stderr) = Running::spawn(cmd).finish(Duration::from_secs(60)).await;
    assert!(!status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("allowed_return_urls"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "DRAVO_DASHBOARD_ALLOWED_RETURN_URLS=http://127.0.0.1:{port} dravo serve"
        )),
        "{stderr}"
    );
    app.stop().await;
}

/// A knob that does not parse is an error naming it, never silently its default.
#[test]
fn invalid_knobs_are_errors_that_name_them() {
    for (knob, value) in [
        ("WAIT_SECONDS", "abc"),
        ("WAIT_SECONDS", "-5"),
        ("RETURN_URL", "127.0.0.1:8091/done"),
        ("DRAVO_URL", "not a url"),
    ] {
        let out = example_cmd()
            .env("DRAVO_TOKEN", "whatever")
            .env("DRAVO_URL", "http://127.0.0.1:9")
            .env(knob, value)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{knob}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(knob), "{knob}={value}: {stderr}");
        assert!(stderr.contains(value), "{knob}={value}: {stderr}");
        assert!(!stderr.contains("cannot reach"), "{knob}={value}: {stderr}");
    }
}
