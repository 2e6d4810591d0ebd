//! SQL for the `meta` table (settings the database keeps about itself), and whole rows
//! written by `dravo store copy`.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

use async_trait::async_trait;

use super::SqliteTx;
use crate::store::MetaTx;

pub(super) fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

pub(super) fn meta_set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}

pub(super) fn meta_delete(conn: &Connection, key: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM meta WHERE key = ?1")?
        .execute([key])?;
    Ok(())
}

#[async_trait]
impl MetaTx for SqliteTx<'_> {
    async fn meta_get(&mut self, key: &str) -> Result<Option<String>> {
        meta_get(&*self.0, key)
    }

    async fn meta_set(&mut self, key: &str, value: &str) -> Result<()> {
        meta_set(&*self.0, key, value)
    }

    async fn meta_delete(&mut self, key: &str) -> Result<()> {
        meta_delete(&*self.0, key)
    }

    async fn import_rows(
        &mut self,
        table: &crate::store::tables::Table,
        rows: &[crate::store::copy::CopyRow],
    ) -> Result<()> {
        super::copy::import(&*self.0, table, rows)
    }
}
