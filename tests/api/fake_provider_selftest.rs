//! Drives each fake provider directly with reqwest, the way Dravo and a browser would, and proves
//! that it rejects what the real provider rejects.

use crate::support::fake_provider;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use fake_provider::{DEFAULT_INSTAGRAM_USER_ID, FakeProvider, Fault, Kind};
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

const ID: &str = "app-id-123";
const SECRET: &str = "app-secret-456";
const REDIRECT: &str = "http://127.0.0.1:9/v1/oauth/p/callback";

thread_local! {
    // One client per test thread (each test has its own thread and runtime): building a
    // client loads the TLS roots, which is slow enough to matter when done per request.
    static HTTP: reqwest::Client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
}

fn http() -> reqwest::Client {
    HTTP.with(Clone::clone)
}

fn pkce() -> (String, String) {
    let verifier = "v".repeat(20) + "-._~0123456789abcdefghijklmnop";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The authorize parameters Dravo would send for `kind` (with `scope` as given).
fn authorize_params(kind: Kind, scope: &str, challenge: &str) -> Vec<(String, String)> {
    let mut p = vec![
        ("response_type", "code"),
        (kind.client_id_param(), ID),
        ("redirect_uri", REDIRECT),
        ("state", "st4te"),
        ("scope", scope),
    ];
    if kind == Kind::X {
        p.push(("code_challenge", challenge));
        p.push(("code_challenge_method", "S256"));
    }
    if kind == Kind::Reddit {
        p.push(("duration", "permanent"));
    }
    p.into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn default_scope(kind: Kind) -> &'static str {
    match kind {
        Kind::X => "tweet.read tweet.write users.read offline.access media.write",
        Kind::Linkedin => "openid profile w_member_social",
        Kind::Facebook => {
            "pages_show_list,pages_manage_posts,pages_read_engagement,business_management"
        }
        Kind::Instagram => "instagram_business_basic,instagram_business_content_publish",
        Kind::Tiktok => "user.info.basic,video.publish,video.upload",
        Kind::Threads => "threads_basic,threads_content_publish",
        Kind::Youtube => {
            "openid email profile https://www.googleapis.com/auth/youtube.upload https://www.googleapis.com/auth/youtube.readonly"
        }
        Kind::GoogleBusiness => {
            "openid email profile https://www.googleapis.com/auth/business.manage"
        }
        Kind::Pinterest => "user_accounts:read,boards:read,pins:read,pins:write",
        Kind::Reddit => "identity submit read",
        Kind::Mastodon => "read:accounts write:statuses write:media",
    }
}

/// Every provider `dravo::providers` registers has a fake in the fakes' registry (and a
/// `Kind`), and every fake fakes a registered provider: a provider added to Dravo without a
/// fake fails here, not in some connect test that happens to name it.
#[test]
fn every_registered_provider_has_a_fake_and_every_fake_a_provider() {
    let registered: Vec<String> = dravo::providers::ids()
        .map(|p| p.as_str().to_owned())
        .collect();
    let faked = fake_provider::faked_ids();
    for id in &registered {
        assert!(
            faked.contains(&id.as_str()),
            "`{id}` is registered in dravo::providers but has no fake: add \
             tests/api/support/fake_provider/{id}.rs to the REGISTRY there"
        );
        assert!(
            Kind::from_name(id).is_some(),
            "no fake_provider::Kind for `{id}`"
        );
    }
    for id in &faked {
        assert!(
            registered.iter().any(|r| r == id),
            "the fake `{id}` fakes no provider dravo::providers registers"
        );
    }
    let mut kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    let mut faked = faked.clone();
    kinds.sort_unstable();
    faked.sort_unstable();
    assert_eq!(
        kinds, faked,
        "Kind::ALL and the fakes' REGISTRY list the same providers"
    );
}

/// The browser step: GET /authorize, answer the 302's Location.
async fn browse(fake: &FakeProvider, params: &[(String, String)]) -> reqwest::Response {
    let url = Url::parse_with_params(&fake.authorize_url(), params).unwrap();
    http().get(url).send().await.unwrap()
}

fn location(resp: &reqwest::Response) -> String {
    assert_eq!(resp.status(), 302, "authorize should redirect");
    resp.headers()["location"].to_str().unwrap().to_owned()
}

fn query_of(location: &str) -> HashMap<String, String> {
    Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// A fresh code for the default scopes.
async fn code(fake: &FakeProvider, challenge: &str) -> String {
    let resp = browse(
        fake,
        &authorize_params(fake.kind, default_scope(fake.kind), challenge),
    )
    .await;
    let q = query_of(&location(&resp));
    assert_eq!(q["state"], "st4te");
    q["code"].clone()
}

async fn status_json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

async fn post_form(url: &str, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> (u16, Value) {
    let mut req = http().post(url).form(form);
    if let Some((id, secret)) = basic {
        req = req.header(
            "authorization",
            format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
        );
    }
    status_json(req.send().await.unwrap()).await
}

async fn get(url: &str, bearer: Option<&str>, query: &[(&str, &str)]) -> (u16, Value) {
    let mut req = http().get(url).query(query);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    status_json(req.send().await.unwrap()).await
}

#[tokio::test]
async fn x_flow_pkce_basic_auth_and_refresh_rotation() {
    let fake = FakeProvider::start(Kind::X, ID, SECRET).await;
    let (verifier, challenge) = pkce();
    let token_url = fake.token_url();
    let exchange = |code: String, verifier: String, redirect: &'static str| {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code),
            ("redirect_uri", redirect.to_owned()),
            ("client_id", ID.to_owned()),
            ("code_verifier", verifier),
        ]
    };

    // Authorize refuses what x refuses.
    let mut no_pkce = authorize_params(Kind::X, default_scope(Kind::X), &challenge);
    no_pkce.retain(|(k, _)| !k.starts_with("code_challenge"));
    assert_eq!(browse(&fake, &no_pkce).await.status(), 400);
    let comma = authorize_params(Kind::X, "tweet.read,users.read", &challenge);
    assert_eq!(browse(&fake, &comma).await.status(), 400);
    let mut plain = authorize_params(Kind::X, "tweet.read", &challenge);
    plain.retain(|(k, _)| k != "code_challenge_method");
    plain.push(("code_challenge_method".into(), "plain".into()));
    assert_eq!(browse(&fake, &plain).await.status(), 400);

    // No Basic / wrong secret: 401 unauthorized_client (the code is not spent).
    let c1 = code(&fake, &challenge).await;
    let form = exchange(c1, verifier.clone(), REDIRECT);
    let form_refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut with_secret_in_body = form_refs.clone();
    with_secret_in_body.push(("client_secret", SECRET));
    let (s, b) = post_form(&token_url, None, &with_secret_in_body).await;
    assert_eq!((s, b["error"].as_str()), (401, Some("unauthorized_client")));
    let (s, _) = post_form(&token_url, Some((ID, "wrong")), &form_refs).await;
    assert_eq!(s, 401);

    // Wrong PKCE verifier.
    let wrong_verifier = "w".repeat(43);
    let mut bad = form_refs.clone();
    bad[4] = ("code_verifier", &wrong_verifier);
    let (s, b) = post_form(&token_url, Some((ID, SECRET)), &bad).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_request")));
    assert_eq!(
        b["error_description"],
        "Value passed for the authorization code was invalid."
    );

    // Mismatched redirect_uri.
    let c2 = code(&fake, &challenge).await;
    let form = exchange(c2, verifier.clone(), "http://127.0.0.1:9/elsewhere");
    let refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, _) = post_form(&token_url, Some((ID, SECRET)), &refs).await;
    assert_eq!(s, 400);

    // The real exchange, then the same code again.
    let c3 = code(&fake, &challenge).await;
    let form = exchange(c3, verifier.clone(), REDIRECT);
    let refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, tok) = post_form(&token_url, Some((ID, SECRET)), &refs).await;
    assert_eq!(s, 200, "{tok}");
    assert_eq!(tok["token_type"], "bearer");
    assert_eq!(tok["expires_in"], 7200);
    assert_eq!(tok["scope"], default_scope(Kind::X));
    let access = tok["access_token"].as_str().unwrap();
    let refresh = tok["refresh_token"].as_str().unwrap().to_owned();
    let (s, _) = post_form(&token_url, Some((ID, SECRET)), &refs).await;
    assert_eq!(s, 400, "a code works once");

    // JSON instead of a form is refused.
    let resp = http()
        .post(&token_url)
        .basic_auth(ID, Some(SECRET))
        .json(&serde_json::json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // Who am I.
    let (s, me) = get(&fake.url("/2/users/me"), Some(access), &[]).await;
    assert_eq!(s, 200);
    assert_eq!(me["data"]["id"], "1234567890");
    assert_eq!(me["data"]["username"], "fakeuser");
    assert_eq!(me["data"]["name"], "Fake User");
    let (s, _) = get(&fake.url("/2/users/me"), Some("made-up"), &[]).await;
    assert_eq!(s, 401);

    // Refresh rotates; the old refresh token is then invalid_grant; Basic is required.
    let (s, _) = post_form(
        &token_url,
        None,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(s, 401);
    let (s, new) = post_form(
        &token_url,
        Some((ID, SECRET)),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", ID),
        ],
    )
    .await;
    assert_eq!(s, 200);
    assert_ne!(new["refresh_token"].as_str().unwrap(), refresh);
    let (s, b) = post_form(
        &token_url,
        Some((ID, SECRET)),
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));

    // No offline.access: no refresh token.
    let resp = browse(
        &fake,
        &authorize_params(Kind::X, "tweet.read users.read", &challenge),
    )
    .await;
    let c4 = query_of(&location(&resp))["code"].clone();
    let form = exchange(c4, verifier, REDIRECT);
    let refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, tok) = post_form(&token_url, Some((ID, SECRET)), &refs).await;
    assert_eq!(s, 200);
    assert!(tok.get("refresh_token").is_none());

    assert_eq!(fake.token_requests(), 11);
    assert_eq!(fake.issued_access_tokens().len(), 3);
}

