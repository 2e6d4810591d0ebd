//! What `dravo store copy` moves: every table, column by column, as neutral values, so a
//! database goes from one backend to the other unchanged (sealed values byte for byte, each
//! row keeping its position, which list order and cursors rest on).

/// The type of a column, the same in both backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Int,
    Text,
    Bytes,
}

/// A value of a column, or NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyValue {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

/// A table and its columns, in the order rows carry them.
#[derive(Debug)]
pub struct CopyTable {
    pub name: &'static str,
    pub columns: &'static [(&'static str, ColumnKind)],
    /// Rows have a position (SQLite's rowid, PostgreSQL's `seq`): read in that order, in
    /// pages, and written back with it. Without one the table is small and read whole.
    pub positioned: bool,
}

/// One row: its position (for positioned tables) and its values, in column order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyRow {
    pub position: Option<i64>,
    pub values: Vec<CopyValue>,
}

use ColumnKind::{Bytes, Int, Text};

/// Every table, parents before the rows that name them.
pub static TABLES: &[CopyTable] = &[
    CopyTable {
        name: "meta",
        columns: &[("key", Text), ("value", Text)],
        positioned: false,
    },
    CopyTable {
        name: "master_keys",
        columns: &[
            ("id", Int),
            ("check_value", Text),
            ("added_at", Int),
            ("retired_at", Int),
            ("accept_until", Int),
        ],
        positioned: false,
    },
    CopyTable {
        name: "oauth_state_nonces",
        columns: &[("nonce", Text), ("expires_at", Int)],
        positioned: false,
    },
    CopyTable {
        name: "oauth_apps",
        columns: &[
            ("id", Text),
            ("owner", Text),
            ("provider", Text),
            ("name", Text),
            ("client_id", Text),
            ("client_secret_sealed", Bytes),
            ("scopes", Text),
            ("created_at", Int),
            ("credentials_error", Text),
            ("credentials_error_at", Int),
            ("updated_at", Int),
            ("last_check", Text),
            ("last_check_at", Int),
        ],
        positioned: true,
    },
    CopyTable {
        name: "accounts",
        columns: &[
            ("id", Text),
            ("owner", Text),
            ("provider", Text),
            ("oauth_app_id", Text),
            ("provider_account_id", Text),
            ("username", Text),
            ("display_name", Text),
            ("scopes", Text),
            ("status", Text),
            ("status_reason", Text),
            ("access_token_sealed", Bytes),
            ("refresh_token_sealed", Bytes),
            ("expires_at", Int),
            ("refresh_expires_at", Int),
            ("reauth_by", Int),
            ("token_issued_at", Int),
            ("next_refresh_at", Int),
            ("refresh_failures", Int),
            ("refresh_lease_until", Int),
            ("refresh_lease_holder", Text),
            ("warned_for", Int),
            ("created_at", Int),
            ("updated_at", Int),
            ("kind", Text),
            ("parent_id", Text),
            ("tasks", Text),
            ("token_version", Int),
        ],
        positioned: true,
    },
    CopyTable {
        name: "account_events",
        columns: &[
            ("id", Text),
            ("account_id", Text),
            ("owner", Text),
            ("type", Text),
            ("created_at", Int),
            ("detail", Text),
        ],
        positioned: true,
    },
    CopyTable {
        name: "webhook_outbox",
        columns: &[
            ("id", Text),
            ("type", Text),
            ("owner", Text),
            ("body", Text),
            ("created_at", Int),
            ("status", Text),
            ("attempts", Int),
            ("next_attempt_at", Int),
            ("last_error", Text),
            ("delivered_at", Int),
            ("claimed_by", Text),
            ("claimed_until", Int),
        ],
        positioned: true,
    },
    CopyTable {
        name: "pending_connections",
        columns: &[
            ("id", Text),
            ("owner", Text),
            ("provider", Text),
            ("oauth_app_id", Text),
            ("confirm_hash", Bytes),
            ("sealed", Bytes),
            ("issued_at", Int),
            ("expires_at", Int),
        ],
        positioned: true,
    },
];

impl CopyTable {
    /// The column names, comma-separated.
    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}
