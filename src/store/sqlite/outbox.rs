//! SQL for the webhook outbox.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::Timestamp;
use crate::error::Result;
use crate::store::{OutboxRecord, WebhookBacklog};

pub(super) fn enqueue(conn: &Connection, e: &OutboxRecord) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO webhook_outbox (id, type, owner, body, created_at, status, attempts,
                                     next_attempt_at, last_error, delivered_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        e.id,
        e.kind,
        e.owner,
        e.body,
        e.created_at.unix(),
        e.status,
        e.attempts,
        e.next_attempt_at.map(Timestamp::unix),
        e.last_error,
        e.delivered_at.map(Timestamp::unix),
    ])?;
    Ok(())
}

use crate::store::codec;

use async_trait::async_trait;

use super::SqliteTx;
use crate::store::EventRecord;
use crate::store::EventTx;

static COLUMNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(codec::outbox_columns);

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRecord> {
    super::via(r, codec::outbox)
}

/// Claims the oldest pending event due at `now` whose claim (if any) ran out, for `holder`
/// until `until` (`webhook_outbox_due`; the write transaction keeps others out meanwhile).
pub(super) fn claim_due(
    conn: &Connection,
    now: Timestamp,
    holder: &str,
    until: Timestamp,
) -> Result<Option<OutboxRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "UPDATE webhook_outbox SET claimed_by = ?2, claimed_until = ?3
             WHERE seq = (
                 SELECT seq FROM webhook_outbox
                 WHERE status = 'pending' AND next_attempt_at <= ?1
                   AND (claimed_until IS NULL OR claimed_until <= ?1)
                 ORDER BY seq LIMIT 1)
             RETURNING {COLUMNS}",
            COLUMNS = *COLUMNS
        ))?
        .query_row(params![now.unix(), holder, until.unix()], from_row)
        .optional()?)
}

/// Moves `holder`'s claim on a pending event to `until`, if `holder` still holds it (no other
/// sender took the event over, and its outcome is not recorded yet).
pub(super) fn extend_claim(
    conn: &Connection,
    id: &str,
    holder: &str,
    until: Timestamp,
) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE webhook_outbox SET claimed_until = ?3
             WHERE id = ?1 AND status = 'pending' AND claimed_by = ?2",
        )?
        .execute(params![id, holder, until.unix()])?;
    Ok(changed == 1)
}

/// Pending events created at or before `created_before`, due at or before `due_before` and
/// claimed by no running claim at `now`: what a server without a webhook URL gives up
/// (`webhook_outbox_due` holds exactly the pending events, by due time).
pub(super) const UNSENT_SQL: &str = "SELECT seq FROM webhook_outbox
     WHERE status = 'pending' AND next_attempt_at <= ?1 AND created_at <= ?2
       AND (claimed_until IS NULL OR claimed_until <= ?3)
     LIMIT ?4";

/// Marks up to `limit` of the events `UNSENT_SQL` finds `failed`, with `error`; returns how
/// many.
pub(super) fn give_up_unsent(
    conn: &Connection,
    created_before: Timestamp,
    due_before: Timestamp,
    now: Timestamp,
    error: &str,
    limit: usize,
) -> Result<usize> {
    Ok(conn
        .prepare_cached(&format!(
            "UPDATE webhook_outbox
             SET status = 'failed', next_attempt_at = NULL, last_error = ?5,
                 claimed_by = NULL, claimed_until = NULL
             WHERE seq IN ({UNSENT_SQL})"
        ))?
        .execute(params![
            due_before.unix(),
            created_before.unix(),
            now.unix(),
            i64::try_from(limit).unwrap_or(i64::MAX),
            error
        ])?)
}

/// Deletes up to `limit` delivered or failed events recorded before `created_before`,
/// oldest first. Events are recorded in `seq` order, so the old ones come first in a scan.
pub(super) fn prune(conn: &Connection, created_before: Timestamp, limit: usize) -> Result<usize> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM webhook_outbox WHERE seq IN (
                 SELECT seq FROM webhook_outbox
                 WHERE status IN ('delivered', 'failed') AND created_at < ?1
                 ORDER BY seq LIMIT ?2)",
        )?
        .execute(params![
            created_before.unix(),
            i64::try_from(limit).unwrap_or(i64::MAX)
        ])?)
}

/// How many events wait and when the oldest was recorded: a scan of the pending events only
/// (`webhook_outbox_due` holds exactly those), however many were delivered.
pub(super) const BACKLOG_SQL: &str =
    "SELECT count(*), min(created_at) FROM webhook_outbox WHERE status = 'pending'";

pub(super) fn backlog(conn: &Connection) -> Result<WebhookBacklog> {
    Ok(conn.prepare_cached(BACKLOG_SQL)?.query_row([], |r| {
        Ok(WebhookBacklog {
            pending: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
            oldest_created_at: super::optional_timestamp_column(r, 1)?,
        })
    })?)
}

