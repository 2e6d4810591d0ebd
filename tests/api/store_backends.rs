//! The store interface (`dravo::store::Store` and `WriteTx`) behaves the same on both
//! backends: each scenario runs on SQLite always and on PostgreSQL when
//! `DRAVO_TEST_POSTGRES_URL` is set (each run in a fresh schema). Without it the PostgreSQL
//! half says it was skipped, unless `DRAVO_REQUIRE_POSTGRES=1` (CI) makes that a failure.

use crate::support;

use std::collections::HashSet;
use std::sync::Arc;

use dravo::domain::{
    AccountId, AccountKind, AccountStatus, AppCheck, AppId, CheckResult, CheckSource, CheckStatus,
    EventId, Owner, Provider, Timestamp,
};
use dravo::error::Error;
use dravo::store::{
    AccountFilter, AccountRecord, AppRecord, EVENTS_KEPT_PER_ACCOUNT, EventRecord, MasterKeyRecord,
    OutboxRecord, PendingRecord, PgStore, SealedColumn, SqliteStore, Store,
};

const X: Provider = Provider::named("x");
const LINKEDIN: Provider = Provider::named("linkedin");
const T0: i64 = 1_800_000_000;

/// A store under test and what keeps it alive (the SQLite file's temp dir).
struct Opened {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Opened {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dravo.db");
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path))
        .await
        .unwrap()
        .expect("open the SQLite store");
    Opened {
        store: Arc::new(store),
        _dir: Some(dir),
    }
}

/// A PostgreSQL store in a schema of its own, or `None` (said) when no server is configured.
async fn postgres() -> Option<Opened> {
    let url = support::backend::fresh_schema(&support::backend::postgres_server()?);
    let store = PgStore::connect(&url, None)
        .await
        .expect("connect the PostgreSQL store");
    Some(Opened {
        store: Arc::new(store),
        _dir: None,
    })
}

/// Each scenario once per backend: `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let opened = super::sqlite().await;
                    super::$name(opened.store.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(opened) = super::postgres().await else { return };
                    super::$name(opened.store.clone()).await;
                }
            )*
        }
    };
}

on_both_backends!(
    apps_insert_conflict_update_delete,
    account_pages_filters_and_children,
    events_are_trimmed_to_the_newest_kept,
    refresh_lease_is_held_by_one_holder_until_it_runs_out,
    refresh_lease_is_refused_once_the_tokens_moved_on,
    old_delivered_and_failed_webhooks_are_pruned_and_pending_ones_kept,
    state_nonce_is_used_once,
    two_claimers_never_get_the_same_webhook_and_a_claim_runs_out,
    a_webhook_claim_is_extended_and_outcomes_recorded_only_by_its_holder,
    due_webhooks_are_claimed_in_the_order_they_were_recorded,
    webhooks_no_sender_took_are_given_up_after_their_window_in_bounded_batches,
    pending_connections_expire_and_are_purged,
    master_keys_and_sealed_values,
    a_failed_write_transaction_changes_nothing,
);

fn owner(name: &str) -> Owner {
    Owner::parse("owner", name).unwrap()
}

fn app(owner_name: &str, name: &str, sealed: &[u8]) -> AppRecord {
    AppRecord {
        id: AppId::generate(),
        owner: owner(owner_name),
        provider: X,
        name: name.into(),
        client_id: "client-id".into(),
        client_secret_sealed: sealed.to_vec(),
        scopes: vec!["tweet.read".into()],
        created_at: Timestamp::from_unix(T0),
        credentials_error: None,
        credentials_error_at: None,
        updated_at: Timestamp::from_unix(T0),
        last_check: None,
        user_agent: None,
        website: None,
    }
}

fn account(owner_name: &str, provider: Provider, provider_account_id: &str) -> AccountRecord {
    AccountRecord {
        id: AccountId::generate(),
        owner: owner(owner_name),
        provider,
        oauth_app_id: None,
        provider_account_id: provider_account_id.into(),
        username: Some(format!("user-{provider_account_id}")),
        display_name: None,
        scopes: vec!["a".into(), "b".into()],
        status: AccountStatus::Active,
        status_reason: None,
        access_token_sealed: vec![0xA1, 1, 2, 3],
        refresh_token_sealed: Some(vec![0xA1, 4, 5]),
        expires_at: Some(Timestamp::from_unix(T0 + 3600)),
        refresh_expires_at: None,
        reauth_by: None,
        token_issued_at: Some(Timestamp::from_unix(T0)),
        next_refresh_at: Some(Timestamp::from_unix(T0 + 3000)),
        refresh_failures: 0,
        warned_for: None,
        created_at: Timestamp::from_unix(T0),
        updated_at: Timestamp::from_unix(T0),
        kind: AccountKind::User,
        parent_id: None,
        tasks: None,
        token_version: 0,
        server: None,
    }
}

fn webhook(n: i64) -> OutboxRecord {
    OutboxRecord {
        id: EventId::generate().to_string(),
        kind: "account.connected".into(),
        owner: owner("alice"),
        body: format!("{{\"n\":{n}}}"),
        created_at: Timestamp::from_unix(T0 + n),
        status: "pending".into(),
        attempts: 0,
        next_attempt_at: Some(Timestamp::from_unix(T0 + n)),
        last_error: None,
        delivered_at: None,
        seq: 0,
    }
}

