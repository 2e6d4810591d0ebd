//! `dravo keys rotate` and `dravo keys status` with the real binary and a real `dravo serve`
//! process: rotating while the server reads and writes, a `kill -9` in the middle and the
//! resume, a server started mid-rotation, a state and a dashboard token from before the
//! rotation used after it, and a value that names a key nobody holds.

use crate::support;
use crate::support::fake_provider;
use crate::support::fake_x_server;

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dravo::Dravo;
use dravo::domain::{AppId, Owner};
use fake_provider::{FakeProvider, Kind};
use fake_x_server::{
    CLIENT_ID, CLIENT_SECRET, connect, consent_and_callback, issue_token, serve_command, start,
};
use serde_json::{Value, json};
use support::cmd::{Out, dravo, dravo_init, dravo_with};
use support::process::{SAFETY_TIMEOUT, Server, http, runtime, tempdir};
use support::{Db, dravo_cmd, test_config};

const TENANT: &str = "tenant-rotation";

/// `dravo serve` in `dir` with the fake X as the default app, no background refresher and
/// no rate limits.
fn serve(dir: &Path, fake: &FakeProvider) -> Server {
    Server::start(serve_command(dir, fake))
}

async fn account_ids(server: &Server, jwt: &str) -> Vec<String> {
    let listed: Value = http()
        .get(server.url("/v1/accounts"))
        .bearer_auth(jwt)
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
}

