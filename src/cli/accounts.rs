//! `dravo accounts …`: an owner's connected accounts, their tokens and events.

use clap::Subcommand;

use super::args::{
    OwnerArg, ProviderFilter, StatusFilter, parse_account_id, parse_kind, parse_provider,
    provider_help,
};
use super::context::Context;
use super::output::{
    or_dash, print_fields, print_json, print_line, print_list, print_table, shown, time_or_dash,
};
use crate::domain::{AccountId, AccountKind, AppId, Provider};
use crate::error::Result;
use crate::service::{Account, AccountFilter, Deleted, Dravo};
use crate::wire::views::{AccountPageView, AccountView, EventView};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start connecting an account: prints the provider's consent URL to open in a browser
    /// (the running server takes the provider's callback)
    Connect {
        #[command(flatten)]
        owner: OwnerArg,
        #[arg(long, value_name = "PROVIDER", value_parser = parse_provider, help = provider_help("The provider"))]
        provider: Provider,
        /// The OAuth app to connect with (oa_…); omit for the provider's default app
        #[arg(long = "app", value_name = "OAUTH_APP_ID")]
        app_id: Option<String>,
        /// mastodon: the instance to connect on (host, host:port or URL)
        #[arg(long, value_name = "HOST")]
        instance: Option<String>,
        /// Where the browser goes after the callback (one of dashboard.allowed_return_urls)
        #[arg(long, value_name = "URL")]
        return_url: Option<String>,
    },
    /// List an owner's connected accounts, oldest first
    List {
        #[command(flatten)]
        owner: OwnerArg,
        #[command(flatten)]
        provider: ProviderFilter,
        #[command(flatten)]
        status: StatusFilter,
        /// Only accounts of this kind: user, page, organization, channel or location
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

pub fn run(ctx: &Context, cmd: &Command) -> Result<()> {
    ctx.block_on(async { execute(&ctx.open().await?, cmd).await })
}

async fn execute(dravo: &Dravo, cmd: &Command) -> Result<()> {
    match cmd {
        Command::Connect {
            owner,
            provider,
            app_id,
            instance,
            return_url,
        } => {
            let owner = owner.parse()?;
            let app_id = app_id.as_deref().map(AppId::parse).transpose()?;
            let url = dravo
                .start_connect(
                    &owner,
                    *provider,
                    app_id.as_ref(),
                    return_url.as_deref(),
                    instance.as_deref(),
                )
                .await?;
            print_line(&url)
        }
        Command::List {
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
                parent_id: parent.clone(),
            };
            let accounts = dravo.list_accounts(&owner, filter).await?;
            if *json {
                // Every page in one: the API's page shape with no next page.
                return print_json(&AccountPageView {
                    data: accounts.into_iter().map(AccountView::from).collect(),
                    next_cursor: None,
                });
            }
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
                        time_or_dash(a.expires_at),
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
        Command::Show {
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
        Command::Refresh {
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
        Command::Delete { owner, account_id } => {
            let owner = owner.parse()?;
            let deleted = dravo
                .delete_account(&owner, &AccountId::parse(account_id)?)
                .await?;
            print_line(&deleted_account_line(&deleted))
        }
        Command::Events {
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
        Command::Token {
            owner,
            account_id,
            force_refresh,
        } => {
            let owner = owner.parse()?;
            let token = dravo
                .access_token(&owner, &AccountId::parse(account_id)?, *force_refresh)
                .await?;
            print_line(&token.access_token)
        }
    }
}

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

/// What deleting an account did, in one line.
pub(super) fn deleted_account_line(deleted: &Deleted) -> String {
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

/// An account, as `key: value` lines or as the API's JSON. A Page's `tasks` (what its user
/// may do there) close the lines; accounts without tasks have no such line.
fn print_account(account: Account, json: bool) -> Result<()> {
    if json {
        return print_json(&AccountView::from(account));
    }
    let mut fields = vec![
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
    ];
    if let Some(tasks) = &account.tasks {
        fields.push((
            "tasks",
            if tasks.is_empty() {
                "-".to_owned()
            } else {
                tasks.join(" ")
            },
        ));
    }
    print_fields(&fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountStatus, Provider, Timestamp};

    fn account(id: &str, parent: Option<&str>) -> Account {
        let at = Timestamp::from_unix(1_704_067_200);
        Account {
            id: id.into(),
            provider: "facebook".parse::<Provider>().unwrap(),
            oauth_app_id: None,
            provider_account_id: id.into(),
            username: None,
            display_name: None,
            scopes: vec![],
            status: AccountStatus::Active,
            status_reason: None,
            expires_at: None,
            reauth_by: None,
            created_at: at,
            updated_at: at,
            kind: if parent.is_some() {
                AccountKind::Page
            } else {
                AccountKind::User
            },
            parent_id: parent.map(Into::into),
            tasks: None,
        }
    }

    #[test]
    fn children_follow_their_parent_and_orphans_stay_in_place() {
        let listed = vec![
            account("page_of_a", Some("a")),
            account("a", None),
            account("orphan", Some("gone")),
            account("b", None),
            account("page_of_b", Some("b")),
            account("second_page_of_a", Some("a")),
        ];
        let order: Vec<(bool, String)> = family_order(listed)
            .into_iter()
            .map(|(child, a)| (child, a.id))
            .collect();
        assert_eq!(
            order,
            [
                (false, "a".to_owned()),
                (true, "page_of_a".to_owned()),
                (true, "second_page_of_a".to_owned()),
                (false, "orphan".to_owned()),
                (false, "b".to_owned()),
                (true, "page_of_b".to_owned()),
            ]
        );
    }
}
