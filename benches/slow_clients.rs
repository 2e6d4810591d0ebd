//! Slow and hostile clients against a real `dravo serve`: `cargo bench --bench slow_clients`.
//!
//! Builds nothing: it runs the release binary (`cargo build --release` first) as a child
//! process on a free port of 127.0.0.1, with a fresh database in a temp dir, an HS256
//! `auth.jwt_secret` and the rate limits at 100 000/s (as `benches/load.sh`). Then:
//!
//! - **The attack**, from 127.0.0.1: `ATTACK_CONNECTIONS` connections (default 1100, above the
//!   server's cap of 1024), split evenly over the kinds in `ATTACK_KINDS` (default all):
//!   - `idle`: `GET /healthz`, read the answer, then sit silent on the kept-alive connection;
//!   - `header-drip`: a request head, one header line every 2 s, never finished;
//!   - `slow-body`: `POST /v1/oauth-apps` declaring `Content-Length: 60000`, no token, one
//!     body byte, then one byte every 2 s;
//!   - `slow-body-auth`: the same with a valid bearer token;
//!   - `slow-body-get`: `GET /healthz` (a route that reads no body) declaring
//!     `Content-Length: 60000`, one byte, then one every 2 s.
//!
//!   Every attacker re-opens its connection as soon as the server closes it
//!   (`ATTACK_RECONNECT_DELAY_MS` later, default 0). A failed connect is retried after 100 ms.
//! - **A legitimate client**, from 127.0.0.2 (so a per-address cap on 127.0.0.1 does not count
//!   it), starts after `WARMUP` seconds (default 5) and makes sequential requests for
//!   `DURATION` seconds (default 30), cycling through `GET /healthz` and an authenticated
//!   `GET /v1/oauth-apps`, each once on a fresh connection and once on a kept-alive one. Each
//!   request may take 20 s, connecting included, before it counts as a timeout.
//!
//! It prints a table (attacker connections open, connects, closes; the client's errors,
//! timeouts and latency percentiles) and a last line of JSON for scripts. Server settings
//! under test come only from the caller's `DRAVO_SERVER_*` variables (all but `BIND`), so it
//! runs against binaries that know fewer keys. `LOG_LEVEL` sets the server's `RUST_LOG`;
//! `DRAVO_BIN` runs another binary than the release build's.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout};

/// The legitimate client's address: another loopback address than the attacker's.
const CLIENT_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// How long one legitimate request may take, connecting included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// The pause between two dripped header lines or body bytes.
const DRIP_EVERY: Duration = Duration::from_secs(2);
/// What a slow body declares: under the API's 64 KiB limit, so it is read, not refused.
const SLOW_BODY_LENGTH: usize = 60_000;
/// The pause before retrying a connect that failed (refused, no port or descriptor left).
const CONNECT_RETRY: Duration = Duration::from_millis(100);
const TENANT: &str = "slowbench";

// ---------------------------------------------------------------- settings

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Idle,
    HeaderDrip,
    SlowBody,
    SlowBodyAuth,
    SlowBodyGet,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Idle,
        Kind::HeaderDrip,
        Kind::SlowBody,
        Kind::SlowBodyAuth,
        Kind::SlowBodyGet,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Idle => "idle",
            Kind::HeaderDrip => "header-drip",
            Kind::SlowBody => "slow-body",
            Kind::SlowBodyAuth => "slow-body-auth",
            Kind::SlowBodyGet => "slow-body-get",
        }
    }
}

struct Settings {
    connections: usize,
    kinds: Vec<Kind>,
    duration: Duration,
    warmup: Duration,
    reconnect_delay: Duration,
}

