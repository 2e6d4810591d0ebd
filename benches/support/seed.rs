//! Seeding a Dravo database for the benches, through the library: OAuth apps are created by the
//! core (`Dravo::create_app`, secret sealed as always); accounts are built as a connect leaves
//! them — tokens of the provider's usual length sealed by the library's sealer with the row's
//! associated data (`token_context`), `reauth_by`, status and `next_refresh_at` from the
//! lifecycle's own rules — and written with their `connected` event through the store's write
//! transactions, many accounts per transaction (a connect writes one per transaction, which
//! would take hours for a million).
//!
//! Included with `#[path = "../benches/support/seed.rs"] mod seed;` by `benches/scale.rs` and
//! `examples/seed_accounts.rs`.
#![allow(dead_code)]

use std::sync::Arc;

use dravo::config::Config;
use dravo::crypto::{KeyId, Keys};
use dravo::domain::{
    AccountId, AccountKind, AppId, AppName, ClientId, ClientSecret, EventId, Owner, Provider,
    Timestamp,
};
use dravo::providers::{self, Renewal};
use dravo::service::key_file;
use dravo::service::{
    ACCESS_TOKEN_SEAL, NewApp, OAuthApp, Policy, REFRESH_TOKEN_SEAL, deadline, next_look,
    status_at, token_context,
};
use dravo::store::{AccountRecord, EventRecord, Store};
use dravo::{Dravo, Result};
use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

/// Token lengths as providers hand them out, roughly: (access, refresh).
fn token_lengths(provider: Provider) -> (usize, usize) {
    match provider.as_str() {
        "x" => (91, 91),
        "linkedin" => (350, 350),
        "facebook" => (200, 0),
        "instagram" => (180, 0),
        "tiktok" => (72, 72),
        _ => (160, 100),
    }
}

