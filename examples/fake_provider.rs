//! The test suite's fake X (`tests/api/support/fake_provider/`) as a process of its own, for
//! runs against a real `dravo serve` (`benches/soak.sh`). It prints `FAKE_URL=<base url>`,
//! then reads commands from stdin, one a line, answering each on stdout:
//!
//! - `connect <dravo url> <bearer token> <oauth app id> <count>`: connects `count` new accounts
//!   (a distinct X user each) through Dravo's start and callback, one after another; answers
//!   `connected <ok> <failed>`.
//! - `stats`: answers `token_requests <n>` (code exchanges and refreshes so far).
//!
//! It exits at the end of its input.
//!
//! ```text
//! cargo run --release --example fake_provider -- [client id] [client secret]
//! ```
//!
//! Dravo's config then gets `DRAVO_PROVIDERS_X_AUTHORIZE_URL=<base>/authorize`,
//! `DRAVO_PROVIDERS_X_TOKEN_URL=<base>/token` and `DRAVO_PROVIDERS_X_API_BASE=<base>`, and the
//! app is created with the same client id and secret.

// The tests' fake, of which this uses a part.
#[allow(dead_code)]
#[path = "../tests/api/support/fake_provider/mod.rs"]
mod fake_provider;

use std::io::{BufRead, Write};

use fake_provider::{FakeProvider, Kind};

/// One connect: start (with the bearer token), the consent step, the callback.
async fn connect(
    http: &reqwest::Client,
    dravo: &str,
    jwt: &str,
    app_id: &str,
) -> Result<(), String> {
    let start: serde_json::Value = http
        .get(format!("{dravo}/v1/oauth/x/start?oauth_app_id={app_id}"))
        .bearer_auth(jwt)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("start: {e}"))?
        .json()
        .await
        .map_err(|e| format!("start: {e}"))?;
    let authorize = start["authorize_url"]
        .as_str()
        .ok_or("start gave no authorize_url")?;
    let consent = http
        .get(authorize)
        .send()
        .await
        .map_err(|e| format!("consent: {e}"))?;
    let callback = consent
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .ok_or("the consent step did not redirect")?
        .to_owned();
    let done = http
        .get(&callback)
        .send()
        .await
        .map_err(|e| format!("callback: {e}"))?;
    let status = done.status();
    let body = done.text().await.unwrap_or_default();
    if status.is_success() || status.is_redirection() {
        Ok(())
    } else {
        Err(format!("callback answered {status}: {body}"))
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let client_id = args.next().unwrap_or_else(|| "soak-client".into());
    let client_secret = args.next().unwrap_or_else(|| "soak-secret".into());
    let fake = FakeProvider::start(Kind::X, &client_id, &client_secret).await;
    println!("FAKE_URL={}", fake.base_url);
    std::io::stdout().flush().expect("stdout");

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    let mut next_user: u64 = 1_000_000_000;
    // stdin is read on a thread of its own (tokio's stdin is not among Dravo's features).
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = lines.recv().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["connect", dravo, jwt, app_id, count] => {
                let count: u64 = count.parse().expect("a count");
                let (mut ok, mut failed) = (0, 0);
                for _ in 0..count {
                    next_user += 1;
                    fake.set_account(
                        &next_user.to_string(),
                        Some(&format!("soak_user_{next_user}")),
                        Some("Soak User"),
                    );
                    match connect(&http, dravo, jwt, app_id).await {
                        Ok(()) => ok += 1,
                        Err(e) => {
                            failed += 1;
                            eprintln!("fake_provider: a connect failed: {e}");
                        }
                    }
                }
                println!("connected {ok} {failed}");
            }
            ["stats"] => println!("token_requests {}", fake.token_requests()),
            [] => continue,
            _ => println!("error unknown command: {line}"),
        }
        std::io::stdout().flush().expect("stdout");
    }
}
