//! SQL for the webhook outbox.

use rusqlite::{Connection, params};

use crate::domain::Timestamp;
use crate::error::Result;
use crate::store::OutboxRecord;

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
