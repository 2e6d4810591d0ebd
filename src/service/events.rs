//! Account events and webhooks. An event is written in the transaction of the change it
//! reports: to the account's log (`GET /v1/accounts/{id}/events`), and, when it is one
//! dashboards subscribe to, to the webhook outbox with the same id, so a crash between the
//! change and its delivery loses nothing. The outbox is written whatever this process's
//! configuration says: the process that makes a change (a CLI, a server without
//! `webhooks.url`) is often not the one that sends webhooks, which is any server that has the
//! URL (see `webhooks`).
//!
//! The `Outbox` part records events; it is handed the tenant's apps (an app's webhook carries
//! its view). `webhooks::WebhookSender` sends what it recorded.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Account;
use super::apps::Apps;
use crate::domain::{Event, EventId, Owner, Timestamp};
use crate::error::{ProviderError, Result};
use crate::store::{AccountRecord, EventRecord, OutboxRecord, WriteTx};
use crate::wire::views::{AccountView, OAuthAppView};

/// What can happen to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountEvent {
    Connected,
    Reconnected,
    Refreshed,
    RefreshFailed,
    NeedsReauth,
    Recovered,
    Expiring,
}

impl AccountEvent {
    pub const fn as_str(self) -> &'static str {
        match self {
            AccountEvent::Connected => "connected",
            AccountEvent::Reconnected => "reconnected",
            AccountEvent::Refreshed => "refreshed",
            AccountEvent::RefreshFailed => "refresh_failed",
            AccountEvent::NeedsReauth => "needs_reauth",
            AccountEvent::Recovered => "recovered",
            AccountEvent::Expiring => "expiring",
        }
    }

    /// The webhook type it is sent as; `None`: log only (a routine refresh).
    pub const fn webhook(self) -> Option<&'static str> {
        match self {
            AccountEvent::Connected => Some("account.connected"),
            AccountEvent::Reconnected => Some("account.reconnected"),
            AccountEvent::Refreshed => None,
            AccountEvent::RefreshFailed => Some("account.refresh_failed"),
            AccountEvent::NeedsReauth => Some("account.needs_reauth"),
            AccountEvent::Recovered => Some("account.recovered"),
            AccountEvent::Expiring => Some("account.expiring"),
        }
    }
}

/// An event about to be recorded.
pub struct EventDraft {
    pub kind: AccountEvent,
    pub detail: Value,
}

impl EventDraft {
    pub fn new(kind: AccountEvent, detail: Value) -> Self {
        EventDraft { kind, detail }
    }
}

impl From<EventRecord> for Event {
    fn from(e: EventRecord) -> Self {
        Event {
            id: e.id.into(),
            account_id: e.account_id.into(),
            kind: e.kind,
            created_at: e.created_at,
            detail: e.detail,
        }
    }
}

/// Records account events and the outbox's webhooks, in the transaction of their change.
pub(super) struct Outbox {
    apps: Arc<Apps>,
}

impl Outbox {
    pub(super) fn new(apps: Arc<Apps>) -> Self {
        Outbox { apps }
    }

    /// Writes an event about `row` to its log and, if it is a webhook event, to the outbox.
    pub(super) async fn record_event(
        &self,
        tx: &mut dyn WriteTx,
        row: &AccountRecord,
        draft: EventDraft,
        now: Timestamp,
    ) -> Result<()> {
        let id = EventId::generate();
        tx.insert_event(&EventRecord {
            id: id.clone(),
            account_id: row.id.clone(),
            owner: row.owner.clone(),
            kind: draft.kind.as_str().to_owned(),
            created_at: now,
            detail: draft.detail.clone(),
            seq: 0,
        })
        .await?;
        if let Some(kind) = draft.kind.webhook() {
            let account = AccountView::from(Account::from(row.clone()));
            self.enqueue_webhook(
                tx,
                id.as_str(),
                kind,
                &row.owner,
                "account",
                serde_json::to_value(account).expect("views serialize"),
                draft.detail,
                now,
            )
            .await?;
        }
        Ok(())
    }

    /// `account.deleted`: sent for an account whose log goes with it.
    pub(super) async fn record_deleted(
        &self,
        tx: &mut dyn WriteTx,
        row: &AccountRecord,
        detail: Value,
        now: Timestamp,
    ) -> Result<()> {
        let account = AccountView::from(Account::from(row.clone()));
        self.enqueue_webhook(
            tx,
            &EventId::generate().to_string(),
            "account.deleted",
            &row.owner,
            "account",
            serde_json::to_value(account).expect("views serialize"),
            detail,
            now,
        )
        .await
    }

    /// Notes that the provider refused an account's app credentials: on the app (as
    /// `credentials_error`, shown until its secret changes, and as a failed `last_check`)
    /// and, the first time, as an `app.credentials_invalid` webhook. The platform's default
    /// app lives in the config, so only the log tells.
    pub(super) async fn app_credentials_refused(
        &self,
        tx: &mut dyn WriteTx,
        row: &AccountRecord,
        err: &ProviderError,
        now: Timestamp,
    ) -> Result<()> {
        let Some(app_id) = &row.oauth_app_id else {
            tracing::warn!(provider = %row.provider, error = %err, "the provider refused the default app's credentials: check providers.{}.client_secret", row.provider);
            return Ok(());
        };
        let Some(mut app) = tx.get_app(&row.owner, app_id).await? else {
            return Ok(());
        };
        let first = app.credentials_error.is_none();
        let message = format!("{}: {}", err.code(), err.description());
        tx.set_app_credentials_error(app_id, Some(&message), now)
            .await?;
        let check = super::app_checks::refused_during_refresh(row.provider, &message, now);
        tx.set_app_last_check(app_id, &check).await?;
        if first {
            app.credentials_error = Some(message);
            app.credentials_error_at = Some(now);
            app.last_check = Some(check);
            // An app whose credentials a provider refused holds credentials: no servers to list.
            let view = OAuthAppView::from(self.apps.view_with(&app, Vec::new()));
            self.enqueue_webhook(
                tx,
                &EventId::generate().to_string(),
                "app.credentials_invalid",
                &row.owner,
                "app",
                serde_json::to_value(view).expect("views serialize"),
                json!({"error": err.code(), "error_description": err.description(), "account_id": row.id}),
                now,
            ).await?;
        }
        Ok(())
    }

    /// Adds a webhook event to the outbox, in `tx`. Always, even where `webhooks.url` is not
    /// set: a server that has it sends the event, and a server that has not gives it up once
    /// its 24 h are over without a sender (`Dravo::give_up_unsent_webhooks`).
    #[allow(clippy::too_many_arguments)]
    async fn enqueue_webhook(
        &self,
        tx: &mut dyn WriteTx,
        id: &str,
        kind: &str,
        owner: &Owner,
        object_name: &str,
        object: Value,
        detail: Value,
        now: Timestamp,
    ) -> Result<()> {
        let mut body = json!({
            "id": id,
            "type": kind,
            "created_at": now.to_string(),
            "owner": owner,
            "detail": detail,
        });
        body[object_name] = object;
        tx.enqueue_webhook(&OutboxRecord {
            id: id.to_owned(),
            kind: kind.to_owned(),
            owner: owner.clone(),
            body: body.to_string(),
            created_at: now,
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: Some(now),
            last_error: None,
            delivered_at: None,
            seq: 0,
        })
        .await
    }
}
