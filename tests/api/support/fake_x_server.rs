//! A real `dravo serve` process whose default X app is a fake X (`fake_provider.rs`), and the
//! connect a browser would make through it.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::dravo_cmd;
use super::fake_provider::FakeProvider;
use super::process::{SAFETY_TIMEOUT, Server, http};

pub const CLIENT_ID: &str = "fake-client-id-123";
pub const CLIENT_SECRET: &str = "fake-client-secret-456";

/// A dashboard token for `tenant`, from `dravo token issue` on `dir`'s database.
pub fn issue_token(dir: &Path, tenant: &str) -> String {
    let out = dravo_cmd(dir)
        .args(["token", "issue", "--sub", tenant])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The `dravo serve` command on `dir`, with `fake` as the default X app, no background
/// refresher, and the rate limits at their highest: these tests load one tenant far above the
/// defaults, which they are not about.
pub fn serve_command(dir: &Path, fake: &FakeProvider) -> Command {
    let (authorize, token_url, api) = fake.config_urls();
    let mut cmd = dravo_cmd(dir);
    cmd.env("DRAVO_PROVIDERS_X_CLIENT_ID", CLIENT_ID)
        .env("DRAVO_PROVIDERS_X_CLIENT_SECRET", CLIENT_SECRET)
        .env("DRAVO_PROVIDERS_X_AUTHORIZE_URL", authorize)
        .env("DRAVO_PROVIDERS_X_TOKEN_URL", token_url)
        .env("DRAVO_PROVIDERS_X_API_BASE", api)
        .env("DRAVO_REFRESH_BACKGROUND", "false");
    unlimited(&mut cmd);
    cmd
}

/// The highest rate limits.
pub fn unlimited(cmd: &mut Command) {
    for var in [
        "DRAVO_LIMITS_START_PER_SECOND",
        "DRAVO_LIMITS_CALLBACK_PER_SECOND",
        "DRAVO_LIMITS_CREATE_PER_SECOND",
        "DRAVO_LIMITS_TOKEN_PER_SECOND",
    ] {
        cmd.env(var, "100000");
    }
}

/// A client that shows redirects instead of following them.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(SAFETY_TIMEOUT)
        .build()
        .unwrap()
}

/// `start`: the provider's consent URL.
pub async fn start(server: &Server, jwt: &str) -> String {
    let started: Value = http()
        .get(server.url("/v1/oauth/x/start"))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    started["authorize_url"].as_str().unwrap().to_owned()
}

/// The fake's consent, then the callback: its status and body.
pub async fn consent_and_callback(authorize_url: &str) -> (u16, String) {
    let client = no_redirects();
    let consent = client.get(authorize_url).send().await.unwrap();
    assert_eq!(consent.status(), 302);
    let callback = consent.headers()["location"].to_str().unwrap().to_owned();
    let done = client.get(callback).send().await.unwrap();
    (done.status().as_u16(), done.text().await.unwrap())
}

/// start → the fake's consent → the callback (no return URL: a 200 page).
pub async fn connect(server: &Server, jwt: &str) {
    let (status, body) = consent_and_callback(&start(server, jwt).await).await;
    assert_eq!(status, 200, "{body}");
}
