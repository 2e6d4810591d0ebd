//! SQL for connected accounts and their event logs. Every query a tenant can reach takes the
//! owner; the refresher's queries work by account id across tenants.

use std::sync::LazyLock;

use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::{account_status_column, provider_column, timestamp_column};
use crate::domain::{Account, AccountId, AccountStatus, AppId, Owner, Provider, Timestamp};
use crate::error::Result;
use crate::store::{
    AccountFilter, AccountRecord, EVENTS_KEPT_PER_ACCOUNT, EventRecord, ExistingAccount, Page,
};

use crate::store::codec;
use crate::store::tables::{self, ACCOUNT_KEPT_ON_UPDATE, ACCOUNT_LISTING, ACCOUNTS};

use async_trait::async_trait;

use super::SqliteTx;
use crate::store::AccountTx;

static COLUMNS: LazyLock<String> = LazyLock::new(|| ACCOUNTS.column_list());
static LISTED_COLUMNS: LazyLock<String> = LazyLock::new(|| ACCOUNT_LISTING.column_list());

fn from_row(row: &Row<'_>) -> rusqlite::Result<AccountRecord> {
    super::via(row, codec::account)
}

/// A user account by its identity. It names `accounts_identity`'s whole key (its last column
/// is `ifnull(parent_id, '')`), so that index is the plan; with only the first three columns
/// the planner would rather scan the owner's entries in the covering `accounts_listed`.
pub(super) const FIND_SQL: &str = "SELECT id, created_at FROM accounts
     WHERE owner = ?1 AND provider = ?2 AND provider_account_id = ?3
       AND parent_id IS NULL AND ifnull(parent_id, '') = ''";

pub(super) fn find(
    conn: &Connection,
    owner: &Owner,
    provider: crate::domain::Provider,
    provider_account_id: &str,
) -> Result<Option<ExistingAccount>> {
    Ok(conn
        .prepare_cached(FIND_SQL)?
        .query_row(
            params![owner.as_str(), provider.as_str(), provider_account_id],
            |r| {
                Ok(ExistingAccount {
                    id: r.get(0)?,
                    created_at: timestamp_column(r, 1)?,
                })
            },
        )
        .optional()?)
}

pub(super) fn put(conn: &Connection, row: &AccountRecord) -> Result<()> {
    static PUT: LazyLock<String> = LazyLock::new(|| {
        tables::upsert_sql(&ACCOUNTS, ACCOUNT_KEPT_ON_UPDATE, |n| format!("?{n}"))
    });
    let values = codec::account_values(row);
    conn.prepare_cached(&PUT)?.execute(params_from_iter(
        values.iter().map(super::copy::sqlite_value),
    ))?;
    Ok(())
}

/// One page of an owner's accounts, read from the covering index `accounts_listed` alone
/// (owner, seq, then every listed column): a tenant's entries sit side by side there, while
/// its rows are spread over the table among every other tenant's.
pub(super) static PAGE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT seq, {LISTED_COLUMNS} FROM accounts
         WHERE owner = ?1 AND seq > ?2
           AND (?3 IS NULL OR provider = ?3) AND (?4 IS NULL OR status = ?4)
           AND (?6 IS NULL OR kind = ?6) AND (?7 IS NULL OR parent_id = ?7)
         ORDER BY seq LIMIT ?5",
        LISTED_COLUMNS = *LISTED_COLUMNS
    )
});

/// One page of the owner's accounts, in insertion order.
pub(super) fn page(
    conn: &Connection,
    owner: &Owner,
    filter: &AccountFilter,
    after: Option<i64>,
    limit: usize,
) -> Result<Page<Account>> {
    let mut stmt = conn.prepare_cached(&PAGE_SQL)?;
    let rows = stmt
        .query_map(
            params![
                owner.as_str(),
                after.unwrap_or(0),
                filter.provider.map(|p| p.as_str()),
                filter.status.map(|s| s.as_str()),
                limit as i64 + 1,
                filter.kind.map(|k| k.as_str()),
                filter.parent_id.as_ref(),
            ],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    super::via(r, |r| codec::listed_account(r, 1))?,
                ))
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page::from_read(rows, limit, |(seq, _)| *seq).map(|(_, a)| a))
}

/// One of the owner's accounts (by the primary key).
pub(super) static GET_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM accounts WHERE owner = ?1 AND id = ?2",
        COLUMNS = *COLUMNS
    )
});

