//! `dravo openapi`: the HTTP API's spec, with no server and no database.

use super::output::print_line;
use crate::error::Result;

// The variant's doc comment in `mod.rs` is the command's help.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// YAML instead of JSON
    #[arg(long)]
    yaml: bool,
}

pub fn run(args: &Args) -> Result<()> {
    let spec = if args.yaml {
        crate::api::spec_yaml()
    } else {
        crate::api::spec_json()
    };
    print_line(spec.trim_end())
}
