//! The SQL of the sealed columns, for key rotation: where each one lives, which columns its
//! seal's associated data is made of, and the count, page and replace statements. Both
//! backends run the same statements; a `Dialect` says the little they write differently.
//!
//! Which key sealed a value is in the value's first bytes (see `crypto::seal`); the store is
//! given those byte prefixes and never interprets a value itself.

use std::fmt::Write as _;

use super::codec::RowRead;
use super::{SealedColumn, SealedCounts, SealedRow};
use crate::error::Result;

/// What one backend writes its own way.
pub struct Dialect {
    /// The column that orders a table's rows: SQLite's `rowid`, PostgreSQL's `seq`.
    pub position: &'static str,
    /// A literal of the given bytes (made from bytes only, so nothing can be injected).
    pub bytes_literal: fn(&str) -> String,
    /// The n-th statement parameter (1-based).
    pub param: fn(usize) -> String,
}

/// Where a column lives, and the columns that make up its seal's associated data.
struct Place {
    table: &'static str,
    column: &'static str,
    /// id, owner, provider, provider account id (a registration's server; or NULL).
    context: &'static str,
}

fn place(column: SealedColumn) -> Place {
    let (table, column, context) = match column {
        SealedColumn::AppClientSecret => (
            "oauth_apps",
            "client_secret_sealed",
            "id, owner, provider, CAST(NULL AS TEXT)",
        ),
        SealedColumn::AccessToken => (
            "accounts",
            "access_token_sealed",
            "id, owner, provider, provider_account_id",
        ),
        SealedColumn::RefreshToken => (
            "accounts",
            "refresh_token_sealed",
            "id, owner, provider, provider_account_id",
        ),
        SealedColumn::PendingConnection => (
            "pending_connections",
            "sealed",
            "id, owner, provider, CAST(NULL AS TEXT)",
        ),
        SealedColumn::RegistrationSecret => (
            "instance_registrations",
            "client_secret_sealed",
            "id, owner, provider, server",
        ),
    };
    Place {
        table,
        column,
        context,
    }
}

/// An SQL condition: `column` starts with one of `prefixes`.
fn starts_with_any(d: &Dialect, column: &str, prefixes: &[Vec<u8>]) -> String {
    if prefixes.is_empty() {
        return "false".into();
    }
    let tests: Vec<String> = prefixes
        .iter()
        .map(|prefix| {
            let hex: String = prefix.iter().map(|b| format!("{b:02x}")).collect();
            format!(
                "substr({column}, 1, {}) = {}",
                prefix.len(),
                (d.bytes_literal)(&hex)
            )
        })
        .collect();
    format!("({})", tests.join(" OR "))
}

/// How many values `column` holds, then how many start with each key's prefixes.
pub fn count_query(d: &Dialect, column: SealedColumn, keys: &[Vec<Vec<u8>>]) -> String {
    let p = place(column);
    let mut sql = String::from("SELECT count(*)");
    for prefixes in keys {
        let _ = write!(
            sql,
            ", count(*) FILTER (WHERE {})",
            starts_with_any(d, p.column, prefixes)
        );
    }
    let _ = write!(
        sql,
        " FROM {} WHERE {c} IS NOT NULL AND length({c}) > 0",
        p.table,
        c = p.column
    );
    sql
}

/// The row of `count_query`.
pub fn counts(column: SealedColumn, row: &dyn RowRead, keys: usize) -> Result<SealedCounts> {
    let count = |i| Ok(row.int(i)?.unwrap_or(0) as u64);
    Ok(SealedCounts {
        column,
        total: count(0)?,
        by_key: (1..=keys).map(count).collect::<Result<_>>()?,
    })
}

/// Up to parameter 2 values of `column` that start with one of `prefixes`, after the
/// position parameter 1, in position order.
pub fn page_query(d: &Dialect, column: SealedColumn, prefixes: &[Vec<u8>]) -> String {
    let p = place(column);
    format!(
        "SELECT {pos}, {context}, {c} FROM {table}
         WHERE {pos} > {after} AND {matches}
         ORDER BY {pos} LIMIT {limit}",
        pos = d.position,
        context = p.context,
        c = p.column,
        table = p.table,
        after = (d.param)(1),
        limit = (d.param)(2),
        matches = starts_with_any(d, p.column, prefixes)
    )
}

/// A row of `page_query`.
pub fn sealed_row(row: &dyn RowRead) -> Result<SealedRow> {
    let text = |i| super::codec::required_text(row, i);
    Ok(SealedRow {
        rowid: super::codec::required_int(row, 0)?,
        id: text(1)?,
        owner: text(2)?,
        provider: super::codec::provider(row, 3)?,
        provider_account_id: row.text(4)?,
        sealed: super::codec::required_bytes(row, 5)?,
    })
}

/// Writes parameter 3 over the value of the row whose id is parameter 1, only if it still
/// holds parameter 2.
pub fn replace_query(d: &Dialect, column: SealedColumn) -> String {
    let p = place(column);
    format!(
        "UPDATE {table} SET {c} = {new} WHERE id = {id} AND {c} = {old}",
        table = p.table,
        c = p.column,
        id = (d.param)(1),
        old = (d.param)(2),
        new = (d.param)(3)
    )
}
