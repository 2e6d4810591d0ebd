//! SQL for connects that wait for the dashboard's confirmation.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::{AccountId, Owner, Timestamp};
use crate::error::Result;
use crate::store::PendingRecord;

use async_trait::async_trait;

use super::SqliteTx;
use crate::store::PendingTx;

/// Stores a pending connection. A newer consent for the same account replaces the older one,
/// whose code then no longer works.
pub(super) fn insert(conn: &Connection, p: &PendingRecord) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO pending_connections
             (id, owner, provider, oauth_app_id, confirm_hash, sealed, issued_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET
             oauth_app_id = excluded.oauth_app_id, confirm_hash = excluded.confirm_hash,
             sealed = excluded.sealed, issued_at = excluded.issued_at,
             expires_at = excluded.expires_at
         WHERE owner = excluded.owner",
    )?
    .execute(params![
        p.id,
        p.owner,
        p.provider.as_str(),
        p.oauth_app_id,
        p.confirm_hash,
        p.sealed,
        p.issued_at.unix(),
        p.expires_at.unix()
    ])?;
    Ok(())
}

/// The owner's pending connection `id`, if it has not expired at `now`.
pub(super) fn get(
    conn: &Connection,
    owner: &Owner,
    id: &str,
    now: Timestamp,
) -> Result<Option<PendingRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {} FROM pending_connections WHERE id = ?1 AND owner = ?2 AND expires_at > ?3",
            crate::store::codec::pending_columns()
        ))?
        .query_row(params![id, owner.as_str(), now.unix()], |r| {
            super::via(r, crate::store::codec::pending)
        })
        .optional()?)
}

pub(super) fn delete(conn: &Connection, id: &AccountId) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM pending_connections WHERE id = ?1")?
        .execute([id])?
        == 1)
}

/// Forgets pending connections that expired at or before `now`; returns how many.
pub(super) fn purge_expired(conn: &Connection, now: Timestamp) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM pending_connections WHERE expires_at <= ?1")?
        .execute([now.unix()])?)
}

/// Records a used state's nonce (see `PendingTx::consume_state_nonce`).
pub(super) fn consume_nonce(
    conn: &Connection,
    nonce: &str,
    expires_at: Timestamp,
    now: Timestamp,
) -> Result<bool> {
    conn.prepare_cached("DELETE FROM oauth_state_nonces WHERE expires_at < ?1")?
        .execute([now.unix()])?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO oauth_state_nonces (nonce, expires_at) VALUES (?1, ?2)
             ON CONFLICT (nonce) DO NOTHING",
        )?
        .execute(params![nonce, expires_at.unix()])?;
    Ok(inserted == 1)
}

#[async_trait]
impl PendingTx for SqliteTx<'_> {
    async fn consume_state_nonce(
        &mut self,
        nonce: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        consume_nonce(&*self.0, nonce, expires_at, now)
    }

    async fn insert_pending(&mut self, pending: &PendingRecord) -> Result<()> {
        insert(&*self.0, pending)
    }

    async fn pending_connection(
        &mut self,
        owner: &Owner,
        id: &AccountId,
        now: Timestamp,
    ) -> Result<Option<PendingRecord>> {
        get(&*self.0, owner, id.as_str(), now)
    }

    async fn delete_pending(&mut self, id: &AccountId) -> Result<bool> {
        delete(&*self.0, id)
    }

    async fn purge_expired_pending(&mut self, now: Timestamp) -> Result<usize> {
        purge_expired(&*self.0, now)
    }
}