async fn insert_app(store: &Arc<dyn Store>, record: &AppRecord) -> Result<(), Error> {
    let record = record.clone();
    store
        .write(move |tx| Box::pin(async move { tx.insert_app(&record).await }))
        .await
}

async fn put_account(store: &Arc<dyn Store>, record: &AccountRecord) {
    let record = record.clone();
    store
        .write(move |tx| Box::pin(async move { tx.put_account(&record).await }))
        .await
        .unwrap();
}

fn names(apps: &[AppRecord]) -> Vec<&str> {
    apps.iter().map(|a| a.name.as_str()).collect()
}

async fn apps_insert_conflict_update_delete(store: Arc<dyn Store>) {
    let alice = owner("alice");
    let first = app("alice", "First", &[0xA1, 1]);
    insert_app(&store, &first).await.unwrap();
    let again = app("alice", "First", &[0xA1, 2]);
    assert!(
        matches!(insert_app(&store, &again).await, Err(Error::Conflict(_))),
        "a duplicate name is a conflict"
    );
    // Another tenant may use the name.
    insert_app(&store, &app("bob", "First", &[0xA1, 3]))
        .await
        .unwrap();
    let second = app("alice", "Second", &[0xA1, 4]);
    insert_app(&store, &second).await.unwrap();
    assert_eq!(
        names(&store.list_apps(&alice, None).await.unwrap()),
        ["First", "Second"]
    );
    assert!(
        store
            .list_apps(&alice, Some(LINKEDIN))
            .await
            .unwrap()
            .is_empty()
    );

    let mut renamed = first.clone();
    renamed.name = "Renamed".into();
    renamed.scopes = vec!["users.read".into()];
    renamed.updated_at = Timestamp::from_unix(T0 + 5);
    renamed.last_check = Some(AppCheck {
        checked_at: Timestamp::from_unix(T0 + 5),
        source: CheckSource::Check,
        checks: vec![CheckResult {
            name: "scopes".into(),
            status: CheckStatus::Warning,
            message: "looks odd".into(),
        }],
    });
    let update = renamed.clone();
    assert!(
        store
            .write(move |tx| Box::pin(async move { tx.update_app(&update).await }))
            .await
            .unwrap()
    );
    let id = first.id.clone();
    let stored = store.get_app(&alice, &id).await.unwrap().unwrap();
    assert_eq!(stored.name, "Renamed");
    assert_eq!(stored.scopes, ["users.read"]);
    assert_eq!(stored.updated_at, Timestamp::from_unix(T0 + 5));
    assert_eq!(stored.last_check, renamed.last_check);
    assert!(
        store.get_app(&owner("bob"), &id).await.unwrap().is_none(),
        "another tenant does not see it"
    );

    let mut clash = second.clone();
    clash.name = "Renamed".into();
    assert!(matches!(
        store
            .write(move |tx| Box::pin(async move { tx.update_app(&clash).await }))
            .await,
        Err(Error::Conflict(_))
    ));
    let mut missing = app("alice", "Missing", &[0xA1]);
    missing.id = AppId::generate();
    assert!(
        !store
            .write(move |tx| Box::pin(async move { tx.update_app(&missing).await }))
            .await
            .unwrap()
    );

    let (bob, gone) = (owner("bob"), id.clone());
    assert!(
        !store
            .write(move |tx| Box::pin(async move { tx.delete_app(&bob, &gone).await }))
            .await
            .unwrap(),
        "another tenant cannot delete it"
    );
    let (a, gone) = (alice.clone(), id.clone());
    assert!(
        store
            .write(move |tx| Box::pin(async move { tx.delete_app(&a, &gone).await }))
            .await
            .unwrap()
    );
    let (a, gone) = (alice.clone(), id.clone());
    assert!(
        !store
            .write(move |tx| Box::pin(async move { tx.delete_app(&a, &gone).await }))
            .await
            .unwrap()
    );
    assert_eq!(
        names(&store.list_apps(&alice, None).await.unwrap()),
        ["Second"]
    );
}

