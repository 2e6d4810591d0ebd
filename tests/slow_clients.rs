//! Slow and idle clients cannot hold the server: request heads must arrive in time (on every
//! request of a kept-alive connection), idle kept-alive connections are closed, and at the
//! connection cap new clients wait in the backlog until a slot frees. A request whose head
//! arrived in time is not cut, however long its handler takes.
//!
//! Everything here talks raw HTTP/1.1 over `tokio::net::TcpStream`, to a server started
//! in-process with small limits. Time bounds are generous upper bounds ("closed within 15 s")
//! plus lower bounds the server cannot undercut by design ("not before the timeout").

#[path = "support/fake_provider.rs"]
mod fake_provider;
mod support;

use std::time::Duration;

use dravo::ConnectionLimits;
use dravo::config::ProviderConfig;
use fake_provider::{FakeProvider, Fault, Kind};
use support::{TestApp, spawn_app_limited};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use url::Url;

/// How long any step may take before the test gives up: far above every timeout used here.
const SAFETY: Duration = Duration::from_secs(15);
/// The pause between two dripped header lines.
const DRIP_EVERY: Duration = Duration::from_millis(300);
const GET_HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: dravo.test\r\n\r\n";

fn limits(header_read_ms: u64, idle_ms: u64, max_connections: usize) -> ConnectionLimits {
    ConnectionLimits {
        header_read_timeout: Duration::from_millis(header_read_ms),
        idle_timeout: Duration::from_millis(idle_ms),
        max_connections,
    }
}

async fn connect(app: &TestApp) -> TcpStream {
    let addr = app.base_url.strip_prefix("http://").unwrap();
    TcpStream::connect(addr)
        .await
        .expect("connect to the server")
}

/// Reads one response with a `Content-Length` body; returns head and body as text.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            assert!(
                !head.contains("transfer-encoding"),
                "this helper reads Content-Length bodies only: {head}"
            );
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            if buf.len() >= end + 4 + len {
                return String::from_utf8_lossy(&buf[..end + 4 + len]).into_owned();
            }
        }
        let n = timeout(SAFETY, stream.read(&mut chunk))
            .await
            .expect("a response in time")
            .expect("reading the response");
        assert!(
            n > 0,
            "connection closed mid-response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn status(response: &str) -> u16 {
    assert!(response.starts_with("HTTP/1.1 "), "{response}");
    response[9..12].parse().unwrap()
}

/// One request, answered, leaving the connection kept alive.
async fn healthz_on(stream: &mut TcpStream) {
    stream.write_all(GET_HEALTHZ).await.unwrap();
    let response = read_response(stream).await;
    assert_eq!(status(&response), 200, "{response}");
    assert!(response.contains(r#""status":"ok""#), "{response}");
}

/// Whether the server has closed `stream`: a read returns end of file or an error.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut byte = [0u8; 1];
    match timeout(wait, stream.read(&mut byte)).await {
        Err(_) => false,
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(_)) => panic!("the server sent bytes nobody asked for: {byte:?}"),
    }
}

/// Starts a request head and drips one more header line every `DRIP_EVERY`, never ending
/// the head, until the server closes the connection. Returns how long that took, or `None`
/// if the connection was still open after `SAFETY`.
async fn drip_until_closed(stream: &mut TcpStream) -> Option<Duration> {
    let started = Instant::now();
    let mut line = 0;
    let mut next = b"GET /healthz HTTP/1.1\r\nHost: dravo.test\r\n".to_vec();
    while started.elapsed() < SAFETY {
        if stream.write_all(&next).await.is_err() || closed_within(stream, DRIP_EVERY).await {
            return Some(started.elapsed());
        }
        line += 1;
        next = format!("X-Drip-{line}: {line}\r\n").into_bytes();
    }
    None
}

