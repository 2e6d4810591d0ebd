//! Rows of any table as neutral values, for `dravo store copy`.

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, params_from_iter};

use crate::error::{Error, Result};
use crate::store::copy::{CopyRow, CopyValue};
use crate::store::tables::Table;

fn value(v: ValueRef<'_>) -> Result<CopyValue> {
    Ok(match v {
        ValueRef::Null => CopyValue::Null,
        ValueRef::Integer(i) => CopyValue::Int(i),
        ValueRef::Text(t) => CopyValue::Text(
            String::from_utf8(t.to_vec())
                .map_err(|e| Error::store(format!("a text column is not UTF-8: {e}")))?,
        ),
        ValueRef::Blob(b) => CopyValue::Bytes(b.to_vec()),
        ValueRef::Real(_) => return Err(Error::store("a column holds a real number")),
    })
}

/// A neutral value as SQLite binds it.
pub(super) fn sqlite_value(v: &CopyValue) -> Value {
    match v {
        CopyValue::Null => Value::Null,
        CopyValue::Int(i) => Value::Integer(*i),
        CopyValue::Text(t) => Value::Text(t.clone()),
        CopyValue::Bytes(b) => Value::Blob(b.clone()),
    }
}

pub(super) fn export(
    conn: &Connection,
    table: &Table,
    after: i64,
    limit: usize,
) -> Result<Vec<CopyRow>> {
    let columns = table.column_list();
    let sql = if table.positioned {
        format!(
            "SELECT rowid, {columns} FROM {} WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
            table.name
        )
    } else {
        format!("SELECT {columns} FROM {} ORDER BY 1", table.name)
    };
    let mut stmt = conn.prepare(&sql)?;
    let offset = usize::from(table.positioned);
    let mut rows = if table.positioned {
        stmt.query(rusqlite::params![after, limit as i64])?
    } else {
        stmt.query([])?
    };
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let position = if table.positioned {
            Some(row.get::<_, i64>(0)?)
        } else {
            None
        };
        let values = (0..table.columns.len())
            .map(|i| value(row.get_ref(i + offset)?))
            .collect::<Result<Vec<_>>>()?;
        out.push(CopyRow { position, values });
    }
    Ok(out)
}

pub(super) fn import(conn: &Connection, table: &Table, rows: &[CopyRow]) -> Result<()> {
    let mut columns = table.column_list();
    let mut count = table.columns.len();
    if table.positioned {
        columns = format!("rowid, {columns}");
        count += 1;
    }
    let marks = (1..=count)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut stmt = conn.prepare(&format!(
        "INSERT INTO {} ({columns}) VALUES ({marks})",
        table.name
    ))?;
    for row in rows {
        let position = row.position.map(Value::Integer);
        let values = row.values.iter().map(sqlite_value);
        stmt.execute(params_from_iter(position.into_iter().chain(values)))?;
    }
    Ok(())
}

pub(super) fn count(conn: &Connection, table: &Table) -> Result<u64> {
    let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {}", table.name), [], |r| {
        r.get(0)
    })?;
    Ok(n as u64)
}
