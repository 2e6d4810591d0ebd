//! Black-box tests of the offline command line (contract §1, §4): the real `dravo` binary is
//! run in a fresh temporary directory; no server is started except where the CLI's `--json`
//! output is compared with what the HTTP API returns for the same rows.

use crate::support;

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;
use support::cmd::{Out, dravo, dravo_with, run_cmd};
use support::{dravo_cmd, files_in, stored_secret};

/// A distinctive secret that must never show up in any output.
const SECRET: &str = "cli-s3cret-Zq8v1Xw9-never-shown";

/// Runs `dravo ARGS` in `dir` with `stdin`.
fn dravo_stdin(dir: &Path, args: &[&str], stdin: &str) -> Out {
    dravo_with(dir, &[], args, stdin)
}

/// Creates an app over the CLI (secret on stdin) and returns its `--json` output.
fn create_json(dir: &Path, owner: &str, provider: &str, name: &str) -> Value {
    let out = dravo_stdin(
        dir,
        &[
            "oauth-apps",
            "create",
            "--owner",
            owner,
            "--provider",
            provider,
            "--name",
            name,
            "--client-id",
            "cid-123",
            "--client-secret-stdin",
            "--json",
        ],
        &format!("{SECRET}\n"),
    );
    out.assert_success().assert_hides(SECRET);
    out.json()
}

/// A temporary directory where `dravo init` has created the database and key file, as
/// every command but `serve` and `init` needs.
fn tempdir() -> tempfile::TempDir {
    let dir = empty_dir();
    dravo(dir.path(), &["init"]).assert_success();
    dir
}

fn empty_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Decodes a JWT's payload (without checking the signature).
fn jwt_payload(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(
        parts.len(),
        3,
        "a JWT has three dot-separated parts: {token}"
    );
    let bytes = URL_SAFE_NO_PAD
        .decode(parts[1])
        .unwrap_or_else(|e| panic!("payload is not base64url: {e}: {token}"));
    serde_json::from_slice(&bytes).expect("payload is JSON")
}

const APP_FIELDS: [&str; 14] = [
    "id",
    "provider",
    "name",
    "client_id",
    "redirect_uri",
    "scopes",
    "created_at",
    "credentials_error",
    "updated_at",
    "last_check",
    "warnings",
    "user_agent",
    "website",
    "servers",
];

/// Checks that `app` has exactly the fields of the API's OAuth app object.
fn assert_app_object(app: &Value) {
    let obj = app
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {app}"));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    let mut expected = APP_FIELDS.to_vec();
    expected.sort();
    assert_eq!(keys, expected, "fields of {app}");
    let id = app["id"].as_str().unwrap();
    assert!(
        id.len() == 23
            && id.starts_with("oa_")
            && id[3..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)),
        "id {id}"
    );
    assert!(app["scopes"].is_array(), "scopes of {app}");
    assert!(
        app["created_at"].as_str().unwrap().ends_with('Z'),
        "created_at is RFC 3339 UTC: {app}"
    );
}

// ---------------------------------------------------------------- token issue

#[test]
fn token_issue_prints_exactly_one_jwt_line() {
    let dir = tempdir();
    let out = dravo(dir.path(), &["token", "issue", "--sub", "alice"]);
    out.assert_success();
    let token = out
        .stdout
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("stdout must end with a newline: {:?}", out.stdout));
    assert!(
        !token.contains('\n') && !token.contains('\r') && !token.contains(' '),
        "stdout must be the token alone on one line: {:?}",
        out.stdout
    );
    assert_eq!(token.split('.').count(), 3, "three parts: {token}");
    assert!(token.split('.').all(|p| !p.is_empty()), "{token}");
    let payload = jwt_payload(token);
    assert_eq!(payload["sub"], "alice");
    let iat = payload["iat"].as_u64().expect("iat");
    let exp = payload["exp"].as_u64().expect("exp");
    assert_eq!(exp - iat, 3600, "--ttl defaults to 3600: {payload}");
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "HS256");
}

#[test]
fn token_issue_ttl_sets_the_lifetime() {
    let dir = tempdir();
    for ttl in [1u64, 90, 86_400] {
        let out = dravo(
            dir.path(),
            &["token", "issue", "--sub", "bob", "--ttl", &ttl.to_string()],
        );
        out.assert_success();
        let payload = jwt_payload(out.stdout.trim_end());
        let iat = payload["iat"].as_u64().unwrap();
        let exp = payload["exp"].as_u64().unwrap();
        assert_eq!(exp - iat, ttl, "{payload}");
        assert_eq!(payload["sub"], "bob");
    }
}

#[test]
fn token_issue_usage_errors_exit_2() {
    let dir = tempdir();
    dravo(dir.path(), &["token", "issue"]).assert_usage_error();
    dravo(
        dir.path(),
        &["token", "issue", "--sub", "a", "--ttl", "soon"],
    )
    .assert_usage_error();
    dravo(dir.path(), &["token", "issue", "--sub", "a", "--ttl", "-5"]).assert_usage_error();
}

#[test]
fn token_issue_ttl_above_max_token_lifetime_is_a_usage_error_naming_the_maximum() {
    let dir = tempdir();
    // The default maximum: 7 days.
    let out = dravo(
        dir.path(),
        &["token", "issue", "--sub", "a", "--ttl", "604801"],
    );
    out.assert_usage_error();
    assert_eq!(
        out.stderr.trim_end(),
        "error: --ttl 604801 is longer than auth.max_token_lifetime allows: at most 604800 seconds"
    );
    dravo(
        dir.path(),
        &["token", "issue", "--sub", "a", "--ttl", "604800"],
    )
    .assert_success();
    // A configured maximum.
    let env = [("DRAVO_AUTH_MAX_TOKEN_LIFETIME", "86400")];
    let out = dravo_with(
        dir.path(),
        &env,
        &["token", "issue", "--sub", "a", "--ttl", "86401"],
        "",
    );
    out.assert_usage_error();
    assert!(
        out.stderr.contains("at most 86400 seconds"),
        "{}",
        out.stderr
    );
    dravo_with(
        dir.path(),
        &env,
        &["token", "issue", "--sub", "a", "--ttl", "86400"],
        "",
    )
    .assert_success();
}

#[test]
fn token_issue_is_stable_across_runs_in_the_same_directory() {
    // Two runs sign with the same key (the key file created by the first), so their
    // signatures over identical claims would match; here we only check both succeed and the
    // key file is reused rather than replaced.
    let dir = tempdir();
    dravo(dir.path(), &["token", "issue", "--sub", "alice"]).assert_success();
    let key1 = std::fs::read(dir.path().join("dravo.key")).expect("key file created");
    dravo(dir.path(), &["token", "issue", "--sub", "alice"]).assert_success();
    let key2 = std::fs::read(dir.path().join("dravo.key")).unwrap();
    assert_eq!(key1, key2, "the key file must be reused, not regenerated");
}

