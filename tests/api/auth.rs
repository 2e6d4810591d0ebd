//! Dashboard authentication (CONTRACT §2 `auth.*`, §3): every way a bearer token can be wrong
//! is a 401 `unauthorized` with `WWW-Authenticate: Bearer`; a right one names the tenant.

use crate::support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;
use serde_json::{Value, json};
use support::{TestApp, app_body, app_rows, assert_error, spawn_app, spawn_app_with};

/// 40 characters; the server is configured with it, so tests can sign their own tokens.
const SECRET: &str = "dravo-test-jwt-secret-0123456789abcdefgh";
const OTHER_SECRET: &str = "another-secret-entirely-0123456789abcdef";

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn sign_with(secret: &str, claims: &Value) -> String {
    let key = EncodingKey::from_secret(secret.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
}

fn sign(claims: &Value) -> String {
    sign_with(SECRET, claims)
}

/// Claims that the server accepts as-is.
fn good_claims(sub: &str) -> Value {
    json!({"sub": sub, "iat": now(), "exp": now() + 600})
}

async fn app_with_secret() -> TestApp {
    spawn_app_with(|c| c.auth.jwt_secret = Some(SecretString::from(SECRET))).await
}

/// `GET /v1/oauth-apps` with the given `Authorization` header value (or none).
async fn list_with(app: &TestApp, authorization: Option<&str>) -> reqwest::Response {
    let mut req = app.http.get(app.url("/v1/oauth-apps"));
    if let Some(value) = authorization {
        req = req.header("authorization", value);
    }
    req.send().await.unwrap()
}

async fn list_with_token(app: &TestApp, token: &str) -> reqwest::Response {
    list_with(app, Some(&format!("Bearer {token}"))).await
}

/// Asserts 401 `unauthorized` with a Bearer challenge; returns the message.
async fn assert_unauthorized(resp: reqwest::Response) -> String {
    assert_eq!(resp.status().as_u16(), 401, "status");
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .expect("401 must carry WWW-Authenticate");
    assert!(
        challenge.starts_with("Bearer"),
        "WWW-Authenticate {challenge:?}"
    );
    assert_error(resp, 401, "unauthorized").await
}

/// Hand-built `header.claims.` token with `alg: none` and an empty signature.
fn unsigned_token(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    format!("{header}.{claims}.")
}

// ---------------------------------------------------------------------------------------------
// Accepted tokens
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn valid_token_signed_with_configured_secret_is_accepted() {
    let app = app_with_secret().await;
    let resp = list_with_token(&app, &sign(&good_claims("alice"))).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!([]));
    app.stop().await;
}

#[tokio::test]
async fn tenant_comes_from_sub_by_default() {
    let app = app_with_secret().await;
    let token = sign(&good_claims("alice"));
    let resp = app
        .http
        .post(app.url("/v1/oauth-apps"))
        .bearer_auth(&token)
        .json(&app_body("x", "Alice's"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    // The same tenant sees it; another does not.
    let mine: Vec<Value> = list_with_token(&app, &sign(&good_claims("alice")))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    let theirs: Vec<Value> = list_with_token(&app, &sign(&good_claims("bob")))
        .await
        .json()
        .await
        .unwrap();
    assert!(theirs.is_empty());
    let rows = app_rows(&app.db_path());
    assert_eq!(rows[0][1], "alice", "stored owner");
    app.stop().await;
}

#[tokio::test]
async fn token_from_app_token_works_with_derived_secret() {
    // No jwt_secret configured: the HS256 key is derived from the master key.
    let app = spawn_app().await;
    assert!(app.dravo.config().auth.jwt_secret.is_none());
    let resp = list_with_token(&app, &app.token("alice")).await;
    assert_eq!(resp.status().as_u16(), 200);
    app.stop().await;
}

#[tokio::test]
async fn derived_secret_is_not_the_configured_test_secret() {
    // Without jwt_secret, a token signed with some other secret must not pass.
    let app = spawn_app().await;
    let resp = list_with_token(&app, &sign(&good_claims("alice"))).await;
    let message = assert_unauthorized(resp).await;
    assert!(message.contains("signature"), "{message}");
    // The likely cause, for a token from `dravo token issue` run against another database.
    assert!(
        message.contains("another key") && message.contains("dravo token issue"),
        "{message}"
    );
    app.stop().await;
}

#[tokio::test]
async fn app_token_is_signed_with_configured_secret() {
    let app = app_with_secret().await;
    let token = app.token("alice");
    let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
    validation.validate_aud = false;
    let data = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()).unwrap(),
        &validation,
    )
    .expect("token verifies with the configured secret");
    assert_eq!(data.claims["sub"], "alice");
    assert_eq!(list_with_token(&app, &token).await.status().as_u16(), 200);
    app.stop().await;
}

