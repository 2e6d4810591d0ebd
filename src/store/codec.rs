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
