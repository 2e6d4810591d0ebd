//! `/v1/accounts`: connected accounts, their access tokens, refreshes, events and deletion.

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::error::{ApiError, LimitedError, RefreshError};
use crate::api::limits::RateLimits;
use crate::api::payload::JsonBody;
use crate::api::rendered::{ListKey, RenderedLists};
use crate::api::{ApiTags, DashboardAuth};
use crate::domain::{AccountId, AccountKind, AccountStatus, Provider};
use crate::service::AccountFilter;
use crate::service::Dravo;
use crate::wire::values::Checked;
use crate::wire::views::{
    AccessTokenView, AccountPageView, AccountView, DeletedAccountView, EventPageView, EventView,
};

#[derive(ApiResponse)]
pub enum AccountList {
    /// One page of your connected accounts (of the provider and status asked for), in the
    /// order they were first connected; `data` is empty when there are none.
    #[oai(status = 200)]
    Ok(JsonBody<AccountPageView>),
}

#[derive(ApiResponse)]
pub enum AccountFound {
    /// The connected account.
    #[oai(status = 200)]
    Ok(Json<AccountView>),
}

#[derive(ApiResponse)]
pub enum AccessTokenFound {
    /// The account's access token. Do not cache it longer than `expires_at`.
    #[oai(status = 200)]
    Ok(
        Json<AccessTokenView>,
        #[oai(header = "Cache-Control")] String,
    ),
}

#[derive(ApiResponse)]
pub enum AccountDeleted {
    /// The account is deleted; `revoked` says whether the provider revoked its grant.
    #[oai(status = 200)]
    Ok(Json<DeletedAccountView>),
}

#[derive(ApiResponse)]
pub enum EventList {
    /// One page of the account's events, newest first.
    #[oai(status = 200)]
    Ok(Json<EventPageView>),
}

/// The body of `POST /v1/accounts/{id}/confirm`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct ConfirmConnection {
    /// The `confirm` parameter the callback put on the return URL.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub code: String,
}

impl Example for ConfirmConnection {
    fn example() -> Self {
        ConfirmConnection {
            code: "Zk3v9QmH0tL2xR8cWb5yNa7sPe4uJd1oGi6fKq0rTzA".into(),
        }
    }
}

#[derive(ApiResponse)]
pub enum AccountConfirmed {
    /// Confirmed: the connection is now this account (`account.connected` is sent).
    #[oai(status = 200)]
    Ok(Json<AccountView>),
}

#[derive(Default)]
pub struct AccountsApi {
    /// The first page's rendered bodies (see `rendered`).
    rendered: RenderedLists,
}

