//! CONTRACT §2 (keys) and §4 (secrets at rest): client secrets are sealed with the row's id,
//! owner and provider as associated data, never stored, logged or returned in the clear; the
//! master key must match the database it sealed.

use crate::support;

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use dravo::domain::{AppId, Owner};
use dravo::{Dravo, Error};
use secrecy::SecretString;
use serde_json::{Value, json};
use support::{
    Db, TestApp, open_db, random_suffix, spawn_app, spawn_app_in, sqlite_only, test_config,
};

fn alice() -> Owner {
    Owner::parse("tenant", "alice").unwrap()
}

fn body_with_secret(provider: &str, name: &str, client_id: &str, secret: &str) -> Value {
    json!({
        "provider": provider,
        "name": name,
        "client_id": client_id,
        "client_secret": secret,
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn read_or_empty(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

/// The plaintext, and the encodings someone might mistake for protection.
fn forms_of(secret: &str) -> Vec<Vec<u8>> {
    vec![
        secret.as_bytes().to_vec(),
        STANDARD.encode(secret).into_bytes(),
        secret
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .into_bytes(),
    ]
}

fn assert_absent(file: &Path, secret: &str) {
    let bytes = read_or_empty(file);
    for form in forms_of(secret) {
        assert!(
            !contains(&bytes, &form),
            "{} contains the secret (as {:?})",
            file.display(),
            String::from_utf8_lossy(&form)
        );
    }
}

async fn create(app: &TestApp, provider: &str, name: &str, secret: &str) -> AppId {
    let body = app
        .create_ok(
            "alice",
            &body_with_secret(provider, name, "client-id-for-sealing", secret),
        )
        .await;
    AppId::parse(body["id"].as_str().unwrap()).unwrap()
}

/// Opens the app's secret through the core, as the connect flow will.
async fn open_secret(app: &TestApp, owner: &Owner, id: &AppId) -> Result<String, Error> {
    app.dravo
        .app_credentials(owner, id)
        .await
        .map(|c| c.client_secret.expose().to_owned())
}

// ---------------------------------------------------------------------------------------------
// At rest
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn secret_is_not_in_the_database_or_wal_before_checkpoint() {
    if sqlite_only("searches the SQLite file and its WAL") {
        return;
    }
    let app = spawn_app().await;
    let secret = format!("SEKRIT-{}", random_suffix());
    let client_id = format!("CLIENTID-{}", random_suffix());
    app.create_ok(
        "alice",
        &body_with_secret("x", "Sealed", &client_id, &secret),
    )
    .await;

    let db = app.db_path();
    let wal = db.with_extension("db-wal");
    // The row is really on disk (in the WAL, or the main file) so the search below is not
    // looking at empty files.
    let written = [read_or_empty(&db), read_or_empty(&wal)].concat();
    assert!(
        contains(&written, client_id.as_bytes()),
        "the new row is not on disk yet; the check would prove nothing"
    );
    assert_absent(&db, &secret);
    assert_absent(&wal, &secret);
    app.stop().await;
}

#[tokio::test]
async fn secret_is_not_in_the_main_file_after_a_wal_checkpoint() {
    if sqlite_only("checkpoints SQLite's WAL and searches the file") {
        return;
    }
    let app = spawn_app().await;
    let secret = format!("SEKRIT-{}", random_suffix());
    let client_id = format!("CLIENTID-{}", random_suffix());
    app.create_ok(
        "alice",
        &body_with_secret("linkedin", "Sealed", &client_id, &secret),
    )
    .await;
    let db = app.db_path();
    open_db(&db)
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let main = read_or_empty(&db);
    assert!(
        contains(&main, client_id.as_bytes()),
        "the checkpoint did not move the row into the main file"
    );
    assert_absent(&db, &secret);
    assert_absent(&db.with_extension("db-wal"), &secret);
    app.stop().await;
}

#[tokio::test]
async fn app_credentials_returns_the_exact_secret() {
    let app = spawn_app().await;
    let secret = format!("SEKRIT-{}", random_suffix());
    let id = create(&app, "x", "Exact", &secret).await;
    let creds = app
        .dravo
        .app_credentials(&alice(), &id)
        .await
        .unwrap_or_else(|e| panic!("app_credentials failed: {e}"));
    assert_eq!(creds.client_secret.expose(), secret);
    assert_eq!(creds.client_id, "client-id-for-sealing");
    assert_eq!(
        creds.scopes,
        [
            "tweet.read",
            "tweet.write",
            "users.read",
            "offline.access",
            "media.write"
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn secret_is_kept_exactly_as_given_including_spaces_and_unicode() {
    let app = spawn_app().await;
    let secret = format!("  SEKRIT ü {}  ", random_suffix());
    let id = create(&app, "x", "Spaces", &secret).await;
    assert_eq!(open_secret(&app, &alice(), &id).await.unwrap(), secret);
    app.stop().await;
}

#[tokio::test]
async fn app_credentials_of_another_tenant_is_not_found() {
    let app = spawn_app().await;
    let id = create(&app, "x", "Mine", "SEKRIT-mine").await;
    let bob = Owner::parse("tenant", "bob").unwrap();
    assert!(matches!(
        open_secret(&app, &bob, &id).await,
        Err(Error::NotFound(_))
    ));
    app.stop().await;
}

#[tokio::test]
async fn secret_survives_a_restart_with_the_same_key_file() {
    let app = spawn_app().await;
    let secret = format!("SEKRIT-{}", random_suffix());
    let id = create(&app, "tiktok", "Durable", &secret).await;
    let dir = app.stop().await;
    let config = test_config(dir.path());
    let app = spawn_app_in(dir, config).await;
    assert_eq!(open_secret(&app, &alice(), &id).await.unwrap(), secret);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Associated data: a sealed value opens only on its own row.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sealed_secret_copied_to_another_row_does_not_open() {
    let app = spawn_app().await;
    let secret_a = format!("SEKRIT-A-{}", random_suffix());
    let a = create(&app, "x", "App A", &secret_a).await;
    let b = create(&app, "x", "App B", "SEKRIT-B").await;
    let changed = Db::open(&app.db_path()).execute(
        "UPDATE oauth_apps
         SET client_secret_sealed = (SELECT client_secret_sealed FROM oauth_apps WHERE id = ?1)
         WHERE id = ?2",
        &[a.as_str().into(), b.as_str().into()],
    );
    assert_eq!(changed, 1);

    match open_secret(&app, &alice(), &b).await {
        Err(Error::Unseal(_)) => {}
        Ok(s) => panic!("the copied secret opened on another row: {s}"),
        Err(e) => panic!("expected Error::Unseal, got {e:?}"),
    }
    assert_eq!(open_secret(&app, &alice(), &a).await.unwrap(), secret_a);
    app.stop().await;
}

#[tokio::test]
async fn sealed_secret_moved_to_another_owner_does_not_open() {
    let app = spawn_app().await;
    let a = create(&app, "x", "Moved", "SEKRIT-owner").await;
    Db::open(&app.db_path()).execute(
        "UPDATE oauth_apps SET owner = 'bob' WHERE id = ?1",
        &[a.as_str().into()],
    );
    let bob = Owner::parse("tenant", "bob").unwrap();
    assert!(matches!(
        open_secret(&app, &bob, &a).await,
        Err(Error::Unseal(_))
    ));
    app.stop().await;
}

#[tokio::test]
async fn sealed_secret_relabelled_to_another_provider_does_not_open() {
    let app = spawn_app().await;
    let a = create(&app, "x", "Relabelled", "SEKRIT-provider").await;
    Db::open(&app.db_path()).execute(
        "UPDATE oauth_apps SET provider = 'linkedin' WHERE id = ?1",
        &[a.as_str().into()],
    );
    assert!(matches!(
        open_secret(&app, &alice(), &a).await,
        Err(Error::Unseal(_))
    ));
    app.stop().await;
}

#[tokio::test]
async fn tampered_sealed_secret_does_not_open() {
    let app = spawn_app().await;
    let a = create(&app, "facebook", "Tampered", "SEKRIT-tamper").await;
    let db = Db::open(&app.db_path());
    let mut blob = db
        .value(
            "SELECT client_secret_sealed FROM oauth_apps WHERE id = ?1",
            &[a.as_str().into()],
        )
        .blob();
    *blob.last_mut().unwrap() ^= 0x01;
    db.execute(
        "UPDATE oauth_apps SET client_secret_sealed = ?1 WHERE id = ?2",
        &[blob.into(), a.as_str().into()],
    );
    assert!(matches!(
        open_secret(&app, &alice(), &a).await,
        Err(Error::Unseal(_))
    ));
    app.stop().await;
}

#[tokio::test]
async fn an_unsealable_row_still_lists_and_reads_over_http() {
    // A broken secret must not take the app's public fields down with it.
    let app = spawn_app().await;
    let a = create(&app, "x", "Broken", "SEKRIT-broken").await;
    Db::open(&app.db_path()).execute(
        "UPDATE oauth_apps SET client_secret_sealed = ?2 WHERE id = ?1",
        &[a.as_str().into(), vec![0u8].into()],
    );
    assert!(matches!(
        open_secret(&app, &alice(), &a).await,
        Err(Error::Unseal(_))
    ));
    assert_eq!(app.list_apps("alice").await.len(), 1);
    let resp = app
        .get_as("alice", &format!("/v1/oauth-apps/{}", a.as_str()))
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The master key
// ---------------------------------------------------------------------------------------------

fn open(config: dravo::Config) -> Result<Dravo, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(Dravo::open(config, None))
}

fn key_of(bytes: &[u8; 64]) -> Option<SecretString> {
    Some(SecretString::from(STANDARD.encode(bytes)))
}

#[test]
fn new_key_file_is_created_with_mode_0600_and_holds_64_bytes() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    open(test_config(dir.path())).unwrap_or_else(|e| panic!("first open: {e}"));
    let key_file = dir.path().join("dravo.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {:o}", mode & 0o777);
    let text = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(STANDARD.decode(text.trim()).unwrap().len(), 64);
}

#[test]
fn reopening_with_the_same_key_file_works() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(test_config(dir.path())).unwrap_or_else(|e| panic!("first open: {e}")));
    let before = std::fs::read(dir.path().join("dravo.key")).unwrap();
    drop(open(test_config(dir.path())).unwrap_or_else(|e| panic!("second open: {e}")));
    assert_eq!(std::fs::read(dir.path().join("dravo.key")).unwrap(), before);
}

#[test]
fn the_key_file_content_given_as_master_key_opens_the_database() {
    // Positive control for the mismatch test: the config path itself works.
    let dir = tempfile::tempdir().unwrap();
    drop(open(test_config(dir.path())).unwrap_or_else(|e| panic!("first open: {e}")));
    let text = std::fs::read_to_string(dir.path().join("dravo.key")).unwrap();
    let mut config = test_config(dir.path());
    config.security.master_key = Some(SecretString::from(text.trim().to_owned()));
    open(config).unwrap_or_else(|e| panic!("open with the same key inline: {e}"));
}

#[test]
fn a_different_master_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(test_config(dir.path())).unwrap_or_else(|e| panic!("first open: {e}")));
    let mut config = test_config(dir.path());
    config.security.master_key = key_of(&[0x42; 64]);
    match open(config) {
        Err(Error::Key(message)) => {
            assert!(message.contains("does not match"), "{message}");
        }
        Err(e) => panic!("expected Error::Key, got {e:?}"),
        Ok(_) => panic!("a different master key opened the database"),
    }
}

#[test]
fn a_different_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(test_config(dir.path())).unwrap_or_else(|e| panic!("first open: {e}")));
    std::fs::write(
        dir.path().join("dravo.key"),
        format!("{}\n", STANDARD.encode([0x17u8; 64])),
    )
    .unwrap();
    match open(test_config(dir.path())) {
        Err(Error::Key(message)) => assert!(message.contains("does not match"), "{message}"),
        Err(e) => panic!("expected Error::Key, got {e:?}"),
        Ok(_) => panic!("a different key file opened the database"),
    }
}

#[test]
fn master_key_that_is_not_base64_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.security.master_key = Some(SecretString::from("this is not base64!!"));
    match open(config) {
        Err(Error::Key(message)) => {
            assert!(message.contains("security.master_key"), "{message}");
            assert!(
                !message.contains("this is not base64"),
                "echoes the key: {message}"
            );
        }
        Err(e) => panic!("expected Error::Key, got {e:?}"),
        Ok(_) => panic!("a malformed master key was accepted"),
    }
}