// ---------------------------------------------------------------- oauth-apps create

#[test]
fn create_with_secret_on_stdin_strips_exactly_one_newline() {
    let dir = tempdir();
    let cases = [
        ("one", "s3cret\n", "s3cret"),
        ("two", "s3cret", "s3cret"),
        ("three", "  spaced s3cret  \n", "  spaced s3cret  "),
        ("four", "crlf-s3cret\r\n", "crlf-s3cret"),
    ];
    for (name, stdin, expected) in cases {
        let out = dravo_stdin(
            dir.path(),
            &[
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
            ],
            stdin,
        );
        out.assert_success().assert_hides(expected);
        let id = out.json()["id"].as_str().unwrap().to_owned();
        assert_eq!(
            stored_secret(dir.path(), "alice", &id),
            expected,
            "stdin {stdin:?}"
        );
    }
}

#[test]
fn create_with_secret_on_stdin_strips_only_one_newline() {
    // "s3cret\n\n" leaves "s3cret\n", which holds a control character: rejected (§4).
    let dir = tempdir();
    let out = dravo_stdin(
        dir.path(),
        &[
            "oauth-apps",
            "create",
            "--owner",
            "alice",
            "--provider",
            "x",
            "--name",
            "n",
            "--client-id",
            "cid",
            "--client-secret-stdin",
        ],
        &format!("{SECRET}\n\n"),
    );
    out.assert_usage_error().assert_hides(SECRET);
    dravo(
        dir.path(),
        &["oauth-apps", "list", "--owner", "alice", "--json"],
    )
    .assert_success();
    let list = dravo(
        dir.path(),
        &["oauth-apps", "list", "--owner", "alice", "--json"],
    )
    .json();
    assert_eq!(list, serde_json::json!([]));
}

#[test]
fn create_with_empty_stdin_is_a_usage_error() {
    let dir = tempdir();
    for stdin in ["", "\n"] {
        dravo_stdin(
            dir.path(),
            &[
                "oauth-apps",
                "create",
                "--owner",
                "alice",
                "--provider",
                "x",
                "--name",
                "n",
                "--client-id",
                "cid",
                "--client-secret-stdin",
            ],
            stdin,
        )
        .assert_usage_error();
    }
}

#[test]
fn create_with_secret_from_env_var() {
    let dir = tempdir();
    let mut cmd = dravo_cmd(dir.path());
    cmd.env("MY_X_SECRET", SECRET).args([
        "oauth-apps",
        "create",
        "--owner",
        "alice",
        "--provider",
        "linkedin",
        "--name",
        "From env",
        "--client-id",
        "cid-env",
        "--client-secret-env",
        "MY_X_SECRET",
        "--json",
    ]);
    let out = run_cmd(cmd, "ignored-stdin\n");
    out.assert_success().assert_hides(SECRET);
    let app = out.json();
    assert_app_object(&app);
    assert_eq!(app["provider"], "linkedin");
    assert_eq!(app["name"], "From env");
    assert_eq!(app["client_id"], "cid-env");
    assert_eq!(
        stored_secret(dir.path(), "alice", app["id"].as_str().unwrap()),
        SECRET
    );
}

#[test]
fn create_json_is_exactly_the_api_object() {
    let dir = tempdir();
    let mut cmd = dravo_cmd(dir.path());
    cmd.args([
        "oauth-apps",
        "create",
        "--owner",
        "alice",
        "--provider",
        "x",
        "--name",
        "  My X App ",
        "--client-id",
        "cid-123",
        "--client-secret-stdin",
        "--scopes",
        "tweet.read, users.read offline.access",
        "--json",
    ]);
    let out = run_cmd(cmd, &format!("{SECRET}\n"));
    out.assert_success().assert_hides(SECRET);
    assert!(
        out.stdout.ends_with('\n') && out.stdout.trim_end().lines().count() == 1,
        "one JSON document on one line: {:?}",
        out.stdout
    );
    let app = out.json();
    assert_app_object(&app);
    assert_eq!(app["provider"], "x");
    assert_eq!(app["name"], "My X App", "the name is trimmed");
    assert_eq!(app["client_id"], "cid-123");
    assert_eq!(
        app["scopes"],
        serde_json::json!(["tweet.read", "users.read", "offline.access"])
    );
    // Default public URL is http://<server.bind>.
    assert_eq!(
        app["redirect_uri"],
        "http://127.0.0.1:8080/v1/oauth/x/callback"
    );
    assert!(app.get("client_secret").is_none());
}

#[test]
fn create_without_scopes_uses_the_provider_defaults() {
    let dir = tempdir();
    let app = create_json(dir.path(), "alice", "tiktok", "Defaults");
    let scopes = app["scopes"].as_array().unwrap();
    assert!(!scopes.is_empty(), "default scopes: {app}");
}

#[test]
fn create_and_show_human_output_are_key_value_lines() {
    let dir = tempdir();
    let out = dravo_stdin(
        dir.path(),
        &[
            "oauth-apps",
            "create",
            "--owner",
            "alice",
            "--provider",
            "facebook",
            "--name",
            "Human App",
            "--client-id",
            "cid-human",
            "--client-secret-stdin",
        ],
        &format!("{SECRET}\n"),
    );
    out.assert_success().assert_hides(SECRET);
    let fields = key_values(&out.stdout);
    assert_eq!(fields["provider"], "facebook");
    assert_eq!(fields["name"], "Human App");
    assert_eq!(fields["client_id"], "cid-human");
    assert_eq!(
        fields["redirect_uri"],
        "http://127.0.0.1:8080/v1/oauth/facebook/callback"
    );
    let id = fields["id"].clone();
    assert!(id.starts_with("oa_"), "{id}");
    assert!(fields.contains_key("created_at"));
    assert!(fields.contains_key("scopes"));

    let show = dravo(dir.path(), &["oauth-apps", "show", "--owner", "alice", &id]);
    show.assert_success().assert_hides(SECRET);
    assert_eq!(
        key_values(&show.stdout),
        fields,
        "show prints what create printed"
    );

    let show_json = dravo(
        dir.path(),
        &["oauth-apps", "show", "--owner", "alice", &id, "--json"],
    );
    show_json.assert_success();
    let app = show_json.json();
    assert_app_object(&app);
    assert_eq!(app["id"], id.as_str());
    assert_eq!(app["redirect_uri"], fields["redirect_uri"].as_str());
    assert_eq!(app["created_at"], fields["created_at"].as_str());
}

/// Parses `key: value` lines; every non-empty line must be one.
fn key_values(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut map = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (k, v) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("not a `key: value` line: {line:?} in\n{text}"));
        assert!(
            !k.contains(' ') && !k.is_empty(),
            "bad key in {line:?} in\n{text}"
        );
        map.insert(k.to_owned(), v.trim().to_owned());
    }
    map
}

