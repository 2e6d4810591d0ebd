//! What a dashboard backend does to connect a social account through Dravo.
//!
//! 1. Ask Dravo for the provider's consent URL (`GET /v1/oauth/{provider}/start`).
//! 2. Send the user's browser there (here: print it for you to open).
//! 3. The provider sends the browser back to Dravo's callback; Dravo stores the account and
//!    redirects to your `return_url` (or shows a small page).
//! 4. Your backend sees the new account in `GET /v1/accounts`.
//!
//! Run it against a live server:
//!
//! ```sh
//! export DRAVO_TOKEN=$(cargo run -q -- token issue --sub me)
//! cargo run --example connect_account            # PROVIDER=x by default
//! PROVIDER=linkedin OAUTH_APP_ID=oa_… cargo run --example connect_account
//! ```
//!
//! Environment: DRAVO_URL (default http://127.0.0.1:8080), DRAVO_TOKEN (a dashboard JWT),
//! PROVIDER, OAUTH_APP_ID (omit to use the provider's default app from dravo.toml),
//! RETURN_URL (must be under dashboard.allowed_return_urls), WAIT_SECONDS (default 300).

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::Value;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// Turns a non-2xx answer into the message of Dravo's error body.
async fn check(resp: reqwest::Response) -> Result<Value, String> {
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .map_err(|e| format!("unreadable answer: {e}"))?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!(
            "{} {}: {}",
            status.as_u16(),
            body["error"]["code"].as_str().unwrap_or("?"),
            body["error"]["message"].as_str().unwrap_or("?")
        ))
    }
}

/// The ids of the accounts connected so far for this provider.
async fn account_ids(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    provider: &str,
) -> Result<Vec<Value>, String> {
    let resp = http
        .get(format!("{base}/v1/accounts"))
        .query(&[("provider", provider)])
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("cannot reach Dravo at {base}: {e}"))?;
    match check(resp).await? {
        Value::Array(items) => Ok(items),
        other => Err(format!("expected a list of accounts, got {other}")),
    }
}

async fn run() -> Result<(), String> {
    let base = env_or("DRAVO_URL", "http://127.0.0.1:8080");
    let base = base.trim_end_matches('/');
    let token = std::env::var("DRAVO_TOKEN").map_err(|_| {
        "set DRAVO_TOKEN to a dashboard JWT, e.g. DRAVO_TOKEN=$(cargo run -q -- token issue --sub me)"
            .to_owned()
    })?;
    let provider = env_or("PROVIDER", "x");
    let wait = Duration::from_secs(env_or("WAIT_SECONDS", "300").parse().unwrap_or(300));
    let http = reqwest::Client::new();

    // Remember what is connected already (id and last update), so a new or reconnected
    // account stands out.
    let seen = |a: &Value| format!("{} {}", a["id"], a["updated_at"]);
    let before: HashSet<String> = account_ids(&http, base, &token, &provider)
        .await?
        .iter()
        .map(seen)
        .collect();

    // 1. Ask for the consent URL. The state inside it is signed, single-use and expires in
    //    ten minutes, so ask for a fresh one each time a user clicks "Connect".
    let mut query = Vec::new();
    if let Ok(app) = std::env::var("OAUTH_APP_ID") {
        query.push(("oauth_app_id", app));
    }
    if let Ok(url) = std::env::var("RETURN_URL") {
        query.push(("return_url", url));
    }
    let resp = http
        .get(format!("{base}/v1/oauth/{provider}/start"))
        .query(&query)
        .bearer_auth(&token)
        .send()
        .await
        .map_err(|e| format!("cannot reach Dravo at {base}: {e}"))?;
    let start = check(resp).await?;
    let authorize_url = start["authorize_url"]
        .as_str()
        .ok_or("the answer has no authorize_url")?;

    // 2. A real dashboard redirects the browser; here you open it yourself.
    println!("Open this URL in a browser to connect a {provider} account:");
    println!("{authorize_url}");

    // 3–4. Wait for the account to show up.
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let accounts = account_ids(&http, base, &token, &provider).await?;
        if let Some(account) = accounts.iter().find(|a| !before.contains(&seen(a))) {
            println!("Connected account:");
            println!(
                "{}",
                serde_json::to_string_pretty(account).unwrap_or_default()
            );
            return Ok(());
        }
    }
    Err(format!(
        "no new {provider} account within {} seconds",
        wait.as_secs()
    ))
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
