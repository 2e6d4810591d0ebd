//! `dravo store copy`: a whole database from SQLite to PostgreSQL, or back.

use super::context::Context;
use super::output::{Spinner, print_line};
use crate::error::Result;
use crate::service::DatabaseLocation;
use crate::service::store_copy::copy_store;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Copy every table of one database into another, empty one (SQLite file to PostgreSQL, or
    /// back), sealed values as they are, then check each table's row count on both sides.
    /// Stop the servers that write to the source first.
    Copy {
        /// The source: a SQLite file or a postgres:// URL
        #[arg(long, value_name = "PATH|URL")]
        from: String,
        /// The target, holding no data yet: a SQLite file (created when missing) or a
        /// postgres:// URL
        #[arg(long, value_name = "PATH|URL")]
        to: String,
        /// Rows per transaction
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        batch_size: u64,
    },
}

pub fn run(ctx: &Context, cmd: &Command) -> Result<()> {
    let Command::Copy {
        from,
        to,
        batch_size,
    } = cmd;
    let (from, to) = (DatabaseLocation::parse(from), DatabaseLocation::parse(to));
    ctx.block_on(async {
        let spinner = Spinner::start(&format!("copying {} to {}", from.describe(), to.describe()));
        let report = copy_store(&from, &to, *batch_size as usize, |_, _| {}).await;
        spinner.finish();
        let report = report?;
        for (table, rows) in &report.tables {
            print_line(&format!("{table:<20} {rows:>10} rows"))?;
        }
        let total: u64 = report.tables.iter().map(|(_, n)| n).sum();
        print_line(&format!(
            "copied {total} rows from {} to {}; every table's count matches. Point database.url (or database.path) at the copy, with the same key file",
            from.describe(),
            to.describe()
        ))
    })
}