#[tokio::test]
async fn linkedin_flow_credentials_in_body() {
    let fake = FakeProvider::start(Kind::Linkedin, ID, SECRET).await;
    let token_url = fake.token_url();
    let comma = authorize_params(Kind::Linkedin, "openid,profile", "");
    assert_eq!(browse(&fake, &comma).await.status(), 400);

    let c = code(&fake, "").await;
    let base = [
        ("grant_type", "authorization_code"),
        ("code", c.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    // Basic only: refused.
    let (s, b) = post_form(&token_url, Some((ID, SECRET)), &base).await;
    assert_eq!((s, b["error"].as_str()), (401, Some("invalid_client")));
    // Wrong secret.
    let mut wrong = base.to_vec();
    wrong.extend([("client_id", ID), ("client_secret", "nope")]);
    let (s, _) = post_form(&token_url, None, &wrong).await;
    assert_eq!(s, 401);
    // Right.
    let mut right = base.to_vec();
    right.extend([("client_id", ID), ("client_secret", SECRET)]);
    let (s, tok) = post_form(&token_url, None, &right).await;
    assert_eq!(s, 200, "{tok}");
    assert_eq!(tok["expires_in"], 5_184_000);
    assert_eq!(tok["scope"], "openid,profile,w_member_social");
    assert!(tok["refresh_token_expires_in"].as_u64().unwrap() > 0);
    let access = tok["access_token"].as_str().unwrap();
    let refresh = tok["refresh_token"].as_str().unwrap();
    let (s, b) = post_form(&token_url, None, &right).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));

    // Mismatched redirect.
    let c2 = code(&fake, "").await;
    let (s, _) = post_form(
        &token_url,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &c2),
            ("redirect_uri", "http://127.0.0.1:9/other"),
            ("client_id", ID),
            ("client_secret", SECRET),
        ],
    )
    .await;
    assert_eq!(s, 400);

    let (s, me) = get(&fake.url("/v2/userinfo"), Some(access), &[]).await;
    assert_eq!(s, 200);
    assert_eq!(me["sub"], fake.account_id());
    assert_eq!(me["name"], "Fake User");
    assert!(me["picture"].is_string());

    // Refresh does not rotate: the same refresh token works twice.
    for _ in 0..2 {
        let (s, new) = post_form(
            &token_url,
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_id", ID),
                ("client_secret", SECRET),
            ],
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(new["refresh_token"], refresh);
    }
}