// ---------------------------------------------------------------- list / show / delete

#[test]
fn list_json_is_an_array_oldest_first_and_provider_filters() {
    let dir = tempdir();
    let a = create_json(dir.path(), "alice", "x", "first");
    let b = create_json(dir.path(), "alice", "linkedin", "second");
    let c = create_json(dir.path(), "alice", "x", "third");
    create_json(dir.path(), "mallory", "x", "not alice's");

    let out = dravo(
        dir.path(),
        &["oauth-apps", "list", "--owner", "alice", "--json"],
    );
    out.assert_success().assert_hides(SECRET);
    let list = out.json();
    assert_eq!(
        list,
        serde_json::json!([a, b, c]),
        "all of alice's, oldest first"
    );

    let out = dravo(
        dir.path(),
        &[
            "oauth-apps",
            "list",
            "--owner",
            "alice",
            "--provider",
            "x",
            "--json",
        ],
    );
    out.assert_success();
    assert_eq!(out.json(), serde_json::json!([a, c]));

    let out = dravo(
        dir.path(),
        &[
            "oauth-apps",
            "list",
            "--owner",
            "alice",
            "--provider",
            "tiktok",
            "--json",
        ],
    );
    out.assert_success();
    assert_eq!(out.json(), serde_json::json!([]));

    let out = dravo(
        dir.path(),
        &["oauth-apps", "list", "--owner", "nobody", "--json"],
    );
    out.assert_success();
    assert_eq!(out.json(), serde_json::json!([]));
}

#[test]
fn list_prints_an_aligned_table_with_a_header() {
    let dir = tempdir();
    let apps = [
        create_json(dir.path(), "alice", "x", "a"),
        create_json(
            dir.path(),
            "alice",
            "linkedin",
            "Café with a much longer name",
        ),
        create_json(dir.path(), "alice", "instagram", "mid-length name"),
    ];
    let out = dravo(dir.path(), &["oauth-apps", "list", "--owner", "alice"]);
    out.assert_success().assert_hides(SECRET);
    let lines: Vec<Vec<char>> = out.stdout.lines().map(|l| l.chars().collect()).collect();
    assert_eq!(
        lines.len(),
        1 + apps.len(),
        "header + one row per app:\n{}",
        out.stdout
    );
    let header: String = lines[0].iter().collect();
    // Column starts, by character position in the header.
    let col = |name: &str| -> usize {
        let byte = header
            .find(name)
            .unwrap_or_else(|| panic!("header lacks {name}: {header}"));
        header[..byte].chars().count()
    };
    assert_eq!(col("ID"), 0, "{header}");
    let provider_col = col("PROVIDER");
    let name_col = col("NAME");
    assert!(provider_col > 0 && name_col > provider_col, "{header}");
    for (line, app) in lines[1..].iter().zip(&apps) {
        let at = |start: usize, value: &str| {
            let cell: String = line[start..].iter().take(value.chars().count()).collect();
            assert_eq!(
                cell, value,
                "column at {start} misaligned in\n{}",
                out.stdout
            );
            assert!(
                start == 0 || line[start - 1] == ' ',
                "no gap before column at {start} in\n{}",
                out.stdout
            );
        };
        at(0, app["id"].as_str().unwrap());
        at(provider_col, app["provider"].as_str().unwrap());
        at(name_col, app["name"].as_str().unwrap());
    }
}

#[test]
fn list_human_with_no_apps_succeeds() {
    let dir = tempdir();
    let out = dravo(dir.path(), &["oauth-apps", "list", "--owner", "alice"]);
    out.assert_success();
    assert!(!out.stdout.contains("oa_"), "{}", out.stdout);
}

#[test]
fn delete_removes_the_app() {
    let dir = tempdir();
    let keep = create_json(dir.path(), "alice", "x", "keep");
    let gone = create_json(dir.path(), "alice", "x", "gone");
    let gone_id = gone["id"].as_str().unwrap();

    // Another tenant cannot delete it: reported exactly like a missing app.
    dravo(
        dir.path(),
        &["oauth-apps", "delete", "--owner", "mallory", gone_id],
    )
    .assert_runtime_error();

    let out = dravo(
        dir.path(),
        &["oauth-apps", "delete", "--owner", "alice", gone_id],
    );
    out.assert_success();
    assert!(
        out.stderr.is_empty() || !out.stderr.contains("error"),
        "{}",
        out.describe()
    );

    let list = dravo(
        dir.path(),
        &["oauth-apps", "list", "--owner", "alice", "--json"],
    )
    .json();
    assert_eq!(list, serde_json::json!([keep]));

    // Deleting or showing it again: not found.
    dravo(
        dir.path(),
        &["oauth-apps", "delete", "--owner", "alice", gone_id],
    )
    .assert_runtime_error();
    dravo(
        dir.path(),
        &["oauth-apps", "show", "--owner", "alice", gone_id],
    )
    .assert_runtime_error();
}

#[test]
fn show_and_delete_of_a_missing_id_exit_1_with_one_error_line() {
    let dir = tempdir();
    let missing = "oa_abcdefghijklmnopqrst";
    dravo(
        dir.path(),
        &["oauth-apps", "show", "--owner", "alice", missing],
    )
    .assert_runtime_error();
    dravo(
        dir.path(),
        &["oauth-apps", "show", "--owner", "alice", missing, "--json"],
    )
    .assert_runtime_error();
    dravo(
        dir.path(),
        &["oauth-apps", "delete", "--owner", "alice", missing],
    )
    .assert_runtime_error();
}

#[test]
fn another_tenants_app_is_reported_like_a_missing_one() {
    let dir = tempdir();
    let app = create_json(dir.path(), "alice", "x", "private");
    let id = app["id"].as_str().unwrap();
    let other = dravo(
        dir.path(),
        &["oauth-apps", "show", "--owner", "mallory", id],
    );
    other.assert_runtime_error();
    let missing = dravo(
        dir.path(),
        &[
            "oauth-apps",
            "show",
            "--owner",
            "mallory",
            "oa_abcdefghijklmnopqrst",
        ],
    );
    missing.assert_runtime_error();
    assert_eq!(
        other.stderr.replace(id, "ID"),
        missing.stderr.replace("oa_abcdefghijklmnopqrst", "ID"),
        "same message as for a missing id"
    );
}

#[test]
fn malformed_ids_are_usage_errors() {
    let dir = tempdir();
    for bad in [
        "oa_1",
        "oa_ABCDEFGHIJKLMNOPQRST",
        "xx_abcdefghijklmnopqrst",
        "acc_abcdefghijklmnopqrst",
        "",
    ] {
        dravo(dir.path(), &["oauth-apps", "show", "--owner", "alice", bad]).assert_usage_error();
        dravo(
            dir.path(),
            &["oauth-apps", "delete", "--owner", "alice", bad],
        )
        .assert_usage_error();
    }
}