impl Settings {
    fn from_env() -> Result<Settings, String> {
        let kinds = match env("ATTACK_KINDS").as_deref() {
            None | Some("all") => Kind::ALL.to_vec(),
            Some(list) => {
                let mut kinds = Vec::new();
                for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    let kind = Kind::ALL
                        .into_iter()
                        .find(|k| k.name() == name)
                        .ok_or_else(|| {
                            format!(
                                "ATTACK_KINDS: unknown kind `{name}` (known: {}, or all)",
                                Kind::ALL.map(Kind::name).join(", ")
                            )
                        })?;
                    if !kinds.contains(&kind) {
                        kinds.push(kind);
                    }
                }
                if kinds.is_empty() {
                    return Err("ATTACK_KINDS names no kind".into());
                }
                kinds
            }
        };
        let settings = Settings {
            connections: number("ATTACK_CONNECTIONS", 1100)? as usize,
            kinds,
            duration: Duration::from_secs(seconds("DURATION", 30)?),
            warmup: Duration::from_secs(seconds("WARMUP", 5)?),
            reconnect_delay: Duration::from_millis(number("ATTACK_RECONNECT_DELAY_MS", 0)?),
        };
        if settings.duration.is_zero() {
            return Err("DURATION must be at least 1 second".into());
        }
        Ok(settings)
    }

    /// How many connections each kind gets: an even split, the remainder to the first kinds.
    fn split(&self) -> Vec<(Kind, usize)> {
        let (each, rest) = (
            self.connections / self.kinds.len(),
            self.connections % self.kinds.len(),
        );
        self.kinds
            .iter()
            .enumerate()
            .map(|(i, &k)| (k, each + usize::from(i < rest)))
            .collect()
    }
}

/// A variable's value; unset and empty are the same.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn number(name: &str, default: u64) -> Result<u64, String> {
    env(name).map_or(Ok(default), |v| {
        v.trim()
            .parse()
            .map_err(|_| format!("{name} must be a whole number, not `{v}`"))
    })
}

/// Whole seconds, with or without a trailing `s` (load.sh's `DURATION=10s` works here too).
fn seconds(name: &str, default: u64) -> Result<u64, String> {
    env(name).map_or(Ok(default), |v| {
        v.trim()
            .trim_end_matches('s')
            .parse()
            .map_err(|_| format!("{name} must be whole seconds, such as 30 or 30s, not `{v}`"))
    })
}

// ---------------------------------------------------------------- descriptors

/// Raises the soft RLIMIT_NOFILE to the hard limit, so the attack can hold thousands of
/// sockets; the server, started afterwards, inherits it. Returns (soft before, soft now, hard).
fn raise_nofile_limit() -> io::Result<(u64, u64, u64)> {
    let (before, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    // An unlimited hard limit is not a valid soft one for descriptors (Linux caps it at
    // fs.nr_open): a million is more than any run here needs.
    let now = rlimit::increase_nofile_limit(hard.min(1 << 20))?;
    Ok((before, now, hard))
}

/// The server's open sockets, from /proc (Linux): accepted connections, the listener and a
/// few of its own. None where /proc cannot tell.
fn server_sockets(pid: u32) -> Option<usize> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        entries
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter(|target| target.to_string_lossy().starts_with("socket:"))
            .count(),
    )
}

// ---------------------------------------------------------------- the server