#[tokio::test]
async fn facebook_flow_short_then_long_lived() {
    let fake = FakeProvider::start(Kind::Facebook, ID, SECRET).await;
    let token_url = fake.token_url();
    let spaced = authorize_params(Kind::Facebook, "pages_show_list pages_manage_posts", "");
    assert_eq!(browse(&fake, &spaced).await.status(), 400);
    let mut pkce = authorize_params(Kind::Facebook, default_scope(Kind::Facebook), "");
    pkce.push(("code_challenge".into(), pkce_challenge()));
    assert_eq!(browse(&fake, &pkce).await.status(), 400);

    let c = code(&fake, "").await;
    let (s, b) = get(
        &token_url,
        None,
        &[
            ("client_id", ID),
            ("redirect_uri", REDIRECT),
            ("client_secret", "wrong"),
            ("code", &c),
        ],
    )
    .await;
    assert_eq!(
        (s, b["error"]["type"].as_str()),
        (400, Some("OAuthException"))
    );
    let query = [
        ("client_id", ID),
        ("redirect_uri", REDIRECT),
        ("client_secret", SECRET),
        ("code", c.as_str()),
    ];
    let (s, short) = get(&token_url, None, &query).await;
    assert_eq!(s, 200, "{short}");
    assert_eq!(short["expires_in"], 5183);
    let short = short["access_token"].as_str().unwrap().to_owned();
    let (s, _) = get(&token_url, None, &query).await;
    assert_eq!(s, 400, "a code works once");

    // The short-lived token is not good enough for /me.
    let me_url = fake.url("/v25.0/me");
    let (s, b) = get(&me_url, Some(&short), &[("fields", "id,name")]).await;
    assert_eq!((s, b["error"]["code"].as_u64()), (400, Some(190)));

    let exchange = |t: String| {
        [
            ("grant_type", "fb_exchange_token".to_owned()),
            ("client_id", ID.to_owned()),
            ("client_secret", SECRET.to_owned()),
            ("fb_exchange_token", t),
        ]
    };
    let ex = exchange(short.clone());
    let ex_refs: Vec<(&str, &str)> = ex.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, long) = get(&token_url, None, &ex_refs).await;
    assert_eq!(s, 200);
    assert_eq!(long["expires_in"], 5_184_000);
    let long = long["access_token"].as_str().unwrap().to_owned();
    let (s, _) = get(&token_url, None, &ex_refs).await;
    assert_eq!(s, 400, "a short token is exchanged once");

    let (s, me) = get(&me_url, Some(&long), &[("fields", "id,name")]).await;
    assert_eq!(s, 200);
    assert_eq!(me["id"], fake.account_id());
    assert_eq!(me["name"], "Fake User");
    let (s, me) = get(
        &me_url,
        None,
        &[("fields", "id,name"), ("access_token", &long)],
    )
    .await;
    assert_eq!((s, me["name"].as_str()), (200, Some("Fake User")));
    assert_eq!(fake.token_requests(), 5);
}

