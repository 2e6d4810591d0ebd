//! Dravo: a self-hosted service for connecting social accounts over OAuth.
//!
//! One core (`service::Dravo`) does the work; the HTTP API (`api`) and the command line
//! (`cli`) are thin faces over it. Storage (`store`), cryptography (`crypto`) and provider
//! quirks (`providers`) each live in one place.

pub mod api;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod metrics;
mod net;
pub mod providers;
pub mod service;
pub mod store;
pub mod wire;

use std::future::Future;
use std::time::Duration;

pub use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::{Error, Result};
pub use net::ConnectionLimits;
pub use service::Dravo;

/// How long in-flight requests get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Binds `server.bind`, opens the core and serves until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> Result<()> {
    // Listen for signals before anything is served, so a signal that arrives early still
    // means a graceful stop rather than the default kill.
    let shutdown = shutdown_signal()
        .map_err(|e| Error::Internal(format!("cannot listen for shutdown signals: {e}")))?;
    let listener = net::listen(config.server.bind.trim()).await.map_err(|e| {
        Error::config(format!(
            "cannot listen on server.bind {}: {e}",
            config.server.bind
        ))
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::Internal(format!("cannot read the bound address: {e}")))?;
    if let Some(warning) = config.public_url_warning() {
        tracing::warn!("{warning}");
    }
    let metrics_listener = bind_metrics(&config).await?;
    let config_file = config.origin.file.clone();
    let dravo = Dravo::open(config, Some(bound)).await?;
    // Held while serving: `dravo restore` refuses to replace a database in use.
    let _serving = dravo.config().database.location().hold_for_serving()?;
    let public_url = dravo.public_url().to_owned();
    tracing::info!(
        address = %bound,
        public_url,
        database = %dravo.config().database.describe(),
        config = %config_file.as_deref().map_or_else(
            || "none (defaults and DRAVO_* variables)".into(),
            |p| p.display().to_string()
        ),
        "listening on http://{bound} (API docs: {public_url}/docs)"
    );
    let stop = CancellationToken::new();
    let trigger = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        trigger.cancel();
    });
    let limits = ConnectionLimits::of(&dravo.config().server);
    run_listeners(listener, metrics_listener, dravo, stop, limits)
        .await
        .map_err(|e| Error::Internal(format!("the server failed: {e}")))?;
    tracing::info!("stopped");
    Ok(())
}

/// Serves the API on `listener` until `shutdown` is cancelled, then lets in-flight requests
/// finish (up to 30 seconds). Connections are limited as `server.*` says ([`ConnectionLimits::of`]).
/// Background tasks (the refresher, the webhook sender, the rate limiters' pruner) get the
/// same token and stop with the server.
pub async fn run(
    listener: tokio::net::TcpListener,
    dravo: Dravo,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let limits = ConnectionLimits::of(&dravo.config().server);
    run_with(listener, dravo, shutdown, limits).await
}

/// [`run`] with explicit connection limits (timeouts for slow and idle clients, and how many
/// connections are served at once; see `net`). With `server.metrics_bind` set, `/metrics` is
/// served on a listener bound to it here.
pub async fn run_with(
    listener: tokio::net::TcpListener,
    dravo: Dravo,
    shutdown: CancellationToken,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    let metrics_listener = bind_metrics(dravo.config())
        .await
        .map_err(std::io::Error::other)?;
    run_listeners(listener, metrics_listener, dravo, shutdown, limits).await
}

/// Binds `server.metrics_bind` when it is set, and says where `/metrics` is served.
async fn bind_metrics(config: &Config) -> Result<Option<tokio::net::TcpListener>> {
    let Some(address) = &config.server.metrics_bind else {
        return Ok(None);
    };
    let listener = net::listen(address.trim()).await.map_err(|e| {
        Error::config(format!(
            "cannot listen on server.metrics_bind {address}: {e}"
        ))
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::Internal(format!("cannot read the bound address: {e}")))?;
    tracing::info!(address = %bound, "metrics on http://{bound}{}", api::METRICS_PATH);
    Ok(Some(listener))
}

/// Serves the API on `listener` and, when given, `/metrics` on `metrics_listener`, with the
/// background tasks, until `shutdown`.
async fn run_listeners(
    listener: tokio::net::TcpListener,
    metrics_listener: Option<tokio::net::TcpListener>,
    dravo: Dravo,
    shutdown: CancellationToken,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    let admission = net::Admission {
        exempt: dravo.config().server.trusted_proxies.clone(),
        refusal: api::error::connection_refusal(limits.max_connections_per_client),
    };
    let metrics_server = metrics_listener.map(|metrics_listener| {
        tokio::spawn(net::serve(
            metrics_listener,
            api::metrics_app(dravo.clone()),
            shutdown.clone().cancelled_owned(),
            SHUTDOWN_GRACE,
            limits,
            admission.clone(),
        ))
    });
    let refresher = dravo
        .config()
        .refresh
        .background
        .then(|| tokio::spawn(dravo.clone().run_refresher(shutdown.clone())));
    // Sends webhooks, or, without `webhooks.url`, gives up those no server sends in time.
    let webhook_sender = tokio::spawn(dravo.clone().run_webhook_sender(shutdown.clone()));
    // Follows rotations by other processes (`dravo keys rotate`).
    let key_watch = tokio::spawn(dravo.clone().run_key_watch(shutdown.clone()));
    let rate_limits = api::limits::RateLimits::new(&dravo.config().limits);
    let pruner = tokio::spawn(rate_limits.clone().run_pruner(shutdown.clone()));
    let served = net::serve(
        listener,
        api::build_app(dravo, rate_limits),
        shutdown.clone().cancelled_owned(),
        SHUTDOWN_GRACE,
        limits,
        admission,
    )
    .await;
    shutdown.cancel();
    // They stop at once.
    let _ = pruner.await;
    if let Some(task) = metrics_server {
        // A scrape in flight finishes (within the grace period).
        let _ = task.await;
    }
    let _ = key_watch.await;
    if let Some(task) = refresher {
        // A pass in flight finishes its provider calls (each bounded by its timeout).
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, task).await;
    }
    // It stops at once; an attempt cut short stays pending and is sent again.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, webhook_sender).await;
    served
}

/// Registers SIGINT (Ctrl-C) and SIGTERM handlers now, and returns a future that completes
/// when either arrives.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
            tracing::info!("shutting down: finishing in-flight requests");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down: finishing in-flight requests");
        })
    }
}
