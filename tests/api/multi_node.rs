//! Several `dravo serve` nodes on one PostgreSQL database: a connect that starts on one node
//! and ends on another, single-flight refreshes across nodes, background refreshers side by
//! side, webhook events delivered once (and still delivered when their sender is killed), and
//! a CLI as a third process on the same data.
//!
//! Needs `DRAVO_TEST_POSTGRES_URL` (`.ci/postgres start DIR` prints one). Without it each test
//! says it was skipped, unless `DRAVO_REQUIRE_POSTGRES=1` (CI) makes that a failure.

use crate::support;
use crate::support::fake_provider;
use crate::support::fake_x_server;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_provider::{FakeProvider, Kind};
use fake_x_server::{CLIENT_ID, CLIENT_SECRET, serve_command, start};
use serde_json::Value;
use support::backend::{fresh_schema, postgres_server, psql};
use support::dravo_cmd;
use support::process::{SAFETY_TIMEOUT, Server, http, runtime, tempdir};

const TENANT: &str = "tenant-multi";
/// What every node's `server.public_url` names: the load balancer in front of them. The
/// browser's requests to it are sent to a node of the test's choice.
const PUBLIC_URL: &str = "http://dravo-lb.invalid";

/// `dravo` in `dir` (where the shared key file is) on the database `url`.
fn cmd(dir: &Path, url: &str) -> Command {
    let mut cmd = dravo_cmd(dir);
    cmd.env("DRAVO_DATABASE_URL", url);
    cmd
}

