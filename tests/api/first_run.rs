//! A new user's first commands: which database a command uses and what it says when there is
//! none, `dravo init`, the secret prompt at a terminal, how provider names are spelt, and the
//! warnings about an unreachable redirect URI.

use crate::support;

use std::path::Path;
use std::process::Command;

use support::cmd::{Out, dravo, run_cmd};
use support::{dravo_cmd, files_in};

/// `dravo ARGS` in `dir` with no `DRAVO_*` variable at all (not even the harness's
/// `DRAVO_DATABASE_PATH` or `DRAVO_DATABASE_URL`), plus `env`.
fn bare_dravo(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Out {
    let mut cmd = dravo_cmd(dir);
    cmd.env_remove("DRAVO_DATABASE_PATH")
        .env_remove("DRAVO_DATABASE_URL")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_cmd(cmd, "")
}

const USES_A_DATABASE: [&[&str]; 4] = [
    &["oauth-apps", "list", "--owner", "alice"],
    &["accounts", "list", "--owner", "alice"],
    &["token", "issue", "--sub", "alice"],
    &[
        "oauth-apps",
        "show",
        "--owner",
        "alice",
        "oa_aaaaaaaaaaaaaaaaaaaa",
    ],
];

#[test]
fn commands_refuse_a_missing_database_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for args in USES_A_DATABASE {
        let out = bare_dravo(dir.path(), &[], args);
        out.assert_config_error(&[
            "no database at ",
            "(database.path `dravo.db`, from the default)",
            "dravo init",
            "--database PATH or set DRAVO_DATABASE_PATH",
            // No config was read either: the server's may name its database.
            "--config PATH or DRAVO_CONFIG (no config file was read)",
        ]);
        assert_eq!(
            files_in(dir.path()),
            Vec::<String>::new(),
            "{args:?} wrote files"
        );
    }
}

#[test]
fn the_missing_database_message_says_how_the_path_was_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let list = ["oauth-apps", "list", "--owner", "alice"];

    let out = bare_dravo(
        dir.path(),
        &[("DRAVO_DATABASE_PATH", "vault/typo.db")],
        &list,
    );
    out.assert_config_error(&[
        "typo.db (database.path `vault/typo.db`, from the environment variable DRAVO_DATABASE_PATH)",
        "the directory vault does not exist",
    ]);

    let mut args = vec!["--database", "other.db"];
    args.extend(list);
    bare_dravo(dir.path(), &[], &args)
        .assert_config_error(&["other.db`, from the flag --database"]);

    std::fs::write(
        dir.path().join("dravo.toml"),
        "[database]\npath = \"data/dravo.db\"\n",
    )
    .unwrap();
    let out = bare_dravo(dir.path(), &[], &list);
    out.assert_config_error(&["(database.path `data/dravo.db`, from the setting in dravo.toml)"]);
    // A config file was read: no hint to name one.
    assert!(!out.stderr.contains("--config"), "{}", out.describe());
    // No folder was made for any of them.
    assert_eq!(files_in(dir.path()), vec!["dravo.toml"]);
}

#[test]
fn serve_does_not_create_missing_folders() {
    let dir = tempfile::tempdir().unwrap();
    let out = bare_dravo(
        dir.path(),
        &[
            ("DRAVO_DATABASE_PATH", "missing/dir/dravo.db"),
            ("DRAVO_SERVER_BIND", "127.0.0.1:0"),
        ],
        &["serve"],
    );
    out.assert_config_error(&["the directory missing/dir does not exist"]);
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
}

#[test]
fn a_directory_as_the_database_is_one_line_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    for args in [
        &["serve"][..],
        &["init"],
        &["oauth-apps", "list", "--owner", "alice"],
    ] {
        let out = bare_dravo(
            dir.path(),
            &[
                ("DRAVO_DATABASE_PATH", "data"),
                ("DRAVO_SERVER_BIND", "127.0.0.1:0"),
            ],
            args,
        );
        // One line: no pool retries logged before it.
        out.assert_config_error(&["database.path `data`", "is a directory", "data/dravo.db"]);
    }
}