/// A running `dravo serve`; dropping it stops the process (SIGTERM, then SIGKILL), also when
/// the bench panics.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    /// Holds the database, key file and log until the server is stopped.
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `binary serve` on port 0 of 127.0.0.1 and waits for the address it logs.
    fn start(binary: &Path, jwt_secret: &str, passed: &[(OsString, OsString)]) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("dravo-slow-clients.")
            .tempdir()
            .expect("create a temp dir");
        let log = dir.path().join("dravo.log");
        let out = File::create(&log).expect("create the server log");
        let mut cmd = Command::new(binary);
        // Only the variables below configure it: no inherited DRAVO_*, and the temp dir as the
        // working directory so no ./dravo.toml applies.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("DRAVO_") {
                cmd.env_remove(name);
            }
        }
        cmd.env_remove("RUST_LOG");
        if let Some(level) = env("LOG_LEVEL") {
            cmd.env("RUST_LOG", level);
        }
        cmd.arg("serve")
            .current_dir(dir.path())
            .env("DRAVO_SERVER_BIND", "127.0.0.1:0")
            .env("DRAVO_DATABASE_PATH", dir.path().join("dravo.db"))
            .env("DRAVO_AUTH_JWT_SECRET", jwt_secret)
            .envs(passed.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone the log file"))
            .stderr(out);
        // As load.sh: one client address and one tenant make all the load; the rate limits
        // are not what is measured.
        for limit in ["START", "CALLBACK", "CREATE", "TOKEN", "CHANGE"] {
            cmd.env(format!("DRAVO_LIMITS_{limit}_PER_SECOND"), "100000");
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&server.log).unwrap_or_default();
            if let Some(addr) = listening_addr(&text) {
                server.addr = addr;
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("dravo serve exited with {status} before listening; its log:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "dravo serve did not log `listening on` within 30 s; its log:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of the server's log, for error messages.
    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGTERM, up to 10 s for it to exit, then SIGKILL. Returns how it ended.
    fn stop(&mut self) -> String {
        if let Ok(Some(status)) = self.child.try_wait() {
            return format!("had already exited ({status})");
        }
        let Ok(pid) = libc::pid_t::try_from(self.child.id()) else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            return "killed".into();
        };
        let started = Instant::now();
        // SAFETY: kill has no memory effects; the pid is our own child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return format!(
                    "exited on SIGTERM in {} ms ({status})",
                    started.elapsed().as_millis()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        "killed after 10 s without exiting on SIGTERM".into()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `127.0.0.1:PORT` from the server's "listening on http://…" log line.
fn listening_addr(logs: &str) -> Option<SocketAddr> {
    const MARK: &str = "listening on http://";
    let rest = &logs[logs.find(MARK)? + MARK.len()..];
    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The release binary, found as benches/load.sh finds it: `cargo metadata`'s target
/// directory, `release/dravo`. `DRAVO_BIN` names another.
fn find_binary() -> Result<PathBuf, String> {
    if let Some(path) = env("DRAVO_BIN") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("DRAVO_BIN={} is no file", path.display()))
        };
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("cargo metadata printed no JSON: {e}"))?;
    let target = meta["target_directory"]
        .as_str()
        .ok_or("cargo metadata names no target_directory")?;
    let binary = Path::new(target).join("release").join("dravo");
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!(
            "{} not found: run `cargo build --release` first (this bench builds nothing)",
            binary.display()
        ))
    }
}

/// An HS256 dashboard token for `TENANT`, signed with the server's `auth.jwt_secret`.
fn mint_token(secret: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    let claims = json!({ "sub": TENANT, "iat": now, "exp": now + 3600 });
    let key = EncodingKey::from_secret(secret.as_bytes()).expect("an HS256 key");
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).expect("sign a token")
}

// ---------------------------------------------------------------- raw HTTP/1.1

/// What a response said that matters here.
struct Response {
    status: u16,
    /// False when the server said `Connection: close` or ended the body by closing.
    reusable: bool,
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Reads more bytes into `buf`; the peer closing is an error (a response was still due).
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.reserve(4096);
    if stream.read_buf(buf).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection before the response was complete",
        ));
    }
    Ok(())
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Reads one response, body included (by `Content-Length`, chunked, or up to the close).
async fn read_response(stream: &mut TcpStream) -> io::Result<Response> {
    let mut buf = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n", 0) {
            break p + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err(invalid("a response head over 64 KiB".into()));
        }
        read_more(stream, &mut buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(format!("not an HTTP/1.1 status line: {status_line:?}")))?;
    let (mut length, mut chunked, mut close) = (None, false, false);
    for (name, value) in lines.filter_map(|l| l.split_once(':')) {
        let value = value.trim().to_ascii_lowercase();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| invalid(format!("a bad Content-Length: {value:?}")))?,
                )
            }
            "transfer-encoding" => chunked = value.contains("chunked"),
            "connection" => close = value.contains("close"),
            _ => {}
        }
    }
    if chunked {
        read_chunked(stream, buf, head_end).await?;
    } else if let Some(length) = length {
        while buf.len() < head_end + length {
            read_more(stream, &mut buf).await?;
        }
    } else if !(status == 204 || status == 304 || (100..200).contains(&status)) {
        // No length: the body ends when the server closes.
        while stream.read_buf(&mut buf).await? > 0 {}
        close = true;
    }
    Ok(Response {
        status,
        reusable: !close,
    })
}

