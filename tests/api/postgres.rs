//! What only PostgreSQL has: `dravo store copy` between the backends, migrations when nodes
//! start together, and the commands that know which backend they face (doctor, backup,
//! restore). Needs `DRAVO_TEST_POSTGRES_URL` (see tests/api/support/backend.rs).

use crate::support;
use crate::support::fake_provider;
use crate::support::fake_x_server;

use std::path::Path;
use std::process::{Command, Output};

use dravo::store::copy::CopyRow;
use dravo::store::tables::TABLES;
use dravo::store::{PgStore, SqliteStore, Store};
use fake_provider::{FakeProvider, Kind};
use fake_x_server::{CLIENT_ID, CLIENT_SECRET, connect, issue_token, serve_command};
use serde_json::Value;
use support::backend::{fresh_schema, postgres_server, psql};
use support::dravo_cmd;
use support::process::{Server, http, runtime, tempdir};

const TENANT: &str = "tenant-pg";

/// The test database, unless this is the pass that puts every test's store on PostgreSQL:
/// these tests set SQLite and PostgreSQL side by side themselves, and ran in the first pass.
fn side_by_side() -> Option<String> {
    if support::is_postgres() {
        println!("skipped in the PostgreSQL pass: this test chooses its backends itself");
        return None;
    }
    postgres_server()
}

/// How many PostgreSQL migrations this build has: the files in its migrations folder.
fn postgres_migrations() -> i64 {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/store/postgres/migrations");
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count() as i64
}

fn run(mut cmd: Command, args: &[&str]) -> Output {
    cmd.args(args).output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every row of every table, by position, as the store exports them.
async fn dump(store: &dyn Store) -> Vec<(&'static str, Vec<CopyRow>)> {
    let mut all = Vec::new();
    for table in TABLES {
        all.push((
            table.name,
            store.export_rows(table, 0, 1_000_000).await.unwrap(),
        ));
    }
    all
}

/// A SQLite database in `dir` with apps, connected accounts, their events and webhook events
/// (the receiver is down, so they stay pending), made by a real server.
fn populated_sqlite(dir: &Path, fake: &FakeProvider) -> (String, String) {
    support::cmd::dravo_init(dir, &[]);
    let jwt = issue_token(dir, TENANT);
    let mut serve = serve_command(dir, fake);
    serve
        .env("DRAVO_WEBHOOKS_URL", "http://127.0.0.1:9/hooks")
        .env("DRAVO_WEBHOOKS_SECRET", "whsec_pg_copy_0123456789ab");
    let mut server = Server::start(serve);
    let rt = runtime();
    let (account, token) = rt.block_on(async {
        for i in 0..3 {
            fake.set_account(&format!("copy-{i}"), Some(&format!("user{i}")), None);
            connect(&server, &jwt).await;
        }
        // An app created and deleted before another: positions with a gap, which the copy
        // must keep (cursors handed out before the move stay valid).
        let mut gone = String::new();
        for name in ["first", "gone", "byok"] {
            let resp = http()
                .post(server.url("/v1/oauth-apps"))
                .bearer_auth(&jwt)
                .json(&support::app_body("linkedin", name))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 201);
            let app: Value = resp.json().await.unwrap();
            if name == "gone" {
                gone = app["id"].as_str().unwrap().to_owned();
            }
        }
        let deleted = http()
            .delete(server.url(&format!("/v1/oauth-apps/{gone}")))
            .bearer_auth(&jwt)
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), 204);
        let accounts: Value = http()
            .get(server.url("/v1/accounts"))
            .bearer_auth(&jwt)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = accounts["data"][1]["id"].as_str().unwrap().to_owned();
        let token: Value = http()
            .get(server.url(&format!("/v1/accounts/{id}/access-token")))
            .bearer_auth(&jwt)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (id, token["access_token"].as_str().unwrap().to_owned())
    });
    server.stop();
    (account, token)
}

