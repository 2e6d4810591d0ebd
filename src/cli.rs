//! The command line: clap definitions, and one short function per subcommand over the core.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use poem_openapi::types::ToJSON;

use crate::config::{Config, LogFormat};
use crate::domain::{
    AccountId, AccountKind, AccountStatus, AppCheck, AppId, AppName, CheckStatus, ClientId,
    ClientSecret, EventId, Owner, Provider, Scopes, Timestamp, is_hidden,
};
use crate::error::{Error, Result};
use crate::service::keys::{KeysStatus, RotateOptions, RotateProgress, RotateReport};
use crate::service::{
    Account, AccountFilter, AppChanges, DatabaseLocation, Dravo, NewApp, OAuthApp, WebhookStatus,
};
use crate::views::{
    AccountPageView, AccountView, AppCheckView, EventView, OAuthAppView, WebhookEventView,
};

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
                  `dravo serve` runs, or name the database with --database or DRAVO_DATABASE_PATH."
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
    OauthApps(OauthAppsCommand),
    /// Connected accounts
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Dashboard tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print the OpenAPI spec (no server needed)
    Openapi {
        /// YAML instead of JSON
        #[arg(long)]
        yaml: bool,
    },
    /// Master keys
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Webhook deliveries of every tenant (operator commands)
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
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
    /// Move a whole database between SQLite and PostgreSQL
    #[command(subcommand)]
    Store(StoreCommand),
    /// Print a shell completion script: `dravo completions bash > /etc/bash_completion.d/dravo`
    Completions {
        /// bash, zsh, fish, powershell or elvish
        #[arg(value_name = "SHELL", ignore_case = true)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `dravo man > /usr/local/share/man/man1/dravo.1`
    Man,
    /// Check the config, the key file, the database, the public URL and each provider's
    /// platform app; print what to fix, one line each (exit 1 when something is wrong)
    Doctor,
    /// Ask the local server whether it is ready (for container and service-manager health
    /// checks): exit 0 when it is, 1 with the reason when not
    Healthcheck {
        /// The URL to ask [default: the readiness endpoint at server.bind, on loopback when it
        /// names every interface]
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
}

/// `--owner`, as every tenant-scoped command takes it.
#[derive(Debug, Args)]
struct OwnerArg {
    /// The tenant: what your dashboard's JWTs carry in `sub` (auth.tenant_claim)
    #[arg(long, value_name = "TENANT")]
    owner: String,
}

impl OwnerArg {
    fn parse(&self) -> Result<Owner> {
        Owner::parse("--owner", &self.owner)
    }
}

/// `--provider` as a filter.
#[derive(Debug, Args)]
struct ProviderFilter {
    /// Only this provider's: x, linkedin, facebook, instagram or tiktok (any case)
    #[arg(long, value_name = "PROVIDER", value_parser = parse_provider)]
    provider: Option<Provider>,
}

#[derive(Debug, Subcommand)]
enum OauthAppsCommand {
    /// Store a new OAuth app (the secret comes from a prompt, stdin or an environment variable)
    Create(CreateArgs),
    /// List an owner's OAuth apps, oldest first
    List {
        #[command(flatten)]
        owner: OwnerArg,
        #[command(flatten)]
        provider: ProviderFilter,
        /// Print the JSON the API returns
        #[arg(long)]
        json: bool,
    },
    /// Show one OAuth app
    Show {
        #[command(flatten)]
        owner: OwnerArg,
        /// The app's id (oa_…), as `oauth-apps list` shows it
        #[arg(value_name = "OAUTH_APP_ID")]
        app_id: String,
        /// Print the JSON the API returns
        #[arg(long)]
        json: bool,
    },
    /// Change an OAuth app's name, scopes or client secret (at least one)
    Update(UpdateArgs),
    /// Check an OAuth app's configuration: credentials at the provider (where it can tell),
    /// redirect URI, scopes, and whether server.public_url reaches this server
    Check {
        #[command(flatten)]
        owner: OwnerArg,
        /// The app's id (oa_…), as `oauth-apps list` shows it
        #[arg(value_name = "OAUTH_APP_ID")]
        app_id: String,
        /// Print the JSON the API returns
        #[arg(long)]
        json: bool,
    },
    /// Delete an OAuth app; refused while connected accounts use it, unless --cascade
    Delete {
        #[command(flatten)]
        owner: OwnerArg,
        /// The app's id (oa_…), as `oauth-apps list` shows it
        #[arg(value_name = "OAUTH_APP_ID")]
        app_id: String,
        /// Also revoke (where the provider can) and delete the accounts connected with it
        #[arg(long)]
        cascade: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AccountsCommand {
    /// List an owner's connected accounts, oldest first
    List {
        #[command(flatten)]
        owner: OwnerArg,
        #[command(flatten)]
        provider: ProviderFilter,
        #[command(flatten)]
        status: StatusFilter,
        /// Only accounts of this kind: user, page or organization
        #[arg(long, value_name = "KIND", value_parser = parse_kind)]
        kind: Option<AccountKind>,
        /// Only the Pages or organizations of this user account (acc_…)
        #[arg(long, value_name = "ACCOUNT_ID", value_parser = parse_account_id)]
        parent: Option<AccountId>,
        /// Print the JSON the API returns
        #[arg(long)]
        json: bool,
    },
    /// Show one connected account
    Show {
        #[command(flatten)]
        owner: OwnerArg,
        /// The account's id (acc_…), as `accounts list` shows it
        #[arg(value_name = "ACCOUNT_ID")]
        account_id: String,
        /// Print the JSON the API returns
        #[arg(long)]
        json: bool,
    },
    /// Refresh an account's tokens at its provider now
    Refresh {
        #[command(flatten)]
        owner: OwnerArg,
        /// The account's id (acc_…)
        #[arg(value_name = "ACCOUNT_ID")]
        account_id: String,
        /// Print the JSON the API returns
        #[arg(long)]
        json: bool,
    },
    /// Revoke an account at its provider (where it can) and delete it
    Delete {
        #[command(flatten)]
        owner: OwnerArg,
        /// The account's id (acc_…)
        #[arg(value_name = "ACCOUNT_ID")]
        account_id: String,
    },
    /// Show an account's events, newest first
    Events {
        #[command(flatten)]
        owner: OwnerArg,
        /// The account's id (acc_…)
        #[arg(value_name = "ACCOUNT_ID")]
        account_id: String,
        /// Print the events as JSON, as the API's `data`
        #[arg(long)]
        json: bool,
    },
    /// Print the account's access token (refreshed first if due), for scripts on this machine
    Token {
        #[command(flatten)]
        owner: OwnerArg,
        /// The account's id (acc_…)
        #[arg(value_name = "ACCOUNT_ID")]
        account_id: String,
        /// Refresh even when the stored token is still fresh
        #[arg(long)]
        force_refresh: bool,
    },
}

/// `--status` as a filter.
#[derive(Debug, Args)]
struct StatusFilter {
    /// Only accounts with this status: active, expiring or needs_reauth
    #[arg(long, value_name = "STATUS", value_parser = parse_status)]
    status: Option<AccountStatus>,
}

fn parse_status(value: &str) -> std::result::Result<AccountStatus, String> {
    AccountStatus::parse_filter(&value.to_ascii_lowercase()).map_err(|e| e.to_string())
}

fn parse_kind(value: &str) -> std::result::Result<AccountKind, String> {
    AccountKind::parse_filter(&value.to_ascii_lowercase()).map_err(|e| e.to_string())
}

fn parse_account_id(value: &str) -> std::result::Result<AccountId, String> {
    AccountId::parse(value).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("secret").required(true).args(["client_secret_stdin", "client_secret_env"])))]
struct CreateArgs {
    #[command(flatten)]
    owner: OwnerArg,
    /// The provider: x, linkedin, facebook, instagram or tiktok (any case)
    #[arg(long, value_name = "PROVIDER", value_parser = parse_provider)]
    provider: Provider,
    /// A name for the app, 1 to 120 characters, unique per owner and provider
    #[arg(long)]
    name: String,
    /// The client id (TikTok: client key) from the provider's developer portal
    #[arg(long)]
    client_id: String,
    /// Read the client secret from standard input: a prompt that does not echo at a
    /// terminal, else the whole input (one trailing newline is stripped)
    #[arg(long)]
    client_secret_stdin: bool,
    /// Read the client secret from this environment variable
    #[arg(long, value_name = "VAR")]
    client_secret_env: Option<String>,
    /// Scopes instead of the provider's defaults, space- or comma-separated
    #[arg(long)]
    scopes: Option<String>,
    /// Print the JSON the API returns
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("secret").args(["client_secret_stdin", "client_secret_env"])))]
#[command(group(
    clap::ArgGroup::new("change")
        .required(true)
        .multiple(true)
        .args(["name", "scopes", "client_secret_stdin", "client_secret_env"])
))]
struct UpdateArgs {
    #[command(flatten)]
    owner: OwnerArg,
    /// The app's id (oa_…), as `oauth-apps list` shows it
    #[arg(value_name = "OAUTH_APP_ID")]
    app_id: String,
    /// A new name, 1 to 120 characters, unique per owner and provider
    #[arg(long)]
    name: Option<String>,
    /// Scopes to request from now on, space- or comma-separated (connected accounts keep
    /// their grants)
    #[arg(long)]
    scopes: Option<String>,
    /// Read a new client secret from standard input: a prompt that does not echo at a
    /// terminal, else the whole input (one trailing newline is stripped)
    #[arg(long)]
    client_secret_stdin: bool,
    /// Read a new client secret from this environment variable
    #[arg(long, value_name = "VAR")]
    client_secret_env: Option<String>,
    /// Print the JSON the API returns
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
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

#[derive(Debug, Subcommand)]
enum WebhooksCommand {
    /// List the newest webhook events and how their delivery stands, newest first
    List {
        /// Only events with this status: pending, delivered or failed
        #[arg(long, value_name = "STATUS", value_parser = parse_webhook_status)]
        status: Option<WebhookStatus>,
        /// At most this many events
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        limit: u64,
        /// Print the events as JSON
        #[arg(long)]
        json: bool,
    },
    /// Send a pending or failed event again now (the running server's sender picks it up)
    Retry {
        /// The event's id (evt_…), as `webhooks list` shows it
        #[arg(value_name = "EVENT_ID")]
        event_id: String,
    },
}

fn parse_webhook_status(value: &str) -> std::result::Result<WebhookStatus, String> {
    WebhookStatus::parse("--status", &value.to_ascii_lowercase()).map_err(|e| e.to_string())
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
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

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Print a fresh base64 master key (64 random bytes)
    Generate,
    /// Show the master keys the database records and how many stored values each seals
    Status {
        /// Print the status as JSON
        #[arg(long)]
        json: bool,
    },
    /// Make a new master key, re-seal every secret and token with it while the server keeps
    /// serving, then retire the old key; run it again to resume an interrupted rotation
    Rotate {
        /// Values re-sealed per transaction
        #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        batch_size: u64,
        /// Pause between two batches, in milliseconds, to go easy on a busy server
        #[arg(long, value_name = "MS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=60_000))]
        pause_ms: u64,
        /// How long the old key's OAuth states and dashboard tokens stay accepted after it is
        /// retired, in seconds (0 after a leak: refuse them at once)
        #[arg(long, value_name = "SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(0..=31_536_000))]
        grace: u64,
    },
}

/// A provider name in any case (`X`, `LinkedIn`).
fn parse_provider(s: &str) -> std::result::Result<Provider, String> {
    s.to_ascii_lowercase()
        .parse()
        .map_err(|_| crate::providers::UnknownProvider(s.chars().take(40).collect()).to_string())
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
    // `serve` logs in the configured format (`log.format`), so its configuration is read
    // before logging starts; a bad one is reported like any other error.
    let serve_config = match cli.command {
        Command::Serve => match load_config(&cli) {
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
    let _log_guard = init_logging(serve_config.is_some(), format);
    let outcome = match serve_config {
        Some(config) => serve(config),
        None => run(cli),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit_with(e),
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

/// `dravo serve`: the HTTP API until a signal stops it.
fn serve(config: Config) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?
        .block_on(crate::serve(config))
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

/// Logs to stderr through a writer thread: a request never waits for the terminal or the
/// journal to take its log line. Nothing is dropped: when the queue is full, the logging
/// call waits, as a direct write would. `LogFormat::Json` writes one JSON object per line:
/// the event's fields at the top level beside `timestamp`, `level`, `target` and `message`,
/// and the request it belongs to, if any, as `span` (`{"name":"request","request_id":…}`).
/// Targets whose debug and trace lines carry SQL parameters (sealed values, personal data):
/// tokio-postgres logs every statement with its parameters at debug (through the `log`
/// crate, which tracing-subscriber bridges). They and their modules are capped at `info`
/// whatever `RUST_LOG` says; naming them at `warn`, `error` or `off` still quietens them.
const PARAMETER_LOGGING_TARGETS: &[&str] = &["tokio_postgres"];

/// The log filter: `rust_log` (the `RUST_LOG` value) when it parses, else `default`, with
/// the targets of `PARAMETER_LOGGING_TARGETS` capped at `info`: a directive of `rust_log`
/// that would make one of them (or a module under it) louder is dropped.
fn log_filter(rust_log: Option<&str>, default: &str) -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::EnvFilter;
    let louder_than_info = |directive: &str| {
        let directive = directive.trim();
        let (target, level) = directive.split_once('=').unwrap_or((directive, "trace"));
        let target = target.split('[').next().unwrap_or(target);
        PARAMETER_LOGGING_TARGETS
            .iter()
            .any(|quiet| target == *quiet || target.starts_with(&format!("{quiet}::")))
            && !["off", "error", "warn", "info"]
                .contains(&level.trim().to_ascii_lowercase().as_str())
    };
    let mut filter = rust_log
        .map(|value| {
            value
                .split(',')
                .filter(|directive| !louder_than_info(directive))
                .collect::<Vec<_>>()
                .join(",")
        })
        .and_then(|value| EnvFilter::try_new(value).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    for target in PARAMETER_LOGGING_TARGETS {
        let named_quieter = rust_log.is_some_and(|value| {
            value.split(',').any(|directive| {
                directive
                    .trim()
                    .strip_prefix(target)
                    .and_then(|rest| rest.strip_prefix('='))
                    .is_some_and(|level| {
                        ["off", "error", "warn"]
                            .contains(&level.trim().to_ascii_lowercase().as_str())
                    })
            })
        });
        if !named_quieter {
            filter = filter.add_directive(
                format!("{target}=info")
                    .parse()
                    .expect("a target=level directive parses"),
            );
        }
    }
    filter
}

fn init_logging(serving: bool, format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let default = if serving { "info" } else { "warn" };
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref(), default);
    // The writer thread drains every queued line into the buffer, then flushes: under load
    // one write carries many lines, and an idle server leaves nothing unwritten.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        // The queue is allocated up front: 8 192 lines is ample for a writer that drains it
        // continuously, and keeps idle memory low (the default of 128 000 costs megabytes).
        .buffered_lines_limit(8192)
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    guard
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Keys(KeysCommand::Generate) => {
            print_line(&crate::service::keys::generate_master_key())
        }
        Command::Completions { shell } => {
            let mut command = Cli::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut command, "dravo", &mut out);
            write_stdout(&out)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .map_err(|e| Error::Internal(format!("cannot render the man page: {e}")))?;
            write_stdout(&out)
        }
        Command::Openapi { yaml } => {
            let spec = if yaml {
                crate::api::spec_yaml()
            } else {
                crate::api::spec_json()
            };
            print_line(spec.trim_end())
        }
        Command::Doctor => block_on(async {
            let findings = crate::service::doctor::diagnose(load_config(&cli)).await;
            doctor_report(&findings)
        }),
        Command::Healthcheck { ref url } => block_on(async {
            let config = load_config(&cli)?;
            let ready = crate::service::healthcheck::probe(&config, url.as_deref()).await?;
            print_line(&format!("{}: {}", ready.url, ready.status))
        }),
        Command::Serve => serve(load_config(&cli)?),
        Command::Init => {
            let config = load_config(&cli)?;
            let report = block_on(crate::service::init::init(config))?;
            print_line(&init_line(&report))
        }
        Command::Backup { ref file } => block_on(async {
            let dravo = open(&cli).await?;
            let spinner = Spinner::start(&format!("backing up to {}", file.display()));
            let report = dravo.backup(file).await;
            spinner.finish();
            print_line(&backup_line("backed up to", &report?))
        }),
        Command::Store(StoreCommand::Copy {
            ref from,
            ref to,
            batch_size,
        }) => block_on(async {
            use crate::service::store_copy::copy_store;
            let (from, to) = (DatabaseLocation::parse(from), DatabaseLocation::parse(to));
            let spinner =
                Spinner::start(&format!("copying {} to {}", from.describe(), to.describe()));
            let report = copy_store(&from, &to, batch_size as usize, |_, _| {}).await;
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
        }),
        Command::Keys(KeysCommand::Status { json }) => block_on(async {
            let dravo = open(&cli).await?;
            print_keys_status(&dravo.keys_status().await?, json)
        }),
        Command::Keys(KeysCommand::Rotate {
            batch_size,
            pause_ms,
            grace,
        }) => block_on(async {
            let dravo = open(&cli).await?;
            let options = RotateOptions {
                batch_size: usize::try_from(batch_size).unwrap_or(100),
                pause: std::time::Duration::from_millis(pause_ms),
                grace_seconds: grace,
            };
            let mut bar = RotationProgress::default();
            let report = dravo
                .rotate_keys(options, &mut |event| bar.show(event))
                .await;
            bar.finish();
            print_line(&rotation_line(&report?, grace))
        }),
        Command::Restore { ref file } => {
            let config = load_config(&cli)?;
            let report = crate::service::backup::restore(&config, file)?;
            print_line(&format!(
                "{} (into {}): start the server again",
                backup_line("restored", &report),
                config.database.path.display()
            ))
        }
        Command::Token(TokenCommand::Issue { ref sub, ttl }) => block_on(async {
            let dravo = open(&cli).await?;
            print_line(&dravo.issue_token(sub, ttl)?)
        }),
        Command::OauthApps(ref cmd) => block_on(async {
            let dravo = open(&cli).await?;
            oauth_apps(&dravo, cmd).await
        }),
        Command::Accounts(ref cmd) => block_on(async {
            let dravo = open(&cli).await?;
            accounts(&dravo, cmd).await
        }),
        Command::Webhooks(ref cmd) => block_on(async {
            let dravo = open(&cli).await?;
            webhooks(&dravo, cmd).await
        }),
    }
}

async fn webhooks(dravo: &Dravo, cmd: &WebhooksCommand) -> Result<()> {
    match cmd {
        WebhooksCommand::List {
            status,
            limit,
            json,
        } => {
            let limit = usize::try_from(*limit).unwrap_or(usize::MAX);
            let events = dravo.list_webhooks(*status, limit).await?;
            let time_or_dash = |t: Option<Timestamp>| t.map_or_else(|| "-".into(), |t| t.rfc3339());
            print_list::<_, WebhookEventView>(
                events,
                *json,
                "no webhook events",
                &[
                    "ID",
                    "TYPE",
                    "STATUS",
                    "ATTEMPTS",
                    "NEXT ATTEMPT",
                    "LAST ERROR",
                    "CREATED",
                ],
                |e| {
                    vec![
                        e.id.clone(),
                        e.kind.clone(),
                        e.status.to_string(),
                        e.attempts.to_string(),
                        time_or_dash(e.next_attempt_at),
                        e.last_error.clone().unwrap_or_else(|| "-".into()),
                        e.created_at.rfc3339(),
                    ]
                },
            )
        }
        WebhooksCommand::Retry { event_id } => {
            let id = EventId::parse(event_id)?;
            let event = dravo.retry_webhook(&id).await?;
            let note = if dravo.config().webhooks.url.is_some() {
                ""
            } else {
                " (webhooks.url is not set here: the server that has it sends it)"
            };
            print_line(&format!(
                "{} is pending again, due now (attempts so far: {}){note}",
                event.id, event.attempts
            ))
        }
    }
}

/// Prints `dravo doctor`'s findings, one a line; an error when any is a failure.
fn doctor_report(findings: &[crate::service::doctor::Finding]) -> Result<()> {
    use crate::service::doctor::Level;
    for f in findings {
        print_line(&format!(
            "{:<4}  {}: {}",
            f.level.as_str(),
            f.subject,
            f.message
        ))?;
    }
    match findings.iter().filter(|f| f.level == Level::Fail).count() {
        0 => Ok(()),
        1 => Err(Error::Config("doctor found 1 problem (FAIL above)".into())),
        n => Err(Error::invalid(format!(
            "doctor found {n} problems (FAIL above)"
        ))),
    }
}

/// The configuration, with `--database` applied over the file and the environment.
fn load_config(cli: &Cli) -> Result<Config> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(given) = &cli.database {
        match DatabaseLocation::from_path(given) {
            DatabaseLocation::Postgres(url) => config.database.url = Some(url.into()),
            DatabaseLocation::Sqlite(path) => {
                config.database.path = path;
                config.origin.database_path = crate::config::Chosen::Flag("--database");
            }
        }
    }
    Ok(config)
}

/// Opens the existing database for a command that uses it (see `Dravo::open_existing`).
async fn open(cli: &Cli) -> Result<Dravo> {
    Dravo::open_existing(load_config(cli)?).await
}

/// What `dravo init` did, in one line.
fn init_line(report: &crate::service::init::InitReport) -> String {
    use crate::service::init::{DatabaseSetup, KeySetup};
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

fn block_on<T>(fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?
        .block_on(fut)
}

async fn oauth_apps(dravo: &Dravo, cmd: &OauthAppsCommand) -> Result<()> {
    // The apps' redirect URIs are what users register at providers: say when they cannot work.
    if let Some(warning) = dravo.config().public_url_warning() {
        eprintln!("warning: {warning}");
    }
    match cmd {
        OauthAppsCommand::Create(args) => {
            let owner = args.owner.parse()?;
            let new = NewApp {
                provider: args.provider,
                name: AppName::parse_as("--name", &args.name)?,
                client_id: ClientId::parse_as("--client-id", &args.client_id)?,
                client_secret: read_secret(args.client_secret_env.as_deref())?,
                scopes: args
                    .scopes
                    .as_deref()
                    .map(|s| Scopes::parse_list_as("--scopes", s))
                    .transpose()?,
            };
            let app = dravo.create_app(&owner, new).await?;
            print_app(&app, args.json)
        }
        OauthAppsCommand::List {
            owner,
            provider,
            json,
        } => {
            let owner = owner.parse()?;
            let apps = dravo.list_apps(&owner, provider.provider).await?;
            print_list::<_, OAuthAppView>(
                apps,
                *json,
                "no OAuth apps",
                &[
                    "ID",
                    "PROVIDER",
                    "NAME",
                    "CLIENT ID",
                    "CREATED",
                    "REDIRECT URI",
                ],
                |a| {
                    vec![
                        a.id.clone(),
                        a.provider.to_string(),
                        a.name.clone(),
                        a.client_id.clone(),
                        a.created_at.rfc3339(),
                        a.redirect_uri.clone(),
                    ]
                },
            )
        }
        OauthAppsCommand::Show {
            owner,
            app_id,
            json,
        } => {
            let owner = owner.parse()?;
            let app = dravo.get_app(&owner, &AppId::parse(app_id)?).await?;
            print_app(&app, *json)
        }
        OauthAppsCommand::Update(args) => {
            let owner = args.owner.parse()?;
            let id = AppId::parse(&args.app_id)?;
            let changes = AppChanges {
                name: args
                    .name
                    .as_deref()
                    .map(|n| AppName::parse_as("--name", n))
                    .transpose()?,
                scopes: args
                    .scopes
                    .as_deref()
                    .map(|s| Scopes::parse_list_as("--scopes", s))
                    .transpose()?,
                client_secret: if args.client_secret_stdin || args.client_secret_env.is_some() {
                    Some(read_secret(args.client_secret_env.as_deref())?)
                } else {
                    None
                },
            };
            let app = dravo.update_app(&owner, &id, changes).await?;
            print_app(&app, args.json)
        }
        OauthAppsCommand::Check {
            owner,
            app_id,
            json,
        } => {
            let owner = owner.parse()?;
            let check = dravo.check_app(&owner, &AppId::parse(app_id)?).await?;
            print_check(check, *json)
        }
        OauthAppsCommand::Delete {
            owner,
            app_id,
            cascade,
        } => {
            let owner = owner.parse()?;
            let id = AppId::parse(app_id)?;
            let accounts = dravo.delete_app(&owner, &id, *cascade).await?;
            let mut lines: Vec<String> = accounts.iter().map(deleted_account_line).collect();
            lines.push(format!("deleted {id}"));
            print_line(&lines.join("\n"))
        }
    }
}

async fn accounts(dravo: &Dravo, cmd: &AccountsCommand) -> Result<()> {
    match cmd {
        AccountsCommand::List {
            owner,
            provider,
            status,
            kind,
            parent,
            json,
        } => {
            let owner = owner.parse()?;
            let filter = AccountFilter {
                provider: provider.provider,
                status: status.status,
                kind: *kind,
                parent_id: parent.as_ref().map(|p| p.to_string()),
            };
            let accounts = dravo.list_accounts(&owner, filter).await?;
            if *json {
                // Every page in one: the API's page shape with no next page.
                return print_json(&AccountPageView {
                    data: accounts.into_iter().map(AccountView::from).collect(),
                    next_cursor: None,
                });
            }
            let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            let family = family_order(accounts);
            if family.is_empty() {
                return print_line("no connected accounts");
            }
            let rows: Vec<Vec<String>> = family
                .iter()
                .map(|(child, a)| {
                    vec![
                        if *child {
                            format!("  └ {}", a.id)
                        } else {
                            a.id.clone()
                        },
                        a.kind.to_string(),
                        a.provider.to_string(),
                        or_dash(&a.username),
                        or_dash(&a.display_name),
                        a.status.to_string(),
                        a.expires_at.map_or_else(|| "-".into(), |t| t.rfc3339()),
                    ]
                })
                .collect();
            print_table(
                &[
                    "ID", "KIND", "PROVIDER", "USERNAME", "NAME", "STATUS", "EXPIRES",
                ],
                &rows,
            )
        }
        AccountsCommand::Show {
            owner,
            account_id,
            json,
        } => {
            let owner = owner.parse()?;
            let account = dravo
                .get_account(&owner, &AccountId::parse(account_id)?)
                .await?;
            print_account(account, *json)
        }
        AccountsCommand::Refresh {
            owner,
            account_id,
            json,
        } => {
            let owner = owner.parse()?;
            let account = dravo
                .refresh_account(&owner, &AccountId::parse(account_id)?)
                .await?;
            print_account(account, *json)
        }
        AccountsCommand::Delete { owner, account_id } => {
            let owner = owner.parse()?;
            let deleted = dravo
                .delete_account(&owner, &AccountId::parse(account_id)?)
                .await?;
            print_line(&deleted_account_line(&deleted))
        }
        AccountsCommand::Events {
            owner,
            account_id,
            json,
        } => {
            let owner = owner.parse()?;
            let id = AccountId::parse(account_id)?;
            let mut events = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = dravo
                    .account_events(&owner, &id, cursor.as_deref(), Some(500))
                    .await?;
                events.extend(page.items);
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            print_list::<_, EventView>(
                events,
                *json,
                "no events",
                &["TIME", "TYPE", "DETAIL"],
                |e| vec![e.created_at.rfc3339(), e.kind.clone(), e.detail.to_string()],
            )
        }
        AccountsCommand::Token {
            owner,
            account_id,
            force_refresh,
        } => {
            let owner = owner.parse()?;
            let token = dravo
                .access_token(&owner, &AccountId::parse(account_id)?, *force_refresh)
                .await?;
            println!("{}", token.access_token);
            Ok(())
        }
    }
}

/// What deleting an account did, in one line.
fn deleted_account_line(deleted: &crate::service::Deleted) -> String {
    match &deleted.revoke_error {
        None => format!(
            "deleted {} (revoked at {})",
            deleted.account.id, deleted.account.provider
        ),
        Some(why) => format!(
            "deleted {} (not revoked at {}: {})",
            deleted.account.id,
            deleted.account.provider,
            shown(why)
        ),
    }
}

/// An account, as `key: value` lines or as the API's JSON.
fn print_account(account: crate::service::Account, json: bool) -> Result<()> {
    if json {
        return print_json(&AccountView::from(account));
    }
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let time_or_dash =
        |t: Option<crate::domain::Timestamp>| t.map_or_else(|| "-".into(), |t| t.rfc3339());
    print_fields(&[
        ("id", account.id.clone()),
        ("provider", account.provider.to_string()),
        ("oauth_app_id", or_dash(&account.oauth_app_id)),
        ("provider_account_id", account.provider_account_id.clone()),
        ("username", or_dash(&account.username)),
        ("display_name", or_dash(&account.display_name)),
        ("scopes", account.scopes.join(" ")),
        ("status", account.status.to_string()),
        ("status_reason", or_dash(&account.status_reason)),
        ("expires_at", time_or_dash(account.expires_at)),
        ("reauth_by", time_or_dash(account.reauth_by)),
        ("created_at", account.created_at.rfc3339()),
        ("updated_at", account.updated_at.rfc3339()),
    ])
}

/// Reads the client secret from the variable named by `--client-secret-env`, else from
/// stdin (`--client-secret-stdin`); never from an argument.
fn read_secret(env_var: Option<&str>) -> Result<ClientSecret> {
    let raw = if let Some(var) = env_var {
        std::env::var(var).map_err(|_| {
            Error::invalid(format!(
                "the environment variable {var} (from --client-secret-env) is not set or not UTF-8"
            ))
        })?
    } else if std::io::stdin().is_terminal() {
        // A person at a terminal: ask without echo, ended by Enter (not Ctrl-D).
        rpassword::prompt_password("client secret (input is not shown): ").map_err(|e| {
            Error::invalid(format!(
                "cannot read the client secret from the terminal: {e}"
            ))
        })?
    } else {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| {
            Error::invalid(format!("cannot read the client secret from stdin: {e}"))
        })?;
        if let Some(stripped) = text.strip_suffix('\n') {
            text.truncate(stripped.strip_suffix('\r').unwrap_or(stripped).len());
        }
        text
    };
    let flag = if env_var.is_some() {
        "--client-secret-env"
    } else {
        "--client-secret-stdin"
    };
    ClientSecret::parse_as(flag, &raw)
}

/// A spinner on stderr while one long step runs, when stderr is a terminal; nothing else.
struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    fn start(message: &str) -> Spinner {
        if !std::io::stderr().is_terminal() {
            return Spinner(None);
        }
        let bar = indicatif::ProgressBar::new_spinner().with_message(message.to_owned());
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        Spinner(Some(bar))
    }