#[test]
fn master_key_of_wrong_length_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    let short = STANDARD.encode([0x42u8; 32]);
    config.security.master_key = Some(SecretString::from(short.clone()));
    match open(config) {
        Err(Error::Key(message)) => {
            assert!(message.contains("security.master_key"), "{message}");
            assert!(message.contains("64"), "{message}");
            assert!(!message.contains(&short), "echoes the key: {message}");
        }
        Err(e) => panic!("expected Error::Key, got {e:?}"),
        Ok(_) => panic!("a 32-byte master key was accepted"),
    }
}

#[tokio::test]
async fn deleting_the_key_file_of_a_used_database_fails_instead_of_making_a_new_key() {
    let app = spawn_app().await;
    create(&app, "x", "Needs key", "SEKRIT-needs-key").await;
    let dir = app.stop().await;
    let key_file = dir.path().join("dravo.key");
    std::fs::remove_file(&key_file).unwrap();

    match Dravo::open(test_config(dir.path()), None).await {
        Err(Error::Key(message)) => {
            assert!(
                message.contains("dravo.key") || message.contains("master_key_file"),
                "{message}"
            );
            assert!(message.contains("missing"), "{message}");
        }
        Err(e) => panic!("expected Error::Key, got {e:?}"),
        Ok(_) => panic!("a used database opened without its key"),
    }
    assert!(!key_file.exists(), "a new key file was silently created");
}
