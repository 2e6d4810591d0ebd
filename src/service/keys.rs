//! The master keys of a database, as the core uses them: the key ring it holds (and reloads
//! when another process rotates), sealing with the key the database names, `dravo keys
//! status`, and `dravo keys rotate`.
//!
//! Which key seals new values is the database's choice (`master_keys`: the newest key not
//! retired), read inside each write transaction that seals: once a rotation has recorded its
//! new key, no process commits a value sealed with an older one, and a process that does not
//! hold the new key yet reads the key file again. A rotation re-seals values in small
//! transactions, each replacing a value only if it is still the one read, then retires the
//! old keys in one transaction that first counts that none seals a value any more.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Dravo;
use super::key_file::{self, KeySource};
use super::seal_contexts::{
    ACCESS, REFRESH, pending_context, registration_context, secret_context, token_context,
};
use crate::auth::Authenticator;
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::ring::GraceLine;
use crate::crypto::seal::prefixes_of;
use crate::crypto::{
    KeyId, KeyRing, Keys, KnownKey, MasterKey, OpenFailure, RingFile, StateKeys, state,
};
use crate::domain::Timestamp;
use crate::error::{Error, Result};
use crate::store::{MasterKeyRecord, SealedColumn, SealedRow, Store, WriteTx};

/// The meta value that says a rotation is under way, and where it is: `<column>:<rowid>`,
/// the next sealed column to work on (its index in `SealedColumn::ALL`) and the last row done.
const ROTATION_CURSOR: &str = "key_rotation_cursor";

/// How often a server looks whether the keys changed (another process rotated or retired).
pub(super) const KEY_WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// How many times a rotation goes over the values again when some were left behind.
const MAX_PASSES: usize = 3;

/// The ring the core uses, and what it was built from.
pub(super) struct KeyHolder {
    ring: RwLock<Arc<KeyRing>>,
    /// The database's key records the ring was built against.
    known: Mutex<Vec<MasterKeyRecord>>,
    /// The key file's size and modification time when it was last read.
    file_stamp: Mutex<Option<(u64, std::time::SystemTime)>>,
}

impl KeyHolder {
    pub(super) fn new(ring: KeyRing, known: Vec<MasterKeyRecord>, source: &KeySource) -> Self {
        KeyHolder {
            ring: RwLock::new(Arc::new(ring)),
            known: Mutex::new(known),
            file_stamp: Mutex::new(file_stamp(source)),
        }
    }
}

fn file_stamp(source: &KeySource) -> Option<(u64, std::time::SystemTime)> {
    let KeySource::File { path, .. } = source else {
        return None;
    };
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// What the ring matches a key file against.
pub(super) fn known_keys(records: &[MasterKeyRecord]) -> Vec<KnownKey> {
    records
        .iter()
        .filter_map(|r| {
            Some(KnownKey {
                id: KeyId::new(r.id)?,
                check_value: r.check_value.clone(),
                retired: r.retired_at.is_some(),
                accept_until: r.accept_until,
            })
        })
        .collect()
}

/// Records the keys of a ring file in a database that has none yet (its first use): a fresh
/// key file's key, or `security.master_key`, becomes key 1.
pub(super) fn first_records(file: &RingFile, now: Timestamp) -> Vec<MasterKeyRecord> {
    file.keys
        .iter()
        .map(|k| MasterKeyRecord {
            id: k.id.unwrap_or(KeyId::FIRST).get(),
            check_value: k.key.check_value(),
            added_at: now,
            retired_at: None,
            accept_until: None,
        })
        .collect()
}

/// The associated data of a sealed value, from the row it belongs to.
pub(super) fn row_context(column: SealedColumn, row: &SealedRow) -> Vec<&[u8]> {
    let pai = row.provider_account_id.as_deref().unwrap_or("");
    match column {
        SealedColumn::AppClientSecret => {
            secret_context(row.id.as_str(), row.owner.as_str(), row.provider).to_vec()
        }
        SealedColumn::AccessToken | SealedColumn::RefreshToken => {
            let kind = if column == SealedColumn::AccessToken {
                ACCESS
            } else {
                REFRESH
            };
            token_context(kind, row.id.as_str(), row.owner.as_str(), row.provider, pai).to_vec()
        }
        SealedColumn::PendingConnection => {
            pending_context(row.id.as_str(), row.owner.as_str(), row.provider).to_vec()
        }
        SealedColumn::RegistrationSecret => {
            registration_context(row.id.as_str(), row.owner.as_str(), row.provider, pai).to_vec()
        }
    }
}

/// What a key is to its database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// Seals new values.
    Current,
    /// Still opens values; a rotation is re-sealing them with the current key.
    Previous,
    /// Seals nothing any more.
    Retired,
}

