//! `dravo keys …`: a fresh master key, the keys a database records, and rotation.

use clap::Subcommand;

use super::context::Context;
use super::output::{Progress, print_line, print_table, time_or_dash};
use crate::error::Result;
use crate::service::keys::{KeysStatus, RotateOptions, RotateProgress, RotateReport};

#[derive(Debug, Subcommand)]
pub enum Command {
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

pub fn run(ctx: &Context, cmd: &Command) -> Result<()> {
    match *cmd {
        Command::Generate => print_line(&crate::service::keys::generate_master_key()),
        Command::Status { json } => ctx.block_on(async {
            let dravo = ctx.open().await?;
            print_status(&dravo.keys_status().await?, json)
        }),
        Command::Rotate {
            batch_size,
            pause_ms,
            grace,
        } => ctx.block_on(async {
            let dravo = ctx.open().await?;
            let options = RotateOptions {
                batch_size: usize::try_from(batch_size).unwrap_or(100),
                pause: std::time::Duration::from_millis(pause_ms),
                grace_seconds: grace,
            };
            let mut progress = Progress::new(resealed_line);
            let report = dravo
                .rotate_keys(options, &mut |event| show(&mut progress, event))
                .await;
            progress.finish();
            print_line(&rotation_line(&report?, grace))
        }),
    }
}

/// How `keys rotate` shows its progress on stderr (see `Progress`).
fn show(progress: &mut Progress, event: RotateProgress) {
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
            progress.start(line, total, "re-sealing", "values");
        }
        RotateProgress::Resealed { done, total } => progress.advance(done, total),
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

fn print_status(status: &KeysStatus, json: bool) -> Result<()> {
    let time = |t: Option<crate::domain::Timestamp>| t.map(|t| t.rfc3339());
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
                time_or_dash(k.retired_at),
                time_or_dash(k.accept_until),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_english() {
        assert_eq!(values(1), "1 value");
        assert_eq!(values(0), "0 values");
        assert_eq!(resealed_line(5, 10), "re-sealed 5 of 10 values (50%)");
        // Nothing to re-seal is all done.
        assert_eq!(resealed_line(0, 0), "re-sealed 0 of 0 values (100%)");
    }
}
