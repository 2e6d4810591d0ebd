//! What each sealed value is bound to: its kind and the row it belongs to, given to the AEAD
//! as associated data, so a value copied onto another row or into another column does not
//! open. Every writer, reader, key rotation and backup check takes its context from here.

use crate::domain::{AccountId, Owner, Provider};

/// The kind of an account's sealed access token.
pub const ACCESS: &str = "account.access_token";
/// The kind of an account's sealed refresh token.
pub const REFRESH: &str = "account.refresh_token";
/// The kind of a pending connection's sealed tokens.
const PENDING: &str = "pending.connection";

/// An OAuth app's client secret.
pub fn secret_context<'a>(id: &'a str, owner: &'a str, provider: Provider) -> [&'a [u8]; 4] {
    [
        b"oauth_app.client_secret",
        id.as_bytes(),
        owner.as_bytes(),
        provider.as_str().as_bytes(),
    ]
}

/// An account's token of `kind` (`ACCESS` or `REFRESH`). Public for tools that write account
/// rows through the store (the benches' seeders).
pub fn token_context<'a>(
    kind: &'static str,
    id: &'a str,
    owner: &'a str,
    provider: Provider,
    provider_account_id: &'a str,
) -> [&'a [u8]; 5] {
    [
        kind.as_bytes(),
        id.as_bytes(),
        owner.as_bytes(),
        provider.as_str().as_bytes(),
        provider_account_id.as_bytes(),
    ]
}

/// The client secret a server gave an app registered on it (a Mastodon instance's).
pub fn registration_context<'a>(
    id: &'a str,
    owner: &'a str,
    provider: Provider,
    server: &'a str,
) -> [&'a [u8]; 5] {
    [
        b"instance_registration.client_secret",
        id.as_bytes(),
        owner.as_bytes(),
        provider.as_str().as_bytes(),
        server.as_bytes(),
    ]
}

/// A connection waiting for its confirmation.
pub fn pending_context<'a>(id: &'a str, owner: &'a str, provider: Provider) -> [&'a [u8]; 4] {
    [
        PENDING.as_bytes(),
        id.as_bytes(),
        owner.as_bytes(),
        provider.as_str().as_bytes(),
    ]
}

/// The list a cursor continues: it opens only there.
#[derive(Clone, Copy)]
pub enum Cursors<'a> {
    Accounts,
    Events(&'a AccountId),
}

/// A list cursor, sealed to its tenant and list.
pub fn cursor_context<'a>(list: Cursors<'a>, owner: &'a Owner) -> Vec<&'a [u8]> {
    match list {
        Cursors::Accounts => vec![b"cursor", b"accounts", owner.as_str().as_bytes()],
        Cursors::Events(id) => vec![
            b"cursor",
            b"events",
            owner.as_str().as_bytes(),
            id.as_str().as_bytes(),
        ],
    }
}
