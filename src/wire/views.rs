//! The JSON shapes both faces print: the API's response bodies, and the CLI's `--json`
//! output (which is exactly what the API would return).

use poem_openapi::Object;
use poem_openapi::types::Example;

use crate::domain::{AccessToken, Account, Deleted, Event, OAuthApp, WebhookEvent};
use crate::domain::{AccountKind, AppCheck, CheckResult, Provider, Timestamp};
use crate::wire::values::Checked;

/// The ids and the base URL the examples use: ids of the form the server generates, and the
/// public URL a fresh `dravo serve` has (the served spec swaps in the configured one).
pub const EXAMPLE_APP_ID: &str = "oa_2k7q4m5n6p7r2s3t4v5w";
pub const EXAMPLE_ACCOUNT_ID: &str = "acc_7d2kq4m5n6p7r2s3t4v5";

/// The default public URL (`server.bind`'s default), which the examples' URLs start with.
pub const EXAMPLE_PUBLIC_URL: &str = "http://127.0.0.1:8080";

/// `EXAMPLE_PUBLIC_URL` as a `String`.
pub fn example_public_url() -> String {
    EXAMPLE_PUBLIC_URL.to_owned()
}

/// 2026-01-01T00:00:00Z, the examples' creation time.
pub(crate) const EXAMPLE_TIME: Timestamp = Timestamp::from_unix(1_767_225_600);

fn example_provider() -> Checked<Provider> {
    Checked("x".parse().expect("x is registered"))
}

/// A BYOK OAuth app. The client secret is never returned.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(rename = "OAuthApp", example)]
pub struct OAuthAppView {
    /// `oa_` and 20 lowercase base32 characters.
    #[oai(validator(pattern = r"^oa_[a-z2-7]{20}$"))]
    pub id: String,
    pub provider: Checked<Provider>,
    pub name: String,
    /// The app's client id at its provider; null for a provider where Dravo registers the app
    /// on each server users connect from (mastodon: see `servers`).
    #[oai(nullable)]
    pub client_id: Option<String>,
    /// The callback URL to register at the provider.
    pub redirect_uri: String,
    /// The scopes Dravo will request.
    pub scopes: Vec<String>,
    /// When the app was stored (RFC 3339, UTC).
    pub created_at: Checked<Timestamp>,
    /// Why the provider last refused the app's credentials (its error code and description),
    /// so they can be fixed with a new secret; null while they work, and cleared when the
    /// secret changes.
    #[oai(nullable)]
    pub credentials_error: Option<String>,
    /// When the app's name, scopes or secret last changed (RFC 3339, UTC); its creation time
    /// until then.
    pub updated_at: Checked<Timestamp>,
    /// The last check of the app's configuration (`POST /v1/oauth-apps/{id}/check`, or a
    /// refresh in which the provider refused its credentials); null when it has not been
    /// checked since it was created or its scopes or secret changed.
    #[oai(nullable)]
    pub last_check: Option<AppCheckView>,
    /// What looks wrong with the app's scopes, one sentence each: a scope the provider does
    /// not document (with the one it most likely meant), or one Dravo needs to identify
    /// accounts that is missing. The app is stored as given; a connect will likely fail until
    /// the scopes are fixed. Empty when nothing looks wrong.
    pub warnings: Vec<String>,
    /// The `User-Agent` Dravo sends on the app's calls to its provider; null when the app
    /// sets none (the provider's default: for Reddit `web:dravo:<version> (by Dravo,
    /// self-hosted)`, for the others `dravo/<version>`).
    #[oai(nullable)]
    pub user_agent: Option<String>,
    /// mastodon: the website shown on the instances Dravo registers the app on; null when
    /// none (and for the other providers).
    #[oai(nullable)]
    pub website: Option<String>,
    /// mastodon: the instances Dravo registered the app on, oldest first (each at the first
    /// connect there); empty for the other providers.
    pub servers: Vec<RegisteredServerView>,
}