fn pkce_challenge() -> String {
    pkce().1
}

#[tokio::test]
async fn instagram_flow_hash_suffix_big_user_id_and_long_lived() {
    let fake = FakeProvider::start(Kind::Instagram, ID, SECRET).await;
    let token_url = fake.token_url();
    let params = authorize_params(Kind::Instagram, default_scope(Kind::Instagram), "");
    let resp = browse(&fake, &params).await;
    let loc = location(&resp);
    assert!(loc.ends_with("#_"), "{loc}");
    assert!(loc.contains("?state=st4te&code="), "{loc}");
    let c = query_of(&loc)["code"].clone();
    assert!(!c.contains('#'));

    let form = |code: String| {
        [
            ("client_id", ID.to_owned()),
            ("client_secret", SECRET.to_owned()),
            ("grant_type", "authorization_code".to_owned()),
            ("redirect_uri", REDIRECT.to_owned()),
            ("code", code),
        ]
    };
    let with_hash = form(format!("{c}#_"));
    let refs: Vec<(&str, &str)> = with_hash.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, b) = post_form(&token_url, None, &refs).await;
    assert_eq!(s, 400);
    assert_eq!(b["error_type"], "OAuthException");
    assert_eq!(b["error_message"], "Invalid authorization code");

    let mut wrong_secret = form(c.clone());
    wrong_secret[1].1 = "nope".into();
    let refs: Vec<(&str, &str)> = wrong_secret.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(post_form(&token_url, None, &refs).await.0, 400);

    let good = form(c);
    let refs: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let resp = http().post(&token_url).form(&refs).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let raw = resp.text().await.unwrap();
    assert!(
        raw.contains(&format!("\"user_id\":{DEFAULT_INSTAGRAM_USER_ID}")),
        "user_id must be a bare JSON number: {raw}"
    );
    let short: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        short["permissions"],
        "instagram_business_basic,instagram_business_content_publish"
    );
    let short = short["access_token"].as_str().unwrap().to_owned();
    assert_eq!(post_form(&token_url, None, &refs).await.0, 400, "once");

    let me_url = fake.url("/me");
    let fields = ("fields", "user_id,username,name");
    let (s, _) = get(&me_url, None, &[fields, ("access_token", &short)]).await;
    assert_eq!(s, 400, "short-lived token refused at /me");

    let (s, long) = get(
        &fake.url("/access_token"),
        None,
        &[
            ("grant_type", "ig_exchange_token"),
            ("client_secret", SECRET),
            ("access_token", &short),
        ],
    )
    .await;
    assert_eq!(s, 200, "{long}");
    assert_eq!(long["expires_in"], 5_184_000);
    let long = long["access_token"].as_str().unwrap().to_owned();

    let resp = http()
        .get(&me_url)
        .query(&[fields, ("access_token", &long)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let raw = resp.text().await.unwrap();
    assert!(
        raw.contains(&format!("\"user_id\":{DEFAULT_INSTAGRAM_USER_ID}")),
        "{raw}"
    );
    let me: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(me["username"], "fakeuser");
    assert_eq!(me["name"], "Fake User");
    assert_ne!(me["id"].as_str().unwrap(), DEFAULT_INSTAGRAM_USER_ID);

    let (s, refreshed) = get(
        &fake.url("/refresh_access_token"),
        None,
        &[("grant_type", "ig_refresh_token"), ("access_token", &long)],
    )
    .await;
    assert_eq!(s, 200);
    assert_ne!(refreshed["access_token"], long.as_str());

    // Faults: the literal "#_" inside the code parameter; the {"data":[…]} wrapper.
    fake.set_fault(Fault::CodeWithHashSuffixInQuery);
    let resp = browse(&fake, &params).await;
    let loc = location(&resp);
    assert!(loc.contains("%23_"), "{loc}");
    let c = query_of(&loc)["code"].clone();
    assert!(c.ends_with("#_"));
    fake.set_fault(Fault::InstagramDataWrapper);
    let good = form(c.trim_end_matches("#_").to_owned());
    let refs: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, wrapped) = post_form(&token_url, None, &refs).await;
    assert_eq!(s, 200);
    assert!(wrapped["data"][0]["access_token"].is_string());
}

