//! A real `dravo serve` process for black-box tests: started on port 0, its logs collected,
//! stopped by signal, killed when dropped.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Safety nets only: nothing here is expected to take anywhere near this long.
pub const SAFETY_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------- the server process

/// Everything the server wrote to stderr and stdout, in arrival order per stream.
#[derive(Default)]
pub struct LogBuf {
    text: Mutex<String>,
    changed: Condvar,
    /// How many of the two streams (stderr, stdout) have reached end of file.
    closed: Mutex<u8>,
}

impl LogBuf {
    pub fn append(&self, line: &str) {
        self.text.lock().unwrap().push_str(line);
        self.changed.notify_all();
    }

    pub fn close_one(&self) {
        *self.closed.lock().unwrap() += 1;
        // Take the text lock so a waiter cannot miss the notification.
        let _text = self.text.lock().unwrap();
        self.changed.notify_all();
    }

    pub fn all_closed(&self) -> bool {
        *self.closed.lock().unwrap() >= 2
    }

    /// Waits until the logs satisfy `pred`; panics (with the logs) after the safety timeout.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SAFETY_TIMEOUT;
        let mut text = self.text.lock().unwrap();
        loop {
            if pred(&text) {
                return text.clone();
            }
            assert!(
                !self.all_closed(),
                "the process closed its output (exited) before {what}; logs:\n{text}"
            );
            let now = Instant::now();
            assert!(
                now < deadline,
                "timed out waiting for {what}; logs:\n{text}"
            );
            text = self.changed.wait_timeout(text, deadline - now).unwrap().0;
        }
    }

    pub fn snapshot(&self) -> String {
        self.text.lock().unwrap().clone()
    }
}

/// A running `dravo serve`; dropping it kills the process so a failed assertion never
/// leaves one behind.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub logs: Arc<LogBuf>,
    pub readers: Vec<JoinHandle<()>>,
    pub exit: Option<ExitStatus>,
}

pub fn spawn_reader(stream: impl Read + Send + 'static, logs: Arc<LogBuf>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => logs.append(&String::from_utf8_lossy(&buf)),
            }
        }
        logs.close_one();
    })
}

/// Extracts `127.0.0.1:PORT` from the "listening on http://…" log line.
pub fn listening_addr(logs: &str) -> Option<SocketAddr> {
    let rest = &logs[logs.find("listening on http://")? + "listening on http://".len()..];
    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

impl Server {
    /// Spawns `cmd` (a `dravo_cmd` with `serve` and any extra environment) on port 0.
    pub fn spawn(cmd: Command) -> (Child, Arc<LogBuf>, Vec<JoinHandle<()>>) {
        Self::spawn_bound(cmd, "127.0.0.1:0")
    }

    /// Spawns `cmd serve` listening on `bind`.
    pub fn spawn_bound(mut cmd: Command, bind: &str) -> (Child, Arc<LogBuf>, Vec<JoinHandle<()>>) {
        cmd.arg("serve")
            .env("DRAVO_SERVER_BIND", bind)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn dravo serve");
        let logs = Arc::new(LogBuf::default());
        let readers = vec![
            spawn_reader(child.stderr.take().unwrap(), logs.clone()),
            spawn_reader(child.stdout.take().unwrap(), logs.clone()),
        ];
        (child, logs, readers)
    }

    /// Starts `dravo serve` and waits for its "listening on" line.
    pub fn start(cmd: Command) -> Server {
        Self::start_bound(cmd, "127.0.0.1:0")
    }

    /// Starts `dravo serve` on `bind` (port 0: the kernel's choice) and waits for its
    /// "listening on" line; `addr` is the address it logged.
    pub fn start_bound(cmd: Command, bind: &str) -> Server {
        let (child, logs, readers) = Self::spawn_bound(cmd, bind);
        let mut server = Server {
            child,
            addr: "127.0.0.1:1".parse().unwrap(),
            logs,
            readers,
            exit: None,
        };
        let text = server.logs.wait_for("the `listening on` line", |t| {
            listening_addr(t).is_some() || t.contains("error:")
        });
        server.addr = listening_addr(&text)
            .unwrap_or_else(|| panic!("the server did not start; logs:\n{text}"));
        assert_ne!(server.addr.port(), 0, "the chosen port is logged");
        server
    }

    /// Starts `dravo serve` when its log filter hides the "listening on" line: the port is
    /// found from the process's listening socket in /proc.
    #[cfg(target_os = "linux")]
    pub fn start_quiet(cmd: Command) -> Server {
        let (child, logs, readers) = Self::spawn(cmd);
        let pid = child.id();
        let mut server = Server {
            child,
            addr: "127.0.0.1:1".parse().unwrap(),
            logs,
            readers,
            exit: None,
        };
        let deadline = Instant::now() + SAFETY_TIMEOUT;
        loop {
            if let Some(port) = proc_listening_port(pid) {
                server.addr = SocketAddr::from(([127, 0, 0, 1], port));
                return server;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!(
                    "the server exited with {status}; logs:\n{}",
                    server.logs.snapshot()
                );
            }
            assert!(Instant::now() < deadline, "the server never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a signal with `kill -SIG pid`.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Waits for the process to exit (safety timeout) and for its output to be read.
    pub fn wait_exit(&mut self) -> ExitStatus {
        if let Some(status) = self.exit {
            return status;
        }
        let deadline = Instant::now() + SAFETY_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit; logs:\n{}",
                self.logs.snapshot()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        self.exit = Some(status);
        status
    }

    /// SIGTERM, then asserts a clean exit (status 0, "stopped" logged); returns all logs.
    pub fn stop(&mut self) -> String {
        self.signal("TERM");
        let status = self.wait_exit();
        let logs = self.logs.snapshot();
        assert_eq!(status.code(), Some(0), "exit status; logs:\n{logs}");
        assert!(logs.contains("stopped"), "no `stopped` line; logs:\n{logs}");
        logs
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exit.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The port of the first listening TCP socket the process `pid` owns.
#[cfg(target_os = "linux")]
pub fn proc_listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).ok()?;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
            u16::from_str_radix(f[1].rsplit_once(':')?.1, 16).ok()
        } else {
            None
        }
    })
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(SAFETY_TIMEOUT)
        .build()
        .unwrap()
}