/// One of the owner's accounts.
pub(super) fn get(
    conn: &Connection,
    owner: &Owner,
    id: &AccountId,
) -> Result<Option<AccountRecord>> {
    Ok(conn
        .prepare_cached(&GET_SQL)?
        .query_row(params![owner.as_str(), id.as_str()], from_row)
        .optional()?)
}

/// Any account by id (for the core's own bookkeeping).
pub(super) fn by_id(conn: &Connection, id: &AccountId) -> Result<Option<AccountRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM accounts WHERE id = ?1",
            COLUMNS = *COLUMNS
        ))?
        .query_row([id], from_row)
        .optional()?)
}

/// A user account's children (`accounts_by_parent`).
pub(super) static CHILDREN_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM accounts WHERE parent_id = ?1 ORDER BY seq",
        COLUMNS = *COLUMNS
    )
});

/// The children (Pages, organizations) of a user account, in insertion order.
pub(super) fn children(conn: &Connection, parent_id: &AccountId) -> Result<Vec<AccountRecord>> {
    let mut stmt = conn.prepare_cached(&CHILDREN_SQL)?;
    let rows = stmt
        .query_map([parent_id], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub(super) fn delete(conn: &Connection, owner: &Owner, id: &AccountId) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM accounts WHERE owner = ?1 AND id = ?2")?
        .execute(params![owner.as_str(), id.as_str()])?;
    conn.prepare_cached("DELETE FROM account_events WHERE owner = ?1 AND account_id = ?2")?
        .execute(params![owner.as_str(), id.as_str()])?;
    Ok(n > 0)
}

pub(super) const COUNT_OF_APP_SQL: &str = "SELECT count(*) FROM accounts
     WHERE oauth_app_id = ?1 AND owner = ?2 AND parent_id IS NULL";

/// How many of the owner's user accounts use the app (`accounts_by_app`); their Pages and
/// organizations go with them.
pub(super) fn count_of_app(conn: &Connection, owner: &Owner, app: &AppId) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached(COUNT_OF_APP_SQL)?
        .query_row(params![app.as_str(), owner.as_str()], |r| r.get(0))?;
    Ok(n as u64)
}

/// Named, because the covering `accounts_listed` looks cheaper to the planner (no row reads)
/// though it would scan every account of the owner.
pub(super) const IDS_OF_APP_SQL: &str = "SELECT id FROM accounts INDEXED BY accounts_by_app
     WHERE oauth_app_id = ?1 AND owner = ?2 AND parent_id IS NULL
     ORDER BY seq";

/// Ids of the owner's user accounts that use the app, in insertion order.
pub(super) fn ids_of_app(conn: &Connection, owner: &Owner, app: &AppId) -> Result<Vec<AccountId>> {
    let mut stmt = conn.prepare_cached(IDS_OF_APP_SQL)?;
    let ids = stmt
        .query_map(params![app.as_str(), owner.as_str()], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<AccountId>>>()?;
    Ok(ids)
}

pub(super) const MAKE_DUE_FOR_APP_SQL: &str = "UPDATE accounts SET next_refresh_at = ?2
     WHERE oauth_app_id = ?1 AND refresh_failures > 0 AND status IN ('active', 'expiring')";

/// Makes the app's accounts that wait on a cooldown after failed refreshes due at `now`.
pub(super) fn make_due_for_app(conn: &Connection, app_id: &AppId, now: Timestamp) -> Result<usize> {
    Ok(conn
        .prepare_cached(MAKE_DUE_FOR_APP_SQL)?
        .execute(params![app_id, now.unix()])?)
}

pub(super) fn take_lease(
    conn: &Connection,
    id: &AccountId,
    version: i64,
    holder: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE accounts SET refresh_lease_until = ?3, refresh_lease_holder = ?2
             WHERE id = ?1 AND token_version = ?5
               AND (refresh_lease_until IS NULL OR refresh_lease_until <= ?4
                    OR refresh_lease_holder = ?2)",
        )?
        .execute(params![id, holder, until.unix(), now.unix(), version])?;
    Ok(n > 0)
}

pub(super) fn release_lease(conn: &Connection, id: &AccountId, holder: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE accounts SET refresh_lease_until = NULL, refresh_lease_holder = NULL
         WHERE id = ?1 AND refresh_lease_holder = ?2",
    )?
    .execute(params![id, holder])?;
    Ok(())
}