impl KeyRole {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Current => "current",
            KeyRole::Previous => "previous",
            KeyRole::Retired => "retired",
        }
    }
}

/// One key in `dravo keys status`.
#[derive(Debug, Clone)]
pub struct KeyState {
    pub id: KeyId,
    pub role: KeyRole,
    pub added_at: Timestamp,
    pub retired_at: Option<Timestamp>,
    /// A retired key's states and dashboard tokens count until then.
    pub accept_until: Option<Timestamp>,
    /// How many stored values it seals.
    pub values: u64,
    /// Whether this process's key file (or `security.master_key`) holds it.
    pub in_ring: bool,
}

/// `dravo keys status`.
#[derive(Debug, Clone)]
pub struct KeysStatus {
    /// Where the keys come from.
    pub source: String,
    pub keys: Vec<KeyState>,
    /// A rotation started and has not retired the old keys yet.
    pub rotation_in_progress: bool,
    /// Stored values that name a key the database does not record (they cannot be opened).
    pub unknown_values: u64,
}

/// How `dravo keys rotate` works.
#[derive(Debug, Clone, Copy)]
pub struct RotateOptions {
    /// Values re-sealed per transaction.
    pub batch_size: usize,
    /// Pause between two batches, to leave the database to the server.
    pub pause: Duration,
    /// How long the old key's OAuth states and dashboard tokens count after it is retired.
    pub grace_seconds: u64,
}

/// What a rotation reports as it goes.
#[derive(Debug, Clone)]
pub enum RotateProgress {
    /// Re-sealing begins (or begins again after an interruption).
    Started {
        from: Vec<KeyId>,
        to: KeyId,
        resumed: bool,
        /// Values sealed with the old keys when it began.
        total: u64,
    },
    /// `done` values were re-sealed so far.
    Resealed { done: u64, total: u64 },
}

/// What a finished rotation did.
#[derive(Debug, Clone)]
pub struct RotateReport {
    pub new_key: KeyId,
    pub retired: Vec<KeyId>,
    pub resealed: u64,
    /// It finished a rotation an earlier run began.
    pub resumed: bool,
    /// The retired keys' states and dashboard tokens count until then.
    pub accept_until: Timestamp,
    pub key_file: PathBuf,
}

/// A fresh master key (64 random bytes) in base64, for `security.master_key` or a key file.
pub fn generate_master_key() -> String {
    MasterKey::generate().to_base64()
}

/// The vault: the master keys this process holds (reloaded when another process rotates),
/// sealing and opening with them, key status and rotation. It owns the key ring and the
/// dashboard-token authenticator (which verifies with keys from the ring); it is handed the
/// store (the database's key records), the clock and the configuration (where the key file
/// is).
pub(super) struct Vault {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: Arc<Config>,
    holder: KeyHolder,
    auth: Authenticator,
}

impl Vault {
    pub(super) fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: Arc<Config>,
        holder: KeyHolder,
        auth: Authenticator,
    ) -> Self {
        Vault {
            store,
            clock,
            config,
            holder,
            auth,
        }
    }

    /// Verifies and issues dashboard tokens.
    pub(super) fn auth(&self) -> &Authenticator {
        &self.auth
    }
}

