//! Pages, organizations, channels and locations: what a connected user manages and posts as,
//! stored as *children* of the user's account. A Facebook Page has its own Page token (sealed
//! like every token); a LinkedIn organization, a YouTube channel and a Google Business Profile
//! location are used with the user's token, so they have none of their own.
//! Either way a child lives on its parent's grant: its status, deadline and expiry follow the
//! parent's (`follow_parent`), and the provider's list of them is read again whenever the
//! parent is connected or refreshed (`sync_children`). A child the list no longer names is
//! kept, marked `needs_reauth`, never deleted silently.

use secrecy::ExposeSecret;
use serde_json::json;

use super::events::{AccountEvent, EventDraft, Outbox};
use super::flow_apps::FlowApp;
use super::keys::Vault;
use super::provider_calls::ProviderCalls;
use super::renewal::classify;
use super::seal_contexts::{ACCESS, token_context};
use crate::domain::{
    AccountId, AccountKind, AccountStatus, Provider, Timestamp, clean_provider_text,
};
use crate::error::Result;
use crate::providers::{self, ChildAccount, TokenSet};
use crate::store::{AccountRecord, WriteTx};

/// The reason a Page the user no longer manages (or no longer granted) is `needs_reauth`.
pub const PAGE_ACCESS_REMOVED: &str = "page_access_removed";
/// The same for an organization the member no longer administers.
pub const ORGANIZATION_ACCESS_REMOVED: &str = "organization_access_removed";
/// The same for a YouTube channel the Google account no longer manages.
pub const CHANNEL_ACCESS_REMOVED: &str = "channel_access_removed";
/// The same for a Google Business Profile location the Google account no longer manages.
pub const LOCATION_ACCESS_REMOVED: &str = "location_access_removed";
/// A Page Facebook listed without a Page token: the user's role on it gives none.
pub const PAGE_TOKEN_MISSING: &str = "page_token_missing";

/// Whether the child is `needs_reauth` for one of `reasons`.
fn needs_reauth_for(child: &AccountRecord, reasons: &[&str]) -> bool {
    child.status == AccountStatus::NeedsReauth
        && child
            .status_reason
            .as_deref()
            .is_some_and(|r| reasons.iter().any(|own| r.starts_with(own)))
}

/// Whether the provider's list no longer names the child.
fn is_removed(child: &AccountRecord) -> bool {
    needs_reauth_for(
        child,
        &[
            PAGE_ACCESS_REMOVED,
            ORGANIZATION_ACCESS_REMOVED,
            CHANNEL_ACCESS_REMOVED,
            LOCATION_ACCESS_REMOVED,
        ],
    )
}

/// Why a child the provider's list no longer names is `needs_reauth`: its reason code and a
/// sentence.
fn removed_reason(kind: AccountKind) -> (&'static str, &'static str) {
    match kind {
        AccountKind::Organization => (
            ORGANIZATION_ACCESS_REMOVED,
            "the member no longer administers this organization (or no longer granted access to it)",
        ),
        AccountKind::Channel => (
            CHANNEL_ACCESS_REMOVED,
            "the Google account no longer manages this channel (or no longer granted access to it)",
        ),
        AccountKind::Location => (
            LOCATION_ACCESS_REMOVED,
            "the Google account no longer manages this location (or no longer granted access to it)",
        ),
        AccountKind::Page | AccountKind::User => (
            PAGE_ACCESS_REMOVED,
            "the user no longer manages this Page (or no longer granted access to it)",
        ),
    }
}

/// Whether the child is `needs_reauth` for a reason of its own (removed, or no token), which
/// its parent's state does not change.
fn has_own_trouble(child: &AccountRecord) -> bool {
    is_removed(child) || needs_reauth_for(child, &[PAGE_TOKEN_MISSING])
}

/// Brings a child's lifecycle in line with its parent's: status, deadline, granted scopes,
/// and expiry (a child without a token of its own uses the parent's; a Page token has no
/// expiry of its own but dies with the user's consent, so it lasts until the parent's
/// `reauth_by`).
pub fn follow_parent(parent: &AccountRecord, child: &mut AccountRecord) {
    if has_own_trouble(child) {
        return;
    }
    child.status = parent.status;
    child.status_reason = parent.status_reason.clone();
    child.reauth_by = parent.reauth_by;
    child.scopes = parent.scopes.clone();
    child.expires_at = if child.kind.has_own_token() {
        parent.reauth_by.or(parent.expires_at)
    } else {
        parent.expires_at
    };
    child.token_issued_at = parent.token_issued_at;
}