fn run_ok(mut cmd: Command, args: &[&str]) -> String {
    let out = cmd.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "dravo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One shared database and key file, a fake X, and a dashboard token.
struct Cluster {
    dir: tempfile::TempDir,
    url: String,
    fake: FakeProvider,
    jwt: String,
}

impl Cluster {
    fn new(rt: &tokio::runtime::Runtime, base: &str) -> Cluster {
        let dir = tempdir();
        let url = fresh_schema(base);
        run_ok(cmd(dir.path(), &url), &["init"]);
        let jwt = run_ok(cmd(dir.path(), &url), &["token", "issue", "--sub", TENANT])
            .trim()
            .to_owned();
        let fake = rt.block_on(FakeProvider::start(Kind::X, CLIENT_ID, CLIENT_SECRET));
        Cluster {
            dir,
            url,
            fake,
            jwt,
        }
    }

    /// A node: `dravo serve` on the shared database, `tweak` adding its environment.
    fn node(&self, tweak: impl FnOnce(&mut Command)) -> Server {
        let mut serve = serve_command(self.dir.path(), &self.fake);
        serve
            .env("DRAVO_DATABASE_URL", &self.url)
            .env("DRAVO_SERVER_PUBLIC_URL", PUBLIC_URL);
        tweak(&mut serve);
        Server::start(serve)
    }

    fn account_ids(&self) -> Vec<String> {
        psql(&self.url, "SELECT id FROM accounts ORDER BY seq")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

async fn get_json(server: &Server, jwt: &str, path: &str) -> (u16, Value) {
    let resp = http()
        .get(server.url(path))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The provider's consent for `start`'s authorize URL: the callback URL it sends the browser
/// to (at the load balancer).
async fn consent(authorize: &str) -> String {
    let consent = fake_x_server::no_redirects()
        .get(authorize)
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), 302);
    let callback = consent.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.starts_with(PUBLIC_URL), "{callback}");
    callback
}

/// The browser's request to the load balancer's `url`, served by `node`.
async fn via(node: &Server, url: &str) -> (u16, String) {
    let on_node = url.replacen(PUBLIC_URL, &format!("http://{}", node.addr), 1);
    let done = fake_x_server::no_redirects()
        .get(on_node)
        .send()
        .await
        .unwrap();
    (done.status().as_u16(), done.text().await.unwrap())
}

/// Connects one fake account: `start` on `a`, the callback on `b`.
async fn connect_across(a: &Server, b: &Server, jwt: &str) {
    let callback = consent(&start(a, jwt).await).await;
    let (status, body) = via(b, &callback).await;
    assert_eq!(status, 200, "callback on node B: {body}");
}

#[test]
fn a_connect_started_on_one_node_completes_on_another() {
    let Some(base) = postgres_server() else {
        return;
    };
    let rt = runtime();
    let cluster = Cluster::new(&rt, &base);
    let (a, b) = (cluster.node(|_| {}), cluster.node(|_| {}));
    rt.block_on(async {
        connect_across(&a, &b, &cluster.jwt).await;
        // Both nodes see the account, and its token opens on either.
        let (_, on_a) = get_json(&a, &cluster.jwt, "/v1/accounts").await;
        let (_, on_b) = get_json(&b, &cluster.jwt, "/v1/accounts").await;
        assert_eq!(on_a["data"].as_array().unwrap().len(), 1, "{on_a}");
        assert_eq!(on_a["data"], on_b["data"]);
        let id = on_a["data"][0]["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/accounts/{id}/access-token");
        let (sa, ta) = get_json(&a, &cluster.jwt, &path).await;
        let (sb, tb) = get_json(&b, &cluster.jwt, &path).await;
        assert_eq!((sa, sb), (200, 200));
        assert_eq!(ta["access_token"], tb["access_token"]);
        assert!(
            cluster
                .fake
                .access_token_valid(ta["access_token"].as_str().unwrap())
        );
    });
}

#[test]
fn a_state_used_on_one_node_is_refused_on_the_other() {
    let Some(base) = postgres_server() else {
        return;
    };
    let rt = runtime();
    let cluster = Cluster::new(&rt, &base);
    let (a, b) = (cluster.node(|_| {}), cluster.node(|_| {}));
    rt.block_on(async {
        let callback = consent(&start(&a, &cluster.jwt).await).await;
        let (status, body) = via(&a, &callback).await;
        assert_eq!(status, 200, "{body}");
        let (again, body) = via(&b, &callback).await;
        assert_ne!(
            again, 200,
            "a replayed state must not connect again: {body}"
        );
        assert!(body.contains("already been used"), "{body}");
    });
    assert_eq!(cluster.account_ids().len(), 1);
}

/// Makes the account's token expire in `seconds`, as if it had been issued long ago.
fn expire_soon(cluster: &Cluster, id: &str, seconds: i64) {
    psql(
        &cluster.url,
        &format!(
            "UPDATE accounts SET expires_at = extract(epoch FROM now())::bigint + {seconds}
             WHERE id = '{id}'"
        ),
    );
}

#[test]
fn a_hundred_token_requests_over_two_nodes_refresh_once() {
    let Some(base) = postgres_server() else {
        return;
    };
    let rt = runtime();
    let cluster = Cluster::new(&rt, &base);
    let (a, b) = (cluster.node(|_| {}), cluster.node(|_| {}));
    rt.block_on(connect_across(&a, &b, &cluster.jwt));
    let id = cluster.account_ids().remove(0);
    // The provider answers each refresh with the very access token it gave before (only the
    // tokens' version tells that a refresh happened, not the token),
    // slowly, so that every request arrives while the first refresh is at the provider.
    cluster.fake.repeat_access_tokens(true);
    cluster
        .fake
        .set_fault(fake_provider::Fault::TokenDelay(Duration::from_millis(
            1500,
        )));
    let path = format!("/v1/accounts/{id}/access-token");
    let burst = |path: String| {
        let tokens: Vec<String> = rt.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..100 {
                let url = if i % 2 == 0 {
                    a.url(&path)
                } else {
                    b.url(&path)
                };
                let jwt = cluster.jwt.clone();
                tasks.spawn(async move {
                    let resp = http().get(url).bearer_auth(jwt).send().await.unwrap();
                    assert_eq!(resp.status(), 200);
                    let body: Value = resp.json().await.unwrap();
                    body["access_token"].as_str().unwrap().to_owned()
                });
            }
            tasks.join_all().await
        });
        let issued = cluster.fake.issued_access_tokens();
        assert!(
            tokens.iter().all(|t| t == issued.last().unwrap()),
            "every request got the one token"
        );
        assert_eq!(issued[0], *issued.last().unwrap(), "the fake repeated it");
    };

    // Due: 100 reads over two nodes, one refresh.
    expire_soon(&cluster, &id, 30);
    let before = cluster.fake.token_requests();
    burst(path.clone());
    assert_eq!(
        cluster.fake.token_requests() - before,
        1,
        "one refresh at the provider for 100 requests on two nodes"
    );
    // Forced: 100 callers asking for a new token at once over two nodes, one refresh (the
    // one that happened after each of them asked).
    let before = cluster.fake.token_requests();
    burst(format!("{path}?force_refresh=true"));
    assert_eq!(
        cluster.fake.token_requests() - before,
        1,
        "one refresh at the provider for 100 forced requests on two nodes"
    );
}