#[tokio::test]
async fn tiktok_flow_client_key_and_rotation() {
    let fake = FakeProvider::start(Kind::Tiktok, ID, SECRET).await;
    let token_url = fake.token_url();
    let mut wrong_name = authorize_params(Kind::Tiktok, default_scope(Kind::Tiktok), "");
    wrong_name[1].0 = "client_id".into();
    assert_eq!(browse(&fake, &wrong_name).await.status(), 400);

    let c = code(&fake, "").await;
    let mut form = vec![
        ("client_id", ID),
        ("client_secret", SECRET),
        ("code", c.as_str()),
        ("grant_type", "authorization_code"),
        ("redirect_uri", REDIRECT),
    ];
    let (s, b) = post_form(&token_url, None, &form).await;
    assert_eq!(s, 400);
    assert!(b["log_id"].is_string());
    form[0].0 = "client_key";
    form[1].1 = "nope";
    assert_eq!(post_form(&token_url, None, &form).await.0, 401);
    form[1].1 = SECRET;
    let (s, tok) = post_form(&token_url, None, &form).await;
    assert_eq!(s, 200, "{tok}");
    assert_eq!(tok["scope"], "user.info.basic,video.publish");
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["open_id"], fake.account_id());
    let access = tok["access_token"].as_str().unwrap().to_owned();
    let refresh = tok["refresh_token"].as_str().unwrap().to_owned();
    let (s, b) = post_form(&token_url, None, &form).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));

    let (s, me) = get(
        &fake.url("/v2/user/info/"),
        Some(&access),
        &[("fields", "open_id,avatar_url,display_name,username")],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(me["error"]["code"], "ok");
    assert_eq!(me["data"]["user"]["open_id"], fake.account_id());
    assert_eq!(me["data"]["user"]["username"], "fakeuser");

    let refresh_form = |rt: &str| {
        vec![
            ("client_key", ID.to_owned()),
            ("client_secret", SECRET.to_owned()),
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", rt.to_owned()),
        ]
    };
    let f = refresh_form(&refresh);
    let refs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, new) = post_form(&token_url, None, &refs).await;
    assert_eq!(s, 200);
    assert_ne!(new["refresh_token"].as_str().unwrap(), refresh);
    let (s, b) = post_form(&token_url, None, &refs).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));

    // Errors with HTTP 200.
    fake.set_fault(Fault::TokenErrorWith200);
    let f = refresh_form(new["refresh_token"].as_str().unwrap());
    let refs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, b) = post_form(&token_url, None, &refs).await;
    assert_eq!((s, b["error"].as_str()), (200, Some("invalid_grant")));
    assert!(b["log_id"].is_string());
}

