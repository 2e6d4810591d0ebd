//! What a dashboard backend does to connect a social account through Dravo.
//!
//! 1. Ask Dravo for the provider's consent URL (`GET /v1/oauth/{provider}/start`).
//! 2. Send the user's browser there (here: print it for you to open).
//! 3. The provider sends the browser back to Dravo's callback; Dravo stores the account and
//!    redirects the browser to your `return_url` with `status=connected&account_id=…` or
//!    `status=error&error=…&error_description=…` (without a return URL it shows a small page).
//! 4. Your backend reads the account (`GET /v1/accounts/{id}`).
//!
//! The example hears the outcome two ways, whichever comes first. When `RETURN_URL` is an
//! `http://` URL on 127.0.0.1, localhost or [::1], it serves that URL itself, so a declined or
//! failed sign-in stops it at once. And it polls `GET /v1/accounts` every half second, which
//! works with any `RETURN_URL` or none, but only ever sees success.
//!
//! ```sh
//! DRAVO_DASHBOARD_ALLOWED_RETURN_URLS=http://127.0.0.1:8091 cargo run -- serve &
//! export DRAVO_TOKEN=$(cargo run -q -- token issue --sub me)
//! RETURN_URL=http://127.0.0.1:8091/done cargo run --example connect_account
//! PROVIDER=linkedin OAUTH_APP_ID=oa_… cargo run --example connect_account
//! ```
//!
//! Environment (an empty value counts as unset):
//! - `DRAVO_URL`     Dravo's base URL (default `http://127.0.0.1:8080`)
//! - `DRAVO_TOKEN`   a dashboard JWT (required); its `sub` is the tenant that owns the account
//! - `PROVIDER`      instagram | facebook | x | linkedin | tiktok | threads | youtube |
//!   google_business | pinterest | reddit (default `x`)
//! - `OAUTH_APP_ID`  the BYOK app to connect with (default: none, the provider's app from
//!   dravo.toml)
//! - `RETURN_URL`    where Dravo sends the browser afterwards; it must lie under the server's
//!   `dashboard.allowed_return_urls` (default: none)
//! - `WAIT_SECONDS`  how long to wait for the outcome, a whole number (default `300`)
//!
//! Exit status: 0 once the account is connected; 1 when a setting is invalid, Dravo or the
//! network fails, the sign-in ends in an error, or `WAIT_SECONDS` pass first.

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::Duration;

use poem::listener::{Listener, TcpListener};
use poem::web::{Data, Query};
use poem::{EndpointExt, Server, handler};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use url::{Host, Url};

/// The settings listed above, all read and checked before anything else happens.
struct Knobs {
    base: String,
    token: String,
    provider: String,
    oauth_app_id: Option<String>,
    return_url: Option<Url>,
    wait: Duration,
}

/// An environment variable; `None` when it is unset or empty.
fn knob(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn knobs() -> Result<Knobs, String> {
    let base = knob("DRAVO_URL").unwrap_or_else(|| "http://127.0.0.1:8080".into());
    Url::parse(&base).map_err(|e| format!("DRAVO_URL must be a URL, got `{base}`: {e}"))?;
    let token = knob("DRAVO_TOKEN").ok_or(
        "set DRAVO_TOKEN to a dashboard JWT, e.g. DRAVO_TOKEN=$(cargo run -q -- token issue --sub me)",
    )?;
    let return_url = match knob("RETURN_URL") {
        None => None,
        Some(raw) => Some(Url::parse(&raw).map_err(|e| {
            format!("RETURN_URL must be an absolute URL such as http://127.0.0.1:8091/done, got `{raw}`: {e}")
        })?),
    };
    let wait = match knob("WAIT_SECONDS") {
        None => 300,
        Some(raw) => raw
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&s| s > 0)
            .ok_or_else(|| {
                format!("WAIT_SECONDS must be a whole number of seconds above 0, got `{raw}`")
            })?,
    };
    Ok(Knobs {
        base: base.trim_end_matches('/').to_owned(),
        token,
        provider: knob("PROVIDER").unwrap_or_else(|| "x".into()),
        oauth_app_id: knob("OAUTH_APP_ID"),
        return_url,
        wait: Duration::from_secs(wait),
    })
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

/// `GET path` on Dravo as the dashboard.
async fn get(http: &reqwest::Client, k: &Knobs, path: &str) -> Result<Value, String> {
    let resp = http
        .get(format!("{}{path}", k.base))
        .bearer_auth(&k.token)
        .send()
        .await
        .map_err(|e| format!("cannot reach Dravo at {}: {e}", k.base))?;
    check(resp).await
}

/// The accounts connected so far for this provider, each as "id updated_at", so a new or
/// reconnected account stands out.
async fn account_versions(
    http: &reqwest::Client,
    k: &Knobs,
) -> Result<Vec<(String, Value)>, String> {
    // Newest last; a dashboard with more than 500 accounts would follow `next_cursor`.
    let page = get(
        http,
        k,
        &format!("/v1/accounts?provider={}&limit=500", k.provider),
    )
    .await?;
    match page.get("data") {
        Some(Value::Array(items)) => Ok(items
            .iter()
            .map(|a| (format!("{} {}", a["id"], a["updated_at"]), a.clone()))
            .collect()),
        _ => Err(format!("expected a page of accounts, got {page}")),
    }
}

/// Polls until an account that was not in `before` shows up.
async fn poll_new_account(
    http: &reqwest::Client,
    k: &Knobs,
    before: &HashSet<String>,
) -> Result<Value, String> {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let accounts = account_versions(http, k).await?;
        if let Some((_, account)) = accounts.into_iter().find(|(v, _)| !before.contains(v)) {
            return Ok(account);
        }
    }
}