impl Vault {
    /// The keys as this process holds them now.
    pub(super) fn ring(&self) -> Arc<KeyRing> {
        self.holder
            .ring
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(super) fn key_source(&self) -> KeySource {
        KeySource::of(&self.config)
    }

    /// Reads the key file again and matches it with `records` (the database's key records;
    /// `None`: read them now). Keeps the old ring when that fails.
    async fn reload_keys(&self, records: Option<Vec<MasterKeyRecord>>) -> Result<Arc<KeyRing>> {
        let holder = &self.holder;
        let records = match records {
            Some(r) => r,
            None => self.store.master_keys().await?,
        };
        let source = self.key_source();
        let stamp = file_stamp(&source);
        let file = key_file::load(&self.config, false)?;
        let (ring, warnings) = KeyRing::build(
            &file,
            &known_keys(&records),
            self.clock.now(),
            &source.describe(),
            &self.config.database.describe(),
        )?;
        for warning in warnings {
            tracing::warn!("{warning}");
        }
        self.auth.use_ring(&ring)?;
        let ring = Arc::new(ring);
        *holder.ring.write().unwrap_or_else(|e| e.into_inner()) = ring.clone();
        *holder.known.lock().unwrap_or_else(|e| e.into_inner()) = records;
        *holder.file_stamp.lock().unwrap_or_else(|e| e.into_inner()) = stamp;
        tracing::debug!(current_key = %ring.current().id(), "master keys loaded");
        Ok(ring)
    }

    /// The keys that seal new values in this write transaction: the key the database names,
    /// read in the transaction, so no value is committed under a key a rotation retired.
    pub(super) async fn sealing_keys(&self, tx: &mut dyn WriteTx) -> Result<Arc<Keys>> {
        let id = tx
            .current_key_id()
            .await?
            .and_then(KeyId::new)
            .ok_or_else(|| Error::Key("the database records no master key in use".into()))?;
        if let Some(keys) = self.ring().live(id) {
            return Ok(keys.clone());
        }
        // Another process rotated: its new key is in the key file.
        let ring = self.reload_keys(Some(tx.master_keys().await?)).await?;
        ring.live(id).cloned().ok_or_else(|| self.unknown_key(id))
    }

    /// Whether the key file differs from the one the ring was built from: only then can a
    /// reload find a key this process lacks. A value naming an unknown key (a forged state or
    /// cursor, say) thus costs one `stat`, not a reload.
    fn key_file_changed(&self) -> bool {
        let now = file_stamp(&self.key_source());
        now.is_some()
            && *self
                .holder
                .file_stamp
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                != now
    }

    fn unknown_key(&self, id: KeyId) -> Error {
        Error::UnknownKey(format!(
            "a sealed value names master key {id}, which {} does not hold: it was sealed with a key since removed from it; put back the key file that holds key {id} (`dravo keys status` counts the values each key seals)",
            self.key_source().describe()
        ))
    }

    /// Opens a sealed value with the key it names; a key this process does not hold yet is
    /// looked for in the key file once (another process may have just rotated).
    pub(super) async fn open_sealed(&self, context: &[&[u8]], sealed: &[u8]) -> Result<Vec<u8>> {
        match self.ring().open(context, sealed) {
            Ok(plain) => Ok(plain),
            Err(OpenFailure::Unseal(e)) => Err(e),
            Err(OpenFailure::UnknownKey(id)) if !self.key_file_changed() => {
                Err(self.unknown_key(id))
            }
            Err(OpenFailure::UnknownKey(_)) => {
                let ring = self.reload_keys(None).await?;
                ring.open(context, sealed).map_err(|failure| match failure {
                    OpenFailure::Unseal(e) => e,
                    OpenFailure::UnknownKey(id) => self.unknown_key(id),
                })
            }
        }
    }

    /// The keys that open the OAuth state `raw` at `now`, by the key id it names: any key
    /// in use, or a retired key during its grace period.
    pub(super) async fn state_keys_for(&self, raw: &str, now: Timestamp) -> Option<Arc<StateKeys>> {
        let id = state::key_id(raw)?;
        let ring = self.ring();
        if let Some(keys) = ring.state_keys(id, now) {
            return Some(keys);
        }
        // A key newer than any this process holds: another process may have rotated.
        if ring.live_ids().all(|held| held < id) && self.key_file_changed() {
            return self.reload_keys(None).await.ok()?.state_keys(id, now);
        }
        None
    }

    /// Reloads the keys when the database's key records or the key file changed (a rotation
    /// by another process), every `KEY_WATCH_INTERVAL`, until `shutdown`.
    pub(super) async fn run_watch(&self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(KEY_WATCH_INTERVAL) => {}
            }
            if let Err(e) = self.reload_keys_if_changed().await {
                tracing::warn!(error = %e, "cannot reload the master keys; keeping the ones in use");
            }
        }
    }

    /// One look of `run_key_watch`; true when the keys were reloaded.
    pub(super) async fn reload_keys_if_changed(&self) -> Result<bool> {
        let records = self.store.master_keys().await?;
        let stamp = file_stamp(&self.key_source());
        let unchanged = {
            let holder = &self.holder;
            *holder.known.lock().unwrap_or_else(|e| e.into_inner()) == records
                && *holder.file_stamp.lock().unwrap_or_else(|e| e.into_inner()) == stamp
        };
        if unchanged {
            return Ok(false);
        }
        let ring = self.reload_keys(Some(records)).await?;
        let live: Vec<KeyId> = ring.live_ids().collect();
        tracing::info!(
            current_key = %ring.current().id(),
            live_keys = %join_ids(&live),
            "master keys reloaded"
        );
        Ok(true)
    }

    /// The keys the database records, what each is, and how many values each seals.
    pub(super) async fn status(&self) -> Result<KeysStatus> {
        let records = self.store.master_keys().await?;
        let prefixes: Vec<Vec<Vec<u8>>> = records
            .iter()
            .map(|r| KeyId::new(r.id).map(prefixes_of).unwrap_or_default())
            .collect();
        let counts = self.store.count_sealed(prefixes).await?;
        let cursor = self.store.meta_get(ROTATION_CURSOR).await?;
        let current = records
            .iter()
            .filter(|r| r.retired_at.is_none())
            .map(|r| r.id)
            .max();
        let ring = self.ring();
        let total: u64 = counts.iter().map(|c| c.total).sum();
        let mut keys = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let Some(id) = KeyId::new(r.id) else { continue };
            keys.push(KeyState {
                id,
                role: match (r.retired_at, Some(r.id) == current) {
                    (Some(_), _) => KeyRole::Retired,
                    (None, true) => KeyRole::Current,
                    (None, false) => KeyRole::Previous,
                },
                added_at: r.added_at,
                retired_at: r.retired_at,
                accept_until: r.accept_until,
                values: counts.iter().map(|c| c.by_key[i]).sum(),
                in_ring: ring.holds(id),
            });
        }
        let known: u64 = keys.iter().map(|k| k.values).sum();
        Ok(KeysStatus {
            source: self.key_source().describe(),
            rotation_in_progress: cursor.is_some()
                || keys.iter().any(|k| k.role == KeyRole::Previous),
            unknown_values: total.saturating_sub(known),
            keys,
        })
    }

    /// Rotates the master key while the server keeps serving: a new key is added to the key
    /// file and seals every new value at once; every value sealed with an older key is
    /// re-sealed with it, `batch_size` per transaction; then the old keys are retired (their
    /// states and dashboard tokens count for `grace_seconds` more). Interrupted, it resumes
    /// where it stopped when run again.
    pub(super) async fn rotate(
        self: &Arc<Self>,
        options: RotateOptions,
        progress: &mut (dyn FnMut(RotateProgress) + Send),
    ) -> Result<RotateReport> {
        let KeySource::File { path, .. } = self.key_source() else {
            return Err(Error::Key(format!(
                "the master key comes from security.master_key (the config file or DRAVO_SECURITY_MASTER_KEY), which holds one key, so a rotation cannot keep the old key beside the new one: write that key to a key file (`umask 077; echo \"$DRAVO_SECURITY_MASTER_KEY\" > {}`), unset security.master_key, then run `dravo keys rotate`",
                self.config.master_key_file().display()
            )));
        };
        let _one_at_a_time = lock_rotation(&path)?;
        self.tidy_key_file(&path).await?;

        let records = self.store.master_keys().await?;
        let live: Vec<u32> = live_ids(&records);
        let cursor = self.store.meta_get(ROTATION_CURSOR).await?;
        let resumed = cursor.is_some() || live.len() > 1;
        if !resumed {
            self.add_new_key(&path, &records).await?;
        } else if cursor.is_none() {
            self.store
                .write(|tx| Box::pin(async move { tx.meta_set(ROTATION_CURSOR, "0:0").await }))
                .await?;
        }
        let records = self.store.master_keys().await?;
        let ring = self.reload_keys(Some(records.clone())).await?;
        let target = ring.current().id();
        let old: Vec<KeyId> = live_ids(&records)
            .into_iter()
            .filter_map(KeyId::new)
            .filter(|id| *id != target)
            .collect();
        let old_prefixes: Vec<Vec<u8>> = old.iter().flat_map(|id| prefixes_of(*id)).collect();
        let total: u64 = self
            .store
            .count_sealed(vec![old_prefixes.clone()])
            .await?
            .iter()
            .map(|c| c.by_key[0])
            .sum();
        progress(RotateProgress::Started {
            from: old.clone(),
            to: target,
            resumed,
            total,
        });

        let mut done = 0;
        let grace = i64::try_from(options.grace_seconds).unwrap_or(i64::MAX);
        let mut accept_until = self.clock.now();
        let mut retired = false;
        for _ in 0..MAX_PASSES {
            loop {
                let (resealed, finished) = self
                    .reseal_batch(target, &old_prefixes, options.batch_size.max(1))
                    .await?;
                done += resealed;
                if resealed > 0 {
                    progress(RotateProgress::Resealed {
                        done,
                        total: total.max(done),
                    });
                }
                if finished {
                    break;
                }
                if !options.pause.is_zero() {
                    tokio::time::sleep(options.pause).await;
                }
            }
            let (now, prefixes, ids) = (self.clock.now(), old_prefixes.clone(), old.clone());
            accept_until = now.plus_seconds(grace);
            retired = self
                .store
                .write(move |tx| {
                    Box::pin(async move {
                        let left: u64 = tx
                            .count_sealed(&[prefixes])
                            .await?
                            .iter()
                            .map(|c| c.by_key[0])
                            .sum();
                        if left > 0 {
                            // Written behind the cursor with an old key meanwhile: go over it all again.
                            tx.meta_set(ROTATION_CURSOR, "0:0").await?;
                            return Ok(false);
                        }
                        for id in &ids {
                            tx.retire_master_key(id.get(), now, accept_until).await?;
                        }
                        tx.meta_delete(ROTATION_CURSOR).await?;
                        Ok(true)
                    })
                })
                .await?;
            if retired {
                break;
            }
        }
        if !retired {
            return Err(Error::Internal(format!(
                "values sealed with master key {} keep appearing after {MAX_PASSES} passes: run `dravo keys rotate` again",
                join_ids(&old)
            )));
        }
        self.tidy_key_file(&path).await?;
        tracing::info!(new_key = %target, retired = %join_ids(&old), resealed = done, "master key rotated");
        Ok(RotateReport {
            new_key: target,
            retired: old,
            resealed: done,
            resumed,
            accept_until,
            key_file: path,
        })
    }

    /// Starts a rotation: a new key in the key file first, then in the database, which makes
    /// it the key that seals new values. A key file that already holds a key the database
    /// never recorded (a rotation stopped between the two steps) has its key adopted.
    async fn add_new_key(&self, path: &Path, records: &[MasterKeyRecord]) -> Result<()> {
        let mut file = key_file::load(&self.config, false)?;
        let recorded_max = records.iter().map(|r| r.id).max().unwrap_or(0);
        let adopted = file
            .keys
            .iter()
            .filter_map(|k| k.id)
            .filter(|id| id.get() > recorded_max)
            .max();
        let (id, check_value) = match adopted {
            Some(id) => (id, file.key(id).expect("listed").check_value()),
            None => {
                let highest = file
                    .keys
                    .iter()
                    .filter_map(|k| k.id)
                    .chain(file.graces.iter().map(|g| g.id))
                    .map(KeyId::get)
                    .chain([recorded_max])
                    .max()
                    .unwrap_or(0);
                let id = KeyId::new(highest).map_or(KeyId::FIRST, KeyId::next);
                let key = MasterKey::generate();
                let check_value = key.check_value();
                file.keys
                    .push(crate::crypto::ring::RingKey { id: Some(id), key });
                key_file::write(&file, path)?;
                (id, check_value)
            }
        };
        let record = MasterKeyRecord {
            id: id.get(),
            check_value,
            added_at: self.clock.now(),
            retired_at: None,
            accept_until: None,
        };
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    tx.add_master_key(&record).await?;
                    tx.meta_set(ROTATION_CURSOR, "0:0").await
                })
            })
            .await?;
        tracing::info!(key = %id, "new master key added: it seals new values from now on");
        Ok(())
    }

    /// Re-seals the next batch of values sealed with an old key, in one transaction, and
    /// moves the cursor past them. Returns how many it re-sealed and whether every column
    /// is done.
    async fn reseal_batch(
        self: &Arc<Self>,
        target: KeyId,
        old_prefixes: &[Vec<u8>],
        batch: usize,
    ) -> Result<(u64, bool)> {
        let this = self.clone();
        let prefixes = old_prefixes.to_vec();
        self.store
            .write(move |tx| Box::pin(async move {
                let Some(cursor) = tx.meta_get(ROTATION_CURSOR).await? else {
                    return Ok((0, true));
                };
                let (column_index, after) = parse_cursor(&cursor);
                let Some(&column) = SealedColumn::ALL.get(column_index) else {
                    return Ok((0, true));
                };
                let keys = this.sealing_keys(tx).await?;
                if keys.id() != target {
                    return Err(Error::Conflict(format!(
                        "master key {} now seals new values, not {target}: another rotation ran meanwhile; run `dravo keys rotate` again",
                        keys.id()
                    )));
                }
                let rows = tx.sealed_rows(column, after, &prefixes, batch).await?;
                let mut resealed = 0;
                for row in &rows {
                    let context = row_context(column, row);
                    let plain = this.open_sealed(&context, &row.sealed).await.map_err(|e| {
                        Error::Key(format!(
                            "the {} of {} does not open ({e}): delete it (or restore it from a backup), then run `dravo keys rotate` again",
                            column.describe(),
                            row.id
                        ))
                    })?;
                    let new = keys.sealer().seal(&context, &plain);
                    if tx.replace_sealed(column, &row.id, &row.sealed, &new).await? {
                        resealed += 1;
                    }
                }
                let next = match rows.last() {
                    Some(last) if rows.len() == batch => format!("{column_index}:{}", last.rowid),
                    _ => format!("{}:0", column_index + 1),
                };
                tx.meta_set(ROTATION_CURSOR, &next).await?;
                Ok((resealed, column_index + 1 >= SealedColumn::ALL.len() && rows.len() < batch))
            }))
            .await
    }

    /// Brings the key file in line with the database: a retired key's master key is replaced
    /// by its grace line (only what verifies its states and tokens) while its grace period
    /// lasts, and is gone after; nothing else changes. Idempotent, so a rotation stopped
    /// between retiring a key and rewriting the file is finished by the next run.
    async fn tidy_key_file(&self, path: &Path) -> Result<()> {
        let records = self.store.master_keys().await?;
        let now = self.clock.now();
        let mut file = key_file::load(&self.config, false)?;
        let retired = |id: KeyId| {
            records
                .iter()
                .find(|r| r.id == id.get() && r.retired_at.is_some())
        };
        let mut changed = false;
        let mut keys = Vec::new();
        for key in std::mem::take(&mut file.keys) {
            let Some(record) = key.id.and_then(retired) else {
                keys.push(key);
                continue;
            };
            changed = true;
            let id = key.id.expect("matched by id");
            if let Some(until) = record.accept_until.filter(|u| *u > now)
                && !file.graces.iter().any(|g| g.id == id)
            {
                file.graces.push(GraceLine {
                    id,
                    until,
                    material: key.key.grace_material(),
                });
            }
        }
        file.keys = keys;
        let before = file.graces.len();
        file.graces.retain(|g| g.until > now);
        changed |= file.graces.len() != before;
        if changed {
            key_file::write(&file, path)?;
        }
        Ok(())
    }
}

