//! Black-box tests of the real `dravo serve` process (contract §1–§4): start-up with zero
//! configuration on port 0, agreement with `dravo token issue`, CLI writes while serving,
//! graceful shutdown on SIGTERM/SIGINT, the request log, no secrets in logs, RUST_LOG.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use serde_json::{Value, json};
use support::cmd::dravo_init as init;
use support::dravo_cmd;
use support::process::{LogBuf, SAFETY_TIMEOUT, Server, http, runtime, spawn_reader, tempdir};

/// `dravo token issue --sub SUB` in `dir` with extra environment.
fn issue_token(dir: &Path, sub: &str, env: &[(&str, &str)]) -> String {
    init(dir, env);
    let mut cmd = dravo_cmd(dir);
    cmd.args(["token", "issue", "--sub", sub]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run dravo token issue");
    assert!(
        out.status.success(),
        "token issue failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
}

/// `dravo ARGS` in `dir`; returns (exit code, stdout, stderr).
fn dravo(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = dravo_cmd(dir);
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run dravo");
    (
        out.status.code().expect("exited normally"),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn app_body(name: &str, secret: &str) -> Value {
    json!({"provider": "x", "name": name, "client_id": "cid", "client_secret": secret})
}

// ---------------------------------------------------------------- start-up

#[test]
fn starts_with_zero_configuration_and_answers_healthz() {
    let dir = tempdir();
    let mut cmd = dravo_cmd(dir.path());
    // Nothing but the port: default database path in the working directory.
    cmd.env_remove("DRAVO_DATABASE_PATH")
        .env_remove("DRAVO_DATABASE_URL");
    let mut server = Server::start(cmd);
    let rt = runtime();
    let (status, body) = rt.block_on(async {
        let resp = http().get(server.url("/healthz")).send().await.unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
    });
    assert_eq!(status, 200);
    assert_eq!(body, json!({"status": "ok"}));
    assert!(
        dir.path().join("dravo.db").exists(),
        "database created in the cwd"
    );
    let key_file = dir.path().join("dravo.key");
    assert!(key_file.exists(), "key file created beside the database");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "key file mode");
    }
    let logs = server.stop();
    assert!(
        !logs.contains('\u{1b}'),
        "no colours without a TTY; logs:\n{logs}"
    );
}

/// The database and its `-wal` / `-shm` files are private to their owner even when the
/// process umask would make new files readable by everyone.
#[cfg(unix)]
#[test]
fn the_database_and_its_wal_and_shm_files_are_0600_under_umask_022() {
    if support::sqlite_only("checks the modes of SQLite's files") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    // `dravo_cmd`'s program and environment, run through `sh` (which then execs dravo, so the
    // pid is the server's) to set the umask.
    let plain = dravo_cmd(dir.path());
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(plain.get_program())
        .current_dir(dir.path());
    for (key, value) in plain.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let mut server = Server::start(cmd);
    let db = dir.path().join("dravo.db");
    for path in [
        db.clone(),
        dir.path().join("dravo.db-wal"),
        dir.path().join("dravo.db-shm"),
    ] {
        let meta = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{} while serving: {e}", path.display()));
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o600,
            "mode of {}",
            path.display()
        );
    }
    server.stop();
}

#[test]
fn serves_the_openapi_spec_the_cli_prints() {
    let dir = tempdir();
    let mut server = Server::start(dravo_cmd(dir.path()));
    let served: Value = runtime().block_on(async {
        let resp = http()
            .get(server.url("/openapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.json().await.unwrap()
    });
    let (code, printed, _) = dravo(dir.path(), &["openapi"], &[]);
    assert_eq!(code, 0);
    let printed: Value = serde_json::from_str(&printed).unwrap();
    // The served one names the running server (in `servers` and the example URLs); the
    // printed one, like openapi/dravo.json, names none.
    let base = server.url("");
    assert_eq!(served["servers"][0]["url"], base.as_str());
    let mut unnamed = served.clone();
    unnamed["servers"] = serde_json::json!([]);
    let unnamed = unnamed
        .to_string()
        .replace(&base, &dravo::wire::views::example_public_url());
    assert_eq!(serde_json::from_str::<Value>(&unnamed).unwrap(), printed);
    server.stop();
}

#[test]
fn a_token_from_token_issue_is_accepted_by_the_running_server() {
    let dir = tempdir();
    // Issued before the server ever ran (this creates the key file)...
    let before = issue_token(dir.path(), "alice", &[]);
    let mut server = Server::start(dravo_cmd(dir.path()));
    // ...and while it runs.
    let during = issue_token(dir.path(), "alice", &[]);
    // A token signed with another installation's key.
    let foreign = issue_token(tempdir().path(), "alice", &[]);

    let rt = runtime();
    let app = rt.block_on(async {
        let client = http();
        for token in [&before, &during] {
            let resp = client
                .get(server.url("/v1/oauth-apps"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            assert_eq!(resp.json::<Value>().await.unwrap(), json!([]));
        }
        let resp = client
            .get(server.url("/v1/oauth-apps"))
            .bearer_auth(&foreign)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401, "a foreign token is refused");

        let resp = client
            .post(server.url("/v1/oauth-apps"))
            .bearer_auth(&before)
            .json(&app_body("via http", "proc-secret-1"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        resp.json::<Value>().await.unwrap()
    });
    // The server's default public URL carries the port it really bound.
    assert_eq!(
        app["redirect_uri"],
        format!("http://{}/v1/oauth/x/callback", server.addr)
    );
    // The CLI sees what the server wrote.
    let (code, out, err) = dravo(
        dir.path(),
        &[
            "oauth-apps",
            "show",
            "--owner",
            "alice",
            app["id"].as_str().unwrap(),
            "--json",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["id"], app["id"]);
    assert_eq!(shown["name"], "via http");
    server.stop();
}

// ---------------------------------------------------------------- CLI and server together

#[test]
fn cli_writes_while_the_server_writes_the_same_database() {
    const EACH: usize = 20;
    let dir = tempdir();
    let token = issue_token(dir.path(), "alice", &[]);
    let mut server = Server::start(dravo_cmd(dir.path()));

    // Start all CLI processes first, so they run while the HTTP requests are made.
    let cli_dir = dir.path().to_path_buf();
    let cli = std::thread::spawn(move || {
        let children: Vec<Child> = (0..EACH)
            .map(|i| {
                let mut cmd = dravo_cmd(&cli_dir);
                cmd.args([
                    "oauth-apps",
                    "create",
                    "--owner",
                    "alice",
                    "--provider",
                    "x",
                    "--name",
                    &format!("cli-{i}"),
                    "--client-id",
                    "cid",
                    "--client-secret-stdin",
                    "--json",
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
                let mut child = cmd.spawn().expect("spawn dravo oauth-apps create");
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(b"concurrent-secret\n")
                    .unwrap();
                child
            })
            .collect();
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    });

    let rt = runtime();
    let statuses: Vec<(u16, String)> = rt.block_on(async {
        let client = http();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..EACH {
            let client = client.clone();
            let url = server.url("/v1/oauth-apps");
            let token = token.clone();
            tasks.spawn(async move {
                let resp = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&app_body(&format!("http-{i}"), "concurrent-secret"))
                    .send()
                    .await
                    .unwrap();
                (resp.status().as_u16(), resp.text().await.unwrap())
            });
        }
        tasks.join_all().await
    });
    let outputs = cli.join().unwrap();

    for (status, body) in &statuses {
        assert_eq!(*status, 201, "HTTP create failed: {body}");
    }
    for out in &outputs {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "CLI create failed ({}): {stderr}",
            out.status
        );
        assert!(!stderr.contains("locked"), "{stderr}");
        let app: Value = serde_json::from_slice(&out.stdout).expect("CLI printed JSON");
        assert!(app["id"].as_str().unwrap().starts_with("oa_"));
    }

    let listed: Value = rt.block_on(async {
        let resp = http()
            .get(server.url("/v1/oauth-apps"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.json().await.unwrap()
    });
    let mut names: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = (0..EACH)
        .flat_map(|i| [format!("cli-{i}"), format!("http-{i}")])
        .collect();
    expected.sort();
    assert_eq!(names, expected, "all {} apps are listed", 2 * EACH);
    let logs = server.stop();
    assert!(!logs.contains("locked"), "logs:\n{logs}");
}

// ---------------------------------------------------------------- graceful shutdown

/// Reads from `stream` until `buf` contains `needle`.
fn read_until_contains(stream: &mut TcpStream, buf: &mut Vec<u8>, needle: &str) {
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(buf).contains(needle) {
        let n = stream
            .read(&mut chunk)
            .unwrap_or_else(|e| panic!("reading the response: {e}"));
        assert!(
            n > 0,
            "connection closed before {needle:?}; got {:?}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn graceful_shutdown_finishes_an_in_flight_request(sig: &str) {
    let dir = tempdir();
    let token = issue_token(dir.path(), "alice", &[]);
    let mut server = Server::start(dravo_cmd(dir.path()));
    // A first request, answered, before the one under test. Until the signal-handler bug
    // (see `a_signal_right_after_the_listening_line_is_still_graceful`) is fixed, this makes
    // it very likely that the handlers are installed before the signal is sent.
    let healthz = runtime().block_on(async {
        http()
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(healthz, 200);

    let body = app_body("slow upload", "slow-secret").to_string();
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(SAFETY_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(SAFETY_TIMEOUT)).unwrap();
    // `Expect: 100-continue` makes the server say when it has parsed the head and started
    // reading the body: from then on the request is certainly in flight.
    let head = format!(
        "POST /v1/oauth-apps HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\
         Connection: close\r\n\r\n",
        server.addr,
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(first).unwrap();
    stream.flush().unwrap();
    let mut response = Vec::new();
    read_until_contains(&mut stream, &mut response, "100 Continue\r\n\r\n");

    server.signal(sig);
    server
        .logs
        .wait_for("the shutdown to begin", |t| t.contains("shutting down"));

    stream.write_all(rest).unwrap();
    stream.flush().unwrap();
    let mut tail = Vec::new();
    stream
        .read_to_end(&mut tail)
        .expect("the in-flight request gets its response");
    response.extend_from_slice(&tail);
    let text = String::from_utf8_lossy(&response).into_owned();
    let final_part = &text[text.find("100 Continue\r\n\r\n").unwrap() + 16..];
    assert!(
        final_part.starts_with("HTTP/1.1 201"),
        "the in-flight request completes with 201 after {sig}; got:\n{text}\nlogs:\n{}",
        server.logs.snapshot()
    );
    let json_start = final_part.find("\r\n\r\n").unwrap() + 4;
    let app: Value = serde_json::from_str(&final_part[json_start..]).expect("JSON body");
    assert_eq!(app["name"], "slow upload");

    let status = server.wait_exit();
    let logs = server.logs.snapshot();
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after {sig}; logs:\n{logs}"
    );
    assert!(logs.contains("stopped"), "logs:\n{logs}");

    // The app really was stored.
    let (code, out, err) = dravo(
        dir.path(),
        &["oauth-apps", "list", "--owner", "alice", "--json"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[test]
fn sigterm_lets_an_in_flight_request_finish_then_exits_0() {
    graceful_shutdown_finishes_an_in_flight_request("TERM");
}

#[test]
fn sigint_lets_an_in_flight_request_finish_then_exits_0() {
    graceful_shutdown_finishes_an_in_flight_request("INT");
}

#[test]
fn a_signal_right_after_the_listening_line_is_still_graceful() {
    // Once `listening on` is logged the server is up: SIGTERM must shut it down cleanly.
    for round in 0..5 {
        let dir = tempdir();
        let mut server = Server::start(dravo_cmd(dir.path()));
        server.signal("TERM");
        let status = server.wait_exit();
        let logs = server.logs.snapshot();
        assert_eq!(
            status.code(),
            Some(0),
            "round {round}: {status} (killed by the signal instead of a graceful stop); logs:\n{logs}"
        );
        assert!(logs.contains("stopped"), "round {round}; logs:\n{logs}");
    }
}

#[test]
fn sigint_stops_an_idle_server_with_exit_0() {
    let dir = tempdir();
    let mut server = Server::start(dravo_cmd(dir.path()));
    let status = runtime().block_on(async {
        http()
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 200);
    server.signal("INT");
    let status = server.wait_exit();
    let logs = server.logs.snapshot();
    assert_eq!(status.code(), Some(0), "logs:\n{logs}");
    assert!(logs.contains("stopped"), "logs:\n{logs}");
}

#[test]
fn a_second_server_on_the_same_database_can_start_after_the_first_stopped() {
    let dir = tempdir();
    let token = issue_token(dir.path(), "alice", &[]);
    let mut first = Server::start(dravo_cmd(dir.path()));
    let url = first.url("/v1/oauth-apps");
    let rt = runtime();
    rt.block_on(async {
        let resp = http()
            .post(url)
            .bearer_auth(&token)
            .json(&app_body("persisted", "persist-secret"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
    });
    first.stop();
    let mut second = Server::start(dravo_cmd(dir.path()));
    let list: Value = rt.block_on(async {
        http()
            .get(second.url("/v1/oauth-apps"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "persisted");
    second.stop();
}

// ---------------------------------------------------------------- logs

/// The log lines that are request lines.
fn request_lines(logs: &str) -> Vec<&str> {
    logs.lines().filter(|l| l.contains("latency_ms=")).collect()
}

#[test]
fn request_log_lines_carry_method_path_status_and_latency() {
    let dir = tempdir();
    let mut server = Server::start(dravo_cmd(dir.path()));
    runtime().block_on(async {
        let client = http();
        let get = |p: &str| client.get(server.url(p)).send();
        assert_eq!(get("/healthz").await.unwrap().status().as_u16(), 200);
        assert_eq!(get("/no/such/route").await.unwrap().status().as_u16(), 404);
        assert_eq!(
            get("/healthz?code=QUERY-MARK-7731&state=xyz")
                .await
                .unwrap()
                .status()
                .as_u16(),
            200
        );
        let resp = client.delete(server.url("/healthz")).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 405);
    });
    let logs = server.stop();
    let lines = request_lines(&logs);
    let find = |method: &str, path: &str, status: u16| {
        lines.iter().any(|l| {
            l.contains(&format!("method={method}"))
                && l.contains(&format!("path={path} "))
                && l.contains(&format!("status={status}"))
        })
    };
    assert!(find("GET", "/healthz", 200), "logs:\n{logs}");
    assert!(find("GET", "/no/such/route", 404), "logs:\n{logs}");
    assert!(find("DELETE", "/healthz", 405), "logs:\n{logs}");
    assert_eq!(lines.len(), 4, "one line per request; logs:\n{logs}");
    for line in &lines {
        assert!(line.contains(" client_ip=127.0.0.1 "), "{line}");
    }
    for line in &lines {
        let latency = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("latency_ms="))
            .unwrap_or_else(|| panic!("no latency in {line}"));
        let ms: f64 = latency
            .parse()
            .unwrap_or_else(|_| panic!("latency_ms is a number: {line}"));
        assert!(ms >= 0.0, "{line}");
        let decimals = latency.split_once('.').map_or(0, |(_, d)| d.len());
        assert_eq!(decimals, 3, "latency_ms has a fixed precision: {line}");
    }
    assert!(
        !logs.contains("QUERY-MARK-7731") && !logs.contains("state=xyz"),
        "the query string is never logged; logs:\n{logs}"
    );
}

#[test]
fn limits_and_trusted_proxies_from_the_environment_apply_and_the_log_names_the_client() {
    // 127.0.0.1 is the trusted proxy: the client it names in X-Forwarded-For is the one
    // limited (1 callback per second, a burst of 5) and the one logged.
    let dir = tempdir();
    let mut cmd = dravo_cmd(dir.path());
    cmd.env("DRAVO_SERVER_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")
        .env("DRAVO_LIMITS_CALLBACK_PER_SECOND", "1");
    let mut server = Server::start(cmd);
    let statuses: Vec<u16> = runtime().block_on(async {
        let client = http();
        let mut statuses = Vec::new();
        for _ in 0..20 {
            let resp = client
                .get(server.url("/v1/oauth/x/callback?state=none"))
                .header("x-forwarded-for", "198.51.100.1, 203.0.113.9")
                .send()
                .await
                .unwrap();
            statuses.push(resp.status().as_u16());
            if resp.status() == 429 {
                assert!(resp.headers().contains_key("retry-after"));
                break;
            }
        }
        statuses
    });
    let logs = server.stop();
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(statuses.len() > 5, "the burst of 5 passed: {statuses:?}");
    let lines = request_lines(&logs);
    assert_eq!(lines.len(), statuses.len(), "logs:\n{logs}");
    for line in &lines {
        assert!(line.contains(" client_ip=203.0.113.9 "), "{line}");
    }
    assert!(
        lines.last().unwrap().contains("status=429"),
        "logs:\n{logs}"
    );
}

#[test]
fn no_secret_appears_in_the_logs_even_at_debug_level() {
    const CLIENT_SECRET: &str = "CLIENT-s3cret-Vq7Lm2Zx9-distinct";
    const BAD_TOKEN: &str = "not.a-valid.TOKEN-Wp4Kd8-distinct";
    const JWT_SECRET: &str = "JWT-secret-Yh3Rt6-at-least-32-bytes-long-distinct";
    const PROVIDER_SECRET: &str = "PROVIDER-secret-Nb5Gc1-distinct";
    // A master key whose base64 is easy to spot (and a slice of it, to catch partial leaks).
    let master_key = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([0x5Au8; 64])
    };
    let env: Vec<(&str, &str)> = vec![
        ("DRAVO_AUTH_JWT_SECRET", JWT_SECRET),
        ("DRAVO_SECURITY_MASTER_KEY", master_key.as_str()),
        ("DRAVO_PROVIDERS_X_CLIENT_ID", "platform-client-id"),
        ("DRAVO_PROVIDERS_X_CLIENT_SECRET", PROVIDER_SECRET),
    ];
    let dir = tempdir();
    let token = issue_token(dir.path(), "alice", &env);
    let mut cmd = dravo_cmd(dir.path());
    cmd.env("RUST_LOG", "debug");
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let mut server = Server::start(cmd);

    let responses: Vec<(u16, String)> = runtime().block_on(async {
        let client = http();
        let url = server.url("/v1/oauth-apps");
        let mut out = Vec::new();
        let post_json =
            |token: &str, body: Value| client.post(&url).bearer_auth(token).json(&body).send();
        let post_raw = |token: &str, body: String| {
            client
                .post(&url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body)
                .send()
        };
        let push = |r: reqwest::Response| async move {
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        };
        // Created, then a duplicate (409).
        out.push(
            push(
                post_json(&token, app_body("app", CLIENT_SECRET))
                    .await
                    .unwrap(),
            )
            .await,
        );
        out.push(
            push(
                post_json(&token, app_body("app", CLIENT_SECRET))
                    .await
                    .unwrap(),
            )
            .await,
        );
        // A bad bearer token, with the secret in the body.
        out.push(
            push(
                post_json(BAD_TOKEN, app_body("app2", CLIENT_SECRET))
                    .await
                    .unwrap(),
            )
            .await,
        );
        // Malformed JSON containing the secret.
        out.push(
            push(
                post_raw(
                    &token,
                    format!(r#"{{"provider":"x","client_secret":"{CLIENT_SECRET}","#),
                )
                .await
                .unwrap(),
            )
            .await,
        );
        // Well-formed JSON with an unknown field, a wrong type, a control character, a
        // too-long name: each next to the secret.
        let mut unknown = app_body("app3", CLIENT_SECRET);
        unknown["extra"] = json!(CLIENT_SECRET);
        out.push(push(post_json(&token, unknown).await.unwrap()).await);
        let mut wrong_type = app_body("app4", CLIENT_SECRET);
        wrong_type["name"] = json!(5);
        out.push(push(post_json(&token, wrong_type).await.unwrap()).await);
        out.push(
            push(
                post_json(&token, app_body("app5", &format!("{CLIENT_SECRET}\u{7}")))
                    .await
                    .unwrap(),
            )
            .await,
        );
        out.push(
            push(
                post_json(&token, app_body(&"n".repeat(121), CLIENT_SECRET))
                    .await
                    .unwrap(),
            )
            .await,
        );
        // The secret where it does not belong: in the query string and a header.
        let r = client
            .get(format!("{url}?client_secret={CLIENT_SECRET}"))
            .bearer_auth(&token)
            .header("x-debug", CLIENT_SECRET)
            .send()
            .await
            .unwrap();
        out.push(push(r).await);
        // Reads of the stored app.
        let r = client.get(&url).bearer_auth(&token).send().await.unwrap();
        out.push(push(r).await);
        out
    });
    let mut statuses: Vec<u16> = responses.iter().map(|(s, _)| *s).collect();
    // The duplicate must be refused; its exact status (409) is checked in tests/api/oauth_apps.rs.
    assert!(
        (400..500).contains(&statuses[1]),
        "duplicate refused: {responses:#?}"
    );
    statuses[1] = 409;
    assert_eq!(
        statuses,
        vec![201, 409, 401, 400, 400, 400, 400, 400, 200, 200],
        "responses: {responses:#?}"
    );
    for (status, body) in &responses {
        assert!(
            !body.contains(CLIENT_SECRET),
            "a {status} response body holds the client secret: {body}"
        );
    }

    let logs = server.stop();
    assert!(
        !request_lines(&logs).is_empty(),
        "debug logging was on; logs:\n{logs}"
    );
    let fragment = &master_key[..24];
    for (what, secret) in [
        ("client secret", CLIENT_SECRET),
        ("bearer token", token.as_str()),
        ("token signature", token.rsplit('.').next().unwrap()),
        ("bad bearer token", BAD_TOKEN),
        ("auth.jwt_secret", JWT_SECRET),
        ("security.master_key", fragment),
        ("providers.x.client_secret", PROVIDER_SECRET),
    ] {
        assert!(
            !logs.contains(secret),
            "the {what} appears in the server's output:\n{logs}"
        );
    }
}

#[test]
fn the_cli_logs_no_secret_even_at_trace_level() {
    const CLIENT_SECRET: &str = "CLI-trace-s3cret-Jx2Qp5-distinct";
    let dir = tempdir();
    init(dir.path(), &[]);
    let mut cmd = dravo_cmd(dir.path());
    cmd.env("RUST_LOG", "trace")
        .args([
            "oauth-apps",
            "create",
            "--owner",
            "alice",
            "--provider",
            "x",
            "--name",
            "traced",
            "--client-id",
            "cid",
            "--client-secret-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{CLIENT_SECRET}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("oauth app created") || !stderr.is_empty(),
        "trace logging was on: {stderr}"
    );
    assert!(
        !stderr.contains(CLIENT_SECRET) && !stdout.contains(CLIENT_SECRET),
        "secret in the CLI output:\n{stdout}\n{stderr}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn rust_log_warn_silences_request_lines() {
    let dir = tempdir();
    let mut cmd = dravo_cmd(dir.path());
    cmd.env("RUST_LOG", "warn");
    let mut server = Server::start_quiet(cmd);
    let status = runtime().block_on(async {
        http()
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 200);
    server.signal("TERM");
    let exit = server.wait_exit();
    let logs = server.logs.snapshot();
    assert_eq!(exit.code(), Some(0), "logs:\n{logs}");
    assert!(
        request_lines(&logs).is_empty(),
        "RUST_LOG=warn shows no request lines; logs:\n{logs}"
    );
    assert!(
        !logs.contains("INFO"),
        "RUST_LOG=warn shows no info lines; logs:\n{logs}"
    );
}

#[test]
fn rust_log_can_silence_just_the_request_log() {
    let dir = tempdir();
    let mut cmd = dravo_cmd(dir.path());
    cmd.env("RUST_LOG", "info,dravo::http=off");
    let mut server = Server::start(cmd);
    let status = runtime().block_on(async {
        http()
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 200);
    let logs = server.stop();
    assert!(request_lines(&logs).is_empty(), "logs:\n{logs}");
}

#[test]
fn an_address_in_use_stops_serve_with_one_line_naming_server_bind() {
    // The test holds the port, so `serve` cannot have it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempdir();
    let mut cmd = dravo_cmd(dir.path());
    cmd.env("DRAVO_SERVER_BIND", &addr);
    let (child, logs, readers) = {
        // `Server::spawn` would override the bind with port 0; spawn by hand instead.
        cmd.arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let logs = Arc::new(LogBuf::default());
        let readers = vec![
            spawn_reader(child.stderr.take().unwrap(), logs.clone()),
            spawn_reader(child.stdout.take().unwrap(), logs.clone()),
        ];
        (child, logs, readers)
    };
    let mut server = Server {
        child,
        addr: taken.local_addr().unwrap(),
        logs,
        readers,
        exit: None,
    };
    let status = server.wait_exit();
    let logs = server.logs.snapshot();
    assert_eq!(status.code(), Some(1), "logs:\n{logs}");
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.len(), 1, "one line:\n{logs}");
    assert!(lines[0].starts_with("error:"), "{logs}");
    assert!(lines[0].contains("server.bind"), "{logs}");
    assert!(lines[0].contains(&addr), "{logs}");
    drop(taken);
}