    fn finish(self) {
        if let Some(bar) = self.0 {
            bar.finish_and_clear();
        }
    }
}

/// How `keys rotate` shows its progress on stderr: a bar on a terminal, else a plain line
/// when it starts, at most one a second while it goes, and one at the end.
#[derive(Default)]
struct RotationProgress {
    bar: Option<indicatif::ProgressBar>,
    /// When a plain line was last printed, and what it said.
    last_line: Option<(std::time::Instant, (u64, u64))>,
    last: Option<(u64, u64)>,
}

impl RotationProgress {
    fn show(&mut self, event: RotateProgress) {
        match event {
            RotateProgress::Started {
                from,
                to,
                resumed,
                total,
            } => {
                let from: Vec<String> = from.iter().map(|k| k.to_string()).collect();
                let line = format!(
                    "{} the rotation from master key {} to key {to}: {} to re-seal",
                    if resumed { "resuming" } else { "starting" },
                    from.join(", "),
                    values(total)
                );
                if std::io::stderr().is_terminal() {
                    let bar = indicatif::ProgressBar::new(total);
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "{msg} [{bar:40}] {pos}/{len} values ({eta} left)",
                        )
                        .expect("a valid template")
                        .progress_chars("=> "),
                    );
                    bar.set_message("re-sealing");
                    bar.println(line);
                    self.bar = Some(bar);
                } else {
                    eprintln!("{line}");
                }
            }
            RotateProgress::Resealed { done, total } => {
                self.last = Some((done, total));
                if let Some(bar) = &self.bar {
                    bar.set_length(total);
                    bar.set_position(done);
                } else if self
                    .last_line
                    .is_none_or(|(t, _)| t.elapsed() >= std::time::Duration::from_secs(1))
                {
                    self.last_line = Some((std::time::Instant::now(), (done, total)));
                    eprintln!("{}", resealed_line(done, total));
                }
            }
        }
    }

    fn finish(self) {
        match (self.bar, self.last) {
            (Some(bar), _) => bar.finish_and_clear(),
            // The last count, unless it was the last line printed.
            (None, Some(last)) if self.last_line.is_none_or(|(_, shown)| shown != last) => {
                eprintln!("{}", resealed_line(last.0, last.1));
            }
            (None, _) => {}
        }
    }
}

