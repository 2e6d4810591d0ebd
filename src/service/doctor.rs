//! `dravo doctor`: what an install gets wrong, checked in the order it matters (the config,
//! the master key, the database, the public URL, each provider's platform app), one finding
//! per line, each problem with what to do about it. Later checks need earlier ones, so a
//! failure of the config, the key or the database ends the list there.

use super::Dravo;
use super::backup::{check_server_with_configured_keys, check_with_configured_keys};
use super::key_file;
use crate::config::Config;
use crate::domain::{CheckResult, CheckStatus};
use crate::error::Result;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    /// Not a problem, but worth knowing (a check that cannot be made from here).
    Info,
    /// Probably wrong; Dravo still runs.
    Warn,
    /// Wrong: something will not work until it is fixed.
    Fail,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        }
    }
}

/// One line of the report: what was checked, and what was found (with the fix, for a problem).
#[derive(Debug, Clone)]
pub struct Finding {
    pub level: Level,
    pub subject: String,
    pub message: String,
}

fn finding(level: Level, subject: impl Into<String>, message: impl Into<String>) -> Finding {
    Finding {
        level,
        subject: subject.into(),
        message: message.into(),
    }
}

/// Runs every check the loaded configuration (or its error) allows.
pub async fn diagnose(config: Result<Config>) -> Vec<Finding> {
    let mut found = Vec::new();
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            found.push(finding(Level::Fail, "config", e.to_string()));
            return found;
        }
    };
    found.push(finding(
        Level::Ok,
        "config",
        match &config.origin.file {
            Some(file) => format!("{} and the environment", file.display()),
            None => "built-in defaults and the environment (no config file)".to_owned(),
        },
    ));

    let location = config.database.location();
    let db = config.database.path.clone();
    // What a database server holds (`None`: the database is a file, `db`).
    let server = location.inspect_server().await;
    let postgres = server.is_some();
    let key_file = config.master_key_file();
    let no_database = match &server {
        // A PostgreSQL database Dravo never set up (or one that cannot be reached: that is
        // reported below, once the key is known to be there).
        Some(facts) => facts.as_ref().is_ok_and(|facts| facts.schema_version == 0),
        None => !db.exists(),
    };
    if config.security.master_key.is_none() && !key_file.exists() && no_database {
        found.push(finding(
            Level::Fail,
            "database",
            match postgres {
                true => format!(
                    "{} holds no Dravo data yet and the key file {} does not exist: `dravo init` (or `dravo serve`) sets both up; on a further node, install the first node's key file (see README, \"Running several nodes\")",
                    config.database.describe(),
                    key_file.display()
                ),
                false => format!(
                    "neither {} nor its key file {} exists: `dravo init` (or `dravo serve`) creates both; or point database.path (--database) at your database",
                    db.display(),
                    key_file.display()
                ),
            },
        ));
        return found;
    }
    match key_file::load(&config, false) {
        Ok(_) => {
            found.push(finding(
                Level::Ok,
                "master key",
                match config.security.master_key {
                    Some(_) => "from security.master_key".to_owned(),
                    None => format!(
                        "the key file {}, readable by its owner only",
                        key_file.display()
                    ),
                },
            ));
        }
        Err(e) => {
            found.push(finding(Level::Fail, "master key", e.to_string()));
            return found;
        }
    }
    if !postgres && !db.exists() {
        found.push(finding(
            Level::Fail,
            "database",
            format!(
                "{} does not exist: `dravo init` (or `dravo serve`) creates it; to bring one back, `dravo restore FILE`",
                db.display()
            ),
        ));
        return found;
    }
    let checked = match server {
        Some(facts) => check_server_with_configured_keys(&config, facts),
        None => check_with_configured_keys(&config, &db),
    };
    let shown = config.database.describe();
    // PostgreSQL checks its own pages; SQLite's integrity check is Dravo's to run.
    let integrity = if postgres { "" } else { "integrity ok, " };
    match checked {
        Ok(report) if report.schema_version < report.latest_schema_version => {
            found.push(finding(
                Level::Warn,
                "database",
                format!(
                    "{shown} is at schema {} of {}: `dravo serve` migrates it when it starts; take a backup first{}",
                    report.schema_version,
                    report.latest_schema_version,
                    if postgres {
                        " (pg_dump)"
                    } else {
                        " (`dravo backup FILE`)"
                    }
                ),
            ))
        }
        Ok(report) => found.push(finding(
            Level::Ok,
            "database",
            format!(
                "{shown}: schema {}, {integrity}{} apps, {} accounts, sealed with this key",
                report.schema_version,
                report.apps,
                report.accounts
            ),
        )),
        Err(e) => {
            found.push(finding(Level::Fail, "database", e.to_string()));
            return found;
        }
    }

    found.push(public_url_setting(&config));
    let dravo = match Dravo::open_existing(config).await {
        Ok(dravo) => dravo,
        Err(e) => {
            found.push(finding(Level::Fail, "database", e.to_string()));
            return found;
        }
    };
    found.push(from_check("public_url", dravo.public_url_check().await));

    let apps = dravo.check_default_apps().await;
    if apps.is_empty() {
        found.push(finding(
            Level::Info,
            "providers",
            "no platform app in [providers.<name>]: every start names a BYOK app (oauth_app_id; `dravo oauth-apps create`)",
        ));
    }
    for (provider, checks) in apps {
        for check in checks {
            let subject = format!("providers.{provider} {}", check.name);
            found.push(from_check(subject, check));
        }
    }
    found
}

/// `server.public_url`: set, or what its default means for redirect URIs.
fn public_url_setting(config: &Config) -> Finding {
    if let Some(warning) = config.public_url_warning() {
        return finding(Level::Fail, "server.public_url", warning);
    }
    match &config.server.public_url {
        Some(url) => finding(Level::Ok, "server.public_url", url.to_string()),
        None => finding(
            Level::Warn,
            "server.public_url",
            format!(
                "not set, so redirect URIs name {}, which only a browser on this machine reaches: set server.public_url to the URL users reach Dravo at",
                config.public_url(None)
            ),
        ),
    }
}

fn from_check(subject: impl Into<String>, check: CheckResult) -> Finding {
    let level = match check.status {
        CheckStatus::Ok => Level::Ok,
        CheckStatus::Unknown => Level::Info,
        CheckStatus::Warning => Level::Warn,
        CheckStatus::Failed => Level::Fail,
    };
    finding(level, subject, check.message)
}
