//! The tests do not depend on the machine they run on: not on what listens on Dravo's default
//! port (`.ci/run` runs the whole suite beside a real `dravo serve` on 127.0.0.1:8080), and not
//! on the `DRAVO_*` variables of the shell that runs them. Here some of the tests that run the
//! `dravo` binary run again, in a child of this test binary whose environment holds what a
//! user's shell might: a config file and a key file that do not exist, a setting Dravo does not
//! have (which makes every command refuse to start), a bind, README's `DRAVO_TOKEN`, a log
//! filter. They pass only if none of it reaches the processes they start.

use std::process::Command;

/// The tests run again: doctor's (the default configuration but for the port), the CLI's
/// first run, and the server process's start and stop.
const SUBJECTS: &[&str] = &["doctor::", "first_run::", "server_process::"];

#[test]
fn a_users_dravo_variables_do_not_reach_the_processes_tests_start() {
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(exe)
        .args(SUBJECTS)
        .args(["--test-threads=2"])
        .env("DRAVO_CONFIG", "/nonexistent/dravo.toml")
        .env("DRAVO_SERVER_PORT", "1")
        .env("DRAVO_SERVER_BIND", "127.0.0.1:1")
        .env("DRAVO_DATABASE_PATH", "/nonexistent/dravo.db")
        .env("DRAVO_SECURITY_MASTER_KEY_FILE", "/nonexistent/dravo.key")
        .env("DRAVO_TOKEN", "not-a-token")
        .env("RUST_LOG", "trace")
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "with a user's DRAVO_* variables set, tests failed:\n{stdout}\n{stderr}"
    );
    // The filters matched the tests meant (a renamed module must not make this vacuous).
    let passed: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("test result: ok. "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no test result line:\n{stdout}"));
    for subject in SUBJECTS {
        assert!(
            stdout.contains(&format!("test {subject}")),
            "no test of {subject} ran:\n{stdout}"
        );
    }
    assert!(passed >= 20, "only {passed} tests ran:\n{stdout}");
}
