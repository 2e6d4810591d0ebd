//! `dravo token issue`: a dashboard JWT signed with this database's key.

use clap::Subcommand;

use super::context::Context;
use super::output::print_line;
use crate::error::Result;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a dashboard JWT (HS256) for a tenant, signed with this database's key
    Issue {
        /// The tenant the token names (its `sub`)
        #[arg(long, value_name = "TENANT")]
        sub: String,
        /// Lifetime in seconds, 1 to auth.max_token_lifetime (604800, 7 days, by default)
        #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
        ttl: u64,
    },
}

pub fn run(ctx: &Context, cmd: &Command) -> Result<()> {
    match cmd {
        Command::Issue { sub, ttl } => ctx.block_on(async {
            let dravo = ctx.open().await?;
            print_line(&dravo.issue_token(sub, *ttl)?)
        }),
    }
}
