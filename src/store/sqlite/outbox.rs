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

use crate::store::codec::{self, OUTBOX_COLUMNS as COLUMNS};

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
             RETURNING {COLUMNS}"
        ))?
        .query_row(params![now.unix(), holder, until.unix()], from_row)
        .optional()?)
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
         ORDER BY seq DESC LIMIT ?2"
    ))?;
    let rows = stmt
        .query_map(params![status, limit as i64], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub(super) fn get(conn: &Connection, id: &str) -> Result<Option<OutboxRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM webhook_outbox WHERE id = ?1"
        ))?
        .query_row([id], from_row)
        .optional()?)
}

/// Marks a pending event delivered.
pub(super) fn delivered(conn: &Connection, id: &str, attempts: i64, at: Timestamp) -> Result<()> {
    conn.prepare_cached(
        "UPDATE webhook_outbox
         SET status = 'delivered', attempts = ?2, next_attempt_at = NULL, last_error = NULL,
             delivered_at = ?3, claimed_by = NULL, claimed_until = NULL
         WHERE id = ?1 AND status = 'pending'",
    )?
    .execute(params![id, attempts, at.unix()])?;
    Ok(())
}

/// Records a failed attempt of a pending event: tried again at `next`, or, with `None`,
/// given up (`failed`).
pub(super) fn attempt_failed(
    conn: &Connection,
    id: &str,
    attempts: i64,
    next: Option<Timestamp>,
    error: &str,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE webhook_outbox
         SET status = CASE WHEN ?3 IS NULL THEN 'failed' ELSE 'pending' END,
             attempts = ?2, next_attempt_at = ?3, last_error = ?4,
             claimed_by = NULL, claimed_until = NULL
         WHERE id = ?1 AND status = 'pending'",
    )?
    .execute(params![id, attempts, next.map(Timestamp::unix), error])?;
    Ok(())
}

/// Makes an event pending again, due at `now`.
pub(super) fn requeue(conn: &Connection, id: &str, now: Timestamp) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE webhook_outbox
             SET status = 'pending', next_attempt_at = ?2, delivered_at = NULL,
                 claimed_by = NULL, claimed_until = NULL
             WHERE id = ?1",
        )?
        .execute(params![id, now.unix()])?;
    Ok(changed == 1)
}