/// A normal client on its own connection.
async fn assert_healthz_answers(app: &TestApp) {
    let resp = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

#[tokio::test]
async fn a_client_dripping_header_lines_is_cut_after_the_header_timeout() {
    // Idle timeout far away: only the header timeout can close the connection in time.
    let app = spawn_app_limited(limits(1000, 60_000, 8), |_| {}).await;
    let mut slow = connect(&app).await;
    let dripping = tokio::spawn(async move { drip_until_closed(&mut slow).await });

    // Meanwhile other clients are served.
    tokio::time::sleep(DRIP_EVERY).await;
    assert_healthz_answers(&app).await;

    let took = dripping
        .await
        .unwrap()
        .expect("the dripping client is disconnected");
    assert!(
        took >= Duration::from_millis(1000),
        "not before the header timeout: {took:?}"
    );
    assert_healthz_answers(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_kept_alive_connection_dripping_its_next_request_is_cut_after_the_header_timeout() {
    let app = spawn_app_limited(limits(1000, 60_000, 8), |_| {}).await;
    let mut stream = connect(&app).await;
    healthz_on(&mut stream).await;

    let took = drip_until_closed(&mut stream)
        .await
        .expect("the second, dripped request head is cut");
    assert!(
        took >= Duration::from_millis(1000),
        "not before the header timeout: {took:?}"
    );
    assert_healthz_answers(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    // The idle timeout, not the (shorter) header timeout, applies between requests.
    let app = spawn_app_limited(limits(1000, 3000, 8), |_| {}).await;
    let mut stream = connect(&app).await;
    healthz_on(&mut stream).await;
    let idle_since = Instant::now();

    assert!(
        closed_within(&mut stream, SAFETY).await,
        "the idle connection is closed"
    );
    let idle = idle_since.elapsed();
    // The server's idle clock starts when the response leaves it, a little before the
    // client has read it.
    assert!(
        idle >= Duration::from_millis(2500),
        "closed by the idle timeout (3 s), not the header timeout (1 s): {idle:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn at_the_connection_cap_a_new_client_waits_until_a_connection_closes() {
    // Long timeouts: here only a client closing can free a slot.
    let app = spawn_app_limited(limits(60_000, 60_000, 4), |_| {}).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = connect(&app).await;
        healthz_on(&mut stream).await;
        held.push(stream);
    }

    // The kernel completes the handshake (backlog), but the server does not accept it yet.
    let mut waiting = connect(&app).await;
    waiting.write_all(GET_HEALTHZ).await.unwrap();
    let mut byte = [0u8; 1];
    let early = timeout(Duration::from_secs(1), waiting.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "no answer (and no close) while the cap is reached: {early:?}"
    );

    drop(held.remove(0));
    let response = read_response(&mut waiting).await;
    assert_eq!(status(&response), 200, "{response}");

    // The connections still held were not disturbed.
    healthz_on(&mut held[0]).await;
    app.stop().await;
}

#[tokio::test]
async fn at_the_cap_a_new_client_is_served_once_a_slow_client_is_cut() {
    let app = spawn_app_limited(limits(1000, 60_000, 4), |_| {}).await;
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(connect(&app).await);
    }
    let mut waiting = connect(&app).await;
    waiting.write_all(GET_HEALTHZ).await.unwrap();
    let mut byte = [0u8; 1];
    let early = timeout(Duration::from_millis(300), waiting.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "no answer while the silent clients hold every slot: {early:?}"
    );

    let response = read_response(&mut waiting).await;
    assert_eq!(status(&response), 200, "{response}");
    for stream in &mut silent {
        assert!(
            closed_within(stream, SAFETY).await,
            "a silent client is cut"
        );
    }
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// A request in flight is not cut

const CLIENT_ID: &str = "fake-client-id-123";
const CLIENT_SECRET: &str = "fake-client-secret-456";
const RETURN_URL: &str = "https://dash.example.com/connected";

#[tokio::test]
async fn a_request_whose_handler_outlasts_the_timeouts_still_completes() {
    // The callback's token exchange waits 3 s on the provider: longer than both timeouts.
    let provider_delay = Duration::from_secs(3);
    let fake = FakeProvider::start(Kind::X, CLIENT_ID, CLIENT_SECRET).await;
    let app = spawn_app_limited(limits(1000, 1000, 8), |config| {
        let (authorize, token, api) = fake.config_urls();
        config.providers.set(
            "x".parse().unwrap(),
            ProviderConfig {
                authorize_url: Some(Url::parse(&authorize).unwrap()),
                token_url: Some(Url::parse(&token).unwrap()),
                api_base: Some(Url::parse(&api).unwrap()),
                ..Default::default()
            },
        );
        config.dashboard.allowed_return_urls = vec!["https://dash.example.com".into()];
    })
    .await;

    let oauth_app = app
        .create_ok(
            "tenant-alice",
            &serde_json::json!({
                "provider": "x",
                "name": "x app",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            }),
        )
        .await;
    let start = Url::parse_with_params(
        &app.url("/v1/oauth/x/start"),
        [
            ("oauth_app_id", oauth_app["id"].as_str().unwrap()),
            ("return_url", RETURN_URL),
        ],
    )
    .unwrap();
    let resp = app
        .http
        .get(start)
        .bearer_auth(app.token("tenant-alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    let authorize_url = body["authorize_url"].as_str().unwrap();
    let consent = app.http.get(authorize_url).send().await.unwrap();
    assert_eq!(consent.status(), 302, "the fake accepts the authorize URL");
    let callback = Url::parse(consent.headers()["location"].to_str().unwrap()).unwrap();

    fake.set_fault(Fault::TokenDelay(provider_delay));
    let mut stream = connect(&app).await;
    let sent = Instant::now();
    let head = format!(
        "GET {}?{} HTTP/1.1\r\nHost: dravo.test\r\n\r\n",
        callback.path(),
        callback.query().unwrap()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let response = read_response(&mut stream).await;
    let took = sent.elapsed();

    assert_eq!(status(&response), 302, "{response}");
    let location = response
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap_or_else(|| panic!("a Location header: {response}"));
    assert!(
        location.starts_with(RETURN_URL) && location.contains("status=connected"),
        "{location}"
    );
    assert!(
        took >= provider_delay,
        "the answer waited for the provider: {took:?}"
    );
    app.stop().await;
}
