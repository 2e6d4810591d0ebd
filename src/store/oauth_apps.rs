//! SQL for the `oauth_apps` table. Every query takes the owner, so one tenant can never read
//! or change another's apps by id.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::domain::{AppId, Owner};
use crate::error::{Error, Result};
use crate::providers::Provider;

/// An OAuth app as stored, with its secret still sealed.
#[derive(Debug, Clone)]
pub struct AppRow {
    pub id: String,
    pub owner: String,
    pub provider: Provider,
    pub name: String,
    pub client_id: String,
    pub client_secret_sealed: Vec<u8>,
    pub scopes: Vec<String>,
    pub created_at: String,
}

const COLUMNS: &str =
    "id, owner, provider, name, client_id, client_secret_sealed, scopes, created_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<AppRow> {
    let provider: String = row.get(2)?;
    let scopes: String = row.get(6)?;
    let bad = |col: usize, msg: String| {
        rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, msg.into())
    };
    Ok(AppRow {
        id: row.get(0)?,
        owner: row.get(1)?,
        provider: provider.parse().map_err(|e| bad(2, format!("{e}")))?,
        name: row.get(3)?,
        client_id: row.get(4)?,
        client_secret_sealed: row.get(5)?,
        scopes: serde_json::from_str(&scopes).map_err(|e| bad(6, e.to_string()))?,
        created_at: row.get(7)?,
    })
}

/// Inserts a new app; a duplicate (owner, provider, name) is `Error::Conflict`.
pub fn insert(conn: &Connection, app: &AppRow) -> Result<()> {
    let scopes = serde_json::to_string(&app.scopes).expect("strings serialize");
    let result = conn
        .prepare_cached(&format!(
            "INSERT INTO oauth_apps ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ))?
        .execute(params![
            app.id,
            app.owner,
            app.provider.as_str(),
            app.name,
            app.client_id,
            app.client_secret_sealed,
            scopes,
            app.created_at,
        ]);
    match result {
        Ok(_) => Ok(()),
        Err(e) if super::is_unique_violation(&e) => Err(Error::Conflict(format!(
            "an OAuth app named `{}` already exists for provider {}",
            app.name, app.provider
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The owner's apps, oldest first, optionally for one provider.
pub fn list(conn: &Connection, owner: &Owner, provider: Option<Provider>) -> Result<Vec<AppRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM oauth_apps
         WHERE owner = ?1 AND (?2 IS NULL OR provider = ?2)
         ORDER BY created_at, rowid"
    ))?;
    let rows = stmt
        .query_map(
            params![owner.as_str(), provider.map(Provider::as_str)],
            from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// One of the owner's apps.
pub fn get(conn: &Connection, owner: &Owner, id: &AppId) -> Result<Option<AppRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM oauth_apps WHERE owner = ?1 AND id = ?2"
        ))?
        .query_row(params![owner.as_str(), id.as_str()], from_row)
        .optional()?)
}

/// Deletes one of the owner's apps; false when there was none.
pub fn delete(conn: &Connection, owner: &Owner, id: &AppId) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM oauth_apps WHERE owner = ?1 AND id = ?2")?
        .execute(params![owner.as_str(), id.as_str()])?;
    Ok(n > 0)
}
