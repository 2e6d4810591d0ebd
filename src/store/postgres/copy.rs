//! Rows of any table as neutral values, for `dravo store copy`.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::error::{Error, Result};

use crate::store::copy::{CopyRow, CopyValue};
use crate::store::tables::{ColumnKind, Table};

/// `$1`: the position to start after, `$2`: how many (positioned tables only).
pub fn export_query(table: &Table) -> String {
    let columns = table.column_list();
    if table.positioned {
        format!(
            "SELECT seq, {columns} FROM {} WHERE seq > $1 ORDER BY seq LIMIT $2",
            table.name
        )
    } else {
        format!("SELECT {columns} FROM {} ORDER BY 1", table.name)
    }
}

pub fn export_row(table: &Table, row: &Row) -> Result<CopyRow> {
    let offset = usize::from(table.positioned);
    let position = if table.positioned {
        Some(row.try_get::<_, i64>(0)?)
    } else {
        None
    };
    let values = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| {
            let i = i + offset;
            Ok(match kind {
                ColumnKind::Int => row
                    .try_get::<_, Option<i64>>(i)?
                    .map_or(CopyValue::Null, CopyValue::Int),
                ColumnKind::Text => row
                    .try_get::<_, Option<String>>(i)?
                    .map_or(CopyValue::Null, CopyValue::Text),
                ColumnKind::Bytes => row
                    .try_get::<_, Option<Vec<u8>>>(i)?
                    .map_or(CopyValue::Null, CopyValue::Bytes),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(CopyRow { position, values })
}

pub fn insert_query(table: &Table) -> String {
    let mut columns = table.column_list();
    let mut count = table.columns.len();
    if table.positioned {
        columns = format!("seq, {columns}");
        count += 1;
    }
    let marks = (1..=count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("INSERT INTO {} ({columns}) VALUES ({marks})", table.name)
}

/// A value typed as its column is (a NULL too: the driver checks the Rust type against
/// the column's).
pub fn param(kind: ColumnKind, value: &CopyValue) -> Result<Box<dyn ToSql + Sync + Send>> {
    Ok(match (kind, value) {
        (ColumnKind::Int, CopyValue::Null) => Box::new(None::<i64>),
        (ColumnKind::Text, CopyValue::Null) => Box::new(None::<String>),
        (ColumnKind::Bytes, CopyValue::Null) => Box::new(None::<Vec<u8>>),
        (ColumnKind::Int, CopyValue::Int(i)) => Box::new(*i),
        (ColumnKind::Text, CopyValue::Text(t)) => Box::new(t.clone()),
        (ColumnKind::Bytes, CopyValue::Bytes(b)) => Box::new(b.clone()),
        (kind, value) => {
            return Err(Error::store(format!(
                "a {kind:?} column holds {value:?}: the source database does not match its schema"
            )));
        }
    })
}

/// Values typed as their columns are, for one statement.
pub fn params<'v>(
    values: impl IntoIterator<Item = (ColumnKind, &'v CopyValue)>,
) -> Result<Vec<Box<dyn ToSql + Sync + Send>>> {
    values
        .into_iter()
        .map(|(kind, value)| param(kind, value))
        .collect()
}

/// `params` as the driver takes them.
pub fn refs(params: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// Moves a positioned table's sequence past the positions just written.
pub fn resync_query(table: &Table) -> String {
    format!(
        "SELECT setval(pg_get_serial_sequence('{t}', 'seq'), max(seq)) FROM {t} HAVING max(seq) IS NOT NULL",
        t = table.name
    )
}