/// The vault's operations, as the rest of the core and its callers reach them.
impl Dravo {
    /// The keys as this process holds them now.
    pub(super) fn keys(&self) -> Arc<KeyRing> {
        self.0.vault.ring()
    }

    pub(super) fn key_source(&self) -> KeySource {
        self.0.vault.key_source()
    }

    /// Opens a sealed value with the key it names (`Vault::open_sealed`).
    pub(super) async fn open_sealed(&self, context: &[&[u8]], sealed: &[u8]) -> Result<Vec<u8>> {
        self.0.vault.open_sealed(context, sealed).await
    }

    /// Reloads the keys when the database's key records or the key file changed (a rotation
    /// by another process), every `KEY_WATCH_INTERVAL`, until `shutdown`.
    pub async fn run_key_watch(self, shutdown: CancellationToken) {
        self.0.vault.run_watch(shutdown).await
    }

    /// One look of `run_key_watch`; true when the keys were reloaded.
    pub async fn reload_keys_if_changed(&self) -> Result<bool> {
        self.0.vault.reload_keys_if_changed().await
    }

    /// The keys the database records, what each is, and how many values each seals.
    pub async fn keys_status(&self) -> Result<KeysStatus> {
        self.0.vault.status().await
    }

    /// Rotates the master key while the server keeps serving (`Vault::rotate`).
    pub async fn rotate_keys(
        &self,
        options: RotateOptions,
        progress: &mut (dyn FnMut(RotateProgress) + Send),
    ) -> Result<RotateReport> {
        self.0.vault.rotate(options, progress).await
    }
}

fn live_ids(records: &[MasterKeyRecord]) -> Vec<u32> {
    records
        .iter()
        .filter(|r| r.retired_at.is_none())
        .map(|r| r.id)
        .collect()
}

fn join_ids(ids: &[KeyId]) -> String {
    ids.iter()
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `<column>:<rowid>`; anything else starts over.
fn parse_cursor(text: &str) -> (usize, i64) {
    text.split_once(':')
        .and_then(|(c, r)| Some((c.parse().ok()?, r.parse().ok()?)))
        .unwrap_or((0, 0))
}

/// Held while a rotation runs: a second `dravo keys rotate` on the same key file is refused
/// instead of racing the first. The lock dies with the process (a `kill -9` included).
fn lock_rotation(key_file: &Path) -> Result<std::fs::File> {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".rotating");
    let path = PathBuf::from(name);
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options
        .open(&path)
        .map_err(|e| Error::Key(format!("cannot open {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Conflict(format!(
            "another `dravo keys rotate` is running on {} (it holds {})",
            key_file.display(),
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(Error::Key(format!("cannot lock {}: {e}", path.display())))
        }
    }
}