/// A server Dravo registered an app on (a Mastodon instance). Its client secret is never
/// returned.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(rename = "RegisteredServer")]
pub struct RegisteredServerView {
    /// The server's origin, `https://host[:port]`.
    pub server: String,
    /// The client id the server gave the app.
    pub client_id: String,
    /// The scopes the app was registered with (and which connects there request).
    pub scopes: Vec<String>,
    /// Whether the server takes PKCE (Mastodon 4.3+), which its connects then use.
    pub pkce: bool,
    /// When Dravo registered the app there (RFC 3339, UTC).
    pub registered_at: Checked<Timestamp>,
}

impl From<OAuthApp> for OAuthAppView {
    fn from(app: OAuthApp) -> Self {
        OAuthAppView {
            id: app.id,
            provider: Checked(app.provider),
            name: app.name,
            client_id: app.client_id,
            redirect_uri: app.redirect_uri,
            scopes: app.scopes,
            created_at: Checked(app.created_at),
            credentials_error: app.credentials_error,
            updated_at: Checked(app.updated_at),
            last_check: app.last_check.map(Into::into),
            warnings: app.warnings,
            user_agent: app.user_agent,
            website: app.website,
            servers: app
                .servers
                .into_iter()
                .map(|s| RegisteredServerView {
                    server: s.server,
                    client_id: s.client_id,
                    scopes: s.scopes,
                    pkce: s.pkce,
                    registered_at: Checked(s.registered_at),
                })
                .collect(),
        }
    }
}

impl Example for OAuthAppView {
    fn example() -> Self {
        OAuthAppView {
            id: EXAMPLE_APP_ID.into(),
            provider: example_provider(),
            name: "My X App".into(),
            client_id: Some("…".into()),
            redirect_uri: format!("{}/v1/oauth/x/callback", example_public_url()),
            scopes: ["tweet.write", "media.write", "users.read", "offline.access"]
                .map(String::from)
                .to_vec(),
            created_at: Checked(EXAMPLE_TIME),
            credentials_error: None,
            updated_at: Checked(EXAMPLE_TIME),
            last_check: None,
            // The seed's example scopes leave out `tweet.read`, which `GET /2/users/me` needs.
            warnings: vec![
                "`tweet.read` is missing: Dravo needs it to identify the connected account".into(),
            ],
            user_agent: None,
            website: None,
            servers: Vec::new(),
        }
    }
}

/// What one check of an OAuth app's configuration found.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(rename = "OAuthAppCheckResult")]
pub struct CheckResultView {
    /// `client_credentials` (the provider proves the client id and secret, where it offers a
    /// server-side grant for it), `redirect_uri` (the one Dravo sends, by the provider's
    /// rules), `scopes` (each one known to the provider, and the ones Dravo needs to identify
    /// an account included) or `public_url_reachable` (Dravo's `/healthz` answers, asked from
    /// the checking machine through `server.public_url`).
    pub name: String,
    /// `ok`; `failed` (wrong: connects will fail; the provider's own message where it
    /// answered); `unknown` (cannot be told from the server side; the message says why); or
    /// `warning` (only `public_url_reachable`: may be harmless).
    #[oai(validator(pattern = r"^(ok|failed|unknown|warning)$"))]
    pub status: String,
    /// One sentence: what was found, and for a problem what to change. Never a secret.
    pub message: String,
}

impl From<CheckResult> for CheckResultView {
    fn from(c: CheckResult) -> Self {
        CheckResultView {
            name: c.name,
            status: c.status.as_str().to_owned(),
            message: c.message,
        }
    }
}

/// The check of an OAuth app's configuration: the answer of
/// `POST /v1/oauth-apps/{id}/check`, and the app's `last_check`.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(rename = "OAuthAppCheck", example)]
pub struct AppCheckView {
    /// When it was checked (RFC 3339, UTC).
    pub checked_at: Checked<Timestamp>,
    /// The worst status among `checks`: `failed`, else `warning`, else `unknown`, else `ok`.
    #[oai(validator(pattern = r"^(ok|failed|unknown|warning)$"))]
    pub outcome: String,
    /// `check`: every check ran (the check endpoint or `dravo oauth-apps check`); `refresh`:
    /// the provider refused the app's credentials during a refresh, so `checks` holds only
    /// `client_credentials`.
    #[oai(validator(pattern = r"^(check|refresh)$"))]
    pub source: String,
    /// Each check, in the order above.
    pub checks: Vec<CheckResultView>,
}

