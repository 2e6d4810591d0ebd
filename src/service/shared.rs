//! What the core derives from the store's shared lists (the callers' views, their rendered
//! JSON), kept per thread by the identity of the list it came from. The store hands out the
//! same `Arc` while nothing has changed (see `store::Store::list_apps`), and what is derived
//! here is a pure function of that list, so equal identity means an equal result. The memo
//! holds the source `Arc` itself, so its address cannot be reused by another list meanwhile.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use thread_local::ThreadLocal;

/// Past this many entries a thread's memo starts over.
const LIMIT: usize = 4096;

/// An immutable list as callers see it, with a slot for its rendered response body (filled
/// once by whoever renders it first).
#[derive(Debug)]
pub struct SharedList<T> {
    pub items: Vec<T>,
    /// Where the next page starts, for paginated lists.
    pub next_cursor: Option<String>,
    pub rendered: OnceLock<Bytes>,
}

/// source key → (the source list, what was derived from it).
type Entries<K, S, D> = HashMap<K, (Arc<S>, Arc<D>)>;

pub(super) struct Derived<K: Send, S: ?Sized + Send + Sync, D: Send + Sync> {
    per_thread: ThreadLocal<RefCell<Entries<K, S, D>>>,
}

impl<K: Send, S: ?Sized + Send + Sync, D: Send + Sync> Default for Derived<K, S, D> {
    fn default() -> Self {
        Derived {
            per_thread: ThreadLocal::new(),
        }
    }
}

impl<K, S, D> Derived<K, S, D>
where
    K: Hash + Eq + Send,
    S: ?Sized + Send + Sync,
    D: Send + Sync,
{
    /// What `make` derives from `source`, made again only when `source` is not the list the
    /// stored value was made from.
    pub fn get_or_make(&self, key: K, source: &Arc<S>, make: impl FnOnce(&S) -> D) -> Arc<D> {
        let mut entries = self.per_thread.get_or_default().borrow_mut();
        if let Some((from, derived)) = entries.get(&key)
            && Arc::ptr_eq(from, source)
        {
            return derived.clone();
        }
        if entries.len() >= LIMIT {
            entries.clear();
        }
        let derived = Arc::new(make(source));
        entries.insert(key, (source.clone(), derived.clone()));
        derived
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remade_exactly_when_the_source_list_changes() {
        let memo: Derived<&str, [u32], u32> = Derived::default();
        let first: Arc<[u32]> = vec![1, 2].into();
        let mut made = 0;
        let mut sum = |s: &[u32]| {
            made += 1;
            s.iter().sum()
        };
        assert_eq!(*memo.get_or_make("k", &first, &mut sum), 3);
        assert_eq!(*memo.get_or_make("k", &first.clone(), &mut sum), 3);
        // An equal list that is another allocation is not trusted: it is derived again.
        let equal: Arc<[u32]> = vec![1, 2].into();
        assert_eq!(*memo.get_or_make("k", &equal, &mut sum), 3);
        let changed: Arc<[u32]> = vec![5].into();
        assert_eq!(*memo.get_or_make("k", &changed, &mut sum), 5);
        assert_eq!(made, 3);
    }
}
