//! The PostgreSQL statements and how rows become records, by table. The queries mirror the
//! SQLite backend's; `seq` stands where SQLite has its rowid.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

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
fn bad_column(col: usize, msg: impl std::fmt::Display) -> Error {
    Error::store(format!(
        "the database holds an unreadable value in column {col}: {msg}"
    ))
}

/// A column holding a name of something that parses (a provider, a status, a kind).
fn named<T: std::str::FromStr>(row: &Row, col: usize) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    let name: String = row.try_get(col)?;
    name.parse().map_err(|e| bad_column(col, e))
}

pub(super) fn provider(row: &Row, col: usize) -> Result<crate::domain::Provider> {
    named(row, col)
}

fn optional_timestamp(row: &Row, col: usize) -> Result<Option<Timestamp>> {
    Ok(row
        .try_get::<_, Option<i64>>(col)?
        .map(Timestamp::from_unix))
}

pub(super) mod apps {
    use std::sync::LazyLock;

    use super::*;
    use crate::store::AppRecord;
    use crate::store::tables::{self, APPS};

    static COLUMNS: LazyLock<String> = LazyLock::new(codec::app_columns);

    pub static LIST: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS} FROM oauth_apps
             WHERE owner = $1 AND ($2::text IS NULL OR provider = $2)
             ORDER BY created_at, seq",
            COLUMNS = *COLUMNS
        )
    });
    pub static GET: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS} FROM oauth_apps WHERE owner = $1 AND id = $2",
            COLUMNS = *COLUMNS
        )
    });
    pub static GET_FOR_UPDATE: LazyLock<String> = LazyLock::new(|| format!("{} FOR UPDATE", *GET));
    /// Any one app (the first stored), of any owner: a sample to check the keys with.
    pub static FIRST: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS} FROM oauth_apps ORDER BY seq LIMIT 1",
            COLUMNS = *COLUMNS
        )
    });
    pub static INSERT: LazyLock<String> =
        LazyLock::new(|| tables::insert_sql(&APPS, |n| format!("${n}")));
    /// The columns that name the row an update changes.
    pub const KEY: &[&str] = &["owner", "id"];
    pub static UPDATE: LazyLock<String> =
        LazyLock::new(|| tables::update_sql(&APPS, codec::APP_CHANGES, KEY, |n| format!("${n}")));

    pub fn from_row(row: &Row) -> Result<AppRecord> {
        codec::app(row)
    }
}

pub(super) mod accounts {
    use std::sync::LazyLock;

    use super::*;
    use crate::domain::{Account, AccountStatus, Provider};
    use crate::store::{AccountRecord, EventRecord};

    use crate::store::tables::{ACCOUNT_KEPT_ON_UPDATE, ACCOUNT_LISTING, ACCOUNTS};

    static COLUMNS: LazyLock<String> = LazyLock::new(|| ACCOUNTS.column_list());
    static LISTED_ACCOUNT_COLUMNS: LazyLock<String> =
        LazyLock::new(|| ACCOUNT_LISTING.column_list());

