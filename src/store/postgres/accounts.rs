//! The statements for connected accounts and their event logs, and the account calls of a
//! write transaction.

use async_trait::async_trait;
use tokio_postgres::Row;

use super::rows::*;
use super::*;

use std::sync::LazyLock;

use crate::domain::{Account, AccountStatus, Provider};
use crate::store::{AccountRecord, EventRecord};

use crate::store::tables::{ACCOUNT_KEPT_ON_UPDATE, ACCOUNT_LISTING, ACCOUNTS};

static COLUMNS: LazyLock<String> = LazyLock::new(|| ACCOUNTS.column_list());
static LISTED_ACCOUNT_COLUMNS: LazyLock<String> = LazyLock::new(|| ACCOUNT_LISTING.column_list());

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
pub static BY_ID_FOR_UPDATE: LazyLock<String> = LazyLock::new(|| format!("{} FOR UPDATE", *BY_ID));
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
pub const COUNT: &str = "SELECT provider, status, count(*) FROM accounts GROUP BY provider, status";
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

#[async_trait]
impl AccountTx for PgTx<'_> {
    async fn find_account(
        &mut self,
        owner: &Owner,
        provider: Provider,
        provider_account_id: &str,
    ) -> Result<Option<ExistingAccount>> {
        // Two connects of one account at once: the second waits here for the first to
        // commit, then finds its row (under SQLite one writer at a time did the same).
        self.lock(
            lock_key(&[owner.as_str(), provider.as_str(), provider_account_id]),
            false,
        )
        .await?;
        self.row(
            FIND,
            &[&owner.as_str(), &provider.as_str(), &provider_account_id],
        )
        .await?
        .map(|r| {
            Ok(ExistingAccount {
                id: r.try_get(0)?,
                created_at: Timestamp::from_unix(r.try_get(1)?),
            })
        })
        .transpose()
    }

    async fn put_account(&mut self, account: &AccountRecord) -> Result<()> {
        let row = codec::account_values(account);
        let params = super::copy::params(tables::pick_all(&ACCOUNTS, &row))?;
        self.execute(&PUT, &super::copy::refs(&params)).await?;
        Ok(())
    }

    async fn account_by_id(&mut self, id: &AccountId) -> Result<Option<AccountRecord>> {
        self.row(&BY_ID_FOR_UPDATE, &[&id])
            .await?
            .map(|r| from_row(&r))
            .transpose()
    }

    async fn children_of(&mut self, parent_id: &AccountId) -> Result<Vec<AccountRecord>> {
        self.rows(&CHILDREN_FOR_UPDATE, &[&parent_id])
            .await?
            .iter()
            .map(from_row)
            .collect()
    }

    async fn delete_account(&mut self, owner: &Owner, id: &AccountId) -> Result<bool> {
        let n = self
            .execute(
                "DELETE FROM accounts WHERE owner = $1 AND id = $2",
                &[&owner.as_str(), &id.as_str()],
            )
            .await?;
        self.execute(
            "DELETE FROM account_events WHERE owner = $1 AND account_id = $2",
            &[&owner.as_str(), &id.as_str()],
        )
        .await?;
        Ok(n > 0)
    }

    async fn take_refresh_lease(
        &mut self,
        id: &AccountId,
        version: i64,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool> {
        Ok(self
            .execute(
                TAKE_LEASE,
                &[&id, &holder, &until.unix(), &now.unix(), &version],
            )
            .await?
            > 0)
    }

    async fn release_refresh_lease(&mut self, id: &AccountId, holder: &str) -> Result<()> {
        self.execute(
            "UPDATE accounts SET refresh_lease_until = NULL, refresh_lease_holder = NULL
             WHERE id = $1 AND refresh_lease_holder = $2",
            &[&id, &holder],
        )
        .await?;
        Ok(())
    }

    async fn holds_refresh_lease(
        &mut self,
        id: &AccountId,
        holder: &str,
        now: Timestamp,
    ) -> Result<bool> {
        Ok(self
            .row(
                "SELECT 1 FROM accounts
                 WHERE id = $1 AND refresh_lease_holder = $2 AND refresh_lease_until > $3",
                &[&id, &holder, &now.unix()],
            )
            .await?
            .is_some())
    }
}
