//! Every read sees every commit: a write by another process (the CLI) or through the server
//! shows up at once on every worker and every connection.

use crate::support;

use support::{app_body, dravo_cmd, spawn_app, spawn_app_with};

fn cli_create(dir: &std::path::Path, name: &str) -> String {
    let out = dravo_cmd(dir)
        .args([
            "oauth-apps",
            "create",
            "--owner",
            "alice",
            "--provider",
            "x",
            "--name",
            name,
            "--client-id",
            "cid",
            "--client-secret-env",
            "SECRET",
            "--json",
        ])
        .env("SECRET", "s3cret")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let app: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    app["id"].as_str().unwrap().to_owned()
}

async fn listed_ids(app: &support::TestApp) -> Vec<String> {
    let list: Vec<serde_json::Value> = app
        .get_as("alice", "/v1/oauth-apps")
        .await
        .json()
        .await
        .unwrap();
    list.iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn cli_writes_show_up_in_reads_immediately() {
    let app = spawn_app().await;
    let first: serde_json::Value = app
        .create_app("alice", &app_body("x", "one"))
        .await
        .json()
        .await
        .unwrap();
    let first = first["id"].as_str().unwrap().to_owned();
    // Read the list, the list filtered by provider, and the single app first.
    assert_eq!(listed_ids(&app).await, vec![first.clone()]);
    assert_eq!(
        app.get_as("alice", "/v1/oauth-apps?provider=x")
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get_as("alice", &format!("/v1/oauth-apps/{first}"))
            .await
            .status(),
        200
    );

    let dir = app.dir.path().to_path_buf();
    let second = tokio::task::spawn_blocking(move || cli_create(&dir, "two"))
        .await
        .unwrap();
    assert_eq!(listed_ids(&app).await, vec![first.clone(), second.clone()]);
    let filtered: Vec<serde_json::Value> = app
        .get_as("alice", "/v1/oauth-apps?provider=x")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(filtered.len(), 2);

    let dir = app.dir.path().to_path_buf();
    let id = first.clone();
    let status = tokio::task::spawn_blocking(move || {
        dravo_cmd(&dir)
            .args(["oauth-apps", "delete", "--owner", "alice", &id])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(status.status.success());
    assert_eq!(listed_ids(&app).await, vec![second]);
    assert_eq!(
        app.get_as("alice", &format!("/v1/oauth-apps/{first}"))
            .await
            .status(),
        404
    );
    let start = app
        .get_as("alice", &format!("/v1/oauth/x/start?oauth_app_id={first}"))
        .await;
    assert_eq!(start.status(), 404);
    app.stop().await;
}

/// One kept-alive connection per client: each client's requests stay on one connection, and
/// tokio serves separate connections on whichever worker picked them up.
fn pinned_clients(n: usize) -> Vec<reqwest::Client> {
    (0..n)
        .map(|_| {
            reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap()
        })
        .collect()
}

async fn list_on(client: &reqwest::Client, app: &support::TestApp, token: &str) -> Vec<String> {
    let resp = client
        .get(app.url("/v1/oauth-apps"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let list: Vec<serde_json::Value> = resp.json().await.unwrap();
    list.iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn status_on(client: &reqwest::Client, url: &str, token: &str) -> u16 {
    client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The reported bug: after a commit by another process, a read on another worker missed it
/// (per-connection `data_version` counters compared against one shared version). Over 200
/// rounds on a 2-worker runtime, every read on every connection sees every commit: the CLI's
/// creates, and deletes made through the server itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_on_every_worker_sees_every_commit() {
    // 4 starts and deletions a round for 200 rounds, as fast as the CLI runs: above the start
    // and change limits, which this test is not about.
    let app = spawn_app_with(|c| {
        c.limits.start_per_second = dravo::config::LimitsConfig::MAX_PER_SECOND;
        c.limits.change_per_second = dravo::config::LimitsConfig::MAX_PER_SECOND;
    })
    .await;
    let token = app.token("alice");
    let clients = pinned_clients(4);
    let mut stale = Vec::new();
    for round in 0..200 {
        let dir = app.dir.path().to_path_buf();
        let name = format!("round {round}");
        let id = tokio::task::spawn_blocking(move || cli_create(&dir, &name))
            .await
            .unwrap();
        // Rotate which connection reads first after each commit: the bug showed when the
        // first reader after a commit ran on a worker whose counter lagged the others'.
        let order: Vec<usize> = (0..clients.len())
            .map(|i| (i + round) % clients.len())
            .collect();
        for &c in &order {
            let client = &clients[c];
            if !list_on(client, &app, &token).await.contains(&id) {
                stale.push(format!("round {round}: list on connection {c} missed {id}"));
            }
        }
        let one = app.url(&format!("/v1/oauth-apps/{id}"));
        for (c, client) in clients.iter().enumerate() {
            if status_on(client, &one, &token).await != 200 {
                stale.push(format!("round {round}: get on connection {c} missed {id}"));
            }
        }
        // Delete through the server on one connection; every connection must stop seeing it,
        // and `start` must stop building URLs with it.
        let deleted = clients[round % clients.len()]
            .delete(&one)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), 204);
        let start = app.url(&format!("/v1/oauth/x/start?oauth_app_id={id}"));
        for &c in order.iter().rev() {
            let client = &clients[c];
            if status_on(client, &one, &token).await != 404 {
                stale.push(format!(
                    "round {round}: get on connection {c} still saw deleted {id}"
                ));
            }
            if status_on(client, &start, &token).await != 404 {
                stale.push(format!(
                    "round {round}: start on connection {c} used deleted {id}"
                ));
            }
            if list_on(client, &app, &token).await.contains(&id) {
                stale.push(format!(
                    "round {round}: list on connection {c} still had deleted {id}"
                ));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "{} stale reads, first: {:?}",
        stale.len(),
        &stale[..stale.len().min(10)]
    );
    app.stop().await;
}

/// The second report: on a freshly started server, an app read on one connection, then
/// deleted (by the CLI or over HTTP), was still served on another connection. Each round
/// starts a new server, so every worker meets the database for the first time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_server_never_serves_a_deleted_app() {
    let mut stale = Vec::new();
    for round in 0..20 {
        let app = spawn_app().await;
        let token = app.token("alice");
        let dir = app.dir.path().to_path_buf();
        let id = tokio::task::spawn_blocking(move || cli_create(&dir, "doomed"))
            .await
            .unwrap();
        let one = app.url(&format!("/v1/oauth-apps/{id}"));
        let clients = pinned_clients(4);
        // Only the first connection reads before the delete.
        assert_eq!(status_on(&clients[0], &one, &token).await, 200);
        if round % 2 == 0 {
            let dir = app.dir.path().to_path_buf();
            let cli_id = id.clone();
            let status = tokio::task::spawn_blocking(move || {
                dravo_cmd(&dir)
                    .args(["oauth-apps", "delete", "--owner", "alice", &cli_id])
                    .output()
                    .unwrap()
            })
            .await
            .unwrap();
            assert!(status.status.success());
        } else {
            let resp = clients[0]
                .delete(&one)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 204);
        }
        let start = app.url(&format!("/v1/oauth/x/start?oauth_app_id={id}"));
        for (c, client) in clients.iter().enumerate() {
            if status_on(client, &one, &token).await != 404 {
                stale.push(format!(
                    "server {round}: connection {c} still served deleted {id}"
                ));
            }
            if status_on(client, &start, &token).await != 404 {
                stale.push(format!(
                    "server {round}: start on connection {c} used deleted {id}"
                ));
            }
        }
        app.stop().await;
    }
    assert!(stale.is_empty(), "{} stale reads: {:?}", stale.len(), stale);
}

async fn account_ids_on(
    client: &reqwest::Client,
    app: &support::TestApp,
    path: &str,
    token: &str,
) -> Vec<String> {
    let resp = client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page: serde_json::Value = resp.json().await.unwrap();
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

/// An account id whose last letters spell `n` (ids are 20 letters of base32).
fn account_id(n: usize) -> String {
    let mut letters = ['a'; 20];
    let mut rest = n;
    for slot in letters.iter_mut().rev() {
        *slot = (b'a' + (rest % 26) as u8) as char;
        rest /= 26;
    }
    format!("acc_{}", letters.iter().collect::<String>())
}

/// The first page of accounts, whose rendered body the server keeps while the database is
/// unchanged: a row another connection inserts or deletes (as another process would) shows
/// up in the next read on every worker and connection, with or without a filter or a page
/// size, 100 rounds over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_account_list_read_on_every_worker_sees_every_commit() {
    let app = spawn_app().await;
    let token = app.token("alice");
    let clients = pinned_clients(4);
    let db = support::Db::open(&app.db_path());
    let paths = [
        "/v1/accounts",
        "/v1/accounts?provider=x",
        "/v1/accounts?limit=500",
    ];
    let mut stale = Vec::new();
    for round in 0..100 {
        let id = account_id(round);
        db.execute(
            "INSERT INTO accounts (id, owner, provider, oauth_app_id, provider_account_id,
                                   username, display_name, scopes, status, access_token_sealed,
                                   refresh_token_sealed, expires_at, refresh_expires_at,
                                   created_at, updated_at)
             VALUES (?1, 'alice', 'x', NULL, ?1, 'someone', 'Someone', '[\"tweet.read\"]',
                     'active', ?2, NULL, NULL, NULL, 1704067200, 1704067200)",
            &[id.clone().into(), vec![0u8].into()],
        );
        for c in (0..clients.len()).map(|i| (i + round) % clients.len()) {
            for path in paths {
                if !account_ids_on(&clients[c], &app, path, &token)
                    .await
                    .contains(&id)
                {
                    stale.push(format!(
                        "round {round}: {path} on connection {c} missed {id}"
                    ));
                }
            }
        }
        db.execute("DELETE FROM accounts WHERE id = ?1", &[id.clone().into()]);
        for c in (0..clients.len()).rev() {
            for path in paths {
                if account_ids_on(&clients[c], &app, path, &token)
                    .await
                    .contains(&id)
                {
                    stale.push(format!(
                        "round {round}: {path} on connection {c} still had deleted {id}"
                    ));
                }
            }
        }
    }
    assert!(
        stale.is_empty(),
        "{} stale reads, first: {:?}",
        stale.len(),
        &stale[..stale.len().min(10)]
    );
    app.stop().await;
}
