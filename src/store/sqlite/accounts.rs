//! SQL for connected accounts. Every query takes the owner.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{
    optional_timestamp_column, provider_column, string_list_column, string_list_json,
    timestamp_column,
};
use crate::domain::{AccountId, Owner, Provider};
use crate::error::Result;
use crate::store::{AccountRecord, ExistingAccount};

const COLUMNS: &str = "id, owner, provider, oauth_app_id, provider_account_id, username, \
    display_name, scopes, status, access_token_sealed, refresh_token_sealed, expires_at, \
    refresh_expires_at, created_at, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<AccountRecord> {
    Ok(AccountRecord {
        id: row.get(0)?,
        owner: row.get(1)?,
        provider: provider_column(row, 2)?,
        oauth_app_id: row.get(3)?,
        provider_account_id: row.get(4)?,
        username: row.get(5)?,
        display_name: row.get(6)?,
        scopes: string_list_column(row, 7)?,
        status: row.get(8)?,
        access_token_sealed: row.get(9)?,
        refresh_token_sealed: row.get(10)?,
        expires_at: optional_timestamp_column(row, 11)?,
        refresh_expires_at: optional_timestamp_column(row, 12)?,
        created_at: timestamp_column(row, 13)?,
        updated_at: timestamp_column(row, 14)?,
    })
}

pub(super) fn find(
    conn: &Connection,
    owner: &Owner,
    provider: Provider,
    provider_account_id: &str,
) -> Result<Option<ExistingAccount>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, created_at FROM accounts
             WHERE owner = ?1 AND provider = ?2 AND provider_account_id = ?3",
        )?
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
    conn.prepare_cached(&format!(
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
        string_list_json(&row.scopes),
        row.status,
        row.access_token_sealed,
        row.refresh_token_sealed,
        row.expires_at.map(|t| t.unix()),
        row.refresh_expires_at.map(|t| t.unix()),
        row.created_at.unix(),
        row.updated_at.unix(),
    ])?;
    Ok(())
}

pub(super) fn list(
    conn: &Connection,
    owner: &Owner,
    provider: Option<Provider>,
) -> Result<Vec<AccountRecord>> {
    super::list_by_owner(conn, "accounts", COLUMNS, owner, provider, from_row)
}

pub(super) fn get(
    conn: &Connection,
    owner: &Owner,
    id: &AccountId,
) -> Result<Option<AccountRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM accounts WHERE owner = ?1 AND id = ?2"
        ))?
        .query_row(params![owner.as_str(), id.as_str()], from_row)
        .optional()?)
}
