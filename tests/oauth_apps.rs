//! `/v1/oauth-apps` (CONTRACT §3–§4 and the seed page): create, list, get, delete, tenant
//! isolation, uniqueness and every kind of bad input. Each rejected request must leave the
//! database exactly as it was.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::{TestApp, app_body, app_rows, assert_error, open_db, spawn_app, spawn_app_with};

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
            "id",
            "name",
            "provider",
            "redirect_uri",
            "scopes"
        ]
    );
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
async fn default_scopes_match_providers_md_for_all_five_providers() {
    let app = spawn_app().await;
    let expected: [(&str, &[&str]); 5] = [
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
    open_db(&app.db_path())
        .execute(
            "UPDATE oauth_apps SET created_at = unixepoch('2020-01-01T00:00:00Z') WHERE id = ?1",
            [c["id"].as_str().unwrap()],
        )
        .unwrap();
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
    assert_create_rejected(app_body("twitter", "My App"), "provider").await;
}

#[tokio::test]
async fn create_rejects_provider_in_wrong_case() {
    assert_create_rejected(app_body("X", "My App"), "provider").await;
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
