//! The command line: the clap definitions of `dravo`, and the dispatch to one module per
//! command group. Each command is a thin adapter over the core: it turns its flags into
//! domain values, calls `Dravo` (or an operation of `service`), and prints the answer through
//! `output`. Errors become exit codes here, once: 0 success, 1 runtime error, 2 usage error.

mod accounts;
mod args;
mod backup;
mod completions;
mod context;
mod doctor;
mod healthcheck;
mod init;
mod keys;
mod logging;
mod oauth_apps;
mod openapi;
mod output;
mod serve;
mod store;
mod token;
mod webhooks;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::LogFormat;
use crate::error::{Error, Result};
use context::Context;

/// `dravo --version`: the crate version and the git commit it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("DRAVO_GIT_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "dravo",
    version = VERSION,
    about = "Self-hosted OAuth connections for social accounts",
    after_help = "Every command but `serve` and `init` needs an existing database: run them where \
                  `dravo serve` runs, or name the database with --database or DRAVO_DATABASE_PATH, \
                  or the server's config file with --config or DRAVO_CONFIG."
)]
pub struct Cli {
    /// Configuration file [default: $DRAVO_CONFIG, else ./dravo.toml when present]
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Database file, or a postgres:// URL; overrides database.path (DRAVO_DATABASE_PATH) or database.url (DRAVO_DATABASE_URL) [default: ./dravo.db]
    #[arg(long, global = true, value_name = "PATH")]
    database: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API (creates the database and key file when they do not exist)
    Serve,
    /// Create the database and key file without serving (nothing changes when they exist)
    Init,
    /// Manage BYOK OAuth apps
    #[command(subcommand, name = "oauth-apps")]
    OauthApps(oauth_apps::Command),
    /// Connected accounts
    #[command(subcommand)]
    Accounts(accounts::Command),
    /// Dashboard tokens
    #[command(subcommand)]
    Token(token::Command),
    /// Print the OpenAPI spec (no server needed)
    Openapi(openapi::Args),
    /// Master keys
    #[command(subcommand)]
    Keys(keys::Command),
    /// Webhook deliveries of every tenant (operator commands)
    #[command(subcommand)]
    Webhooks(webhooks::Command),
    // `backup FILE` and `restore FILE`, each with its own help.
    #[command(flatten)]
    Backup(backup::Command),
    /// Move a whole database between SQLite and PostgreSQL
    #[command(subcommand)]
    Store(store::Command),
    // `completions SHELL` and `man`, each with its own help.
    #[command(flatten)]
    Completions(completions::Command),
    /// Check the config, the key file, the database, the public URL and each provider's
    /// platform app; print what to fix, one line each (exit 1 when something is wrong)
    Doctor,
    /// Ask the local server whether it is ready (for container and service-manager health
    /// checks): exit 0 when it is, 1 with the reason when not
    Healthcheck(healthcheck::Args),
}

/// Runs the command line and returns the exit code: 0 success, 1 runtime error, 2 usage error.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                // Help and version go to stdout as clap formats them.
                let _ = e.print();
            } else {
                eprintln!("{}", one_line_usage_error(&e.render().to_string()));
            }
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    let Cli {
        config,
        database,
        command,
    } = cli;
    let ctx = Context { config, database };
    // `serve` logs in the configured format (`log.format`), so its configuration is read
    // before logging starts; a bad one is reported like any other error.
    let serve_config = match command {
        Command::Serve => match ctx.config() {
            Ok(config) => Some(config),
            Err(e) => return exit_with(e),
        },
        _ => None,
    };
    let format = serve_config
        .as_ref()
        .map_or(LogFormat::Text, |config| config.log.format);
    // Keeps the log writer's thread alive until the program ends, so buffered lines are
    // written before exit.
    let _log_guard = logging::init(serve_config.is_some(), format);
    let outcome = match serve_config {
        Some(config) => serve::run(config),
        None => dispatch(&ctx, &command),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // Whoever read stdout has all they wanted (`dravo openapi | head -1`): a normal end.
        Err(_) if output::stdout_closed() => ExitCode::SUCCESS,
        Err(e) => exit_with(e),
    }
}

fn dispatch(ctx: &Context, command: &Command) -> Result<()> {
    match command {
        Command::Serve => serve::run(ctx.config()?),
        Command::Init => init::run(ctx),
        Command::OauthApps(cmd) => oauth_apps::run(ctx, cmd),
        Command::Accounts(cmd) => accounts::run(ctx, cmd),
        Command::Token(cmd) => token::run(ctx, cmd),
        Command::Openapi(args) => openapi::run(args),
        Command::Keys(cmd) => keys::run(ctx, cmd),
        Command::Webhooks(cmd) => webhooks::run(ctx, cmd),
        Command::Backup(cmd) => backup::run(ctx, cmd),
        Command::Store(cmd) => store::run(ctx, cmd),
        Command::Completions(cmd) => completions::run(cmd),
        Command::Doctor => doctor::run(ctx),
        Command::Healthcheck(args) => healthcheck::run(ctx, args),
    }
}

/// Prints the error as one line on stderr and picks the exit code: 2 for a usage error, 1
/// for any other.
fn exit_with(e: Error) -> ExitCode {
    eprintln!("error: {e}");
    match e {
        Error::InvalidRequest(_) => ExitCode::from(2),
        _ => ExitCode::from(1),
    }
}

/// clap's usage error as one sentence: its message and details, without the usage block.
fn one_line_usage_error(rendered: &str) -> String {
    let text = rendered
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    format!("{text} (see --help)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn a_usage_error_is_one_line_without_the_usage_block() {
        let error = Cli::try_parse_from(["dravo", "token", "issue"]).unwrap_err();
        assert_eq!(
            one_line_usage_error(&error.render().to_string()),
            "error: the following required arguments were not provided: --sub <TENANT> (see --help)"
        );
    }
}