// ---------------------------------------------------------------- usage errors

/// The arguments of a valid `create`, minus the secret source.
fn create_base(name: &str) -> Vec<String> {
    [
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
    ]
    .map(String::from)
    .to_vec()
}

fn run_create(dir: &Path, args: Vec<String>, env: &[(&str, &str)]) -> Out {
    let mut cmd = dravo_cmd(dir);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_cmd(cmd, &format!("{SECRET}\n"))
}

#[test]
fn create_usage_errors_exit_2_and_never_show_the_secret() {
    let dir = tempdir();
    let env = [("SECRET_VAR", SECRET)];
    let without = |flag: &str| -> Vec<String> {
        let mut args = create_base("n");
        let i = args.iter().position(|a| a == flag).unwrap();
        args.drain(i..i + 2);
        args.push("--client-secret-stdin".into());
        args
    };
    let with = |extra: &[&str]| -> Vec<String> {
        let mut args = create_base("n");
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let mut unknown_provider = with(&["--client-secret-stdin"]);
    let i = unknown_provider.iter().position(|a| a == "x").unwrap();
    unknown_provider[i] = "myspace".into();
    let mut long_name = with(&["--client-secret-stdin"]);
    long_name[7] = "n".repeat(121);
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("missing --owner", without("--owner")),
        ("missing --provider", without("--provider")),
        ("missing --name", without("--name")),
        ("missing --client-id", without("--client-id")),
        ("unknown --provider", unknown_provider),
        (
            "both secret sources",
            with(&["--client-secret-stdin", "--client-secret-env", "SECRET_VAR"]),
        ),
        ("no secret source", with(&[])),
        ("name of 121 chars", long_name),
        ("blank name", {
            let mut a = with(&["--client-secret-stdin"]);
            a[7] = "   ".into();
            a
        }),
        (
            "unset env var",
            with(&["--client-secret-env", "DRAVO_TEST_UNSET_VARIABLE_XYZ"]),
        ),
        (
            "empty --scopes",
            with(&["--client-secret-stdin", "--scopes", " "]),
        ),
        (
            "secret passed as an argument",
            with(&["--client-secret", SECRET]),
        ),
    ];
    for (what, args) in cases {
        let out = run_create(dir.path(), args, &env);
        assert_eq!(out.code, 2, "{what}: expected exit 2\n{}", out.describe());
        out.assert_usage_error().assert_hides(SECRET);
    }
    // Nothing was created by any of them.
    let list = dravo(
        dir.path(),
        &["oauth-apps", "list", "--owner", "alice", "--json"],
    )
    .json();
    assert_eq!(list, serde_json::json!([]));
}

#[test]
fn name_of_120_chars_is_accepted() {
    let dir = tempdir();
    let name = "é".repeat(120);
    let app = create_json(dir.path(), "alice", "x", &name);
    assert_eq!(app["name"], name.as_str());
}

#[test]
fn duplicate_name_is_a_runtime_error() {
    let dir = tempdir();
    create_json(dir.path(), "alice", "x", "dup");
    let out = run_create(
        dir.path(),
        {
            let mut a = create_base("dup");
            a.push("--client-secret-stdin".into());
            a
        },
        &[],
    );
    out.assert_runtime_error().assert_hides(SECRET);
    // Same name for another provider or another owner is fine.
    create_json(dir.path(), "alice", "linkedin", "dup");
    create_json(dir.path(), "bob", "x", "dup");
}

#[test]
fn list_and_show_usage_errors_exit_2() {
    let dir = tempdir();
    dravo(dir.path(), &["oauth-apps", "list"]).assert_usage_error();
    dravo(
        dir.path(),
        &[
            "oauth-apps",
            "list",
            "--owner",
            "a",
            "--provider",
            "myspace",
        ],
    )
    .assert_usage_error();
    dravo(dir.path(), &["oauth-apps", "show", "--owner", "a"]).assert_usage_error();
    dravo(
        dir.path(),
        &["oauth-apps", "show", "oa_abcdefghijklmnopqrst"],
    )
    .assert_usage_error();
    dravo(
        dir.path(),
        &["oauth-apps", "delete", "oa_abcdefghijklmnopqrst"],
    )
    .assert_usage_error();
    dravo(dir.path(), &["oauth-apps", "frobnicate"]).assert_usage_error();
    dravo(dir.path(), &["no-such-command"]).assert_usage_error();
}

