//! `/v1/oauth-apps` (CONTRACT §3–§4 and the seed page): create, list, get, delete, tenant
//! isolation, uniqueness and every kind of bad input. Each rejected request must leave the
//! database exactly as it was.

use crate::support;
use crate::support::fake_provider;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Db, TestApp, app_body, app_rows, assert_error, spawn_app, spawn_app_with};

const SECRET_IN_APP_BODY: &str = "s3cret-value-never-shown";

fn keys_of(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    keys
}

fn is_app_id(id: &str) -> bool {
    id.len() == 23
        && id.starts_with("oa_")
        && id[3..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

/// A server with one app already stored for `alice`, so a request that wrongly deletes or
/// rewrites rows is caught by comparing `app_rows` before and after.
async fn app_with_one_row() -> TestApp {
    let app = spawn_app().await;
    app.create_ok("alice", &app_body("x", "Existing")).await;
    assert_eq!(app_rows(&app.db_path()).len(), 1);
    app
}

/// Posts `body` as alice, expects 400 `invalid_request` whose message mentions `needle`, and
/// checks the database did not change.
async fn assert_create_rejected(body: Value, needle: &str) {
    let app = app_with_one_row().await;
    let before = app_rows(&app.db_path());
    let resp = app.create_app("alice", &body).await;
    let message = assert_error(resp, 400, "invalid_request").await;
    assert!(
        message.contains(needle),
        "message {message:?} should mention {needle:?}"
    );
    assert!(
        !message.contains(SECRET_IN_APP_BODY),
        "message leaks the secret: {message}"
    );
    assert_eq!(app_rows(&app.db_path()), before, "database changed");
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Create
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn create_returns_201_with_location_and_exactly_the_documented_fields() {
    let app = spawn_app().await;
    let resp = app.create_app("alice", &app_body("x", "My X App")).await;
    assert_eq!(resp.status().as_u16(), 201);
    let location = resp
        .headers()
        .get("location")
        .expect("Location header")
        .to_str()
        .unwrap()
        .to_owned();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    let raw = resp.text().await.unwrap();
    assert!(
        !raw.contains("client_secret"),
        "body names the secret: {raw}"
    );
    assert!(
        !raw.contains(SECRET_IN_APP_BODY),
        "body leaks the secret: {raw}"
    );
    let body: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        keys_of(&body),
        [
            "client_id",
            "created_at",
            "credentials_error",
            "id",
            "last_check",
            "name",
            "provider",
            "redirect_uri",
            "scopes",
            "servers",
            "updated_at",
            "user_agent",
            "warnings",
            "website"
        ]
    );
    assert!(body["credentials_error"].is_null(), "{body}");
    assert!(body["last_check"].is_null(), "{body}");
    assert_eq!(body["updated_at"], body["created_at"], "{body}");
    let id = body["id"].as_str().unwrap();
    assert!(is_app_id(id), "id {id} is not oa_ + 20 base32 chars");
    assert_eq!(location, format!("/v1/oauth-apps/{id}"));
    assert_eq!(body["provider"], "x");
    assert_eq!(body["name"], "My X App");
    assert_eq!(body["client_id"], "client-id-123");

    // The Location answers with the same object.
    let fetched: Value = app.get_as("alice", &location).await.json().await.unwrap();
    assert_eq!(fetched, body);
    app.stop().await;
}

#[tokio::test]
async fn created_at_is_rfc3339_utc() {
    let app = spawn_app().await;
    let body = app.create_ok("alice", &app_body("x", "Clock")).await;
    let created_at = body["created_at"].as_str().unwrap();
    let parsed =
        time::OffsetDateTime::parse(created_at, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("created_at {created_at:?} is not RFC 3339: {e}"));
    assert_eq!(parsed.offset(), time::UtcOffset::UTC, "{created_at}");
    assert!(
        created_at.ends_with('Z'),
        "{created_at} is not written in UTC"
    );
    app.stop().await;
}

#[tokio::test]
async fn ids_are_distinct_across_creates() {
    let app = spawn_app().await;
    let a = app.create_ok("alice", &app_body("x", "One")).await;
    let b = app.create_ok("alice", &app_body("x", "Two")).await;
    assert_ne!(a["id"], b["id"]);
    assert!(is_app_id(b["id"].as_str().unwrap()));
    app.stop().await;
}

#[tokio::test]
async fn redirect_uri_uses_public_url_for_every_provider() {
    let app = spawn_app_with(|c| {
        c.server.public_url = Some(url::Url::parse("https://api.example.com").unwrap());
    })
    .await;
    for provider in ["x", "linkedin", "facebook", "instagram", "tiktok"] {
        let body = app.create_ok("alice", &app_body(provider, "Mine")).await;
        assert_eq!(
            body["redirect_uri"],
            format!("https://api.example.com/v1/oauth/{provider}/callback")
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn redirect_uri_keeps_a_public_url_path_prefix_without_double_slash() {
    let app = spawn_app_with(|c| {
        c.server.public_url = Some(url::Url::parse("https://example.com/dravo/").unwrap());
    })
    .await;
    let body = app.create_ok("alice", &app_body("x", "Mine")).await;
    assert_eq!(
        body["redirect_uri"],
        "https://example.com/dravo/v1/oauth/x/callback"
    );
    app.stop().await;
}

#[tokio::test]
async fn redirect_uri_defaults_to_the_bound_address() {
    let app = spawn_app().await;
    let body = app.create_ok("alice", &app_body("tiktok", "Mine")).await;
    assert_eq!(
        body["redirect_uri"],
        format!("{}/v1/oauth/tiktok/callback", app.base_url)
    );
    app.stop().await;
}

#[tokio::test]
async fn default_scopes_match_providers_md_for_every_provider() {
    let app = spawn_app().await;
    let expected: [(&str, &[&str]); 7] = [
        (
            "x",
            &[
                "tweet.read",
                "tweet.write",
                "users.read",
                "offline.access",
                "media.write",
            ],
        ),
        ("linkedin", &["openid", "profile", "w_member_social"]),
        (
            "facebook",
            &[
                "pages_show_list",
                "pages_manage_posts",
                "pages_read_engagement",
                "business_management",
            ],
        ),
        (
            "instagram",
            &[
                "instagram_business_basic",
                "instagram_business_content_publish",
            ],
        ),
        (
            "tiktok",
            &["user.info.basic", "video.publish", "video.upload"],
        ),
        (
            "pinterest",
            &[
                "user_accounts:read",
                "boards:read",
                "pins:read",
                "pins:write",
            ],
        ),
        ("reddit", &["identity", "submit", "read"]),
    ];
    for (provider, scopes) in expected {
        let body = app
            .create_ok("alice", &app_body(provider, "Defaults"))
            .await;
        assert_eq!(body["scopes"], json!(scopes), "{provider}");
        // Stored, not only echoed.
        let id = body["id"].as_str().unwrap();
        let fetched: Value = app
            .get_as("alice", &format!("/v1/oauth-apps/{id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(fetched["scopes"], json!(scopes), "{provider} stored");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_user_agent_is_stored_shown_changed_and_reset_with_null() {
    const AGENT: &str = "web:com.example.scheduler:1.4 (by /u/example)";
    let app = spawn_app().await;
    let plain = app.create_ok("alice", &app_body("reddit", "Plain")).await;
    assert_eq!(plain["user_agent"], Value::Null, "{plain}");
    let mut body = app_body("reddit", "Named");
    body["user_agent"] = json!(format!("  {AGENT} "));
    let created = app.create_ok("alice", &body).await;
    assert_eq!(created["user_agent"], AGENT, "trimmed: {created}");
    let path = format!("/v1/oauth-apps/{}", created["id"].as_str().unwrap());
    let shown: Value = app.get_as("alice", &path).await.json().await.unwrap();
    assert_eq!(shown["user_agent"], AGENT, "stored: {shown}");

    let patch = |value: Value| {
        app.http
            .patch(app.url(&path))
            .bearer_auth(app.token("alice"))
            .json(&json!({ "user_agent": value }))
            .send()
    };
    let changed: Value = patch(json!("web:other:2.0 (by /u/example)"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(changed["user_agent"], "web:other:2.0 (by /u/example)");
    assert_eq!(changed["name"], "Named", "nothing else changed");
    let resp = patch(json!("bad\u{1}agent")).await.unwrap();
    let message = assert_error(resp, 400, "invalid_request").await;
    assert!(message.contains("user_agent"), "{message}");
    let reset = patch(Value::Null).await.unwrap();
    assert_eq!(reset.status(), 200);
    let reset: Value = reset.json().await.unwrap();
    assert_eq!(reset["user_agent"], Value::Null, "{reset}");
    let shown: Value = app.get_as("alice", &path).await.json().await.unwrap();
    assert_eq!(shown["user_agent"], Value::Null, "{shown}");
    app.stop().await;
}

#[tokio::test]
async fn a_user_agent_that_is_not_printable_ascii_or_over_256_chars_is_400() {
    for (agent, needle) in [
        (
            "a".repeat(257),
            "user_agent must be 1 to 256 characters long",
        ),
        (
            "web:x:1 (by /u/\u{e9}t\u{e9})".to_owned(),
            "user_agent must be printable ASCII",
        ),
        ("web:x:1\r\nX-Evil: 1".to_owned(), "user_agent"),
        (
            "   ".to_owned(),
            "user_agent must be 1 to 256 characters long",
        ),
    ] {
        let mut body = app_body("reddit", "Agent");
        body["user_agent"] = json!(agent);
        assert_create_rejected(body, needle).await;
    }
}

#[tokio::test]
async fn custom_scopes_replace_the_defaults() {
    let app = spawn_app().await;
    let mut body = app_body("x", "Custom");
    body["scopes"] = json!(["tweet.read", "users.read"]);
    let created = app.create_ok("alice", &body).await;
    assert_eq!(created["scopes"], json!(["tweet.read", "users.read"]));
    let listed = app.list_apps("alice").await;
    assert_eq!(listed[0]["scopes"], json!(["tweet.read", "users.read"]));
    app.stop().await;
}

#[tokio::test]
async fn name_is_trimmed() {
    let app = spawn_app().await;
    let body = app
        .create_ok("alice", &app_body("x", "  Padded Name \t"))
        .await;
    assert_eq!(body["name"], "Padded Name");
    assert_eq!(app.list_apps("alice").await[0]["name"], "Padded Name");
    app.stop().await;
}

#[tokio::test]
async fn duplicate_after_trimming_is_409_conflict() {
    let app = spawn_app().await;
    app.create_ok("alice", &app_body("x", "  Padded Name \t"))
        .await;
    let before = app_rows(&app.db_path());
    let resp = app.create_app("alice", &app_body("x", "Padded Name")).await;
    assert_error(resp, 409, "conflict").await;
    assert_eq!(app_rows(&app.db_path()), before);
    app.stop().await;
}

#[tokio::test]
async fn name_of_120_emoji_is_valid() {
    let app = spawn_app().await;
    let name = "🦀".repeat(120);
    let body = app.create_ok("alice", &app_body("x", &name)).await;
    assert_eq!(body["name"], name);
    app.stop().await;
}

#[tokio::test]
async fn name_of_120_ascii_chars_is_valid() {
    let app = spawn_app().await;
    let name = "n".repeat(120);
    let body = app.create_ok("alice", &app_body("x", &name)).await;
    assert_eq!(body["name"], name);
    app.stop().await;
}

#[tokio::test]
async fn client_secret_of_2048_chars_is_valid() {
    let app = spawn_app().await;
    let mut body = app_body("x", "Long secret");
    body["client_secret"] = json!("s".repeat(2048));
    app.create_ok("alice", &body).await;
    app.stop().await;
}

#[tokio::test]
async fn client_id_of_512_chars_is_valid() {
    let app = spawn_app().await;
    let mut body = app_body("x", "Long id");
    body["client_id"] = json!("c".repeat(512));
    let created = app.create_ok("alice", &body).await;
    assert_eq!(created["client_id"], "c".repeat(512));
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Uniqueness
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn duplicate_name_for_same_tenant_and_provider_is_409_conflict() {
    let app = spawn_app().await;
    app.create_ok("alice", &app_body("x", "Twin")).await;
    let before = app_rows(&app.db_path());
    let resp = app.create_app("alice", &app_body("x", "Twin")).await;
    let message = assert_error(resp, 409, "conflict").await;
    assert!(message.contains("Twin"), "{message}");
    assert!(!message.contains(SECRET_IN_APP_BODY), "{message}");
    assert_eq!(app_rows(&app.db_path()), before);
    assert_eq!(app.list_apps("alice").await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn same_name_for_another_provider_is_allowed() {
    let app = spawn_app().await;
    app.create_ok("alice", &app_body("x", "Twin")).await;
    app.create_ok("alice", &app_body("linkedin", "Twin")).await;
    assert_eq!(app.list_apps("alice").await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn same_name_for_another_tenant_is_allowed() {
    let app = spawn_app().await;
    app.create_ok("alice", &app_body("x", "Twin")).await;
    app.create_ok("bob", &app_body("x", "Twin")).await;
    assert_eq!(app.list_apps("alice").await.len(), 1);
    assert_eq!(app.list_apps("bob").await.len(), 1);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// List, get, delete
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn list_is_empty_for_a_new_tenant() {
    let app = spawn_app().await;
    assert_eq!(app.list_apps("alice").await, Vec::<Value>::new());
    app.stop().await;
}

#[tokio::test]
async fn list_returns_created_apps_in_creation_order() {
    let app = spawn_app().await;
    // Names chosen so that alphabetical order differs from creation order.
    let mut ids = Vec::new();
    for name in ["zeta", "alpha", "mid"] {
        ids.push(app.create_ok("alice", &app_body("x", name)).await);
    }
    let listed = app.list_apps("alice").await;
    assert_eq!(
        listed, ids,
        "list must be the created objects, oldest first"
    );
    app.stop().await;
}

#[tokio::test]
async fn list_is_oldest_first_by_created_at() {
    let app = spawn_app().await;
    let a = app.create_ok("alice", &app_body("x", "a")).await;
    let b = app.create_ok("alice", &app_body("x", "b")).await;
    let c = app.create_ok("alice", &app_body("x", "c")).await;
    // Make the last-inserted app the oldest.
    const JAN_1_2020: i64 = 1_577_836_800;
    Db::open(&app.db_path()).execute(
        "UPDATE oauth_apps SET created_at = ?2 WHERE id = ?1",
        &[c["id"].as_str().unwrap().into(), JAN_1_2020.into()],
    );
    let ids: Vec<Value> = app
        .list_apps("alice")
        .await
        .into_iter()
        .map(|v| v["id"].clone())
        .collect();
    assert_eq!(ids, [c["id"].clone(), a["id"].clone(), b["id"].clone()]);
    app.stop().await;
}

#[tokio::test]
async fn list_filters_by_provider() {
    let app = spawn_app().await;
    let x1 = app.create_ok("alice", &app_body("x", "x one")).await;
    app.create_ok("alice", &app_body("linkedin", "li")).await;
    let x2 = app.create_ok("alice", &app_body("x", "x two")).await;
    app.create_ok("bob", &app_body("x", "bob x")).await;

    let resp = app.get_as("alice", "/v1/oauth-apps?provider=x").await;
    assert_eq!(resp.status().as_u16(), 200);
    let listed: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(listed, [x1, x2]);

    let resp = app.get_as("alice", "/v1/oauth-apps?provider=tiktok").await;
    assert_eq!(resp.status().as_u16(), 200);
    let listed: Vec<Value> = resp.json().await.unwrap();
    assert!(listed.is_empty(), "{listed:?}");
    app.stop().await;
}

#[tokio::test]
async fn list_with_unknown_provider_filter_is_400() {
    let app = app_with_one_row().await;
    let resp = app.get_as("alice", "/v1/oauth-apps?provider=twitter").await;
    let message = assert_error(resp, 400, "invalid_request").await;
    assert!(message.contains("provider"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn list_with_uppercase_provider_filter_is_400() {
    let app = app_with_one_row().await;
    let resp = app.get_as("alice", "/v1/oauth-apps?provider=X").await;
    let message = assert_error(resp, 400, "invalid_request").await;
    assert!(message.contains("provider"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn list_never_contains_the_secret() {
    let app = spawn_app().await;
    app.create_ok("alice", &app_body("x", "One")).await;
    let raw = app
        .get_as("alice", "/v1/oauth-apps")
        .await
        .text()
        .await
        .unwrap();
    assert!(!raw.contains("client_secret"), "{raw}");
    assert!(!raw.contains(SECRET_IN_APP_BODY), "{raw}");
    app.stop().await;
}

#[tokio::test]
async fn get_by_id_returns_the_app_without_the_secret() {
    let app = spawn_app().await;
    let created = app
        .create_ok("alice", &app_body("facebook", "Page app"))
        .await;
    let id = created["id"].as_str().unwrap();
    let resp = app.get_as("alice", &format!("/v1/oauth-apps/{id}")).await;
    assert_eq!(resp.status().as_u16(), 200);
    let raw = resp.text().await.unwrap();
    assert!(!raw.contains("client_secret"), "{raw}");
    assert!(!raw.contains(SECRET_IN_APP_BODY), "{raw}");
    assert_eq!(serde_json::from_str::<Value>(&raw).unwrap(), created);
    app.stop().await;
}

#[tokio::test]
async fn delete_returns_204_then_get_and_delete_are_404() {
    let app = spawn_app().await;
    let keep = app.create_ok("alice", &app_body("x", "Keep")).await;
    let gone = app.create_ok("alice", &app_body("x", "Gone")).await;
    let path = format!("/v1/oauth-apps/{}", gone["id"].as_str().unwrap());

    let resp = app.delete_as("alice", &path).await;
    assert_eq!(resp.status().as_u16(), 204);
    assert!(resp.text().await.unwrap().is_empty(), "204 has no body");

    assert_error(app.get_as("alice", &path).await, 404, "not_found").await;
    assert_error(app.delete_as("alice", &path).await, 404, "not_found").await;

    // Only that app went away.
    assert_eq!(app.list_apps("alice").await, [keep]);
    app.stop().await;
}

#[tokio::test]
async fn deleted_name_can_be_reused() {
    let app = spawn_app().await;
    let first = app.create_ok("alice", &app_body("x", "Reuse")).await;
    let path = format!("/v1/oauth-apps/{}", first["id"].as_str().unwrap());
    assert_eq!(app.delete_as("alice", &path).await.status().as_u16(), 204);
    let second = app.create_ok("alice", &app_body("x", "Reuse")).await;
    assert_ne!(first["id"], second["id"]);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Tenant isolation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn another_tenants_app_is_404_on_get_and_absent_from_list() {
    let app = spawn_app().await;
    let alices = app.create_ok("alice", &app_body("x", "Private")).await;
    let id = alices["id"].as_str().unwrap();
    let path = format!("/v1/oauth-apps/{id}");

    let message = assert_error(app.get_as("bob", &path).await, 404, "not_found").await;
    // Reported exactly like a missing one.
    let missing = "/v1/oauth-apps/oa_aaaaaaaaaaaaaaaaaaaa";
    let missing_message = assert_error(app.get_as("bob", missing).await, 404, "not_found").await;
    assert_eq!(
        message.replace(id, "ID"),
        missing_message.replace("oa_aaaaaaaaaaaaaaaaaaaa", "ID")
    );

    assert!(app.list_apps("bob").await.is_empty());
    let resp = app.get_as("bob", "/v1/oauth-apps?provider=x").await;
    assert_eq!(
        resp.json::<Vec<Value>>().await.unwrap(),
        Vec::<Value>::new()
    );
    app.stop().await;
}

#[tokio::test]
async fn another_tenants_app_is_404_on_delete_and_survives() {
    let app = spawn_app().await;
    let alices = app.create_ok("alice", &app_body("x", "Private")).await;
    let path = format!("/v1/oauth-apps/{}", alices["id"].as_str().unwrap());
    let before = app_rows(&app.db_path());

    assert_error(app.delete_as("bob", &path).await, 404, "not_found").await;

    assert_eq!(app_rows(&app.db_path()), before);
    assert_eq!(app.get_as("alice", &path).await.status().as_u16(), 200);
    app.stop().await;
}

#[tokio::test]
async fn tenants_are_case_sensitive() {
    let app = spawn_app().await;
    app.create_ok("alice", &app_body("x", "Mine")).await;
    assert!(app.list_apps("Alice").await.is_empty());
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Bad input: each case its own test, each leaving the database unchanged.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn create_rejects_empty_name() {
    assert_create_rejected(app_body("x", ""), "name").await;
}

#[tokio::test]
async fn create_rejects_blank_name() {
    assert_create_rejected(app_body("x", "   "), "name").await;
}

#[tokio::test]
async fn create_rejects_name_over_120_chars() {
    assert_create_rejected(app_body("x", &"n".repeat(121)), "name").await;
}

#[tokio::test]
async fn create_rejects_name_of_121_emoji() {
    assert_create_rejected(app_body("x", &"🦀".repeat(121)), "name").await;
}

#[tokio::test]
async fn create_rejects_name_with_control_characters() {
    assert_create_rejected(app_body("x", "bell\u{7}name"), "name").await;
}

#[tokio::test]
async fn create_rejects_a_name_of_only_zero_width_characters() {
    assert_create_rejected(app_body("x", "\u{200b}\u{200b}"), "name").await;
    assert_create_rejected(app_body("x", " \u{feff}\u{2060} \u{3164}"), "name").await;
}

#[tokio::test]
async fn create_rejects_a_name_with_a_bidi_override() {
    assert_create_rejected(app_body("x", "abc\u{202e}def"), "name").await;
    assert_create_rejected(app_body("x", "abc\u{2067}def"), "name").await;
}

#[tokio::test]
async fn create_rejects_missing_name() {
    let mut body = app_body("x", "unused");
    body.as_object_mut().unwrap().remove("name");
    assert_create_rejected(body, "name").await;
}

#[tokio::test]
async fn create_rejects_name_of_wrong_type() {
    let mut body = app_body("x", "unused");
    body["name"] = json!(42);
    assert_create_rejected(body, "name").await;
}

#[tokio::test]
async fn create_rejects_unknown_provider() {
    assert_create_rejected(
        app_body("myspace", "My App"),
        &format!(
            "unknown provider `myspace`: expected one of {}",
            dravo::providers::expected()
        ),
    )
    .await;
}

/// A former name, or the right name in another case, is refused with the spelling to use
/// (the CLI's rule too).
#[tokio::test]
async fn create_rejects_provider_in_wrong_case_or_a_former_name_suggesting_the_name() {
    assert_create_rejected(
        app_body("X", "My App"),
        "unknown provider `X`: did you mean `x`?",
    )
    .await;
    assert_create_rejected(
        app_body("twitter", "My App"),
        "unknown provider `twitter`: did you mean `x`?",
    )
    .await;
}

#[tokio::test]
async fn create_rejects_missing_provider() {
    let mut body = app_body("x", "My App");
    body.as_object_mut().unwrap().remove("provider");
    assert_create_rejected(body, "provider").await;
}

#[tokio::test]
async fn create_rejects_empty_client_id() {
    let mut body = app_body("x", "My App");
    body["client_id"] = json!("");
    assert_create_rejected(body, "client_id").await;
}

#[tokio::test]
async fn create_rejects_missing_client_id() {
    let mut body = app_body("x", "My App");
    body.as_object_mut().unwrap().remove("client_id");
    assert_create_rejected(body, "client_id").await;
}

#[tokio::test]
async fn create_rejects_client_id_over_512_chars() {
    let mut body = app_body("x", "My App");
    body["client_id"] = json!("c".repeat(513));
    assert_create_rejected(body, "client_id").await;
}

#[tokio::test]
async fn create_rejects_empty_client_secret() {
    let mut body = app_body("x", "My App");
    body["client_secret"] = json!("");
    assert_create_rejected(body, "client_secret").await;
}

#[tokio::test]
async fn create_rejects_missing_client_secret() {
    let mut body = app_body("x", "My App");
    body.as_object_mut().unwrap().remove("client_secret");
    assert_create_rejected(body, "client_secret").await;
}

#[tokio::test]
async fn create_rejects_client_secret_over_2048_chars() {
    let mut body = app_body("x", "My App");
    body["client_secret"] = json!(format!("{SECRET_IN_APP_BODY}{}", "s".repeat(2048)));
    assert_create_rejected(body, "client_secret").await;
}

#[tokio::test]
async fn create_rejects_client_secret_with_control_characters_without_echoing_it() {
    let mut body = app_body("x", "My App");
    body["client_secret"] = json!(format!("{SECRET_IN_APP_BODY}\u{1}"));
    assert_create_rejected(body, "client_secret").await;
}

#[tokio::test]
async fn create_rejects_client_secret_of_wrong_type() {
    let mut body = app_body("x", "My App");
    body["client_secret"] = json!(12345);
    assert_create_rejected(body, "client_secret").await;
}

#[tokio::test]
async fn create_rejects_empty_scope_list() {
    let mut body = app_body("x", "My App");
    body["scopes"] = json!([]);
    assert_create_rejected(body, "scope").await;
}

#[tokio::test]
async fn create_rejects_scopes_as_a_string() {
    let mut body = app_body("x", "My App");
    body["scopes"] = json!("tweet.read users.read");
    assert_create_rejected(body, "scopes").await;
}

#[tokio::test]
async fn create_rejects_a_scope_containing_a_space() {
    let mut body = app_body("x", "My App");
    body["scopes"] = json!(["tweet.read users.read"]);
    assert_create_rejected(body, "scope").await;
}

/// The spec's `scopes` is an array, not nullable: `null` is refused rather than read as
/// "left out", so a client never believes it sent something it did not.
#[tokio::test]
async fn create_rejects_null_scopes() {
    let mut body = app_body("x", "My App");
    body["scopes"] = json!(null);
    assert_create_rejected(body, "`scopes` must be an array of strings, not null").await;
}

#[tokio::test]
async fn create_rejects_unknown_field() {
    let mut body = app_body("x", "My App");
    body["colour"] = json!("blue");
    assert_create_rejected(body, "colour").await;
}

#[tokio::test]
async fn create_rejects_response_only_field_redirect_uri() {
    // A field the response has but the request must not accept.
    let mut body = app_body("x", "My App");
    body["redirect_uri"] = json!("https://evil.example/cb");
    assert_create_rejected(body, "redirect_uri").await;
}

/// Posts a raw body as alice, expects `status`/`code`, and checks nothing changed.
async fn assert_raw_create_rejected(
    content_type: &str,
    body: Vec<u8>,
    status: u16,
    code: &str,
) -> String {
    let app = app_with_one_row().await;
    let before = app_rows(&app.db_path());
    let resp = app.post_raw("alice", content_type, body).await;
    let message = assert_error(resp, status, code).await;
    assert_eq!(app_rows(&app.db_path()), before, "database changed");
    app.stop().await;
    message
}

#[tokio::test]
async fn create_rejects_malformed_json() {
    let message = assert_raw_create_rejected(
        "application/json",
        br#"{"provider": "x", "name": "#.to_vec(),
        400,
        "invalid_request",
    )
    .await;
    assert!(
        message.to_lowercase().contains("json") || message.contains("body"),
        "{message}"
    );
}

#[tokio::test]
async fn create_rejects_a_json_array_body() {
    let body = serde_json::to_vec(&json!([app_body("x", "My App")])).unwrap();
    let message =
        assert_raw_create_rejected("application/json", body, 400, "invalid_request").await;
    assert!(
        message.contains("body") || message.contains("object"),
        "{message}"
    );
}

#[tokio::test]
async fn create_rejects_an_empty_body() {
    assert_raw_create_rejected("application/json", Vec::new(), 400, "invalid_request").await;
}

#[tokio::test]
async fn create_rejects_a_1_mib_body_with_413() {
    // Valid JSON, padded far past 64 KiB inside a string.
    let mut body = app_body("x", "Huge");
    body["client_id"] = json!("c".repeat(1024 * 1024));
    let message = assert_raw_create_rejected(
        "application/json",
        serde_json::to_vec(&body).unwrap(),
        413,
        "payload_too_large",
    )
    .await;
    assert!(
        message.contains("65536") || message.contains("64"),
        "{message}"
    );
}

#[tokio::test]
async fn create_accepts_a_body_just_under_64_kib() {
    // The limit is 64 KiB, not less: a body of 60 KiB parses (and then fails on a field rule,
    // not on size).
    let app = app_with_one_row().await;
    let mut body = app_body("x", "Big");
    body["client_id"] = json!("c".repeat(60 * 1024));
    let resp = app.create_app("alice", &body).await;
    let message = assert_error(resp, 400, "invalid_request").await;
    assert!(message.contains("client_id"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn create_rejects_an_oversized_chunked_body_with_413() {
    // No Content-Length: the limit must hold for streamed bodies too.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = app_with_one_row().await;
    let before = app_rows(&app.db_path());
    let addr = app.base_url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/oauth-apps HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.token("alice")
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 16 * 1024];
    for _ in 0..8 {
        // The server may answer and close before reading everything; stop writing then.
        let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        if stream.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "response: {text}");
    assert!(text.contains("\"payload_too_large\""), "response: {text}");
    assert_eq!(app_rows(&app.db_path()), before);
    app.stop().await;
}

#[tokio::test]
async fn create_rejects_text_plain_with_415() {
    let body = serde_json::to_vec(&app_body("x", "Typed")).unwrap();
    let message =
        assert_raw_create_rejected("text/plain", body, 415, "unsupported_media_type").await;
    assert!(message.contains("application/json"), "{message}");
}

#[tokio::test]
async fn create_rejects_form_encoding_with_415() {
    assert_raw_create_rejected(
        "application/x-www-form-urlencoded",
        b"provider=x&name=Form&client_id=a&client_secret=b".to_vec(),
        415,
        "unsupported_media_type",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// The `{id}` path parameter
// ---------------------------------------------------------------------------------------------

async fn assert_bad_id(method: Method, id: &str) {
    let app = app_with_one_row().await;
    let before = app_rows(&app.db_path());
    let resp = app
        .send_as("alice", method, &format!("/v1/oauth-apps/{id}"))
        .await;
    let message = assert_error(resp, 400, "invalid_request").await;
    // Names the rejected value and what was expected of it.
    assert!(message.contains(&format!("`{id}`")), "{message}");
    assert!(message.contains("oa_"), "{message}");
    assert_eq!(app_rows(&app.db_path()), before);
    app.stop().await;
}

#[tokio::test]
async fn get_with_short_id_is_400() {
    assert_bad_id(Method::GET, "oa_1").await;
}

#[tokio::test]
async fn get_with_unprefixed_id_is_400() {
    assert_bad_id(Method::GET, "nope").await;
}

#[tokio::test]
async fn get_with_uppercase_id_is_400() {
    assert_bad_id(Method::GET, "oa_AAAAAAAAAAAAAAAAAAAA").await;
}

#[tokio::test]
async fn delete_with_short_id_is_400() {
    assert_bad_id(Method::DELETE, "oa_1").await;
}

#[tokio::test]
async fn delete_with_unprefixed_id_is_400() {
    assert_bad_id(Method::DELETE, "nope").await;
}

#[tokio::test]
async fn get_with_well_formed_missing_id_is_404() {
    let app = app_with_one_row().await;
    let resp = app
        .get_as("alice", "/v1/oauth-apps/oa_abcdefghijklmnopqrst")
        .await;
    assert_error(resp, 404, "not_found").await;
    app.stop().await;
}

#[tokio::test]
async fn missing_app_404_message_names_the_app_id() {
    let app = app_with_one_row().await;
    let resp = app
        .get_as("alice", "/v1/oauth-apps/oa_abcdefghijklmnopqrst")
        .await;
    let message = assert_error(resp, 404, "not_found").await;
    assert!(message.contains("oa_abcdefghijklmnopqrst"), "{message}");
    let resp = app
        .delete_as("alice", "/v1/oauth-apps/oa_abcdefghijklmnopqrst")
        .await;
    let message = assert_error(resp, 404, "not_found").await;
    assert!(message.contains("oa_abcdefghijklmnopqrst"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn bad_id_message_names_the_id_parameter() {
    let app = app_with_one_row().await;
    let resp = app.get_as("alice", "/v1/oauth-apps/nope").await;
    let message = assert_error(resp, 400, "invalid_request").await;
    assert!(message.contains("`id`"), "{message}");
    assert!(!message.contains("param0"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn delete_with_well_formed_missing_id_is_404_and_changes_nothing() {
    let app = app_with_one_row().await;
    let before = app_rows(&app.db_path());
    let resp = app
        .delete_as("alice", "/v1/oauth-apps/oa_abcdefghijklmnopqrst")
        .await;
    assert_error(resp, 404, "not_found").await;
    assert_eq!(app_rows(&app.db_path()), before);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Update (PATCH) and delete with connected accounts
// ---------------------------------------------------------------------------------------------

/// `PATCH /v1/oauth-apps/{id}` as `tenant` with a JSON body.
async fn patch_app(app: &TestApp, tenant: &str, id: &str, body: &Value) -> reqwest::Response {
    app.http
        .patch(app.url(&format!("/v1/oauth-apps/{id}")))
        .bearer_auth(app.token(tenant))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn patch_ok(app: &TestApp, id: &str, body: &Value) -> Value {
    let resp = patch_app(app, "alice", id, body).await;
    assert_eq!(resp.status().as_u16(), 200, "PATCH {body}");
    let raw = resp.text().await.unwrap();
    assert!(!raw.contains("client_secret"), "{raw}");
    serde_json::from_str(&raw).unwrap()
}

#[tokio::test]
async fn patch_changes_name_scopes_and_secret_and_returns_the_app() {
    let clock = dravo::clock::ManualClock::starting_now();
    let app = support::spawn_app_with_clock(|_| {}, std::sync::Arc::new(clock.clone())).await;
    let created = app.create_ok("alice", &app_body("x", "Before")).await;
    let id = created["id"].as_str().unwrap();
    clock.advance(60);

    let renamed = patch_ok(&app, id, &json!({"name": "  After  "})).await;
    assert_eq!(renamed["name"], "After");
    assert_eq!(renamed["scopes"], created["scopes"]);
    assert_eq!(renamed["created_at"], created["created_at"]);
    assert_ne!(renamed["updated_at"], created["updated_at"]);
    assert_eq!(keys_of(&renamed), keys_of(&created));

    let scoped = patch_ok(&app, id, &json!({"scopes": ["tweet.read", "users.read"]})).await;
    assert_eq!(scoped["scopes"], json!(["tweet.read", "users.read"]));
    assert_eq!(scoped["name"], "After");

    let secret = "rotated-s3cret-never-shown";
    let rotated = patch_ok(&app, id, &json!({"client_secret": secret})).await;
    assert!(!rotated.to_string().contains(secret));
    assert_eq!(rotated["client_id"], created["client_id"]);
    let fetched: Value = app
        .get_as("alice", &format!("/v1/oauth-apps/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, rotated);
    let owner = dravo::domain::Owner::parse("owner", "alice").unwrap();
    let app_id = dravo::domain::AppId::parse(id).unwrap();
    let creds = app.dravo.app_credentials(&owner, &app_id).await.unwrap();
    assert_eq!(creds.client_secret.expose(), secret);
    app.stop().await;
}

#[tokio::test]
async fn patch_refuses_bad_bodies_and_changes_nothing() {
    let app = app_with_one_row().await;
    let other = app.create_ok("alice", &app_body("x", "Other")).await;
    let id = other["id"].as_str().unwrap().to_owned();
    let before = app_rows(&app.db_path());
    for (body, needle) in [
        (json!({}), "at least one"),
        (json!({"name": null}), "`name` must be a string, not null"),
        (
            json!({"scopes": null}),
            "`scopes` must be an array of strings, not null",
        ),
        (
            json!({"client_secret": null}),
            "`client_secret` must be a string, not null",
        ),
        (json!({"scopes": null, "name": "Renamed"}), "not null"),
        (json!({"name": ""}), "name"),
        (json!({"scopes": []}), "scope"),
        (json!({"scopes": ["tweet.read", "has space"]}), "scope"),
        (json!({"scopes": "tweet.read"}), "scopes"),
        (json!({"client_secret": ""}), "secret"),
        (json!({"provider": "linkedin"}), "provider"),
        (json!({"client_id": "another"}), "client_id"),
    ] {
        let resp = patch_app(&app, "alice", &id, &body).await;
        let message = assert_error(resp, 400, "invalid_request").await;
        assert!(message.contains(needle), "{body}: {message}");
        assert_eq!(
            app_rows(&app.db_path()),
            before,
            "{body} changed the database"
        );
    }
    // Another of alice's x apps is named "Existing": 409, as on create.
    let resp = patch_app(&app, "alice", &id, &json!({"name": "Existing"})).await;
    let message = assert_error(resp, 409, "conflict").await;
    assert!(message.contains("Existing"), "{message}");
    // Another tenant's app looks missing.
    let resp = patch_app(&app, "bob", &id, &json!({"name": "Bob's now"})).await;
    assert_error(resp, 404, "not_found").await;
    let resp = patch_app(
        &app,
        "alice",
        "oa_abcdefghijklmnopqrst",
        &json!({"name": "N"}),
    )
    .await;
    assert_error(resp, 404, "not_found").await;
    assert_eq!(app_rows(&app.db_path()), before);
    app.stop().await;
}

/// An account row of alice's using `app_id`, written straight to the database.
fn insert_app_account(app: &TestApp, n: u8, app_id: &str, status: &str, failures: i64) -> String {
    let id = format!("acc_{}{}", "a".repeat(19), (b'a' + n) as char);
    Db::open(&app.db_path()).execute(
        "INSERT INTO accounts (id, owner, provider, oauth_app_id, provider_account_id,
             scopes, status, access_token_sealed, refresh_token_sealed, expires_at,
             next_refresh_at, refresh_failures, created_at, updated_at)
         VALUES (?1, 'alice', 'x', ?2, ?1, '[]', ?3, ?5, ?5, 4000000000,
             3999999000, ?4, 1, 1)",
        &[
            (&id).into(),
            app_id.into(),
            status.into(),
            failures.into(),
            vec![0u8].into(),
        ],
    );
    id
}

fn next_refresh_at(app: &TestApp, id: &str) -> Option<i64> {
    Db::open(&app.db_path())
        .value(
            "SELECT next_refresh_at FROM accounts WHERE id = ?1",
            &[id.into()],
        )
        .opt_int()
}

#[tokio::test]
async fn a_new_secret_clears_the_credentials_error_and_makes_waiting_accounts_due() {
    // No background refresher: it would take the due accounts at once.
    let app = spawn_app_with(|c| c.refresh.background = false).await;
    let created = app.create_ok("alice", &app_body("x", "Refused")).await;
    let id = created["id"].as_str().unwrap();
    let other = app.create_ok("alice", &app_body("x", "Untouched")).await;
    let other_id = other["id"].as_str().unwrap();
    Db::open(&app.db_path()).execute(
        "UPDATE oauth_apps SET credentials_error = 'invalid_client (bad secret)',
             credentials_error_at = 1 WHERE id = ?1",
        &[id.into()],
    );
    let shown: Value = app
        .get_as("alice", &format!("/v1/oauth-apps/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["credentials_error"], "invalid_client (bad secret)");

    let waiting = insert_app_account(&app, 0, id, "active", 3);
    let expiring = insert_app_account(&app, 1, id, "expiring", 1);
    let healthy = insert_app_account(&app, 2, id, "active", 0);
    let gone = insert_app_account(&app, 3, id, "needs_reauth", 2);
    let elsewhere = insert_app_account(&app, 4, other_id, "active", 2);

    // A new name alone moves no account.
    patch_ok(&app, id, &json!({"name": "Renamed"})).await;
    assert_eq!(next_refresh_at(&app, &waiting), Some(3_999_999_000));

    let before = time::OffsetDateTime::now_utc().unix_timestamp();
    let patched = patch_ok(&app, id, &json!({"client_secret": "the-new-one"})).await;
    assert!(patched["credentials_error"].is_null(), "{patched}");
    let after = time::OffsetDateTime::now_utc().unix_timestamp();
    for due in [&waiting, &expiring] {
        let at = next_refresh_at(&app, due).unwrap();
        assert!((before..=after).contains(&at), "{due}: {at}");
    }
    for kept in [&healthy, &gone, &elsewhere] {
        assert_eq!(next_refresh_at(&app, kept), Some(3_999_999_000), "{kept}");
    }
    let error_at = Db::open(&app.db_path())
        .value(
            "SELECT credentials_error_at FROM oauth_apps WHERE id = ?1",
            &[id.into()],
        )
        .opt_int();
    assert_eq!(error_at, None);
    app.stop().await;
}

// ------------------------------------------------------------- against a fake provider

const RETURN_URL: &str = "https://dash.example.com/connected";

/// A server whose x endpoints are `fake`'s.
async fn app_for(fake: &fake_provider::FakeProvider) -> TestApp {
    let (authorize, token, api) = fake.config_urls();
    spawn_app_with(|config| {
        let slot = config.providers.entry("x".parse().unwrap());
        slot.authorize_url = Some(url::Url::parse(&authorize).unwrap());
        slot.token_url = Some(url::Url::parse(&token).unwrap());
        slot.api_base = Some(url::Url::parse(&api).unwrap());
        config.dashboard.allowed_return_urls = vec!["https://dash.example.com".into()];
    })
    .await
}

/// start → the fake's consent → Dravo's callback; returns the query of the redirect to the
/// return URL.
async fn connect(app: &TestApp, app_id: &str) -> std::collections::HashMap<String, String> {
    let start = url::Url::parse_with_params(
        &app.url("/v1/oauth/x/start"),
        [("oauth_app_id", app_id), ("return_url", RETURN_URL)],
    )
    .unwrap();
    let resp = app
        .http
        .get(start)
        .bearer_auth(app.token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let authorize = body["authorize_url"].as_str().unwrap();
    let resp = app.http.get(authorize).send().await.unwrap();
    assert_eq!(resp.status(), 302, "the fake refused {authorize}");
    let callback = resp.headers()["location"].to_str().unwrap().to_owned();
    let resp = app.http.get(&callback).send().await.unwrap();
    assert_eq!(resp.status(), 302, "callback {callback}");
    let redirect = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert!(redirect.as_str().starts_with(RETURN_URL), "{redirect}");
    redirect.query_pairs().into_owned().collect()
}

#[tokio::test]
async fn after_patch_the_code_exchange_uses_the_new_secret() {
    let fake =
        fake_provider::FakeProvider::start(fake_provider::Kind::X, "cid-rotated", "new-secret")
            .await;
    let app = app_for(&fake).await;
    let mut body = app_body("x", "Rotated");
    body["client_id"] = json!("cid-rotated");
    body["client_secret"] = json!("old-secret");
    let created = app.create_ok("alice", &body).await;
    let id = created["id"].as_str().unwrap();

    // The provider refuses the old secret…
    let refused = connect(&app, id).await;
    assert_eq!(refused["status"], "error", "{refused:?}");
    // …and takes the new one.
    patch_ok(&app, id, &json!({"client_secret": "new-secret"})).await;
    let connected = connect(&app, id).await;
    assert_eq!(connected["status"], "connected", "{connected:?}");
    let account = &connected["account_id"];
    let resp = app
        .get_as("alice", &format!("/v1/accounts/{account}"))
        .await;
    assert_eq!(resp.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn deleting_an_app_in_use_is_refused_unless_cascade_revokes_and_deletes_its_accounts() {
    let fake =
        fake_provider::FakeProvider::start(fake_provider::Kind::X, "cid-cascade", "cascade-secret")
            .await;
    let app = app_for(&fake).await;
    let mut body = app_body("x", "Cascade");
    body["client_id"] = json!("cid-cascade");
    body["client_secret"] = json!("cascade-secret");
    let created = app.create_ok("alice", &body).await;
    let id = created["id"].as_str().unwrap();
    let connected = connect(&app, id).await;
    assert_eq!(connected["status"], "connected", "{connected:?}");
    let account = connected["account_id"].clone();
    let path = format!("/v1/oauth-apps/{id}");

    let resp = app.delete_as("alice", &path).await;
    let message = assert_error(resp, 409, "app_in_use").await;
    assert!(message.contains("1 connected account"), "{message}");
    assert!(message.contains("?cascade=true"), "{message}");
    assert_eq!(app.get_as("alice", &path).await.status(), 200);
    let account_path = format!("/v1/accounts/{account}");
    assert_eq!(app.get_as("alice", &account_path).await.status(), 200);
    assert!(fake.revoked_tokens().is_empty());

    // Another tenant's cascade finds nothing to delete.
    let resp = app.delete_as("bob", &format!("{path}?cascade=true")).await;
    assert_error(resp, 404, "not_found").await;
    // `cascade=false` is the default.
    let resp = app
        .delete_as("alice", &format!("{path}?cascade=false"))
        .await;
    assert_error(resp, 409, "app_in_use").await;

    let resp = app
        .delete_as("alice", &format!("{path}?cascade=true"))
        .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(app.get_as("alice", &path).await.status(), 404);
    assert_eq!(app.get_as("alice", &account_path).await.status(), 404);
    assert!(
        !fake.revoked_tokens().is_empty(),
        "the provider saw no revoke"
    );
    let accounts = Db::open(&app.db_path())
        .value("SELECT count(*) FROM accounts", &[])
        .int();
    assert_eq!(accounts, 0);
    app.stop().await;
}

/// A scope the provider does not document is stored as given, and named in `warnings` with
/// the one it most likely meant, on create, on update, and wherever the app is shown.
#[tokio::test]
async fn a_scope_typo_is_stored_and_named_in_warnings_on_create_update_get_and_list() {
    let app = spawn_app().await;
    let mut body = app_body("x", "Typo");
    body["scopes"] = json!(["tweet.read", "tweet.wirte", "users.read"]);
    let created = app.create_ok("alice", &body).await;
    assert_eq!(
        created["scopes"],
        json!(["tweet.read", "tweet.wirte", "users.read"]),
        "stored as given"
    );
    let typo =
        json!(["`tweet.wirte` is not among the scopes x documents: did you mean `tweet.write`?"]);
    assert_eq!(created["warnings"], typo, "{created}");
    let id = created["id"].as_str().unwrap();
    let got: Value = app
        .get_as("alice", &format!("/v1/oauth-apps/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["warnings"], typo);
    assert_eq!(app.list_apps("alice").await[0]["warnings"], typo);

    // Fixed: no warning. Missing what Dravo needs to identify an account: a warning.
    let fixed = patch_ok(
        &app,
        id,
        &json!({"scopes": ["tweet.read", "tweet.write", "users.read"]}),
    )
    .await;
    assert_eq!(fixed["warnings"], json!([]), "{fixed}");
    let short = patch_ok(&app, id, &json!({"scopes": ["tweet.write"]})).await;
    assert_eq!(
        short["warnings"],
        json!([
            "`tweet.read`, `users.read` are missing: Dravo needs them to identify the connected account"
        ])
    );
    // A default app has none.
    let plain = app.create_ok("alice", &app_body("linkedin", "Plain")).await;
    assert_eq!(plain["warnings"], json!([]));
    // Nothing near: no guess.
    let far = patch_ok(
        &app,
        id,
        &json!({"scopes": ["tweet.read", "users.read", "pages_show_list"]}),
    )
    .await;
    assert_eq!(
        far["warnings"],
        json!([
            "`pages_show_list` is not among the scopes x documents (a typo, or a name from another provider's or product's list?)"
        ])
    );
    app.stop().await;
}
