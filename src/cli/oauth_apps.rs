//! `dravo oauth-apps …`: an owner's BYOK OAuth apps.

use std::io::{IsTerminal, Read};

use clap::{Args, Subcommand};

use super::accounts::deleted_account_line;
use super::args::{OwnerArg, ProviderFilter, parse_provider, provider_help};
use super::context::Context;
use super::output::{or_dash, print_fields, print_json, print_line, print_list, print_table};
use crate::domain::{
    AppCheck, AppId, AppName, CheckStatus, ClientId, ClientSecret, Provider, Scopes, UserAgent,
};
use crate::error::{Error, Result};
use crate::service::{AppChanges, Dravo, NewApp, OAuthApp};
use crate::wire::views::{AppCheckView, OAuthAppView};

#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// Change an OAuth app's name, scopes, client secret or user agent (at least one)
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

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("secret").args(["client_secret_stdin", "client_secret_env"])))]
pub struct CreateArgs {
    #[command(flatten)]
    owner: OwnerArg,
    #[arg(long, value_name = "PROVIDER", value_parser = parse_provider, help = provider_help("The provider"))]
    provider: Provider,
    /// A name for the app, 1 to 120 characters, unique per owner and provider
    #[arg(long)]
    name: String,
    /// The client id (TikTok: client key) from the provider's developer portal; not for
    /// mastodon, which Dravo registers on each instance itself
    #[arg(long)]
    client_id: Option<String>,
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
    /// mastodon: the website the instances show with the app's name
    #[arg(long, value_name = "URL")]
    website: Option<String>,
    /// The User-Agent of the app's calls to its provider instead of the provider's default
    /// (Reddit asks for "<platform>:<app id>:<version> (by /u/<username>)")
    #[arg(long, value_name = "TEXT")]
    user_agent: Option<String>,
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
        .args(["name", "scopes", "client_secret_stdin", "client_secret_env", "user_agent", "default_user_agent"])
))]
pub struct UpdateArgs {
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
    /// A new User-Agent for the app's calls to its provider
    #[arg(long, value_name = "TEXT", conflicts_with = "default_user_agent")]
    user_agent: Option<String>,
    /// Go back to the provider's default User-Agent
    #[arg(long)]
    default_user_agent: bool,
    /// Print the JSON the API returns
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, cmd: &Command) -> Result<()> {
    ctx.block_on(async { execute(&ctx.open().await?, cmd).await })
}

async fn execute(dravo: &Dravo, cmd: &Command) -> Result<()> {
    // The apps' redirect URIs are what users register at providers: say when they cannot work.
    if let Some(warning) = dravo.config().public_url_warning() {
        eprintln!("warning: {warning}");
    }
    match cmd {
        Command::Create(args) => {
            let owner = args.owner.parse()?;
            let secret_given = args.client_secret_stdin || args.client_secret_env.is_some();
            if args.client_id.is_some() && !secret_given {
                return Err(Error::invalid(
                    "--client-id needs the client secret too: --client-secret-stdin or --client-secret-env VAR",
                ));
            }
            let new = NewApp {
                provider: args.provider,
                name: AppName::parse_as("--name", &args.name)?,
                client_id: args
                    .client_id
                    .as_deref()
                    .map(|id| ClientId::parse_as("--client-id", id))
                    .transpose()?,
                client_secret: secret_given
                    .then(|| read_secret(args.client_secret_env.as_deref()))
                    .transpose()?,
                website: args.website.clone(),
                scopes: args
                    .scopes
                    .as_deref()
                    .map(|s| Scopes::parse_list_as("--scopes", s))
                    .transpose()?,
                user_agent: args
                    .user_agent
                    .as_deref()
                    .map(|ua| UserAgent::parse_as("--user-agent", ua))
                    .transpose()?,
            };
            let app = dravo.create_app(&owner, new).await?;
            warn_about_scopes(&app);
            print_app(&app, args.json)
        }
        Command::List {
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
                        or_dash(&a.client_id),
                        a.created_at.rfc3339(),
                        a.redirect_uri.clone(),
                    ]
                },
            )
        }
        Command::Show {
            owner,
            app_id,
            json,
        } => {
            let owner = owner.parse()?;
            let app = dravo.get_app(&owner, &AppId::parse(app_id)?).await?;
            print_app(&app, *json)
        }
        Command::Update(args) => {
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
                user_agent: match (&args.user_agent, args.default_user_agent) {
                    (Some(ua), _) => Some(Some(UserAgent::parse_as("--user-agent", ua)?)),
                    (None, true) => Some(None),
                    (None, false) => None,
                },
            };
            let app = dravo.update_app(&owner, &id, changes).await?;
            warn_about_scopes(&app);
            print_app(&app, args.json)
        }
        Command::Check {
            owner,
            app_id,
            json,
        } => {
            let owner = owner.parse()?;
            let check = dravo.check_app(&owner, &AppId::parse(app_id)?).await?;
            print_check(check, *json)
        }
        Command::Delete {
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

/// The app's scope warnings on stderr, so that a typo is seen when it is made.
fn warn_about_scopes(app: &OAuthApp) {
    for warning in &app.warnings {
        eprintln!("warning: {warning}");
    }
}

fn print_app(app: &OAuthApp, json: bool) -> Result<()> {
    if json {
        return print_json(&OAuthAppView::from(app.clone()));
    }
    let mut fields = vec![
        ("id", app.id.clone()),
        ("provider", app.provider.to_string()),
        ("name", app.name.clone()),
        ("client_id", or_dash(&app.client_id)),
        ("redirect_uri", app.redirect_uri.clone()),
        ("scopes", app.scopes.join(" ")),
        ("created_at", app.created_at.rfc3339()),
        ("credentials_error", or_dash(&app.credentials_error)),
        ("updated_at", app.updated_at.rfc3339()),
        ("user_agent", or_dash(&app.user_agent)),
        (
            "last_check",
            app.last_check
                .as_ref()
                .map_or_else(|| "-".into(), check_summary),
        ),
    ];
    if !app.provider_has_credentials() {
        fields.push(("website", or_dash(&app.website)));
        let servers: Vec<String> = app
            .servers
            .iter()
            .map(|s| {
                format!(
                    "{} (client {}{}, since {})",
                    s.server,
                    s.client_id,
                    if s.pkce { ", PKCE" } else { "" },
                    s.registered_at.rfc3339()
                )
            })
            .collect();
        fields.push((
            "servers",
            if servers.is_empty() {
                "- (registered on each instance at its first connect)".into()
            } else {
                servers.join("; ")
            },
        ));
    }
    print_fields(&fields)
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
