//! The key ring: the master keys a database's values may be sealed with.
//!
//! Keys live in the key file (`security.master_key_file`, `dravo.key` beside the database),
//! which `service::key_file` reads and writes; this module knows only its text. A fresh file
//! holds one bare base64 key, key 1. After a rotation (`dravo keys rotate`) it holds one line
//! per key, `key <id> <base64>`, and, for a retired key, a line
//! `grace <id> <unix time> <base64>` with only what verifies its OAuth states and dashboard
//! tokens until then. The database records each key's id and fingerprint and which key seals
//! new values (`service::keys`); `KeyRing::build` matches the two.
//!
//! `security.master_key` (config or environment) is a ring of one key, found by its
//! fingerprint; it cannot hold two keys, so it cannot be rotated in place.

use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretBox};

use crate::crypto::keys::{GraceMaterial, Keys, MasterKey, StateKeys};
use crate::crypto::seal::{KeyId, key_id_of};
use crate::domain::Timestamp;
use crate::error::{Error, Result};

/// One master key of a ring file.
pub struct RingKey {
    /// `None` for `security.master_key`, whose id the database's fingerprints tell.
    pub id: Option<KeyId>,
    pub key: MasterKey,
}

/// A retired key's grace line.
pub struct GraceLine {
    pub id: KeyId,
    pub until: Timestamp,
    pub material: GraceMaterial,
}

/// The keys as the key file (or `security.master_key`) holds them.
#[derive(Default)]
pub struct RingFile {
    pub keys: Vec<RingKey>,
    pub graces: Vec<GraceLine>,
}

const HEADER: &str = "\
# Dravo key ring (README: \"Rotating the master key\"). Secret: keep it private (mode 0600).
# `key <id> <base64>`: a master key; the database says which id seals new values.
# `grace <id> <unix time> <base64>`: a retired key's OAuth state and dashboard token keys,
# accepted until that time; they open no sealed secret.
";

impl RingFile {
    /// Reads a key file's text: one bare base64 key (key 1), or `key`/`grace` lines.
    /// `source` names the file for error sentences, which never quote its content.
    pub fn parse(text: &str, source: &str) -> Result<RingFile> {
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
            .collect();
        if let [(_, only)] = lines[..]
            && !only.contains(char::is_whitespace)
        {
            return Ok(RingFile {
                keys: vec![RingKey {
                    id: Some(KeyId::FIRST),
                    key: MasterKey::from_base64(only, source)?,
                }],
                graces: Vec::new(),
            });
        }
        if lines.is_empty() {
            return Err(Error::Key(format!("{source} holds no key")));
        }
        let mut ring = RingFile::default();
        for (n, line) in lines {
            let bad = || {
                Error::Key(format!(
                    "{source}, line {n}: expected `key <id> <base64>` or `grace <id> <unix time> <base64>`"
                ))
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let id = fields
                .get(1)
                .and_then(|f| f.parse().ok())
                .and_then(KeyId::new)
                .ok_or_else(bad)?;
            let at = format!("{source}, line {n}");
            match fields[..] {
                ["key", _, key] => {
                    if ring.keys.iter().any(|k| k.id == Some(id)) {
                        return Err(Error::Key(format!("{at}: key {id} appears twice")));
                    }
                    ring.keys.push(RingKey {
                        id: Some(id),
                        key: MasterKey::from_base64(key, &at)?,
                    });
                }
                ["grace", _, until, material] => {
                    let until = until.parse().map(Timestamp::from_unix).map_err(|_| bad())?;
                    ring.graces.push(GraceLine {
                        id,
                        until,
                        material: GraceMaterial::from_base64(material, &at)?,
                    });
                }
                _ => return Err(bad()),
            }
        }
        Ok(ring)
    }

    /// The file's text in `key`/`grace` lines, keys by id.
    pub fn render(&self) -> String {
        let mut text = String::from(HEADER);
        let mut keys: Vec<&RingKey> = self.keys.iter().collect();
        keys.sort_by_key(|k| k.id);
        for k in keys {
            let id = k.id.expect("a key file's keys have ids");
            text.push_str(&format!("key {id} {}\n", k.key.to_base64()));
        }
        for g in &self.graces {
            text.push_str(&format!(
                "grace {} {} {}\n",
                g.id,
                g.until.unix(),
                g.material.to_base64()
            ));
        }
        text
    }

    /// The master key with this id.
    pub fn key(&self, id: KeyId) -> Option<&MasterKey> {
        self.keys.iter().find(|k| k.id == Some(id)).map(|k| &k.key)
    }
}

/// What the database records about one of its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownKey {
    pub id: KeyId,
    pub check_value: String,
    pub retired: bool,
    /// A retired key's OAuth states and dashboard tokens are accepted until then.
    pub accept_until: Option<Timestamp>,
}