impl From<AppCheck> for AppCheckView {
    fn from(c: AppCheck) -> Self {
        AppCheckView {
            checked_at: Checked(c.checked_at),
            outcome: c.outcome().as_str().to_owned(),
            source: c.source.as_str().to_owned(),
            checks: c.checks.into_iter().map(Into::into).collect(),
        }
    }
}

impl Example for AppCheckView {
    /// What checking an X app with the default scopes answers on a fresh `dravo serve`
    /// (`tests/api/app_checks.rs` compares the two).
    fn example() -> Self {
        let result = |name: &str, status: &str, message: String| CheckResultView {
            name: name.into(),
            status: status.into(),
            message,
        };
        let public_url = example_public_url();
        AppCheckView {
            checked_at: Checked(EXAMPLE_TIME),
            outcome: "unknown".into(),
            source: "check".into(),
            checks: vec![
                result(
                    "client_credentials",
                    "unknown",
                    "X has no server-side grant for an OAuth 2.0 client id and secret (its \
                     app-only token is issued to the API key and secret, which are other \
                     credentials): a wrong secret shows at the first connect"
                        .into(),
                ),
                result(
                    "redirect_uri",
                    "ok",
                    format!(
                        "register exactly `{public_url}/v1/oauth/x/callback` as a redirect URI \
                         at x (server.public_url is not set, so it names the listen address: \
                         only a browser on this machine can follow it)"
                    ),
                ),
                result(
                    "scopes",
                    "ok",
                    "all 5 scopes are ones x documents, including `tweet.read`, `users.read`, \
                     which Dravo needs to identify the connected account"
                        .into(),
                ),
                result(
                    "public_url_reachable",
                    "ok",
                    format!(
                        "GET {public_url}/healthz from this machine answered as Dravo's health check"
                    ),
                ),
            ],
        }
    }
}

/// A connected account. Never a token.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(rename = "Account", example)]
pub struct AccountView {
    /// `acc_` and 20 lowercase base32 characters.
    #[oai(validator(pattern = r"^acc_[a-z2-7]{20}$"))]
    pub id: String,
    pub provider: Checked<Provider>,
    /// The BYOK app it was connected with; null for the provider's default app.
    #[oai(nullable, validator(pattern = r"^oa_[a-z2-7]{20}$"))]
    pub oauth_app_id: Option<String>,
    /// The account's id at the provider.
    pub provider_account_id: String,
    /// The handle at the provider; null when the provider has none or did not say.
    #[oai(nullable)]
    pub username: Option<String>,
    /// The display name at the provider; null when the provider did not say.
    #[oai(nullable)]
    pub display_name: Option<String>,
    /// The scopes the user granted.
    pub scopes: Vec<String>,
    /// `active`; `expiring` (still usable, but `reauth_by` is within `refresh.warn_days`);
    /// or `needs_reauth` (only a new consent helps; `status_reason` says why).
    #[oai(validator(pattern = r"^(active|expiring|needs_reauth)$"))]
    pub status: String,
    /// Why the account is `expiring` or `needs_reauth`; null when `active`.
    #[oai(nullable)]
    pub status_reason: Option<String>,
    /// When the stored access token expires (RFC 3339, UTC).
    #[oai(nullable)]
    pub expires_at: Option<Checked<Timestamp>>,
    /// The moment after which only a new consent helps (Facebook's 60 days, LinkedIn without
    /// a refresh token, a refresh token's own end); null when no such end is known.
    #[oai(nullable)]
    pub reauth_by: Option<Checked<Timestamp>>,
    /// When the account was first connected (RFC 3339, UTC).
    pub created_at: Checked<Timestamp>,
    /// When it was last connected again or changed (RFC 3339, UTC).
    pub updated_at: Checked<Timestamp>,
    /// `user` for a connected account; `page` (a Facebook Page) or `organization` (a
    /// LinkedIn organization) for what that user manages and posts as.
    pub kind: Checked<AccountKind>,
    /// The user account a `page` or `organization` belongs to; null for a `user`.
    #[oai(nullable, validator(pattern = r"^acc_[a-z2-7]{20}$"))]
    pub parent_id: Option<String>,
    /// What the user may do on a Page (Facebook's tasks, e.g. `CREATE_CONTENT`); null for
    /// other kinds.
    #[oai(nullable)]
    pub tasks: Option<Vec<String>>,
}