#[test]
fn two_background_refreshers_refresh_each_due_account_once() {
    const ACCOUNTS: usize = 6;
    let Some(base) = postgres_server() else {
        return;
    };
    let rt = runtime();
    let cluster = Cluster::new(&rt, &base);
    {
        let a = cluster.node(|_| {});
        for _ in 0..ACCOUNTS {
            cluster
                .fake
                .set_account(&format!("acct-{}", support::random_suffix()), None, None);
            rt.block_on(connect_across(&a, &a, &cluster.jwt));
        }
    }
    let ids = cluster.account_ids();
    assert_eq!(ids.len(), ACCOUNTS);
    for id in &ids {
        expire_soon(&cluster, id, 60);
    }
    // Last renewed two days ago: the keep-alive is due (the background leaves a token that
    // merely expires to the next request).
    psql(
        &cluster.url,
        "UPDATE accounts SET next_refresh_at = 0, token_issued_at = token_issued_at - 172800",
    );
    let before = cluster.fake.token_requests();
    let refreshers = |c: &mut Command| {
        c.env("DRAVO_REFRESH_BACKGROUND", "true")
            .env("DRAVO_REFRESH_INTERVAL_SECONDS", "1");
    };
    let (_a, _b) = (cluster.node(refreshers), cluster.node(refreshers));
    // Until every account holds a token issued after `before`, then a few more passes of
    // both refreshers, which must find nothing more to do.
    let deadline = Instant::now() + SAFETY_TIMEOUT;
    loop {
        let fresh: i64 = psql(
            &cluster.url,
            "SELECT count(*) FROM accounts
             WHERE expires_at > extract(epoch FROM now())::bigint + 3600",
        )[0]
        .get(0);
        if fresh as usize == ACCOUNTS {
            break;
        }
        assert!(Instant::now() < deadline, "the refreshers did not refresh");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        cluster.fake.token_requests() - before,
        ACCOUNTS,
        "each due account refreshed exactly once by the two nodes"
    );
}

/// A webhook receiver: records each delivery's event id; while `hold` is set it never
/// answers (a sender stuck on it can be killed).
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<String>>>,
    hold: Arc<std::sync::atomic::AtomicBool>,
}

impl Receiver {
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let me = me.clone();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // Headers, then the body by Content-Length.
                    let (head_end, length) = loop {
                        let n = stream.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (end + 4, length);
                        }
                    };
                    while buf.len() < head_end + length {
                        let n = stream.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                    let id = head
                        .lines()
                        .find_map(|l| l.strip_prefix("dravo-event-id:"))
                        .map(|v| v.trim().to_owned())
                        .unwrap_or_default();
                    if me.hold.load(std::sync::atomic::Ordering::SeqCst) {
                        me.seen.lock().unwrap().push(format!("held:{id}"));
                        std::future::pending::<()>().await;
                    }
                    // A receiver that takes its time: posts of one event by two nodes would
                    // overlap here, were the claims not keeping the second node out.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    me.seen.lock().unwrap().push(id);
                    let _ = stream
                        .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                        .await;
                });
            }
        });
        format!("http://{addr}/hooks")
    }

    fn delivered(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| !s.starts_with("held:"))
            .cloned()
            .collect()
    }
}

fn with_webhooks(url: &str) -> impl Fn(&mut Command) + '_ {
    move |c: &mut Command| {
        c.env("DRAVO_WEBHOOKS_URL", url)
            .env("DRAVO_WEBHOOKS_SECRET", "whsec_multi_node_0123456789");
    }
}