#[tokio::test]
async fn faults_and_denied_consent() {
    let fake = FakeProvider::start(Kind::X, ID, SECRET).await;
    let (_, challenge) = pkce();
    let url = fake.token_url();
    let form = [("grant_type", "refresh_token"), ("refresh_token", "x")];

    fake.set_fault(Fault::TokenStatus(503));
    let (s, b) = post_form(&url, Some((ID, SECRET)), &form).await;
    assert_eq!((s, b["error"].as_str()), (503, Some("server_error")));

    fake.set_fault(Fault::TokenMalformedJson);
    let resp = http().post(&url).form(&form).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "{not json");

    fake.set_fault(Fault::TokenDelay(Duration::from_millis(300)));
    let started = Instant::now();
    let (s, _) = post_form(&url, Some((ID, SECRET)), &form).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        s, 400,
        "after the delay it answers normally (unknown refresh token)"
    );

    fake.set_fault(Fault::MeStatus(401));
    let (s, b) = get(&fake.url("/2/users/me"), Some("anything"), &[]).await;
    assert_eq!((s, b["status"].as_u64()), (401, Some(401)));
    assert_eq!(fake.token_requests(), 3);

    fake.set_fault(Fault::DenyConsent);
    let resp = browse(&fake, &authorize_params(Kind::X, "tweet.read", &challenge)).await;
    let q = query_of(&location(&resp));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st4te");
    assert!(!q.contains_key("code"));

    for (kind, error) in [
        (Kind::Linkedin, "user_cancelled_authorize"),
        (Kind::Facebook, "access_denied"),
    ] {
        let fake = FakeProvider::start(kind, ID, SECRET).await;
        fake.set_fault(Fault::DenyConsent);
        let resp = browse(&fake, &authorize_params(kind, default_scope(kind), "")).await;
        let q = query_of(&location(&resp));
        assert_eq!(q["error"], error);
        assert!(q.contains_key("error_description"));
        if kind == Kind::Facebook {
            assert_eq!(q["error_reason"], "user_denied");
        }
    }

    // The config triple and the by-name constructor.
    let named = FakeProvider::start_named("instagram", ID, SECRET).await;
    let (authorize, token, api) = named.config_urls();
    assert_eq!(authorize, format!("{}/authorize", named.base_url));
    assert_eq!(token, format!("{}/token", named.base_url));
    assert_eq!(api, named.base_url);
}

