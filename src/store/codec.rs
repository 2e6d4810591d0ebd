//! How values that have no column type of their own are stored, the same in every backend:
//! string lists as JSON arrays, an app's last check as JSON beside its time, enums by name.

use serde::{Deserialize, Serialize};

use crate::domain::{AppCheck, CheckResult, Timestamp};

/// A list of strings (scopes, a Page's tasks) as a JSON array.
pub fn string_list_json(items: &[String]) -> String {
    serde_json::to_string(items).expect("strings serialize")
}

/// Reads a list stored by `string_list_json`.
pub fn parse_string_list(text: &str) -> Result<Vec<String>, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// `last_check` as stored: the time is its own column, and the outcome is derived from the
/// checks, so neither can disagree with the rest.
#[derive(Serialize, Deserialize)]
struct StoredCheck {
    source: String,
    checks: Vec<StoredResult>,
}

#[derive(Serialize, Deserialize)]
struct StoredResult {
    name: String,
    status: String,
    message: String,
}

/// An app's last check, without its time (stored in a column of its own).
pub fn last_check_json(check: &AppCheck) -> String {
    let stored = StoredCheck {
        source: check.source.as_str().to_owned(),
        checks: check
            .checks
            .iter()
            .map(|c| StoredResult {
                name: c.name.clone(),
                status: c.status.as_str().to_owned(),
                message: c.message.clone(),
            })
            .collect(),
    };
    serde_json::to_string(&stored).expect("strings serialize")
}

