//! SQL for the `oauth_apps` table. Every query takes the owner.

use std::sync::LazyLock;

use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::copy::sqlite_value;
use super::is_unique_violation;
use crate::domain::{AppCheck, AppId, Owner, Provider, Timestamp};
use crate::error::{Error, Result};
use crate::store::codec::{self, last_check_json};
use crate::store::{AppRecord, RegistrationRecord};

use crate::store::tables::{self, APPS, REGISTRATIONS};

use async_trait::async_trait;

use super::SqliteTx;
use crate::store::AppTx;

static COLUMNS: LazyLock<String> = LazyLock::new(codec::app_columns);

fn from_row(row: &Row<'_>) -> rusqlite::Result<AppRecord> {
    super::via(row, codec::app)
}

pub(super) fn insert(conn: &Connection, app: &AppRecord) -> Result<()> {
    static INSERT: LazyLock<String> =
        LazyLock::new(|| tables::insert_sql(&APPS, |n| format!("?{n}")));
    let values = codec::app_values(app);
    let result = conn
        .prepare_cached(&INSERT)?
        .execute(params_from_iter(values.iter().map(sqlite_value)));
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(Error::Conflict(format!(
            "an OAuth app named `{}` already exists for provider {}",
            app.name, app.provider
        ))),
        Err(e) => Err(e.into()),
    }
}

/// An owner's apps (`oauth_apps_by_owner`).
pub(super) static LIST_SQL: LazyLock<String> =
    LazyLock::new(|| super::list_by_owner_sql("oauth_apps", &COLUMNS));

pub(super) fn list(
    conn: &Connection,
    owner: &Owner,
    provider: Option<Provider>,
) -> Result<Vec<AppRecord>> {
    super::list_by_owner(conn, &LIST_SQL, owner, provider, from_row)
}

pub(super) fn get(conn: &Connection, owner: &Owner, id: &AppId) -> Result<Option<AppRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {} FROM oauth_apps WHERE owner = ?1 AND id = ?2",
            *COLUMNS
        ))?
        .query_row(params![owner.as_str(), id.as_str()], from_row)
        .optional()?)
}

pub(super) fn delete(conn: &Connection, owner: &Owner, id: &AppId) -> Result<bool> {
    conn.prepare_cached("DELETE FROM instance_registrations WHERE owner = ?1 AND app_id = ?2")?
        .execute(params![owner.as_str(), id.as_str()])?;
    let n = conn
        .prepare_cached("DELETE FROM oauth_apps WHERE owner = ?1 AND id = ?2")?
        .execute(params![owner.as_str(), id.as_str()])?;
    Ok(n > 0)
}

/// Records or clears the provider's refusal of an app's credentials.
pub(super) fn set_credentials_error(
    conn: &Connection,
    id: &AppId,
    error: Option<&str>,
    at: Timestamp,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE oauth_apps SET credentials_error = ?2, credentials_error_at = ?3 WHERE id = ?1",
    )?
    .execute(params![id, error, error.map(|_| at.unix())])?;
    Ok(())
}

/// Records the last check of an app's configuration.
pub(super) fn set_last_check(conn: &Connection, id: &AppId, check: &AppCheck) -> Result<()> {
    conn.prepare_cached("UPDATE oauth_apps SET last_check = ?2, last_check_at = ?3 WHERE id = ?1")?
        .execute(params![id, last_check_json(check), check.checked_at.unix()])?;
    Ok(())
}