    pub static PUT: LazyLock<String> = LazyLock::new(|| {
        crate::store::tables::upsert_sql(&ACCOUNTS, ACCOUNT_KEPT_ON_UPDATE, |n| format!("${n}"))
    });
    pub static PAGE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT seq, {LISTED_ACCOUNT_COLUMNS} FROM accounts
             WHERE owner = $1 AND seq > $2
               AND ($3::text IS NULL OR provider = $3) AND ($4::text IS NULL OR status = $4)
               AND ($6::text IS NULL OR kind = $6) AND ($7::text IS NULL OR parent_id = $7)
             ORDER BY seq LIMIT $5",
            LISTED_ACCOUNT_COLUMNS = *LISTED_ACCOUNT_COLUMNS
        )
    });
    pub static GET: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS} FROM accounts WHERE owner = $1 AND id = $2",
            COLUMNS = *COLUMNS
        )
    });
    pub static BY_ID: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS} FROM accounts WHERE id = $1",
            COLUMNS = *COLUMNS
        )
    });
    pub static BY_ID_FOR_UPDATE: LazyLock<String> =
        LazyLock::new(|| format!("{} FOR UPDATE", *BY_ID));
    pub static CHILDREN_FOR_UPDATE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS} FROM accounts WHERE parent_id = $1 ORDER BY seq FOR UPDATE",
            COLUMNS = *COLUMNS
        )
    });
    pub const FIND: &str = "SELECT id, created_at FROM accounts
         WHERE owner = $1 AND provider = $2 AND provider_account_id = $3 AND parent_id IS NULL
         FOR UPDATE";
    pub const COUNT_OF_APP: &str = "SELECT count(*) FROM accounts
         WHERE oauth_app_id = $1 AND owner = $2 AND parent_id IS NULL";
    pub const IDS_OF_APP: &str = "SELECT id FROM accounts
         WHERE oauth_app_id = $1 AND owner = $2 AND parent_id IS NULL ORDER BY seq";
    pub const MAKE_DUE_FOR_APP: &str = "UPDATE accounts SET next_refresh_at = $2
         WHERE oauth_app_id = $1 AND refresh_failures > 0 AND status IN ('active', 'expiring')";
    pub const TAKE_LEASE: &str =
        "UPDATE accounts SET refresh_lease_until = $3, refresh_lease_holder = $2
         WHERE id = $1 AND token_version = $5
           AND (refresh_lease_until IS NULL OR refresh_lease_until <= $4
                OR refresh_lease_holder = $2)";
    pub const DUE: &str = "SELECT id FROM accounts
         WHERE next_refresh_at IS NOT NULL AND next_refresh_at <= $1
         ORDER BY next_refresh_at LIMIT $2";
    pub const COUNT: &str =
        "SELECT provider, status, count(*) FROM accounts GROUP BY provider, status";
    pub const TRIM_EVENTS: &str = "DELETE FROM account_events WHERE account_id = $1 AND seq <= (
             SELECT seq FROM account_events WHERE account_id = $1
             ORDER BY seq DESC LIMIT 1 OFFSET $2)";
    pub static EVENTS: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM account_events
             WHERE account_id = $1 AND owner = $2 AND seq < $3
             ORDER BY seq DESC LIMIT $4",
            codec::event_columns()
        )
    });

    /// An account from the columns of `COLUMNS` starting at index `o`.
    pub fn from_row(row: &Row) -> Result<AccountRecord> {
        codec::account(row)
    }

    pub fn listed_from_row(row: &Row, o: usize) -> Result<Account> {
        codec::listed_account(row, o)
    }

    pub fn count_row(row: &Row) -> Result<(Provider, AccountStatus, u64)> {
        Ok((
            provider(row, 0)?,
            named(row, 1)?,
            u64::try_from(row.try_get::<_, i64>(2)?).unwrap_or(0),
        ))
    }

    pub fn event_row(row: &Row) -> Result<EventRecord> {
        codec::event(row)
    }
}

pub(super) mod outbox {
    use std::sync::LazyLock;

    use super::*;
    use crate::store::{OutboxRecord, WebhookBacklog};

    static COLUMNS: LazyLock<String> = LazyLock::new(codec::outbox_columns);