fn resealed_line(done: u64, total: u64) -> String {
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    format!("re-sealed {done} of {} ({percent}%)", values(total))
}

/// `1 value`, `2 values`.
fn values(n: u64) -> String {
    format!("{n} value{}", if n == 1 { "" } else { "s" })
}

/// `rotated to master key 2: …`, one line.
fn rotation_line(r: &RotateReport, grace_seconds: u64) -> String {
    let retired: Vec<String> = r.retired.iter().map(|k| k.to_string()).collect();
    let (noun, its) = if retired.len() == 1 {
        ("key", "its")
    } else {
        ("keys", "their")
    };
    let grace = if grace_seconds == 0 {
        format!("{its} OAuth states and dashboard tokens are refused from now on")
    } else {
        format!(
            "{its} OAuth states and dashboard tokens are accepted until {}",
            r.accept_until.rfc3339()
        )
    };
    format!(
        "rotated to master key {}: re-sealed {}; retired {noun} {} ({grace}); the key file {} now holds key {}: back it up",
        r.new_key,
        values(r.resealed),
        retired.join(", "),
        r.key_file.display(),
        r.new_key
    )
}

fn print_keys_status(status: &KeysStatus, json: bool) -> Result<()> {
    let time = |t: Option<Timestamp>| t.map(|t| t.rfc3339());
    if json {
        let keys: Vec<serde_json::Value> = status
            .keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "id": k.id.get(),
                    "role": k.role.as_str(),
                    "values": k.values,
                    "added_at": k.added_at.rfc3339(),
                    "retired_at": time(k.retired_at),
                    "accept_until": time(k.accept_until),
                    "in_key_file": k.in_ring,
                })
            })
            .collect();
        return print_line(
            &serde_json::json!({
                "source": status.source,
                "rotation_in_progress": status.rotation_in_progress,
                "unknown_values": status.unknown_values,
                "keys": keys,
            })
            .to_string(),
        );
    }
    print_line(&format!("keys from: {}", status.source))?;
    let rows: Vec<Vec<String>> = status
        .keys
        .iter()
        .map(|k| {
            vec![
                k.id.to_string(),
                k.role.as_str().to_owned(),
                k.values.to_string(),
                k.added_at.rfc3339(),
                time(k.retired_at).unwrap_or_else(|| "-".into()),
                time(k.accept_until).unwrap_or_else(|| "-".into()),
                if k.in_ring { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    print_table(
        &[
            "KEY",
            "ROLE",
            "VALUES",
            "ADDED",
            "RETIRED",
            "GRACE UNTIL",
            "IN KEY FILE",
        ],
        &rows,
    )?;
    if status.unknown_values > 0 {
        print_line(&format!(
            "{} values name a master key the database does not record: they cannot be opened",
            status.unknown_values
        ))?;
    }
    print_line(if status.rotation_in_progress {
        "rotation: in progress; run `dravo keys rotate` to finish it"
    } else {
        "rotation: none in progress"
    })
}

/// `backed up to FILE: 1.2 MB, schema 7, integrity ok, 5 apps, 12 accounts, key opens`.
fn backup_line(verb: &str, r: &crate::service::backup::BackupReport) -> String {
    format!(
        "{verb} {}: {} bytes, schema {}, integrity ok, {} apps, {} accounts, sealed with this key",
        r.path.display(),
        r.bytes,
        r.schema_version,
        r.apps,
        r.accounts
    )
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    std::io::stdout()
        .lock()
        .write_all(bytes)
        .map_err(|e| Error::Internal(format!("cannot write to stdout: {e}")))
}

fn print_line(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(|e| Error::Internal(format!("cannot write to stdout: {e}")))
}

/// Prints the API's JSON for `value`. serde_json escapes C0 controls but writes DEL and the C1
/// controls (U+007F to U+009F) raw, and a terminal obeys some of them (U+009B starts a control
/// sequence), so they are written as `\u00XX` escapes: the same JSON, and they can only occur
/// inside strings. Bidirectional and invisible characters stay as they are.
fn print_json<T: ToJSON>(value: &T) -> Result<()> {
    let json = value
        .to_json()
        .unwrap_or(serde_json::Value::Null)
        .to_string();
    if !json.contains(|c: char| ('\u{7f}'..='\u{9f}').contains(&c)) {
        return print_line(&json);
    }
    let mut text = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if ('\u{7f}'..='\u{9f}').contains(&c) {
            let _ = write!(text, "\\u{:04x}", u32::from(c));
        } else {
            text.push(c);
        }
    }
    print_line(&text)
}

fn print_app(app: &OAuthApp, json: bool) -> Result<()> {
    if json {
        return print_json(&OAuthAppView::from(app.clone()));
    }
    print_fields(&[
        ("id", app.id.clone()),
        ("provider", app.provider.to_string()),
        ("name", app.name.clone()),
        ("client_id", app.client_id.clone()),
        ("redirect_uri", app.redirect_uri.clone()),
        ("scopes", app.scopes.join(" ")),
        ("created_at", app.created_at.rfc3339()),
        (
            "credentials_error",
            app.credentials_error.clone().unwrap_or_else(|| "-".into()),
        ),
        ("updated_at", app.updated_at.rfc3339()),
        (
            "last_check",
            app.last_check
                .as_ref()
                .map_or_else(|| "-".into(), check_summary),
        ),
    ])
}

/// A check in one line: its outcome and time, and the checks that were not `ok`.
fn check_summary(check: &AppCheck) -> String {
    let mut line = format!(
        "{} at {} (by {})",
        check.outcome(),
        check.checked_at.rfc3339(),
        check.source.as_str()
    );
    let problems: Vec<String> = check
        .checks
        .iter()
        .filter(|c| c.status != CheckStatus::Ok)
        .map(|c| format!("{} {}", c.name, c.status))
        .collect();
    if !problems.is_empty() {
        line.push_str(": ");
        line.push_str(&problems.join(", "));
    }
    line
}

/// A check as its outcome and time, then one table row per check; or as the API's JSON.
fn print_check(check: AppCheck, json: bool) -> Result<()> {
    if json {
        return print_json(&AppCheckView::from(check));
    }
    print_fields(&[
        ("outcome", check.outcome().to_string()),
        ("checked_at", check.checked_at.rfc3339()),
    ])?;
    let rows: Vec<Vec<String>> = check
        .checks
        .iter()
        .map(|c| vec![c.name.clone(), c.status.to_string(), c.message.clone()])
        .collect();
    print_line("")?;
    print_table(&["CHECK", "STATUS", "MESSAGE"], &rows)
}

/// Text as human-readable output shows it: control characters, bidirectional formatting and
/// invisible characters, and whitespace other than a plain space become visible escapes
/// (`\u{1b}`), so a stored value cannot recolour the terminal, reorder a line, or break a
/// table row in two. Values stored before provider text was cleaned included.
fn shown(text: &str) -> Cow<'_, str> {
    let escape = |c: char| is_hidden(c) || (c.is_whitespace() && c != ' ');
    if !text.chars().any(escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if escape(c) {
            let _ = write!(out, "{}", c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Prints `key: value` lines with the values aligned, each value [`shown`] safely.
fn print_fields(fields: &[(&str, String)]) -> Result<()> {
    let width = fields.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    let lines: Vec<String> = fields
        .iter()
        .map(|(key, value)| format!("{:<width$} {}", format!("{key}:"), shown(value)))
        .collect();
    print_line(&lines.join("\n"))
}

/// Prints a list as the API's JSON array (`--json`) or as a table with one row per item.
/// Accounts with each user account's Pages and organizations right under it (marked `true`);
/// a child whose parent is not in the list stays where it is, unmarked.
fn family_order(accounts: Vec<Account>) -> Vec<(bool, Account)> {
    let present: std::collections::HashSet<String> =
        accounts.iter().map(|a| a.id.clone()).collect();
    let (children, tops): (Vec<Account>, Vec<Account>) = accounts
        .into_iter()
        .partition(|a| a.parent_id.as_ref().is_some_and(|p| present.contains(p)));
    let mut ordered = Vec::with_capacity(children.len() + tops.len());
    for top in tops {
        let id = top.id.clone();
        ordered.push((false, top));
        ordered.extend(
            children
                .iter()
                .filter(|c| c.parent_id.as_deref() == Some(id.as_str()))
                .cloned()
                .map(|c| (true, c)),
        );
    }
    ordered
}

fn print_list<T, V>(
    items: Vec<T>,
    json: bool,
    empty: &str,
    header: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> Result<()>
where
    V: From<T> + ToJSON,
{
    if json {
        let views: Vec<V> = items.into_iter().map(V::from).collect();
        return print_json(&views);
    }
    if items.is_empty() {
        return print_line(empty);
    }
    let rows: Vec<Vec<String>> = items.iter().map(row).collect();
    print_table(header, &rows)
}

/// Prints rows as an aligned table under `header`, each cell [`shown`] safely.
fn print_table(header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let rows: Vec<Vec<Cow<'_, str>>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| shown(cell)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut text = line(header.to_vec());
    for row in &rows {
        text.push('\n');
        text.push_str(&line(row.iter().map(|cell| cell.as_ref()).collect()));
    }
    print_line(&text)
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::log_filter;

    /// Whether an event at `level` of `target` passes the filter built from `rust_log`.
    fn passes(rust_log: Option<&str>, target: &str, level: tracing::Level) -> bool {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        struct Seen(Arc<AtomicBool>);
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Seen {
            fn on_event(
                &self,
                _: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let seen = Arc::new(AtomicBool::new(false));
        let subscriber = tracing_subscriber::registry()
            .with(log_filter(rust_log, "info"))
            .with(Seen(seen.clone()));
        tracing::subscriber::with_default(subscriber, || {
            // The target of tokio-postgres's `executing statement … with parameters` line.
            macro_rules! emit {
                ($($lvl:ident),*) => {
                    match level {
                        $(tracing::Level::$lvl => tracing::event!(target: "tokio_postgres::query", tracing::Level::$lvl, "x"),)*
                    }
                };
            }
            if target == "tokio_postgres::query" {
                emit!(TRACE, DEBUG, INFO, WARN, ERROR);
            } else {
                match level {
                    tracing::Level::TRACE => tracing::trace!(target: "dravo", "x"),
                    tracing::Level::DEBUG => tracing::debug!(target: "dravo", "x"),
                    _ => tracing::info!(target: "dravo", "x"),
                }
            }
        });
        seen.load(Ordering::SeqCst)
    }

    #[test]
    fn rust_log_debug_never_lets_tokio_postgres_log_sql_parameters() {
        use tracing::Level;
        for rust_log in [
            Some("debug"),
            Some("trace"),
            Some("tokio_postgres=debug"),
            Some("tokio_postgres=trace,dravo=debug"),
            Some("info,tokio_postgres::query=debug"),
            Some("tokio_postgres::query"),
            None,
        ] {
            for level in [Level::DEBUG, Level::TRACE] {
                assert!(
                    !passes(rust_log, "tokio_postgres::query", level),
                    "RUST_LOG={rust_log:?} lets tokio_postgres log at {level}"
                );
            }
            assert!(
                passes(rust_log, "tokio_postgres::query", Level::INFO),
                "RUST_LOG={rust_log:?}: tokio_postgres's notices (info) stay"
            );
        }
        // The rest of RUST_LOG still applies.
        assert!(passes(Some("debug"), "dravo", Level::DEBUG));
        assert!(passes(Some("trace"), "dravo", Level::TRACE));
        assert!(!passes(None, "dravo", Level::DEBUG));
        // Asking for less is honoured.
        assert!(!passes(
            Some("debug,tokio_postgres=warn"),
            "tokio_postgres::query",
            Level::INFO
        ));
    }
}