#[tokio::test]
async fn pinterest_flow_basic_auth_only_and_continuous_refresh() {
    let fake = FakeProvider::start(Kind::Pinterest, ID, SECRET).await;
    let token_url = fake.token_url();
    let c = code(&fake, "").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", c.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    // Credentials in the body are not Pinterest's way; a wrong secret is code 2.
    let mut in_body = form.to_vec();
    in_body.extend([("client_id", ID), ("client_secret", SECRET)]);
    assert_eq!(post_form(&token_url, None, &in_body).await.0, 401);
    let (s, b) = post_form(&token_url, Some((ID, "nope")), &form).await;
    assert_eq!((s, b["code"].as_i64()), (401, Some(2)), "{b}");
    let (s, tok) = post_form(&token_url, Some((ID, SECRET)), &form).await;
    assert_eq!(s, 200, "{tok}");
    assert_eq!(tok["scope"], default_scope(Kind::Pinterest));
    assert_eq!(tok["expires_in"], 2_592_000);
    // A code works once.
    let (s, b) = post_form(&token_url, Some((ID, SECRET)), &form).await;
    assert_eq!((s, b["code"].as_i64()), (400, Some(1)), "{b}");

    let access = tok["access_token"].as_str().unwrap();
    let (s, me) = get(&fake.url("/v5/user_account"), Some(access), &[]).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["id"], fake.account_id());
    assert_eq!(me["username"], "fakeuser");

    let refresh = tok["refresh_token"].as_str().unwrap();
    let again = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let (s, new) = post_form(&token_url, Some((ID, SECRET)), &again).await;
    assert_eq!(s, 200, "{new}");
    assert_ne!(new["refresh_token"].as_str().unwrap(), refresh);
    // The refresh token used is spent.
    let (s, b) = post_form(&token_url, Some((ID, SECRET)), &again).await;
    assert_eq!(
        (s, b["message"].as_str()),
        (400, Some("Invalid refresh token."))
    );
}

#[tokio::test]
async fn reddit_refuses_calls_without_a_descriptive_user_agent_and_keeps_its_refresh_token() {
    let fake = FakeProvider::start(Kind::Reddit, ID, SECRET).await;
    let token_url = fake.token_url();
    // Without duration=permanent there is no consent.
    let mut temporary = authorize_params(Kind::Reddit, default_scope(Kind::Reddit), "");
    temporary.retain(|(k, _)| k != "duration");
    assert_eq!(browse(&fake, &temporary).await.status(), 400);

    let c = code(&fake, "").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", c.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let basic = format!("Basic {}", STANDARD.encode(format!("{ID}:{SECRET}")));
    let post = |agent: Option<&'static str>, form: Vec<(&'static str, String)>| {
        let mut req = http()
            .post(&token_url)
            .header("authorization", basic.clone())
            .form(&form);
        if let Some(agent) = agent {
            req = req.header("user-agent", agent);
        }
        async move { status_json(req.send().await.unwrap()).await }
    };
    let owned = |f: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        f.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
    };
    // No user agent, or a generic one: refused before the code is even looked at.
    assert_eq!(post(None, owned(&form)).await.0, 403);
    assert_eq!(post(Some("dravo/0.1.0"), owned(&form)).await.0, 429);
    assert_eq!(post(Some("reqwest/0.13"), owned(&form)).await.0, 429);
    const AGENT: &str = "web:com.example.test:1.0 (by /u/tester)";
    let (s, tok) = post(Some(AGENT), owned(&form)).await;
    assert_eq!(s, 200, "{tok}");
    assert_eq!(tok["scope"], "identity submit read");
    let refresh = tok["refresh_token"].as_str().unwrap().to_owned();

    let access = tok["access_token"].as_str().unwrap();
    let me = |agent: Option<&'static str>| {
        let mut req = http().get(fake.url("/api/v1/me")).bearer_auth(access);
        if let Some(agent) = agent {
            req = req.header("user-agent", agent);
        }
        async move { status_json(req.send().await.unwrap()).await }
    };
    assert_eq!(me(None).await.0, 403);
    let (s, body) = me(Some(AGENT)).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["id"], fake.account_id());
    assert_eq!(body["name"], "fakeuser");

    // The refresh token does not rotate: it works again, and answers carry none.
    let again = owned(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]);
    for _ in 0..2 {
        let (s, b) = post(Some(AGENT), again.clone()).await;
        assert_eq!(s, 200, "{b}");
        assert!(b.get("refresh_token").is_none(), "{b}");
    }
    assert!(fake.refresh_token_valid(&refresh));
}
