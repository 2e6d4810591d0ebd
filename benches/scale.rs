//! Scale: does a tenant's request cost the same in a big database as in an empty one?
//! `cargo bench --bench scale` (harness = false).
//!
//! 1. Seeds a "big" database through the library (`support/seed.rs`): SCALE_TENANTS tenants
//!    (1000) × SCALE_APPS apps (100), and SCALE_ACCOUNTS connected accounts (1 000 000) spread
//!    evenly over the tenants and their apps, connected in interleaved order (as tenants'
//!    users arrive over time), each with sealed tokens of its provider's usual size, an expiry
//!    spread over the provider's token lifetime (X 2 h, TikTok 1 day, the others 60 days), the
//!    lifecycle fields the library's rules give, and its `connected` event; SCALE_BATCH
//!    accounts (10 000) per write transaction.
//! 2. Seeds an "empty" database with the same code: one tenant shaped like each tenant of the
//!    big one (SCALE_APPS apps, SCALE_ACCOUNTS / SCALE_TENANTS accounts), nothing else.
//! 3. Times, SCALE_SAMPLES times (1000) on each database, alternating between them, for a
//!    random tenant (of 200 sampled in the big one):
//!    - a tenant's app list (`Store::list_apps`),
//!    - a tenant's first page of 100 accounts, and a later page (the SCALE_PAGE-th, 5) via its
//!      cursor (`Store::list_accounts_page`),
//!    - one account's access token (`Dravo::access_token`: the store read, the refresh
//!      decision and opening the seal; the token is fresh, so no provider call),
//!    - the refresher's "due soon" query (`Store::due_accounts`, with its batch of 200),
//!      looking a day ahead so that both databases answer a full batch.
//!
//!    Every round starts with a commit (a state nonce, through the store), so each read
//!    meets the database as after any write (SQLite drops a read connection's page cache
//!    when another connection has committed).
//! 4. Prints each median and p99, the ratio big / empty (target: within 2×), the seeding
//!    time and the database size per million accounts.
//!
//! The big database lives in a temp dir that is deleted at the end, unless SCALE_DIR names a
//! directory: then it is kept there and reused by the next run with the same sizes (delete it
//! when done: a million accounts take about a gigabyte).
//!
//! Quick run: `SCALE_TENANTS=10 SCALE_APPS=10 SCALE_ACCOUNTS=10000 cargo bench --bench scale`.

#[path = "support/seed.rs"]
mod seed;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dravo::config::Config;
use dravo::domain::{AccountId, Owner, Timestamp};
use dravo::providers;
use dravo::store::{AccountFilter, SqliteStore, Store};
use dravo::{Dravo, Result};
use rand::Rng;
use rand::seq::IndexedRandom;

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, got `{v}`")),
        Err(_) => default,
    }
}

#[derive(Clone, Copy)]
struct Sizes {
    tenants: usize,
    apps: usize,
    accounts: usize,
}

impl Sizes {
    fn tag(self) -> String {
        format!("{}/{}/{}", self.tenants, self.apps, self.accounts)
    }
}

fn tenant(i: usize) -> Owner {
    Owner::parse("tenant", &format!("tenant-{i:04}")).expect("a valid tenant")
}

const SEED_TAG: &str = "bench_scale_seed";

fn config_for(path: &Path) -> Config {
    let mut config = Config::default();
    config.database.path = path.to_path_buf();
    config
}

/// Seeds `sizes` into a new database at `path`; returns how long it took.
async fn seed(path: &Path, sizes: Sizes, batch: usize, label: &str) -> Result<Duration> {
    let started = Instant::now();
    let seeder = seed::Seeder::open(config_for(path)).await?;
    let mut apps = Vec::with_capacity(sizes.tenants);
    for t in 0..sizes.tenants {
        apps.push(seeder.create_apps(&tenant(t), sizes.apps).await?);
        if sizes.tenants >= 10 && (t + 1) % (sizes.tenants / 10) == 0 {
            eprintln!(
                "  {label}: {} tenants' apps ({:.0?})",
                t + 1,
                started.elapsed()
            );
        }
    }
    let now = Timestamp::now_system();
    let mut rng = rand::rng();
    let mut rows = Vec::with_capacity(batch);
    let tenth = (sizes.accounts / 10).max(1);
    for k in 0..sizes.accounts {
        let t = k % sizes.tenants;
        let app = &apps[t][(k / sizes.tenants) % sizes.apps];
        // Seeded apps are of providers whose tokens expire.
        let lifetime = providers::get(app.provider)
            .assumed_lifetime_seconds()
            .unwrap_or(86_400);
        let remaining = rng.random_range(60..=lifetime.max(61));
        rows.push(seeder.account(tenant(t).as_str(), app, k as u64, remaining, now));
        if rows.len() == batch || k + 1 == sizes.accounts {
            seeder.write_accounts(std::mem::take(&mut rows)).await?;
        }
        if (k + 1) % tenth == 0 {
            eprintln!("  {label}: {} accounts ({:.0?})", k + 1, started.elapsed());
        }
    }
    seeder.store().meta_init(SEED_TAG, &sizes.tag()).await?;
    Ok(started.elapsed())
}

