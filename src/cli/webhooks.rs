//! `dravo webhooks …`: the webhook outbox of every tenant, for operators.

use clap::Subcommand;

use super::context::Context;
use super::output::{or_dash, print_line, print_list, time_or_dash};
use crate::domain::EventId;
use crate::error::Result;
use crate::service::{Dravo, WebhookStatus};
use crate::wire::views::WebhookEventView;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the newest webhook events and how their delivery stands, newest first
    List {
        /// Only events with this status: pending, delivered or failed
        #[arg(long, value_name = "STATUS", value_parser = parse_status)]
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

fn parse_status(value: &str) -> std::result::Result<WebhookStatus, String> {
    WebhookStatus::parse("--status", &value.to_ascii_lowercase()).map_err(|e| e.to_string())
}

pub fn run(ctx: &Context, cmd: &Command) -> Result<()> {
    ctx.block_on(async { execute(&ctx.open().await?, cmd).await })
}

async fn execute(dravo: &Dravo, cmd: &Command) -> Result<()> {
    match cmd {
        Command::List {
            status,
            limit,
            json,
        } => {
            let limit = usize::try_from(*limit).unwrap_or(usize::MAX);
            let events = dravo.list_webhooks(*status, limit).await?;
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
                        or_dash(&e.last_error),
                        e.created_at.rfc3339(),
                    ]
                },
            )
        }
        Command::Retry { event_id } => {
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
