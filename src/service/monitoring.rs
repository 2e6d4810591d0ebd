//! What operators ask the running core: is it ready to serve (`GET /readyz`), and what are
//! its figures (`GET /metrics`).

use std::sync::Arc;

use super::Dravo;
use crate::clock::Clock;
use crate::crypto::KeyId;
use crate::error::Result;
use crate::metrics::StoredFigures;
use crate::store::Store;

/// Why the server is not ready: one `"<check>: <what failed>"` per failed check, in the
/// order they ran (`database`, `migrations`, `key`). Anyone may ask `/readyz`, so a failure
/// never says where the database lives (host, port, name, file path) nor what the driver
/// said: that goes to the server log only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady(pub Vec<String>);

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not ready: {}", self.0.join("; "))
    }
}

/// What `/readyz` says when the database check failed: which check, not where the database
/// is. The driver's error (which names the host, port and database, or the file) is logged.
pub(crate) const DATABASE_NOT_READY: &str =
    "database: the database did not answer the readiness check (the server log says why)";

fn database_failed(e: &crate::error::Error) -> String {
    tracing::warn!(error = %e, "readiness: the database check failed");
    DATABASE_NOT_READY.into()
}

/// How long the database's figures of a scrape are reused: a scrape at least this often
/// never waits on a count, and a flood of scrapes costs one count per period.
const COUNTED_FIGURES_SECONDS: i64 = 5;

/// The database's figures a scrape read, and when.
struct CountedFigures {
    at: crate::domain::Timestamp,
    accounts: Vec<(crate::domain::Provider, crate::domain::AccountStatus, u64)>,
    backlog: crate::store::WebhookBacklog,
}

impl Dravo {
    /// Ready when the database answers, its schema is the one this build migrates to, and
    /// it still belongs to the master key loaded at start. Each is read from the database
    /// anew, so a database replaced or migrated by another process under a running server
    /// shows here.
    pub async fn readiness(&self) -> std::result::Result<(), NotReady> {
        let store = &self.0.store;
        let mut failed = Vec::new();
        match store.schema_version().await {
            Err(e) => failed.push(database_failed(&e)),
            Ok(v) if v.found > v.latest => failed.push(format!(
                "migrations: the database schema is at version {}, newer than this build's {} (a newer Dravo migrated it)",
                v.found, v.latest
            )),
            Ok(v) if v.found < v.latest => failed.push(format!(
                "migrations: the database schema is at version {}, older than this build's {}",
                v.found, v.latest
            )),
            Ok(_) => {}
        }
        // Only when the database answered: otherwise this would repeat its failure.
        if failed.iter().all(|f| f != DATABASE_NOT_READY)
            && let Err(why) = self.holds_sealing_key().await
        {
            failed.push(why);
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(NotReady(failed))
        }
    }

    /// Whether this process holds the key the database seals new values with (the newest
    /// key not retired), by its fingerprint. Keys rotated by another process a moment ago are
    /// loaded first, as the key watch would.
    async fn holds_sealing_key(&self) -> std::result::Result<(), String> {
        let records = self
            .0
            .store
            .master_keys()
            .await
            .map_err(|e| database_failed(&e))?;
        let Some(current) = records
            .iter()
            .filter(|r| r.retired_at.is_none())
            .max_by_key(|r| r.id)
        else {
            return Err("key: the database records no master key".into());
        };
        let held = |dravo: &Dravo| {
            KeyId::new(current.id)
                .and_then(|id| dravo.keys().live(id).cloned())
                .is_some_and(|keys| keys.check_value() == current.check_value)
        };
        if held(self) || (self.reload_keys_if_changed().await.unwrap_or(false) && held(self)) {
            Ok(())
        } else {
            Err(format!(
                "key: the database seals with master key {}, and the key loaded here is another one",
                current.id
            ))
        }
    }

    /// The scrape (Prometheus text format): what this process counted, and the accounts and
    /// webhook backlog the database holds. Counting a million accounts takes a while, so the
    /// database's figures are read at most once per `COUNTED_FIGURES_SECONDS` and shared by
    /// every scrape meanwhile (scrapers arriving together wait for one count, then all use
    /// it); this process's own counters are always live. The backlog is what senders have to
    /// work through, so a server that sends no webhooks (no `webhooks.url`) reports none: the
    /// events it records wait for a server that has the URL, or are given up after 24 h, and
    /// are no work of its own.
    pub async fn metrics_text(&self) -> Result<String> {
        let figures = self.0.figures.figures(self.sends_webhooks()).await?;
        Ok(self.0.metrics.render(&figures))
    }
}

/// The database's figures for `/metrics`, counted at most once per `COUNTED_FIGURES_SECONDS`
/// and shared by the scrapes meanwhile. It owns the last count; it is handed the store and
/// the clock.
pub(super) struct FigureCounter {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Held by the scrape in progress, so scrapes read the database one at a time.
    last: tokio::sync::Mutex<Option<CountedFigures>>,
}

impl FigureCounter {
    pub(super) fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        FigureCounter {
            store,
            clock,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// The accounts and webhook backlog the database holds (the backlog only when this
    /// process sends webhooks), read anew when the last count is `COUNTED_FIGURES_SECONDS`
    /// old.
    async fn figures(&self, sends_webhooks: bool) -> Result<StoredFigures> {
        let now = self.clock.now();
        let mut counted = self.last.lock().await;
        let fresh = counted
            .as_ref()
            .filter(|c| (0..COUNTED_FIGURES_SECONDS).contains(&(now.unix() - c.at.unix())));
        let (accounts, backlog) = match fresh {
            Some(c) => (c.accounts.clone(), c.backlog),
            None => {
                let accounts = self.store.count_accounts().await?;
                let backlog = if sends_webhooks {
                    self.store.webhook_backlog().await?
                } else {
                    crate::store::WebhookBacklog::default()
                };
                *counted = Some(CountedFigures {
                    at: now,
                    accounts: accounts.clone(),
                    backlog,
                });
                (accounts, backlog)
            }
        };
        Ok(StoredFigures {
            accounts,
            outbox_pending: backlog.pending,
            outbox_oldest_pending_seconds: backlog
                .oldest_created_at
                .map_or(0, |oldest| now.unix() - oldest.unix()),
        })
    }
}
