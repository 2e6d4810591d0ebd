//! The spec's `ErrorCode` enum is exactly what the server sends: each code is provoked from a
//! live server and arrives with the status `ErrorCode::status` gives it, and README's error
//! code table documents each one with that status.

use crate::support;

use dravo::api::error::ErrorCode;
use poem_openapi::types::ParseFromJSON;
use serde_json::Value;
use support::{Db, TestApp, app_body, assert_error, spawn_app_with};

/// The codes of the spec's `ErrorCode` schema, in its order.
fn spec_codes() -> Vec<(String, ErrorCode)> {
    let spec: Value = serde_json::from_str(&dravo::api::spec_json()).unwrap();
    spec["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("an ErrorCode enum")
        .iter()
        .map(|name| {
            let code = ErrorCode::parse_from_json(Some(name.clone())).unwrap();
            (name.as_str().unwrap().to_owned(), code)
        })
        .collect()
}

/// A request that makes the server answer with `code`. The match has no fallback arm: a new
/// code does not compile until it has a way to happen here.
async fn provoke(app: &TestApp, code: ErrorCode) -> reqwest::Response {
    let authed = |method, path: &str| {
        app.http
            .request(method, app.url(path))
            .bearer_auth(app.token("alice"))
    };
    let request = match code {
        ErrorCode::InvalidRequest => authed(reqwest::Method::GET, "/v1/oauth-apps/42"),
        ErrorCode::Unauthorized => app.http.get(app.url("/v1/oauth-apps")),
        ErrorCode::NotFound => authed(
            reqwest::Method::GET,
            "/v1/accounts/acc_aaaaaaaaaaaaaaaaaaaa",
        ),
        ErrorCode::MethodNotAllowed => authed(reqwest::Method::PUT, "/v1/oauth-apps"),
        ErrorCode::Conflict => {
            app.create_ok("alice", &app_body("x", "Twice")).await;
            authed(reqwest::Method::POST, "/v1/oauth-apps").json(&app_body("x", "Twice"))
        }
        ErrorCode::NoDefaultApp => authed(reqwest::Method::GET, "/v1/oauth/x/start"),
        ErrorCode::PayloadTooLarge => authed(reqwest::Method::POST, "/v1/oauth-apps")
            .header("content-type", "application/json")
            .body(vec![b' '; dravo::api::MAX_BODY_BYTES + 1]),
        ErrorCode::RequestTimeout => authed(reqwest::Method::POST, "/v1/oauth-apps")
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap(StalledBody::default())),
        ErrorCode::UnsupportedMediaType => authed(reqwest::Method::POST, "/v1/oauth-apps")
            .header("content-type", "text/plain")
            .body(app_body("x", "As text").to_string()),
        ErrorCode::NeedsReauth => {
            let id = insert_account(app, "needs_reauth", 4_000_000_000);
            authed(
                reqwest::Method::GET,
                &format!("/v1/accounts/{id}/access-token"),
            )
        }
        ErrorCode::ProviderError => {
            // Expired, with a refresh token, and no app to refresh it with: the provider
            // call cannot be made, the account is not blamed, the caller gets a 502.
            let id = insert_account(app, "active", 1);
            authed(
                reqwest::Method::GET,
                &format!("/v1/accounts/{id}/access-token"),
            )
        }
        ErrorCode::RefreshBackoff => {
            // Three refreshes failed in a row and the next attempt is far off: an explicit
            // refresh is refused without calling the provider.
            let id = insert_account_as(app, "e", "active", 4_000_000_000);
            Db::open(&app.db_path()).execute(
                "UPDATE accounts SET refresh_failures = 3, next_refresh_at = 4000000000
                 WHERE id = ?1",
                &[(&id).into()],
            );
            authed(reqwest::Method::POST, &format!("/v1/accounts/{id}/refresh"))
        }
        ErrorCode::AppInUse => {
            let created = app.create_ok("alice", &app_body("x", "In use")).await;
            let app_id = created["id"].as_str().unwrap();
            let id = insert_account(app, "expiring", 4_000_000_000);
            Db::open(&app.db_path()).execute(
                "UPDATE accounts SET oauth_app_id = ?1 WHERE id = ?2",
                &[app_id.into(), (&id).into()],
            );
            authed(reqwest::Method::DELETE, &format!("/v1/oauth-apps/{app_id}"))
        }
        ErrorCode::RateLimited => {
            // The callback is limited per client IP (1 per second here, a burst of 5): the
            // answer that passes the limit is the JSON error, not the callback's HTML page.
            let url = app.url("/v1/oauth/x/callback?state=none");
            for _ in 0..100 {
                let resp = app.http.get(&url).send().await.unwrap();
                if resp.status() != reqwest::StatusCode::BAD_REQUEST {
                    return resp;
                }
            }
            panic!("100 callbacks in a row were all answered 400");
        }
        ErrorCode::NotReady => {
            // As if a newer Dravo had migrated the database under this server; nothing else
            // reads the schema version, so the codes asked for after it are unaffected.
            Db::open(&app.db_path()).set_schema_version(1000);
            app.http.get(app.url("/readyz"))
        }
        ErrorCode::Internal => {
            // The last code asked for: it breaks the database.
            Db::open(&app.db_path()).batch("DROP TABLE oauth_apps");
            authed(reqwest::Method::GET, "/v1/oauth-apps")
        }
    };
    request.send().await.unwrap()
}