// ---------------------------------------------------------------- --json equals the API

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_equals_what_the_http_api_returns() {
    let dir = tempdir();
    let public = "https://dravo.example.test";
    let mut cmd = dravo_cmd(dir.path());
    cmd.env("DRAVO_SERVER_PUBLIC_URL", public).args([
        "oauth-apps",
        "create",
        "--owner",
        "alice",
        "--provider",
        "x",
        "--name",
        "Compared",
        "--client-id",
        "cid",
        "--client-secret-stdin",
        "--json",
    ]);
    let created = run_cmd(cmd, &format!("{SECRET}\n"));
    created.assert_success();
    let created = created.json();
    assert_eq!(
        created["redirect_uri"],
        format!("{public}/v1/oauth/x/callback")
    );
    let id = created["id"].as_str().unwrap().to_owned();

    let mut cmd = dravo_cmd(dir.path());
    cmd.env("DRAVO_SERVER_PUBLIC_URL", public).args([
        "oauth-apps",
        "list",
        "--owner",
        "alice",
        "--json",
    ]);
    let listed = run_cmd(cmd, "").json();
    let mut cmd = dravo_cmd(dir.path());
    cmd.env("DRAVO_SERVER_PUBLIC_URL", public).args([
        "oauth-apps",
        "show",
        "--owner",
        "alice",
        &id,
        "--json",
    ]);
    let shown = run_cmd(cmd, "").json();

    let mut config = support::test_config(dir.path());
    config.server.public_url = Some(url::Url::parse(public).unwrap());
    let app = support::spawn_app_in(dir, config).await;
    let api_one: Value = app
        .get_as("alice", &format!("/v1/oauth-apps/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let api_list: Value = app
        .get_as("alice", "/v1/oauth-apps")
        .await
        .json()
        .await
        .unwrap();
    app.stop().await;

    assert_eq!(
        created, api_one,
        "create --json vs GET /v1/oauth-apps/{{id}}"
    );
    assert_eq!(shown, api_one, "show --json vs GET /v1/oauth-apps/{{id}}");
    assert_eq!(listed, api_list, "list --json vs GET /v1/oauth-apps");
}

// ---------------------------------------------------------------- openapi, keys, help

#[test]
fn openapi_prints_json_and_creates_no_file() {
    let dir = empty_dir();
    let out = dravo(dir.path(), &["openapi"]);
    out.assert_success();
    let spec = out.json();
    assert!(spec.get("openapi").is_some(), "no `openapi` key");
    assert!(
        spec["openapi"].as_str().unwrap().starts_with("3."),
        "OpenAPI 3: {}",
        spec["openapi"]
    );
    assert!(spec["paths"].get("/v1/oauth-apps").is_some());
    assert_eq!(
        files_in(dir.path()),
        Vec::<String>::new(),
        "openapi wrote files"
    );
}

#[test]
fn openapi_yaml_prints_the_same_spec_and_creates_no_file() {
    let dir = empty_dir();
    let yaml = dravo(dir.path(), &["openapi", "--yaml"]);
    yaml.assert_success();
    assert!(
        yaml.stdout.starts_with("openapi:"),
        "{}",
        &yaml.stdout[..80]
    );
    let from_yaml: Value = serde_yaml::from_str(&yaml.stdout).expect("YAML parses");
    let json = dravo(dir.path(), &["openapi"]);
    json.assert_success();
    assert_eq!(
        from_yaml,
        json.json(),
        "YAML and JSON describe the same spec"
    );
    assert_eq!(
        files_in(dir.path()),
        Vec::<String>::new(),
        "openapi wrote files"
    );
}

#[test]
fn openapi_needs_no_valid_database_or_key() {
    // No server, no database: even a database path in a missing directory is not touched.
    let dir = empty_dir();
    let mut cmd = dravo_cmd(dir.path());
    cmd.env(
        "DRAVO_DATABASE_PATH",
        dir.path().join("nested/dir/dravo.db"),
    )
    .arg("openapi");
    run_cmd(cmd, "").assert_success();
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
}

#[test]
fn keys_generate_prints_64_random_bytes_in_base64() {
    let dir = empty_dir();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let out = dravo(dir.path(), &["keys", "generate"]);
        out.assert_success();
        let line = out.stdout.strip_suffix('\n').expect("ends with a newline");
        assert!(!line.contains('\n'), "one line: {:?}", out.stdout);
        let bytes = STANDARD.decode(line).expect("standard base64");
        assert_eq!(bytes.len(), 64);
        assert!(bytes.iter().any(|&b| b != 0));
        seen.push(line.to_owned());
    }
    assert_ne!(seen[0], seen[1], "each run makes a fresh key");
    assert_eq!(
        files_in(dir.path()),
        Vec::<String>::new(),
        "keys generate wrote files"
    );
}

#[test]
fn a_generated_key_works_as_the_master_key() {
    let dir = empty_dir();
    let key = dravo(dir.path(), &["keys", "generate"]);
    key.assert_success();
    let key = key.stdout.trim();
    for args in [&["init"][..], &["token", "issue", "--sub", "alice"]] {
        let mut cmd = dravo_cmd(dir.path());
        cmd.env("DRAVO_SECURITY_MASTER_KEY", key).args(args);
        run_cmd(cmd, "").assert_success();
    }
    assert!(
        !dir.path().join("dravo.key").exists(),
        "with security.master_key set no key file is created"
    );
}

// ---------------------------------------------------------------- a closed stdout

/// `dravo ARGS` in `dir` with stdout a pipe whose reader is gone before the command starts:
/// its exit code and stderr.
fn into_a_closed_pipe(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    // A port of this test's own: `doctor` asks the bound address whether Dravo answers, and
    // the default one (127.0.0.1:8080) may be the user's own server.
    let (_reserved, port) = support::unanswered_port();
    let mut cmd = dravo_cmd(dir);
    cmd.env("DRAVO_SERVER_BIND", format!("127.0.0.1:{port}"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(std::process::Stdio::piped());
    let out = cmd.output().expect("run dravo");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `dravo openapi | head -1`: the reader takes one line and leaves; the rest of the spec
/// (far more than a pipe holds) meets a closed pipe. That is a normal end: exit 0, nothing
/// on stderr.
#[test]
fn openapi_into_a_pipe_closed_after_one_line_exits_0_silently() {
    use std::io::BufRead;
    let dir = empty_dir();
    let mut cmd = dravo_cmd(dir.path());
    cmd.arg("openapi")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn dravo");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first, "{\n");
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).as_ref()
        ),
        (Some(0), "")
    );
}

#[test]
fn every_printing_command_ends_quietly_when_stdout_is_closed() {
    let dir = tempdir();
    create_json(dir.path(), "alice", "x", "Piped");
    for args in [
        &["openapi"][..],
        &["openapi", "--yaml"],
        &["completions", "bash"],
        &["man"],
        &["--help"],
        &["keys", "generate"],
        &["keys", "status"],
        &["token", "issue", "--sub", "alice"],
        &["oauth-apps", "list", "--owner", "alice"],
        &["oauth-apps", "list", "--owner", "alice", "--json"],
        &["accounts", "list", "--owner", "alice"],
        &["doctor"],
    ] {
        assert_eq!(
            into_a_closed_pipe(dir.path(), args),
            (Some(0), String::new()),
            "{args:?}"
        );
    }
    // An error is still an error, and still said on stderr.
    let (code, stderr) = into_a_closed_pipe(
        dir.path(),
        &[
            "oauth-apps",
            "show",
            "--owner",
            "alice",
            "oa_aaaaaaaaaaaaaaaaaaaa",
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.starts_with("error: no OAuth app"), "{stderr}");
}

#[test]
fn help_exits_0() {
    let dir = empty_dir();
    for args in [
        vec!["--help"],
        vec!["help"],
        vec!["oauth-apps", "--help"],
        vec!["oauth-apps", "create", "--help"],
        vec!["token", "issue", "--help"],
        vec!["openapi", "--help"],
        vec!["keys", "generate", "--help"],
        vec!["keys", "status", "--help"],
        vec!["keys", "rotate", "--help"],
        vec!["serve", "--help"],
    ] {
        let out = dravo(dir.path(), &args);
        out.assert_success();
        assert!(out.stdout.contains("Usage"), "{args:?}: {}", out.stdout);
    }
    let create_help = dravo(dir.path(), &["oauth-apps", "create", "--help"]);
    assert!(create_help.stdout.contains("--client-secret-stdin"));
    assert!(create_help.stdout.contains("--client-secret-env"));
    assert_eq!(
        files_in(dir.path()),
        Vec::<String>::new(),
        "--help wrote files"
    );
}

#[test]
fn version_exits_0() {
    let dir = tempdir();
    let out = dravo(dir.path(), &["--version"]);
    out.assert_success();
    assert!(
        out.stdout.contains(env!("CARGO_PKG_VERSION")),
        "{}",
        out.stdout
    );
}

#[test]
fn no_subcommand_is_a_usage_error() {
    let dir = tempdir();
    let out = dravo(dir.path(), &[]);
    assert_eq!(out.code, 2, "{}", out.describe());
}

#[test]
fn bad_owner_values_are_usage_errors() {
    let dir = tempdir();
    let long = "o".repeat(129);
    for owner in ["", long.as_str(), "a\u{7}b"] {
        dravo(dir.path(), &["oauth-apps", "list", "--owner", owner]).assert_usage_error();
        dravo(dir.path(), &["token", "issue", "--sub", owner]).assert_usage_error();
    }
    let ok = "o".repeat(128);
    dravo(dir.path(), &["oauth-apps", "list", "--owner", &ok]).assert_success();
}

#[test]
fn bad_secrets_and_scopes_are_usage_errors_that_do_not_echo_the_secret() {
    let dir = tempdir();
    let long_secret = format!("{SECRET}{}", "s".repeat(2049 - SECRET.len()));
    let with_stdin = |stdin: &str, extra: &[&str]| {
        let mut args = create_base("n");
        args.push("--client-secret-stdin".into());
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut cmd = dravo_cmd(dir.path());
        cmd.args(args);
        run_cmd(cmd, stdin)
    };
    with_stdin(&format!("{long_secret}\n"), &[])
        .assert_usage_error()
        .assert_hides(SECRET);
    with_stdin(&format!("{SECRET}\u{1b}[31m\n"), &[])
        .assert_usage_error()
        .assert_hides(SECRET);
    with_stdin(&format!("{SECRET}\n"), &["--scopes", "a\"b"])
        .assert_usage_error()
        .assert_hides(SECRET);
    // An empty variable is as good as no secret.
    let mut args = create_base("n");
    args.extend(["--client-secret-env".into(), "EMPTY_SECRET_VAR".into()]);
    let mut cmd = dravo_cmd(dir.path());
    cmd.args(args).env("EMPTY_SECRET_VAR", "");
    run_cmd(cmd, "").assert_usage_error();
    // A secret of exactly 2048 characters is fine.
    let max_secret = format!("{SECRET}{}", "s".repeat(2048 - SECRET.len()));
    with_stdin(&max_secret, &["--json"])
        .assert_success()
        .assert_hides(SECRET);
}

// ---------------------------------------------------------------- hostile provider text

/// Characters that recolour a terminal, ring it, reorder text or hide: none may reach the
/// terminal raw from a human-readable listing.
const HOSTILE_CHARS: [char; 12] = [
    '\u{1b}', '\u{7}', '\u{9b}', '\u{7f}', '\r', '\t', '\u{202e}', '\u{2066}', '\u{200f}',
    '\u{061c}', '\u{200b}', '\u{feff}',
];

/// Stores a connected account row as it might have been written before provider text was
/// cleaned (the sealed token is a dummy blob: listing never opens it).
fn insert_account(dir: &Path, id: &str, owner: &str, username: &str, display_name: &str) {
    support::Db::open(&dir.join("dravo.db")).execute(
        "INSERT INTO accounts (id, owner, provider, oauth_app_id, provider_account_id, username,
                               display_name, scopes, status, access_token_sealed,
                               refresh_token_sealed, expires_at, refresh_expires_at,
                               created_at, updated_at)
         VALUES (?1, ?2, 'x', NULL, ?1, ?3, ?4, '[\"tweet.read\"]', 'active', ?5, NULL,
                 NULL, NULL, 1704067200, 1704067200)",
        &[
            id.into(),
            owner.into(),
            username.into(),
            display_name.into(),
            vec![0u8].into(),
        ],
    );
}

fn assert_no_hostile_chars(out: &Out) {
    for c in HOSTILE_CHARS {
        assert!(
            !out.stdout.contains(c),
            "{} reached stdout raw: {:?}",
            c.escape_unicode(),
            out.stdout
        );
    }
}

#[test]
fn accounts_list_and_show_escape_hostile_provider_text() {
    let dir = tempdir();
    // Creates the database and the key file.
    dravo(dir.path(), &["accounts", "list", "--owner", "alice"]).assert_success();
    let hostile = "acc_aaaaaaaaaaaaaaaaaaaa";
    let username = "evil\u{1b}[31m\u{7}\u{202e}resu\nacc_forgedforgedforged  x  forged";
    let display_name = "Name\u{2066}\r\n\u{200b}\u{9b}2J\u{7f}\t\u{200f}\u{061c}\u{feff}!";
    insert_account(dir.path(), hostile, "alice", username, display_name);
    insert_account(
        dir.path(),
        "acc_bbbbbbbbbbbbbbbbbbbb",
        "alice",
        "plain",
        "Plain",
    );

    let list = dravo(dir.path(), &["accounts", "list", "--owner", "alice"]);
    list.assert_success();
    assert_no_hostile_chars(&list);
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "a header and one line per account: {lines:#?}"
    );
    assert!(lines[1].starts_with(hostile), "{lines:#?}");
    assert!(
        lines[2].starts_with("acc_bbbbbbbbbbbbbbbbbbbb"),
        "{lines:#?}"
    );
    assert!(
        lines[1].contains(r"evil\u{1b}[31m\u{7}\u{202e}resu\u{a}acc_forged"),
        "{lines:#?}"
    );
    assert!(lines[1].contains(r"\u{9b}2J"), "{lines:#?}");

    let show = dravo(
        dir.path(),
        &["accounts", "show", "--owner", "alice", hostile],
    );
    show.assert_success();
    assert_no_hostile_chars(&show);
    let lines: Vec<&str> = show.stdout.lines().collect();
    assert_eq!(lines.len(), 13, "one line per field: {lines:#?}");
    assert!(lines[4].starts_with("username:"), "{lines:#?}");
    assert!(lines[4].contains(r"\u{1b}"), "{lines:#?}");
    assert!(lines[5].starts_with("display_name:"), "{lines:#?}");
    assert!(lines[5].contains(r"\u{d}\u{a}"), "{lines:#?}");

    // JSON keeps the stored text exactly (escaped as JSON), with no raw control character.
    for args in [
        &["accounts", "list", "--owner", "alice", "--json"][..],
        &["accounts", "show", "--owner", "alice", hostile, "--json"][..],
    ] {
        let out = dravo(dir.path(), args);
        out.assert_success();
        let body = out.stdout.strip_suffix('\n').expect("a trailing newline");
        assert!(
            !body.chars().any(char::is_control),
            "a raw control character in JSON: {body:?}"
        );
        let json = out.json();
        let account = if json["data"].is_array() {
            &json["data"][0]
        } else {
            &json
        };
        assert_eq!(account["username"], username);
        assert_eq!(account["display_name"], display_name);
    }
}

/// A Facebook user account and one of its Pages, as a connect stores them.
fn insert_user_and_page(dir: &Path, user: &str, page: &str, tasks: &str) {
    let db = support::Db::open(&dir.join("dravo.db"));
    for (id, kind, parent, tasks) in [
        (user, "user", None, None),
        (page, "page", Some(user), Some(tasks)),
    ] {
        db.execute(
            "INSERT INTO accounts (id, owner, provider, oauth_app_id, provider_account_id, username,
                                   display_name, scopes, status, access_token_sealed,
                                   refresh_token_sealed, expires_at, refresh_expires_at,
                                   created_at, updated_at, kind, parent_id, tasks)
             VALUES (?1, 'alice', 'facebook', NULL, ?1, NULL, 'Bakery',
                     '[\"pages_show_list\"]', 'active', ?2, NULL, NULL, NULL, 1704067200,
                     1704067200, ?3, ?4, ?5)",
            &[
                id.into(),
                vec![0u8].into(),
                kind.into(),
                parent.map_or(support::Val::Null, support::Val::from),
                tasks.map_or(support::Val::Null, support::Val::from),
            ],
        );
    }
}