    /// The oldest due event (in the order recorded, as SQLite claims them: a receiver gets an
    /// account's events in order) nobody holds a running claim on; `SKIP LOCKED` lets two nodes
    /// claim side by side without waiting on each other's row.
    pub static CLAIM: LazyLock<String> = LazyLock::new(|| {
        format!(
            "UPDATE webhook_outbox SET claimed_by = $2, claimed_until = $3
             WHERE seq = (
                 SELECT seq FROM webhook_outbox
                 WHERE status = 'pending' AND next_attempt_at <= $1
                   AND (claimed_until IS NULL OR claimed_until <= $1)
                 ORDER BY seq LIMIT 1
                 FOR UPDATE SKIP LOCKED)
             RETURNING {COLUMNS}",
            COLUMNS = *COLUMNS
        )
    });
    /// Moves a claim's end, if the holder still holds it.
    pub const EXTEND_CLAIM: &str = "UPDATE webhook_outbox SET claimed_until = $3
         WHERE id = $1 AND status = 'pending' AND claimed_by = $2";
    /// An outcome, recorded only by the claim's holder.
    pub const DELIVERED: &str = "UPDATE webhook_outbox
         SET status = 'delivered', attempts = $3, next_attempt_at = NULL, last_error = NULL,
             delivered_at = $4, claimed_by = NULL, claimed_until = NULL
         WHERE id = $1 AND status = 'pending' AND claimed_by = $2";
    pub const ATTEMPT_FAILED: &str = "UPDATE webhook_outbox
         SET status = CASE WHEN $4::bigint IS NULL THEN 'failed' ELSE 'pending' END,
             attempts = $3, next_attempt_at = $4, last_error = $5,
             claimed_by = NULL, claimed_until = NULL
         WHERE id = $1 AND status = 'pending' AND claimed_by = $2";
    /// Due again now; a claim still running is kept (its sender records the outcome).
    pub const REQUEUE: &str = "UPDATE webhook_outbox
         SET status = 'pending', next_attempt_at = $2, delivered_at = NULL,
             claimed_by = CASE WHEN claimed_until > $2 THEN claimed_by END,
             claimed_until = CASE WHEN claimed_until > $2 THEN claimed_until END
         WHERE id = $1";
    /// Pending events past their window that nobody took (created by $2, due by $1, no claim
    /// running at $3), at most $4 of them, given up with the error $5; rows another
    /// transaction holds are left for the next pass.
    pub const GIVE_UP_UNSENT: &str = "UPDATE webhook_outbox
         SET status = 'failed', next_attempt_at = NULL, last_error = $5,
             claimed_by = NULL, claimed_until = NULL
         WHERE seq IN (
             SELECT seq FROM webhook_outbox
             WHERE status = 'pending' AND next_attempt_at <= $1 AND created_at <= $2
               AND (claimed_until IS NULL OR claimed_until <= $3)
             LIMIT $4
             FOR UPDATE SKIP LOCKED)";
    pub const PRUNE: &str = "DELETE FROM webhook_outbox WHERE seq IN (
             SELECT seq FROM webhook_outbox
             WHERE status IN ('delivered', 'failed') AND created_at < $1
             ORDER BY seq LIMIT $2
             FOR UPDATE SKIP LOCKED)";
    pub static RECENT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS} FROM webhook_outbox
             WHERE $1::text IS NULL OR status = $1
             ORDER BY seq DESC LIMIT $2",
            COLUMNS = *COLUMNS
        )
    });
    pub static GET_FOR_UPDATE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS} FROM webhook_outbox WHERE id = $1 FOR UPDATE",
            COLUMNS = *COLUMNS
        )
    });
    pub const BACKLOG: &str =
        "SELECT count(*), min(created_at) FROM webhook_outbox WHERE status = 'pending'";

    pub fn from_row(r: &Row) -> Result<OutboxRecord> {
        codec::outbox(r)
    }

    pub fn backlog_row(r: &Row) -> Result<WebhookBacklog> {
        Ok(WebhookBacklog {
            pending: u64::try_from(r.try_get::<_, i64>(0)?).unwrap_or(0),
            oldest_created_at: optional_timestamp(r, 1)?,
        })
    }
}

pub(super) mod keys {
    use super::*;
    use crate::store::MasterKeyRecord;
    use crate::store::sealed_sql::Dialect;

    pub static LIST: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {} FROM master_keys ORDER BY id",
            codec::key_columns()
        )
    });

    pub fn from_row(r: &Row) -> Result<MasterKeyRecord> {
        codec::master_key(r)
    }

    /// How PostgreSQL writes what the sealed-column statements leave to the backend.
    pub const DIALECT: Dialect = Dialect {
        position: "seq",
        bytes_literal: |hex| format!("'\\x{hex}'::bytea"),
        param: |n| format!("${n}"),
    };
}

pub(super) mod copy {
    use super::*;
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
}