/// The stored access token, through the server (refreshed first only when due).
async fn access_token(server: &Server, jwt: &str, id: &str) -> String {
    let resp = http()
        .get(server.url(&format!("/v1/accounts/{id}/access-token")))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn create_app(server: &Server, jwt: &str, name: &str, secret: &str) -> String {
    let resp = http()
        .post(server.url("/v1/oauth-apps"))
        .bearer_auth(jwt)
        .json(&json!({"provider": "x", "name": name, "client_id": "cid", "client_secret": secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let body: Value = resp.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

/// Opens every app's client secret through the core, in this process, from the database
/// and key file in `dir` (the server may be running).
fn assert_secrets_open(dir: &Path, apps: &[(String, String)]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dravo = Dravo::open_existing(test_config(dir)).await.unwrap();
        let owner = Owner::parse("tenant", TENANT).unwrap();
        for (id, secret) in apps {
            let creds = dravo
                .app_credentials(&owner, &AppId::parse(id).unwrap())
                .await
                .unwrap_or_else(|e| panic!("the secret of {id} does not open: {e}"));
            assert_eq!(creds.client_secret.expose(), secret, "the secret of {id}");
        }
    });
}

fn status(dir: &Path) -> Value {
    let out = dravo(dir, &["keys", "status", "--json"]);
    out.assert_success();
    out.json()
}

/// `keys status`: the key's role and how many values it seals.
fn key_of(status: &Value, id: u64) -> (String, u64) {
    let key = status["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap_or_else(|| panic!("no key {id} in {status}"));
    (
        key["role"].as_str().unwrap().to_owned(),
        key["values"].as_u64().unwrap(),
    )
}

fn assert_rotated(out: &Out, new_key: u64) {
    out.assert_success();
    assert!(
        out.stdout
            .starts_with(&format!("rotated to master key {new_key}: re-sealed ")),
        "{}",
        out.describe()
    );
}

#[test]
fn rotating_while_the_server_reads_and_writes_loses_nothing() {
    const ACCOUNTS: usize = 4;
    const CREATORS: usize = 4;
    let dir = tempdir();
    dravo_init(dir.path(), &[]);
    let jwt = issue_token(dir.path(), TENANT);
    let rt = runtime();
    let fake = rt.block_on(FakeProvider::start(Kind::X, CLIENT_ID, CLIENT_SECRET));
    let mut server = serve(dir.path(), &fake);

    let (ids, mut apps) = rt.block_on(async {
        for i in 0..ACCOUNTS {
            fake.set_account(&format!("7700{i}"), Some(&format!("user{i}")), None);
            connect(&server, &jwt).await;
        }
        let mut apps = Vec::new();
        for i in 0..20 {
            let secret = format!("before-{i}-{}", support::random_suffix());
            apps.push((
                create_app(&server, &jwt, &format!("before-{i}"), &secret).await,
                secret,
            ));
        }
        (account_ids(&server, &jwt).await, apps)
    });
    assert_eq!(ids.len(), ACCOUNTS);
    assert_eq!(
        key_of(&status(dir.path()), 1),
        ("current".into(), 20 + 2 * 4)
    );

    // Apps are created and tokens refreshed and read all through the rotation.
    let stop = Arc::new(AtomicBool::new(false));
    let mut creators = Vec::new();
    let mut refreshers = Vec::new();
    for c in 0..CREATORS {
        let (url, jwt, stop) = (server.url("/v1/oauth-apps"), jwt.clone(), stop.clone());
        creators.push(rt.spawn(async move {
            let client = http();
            let mut acknowledged = Vec::new();
            for n in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let secret = format!("during-{c}-{n}-{}", support::random_suffix());
                let body = json!({"provider": "x", "name": format!("during-{c}-{n}"),
                    "client_id": "cid", "client_secret": secret});
                let resp = client
                    .post(&url)
                    .bearer_auth(&jwt)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
                let app: Value = resp.json().await.unwrap();
                acknowledged.push((app["id"].as_str().unwrap().to_owned(), secret));
            }
            acknowledged
        }));
    }
    for id in ids.clone() {
        let (jwt, stop) = (jwt.clone(), stop.clone());
        let url = server.url(&format!("/v1/accounts/{id}/access-token"));
        refreshers.push(rt.spawn(async move {
            let client = http();
            let mut last = None;
            let mut n = 0;
            // The event log keeps 200 per account: stay well under it.
            while n < 150 && !stop.load(Ordering::Relaxed) {
                let force = n % 2 == 0;
                let resp = client
                    .get(format!("{url}?force_refresh={force}"))
                    .bearer_auth(&jwt)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
                let body: Value = resp.json().await.unwrap();
                last = Some(body["access_token"].as_str().unwrap().to_owned());
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (id, last, n)
        }));
    }
    std::thread::sleep(Duration::from_millis(200));
    let out = dravo(
        dir.path(),
        &["keys", "rotate", "--batch-size", "3", "--pause-ms", "10"],
    );
    assert_rotated(&out, 2);
    // Piped: plain progress lines, the last one complete.
    assert!(
        out.stderr
            .contains("starting the rotation from master key 1 to key 2"),
        "{}",
        out.describe()
    );
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (during, refreshed) = rt.block_on(async {
        let mut during = Vec::new();
        for c in creators {
            during.extend(c.await.unwrap());
        }
        let mut refreshed = HashMap::new();
        for r in refreshers {
            let (id, last, n) = r.await.unwrap();
            refreshed.insert(id, (last.unwrap(), n));
        }
        (during, refreshed)
    });
    assert!(
        during.len() >= CREATORS,
        "the load ran: {} apps",
        during.len()
    );
    assert!(refreshed.values().all(|(_, n)| *n > 2), "{refreshed:?}");
    apps.extend(during);

    // Every acknowledged write is there and opens; the last token each reader got is the
    // stored one (nothing was overwritten with a stale value).
    assert_secrets_open(dir.path(), &apps);
    rt.block_on(async {
        for (id, (last, _)) in &refreshed {
            assert_eq!(&access_token(&server, &jwt, id).await, last, "{id}");
        }
    });
    let after = status(dir.path());
    assert_eq!(key_of(&after, 1), ("retired".into(), 0), "{after}");
    assert_eq!(
        key_of(&after, 2),
        ("current".into(), apps.len() as u64 + 2 * ACCOUNTS as u64),
        "{after}"
    );
    assert_eq!(after["unknown_values"], 0);
    assert_eq!(after["rotation_in_progress"], false);
    // The old key is gone from the key file; only its state and token keys remain, for now.
    let key_file = std::fs::read_to_string(dir.path().join("dravo.key")).unwrap();
    assert!(
        key_file.contains("\nkey 2 ") && !key_file.contains("\nkey 1 "),
        "{key_file}"
    );
    assert!(key_file.contains("\ngrace 1 "), "{key_file}");
    server.stop();
}

/// Spawns `dravo keys rotate` with tiny, slow batches, and kills it (SIGKILL) once it has
/// re-sealed two thirds of the values or more, but not all.
fn kill_a_rotation_midway(dir: &Path, total: u64) {
    let mut rotate = dravo_cmd(dir)
        .args(["keys", "rotate", "--batch-size", "1", "--pause-ms", "100"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + SAFETY_TIMEOUT;
    loop {
        let now = status(dir);
        let has_key_2 = now["keys"].as_array().unwrap().len() == 2;
        if has_key_2 {
            let (_, left) = key_of(&now, 1);
            if left > 0 && left <= total / 3 {
                break;
            }
            assert!(
                left > 0,
                "the rotation finished before it could be killed: {now}"
            );
        }
        assert!(
            Instant::now() < deadline,
            "the rotation never got going: {now}"
        );
        assert!(
            rotate.try_wait().unwrap().is_none(),
            "the rotation exited early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // One rotation at a time.
    let second = dravo(dir, &["keys", "rotate"]);
    second.assert_runtime_error();
    assert!(
        second
            .stderr
            .contains("another `dravo keys rotate` is running"),
        "{}",
        second.describe()
    );
    rotate.kill().unwrap(); // SIGKILL
    rotate.wait().unwrap();
}

/// The key id in the header of an app's sealed client secret, read from the database.
fn app_secret_key(dir: &Path, id: &str) -> u32 {
    let sealed = Db::open(&dir.join("dravo.db"))
        .value(
            "SELECT client_secret_sealed FROM oauth_apps WHERE id = ?1",
            &[id.into()],
        )
        .blob();
    assert_eq!(sealed[0], 2, "version 2 layout");
    u32::from_be_bytes(sealed[1..5].try_into().unwrap())
}

#[test]
fn a_rotation_killed_midway_leaves_everything_readable_and_resumes() {
    let dir = tempdir();
    dravo_init(dir.path(), &[]);
    let jwt = issue_token(dir.path(), TENANT);
    let rt = runtime();
    let fake = rt.block_on(FakeProvider::start(Kind::X, CLIENT_ID, CLIENT_SECRET));
    let mut running = serve(dir.path(), &fake);
    let (ids, mut apps) = rt.block_on(async {
        for i in 0..3 {
            fake.set_account(&format!("8800{i}"), Some(&format!("user{i}")), None);
            connect(&running, &jwt).await;
        }
        let mut apps = Vec::new();
        for i in 0..40 {
            let secret = format!("secret-{i}-{}", support::random_suffix());
            apps.push((
                create_app(&running, &jwt, &format!("app-{i}"), &secret).await,
                secret,
            ));
        }
        (account_ids(&running, &jwt).await, apps)
    });
    let tokens: Vec<String> = rt.block_on(async {
        let mut tokens = Vec::new();
        for id in &ids {
            tokens.push(access_token(&running, &jwt, id).await);
        }
        tokens
    });
    // Re-sealed in this order: app secrets, access tokens, refresh tokens.
    let total = 6 + 2 * 3;

    kill_a_rotation_midway(dir.path(), total);
    // The server that ran all along reads the values the rotation re-sealed with key 2 (at
    // least the first access tokens), which it did not hold: it reads the key file again.
    rt.block_on(async {
        for (id, token) in ids.iter().zip(&tokens) {
            assert_eq!(&access_token(&running, &jwt, id).await, token);
        }
    });
    // The server that ran all along seals with key 2 at once: the database names the key
    // that seals, read in the writing transaction (its key watch may not have run yet).
    let secret = format!("right-after-{}", support::random_suffix());
    let id = rt.block_on(create_app(&running, &jwt, "right-after", &secret));
    assert_eq!(app_secret_key(dir.path(), &id), 2);
    apps.push((id, secret));

    let midway = status(dir.path());
    assert_eq!(midway["rotation_in_progress"], true, "{midway}");
    let (role, left) = key_of(&midway, 1);
    assert_eq!(role, "previous");
    assert!(left > 0 && left < total, "{midway}");
    assert_eq!(key_of(&midway, 2).0, "current");

    // A server started now reads values under both keys, and seals new ones with key 2.
    let mut started = serve(dir.path(), &fake);
    rt.block_on(async {
        for (id, token) in ids.iter().zip(&tokens) {
            assert_eq!(&access_token(&started, &jwt, id).await, token);
        }
        let secret = format!("mid-{}", support::random_suffix());
        let id = create_app(&started, &jwt, "made-mid-rotation", &secret).await;
        assert_eq!(app_secret_key(dir.path(), &id), 2);
        apps.push((id, secret));
        fake.set_account("88009", Some("late"), None);
        connect(&started, &jwt).await;
    });
    assert_secrets_open(dir.path(), &apps);
    let (_, left_now) = key_of(&status(dir.path()), 1);
    assert_eq!(left_now, left, "new values are sealed with key 2");

    // Running it again resumes (both servers still serving) and finishes.
    let out = dravo(dir.path(), &["keys", "rotate"]);
    assert_rotated(&out, 2);
    assert!(
        out.stderr
            .contains("resuming the rotation from master key 1 to key 2"),
        "{}",
        out.describe()
    );
    assert!(
        out.stdout.contains(&format!("re-sealed {left} value")),
        "{}",
        out.describe()
    );
    let done = status(dir.path());
    assert_eq!(key_of(&done, 1), ("retired".into(), 0), "{done}");
    assert_eq!(done["rotation_in_progress"], false);
    assert_secrets_open(dir.path(), &apps);
    rt.block_on(async {
        for server in [&running, &started] {
            for (id, token) in ids.iter().zip(&tokens) {
                assert_eq!(&access_token(server, &jwt, id).await, token);
            }
        }
    });
    running.stop();
    started.stop();
    // And a server started after the rotation, with only key 2 in the file, reads them too.
    let mut after = serve(dir.path(), &fake);
    rt.block_on(async {
        for (id, token) in ids.iter().zip(&tokens) {
            assert_eq!(&access_token(&after, &jwt, id).await, token);
        }
    });
    assert_secrets_open(dir.path(), &apps);
    after.stop();
}

/// Starts a connect and takes a dashboard token before the rotation; both are used after it.
fn state_and_token_across_a_rotation(grace: &str) -> (u16, String, u16) {
    let dir = tempdir();
    dravo_init(dir.path(), &[]);
    let old_jwt = issue_token(dir.path(), TENANT);
    let rt = runtime();
    let fake = rt.block_on(FakeProvider::start(Kind::X, CLIENT_ID, CLIENT_SECRET));
    let mut server = serve(dir.path(), &fake);
    let authorize_url = rt.block_on(start(&server, &old_jwt));

    let out = dravo(dir.path(), &["keys", "rotate", "--grace", grace]);
    assert_rotated(&out, 2);
    let said = if grace == "0" {
        "are refused from now on"
    } else {
        "are accepted until"
    };
    assert!(out.stdout.contains(said), "{}", out.describe());
    // The running server notices the retirement (its key watch reloads the keys).
    server
        .logs
        .wait_for("the server to reload its keys without key 1", |logs| {
            logs.lines().any(|l| {
                l.contains("master keys reloaded") && l.trim_end().ends_with("live_keys=2")
            })
        });
    let (status, body) = rt.block_on(consent_and_callback(&authorize_url));
    let old_token_status = rt.block_on(async {
        http()
            .get(server.url("/v1/accounts"))
            .bearer_auth(&old_jwt)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    // A token issued now is signed with key 2, and works.
    let new_jwt = issue_token(dir.path(), TENANT);
    assert_ne!(new_jwt, old_jwt);
    let new_status = rt.block_on(async {
        http()
            .get(server.url("/v1/accounts"))
            .bearer_auth(&new_jwt)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(new_status, 200);
    server.stop();
    (status, body, old_token_status)
}

#[test]
fn a_state_and_a_dashboard_token_from_before_a_rotation_work_after_it() {
    let (status, body, old_token) = state_and_token_across_a_rotation("3600");
    assert_eq!(status, 200, "{body}");
    assert!(body.to_lowercase().contains("connected"), "{body}");
    assert_eq!(old_token, 200);
}

/// The control for the test above: without a grace period, the old key's state and token
/// are refused once it is retired.
#[test]
fn without_a_grace_period_the_old_keys_state_and_token_are_refused() {
    let (status, body, old_token) = state_and_token_across_a_rotation("0");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not issued by this server"), "{body}");
    assert_eq!(old_token, 401);
}

#[test]
fn a_value_sealed_by_an_unknown_key_is_a_clear_error() {
    let dir = tempdir();
    dravo_init(dir.path(), &[]);
    let jwt = issue_token(dir.path(), TENANT);
    let rt = runtime();
    let fake = rt.block_on(FakeProvider::start(Kind::X, CLIENT_ID, CLIENT_SECRET));
    let mut server = serve(dir.path(), &fake);
    let id = rt.block_on(async {
        connect(&server, &jwt).await;
        account_ids(&server, &jwt).await.remove(0)
    });
    // The header names key 9, which no key file holds.
    let db = Db::open(&dir.path().join("dravo.db"));
    let mut sealed = db
        .value(
            "SELECT access_token_sealed FROM accounts WHERE id = ?1",
            &[(&id).into()],
        )
        .blob();
    assert_eq!(&sealed[..5], [2, 0, 0, 0, 1], "sealed with key 1");
    sealed[1..5].copy_from_slice(&9u32.to_be_bytes());
    db.execute(
        "UPDATE accounts SET access_token_sealed = ?2 WHERE id = ?1",
        &[(&id).into(), sealed.into()],
    );

    let (code, body) = rt.block_on(async {
        let resp = http()
            .get(server.url(&format!("/v1/accounts/{id}/access-token")))
            .bearer_auth(&jwt)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
    });
    assert_eq!(code, 500);
    assert_eq!(
        body,
        json!({"error": {"code": "internal", "message": "internal server error"}})
    );
    server.logs.wait_for("the cause in the log", |logs| {
        logs.contains("names master key 9, which the key file")
    });
    let out = dravo(dir.path(), &["accounts", "token", "--owner", TENANT, &id]);
    out.assert_runtime_error();
    assert!(
        out.stderr.contains("a sealed value names master key 9")
            && out.stderr.contains("dravo.key"),
        "{}",
        out.describe()
    );
    let now = status(dir.path());
    assert_eq!(now["unknown_values"], 1, "{now}");
    server.stop();
}

#[test]
fn a_master_key_from_the_config_is_not_rotated_in_place() {
    let dir = tempdir();
    let key = dravo(dir.path(), &["keys", "generate"])
        .stdout
        .trim()
        .to_owned();
    let env = [("DRAVO_SECURITY_MASTER_KEY", key.as_str())];
    dravo_init(dir.path(), &env);
    let out = dravo_with(dir.path(), &env, &["keys", "rotate"], "");
    out.assert_runtime_error().assert_hides(&key);
    assert!(
        out.stderr.contains("security.master_key")
            && out.stderr.contains("key file")
            && out.stderr.contains("then run `dravo keys rotate`"),
        "{}",
        out.describe()
    );
}

/// In one process, without the server's key watch: a core opened before another process
/// rotated opens the re-sealed values (it reads the key file again on an unknown key id)
/// and seals new ones with the new key (the database names it in the writing transaction).
#[tokio::test]
async fn a_core_opened_before_a_rotation_follows_it_without_a_restart() {
    use dravo::domain::{AppName, ClientId, ClientSecret};
    use dravo::service::NewApp;
    use dravo::service::keys::RotateOptions;

    let dir = tempdir();
    let before = Dravo::open(test_config(dir.path()), None).await.unwrap();
    let owner = Owner::parse("tenant", TENANT).unwrap();
    let new_app = |i: usize| NewApp {
        provider: "x".parse().unwrap(),
        name: AppName::parse(&format!("app-{i}")).unwrap(),
        client_id: Some(ClientId::parse("cid").unwrap()),
        client_secret: Some(ClientSecret::parse(&format!("secret-{i}")).unwrap()),
        website: None,
        scopes: None,
        user_agent: None,
    };
    let mut apps = Vec::new();
    for i in 0..3 {
        apps.push(before.create_app(&owner, new_app(i)).await.unwrap().id);
    }

    let other = Dravo::open_existing(test_config(dir.path())).await.unwrap();
    let options = RotateOptions {
        batch_size: 2,
        pause: Duration::ZERO,
        grace_seconds: 0,
    };
    let report = other.rotate_keys(options, &mut |_| {}).await.unwrap();
    assert_eq!(report.new_key.get(), 2);
    assert_eq!(report.resealed, 3);

    for (i, id) in apps.iter().enumerate() {
        let creds = before
            .app_credentials(&owner, &AppId::parse(id).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(creds.client_secret.expose(), format!("secret-{i}"));
    }
    let id = before.create_app(&owner, new_app(9)).await.unwrap().id;
    assert_eq!(app_secret_key(dir.path(), &id), 2);
    // Nothing opens with the retired key any more: its values are all re-sealed.
    let status = before.keys_status().await.unwrap();
    assert_eq!(status.keys[0].values, 0);
    assert_eq!(status.keys[1].values, 4);
}