async fn account_pages_filters_and_children(store: Arc<dyn Store>) {
    let alice = owner("alice");
    let mut users = Vec::new();
    for n in 0..5 {
        let provider = if n % 2 == 0 { X } else { LINKEDIN };
        let mut a = account("alice", provider, &format!("p{n}"));
        if n == 3 {
            a.status = AccountStatus::NeedsReauth;
        }
        put_account(&store, &a).await;
        users.push(a);
    }
    put_account(&store, &account("bob", X, "p0")).await;
    let mut page = account("alice", X, "page-1");
    page.kind = AccountKind::Page;
    page.parent_id = Some(users[0].id.clone());
    page.tasks = Some(vec!["CREATE_CONTENT".into()]);
    put_account(&store, &page).await;

    // Pages of two, in connect order, until no cursor is left.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let got = store
            .list_accounts_page(&alice, AccountFilter::default(), after, 2)
            .await
            .unwrap();
        assert!(got.items.len() <= 2);
        seen.extend(got.items.iter().map(|a| a.id.clone()));
        match got.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut expected: Vec<String> = users.iter().map(|a| a.id.to_string()).collect();
    expected.push(page.id.to_string());
    assert_eq!(seen, expected, "every account once, in order");

    let ids = |filter: AccountFilter| {
        let (store, alice) = (store.clone(), alice.clone());
        async move {
            store
                .list_accounts_page(&alice, filter, None, 100)
                .await
                .unwrap()
                .items
                .iter()
                .map(|a| a.id.clone())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        ids(AccountFilter {
            provider: Some(LINKEDIN),
            ..Default::default()
        })
        .await,
        [users[1].id.to_string(), users[3].id.to_string()]
    );
    assert_eq!(
        ids(AccountFilter {
            status: Some(AccountStatus::NeedsReauth),
            ..Default::default()
        })
        .await,
        [users[3].id.to_string()]
    );
    assert_eq!(
        ids(AccountFilter {
            kind: Some(AccountKind::Page),
            parent_id: Some(users[0].id.clone()),
            ..Default::default()
        })
        .await,
        [page.id.to_string()]
    );

    let parent = users[0].id.clone();
    let children = store
        .write(move |tx| Box::pin(async move { tx.children_of(&parent).await }))
        .await
        .unwrap();
    assert_eq!(children.len(), 1);
    assert_eq!(children[0].tasks, page.tasks);

    // An update replaces the mutable fields and keeps the position.
    let mut changed = users[2].clone();
    changed.username = Some("renamed".into());
    changed.refresh_failures = 2;
    put_account(&store, &changed).await;
    let id = changed.id.clone();
    let stored = store.get_account(&alice, &id).await.unwrap().unwrap();
    assert_eq!(stored.username.as_deref(), Some("renamed"));
    assert_eq!(stored.refresh_failures, 2);
    assert_eq!(ids(AccountFilter::default()).await, expected);

    let (a, provider_account) = (alice.clone(), users[2].provider_account_id.clone());
    let found = store
        .write(move |tx| Box::pin(async move { tx.find_account(&a, X, &provider_account).await }))
        .await
        .unwrap()
        .expect("found by identity");
    assert_eq!(found.id, changed.id);

    let (a, gone) = (alice.clone(), id.clone());
    assert!(
        store
            .write(move |tx| Box::pin(async move { tx.delete_account(&a, &gone).await }))
            .await
            .unwrap()
    );
    assert!(store.get_account(&alice, &id).await.unwrap().is_none());
    let counts = store.count_accounts().await.unwrap();
    let total: u64 = counts.iter().map(|c| c.2).sum();
    assert_eq!(total, 6, "{counts:?}");
}

async fn events_are_trimmed_to_the_newest_kept(store: Arc<dyn Store>) {
    let a = account("alice", X, "p1");
    put_account(&store, &a).await;
    let extra = 5;
    let total = EVENTS_KEPT_PER_ACCOUNT + extra;
    let account_id = a.id.clone();
    store
        .write(move |tx| {
            Box::pin(async move {
                for n in 0..total {
                    tx.insert_event(&EventRecord {
                        id: EventId::generate(),
                        account_id: account_id.clone(),
                        owner: owner("alice"),
                        kind: "refreshed".into(),
                        created_at: Timestamp::from_unix(T0 + n),
                        detail: serde_json::json!({ "n": n }),
                        seq: 0,
                    })
                    .await?;
                }
                Ok(())
            })
        })
        .await
        .unwrap();
    let (alice, id) = (owner("alice"), a.id.clone());
    let mut kept = Vec::new();
    let mut before = None;
    loop {
        let page = store.list_events(&alice, &id, before, 64).await.unwrap();
        kept.extend(page.items.iter().map(|e| e.detail["n"].as_i64().unwrap()));
        match page.next_after {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    let expected: Vec<i64> = (extra..total).rev().collect();
    assert_eq!(kept, expected, "the newest kept, newest first");
    assert!(
        store
            .list_events(&owner("bob"), &id, None, 10)
            .await
            .unwrap()
            .items
            .is_empty(),
        "another tenant sees none"
    );
}

async fn refresh_lease_is_held_by_one_holder_until_it_runs_out(store: Arc<dyn Store>) {
    let a = account("alice", X, "p1");
    put_account(&store, &a).await;
    let (now, until) = (Timestamp::from_unix(T0), Timestamp::from_unix(T0 + 60));
    let lease = |holder: &'static str, now: Timestamp, until: Timestamp| {
        let (store, id) = (store.clone(), a.id.clone());
        async move {
            store
                .write(move |tx| {
                    Box::pin(async move { tx.take_refresh_lease(&id, 0, holder, now, until).await })
                })
                .await
                .unwrap()
        }
    };
    let holds = |holder: &'static str, now: Timestamp| {
        let (store, id) = (store.clone(), a.id.clone());
        async move {
            store
                .write(move |tx| {
                    Box::pin(async move { tx.holds_refresh_lease(&id, holder, now).await })
                })
                .await
                .unwrap()
        }
    };
    assert!(lease("node-a", now, until).await);
    assert!(!lease("node-b", now, until).await, "held by node-a");
    assert!(
        lease("node-a", now, until).await,
        "the holder may extend it"
    );
    assert!(holds("node-a", now).await);
    assert!(!holds("node-b", now).await);
    assert!(!holds("node-a", until).await, "it ran out");

    // Only the holder gives it back.
    let id = a.id.clone();
    store
        .write(move |tx| Box::pin(async move { tx.release_refresh_lease(&id, "node-b").await }))
        .await
        .unwrap();
    assert!(holds("node-a", now).await);
    let later = Timestamp::from_unix(T0 + 120);
    assert!(
        lease("node-b", until, later).await,
        "a lease that ran out is free"
    );
    let id = a.id.clone();
    store
        .write(move |tx| Box::pin(async move { tx.release_refresh_lease(&id, "node-b").await }))
        .await
        .unwrap();
    assert!(!holds("node-b", until).await);
    assert!(lease("node-a", until, later).await, "released");
}

/// The lease names the tokens' version it renews from: once another writer moved the tokens
/// on (even to the very same sealed bytes), a lease on the old version is refused.
async fn refresh_lease_is_refused_once_the_tokens_moved_on(store: Arc<dyn Store>) {
    let mut a = account("alice", X, "p1");
    put_account(&store, &a).await;
    let (now, until) = (Timestamp::from_unix(T0), Timestamp::from_unix(T0 + 60));
    a.token_version += 1;
    put_account(&store, &a).await;
    let stored = store.account_by_id(&a.id).await.unwrap().unwrap();
    assert_eq!(stored.token_version, 1, "the version is stored");
    assert_eq!(stored.access_token_sealed, a.access_token_sealed);
    let id = a.id.clone();
    let taken = store
        .write(move |tx| {
            Box::pin(async move { tx.take_refresh_lease(&id, 0, "node-a", now, until).await })
        })
        .await
        .unwrap();
    assert!(!taken, "version 0 is gone");
    let id = a.id.clone();
    let taken = store
        .write(move |tx| {
            Box::pin(async move { tx.take_refresh_lease(&id, 1, "node-a", now, until).await })
        })
        .await
        .unwrap();
    assert!(taken);
}

async fn state_nonce_is_used_once(store: Arc<dyn Store>) {
    let consume = |nonce: &'static str, expires: i64, now: i64| {
        let store = store.clone();
        async move {
            store
                .write(move |tx| {
                    Box::pin(async move {
                        tx.consume_state_nonce(
                            nonce,
                            Timestamp::from_unix(expires),
                            Timestamp::from_unix(now),
                        )
                        .await
                    })
                })
                .await
                .unwrap()
        }
    };
    assert!(consume("n1", T0 + 10, T0).await);
    assert!(!consume("n1", T0 + 10, T0).await, "used before");
    assert!(consume("n2", T0 + 600, T0).await);
    // After n1's state expired it is forgotten (it can no longer be presented); n2 is not.
    assert!(consume("n3", T0 + 700, T0 + 20).await);
    assert!(consume("n1", T0 + 800, T0 + 20).await);
    assert!(!consume("n2", T0 + 600, T0 + 20).await);
}

