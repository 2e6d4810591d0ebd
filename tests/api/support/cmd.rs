//! Running the real `dravo` binary: one harness for every test that checks exit codes,
//! stdout and stderr.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::dravo_cmd;

/// A safety net only: no test expects a command to take anywhere near this long.
const SAFETY_TIMEOUT: Duration = Duration::from_secs(60);

/// What a finished `dravo` process left behind.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn describe(&self) -> String {
        format!(
            "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code\n{}", self.describe());
        self
    }

    pub fn assert_success(&self) -> &Self {
        self.assert_code(0)
    }

    /// Asserts that neither stream contains `secret`.
    pub fn assert_hides(&self, secret: &str) -> &Self {
        assert!(
            !self.stdout.contains(secret) && !self.stderr.contains(secret),
            "the secret leaked into the output\n{}",
            self.describe()
        );
        self
    }

    /// A runtime error: exit 1, nothing on stdout, exactly one line on stderr starting "error:".
    pub fn assert_runtime_error(&self) -> &Self {
        self.assert_code(1);
        assert_eq!(self.stdout, "", "stdout must be empty\n{}", self.describe());
        assert_one_error_line(&self.stderr);
        self
    }

    /// A usage error: exit 2, nothing on stdout, a message on stderr starting "error:".
    pub fn assert_usage_error(&self) -> &Self {
        self.assert_code(2);
        assert_eq!(self.stdout, "", "stdout must be empty\n{}", self.describe());
        assert!(
            self.stderr.starts_with("error:"),
            "stderr must start with `error:`\n{}",
            self.describe()
        );
        self
    }

    /// A configuration error: a runtime error whose one line contains every string in
    /// `mentions`.
    pub fn assert_config_error(&self, mentions: &[&str]) -> &Self {
        self.assert_runtime_error();
        for m in mentions {
            assert!(
                self.stderr.contains(m),
                "the error must mention `{m}`\n{}",
                self.describe()
            );
        }
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{}", self.describe()))
    }
}

/// Exactly one non-empty line on stderr, starting `error:`.
pub fn assert_one_error_line(stderr: &str) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one line on stderr: {stderr:?}"
    );
    assert!(
        lines[0].starts_with("error:"),
        "stderr must start with `error:`: {stderr:?}"
    );
    assert!(
        lines[0].len() > "error: ".len(),
        "the error line says nothing: {stderr:?}"
    );
}

/// Runs `cmd` with `stdin` fed in (and closed) and collects its output, killing it if it
/// outlives the safety timeout (a `serve` that wrongly accepted a bad configuration would
/// otherwise run forever).
pub fn run_cmd(mut cmd: Command, stdin: &str) -> Out {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn dravo");
    {
        let mut input = child.stdin.take().expect("stdin");
        // The process may exit without reading (usage errors): a broken pipe is fine.
        let _ = input.write_all(stdin.as_bytes());
    }
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut s);
        String::from_utf8(s).expect("stdout is UTF-8")
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut s);
        String::from_utf8(s).expect("stderr is UTF-8")
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > SAFETY_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "dravo {:?} did not exit; stderr so far:\n{}",
                cmd.get_args().collect::<Vec<_>>(),
                err_reader.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Out {
        code: status.code().expect("exited normally, not by a signal"),
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// `dravo ARGS` in `dir`, with extra environment variables and `stdin`.
pub fn dravo_with(dir: &Path, env: &[(&str, &str)], args: &[&str], stdin: &str) -> Out {
    let mut cmd = dravo_cmd(dir);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_cmd(cmd, stdin)
}

/// `dravo ARGS` in `dir` with an empty stdin.
pub fn dravo(dir: &Path, args: &[&str]) -> Out {
    dravo_with(dir, &[], args, "")
}

/// `dravo init` in `dir` with `env`: the database and key file every command but `serve` and
/// `init` needs (nothing changes when they exist).
pub fn dravo_init(dir: &Path, env: &[(&str, &str)]) {
    dravo_with(dir, env, &["init"], "").assert_success();
}