/// The newest events, optionally with one status.
pub(super) fn recent(
    conn: &Connection,
    status: Option<&str>,
    limit: usize,
) -> Result<Vec<OutboxRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM webhook_outbox
         WHERE ?1 IS NULL OR status = ?1
         ORDER BY seq DESC LIMIT ?2",
        COLUMNS = *COLUMNS
    ))?;
    let rows = stmt
        .query_map(params![status, limit as i64], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub(super) fn get(conn: &Connection, id: &str) -> Result<Option<OutboxRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM webhook_outbox WHERE id = ?1",
            COLUMNS = *COLUMNS
        ))?
        .query_row([id], from_row)
        .optional()?)
}

/// Marks a pending event delivered, if `holder` holds its claim.
pub(super) fn delivered(
    conn: &Connection,
    id: &str,
    holder: &str,
    attempts: i64,
    at: Timestamp,
) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE webhook_outbox
             SET status = 'delivered', attempts = ?3, next_attempt_at = NULL, last_error = NULL,
                 delivered_at = ?4, claimed_by = NULL, claimed_until = NULL
             WHERE id = ?1 AND status = 'pending' AND claimed_by = ?2",
        )?
        .execute(params![id, holder, attempts, at.unix()])?;
    Ok(changed == 1)
}

/// Records a failed attempt of a pending event, if `holder` holds its claim: tried again at
/// `next`, or, with `None`, given up (`failed`).
pub(super) fn attempt_failed(
    conn: &Connection,
    id: &str,
    holder: &str,
    attempts: i64,
    next: Option<Timestamp>,
    error: &str,
) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE webhook_outbox
             SET status = CASE WHEN ?4 IS NULL THEN 'failed' ELSE 'pending' END,
                 attempts = ?3, next_attempt_at = ?4, last_error = ?5,
                 claimed_by = NULL, claimed_until = NULL
             WHERE id = ?1 AND status = 'pending' AND claimed_by = ?2",
        )?
        .execute(params![
            id,
            holder,
            attempts,
            next.map(Timestamp::unix),
            error
        ])?;
    Ok(changed == 1)
}

/// Makes an event pending again, due at `now`. A claim still running at `now` stays: its
/// sender is posting the event and records the outcome.
pub(super) fn requeue(conn: &Connection, id: &str, now: Timestamp) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE webhook_outbox
             SET status = 'pending', next_attempt_at = ?2, delivered_at = NULL,
                 claimed_by = CASE WHEN claimed_until > ?2 THEN claimed_by END,
                 claimed_until = CASE WHEN claimed_until > ?2 THEN claimed_until END
             WHERE id = ?1",
        )?
        .execute(params![id, now.unix()])?;
    Ok(changed == 1)
}

#[async_trait]
impl EventTx for SqliteTx<'_> {
    async fn insert_event(&mut self, event: &EventRecord) -> Result<()> {
        super::accounts::insert_event(&*self.0, event)
    }

    async fn enqueue_webhook(&mut self, event: &OutboxRecord) -> Result<()> {
        enqueue(&*self.0, event)
    }

    async fn claim_due_webhook(
        &mut self,
        now: Timestamp,
        holder: &str,
        until: Timestamp,
    ) -> Result<Option<OutboxRecord>> {
        claim_due(&*self.0, now, holder, until)
    }

    async fn extend_webhook_claim(
        &mut self,
        id: &str,
        holder: &str,
        until: Timestamp,
    ) -> Result<bool> {
        extend_claim(&*self.0, id, holder, until)
    }

    async fn get_webhook(&mut self, id: &str) -> Result<Option<OutboxRecord>> {
        get(&*self.0, id)
    }

    async fn webhook_delivered(
        &mut self,
        id: &str,
        holder: &str,
        attempts: i64,
        at: Timestamp,
    ) -> Result<bool> {
        delivered(&*self.0, id, holder, attempts, at)
    }

    async fn webhook_attempt_failed(
        &mut self,
        id: &str,
        holder: &str,
        attempts: i64,
        next: Option<Timestamp>,
        error: &str,
    ) -> Result<bool> {
        attempt_failed(&*self.0, id, holder, attempts, next, error)
    }

    async fn requeue_webhook(&mut self, id: &str, now: Timestamp) -> Result<bool> {
        requeue(&*self.0, id, now)
    }

    async fn give_up_unsent_webhooks(
        &mut self,
        created_before: Timestamp,
        due_before: Timestamp,
        now: Timestamp,
        error: &str,
        limit: usize,
    ) -> Result<usize> {
        give_up_unsent(&*self.0, created_before, due_before, now, error, limit)
    }

    async fn prune_webhooks(&mut self, created_before: Timestamp, limit: usize) -> Result<usize> {
        prune(&*self.0, created_before, limit)
    }
}