/// Retention: delivered and failed events recorded before the cut are deleted, oldest first,
/// a batch at a time; pending ones (and newer ones) stay.
async fn old_delivered_and_failed_webhooks_are_pruned_and_pending_ones_kept(store: Arc<dyn Store>) {
    let events: Vec<OutboxRecord> = (0..5).map(webhook).collect();
    let queued = events.clone();
    store
        .write(move |tx| {
            Box::pin(async move {
                for e in &queued {
                    tx.enqueue_webhook(e).await?;
                }
                Ok(())
            })
        })
        .await
        .unwrap();
    let now = Timestamp::from_unix(T0 + 100);
    let until = now.plus_seconds(60);
    // 0 and 1 delivered, 2 failed, 3 pending (old), 4 delivered but recorded after the cut.
    let claimed = store
        .write(move |tx| {
            Box::pin(async move {
                let mut ids = Vec::new();
                while let Some(e) = tx.claim_due_webhook(now, "sender", until).await? {
                    ids.push(e.id);
                }
                Ok(ids)
            })
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 5);
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let marked = ids.clone();
    store
        .write(move |tx| {
            Box::pin(async move {
                for i in [0, 1, 4] {
                    assert!(tx.webhook_delivered(&marked[i], "sender", 1, now).await?);
                }
                assert!(
                    tx.webhook_attempt_failed(&marked[2], "sender", 9, None, "gave up")
                        .await?
                );
                Ok(())
            })
        })
        .await
        .unwrap();
    let cut = Timestamp::from_unix(T0 + 4);
    let first = store
        .write(move |tx| Box::pin(async move { tx.prune_webhooks(cut, 2).await }))
        .await
        .unwrap();
    assert_eq!(first, 2, "a batch of 2");
    let second = store
        .write(move |tx| Box::pin(async move { tx.prune_webhooks(cut, 2).await }))
        .await
        .unwrap();
    assert_eq!(second, 1);
    let left: HashSet<String> = store
        .recent_webhooks(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        left,
        HashSet::from([ids[3].clone(), ids[4].clone()]),
        "the pending one and the newer one stay"
    );
}

async fn two_claimers_never_get_the_same_webhook_and_a_claim_runs_out(store: Arc<dyn Store>) {
    const EVENTS: i64 = 6;
    let events: Vec<OutboxRecord> = (0..EVENTS).map(webhook).collect();
    let queued = events.clone();
    store
        .write(move |tx| {
            Box::pin(async move {
                for e in &queued {
                    tx.enqueue_webhook(e).await?;
                }
                Ok(())
            })
        })
        .await
        .unwrap();
    let now = Timestamp::from_unix(T0 + 100);
    let until = Timestamp::from_unix(T0 + 160);

    // Claimers in parallel, each claiming in transactions of its own until none is left.
    let mut claimers = Vec::new();
    for holder in ["sender-a", "sender-b", "sender-c"] {
        let store = store.clone();
        claimers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(event) = store
                .write(move |tx| {
                    Box::pin(async move { tx.claim_due_webhook(now, holder, until).await })
                })
                .await
                .unwrap()
            {
                got.push((event.id, holder));
            }
            got
        }));
    }
    let mut claimed = Vec::new();
    for claimer in claimers {
        claimed.extend(claimer.await.unwrap());
    }
    let unique: HashSet<&String> = claimed.iter().map(|(id, _)| id).collect();
    assert_eq!(unique.len(), claimed.len(), "claimed twice: {claimed:?}");
    assert_eq!(claimed.len(), EVENTS as usize, "every event claimed once");
    let holder_of = |id: &str| -> &'static str { claimed.iter().find(|(c, _)| c == id).unwrap().1 };

    // One delivered, one failed for good, each by its claim's holder: neither comes back.
    let (delivered, failed) = (events[0].id.clone(), events[1].id.clone());
    let (delivered_by, failed_by) = (holder_of(&delivered), holder_of(&failed));
    let recorded = store
        .write(move |tx| {
            Box::pin(async move {
                Ok((
                    tx.webhook_delivered(&delivered, delivered_by, 1, now)
                        .await?,
                    tx.webhook_attempt_failed(&failed, failed_by, 3, None, "gave up")
                        .await?,
                ))
            })
        })
        .await
        .unwrap();
    assert_eq!(recorded, (true, true));
    // The others' claims run out at `until`; then another sender takes them.
    let mut reclaimed = HashSet::new();
    while let Some(event) = store
        .write(move |tx| {
            Box::pin(async move {
                tx.claim_due_webhook(until, "sender-d", until.plus_seconds(60))
                    .await
            })
        })
        .await
        .unwrap()
    {
        assert!(reclaimed.insert(event.id), "claimed twice");
    }
    let expected: HashSet<String> = events[2..].iter().map(|e| e.id.clone()).collect();
    assert_eq!(reclaimed, expected);

    let backlog = store.webhook_backlog().await.unwrap();
    assert_eq!(backlog.pending, EVENTS as u64 - 2);
    let failed_ones = store.recent_webhooks(Some("failed"), 10).await.unwrap();
    assert_eq!(failed_ones.len(), 1);
    assert_eq!(failed_ones[0].last_error.as_deref(), Some("gave up"));
    let id = events[1].id.clone();
    assert!(
        store
            .write(move |tx| Box::pin(async move { tx.requeue_webhook(&id, now).await }))
            .await
            .unwrap()
    );
    assert_eq!(
        store.webhook_backlog().await.unwrap().pending,
        EVENTS as u64 - 1
    );
}

