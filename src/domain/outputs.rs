//! What the core hands its callers: the output of its operations, shared by the HTTP
//! handlers, the CLI and the webhook bodies (the wire shapes in `views` render them).

use serde_json::Value;

use super::{Account, AppCheck, Provider, Timestamp};
use crate::error::{Error, Result};

/// An OAuth app as callers see it: never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthApp {
    pub id: String,
    pub provider: Provider,
    pub name: String,
    /// `None` for a provider where Dravo registers the app on each server (Mastodon).
    pub client_id: Option<String>,
    /// The callback URL to register at the provider.
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    /// Why the provider last refused the app's credentials; `None` when it has not (or the
    /// secret changed since).
    pub credentials_error: Option<String>,
    /// When its name, scopes or secret last changed (its creation until then).
    pub updated_at: Timestamp,
    /// The last check of its configuration (`check_app`, or a refresh the provider refused
    /// its credentials in); `None` when never checked since its scopes or secret changed.
    pub last_check: Option<AppCheck>,
    /// What looks wrong with its scopes (a typo, a scope Dravo needs that is missing), one
    /// sentence each; the app works as stored, but a connect will likely fail.
    pub warnings: Vec<String>,
    /// The `User-Agent` its calls to the provider carry; `None`: the provider's default.
    pub user_agent: Option<String>,
    /// The website it registers with on the servers users name (Mastodon).
    pub website: Option<String>,
    /// The servers Dravo registered it on (Mastodon instances), oldest first; empty for the
    /// other providers.
    pub servers: Vec<RegisteredServer>,
}

impl OAuthApp {
    /// Whether the tenant brought the app's credentials (every provider but those whose users
    /// name their server).
    pub fn provider_has_credentials(&self) -> bool {
        crate::providers::get(self.provider)
            .hosting()
            .app_has_credentials()
    }
}

/// A server an app is registered on (a Mastodon instance): never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredServer {
    /// Its origin, `https://host[:port]`.
    pub server: String,
    /// The client id the server gave the app.
    pub client_id: String,
    /// The scopes it was registered with.
    pub scopes: Vec<String>,
    /// Whether the server takes PKCE (Mastodon 4.3+).
    pub pkce: bool,
    pub registered_at: Timestamp,
}

/// What deleting an account did at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub account: Account,
    /// True when the provider confirmed the revocation.
    pub revoked: bool,
    /// Why it was not revoked: the provider's error, or that it has no revoke endpoint.
    pub revoke_error: Option<String>,
}

/// An entry of an account's event log, as callers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub account_id: String,
    pub kind: String,
    pub created_at: Timestamp,
    pub detail: Value,
}

/// An access token handed out to a caller.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_at: Option<Timestamp>,
    pub scopes: Vec<String>,
}

/// Where a webhook event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up after 24 h of failed attempts.
    Failed,
}

impl WebhookStatus {
    pub const ALL: [WebhookStatus; 3] = [
        WebhookStatus::Pending,
        WebhookStatus::Delivered,
        WebhookStatus::Failed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            WebhookStatus::Pending => "pending",
            WebhookStatus::Delivered => "delivered",
            WebhookStatus::Failed => "failed",
        }
    }

    /// Parses a status name; `field` names the input in the error.
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{field} must be pending, delivered or failed, not `{}`",
                    value.chars().take(40).collect::<String>()
                ))
            })
    }
}

impl std::fmt::Display for WebhookStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A webhook event as operators see it: never its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    pub id: String,
    pub kind: String,
    pub owner: String,
    pub status: WebhookStatus,
    pub attempts: i64,
    pub next_attempt_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}
