//! SQL for connected accounts. Every query takes the owner.

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::domain::Owner;
use crate::error::Result;
use crate::providers::Provider;

/// A connected account as stored, tokens still sealed.
#[derive(Debug, Clone)]
pub struct AccountRow {
    pub id: String,
    pub owner: String,
    pub provider: Provider,
    pub oauth_app_id: Option<String>,
    pub provider_account_id: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub scopes: Vec<String>,
    pub status: String,
    pub access_token_sealed: Vec<u8>,
    pub refresh_token_sealed: Option<Vec<u8>>,
    pub expires_at: Option<String>,
    pub refresh_expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

const COLUMNS: &str = "id, owner, provider, oauth_app_id, provider_account_id, username, \
    display_name, scopes, status, access_token_sealed, refresh_token_sealed, expires_at, \
    refresh_expires_at, created_at, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<AccountRow> {
    let bad = |col: usize, msg: String| {
        rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, msg.into())
    };
    let provider: String = row.get(2)?;
    let scopes: String = row.get(7)?;
    Ok(AccountRow {
        id: row.get(0)?,
        owner: row.get(1)?,
        provider: provider.parse().map_err(|e| bad(2, format!("{e}")))?,
        oauth_app_id: row.get(3)?,
        provider_account_id: row.get(4)?,
        username: row.get(5)?,
        display_name: row.get(6)?,
        scopes: serde_json::from_str(&scopes).map_err(|e| bad(7, e.to_string()))?,
        status: row.get(8)?,
        access_token_sealed: row.get(9)?,
        refresh_token_sealed: row.get(10)?,
        expires_at: row.get(11)?,
        refresh_expires_at: row.get(12)?,
        created_at: row.get(13)?,
        updated_at: row.get(14)?,
    })
}

/// The id of the owner's account for this provider account, if connected before.
fn existing_id(
    conn: &Connection,
    owner: &str,
    provider: Provider,
    provider_account_id: &str,
) -> Result<Option<(String, String)>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, created_at FROM accounts
             WHERE owner = ?1 AND provider = ?2 AND provider_account_id = ?3",
        )?
        .query_row(
            params![owner, provider.as_str(), provider_account_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// Inserts or updates the account for (owner, provider, provider_account_id), in one
/// transaction. `build` receives the row's id (existing or `new_id`) and creation time, and
/// returns the full row; the id is needed first because the sealed tokens are bound to it.
pub fn upsert(
    conn: &mut Connection,
    owner: &str,
    provider: Provider,
    provider_account_id: &str,
    new_id: String,
    build: impl FnOnce(String, Option<String>) -> Result<AccountRow>,
) -> Result<AccountRow> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let existing = existing_id(&tx, owner, provider, provider_account_id)?;
    let row = match existing {
        Some((id, created_at)) => build(id, Some(created_at))?,
        None => build(new_id, None)?,
    };
    let scopes = serde_json::to_string(&row.scopes).expect("strings serialize");
    tx.prepare_cached(&format!(
        "INSERT INTO accounts ({COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT (id) DO UPDATE SET
             oauth_app_id = excluded.oauth_app_id,
             username = excluded.username,
             display_name = excluded.display_name,
             scopes = excluded.scopes,
             status = excluded.status,
             access_token_sealed = excluded.access_token_sealed,
             refresh_token_sealed = excluded.refresh_token_sealed,
             expires_at = excluded.expires_at,
             refresh_expires_at = excluded.refresh_expires_at,
             updated_at = excluded.updated_at"
    ))?
    .execute(params![
        row.id,
        row.owner,
        row.provider.as_str(),
        row.oauth_app_id,
        row.provider_account_id,
        row.username,
        row.display_name,
        scopes,
        row.status,
        row.access_token_sealed,
        row.refresh_token_sealed,
        row.expires_at,
        row.refresh_expires_at,
        row.created_at,
        row.updated_at,
    ])?;
    tx.commit()?;
    Ok(row)
}

/// The owner's accounts, oldest first, optionally for one provider.
pub fn list(
    conn: &Connection,
    owner: &Owner,
    provider: Option<Provider>,
) -> Result<Vec<AccountRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM accounts
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

/// One of the owner's accounts.
pub fn get(conn: &Connection, owner: &Owner, id: &str) -> Result<Option<AccountRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM accounts WHERE owner = ?1 AND id = ?2"
        ))?
        .query_row(params![owner.as_str(), id], from_row)
        .optional()?)
}
