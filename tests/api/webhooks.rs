//! Webhook delivery end to end (README "Webhooks"): an account connected through a fake provider
//! on 127.0.0.1 produces `account.connected`, which the server's sender posts to a receiver
//! on 127.0.0.1 that checks the signature the way the README tells receivers to. Time moves
//! on a `ManualClock`; passes are driven with `Dravo::deliver_due_webhooks` where the test
//! needs to know a pass has run (passes in one process never overlap, so after the call
//! every event due at the clock's time has been attempted).

use crate::support;
use crate::support::fake_provider;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dravo::Config;
use dravo::clock::{Clock, ManualClock};
use dravo::config::ProviderConfig;
use dravo::service::{WebhookEvent, WebhookStatus};
use fake_provider::{FakeProvider, Fault, Kind};
use hmac::{Hmac, KeyInit, Mac};
use poem::listener::TcpAcceptor;
use poem::{Request, Response, Server};
use serde_json::{Value, json};
use sha2::Sha256;
use support::TestApp;
use support::cmd::{dravo, dravo_with};
use url::Url;

const CLIENT_ID: &str = "fake-client-id-123";
const CLIENT_SECRET: &str = "fake-client-secret-456";
const SECRET: &str = "whsec_test_0123456789abcdef";
const RETURN_URL: &str = "https://dash.example.com/connected";
const TENANT: &str = "tenant-alice";
const DAY: i64 = 86_400;

// ---------------------------------------------------------------------------------------------
// The receiver

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    body: String,
    content_type: Option<String>,
    /// The `Dravo-Signature` header as received.
    signature: String,
    event_id: Option<String>,
    attempt: Option<String>,
    /// The signature's `t`.
    t: i64,
    /// The signature matched the body and `t` was within 5 minutes of the receiver's clock.
    valid: bool,
    /// What the receiver answered.
    answered: u16,
}

impl Delivery {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

struct ReceiverState {
    /// The status it answers a valid request with.
    answer: AtomicU16,
    /// While set, it records requests and never answers them (a sender stuck on one).
    hold: AtomicBool,
    got: Mutex<Vec<Delivery>>,
    clock: ManualClock,
}

/// A webhook receiver: a real HTTP server on 127.0.0.1 that verifies `Dravo-Signature` with
/// the shared secret, records every request and answers as told.
struct Receiver {
    url: String,
    state: Arc<ReceiverState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Verifies `t=<t>,v1=<hex>` over `"<t>.<body>"`; returns `t` and whether it holds, and
/// rejects timestamps more than 5 minutes from `now`.
fn verify(header: &str, body: &str, now: i64) -> (i64, bool) {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = Some(value.to_owned()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return (0, false);
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (t, expected == v1 && (now - t).abs() <= 300)
}

impl Receiver {
    async fn start(clock: &ManualClock) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ReceiverState {
            answer: AtomicU16::new(200),
            hold: AtomicBool::new(false),
            got: Mutex::new(Vec::new()),
            clock: clock.clone(),
        });
        let shared = state.clone();
        let endpoint = poem::endpoint::make(move |req: Request| {
            let state = shared.clone();
            async move { receive(state, req).await }
        });
        let acceptor = TcpAcceptor::from_tokio(listener).unwrap();
        let server = tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(endpoint).await;
        });
        Receiver {
            url: format!("http://{addr}/hooks/dravo"),
            state,
            server,
        }
    }

    /// Answers valid requests with `status` from now on.
    fn answer(&self, status: u16) {
        self.state.answer.store(status, Ordering::SeqCst);
    }

    /// With `true`, records the requests that arrive from now on (answered 0) and never
    /// answers them; with `false`, answers again.
    fn hold(&self, hold: bool) {
        self.state.hold.store(hold, Ordering::SeqCst);
    }

    fn got(&self) -> Vec<Delivery> {
        self.state.got.lock().unwrap().clone()
    }

    /// Waits (a few seconds at most) until it has received `n` requests.
    async fn wait_for(&self, n: usize) -> Vec<Delivery> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver got {} requests, not {n}: {got:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(state: Arc<ReceiverState>, mut req: Request) -> poem::Result<Response> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (signature, content_type, event_id, attempt) = (
        header("dravo-signature").unwrap_or_default(),
        header("content-type"),
        header("dravo-event-id"),
        header("dravo-attempt"),
    );
    let body = req.take_body().into_string().await?;
    let (t, valid) = verify(&signature, &body, state.clock.now().unix());
    let held = state.hold.load(Ordering::SeqCst);
    let answered = if held {
        0
    } else if valid {
        state.answer.load(Ordering::SeqCst)
    } else {
        400
    };
    state.got.lock().unwrap().push(Delivery {
        body,
        content_type,
        signature,
        event_id,
        attempt,
        t,
        valid,
        answered,
    });
    if held {
        std::future::pending::<()>().await;
    }
    Ok(Response::builder()
        .status(poem::http::StatusCode::from_u16(answered).unwrap())
        .finish())
}

// ---------------------------------------------------------------------------------------------
// Dravo, a fake provider, and the connect flow

/// `providers.<the fake's kind>` pointing at the fake as the default app, the dashboard's
/// return URL allowed, and webhooks posted to `webhook_url`.
fn configure(config: &mut Config, fake: &FakeProvider, webhook_url: &str) {
    let (authorize, token, api) = fake.config_urls();
    *config.providers.entry(fake.kind.as_str().parse().unwrap()) = ProviderConfig {
        authorize_url: Some(Url::parse(&authorize).unwrap()),
        token_url: Some(Url::parse(&token).unwrap()),
        api_base: Some(Url::parse(&api).unwrap()),
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(secrecy::SecretString::from(CLIENT_SECRET.to_owned())),
        ..Default::default()
    };
    config.dashboard.allowed_return_urls = vec!["https://dash.example.com".into()];
    config.webhooks.url = Some(Url::parse(webhook_url).unwrap());
    config.webhooks.secret = Some(secrecy::SecretString::from(SECRET.to_owned()));
}