fn random_text(rng: &mut impl Rng, len: usize) -> String {
    rng.sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// An open database to seed: the core (for apps) and a store of its own with the keys (for
/// accounts in batches).
pub struct Seeder {
    pub dravo: Dravo,
    store: Arc<dyn Store>,
    keys: Keys,
    policy: Policy,
}

impl Seeder {
    /// Opens the database of `config` (creating it, and its key file, if missing), as
    /// `dravo serve` would; the key is checked against the database by `Dravo::open`.
    pub async fn open(config: Config) -> Result<Seeder> {
        let policy = Policy::of(&config.refresh);
        let dravo = Dravo::open(config.clone(), None).await?;
        let store: Arc<dyn Store> = config.database.location().open(None).await?;
        // The key file's newest key: the one a fresh database seals with.
        let file = key_file::load(&config, false)?;
        let newest = file
            .keys
            .iter()
            .max_by_key(|k| k.id)
            .expect("a key file holds a key");
        let keys = Keys::derive(newest.id.unwrap_or(KeyId::FIRST), &newest.key);
        Ok(Seeder {
            dravo,
            store,
            keys,
            policy,
        })
    }

    /// The store accounts are written through (also readable for checks).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Creates `count` apps for `owner`, cycling through the providers whose apps hold
    /// credentials (a Mastodon app is registered on each instance instead).
    pub async fn create_apps(&self, owner: &Owner, count: usize) -> Result<Vec<OAuthApp>> {
        let providers: Vec<Provider> = providers::all()
            .filter(|p| p.hosting().app_has_credentials())
            .map(|p| p.id())
            .collect();
        let mut apps = Vec::with_capacity(count);
        for i in 0..count {
            let provider = providers[i % providers.len()];
            apps.push(
                self.dravo
                    .create_app(
                        owner,
                        NewApp {
                            provider,
                            name: AppName::parse(&format!("App {i}"))?,
                            client_id: Some(ClientId::parse(&format!(
                                "client-{}-{i:04}",
                                owner.as_str()
                            ))?),
                            client_secret: Some(ClientSecret::parse(&format!(
                                "secret-{}",
                                random_text(&mut rand::rng(), 32)
                            ))?),
                            website: None,
                            scopes: None,
                            user_agent: None,
                        },
                    )
                    .await?,
            );
        }
        Ok(apps)
    }

    /// An account row as a connect of `app`'s provider leaves it, `remaining` seconds before
    /// its access token expires (the provider's usual lifetime when it was issued, or
    /// `remaining` when that is longer), `n` making its provider identity unique.
    pub fn account(
        &self,
        owner: &str,
        app: &OAuthApp,
        n: u64,
        remaining: i64,
        now: Timestamp,
    ) -> AccountRecord {
        let mut rng = rand::rng();
        let provider = providers::get(app.provider);
        let renewal = provider.renewal();
        let lifetime = provider
            .assumed_lifetime_seconds()
            .unwrap_or(remaining)
            .max(remaining);
        let expires_at = now.plus_seconds(remaining);
        let issued_at = expires_at.plus_seconds(-lifetime);
        let (access_len, refresh_len) = token_lengths(app.provider);
        let mut row = AccountRecord {
            id: AccountId::generate(),
            owner: Owner::parse("owner", owner).expect("a valid owner"),
            provider: app.provider,
            oauth_app_id: Some(AppId::parse(&app.id).expect("an app's own id")),
            provider_account_id: format!("{:019}", 1_000_000_000_000_000_000u64 + n),
            username: Some(format!("user_{n}")),
            display_name: Some(format!("Bench User {n}")),
            scopes: provider.default_scope_list().into_vec(),
            status: dravo::domain::AccountStatus::Active,
            status_reason: None,
            access_token_sealed: Vec::new(),
            refresh_token_sealed: None,
            expires_at: Some(expires_at),
            refresh_expires_at: None,
            reauth_by: None,
            token_issued_at: Some(issued_at),
            next_refresh_at: None,
            refresh_failures: 0,
            warned_for: None,
            created_at: issued_at.plus_seconds(-rng.random_range(0..180 * 86_400)),
            updated_at: issued_at,
            kind: AccountKind::User,
            parent_id: None,
            tasks: None,
            token_version: 0,
            server: None,
        };
        let sealer = self.keys.sealer();
        let access = random_text(&mut rng, access_len);
        row.access_token_sealed = sealer.seal(
            &token_context(
                ACCESS_TOKEN_SEAL,
                row.id.as_str(),
                owner,
                row.provider,
                &row.provider_account_id,
            ),
            access.as_bytes(),
        );
        if refresh_len > 0 && matches!(renewal, Renewal::RefreshToken { .. }) {
            let refresh = random_text(&mut rng, refresh_len);
            row.refresh_token_sealed = Some(sealer.seal(
                &token_context(
                    REFRESH_TOKEN_SEAL,
                    row.id.as_str(),
                    owner,
                    row.provider,
                    &row.provider_account_id,
                ),
                refresh.as_bytes(),
            ));
        }
        row.reauth_by = deadline(
            renewal,
            row.refresh_token_sealed.is_some(),
            row.expires_at,
            row.refresh_expires_at,
        );
        let (status, reason) = status_at(row.reauth_by, now, self.policy);
        row.status = status;
        row.status_reason = reason;
        row.next_refresh_at = next_look(&row, renewal, self.policy, rng.random_range(0..=60));
        row
    }

    /// Writes the accounts, each with its `connected` event, in one transaction.
    pub async fn write_accounts(&self, rows: Vec<AccountRecord>) -> Result<()> {
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    for row in &rows {
                        tx.put_account(row).await?;
                        tx.insert_event(&connected_event(row)).await?;
                    }
                    Ok(())
                })
            })
            .await
    }
}

/// The event a connect records (its detail names the token by fingerprint, never by value).
fn connected_event(row: &AccountRecord) -> EventRecord {
    let digest = Sha256::digest(&row.access_token_sealed);
    let fingerprint: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    EventRecord {
        id: EventId::generate(),
        account_id: row.id.clone(),
        owner: row.owner.clone(),
        kind: "connected".into(),
        created_at: row.updated_at,
        detail: serde_json::json!({
            "fingerprint": fingerprint,
            "expires_at": row.expires_at.map(|t| t.to_string()),
            "scopes": row.scopes,
        }),
        seq: 0,
    }
}
