//! The webhook outbox's statements, and the event calls of a write transaction.

use async_trait::async_trait;
use tokio_postgres::Row;

use super::rows::*;
use super::*;

use std::sync::LazyLock;

use crate::store::{OutboxRecord, WebhookBacklog};

static COLUMNS: LazyLock<String> = LazyLock::new(codec::outbox_columns);

/// The oldest due event (in the order recorded, as SQLite claims them: a receiver gets an
/// account's events in order) nobody holds a running claim on; `SKIP LOCKED` lets two nodes
/// claim side by side without waiting on each other's row.
pub static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE webhook_outbox SET claimed_by = $2, claimed_until = $3
         WHERE seq = (
             SELECT seq FROM webhook_outbox
             WHERE status = 'pending' AND next_attempt_at <= $1
               AND (claimed_until IS NULL OR claimed_until <= $1)
             ORDER BY seq LIMIT 1
             FOR UPDATE SKIP LOCKED)
         RETURNING {COLUMNS}",
        COLUMNS = *COLUMNS
    )
});
/// Moves a claim's end, if the holder still holds it.
pub const EXTEND_CLAIM: &str = "UPDATE webhook_outbox SET claimed_until = $3
     WHERE id = $1 AND status = 'pending' AND claimed_by = $2";
/// An outcome, recorded only by the claim's holder.
pub const DELIVERED: &str = "UPDATE webhook_outbox
     SET status = 'delivered', attempts = $3, next_attempt_at = NULL, last_error = NULL,
         delivered_at = $4, claimed_by = NULL, claimed_until = NULL
     WHERE id = $1 AND status = 'pending' AND claimed_by = $2";
pub const ATTEMPT_FAILED: &str = "UPDATE webhook_outbox
     SET status = CASE WHEN $4::bigint IS NULL THEN 'failed' ELSE 'pending' END,
         attempts = $3, next_attempt_at = $4, last_error = $5,
         claimed_by = NULL, claimed_until = NULL
     WHERE id = $1 AND status = 'pending' AND claimed_by = $2";
/// Due again now; a claim still running is kept (its sender records the outcome).
pub const REQUEUE: &str = "UPDATE webhook_outbox
     SET status = 'pending', next_attempt_at = $2, delivered_at = NULL,
         claimed_by = CASE WHEN claimed_until > $2 THEN claimed_by END,
         claimed_until = CASE WHEN claimed_until > $2 THEN claimed_until END
     WHERE id = $1";
/// Pending events past their window that nobody took (created by $2, due by $1, no claim
/// running at $3), at most $4 of them, given up with the error $5; rows another
/// transaction holds are left for the next pass.
pub const GIVE_UP_UNSENT: &str = "UPDATE webhook_outbox
     SET status = 'failed', next_attempt_at = NULL, last_error = $5,
         claimed_by = NULL, claimed_until = NULL
     WHERE seq IN (
         SELECT seq FROM webhook_outbox
         WHERE status = 'pending' AND next_attempt_at <= $1 AND created_at <= $2
           AND (claimed_until IS NULL OR claimed_until <= $3)
         LIMIT $4
         FOR UPDATE SKIP LOCKED)";
pub const PRUNE: &str = "DELETE FROM webhook_outbox WHERE seq IN (
         SELECT seq FROM webhook_outbox
         WHERE status IN ('delivered', 'failed') AND created_at < $1
         ORDER BY seq LIMIT $2
         FOR UPDATE SKIP LOCKED)";
pub static RECENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM webhook_outbox
         WHERE $1::text IS NULL OR status = $1
         ORDER BY seq DESC LIMIT $2",
        COLUMNS = *COLUMNS
    )
});
pub static GET_FOR_UPDATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM webhook_outbox WHERE id = $1 FOR UPDATE",
        COLUMNS = *COLUMNS
    )
});
pub const BACKLOG: &str =
    "SELECT count(*), min(created_at) FROM webhook_outbox WHERE status = 'pending'";

pub fn from_row(r: &Row) -> Result<OutboxRecord> {
    codec::outbox(r)
}