/// What Dravo put on the return URL when it sent the browser back.
#[derive(Debug, Deserialize)]
struct Outcome {
    status: String,
    account_id: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Serves RETURN_URL (any path): answers the browser with a short page and hands the outcome
/// on. A request without `status` (a favicon, say) gets 400.
#[handler]
fn came_back(Query(outcome): Query<Outcome>, tx: Data<&mpsc::UnboundedSender<Outcome>>) -> String {
    let page = match (outcome.status.as_str(), &outcome.account_id) {
        ("connected", Some(id)) => format!("Connected account {id}. You can close this tab."),
        _ => format!(
            "Connecting failed: {} {}",
            outcome.error.as_deref().unwrap_or(&outcome.status),
            outcome.error_description.as_deref().unwrap_or_default()
        ),
    };
    let _ = tx.send(outcome);
    page
}

/// The example's own server on a loopback RETURN_URL.
struct ReturnServer {
    outcomes: mpsc::UnboundedReceiver<Outcome>,
    heard: bool,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ReturnServer {
    /// Listens on `url`'s host and port when it is plain http on this machine.
    async fn start(url: &Url) -> Option<ReturnServer> {
        let loopback = match url.host()? {
            Host::Domain(name) => name == "localhost",
            Host::Ipv4(ip) => ip.is_loopback(),
            Host::Ipv6(ip) => ip.is_loopback(),
        };
        if url.scheme() != "http" || !loopback {
            return None;
        }
        let addr = format!("{}:{}", url.host_str()?, url.port_or_known_default()?);
        let acceptor = match TcpListener::bind(addr.clone()).into_acceptor().await {
            Ok(acceptor) => acceptor,
            Err(e) => {
                eprintln!("note: cannot listen on {addr} ({e}); only polling for the account");
                return None;
            }
        };
        let (tx, outcomes) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
            came_back.data(tx),
            async move {
                let _ = stopped.await;
            },
            Some(Duration::from_secs(2)),
        );
        let task = tokio::spawn(server);
        Some(ReturnServer {
            outcomes,
            heard: false,
            stop,
            task,
        })
    }

    async fn next(&mut self) -> Option<Outcome> {
        let outcome = self.outcomes.recv().await;
        self.heard = true;
        outcome
    }

    /// Stops after the current page is sent. When polling saw the account first, the browser
    /// may be a moment behind: let it land on a page rather than a refused connection.
    async fn close(mut self, connected: bool) {
        if connected && !self.heard {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.outcomes.recv()).await;
        }
        drop(self.stop);
        let _ = self.task.await;
    }
}

async fn run() -> Result<(), String> {
    let k = knobs()?;
    let http = reqwest::Client::new();

    // Listen on a loopback RETURN_URL before anyone can be sent there.
    let mut back = match &k.return_url {
        Some(url) => ReturnServer::start(url).await,
        None => None,
    };

    let before: HashSet<String> = account_versions(&http, &k)
        .await?
        .into_iter()
        .map(|(version, _)| version)
        .collect();

    // 1. Ask for the consent URL. The state inside it is signed, single-use and expires in
    //    ten minutes, so ask for a fresh one each time a user clicks "Connect".
    let mut query = Vec::new();
    if let Some(app) = &k.oauth_app_id {
        query.push(("oauth_app_id", app.as_str()));
    }
    if let Some(url) = &k.return_url {
        query.push(("return_url", url.as_str()));
    }
    let resp = http
        .get(format!("{}/v1/oauth/{}/start", k.base, k.provider))
        .query(&query)
        .bearer_auth(&k.token)
        .send()
        .await
        .map_err(|e| format!("cannot reach Dravo at {}: {e}", k.base))?;
    let start = check(resp).await.map_err(|e| match &k.return_url {
        Some(url) if e.contains("allowed_return_urls") => format!(
            "{e}\nAllow RETURN_URL on the server and restart it, e.g. \
             `DRAVO_DASHBOARD_ALLOWED_RETURN_URLS={} dravo serve` \
             (or `allowed_return_urls` under [dashboard] in dravo.toml)",
            url.origin().ascii_serialization()
        ),
        _ => e,
    })?;
    let authorize_url = start["authorize_url"]
        .as_str()
        .ok_or("the answer has no authorize_url")?;

    // 2. A real dashboard redirects the browser; here you open it yourself.
    println!(
        "Open this URL in a browser to connect a {} account:",
        k.provider
    );
    println!("{authorize_url}");

    // 3–4. Wait for the browser to come back, or the account to show up.
    let result = tokio::select! {
        Some(outcome) = async {
            match &mut back {
                Some(server) => server.next().await,
                None => std::future::pending().await,
            }
        } => match (outcome.status.as_str(), &outcome.account_id) {
            ("connected", Some(id)) => get(&http, &k, &format!("/v1/accounts/{id}")).await,
            _ => Err(format!(
                "connecting a {} account failed: {}: {}",
                k.provider,
                outcome.error.as_deref().unwrap_or(&outcome.status),
                outcome.error_description.as_deref().unwrap_or("no description")
            )),
        },
        found = poll_new_account(&http, &k, &before) => found,
        _ = tokio::time::sleep(k.wait) => Err(format!(
            "no new {} account within {} seconds (WAIT_SECONDS)",
            k.provider,
            k.wait.as_secs()
        )),
    };
    if let Some(server) = back {
        server.close(result.is_ok()).await;
    }
    let account = result?;
    println!("Connected account:");
    println!(
        "{}",
        serde_json::to_string_pretty(&account).unwrap_or_default()
    );
    Ok(())
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