/// A request body that sends its first byte and then nothing: the server's body timeout
/// (1 s here) passes.
#[derive(Default)]
struct StalledBody {
    started: bool,
}

impl hyper::body::Body for StalledBody {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        if self.started {
            // Never woken: the client waits on the server's answer instead.
            return std::task::Poll::Pending;
        }
        self.started = true;
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(
            bytes::Bytes::from_static(b"{"),
        ))))
    }
}

/// An X account row of alice's, written straight to the database (its sealed tokens are
/// placeholders: these requests fail before any token is opened).
fn insert_account(app: &TestApp, status: &str, expires_at: i64) -> String {
    let suffix = match status {
        "active" => "b",
        "needs_reauth" => "c",
        _ => "d",
    };
    insert_account_as(app, suffix, status, expires_at)
}

/// `insert_account` with the last letter of its id given.
fn insert_account_as(app: &TestApp, suffix: &str, status: &str, expires_at: i64) -> String {
    let id = format!("acc_{}", "a".repeat(19) + suffix);
    Db::open(&app.db_path()).execute(
        "INSERT INTO accounts (id, owner, provider, oauth_app_id, provider_account_id,
             scopes, status, access_token_sealed, refresh_token_sealed, expires_at,
             created_at, updated_at)
         VALUES (?1, 'alice', 'x', NULL, ?1, '[]', ?2, ?4, ?4, ?3, 1, 1)",
        &[
            (&id).into(),
            status.into(),
            expires_at.into(),
            vec![0u8].into(),
        ],
    );
    id
}

#[tokio::test]
async fn every_code_in_the_spec_is_sent_by_the_server_with_its_status() {
    let mut codes = spec_codes();
    assert!(!codes.is_empty());
    // `internal` breaks the database, so it goes last.
    codes.sort_by_key(|(_, code)| *code == ErrorCode::Internal);
    let app = spawn_app_with(|c| {
        c.limits.callback_per_second = 1;
        c.server.body_timeout_seconds = 1;
    })
    .await;
    for (name, code) in codes {
        let resp = provoke(&app, code).await;
        assert_error(resp, code.status().as_u16(), &name).await;
    }
    app.stop().await;
}

/// `| `code` | status | …` rows of README's "Error codes" table.
fn readme_codes() -> Vec<(String, u16)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("### Error codes")
        .nth(1)
        .expect("README has an \"### Error codes\" section");
    let row = regex::Regex::new(r"^\| `([a-z_]+)` \| (\d{3}) \|").unwrap();
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| row.captures(l))
        .map(|c| (c[1].to_owned(), c[2].parse().unwrap()))
        .collect()
}

#[test]
fn readme_documents_every_code_with_its_status() {
    let documented = readme_codes();
    let expected: Vec<(String, u16)> = spec_codes()
        .into_iter()
        .map(|(name, code)| (name, code.status().as_u16()))
        .collect();
    assert_eq!(documented, expected, "README's error code table");
}
