//! Durability of the real `dravo serve` process: a `kill -9` in the middle of writes, the
//! server and CLI processes writing one database at once, and a full disk. What was
//! acknowledged must be there afterwards, whole; nothing half-written may show.

use crate::support;
use crate::support::fake_provider;
use crate::support::fake_x_server;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fake_provider::{FakeProvider, Kind};
use fake_x_server::{CLIENT_ID, CLIENT_SECRET, connect, issue_token, serve_command, unlimited};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::cmd::dravo_init;
use support::dravo_cmd;
use support::process::{Server, http, runtime, tempdir};

const TENANT: &str = "tenant-durable";

/// `dravo serve` in `dir` with the fake X as the default app and no background refresher.
fn serve(dir: &Path, fake: &FakeProvider) -> Server {
    let mut cmd = serve_command(dir, fake);
    // A refresh lease outlives its holder by 3 × this + 10 s: after the kill, accounts whose
    // refresh was in flight wait that long.
    cmd.env("DRAVO_PROVIDERS_TIMEOUT_SECONDS", "2")
        .env("DRAVO_WEBHOOKS_URL", "http://127.0.0.1:9/hooks")
        .env("DRAVO_WEBHOOKS_SECRET", "whsec_test_0123456789abcdef");
    Server::start(cmd)
}

