//! Ids and owners bind and read as the text they are, so records carry their types into and
//! out of SQL without a conversion at each statement.

use rusqlite::ToSql;
use rusqlite::types::{FromSql, FromSqlResult, ToSqlOutput, ValueRef};

use crate::domain::{AccountId, AppId, EventId, Owner};

macro_rules! text_column {
    ($($name:ident),*) => {$(
        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                String::column_result(value).map($name::from_stored)
            }
        }
    )*};
}

text_column!(AppId, AccountId, EventId, Owner);
