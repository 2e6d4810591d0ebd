//! How PostgreSQL rows are read: the driver's row as `codec::RowRead`, and the few columns
//! read outside a record.

use tokio_postgres::Row;

use crate::domain::Timestamp;
use crate::error::{Error, Result};
use crate::store::codec;

impl codec::RowRead for Row {
    fn text(&self, i: usize) -> Result<Option<String>> {
        Ok(self.try_get(i)?)
    }

    fn int(&self, i: usize) -> Result<Option<i64>> {
        Ok(self.try_get(i)?)
    }

    fn bytes(&self, i: usize) -> Result<Option<Vec<u8>>> {
        Ok(self.try_get(i)?)
    }
}

/// A column that does not hold what the schema promises.
pub(super) fn bad_column(col: usize, msg: impl std::fmt::Display) -> Error {
    Error::store(format!(
        "the database holds an unreadable value in column {col}: {msg}"
    ))
}

/// A column holding a name of something that parses (a provider, a status, a kind).
pub(super) fn named<T: std::str::FromStr>(row: &Row, col: usize) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    let name: String = row.try_get(col)?;
    name.parse().map_err(|e| bad_column(col, e))
}

pub(super) fn provider(row: &Row, col: usize) -> Result<crate::domain::Provider> {
    named(row, col)
}

pub(super) fn optional_timestamp(row: &Row, col: usize) -> Result<Option<Timestamp>> {
    Ok(row
        .try_get::<_, Option<i64>>(col)?
        .map(Timestamp::from_unix))
}
