//! Micro benchmarks of the pure work behind every request: `cargo bench --bench micro`.
//!
//! Each one calls the library's own code (no copies), with inputs of realistic size:
//!
//! - `seal/*`: sealing and opening an account's access token (AES-256-SIV, the row's
//!   associated data), as a connect stores it and an access-token request opens it.
//! - `state/*`: sealing and opening an OAuth `state` (what `start` and the callback do).
//! - `jwt/*`: verifying a dashboard bearer token (HS256). `remembered` is the usual case (the
//!   same token again: the per-thread memo answers); `first_sight` cycles through 4096
//!   distinct tokens, so every call checks the signature and claims afresh.
//! - `provider/*`: building X's consent-screen URL; parsing X's token response from the
//!   bytes the provider sends (JSON into the common token set).
//! - `lifecycle/*`: the refresh decision (`decide`) for an access-token request, with a fresh
//!   token (hand it out) and with one about to expire (renew first).
//!
//! Criterion prints a time per call for each (see benches/README.md for recorded figures).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use dravo::auth::Authenticator;
use dravo::clock::SystemClock;
use dravo::config::Config;
use dravo::crypto::state::{self, StateClaims};
use dravo::crypto::{KeyId, KeyRing, Keys, MasterKey};
use dravo::domain::{AccountId, AccountKind, AccountStatus, AppId, Owner, Provider, Timestamp};
use dravo::providers::{self, AuthorizeParams, EndpointOverrides};
use dravo::service::{ACCESS_TOKEN_SEAL, Decision, Policy, Trigger, decide, token_context};
use dravo::store::AccountRecord;

/// An access token of the size providers hand out (X's are ~90 characters, Meta's long-lived
/// ones ~200): 160 characters.
fn access_token() -> String {
    "EAAGm0PX4ZCpsBAKZBqTk3uZAZBgZDZD".repeat(5)
}

fn x() -> Provider {
    "x".parse().expect("x is registered")
}

fn seal(c: &mut Criterion) {
    let keys = Keys::derive(KeyId::FIRST, &MasterKey::generate());
    let sealer = keys.sealer();
    let token = access_token();
    let (id, owner, pid) = ("acc_abcdefghijklmnopqrst", "tenant-1", "1234567890");
    let context = token_context(ACCESS_TOKEN_SEAL, id, owner, x(), pid);
    c.bench_function("seal/seal_access_token", |b| {
        b.iter(|| sealer.seal(black_box(&context), black_box(token.as_bytes())))
    });
    let sealed = sealer.seal(&context, token.as_bytes());
    c.bench_function("seal/open_access_token", |b| {
        b.iter(|| {
            sealer
                .open(black_box(&context), black_box(&sealed))
                .expect("opens")
        })
    });
}

fn oauth_state(c: &mut Criterion) {
    let keys = Keys::derive(KeyId::FIRST, &MasterKey::generate());
    let sealer = keys.state_sealer();
    let now = Timestamp::now_system();
    let claims = StateClaims::new(
        x(),
        "alice@example.com",
        Some("oa_abcdefghijklmnopqrst"),
        Some("https://dash.example.com/accounts/connected"),
        now,
    );
    c.bench_function("state/seal", |b| {
        b.iter(|| state::seal(sealer, black_box(&claims)))
    });
    let sealed = state::seal(sealer, &claims);
    c.bench_function("state/open", |b| {
        b.iter(|| state::open(sealer, black_box(&sealed), now).expect("opens"))
    });
}

fn jwt(c: &mut Criterion) {
    let keys = Keys::derive(KeyId::FIRST, &MasterKey::generate());
    let auth = Authenticator::from_config(
        &Config::default(),
        &KeyRing::single(keys),
        Arc::new(SystemClock),
    )
    .expect("HS256 with the derived secret");
    let token = auth.issue("tenant-1", 3600).expect("issues");
    c.bench_function("jwt/verify_remembered", |b| {
        b.iter(|| auth.verify(black_box(&token)).expect("valid"))
    });
    // More distinct tokens than twice the per-thread memo (1024), so none is remembered.
    let tokens: Vec<String> = (0..4096)
        .map(|i| auth.issue(&format!("tenant-{i}"), 3600).expect("issues"))
        .collect();
    let mut next = 0;
    c.bench_function("jwt/verify_first_sight", |b| {
        b.iter(|| {
            next = (next + 1) % tokens.len();
            auth.verify(black_box(&tokens[next])).expect("valid")
        })
    });
}