#[OpenApi(tag = "ApiTags::Accounts")]
impl AccountsApi {
    /// List connected accounts
    ///
    /// Your connected accounts, a page at a time. Tokens are never returned here.
    #[oai(path = "/v1/accounts", method = "get", operation_id = "listAccounts")]
    // poem-openapi takes each query parameter as an argument.
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        dravo: Data<&Dravo>,
        auth: DashboardAuth,
        /// Filter by provider.
        provider: Query<Option<Checked<Provider>>>,
        /// Filter by status.
        status: Query<Option<Checked<AccountStatus>>>,
        /// Filter by kind: `user`, or the `page`s and `organization`s users manage.
        kind: Query<Option<Checked<AccountKind>>>,
        /// Only the Pages or organizations of this user account.
        parent_id: Query<Option<Checked<AccountId>>>,
        /// Page size, 1 to 500 (default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page.
        #[oai(validator(min_length = 1, max_length = 64))]
        cursor: Query<Option<String>>,
    ) -> Result<AccountList, ApiError> {
        let filter = AccountFilter {
            provider: provider.0.map(|p| p.0),
            status: status.0.map(|s| s.0),
            kind: kind.0.map(|k| k.0),
            parent_id: parent_id.0.map(|p| p.0),
        };
        // Only first pages are kept (see `rendered`).
        let key = cursor
            .0
            .is_none()
            .then(|| ListKey::FirstAccounts(auth.0.clone(), filter.clone(), limit.0));
        // Taken before the page is read: see `rendered`.
        let version = match &key {
            Some(key) => {
                let version = dravo.read_version().await?;
                if let Some(body) = self.rendered.get(key, version) {
                    return Ok(AccountList::Ok(JsonBody::from_rendered(body)));
                }
                version
            }
            None => None,
        };
        let page = dravo
            .list_accounts_page(&auth.0, filter, cursor.0.as_deref(), limit.0)
            .await?;
        let body = JsonBody::render(&AccountPageView {
            data: page.items.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor,
        });
        if let Some(key) = key {
            self.rendered.put(key, version, &body);
        }
        Ok(AccountList::Ok(JsonBody::from_rendered(body)))
    }

    /// Get a connected account
    #[oai(path = "/v1/accounts/:id", method = "get", operation_id = "getAccount")]
    async fn get(
        &self,
        dravo: Data<&Dravo>,
        auth: DashboardAuth,
        id: Path<Checked<AccountId>>,
    ) -> Result<AccountFound, ApiError> {
        let account = dravo.get_account(&auth.0, &id.0.0).await?;
        Ok(AccountFound::Ok(Json(account.into())))
    }

    /// Get an account's access token
    ///
    /// Refreshed first when it expires within `refresh.skew_seconds` (300), or always with
    /// `force_refresh=true`. Refreshes of one account never overlap, across processes and
    /// nodes too: concurrent callers all get the one new token. An account whose grant is
    /// gone answers 409 `needs_reauth`. A failed refresh answers 502 `provider_error` when
    /// the stored token has expired or `force_refresh` asked for a new one (otherwise the
    /// stored token, still valid, is the answer); while the account waits out its backoff
    /// after failures such a request answers 503 `refresh_backoff` with `Retry-After`.
    #[oai(
        path = "/v1/accounts/:id/access-token",
        method = "get",
        operation_id = "getAccessToken"
    )]
    async fn access_token(
        &self,
        dravo: Data<&Dravo>,
        limits: Data<&RateLimits>,
        auth: DashboardAuth,
        id: Path<Checked<AccountId>>,
        /// Refresh even when the stored token is still fresh.
        force_refresh: Query<Option<bool>>,
    ) -> Result<AccessTokenFound, RefreshError> {
        limits.token(&auth.0)?;
        let token = dravo
            .access_token(&auth.0, &id.0.0, force_refresh.0.unwrap_or(false))
            .await?;
        Ok(AccessTokenFound::Ok(Json(token.into()), "no-store".into()))
    }

    /// Refresh an account now
    ///
    /// Renews the account's tokens at the provider (a Page's or organization's: its user
    /// account's), reads its Pages or organizations again, and returns the account. Never a
    /// 200 for a refresh that failed or was not made:
    /// - the provider failed or refused the app: 502 `provider_error`;
    /// - the grant is gone (`invalid_grant`): 409 `needs_reauth`, the account marked so;
    /// - the account waits out its backoff after failed refreshes: 503 `refresh_backoff`
    ///   with `Retry-After`, and no call to the provider.
    ///
    /// Each of these carries `error.refresh`: the provider's `error` and
    /// `error_description`, the failure (`transient`, `app`, `account`), the account's status
    /// and the next attempt. Where the provider cannot renew the token now (Facebook never,
    /// Instagram not within a day of the last renewal), the Pages or organizations are read
    /// again where the provider lists them (200); otherwise 409 `conflict` says why.
    #[oai(
        path = "/v1/accounts/:id/refresh",
        method = "post",
        operation_id = "refreshAccount"
    )]
    async fn refresh(
        &self,
        dravo: Data<&Dravo>,
        limits: Data<&RateLimits>,
        auth: DashboardAuth,
        id: Path<Checked<AccountId>>,
    ) -> Result<AccountFound, RefreshError> {
        limits.token(&auth.0)?;
        let account = dravo.refresh_account(&auth.0, &id.0.0).await?;
        Ok(AccountFound::Ok(Json(account.into())))
    }

    /// Delete an account
    ///
    /// Revokes the grant at the provider where it can (X, LinkedIn, TikTok; Facebook by
    /// deleting the app's permissions), then deletes the account and its events even when the
    /// provider fails; the answer says which.
    #[oai(
        path = "/v1/accounts/:id",
        method = "delete",
        operation_id = "deleteAccount"
    )]
    async fn delete(
        &self,
        dravo: Data<&Dravo>,
        limits: Data<&RateLimits>,
        auth: DashboardAuth,
        id: Path<Checked<AccountId>>,
    ) -> Result<AccountDeleted, LimitedError> {
        limits.change(&auth.0)?;
        let deleted = dravo.delete_account(&auth.0, &id.0.0).await?;
        Ok(AccountDeleted::Ok(Json(deleted.into())))
    }

    /// Confirm a pending connection
    ///
    /// With `connect.require_confirmation` on, the callback keeps each new connection
    /// pending and sends the browser to your return URL with `status=pending`,
    /// `connection_id` and a one-time `confirm` code. Call this, as the tenant who started
    /// the flow, with that code within 10 minutes; until then the connection is not listed
    /// and its tokens cannot be read. 404 when there is no such pending connection for you
    /// (another tenant's, confirmed already, or expired); 400 when the code is wrong.
    #[oai(
        path = "/v1/accounts/:id/confirm",
        method = "post",
        operation_id = "confirmConnection"
    )]
    async fn confirm(
        &self,
        dravo: Data<&Dravo>,
        limits: Data<&RateLimits>,
        auth: DashboardAuth,
        id: Path<Checked<AccountId>>,
        body: Json<ConfirmConnection>,
    ) -> Result<AccountConfirmed, LimitedError> {
        limits.change(&auth.0)?;
        let account = dravo
            .confirm_connection(&auth.0, &id.0.0, &body.0.code)
            .await?;
        Ok(AccountConfirmed::Ok(Json(account.into())))
    }

    /// List an account's events
    ///
    /// What happened to the account, newest first: connected, reconnected, refreshed,
    /// refresh_failed, needs_reauth, recovered, expiring. The last 200 are kept.
    #[oai(
        path = "/v1/accounts/:id/events",
        method = "get",
        operation_id = "listAccountEvents"
    )]
    async fn events(
        &self,
        dravo: Data<&Dravo>,
        auth: DashboardAuth,
        id: Path<Checked<AccountId>>,
        /// Page size, 1 to 500 (default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page.
        #[oai(validator(min_length = 1, max_length = 64))]
        cursor: Query<Option<String>>,
    ) -> Result<EventList, ApiError> {
        let page = dravo
            .account_events(&auth.0, &id.0.0, cursor.0.as_deref(), limit.0)
            .await?;
        Ok(EventList::Ok(Json(EventPageView {
            data: page.items.into_iter().map(EventView::from).collect(),
            next_cursor: page.next_cursor,
        })))
    }
}