#[test]
fn init_creates_the_database_and_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = bare_dravo(dir.path(), &[], &["init"]);
    out.assert_success();
    assert!(
        out.stdout.starts_with("created dravo.db"),
        "{}",
        out.describe()
    );
    assert!(out.stdout.contains("dravo.key"), "{}", out.describe());
    assert_eq!(files_in(dir.path()), vec!["dravo.db", "dravo.key"]);
    let key = std::fs::read(dir.path().join("dravo.key")).unwrap();

    let again = bare_dravo(dir.path(), &[], &["init"]);
    again.assert_success();
    assert!(
        again.stdout.contains("nothing to do"),
        "{}",
        again.describe()
    );
    assert_eq!(std::fs::read(dir.path().join("dravo.key")).unwrap(), key);

    // Now the other commands work here.
    let list = bare_dravo(dir.path(), &[], &["oauth-apps", "list", "--owner", "alice"]);
    list.assert_success();
    assert_eq!(list.stdout, "no OAuth apps\n");
}

#[test]
fn init_refuses_a_database_whose_key_file_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    bare_dravo(dir.path(), &[], &["init"]).assert_success();
    std::fs::remove_file(dir.path().join("dravo.key")).unwrap();
    bare_dravo(dir.path(), &[], &["init"]).assert_config_error(&["dravo.key", "missing"]);
    assert!(
        !dir.path().join("dravo.key").exists(),
        "no new key was made"
    );
}

/// Provider names are spelled as the registry spells them, as the HTTP API takes them: a
/// name in another case, or a former name, is a usage error that says the right spelling.
#[test]
fn provider_names_in_another_case_are_refused_with_the_right_spelling() {
    let dir = tempfile::tempdir().unwrap();
    dravo(dir.path(), &["init"]).assert_success();
    let create = |provider: &str| {
        let mut cmd = dravo_cmd(dir.path());
        let name = format!("App {provider}");
        cmd.env("APP_SECRET", "s3cret-value").args([
            "oauth-apps",
            "create",
            "--owner",
            "alice",
            "--provider",
            provider,
            "--name",
            &name,
            "--json",
        ]);
        // Dravo registers a mastodon app on each instance: it takes no credentials.
        if provider != "mastodon" {
            cmd.args(["--client-id", "cid", "--client-secret-env", "APP_SECRET"]);
        }
        run_cmd(cmd, "")
    };
    for (given, meant) in [
        ("X", "x"),
        ("LinkedIn", "linkedin"),
        ("TIKTOK", "tiktok"),
        ("twitter", "x"),
        ("Twitter", "x"),
    ] {
        let out = create(given);
        out.assert_usage_error();
        assert!(
            out.stderr.contains(&format!(
                "unknown provider `{given}`: did you mean `{meant}`?"
            )),
            "{}",
            out.describe()
        );
    }
    for name in dravo::providers::ids().map(|p| p.as_str()) {
        let out = create(name);
        out.assert_success();
        assert_eq!(out.json()["provider"], name);
    }
    let list = |provider: &str| {
        dravo(
            dir.path(),
            &[
                "oauth-apps",
                "list",
                "--owner",
                "alice",
                "--provider",
                provider,
            ],
        )
    };
    let out = list("tiktok");
    out.assert_success();
    assert!(out.stdout.contains("App tiktok"), "{}", out.describe());
    list("Tiktok").assert_usage_error();
    // Nothing close: every registered name, in the registry's order.
    let out = list("MySpace");
    out.assert_usage_error();
    assert!(
        out.stderr
            .contains(&format!("expected one of {}", dravo::providers::expected())),
        "{}",
        out.describe()
    );
}

/// `--provider`'s help names the registered providers, in the registry's order.
#[test]
fn provider_help_names_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let names = dravo::providers::expected();
    for (args, lead) in [
        (&["oauth-apps", "create", "--help"][..], "The provider"),
        (&["oauth-apps", "list", "--help"], "Only this provider's"),
        (&["accounts", "list", "--help"], "Only this provider's"),
    ] {
        let out = dravo(dir.path(), args);
        out.assert_success();
        assert!(
            out.stdout.contains(&format!("{lead}: {names}\n")),
            "{args:?}\n{}",
            out.stdout
        );
    }
}