/// Reads a chunked body starting at `pos` of `buf`, through its last chunk and trailers.
async fn read_chunked(stream: &mut TcpStream, mut buf: Vec<u8>, mut pos: usize) -> io::Result<()> {
    loop {
        let line_end = loop {
            if let Some(p) = find(&buf, b"\r\n", pos) {
                break p;
            }
            read_more(stream, &mut buf).await?;
        };
        let line = String::from_utf8_lossy(&buf[pos..line_end]).into_owned();
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("a bad chunk size: {line:?}")))?;
        pos = line_end + 2;
        if size == 0 {
            // Trailers, if any, up to an empty line.
            loop {
                let end = loop {
                    if let Some(p) = find(&buf, b"\r\n", pos) {
                        break p;
                    }
                    read_more(stream, &mut buf).await?;
                };
                let empty = end == pos;
                pos = end + 2;
                if empty {
                    return Ok(());
                }
            }
        }
        while buf.len() < pos + size + 2 {
            read_more(stream, &mut buf).await?;
        }
        pos += size + 2;
    }
}

/// A connection from `CLIENT_SOURCE`, the legitimate client's own address.
async fn connect_as_client(server: SocketAddr) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    // A fresh connection per request leaves one TIME_WAIT socket each (the client closes
    // first): let connect, which sees the whole address pair, choose the port instead of
    // bind, so tens of thousands of requests do not run out of ephemeral ports.
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: setsockopt reads `on` for the length given; the descriptor is the socket's.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&raw const on).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    socket.bind(SocketAddr::new(IpAddr::V4(CLIENT_SOURCE), 0))?;
    socket.connect(server).await
}

/// One request on `stream`; an answer other than 200 is an error.
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> io::Result<Response> {
    stream.write_all(request).await?;
    let response = read_response(stream).await?;
    if response.status != 200 {
        return Err(io::Error::other(format!("answered {}", response.status)));
    }
    Ok(response)
}

// ---------------------------------------------------------------- the attack

/// One kind's counters, shared by its attacker tasks.
#[derive(Default)]
struct KindStats {
    /// Connections wanted of this kind.
    wanted: AtomicU64,
    /// Connect attempts, and those in progress now.
    attempts: AtomicU64,
    connecting: AtomicU64,
    /// Connects that failed (refused, timed out, no port or descriptor).
    failed: AtomicU64,
    /// Connected sockets now, as the attacker sees them: a connection still waiting in the
    /// server's listen backlog counts too.
    open: AtomicU64,
    /// Open connections the server ended (close or reset).
    closed: AtomicU64,
    /// The status of each connection's first response, when it got one.
    statuses: Mutex<BTreeMap<u16, u64>>,
}

