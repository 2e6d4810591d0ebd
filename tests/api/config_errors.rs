//! Black-box tests of configuration loading (contract §1–§2): a bad configuration stops the
//! real `dravo` binary at start with exit 1 and one sentence naming the key; environment
//! variables override the file; a zero-config run creates and reuses its key file.

use crate::support;

use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use support::cmd::{Out, dravo, dravo_init as init, dravo_with, run_cmd};
use support::dravo_cmd;

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// `dravo ARGS` in `dir`, with extra environment variables.
fn dravo_env(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Out {
    dravo_with(dir, env, args, "")
}

const LIST: &[&str] = &["oauth-apps", "list", "--owner", "alice", "--json"];

/// The commands that load the configuration; `serve` binds port 0 so that, if it wrongly
/// started, it would not clash with anything (and is killed by the safety net).
fn config_commands() -> Vec<Vec<&'static str>> {
    vec![
        LIST.to_vec(),
        vec!["token", "issue", "--sub", "alice"],
        vec!["serve"],
    ]
}

/// Runs every config-loading command in `dir` with `env` and asserts each fails at start.
fn assert_all_fail(dir: &Path, env: &[(&str, &str)], mentions: &[&str]) -> Out {
    assert_all_fail_with(dir, env, mentions, true)
}

/// As `assert_all_fail`; `serve_on_port_0` adds `DRAVO_SERVER_BIND=127.0.0.1:0` to the `serve`
/// run (turn it off when the test is about `server.bind` itself).
fn assert_all_fail_with(
    dir: &Path,
    env: &[(&str, &str)],
    mentions: &[&str],
    serve_on_port_0: bool,
) -> Out {
    let mut last = None;
    for args in config_commands() {
        let mut env = env.to_vec();
        if serve_on_port_0
            && args == ["serve"]
            && !env.iter().any(|(k, _)| *k == "DRAVO_SERVER_BIND")
        {
            env.push(("DRAVO_SERVER_BIND", "127.0.0.1:0"));
        }
        let out = dravo_env(dir, &env, &args);
        out.assert_config_error(mentions);
        last = Some(out);
    }
    last.unwrap()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// Writes a key file the way an operator should: readable by its owner only.
fn write_key_file(path: &Path, text: &str) {
    write(path, text);
    #[cfg(unix)]
    chmod(path, 0o600);
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn base64_key(len: usize, byte: u8) -> String {
    STANDARD.encode(vec![byte; len])
}

fn create_app(dir: &Path, env: &[(&str, &str)], name: &str) -> serde_json::Value {
    init(dir, env);
    let mut cmd = dravo_cmd(dir);
    cmd.args([
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
        "--client-secret-stdin",
        "--json",
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run_cmd(cmd, "config-test-secret\n");
    out.assert_success();
    out.json()
}

// ---------------------------------------------------------------- unknown keys

const UNKNOWN_KEY_TOML: &str = "[server]\nbindd = \"x\"\n";

#[test]
fn unknown_key_via_config_flag() {
    let dir = tempdir();
    let file = dir.path().join("custom.toml");
    write(&file, UNKNOWN_KEY_TOML);
    let path = file.to_str().unwrap();
    for args in config_commands() {
        let mut full = vec!["--config", path];
        full.extend(args);
        dravo_env(dir.path(), &[("DRAVO_SERVER_BIND", "127.0.0.1:0")], &full)
            .assert_config_error(&["server.bindd"]);
    }
    // `--config` is global: it may also follow the subcommand.
    let mut args = LIST.to_vec();
    args.extend(["--config", path]);
    dravo(dir.path(), &args).assert_config_error(&["server.bindd"]);
}

#[test]
fn unknown_key_via_dravo_toml_in_the_working_directory() {
    let dir = tempdir();
    write(&dir.path().join("dravo.toml"), UNKNOWN_KEY_TOML);
    assert_all_fail(dir.path(), &[], &["server.bindd"]);
}

#[test]
fn unknown_key_via_dravo_config_env() {
    let dir = tempdir();
    let elsewhere = tempdir();
    let file = elsewhere.path().join("from-env.toml");
    write(&file, UNKNOWN_KEY_TOML);
    assert_all_fail(
        dir.path(),
        &[("DRAVO_CONFIG", file.to_str().unwrap())],
        &["server.bindd"],
    );
}

#[test]
fn unknown_section_and_unknown_nested_keys_are_named() {
    let dir = tempdir();
    let file = dir.path().join("dravo.toml");
    write(&file, "[serverr]\nbind = \"127.0.0.1:0\"\n");
    dravo(dir.path(), LIST).assert_config_error(&["serverr"]);
    write(&file, "[providers.x]\nclient_idd = \"abc\"\n");
    dravo(dir.path(), LIST).assert_config_error(&["providers.x.client_idd"]);
    write(&file, "[providers.myspace]\nclient_id = \"abc\"\n");
    dravo(dir.path(), LIST).assert_config_error(&["myspace"]);
    write(&file, "[auth]\nsecret = \"abc\"\n");
    dravo(dir.path(), LIST).assert_config_error(&["auth.secret"]);
}

#[test]
fn unknown_environment_variable_is_named() {
    let dir = tempdir();
    assert_all_fail(
        dir.path(),
        &[("DRAVO_SERVER_BINDD", "x")],
        &["DRAVO_SERVER_BINDD"],
    );
    dravo_env(dir.path(), &[("DRAVO_SERVER_BINDD", "x")], LIST)
        .assert_config_error(&["server.bindd"]);
    // A DRAVO_* name outside the configuration's sections is a client-side setting (the
    // examples' DRAVO_URL and DRAVO_TOKEN): left alone.
    init(dir.path(), &[]);
    for var in ["DRAVO_BOGUS", "DRAVO_TOKEN", "DRAVO_URL"] {
        dravo_env(dir.path(), &[(var, "x")], LIST).assert_success();
    }
}

/// Asserts that `line` names `key` as a whole dotted key: not as part of a longer one
/// (e.g. not `server.bindd.bindd` for `server.bindd`).
fn assert_names_key_exactly(line: &str, key: &str) {
    let is_key_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    let exact = line.match_indices(key).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + key.len()..].chars().next();
        !before.is_some_and(is_key_char) && !after.is_some_and(is_key_char)
    });
    assert!(exact, "the error must name the key `{key}` exactly: {line}");
}

#[test]
fn unknown_keys_are_named_exactly() {
    let dir = tempdir();
    let file = dir.path().join("dravo.toml");
    for (toml, key) in [
        (UNKNOWN_KEY_TOML, "server.bindd"),
        ("[serverr]\nbind = \"x\"\n", "serverr"),
        (
            "[providers.x]\nclient_idd = \"abc\"\n",
            "providers.x.client_idd",
        ),
        ("[auth]\nsecret = \"abc\"\n", "auth.secret"),
        ("top_level = 1\n", "top_level"),
    ] {
        write(&file, toml);
        let out = dravo(dir.path(), LIST);
        out.assert_config_error(&[]);
        assert_names_key_exactly(&out.stderr, key);
    }
    std::fs::remove_file(&file).unwrap();
    let out = dravo_env(dir.path(), &[("DRAVO_SERVER_BINDD", "x")], LIST);
    out.assert_config_error(&["DRAVO_SERVER_BINDD"]);
    assert_names_key_exactly(&out.stderr, "server.bindd");
}

#[test]
fn unknown_section_from_an_environment_variable_names_the_variable() {
    let dir = tempdir();
    // A known section's unknown key is an error; an unknown section is not configuration.
    dravo_env(dir.path(), &[("DRAVO_SERVER_FOO", "1")], LIST)
        .assert_config_error(&["DRAVO_SERVER_FOO", "server.foo"]);
    init(dir.path(), &[]);
    dravo_env(dir.path(), &[("DRAVO_FOO_BAR", "1")], LIST).assert_success();
}

// ---------------------------------------------------------------- wrong types and values

#[test]
fn wrong_type_in_the_file_names_the_key() {
    let dir = tempdir();
    write(&dir.path().join("dravo.toml"), "[server]\nbind = 8080\n");
    // The file's (broken) bind must be what `serve` sees, so no port-0 override here.
    assert_all_fail_with(dir.path(), &[], &["server.bind"], false);
}

#[test]
fn wrong_type_for_a_list_names_the_key() {
    let dir = tempdir();
    write(
        &dir.path().join("dravo.toml"),
        "[dashboard]\nallowed_return_urls = 5\n",
    );
    dravo(dir.path(), LIST).assert_config_error(&["dashboard.allowed_return_urls"]);
}

#[test]
fn wrong_type_for_a_list_is_explained_without_rust_internals() {
    let dir = tempdir();
    write(
        &dir.path().join("dravo.toml"),
        "[dashboard]\nallowed_return_urls = 5\n",
    );
    let out = dravo(dir.path(), LIST);
    out.assert_config_error(&["dashboard.allowed_return_urls"]);
    for internal in ["untagged", "StringOrList", "variant"] {
        assert!(!out.stderr.contains(internal), "{}", out.describe());
    }
}

#[test]
fn invalid_bind_address_names_the_key() {
    let dir = tempdir();
    assert_all_fail(
        dir.path(),
        &[("DRAVO_SERVER_BIND", "not-an-address")],
        &["server.bind"],
    );
}

#[test]
fn invalid_public_url_names_the_key() {
    let dir = tempdir();
    dravo_env(
        dir.path(),
        &[("DRAVO_SERVER_PUBLIC_URL", "ftp://example.com")],
        LIST,
    )
    .assert_config_error(&["server.public_url"]);
    dravo_env(
        dir.path(),
        &[("DRAVO_SERVER_PUBLIC_URL", "not a url")],
        LIST,
    )
    .assert_config_error(&["server.public_url"]);
}

#[test]
fn a_trusted_proxy_that_is_no_address_or_range_names_the_key_and_the_entry() {
    let dir = tempdir();
    assert_all_fail(
        dir.path(),
        &[("DRAVO_SERVER_TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal")],
        &[
            "server.trusted_proxies",
            "\"proxy.internal\"",
            "DRAVO_SERVER_TRUSTED_PROXIES",
        ],
    );
    write(
        &dir.path().join("dravo.toml"),
        "[server]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/40\"]\n",
    );
    assert_all_fail(
        dir.path(),
        &[],
        &["server.trusted_proxies", "\"10.0.0.0/40\"", "dravo.toml"],
    );
}

#[test]
fn a_rate_limit_of_zero_or_not_a_whole_number_names_the_key() {
    let dir = tempdir();
    assert_all_fail(
        dir.path(),
        &[("DRAVO_LIMITS_TOKEN_PER_SECOND", "0")],
        &["limits.token_per_second", "from 1 to 100000"],
    );
    assert_all_fail(
        dir.path(),
        &[("DRAVO_LIMITS_START_PER_SECOND", "2.5")],
        &["limits.start_per_second", "whole number"],
    );
    write(
        &dir.path().join("dravo.toml"),
        "[limits]\ncreate_per_second = 0\n",
    );
    assert_all_fail(dir.path(), &[], &["limits.create_per_second"]);
}

#[test]
fn invalid_toml_is_one_line() {
    let dir = tempdir();
    write(&dir.path().join("dravo.toml"), "[server\nbind = \n");
    dravo(dir.path(), LIST).assert_config_error(&["dravo.toml"]);
}

#[test]
fn config_flag_pointing_at_a_missing_file() {
    let dir = tempdir();
    let missing = dir.path().join("no-such.toml");
    let path = missing.to_str().unwrap();
    for args in config_commands() {
        let mut full = vec!["--config", path];
        full.extend(args);
        dravo_env(dir.path(), &[("DRAVO_SERVER_BIND", "127.0.0.1:0")], &full)
            .assert_config_error(&["no-such.toml"]);
    }
    // Likewise a DRAVO_CONFIG that names a missing file is not silently ignored.
    dravo_env(dir.path(), &[("DRAVO_CONFIG", path)], LIST).assert_config_error(&["no-such.toml"]);
    assert!(
        !dir.path().join("dravo.db").exists(),
        "nothing was created before the configuration was checked"
    );
}

// ---------------------------------------------------------------- secrets in errors

/// A distinctive value, to search the output for.
const SECRET_NUMBER: &str = "7365021894563210987";

#[test]
fn wrong_types_for_secret_keys_name_the_key_but_never_the_value() {
    let dir = tempdir();
    let file = dir.path().join("dravo.toml");
    for (toml, key, secret) in [
        (
            format!("[security]\nmaster_key = {SECRET_NUMBER}\n"),
            "security.master_key",
            SECRET_NUMBER,
        ),
        (
            format!("[auth]\njwt_secret = -{SECRET_NUMBER}\n"),
            "auth.jwt_secret",
            SECRET_NUMBER,
        ),
        (
            format!("[providers.x]\nclient_id = \"cid\"\nclient_secret = {SECRET_NUMBER}\n"),
            "providers.x.client_secret",
            SECRET_NUMBER,
        ),
        (
            "[auth]\njwt_secret = 2.718281828459045\n".to_owned(),
            "auth.jwt_secret",
            "718281828459045",
        ),
        (
            "[providers.tiktok]\nclient_id = \"cid\"\nclient_secret = { value = \"tbl-Secret-Qz81\" }\n"
                .to_owned(),
            "providers.tiktok.client_secret",
            "tbl-Secret-Qz81",
        ),
        (
            "[security]\nmaster_key = [\"arr-Secret-Wv27\"]\n".to_owned(),
            "security.master_key",
            "arr-Secret-Wv27",
        ),
    ] {
        write(&file, &toml);
        for args in config_commands() {
            let mut env = vec![];
            if args == ["serve"] {
                env.push(("DRAVO_SERVER_BIND", "127.0.0.1:0"));
            }
            let out = dravo_env(dir.path(), &env, &args);
            out.assert_config_error(&["expected a string", "found a"])
                .assert_hides(secret);
            assert_names_key_exactly(&out.stderr, key);
        }
    }
}

#[test]
fn secrets_from_the_environment_never_appear_in_errors() {
    let dir = tempdir();
    let secret = "env-Secret-Hq4-7365021894563210987";
    // A validation error about the secret's own key.
    assert_all_fail(
        dir.path(),
        &[("DRAVO_PROVIDERS_X_CLIENT_SECRET", secret)],
        &["providers.x.client_secret", "providers.x.client_id"],
    )
    .assert_hides(secret);
    // A wrong type elsewhere while secrets are set.
    for (var, key) in [
        (
            "DRAVO_PROVIDERS_TIMEOUT_SECONDS",
            "providers.timeout_seconds",
        ),
        ("DRAVO_SERVER_PUBLIC_URL", "server.public_url"),
    ] {
        dravo_env(
            dir.path(),
            &[
                ("DRAVO_PROVIDERS_X_CLIENT_ID", "cid"),
                ("DRAVO_PROVIDERS_X_CLIENT_SECRET", secret),
                ("DRAVO_AUTH_JWT_SECRET", secret),
                (var, "soon"),
            ],
            LIST,
        )
        .assert_config_error(&[key])
        .assert_hides(secret);
    }
    // The file holds a secret of the wrong type; the environment holds another secret.
    write(
        &dir.path().join("dravo.toml"),
        &format!("[providers.linkedin]\nclient_id = \"cid\"\nclient_secret = {SECRET_NUMBER}\n"),
    );
    dravo_env(dir.path(), &[("DRAVO_AUTH_JWT_SECRET", secret)], LIST)
        .assert_config_error(&["providers.linkedin.client_secret", "expected a string"])
        .assert_hides(secret)
        .assert_hides(SECRET_NUMBER);
}

// ---------------------------------------------------------------- keys

#[test]
fn malformed_master_key_in_env_names_security_master_key() {
    let dir = tempdir();
    let bad = "not!base64!distinctive-Kq3";
    assert_all_fail(
        dir.path(),
        &[("DRAVO_SECURITY_MASTER_KEY", bad)],
        &["security.master_key"],
    )
    .assert_hides(bad);
}

#[test]
fn master_key_of_the_wrong_length_names_the_key_and_the_length() {
    let dir = tempdir();
    for len in [32usize, 63, 65] {
        let key = base64_key(len, 7);
        assert_all_fail(
            dir.path(),
            &[("DRAVO_SECURITY_MASTER_KEY", &key)],
            &["security.master_key", "64"],
        )
        .assert_hides(&key);
    }
}

#[test]
fn malformed_master_key_in_the_file_names_the_key() {
    let dir = tempdir();
    write(
        &dir.path().join("dravo.toml"),
        "[security]\nmaster_key = \"c2hvcnQ=\"\n",
    );
    dravo(dir.path(), LIST).assert_config_error(&["security.master_key"]);
}

#[test]
fn wrong_master_key_for_an_existing_database() {
    let dir = tempdir();
    let key_a = base64_key(64, 0xA1);
    let key_b = base64_key(64, 0xB2);
    create_app(
        dir.path(),
        &[("DRAVO_SECURITY_MASTER_KEY", &key_a)],
        "sealed",
    );
    assert!(
        !dir.path().join("dravo.key").exists(),
        "no key file is created when security.master_key is set"
    );
    // The right key still works.
    let out = dravo_env(dir.path(), &[("DRAVO_SECURITY_MASTER_KEY", &key_a)], LIST);
    out.assert_success();
    assert_eq!(out.json().as_array().unwrap().len(), 1);

    let out = assert_all_fail(
        dir.path(),
        &[("DRAVO_SECURITY_MASTER_KEY", &key_b)],
        &["does not match"],
    );
    out.assert_hides(&key_a).assert_hides(&key_b);
}

#[test]
fn missing_key_file_for_a_used_database_is_an_error_not_a_new_key() {
    let dir = tempdir();
    create_app(dir.path(), &[], "sealed");
    let key_file = dir.path().join("dravo.key");
    assert!(key_file.exists());
    std::fs::remove_file(&key_file).unwrap();
    dravo(dir.path(), LIST).assert_config_error(&["dravo.key"]);
    assert!(
        !key_file.exists(),
        "a fresh key must not be made for a database sealed with another one"
    );
}

#[test]
fn unreadable_or_malformed_key_file_names_security_master_key_file() {
    let dir = tempdir();
    init(dir.path(), &[]);
    let key_file = dir.path().join("dravo.key");
    write_key_file(&key_file, "garbage, not base64\n");
    dravo(dir.path(), LIST).assert_config_error(&["security.master_key_file"]);
    write_key_file(&key_file, &format!("{}\n", base64_key(32, 1)));
    dravo(dir.path(), LIST).assert_config_error(&["security.master_key_file", "64"]);
    std::fs::remove_file(&key_file).unwrap();
    std::fs::create_dir(&key_file).unwrap();
    dravo(dir.path(), LIST).assert_config_error(&["security.master_key_file"]);
}

#[test]
fn explicit_master_key_file_is_used() {
    let dir = tempdir();
    let keys = tempdir();
    let key_file = keys.path().join("my.key");
    write_key_file(&key_file, &format!("{}\n", base64_key(64, 9)));
    let env = [("DRAVO_SECURITY_MASTER_KEY_FILE", key_file.to_str().unwrap())];
    create_app(dir.path(), &env, "with key file");
    assert!(!dir.path().join("dravo.key").exists());
    // The same key given inline opens the same database.
    let out = dravo_env(
        dir.path(),
        &[("DRAVO_SECURITY_MASTER_KEY", &base64_key(64, 9))],
        LIST,
    );
    out.assert_success();
    assert_eq!(out.json().as_array().unwrap().len(), 1);
}

#[test]
fn short_jwt_secret_names_auth_jwt_secret() {
    let dir = tempdir();
    let short = "short-jwt-Secret-31-bytes-xxxxx";
    assert_eq!(short.len(), 31);
    assert_all_fail(
        dir.path(),
        &[("DRAVO_AUTH_JWT_SECRET", short)],
        &["auth.jwt_secret"],
    )
    .assert_hides(short);

    write(
        &dir.path().join("dravo.toml"),
        &format!("[auth]\njwt_secret = \"{short}\"\n"),
    );
    dravo(dir.path(), LIST)
        .assert_config_error(&["auth.jwt_secret"])
        .assert_hides(short);
}

#[test]
fn jwt_secret_of_32_bytes_is_accepted() {
    let dir = tempdir();
    init(dir.path(), &[]);
    let ok = "a-jwt-secret-of-exactly-32-bytes";
    assert_eq!(ok.len(), 32);
    dravo_env(
        dir.path(),
        &[("DRAVO_AUTH_JWT_SECRET", ok)],
        &["token", "issue", "--sub", "alice"],
    )
    .assert_success()
    .assert_hides(ok);
}

// ---------------------------------------------------------------- precedence

fn redirect_uri(out: &Out) -> String {
    out.assert_success();
    out.json()["redirect_uri"].as_str().unwrap().to_owned()
}

fn create_out(dir: &Path, env: &[(&str, &str)], extra_args: &[&str], name: &str) -> Out {
    let mut init = extra_args.to_vec();
    init.push("init");
    dravo_env(dir, env, &init).assert_success();
    let mut cmd = dravo_cmd(dir);
    cmd.args(extra_args).args([
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
        "--client-secret-stdin",
        "--json",
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_cmd(cmd, "precedence-secret\n")
}

#[test]
fn environment_overrides_the_file() {
    let dir = tempdir();
    write(
        &dir.path().join("dravo.toml"),
        "[server]\nbind = \"127.0.0.1:9000\"\npublic_url = \"https://file.example.com\"\n",
    );
    let from_file = create_out(dir.path(), &[], &[], "one");
    assert_eq!(
        redirect_uri(&from_file),
        "https://file.example.com/v1/oauth/x/callback"
    );
    let from_env = create_out(
        dir.path(),
        &[("DRAVO_SERVER_PUBLIC_URL", "https://env.example.com/")],
        &[],
        "two",
    );
    assert_eq!(
        redirect_uri(&from_env),
        "https://env.example.com/v1/oauth/x/callback"
    );
}

#[test]
fn bind_from_env_overrides_bind_from_the_file() {
    // Without public_url the redirect URI is built from server.bind, which reveals it.
    let dir = tempdir();
    write(
        &dir.path().join("dravo.toml"),
        "[server]\nbind = \"127.0.0.1:9000\"\n",
    );
    let from_file = create_out(dir.path(), &[], &[], "one");
    assert_eq!(
        redirect_uri(&from_file),
        "http://127.0.0.1:9000/v1/oauth/x/callback"
    );
    let from_env = create_out(
        dir.path(),
        &[("DRAVO_SERVER_BIND", "127.0.0.1:9001")],
        &[],
        "two",
    );
    assert_eq!(
        redirect_uri(&from_env),
        "http://127.0.0.1:9001/v1/oauth/x/callback"
    );
}

#[test]
fn config_flag_beats_dravo_config_which_beats_the_local_file() {
    let dir = tempdir();
    let other = tempdir();
    write(
        &dir.path().join("dravo.toml"),
        "[server]\npublic_url = \"https://local.example.com\"\n",
    );
    let env_file = other.path().join("env.toml");
    write(
        &env_file,
        "[server]\npublic_url = \"https://envfile.example.com\"\n",
    );
    let flag_file = other.path().join("flag.toml");
    write(
        &flag_file,
        "[server]\npublic_url = \"https://flag.example.com\"\n",
    );
    let env = [("DRAVO_CONFIG", env_file.to_str().unwrap())];

    let local = create_out(dir.path(), &[], &[], "a");
    assert_eq!(
        redirect_uri(&local),
        "https://local.example.com/v1/oauth/x/callback"
    );
    let via_env = create_out(dir.path(), &env, &[], "b");
    assert_eq!(
        redirect_uri(&via_env),
        "https://envfile.example.com/v1/oauth/x/callback"
    );
    let via_flag = create_out(
        dir.path(),
        &env,
        &["--config", flag_file.to_str().unwrap()],
        "c",
    );
    assert_eq!(
        redirect_uri(&via_flag),
        "https://flag.example.com/v1/oauth/x/callback"
    );
}

#[test]
fn database_path_from_the_file_is_used() {
    let dir = tempdir();
    write(
        &dir.path().join("dravo.toml"),
        "[database]\npath = \"data/custom.db\"\n",
    );
    std::fs::create_dir(dir.path().join("data")).unwrap();
    for args in [&["init"][..], &["token", "issue", "--sub", "alice"]] {
        let mut cmd = dravo_cmd(dir.path());
        cmd.env_remove("DRAVO_DATABASE_PATH")
            .env_remove("DRAVO_DATABASE_URL")
            .args(args);
        run_cmd(cmd, "").assert_success();
    }
    assert!(dir.path().join("data/custom.db").exists());
    assert!(
        dir.path().join("data/dravo.key").exists(),
        "the key file defaults to the database's directory"
    );
    assert!(!dir.path().join("dravo.db").exists());
}

// ---------------------------------------------------------------- zero config

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn zero_config_creates_a_0600_key_file_beside_the_database_and_reuses_it() {
    let dir = tempdir();
    // Truly zero configuration: no DRAVO_* variable at all, default database path.
    let mut cmd = dravo_cmd(dir.path());
    cmd.env_remove("DRAVO_DATABASE_PATH")
        .env_remove("DRAVO_DATABASE_URL")
        .arg("init");
    run_cmd(cmd, "").assert_success();
    let mut cmd = dravo_cmd(dir.path());
    cmd.env_remove("DRAVO_DATABASE_PATH")
        .env_remove("DRAVO_DATABASE_URL")
        .args([
            "oauth-apps",
            "create",
            "--owner",
            "alice",
            "--provider",
            "x",
            "--name",
            "zero",
            "--client-id",
            "cid",
            "--client-secret-stdin",
            "--json",
        ]);
    let out = run_cmd(cmd, "zero-config-secret\n");
    out.assert_success().assert_hides("zero-config-secret");
    let key_file = dir.path().join("dravo.key");
    assert!(dir.path().join("dravo.db").exists(), "database created");
    assert!(key_file.exists(), "key file created beside the database");
    assert_eq!(mode(&key_file), 0o600, "key file mode");
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(STANDARD.decode(key.trim()).unwrap().len(), 64);

    // A second command reuses the key: it opens the sealed database and leaves the file alone.
    let mut cmd = dravo_cmd(dir.path());
    cmd.env_remove("DRAVO_DATABASE_PATH")
        .env_remove("DRAVO_DATABASE_URL")
        .args(LIST);
    let out = run_cmd(cmd, "");
    out.assert_success();
    assert_eq!(out.json().as_array().unwrap().len(), 1);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);
    assert_eq!(mode(&key_file), 0o600);
}

#[cfg(unix)]
#[test]
fn key_file_lands_beside_a_database_in_another_directory() {
    if support::sqlite_only("names a SQLite file in another directory") {
        return;
    }
    let dir = tempdir();
    let db = dir.path().join("state/nested/app.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    for args in [&["init"][..], &["token", "issue", "--sub", "alice"]] {
        let mut cmd = dravo_cmd(dir.path());
        cmd.env("DRAVO_DATABASE_PATH", &db).args(args);
        run_cmd(cmd, "").assert_success();
    }
    let key_file = dir.path().join("state/nested/dravo.key");
    assert!(db.exists());
    assert!(key_file.exists());
    assert_eq!(mode(&key_file), 0o600);
    assert!(!dir.path().join("dravo.key").exists());
}

#[test]
fn concurrent_first_runs_agree_on_one_key() {
    // Several `init`s start at once in an empty directory (say, a provisioning script run
    // twice): exactly one key file results, every run succeeds, and every token issued
    // afterwards verifies against that key.
    let dir = tempdir();
    let children: Vec<std::process::Child> = (0..8)
        .map(|_| {
            let mut cmd = dravo_cmd(dir.path());
            cmd.arg("init")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a concurrent first run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tokens: Vec<String> = (0..3)
        .map(|_| {
            let out = dravo(dir.path(), &["token", "issue", "--sub", "alice"]);
            out.assert_success();
            out.stdout.trim().to_owned()
        })
        .collect();
    let config = support::test_config(dir.path());
    let dravo = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(dravo::Dravo::open(config, None))
        .unwrap();
    for token in &tokens {
        let owner = dravo
            .authenticate(token)
            .unwrap_or_else(|e| panic!("a token from a concurrent first run is refused: {e}"));
        assert_eq!(owner.as_str(), "alice");
    }
}

// ---------------------------------------------------------------- key file permissions

#[cfg(unix)]
const TOKEN_ISSUE: &[&str] = &["token", "issue", "--sub", "alice"];

#[cfg(unix)]
#[test]
fn a_key_file_readable_by_group_or_others_is_refused_with_the_chmod_fix() {
    let dir = tempdir();
    let key_file = dir.path().join("dravo.key");
    let key = base64_key(64, 3);
    write_key_file(&key_file, &format!("{key}\n"));
    init(dir.path(), &[]);
    let path = key_file.to_str().unwrap();
    let fix = format!("chmod 600 {path}");
    for m in [0o644, 0o640, 0o604] {
        chmod(&key_file, m);
        let shown = format!("{m:04o}");
        assert_all_fail(dir.path(), &[], &[path, &shown, &fix]).assert_hides(&key);
        // An explicit `false` is the default.
        dravo_env(
            dir.path(),
            &[("DRAVO_SECURITY_ALLOW_INSECURE_KEY_FILE", "false")],
            TOKEN_ISSUE,
        )
        .assert_config_error(&[path, &shown, &fix]);
        assert_eq!(mode(&key_file), m, "the key file is left alone");
    }
    // An explicit key file elsewhere is checked too.
    let keys = tempdir();
    let other = keys.path().join("my.key");
    write(&other, &format!("{key}\n"));
    chmod(&other, 0o644);
    let other = other.to_str().unwrap();
    dravo_env(
        dir.path(),
        &[("DRAVO_SECURITY_MASTER_KEY_FILE", other)],
        TOKEN_ISSUE,
    )
    .assert_config_error(&[other, "0644", &format!("chmod 600 {other}")]);
}

#[cfg(unix)]
#[test]
fn a_key_file_of_mode_0600_is_accepted() {
    let dir = tempdir();
    let key_file = dir.path().join("dravo.key");
    write(&key_file, &format!("{}\n", base64_key(64, 4)));
    chmod(&key_file, 0o600);
    init(dir.path(), &[]);
    dravo(dir.path(), TOKEN_ISSUE).assert_success();
    dravo(dir.path(), LIST).assert_success();
    chmod(&key_file, 0o400);
    dravo(dir.path(), TOKEN_ISSUE).assert_success();
}

#[cfg(unix)]
#[test]
fn allow_insecure_key_file_accepts_a_0644_key_file() {
    let dir = tempdir();
    let key_file = dir.path().join("dravo.key");
    write(&key_file, &format!("{}\n", base64_key(64, 5)));
    chmod(&key_file, 0o644);
    init(
        dir.path(),
        &[("DRAVO_SECURITY_ALLOW_INSECURE_KEY_FILE", "true")],
    );
    // From the environment (a string) ...
    dravo_env(
        dir.path(),
        &[("DRAVO_SECURITY_ALLOW_INSECURE_KEY_FILE", "true")],
        TOKEN_ISSUE,
    )
    .assert_success();
    // ... and from the file (a boolean).
    write(
        &dir.path().join("dravo.toml"),
        "[security]\nallow_insecure_key_file = true\n",
    );
    dravo(dir.path(), TOKEN_ISSUE).assert_success();
    dravo(dir.path(), LIST).assert_success();
    assert_eq!(mode(&key_file), 0o644, "the key file is left alone");
    // The environment wins over the file.
    dravo_env(
        dir.path(),
        &[("DRAVO_SECURITY_ALLOW_INSECURE_KEY_FILE", "false")],
        TOKEN_ISSUE,
    )
    .assert_config_error(&["chmod 600"]);
    // Anything but true or false is a configuration error naming the key.
    dravo_env(
        dir.path(),
        &[("DRAVO_SECURITY_ALLOW_INSECURE_KEY_FILE", "maybe")],
        TOKEN_ISSUE,
    )
    .assert_config_error(&[
        "security.allow_insecure_key_file",
        "DRAVO_SECURITY_ALLOW_INSECURE_KEY_FILE",
    ]);
}

// ---------------------------------------------------------------- database file permissions

#[cfg(unix)]
#[test]
fn the_database_is_created_0600_and_a_looser_existing_one_gets_a_warning() {
    if support::sqlite_only("checks the SQLite file's mode") {
        return;
    }
    let dir = tempdir();
    let db = dir.path().join("dravo.db");
    // `dravo_cmd`'s program and environment, run through `sh` to set the umask.
    let plain = dravo_cmd(dir.path());
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(plain.get_program())
        .arg("init")
        .current_dir(dir.path());
    for (key, value) in plain.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let out = run_cmd(cmd, "");
    out.assert_success();
    assert_eq!(mode(&db), 0o600, "database file mode under umask 022");
    assert!(!out.stderr.contains("chmod"), "{}", out.describe());

    // A database that already exists with a looser mode is used as it is, with a warning.
    chmod(&db, 0o644);
    let out = dravo(dir.path(), LIST);
    out.assert_success();
    assert!(
        out.stderr.contains(&format!("chmod 600 {}", db.display())),
        "a warning names the fix\n{}",
        out.describe()
    );
    assert_eq!(mode(&db), 0o644, "the database file is left alone");
}
