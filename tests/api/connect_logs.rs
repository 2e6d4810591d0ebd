//! A connect flow through the real `dravo serve` process at the most verbose log level: the
//! log shows the flow happened, and never a client secret, authorization code, state,
//! access or refresh token, or dashboard token.

use crate::support;
use crate::support::fake_provider;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_provider::{FakeProvider, Kind};
use support::dravo_cmd;

/// The server process; killed on drop so a failed assertion leaves nothing running.
struct Server {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    base_url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(dir: &std::path::Path, fake: &FakeProvider) -> Server {
    start_server_logging(dir, fake, "trace")
}

fn start_server_logging(dir: &std::path::Path, fake: &FakeProvider, level: &str) -> Server {
    let (authorize, token, api) = fake.config_urls();
    let mut child = dravo_cmd(dir)
        .arg("serve")
        .env("DRAVO_SERVER_BIND", "127.0.0.1:0")
        .env("RUST_LOG", level)
        .env(
            "DRAVO_DASHBOARD_ALLOWED_RETURN_URLS",
            "https://dash.example.com",
        )
        .env("DRAVO_PROVIDERS_FACEBOOK_AUTHORIZE_URL", authorize)
        .env("DRAVO_PROVIDERS_FACEBOOK_TOKEN_URL", token)
        .env("DRAVO_PROVIDERS_FACEBOOK_API_BASE", api)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    for stream in [
        Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stdout.take().unwrap()),
    ] {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                log.lock().unwrap().push(line);
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let base_url = loop {
        let found = log.lock().unwrap().iter().find_map(|l| {
            l.find("listening on http://").map(|i| {
                l[i + "listening on ".len()..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_owned()
            })
        });
        if let Some(url) = found {
            break url;
        }
        assert!(
            Instant::now() < deadline,
            "server did not start: {:?}",
            log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    Server {
        child,
        log,
        base_url,
    }
}

#[tokio::test]
async fn a_facebook_connect_at_trace_level_logs_no_secret_code_state_or_token() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "fb-secret-LOGCHECK-9f8e7d";
    let fake = FakeProvider::start(Kind::Facebook, "fb-client-123", secret).await;
    let server = start_server(dir.path(), &fake);
    let out = dravo_cmd(dir.path())
        .args(["token", "issue", "--sub", "alice"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let jwt = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let created: serde_json::Value = http
        .post(format!("{}/v1/oauth-apps", server.base_url))
        .bearer_auth(&jwt)
        .json(&serde_json::json!({
            "provider": "facebook", "name": "Log check",
            "client_id": "fb-client-123", "client_secret": secret,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let start: serde_json::Value = http
        .get(format!("{}/v1/oauth/facebook/start", server.base_url))
        .query(&[
            ("oauth_app_id", created["id"].as_str().unwrap()),
            ("return_url", "https://dash.example.com/done"),
        ])
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let authorize_url = url::Url::parse(start["authorize_url"].as_str().unwrap()).unwrap();
    let state = authorize_url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let consent = http.get(authorize_url.as_str()).send().await.unwrap();
    let callback = consent.headers()["location"].to_str().unwrap().to_owned();
    let done = http.get(&callback).send().await.unwrap();
    let location = done.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("status=connected"), "{location}");

    let log = stop_and_read_log(&server);

    assert!(
        log.contains("account connected"),
        "the flow is not in the log"
    );
    let mut forbidden = vec![
        ("client secret", secret.to_owned()),
        ("dashboard token", jwt.clone()),
        ("state", state.clone()),
    ];
    for code in fake.issued_codes() {
        forbidden.push(("authorization code", code));
    }
    for token in fake.issued_access_tokens() {
        forbidden.push(("access token", token));
    }
    for token in fake.issued_refresh_tokens() {
        forbidden.push(("refresh token", token));
    }
    assert!(forbidden.len() >= 5, "{forbidden:?}");
    for (what, value) in forbidden {
        assert!(!log.contains(&value), "the log contains the {what}");
    }
}

/// Stops the server gracefully, so every log line is flushed, and returns its log.
fn stop_and_read_log(server: &Server) -> String {
    let _ = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server
        .log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("stopped"))
    {
        assert!(Instant::now() < deadline, "server did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.log.lock().unwrap().join("\n")
}

#[tokio::test]
async fn a_request_path_with_line_breaks_c1_and_bidi_controls_is_logged_escaped() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeProvider::start(Kind::Facebook, "fb-client-123", "fb-secret-1234").await;
    let server = start_server_logging(dir.path(), &fake, "info");
    // Raw bytes, as an attacker sends them (a client library would percent-encode them):
    // NEL (C1), LINE SEPARATOR, RIGHT-TO-LEFT OVERRIDE.
    let addr = server.base_url.trim_start_matches("http://").to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream
            .write_all(
                b"GET /v1/forged\xC2\x85INFO\xE2\x80\xA8fake\xE2\x80\xAEline HTTP/1.1\r\n\
                  Host: x\r\nConnection: close\r\n\r\n",
            )
            .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
    let log = stop_and_read_log(&server);
    let line = log
        .lines()
        .find(|l| l.contains("/v1/forged"))
        .unwrap_or_else(|| panic!("the request is not in the log: {log}"));
    for raw in ['\u{85}', '\u{2028}', '\u{202E}'] {
        assert!(!log.contains(raw), "{raw:?} reached the log raw: {line}");
    }
    assert!(
        line.contains("\\u{85}") && line.contains("\\u{2028}") && line.contains("\\u{202e}"),
        "{line}"
    );
}
