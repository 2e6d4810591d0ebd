//! Seeds connected accounts into an existing Dravo database, through the library (see
//! `benches/support/seed.rs`): tokens sealed with the database's key and bound to their rows,
//! so `GET /v1/accounts/{id}/access-token` opens them. It may run while `dravo serve` uses the
//! database (another process, as the CLI). Prints the new account ids, one a line.
//!
//! ```text
//! cargo run --release --example seed_accounts -- --database /tmp/x/dravo.db \
//!     --owner bench --app-id oa_... --count 20 --expires-in 2592000
//! ```
//!
//! `benches/load.sh` uses it for the accounts it lists and whose access token it reads.

#[path = "../benches/support/seed.rs"]
mod seed;

use std::path::PathBuf;

use clap::Parser;
use dravo::config::Config;
use dravo::domain::{AppId, Owner, Timestamp};

#[derive(Parser)]
struct Args {
    /// The database (its key file is found as `dravo serve` finds it: next to it).
    #[arg(long)]
    database: PathBuf,
    /// The tenant the accounts belong to.
    #[arg(long)]
    owner: String,
    /// The tenant's OAuth app the accounts were connected with.
    #[arg(long)]
    app_id: String,
    #[arg(long, default_value_t = 20)]
    count: u64,
    /// Seconds until the access tokens expire (30 days by default: no refresh is due while a
    /// benchmark runs, so no provider is called).
    #[arg(long, default_value_t = 30 * 86_400)]
    expires_in: i64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> dravo::Result<()> {
    let args = Args::parse();
    let mut config = Config::default();
    config.database.path = args.database;
    // PostgreSQL, as `dravo serve` finds it (the key file stays next to `--database`).
    if let Ok(url) = std::env::var("DRAVO_DATABASE_URL") {
        config.database.url = Some(url.into());
    }
    let seeder = seed::Seeder::open(config).await?;
    let owner = Owner::parse("--owner", &args.owner)?;
    let app = seeder
        .dravo
        .get_app(&owner, &AppId::parse(&args.app_id)?)
        .await?;
    let now = Timestamp::now_system();
    let rows: Vec<_> = (0..args.count)
        .map(|n| seeder.account(owner.as_str(), &app, n, args.expires_in, now))
        .collect();
    let ids: Vec<String> = rows.iter().map(|r| r.id.to_string()).collect();
    seeder.write_accounts(rows).await?;
    for id in ids {
        println!("{id}");
    }
    Ok(())
}
