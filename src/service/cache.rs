//! An in-memory cache of OAuth-app rows, so the hot reads (`GET /v1/oauth-apps`, `start`)
//! skip the database. Every read first asks SQLite's `data_version`, which changes whenever
//! any connection commits — the server's own writes and the CLI's alike — and the cache is
//! emptied when it moved. So an entry is never older than the last commit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::AppList;
use crate::providers::Provider;
use crate::store::oauth_apps::AppRow;

/// Past this many entries the cache starts over (bounds memory with many tenants).
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
struct Entries {
    version: i64,
    /// (owner, provider filter) → the list, oldest first.
    lists: HashMap<(String, Option<Provider>), Arc<AppList>>,
    /// (owner, app id) → the row.
    rows: HashMap<(String, String), Arc<AppRow>>,
}

impl Entries {
    /// Empties the cache when the database changed since the entries were read.
    fn at(&mut self, version: i64) -> &mut Self {
        if self.version != version || self.lists.len() + self.rows.len() >= MAX_ENTRIES {
            self.lists.clear();
            self.rows.clear();
            self.version = version;
        }
        self
    }
}

#[derive(Default)]
pub(super) struct AppCache(Mutex<Entries>);

impl AppCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave the maps inconsistent (each update is
        // one insert), so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn list(
        &self,
        version: i64,
        owner: &str,
        provider: Option<Provider>,
    ) -> Option<Arc<AppList>> {
        self.entries()
            .at(version)
            .lists
            .get(&(owner.to_owned(), provider))
            .cloned()
    }

    /// Stores a list read after `version` was observed. Should a commit have slipped in
    /// between, the version has moved and the next read empties the cache anyway.
    pub fn put_list(
        &self,
        version: i64,
        owner: &str,
        provider: Option<Provider>,
        list: Arc<AppList>,
    ) {
        self.entries()
            .at(version)
            .lists
            .insert((owner.to_owned(), provider), list);
    }

    pub fn row(&self, version: i64, owner: &str, id: &str) -> Option<Arc<AppRow>> {
        self.entries()
            .at(version)
            .rows
            .get(&(owner.to_owned(), id.to_owned()))
            .cloned()
    }

    pub fn put_row(&self, version: i64, row: Arc<AppRow>) {
        self.entries()
            .at(version)
            .rows
            .insert((row.owner.clone(), row.id.clone()), row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(owner: &str, id: &str) -> AppRow {
        AppRow {
            id: id.into(),
            owner: owner.into(),
            provider: Provider::X,
            name: "n".into(),
            client_id: "c".into(),
            client_secret_sealed: vec![],
            scopes: vec![],
            created_at: "t".into(),
        }
    }

    #[test]
    fn entries_live_until_the_version_moves() {
        let cache = AppCache::default();
        cache.put_row(1, Arc::new(row("alice", "oa_1")));
        cache.put_list(1, "alice", None, Arc::new(AppList::new(vec![])));
        assert!(cache.row(1, "alice", "oa_1").is_some());
        assert!(cache.row(1, "bob", "oa_1").is_none());
        assert!(cache.list(1, "alice", None).is_some());
        assert!(cache.list(1, "alice", Some(Provider::X)).is_none());
        assert!(cache.row(2, "alice", "oa_1").is_none());
        assert!(cache.list(2, "alice", None).is_none());
    }
}
