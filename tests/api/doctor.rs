//! `dravo doctor` as a user runs it: the real binary, one line per finding, exit 1 when any
//! finding is a failure, and each failure says what to do.

use crate::support;
use crate::support::fake_provider;

use std::path::Path;

use fake_provider::{FakeProvider, Kind};
use support::cmd::{Out, dravo, dravo_init, dravo_with};
use support::process::tempdir;

const CLIENT_ID: &str = "doctor-client-key";
const CLIENT_SECRET: &str = "doctor-s3cret-that-must-never-show";

/// The line of `out` about `subject`, which must exist.
fn line<'a>(out: &'a Out, subject: &str) -> &'a str {
    out.stdout
        .lines()
        .find(|l| {
            l.split_once(' ')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(&format!("{subject}:")))
        })
        .unwrap_or_else(|| panic!("no line about {subject}\n{}", out.describe()))
}

fn assert_level(out: &Out, subject: &str, level: &str) -> String {
    let l = line(out, subject);
    assert!(
        l.starts_with(&format!("{level:<4}  ")),
        "{subject} should be {level}: {l}\n{}",
        out.describe()
    );
    l.to_owned()
}

/// `dravo doctor` in `dir` with `env`, the configuration binding 127.0.0.1 (see `doctor_on`).
fn doctor(dir: &Path) -> Out {
    doctor_on(dir, "127.0.0.1", &[])
}

/// `dravo doctor` in `dir` with `env`, the configuration binding `host` and a port of this
/// test's own that nothing answers on. With the default bind (127.0.0.1:8080), doctor's
/// reachability check would find whatever runs there, such as the user's own `dravo serve`.
fn doctor_on(dir: &Path, host: &str, env: &[(&str, &str)]) -> Out {
    let (_reserved, port) = support::unanswered_port();
    let bind = format!("{host}:{port}");
    let mut env = env.to_vec();
    env.push(("DRAVO_SERVER_BIND", &bind));
    dravo_with(dir, &env, &["doctor"], "")
}

/// Exit 1 with a last stderr line counting the failures.
fn assert_failed(out: &Out, failures: usize) {
    out.assert_code(1);
    let noun = if failures == 1 { "problem" } else { "problems" };
    assert_eq!(
        out.stderr.trim(),
        format!("error: doctor found {failures} {noun} (FAIL above)"),
        "{}",
        out.describe()
    );
    assert_eq!(
        out.stdout.lines().filter(|l| l.starts_with("FAIL")).count(),
        failures
    );
}

#[test]
fn an_empty_directory_fails_and_says_to_run_init() {
    let dir = tempdir();
    let out = doctor(dir.path());
    assert_failed(&out, 1);
    let l = assert_level(&out, "database", "FAIL");
    assert!(l.contains("`dravo init`"), "{l}");
    // Nothing was created: doctor only looks.
    assert!(!dir.path().join("dravo.db").exists());
    assert!(!dir.path().join("dravo.key").exists());
}

#[test]
fn a_fresh_install_is_healthy_but_warns_that_public_url_is_not_set() {
    let dir = tempdir();
    dravo_init(dir.path(), &[]);
    let out = doctor(dir.path());
    out.assert_success();
    assert_level(&out, "config", "ok");
    assert_level(&out, "master key", "ok");
    let db = assert_level(&out, "database", "ok");
    assert!(db.contains("sealed with this key"), "{db}");
    // SQLite's integrity check is Dravo's to run; PostgreSQL checks its own pages.
    assert_eq!(db.contains("integrity ok"), !support::is_postgres(), "{db}");
    let url = assert_level(&out, "server.public_url", "warn");
    assert!(url.contains("set server.public_url"), "{url}");
    // No server answers on the bound port: the reachability check says so, as a warning only.
    assert_level(&out, "public_url", "warn");
    assert_level(&out, "providers", "info");
    assert_eq!(out.stderr, "", "{}", out.describe());
}

#[test]
fn a_broken_config_file_is_named_with_its_key() {
    let dir = tempdir();
    dravo_init(dir.path(), &[]);
    std::fs::write(
        dir.path().join("dravo.toml"),
        "[server]\nbnd = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let out = doctor(dir.path());
    assert_failed(&out, 1);
    let l = assert_level(&out, "config", "FAIL");
    assert!(l.contains("server.bnd"), "{l}");
    assert_eq!(
        out.stdout.lines().count(),
        1,
        "nothing is checked without a config"
    );
}

#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_fails_with_the_chmod_to_run() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    dravo_init(dir.path(), &[]);
    let key = dir.path().join("dravo.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = doctor(dir.path());
    assert_failed(&out, 1);
    let l = assert_level(&out, "master key", "FAIL");
    assert!(l.contains("chmod 600"), "{l}");
}

#[test]
fn a_database_sealed_with_another_key_fails() {
    let dir = tempdir();
    dravo_init(dir.path(), &[]);
    let other = dravo(dir.path(), &["keys", "generate"]);
    other.assert_success();
    replace_key(dir.path(), other.stdout.trim());
    let out = doctor(dir.path());
    assert_failed(&out, 1);
    let l = assert_level(&out, "database", "FAIL");
    assert!(l.contains("another master key"), "{l}");
}

fn replace_key(dir: &Path, key: &str) {
    let path = dir.join("dravo.key");
    std::fs::remove_file(&path).unwrap();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(&path).unwrap(), key.as_bytes()).unwrap();
}

