//! SQL for the master keys a database records and the sealed values each one seals (the
//! statements for those are `store::sealed_sql`'s).

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;
use crate::store::sealed_sql::{self, Dialect};
use crate::store::{MasterKeyRecord, SealedColumn, SealedCounts, SealedRow};

use async_trait::async_trait;

use super::SqliteTx;
use crate::domain::Timestamp;
use crate::store::KeyTx;

pub(super) fn list(conn: &Connection) -> Result<Vec<MasterKeyRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM master_keys ORDER BY id",
        crate::store::codec::key_columns()
    ))?;
    let rows = stmt
        .query_map([], |r| super::via(r, crate::store::codec::master_key))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub(super) fn add(conn: &Connection, key: &MasterKeyRecord) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO master_keys (id, check_value, added_at, retired_at, accept_until)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        key.id,
        key.check_value,
        key.added_at.unix(),
        key.retired_at.map(|t| t.unix()),
        key.accept_until.map(|t| t.unix())
    ])?;
    Ok(())
}

pub(super) fn retire(
    conn: &Connection,
    id: u32,
    at: crate::domain::Timestamp,
    accept_until: crate::domain::Timestamp,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE master_keys SET retired_at = ?2, accept_until = ?3
         WHERE id = ?1 AND retired_at IS NULL",
    )?
    .execute(params![id, at.unix(), accept_until.unix()])?;
    Ok(())
}

/// The key that seals new values: the newest one not retired.
pub(super) fn current(conn: &Connection) -> Result<Option<u32>> {
    Ok(conn
        .prepare_cached("SELECT max(id) FROM master_keys WHERE retired_at IS NULL")?
        .query_row([], |r| r.get(0))
        .optional()?
        .flatten())
}

/// How SQLite writes what the sealed-column statements leave to the backend.
const DIALECT: Dialect = Dialect {
    position: "rowid",
    bytes_literal: |hex| format!("x'{hex}'"),
    param: |n| format!("?{n}"),
};

/// Per column: how many values it holds, and how many start with each key's prefixes.
pub(super) fn count(conn: &Connection, keys: &[Vec<Vec<u8>>]) -> Result<Vec<SealedCounts>> {
    SealedColumn::ALL
        .into_iter()
        .map(|column| {
            conn.prepare(&sealed_sql::count_query(&DIALECT, column, keys))?
                .query_row([], |r| {
                    super::via(r, |r| sealed_sql::counts(column, r, keys.len()))
                })
                .map_err(Into::into)
        })
        .collect()
}

/// Up to `limit` values of `column` that start with one of `prefixes`, after the row
/// `after_rowid`, in row order.
pub(super) fn page(
    conn: &Connection,
    column: SealedColumn,
    after_rowid: i64,
    prefixes: &[Vec<u8>],
    limit: usize,
) -> Result<Vec<SealedRow>> {
    let mut stmt = conn.prepare(&sealed_sql::page_query(&DIALECT, column, prefixes))?;
    let rows = stmt
        .query_map(params![after_rowid, limit as i64], |r| {
            super::via(r, sealed_sql::sealed_row)
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Writes `new` over the value of row `id` if it still holds `old`; false when it changed.
pub(super) fn replace(
    conn: &Connection,
    column: SealedColumn,
    id: &str,
    old: &[u8],
    new: &[u8],
) -> Result<bool> {
    let sql = sealed_sql::replace_query(&DIALECT, column);
    Ok(conn.prepare_cached(&sql)?.execute(params![id, old, new])? == 1)
}

#[async_trait]
impl KeyTx for SqliteTx<'_> {
    async fn master_keys(&mut self) -> Result<Vec<MasterKeyRecord>> {
        list(&*self.0)
    }

    async fn current_key_id(&mut self) -> Result<Option<u32>> {
        current(&*self.0)
    }

    async fn add_master_key(&mut self, key: &MasterKeyRecord) -> Result<()> {
        add(&*self.0, key)
    }

    async fn retire_master_key(
        &mut self,
        id: u32,
        at: Timestamp,
        accept_until: Timestamp,
    ) -> Result<()> {
        retire(&*self.0, id, at, accept_until)
    }

    async fn count_sealed(&mut self, keys: &[Vec<Vec<u8>>]) -> Result<Vec<SealedCounts>> {
        count(&*self.0, keys)
    }

    async fn sealed_rows(
        &mut self,
        column: SealedColumn,
        after_rowid: i64,
        prefixes: &[Vec<u8>],
        limit: usize,
    ) -> Result<Vec<SealedRow>> {
        page(&*self.0, column, after_rowid, prefixes, limit)
    }

    async fn replace_sealed(
        &mut self,
        column: SealedColumn,
        id: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool> {
        replace(&*self.0, column, id, old, new)
    }
}