/// The one event's status and attempts, read in a write transaction.
async fn webhook_state(store: &Arc<dyn Store>, id: &str) -> (String, i64) {
    let id = id.to_owned();
    let row = store
        .write(move |tx| Box::pin(async move { tx.get_webhook(&id).await }))
        .await
        .unwrap()
        .expect("the event");
    (row.status, row.attempts)
}

async fn a_webhook_claim_is_extended_and_outcomes_recorded_only_by_its_holder(
    store: Arc<dyn Store>,
) {
    let (first, second) = (webhook(0), webhook(1));
    let queued = [first.clone(), second.clone()];
    store
        .write(move |tx| {
            Box::pin(async move {
                for e in &queued {
                    tx.enqueue_webhook(e).await?;
                }
                Ok(())
            })
        })
        .await
        .unwrap();
    let at = Timestamp::from_unix;
    let claim = |now: i64, holder: &'static str| {
        let store = store.clone();
        async move {
            store
                .write(move |tx| {
                    Box::pin(
                        async move { tx.claim_due_webhook(at(now), holder, at(now + 5)).await },
                    )
                })
                .await
                .unwrap()
                .map(|e| e.id)
        }
    };
    let extend = |id: &str, holder: &'static str, until: i64| {
        let (store, id) = (store.clone(), id.to_owned());
        async move {
            store
                .write(move |tx| {
                    Box::pin(async move { tx.extend_webhook_claim(&id, holder, at(until)).await })
                })
                .await
                .unwrap()
        }
    };
    let outcomes = |id: &str, holder: &'static str| {
        let (store, id) = (store.clone(), id.to_owned());
        async move {
            store
                .write(move |tx| {
                    Box::pin(async move {
                        Ok((
                            tx.webhook_attempt_failed(
                                &id,
                                holder,
                                1,
                                Some(at(T0 + 999)),
                                "HTTP 500",
                            )
                            .await?,
                            tx.webhook_delivered(&id, holder, 1, at(T0 + 999)).await?,
                        ))
                    })
                })
                .await
                .unwrap()
        }
    };

    // A claims the first event for 5 s and renews the claim before it runs out.
    assert_eq!(claim(T0 + 100, "a").await, Some(first.id.clone()));
    assert!(extend(&first.id, "a", T0 + 109).await, "A holds it");
    // An extended claim is not taken over: at the original end B gets the second event, and
    // nothing more until the renewed claim ends.
    assert_eq!(claim(T0 + 105, "b").await, Some(second.id.clone()));
    assert_eq!(claim(T0 + 108, "c").await, None);
    // Only the holder extends it or records its outcome.
    assert!(!extend(&first.id, "c", T0 + 200).await);
    assert_eq!(outcomes(&first.id, "c").await, (false, false));
    assert_eq!(
        webhook_state(&store, &first.id).await,
        ("pending".to_owned(), 0)
    );

    // A stops renewing (it died, or stalled): the claim runs out at its end and C takes the
    // event over, within the 5 s of a claim.
    assert_eq!(claim(T0 + 109, "c").await, Some(first.id.clone()));
    // A, back, can neither renew nor record over C's claim.
    assert!(!extend(&first.id, "a", T0 + 120).await, "the claim is C's");
    assert_eq!(outcomes(&first.id, "a").await, (false, false));
    assert_eq!(
        webhook_state(&store, &first.id).await,
        ("pending".to_owned(), 0)
    );
    // An operator's retry while C posts keeps C's claim: nobody else posts it meanwhile.
    let id = first.id.clone();
    assert!(
        store
            .write(move |tx| Box::pin(async move { tx.requeue_webhook(&id, at(T0 + 109)).await }))
            .await
            .unwrap()
    );
    assert_eq!(claim(T0 + 109, "d").await, None);
    // C records its outcome.
    let id = first.id.clone();
    assert!(
        store
            .write(move |tx| Box::pin(async move {
                tx.webhook_delivered(&id, "c", 1, at(T0 + 111)).await
            }))
            .await
            .unwrap()
    );
    assert_eq!(
        webhook_state(&store, &first.id).await,
        ("delivered".to_owned(), 1)
    );

    // A claim that ran out but that nobody took over is still its holder's to renew.
    assert!(extend(&second.id, "b", T0 + 205).await);
    assert_eq!(claim(T0 + 200, "d").await, None);
    assert_eq!(claim(T0 + 205, "d").await, Some(second.id.clone()));
}