fn provider(c: &mut Criterion) {
    let x = providers::get(x());
    let endpoints = x.endpoints(&EndpointOverrides::default());
    let scopes: Vec<String> = x.default_scope_list().into_vec();
    let keys = Keys::derive(KeyId::FIRST, &MasterKey::generate());
    let claims = StateClaims::new(
        x.id(),
        "alice@example.com",
        Some("oa_abcdefghijklmnopqrst"),
        Some("https://dash.example.com/accounts/connected"),
        Timestamp::now_system(),
    );
    let state = state::seal(keys.state_sealer(), &claims);
    let challenge = state::pkce_challenge(&state::pkce_verifier(keys.state_key(), &claims.nonce));
    let params = AuthorizeParams {
        client_id: "bench-client-id-Zm9vYmFyYmF6cXV4",
        redirect_uri: "https://dravo.example.com/v1/oauth/x/callback",
        scopes: &scopes,
        state: &state,
        code_challenge: Some(&challenge),
    };
    c.bench_function("provider/x_authorize_url", |b| {
        b.iter(|| x.authorize_url(black_box(&endpoints), black_box(&params)))
    });

    let body = serde_json::to_vec(&serde_json::json!({
        "token_type": "bearer",
        "expires_in": 7200,
        "access_token": access_token(),
        "scope": scopes.join(" "),
        "refresh_token": "bWRjZ0x1c2VfcmVmcmVzaF90b2tlbl9mb3JfYmVuY2hfMTIzNDU2Nzg5MDoxOjE6cnQ6MQ",
    }))
    .expect("serializes");
    c.bench_function("provider/x_token_response_parse", |b| {
        b.iter(|| {
            let value: serde_json::Value = serde_json::from_slice(black_box(&body)).expect("JSON");
            x.read_tokens(&value).expect("a token set")
        })
    });
}

fn lifecycle(c: &mut Criterion) {
    let x = providers::get(x());
    let now = Timestamp::now_system();
    let policy = Policy::of(&dravo::config::RefreshConfig::default());
    let row = |expires_in: i64| AccountRecord {
        id: AccountId::parse("acc_abcdefghijklmnopqrst").unwrap(),
        owner: Owner::parse("owner", "tenant-1").unwrap(),
        provider: x.id(),
        oauth_app_id: Some(AppId::parse("oa_abcdefghijklmnopqrst").unwrap()),
        provider_account_id: "1234567890".into(),
        username: Some("fakeuser".into()),
        display_name: Some("Fake User".into()),
        scopes: x.default_scope_list().into_vec(),
        status: AccountStatus::Active,
        status_reason: None,
        access_token_sealed: vec![0; 200],
        refresh_token_sealed: Some(vec![0; 120]),
        expires_at: Some(now.plus_seconds(expires_in)),
        refresh_expires_at: None,
        reauth_by: None,
        token_issued_at: Some(now.plus_seconds(expires_in - 7200)),
        next_refresh_at: Some(now.plus_seconds(expires_in - 600)),
        refresh_failures: 0,
        warned_for: None,
        created_at: now.plus_seconds(-86_400),
        updated_at: now.plus_seconds(expires_in - 7200),
        kind: AccountKind::User,
        parent_id: None,
        tasks: None,
        token_version: 0,
        server: None,
    };
    let (fresh, expiring) = (row(3600), row(60));
    assert_eq!(
        decide(&fresh, x.renewal(), now, policy, Trigger::Request),
        Decision::UseStored
    );
    assert_eq!(
        decide(&expiring, x.renewal(), now, policy, Trigger::Request),
        Decision::Renew
    );
    c.bench_function("lifecycle/decide_fresh", |b| {
        b.iter(|| {
            decide(
                black_box(&fresh),
                x.renewal(),
                now,
                policy,
                Trigger::Request,
            )
        })
    });
    c.bench_function("lifecycle/decide_expiring", |b| {
        b.iter(|| {
            decide(
                black_box(&expiring),
                x.renewal(),
                now,
                policy,
                Trigger::Request,
            )
        })
    });
}

criterion_group!(benches, seal, oauth_state, jwt, provider, lifecycle);
criterion_main!(benches);