fn fingerprint(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_kill_9_in_the_middle_of_writes_loses_nothing_acknowledged() {
    const ACCOUNTS: usize = 8;
    const CREATORS: usize = 8;
    let dir = tempdir();
    dravo_init(dir.path(), &[]);
    let jwt = issue_token(dir.path(), TENANT);
    let rt = runtime();
    let fake = rt.block_on(FakeProvider::start(Kind::X, CLIENT_ID, CLIENT_SECRET));
    let mut server = serve(dir.path(), &fake);
    let client = http();

    let account_ids: Vec<String> = rt.block_on(async {
        for i in 0..ACCOUNTS {
            fake.set_account(&format!("4200{i}"), Some(&format!("user{i}")), None);
            connect(&server, &jwt).await;
        }
        let listed: Value = client
            .get(server.url("/v1/accounts"))
            .bearer_auth(&jwt)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect()
    });
    assert_eq!(account_ids.len(), ACCOUNTS);

    // 8 clients create apps and 8 refresh one account each, until the server dies.
    let stop = Arc::new(AtomicBool::new(false));
    let (apps, refreshes) = rt.block_on(async {
        let mut creators = tokio::task::JoinSet::new();
        for c in 0..CREATORS {
            let (client, url, jwt, stop) = (
                client.clone(),
                server.url("/v1/oauth-apps"),
                jwt.clone(),
                stop.clone(),
            );
            creators.spawn(async move {
                let mut acknowledged = Vec::new();
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let secret = format!("secret-{c}-{n}-{}", support::random_suffix());
                    let body = json!({"provider": "x", "name": format!("app-{c}-{n}"),
                        "client_id": "cid", "client_secret": secret});
                    let Ok(resp) = client.post(&url).bearer_auth(&jwt).json(&body).send().await
                    else {
                        break;
                    };
                    if resp.status() != 201 {
                        break;
                    }
                    let Ok(app) = resp.json::<Value>().await else {
                        break;
                    };
                    acknowledged.push((app["id"].as_str().unwrap().to_owned(), secret));
                }
                acknowledged
            });
        }
        let mut refreshers = tokio::task::JoinSet::new();
        for id in account_ids.clone() {
            let (client, jwt, stop) = (client.clone(), jwt.clone(), stop.clone());
            let url = server.url(&format!(
                "/v1/accounts/{id}/access-token?force_refresh=true"
            ));
            refreshers.spawn(async move {
                let mut acknowledged = Vec::new();
                // The event log keeps 200 per account: stay well under it.
                while acknowledged.len() < 150 && !stop.load(Ordering::Relaxed) {
                    let Ok(resp) = client.get(&url).bearer_auth(&jwt).send().await else {
                        break;
                    };
                    if resp.status() != 200 {
                        break;
                    }
                    let Ok(body) = resp.json::<Value>().await else {
                        break;
                    };
                    acknowledged.push(body["access_token"].as_str().unwrap().to_owned());
                }
                (id, acknowledged)
            });
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        let apps: Vec<(String, String)> = creators.join_all().await.into_iter().flatten().collect();
        let refreshes: HashMap<String, Vec<String>> =
            refreshers.join_all().await.into_iter().collect();
        (apps, refreshes)
    });
    assert!(apps.len() >= CREATORS, "the load ran: {} apps", apps.len());
    assert!(
        refreshes.values().all(|r| !r.is_empty()),
        "every account was refreshed at least once"
    );

    let server = serve(dir.path(), &fake);
    if !support::is_postgres() {
        let db = support::open_db(&dir.path().join("dravo.db"));
        let integrity: String = db
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
    }

    // Every app that got a 201 is there, and its secret opens to what was sent.
    rt.block_on(async {
        let config = support::test_config(dir.path());
        let core = dravo::Dravo::open(config, None).await.unwrap();
        let owner = dravo::domain::Owner::parse("owner", TENANT).unwrap();
        for (id, secret) in &apps {
            let app = dravo::domain::AppId::parse(id).unwrap();
            let creds = core.app_credentials(&owner, &app).await.unwrap();
            assert_eq!(creds.client_secret.expose(), secret, "app {id}");
        }
    });

    let issued = fake.issued_access_tokens();
    let mut lost_in_flight = 0;
    rt.block_on(async {
        for (id, acknowledged) in &refreshes {
            let last = acknowledged.last().unwrap();
            // The stored token is the last one answered, or a later one whose answer the kill
            // cut off; never an older one.
            let stored: Value = client
                .get(server.url(&format!("/v1/accounts/{id}/access-token")))
                .bearer_auth(&jwt)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let stored = stored["access_token"].as_str().unwrap();
            let at = |t: &str| issued.iter().position(|i| i == t).unwrap();
            assert!(
                at(stored) >= at(last),
                "account {id} went back to an older token"
            );
            // Each answered refresh left its event.
            let events: Value = client
                .get(server.url(&format!("/v1/accounts/{id}/events?limit=500")))
                .bearer_auth(&jwt)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let logged: Vec<&str> = events["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["type"] == "refreshed")
                .map(|e| e["detail"]["fingerprint"].as_str().unwrap())
                .collect();
            for token in acknowledged {
                assert!(
                    logged.contains(&fingerprint(token).as_str()),
                    "no `refreshed` event for an answered refresh of {id}"
                );
            }
            // Access and refresh token were stored together: the stored refresh token is the
            // one X issued with the stored access token. When X has not spent it, a refresh
            // works. (When the kill cut off the answer to a refresh X had already made, X has
            // spent it: the account needs a new consent, and nothing can avoid that.)
            let paired = fake.refresh_token_issued_with(stored).unwrap();
            let unspent = fake.refresh_token_valid(&paired);
            let resp = client
                .get(server.url(&format!(
                    "/v1/accounts/{id}/access-token?force_refresh=true"
                )))
                .bearer_auth(&jwt)
                .send()
                .await
                .unwrap();
            if unspent {
                assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
            } else {
                assert_eq!(resp.status(), 409, "{}", resp.text().await.unwrap());
                lost_in_flight += 1;
            }
        }
    });
    let connected = support::Db::open(&dir.path().join("dravo.db"))
        .value(
            "SELECT count(*) FROM webhook_outbox WHERE type = 'account.connected'",
            &[],
        )
        .int();
    assert_eq!(
        connected, ACCOUNTS as i64,
        "every connect's webhook is in the outbox"
    );
}

#[test]
fn the_server_and_two_cli_processes_write_for_seconds_without_a_lock_error_or_a_lost_write() {
    let dir = tempdir();
    dravo_init(dir.path(), &[]);
    let jwt = issue_token(dir.path(), TENANT);
    let rt = runtime();
    let fake = rt.block_on(FakeProvider::start(Kind::X, CLIENT_ID, CLIENT_SECRET));
    let mut server = serve(dir.path(), &fake);
    let until = Instant::now() + Duration::from_secs(4);

    let cli = |lane: usize| {
        let dir = dir.path().to_owned();
        std::thread::spawn(move || {
            let mut created = Vec::new();
            let mut n = 0;
            while Instant::now() < until {
                let name = format!("cli{lane}-{n}");
                let out = dravo_cmd(&dir)
                    .args([
                        "oauth-apps",
                        "create",
                        "--owner",
                        TENANT,
                        "--provider",
                        "x",
                        "--name",
                        &name,
                        "--client-id",
                        "cid",
                        "--client-secret-env",
                        "SECRET",
                    ])
                    .env("SECRET", "cli-secret")
                    .stdin(Stdio::null())
                    .output()
                    .unwrap();
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(out.status.success(), "CLI create failed: {stderr}");
                assert!(!stderr.contains("locked"), "{stderr}");
                created.push(name);
                n += 1;
            }
            created
        })
    };
    let (one, two) = (cli(1), cli(2));
    let over_http: Vec<String> = rt.block_on(async {
        let client = http();
        let mut created = Vec::new();
        let mut n = 0;
        while Instant::now() < until {
            let name = format!("http-{n}");
            let resp = client
                .post(server.url("/v1/oauth-apps"))
                .bearer_auth(&jwt)
                .json(&json!({"provider": "x", "name": name, "client_id": "cid",
                    "client_secret": "http-secret"}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
            created.push(name);
            n += 1;
        }
        created
    });
    let mut expected: Vec<String> = over_http;
    expected.extend(one.join().unwrap());
    expected.extend(two.join().unwrap());
    assert!(
        expected.len() > 20,
        "several seconds of writes: {}",
        expected.len()
    );

    let listed: Value = rt.block_on(async {
        http()
            .get(server.url("/v1/oauth-apps"))
            .bearer_auth(&jwt)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    let mut names: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    expected.sort();
    assert_eq!(names, expected, "every acknowledged write is there, once");
    let logs = server.stop();
    assert!(!logs.contains("locked"), "{logs}");
}

/// `dravo serve` with its database on a 16 MiB tmpfs mounted in its own user and mount
/// namespace (`unshare -rm`, no root needed), filled but for `free_kib` by a ballast file.
/// The ballast is removed when the file `release` appears (outside the tmpfs).
fn serve_on_small_disk(dir: &Path, release: &Path, free_kib: u64) -> Server {
    let data = dir.join("disk");
    std::fs::create_dir_all(&data).unwrap();
    let dravo = env!("CARGO_BIN_EXE_dravo");
    let script = format!(
        r#"set -e
mount -t tmpfs -o size=16m dravo-small "{data}"
avail=$(df -k --output=avail "{data}" | tail -1)
dd if=/dev/zero of="{data}/ballast" bs=1k count=$((avail - {free_kib})) status=none
( while [ ! -e "{release}" ]; do sleep 0.05; done; rm -f "{data}/ballast" ) &
exec "{dravo}" serve"#,
        data = data.display(),
        release = release.display(),
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--user", "--map-root-user", "--mount", "sh", "-c", &script]);
    support::without_dravo_env(&mut cmd);
    cmd.current_dir(dir)
        .env("DRAVO_DATABASE_PATH", data.join("dravo.db"))
        .env("DRAVO_SECURITY_MASTER_KEY_FILE", dir.join("dravo.key"))
        .env(
            "DRAVO_AUTH_JWT_SECRET",
            "a-jwt-secret-for-the-disk-test-0123456789",
        );
    unlimited(&mut cmd);
    Server::start(cmd)
}

#[test]
fn a_full_disk_answers_clear_5xx_loses_nothing_acknowledged_and_recovers() {
    if support::sqlite_only("fills the disk under the SQLite file") {
        return;
    }
    let dir = tempdir();
    let release = dir.path().join("release-space");
    let mut server = serve_on_small_disk(dir.path(), &release, 256);
    let jwt = {
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), TENANT.into());
        claims.insert("exp".into(), (chrono_like_now() + 3600).into());
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"a-jwt-secret-for-the-disk-test-0123456789")
                .unwrap(),
        )
        .unwrap()
    };
    let rt = runtime();
    let client = http();
    let create = |name: String| {
        let (client, url, jwt) = (client.clone(), server.url("/v1/oauth-apps"), jwt.clone());
        async move {
            let body = json!({"provider": "x", "name": name, "client_id": "cid",
                "client_secret": format!("secret-{}", "s".repeat(400))});
            let resp = client
                .post(url)
                .bearer_auth(jwt)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    let (acknowledged, refused) = rt.block_on(async {
        let mut acknowledged = Vec::new();
        for n in 0..2000 {
            let (status, body) = create(format!("app-{n}")).await;
            match status {
                201 => acknowledged.push(body["id"].as_str().unwrap().to_owned()),
                _ => return (acknowledged, (status, body)),
            }
        }
        panic!("256 KiB never filled up");
    });
    assert!(!acknowledged.is_empty());
    let (status, body) = refused;
    assert!((500..600).contains(&status), "{status}: {body}");
    assert!(
        body["error"]["code"].is_string(),
        "a JSON error body: {body}"
    );
    let logs = server.logs.snapshot();
    assert!(
        logs.contains("full") || logs.contains("disk"),
        "the log says what is wrong: {logs}"
    );

    // Reads still work while the disk is full, and show every acknowledged write.
    let listed = |rt: &tokio::runtime::Runtime| -> Vec<String> {
        rt.block_on(async {
            let body: Value = client
                .get(server.url("/v1/oauth-apps"))
                .bearer_auth(&jwt)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body.as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_owned())
                .collect()
        })
    };
    let before = listed(&rt);
    for id in &acknowledged {
        assert!(before.contains(id), "acknowledged app {id} is missing");
    }

    // Space returns: writes succeed again, without a restart.
    std::fs::write(&release, b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = rt.block_on(create(format!("after-{}", support::random_suffix())));
        if status == 201 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never recovered: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = listed(&rt);
    for id in &acknowledged {
        assert!(
            after.contains(id),
            "acknowledged app {id} is missing after recovery"
        );
    }
    server.stop();
}

fn chrono_like_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