async fn webhooks_no_sender_took_are_given_up_after_their_window_in_bounded_batches(
    store: Arc<dyn Store>,
) {
    const DAY: i64 = 86_400;
    let now = Timestamp::from_unix(T0 + DAY + 3600 + 10);
    let created_before = now.plus_seconds(-DAY);
    let due_before = now.plus_seconds(-3600);
    // Claimed by a sender that is posting it right now: left to that sender.
    let claimed = webhook(0);
    let queued = claimed.clone();
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.enqueue_webhook(&queued).await?;
                tx.claim_due_webhook(now, "sender", now.plus_seconds(5))
                    .await
            })
        })
        .await
        .unwrap()
        .expect("claimed");
    // Past their window and never tried: given up.
    let stale: Vec<OutboxRecord> = (1..=3).map(webhook).collect();
    // Recorded less than a day ago.
    let mut young = webhook(4);
    young.created_at = now.plus_seconds(-DAY + 60);
    young.next_attempt_at = Some(young.created_at);
    // Old, but made due again (an operator's retry) less than an hour ago: a sender has the
    // hour to take it.
    let mut retried = webhook(5);
    retried.next_attempt_at = Some(now.plus_seconds(-600));
    // Delivered long ago: stays delivered.
    let mut delivered = webhook(6);
    delivered.status = "delivered".into();
    delivered.next_attempt_at = None;
    delivered.delivered_at = Some(delivered.created_at);
    let queued: Vec<OutboxRecord> = stale
        .iter()
        .chain([&young, &retried, &delivered])
        .cloned()
        .collect();
    store
        .write(move |tx| {
            Box::pin(async move {
                for e in &queued {
                    tx.enqueue_webhook(e).await?;
                }
                Ok(())
            })
        })
        .await
        .unwrap();

    let give_up = || {
        let store = store.clone();
        async move {
            store
                .write(move |tx| {
                    Box::pin(async move {
                        tx.give_up_unsent_webhooks(
                            created_before,
                            due_before,
                            now,
                            "nobody sent it",
                            2,
                        )
                        .await
                    })
                })
                .await
                .unwrap()
        }
    };
    assert_eq!(give_up().await, 2, "at most the batch");
    assert_eq!(give_up().await, 1);
    assert_eq!(give_up().await, 0);
    let mut failed: Vec<(String, Option<String>, Option<Timestamp>)> = store
        .recent_webhooks(Some("failed"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.id, e.last_error, e.next_attempt_at))
        .collect();
    failed.sort();
    let mut expected: Vec<_> = stale
        .iter()
        .map(|e| (e.id.clone(), Some("nobody sent it".to_owned()), None))
        .collect();
    expected.sort();
    assert_eq!(failed, expected);
    for (event, status) in [
        (&claimed, "pending"),
        (&young, "pending"),
        (&retried, "pending"),
        (&delivered, "delivered"),
    ] {
        assert_eq!(
            webhook_state(&store, &event.id).await.0,
            status,
            "{event:?}"
        );
    }
    assert_eq!(store.webhook_backlog().await.unwrap().pending, 3);
    // Given up events can be sent again by an operator.
    let id = stale[0].id.clone();
    assert!(
        store
            .write(move |tx| Box::pin(async move { tx.requeue_webhook(&id, now).await }))
            .await
            .unwrap()
    );
    assert_eq!(store.webhook_backlog().await.unwrap().pending, 4);
}