pub fn backlog_row(r: &Row) -> Result<WebhookBacklog> {
    Ok(WebhookBacklog {
        pending: u64::try_from(r.try_get::<_, i64>(0)?).unwrap_or(0),
        oldest_created_at: optional_timestamp(r, 1)?,
    })
}

#[async_trait]
impl EventTx for PgTx<'_> {
    async fn insert_event(&mut self, event: &EventRecord) -> Result<()> {
        let detail = event.detail.to_string();
        self.execute(
            "INSERT INTO account_events (id, account_id, owner, type, created_at, detail)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &event.id,
                &event.account_id,
                &event.owner,
                &event.kind,
                &event.created_at.unix(),
                &detail,
            ],
        )
        .await?;
        self.execute(
            super::accounts::TRIM_EVENTS,
            &[&event.account_id, &crate::store::EVENTS_KEPT_PER_ACCOUNT],
        )
        .await?;
        Ok(())
    }

    async fn enqueue_webhook(&mut self, event: &OutboxRecord) -> Result<()> {
        self.execute(
            "INSERT INTO webhook_outbox (id, type, owner, body, created_at, status, attempts,
                                         next_attempt_at, last_error, delivered_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &event.id,
                &event.kind,
                &event.owner,
                &event.body,
                &event.created_at.unix(),
                &event.status,
                &event.attempts,
                &event.next_attempt_at.map(Timestamp::unix),
                &event.last_error,
                &event.delivered_at.map(Timestamp::unix),
            ],
        )
        .await?;
        Ok(())
    }

    async fn claim_due_webhook(
        &mut self,
        now: Timestamp,
        holder: &str,
        until: Timestamp,
    ) -> Result<Option<OutboxRecord>> {
        self.row(&CLAIM, &[&now.unix(), &holder, &until.unix()])
            .await?
            .map(|r| from_row(&r))
            .transpose()
    }

    async fn extend_webhook_claim(
        &mut self,
        id: &str,
        holder: &str,
        until: Timestamp,
    ) -> Result<bool> {
        Ok(self
            .execute(EXTEND_CLAIM, &[&id, &holder, &until.unix()])
            .await?
            == 1)
    }

    async fn get_webhook(&mut self, id: &str) -> Result<Option<OutboxRecord>> {
        self.row(&GET_FOR_UPDATE, &[&id])
            .await?
            .map(|r| from_row(&r))
            .transpose()
    }

    async fn webhook_delivered(
        &mut self,
        id: &str,
        holder: &str,
        attempts: i64,
        at: Timestamp,
    ) -> Result<bool> {
        Ok(self
            .execute(DELIVERED, &[&id, &holder, &attempts, &at.unix()])
            .await?
            == 1)
    }

    async fn webhook_attempt_failed(
        &mut self,
        id: &str,
        holder: &str,
        attempts: i64,
        next: Option<Timestamp>,
        error: &str,
    ) -> Result<bool> {
        Ok(self
            .execute(
                ATTEMPT_FAILED,
                &[&id, &holder, &attempts, &next.map(Timestamp::unix), &error],
            )
            .await?
            == 1)
    }

    async fn requeue_webhook(&mut self, id: &str, now: Timestamp) -> Result<bool> {
        Ok(self.execute(REQUEUE, &[&id, &now.unix()]).await? == 1)
    }

    async fn give_up_unsent_webhooks(
        &mut self,
        created_before: Timestamp,
        due_before: Timestamp,
        now: Timestamp,
        error: &str,
        limit: usize,
    ) -> Result<usize> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let changed = self
            .execute(
                GIVE_UP_UNSENT,
                &[
                    &due_before.unix(),
                    &created_before.unix(),
                    &now.unix(),
                    &limit,
                    &error,
                ],
            )
            .await?;
        Ok(usize::try_from(changed).unwrap_or(usize::MAX))
    }

    async fn prune_webhooks(&mut self, created_before: Timestamp, limit: usize) -> Result<usize> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let deleted = self
            .execute(PRUNE, &[&created_before.unix(), &limit])
            .await?;
        Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
    }
}