/// Reads a check stored by `last_check_json`, checked at `at`.
pub fn parse_last_check(text: &str, at: Timestamp) -> Result<AppCheck, String> {
    let stored: StoredCheck = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let checks = stored
        .checks
        .into_iter()
        .map(|c| {
            Ok(CheckResult {
                status: c.status.parse()?,
                name: c.name,
                message: c.message,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(AppCheck {
        checked_at: at,
        source: stored.source.parse()?,
        checks,
    })
}

// ---------------------------------------------------------------------------------------------
// Rows: both backends read their records through one reader per record, from the same columns.

use crate::domain::{Account, AccountId, AppId, EventId, Owner, Provider};
use crate::error::{Error, Result};
use crate::store::copy::CopyValue;
use crate::store::tables::{
    ACCOUNT_LISTING, ACCOUNTS, APPS, EVENTS, MASTER_KEYS, OUTBOX, PENDING, Projection,
    REGISTRATIONS, Table, col,
};
use crate::store::{
    AccountRecord, AppRecord, EventRecord, MasterKeyRecord, OutboxRecord, PendingRecord,
    RegistrationRecord,
};

/// A row of either backend, read by column index; NULL is `None`.
pub trait RowRead {
    fn text(&self, i: usize) -> Result<Option<String>>;
    fn int(&self, i: usize) -> Result<Option<i64>>;
    fn bytes(&self, i: usize) -> Result<Option<Vec<u8>>>;
}

/// A column that does not hold what the schema promises.
fn bad(i: usize, why: impl std::fmt::Display) -> Error {
    Error::store(format!(
        "the database holds an unreadable value in column {i}: {why}"
    ))
}

pub fn required_text(row: &dyn RowRead, i: usize) -> Result<String> {
    row.text(i)?.ok_or_else(|| bad(i, "NULL"))
}

pub fn required_int(row: &dyn RowRead, i: usize) -> Result<i64> {
    row.int(i)?.ok_or_else(|| bad(i, "NULL"))
}

pub fn required_bytes(row: &dyn RowRead, i: usize) -> Result<Vec<u8>> {
    row.bytes(i)?.ok_or_else(|| bad(i, "NULL"))
}

use self::{required_bytes as bytes, required_int as int, required_text as text};

/// A column holding the name of something that parses (a provider, a status, a kind).
fn named<T: std::str::FromStr>(row: &dyn RowRead, i: usize) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    text(row, i)?.parse().map_err(|e| bad(i, e))
}

pub fn provider(row: &dyn RowRead, i: usize) -> Result<Provider> {
    named(row, i)
}

fn list(row: &dyn RowRead, i: usize) -> Result<Vec<String>> {
    parse_string_list(&text(row, i)?).map_err(|e| bad(i, e))
}

fn optional_list(row: &dyn RowRead, i: usize) -> Result<Option<Vec<String>>> {
    row.text(i)?
        .map(|text| parse_string_list(&text).map_err(|e| bad(i, e)))
        .transpose()
}

fn owner(row: &dyn RowRead, i: usize) -> Result<Owner> {
    text(row, i).map(Owner::from_stored)
}

fn app_id(row: &dyn RowRead, i: usize) -> Result<AppId> {
    text(row, i).map(AppId::from_stored)
}

fn optional_app_id(row: &dyn RowRead, i: usize) -> Result<Option<AppId>> {
    Ok(row.text(i)?.map(AppId::from_stored))
}

fn account_id(row: &dyn RowRead, i: usize) -> Result<AccountId> {
    text(row, i).map(AccountId::from_stored)
}

fn optional_account_id(row: &dyn RowRead, i: usize) -> Result<Option<AccountId>> {
    Ok(row.text(i)?.map(AccountId::from_stored))
}

fn time(row: &dyn RowRead, i: usize) -> Result<Timestamp> {
    int(row, i).map(Timestamp::from_unix)
}

fn optional_time(row: &dyn RowRead, i: usize) -> Result<Option<Timestamp>> {
    Ok(row.int(i)?.map(Timestamp::from_unix))
}

/// The columns every reader below selects: a table's declared columns, then its position
/// where the record carries one.
pub fn app_columns() -> String {
    APPS.column_list()
}

pub fn app(row: &dyn RowRead) -> Result<AppRecord> {
    let (check, check_at) = (col!(APPS, "last_check"), col!(APPS, "last_check_at"));
    let last_check = match (row.text(check)?, optional_time(row, check_at)?) {
        (Some(text), Some(at)) => Some(parse_last_check(&text, at).map_err(|e| bad(check, e))?),
        _ => None,
    };
    let created_at = time(row, col!(APPS, "created_at"))?;
    Ok(AppRecord {
        id: app_id(row, col!(APPS, "id"))?,
        owner: owner(row, col!(APPS, "owner"))?,
        provider: provider(row, col!(APPS, "provider"))?,
        name: text(row, col!(APPS, "name"))?,
        client_id: text(row, col!(APPS, "client_id"))?,
        client_secret_sealed: bytes(row, col!(APPS, "client_secret_sealed"))?,
        scopes: list(row, col!(APPS, "scopes"))?,
        created_at,
        credentials_error: row.text(col!(APPS, "credentials_error"))?,
        credentials_error_at: optional_time(row, col!(APPS, "credentials_error_at"))?,
        // Apps stored before migration 010 have no `updated_at`: not changed since created.
        updated_at: optional_time(row, col!(APPS, "updated_at"))?.unwrap_or(created_at),
        last_check,
        user_agent: row.text(col!(APPS, "user_agent"))?,
        website: row.text(col!(APPS, "website"))?,
    })
}

/// An app's row, in the order `APPS` declares its columns.
pub fn app_values(app: &AppRecord) -> Vec<CopyValue> {
    APPS.columns
        .iter()
        .map(|(column, _)| match *column {
            "id" => text_value(app.id.as_str()),
            "owner" => text_value(app.owner.as_str()),
            "provider" => text_value(app.provider.as_str()),
            "name" => text_value(&app.name),
            "client_id" => text_value(&app.client_id),
            "client_secret_sealed" => CopyValue::Bytes(app.client_secret_sealed.clone()),
            "scopes" => CopyValue::Text(string_list_json(&app.scopes)),
            "created_at" => time_value(Some(app.created_at)),
            "credentials_error" => optional_text_value(app.credentials_error.as_deref()),
            "credentials_error_at" => time_value(app.credentials_error_at),
            "updated_at" => time_value(Some(app.updated_at)),
            "last_check" => {
                optional_text_value(app.last_check.as_ref().map(last_check_json).as_deref())
            }
            "last_check_at" => time_value(app.last_check.as_ref().map(|c| c.checked_at)),
            "user_agent" => optional_text_value(app.user_agent.as_deref()),
            "website" => optional_text_value(app.website.as_deref()),
            other => unwritten(&APPS, other),
        })
        .collect()
}

/// A registration from the columns of `REGISTRATIONS`.
pub fn registration(row: &dyn RowRead) -> Result<RegistrationRecord> {
    Ok(RegistrationRecord {
        id: text(row, col!(REGISTRATIONS, "id"))?,
        owner: owner(row, col!(REGISTRATIONS, "owner"))?,
        provider: provider(row, col!(REGISTRATIONS, "provider"))?,
        app_id: app_id(row, col!(REGISTRATIONS, "app_id"))?,
        server: text(row, col!(REGISTRATIONS, "server"))?,
        client_id: text(row, col!(REGISTRATIONS, "client_id"))?,
        client_secret_sealed: bytes(row, col!(REGISTRATIONS, "client_secret_sealed"))?,
        redirect_uri: text(row, col!(REGISTRATIONS, "redirect_uri"))?,
        scopes: list(row, col!(REGISTRATIONS, "scopes"))?,
        authorize_url: text(row, col!(REGISTRATIONS, "authorize_url"))?,
        token_url: text(row, col!(REGISTRATIONS, "token_url"))?,
        revoke_url: text(row, col!(REGISTRATIONS, "revoke_url"))?,
        pkce: int(row, col!(REGISTRATIONS, "pkce"))? != 0,
        created_at: time(row, col!(REGISTRATIONS, "created_at"))?,
    })
}

/// A registration's row, in the order `REGISTRATIONS` declares its columns.
pub fn registration_values(r: &RegistrationRecord) -> Vec<CopyValue> {
    REGISTRATIONS
        .columns
        .iter()
        .map(|(column, _)| match *column {
            "id" => text_value(&r.id),
            "owner" => text_value(r.owner.as_str()),
            "provider" => text_value(r.provider.as_str()),
            "app_id" => text_value(r.app_id.as_str()),
            "server" => text_value(&r.server),
            "client_id" => text_value(&r.client_id),
            "client_secret_sealed" => CopyValue::Bytes(r.client_secret_sealed.clone()),
            "redirect_uri" => text_value(&r.redirect_uri),
            "scopes" => CopyValue::Text(string_list_json(&r.scopes)),
            "authorize_url" => text_value(&r.authorize_url),
            "token_url" => text_value(&r.token_url),
            "revoke_url" => text_value(&r.revoke_url),
            "pkce" => CopyValue::Int(i64::from(r.pkce)),
            "created_at" => time_value(Some(r.created_at)),
            other => unwritten(&REGISTRATIONS, other),
        })
        .collect()
}

/// The columns of `APPS` an app's update writes.
pub const APP_CHANGES: &[&str] = &[
    "name",
    "scopes",
    "client_secret_sealed",
    "credentials_error",
    "credentials_error_at",
    "updated_at",
    "last_check",
    "last_check_at",
    "user_agent",
];

/// An account from the columns of `ACCOUNTS`.
pub fn account(row: &dyn RowRead) -> Result<AccountRecord> {
    Ok(AccountRecord {
        id: account_id(row, col!(ACCOUNTS, "id"))?,
        owner: owner(row, col!(ACCOUNTS, "owner"))?,
        provider: provider(row, col!(ACCOUNTS, "provider"))?,
        oauth_app_id: optional_app_id(row, col!(ACCOUNTS, "oauth_app_id"))?,
        provider_account_id: text(row, col!(ACCOUNTS, "provider_account_id"))?,
        username: row.text(col!(ACCOUNTS, "username"))?,
        display_name: row.text(col!(ACCOUNTS, "display_name"))?,
        scopes: list(row, col!(ACCOUNTS, "scopes"))?,
        status: named(row, col!(ACCOUNTS, "status"))?,
        status_reason: row.text(col!(ACCOUNTS, "status_reason"))?,
        access_token_sealed: bytes(row, col!(ACCOUNTS, "access_token_sealed"))?,
        refresh_token_sealed: row.bytes(col!(ACCOUNTS, "refresh_token_sealed"))?,
        expires_at: optional_time(row, col!(ACCOUNTS, "expires_at"))?,
        refresh_expires_at: optional_time(row, col!(ACCOUNTS, "refresh_expires_at"))?,
        reauth_by: optional_time(row, col!(ACCOUNTS, "reauth_by"))?,
        token_issued_at: optional_time(row, col!(ACCOUNTS, "token_issued_at"))?,
        next_refresh_at: optional_time(row, col!(ACCOUNTS, "next_refresh_at"))?,
        refresh_failures: int(row, col!(ACCOUNTS, "refresh_failures"))?,
        warned_for: optional_time(row, col!(ACCOUNTS, "warned_for"))?,
        created_at: time(row, col!(ACCOUNTS, "created_at"))?,
        updated_at: time(row, col!(ACCOUNTS, "updated_at"))?,
        kind: named(row, col!(ACCOUNTS, "kind"))?,
        parent_id: optional_account_id(row, col!(ACCOUNTS, "parent_id"))?,
        tasks: optional_list(row, col!(ACCOUNTS, "tasks"))?,
        token_version: int(row, col!(ACCOUNTS, "token_version"))?,
        server: row.text(col!(ACCOUNTS, "server"))?,
    })
}

/// An account's row, in the order `ACCOUNTS` declares its columns; the lease is not the
/// record's (`ACCOUNT_KEPT_ON_UPDATE`), so a new row starts without one.
pub fn account_values(a: &AccountRecord) -> Vec<CopyValue> {
    ACCOUNTS
        .columns
        .iter()
        .map(|(column, _)| match *column {
            "id" => text_value(a.id.as_str()),
            "owner" => text_value(a.owner.as_str()),
            "provider" => text_value(a.provider.as_str()),
            "oauth_app_id" => optional_text_value(a.oauth_app_id.as_ref().map(AppId::as_str)),
            "provider_account_id" => text_value(&a.provider_account_id),
            "username" => optional_text_value(a.username.as_deref()),
            "display_name" => optional_text_value(a.display_name.as_deref()),
            "scopes" => CopyValue::Text(string_list_json(&a.scopes)),
            "status" => text_value(a.status.as_str()),
            "status_reason" => optional_text_value(a.status_reason.as_deref()),
            "access_token_sealed" => CopyValue::Bytes(a.access_token_sealed.clone()),
            "refresh_token_sealed" => a
                .refresh_token_sealed
                .clone()
                .map_or(CopyValue::Null, CopyValue::Bytes),
            "expires_at" => time_value(a.expires_at),
            "refresh_expires_at" => time_value(a.refresh_expires_at),
            "reauth_by" => time_value(a.reauth_by),
            "token_issued_at" => time_value(a.token_issued_at),
            "next_refresh_at" => time_value(a.next_refresh_at),
            "refresh_failures" => CopyValue::Int(a.refresh_failures),
            "refresh_lease_until" | "refresh_lease_holder" => CopyValue::Null,
            "warned_for" => time_value(a.warned_for),
            "created_at" => time_value(Some(a.created_at)),
            "updated_at" => time_value(Some(a.updated_at)),
            "kind" => text_value(a.kind.as_str()),
            "parent_id" => optional_text_value(a.parent_id.as_ref().map(AccountId::as_str)),
            "tasks" => a
                .tasks
                .as_deref()
                .map_or(CopyValue::Null, |t| CopyValue::Text(string_list_json(t))),
            "token_version" => CopyValue::Int(a.token_version),
            "server" => optional_text_value(a.server.as_deref()),
            other => unwritten(&ACCOUNTS, other),
        })
        .collect()
}

fn text_value(text: &str) -> CopyValue {
    CopyValue::Text(text.to_owned())
}

fn optional_text_value(text: Option<&str>) -> CopyValue {
    text.map_or(CopyValue::Null, text_value)
}

fn time_value(time: Option<Timestamp>) -> CopyValue {
    time.map_or(CopyValue::Null, |t| CopyValue::Int(t.unix()))
}

/// A declared column no writer fills: a new column's writer line is missing (every test
/// that stores the record fails here).
fn unwritten(table: &Table, column: &str) -> ! {
    panic!(
        "{}.{column} is declared but the record's writer does not write it",
        table.name
    )
}

/// A listed account from the columns of `ACCOUNT_LISTING` starting at index `o`.
pub fn listed_account(row: &dyn RowRead, o: usize) -> Result<Account> {
    const L: &Projection = &ACCOUNT_LISTING;
    Ok(Account {
        id: text(row, o + col!(L, "id"))?,
        provider: provider(row, o + col!(L, "provider"))?,
        oauth_app_id: row.text(o + col!(L, "oauth_app_id"))?,
        provider_account_id: text(row, o + col!(L, "provider_account_id"))?,
        username: row.text(o + col!(L, "username"))?,
        display_name: row.text(o + col!(L, "display_name"))?,
        scopes: list(row, o + col!(L, "scopes"))?,
        status: named(row, o + col!(L, "status"))?,
        status_reason: row.text(o + col!(L, "status_reason"))?,
        expires_at: optional_time(row, o + col!(L, "expires_at"))?,
        reauth_by: optional_time(row, o + col!(L, "reauth_by"))?,
        created_at: time(row, o + col!(L, "created_at"))?,
        updated_at: time(row, o + col!(L, "updated_at"))?,
        kind: named(row, o + col!(L, "kind"))?,
        parent_id: row.text(o + col!(L, "parent_id"))?,
        tasks: optional_list(row, o + col!(L, "tasks"))?,
    })
}

/// An event's columns, then its position (`seq`).
pub fn event_columns() -> String {
    EVENTS.column_list_and("seq")
}

pub fn event(row: &dyn RowRead) -> Result<EventRecord> {
    let detail = col!(EVENTS, "detail");
    Ok(EventRecord {
        seq: int(row, EVENTS.columns.len())?,
        id: text(row, col!(EVENTS, "id")).map(EventId::from_stored)?,
        account_id: account_id(row, col!(EVENTS, "account_id"))?,
        owner: owner(row, col!(EVENTS, "owner"))?,
        kind: text(row, col!(EVENTS, "type"))?,
        created_at: time(row, col!(EVENTS, "created_at"))?,
        detail: serde_json::from_str(&text(row, detail)?).map_err(|e| bad(detail, e))?,
    })
}

/// A webhook event's columns, then its position (`seq`).
pub fn outbox_columns() -> String {
    OUTBOX.column_list_and("seq")
}

pub fn outbox(row: &dyn RowRead) -> Result<OutboxRecord> {
    Ok(OutboxRecord {
        seq: int(row, OUTBOX.columns.len())?,
        id: text(row, col!(OUTBOX, "id"))?,
        kind: text(row, col!(OUTBOX, "type"))?,
        owner: owner(row, col!(OUTBOX, "owner"))?,
        body: text(row, col!(OUTBOX, "body"))?,
        created_at: time(row, col!(OUTBOX, "created_at"))?,
        status: text(row, col!(OUTBOX, "status"))?,
        attempts: int(row, col!(OUTBOX, "attempts"))?,
        next_attempt_at: optional_time(row, col!(OUTBOX, "next_attempt_at"))?,
        last_error: row.text(col!(OUTBOX, "last_error"))?,
        delivered_at: optional_time(row, col!(OUTBOX, "delivered_at"))?,
    })
}

pub fn pending_columns() -> String {
    PENDING.column_list()
}

pub fn pending(row: &dyn RowRead) -> Result<PendingRecord> {
    Ok(PendingRecord {
        id: account_id(row, col!(PENDING, "id"))?,
        owner: owner(row, col!(PENDING, "owner"))?,
        provider: provider(row, col!(PENDING, "provider"))?,
        oauth_app_id: optional_app_id(row, col!(PENDING, "oauth_app_id"))?,
        confirm_hash: bytes(row, col!(PENDING, "confirm_hash"))?,
        sealed: bytes(row, col!(PENDING, "sealed"))?,
        issued_at: time(row, col!(PENDING, "issued_at"))?,
        expires_at: time(row, col!(PENDING, "expires_at"))?,
    })
}

pub fn key_columns() -> String {
    MASTER_KEYS.column_list()
}

pub fn master_key(row: &dyn RowRead) -> Result<MasterKeyRecord> {
    let id = col!(MASTER_KEYS, "id");
    Ok(MasterKeyRecord {
        id: u32::try_from(int(row, id)?).map_err(|e| bad(id, e))?,
        check_value: text(row, col!(MASTER_KEYS, "check_value"))?,
        added_at: time(row, col!(MASTER_KEYS, "added_at"))?,
        retired_at: optional_time(row, col!(MASTER_KEYS, "retired_at"))?,
        accept_until: optional_time(row, col!(MASTER_KEYS, "accept_until"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tables::{ACCOUNT_KEPT_ON_UPDATE, upsert_sql};

    #[test]
    fn the_account_upsert_binds_every_column_and_keeps_identity_origin_and_lease() {
        let sql = upsert_sql(&ACCOUNTS, ACCOUNT_KEPT_ON_UPDATE, |n| format!("?{n}"));
        let column_count = ACCOUNTS.columns.len();
        assert!(sql.contains(&format!("?{column_count})")), "{sql}");
        assert!(!sql.contains(&format!("?{}", column_count + 1)), "{sql}");
        let (_, set) = sql.split_once("DO UPDATE SET").expect("an upsert");
        for kept in ACCOUNT_KEPT_ON_UPDATE {
            assert!(
                !set.contains(&format!(" {kept} =")),
                "{kept} is replaced: {sql}"
            );
        }
        for replaced in ["access_token_sealed", "status", "tasks", "updated_at"] {
            assert!(
                set.contains(&format!("{replaced} = excluded.{replaced}")),
                "{sql}"
            );
        }
    }

    #[test]
    fn an_app_update_binds_its_changes_then_its_key() {
        let sql = crate::store::tables::update_sql(&APPS, APP_CHANGES, &["owner", "id"], |n| {
            format!("?{n}")
        });
        assert!(
            sql.starts_with("UPDATE oauth_apps SET name = ?1, scopes = ?2, "),
            "{sql}"
        );
        assert!(
            sql.ends_with("last_check_at = ?8, user_agent = ?9 WHERE owner = ?10 AND id = ?11"),
            "{sql}"
        );
    }
}