async fn due_webhooks_are_claimed_in_the_order_they_were_recorded(store: Arc<dyn Store>) {
    // The older event waits for a retry due later than the newer one's first attempt: once
    // both are due, the older one still goes first (a receiver sees an account's events in
    // order).
    let mut older = webhook(0);
    older.next_attempt_at = Some(Timestamp::from_unix(T0 + 50));
    let mut newer = webhook(1);
    newer.next_attempt_at = Some(Timestamp::from_unix(T0 + 10));
    let queued = [older.clone(), newer.clone()];
    store
        .write(move |tx| {
            Box::pin(async move {
                for e in &queued {
                    tx.enqueue_webhook(e).await?;
                }
                Ok(())
            })
        })
        .await
        .unwrap();
    let claim = |now: i64, holder: &'static str| {
        let store = store.clone();
        async move {
            let now = Timestamp::from_unix(now);
            store
                .write(move |tx| {
                    Box::pin(async move {
                        tx.claim_due_webhook(now, holder, now.plus_seconds(60))
                            .await
                    })
                })
                .await
                .unwrap()
                .map(|e| e.id)
        }
    };
    assert_eq!(claim(T0 + 100, "a").await, Some(older.id));
    assert_eq!(claim(T0 + 100, "b").await, Some(newer.id));
    assert_eq!(claim(T0 + 100, "c").await, None);
}

async fn pending_connections_expire_and_are_purged(store: Arc<dyn Store>) {
    let id = AccountId::generate();
    let pending = PendingRecord {
        id: id.clone(),
        owner: owner("alice"),
        provider: X,
        oauth_app_id: None,
        confirm_hash: vec![7; 32],
        sealed: vec![0xA1, 9, 9],
        issued_at: Timestamp::from_unix(T0),
        expires_at: Timestamp::from_unix(T0 + 600),
    };
    let record = pending.clone();
    store
        .write(move |tx| Box::pin(async move { tx.insert_pending(&record).await }))
        .await
        .unwrap();
    let look = |who: &'static str, now: i64| {
        let (store, id) = (store.clone(), id.clone());
        async move {
            store
                .write(move |tx| {
                    Box::pin(async move {
                        tx.pending_connection(&owner(who), &id, Timestamp::from_unix(now))
                            .await
                    })
                })
                .await
                .unwrap()
        }
    };
    let found = look("alice", T0 + 1).await.expect("pending");
    assert_eq!(found.sealed, pending.sealed);
    assert_eq!(found.confirm_hash, pending.confirm_hash);
    assert!(look("bob", T0 + 1).await.is_none(), "another tenant's");
    assert!(look("alice", T0 + 600).await.is_none(), "expired");
    let purged = store
        .write(|tx| {
            Box::pin(async move {
                tx.purge_expired_pending(Timestamp::from_unix(T0 + 600))
                    .await
            })
        })
        .await
        .unwrap();
    assert_eq!(purged, 1);
    let gone = id.clone();
    assert!(
        !store
            .write(move |tx| Box::pin(async move { tx.delete_pending(&gone).await }))
            .await
            .unwrap()
    );
}

