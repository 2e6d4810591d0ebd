//! What `dravo store copy` moves: every table, column by column, as neutral values, so a
//! database goes from one backend to the other unchanged (sealed values byte for byte, each
//! row keeping its position, which list order and cursors rest on).

/// A value of a column, or NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyValue {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

/// One row: its position (for positioned tables) and its values, in column order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyRow {
    pub position: Option<i64>,
    pub values: Vec<CopyValue>,
}