/// README tells users to check a Page's `tasks` for `CREATE_CONTENT` before posting:
/// `accounts show` shows them, as `--json` does; a user account has no tasks line.
#[test]
fn accounts_show_lists_a_pages_tasks() {
    let dir = tempdir();
    let (user, page) = ("acc_aaaaaaaaaaaaaaaaaaaa", "acc_bbbbbbbbbbbbbbbbbbbb");
    insert_user_and_page(dir.path(), user, page, r#"["CREATE_CONTENT","MODERATE"]"#);
    let show = dravo(dir.path(), &["accounts", "show", "--owner", "alice", page]);
    show.assert_success();
    let fields = key_values(&show.stdout);
    assert_eq!(
        fields["tasks"], "CREATE_CONTENT MODERATE",
        "{}",
        show.stdout
    );
    assert_eq!(
        show.stdout.lines().last(),
        Some("tasks:               CREATE_CONTENT MODERATE")
    );
    let json = dravo(
        dir.path(),
        &["accounts", "show", "--owner", "alice", page, "--json"],
    );
    json.assert_success();
    assert_eq!(
        json.json()["tasks"],
        serde_json::json!(["CREATE_CONTENT", "MODERATE"])
    );

    let user_show = dravo(dir.path(), &["accounts", "show", "--owner", "alice", user]);
    user_show.assert_success();
    assert!(
        !key_values(&user_show.stdout).contains_key("tasks"),
        "{}",
        user_show.stdout
    );
    assert_eq!(user_show.stdout.lines().count(), 13);
}

// ---------------------------------------------------------------- update / delete --cascade

#[test]
fn update_changes_name_scopes_and_secret_and_prints_the_app() {
    let dir = tempdir();
    let app = create_json(dir.path(), "alice", "x", "Before");
    let id = app["id"].as_str().unwrap();

    let out = dravo(
        dir.path(),
        &[
            "oauth-apps",
            "update",
            "--owner",
            "alice",
            id,
            "--name",
            "After",
            "--scopes",
            "tweet.read, users.read",
            "--json",
        ],
    );
    out.assert_success();
    let updated = out.json();
    assert_app_object(&updated);
    assert_eq!(updated["name"], "After");
    assert_eq!(
        updated["scopes"],
        serde_json::json!(["tweet.read", "users.read"])
    );
    assert_eq!(updated["client_id"], app["client_id"]);
    assert_eq!(updated["created_at"], app["created_at"]);
    assert!(updated["credentials_error"].is_null());

    let rotated = "cli-rotated-s3cret-never-shown";
    let out = dravo_with(
        dir.path(),
        &[("NEW_SECRET", rotated)],
        &[
            "oauth-apps",
            "update",
            "--owner",
            "alice",
            id,
            "--client-secret-env",
            "NEW_SECRET",
        ],
        "",
    );
    out.assert_success()
        .assert_hides(rotated)
        .assert_hides(SECRET);
    let fields = key_values(&out.stdout);
    assert_eq!(fields["name"], "After");
    assert_eq!(fields["credentials_error"], "-");
    assert!(fields.contains_key("updated_at"));
    assert_eq!(stored_secret(dir.path(), "alice", id), rotated);

    let out = dravo_stdin(
        dir.path(),
        &[
            "oauth-apps",
            "update",
            "--owner",
            "alice",
            id,
            "--client-secret-stdin",
        ],
        &format!("{SECRET}\n"),
    );
    out.assert_success().assert_hides(SECRET);
    assert_eq!(stored_secret(dir.path(), "alice", id), SECRET);
}

#[test]
fn update_usage_and_runtime_errors() {
    let dir = tempdir();
    let app = create_json(dir.path(), "alice", "x", "Mine");
    create_json(dir.path(), "alice", "x", "Taken");
    let id = app["id"].as_str().unwrap();
    let update = |extra: &[&str]| {
        let mut args = vec!["oauth-apps", "update", "--owner", "alice", id];
        args.extend_from_slice(extra);
        dravo_with(dir.path(), &[("NEW_SECRET", SECRET)], &args, SECRET)
    };
    // Nothing to change, or the secret from two places.
    update(&[]).assert_usage_error();
    update(&["--json"]).assert_usage_error();
    update(&["--client-secret-stdin", "--client-secret-env", "NEW_SECRET"])
        .assert_usage_error()
        .assert_hides(SECRET);
    // Values are checked as on create, naming the flag.
    let out = update(&["--name", "   "]);
    out.assert_usage_error();
    assert!(out.stderr.contains("--name"), "{}", out.describe());
    let out = update(&["--scopes", ""]);
    out.assert_usage_error();
    assert!(out.stderr.contains("--scopes"), "{}", out.describe());
    let out = update(&["--client-secret-env", "NO_SUCH_VARIABLE"]);
    out.assert_usage_error();
    assert!(
        out.stderr.contains("NO_SUCH_VARIABLE"),
        "{}",
        out.describe()
    );
    // A name clash, another tenant's app, a missing app: runtime errors.
    let out = update(&["--name", "Taken"]);
    out.assert_runtime_error();
    assert!(out.stderr.contains("Taken"), "{}", out.describe());
    dravo(
        dir.path(),
        &[
            "oauth-apps",
            "update",
            "--owner",
            "mallory",
            id,
            "--name",
            "Hers",
        ],
    )
    .assert_runtime_error();
    let unchanged = dravo(
        dir.path(),
        &["oauth-apps", "show", "--owner", "alice", id, "--json"],
    )
    .json();
    assert_eq!(unchanged["name"], "Mine");
}

/// An account row of `owner`'s connected with `app_id` (its sealed tokens are placeholders,
/// so a revoke cannot be attempted and deleting reports why).
fn insert_app_account(dir: &Path, id: &str, owner: &str, app_id: &str) {
    support::Db::open(&dir.join("dravo.db")).execute(
        "INSERT INTO accounts (id, owner, provider, oauth_app_id, provider_account_id,
             scopes, status, access_token_sealed, created_at, updated_at)
         VALUES (?1, ?2, 'x', ?3, ?1, '[]', 'active', ?4, 1, 1)",
        &[id.into(), owner.into(), app_id.into(), vec![0u8].into()],
    );
}