async fn master_keys_and_sealed_values(store: Arc<dyn Store>) {
    let key = |id: u32| MasterKeyRecord {
        id,
        check_value: format!("check-{id}"),
        added_at: Timestamp::from_unix(T0 + i64::from(id)),
        retired_at: None,
        accept_until: None,
    };
    store
        .write(move |tx| Box::pin(async move { tx.add_master_key(&key(1)).await }))
        .await
        .unwrap();
    store
        .write(move |tx| Box::pin(async move { tx.add_master_key(&key(2)).await }))
        .await
        .unwrap();
    assert_eq!(
        store
            .write(|tx| Box::pin(async move { tx.current_key_id().await }))
            .await
            .unwrap(),
        Some(2)
    );
    store
        .write(|tx| {
            Box::pin(async move {
                tx.retire_master_key(
                    2,
                    Timestamp::from_unix(T0 + 10),
                    Timestamp::from_unix(T0 + 20),
                )
                .await
            })
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .write(|tx| Box::pin(async move { tx.current_key_id().await }))
            .await
            .unwrap(),
        Some(1)
    );
    let keys = store.master_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1].retired_at, Some(Timestamp::from_unix(T0 + 10)));
    assert_eq!(keys[1].accept_until, Some(Timestamp::from_unix(T0 + 20)));
    let in_tx = store
        .write(|tx| Box::pin(async move { tx.master_keys().await }))
        .await
        .unwrap();
    assert_eq!(in_tx, keys);

    // Three app secrets: two sealed by "key A" (prefix AA), one by "key B" (prefix BB).
    let apps = [
        app("alice", "One", &[0xAA, 1]),
        app("alice", "Two", &[0xBB, 2]),
        app("bob", "Three", &[0xAA, 3]),
    ];
    for a in &apps {
        insert_app(&store, a).await.unwrap();
    }
    let prefixes = vec![vec![vec![0xAA]], vec![vec![0xBB], vec![0xCC]]];
    let counts = store.count_sealed(prefixes.clone()).await.unwrap();
    let secrets = counts
        .iter()
        .find(|c| c.column == SealedColumn::AppClientSecret)
        .unwrap();
    assert_eq!((secrets.total, secrets.by_key.clone()), (3, vec![2, 1]));
    let in_tx = store
        .write(move |tx| Box::pin(async move { tx.count_sealed(&prefixes).await }))
        .await
        .unwrap();
    assert_eq!(in_tx[0].by_key, secrets.by_key);

    // Paged by row position, only those with the prefix.
    let page = |after: i64| {
        let store = store.clone();
        async move {
            store
                .write(move |tx| {
                    Box::pin(async move {
                        tx.sealed_rows(SealedColumn::AppClientSecret, after, &[vec![0xAA]], 1)
                            .await
                    })
                })
                .await
                .unwrap()
        }
    };
    let first = page(0).await;
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].id.as_str(), first[0].owner.as_str()),
        (apps[0].id.as_str(), "alice")
    );
    let second = page(first[0].rowid).await;
    assert_eq!(second[0].id, apps[2].id.as_str());
    assert_eq!(second[0].sealed, [0xAA, 3]);
    assert!(page(second[0].rowid).await.is_empty());

    let replace = |old: Vec<u8>| {
        let (store, id) = (store.clone(), apps[0].id.clone());
        async move {
            store
                .write(move |tx| {
                    Box::pin(async move {
                        tx.replace_sealed(
                            SealedColumn::AppClientSecret,
                            id.as_str(),
                            &old,
                            &[0xBB, 1],
                        )
                        .await
                    })
                })
                .await
                .unwrap()
        }
    };
    assert!(replace(vec![0xAA, 1]).await);
    assert!(
        !replace(vec![0xAA, 1]).await,
        "it no longer holds the old value"
    );
    let stored = store
        .get_app(&owner("alice"), &apps[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.client_secret_sealed, [0xBB, 1]);
}

async fn a_failed_write_transaction_changes_nothing(store: Arc<dyn Store>) {
    let a = app("alice", "Doomed", &[0xA1]);
    let acc = account("alice", X, "p1");
    let result: Result<(), Error> = store
        .write(move |tx| {
            Box::pin(async move {
                tx.insert_app(&a).await?;
                tx.put_account(&acc).await?;
                tx.meta_set("doomed", "yes").await?;
                Err(Error::Conflict("the work failed after writing".into()))
            })
        })
        .await;
    assert!(matches!(result, Err(Error::Conflict(_))));
    assert!(
        store
            .list_apps(&owner("alice"), None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.count_accounts().await.unwrap().is_empty());
    assert_eq!(store.meta_get("doomed").await.unwrap(), None);

    // A failed statement (a duplicate) rolls back what the transaction did before it.
    let first = app("alice", "Kept", &[0xA1]);
    insert_app(&store, &first).await.unwrap();
    let (fresh, dup) = (
        app("alice", "Fresh", &[0xA1]),
        app("alice", "Kept", &[0xA1]),
    );
    let result = store
        .write(move |tx| {
            Box::pin(async move {
                tx.insert_app(&fresh).await?;
                tx.insert_app(&dup).await
            })
        })
        .await;
    assert!(matches!(result, Err(Error::Conflict(_))));
    assert_eq!(
        names(&store.list_apps(&owner("alice"), None).await.unwrap()),
        ["Kept"]
    );
}

/// The columns each table has in a freshly migrated database, by name, without the
/// position (`seq`), which `dravo::store::tables` declares as `positioned`.
fn declared(table: &dravo::store::tables::Table) -> Vec<String> {
    let mut names: Vec<String> = table.columns.iter().map(|(c, _)| c.to_string()).collect();
    names.sort();
    names
}

/// Every table is declared once (`store::tables`) and both backends' migrations create exactly
/// what is declared: a column added to a migration but not to the declaration (or the other
/// way round) fails here, so readers, writers and `store copy` cannot miss it.
#[tokio::test]
async fn the_declared_tables_are_the_sqlite_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dravo.db");
    let open = path.clone();
    tokio::task::spawn_blocking(move || SqliteStore::open(&open))
        .await
        .unwrap()
        .unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    for table in dravo::store::tables::TABLES {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT name FROM pragma_table_info('{}')",
                table.name
            ))
            .unwrap();
        let mut names: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .filter(|n: &String| n != "seq")
            .collect();
        names.sort();
        assert_eq!(names, declared(table), "{}", table.name);
    }
}

#[tokio::test]
async fn the_declared_tables_are_the_postgres_schema() {
    let Some(server) = support::backend::postgres_server() else {
        return;
    };
    let url = support::backend::fresh_schema(&server);
    PgStore::connect(&url, None).await.unwrap();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    for table in dravo::store::tables::TABLES {
        let mut names: Vec<String> = client
            .query(
                "SELECT column_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1",
                &[&table.name],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .filter(|n| n != "seq")
            .collect();
        names.sort();
        assert_eq!(names, declared(table), "{}", table.name);
    }
}