pub(super) fn holds_lease(
    conn: &Connection,
    id: &AccountId,
    holder: &str,
    now: Timestamp,
) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM accounts
             WHERE id = ?1 AND refresh_lease_holder = ?2 AND refresh_lease_until > ?3",
        )?
        .query_row(params![id, holder, now.unix()], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The refresher's "due soon" query (`accounts_due`).
pub(super) const DUE_SQL: &str = "SELECT id FROM accounts
     WHERE next_refresh_at IS NOT NULL AND next_refresh_at <= ?1
     ORDER BY next_refresh_at LIMIT ?2";

/// Ids of accounts the refresher should look at by `now`, soonest first.
pub(super) fn due(conn: &Connection, now: Timestamp, limit: usize) -> Result<Vec<AccountId>> {
    let mut stmt = conn.prepare_cached(DUE_SQL)?;
    let ids = stmt
        .query_map(params![now.unix(), limit as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<AccountId>>>()?;
    Ok(ids)
}

/// Accounts by provider and status (`accounts_by_provider_status`: the index alone is read).
pub(super) const COUNT_SQL: &str =
    "SELECT provider, status, count(*) FROM accounts GROUP BY provider, status";

pub(super) fn count_by_provider_and_status(
    conn: &Connection,
) -> Result<Vec<(Provider, AccountStatus, u64)>> {
    let mut stmt = conn.prepare_cached(COUNT_SQL)?;
    let counts = stmt
        .query_map([], |r| {
            Ok((
                provider_column(r, 0)?,
                account_status_column(r, 1)?,
                u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(counts)
}

pub(super) fn insert_event(conn: &Connection, e: &EventRecord) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO account_events (id, account_id, owner, type, created_at, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        e.id,
        e.account_id,
        e.owner,
        e.kind,
        e.created_at.unix(),
        e.detail.to_string(),
    ])?;
    // Keep the newest EVENTS_KEPT_PER_ACCOUNT.
    conn.prepare_cached(
        "DELETE FROM account_events WHERE account_id = ?1 AND seq <= (
             SELECT seq FROM account_events WHERE account_id = ?1
             ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
    )?
    .execute(params![e.account_id, EVENTS_KEPT_PER_ACCOUNT])?;
    Ok(())
}

pub(super) fn events(
    conn: &Connection,
    owner: &Owner,
    account: &AccountId,
    before: Option<i64>,
    limit: usize,
) -> Result<Page<EventRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM account_events
             WHERE account_id = ?1 AND owner = ?2 AND seq < ?3
             ORDER BY seq DESC LIMIT ?4",
        codec::event_columns()
    ))?;
    let rows = stmt
        .query_map(
            params![
                account.as_str(),
                owner.as_str(),
                before.unwrap_or(i64::MAX),
                limit as i64 + 1
            ],
            |r| super::via(r, codec::event),
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page::from_read(rows, limit, |e| e.seq))
}

#[async_trait]
impl AccountTx for SqliteTx<'_> {
    async fn find_account(
        &mut self,
        owner: &Owner,
        provider: Provider,
        provider_account_id: &str,
    ) -> Result<Option<ExistingAccount>> {
        find(&*self.0, owner, provider, provider_account_id)
    }

    async fn put_account(&mut self, account: &AccountRecord) -> Result<()> {
        put(&*self.0, account)
    }

    async fn account_by_id(&mut self, id: &AccountId) -> Result<Option<AccountRecord>> {
        by_id(&*self.0, id)
    }

    async fn children_of(&mut self, parent_id: &AccountId) -> Result<Vec<AccountRecord>> {
        children(&*self.0, parent_id)
    }

    async fn delete_account(&mut self, owner: &Owner, id: &AccountId) -> Result<bool> {
        delete(&*self.0, owner, id)
    }

    async fn take_refresh_lease(
        &mut self,
        id: &AccountId,
        version: i64,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool> {
        take_lease(&*self.0, id, version, holder, now, until)
    }

    async fn release_refresh_lease(&mut self, id: &AccountId, holder: &str) -> Result<()> {
        release_lease(&*self.0, id, holder)
    }

    async fn holds_refresh_lease(
        &mut self,
        id: &AccountId,
        holder: &str,
        now: Timestamp,
    ) -> Result<bool> {
        holds_lease(&*self.0, id, holder, now)
    }
}