impl From<Account> for AccountView {
    fn from(a: Account) -> Self {
        AccountView {
            id: a.id,
            provider: Checked(a.provider),
            oauth_app_id: a.oauth_app_id,
            provider_account_id: a.provider_account_id,
            username: a.username,
            display_name: a.display_name,
            scopes: a.scopes,
            status: a.status.as_str().to_owned(),
            status_reason: a.status_reason,
            expires_at: a.expires_at.map(Checked),
            reauth_by: a.reauth_by.map(Checked),
            created_at: Checked(a.created_at),
            updated_at: Checked(a.updated_at),
            kind: Checked(a.kind),
            parent_id: a.parent_id,
            tasks: a.tasks,
        }
    }
}

impl Example for AccountView {
    fn example() -> Self {
        AccountView {
            id: EXAMPLE_ACCOUNT_ID.into(),
            provider: example_provider(),
            oauth_app_id: Some(EXAMPLE_APP_ID.into()),
            provider_account_id: "1234567890".into(),
            username: Some("dravo_dev".into()),
            display_name: Some("Dravo".into()),
            scopes: ["tweet.read", "tweet.write", "users.read", "offline.access"]
                .map(String::from)
                .to_vec(),
            status: "active".into(),
            status_reason: None,
            expires_at: Some(Checked(EXAMPLE_TIME.plus_seconds(7200))),
            reauth_by: None,
            created_at: Checked(EXAMPLE_TIME),
            updated_at: Checked(EXAMPLE_TIME),
            kind: Checked(AccountKind::User),
            parent_id: None,
            tasks: None,
        }
    }
}

