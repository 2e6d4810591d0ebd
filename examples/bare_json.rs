//! The benchmark baseline: a bare poem server (no OpenAPI, no auth, no database) that answers
//! `GET /` with a fixed JSON array about the size of a list of five OAuth apps (~1.3 KB).
//!
//! `benches/load.sh` runs it next to `dravo serve` and compares their throughput.
//!
//! ```text
//! cargo run --release --example bare_json -- 127.0.0.1:8081
//! BARE_BIND=127.0.0.1:9000 cargo run --release --example bare_json
//! ```

use poem::endpoint::make_sync;
use poem::http::header;
use poem::listener::TcpListener;
use poem::{Response, Route, Server, get};
use serde_json::{Value, json};

/// Five objects shaped like `GET /v1/oauth-apps` items, serialized once at start-up.
fn body() -> Vec<u8> {
    let apps: Vec<Value> = (1..=5)
        .map(|i| {
            json!({
                "id": format!("oa_{:020}", i),
                "provider": "x",
                "name": format!("Bench App {i}"),
                "client_id": format!("bench-client-id-{i}"),
                "redirect_uri": "http://127.0.0.1:8080/v1/oauth/x/callback",
                "scopes": ["tweet.read", "tweet.write", "users.read", "offline.access"],
                "created_at": "2026-01-01T00:00:00Z",
            })
        })
        .collect();
    serde_json::to_vec(&apps).expect("serializable")
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("BARE_BIND").ok())
        .unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    // Leaked once so every response shares the same static bytes: no per-request work.
    let body: &'static [u8] = body().leak();
    eprintln!("bare_json: {} byte JSON body on http://{bind}/", body.len());
    let app = Route::new().at(
        "/",
        get(make_sync(move |_| {
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
                .body(body)
        })),
    );
    Server::new(TcpListener::bind(bind))
        .run_with_graceful_shutdown(
            app,
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
            None,
        )
        .await
}