/// Writes the changeable fields of one of the owner's apps; false when there is none.
pub(super) fn update(conn: &Connection, app: &AppRecord) -> Result<bool> {
    const KEY: &[&str] = &["owner", "id"];
    static UPDATE: LazyLock<String> =
        LazyLock::new(|| tables::update_sql(&APPS, codec::APP_CHANGES, KEY, |n| format!("?{n}")));
    let row = codec::app_values(app);
    let values = tables::pick(&APPS, &row, &[codec::APP_CHANGES, KEY].concat());
    let result = conn.prepare_cached(&UPDATE)?.execute(params_from_iter(
        values.into_iter().map(|(_, v)| sqlite_value(v)),
    ));
    match result {
        Ok(n) => Ok(n > 0),
        Err(e) if is_unique_violation(&e) => Err(Error::Conflict(format!(
            "an OAuth app named `{}` already exists for provider {}",
            app.name, app.provider
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Any one app (the first stored), of any owner: a sample to check a backup's key with. The
/// backup may be of an older schema: a column it lacks (one added since) reads as NULL.
pub(super) fn first(conn: &Connection) -> Result<Option<AppRecord>> {
    let present = conn
        .prepare("SELECT name FROM pragma_table_info('oauth_apps')")?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    let columns: Vec<String> = APPS
        .columns
        .iter()
        .map(|(name, _)| {
            if present.iter().any(|p| p == name) {
                (*name).to_owned()
            } else {
                format!("NULL AS {name}")
            }
        })
        .collect();
    Ok(conn
        .prepare(&format!(
            "SELECT {} FROM oauth_apps ORDER BY rowid LIMIT 1",
            columns.join(", ")
        ))?
        .query_row([], from_row)
        .optional()?)
}

static REGISTRATION_COLUMNS: LazyLock<String> = LazyLock::new(|| REGISTRATIONS.column_list());

/// Stores a registration, replacing the app's earlier one on the same server.
pub(super) fn put_registration(conn: &Connection, r: &RegistrationRecord) -> Result<()> {
    static INSERT: LazyLock<String> =
        LazyLock::new(|| tables::insert_sql(&REGISTRATIONS, |n| format!("?{n}")));
    conn.prepare_cached("DELETE FROM instance_registrations WHERE app_id = ?1 AND server = ?2")?
        .execute(params![r.app_id.as_str(), r.server])?;
    let values = codec::registration_values(r);
    conn.prepare_cached(&INSERT)?
        .execute(params_from_iter(values.iter().map(sqlite_value)))?;
    Ok(())
}

pub(super) fn registration(
    conn: &Connection,
    app_id: &AppId,
    server: &str,
) -> Result<Option<RegistrationRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {} FROM instance_registrations WHERE app_id = ?1 AND server = ?2",
            *REGISTRATION_COLUMNS
        ))?
        .query_row(params![app_id.as_str(), server], |row| {
            super::via(row, codec::registration)
        })
        .optional()?)
}

pub(super) fn registrations(
    conn: &Connection,
    owner: &Owner,
    app_id: &AppId,
) -> Result<Vec<RegistrationRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM instance_registrations WHERE owner = ?1 AND app_id = ?2
         ORDER BY created_at, rowid",
        *REGISTRATION_COLUMNS
    ))?;
    let rows = stmt.query_map(params![owner.as_str(), app_id.as_str()], |row| {
        super::via(row, codec::registration)
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

#[async_trait]
impl AppTx for SqliteTx<'_> {
    async fn insert_app(&mut self, app: &AppRecord) -> Result<()> {
        insert(&*self.0, app)
    }

    async fn put_registration(&mut self, registration: &RegistrationRecord) -> Result<()> {
        put_registration(&*self.0, registration)
    }

    async fn delete_app(&mut self, owner: &Owner, id: &AppId) -> Result<bool> {
        delete(&*self.0, owner, id)
    }

    async fn get_app(&mut self, owner: &Owner, id: &AppId) -> Result<Option<AppRecord>> {
        get(&*self.0, owner, id)
    }

    async fn update_app(&mut self, app: &AppRecord) -> Result<bool> {
        update(&*self.0, app)
    }

    async fn count_app_accounts(&mut self, owner: &Owner, id: &AppId) -> Result<u64> {
        super::accounts::count_of_app(&*self.0, owner, id)
    }

    async fn make_app_accounts_due(&mut self, app_id: &AppId, now: Timestamp) -> Result<usize> {
        super::accounts::make_due_for_app(&*self.0, app_id, now)
    }

    async fn set_app_credentials_error(
        &mut self,
        app_id: &AppId,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<()> {
        set_credentials_error(&*self.0, app_id, error, at)
    }

    async fn set_app_last_check(&mut self, app_id: &AppId, check: &AppCheck) -> Result<()> {
        set_last_check(&*self.0, app_id, check)
    }
}
