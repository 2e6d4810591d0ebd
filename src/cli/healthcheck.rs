//! `dravo healthcheck`: exit 0 when the local server is ready, 1 with the reason when not
//! (see `service::healthcheck`).

use super::context::Context;
use super::output::print_line;
use crate::error::Result;

// The variant's doc comment in `mod.rs` is the command's help.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The URL to ask [default: the readiness endpoint at server.bind, on loopback when it
    /// names every interface]
    #[arg(long, value_name = "URL")]
    url: Option<String>,
}

pub fn run(ctx: &Context, args: &Args) -> Result<()> {
    let config = ctx.config()?;
    let ready = ctx.block_on(crate::service::healthcheck::probe(
        &config,
        args.url.as_deref(),
    ))?;
    print_line(&format!("{}: {}", ready.url, ready.status))
}
