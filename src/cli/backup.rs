//! `dravo backup FILE` and `dravo restore FILE`: a checked copy of the live database, and
//! putting one back.

use std::path::PathBuf;

use super::context::Context;
use super::output::{Spinner, print_line};
use crate::error::Result;
use crate::service::backup::BackupReport;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Copy the database, while the server runs, to a new file, and check the copy
    Backup {
        /// The new file (refused if it exists); created with mode 0600
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Replace the database with a backup (refused while a server runs, or when this key
    /// cannot open the backup)
    Restore {
        /// A file `dravo backup` wrote
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

pub fn run(ctx: &Context, cmd: &Command) -> Result<()> {
    match cmd {
        Command::Backup { file } => ctx.block_on(async {
            let dravo = ctx.open().await?;
            let spinner = Spinner::start(&format!("backing up to {}", file.display()));
            let report = dravo.backup(file).await;
            spinner.finish();
            print_line(&backup_line("backed up to", &report?))
        }),
        Command::Restore { file } => {
            let config = ctx.config()?;
            let report = crate::service::backup::restore(&config, file)?;
            print_line(&format!(
                "{} (into {}): start the server again",
                backup_line("restored", &report),
                config.database.path.display()
            ))
        }
    }
}

/// `backed up to FILE: 1234 bytes, schema 7, integrity ok, 5 apps, 12 accounts, sealed with
/// this key`.
fn backup_line(verb: &str, r: &BackupReport) -> String {
    format!(
        "{verb} {}: {} bytes, schema {}, integrity ok, {} apps, {} accounts, sealed with this key",
        r.path.display(),
        r.bytes,
        r.schema_version,
        r.apps,
        r.accounts
    )
}
