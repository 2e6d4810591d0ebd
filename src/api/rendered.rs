//! The rendered bodies of the two hot list reads, `GET /v1/oauth-apps` and the first page of
//! `GET /v1/accounts`, kept with the database version read *before* the list was read
//! (`Dravo::read_version`), and sent again while the version read for a later request is the
//! same. Rendering is most of such a request's work (`benches/README.md`, "Caches that pay
//! rent"). A version names one read connection and what it had seen, and the store documents
//! that equal versions mean no commit landed in between, by this process or another (the
//! CLI); a list read after its version was taken is at least that new. So a kept body is
//! never older than the database. Where the store cannot tell a version (PostgreSQL), nothing
//! is kept. Later pages are not kept: their cursor is opened with the key ring on every
//! request, as without a cache.
//!
//! Each worker thread keeps its own entries (the SQLite store reads on a connection per
//! thread, so a thread's versions are those of its own connection), up to `MAX_BYTES`.

use std::cell::RefCell;
use std::collections::HashMap;

use bytes::Bytes;
use thread_local::ThreadLocal;

use crate::domain::{AccountFilter, Owner, Provider};
use crate::service::ReadVersion;

/// Past this many bytes of bodies, a thread's entries start over.
const MAX_BYTES: usize = 4 << 20;

/// Which list a body is of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListKey {
    /// A tenant's apps, optionally of one provider.
    Apps(Owner, Option<Provider>),
    /// The first page of a tenant's accounts matching a filter, of a page size.
    FirstAccounts(Owner, AccountFilter, Option<u32>),
}

#[derive(Default)]
struct Kept {
    bodies: HashMap<ListKey, (ReadVersion, Bytes)>,
    bytes: usize,
}

/// Rendered list bodies by list, per thread (see the module comment).
#[derive(Default)]
pub struct RenderedLists {
    per_thread: ThreadLocal<RefCell<Kept>>,
}

impl RenderedLists {
    /// The body kept for `key`, if it was read at `version`.
    pub fn get(&self, key: &ListKey, version: Option<ReadVersion>) -> Option<Bytes> {
        let version = version?;
        let kept = self.per_thread.get()?.borrow();
        match kept.bodies.get(key) {
            Some((at, body)) if *at == version => Some(body.clone()),
            _ => None,
        }
    }

    /// Keeps `body`, rendered from a list read after `version` was taken.
    pub fn put(&self, key: ListKey, version: Option<ReadVersion>, body: &Bytes) {
        let Some(version) = version else { return };
        let mut kept = self.per_thread.get_or_default().borrow_mut();
        if kept.bytes + body.len() > MAX_BYTES {
            *kept = Kept::default();
        }
        kept.bytes += body.len();
        if let Some((_, old)) = kept.bodies.insert(key, (version, body.clone())) {
            kept.bytes -= old.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_sent_again_only_at_the_version_it_was_read_at() {
        let lists = RenderedLists::default();
        let key = ListKey::Apps(Owner::parse("owner", "alice").unwrap(), None);
        let (v1, v2) = (ReadVersion::new(1, 7), ReadVersion::new(1, 8));
        let body = Bytes::from_static(b"[]");
        lists.put(key.clone(), Some(v1), &body);
        assert_eq!(lists.get(&key, Some(v1)), Some(body.clone()));
        assert_eq!(lists.get(&key, Some(v2)), None, "a commit since");
        // The same data version of another connection says nothing.
        assert_eq!(lists.get(&key, Some(ReadVersion::new(2, 7))), None);
        let bob = ListKey::Apps(Owner::parse("owner", "bob").unwrap(), None);
        assert_eq!(lists.get(&bob, Some(v1)), None);
        // A store that cannot tell a version: nothing is kept or sent.
        lists.put(bob.clone(), None, &body);
        assert_eq!(lists.get(&bob, None), None);
        assert_eq!(lists.get(&key, None), None);
    }

    #[test]
    fn a_threads_bodies_stay_within_their_bound() {
        let lists = RenderedLists::default();
        let v = Some(ReadVersion::new(1, 1));
        let body = Bytes::from(vec![b' '; MAX_BYTES / 3]);
        for n in 0..10 {
            let key = ListKey::Apps(Owner::parse("owner", &format!("t{n}")).unwrap(), None);
            lists.put(key.clone(), v, &body);
            assert!(lists.get(&key, v).is_some());
            let kept = lists.per_thread.get().unwrap().borrow();
            assert!(kept.bytes <= MAX_BYTES);
            assert_eq!(
                kept.bytes,
                kept.bodies.values().map(|(_, b)| b.len()).sum::<usize>()
            );
        }
    }
}
