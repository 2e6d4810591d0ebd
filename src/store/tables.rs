//! Every table, declared once: its columns and their types, in the order rows carry them.
//! Both backends read records by column name from these declarations (`col!`), write them
//! from them (`insert_sql`, `upsert_sql`, `update_sql`), and `dravo store copy` moves every
//! table through them; the migrations create what they declare (a test checks both
//! backends' schemas against them).

/// The type of a column, the same in both backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Int,
    Text,
    Bytes,
}

/// A table and its columns, in the order rows carry them.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, ColumnKind)],
    /// Rows have a position (SQLite's rowid, PostgreSQL's `seq`): read in that order, in
    /// pages, and written back with it. Without one the table is small and read whole.
    pub positioned: bool,
}

/// The index of column `$name` of `$table` (a `Table` or a `Projection`), found at compile
/// time: a name the declaration lacks does not compile.
macro_rules! col {
    ($table:expr, $name:literal) => {
        const { $table.at($name) }
    };
}
pub(crate) use col;

use ColumnKind::{Bytes, Int, Text};

use super::copy::CopyValue;

pub const META: Table = Table {
    name: "meta",
    columns: &[("key", Text), ("value", Text)],
    positioned: false,
};

pub const MASTER_KEYS: Table = Table {
    name: "master_keys",
    columns: &[
        ("id", Int),
        ("check_value", Text),
        ("added_at", Int),
        ("retired_at", Int),
        ("accept_until", Int),
    ],
    positioned: false,
};

pub const STATE_NONCES: Table = Table {
    name: "oauth_state_nonces",
    columns: &[("nonce", Text), ("expires_at", Int)],
    positioned: false,
};

pub const APPS: Table = Table {
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
        ("user_agent", Text),
        ("website", Text),
    ],
    positioned: true,
};

pub const ACCOUNTS: Table = Table {
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
        ("server", Text),
    ],
    positioned: true,
};

pub const EVENTS: Table = Table {
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
};

pub const OUTBOX: Table = Table {
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
};

pub const PENDING: Table = Table {
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
};

/// An app's registration on a server its users name (a Mastodon instance): one per app and
/// server.
pub const REGISTRATIONS: Table = Table {
    name: "instance_registrations",
    columns: &[
        ("id", Text),
        ("owner", Text),
        ("provider", Text),
        ("app_id", Text),
        ("server", Text),
        ("client_id", Text),
        ("client_secret_sealed", Bytes),
        ("redirect_uri", Text),
        ("scopes", Text),
        ("authorize_url", Text),
        ("token_url", Text),
        ("revoke_url", Text),
        ("pkce", Int),
        ("created_at", Int),
    ],
    positioned: true,
};

/// Every table, parents before the rows that name them.
pub static TABLES: &[&Table] = &[
    &META,
    &MASTER_KEYS,
    &STATE_NONCES,
    &APPS,
    &REGISTRATIONS,
    &ACCOUNTS,
    &EVENTS,
    &OUTBOX,
    &PENDING,
];

/// Some of a table's columns, in the order a query selects them (an index's, say).
#[derive(Debug)]
pub struct Projection {
    pub columns: &'static [&'static str],
}

/// What a page of accounts lists (a `domain::Account`): no sealed token nor refresher
/// bookkeeping, so SQLite answers a page from its covering index `accounts_listed` alone
/// (migration 013).
pub const ACCOUNT_LISTING: Projection = Projection {
    columns: &[
        "id",
        "provider",
        "oauth_app_id",
        "provider_account_id",
        "username",
        "display_name",
        "scopes",
        "status",
        "status_reason",
        "expires_at",
        "reauth_by",
        "created_at",
        "updated_at",
        "kind",
        "parent_id",
        "tasks",
    ],
};

/// The columns an account's upsert leaves alone on an existing row: what identifies it, when
/// and as what it was first connected, and the refresh lease (its own statements move it).
pub const ACCOUNT_KEPT_ON_UPDATE: &[&str] = &[
    "id",
    "owner",
    "provider",
    "provider_account_id",
    "created_at",
    "kind",
    "parent_id",
    "refresh_lease_until",
    "refresh_lease_holder",
];

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

impl Table {
    /// The index of column `name` (`col!` calls it at compile time).
    pub const fn at(&self, name: &str) -> usize {
        let mut i = 0;
        while i < self.columns.len() {
            if same(self.columns[i].0, name) {
                return i;
            }
            i += 1;
        }
        panic!("the table declares no such column")
    }

    /// The column names, comma-separated.
    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The column names, each followed by `, `, then `tail` (`seq`, say).
    pub fn column_list_and(&self, tail: &str) -> String {
        format!("{}, {tail}", self.column_list())
    }
}

impl Projection {
    /// The index of column `name` (`col!` calls it at compile time).
    pub const fn at(&self, name: &str) -> usize {
        let mut i = 0;
        while i < self.columns.len() {
            if same(self.columns[i], name) {
                return i;
            }
            i += 1;
        }
        panic!("the projection declares no such column")
    }

    /// The column names, comma-separated.
    pub fn column_list(&self) -> String {
        self.columns.join(", ")
    }
}

/// `INSERT` of every column of `table`, as parameters 1, 2, … written by `param`.
pub fn insert_sql(table: &Table, param: fn(usize) -> String) -> String {
    let values: Vec<String> = (1..=table.columns.len()).map(param).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        table.name,
        table.column_list(),
        values.join(", ")
    )
}

/// `insert_sql`, and on an existing `id` every column but `kept` replaced.
pub fn upsert_sql(table: &Table, kept: &[&str], param: fn(usize) -> String) -> String {
    let updates: Vec<String> = table
        .columns
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| !kept.contains(c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        "{} ON CONFLICT (id) DO UPDATE SET {}",
        insert_sql(table, param),
        updates.join(", ")
    )
}

/// `UPDATE` of the columns `set` of the row the columns `key` name, as parameters 1, 2, …
/// in that order (`pick` lists their values).
pub fn update_sql(table: &Table, set: &[&str], key: &[&str], param: fn(usize) -> String) -> String {
    let mut n = 0;
    let mut bind = |c: &&str| {
        n += 1;
        format!("{c} = {}", param(n))
    };
    let set: Vec<String> = set.iter().map(&mut bind).collect();
    let key: Vec<String> = key.iter().map(&mut bind).collect();
    format!(
        "UPDATE {} SET {} WHERE {}",
        table.name,
        set.join(", "),
        key.join(" AND ")
    )
}

/// A whole row of `table`'s values, with their columns' kinds.
pub fn pick_all<'v>(table: &Table, row: &'v [CopyValue]) -> Vec<(ColumnKind, &'v CopyValue)> {
    table
        .columns
        .iter()
        .map(|(_, kind)| *kind)
        .zip(row)
        .collect()
}

/// The values of the columns `names` (with their kinds), from a whole row of `table`.
pub fn pick<'v>(
    table: &Table,
    row: &'v [CopyValue],
    names: &[&str],
) -> Vec<(ColumnKind, &'v CopyValue)> {
    names
        .iter()
        .map(|name| {
            let i = table
                .columns
                .iter()
                .position(|(c, _)| c == name)
                .unwrap_or_else(|| panic!("{} declares no column {name}", table.name));
            (table.columns[i].1, &row[i])
        })
        .collect()
}