/// The fields `follow_parent` may change, to tell whether a write is needed.
fn lifecycle_of(
    row: &AccountRecord,
) -> (
    AccountStatus,
    Option<String>,
    Option<Timestamp>,
    Option<Timestamp>,
    Vec<String>,
) {
    (
        row.status,
        row.status_reason.clone(),
        row.reauth_by,
        row.expires_at,
        row.scopes.clone(),
    )
}

/// Writes an account's row and, for a user account, brings its children in line with it in
/// the same transaction.
pub(super) async fn put_family(
    tx: &mut dyn WriteTx,
    row: &AccountRecord,
    now: Timestamp,
) -> Result<()> {
    tx.put_account(row).await?;
    if row.kind != AccountKind::User {
        return Ok(());
    }
    for mut child in tx.children_of(&row.id).await? {
        let before = lifecycle_of(&child);
        follow_parent(row, &mut child);
        if lifecycle_of(&child) != before {
            child.updated_at = now;
            tx.put_account(&child).await?;
        }
    }
    Ok(())
}

/// Brings the stored children of `parent` in line with the provider's `listed` ones: new ones
/// are added (`connected`), listed ones get fresh names, tasks and tokens (and `recovered`
/// when they had been removed), unlisted ones become `needs_reauth`. The `vault` seals their
/// tokens; the `outbox` records their events.
pub(super) async fn sync_children(
    vault: &Vault,
    outbox: &Outbox,
    tx: &mut dyn WriteTx,
    parent: &AccountRecord,
    listed: &[ChildAccount],
    now: Timestamp,
) -> Result<()> {
    let mut stored = tx.children_of(&parent.id).await?;
    for item in listed {
        let was = stored
            .iter()
            .position(|c| c.kind == item.kind && c.provider_account_id == item.provider_account_id)
            .map(|i| stored.remove(i));
        let mut child = match &was {
            Some(old) => old.clone(),
            None => new_child(parent, item, now),
        };
        child.username = item.username.clone().and_then(clean_provider_text);
        child.display_name = item.display_name.clone().and_then(clean_provider_text);
        child.tasks = item.tasks.clone();
        child.status = AccountStatus::Active;
        child.status_reason = None;
        child.access_token_sealed = match &item.access_token {
            Some(token) => vault.sealing_keys(tx).await?.sealer().seal(
                &token_context(
                    ACCESS,
                    child.id.as_str(),
                    child.owner.as_str(),
                    child.provider,
                    &child.provider_account_id,
                ),
                token.expose_secret().as_bytes(),
            ),
            None => Vec::new(),
        };
        child.token_version += 1;
        if item.kind == AccountKind::Page && item.access_token.is_none() {
            child.status = AccountStatus::NeedsReauth;
            child.status_reason = Some(format!(
                "{PAGE_TOKEN_MISSING}: Facebook gave no Page token for this Page (the user's role on it allows none)"
            ));
        }
        follow_parent(parent, &mut child);
        child.updated_at = now;
        tx.put_account(&child).await?;
        let detail = json!({
            "parent_id": parent.id,
            "kind": child.kind.as_str(),
            "tasks": child.tasks,
        });
        match &was {
            None => {
                outbox
                    .record_event(
                        tx,
                        &child,
                        EventDraft::new(AccountEvent::Connected, detail),
                        now,
                    )
                    .await?
            }
            Some(old) if has_own_trouble(old) && !has_own_trouble(&child) => {
                outbox
                    .record_event(
                        tx,
                        &child,
                        EventDraft::new(
                            AccountEvent::Recovered,
                            json!({"via": "listed_again", "previous_reason": old.status_reason}),
                        ),
                        now,
                    )
                    .await?
            }
            Some(_) => {}
        }
    }
    for mut gone in stored {
        if is_removed(&gone) {
            continue;
        }
        let (code, what) = removed_reason(gone.kind);
        gone.status = AccountStatus::NeedsReauth;
        gone.status_reason = Some(format!("{code}: {what}"));
        gone.updated_at = now;
        tx.put_account(&gone).await?;
        outbox
            .record_event(
                tx,
                &gone,
                EventDraft::new(
                    AccountEvent::NeedsReauth,
                    json!({"reason": gone.status_reason, "parent_id": parent.id}),
                ),
                now,
            )
            .await?;
    }
    Ok(())
}