#[tokio::test]
async fn tenant_of_exactly_128_chars_is_accepted() {
    let app = app_with_secret().await;
    let resp = list_with_token(&app, &sign(&good_claims(&"t".repeat(128)))).await;
    assert_eq!(resp.status().as_u16(), 200);
    app.stop().await;
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    // RFC 7235: the auth scheme is case-insensitive.
    let app = app_with_secret().await;
    let token = sign(&good_claims("alice"));
    let resp = list_with(&app, Some(&format!("bearer {token}"))).await;
    assert_eq!(resp.status().as_u16(), 200);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Rejected tokens: each a 401 with a Bearer challenge.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn missing_authorization_header_is_401() {
    let app = app_with_secret().await;
    let message = assert_unauthorized(list_with(&app, None).await).await;
    assert!(message.to_lowercase().contains("bearer"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn malformed_token_is_401() {
    let app = app_with_secret().await;
    let message = assert_unauthorized(list_with_token(&app, "not.a.jwt").await).await;
    assert!(message.contains("token"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn garbage_token_without_dots_is_401() {
    let app = app_with_secret().await;
    assert_unauthorized(list_with_token(&app, "garbage").await).await;
    app.stop().await;
}

#[tokio::test]
async fn expired_token_is_401() {
    let app = app_with_secret().await;
    let claims = json!({"sub": "alice", "iat": now() - 3600, "exp": now() - 600});
    let message = assert_unauthorized(list_with_token(&app, &sign(&claims)).await).await;
    assert!(message.contains("expired"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn token_issued_in_the_future_is_401() {
    let app = app_with_secret().await;
    // Two minutes ahead: past the 30 s leeway.
    let claims = json!({"sub": "alice", "iat": now() + 120, "exp": now() + 600});
    let message = assert_unauthorized(list_with_token(&app, &sign(&claims)).await).await;
    assert_eq!(
        message,
        "the bearer token's `iat` (issued at) is in the future: check the clock of the system that signed it"
    );
    app.stop().await;
}

#[tokio::test]
async fn token_issued_a_few_seconds_ahead_is_accepted_within_the_leeway() {
    let app = app_with_secret().await;
    let claims = json!({"sub": "alice", "iat": now() + 5, "exp": now() + 600});
    assert_eq!(list_with_token(&app, &sign(&claims)).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn token_valid_longer_than_the_default_max_token_lifetime_is_401() {
    let app = app_with_secret().await;
    let iat = now();
    // Eight days; the default maximum is seven.
    let claims = json!({"sub": "alice", "iat": iat, "exp": iat + 8 * 86_400});
    let message = assert_unauthorized(list_with_token(&app, &sign(&claims)).await).await;
    assert_eq!(
        message,
        "the bearer token is valid for 691200 seconds, longer than auth.max_token_lifetime allows (604800 seconds): issue a shorter-lived token"
    );
    // Exactly seven days is allowed.
    let claims = json!({"sub": "alice", "iat": iat, "exp": iat + 7 * 86_400});
    assert_eq!(list_with_token(&app, &sign(&claims)).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn token_without_iat_and_an_exp_near_the_end_of_time_is_401() {
    let app = app_with_secret().await;
    for exp in [u64::MAX, now() + 30 * 86_400] {
        let claims = json!({"sub": "alice", "exp": exp});
        let message = assert_unauthorized(list_with_token(&app, &sign(&claims)).await).await;
        assert!(
            message
                .contains("from now, longer than auth.max_token_lifetime allows (604800 seconds)"),
            "{message}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn max_token_lifetime_is_configurable() {
    let app = spawn_app_with(|c| {
        c.auth.jwt_secret = Some(SecretString::from(SECRET));
        c.auth.max_token_lifetime = 3600;
    })
    .await;
    let iat = now();
    let long = json!({"sub": "alice", "iat": iat, "exp": iat + 7200});
    let message = assert_unauthorized(list_with_token(&app, &sign(&long)).await).await;
    assert!(message.contains("(3600 seconds)"), "{message}");
    let short = json!({"sub": "alice", "iat": iat, "exp": iat + 3600});
    assert_eq!(list_with_token(&app, &sign(&short)).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn wrongly_signed_token_is_401() {
    let app = app_with_secret().await;
    let token = sign_with(OTHER_SECRET, &good_claims("alice"));
    let message = assert_unauthorized(list_with_token(&app, &token).await).await;
    assert!(message.contains("signature"), "{message}");
    assert!(message.contains("auth.jwt_secret"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn token_with_tampered_claims_is_401() {
    // A valid token whose payload was swapped for another tenant's.
    let app = app_with_secret().await;
    let token = sign(&good_claims("alice"));
    let parts: Vec<&str> = token.split('.').collect();
    let forged_claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&good_claims("bob")).unwrap());
    let forged = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
    assert_unauthorized(list_with_token(&app, &forged).await).await;
    app.stop().await;
}

#[tokio::test]
async fn alg_none_token_is_401() {
    let app = app_with_secret().await;
    let token = unsigned_token(&good_claims("alice"));
    let message = assert_unauthorized(list_with_token(&app, &token).await).await;
    assert!(
        message.contains("algorithm") || message.contains("malformed"),
        "{message}"
    );
    app.stop().await;
}

#[tokio::test]
async fn alg_none_token_with_signature_of_real_token_is_401() {
    // Header swapped to `none` while keeping a genuine HS256 signature.
    let app = app_with_secret().await;
    let real = sign(&good_claims("alice"));
    let parts: Vec<&str> = real.split('.').collect();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let token = format!("{header}.{}.{}", parts[1], parts[2]);
    assert_unauthorized(list_with_token(&app, &token).await).await;
    app.stop().await;
}

#[tokio::test]
async fn hs512_token_with_right_secret_is_401() {
    // Only HS256 is accepted in secret mode.
    let app = app_with_secret().await;
    let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    let token =
        jsonwebtoken::encode(&Header::new(Algorithm::HS512), &good_claims("alice"), &key).unwrap();
    let message = assert_unauthorized(list_with_token(&app, &token).await).await;
    assert!(message.contains("algorithm"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn token_without_sub_is_401() {
    let app = app_with_secret().await;
    let claims = json!({"iat": now(), "exp": now() + 600});
    let message = assert_unauthorized(list_with_token(&app, &sign(&claims)).await).await;
    assert!(message.contains("sub"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn token_without_exp_is_401() {
    let app = app_with_secret().await;
    let claims = json!({"sub": "alice", "iat": now()});
    let message = assert_unauthorized(list_with_token(&app, &sign(&claims)).await).await;
    assert!(message.contains("exp"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn tenant_claim_over_128_chars_is_401() {
    let app = app_with_secret().await;
    let claims = good_claims(&"t".repeat(129));
    let message = assert_unauthorized(list_with_token(&app, &sign(&claims)).await).await;
    assert!(message.contains("sub"), "{message}");
    assert!(message.contains("128"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn empty_tenant_claim_is_401() {
    let app = app_with_secret().await;
    let message = assert_unauthorized(list_with_token(&app, &sign(&good_claims(""))).await).await;
    assert!(message.contains("sub"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn non_string_tenant_claim_is_401() {
    let app = app_with_secret().await;
    let claims = json!({"sub": 42, "exp": now() + 600});
    let message = assert_unauthorized(list_with_token(&app, &sign(&claims)).await).await;
    assert!(message.contains("sub"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn tenant_claim_with_control_characters_is_401() {
    let app = app_with_secret().await;
    let message =
        assert_unauthorized(list_with_token(&app, &sign(&good_claims("ali\nce"))).await).await;
    assert!(message.contains("sub"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn tenant_claim_of_only_zero_width_characters_is_401() {
    let app = app_with_secret().await;
    let message =
        assert_unauthorized(list_with_token(&app, &sign(&good_claims("\u{200b}"))).await).await;
    assert!(message.contains("sub"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn tenant_claim_with_a_bidi_override_is_401() {
    let app = app_with_secret().await;
    let token = sign(&good_claims("alice\u{202e}"));
    let message = assert_unauthorized(list_with_token(&app, &token).await).await;
    assert!(message.contains("sub"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn basic_scheme_is_401() {
    let app = app_with_secret().await;
    let resp = list_with(&app, Some("Basic YWxpY2U6cGFzc3dvcmQ=")).await;
    let message = assert_unauthorized(resp).await;
    assert!(message.to_lowercase().contains("bearer"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn bare_token_without_scheme_is_401() {
    let app = app_with_secret().await;
    let token = sign(&good_claims("alice"));
    assert_unauthorized(list_with(&app, Some(&token)).await).await;
    app.stop().await;
}

#[tokio::test]
async fn every_v1_endpoint_requires_a_token() {
    let app = app_with_secret().await;
    let id = "oa_abcdefghijklmnopqrst";
    let cases = [
        (reqwest::Method::GET, "/v1/oauth-apps".to_owned()),
        (reqwest::Method::POST, "/v1/oauth-apps".to_owned()),
        (reqwest::Method::GET, format!("/v1/oauth-apps/{id}")),
        (reqwest::Method::DELETE, format!("/v1/oauth-apps/{id}")),
    ];
    for (method, path) in cases {
        let mut req = app.http.request(method.clone(), app.url(&path));
        if method == reqwest::Method::POST {
            req = req.json(&app_body("x", "No token"));
        }
        let resp = req.send().await.unwrap();
        assert_unauthorized(resp).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn create_with_forged_token_stores_nothing() {
    let app = app_with_secret().await;
    let token = sign_with(OTHER_SECRET, &good_claims("alice"));
    let resp = app
        .http
        .post(app.url("/v1/oauth-apps"))
        .bearer_auth(token)
        .json(&app_body("x", "Forged"))
        .send()
        .await
        .unwrap();
    assert_unauthorized(resp).await;
    assert!(app_rows(&app.db_path()).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn delete_with_expired_token_deletes_nothing() {
    let app = app_with_secret().await;
    let created = app.create_ok("alice", &app_body("x", "Keep me")).await;
    let before = app_rows(&app.db_path());
    let expired = sign(&json!({"sub": "alice", "exp": now() - 600}));
    let resp = app
        .http
        .delete(app.url(&format!(
            "/v1/oauth-apps/{}",
            created["id"].as_str().unwrap()
        )))
        .bearer_auth(expired)
        .send()
        .await
        .unwrap();
    assert_unauthorized(resp).await;
    assert_eq!(app_rows(&app.db_path()), before);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// auth.tenant_claim, auth.issuer, auth.audience
// ---------------------------------------------------------------------------------------------

async fn app_with_tenant_claim_org() -> TestApp {
    spawn_app_with(|c| {
        c.auth.jwt_secret = Some(SecretString::from(SECRET));
        c.auth.tenant_claim = "org".into();
    })
    .await
}

#[tokio::test]
async fn tenant_claim_org_takes_the_tenant_from_org() {
    let app = app_with_tenant_claim_org().await;
    let alice_at_acme = sign(&json!({"sub": "alice", "org": "acme", "exp": now() + 600}));
    let resp = app
        .http
        .post(app.url("/v1/oauth-apps"))
        .bearer_auth(&alice_at_acme)
        .json(&app_body("x", "Acme app"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(app_rows(&app.db_path())[0][1], "acme", "stored owner");

    // Another user of the same org sees it...
    let bob_at_acme = sign(&json!({"sub": "bob", "org": "acme", "exp": now() + 600}));
    let listed: Vec<Value> = list_with_token(&app, &bob_at_acme)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    // ...the same user in another org does not.
    let alice_elsewhere = sign(&json!({"sub": "alice", "org": "globex", "exp": now() + 600}));
    let listed: Vec<Value> = list_with_token(&app, &alice_elsewhere)
        .await
        .json()
        .await
        .unwrap();
    assert!(listed.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn tenant_claim_org_rejects_a_token_with_only_sub() {
    let app = app_with_tenant_claim_org().await;
    let message =
        assert_unauthorized(list_with_token(&app, &sign(&good_claims("alice"))).await).await;
    assert!(message.contains("org"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn tenant_claim_org_app_token_works() {
    // `dravo token issue` (and app.token) must put the tenant where the server looks.
    let app = app_with_tenant_claim_org().await;
    assert_eq!(
        list_with_token(&app, &app.token("alice"))
            .await
            .status()
            .as_u16(),
        200
    );
    app.stop().await;
}

const ISSUER: &str = "https://id.example.com/";
const AUDIENCE: &str = "dravo-api";

async fn app_with_issuer_and_audience() -> TestApp {
    spawn_app_with(|c| {
        c.auth.jwt_secret = Some(SecretString::from(SECRET));
        c.auth.issuer = Some(ISSUER.into());
        c.auth.audience = Some(AUDIENCE.into());
    })
    .await
}

fn claims_with(iss: Option<&str>, aud: Option<&str>) -> Value {
    let mut claims = good_claims("alice");
    if let Some(iss) = iss {
        claims["iss"] = json!(iss);
    }
    if let Some(aud) = aud {
        claims["aud"] = json!(aud);
    }
    claims
}

#[tokio::test]
async fn issuer_and_audience_accept_a_matching_token() {
    let app = app_with_issuer_and_audience().await;
    let token = sign(&claims_with(Some(ISSUER), Some(AUDIENCE)));
    assert_eq!(list_with_token(&app, &token).await.status().as_u16(), 200);
    // And app.token() (dravo token issue) includes them.
    assert_eq!(
        list_with_token(&app, &app.token("alice"))
            .await
            .status()
            .as_u16(),
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn issuer_rejects_a_wrong_iss() {
    let app = app_with_issuer_and_audience().await;
    let token = sign(&claims_with(
        Some("https://evil.example.com/"),
        Some(AUDIENCE),
    ));
    let message = assert_unauthorized(list_with_token(&app, &token).await).await;
    assert!(message.contains("iss"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn issuer_rejects_a_missing_iss() {
    let app = app_with_issuer_and_audience().await;
    let token = sign(&claims_with(None, Some(AUDIENCE)));
    let message = assert_unauthorized(list_with_token(&app, &token).await).await;
    assert!(message.contains("iss"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn audience_rejects_a_wrong_aud() {
    let app = app_with_issuer_and_audience().await;
    let token = sign(&claims_with(Some(ISSUER), Some("some-other-api")));
    let message = assert_unauthorized(list_with_token(&app, &token).await).await;
    assert!(message.contains("aud"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn audience_rejects_a_missing_aud() {
    let app = app_with_issuer_and_audience().await;
    let token = sign(&claims_with(Some(ISSUER), None));
    let message = assert_unauthorized(list_with_token(&app, &token).await).await;
    assert!(message.contains("aud"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn audience_accepts_an_aud_array_containing_it() {
    let app = app_with_issuer_and_audience().await;
    let mut claims = claims_with(Some(ISSUER), None);
    claims["aud"] = json!(["other", AUDIENCE]);
    assert_eq!(
        list_with_token(&app, &sign(&claims))
            .await
            .status()
            .as_u16(),
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn without_issuer_or_audience_configured_any_iss_and_aud_pass() {
    let app = app_with_secret().await;
    let token = sign(&claims_with(Some("whoever"), Some("whatever")));
    assert_eq!(list_with_token(&app, &token).await.status().as_u16(), 200);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// auth.jwt_public_key_file (EdDSA)
// ---------------------------------------------------------------------------------------------

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

async fn app_with_public_key() -> TestApp {
    spawn_app_with(|c| c.auth.jwt_public_key_file = Some(fixture("jwt_ed25519_public.pem"))).await
}

fn sign_eddsa(claims: &Value) -> String {
    let pem = std::fs::read(fixture("jwt_ed25519_private.pem")).unwrap();
    let key = EncodingKey::from_ed_pem(&pem).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, &key).unwrap()
}

#[tokio::test]
async fn public_key_mode_accepts_an_eddsa_token() {
    let app = app_with_public_key().await;
    let resp = list_with_token(&app, &sign_eddsa(&good_claims("alice"))).await;
    assert_eq!(resp.status().as_u16(), 200);
    app.stop().await;
}

#[tokio::test]
async fn public_key_mode_rejects_an_expired_eddsa_token() {
    let app = app_with_public_key().await;
    let token = sign_eddsa(&json!({"sub": "alice", "exp": now() - 600}));
    let message = assert_unauthorized(list_with_token(&app, &token).await).await;
    assert!(message.contains("expired"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn public_key_mode_rejects_hs256_tokens() {
    let app = app_with_public_key().await;
    // Neither the derived secret (what app.token would use) nor an HS256 token keyed with the
    // public key's own bytes (the classic algorithm-confusion forgery) may pass.
    let pem = std::fs::read(fixture("jwt_ed25519_public.pem")).unwrap();
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &good_claims("alice"),
        &EncodingKey::from_secret(&pem).unwrap(),
    )
    .unwrap();
    assert_unauthorized(list_with_token(&app, &confused).await).await;
    assert_unauthorized(list_with_token(&app, &sign(&good_claims("alice"))).await).await;
    app.stop().await;
}

#[tokio::test]
async fn public_key_mode_cannot_issue_tokens() {
    let app = app_with_public_key().await;
    let err = match app.dravo.issue_token("alice", 60) {
        Ok(_) => panic!("a public key cannot sign"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("jwt_public_key_file"), "{err}");
    app.stop().await;
}