/// A retired key's verification keys, accepted until `until`.
struct Grace {
    until: Timestamp,
    state: Arc<StateKeys>,
    jwt_secret: SecretBox<[u8; 32]>,
}

/// The keys a process holds, matched against its database: the live ones seal and open,
/// `current` seals new values, keys the database does not (or no longer) use only open, and
/// retired keys in their grace period only verify states and dashboard tokens.
pub struct KeyRing {
    live: BTreeMap<KeyId, Arc<Keys>>,
    open_only: BTreeMap<KeyId, Arc<Keys>>,
    graces: BTreeMap<KeyId, Grace>,
    current: KeyId,
}

/// Why a value did not open by its key id.
#[derive(Debug)]
pub enum OpenFailure {
    /// The ring holds no key with the value's id.
    UnknownKey(KeyId),
    /// The bytes are not a sealed value, or did not open (altered, moved, wrong key).
    Unseal(Error),
}

impl KeyRing {
    /// A ring of one key that is also the current one (tests, benches, a fresh database).
    pub fn single(keys: Keys) -> KeyRing {
        let current = keys.id();
        KeyRing {
            live: BTreeMap::from([(current, Arc::new(keys))]),
            open_only: BTreeMap::new(),
            graces: BTreeMap::new(),
            current,
        }
    }

    /// Matches the keys of `file` (from `source`) with what the database `database` records
    /// in `known`, at `now`. A key whose fingerprint differs from the database's is refused,
    /// and so is a ring without the key that seals new values. Returns the ring and warnings
    /// (a key still in use that the file lacks).
    pub fn build(
        file: &RingFile,
        known: &[KnownKey],
        now: Timestamp,
        source: &str,
        database: &str,
    ) -> Result<(KeyRing, Vec<String>)> {
        let current = known
            .iter()
            .filter(|k| !k.retired)
            .map(|k| k.id)
            .max()
            .ok_or_else(|| {
                Error::Key(format!(
                    "the database {database} records no master key in use"
                ))
            })?;
        let mismatch = || {
            Error::Key(format!(
                "the master key does not match the database {database}: it was created with another key (check security.master_key and security.master_key_file)"
            ))
        };
        let mut ring = KeyRing {
            live: BTreeMap::new(),
            open_only: BTreeMap::new(),
            graces: BTreeMap::new(),
            current,
        };
        for entry in &file.keys {
            let check = entry.key.check_value();
            let record = match entry.id {
                Some(id) => known.iter().find(|k| k.id == id),
                None => known.iter().find(|k| k.check_value == check),
            };
            let Some(id) = entry.id.or(record.map(|r| r.id)) else {
                return Err(mismatch());
            };
            let keys = Arc::new(Keys::derive(id, &entry.key));
            match record {
                Some(r) if r.check_value != check => return Err(mismatch()),
                Some(r) if !r.retired => {
                    ring.live.insert(id, keys);
                }
                Some(r) => {
                    if let Some(until) = r.accept_until.filter(|u| *u > now) {
                        ring.graces.insert(
                            id,
                            Grace {
                                until,
                                state: keys.state().clone(),
                                jwt_secret: SecretBox::new(Box::new(*keys.derived_jwt_secret())),
                            },
                        );
                    }
                    ring.open_only.insert(id, keys);
                }
                // A key the database never recorded: written by a rotation that stopped before
                // it began. It seals nothing; it may open what it did seal.
                None => {
                    ring.open_only.insert(id, keys);
                }
            }
        }
        for line in &file.graces {
            let Some(record) = known.iter().find(|k| k.id == line.id && k.retired) else {
                continue;
            };
            let until = record.accept_until.unwrap_or(line.until);
            if until > now && !ring.graces.contains_key(&line.id) {
                let (state, jwt_secret) = line.material.keys(line.id);
                ring.graces.insert(
                    line.id,
                    Grace {
                        until,
                        state: Arc::new(state),
                        jwt_secret,
                    },
                );
            }
        }
        if !ring.live.contains_key(&current) {
            if ring.live.is_empty() {
                return Err(mismatch());
            }
            return Err(Error::Key(format!(
                "{source} lacks master key {current}, which seals new values in the database {database}: put back the key file that `dravo keys rotate` wrote when it made key {current}"
            )));
        }
        let warnings = known
            .iter()
            .filter(|k| !k.retired && !ring.live.contains_key(&k.id))
            .map(|k| {
                format!(
                    "the database {database} still uses master key {}, but {source} does not hold it: values sealed with it cannot be opened (`dravo keys status` counts them)",
                    k.id
                )
            })
            .collect();
        Ok((ring, warnings))
    }