/// The user's Pages, organizations, channels or locations right after a consent, asked of
/// the provider through `calls`. A failure to list them does not fail the connect: the account
/// is connected, a refresh lists them again, and the second value says what went wrong, for
/// the `connected` event.
pub(super) async fn children_at_connect(
    calls: &ProviderCalls,
    provider: Provider,
    app: &FlowApp,
    tokens: &TokenSet,
) -> (Option<Vec<ChildAccount>>, Option<serde_json::Value>) {
    let scopes = tokens.granted_scopes.as_deref().unwrap_or(&app.scopes);
    let implementation = providers::get(provider);
    match implementation
        .list_children(
            &calls.http_for(provider, app.user_agent.as_deref()),
            calls.endpoints(provider),
            tokens.access_token.expose_secret(),
            scopes,
        )
        .await
    {
        Ok(children) => (children, None),
        Err(e) => {
            tracing::warn!(%provider, error = %e, "the account is connected, but what it manages could not be listed: refresh it to list them again");
            let blame = classify(&e, implementation.renewal());
            (
                None,
                Some(json!({
                    "blame": blame.as_str(),
                    "error": e.provider_code(),
                    "error_description": e.provider_description(),
                })),
            )
        }
    }
}

/// A child row as first stored, under `parent`.
fn new_child(parent: &AccountRecord, item: &ChildAccount, now: Timestamp) -> AccountRecord {
    AccountRecord {
        id: AccountId::generate(),
        owner: parent.owner.clone(),
        provider: parent.provider,
        oauth_app_id: parent.oauth_app_id.clone(),
        provider_account_id: item.provider_account_id.clone(),
        username: None,
        display_name: None,
        scopes: parent.scopes.clone(),
        status: AccountStatus::Active,
        status_reason: None,
        access_token_sealed: Vec::new(),
        refresh_token_sealed: None,
        expires_at: None,
        refresh_expires_at: None,
        reauth_by: None,
        token_issued_at: None,
        // Never tended by the refresher: its parent is.
        next_refresh_at: None,
        refresh_failures: 0,
        warned_for: None,
        created_at: now,
        updated_at: now,
        kind: item.kind,
        parent_id: Some(parent.id.clone()),
        tasks: None,
        token_version: 0,
        server: parent.server.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: AccountKind, parent_id: Option<&str>) -> AccountRecord {
        AccountRecord {
            id: "acc_x".into(),
            owner: "t".into(),
            provider: Provider::named("facebook"),
            oauth_app_id: None,
            provider_account_id: "1".into(),
            username: None,
            display_name: None,
            scopes: vec!["pages_show_list".into()],
            status: AccountStatus::Active,
            status_reason: None,
            access_token_sealed: Vec::new(),
            refresh_token_sealed: None,
            expires_at: Some(Timestamp::from_unix(1_000)),
            refresh_expires_at: None,
            reauth_by: Some(Timestamp::from_unix(5_000)),
            token_issued_at: None,
            next_refresh_at: None,
            refresh_failures: 0,
            warned_for: None,
            created_at: Timestamp::from_unix(0),
            updated_at: Timestamp::from_unix(0),
            kind,
            parent_id: parent_id.map(AccountId::from),
            tasks: None,
            token_version: 0,
            server: None,
        }
    }

    #[test]
    fn a_child_follows_its_parents_state_and_deadline() {
        let mut parent = row(AccountKind::User, None);
        parent.status = AccountStatus::Expiring;
        parent.status_reason = Some("token_expiring: soon".into());
        let mut page = row(AccountKind::Page, Some("acc_p"));
        page.reauth_by = None;
        let mut org = row(AccountKind::Organization, Some("acc_p"));
        org.expires_at = None;
        follow_parent(&parent, &mut page);
        follow_parent(&parent, &mut org);
        assert_eq!(page.status, AccountStatus::Expiring);
        assert_eq!(page.reauth_by, parent.reauth_by);
        assert_eq!(
            page.expires_at, parent.reauth_by,
            "a Page token lasts until the grant ends"
        );
        assert_eq!(
            org.expires_at, parent.expires_at,
            "an organization uses the member's token"
        );
    }

    #[test]
    fn a_removed_child_stays_removed_whatever_its_parent_does() {
        let parent = row(AccountKind::User, None);
        let mut page = row(AccountKind::Page, Some("acc_p"));
        page.status = AccountStatus::NeedsReauth;
        page.status_reason = Some(format!("{PAGE_ACCESS_REMOVED}: gone"));
        follow_parent(&parent, &mut page);
        assert_eq!(page.status, AccountStatus::NeedsReauth);
    }
}