fn outbox_statuses(cluster: &Cluster) -> HashMap<String, String> {
    psql(&cluster.url, "SELECT id, status FROM webhook_outbox")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[test]
fn each_webhook_event_is_delivered_by_exactly_one_node() {
    const CONNECTS: usize = 12;
    let Some(base) = postgres_server() else {
        return;
    };
    let rt = runtime();
    let cluster = Cluster::new(&rt, &base);
    let receiver = Receiver::default();
    let hooks = rt.block_on(receiver.start());
    let (a, b) = (
        cluster.node(with_webhooks(&hooks)),
        cluster.node(with_webhooks(&hooks)),
    );
    for i in 0..CONNECTS {
        cluster.fake.set_account(
            &format!("acct-{i}-{}", support::random_suffix()),
            None,
            None,
        );
        let (first, second) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        rt.block_on(connect_across(first, second, &cluster.jwt));
    }
    let deadline = Instant::now() + SAFETY_TIMEOUT;
    let events = loop {
        let statuses = outbox_statuses(&cluster);
        if statuses.len() >= CONNECTS && statuses.values().all(|s| s == "delivered") {
            break statuses;
        }
        assert!(Instant::now() < deadline, "not delivered: {statuses:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_secs(2));
    let mut delivered = receiver.delivered();
    delivered.sort();
    let mut expected: Vec<String> = events.keys().cloned().collect();
    expected.sort();
    assert_eq!(delivered, expected, "each event once, none twice");
}

#[test]
fn a_webhook_event_whose_sender_is_killed_is_delivered_by_another_node() {
    let Some(base) = postgres_server() else {
        return;
    };
    let rt = runtime();
    let cluster = Cluster::new(&rt, &base);
    let receiver = Receiver::default();
    let hooks = rt.block_on(receiver.start());
    receiver
        .hold
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let mut a = cluster.node(with_webhooks(&hooks));
    rt.block_on(connect_across(&a, &a, &cluster.jwt));
    // Node A claimed the event and is posting it.
    let deadline = Instant::now() + SAFETY_TIMEOUT;
    while receiver.seen.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "node A never posted");
        std::thread::sleep(Duration::from_millis(50));
    }
    let claim = || -> (Option<String>, Option<i64>, String) {
        let rows = psql(
            &cluster.url,
            "SELECT claimed_by, claimed_until, status FROM webhook_outbox",
        );
        assert_eq!(rows.len(), 1);
        (rows[0].get(0), rows[0].get(1), rows[0].get(2))
    };
    let (holder, first_end, status) = claim();
    assert!(holder.is_some(), "A holds a claim");
    assert_eq!(status, "pending");
    let first_end = first_end.expect("the claim has an end");
    // A renews its short claim while the receiver keeps it waiting.
    let deadline = Instant::now() + SAFETY_TIMEOUT;
    loop {
        let (now_holder, end, _) = claim();
        assert_eq!(now_holder, holder, "nobody took A's claim over");
        if end.is_some_and(|end| end > first_end) {
            break;
        }
        assert!(Instant::now() < deadline, "A never renewed its claim");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Kill it there.
    a.signal("KILL");
    a.wait_exit();
    let died_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (holder_left, claim_ends, status) = claim();
    assert_eq!(holder_left, holder);
    assert_eq!(status, "pending");
    let claim_ends = claim_ends.expect("the claim has an end");
    // Renewed to at most 5 s after its last renewal, which came before the kill: another
    // node may take the event over within 5 s of A's death (it used to be 20 s).
    assert!(
        claim_ends <= died_at + 5,
        "A's claim runs out within 5 s of its death ({claim_ends} > {died_at} + 5)"
    );
    receiver
        .hold
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let _b = cluster.node(with_webhooks(&hooks));
    // B takes the event over once A's claim runs out.
    let deadline = Instant::now() + SAFETY_TIMEOUT;
    loop {
        let statuses = outbox_statuses(&cluster);
        if statuses.values().all(|s| s == "delivered") {
            break;
        }
        assert!(Instant::now() < deadline, "never delivered: {statuses:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    let ids: Vec<String> = outbox_statuses(&cluster).into_keys().collect();
    assert_eq!(receiver.delivered(), ids, "delivered once, by node B");
    let delivered_at: i64 = psql(&cluster.url, "SELECT delivered_at FROM webhook_outbox")[0].get(0);
    assert!(
        delivered_at >= claim_ends,
        "B waited for A's claim to run out ({delivered_at} < {claim_ends})"
    );
}

#[test]
fn a_cli_on_a_third_process_sees_and_changes_what_the_nodes_serve() {
    let Some(base) = postgres_server() else {
        return;
    };
    let rt = runtime();
    let cluster = Cluster::new(&rt, &base);
    let (a, b) = (cluster.node(|_| {}), cluster.node(|_| {}));
    // Created by the CLI, seen by both nodes.
    let mut create = cmd(cluster.dir.path(), &cluster.url);
    create
        .args([
            "oauth-apps",
            "create",
            "--owner",
            TENANT,
            "--provider",
            "x",
            "--name",
            "from-cli",
            "--client-id",
            "cid",
            "--client-secret-stdin",
            "--json",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = create.spawn().unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"cli-secret\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let app_id = created["id"].as_str().unwrap().to_owned();
    rt.block_on(async {
        for node in [&a, &b] {
            let (status, app) =
                get_json(node, &cluster.jwt, &format!("/v1/oauth-apps/{app_id}")).await;
            assert_eq!(status, 200, "{app}");
            assert_eq!(app["name"], "from-cli");
        }
        // Created over HTTP on node A, listed by the CLI.
        let resp = http()
            .post(a.url("/v1/oauth-apps"))
            .bearer_auth(&cluster.jwt)
            .json(&support::app_body("linkedin", "from-node-a"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
    });
    let listed = run_ok(
        cmd(cluster.dir.path(), &cluster.url),
        &["oauth-apps", "list", "--owner", TENANT],
    );
    assert!(
        listed.contains("from-cli") && listed.contains("from-node-a"),
        "{listed}"
    );
    // Deleted by the CLI: gone on both nodes.
    run_ok(
        cmd(cluster.dir.path(), &cluster.url),
        &["oauth-apps", "delete", "--owner", TENANT, &app_id],
    );
    rt.block_on(async {
        for node in [&a, &b] {
            let (status, _) =
                get_json(node, &cluster.jwt, &format!("/v1/oauth-apps/{app_id}")).await;
            assert_eq!(status, 404);
        }
    });
}
