//! Where a setting came from (the file, a `DRAVO_*` variable) and how a bad one is told: one
//! sentence that names the key and its source, never a secret's value.

use std::path::PathBuf;

use figment::Figment;

use crate::error::Error;
use crate::providers;

use super::*;

/// What a key read with serde_with's `PickFirst` (its own type, or that type written as a
/// string) accepts, for the error sentence: `PickFirst` itself only reports that every form
/// failed.
pub(super) fn accepted_forms(key: &str) -> &'static str {
    match key.rsplit('.').next().unwrap_or(key) {
        "timeout_seconds"
        | "max_token_lifetime"
        | "skew_seconds"
        | "warn_days"
        | "interval_seconds"
        | "concurrency"
        | "keepalive_hours"
        | "retention_days"
        | "max_connections"
        | "max_connections_per_ip"
        | "header_timeout_seconds"
        | "body_timeout_seconds"
        | "write_timeout_seconds"
        | "idle_timeout_seconds"
        | "start_per_second"
        | "callback_per_second"
        | "create_per_second"
        | "token_per_second"
        | "change_per_second" => "a whole number",
        "allow_insecure_key_file" | "background" => "true or false",
        "allowed_return_urls" | "scopes" | "cors_origins" => {
            "a list of strings or a space- or comma-separated string"
        }
        _ => "a value of another form (see dravo.toml.example)",
    }
}

/// The start of the message `PickFirst` gives when no form fits.
pub(super) const PICK_FIRST_FAILED: &str = "PickFirst could not deserialize any variant";

/// Where the configuration came from, to name it in error messages.
pub(super) struct Sources {
    pub(super) file: Option<PathBuf>,
    /// (dotted key, environment variable) for every `DRAVO_*` variable applied.
    pub(super) env: Vec<(String, String)>,
}

impl Sources {
    fn describe(&self, key: &str) -> String {
        // The key may be the variable's own key, a part of it (an unknown section), or lie
        // under it.
        if let Some((_, var)) = self.env.iter().find(|(k, _)| {
            k == key || key.starts_with(&format!("{k}.")) || k.starts_with(&format!("{key}."))
        }) {
            return format!(" (from environment variable {var})");
        }
        match &self.file {
            Some(f) => format!(" (in {})", f.display()),
            None => String::new(),
        }
    }
}

/// Maps `DRAVO_SERVER_PUBLIC_URL` to `server.public_url` and
/// `DRAVO_PROVIDERS_X_CLIENT_ID` to `providers.x.client_id`. Only a name that starts with a
/// known section is configuration: `DRAVO_URL` or `DRAVO_TOKEN` (client-side settings of the
/// examples and scripts) are not, and are left alone.
pub(super) fn env_key(var: &str) -> Option<String> {
    let rest = var.strip_prefix(ENV_PREFIX)?.to_ascii_lowercase();
    let (section, key) = rest.split_once('_')?;
    if !SECTIONS.contains(&section) {
        return None;
    }
    if section == "providers"
        && let Some((provider, rest)) = key.split_once('_')
        && providers::ids().any(|p| p.as_str() == provider)
    {
        return Some(format!("providers.{provider}.{rest}"));
    }
    Some(format!("{section}.{key}"))
}

/// Whether the dotted `key` holds a secret (`security.master_key`, `auth.jwt_secret`,
/// `providers.<p>.client_secret`, or any other key whose name ends in `secret` or `key`), or
/// lies under such a key: its value must never appear in a message.
pub(super) fn is_secret_key(key: &str) -> bool {
    key.split('.')
        .any(|part| part.ends_with("secret") || part.ends_with("key"))
}

/// What kind of value `actual` is, without the value itself.
pub(super) fn kind_of(actual: &figment::error::Actual) -> &'static str {
    use figment::error::Actual;
    match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a floating-point number",
        Actual::Char(_) => "a character",
        Actual::Str(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Unit | Actual::Option => "nothing",
        Actual::Seq => "a list",
        Actual::Map => "a table",
        _ => "a value of another kind",
    }
}

/// Turns a figment error into one sentence that names the key and where it came from. For a
/// key that holds a secret, only the kind of value found is named, never the value.
pub(super) fn describe_figment_error(
    err: figment::Error,
    figment: &Figment,
    sources: &Sources,
) -> Error {
    use figment::error::{Actual, Kind};
    let err = err
        .into_iter()
        .next()
        .expect("a figment error holds at least one error");
    let path = err.path.join(".");
    let secret = is_secret_key(&path);
    let found = |actual: &Actual| {
        if secret {
            kind_of(actual).to_owned()
        } else {
            actual.to_string()
        }
    };
    let sentence = match &err.kind {
        Kind::UnknownField(field, _) => {
            // figment's path already ends with the unknown field.
            let key = if path.is_empty() || !path.ends_with(field.as_str()) {
                [path.as_str(), field.as_str()]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(".")
            } else {
                path.clone()
            };
            format!(
                "unknown configuration key `{key}`{}",
                sources.describe(&key)
            )
        }
        Kind::InvalidType(actual, expected) => format!(
            "configuration key `{path}` has the wrong type: expected {expected}, found {}{}",
            found(actual),
            sources.describe(&path)
        ),
        Kind::InvalidValue(actual, expected) => format!(
            "configuration key `{path}` has an invalid value: expected {expected}, found {}{}",
            found(actual),
            sources.describe(&path)
        ),
        Kind::UnknownVariant(found, expected) => {
            let names: Vec<String> = expected.iter().map(|v| format!("`{v}`")).collect();
            let expected = match names.split_last() {
                Some((last, [])) => last.clone(),
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => "nothing".into(),
            };
            format!(
                "configuration key `{path}` has an invalid value: expected {expected}, found `{found}`{}",
                sources.describe(&path)
            )
        }
        // Its message lists each form's error over several lines; say what the key accepts.
        Kind::Message(msg) if msg.starts_with(PICK_FIRST_FAILED) => {
            let actual = figment.find_value(&path).map(|v| v.to_actual()).ok();
            let problem = match actual {
                Some(Actual::Str(_)) => "has an invalid value",
                _ => "has the wrong type",
            };
            let found = actual
                .map(|a| format!(", found {}", found(&a)))
                .unwrap_or_default();
            format!(
                "configuration key `{path}` {problem}: expected {}{found}{}",
                accepted_forms(&path),
                sources.describe(&path)
            )
        }
        Kind::Message(msg) if path.is_empty() => {
            let first_line = msg.lines().next().unwrap_or(msg);
            format!(
                "the configuration is not valid TOML: {first_line}{}",
                sources.describe("")
            )
        }
        // Other messages may quote the value.
        _ if secret => format!(
            "configuration key `{path}` has an invalid value (not shown: the key holds a secret){}",
            sources.describe(&path)
        ),
        other => format!(
            "configuration key `{path}`: {other}{}",
            sources.describe(&path)
        ),
    };
    Error::config(sentence)
}
