//! SQL for the `oauth_apps` table. Every query takes the owner.

use std::sync::LazyLock;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{is_unique_violation, string_list_json};
use crate::domain::{AppCheck, AppId, Owner, Provider, Timestamp};
use crate::error::{Error, Result};
use crate::store::AppRecord;
use crate::store::codec::{self, last_check_json};

use crate::store::codec::APP_COLUMNS as COLUMNS;
const INSERT_COLUMNS: &str = "id, owner, provider, name, client_id, client_secret_sealed, \
    scopes, created_at, credentials_error, credentials_error_at, updated_at, last_check, \
    last_check_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<AppRecord> {
    super::via(row, codec::app)
}

pub(super) fn insert(conn: &Connection, app: &AppRecord) -> Result<()> {
    let result = conn
        .prepare_cached(&format!(
            "INSERT INTO oauth_apps ({INSERT_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
        ))?
        .execute(params![
            app.id,
            app.owner,
            app.provider.as_str(),
            app.name,
            app.client_id,
            app.client_secret_sealed,
            string_list_json(&app.scopes),
            app.created_at.unix(),
            app.credentials_error,
            app.credentials_error_at.map(Timestamp::unix),
            app.updated_at.unix(),
            app.last_check.as_ref().map(last_check_json),
            app.last_check.as_ref().map(|c| c.checked_at.unix()),
        ]);
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
    LazyLock::new(|| super::list_by_owner_sql("oauth_apps", COLUMNS));

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
            "SELECT {COLUMNS} FROM oauth_apps WHERE owner = ?1 AND id = ?2"
        ))?
        .query_row(params![owner.as_str(), id.as_str()], from_row)
        .optional()?)
}

pub(super) fn delete(conn: &Connection, owner: &Owner, id: &AppId) -> Result<bool> {
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
    let result = conn
        .prepare_cached(
            "UPDATE oauth_apps SET name = ?3, scopes = ?4, client_secret_sealed = ?5,
                 credentials_error = ?6, credentials_error_at = ?7, updated_at = ?8,
                 last_check = ?9, last_check_at = ?10
             WHERE owner = ?1 AND id = ?2",
        )?
        .execute(params![
            app.owner,
            app.id,
            app.name,
            string_list_json(&app.scopes),
            app.client_secret_sealed,
            app.credentials_error,
            app.credentials_error_at.map(Timestamp::unix),
            app.updated_at.unix(),
            app.last_check.as_ref().map(last_check_json),
            app.last_check.as_ref().map(|c| c.checked_at.unix()),
        ]);
    match result {
        Ok(n) => Ok(n > 0),
        Err(e) if is_unique_violation(&e) => Err(Error::Conflict(format!(
            "an OAuth app named `{}` already exists for provider {}",
            app.name, app.provider
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Any one app (the first stored), of any owner: a sample to check a backup's key with.
pub(super) fn first(conn: &Connection) -> Result<Option<AppRecord>> {
    Ok(conn
        .prepare(&format!(
            "SELECT {COLUMNS} FROM oauth_apps ORDER BY rowid LIMIT 1"
        ))?
        .query_row([], from_row)
        .optional()?)
}