#[test]
fn store_copy_moves_everything_to_postgres_and_back() {
    let Some(base) = side_by_side() else { return };
    let rt = runtime();
    let dir = tempdir();
    let fake = rt.block_on(FakeProvider::start(Kind::X, CLIENT_ID, CLIENT_SECRET));
    let (account, token) = populated_sqlite(dir.path(), &fake);
    let url = fresh_schema(&base);
    let db = dir.path().join("dravo.db");

    let copied = ok(run(
        dravo_cmd(dir.path()),
        &[
            "store",
            "copy",
            "--from",
            db.to_str().unwrap(),
            "--to",
            &url,
        ],
    ));
    assert!(copied.contains("every table's count matches"), "{copied}");
    assert!(
        !copied.contains("options="),
        "the URL is not printed: {copied}"
    );

    // Every row, position and byte is the same on PostgreSQL.
    let (original, on_pg) = rt.block_on(async {
        let sqlite = SqliteStore::open(&db).unwrap();
        let pg = PgStore::connect(&url, None).await.unwrap();
        (dump(&sqlite).await, dump(&pg).await)
    });
    let count = |d: &[(&str, Vec<CopyRow>)], t: &str| {
        d.iter().find(|(n, _)| *n == t).map_or(0, |(_, r)| r.len())
    };
    assert_eq!(count(&original, "accounts"), 3);
    assert_eq!(count(&original, "oauth_apps"), 2);
    assert!(count(&original, "account_events") >= 3);
    assert!(count(&original, "webhook_outbox") >= 3);
    assert_eq!(count(&original, "master_keys"), 1);
    let apps = &original.iter().find(|(n, _)| *n == "oauth_apps").unwrap().1;
    let positions: Vec<_> = apps.iter().map(|r| r.position).collect();
    assert_eq!(positions, [Some(1), Some(3)], "the deleted app left a gap");
    assert_eq!(original, on_pg);

    // A server on the copy, with the same key file, opens the same token.
    let mut serve = serve_command(dir.path(), &fake);
    serve.env("DRAVO_DATABASE_URL", &url);
    let server = Server::start(serve);
    let jwt = ok(run(
        {
            let mut c = dravo_cmd(dir.path());
            c.env("DRAVO_DATABASE_URL", &url);
            c
        },
        &["token", "issue", "--sub", TENANT],
    ));
    let read: Value = rt.block_on(async {
        http()
            .get(server.url(&format!("/v1/accounts/{account}/access-token")))
            .bearer_auth(jwt.trim())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(read["access_token"], token.as_str());
    drop(server);

    // And back into a new SQLite file: the same again.
    let back = dir.path().join("back.db");
    ok(run(
        dravo_cmd(dir.path()),
        &[
            "store",
            "copy",
            "--from",
            &url,
            "--to",
            back.to_str().unwrap(),
        ],
    ));
    let returned = rt.block_on(async { dump(&SqliteStore::open(&back).unwrap()).await });
    assert_eq!(original, returned);
}

#[test]
fn store_copy_refuses_a_target_that_holds_data() {
    let Some(base) = side_by_side() else { return };
    let dir = tempdir();
    support::cmd::dravo_init(dir.path(), &[]);
    let url = fresh_schema(&base);
    let mut on_pg = dravo_cmd(dir.path());
    on_pg.env("DRAVO_DATABASE_URL", &url);
    ok(run(on_pg, &["init"]));
    let db = dir.path().join("dravo.db");
    let refused = run(
        dravo_cmd(dir.path()),
        &[
            "store",
            "copy",
            "--from",
            db.to_str().unwrap(),
            "--to",
            &url,
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("already holds data"), "{err}");
    let keys: i64 = psql(&url, "SELECT count(*) FROM master_keys")[0].get(0);
    assert_eq!(keys, 1, "the target is untouched");
    // A missing source is named, and nothing is created for it.
    let missing = dir.path().join("missing.db");
    let refused = run(
        dravo_cmd(dir.path()),
        &[
            "store",
            "copy",
            "--from",
            missing.to_str().unwrap(),
            "--to",
            &url,
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no SQLite database at"));
    assert!(!missing.exists());
}

#[test]
fn nodes_starting_together_apply_each_migration_once_and_agree_on_one_key() {
    let Some(base) = side_by_side() else { return };
    let dir = tempdir();
    let url = fresh_schema(&base);
    // The key file first (as an operator distributes it), then six processes at once.
    let key = ok(run(dravo_cmd(dir.path()), &["keys", "generate"]));
    let children: Vec<_> = (0..6)
        .map(|_| {
            let mut c = dravo_cmd(dir.path());
            c.env("DRAVO_DATABASE_URL", &url)
                .env("DRAVO_SECURITY_MASTER_KEY", key.trim())
                .arg("init")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        ok(child.wait_with_output().unwrap());
    }
    let versions: Vec<i64> = psql(
        &url,
        "SELECT version FROM dravo_migrations ORDER BY version",
    )
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert_eq!(versions, (1..=postgres_migrations()).collect::<Vec<_>>());
    let keys: i64 = psql(&url, "SELECT count(*) FROM master_keys")[0].get(0);
    assert_eq!(keys, 1);
}

#[test]
fn doctor_backup_and_restore_know_they_face_postgres() {
    let Some(base) = side_by_side() else { return };
    let dir = tempdir();
    let url = fresh_schema(&base);
    // Doctor asks the bound address whether Dravo answers: a port of this test's own, not the
    // default 127.0.0.1:8080, where the user's own server may run.
    let (_reserved, port) = support::unanswered_port();
    let bind = format!("127.0.0.1:{port}");
    let on = |url: &str| {
        let mut c = dravo_cmd(dir.path());
        c.env("DRAVO_DATABASE_URL", url)
            .env("DRAVO_SERVER_BIND", &bind);
        c
    };
    ok(run(on(&url), &["init"]));
    let doctor = run(on(&url), &["doctor"]);
    let report = String::from_utf8_lossy(&doctor.stdout);
    let database = report
        .lines()
        .find(|l| l.contains("database"))
        .unwrap_or_default();
    assert!(
        database.starts_with("ok")
            && database.contains(&format!("schema {}", postgres_migrations()))
            && database.contains("sealed with this key"),
        "{report}"
    );

    // Another key: doctor fails on the database line.
    let other_key = ok(run(dravo_cmd(dir.path()), &["keys", "generate"]));
    let mut wrong = on(&url);
    wrong.env("DRAVO_SECURITY_MASTER_KEY", other_key.trim());
    let doctor = run(wrong, &["doctor"]);
    assert_eq!(doctor.status.code(), Some(1));
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("FAIL") && l.contains("database")),
        "{report}"
    );

    // Unreachable: named by host, never with its password.
    let down = "postgres://dravo:hunter2-secret@127.0.0.1:1/dravo";
    let doctor = run(on(down), &["doctor"]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&doctor.stdout),
        String::from_utf8_lossy(&doctor.stderr)
    );
    assert_eq!(doctor.status.code(), Some(1), "{all}");
    assert!(all.contains("127.0.0.1:1"), "{all}");
    assert!(!all.contains("hunter2"), "the password leaked: {all}");

    for (args, says) in [
        (vec!["backup", "b.db"], "pg_dump"),
        (vec!["restore", "b.db"], "store copy"),
    ] {
        let out = run(on(&url), &args);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!dir.path().join("b.db").exists());
    }
}
