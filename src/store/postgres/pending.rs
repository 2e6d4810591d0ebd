//! Connects in flight (used state nonces, connects that wait for confirmation): the
//! pending calls of a write transaction.

use async_trait::async_trait;

use super::*;

#[async_trait]
impl PendingTx for PgTx<'_> {
    async fn consume_state_nonce(
        &mut self,
        nonce: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        self.execute(
            "DELETE FROM oauth_state_nonces WHERE expires_at < $1",
            &[&now.unix()],
        )
        .await?;
        Ok(self
            .execute(
                "INSERT INTO oauth_state_nonces (nonce, expires_at) VALUES ($1, $2)
             ON CONFLICT (nonce) DO NOTHING",
                &[&nonce, &expires_at.unix()],
            )
            .await?
            == 1)
    }

    async fn insert_pending(&mut self, p: &PendingRecord) -> Result<()> {
        self.execute(
            "INSERT INTO pending_connections
                 (id, owner, provider, oauth_app_id, confirm_hash, sealed, issued_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO UPDATE SET
                 oauth_app_id = excluded.oauth_app_id, confirm_hash = excluded.confirm_hash,
                 sealed = excluded.sealed, issued_at = excluded.issued_at,
                 expires_at = excluded.expires_at
             WHERE pending_connections.owner = excluded.owner",
            &[
                &p.id,
                &p.owner,
                &p.provider.as_str(),
                &p.oauth_app_id,
                &p.confirm_hash,
                &p.sealed,
                &p.issued_at.unix(),
                &p.expires_at.unix(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn pending_connection(
        &mut self,
        owner: &Owner,
        id: &AccountId,
        now: Timestamp,
    ) -> Result<Option<PendingRecord>> {
        self.row(
            &format!(
                "SELECT {} FROM pending_connections
                 WHERE id = $1 AND owner = $2 AND expires_at > $3 FOR UPDATE",
                crate::store::codec::pending_columns()
            ),
            &[&id.as_str(), &owner.as_str(), &now.unix()],
        )
        .await?
        .map(|r| crate::store::codec::pending(&r))
        .transpose()
    }

    async fn delete_pending(&mut self, id: &AccountId) -> Result<bool> {
        Ok(self
            .execute("DELETE FROM pending_connections WHERE id = $1", &[&id])
            .await?
            == 1)
    }

    async fn purge_expired_pending(&mut self, now: Timestamp) -> Result<usize> {
        Ok(self
            .execute(
                "DELETE FROM pending_connections WHERE expires_at <= $1",
                &[&now.unix()],
            )
            .await? as usize)
    }
}