/// One page of connected accounts.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(rename = "AccountPage")]
pub struct AccountPageView {
    /// The accounts, in the order they were first connected.
    pub data: Vec<AccountView>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// An account's access token, fresh for at least `refresh.skew_seconds` unless the provider
/// cannot renew it.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(rename = "AccessToken", example)]
pub struct AccessTokenView {
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// When it expires (RFC 3339, UTC).
    #[oai(nullable)]
    pub expires_at: Option<Checked<Timestamp>>,
    /// The scopes it carries.
    pub scopes: Vec<String>,
}

impl From<AccessToken> for AccessTokenView {
    fn from(t: AccessToken) -> Self {
        AccessTokenView {
            access_token: t.access_token,
            token_type: t.token_type.to_owned(),
            expires_at: t.expires_at.map(Checked),
            scopes: t.scopes,
        }
    }
}

impl Example for AccessTokenView {
    fn example() -> Self {
        AccessTokenView {
            access_token: "bWJkZ…".into(),
            token_type: "bearer".into(),
            expires_at: Some(Checked(EXAMPLE_TIME.plus_seconds(7200))),
            scopes: ["tweet.read", "tweet.write", "users.read", "offline.access"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// What deleting an account did.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(rename = "DeletedAccount")]
pub struct DeletedAccountView {
    // No doc comment: it would wrap the `$ref` in an `allOf` (see `ErrorDetail`).
    pub account: AccountView,
    /// True when the provider confirmed the revocation. The account is deleted either way.
    pub revoked: bool,
    /// Why it was not revoked (the provider's error, or that it cannot revoke); null when
    /// `revoked`.
    #[oai(nullable)]
    pub revoke_error: Option<String>,
}

impl From<Deleted> for DeletedAccountView {
    fn from(d: Deleted) -> Self {
        DeletedAccountView {
            account: d.account.into(),
            revoked: d.revoked,
            revoke_error: d.revoke_error,
        }
    }
}

/// One entry of an account's event log. Never a token: `refreshed` carries the first 8 hex
/// digits of the new token's SHA-256 as `fingerprint`.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(rename = "AccountEvent")]
pub struct EventView {
    /// `evt_` and 20 lowercase base32 characters; webhooks of the event carry the same id.
    pub id: String,
    pub account_id: String,
    /// `connected`, `reconnected`, `refreshed`, `refresh_failed`, `needs_reauth`,
    /// `recovered` or `expiring`.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: Checked<Timestamp>,
    /// What happened, by type: `refresh_failed` has `error`, `error_description`, `attempt`,
    /// `next_attempt_at` and `blame` (`account` or `app`).
    pub detail: serde_json::Value,
}

impl From<Event> for EventView {
    fn from(e: Event) -> Self {
        EventView {
            id: e.id,
            account_id: e.account_id,
            kind: e.kind,
            created_at: Checked(e.created_at),
            detail: e.detail,
        }
    }
}

/// One page of an account's events, newest first.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(rename = "AccountEventPage")]
pub struct EventPageView {
    pub data: Vec<EventView>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_examples_public_url_is_a_fresh_servers() {
        assert_eq!(
            EXAMPLE_PUBLIC_URL,
            crate::config::Config::default().public_url(None)
        );
    }
    use poem_openapi::types::ToJSON;

    /// `api::payload::JsonBody` renders views with serde; it must give exactly what
    /// poem-openapi's `Json` would.
    fn same_json<T: ToJSON + serde::Serialize>(value: &T) {
        assert_eq!(
            serde_json::to_value(value).unwrap(),
            value.to_json().unwrap()
        );
    }

    #[test]
    fn serde_and_poem_openapi_render_views_the_same() {
        same_json(&OAuthAppView::example());
        let mut checked = OAuthAppView::example();
        checked.last_check = Some(AppCheckView::example());
        same_json(&checked);
        same_json(&AppCheckView::example());
        same_json(&AccountView::example());
        let mut sparse = AccountView::example();
        sparse.oauth_app_id = None;
        sparse.username = None;
        sparse.display_name = None;
        sparse.expires_at = None;
        sparse.scopes = vec![];
        same_json(&sparse);
        same_json(&vec![OAuthAppView::example(), OAuthAppView::example()]);
        let mut odd = AccountView::example();
        odd.display_name = Some("quote \" backslash \\ \u{1b} \u{202e} emoji 🦀".into());
        same_json(&odd);
    }
}

/// A webhook event in the outbox, as `dravo webhooks list --json` prints it: its delivery
/// state, never its body.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(rename = "WebhookDelivery")]
pub struct WebhookEventView {
    /// `evt_…`, the body's `id` and the `Dravo-Event-Id` header.
    pub id: String,
    /// `account.connected`, `account.deleted`, `app.credentials_invalid`, …
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub owner: String,
    /// `pending`, `delivered` or `failed` (given up after 24 hours).
    pub status: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// When a pending event is tried next.
    pub next_attempt_at: Option<Checked<Timestamp>>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub created_at: Checked<Timestamp>,
    pub delivered_at: Option<Checked<Timestamp>>,
}

impl From<WebhookEvent> for WebhookEventView {
    fn from(e: WebhookEvent) -> Self {
        WebhookEventView {
            id: e.id,
            kind: e.kind,
            owner: e.owner,
            status: e.status.to_string(),
            attempts: e.attempts,
            next_attempt_at: e.next_attempt_at.map(Checked),
            last_error: e.last_error,
            created_at: Checked(e.created_at),
            delivered_at: e.delivered_at.map(Checked),
        }
    }
}
