//! `dravo backup` of a live database and `dravo restore`, with the real binary and a real
//! `dravo serve` process.

use crate::support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::{Value, json};
use support::cmd::{dravo, dravo_init};
use support::process::{Server, http, runtime, tempdir};
use support::{dravo_cmd, stored_secret};

const TENANT: &str = "tenant-backup";

fn jwt(dir: &Path) -> String {
    let out = dravo(dir, &["token", "issue", "--sub", TENANT]);
    assert_eq!(out.code, 0, "{}", out.describe());
    out.stdout.trim().to_owned()
}

fn create(dir: &Path, name: &str) {
    let out = support::cmd::dravo_with(
        dir,
        &[("SECRET", &format!("secret-of-{name}"))],
        &[
            "oauth-apps",
            "create",
            "--owner",
            TENANT,
            "--provider",
            "x",
            "--name",
            name,
            "--client-id",
            "cid",
            "--client-secret-env",
            "SECRET",
            "--json",
        ],
        "",
    );
    assert_eq!(out.code, 0, "{}", out.describe());
}

fn app_names(dir: &Path) -> Vec<String> {
    let out = dravo(dir, &["oauth-apps", "list", "--owner", TENANT, "--json"]);
    assert_eq!(out.code, 0, "{}", out.describe());
    let apps: Value = serde_json::from_str(&out.stdout).unwrap();
    apps.as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_backup_of_a_live_database_is_consistent_private_and_restores() {
    if support::sqlite_only("dravo backup and restore copy SQLite files") {
        return;
    }
    let dir = tempdir();
    dravo_init(dir.path(), &[]);
    let token = jwt(dir.path());
    for name in ["before-1", "before-2"] {
        create(dir.path(), name);
    }
    // The writer below creates apps as fast as it can for as long as the backup takes: above
    // the default creation limit, which this test is not about.
    let mut cmd = dravo_cmd(dir.path());
    cmd.env("DRAVO_LIMITS_CREATE_PER_SECOND", "100000");
    let mut server = Server::start(cmd);
    let rt = runtime();

    // Writes keep coming over HTTP while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (url, token, stop, progress) = (
            server.url("/v1/oauth-apps"),
            token.clone(),
            stop.clone(),
            progress.clone(),
        );
        rt.spawn(async move {
            let client = http();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let resp = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"provider": "x", "name": format!("during-{n}"),
                        "client_id": "cid", "client_secret": "s"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 201);
                n += 1;
                progress.store(n, Ordering::Relaxed);
            }
            n
        })
    };
    while progress.load(Ordering::Relaxed) < 5 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let file = dir.path().join("dravo-backup.db");
    let out = dravo(dir.path(), &["backup", file.to_str().unwrap()]);
    stop.store(true, Ordering::Relaxed);
    let written = rt.block_on(writer).unwrap();
    assert!(written > 0);
    assert_eq!(out.code, 0, "{}", out.describe());
    assert!(out.stdout.contains("integrity ok"), "{}", out.stdout);
    assert!(
        out.stdout.contains("sealed with this key"),
        "{}",
        out.stdout
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the backup holds sealed secrets");
    }

    // A second backup to the same file is refused, and leaves the first alone.
    let before = std::fs::read(&file).unwrap();
    let again = dravo(dir.path(), &["backup", file.to_str().unwrap()]);
    assert_eq!(again.code, 2, "a bad FILE value: {}", again.describe());
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert_eq!(std::fs::read(&file).unwrap(), before);

    // Restoring is refused while the server runs, and changes nothing.
    let refused = dravo(dir.path(), &["restore", file.to_str().unwrap()]);
    assert_eq!(refused.code, 1, "{}", refused.describe());
    assert!(
        refused.stderr.contains("server is running"),
        "{}",
        refused.stderr
    );
    let live = app_names(dir.path());
    assert_eq!(live.len(), 2 + written);

    server.stop();
    create(dir.path(), "after-backup");
    let restored = dravo(dir.path(), &["restore", file.to_str().unwrap()]);
    assert_eq!(restored.code, 0, "{}", restored.describe());
    let names = app_names(dir.path());
    assert!(names.contains(&"before-1".to_owned()));
    assert!(
        !names.contains(&"after-backup".to_owned()),
        "the backup's state, not later"
    );
    // Consistent: a prefix of the writes, each whole (its secret opens).
    let during: Vec<&String> = names.iter().filter(|n| n.starts_with("during-")).collect();
    for n in 0..during.len() {
        assert!(names.contains(&format!("during-{n}")), "write {n} missing");
    }
    let out = dravo(
        dir.path(),
        &["oauth-apps", "list", "--owner", TENANT, "--json"],
    );
    let apps: Value = serde_json::from_str(&out.stdout).unwrap();
    let first = apps.as_array().unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        stored_secret(dir.path(), TENANT, &first),
        "secret-of-before-1"
    );
    let mut server = Server::start(dravo_cmd(dir.path()));
    let listed: Value = rt.block_on(async {
        http()
            .get(server.url("/v1/oauth-apps"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(listed.as_array().unwrap().len(), names.len());
    server.stop();
}

#[test]
fn restore_refuses_a_backup_another_key_sealed_and_a_file_that_is_no_backup() {
    if support::sqlite_only("dravo restore replaces a SQLite file") {
        return;
    }
    let ours = tempdir();
    dravo_init(ours.path(), &[]);
    create(ours.path(), "ours");
    let theirs = tempdir();
    dravo_init(theirs.path(), &[]);
    create(theirs.path(), "theirs");
    let foreign = theirs.path().join("theirs.db");
    let out = dravo(theirs.path(), &["backup", foreign.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.describe());

    let refused = dravo(ours.path(), &["restore", foreign.to_str().unwrap()]);
    assert_eq!(refused.code, 1, "{}", refused.describe());
    assert!(
        refused.stderr.contains("another master key"),
        "{}",
        refused.stderr
    );
    assert_eq!(app_names(ours.path()), ["ours"], "nothing changed");

    let junk = ours.path().join("junk.db");
    std::fs::write(&junk, b"this is not a database at all, only text").unwrap();
    let refused = dravo(ours.path(), &["restore", junk.to_str().unwrap()]);
    assert_eq!(refused.code, 2, "a bad FILE value: {}", refused.describe());
    assert!(
        refused.stderr.contains("not a Dravo backup"),
        "{}",
        refused.stderr
    );
    assert_eq!(app_names(ours.path()), ["ours"], "nothing changed");
}

#[test]
fn a_lost_database_comes_back_from_its_backup_and_key() {
    if support::sqlite_only("dravo backup and restore copy SQLite files") {
        return;
    }
    let dir = tempdir();
    dravo_init(dir.path(), &[]);
    create(dir.path(), "precious");
    let file = dir.path().join("offsite.db");
    assert_eq!(
        dravo(dir.path(), &["backup", file.to_str().unwrap()]).code,
        0
    );
    for name in ["dravo.db", "dravo.db-wal", "dravo.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(name));
    }
    let out = dravo(dir.path(), &["restore", file.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.describe());
    assert_eq!(app_names(dir.path()), ["precious"]);
}

#[cfg(unix)]
#[test]
fn backup_refuses_a_dangling_symlink_at_the_target_and_writes_nothing_through_it() {
    if support::sqlite_only("dravo backup writes a SQLite file") {
        return;
    }
    let dir = tempdir();
    dravo_init(dir.path(), &[]);
    create(dir.path(), "kept");
    let planted = dir.path().join("elsewhere.db");
    let link = dir.path().join("backup.db");
    std::os::unix::fs::symlink(&planted, &link).unwrap();

    let out = dravo(dir.path(), &["backup", link.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.describe());
    assert!(
        out.stderr.contains("is a symbolic link") && out.stderr.contains(link.to_str().unwrap()),
        "{}",
        out.stderr
    );
    support::cmd::assert_one_error_line(&out.stderr);
    assert!(!planted.exists(), "nothing was written through the link");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link is left as it was"
    );

    // A new file is created private, whatever the umask.
    use std::os::unix::fs::PermissionsExt;
    let file = dir.path().join("fresh.db");
    let out = dravo(dir.path(), &["backup", file.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.describe());
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the backup holds sealed secrets");
}

/// A checked backup of a fresh database with one app, in `dir`.
fn one_app_backup(dir: &Path) -> std::path::PathBuf {
    dravo_init(dir, &[]);
    create(dir, "ours");
    let file = dir.join("backup-to-tamper.db");
    let out = dravo(dir, &["backup", file.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.describe());
    file
}

fn tamper(file: &Path, sql: &str) {
    rusqlite::Connection::open(file)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

#[test]
fn restore_refuses_a_backup_with_an_added_trigger_and_names_it() {
    if support::sqlite_only("dravo restore replaces a SQLite file") {
        return;
    }
    let dir = tempdir();
    let file = one_app_backup(dir.path());
    tamper(
        &file,
        "CREATE TRIGGER steal_accounts AFTER INSERT ON accounts BEGIN
             UPDATE accounts SET owner = 'attacker' WHERE id = new.id;
         END;",
    );
    create(dir.path(), "after-backup");
    let out = dravo(dir.path(), &["restore", file.to_str().unwrap()]);
    assert_eq!(out.code, 2, "a bad FILE value: {}", out.describe());
    assert!(
        out.stderr.contains("trigger `steal_accounts`"),
        "{}",
        out.stderr
    );
    support::cmd::assert_one_error_line(&out.stderr);
    assert_eq!(app_names(dir.path()).len(), 2, "nothing changed");
}

#[test]
fn restore_refuses_a_backup_with_an_added_view_and_names_it() {
    if support::sqlite_only("dravo restore replaces a SQLite file") {
        return;
    }
    let dir = tempdir();
    let file = one_app_backup(dir.path());
    tamper(
        &file,
        "CREATE VIEW every_secret AS SELECT * FROM oauth_apps;",
    );
    let out = dravo(dir.path(), &["restore", file.to_str().unwrap()]);
    assert_eq!(out.code, 2, "a bad FILE value: {}", out.describe());
    assert!(out.stderr.contains("view `every_secret`"), "{}", out.stderr);
}

#[cfg(unix)]
#[test]
fn restore_refuses_a_fifo_without_opening_it() {
    if support::sqlite_only("dravo restore replaces a SQLite file") {
        return;
    }
    let dir = tempdir();
    dravo_init(dir.path(), &[]);
    create(dir.path(), "ours");
    let fifo = dir.path().join("backup.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // Opening a FIFO for reading waits for a writer forever: a refusal at all proves it was
    // not opened (the harness kills a command that does not exit).
    let out = dravo(dir.path(), &["restore", fifo.to_str().unwrap()]);
    assert_eq!(out.code, 2, "a bad FILE value: {}", out.describe());
    assert!(
        out.stderr.contains("not a regular file") && out.stderr.contains("FIFO"),
        "{}",
        out.stderr
    );
    assert_eq!(app_names(dir.path()), ["ours"], "nothing changed");
}

#[test]
fn restore_refuses_sealed_values_whose_key_the_backup_does_not_record() {
    if support::sqlite_only("dravo restore replaces a SQLite file") {
        return;
    }
    let ours = tempdir();
    dravo_init(ours.path(), &[]);
    create(ours.path(), "ours");
    // Another install's backup, with an account sealed by its key, and its key and app
    // tables emptied so that nothing names or samples that key.
    let theirs = tempdir();
    let file = one_app_backup(theirs.path());
    tamper(
        &file,
        "INSERT INTO accounts (id, owner, provider, provider_account_id, scopes,
                               access_token_sealed, created_at, updated_at)
             SELECT 'acc_1', owner, provider, 'pa-1', '[]', client_secret_sealed, 0, 0
             FROM oauth_apps;
         DELETE FROM oauth_apps;
         DELETE FROM master_keys;",
    );
    let out = dravo(ours.path(), &["restore", file.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.describe());
    assert!(
        out.stderr.contains("account access token") && out.stderr.contains("master_keys"),
        "{}",
        out.stderr
    );
    support::cmd::assert_one_error_line(&out.stderr);
    assert_eq!(app_names(ours.path()), ["ours"], "nothing changed");
}

#[test]
fn restore_of_a_backup_from_before_a_rotation_names_the_key_it_needs() {
    if support::sqlite_only("dravo restore replaces a SQLite file") {
        return;
    }
    let dir = tempdir();
    let file = one_app_backup(dir.path());
    let out = dravo(dir.path(), &["keys", "rotate"]);
    assert_eq!(out.code, 0, "{}", out.describe());
    let out = dravo(dir.path(), &["restore", file.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.describe());
    assert!(
        out.stderr.contains("master key 1") && out.stderr.contains("key file saved with"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("another master key"), "{}", out.stderr);
    support::cmd::assert_one_error_line(&out.stderr);
}