#[test]
fn listening_on_every_interface_without_a_public_url_fails() {
    let dir = tempdir();
    dravo_init(dir.path(), &[]);
    let out = doctor_on(dir.path(), "0.0.0.0", &[]);
    assert_failed(&out, 1);
    let l = assert_level(&out, "server.public_url", "FAIL");
    assert!(l.contains("0.0.0.0"), "{l}");
}

/// Two problems at once are still a runtime error (exit 1, as `--help` promises), never a
/// usage error: listening on every interface without a public URL fails `server.public_url`,
/// and the platform app's redirect URI (which names 0.0.0.0) fails too.
#[test]
fn two_failures_exit_1_and_count_both() {
    let dir = tempdir();
    dravo_init(dir.path(), &[]);
    let out = doctor_on(
        dir.path(),
        "0.0.0.0",
        &[
            ("DRAVO_PROVIDERS_X_CLIENT_ID", "x-client"),
            ("DRAVO_PROVIDERS_X_CLIENT_SECRET", CLIENT_SECRET),
        ],
    );
    assert_failed(&out, 2);
    out.assert_hides(CLIENT_SECRET);
    assert_level(&out, "server.public_url", "FAIL");
    let l = assert_level(&out, "providers.x redirect_uri", "FAIL");
    assert!(l.contains("0.0.0.0"), "{l}");
}

/// The platform apps of `[providers.*]` are checked as `oauth-apps check` checks a BYOK app:
/// TikTok proves its key with a client-credentials grant (here against the fake TikTok), X
/// cannot, and neither secret appears in the output.
#[tokio::test(flavor = "multi_thread")]
async fn platform_apps_are_checked_and_a_refused_secret_fails() {
    let fake = FakeProvider::start(Kind::Tiktok, CLIENT_ID, CLIENT_SECRET).await;
    let (authorize, token, api) = fake.config_urls();
    let dir = tempdir();
    let path = dir.path().to_owned();
    let run = move |secret: &'static str| {
        let env = [
            ("DRAVO_SERVER_PUBLIC_URL", "https://dravo.example.com"),
            ("DRAVO_PROVIDERS_TIKTOK_CLIENT_ID", CLIENT_ID),
            ("DRAVO_PROVIDERS_TIKTOK_CLIENT_SECRET", secret),
            ("DRAVO_PROVIDERS_TIKTOK_AUTHORIZE_URL", authorize.as_str()),
            ("DRAVO_PROVIDERS_TIKTOK_TOKEN_URL", token.as_str()),
            ("DRAVO_PROVIDERS_TIKTOK_API_BASE", api.as_str()),
            ("DRAVO_PROVIDERS_X_CLIENT_ID", "x-client"),
            ("DRAVO_PROVIDERS_X_CLIENT_SECRET", secret),
        ];
        dravo_init(&path, &env);
        dravo_with(&path, &env, &["doctor"], "")
    };
    let good = {
        let run = run.clone();
        tokio::task::spawn_blocking(move || run(CLIENT_SECRET))
            .await
            .unwrap()
    };
    good.assert_success().assert_hides(CLIENT_SECRET);
    let l = assert_level(&good, "providers.tiktok client_credentials", "ok");
    assert!(l.contains("accepted"), "{l}");
    assert_level(&good, "providers.tiktok redirect_uri", "ok");
    assert_level(&good, "providers.tiktok scopes", "ok");
    assert_level(&good, "providers.x client_credentials", "info");
    assert_level(&good, "providers.x redirect_uri", "ok");
    assert_level(&good, "server.public_url", "ok");
    // dravo.example.com does not resolve here: only a warning.
    assert_level(&good, "public_url", "warn");

    const WRONG: &str = "wr0ng-doctor-S3cret-never-shown";
    let bad = tokio::task::spawn_blocking(move || run(WRONG))
        .await
        .unwrap();
    assert_failed(&bad, 1);
    bad.assert_hides(WRONG);
    let l = assert_level(&bad, "providers.tiktok client_credentials", "FAIL");
    assert!(l.contains("refused"), "{l}");
    let grants: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.param("grant_type") == Some("client_credentials"))
        .collect();
    assert_eq!(
        grants.len(),
        2,
        "one client-credentials grant per doctor run"
    );
}