/// At a terminal, `--client-secret-stdin` prompts and reads one line without echoing it; the
/// terminal starts with echo on, as a user's does.
#[cfg(unix)]
#[test]
fn the_secret_prompt_at_a_terminal_does_not_echo() {
    const SECRET: &str = "tty-s3cret-Kq2-never-echoed";
    let dir = tempfile::tempdir().unwrap();
    dravo(dir.path(), &["init"]).assert_success();
    let script = format!(
        "stty echo && exec '{}' oauth-apps create --owner alice --provider x --name 'From a tty' --client-id cid --client-secret-stdin",
        env!("CARGO_BIN_EXE_dravo")
    );
    let mut cmd = Command::new("sh");
    support::without_dravo_env(&mut cmd);
    cmd.arg("-c")
        .arg(script)
        .current_dir(dir.path())
        .env("DRAVO_DATABASE_PATH", dir.path().join("dravo.db"));
    if let Some(url) = support::backend::database_url_for(dir.path()) {
        cmd.env("DRAVO_DATABASE_URL", url);
    }
    let mut session = rexpect::session::spawn_command(cmd, Some(20_000)).unwrap();
    session.exp_string("client secret").unwrap();
    session.send_line(SECRET).unwrap();
    // Enter ends the input: no Ctrl-D needed.
    let rest = session.exp_eof().unwrap();
    assert!(rest.contains("oa_"), "the app was created: {rest}");
    assert!(!rest.contains(SECRET), "the secret was echoed: {rest}");

    let out = dravo(
        dir.path(),
        &["oauth-apps", "list", "--owner", "alice", "--json"],
    );
    out.assert_success();
    let id = out.json()[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(support::stored_secret(dir.path(), "alice", &id), SECRET);
}

#[test]
fn every_interface_without_a_public_url_is_warned_about_in_the_list() {
    let dir = tempfile::tempdir().unwrap();
    dravo(dir.path(), &["init"]).assert_success();
    let list = ["oauth-apps", "list", "--owner", "alice"];
    let mut cmd = dravo_cmd(dir.path());
    cmd.env("DRAVO_SERVER_BIND", "0.0.0.0:8080").args(list);
    let out = run_cmd(cmd, "");
    out.assert_success();
    assert!(
        out.stderr.contains("warning:") && out.stderr.contains("server.public_url"),
        "{}",
        out.describe()
    );
    let mut cmd = dravo_cmd(dir.path());
    cmd.env("DRAVO_SERVER_BIND", "0.0.0.0:8080")
        .env("DRAVO_SERVER_PUBLIC_URL", "https://dravo.example.com")
        .args(list);
    let out = run_cmd(cmd, "");
    out.assert_success();
    assert_eq!(out.stderr, "", "{}", out.describe());
}

#[test]
fn value_errors_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    dravo(dir.path(), &["init"]).assert_success();
    let create = |name: &str, client_id: &str, secret: &str| {
        let mut cmd = dravo_cmd(dir.path());
        cmd.env("APP_SECRET", secret).args([
            "oauth-apps",
            "create",
            "--owner",
            "alice",
            "--provider",
            "x",
            "--name",
            name,
            "--client-id",
            client_id,
            "--client-secret-env",
            "APP_SECRET",
        ]);
        run_cmd(cmd, "")
    };
    let out = create("", "cid", "s");
    out.assert_usage_error();
    assert!(
        out.stderr.starts_with("error: --name must be"),
        "{}",
        out.describe()
    );
    let out = create("ok", "", "s");
    out.assert_usage_error();
    assert!(
        out.stderr.starts_with("error: --client-id must be"),
        "{}",
        out.describe()
    );
    let out = create("ok", "cid", "");
    out.assert_usage_error();
    assert!(
        out.stderr
            .starts_with("error: --client-secret-env must not be empty"),
        "{}",
        out.describe()
    );
}