impl KindStats {
    fn statuses(&self) -> String {
        let statuses = self.statuses.lock().unwrap();
        if statuses.is_empty() {
            return "-".into();
        }
        statuses
            .iter()
            .map(|(s, n)| format!("{s}x{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Counts one gauge up while alive.
struct Gauge<'a>(&'a AtomicU64);

impl<'a> Gauge<'a> {
    fn up(counter: &'a AtomicU64) -> Gauge<'a> {
        counter.fetch_add(1, Ordering::Relaxed);
        Gauge(counter)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What an attacker sends first, and then every `DRIP_EVERY` (`n` counts the drips).
fn attack_bytes(kind: Kind, host: &str, token: &str, n: u64) -> Vec<u8> {
    let slow_body = |method: &str, path: &str, auth: bool| {
        let auth = if auth {
            format!("Authorization: Bearer {token}\r\n")
        } else {
            String::new()
        };
        format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: {SLOW_BODY_LENGTH}\r\n\r\n{{"
        )
    };
    match (kind, n) {
        (Kind::Idle, 0) => format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes(),
        (Kind::Idle, _) => Vec::new(),
        (Kind::HeaderDrip, 0) => b"GET /healthz HTTP/1.1\r\n".to_vec(),
        (Kind::HeaderDrip, 1) => format!("Host: {host}\r\n").into_bytes(),
        (Kind::HeaderDrip, n) => format!("X-Drip-{n}: {n}\r\n").into_bytes(),
        (Kind::SlowBody, 0) => slow_body("POST", "/v1/oauth-apps", false).into_bytes(),
        (Kind::SlowBodyAuth, 0) => slow_body("POST", "/v1/oauth-apps", true).into_bytes(),
        (Kind::SlowBodyGet, 0) => slow_body("GET", "/healthz", false).into_bytes(),
        (_, _) => b" ".to_vec(),
    }
}

/// Plays `kind` on one connection until the server ends it.
async fn attack_connection(
    mut stream: TcpStream,
    kind: Kind,
    host: &str,
    token: &str,
    stats: &KindStats,
) {
    let (mut rd, mut wr) = stream.split();
    if wr
        .write_all(&attack_bytes(kind, host, token, 0))
        .await
        .is_err()
    {
        return;
    }
    let mut received = Vec::new();
    let mut status_seen = false;
    let mut drips = 0;
    let mut next_drip = tokio::time::Instant::now() + DRIP_EVERY;
    let mut chunk = [0u8; 4096];
    loop {
        tokio::select! {
            read = rd.read(&mut chunk) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    // The first response's status; later bytes are only drained.
                    if !status_seen {
                        received.extend_from_slice(&chunk[..n]);
                        if received.len() >= 12 {
                            status_seen = true;
                            let status = std::str::from_utf8(&received[9..12])
                                .ok()
                                .and_then(|s| s.parse().ok())
                                .unwrap_or(0);
                            *stats.statuses.lock().unwrap().entry(status).or_default() += 1;
                        }
                    }
                }
            },
            () = sleep_until(next_drip) => {
                drips += 1;
                next_drip += DRIP_EVERY;
                let bytes = attack_bytes(kind, host, token, drips);
                if !bytes.is_empty() && wr.write_all(&bytes).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// One attacker: connects, plays its kind until the server closes, and starts over.
async fn attacker(
    kind: Kind,
    server: SocketAddr,
    token: Arc<str>,
    stats: Arc<KindStats>,
    reconnect_delay: Duration,
) {
    let host = server.to_string();
    loop {
        stats.attempts.fetch_add(1, Ordering::Relaxed);
        let connected = {
            let _connecting = Gauge::up(&stats.connecting);
            TcpStream::connect(server).await
        };
        match connected {
            Err(_) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                sleep(CONNECT_RETRY).await;
            }
            Ok(stream) => {
                {
                    let _open = Gauge::up(&stats.open);
                    attack_connection(stream, kind, &host, &token, &stats).await;
                }
                stats.closed.fetch_add(1, Ordering::Relaxed);
                sleep(reconnect_delay).await;
            }
        }
    }
}

fn open_now(stats: &[(Kind, Arc<KindStats>)]) -> Vec<u64> {
    stats
        .iter()
        .map(|(_, s)| s.open.load(Ordering::Relaxed))
        .collect()
}

// ---------------------------------------------------------------- the legitimate client

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Error,
    Timeout,
}

struct Sample {
    fresh: bool,
    latency: Duration,
    outcome: Outcome,
}

#[derive(Default)]
struct ClientRun {
    samples: Vec<Sample>,
    /// Distinct error messages, with how often each came.
    errors: BTreeMap<String, u64>,
    /// Kept-alive requests sent again on a new connection because the old one had failed.
    retried: u64,
}

/// Sequential requests from `CLIENT_SOURCE` until `duration` has passed.
async fn legitimate_client(server: SocketAddr, token: &str, duration: Duration) -> ClientRun {
    let host = server.to_string();
    let healthz = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes();
    let apps = format!(
        "GET /v1/oauth-apps HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .into_bytes();
    let mut run = ClientRun::default();
    let mut kept: Option<TcpStream> = None;
    let started = Instant::now();
    let mut i = 0u64;
    while started.elapsed() < duration {
        // Cycles through the four combinations: (healthz, apps) × (fresh, kept-alive).
        let request = if i.is_multiple_of(2) { &healthz } else { &apps };
        let fresh = (i / 2).is_multiple_of(2);
        i += 1;
        let reuse = if fresh { None } else { kept.take() };
        let t0 = Instant::now();
        let result = timeout(REQUEST_TIMEOUT, async {
            let mut retried = false;
            if let Some(mut stream) = reuse {
                match exchange(&mut stream, request).await {
                    Ok(response) => return (Ok((response, stream)), retried),
                    // As HTTP clients do for a reused connection: once more on a new one.
                    Err(_) => retried = true,
                }
            }
            let attempt = async {
                let mut stream = connect_as_client(server).await?;
                let response = exchange(&mut stream, request).await?;
                Ok::<_, io::Error>((response, stream))
            };
            (attempt.await, retried)
        })
        .await;
        let latency = t0.elapsed();
        let outcome = match result {
            Err(_) => Outcome::Timeout,
            Ok((result, retried)) => {
                run.retried += u64::from(retried);
                match result {
                    Ok((response, stream)) => {
                        if !fresh && response.reusable {
                            kept = Some(stream);
                        }
                        Outcome::Ok
                    }
                    Err(e) => {
                        *run.errors.entry(e.to_string()).or_default() += 1;
                        Outcome::Error
                    }
                }
            }
        };
        run.samples.push(Sample {
            fresh,
            latency,
            outcome,
        });
    }
    run
}

/// Latency figures of some samples, in ms: p50, p90, p99, max (nearest rank).
fn percentiles<'a>(samples: impl Iterator<Item = &'a Sample>) -> Option<[f64; 4]> {
    let mut ms: Vec<f64> = samples.map(|s| s.latency.as_secs_f64() * 1000.0).collect();
    if ms.is_empty() {
        return None;
    }
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
    Some([at(0.5), at(0.9), at(0.99), ms[ms.len() - 1]])
}

// ---------------------------------------------------------------- the run

fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("slow_clients: {e}");
            return ExitCode::from(2);
        }
    };
    let binary = match find_binary() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("slow_clients: {e}");
            return ExitCode::from(2);
        }
    };
    let (before, soft, hard) = match raise_nofile_limit() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("slow_clients: cannot read or raise RLIMIT_NOFILE: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("RLIMIT_NOFILE: soft {soft} (was {before}), hard {hard}; dravo serve inherits it");
    // The attacker's sockets plus the server's cap of 1024 and some slack, in each process.
    let needed = settings.connections as u64 + 256;
    if soft < needed.max(1024 + 256) {
        eprintln!(
            "warning: {soft} descriptors are fewer than this run needs (about {}): the figures \
             then measure the descriptor limit, not the server. Raise the hard limit \
             (`ulimit -Hn`, limits.conf or the container's nofile).",
            needed.max(1024 + 256)
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(settings, binary, soft))
}

async fn run(settings: Settings, binary: PathBuf, nofile: u64) -> ExitCode {
    let version = Command::new(&binary)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    // The settings under test: the caller's DRAVO_SERVER_* (the address is ours to choose).
    let passed: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| {
            let k = k.to_string_lossy();
            k.starts_with("DRAVO_SERVER_") && k != "DRAVO_SERVER_BIND"
        })
        .collect();
    let secret: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(48)
        .map(char::from)
        .collect();
    let token: Arc<str> = mint_token(&secret).into();
    let mut server = Server::start(&binary, &secret, &passed);
    let addr = server.addr;
    eprintln!("dravo serve ({version}) pid {} on {addr}", server.pid());

    // Before the attack: the token works and both measured requests answer 200.
    let app = br#"{"provider":"x","name":"Slow Bench App","client_id":"slow-bench-id","client_secret":"slow-bench-secret"}"#;
    let create = [
        format!(
            "POST /v1/oauth-apps HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            app.len()
        )
        .as_bytes(),
        app,
    ]
    .concat();
    let check = async {
        let mut stream = connect_as_client(addr).await?;
        stream.write_all(&create).await?;
        let created = read_response(&mut stream).await?;
        if created.status != 201 {
            return Err(io::Error::other(format!(
                "POST /v1/oauth-apps answered {}",
                created.status
            )));
        }
        for path in ["/healthz", "/v1/oauth-apps"] {
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n"
            );
            exchange(&mut stream, request.as_bytes())
                .await
                .map_err(|e| io::Error::other(format!("GET {path}: {e}")))?;
        }
        Ok(())
    };
    if let Err(e) = timeout(Duration::from_secs(10), check)
        .await
        .unwrap_or_else(|_| Err(io::Error::other("timed out")))
    {
        eprintln!(
            "slow_clients: the server does not answer as expected before the attack: {e}\n{}",
            server.log_tail(20)
        );
        return ExitCode::FAILURE;
    }
    let sockets_before = server_sockets(server.pid());

    // The attack, all connections at once.
    let split = settings.split();
    let stats: Vec<(Kind, Arc<KindStats>)> = split
        .iter()
        .map(|&(kind, n)| {
            let s = KindStats::default();
            s.wanted.store(n as u64, Ordering::Relaxed);
            (kind, Arc::new(s))
        })
        .collect();
    let mut attackers = JoinSet::new();
    for ((kind, n), (_, s)) in split.iter().zip(&stats) {
        for _ in 0..*n {
            attackers.spawn(attacker(
                *kind,
                addr,
                token.clone(),
                s.clone(),
                settings.reconnect_delay,
            ));
        }
    }
    let attack_started = Instant::now();
    eprintln!(
        "attack: {} connections from 127.0.0.1 ({}); warm-up {} s",
        settings.connections,
        split
            .iter()
            .map(|(k, n)| format!("{} {n}", k.name()))
            .collect::<Vec<_>>()
            .join(", "),
        settings.warmup.as_secs()
    );
    sleep(settings.warmup).await;
    let open_warmup = open_now(&stats);
    let connecting_warmup: u64 = stats
        .iter()
        .map(|(_, s)| s.connecting.load(Ordering::Relaxed))
        .sum();
    let sockets_warmup = server_sockets(server.pid());
    eprintln!(
        "warm-up over: {} attacker sockets open, {connecting_warmup} connecting; the legitimate \
         client runs for {} s from {CLIENT_SOURCE}",
        open_warmup.iter().sum::<u64>(),
        settings.duration.as_secs()
    );

    let client = legitimate_client(addr, &token, settings.duration).await;
    let open_end = open_now(&stats);
    let sockets_end = server_sockets(server.pid());
    let attack_seconds = attack_started.elapsed().as_secs_f64();
    attackers.abort_all();
    while attackers.join_next().await.is_some() {}
    let stopped = server.stop();

    report(
        &settings,
        &Report {
            version: &version,
            addr,
            nofile,
            passed: &passed,
            stats: &stats,
            open_warmup: &open_warmup,
            open_end: &open_end,
            connecting_warmup,
            sockets: [sockets_before, sockets_warmup, sockets_end],
            attack_seconds,
            client: &client,
            stopped: &stopped,
        },
    );
    ExitCode::SUCCESS
}

struct Report<'a> {
    version: &'a str,
    addr: SocketAddr,
    nofile: u64,
    passed: &'a [(OsString, OsString)],
    stats: &'a [(Kind, Arc<KindStats>)],
    open_warmup: &'a [u64],
    open_end: &'a [u64],
    connecting_warmup: u64,
    /// The server's sockets before the attack, at the end of the warm-up and at the end.
    sockets: [Option<usize>; 3],
    attack_seconds: f64,
    client: &'a ClientRun,
    stopped: &'a str,
}

fn report(settings: &Settings, r: &Report) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let passed = if r.passed.is_empty() {
        "none (the binary's defaults)".to_owned()
    } else {
        r.passed
            .iter()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let load_text = load.join(" ");
    println!();
    println!(
        "Slow clients: {} on {}, {cores} cores, load average {load_text} (at the end), RLIMIT_NOFILE {}",
        r.version, r.addr, r.nofile
    );
    println!("  server settings passed: {passed}");
    println!(
        "  attack from 127.0.0.1, reconnecting {} ms after each close; legitimate client from \
         {CLIENT_SOURCE}: {} s after a {} s warm-up, {} s timeout per request",
        settings.reconnect_delay.as_millis(),
        settings.duration.as_secs(),
        settings.warmup.as_secs(),
        REQUEST_TIMEOUT.as_secs()
    );
    println!();
    println!(
        "{:<16} {:>7} {:>13} {:>9} {:>9} {:>8} {:>9}  first responses",
        "attacker", "wanted", "open@warm-up", "open@end", "connects", "refused", "closed"
    );
    let mut totals = [0u64; 6];
    for (i, (kind, s)) in r.stats.iter().enumerate() {
        let row = [
            s.wanted.load(Ordering::Relaxed),
            r.open_warmup[i],
            r.open_end[i],
            s.attempts.load(Ordering::Relaxed),
            s.failed.load(Ordering::Relaxed),
            s.closed.load(Ordering::Relaxed),
        ];
        for (t, v) in totals.iter_mut().zip(row) {
            *t += v;
        }
        println!(
            "{:<16} {:>7} {:>13} {:>9} {:>9} {:>8} {:>9}  {}",
            kind.name(),
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            s.statuses()
        );
    }
    println!(
        "{:<16} {:>7} {:>13} {:>9} {:>9} {:>8} {:>9}",
        "all", totals[0], totals[1], totals[2], totals[3], totals[4], totals[5]
    );
    let show = |n: Option<usize>| n.map_or("n/a".to_owned(), |n| n.to_string());
    println!(
        "  open = connected as the attacker sees it (waiting in the listen backlog included); \
         {} still connecting at the end of the warm-up",
        r.connecting_warmup
    );
    println!(
        "  the server's open sockets (/proc): {} before the attack, {} at the end of the warm-up, \
         {} at the end",
        show(r.sockets[0]),
        show(r.sockets[1]),
        show(r.sockets[2])
    );
    println!();
    println!(
        "{:<22} {:>8} {:>6} {:>7} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "legitimate client",
        "requests",
        "ok",
        "errors",
        "timeouts",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms"
    );
    let c = r.client;
    let row = |label: &str, pick: &dyn Fn(&Sample) -> bool| {
        let picked: Vec<&Sample> = c.samples.iter().filter(|s| pick(s)).collect();
        let count = |o: Outcome| picked.iter().filter(|s| s.outcome == o).count();
        let pct = percentiles(picked.iter().copied());
        let fmt = |i: usize| pct.map_or("-".to_owned(), |p| format!("{:.1}", p[i]));
        println!(
            "{:<22} {:>8} {:>6} {:>7} {:>8} {:>9} {:>9} {:>9} {:>9}",
            label,
            picked.len(),
            count(Outcome::Ok),
            count(Outcome::Error),
            count(Outcome::Timeout),
            fmt(0),
            fmt(1),
            fmt(2),
            fmt(3)
        );
    };
    row("all", &|_| true);
    row("  fresh connection", &|s| s.fresh);
    row("  kept-alive", &|s| !s.fresh);
    println!(
        "  latency of every request, connecting included; a timed-out one counts as its {} s",
        REQUEST_TIMEOUT.as_secs()
    );
    if c.retried > 0 {
        println!(
            "  {} kept-alive requests were sent again on a new connection after the old one failed",
            c.retried
        );
    }
    for (e, n) in &c.errors {
        println!("  error x{n}: {e}");
    }
    println!("  dravo serve {}", r.stopped);
    println!();

    let all = percentiles(c.samples.iter()).unwrap_or([0.0; 4]);
    let count = |o: Outcome| c.samples.iter().filter(|s| s.outcome == o).count();
    let kinds: serde_json::Map<String, serde_json::Value> = r
        .stats
        .iter()
        .enumerate()
        .map(|(i, (kind, s))| {
            (
                kind.name().to_owned(),
                json!({
                    "wanted": s.wanted.load(Ordering::Relaxed),
                    "open_warmup": r.open_warmup[i],
                    "open_end": r.open_end[i],
                    "connects": s.attempts.load(Ordering::Relaxed),
                    "refused": s.failed.load(Ordering::Relaxed),
                    "closed": s.closed.load(Ordering::Relaxed),
                }),
            )
        })
        .collect();
    let summary = json!({
        "bench": "slow_clients",
        "version": r.version,
        "server_settings": passed,
        "attack_seconds": (r.attack_seconds * 10.0).round() / 10.0,
        "attack": {
            "wanted": totals[0],
            "open_warmup": totals[1],
            "open_end": totals[2],
            "connects": totals[3],
            "refused": totals[4],
            "closed": totals[5],
            "server_sockets_end": r.sockets[2],
            "kinds": kinds,
        },
        "client": {
            "requests": c.samples.len(),
            "ok": count(Outcome::Ok),
            "errors": count(Outcome::Error),
            "timeouts": count(Outcome::Timeout),
            "p50_ms": (all[0] * 10.0).round() / 10.0,
            "p90_ms": (all[1] * 10.0).round() / 10.0,
            "p99_ms": (all[2] * 10.0).round() / 10.0,
            "max_ms": (all[3] * 10.0).round() / 10.0,
        },
        "load_average": load_text,
    });
    println!("{summary}");
}