    /// The key that seals new values.
    pub fn current(&self) -> &Arc<Keys> {
        &self.live[&self.current]
    }

    /// A key the database uses.
    pub fn live(&self, id: KeyId) -> Option<&Arc<Keys>> {
        self.live.get(&id)
    }

    /// The ids of the keys the database uses, in order.
    pub fn live_ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.live.keys().copied()
    }

    /// Every key this ring can open values with, by id.
    pub fn opening_keys(&self) -> BTreeMap<KeyId, Arc<Keys>> {
        self.open_only
            .iter()
            .chain(&self.live)
            .map(|(id, k)| (*id, k.clone()))
            .collect()
    }

    /// Whether this ring holds key `id` in any role.
    pub fn holds(&self, id: KeyId) -> bool {
        self.live.contains_key(&id) || self.open_only.contains_key(&id)
    }

    /// Opens a sealed value with the key its header names.
    pub fn open(&self, context: &[&[u8]], sealed: &[u8]) -> Result<Vec<u8>, OpenFailure> {
        let id = key_id_of(sealed).ok_or_else(|| {
            OpenFailure::Unseal(Error::Unseal(
                "a sealed secret failed to open: its bytes are not a sealed value (altered or truncated)".into(),
            ))
        })?;
        let keys = self
            .live
            .get(&id)
            .or_else(|| self.open_only.get(&id))
            .ok_or(OpenFailure::UnknownKey(id))?;
        keys.sealer()
            .open(context, sealed)
            .map_err(OpenFailure::Unseal)
    }

    /// The state keys of key `id`, if states it sealed are accepted at `now`: a live key's
    /// always, a retired key's until its grace period ends.
    pub fn state_keys(&self, id: KeyId, now: Timestamp) -> Option<Arc<StateKeys>> {
        if let Some(keys) = self.live.get(&id) {
            return Some(keys.state().clone());
        }
        self.graces
            .get(&id)
            .filter(|g| now < g.until)
            .map(|g| g.state.clone())
    }

    /// The HS256 secrets dashboard tokens may be signed with: the current key's first, then
    /// the other live keys', then retired keys' with the end of their grace period.
    pub fn jwt_secrets(&self) -> Vec<(&[u8; 32], Option<Timestamp>)> {
        let mut secrets = vec![(self.current().derived_jwt_secret(), None)];
        secrets.extend(
            self.live
                .iter()
                .filter(|(id, _)| **id != self.current)
                .map(|(_, k)| (k.derived_jwt_secret(), None)),
        );
        secrets.extend(
            self.graces
                .values()
                .map(|g| (g.jwt_secret.expose_secret(), Some(g.until))),
        );
        secrets
    }

    /// Retired keys still in their grace period, with its end.
    pub fn graces(&self) -> impl Iterator<Item = (KeyId, Timestamp)> + '_ {
        self.graces.iter().map(|(id, g)| (*id, g.until))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_unix(1_800_000_000);

    fn id(n: u32) -> KeyId {
        KeyId::new(n).unwrap()
    }

    fn known(n: u32, key: &MasterKey, retired: bool, until: Option<i64>) -> KnownKey {
        KnownKey {
            id: id(n),
            check_value: key.check_value(),
            retired,
            accept_until: until.map(Timestamp::from_unix),
        }
    }

    fn build(file: &RingFile, known: &[KnownKey]) -> Result<KeyRing> {
        KeyRing::build(file, known, NOW, "the key file k", "d.db").map(|(r, _)| r)
    }

    #[test]
    fn a_bare_key_file_is_key_1_and_a_ring_file_round_trips() {
        let key = MasterKey::generate();
        let bare = RingFile::parse(&format!("{}\n", key.to_base64()), "f").unwrap();
        assert_eq!(bare.keys.len(), 1);
        assert_eq!(bare.keys[0].id, Some(KeyId::FIRST));
        assert_eq!(bare.keys[0].key.check_value(), key.check_value());

        let (one, two) = (MasterKey::generate(), MasterKey::generate());
        let ring = RingFile {
            keys: vec![
                RingKey {
                    id: Some(id(2)),
                    key: MasterKey::from_base64(&two.to_base64(), "t").unwrap(),
                },
                RingKey {
                    id: Some(id(1)),
                    key: MasterKey::from_base64(&one.to_base64(), "t").unwrap(),
                },
            ],
            graces: vec![GraceLine {
                id: id(1),
                until: NOW,
                material: one.grace_material(),
            }],
        };
        let text = ring.render();
        assert!(text.find("key 1 ").unwrap() < text.find("key 2 ").unwrap());
        let again = RingFile::parse(&text, "f").unwrap();
        assert_eq!(again.key(id(2)).unwrap().check_value(), two.check_value());
        assert_eq!(again.graces[0].until, NOW);
        assert_eq!(again.render(), text);
    }

    #[test]
    fn a_malformed_ring_file_is_refused_without_quoting_it() {
        let key = MasterKey::generate().to_base64();
        for text in [
            format!("key 0 {key}"),
            format!("key one {key}"),
            format!("key 1 {key} extra"),
            format!("lock 1 {key}"),
            format!("key 1 {key}\nkey 1 {key}"),
            "# only a comment\n".into(),
        ] {
            let err = RingFile::parse(&text, "the key file k")
                .err()
                .unwrap()
                .to_string();
            assert!(err.starts_with("the key file k"), "{err}");
            assert!(!err.contains(&key), "quotes the key: {err}");
        }
    }

    #[test]
    fn the_ring_follows_the_database() {
        let (one, two, three) = (
            MasterKey::generate(),
            MasterKey::generate(),
            MasterKey::generate(),
        );
        let file = |keys: &[(u32, &MasterKey)]| RingFile {
            keys: keys
                .iter()
                .map(|(n, k)| RingKey {
                    id: Some(id(*n)),
                    key: MasterKey::from_base64(&k.to_base64(), "t").unwrap(),
                })
                .collect(),
            graces: Vec::new(),
        };
        // Mid-rotation: both live, the newer seals.
        let db = [known(1, &one, false, None), known(2, &two, false, None)];
        let ring = build(&file(&[(1, &one), (2, &two)]), &db).unwrap();
        assert_eq!(ring.current().id(), id(2));
        assert_eq!(ring.live_ids().collect::<Vec<_>>(), [id(1), id(2)]);
        let sealed = ring.live(id(1)).unwrap().sealer().seal(&[b"c"], b"v");
        assert_eq!(ring.open(&[b"c"], &sealed).unwrap(), b"v");

        // A key the database never recorded opens but does not seal.
        let ring = build(&file(&[(1, &one), (3, &three)]), &db[..1]).unwrap();
        assert_eq!(ring.current().id(), id(1));
        assert!(ring.holds(id(3)) && ring.live(id(3)).is_none());

        // Key 1 retired: its states are accepted until its grace ends, then not at all.
        let db = [
            known(1, &one, true, Some(NOW.unix() + 60)),
            known(2, &two, false, None),
        ];
        let ring = build(&file(&[(2, &two)]), &db).unwrap();
        assert!(
            ring.state_keys(id(1), NOW).is_none(),
            "no grace line, no grace"
        );
        let mut with_grace = file(&[(2, &two)]);
        with_grace.graces.push(GraceLine {
            id: id(1),
            until: Timestamp::from_unix(NOW.unix() + 60),
            material: one.grace_material(),
        });
        let ring = build(&with_grace, &db).unwrap();
        assert!(ring.state_keys(id(1), NOW).is_some());
        assert!(ring.state_keys(id(1), NOW.plus_seconds(60)).is_none());
        assert_eq!(ring.jwt_secrets().len(), 2);
        let from_one = ring.open(&[b"c"], &sealed);
        assert!(matches!(from_one, Err(OpenFailure::UnknownKey(k)) if k == id(1)));

        // A wrong key, or a ring without the key that seals new values, is refused.
        let err = build(&file(&[(2, &three)]), &db).err().unwrap().to_string();
        assert!(err.contains("does not match"), "{err}");
        let db = [known(1, &one, false, None), known(2, &two, false, None)];
        let err = build(&file(&[(1, &one)]), &db).err().unwrap().to_string();
        assert!(err.contains("lacks master key 2"), "{err}");
        let (_, warnings) =
            KeyRing::build(&file(&[(2, &two)]), &db, NOW, "the key file k", "d.db").unwrap();
        assert!(
            warnings[0].contains("still uses master key 1"),
            "{warnings:?}"
        );
    }

    #[test]
    fn an_inline_key_is_found_by_its_fingerprint() {
        let (one, two) = (MasterKey::generate(), MasterKey::generate());
        let inline = |k: &MasterKey| RingFile {
            keys: vec![RingKey {
                id: None,
                key: MasterKey::from_base64(&k.to_base64(), "t").unwrap(),
            }],
            graces: Vec::new(),
        };
        let db = [known(1, &one, true, None), known(2, &two, false, None)];
        assert_eq!(build(&inline(&two), &db).unwrap().current().id(), id(2));
        let err = build(&inline(&MasterKey::generate()), &db).err().unwrap();
        assert!(err.to_string().contains("does not match"), "{err}");
    }
}