struct Setup {
    app: TestApp,
    fake: FakeProvider,
    receiver: Receiver,
    clock: ManualClock,
}

async fn setup() -> Setup {
    let clock = ManualClock::starting_now();
    let fake = FakeProvider::start(Kind::Linkedin, CLIENT_ID, CLIENT_SECRET).await;
    let receiver = Receiver::start(&clock).await;
    let app = support::spawn_app_with_clock(
        |c| configure(c, &fake, &receiver.url),
        Arc::new(clock.clone()),
    )
    .await;
    Setup {
        app,
        fake,
        receiver,
        clock,
    }
}

/// Like `setup`, for a fake of `kind`, with the background refresher off (the test runs
/// its passes) and `tweak` applied to the configuration.
async fn setup_for(kind: Kind, tweak: impl FnOnce(&mut Config)) -> Setup {
    let clock = ManualClock::starting_now();
    let fake = FakeProvider::start(kind, CLIENT_ID, CLIENT_SECRET).await;
    let receiver = Receiver::start(&clock).await;
    let app = support::spawn_app_with_clock(
        |c| {
            configure(c, &fake, &receiver.url);
            c.refresh.background = false;
            tweak(c);
        },
        Arc::new(clock.clone()),
    )
    .await;
    Setup {
        app,
        fake,
        receiver,
        clock,
    }
}

/// start → the fake's consent → Dravo's callback; returns the new account's id.
async fn connect(app: &TestApp) -> String {
    connect_to(app, Kind::Linkedin, None).await
}

/// `connect` for a provider of `kind`, with the BYOK app `oauth_app_id` if given.
async fn connect_to(app: &TestApp, kind: Kind, oauth_app_id: Option<&str>) -> String {
    let mut params = vec![("return_url", RETURN_URL)];
    if let Some(id) = oauth_app_id {
        params.push(("oauth_app_id", id));
    }
    let start = Url::parse_with_params(
        &app.url(&format!("/v1/oauth/{}/start", kind.as_str())),
        &params,
    )
    .unwrap();
    let resp = app
        .http
        .get(start)
        .bearer_auth(app.token(TENANT))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let authorize = body["authorize_url"].as_str().unwrap().to_owned();
    let consent = app.http.get(authorize).send().await.unwrap();
    assert_eq!(consent.status(), 302, "the fake's consent");
    let callback = location(&consent);
    let done = app.http.get(callback).send().await.unwrap();
    assert_eq!(done.status(), 302, "Dravo's callback");
    let back = location(&done);
    back.query_pairs()
        .find(|(k, _)| k == "account_id")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no account_id in {back}"))
}

fn location(resp: &reqwest::Response) -> Url {
    Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap()
}

/// Every event of the outbox, newest first.
async fn outbox(app: &TestApp) -> Vec<WebhookEvent> {
    app.dravo.list_webhooks(None, 100).await.unwrap()
}

/// The one event of the outbox.
async fn only_event(app: &TestApp) -> WebhookEvent {
    let events = outbox(app).await;
    assert_eq!(events.len(), 1, "{events:?}");
    events.into_iter().next().unwrap()
}

/// Runs a pass; afterwards every event due at the clock's time has been attempted (by this
/// pass or by the server's sender, whose pass this one waits for).
async fn pass(app: &TestApp) {
    app.dravo.deliver_due_webhooks().await.unwrap();
}

/// The stored body of an event, as the outbox holds it.
fn stored_body(app: &TestApp, id: &str) -> String {
    support::Db::open(&app.db_path())
        .value(
            "SELECT body FROM webhook_outbox WHERE id = ?1",
            &[id.into()],
        )
        .text()
}

