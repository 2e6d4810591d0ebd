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
use crate::store::{
    AccountRecord, AppRecord, EventRecord, MasterKeyRecord, OutboxRecord, PendingRecord,
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

/// An app's columns, in the order `app` reads them.
pub const APP_COLUMNS: &str = "id, owner, provider, name, client_id, client_secret_sealed, \
    scopes, created_at, credentials_error, credentials_error_at, \
    coalesce(updated_at, created_at), last_check, last_check_at";

pub fn app(row: &dyn RowRead) -> Result<AppRecord> {
    let last_check = match (row.text(11)?, optional_time(row, 12)?) {
        (Some(text), Some(at)) => Some(parse_last_check(&text, at).map_err(|e| bad(11, e))?),
        _ => None,
    };
    Ok(AppRecord {
        id: app_id(row, 0)?,
        owner: owner(row, 1)?,
        provider: provider(row, 2)?,
        name: text(row, 3)?,
        client_id: text(row, 4)?,
        client_secret_sealed: bytes(row, 5)?,
        scopes: list(row, 6)?,
        created_at: time(row, 7)?,
        credentials_error: row.text(8)?,
        credentials_error_at: optional_time(row, 9)?,
        updated_at: time(row, 10)?,
        last_check,
    })
}

/// An account's columns, in the order `account` reads them.
pub const ACCOUNT_COLUMNS: &str = "id, owner, provider, oauth_app_id, provider_account_id, \
    username, display_name, scopes, status, status_reason, access_token_sealed, \
    refresh_token_sealed, expires_at, refresh_expires_at, reauth_by, token_issued_at, \
    next_refresh_at, refresh_failures, warned_for, created_at, updated_at, kind, parent_id, tasks, \
    token_version";

/// The columns an account's upsert leaves alone on an existing row: what identifies it, and
/// when and as what it was first connected.
const ACCOUNT_KEPT_ON_UPDATE: &[&str] = &[
    "id",
    "owner",
    "provider",
    "provider_account_id",
    "created_at",
    "kind",
    "parent_id",
];

/// The account upsert: every column of `ACCOUNT_COLUMNS` as parameters 1, 2, … (written by
/// `param`), and on an existing id every column but `ACCOUNT_KEPT_ON_UPDATE` replaced.
pub fn account_upsert(param: fn(usize) -> String) -> String {
    let columns: Vec<&str> = ACCOUNT_COLUMNS.split(',').map(str::trim).collect();
    let values: Vec<String> = (1..=columns.len()).map(param).collect();
    let updates: Vec<String> = columns
        .iter()
        .filter(|c| !ACCOUNT_KEPT_ON_UPDATE.contains(c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES ({}) ON CONFLICT (id) DO UPDATE SET {}",
        values.join(", "),
        updates.join(", ")
    )
}

/// An account from the columns of `ACCOUNT_COLUMNS`.
pub fn account(row: &dyn RowRead) -> Result<AccountRecord> {
    Ok(AccountRecord {
        id: account_id(row, 0)?,
        owner: owner(row, 1)?,
        provider: provider(row, 2)?,
        oauth_app_id: optional_app_id(row, 3)?,
        provider_account_id: text(row, 4)?,
        username: row.text(5)?,
        display_name: row.text(6)?,
        scopes: list(row, 7)?,
        status: named(row, 8)?,
        status_reason: row.text(9)?,
        access_token_sealed: bytes(row, 10)?,
        refresh_token_sealed: row.bytes(11)?,
        expires_at: optional_time(row, 12)?,
        refresh_expires_at: optional_time(row, 13)?,
        reauth_by: optional_time(row, 14)?,
        token_issued_at: optional_time(row, 15)?,
        next_refresh_at: optional_time(row, 16)?,
        refresh_failures: int(row, 17)?,
        warned_for: optional_time(row, 18)?,
        created_at: time(row, 19)?,
        updated_at: time(row, 20)?,
        kind: named(row, 21)?,
        parent_id: optional_account_id(row, 22)?,
        tasks: optional_list(row, 23)?,
        token_version: int(row, 24)?,
    })
}

/// What a page of accounts lists (an [`Account`]), in the order `listed_account` reads them:
/// no sealed token nor refresher bookkeeping, so SQLite answers a page from its covering index
/// `accounts_listed` alone (migration 013).
pub const LISTED_ACCOUNT_COLUMNS: &str = "id, provider, oauth_app_id, provider_account_id, \
    username, display_name, scopes, status, status_reason, expires_at, reauth_by, created_at, \
    updated_at, kind, parent_id, tasks";

/// A listed account from the columns of `LISTED_ACCOUNT_COLUMNS` starting at index `o`.
pub fn listed_account(row: &dyn RowRead, o: usize) -> Result<Account> {
    Ok(Account {
        id: text(row, o)?,
        provider: provider(row, o + 1)?,
        oauth_app_id: row.text(o + 2)?,
        provider_account_id: text(row, o + 3)?,
        username: row.text(o + 4)?,
        display_name: row.text(o + 5)?,
        scopes: list(row, o + 6)?,
        status: named(row, o + 7)?,
        status_reason: row.text(o + 8)?,
        expires_at: optional_time(row, o + 9)?,
        reauth_by: optional_time(row, o + 10)?,
        created_at: time(row, o + 11)?,
        updated_at: time(row, o + 12)?,
        kind: named(row, o + 13)?,
        parent_id: row.text(o + 14)?,
        tasks: optional_list(row, o + 15)?,
    })
}

/// An event's columns, in the order `event` reads them.
pub const EVENT_COLUMNS: &str = "seq, id, account_id, owner, type, created_at, detail";

pub fn event(row: &dyn RowRead) -> Result<EventRecord> {
    Ok(EventRecord {
        seq: int(row, 0)?,
        id: text(row, 1).map(EventId::from_stored)?,
        account_id: account_id(row, 2)?,
        owner: owner(row, 3)?,
        kind: text(row, 4)?,
        created_at: time(row, 5)?,
        detail: serde_json::from_str(&text(row, 6)?).map_err(|e| bad(6, e))?,
    })
}

/// A webhook event's columns, in the order `outbox` reads them.
pub const OUTBOX_COLUMNS: &str = "seq, id, type, owner, body, created_at, status, attempts, \
    next_attempt_at, last_error, delivered_at";

pub fn outbox(row: &dyn RowRead) -> Result<OutboxRecord> {
    Ok(OutboxRecord {
        seq: int(row, 0)?,
        id: text(row, 1)?,
        kind: text(row, 2)?,
        owner: owner(row, 3)?,
        body: text(row, 4)?,
        created_at: time(row, 5)?,
        status: text(row, 6)?,
        attempts: int(row, 7)?,
        next_attempt_at: optional_time(row, 8)?,
        last_error: row.text(9)?,
        delivered_at: optional_time(row, 10)?,
    })
}

/// A pending connection's columns, in the order `pending` reads them.
pub const PENDING_COLUMNS: &str =
    "id, owner, provider, oauth_app_id, confirm_hash, sealed, issued_at, expires_at";

pub fn pending(row: &dyn RowRead) -> Result<PendingRecord> {
    Ok(PendingRecord {
        id: account_id(row, 0)?,
        owner: owner(row, 1)?,
        provider: provider(row, 2)?,
        oauth_app_id: optional_app_id(row, 3)?,
        confirm_hash: bytes(row, 4)?,
        sealed: bytes(row, 5)?,
        issued_at: time(row, 6)?,
        expires_at: time(row, 7)?,
    })
}

/// The master keys' columns, in the order `master_key` reads them.
pub const KEY_COLUMNS: &str = "id, check_value, added_at, retired_at, accept_until";

pub fn master_key(row: &dyn RowRead) -> Result<MasterKeyRecord> {
    Ok(MasterKeyRecord {
        id: u32::try_from(int(row, 0)?).map_err(|e| bad(0, e))?,
        check_value: text(row, 1)?,
        added_at: time(row, 2)?,
        retired_at: optional_time(row, 3)?,
        accept_until: optional_time(row, 4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_upsert_binds_every_column_and_keeps_identity_and_origin() {
        let sql = account_upsert(|n| format!("?{n}"));
        let column_count = ACCOUNT_COLUMNS.split(',').count();
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
}
