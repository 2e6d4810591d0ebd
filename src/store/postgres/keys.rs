//! The master keys' statements and the sealed values they seal, and the key calls of a
//! write transaction.

use async_trait::async_trait;
use tokio_postgres::Row;

use super::*;

use crate::store::MasterKeyRecord;
use crate::store::sealed_sql::Dialect;

pub static LIST: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {} FROM master_keys ORDER BY id",
        codec::key_columns()
    )
});

pub fn from_row(r: &Row) -> Result<MasterKeyRecord> {
    codec::master_key(r)
}

/// How PostgreSQL writes what the sealed-column statements leave to the backend.
pub const DIALECT: Dialect = Dialect {
    position: "seq",
    bytes_literal: |hex| format!("'\\x{hex}'::bytea"),
    param: |n| format!("${n}"),
};

#[async_trait]
impl KeyTx for PgTx<'_> {
    async fn master_keys(&mut self) -> Result<Vec<MasterKeyRecord>> {
        // Read to decide what to record (the first keys of a fresh database, a rotation's
        // next id): exclusive, so two processes initialising one database at once do not both
        // find none and both record key 1. A transaction already holding the lock shared (a
        // sealing writer reloading keys) only reads.
        if self.keys_lock.is_none() {
            self.lock_keys(KeysLock::Exclusive).await?;
        }
        self.rows(&LIST, &[]).await?.iter().map(from_row).collect()
    }

    async fn current_key_id(&mut self) -> Result<Option<u32>> {
        // Shared: sealing writers run side by side, and a rotation recording a new key
        // (exclusive) waits for them; once it commits, every later writer seals with the new
        // key. This is what SQLite's one writer at a time gave for free.
        self.lock_keys(KeysLock::Shared).await?;
        let row = self
            .row(
                "SELECT max(id) FROM master_keys WHERE retired_at IS NULL",
                &[],
            )
            .await?;
        Ok(row
            .and_then(|r| r.get::<_, Option<i64>>(0))
            .map(|id| id as u32))
    }

    async fn add_master_key(&mut self, key: &MasterKeyRecord) -> Result<()> {
        self.lock_keys(KeysLock::Exclusive).await?;
        self.execute(
            "INSERT INTO master_keys (id, check_value, added_at, retired_at, accept_until)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &i64::from(key.id),
                &key.check_value,
                &key.added_at.unix(),
                &key.retired_at.map(Timestamp::unix),
                &key.accept_until.map(Timestamp::unix),
            ],
        )
        .await?;
        Ok(())
    }

    async fn retire_master_key(
        &mut self,
        id: u32,
        at: Timestamp,
        accept_until: Timestamp,
    ) -> Result<()> {
        self.lock_keys(KeysLock::Exclusive).await?;
        self.execute(
            "UPDATE master_keys SET retired_at = $2, accept_until = $3
             WHERE id = $1 AND retired_at IS NULL",
            &[&i64::from(id), &at.unix(), &accept_until.unix()],
        )
        .await?;
        Ok(())
    }

    async fn count_sealed(&mut self, keys: &[Vec<Vec<u8>>]) -> Result<Vec<SealedCounts>> {
        let mut counts = Vec::new();
        for column in SealedColumn::ALL {
            let query = sealed_sql::count_query(&DIALECT, column, keys);
            let row = self
                .row(&query, &[])
                .await?
                .ok_or_else(|| Error::Internal("count(*) returned no row".into()))?;
            counts.push(sealed_sql::counts(column, &row, keys.len())?);
        }
        Ok(counts)
    }

    async fn sealed_rows(
        &mut self,
        column: SealedColumn,
        after_rowid: i64,
        prefixes: &[Vec<u8>],
        limit: usize,
    ) -> Result<Vec<SealedRow>> {
        self.rows(
            &sealed_sql::page_query(&DIALECT, column, prefixes),
            &[&after_rowid, &(limit as i64)],
        )
        .await?
        .iter()
        .map(|r| sealed_sql::sealed_row(r))
        .collect()
    }

    async fn replace_sealed(
        &mut self,
        column: SealedColumn,
        id: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool> {
        let query = sealed_sql::replace_query(&DIALECT, column);
        Ok(self.execute(&query, &[&id, &old, &new]).await? == 1)
    }
}