/// The account as the API shows it.
async fn account_json(app: &TestApp, id: &str) -> Value {
    let resp = app.get_as(TENANT, &format!("/v1/accounts/{id}")).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// An RFC 3339 timestamp as unix seconds.
fn unix(value: &Value) -> i64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {value}"));
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

impl Setup {
    fn set_clock(&self, unix: i64) {
        self.clock.set(dravo::domain::Timestamp::from_unix(unix));
    }

    /// Moves the clock to `seconds` before the account's stored token expires.
    async fn near_expiry(&self, id: &str, seconds: i64) {
        let expires = unix(&account_json(&self.app, id).await["expires_at"]);
        self.set_clock(expires - seconds);
    }

    async fn access_token(&self, id: &str) -> reqwest::Response {
        self.app
            .get_as(TENANT, &format!("/v1/accounts/{id}/access-token"))
            .await
    }

    /// A refresher pass, then a sender pass.
    async fn tend_and_send(&self) {
        self.app.dravo.tend_due_accounts().await.unwrap();
        pass(&self.app).await;
    }

    /// The types of the events the receiver got, in arrival order.
    fn types(&self) -> Vec<String> {
        self.receiver
            .got()
            .iter()
            .map(|d| d.json()["type"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The deliveries of type `kind`, in arrival order.
    fn got_of(&self, kind: &str) -> Vec<Delivery> {
        self.receiver
            .got()
            .into_iter()
            .filter(|d| d.json()["type"] == kind)
            .collect()
    }

    /// No body the receiver got holds a token the fake issued, a code, or a secret, nor a
    /// token field.
    fn assert_no_secrets(&self) {
        let got = self.receiver.got();
        assert!(!got.is_empty());
        let issued_access = self.fake.issued_access_tokens();
        let issued_refresh = self.fake.issued_refresh_tokens();
        assert!(!issued_access.is_empty());
        for d in &got {
            for secret in issued_access
                .iter()
                .chain(&issued_refresh)
                .chain(&self.fake.issued_codes())
                .map(String::as_str)
                .chain([CLIENT_SECRET, SECRET])
            {
                assert!(!d.body.contains(secret), "{secret} leaked in {}", d.body);
            }
            assert!(
                !d.body.contains("\"access_token\"") && !d.body.contains("\"refresh_token\""),
                "{}",
                d.body
            );
        }
    }
}

/// A delivery the receiver verified, whose `Dravo-Event-Id` is its body's id, about the
/// account `account_id` of `TENANT`; returns its body.
fn account_event(d: &Delivery, kind: &str, account_id: &str) -> Value {
    assert!(d.valid, "the signature verifies: {d:?}");
    assert_eq!(d.answered, 200);
    let body = d.json();
    assert_eq!(body["type"], kind, "{body}");
    assert_eq!(d.event_id.as_deref(), body["id"].as_str());
    assert_eq!(d.attempt.as_deref(), Some("1"));
    assert_eq!(body["owner"], TENANT);
    assert_eq!(body["account"]["id"], account_id, "{body}");
    assert!(body["account"]["provider"].is_string(), "{body}");
    body
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn connecting_an_account_posts_a_signed_account_connected_without_any_token() {
    let s = setup().await;
    let account_id = connect(&s.app).await;

    // The server's own sender delivers it.
    let got = s.receiver.wait_for(1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let d = &got[0];
    assert!(
        d.valid,
        "the signature verifies with the shared secret: {d:?}"
    );
    assert_eq!(d.t, s.clock.now().unix(), "signed at the core's time");
    assert_eq!(d.content_type.as_deref(), Some("application/json"));
    assert_eq!(d.attempt.as_deref(), Some("1"));
    let body = d.json();
    assert_eq!(
        d.event_id.as_deref(),
        body["id"].as_str(),
        "Dravo-Event-Id is the body's id"
    );
    assert!(body["id"].as_str().unwrap().starts_with("evt_"), "{body}");
    assert_eq!(body["type"], "account.connected");
    assert_eq!(body["owner"], TENANT);
    assert_eq!(body["account"]["id"], account_id.as_str());
    assert_eq!(body["account"]["provider"], "linkedin");
    assert_eq!(body["account"]["status"], "active");
    assert!(body["created_at"].is_string());
    assert_eq!(
        d.body,
        stored_body(&s.app, body["id"].as_str().unwrap()),
        "the stored body, byte for byte"
    );

    // Never a token or a secret.
    let issued = s.fake.issued_access_tokens();
    assert!(!issued.is_empty());
    for secret in issued
        .iter()
        .chain(&s.fake.issued_refresh_tokens())
        .chain(&s.fake.issued_codes())
        .map(String::as_str)
        .chain([CLIENT_SECRET, SECRET])
    {
        assert!(!d.body.contains(secret), "{secret} leaked in {}", d.body);
    }
    assert!(!d.body.contains("access_token") && !d.body.contains("refresh_token"));

    // Recorded as delivered (once the sender's pass, which the receiver's answer ends, has
    // finished: `wait_for` returns as soon as the request arrives), and sent once.
    pass(&s.app).await;
    let event = only_event(&s.app).await;
    assert_eq!(event.status, WebhookStatus::Delivered);
    assert_eq!(event.attempts, 1);
    assert_eq!(event.delivered_at, Some(s.clock.now()));
    assert_eq!(event.next_attempt_at, None);
    pass(&s.app).await;
    assert_eq!(
        s.receiver.got().len(),
        1,
        "a delivered event is not sent again"
    );
}

#[tokio::test]
async fn events_stay_pending_while_the_receiver_fails_and_arrive_in_order_once_it_answers() {
    let s = setup().await;
    s.receiver.answer(500);
    let account_id = connect(&s.app).await;
    pass(&s.app).await;

    let event = only_event(&s.app).await;
    assert_eq!(event.status, WebhookStatus::Pending);
    assert_eq!(event.attempts, 1);
    assert_eq!(
        event.last_error.as_deref(),
        Some("the receiver answered HTTP 500 Internal Server Error")
    );
    let now = s.clock.now().unix();
    let next = event.next_attempt_at.unwrap().unix();
    assert!(
        (now + 10..=now + 12).contains(&next),
        "first backoff 10 s (+ jitter): {next} vs {now}"
    );

    // Not due yet: nothing is sent.
    pass(&s.app).await;
    assert_eq!(s.receiver.got().len(), 1);
    assert_eq!(only_event(&s.app).await.attempts, 1);

    // Due: the second attempt, then a backoff of 20 s.
    s.clock.advance(13);
    pass(&s.app).await;
    let event = only_event(&s.app).await;
    assert_eq!((event.status, event.attempts), (WebhookStatus::Pending, 2));
    let now = s.clock.now().unix();
    let next = event.next_attempt_at.unwrap().unix();
    assert!(
        (now + 20..=now + 25).contains(&next),
        "second backoff 20 s (+ jitter)"
    );

    // Deleting the account while the receiver is down queues `account.deleted` behind it.
    let resp = s
        .app
        .delete_as(TENANT, &format!("/v1/accounts/{account_id}"))
        .await;
    assert!(resp.status().is_success(), "delete: {}", resp.status());
    pass(&s.app).await;

    // The receiver is back: both arrive, oldest first.
    s.receiver.answer(200);
    s.clock.advance(3600);
    pass(&s.app).await;
    let events = outbox(&s.app).await;
    assert_eq!(events.len(), 2);
    assert!(
        events.iter().all(|e| e.status == WebhookStatus::Delivered),
        "{events:?}"
    );
    let delivered: Vec<Delivery> = s
        .receiver
        .got()
        .into_iter()
        .filter(|d| d.answered == 200)
        .collect();
    let kinds: Vec<String> = delivered
        .iter()
        .map(|d| d.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["account.connected", "account.deleted"]);
    assert!(delivered.iter().all(|d| d.valid));
    assert_eq!(delivered[0].attempt.as_deref(), Some("3"));
    assert_eq!(delivered[1].attempt.as_deref(), Some("2"));
    assert_eq!(delivered[1].json()["account"]["id"], account_id.as_str());
    // Every attempt of the first event carried its id.
    let first_id = events[1].id.clone();
    let attempts_of_first: Vec<Option<String>> = s
        .receiver
        .got()
        .iter()
        .filter(|d| d.event_id.as_deref() == Some(first_id.as_str()))
        .map(|d| d.attempt.clone())
        .collect();
    assert_eq!(
        attempts_of_first,
        [Some("1".into()), Some("2".into()), Some("3".into())]
    );
}

#[tokio::test]
async fn an_event_no_receiver_took_is_delivered_by_the_next_server_after_a_restart() {
    let clock = ManualClock::starting_now();
    let fake = FakeProvider::start(Kind::Linkedin, CLIENT_ID, CLIENT_SECRET).await;
    // A port nothing listens on: every attempt is refused.
    let closed: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let first = support::spawn_app_with_clock(
        |c| configure(c, &fake, &format!("http://{closed}/hooks")),
        Arc::new(clock.clone()),
    )
    .await;
    connect(&first).await;
    pass(&first).await;
    let event = only_event(&first).await;
    assert_eq!((event.status, event.attempts), (WebhookStatus::Pending, 1));
    assert!(
        event
            .last_error
            .as_deref()
            .unwrap()
            .starts_with("cannot connect to the receiver"),
        "{event:?}"
    );
    let dir = first.stop().await;

    // A new server on the same database, an hour later, with a receiver that answers.
    clock.advance(3600);
    let receiver = Receiver::start(&clock).await;
    let mut config = support::test_config(dir.path());
    configure(&mut config, &fake, &receiver.url);
    let second = support::spawn_app_in_with_clock(dir, config, Arc::new(clock.clone())).await;
    let got = receiver.wait_for(1).await;
    assert!(got[0].valid);
    assert_eq!(got[0].event_id.as_deref(), Some(event.id.as_str()));
    assert_eq!(got[0].attempt.as_deref(), Some("2"));
    assert_eq!(got[0].json()["type"], "account.connected");
    let deadline = Instant::now() + Duration::from_secs(5);
    while only_event(&second).await.status != WebhookStatus::Delivered {
        assert!(Instant::now() < deadline, "not marked delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    second.stop().await;
}

#[tokio::test]
async fn an_event_failing_for_24_hours_is_failed_until_webhooks_retry_sends_it_again() {
    let s = setup().await;
    s.receiver.answer(500);
    connect(&s.app).await;
    pass(&s.app).await;
    let id = only_event(&s.app).await.id;

    // A day later the last try fails too: given up.
    s.clock.advance(DAY);
    pass(&s.app).await;
    let event = only_event(&s.app).await;
    assert_eq!(event.status, WebhookStatus::Failed);
    assert_eq!(event.attempts, 2);
    assert_eq!(event.next_attempt_at, None);
    assert!(event.last_error.as_deref().unwrap().contains("HTTP 500"));
    s.clock.advance(3600);
    pass(&s.app).await;
    assert_eq!(
        s.receiver.got().len(),
        2,
        "a failed event is not tried again by itself"
    );

    // The operator's view.
    let dir = s.app.dir.path();
    let out = dravo(dir, &["webhooks", "list"]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    for column in [
        "ID",
        "TYPE",
        "STATUS",
        "ATTEMPTS",
        "NEXT ATTEMPT",
        "LAST ERROR",
        "CREATED",
    ] {
        assert!(lines[0].contains(column), "{}", lines[0]);
    }
    for cell in [
        id.as_str(),
        "account.connected",
        "failed",
        " 2 ",
        "HTTP 500",
    ] {
        assert!(lines[1].contains(cell), "{cell} in {}", lines[1]);
    }
    let json = dravo(dir, &["webhooks", "list", "--status", "failed", "--json"]);
    json.assert_success();
    let listed = json.json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["type"], "account.connected");
    assert_eq!(listed[0]["owner"], TENANT);
    assert_eq!(listed[0]["status"], "failed");
    assert_eq!(listed[0]["attempts"], 2);
    assert!(listed[0].get("body").is_none(), "never the body: {listed}");
    let none = dravo(dir, &["webhooks", "list", "--status", "pending"]);
    assert_eq!(none.assert_success().stdout, "no webhook events\n");

    // Retried by the operator once the receiver answers again: sent with the next attempt
    // number and delivered.
    s.receiver.answer(200);
    let retried = dravo(dir, &["webhooks", "retry", &id]);
    retried.assert_success();
    assert!(retried.stdout.contains(&id), "{}", retried.stdout);
    assert_eq!(only_event(&s.app).await.status, WebhookStatus::Pending);
    pass(&s.app).await;
    let event = only_event(&s.app).await;
    assert_eq!(
        (event.status, event.attempts),
        (WebhookStatus::Delivered, 3)
    );
    let last = s.receiver.got().pop().unwrap();
    assert!(last.valid);
    assert_eq!(last.attempt.as_deref(), Some("3"));
    assert_eq!(last.event_id.as_deref(), Some(id.as_str()));

    let delivered = dravo(
        dir,
        &["webhooks", "list", "--status", "delivered", "--json"],
    );
    assert_eq!(delivered.assert_success().json()[0]["status"], "delivered");
    // A delivered event is not sent again by a retry.
    dravo(dir, &["webhooks", "retry", &id]).assert_runtime_error();
}

#[tokio::test]
async fn webhooks_retry_refuses_unknown_and_malformed_ids_and_list_a_bad_status() {
    let s = setup().await;
    let dir = s.app.dir.path();
    let unknown = dravo(dir, &["webhooks", "retry", "evt_aaaaaaaaaaaaaaaaaaaa"]);
    unknown.assert_runtime_error();
    assert!(
        unknown
            .stderr
            .contains("no webhook event evt_aaaaaaaaaaaaaaaaaaaa"),
        "{}",
        unknown.stderr
    );
    dravo(dir, &["webhooks", "retry", "acc_nope"]).assert_usage_error();
    dravo(dir, &["webhooks", "list", "--status", "lost"]).assert_usage_error();
    let empty = dravo(dir, &["webhooks", "list"]);
    assert_eq!(empty.assert_success().stdout, "no webhook events\n");
}

/// The first ```python block of README's "Webhooks" section.
fn readme_python_verifier() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("\n## Webhooks\n").expect("a Webhooks section")..];
    let start = section.find("```python\n").expect("a Python snippet") + "```python\n".len();
    let len = section[start..].find("```").unwrap();
    section[start..start + len].to_owned()
}

#[tokio::test]
async fn readmes_python_verifier_accepts_a_delivered_event_and_rejects_a_tampered_one() {
    let python = std::process::Command::new("python3")
        .arg("--version")
        .output();
    if !python.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var("DRAVO_REQUIRE_PYTHON").as_deref() != Ok("1"),
            "python3 not found, and DRAVO_REQUIRE_PYTHON=1"
        );
        println!("skipped: python3 not found (set DRAVO_REQUIRE_PYTHON=1 to make this a failure)");
        return;
    }
    let s = setup().await;
    connect(&s.app).await;
    let d = s.receiver.wait_for(1).await.remove(0);
    assert!(d.valid);

    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "{}\nimport sys\nbody = open(sys.argv[1], 'rb').read()\nprint(verify_dravo(sys.argv[2], body, sys.argv[3]))\n",
        readme_python_verifier()
    );
    let check = |body: &str, secret: &str, header: &str| -> String {
        let file = dir.path().join("body.json");
        std::fs::write(&file, body).unwrap();
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(&script)
            .arg(&file)
            .arg(secret)
            .arg(header)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    assert_eq!(check(&d.body, SECRET, &d.signature), "True", "{d:?}");
    let tampered = d.body.replace("account.connected", "account.deleted");
    assert_eq!(check(&tampered, SECRET, &d.signature), "False");
    assert_eq!(
        check(&d.body, "another-secret-0123456789", &d.signature),
        "False"
    );
    // Signed (correctly) ten minutes ago: a replay.
    let old = d.t - 600;
    let stale = dravo::service::webhook_signature(SECRET.as_bytes(), old, &d.body);
    assert_eq!(check(&d.body, SECRET, &stale), "False");
}

#[tokio::test]
async fn an_outage_posts_account_refresh_failed_per_attempt_then_account_recovered() {
    let s = setup_for(Kind::Linkedin, |_| {}).await;
    let id = connect(&s.app).await;
    pass(&s.app).await;
    assert_eq!(s.types(), ["account.connected"]);

    // The provider answers 503: the caller still gets the stored token (it is valid).
    s.fake.set_fault(Fault::TokenStatus(503));
    s.near_expiry(&id, 100).await;
    assert_eq!(s.access_token(&id).await.status(), 200);
    pass(&s.app).await;
    assert_eq!(s.types(), ["account.connected", "account.refresh_failed"]);
    let body = account_event(
        &s.got_of("account.refresh_failed")[0],
        "account.refresh_failed",
        &id,
    );
    assert_eq!(body["account"]["status"], "active", "{body}");
    let detail = &body["detail"];
    // The provider's own error and description, though it failed on its side.
    assert_eq!(detail["error"], "server_error", "{body}");
    assert_eq!(
        detail["error_description"], "fake: forced failure (temporarily unavailable, retry later)",
        "{body}"
    );
    assert_eq!(detail["failure"], "transient", "{body}");
    assert_eq!(detail["attempt"], 1);
    assert_eq!(detail["blame"], "account");
    assert_eq!(detail["trigger"], "request");
    let now = s.clock.now().unix();
    let next = unix(&detail["next_attempt_at"]);
    assert!(
        (now + 60..=now + 72).contains(&next),
        "a minute's backoff (+ jitter): {next} vs {now}"
    );

    // The refresher's try when the backoff ends fails too: attempt 2, twice the wait.
    s.set_clock(next);
    s.tend_and_send().await;
    let failed = s.got_of("account.refresh_failed");
    assert_eq!(failed.len(), 2, "{:?}", s.types());
    let body = account_event(&failed[1], "account.refresh_failed", &id);
    assert_eq!(body["account"]["status"], "active");
    assert_eq!(body["detail"]["attempt"], 2);
    assert_eq!(body["detail"]["trigger"], "background");
    let now = s.clock.now().unix();
    let next = unix(&body["detail"]["next_attempt_at"]);
    assert!((now + 120..=now + 144).contains(&next), "{next} vs {now}");

    // Back: the next refresh works, and that is `account.recovered` (a routine refresh is
    // not posted).
    s.fake.set_fault(Fault::None);
    s.set_clock(next);
    s.tend_and_send().await;
    assert_eq!(
        s.types(),
        [
            "account.connected",
            "account.refresh_failed",
            "account.refresh_failed",
            "account.recovered"
        ]
    );
    let body = account_event(&s.got_of("account.recovered")[0], "account.recovered", &id);
    assert_eq!(body["account"]["status"], "active");
    assert_eq!(body["detail"]["via"], "refresh");
    assert_eq!(body["detail"]["after_failures"], 2);
    assert_eq!(
        unix(&body["account"]["expires_at"]),
        s.clock.now().unix() + 60 * DAY,
        "the account as renewed: {body}"
    );
    s.assert_no_secrets();
}

#[tokio::test]
async fn a_refused_refresh_token_posts_refresh_failed_and_account_needs_reauth_once() {
    let s = setup_for(Kind::Linkedin, |_| {}).await;
    let id = connect(&s.app).await;
    // Delivered before the clock moves, so that its signature's time is the receiver's.
    pass(&s.app).await;
    s.fake.invalidate_refresh_tokens();
    s.near_expiry(&id, 30).await;
    support::assert_error(s.access_token(&id).await, 409, "needs_reauth").await;
    pass(&s.app).await;
    assert_eq!(
        s.types(),
        [
            "account.connected",
            "account.refresh_failed",
            "account.needs_reauth"
        ]
    );
    let got = s.receiver.got();
    let failed = account_event(&got[1], "account.refresh_failed", &id);
    assert_eq!(failed["detail"]["error"], "invalid_grant", "{failed}");
    assert!(
        failed["detail"]["error_description"]
            .as_str()
            .unwrap()
            .contains("invalid, expired or revoked"),
        "the provider's description: {failed}"
    );
    assert_eq!(failed["detail"]["attempt"], 1);
    assert_eq!(
        failed["detail"]["next_attempt_at"],
        Value::Null,
        "never retried"
    );
    assert_eq!(failed["account"]["status"], "needs_reauth");
    let reauth = account_event(&got[2], "account.needs_reauth", &id);
    assert_eq!(reauth["account"]["status"], "needs_reauth");
    let reason = reauth["detail"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("invalid_grant"), "{reauth}");
    assert_eq!(reauth["account"]["status_reason"], reason);

    // Posted once: more requests and a day of the refresher add nothing.
    support::assert_error(s.access_token(&id).await, 409, "needs_reauth").await;
    s.clock.advance(DAY);
    s.tend_and_send().await;
    assert_eq!(s.receiver.got().len(), 3, "{:?}", s.types());
    s.assert_no_secrets();
}

#[tokio::test]
async fn a_facebook_deadline_within_warn_days_posts_account_expiring_once_then_needs_reauth() {
    // warn_days from the configuration, not the default 7.
    let s = setup_for(Kind::Facebook, |c| c.refresh.warn_days = 10).await;
    let id = connect_to(&s.app, Kind::Facebook, None).await;
    pass(&s.app).await;
    let account = account_json(&s.app, &id).await;
    let by = unix(&account["reauth_by"]);
    assert_eq!(by, unix(&account["expires_at"]), "{account}");
    assert_eq!(by, s.clock.now().unix() + 60 * DAY);

    s.set_clock(by - 10 * DAY - 60);
    s.tend_and_send().await;
    assert_eq!(s.types(), ["account.connected"]);
    s.set_clock(by - 10 * DAY + 60);
    s.tend_and_send().await;
    s.tend_and_send().await;
    assert_eq!(s.types(), ["account.connected", "account.expiring"]);
    let body = account_event(&s.receiver.got()[1], "account.expiring", &id);
    assert_eq!(body["account"]["status"], "expiring", "{body}");
    assert_eq!(unix(&body["account"]["reauth_by"]), by);
    assert_eq!(unix(&body["detail"]["reauth_by"]), by);

    // Once: a minute before the deadline nothing more; at it, `account.needs_reauth`.
    s.set_clock(by - 60);
    s.tend_and_send().await;
    assert_eq!(s.receiver.got().len(), 2, "{:?}", s.types());
    s.set_clock(by);
    s.tend_and_send().await;
    assert_eq!(
        s.types(),
        [
            "account.connected",
            "account.expiring",
            "account.needs_reauth"
        ]
    );
    let body = account_event(&s.receiver.got()[2], "account.needs_reauth", &id);
    assert_eq!(body["account"]["status"], "needs_reauth", "{body}");
    s.assert_no_secrets();
}

#[tokio::test]
async fn refused_app_credentials_post_app_credentials_invalid_once_with_the_app_not_its_secret() {
    let s = setup_for(Kind::Linkedin, |_| {}).await;
    let app = s
        .app
        .create_ok(
            TENANT,
            &json!({"provider": "linkedin", "name": "Mine", "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET}),
        )
        .await;
    let app_id = app["id"].as_str().unwrap().to_owned();
    let id = connect_to(&s.app, Kind::Linkedin, Some(&app_id)).await;
    pass(&s.app).await;
    assert_eq!(s.types(), ["account.connected"]);

    // The provider refuses the app's secret: the stored token (still valid) is handed out.
    s.fake.set_fault(Fault::TokenStatus(401));
    s.near_expiry(&id, 10).await;
    assert_eq!(s.access_token(&id).await.status(), 200);
    pass(&s.app).await;
    let mut types = s.types();
    types.sort();
    assert_eq!(
        types,
        [
            "account.connected",
            "account.refresh_failed",
            "app.credentials_invalid"
        ]
    );
    let invalid = s.got_of("app.credentials_invalid").remove(0);
    assert!(invalid.valid, "{invalid:?}");
    assert_eq!(invalid.answered, 200);
    let body = invalid.json();
    assert_eq!(invalid.event_id.as_deref(), body["id"].as_str());
    assert_eq!(body["owner"], TENANT);
    assert_eq!(body["app"]["id"], app_id.as_str(), "{body}");
    assert_eq!(body["app"]["client_id"], CLIENT_ID);
    assert!(
        body["app"]["credentials_error"]
            .as_str()
            .unwrap()
            .starts_with("invalid_client"),
        "{body}"
    );
    assert!(body.get("account").is_none(), "{body}");
    assert_eq!(body["detail"]["error"], "invalid_client");
    assert_eq!(body["detail"]["account_id"], id.as_str());
    let failed = account_event(
        &s.got_of("account.refresh_failed")[0],
        "account.refresh_failed",
        &id,
    );
    assert_eq!(failed["detail"]["blame"], "app", "{failed}");
    assert_eq!(failed["account"]["status"], "active");
    assert_eq!(failed["account"]["oauth_app_id"], app_id.as_str());

    // After the hour's cooldown the refresher tries again and is refused again: another
    // `account.refresh_failed`, but the app is not reported twice.
    s.set_clock(unix(&failed["detail"]["next_attempt_at"]));
    s.tend_and_send().await;
    assert_eq!(
        s.got_of("account.refresh_failed").len(),
        2,
        "{:?}",
        s.types()
    );
    assert_eq!(s.got_of("app.credentials_invalid").len(), 1);
    let shown: Value = s
        .app
        .get_as(TENANT, &format!("/v1/oauth-apps/{app_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(shown["credentials_error"].is_string(), "{shown}");
    s.assert_no_secrets();
}

// ---------------------------------------------------------------------------------------------
// Events recorded by processes that send none

/// How long a sender's claim on an event runs unless it renews it (README, Guarantees).
const CLAIM_SECONDS: i64 = 5;

#[tokio::test]
async fn account_recovered_by_a_cli_refresh_without_a_webhook_url_is_sent_signed_by_the_server() {
    let s = setup_for(Kind::Linkedin, |_| {}).await;
    // The server's clock runs an hour behind the CLI's (the system's): the cooldown after the
    // failure below is over for the CLI.
    s.clock.advance(-3600);
    let id = connect(&s.app).await;
    pass(&s.app).await;
    // A forced refresh on the server fails (the provider answers 503), and says so.
    s.fake.set_fault(Fault::TokenStatus(503));
    let forced = s
        .app
        .get_as(
            TENANT,
            &format!("/v1/accounts/{id}/access-token?force_refresh=true"),
        )
        .await;
    assert_eq!(forced.status(), 502);
    pass(&s.app).await;
    assert_eq!(s.types(), ["account.connected", "account.refresh_failed"]);

    // The provider is back, and the account is refreshed by `dravo accounts refresh`: another
    // process, configured (by its environment) with the provider and no webhook URL or secret.
    s.fake.set_fault(Fault::None);
    let (authorize, token, api) = s.fake.config_urls();
    let dir = s.app.dir.path().to_owned();
    assert!(!dir.join("dravo.toml").exists(), "no configuration file");
    let account = id.clone();
    // Off the test's runtime, which serves the fake provider meanwhile.
    let out = tokio::task::spawn_blocking(move || {
        dravo_with(
            &dir,
            &[
                ("DRAVO_PROVIDERS_LINKEDIN_AUTHORIZE_URL", &authorize),
                ("DRAVO_PROVIDERS_LINKEDIN_TOKEN_URL", &token),
                ("DRAVO_PROVIDERS_LINKEDIN_API_BASE", &api),
                ("DRAVO_PROVIDERS_LINKEDIN_CLIENT_ID", CLIENT_ID),
                ("DRAVO_PROVIDERS_LINKEDIN_CLIENT_SECRET", CLIENT_SECRET),
            ],
            &["accounts", "refresh", "--owner", TENANT, &account, "--json"],
            "",
        )
    })
    .await
    .unwrap();
    out.assert_success().assert_hides(CLIENT_SECRET);
    assert_eq!(out.json()["status"], "active", "{}", out.stdout);

    // The CLI recorded `account.recovered` in the outbox; the server, which has the URL and
    // the secret, sends it, signed (once due on its clock).
    let recorded = outbox(&s.app).await;
    assert_eq!(recorded[0].kind, "account.recovered", "{recorded:?}");
    assert_eq!(recorded[0].status, WebhookStatus::Pending);
    s.clock.advance(2 * 3600);
    pass(&s.app).await;
    assert_eq!(
        s.types(),
        [
            "account.connected",
            "account.refresh_failed",
            "account.recovered"
        ]
    );
    let d = s.got_of("account.recovered").remove(0);
    let body = account_event(&d, "account.recovered", &id);
    assert_eq!(d.event_id.as_deref(), Some(recorded[0].id.as_str()));
    assert_eq!(body["detail"]["via"], "refresh", "{body}");
    assert_eq!(body["detail"]["after_failures"], 1, "{body}");
    assert_eq!(body["account"]["status"], "active");
    let event = outbox(&s.app).await.remove(0);
    assert_eq!(
        (event.status, event.attempts),
        (WebhookStatus::Delivered, 1)
    );
    s.assert_no_secrets();
}

#[tokio::test]
async fn without_any_webhook_url_events_are_recorded_then_failed_after_24_hours_and_a_retry_sends_one()
 {
    let clock = ManualClock::starting_now();
    let fake = FakeProvider::start(Kind::Linkedin, CLIENT_ID, CLIENT_SECRET).await;
    let no_url = |c: &mut Config| {
        configure(c, &fake, "http://127.0.0.1:9/unused");
        c.webhooks.url = None;
        c.webhooks.secret = None;
        c.refresh.background = false;
    };
    let app = support::spawn_app_with_clock(no_url, Arc::new(clock.clone())).await;
    connect(&app).await;

    // Recorded, though nothing here sends it; and this server reports no backlog of its own.
    let event = only_event(&app).await;
    assert_eq!(event.kind, "account.connected");
    assert_eq!((event.status, event.attempts), (WebhookStatus::Pending, 0));
    assert_eq!(app.dravo.deliver_due_webhooks().await.unwrap(), 0);
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "dravo_webhook_outbox_pending 0",
        "dravo_webhook_outbox_oldest_pending_age_seconds 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }

    // Within its 24 hours a server with the URL may still come and send it.
    clock.advance(DAY - 1);
    assert_eq!(app.dravo.give_up_unsent_webhooks().await.unwrap(), 0);
    assert_eq!(only_event(&app).await.status, WebhookStatus::Pending);
    // Then it is given up, saying why, and not again.
    clock.advance(1);
    assert_eq!(app.dravo.give_up_unsent_webhooks().await.unwrap(), 1);
    let failed = only_event(&app).await;
    assert_eq!(failed.id, event.id);
    assert_eq!((failed.status, failed.attempts), (WebhookStatus::Failed, 0));
    assert_eq!(failed.next_attempt_at, None);
    assert_eq!(
        failed.last_error.as_deref(),
        Some("not sent: no server with webhooks.url took it within 24 hours")
    );
    assert_eq!(app.dravo.give_up_unsent_webhooks().await.unwrap(), 0);

    // The operator sets the URL and retries it: a server with the URL sends it, and the
    // server without leaves it alone meanwhile (it has an hour).
    let dir = app.dir.path();
    let id = dravo::domain::EventId::parse(&event.id).unwrap();
    assert_eq!(
        app.dravo.retry_webhook(&id).await.unwrap().status,
        WebhookStatus::Pending
    );
    assert_eq!(app.dravo.give_up_unsent_webhooks().await.unwrap(), 0);
    let receiver = Receiver::start(&clock).await;
    let mut config = support::test_config(dir);
    configure(&mut config, &fake, &receiver.url);
    config.refresh.background = false;
    let sender = dravo::Dravo::open_with_clock(config, None, Arc::new(clock.clone()))
        .await
        .unwrap();
    assert_eq!(sender.deliver_due_webhooks().await.unwrap(), 1);
    let got = receiver.got();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].valid, "{:?}", got[0]);
    assert_eq!(got[0].event_id.as_deref(), Some(event.id.as_str()));
    assert_eq!(got[0].attempt.as_deref(), Some("1"));
    assert_eq!(only_event(&app).await.status, WebhookStatus::Delivered);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Claims

/// The claim on the one event of the outbox: its holder and when it runs out.
fn claim_on(dir: &std::path::Path) -> (Option<String>, Option<i64>) {
    let row = support::Db::open(&dir.join("dravo.db"))
        .row("SELECT claimed_by, claimed_until FROM webhook_outbox", &[]);
    (row[0].opt_text(), row[1].opt_int())
}

/// Waits (a few seconds at most) until the claim on the one event runs out at `until`.
async fn wait_for_claim_until(dir: &std::path::Path, until: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, claimed_until) = claim_on(dir);
        if claimed_until == Some(until) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the claim was not renewed to {until}: {claimed_until:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_renewed_claim_is_not_taken_over_and_a_dead_senders_claim_is_within_five_seconds() {
    // Sender A is the server's own sender; B is a second process's (a `Dravo` on the same
    // database and clock, whose passes the test runs).
    let s = setup_for(Kind::Linkedin, |_| {}).await;
    let mut config = support::test_config(s.app.dir.path());
    configure(&mut config, &s.fake, &s.receiver.url);
    config.refresh.background = false;
    let b = dravo::Dravo::open_with_clock(config, None, Arc::new(s.clock.clone()))
        .await
        .unwrap();

    // A claims the event and posts it to a receiver that does not answer.
    s.receiver.hold(true);
    connect(&s.app).await;
    let held = s.receiver.wait_for(1).await;
    assert_eq!(held[0].answered, 0);
    let dir = s.app.dir.path().to_owned();
    let claimed_at = s.clock.now().unix();
    let (holder, until) = claim_on(&dir);
    assert!(holder.is_some(), "A holds a claim");
    assert_eq!(until, Some(claimed_at + CLAIM_SECONDS), "a short claim");

    // While its POST is in flight A renews the claim (on the core's clock): moved past the
    // claim's first end, B finds nothing to send.
    s.clock.advance(CLAIM_SECONDS - 1);
    wait_for_claim_until(&dir, s.clock.now().unix() + CLAIM_SECONDS).await;
    s.clock.advance(CLAIM_SECONDS - 1);
    wait_for_claim_until(&dir, s.clock.now().unix() + CLAIM_SECONDS).await;
    assert!(s.clock.now().unix() > claimed_at + CLAIM_SECONDS);
    assert_eq!(
        b.deliver_due_webhooks().await.unwrap(),
        0,
        "A's claim holds"
    );
    assert_eq!(s.receiver.got().len(), 1);

    // A dies mid-POST (its sender stops without recording anything). Its claim, as last
    // renewed, runs out 5 s later; B takes the event over then, and not before. (The clock
    // stands still from the last renewal on, so a renewal still being written as A stops
    // writes the same end.)
    let Setup {
        app,
        fake: _fake,
        receiver,
        clock,
    } = s;
    let died_at = clock.now().unix();
    let _dir = app.stop().await;
    let (_, until) = claim_on(&dir);
    let until = until.expect("A's claim is left behind");
    assert_eq!(
        until,
        died_at + CLAIM_SECONDS,
        "A's claim runs out {CLAIM_SECONDS} s after its last renewal"
    );
    receiver.hold(false);
    clock.set(dravo::domain::Timestamp::from_unix(until - 1));
    assert_eq!(b.deliver_due_webhooks().await.unwrap(), 0, "A's claim runs");
    assert_eq!(receiver.got().len(), 1);
    clock.set(dravo::domain::Timestamp::from_unix(until));
    assert_eq!(b.deliver_due_webhooks().await.unwrap(), 1, "taken over");
    let got = receiver.got();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[1].valid, "{:?}", got[1]);
    assert_eq!(got[1].answered, 200);
    assert_eq!(got[1].event_id, got[0].event_id);
    assert_eq!(got[1].attempt.as_deref(), Some("1"), "A recorded nothing");
    let event = b.list_webhooks(None, 10).await.unwrap().remove(0);
    assert_eq!(
        (event.status, event.attempts),
        (WebhookStatus::Delivered, 1)
    );
    assert_eq!(claim_on(&dir), (None, None));
}

#[tokio::test]
async fn delivered_events_are_deleted_after_the_retention_and_not_before() {
    let s = setup_for(Kind::Linkedin, |c| c.webhooks.retention_days = 7).await;
    connect(&s.app).await;
    pass(&s.app).await;
    assert_eq!(s.types(), ["account.connected"]);
    assert_eq!(outbox(&s.app).await[0].status, WebhookStatus::Delivered);
    // A second short of 7 days after it was recorded: kept.
    s.clock.advance(7 * DAY - 1);
    assert_eq!(s.app.dravo.prune_webhooks().await.unwrap(), 0);
    assert_eq!(outbox(&s.app).await.len(), 1);
    // Past them: deleted.
    s.clock.advance(2);
    assert_eq!(s.app.dravo.prune_webhooks().await.unwrap(), 1);
    assert!(outbox(&s.app).await.is_empty());
}
