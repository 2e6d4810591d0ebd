//! The `oauth_apps` statements, and the app calls of a write transaction.

use async_trait::async_trait;
use tokio_postgres::Row;

use super::*;

use std::sync::LazyLock;

use crate::store::tables::{self, APPS, REGISTRATIONS};
use crate::store::{AppRecord, RegistrationRecord};

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

static REGISTRATION_COLUMNS: LazyLock<String> = LazyLock::new(|| REGISTRATIONS.column_list());
pub static REGISTRATION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM instance_registrations WHERE app_id = $1 AND server = $2",
        *REGISTRATION_COLUMNS
    )
});
pub static REGISTRATIONS_OF: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM instance_registrations WHERE owner = $1 AND app_id = $2
         ORDER BY created_at, seq",
        *REGISTRATION_COLUMNS
    )
});
static INSERT_REGISTRATION: LazyLock<String> =
    LazyLock::new(|| tables::insert_sql(&REGISTRATIONS, |n| format!("${n}")));

pub fn from_row(row: &Row) -> Result<AppRecord> {
    codec::app(row)
}

#[async_trait]
impl AppTx for PgTx<'_> {
    async fn insert_app(&mut self, app: &AppRecord) -> Result<()> {
        let row = codec::app_values(app);
        let params = super::copy::params(tables::pick_all(&APPS, &row))?;
        match self
            .execute_raw(&INSERT, &super::copy::refs(&params))
            .await?
        {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(app_conflict(app)),
            Err(e) => Err(e.into()),
        }
    }

    async fn put_registration(&mut self, registration: &RegistrationRecord) -> Result<()> {
        self.execute(
            "DELETE FROM instance_registrations WHERE app_id = $1 AND server = $2",
            &[&registration.app_id.as_str(), &registration.server],
        )
        .await?;
        let row = codec::registration_values(registration);
        let params = super::copy::params(tables::pick_all(&REGISTRATIONS, &row))?;
        self.execute(&INSERT_REGISTRATION, &super::copy::refs(&params))
            .await?;
        Ok(())
    }

    async fn delete_app(&mut self, owner: &Owner, id: &AppId) -> Result<bool> {
        self.execute(
            "DELETE FROM instance_registrations WHERE owner = $1 AND app_id = $2",
            &[&owner.as_str(), &id.as_str()],
        )
        .await?;
        Ok(self
            .execute(
                "DELETE FROM oauth_apps WHERE owner = $1 AND id = $2",
                &[&owner.as_str(), &id.as_str()],
            )
            .await?
            > 0)
    }

    async fn get_app(&mut self, owner: &Owner, id: &AppId) -> Result<Option<AppRecord>> {
        self.row(&GET_FOR_UPDATE, &[&owner.as_str(), &id.as_str()])
            .await?
            .map(|r| from_row(&r))
            .transpose()
    }

    async fn update_app(&mut self, app: &AppRecord) -> Result<bool> {
        let row = codec::app_values(app);
        let names = [codec::APP_CHANGES, KEY].concat();
        let params = super::copy::params(tables::pick(&APPS, &row, &names))?;
        match self
            .execute_raw(&UPDATE, &super::copy::refs(&params))
            .await?
        {
            Ok(n) => Ok(n > 0),
            Err(e) if is_unique_violation(&e) => Err(app_conflict(app)),
            Err(e) => Err(e.into()),
        }
    }

    async fn count_app_accounts(&mut self, owner: &Owner, id: &AppId) -> Result<u64> {
        let row = self
            .row(
                super::accounts::COUNT_OF_APP,
                &[&id.as_str(), &owner.as_str()],
            )
            .await?;
        Ok(row.map(|r| r.get::<_, i64>(0)).unwrap_or(0) as u64)
    }

    async fn make_app_accounts_due(&mut self, app_id: &AppId, now: Timestamp) -> Result<usize> {
        Ok(self
            .execute(super::accounts::MAKE_DUE_FOR_APP, &[&app_id, &now.unix()])
            .await? as usize)
    }

    async fn set_app_credentials_error(
        &mut self,
        app_id: &AppId,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<()> {
        self.execute(
            "UPDATE oauth_apps SET credentials_error = $2, credentials_error_at = $3 WHERE id = $1",
            &[&app_id, &error, &error.map(|_| at.unix())],
        )
        .await?;
        Ok(())
    }

    async fn set_app_last_check(&mut self, app_id: &AppId, check: &AppCheck) -> Result<()> {
        let json = super::codec::last_check_json(check);
        self.execute(
            "UPDATE oauth_apps SET last_check = $2, last_check_at = $3 WHERE id = $1",
            &[&app_id, &json, &check.checked_at.unix()],
        )
        .await?;
        Ok(())
    }
}