/// The database at `path` with `sizes` seeded: reused when a previous run left it, else made.
async fn prepare(path: &Path, sizes: Sizes, batch: usize, label: &str) -> Result<Option<Duration>> {
    if path.exists() {
        let store = SqliteStore::open(path)?;
        if store.meta_get(SEED_TAG).await?.as_deref() == Some(sizes.tag().as_str()) {
            eprintln!("{label}: reusing {} ({})", path.display(), sizes.tag());
            return Ok(None);
        }
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let _ = std::fs::remove_file(path.with_file_name("dravo.key"));
    }
    eprintln!(
        "{label}: seeding {} tenants × {} apps, {} accounts into {}",
        sizes.tenants,
        sizes.apps,
        sizes.accounts,
        path.display()
    );
    // Every connection closes when the seeder goes: the WAL is checkpointed into the file.
    Ok(Some(seed(path, sizes, batch, label).await?))
}

fn file_size(path: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .map(|s| {
            std::fs::metadata(format!("{}{s}", path.display()))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum()
}

/// A database opened for timing: the core (access tokens) and the store (the rest).
struct Target {
    dravo: Dravo,
    store: Arc<dyn Store>,
    /// (tenant, cursor of the later page, an account with a fresh token)
    tenants: Vec<(Owner, Option<i64>, AccountId)>,
    apps: usize,
    page_len: usize,
    /// How many accounts the due query answers (the batch of 200, unless fewer are due).
    due_len: usize,
}

async fn open_target(path: &Path, sizes: Sizes, later_page: usize) -> Result<Target> {
    let dravo = Dravo::open(config_for(path), None).await?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(path)?);
    let now = Timestamp::now_system();
    let mut rng = rand::rng();
    let picked: Vec<usize> = if sizes.tenants <= 200 {
        (0..sizes.tenants).collect()
    } else {
        rand::seq::index::sample(&mut rng, sizes.tenants, 200).into_vec()
    };
    let mut tenants = Vec::new();
    for t in picked {
        let owner = tenant(t);
        let first = store
            .list_accounts_page(&owner, AccountFilter::default(), None, 100)
            .await?;
        // An account whose token is fresh for a while: handing it out calls no provider.
        let fresh = first
            .items
            .iter()
            .find(|a| {
                a.status.usable() && a.expires_at.is_some_and(|e| e.unix() > now.unix() + 3600)
            })
            .map(|a| AccountId::parse(&a.id))
            .transpose()?;
        let Some(fresh) = fresh else { continue };
        // The cursor that reads page `later_page` (or the last page there is).
        let (mut cursor, mut page_no) = (first.next_after, 1);
        while page_no + 1 < later_page {
            let Some(after) = cursor else { break };
            let next = store
                .list_accounts_page(&owner, AccountFilter::default(), Some(after), 100)
                .await?
                .next_after;
            match next {
                Some(n) => (cursor, page_no) = (Some(n), page_no + 1),
                None => break,
            }
        }
        tenants.push((owner, cursor, fresh));
    }
    assert!(
        !tenants.is_empty(),
        "no tenant has an account with a fresh token"
    );
    let due_len = store
        .due_accounts(now.plus_seconds(DUE_HORIZON), 200)
        .await?
        .len();
    Ok(Target {
        dravo,
        store,
        tenants,
        apps: sizes.apps,
        page_len: (sizes.accounts / sizes.tenants).min(100),
        due_len,
    })
}

/// The due query looks this far ahead, so that both databases answer a full batch (at `now`
/// the big one has many more accounts due than the empty one, and the comparison would be of
/// different amounts of work).
const DUE_HORIZON: i64 = 86_400;

const QUERIES: [&str; 5] = [
    "a tenant's app list",
    "a tenant's accounts, page 1 (100)",
    "a tenant's accounts, later page (100)",
    "one account's access token",
    "due accounts (refresher's query, 200)",
];

/// One round: a commit (as after any write), then each query once, timed.
async fn round(t: &Target, samples: &mut [Vec<Duration>; 5]) -> Result<()> {
    let now = Timestamp::now_system();
    let nonce = format!("{:032x}", rand::rng().random::<u128>());
    t.store
        .write(move |tx| {
            Box::pin(async move {
                tx.consume_state_nonce(&nonce, now.plus_seconds(600), now)
                    .await
            })
        })
        .await?;
    let (owner, later, account) = t.tenants.choose(&mut rand::rng()).expect("tenants");

    let start = Instant::now();
    let apps = t.store.list_apps(owner, None).await?;
    samples[0].push(start.elapsed());
    assert_eq!(apps.len(), t.apps);

    let start = Instant::now();
    let page = t
        .store
        .list_accounts_page(owner, AccountFilter::default(), None, 100)
        .await?;
    samples[1].push(start.elapsed());
    assert!(page.items.len() >= t.page_len);

    let start = Instant::now();
    let page = t
        .store
        .list_accounts_page(owner, AccountFilter::default(), *later, 100)
        .await?;
    samples[2].push(start.elapsed());
    assert!(!page.items.is_empty());

    let start = Instant::now();
    let token = t.dravo.access_token(owner, account, false).await?;
    samples[3].push(start.elapsed());
    assert!(!token.access_token.is_empty());

    let start = Instant::now();
    let due = t
        .store
        .due_accounts(now.plus_seconds(DUE_HORIZON), 200)
        .await?;
    samples[4].push(start.elapsed());
    assert_eq!(due.len(), t.due_len);
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let big = Sizes {
        tenants: env_usize("SCALE_TENANTS", 1000),
        apps: env_usize("SCALE_APPS", 100),
        accounts: env_usize("SCALE_ACCOUNTS", 1_000_000),
    };
    assert!(
        big.tenants > 0 && big.apps > 0 && big.accounts >= big.tenants,
        "need at least one tenant, one app and an account per tenant"
    );
    let small = Sizes {
        tenants: 1,
        apps: big.apps,
        accounts: big.accounts / big.tenants,
    };
    let samples_n = env_usize("SCALE_SAMPLES", 1000);
    let batch = env_usize("SCALE_BATCH", 10_000).max(1);
    let later_page = env_usize("SCALE_PAGE", 5).max(2);

    let temp = tempfile::tempdir().expect("a temp dir");
    let kept: Option<PathBuf> = std::env::var_os("SCALE_DIR").map(PathBuf::from);
    let big_dir = kept.clone().unwrap_or_else(|| temp.path().join("big"));
    let small_dir = temp.path().join("empty");
    std::fs::create_dir_all(&big_dir).expect("the big database's directory");
    std::fs::create_dir_all(&small_dir).expect("the empty database's directory");
    let (big_path, small_path) = (big_dir.join("dravo.db"), small_dir.join("dravo.db"));

    let big_seeding = prepare(&big_path, big, batch, "big").await?;
    let small_seeding = prepare(&small_path, small, batch, "empty").await?;
    let (big_bytes, small_bytes) = (file_size(&big_path), file_size(&small_path));

    let big_t = open_target(&big_path, big, later_page).await?;
    let small_t = open_target(&small_path, small, later_page).await?;
    let mut big_s: [Vec<Duration>; 5] = Default::default();
    let mut small_s: [Vec<Duration>; 5] = Default::default();
    // Warm-up, untimed.
    for _ in 0..20 {
        round(&big_t, &mut Default::default()).await?;
        round(&small_t, &mut Default::default()).await?;
    }
    for i in 0..samples_n {
        // Alternate which goes first, so neither always follows the other's cache effects.
        if i % 2 == 0 {
            round(&big_t, &mut big_s).await?;
            round(&small_t, &mut small_s).await?;
        } else {
            round(&small_t, &mut small_s).await?;
            round(&big_t, &mut big_s).await?;
        }
    }

    println!(
        "scale: big = {} tenants × {} apps, {} accounts; empty = 1 tenant × {} apps, {} accounts",
        big.tenants, big.apps, big.accounts, small.apps, small.accounts
    );
    match big_seeding {
        Some(d) => println!("  seeding the big database took {:.1} s", d.as_secs_f64()),
        None => println!("  the big database was reused from SCALE_DIR (seeded earlier)"),
    }
    if let Some(d) = small_seeding {
        println!("  seeding the empty database took {:.1} s", d.as_secs_f64());
    }
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "  database size: big {:.1} MB ({:.0} MB per million accounts), empty {:.1} MB",
        mb(big_bytes),
        mb(big_bytes) * 1e6 / big.accounts as f64,
        mb(small_bytes)
    );
    println!(
        "  the due query answers {} ids on the big database, {} on the empty one",
        big_t.due_len, small_t.due_len
    );
    println!(
        "  {samples_n} samples each, alternating; times in µs; the target: big within 2× of empty (median)"
    );
    println!();
    println!(
        "{:<40} {:>12} {:>10} {:>12} {:>10} {:>9} {:>9}  target",
        "query", "empty p50", "p99", "big p50", "p99", "p50 ×", "p99 ×"
    );
    for (i, name) in QUERIES.iter().enumerate() {
        small_s[i].sort();
        big_s[i].sort();
        let (sm, sp) = (percentile(&small_s[i], 0.5), percentile(&small_s[i], 0.99));
        let (bm, bp) = (percentile(&big_s[i], 0.5), percentile(&big_s[i], 0.99));
        let ratio = us(bm) / us(sm);
        println!(
            "{:<40} {:>12.1} {:>10.1} {:>12.1} {:>10.1} {:>9.2} {:>9.2}  {}",
            name,
            us(sm),
            us(sp),
            us(bm),
            us(bp),
            ratio,
            us(bp) / us(sp),
            if ratio <= 2.0 { "met" } else { "MISSED" }
        );
    }
    if kept.is_some() {
        eprintln!(
            "kept the big database in {} (delete it when done)",
            big_dir.display()
        );
    }
    Ok(())
}
