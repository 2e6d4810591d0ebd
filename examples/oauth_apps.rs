//! A dashboard's view of Dravo: store a BYOK OAuth app, then list your apps with the redirect
//! URI each one needs registered at its provider. Plain HTTP with reqwest; copy what you need.
//!
//! ```text
//! cargo run -- serve &                                 # a Dravo on http://127.0.0.1:8080
//! export DRAVO_TOKEN=$(cargo run -q -- token issue --sub me)
//! cargo run --example oauth_apps
//! ```
//!
//! Environment (an empty value counts as unset):
//! - `DRAVO_URL`             Dravo's base URL (default `http://127.0.0.1:8080`)
//! - `DRAVO_TOKEN`           a dashboard JWT (required); its `sub` is the tenant that owns the
//!   apps
//! - `EXAMPLE_PROVIDER`      instagram | facebook | x | linkedin | tiktok (default `x`)
//! - `EXAMPLE_APP_NAME`      the app's name (default `Example X App`)
//! - `EXAMPLE_CLIENT_ID`     your app's client id at the provider (default `your-client-id`)
//! - `EXAMPLE_CLIENT_SECRET` your app's client secret, sent once, stored encrypted, never shown
//!   (default `your-client-secret`)
//!
//! Exit status: 0 on success, 1 when Dravo or the network fails, 2 when `DRAVO_TOKEN` is missing.

use std::process::ExitCode;

use reqwest::{Client, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

/// One item of `GET /v1/oauth-apps` (and the body of `201 Created`). There is no secret here:
/// Dravo never returns it.
#[derive(Debug, Deserialize)]
struct OAuthApp {
    id: String,
    provider: String,
    name: String,
    client_id: String,
    /// The callback URL to register in the provider's developer console.
    redirect_uri: String,
    scopes: Vec<String>,
}

/// Every non-2xx answer from Dravo has this body: `{"error": {"code", "message"}}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ApiError,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    /// Stable and snake_case (`unauthorized`, `conflict`, `invalid_request`, …): branch on it.
    code: String,
    /// One human sentence: show it.
    message: String,
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

#[tokio::main]
async fn main() -> ExitCode {
    let base_url = env_or("DRAVO_URL", "http://127.0.0.1:8080");
    let base_url = base_url.trim_end_matches('/');
    let Some(token) = std::env::var("DRAVO_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    else {
        eprintln!(
            "DRAVO_TOKEN is not set: mint a dashboard token with \
             `TOKEN=$(cargo run -q -- token issue --sub me)` and run again with DRAVO_TOKEN=$TOKEN."
        );
        return ExitCode::from(2);
    };
    match run(base_url, token.trim()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(base_url: &str, token: &str) -> Result<(), String> {
    let provider = env_or("EXAMPLE_PROVIDER", "x");
    let name = env_or("EXAMPLE_APP_NAME", "Example X App");
    let client_id = env_or("EXAMPLE_CLIENT_ID", "your-client-id");
    let client_secret = env_or("EXAMPLE_CLIENT_SECRET", "your-client-secret");

    let http = Client::new();
    let unreachable = |e: reqwest::Error| {
        format!("cannot reach Dravo at {base_url} (is `dravo serve` running?): {e}")
    };

    // 1. Store the app. `scopes` is optional: leave it out to request the provider's defaults.
    let resp = http
        .post(format!("{base_url}/v1/oauth-apps"))
        .bearer_auth(token)
        .json(&json!({
            "provider": provider,
            "name": name,
            "client_id": client_id,
            "client_secret": client_secret,
        }))
        .send()
        .await
        .map_err(unreachable)?;
    match resp.status() {
        StatusCode::CREATED => {
            let app: OAuthApp = resp.json().await.map_err(|e| e.to_string())?;
            println!("Created {} \"{}\" for {}.", app.id, app.name, app.provider);
        }
        // (owner, provider, name) is unique: the app is already there, which is fine here.
        StatusCode::CONFLICT => {
            let err = api_error(resp).await;
            if err.code != "conflict" {
                return Err(format!("{} ({})", err.message, err.code));
            }
            println!("An app named \"{name}\" for {provider} already exists; keeping it.");
        }
        _ => {
            let err = api_error(resp).await;
            return Err(format!(
                "creating the app failed: {} ({})",
                err.message, err.code
            ));
        }
    }

    // 2. List the tenant's apps, oldest first (`?provider=x` would filter).
    let resp = http
        .get(format!("{base_url}/v1/oauth-apps"))
        .bearer_auth(token)
        .send()
        .await
        .map_err(unreachable)?;
    if !resp.status().is_success() {
        let err = api_error(resp).await;
        return Err(format!(
            "listing the apps failed: {} ({})",
            err.message, err.code
        ));
    }
    let apps: Vec<OAuthApp> = resp.json().await.map_err(|e| e.to_string())?;

    // 3. Each app's redirect URI must be registered at its provider before anyone connects.
    println!("\n{} OAuth app(s):", apps.len());
    for app in &apps {
        println!("- {}  {}  \"{}\"", app.id, app.provider, app.name);
        println!("    client_id:    {}", app.client_id);
        println!("    scopes:       {}", app.scopes.join(" "));
        println!("    redirect URI: {}", app.redirect_uri);
        println!(
            "      (register this URI in your {} app's settings)",
            app.provider
        );
    }
    Ok(())
}

/// Reads Dravo's JSON error body; anything else (a proxy's HTML page, say) becomes a sentence
/// naming the HTTP status.
async fn api_error(resp: Response) -> ApiError {
    let status = resp.status();
    match resp.json::<ErrorBody>().await {
        Ok(body) => body.error,
        Err(_) => ApiError {
            code: status.as_u16().to_string(),
            message: format!("Dravo answered HTTP {status} without a JSON error body."),
        },
    }
}