#[test]
fn delete_of_an_app_in_use_needs_cascade() {
    let dir = tempdir();
    let app = create_json(dir.path(), "alice", "x", "Used");
    let id = app["id"].as_str().unwrap();
    let accounts = ["acc_aaaaaaaaaaaaaaaaaaaa", "acc_bbbbbbbbbbbbbbbbbbbb"];
    for account in accounts {
        insert_app_account(dir.path(), account, "alice", id);
    }

    let out = dravo(
        dir.path(),
        &["oauth-apps", "delete", "--owner", "alice", id],
    );
    out.assert_runtime_error();
    assert!(
        out.stderr.contains("2 connected accounts"),
        "{}",
        out.describe()
    );
    assert!(out.stderr.contains("--cascade"), "{}", out.describe());
    dravo(dir.path(), &["oauth-apps", "show", "--owner", "alice", id]).assert_success();

    let out = dravo(
        dir.path(),
        &["oauth-apps", "delete", "--owner", "alice", id, "--cascade"],
    );
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.describe());
    for (line, account) in lines.iter().zip(accounts) {
        assert!(line.starts_with(&format!("deleted {account} ")), "{line}");
    }
    assert_eq!(lines[2], format!("deleted {id}"));
    dravo(dir.path(), &["oauth-apps", "show", "--owner", "alice", id]).assert_runtime_error();
    for account in accounts {
        dravo(
            dir.path(),
            &["accounts", "show", "--owner", "alice", account],
        )
        .assert_runtime_error();
    }
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let dir = tempfile::tempdir().unwrap();
    let out = support::cmd::dravo(dir.path(), &["--version"]);
    assert_eq!(out.code, 0, "{}", out.describe());
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(
        out.stdout.trim(),
        format!("dravo {} (commit {head})", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn completions_and_the_man_page_cover_every_command() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell", "Elvish"] {
        let out = support::cmd::dravo(dir.path(), &["completions", shell]);
        assert_eq!(out.code, 0, "{shell}: {}", out.describe());
        for command in ["oauth-apps", "accounts", "webhooks", "completions"] {
            assert!(out.stdout.contains(command), "{shell} lacks {command}");
        }
    }
    let bad = support::cmd::dravo(dir.path(), &["completions", "tcsh"]);
    assert_eq!(bad.code, 2, "{}", bad.describe());
    assert!(bad.stderr.contains("tcsh"), "{}", bad.stderr);
    let man = support::cmd::dravo(dir.path(), &["man"]);
    assert_eq!(man.code, 0, "{}", man.describe());
    assert!(man.stdout.starts_with(".ie") || man.stdout.starts_with(".TH"));
    assert!(man.stdout.contains(".TH dravo 1"), "{}", &man.stdout[..200]);
    for command in ["serve", "oauth\\-apps", "accounts", "completions"] {
        assert!(man.stdout.contains(command), "the man page lacks {command}");
    }
    assert!(
        support::files_in(dir.path()).is_empty(),
        "neither command needs or creates a database"
    );
}

