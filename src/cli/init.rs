//! `dravo init`: the database and key file, created without serving (see `service::init`).

use super::context::Context;
use super::output::print_line;
use crate::error::Result;
use crate::service::init::{DatabaseSetup, InitReport, KeySetup};

pub fn run(ctx: &Context) -> Result<()> {
    let config = ctx.config()?;
    let report = ctx.block_on(crate::service::init::init(config))?;
    print_line(&report_line(&report))
}

/// What `init` did, in one line.
fn report_line(report: &InitReport) -> String {
    let key = match &report.key {
        KeySetup::FromConfig => "the master key from security.master_key".to_owned(),
        KeySetup::KeyFile(k) => format!("the key file {}", k.display()),
        KeySetup::NewKeyFile(k) => format!(
            "a new key file {} (back it up: without it the database cannot be read)",
            k.display()
        ),
    };
    let database = &report.database;
    match report.setup {
        DatabaseSetup::Existed => {
            format!("{database} already exists and opens with {key}: nothing to do")
        }
        DatabaseSetup::PostgresReady => format!("{database} is ready, with {key}"),
        DatabaseSetup::Created => format!("created {database} with {key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_reads_as_one_line() {
        let report = |setup, key| InitReport {
            database: "dravo.db".into(),
            setup,
            key,
        };
        assert_eq!(
            report_line(&report(
                DatabaseSetup::Created,
                KeySetup::NewKeyFile("dravo.key".into())
            )),
            "created dravo.db with a new key file dravo.key (back it up: without it the database cannot be read)"
        );
        assert_eq!(
            report_line(&report(
                DatabaseSetup::Existed,
                KeySetup::KeyFile("dravo.key".into())
            )),
            "dravo.db already exists and opens with the key file dravo.key: nothing to do"
        );
        assert_eq!(
            report_line(&report(DatabaseSetup::PostgresReady, KeySetup::FromConfig)),
            "dravo.db is ready, with the master key from security.master_key"
        );
    }
}
