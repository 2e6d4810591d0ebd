//! SQL for the master keys a database records and the sealed values each one seals.
//!
//! Which key sealed a value is in the value's first bytes (see `crypto::seal`); the store
//! is given those byte prefixes and never interprets a value itself.

use std::fmt::Write as _;

use rusqlite::{Connection, OptionalExtension, params};

use super::provider_column;
use crate::error::Result;
use crate::store::{MasterKeyRecord, SealedColumn, SealedCounts, SealedRow};

pub(super) fn list(conn: &Connection) -> Result<Vec<MasterKeyRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM master_keys ORDER BY id",
        crate::store::codec::KEY_COLUMNS
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

/// Where a column lives, and the columns that make up its seal's associated data.
struct Place {
    table: &'static str,
    column: &'static str,
    /// id, owner, provider, provider account id (or NULL).
    context: &'static str,
}

fn place(column: SealedColumn) -> Place {
    match column {
        SealedColumn::AppClientSecret => Place {
            table: "oauth_apps",
            column: "client_secret_sealed",
            context: "id, owner, provider, NULL",
        },
        SealedColumn::AccessToken => Place {
            table: "accounts",
            column: "access_token_sealed",
            context: "id, owner, provider, provider_account_id",
        },
        SealedColumn::RefreshToken => Place {
            table: "accounts",
            column: "refresh_token_sealed",
            context: "id, owner, provider, provider_account_id",
        },
        SealedColumn::PendingConnection => Place {
            table: "pending_connections",
            column: "sealed",
            context: "id, owner, provider, NULL",
        },
    }
}

/// An SQL condition: `column` starts with one of `prefixes` (hex literals: only bytes).
fn starts_with_any(column: &str, prefixes: &[Vec<u8>]) -> String {
    if prefixes.is_empty() {
        return "0".into();
    }
    let mut sql = String::from("(");
    for (i, prefix) in prefixes.iter().enumerate() {
        if i > 0 {
            sql.push_str(" OR ");
        }
        let hex: String = prefix.iter().map(|b| format!("{b:02x}")).collect();
        let _ = write!(sql, "substr({column}, 1, {}) = x'{hex}'", prefix.len());
    }
    sql.push(')');
    sql
}

/// Per column: how many values it holds, and how many start with each key's prefixes.
pub(super) fn count(conn: &Connection, keys: &[Vec<Vec<u8>>]) -> Result<Vec<SealedCounts>> {
    let mut counts = Vec::new();
    for column in SealedColumn::ALL {
        let p = place(column);
        let mut sql = String::from("SELECT count(*)");
        for prefixes in keys {
            let _ = write!(
                sql,
                ", coalesce(sum({}), 0)",
                starts_with_any(p.column, prefixes)
            );
        }
        let _ = write!(
            sql,
            " FROM {} WHERE {c} IS NOT NULL AND length({c}) > 0",
            p.table,
            c = p.column
        );
        let row = conn.prepare(&sql)?.query_row([], |r| {
            let total: i64 = r.get(0)?;
            let by_key = (0..keys.len())
                .map(|i| r.get::<_, i64>(i + 1).map(|n| n as u64))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(SealedCounts {
                column,
                total: total as u64,
                by_key,
            })
        })?;
        counts.push(row);
    }
    Ok(counts)
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
    let p = place(column);
    let sql = format!(
        "SELECT rowid, {context}, {c} FROM {table}
         WHERE rowid > ?1 AND {matches}
         ORDER BY rowid LIMIT ?2",
        context = p.context,
        c = p.column,
        table = p.table,
        matches = starts_with_any(p.column, prefixes)
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(params![after_rowid, limit as i64], |r| {
            Ok(SealedRow {
                rowid: r.get(0)?,
                id: r.get(1)?,
                owner: r.get(2)?,
                provider: provider_column(r, 3)?,
                provider_account_id: r.get(4)?,
                sealed: r.get(5)?,
            })
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
    let p = place(column);
    let sql = format!(
        "UPDATE {table} SET {c} = ?3 WHERE id = ?1 AND {c} = ?2",
        table = p.table,
        c = p.column
    );
    Ok(conn.prepare_cached(&sql)?.execute(params![id, old, new])? == 1)
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