/// A scope typo is stored, and the CLI says so on stderr when it is made (create and update),
/// with the scope it most likely meant; `--json` carries the same `warnings`.
#[test]
fn create_and_update_print_scope_warnings_on_stderr() {
    let dir = tempdir();
    let out = dravo_stdin(
        dir.path(),
        &[
            "oauth-apps",
            "create",
            "--owner",
            "alice",
            "--provider",
            "x",
            "--name",
            "Typo",
            "--client-id",
            "cid-123",
            "--client-secret-stdin",
            "--scopes",
            "tweet.read,tweet.wirte,users.read",
        ],
        &format!("{SECRET}\n"),
    );
    out.assert_success().assert_hides(SECRET);
    assert!(
        out.stderr.contains(
            "warning: `tweet.wirte` is not among the scopes x documents: did you mean `tweet.write`?"
        ),
        "{}",
        out.describe()
    );
    assert!(out.stdout.contains("tweet.wirte"), "{}", out.describe());
    let app = create_json(dir.path(), "alice", "x", "Clean");
    assert_eq!(app["warnings"], serde_json::json!([]));
    let id = app["id"].as_str().unwrap();
    let out = dravo(
        dir.path(),
        &[
            "oauth-apps",
            "update",
            "--owner",
            "alice",
            id,
            "--scopes",
            "users.raed",
            "--json",
        ],
    );
    out.assert_success();
    assert!(
        out.stderr.contains(
            "warning: `users.raed` is not among the scopes x documents: did you mean `users.read`?"
        ),
        "{}",
        out.describe()
    );
    assert_eq!(
        out.json()["warnings"].as_array().unwrap().len(),
        2,
        "{}",
        out.describe()
    );
}

#[test]
fn user_agent_is_set_on_create_changed_and_reset_on_update_and_checked() {
    const AGENT: &str = "web:com.example.scheduler:1.4 (by /u/example)";
    let dir = tempdir();
    let out = dravo_stdin(
        dir.path(),
        &[
            "oauth-apps",
            "create",
            "--owner",
            "alice",
            "--provider",
            "reddit",
            "--name",
            "Agent",
            "--client-id",
            "cid-123",
            "--client-secret-stdin",
            "--user-agent",
            AGENT,
        ],
        &format!("{SECRET}\n"),
    );
    out.assert_success().assert_hides(SECRET);
    let fields = key_values(&out.stdout);
    assert_eq!(fields["user_agent"], AGENT, "{}", out.stdout);
    let id = fields["id"].clone();

    let update = |args: &[&str]| {
        let mut all = vec!["oauth-apps", "update", "--owner", "alice", id.as_str()];
        all.extend_from_slice(args);
        dravo(dir.path(), &all)
    };
    let out = update(&["--user-agent", "web:other:2.0 (by /u/example)", "--json"]);
    out.assert_success();
    let app = out.json();
    assert_app_object(&app);
    assert_eq!(app["user_agent"], "web:other:2.0 (by /u/example)");
    // A value the API would refuse is a usage error, as a bad --name is.
    let out = update(&["--user-agent", "caf\u{e9}"]);
    assert_eq!(out.code, 2, "{}", out.describe());
    assert!(
        out.stderr.contains("--user-agent must be printable ASCII"),
        "{}",
        out.describe()
    );
    let out = update(&["--default-user-agent", "--json"]);
    out.assert_success();
    assert_eq!(out.json()["user_agent"], Value::Null);
    // Both at once is a usage error.
    let out = update(&["--default-user-agent", "--user-agent", AGENT]);
    assert_eq!(out.code, 2, "{}", out.describe());
}
