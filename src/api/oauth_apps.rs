//! `/v1/oauth-apps`: BYOK OAuth app configs.

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::error::{ApiError, LimitedError};
use crate::api::limits::RateLimits;
use crate::api::payload::JsonBody;
use crate::api::rendered::{ListKey, RenderedLists};
use crate::api::{ApiTags, DashboardAuth};
use crate::domain::Provider;
use crate::domain::{AppId, AppName, ClientId, ClientSecret, UserAgent};
use crate::service::{AppChanges, Dravo, NewApp};
use crate::wire::values::{Checked, Omittable, ScopeList};
use crate::wire::views::{AppCheckView, OAuthAppView};

/// The body of `POST /v1/oauth-apps`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct CreateOAuthApp {
    pub provider: Checked<Provider>,
    /// 1 to 120 characters.
    pub name: Checked<AppName>,
    /// Your app's client id / client key. Required for every provider but mastodon, which
    /// refuses it: Dravo registers a mastodon app on each instance users connect from.
    #[oai(skip_serializing_if_is_none)]
    pub client_id: Omittable<Checked<ClientId>>,
    /// Your app's client secret (stored encrypted). Required with `client_id`.
    #[oai(skip_serializing_if_is_none)]
    pub client_secret: Omittable<Checked<ClientSecret>>,
    /// The app's website: the instances Dravo registers a mastodon app on show it with the
    /// app's name (stored for every provider, used by mastodon's).
    #[oai(skip_serializing_if_is_none, validator(max_length = 2048))]
    pub website: Omittable<String>,
    /// Scopes to request instead of the provider's defaults.
    #[oai(skip_serializing_if_is_none)]
    pub scopes: Omittable<ScopeList>,
    /// The `User-Agent` of the app's calls to its provider, instead of the provider's default
    /// (Reddit's: `web:dravo:<version> (by Dravo, self-hosted)`). Reddit throttles generic
    /// user agents and asks for `<platform>:<app id>:<version> (by /u/<username>)`.
    #[oai(skip_serializing_if_is_none)]
    pub user_agent: Omittable<Checked<UserAgent>>,
}

/// The name of the example app: not the quick start's ("My X App"), so the first "Try it
/// out" in Swagger UI creates an app instead of answering 409.
pub const EXAMPLE_APP_NAME: &str = "Swagger example app";

impl Example for CreateOAuthApp {
    fn example() -> Self {
        CreateOAuthApp {
            provider: Checked("x".parse().expect("x is registered")),
            name: Checked(AppName::parse(EXAMPLE_APP_NAME).expect("valid")),
            client_id: Omittable(Some(Checked(ClientId::parse("…").expect("valid")))),
            client_secret: Omittable(Some(Checked(ClientSecret::parse("…").expect("valid")))),
            website: Omittable(None),
            scopes: Omittable(None),
            user_agent: Omittable(None),
        }
    }
}

/// The body of `PATCH /v1/oauth-apps/{id}`: at least one field; each one given replaces the
/// stored value.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct UpdateOAuthApp {
    /// A new name, 1 to 120 characters, unique per provider.
    #[oai(skip_serializing_if_is_none)]
    pub name: Omittable<Checked<AppName>>,
    /// Scopes to request from now on (accounts already connected keep their grants).
    #[oai(skip_serializing_if_is_none)]
    pub scopes: Omittable<ScopeList>,
    /// A new client secret (stored encrypted): clears `credentials_error`, and accounts whose
    /// refreshes failed because the provider refused the old one are retried at once.
    #[oai(skip_serializing_if_is_none)]
    pub client_secret: Omittable<Checked<ClientSecret>>,
    /// A new `User-Agent` for the app's calls to its provider; `null` goes back to the
    /// provider's default.
    #[oai(skip_serializing_if_is_none, nullable)]
    pub user_agent: Omittable<Option<Checked<UserAgent>>>,
}

impl Example for UpdateOAuthApp {
    fn example() -> Self {
        UpdateOAuthApp {
            name: Omittable(None),
            scopes: Omittable(None),
            client_secret: Omittable(Some(Checked(ClientSecret::parse("…").expect("valid")))),
            user_agent: Omittable(None),
        }
    }
}

#[derive(ApiResponse)]
pub enum CreatedApp {
    /// Created: the stored app, with the `redirect_uri` to register at the provider;
    /// `Location` is its URL.
    #[oai(status = 201)]
    Created(Json<OAuthAppView>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub enum AppList {
    /// Your OAuth apps (of the provider asked for), oldest first; an empty array when none.
    #[oai(status = 200)]
    Ok(JsonBody<Vec<OAuthAppView>>),
}

#[derive(ApiResponse)]
pub enum AppFound {
    /// The OAuth app.
    #[oai(status = 200)]
    Ok(Json<OAuthAppView>),
}

#[derive(ApiResponse)]
pub enum AppUpdated {
    /// The OAuth app as it is now.
    #[oai(status = 200)]
    Ok(Json<OAuthAppView>),
}

#[derive(ApiResponse)]
pub enum AppChecked {
    /// The check ran: what each check found (a problem found is `failed` here, not an error
    /// status). It is also stored as the app's `last_check`.
    #[oai(status = 200)]
    Ok(Json<AppCheckView>),
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted, with its sealed secret (and, with `cascade=true`, its connected accounts).
    #[oai(status = 204)]
    NoContent,
}

#[derive(Default)]
pub struct OAuthAppsApi {
    /// The list's rendered bodies (see `rendered`).
    rendered: RenderedLists,
}

#[OpenApi(tag = "ApiTags::OauthApps")]
impl OAuthAppsApi {
    /// Create an OAuth app
    ///
    /// Create a BYOK OAuth app config (your client_id/client_secret). The secret is
    /// encrypted and never returned. A scope the provider does not document (a typo such as
    /// `tweet.wirte`) is stored as given, and the answer's `warnings` name it, with the scope
    /// it most likely meant.
    #[oai(
        path = "/v1/oauth-apps",
        method = "post",
        operation_id = "createOAuthApp"
    )]
    async fn create(
        &self,
        dravo: Data<&Dravo>,
        limits: Data<&RateLimits>,
        auth: DashboardAuth,
        body: Json<CreateOAuthApp>,
    ) -> Result<CreatedApp, LimitedError> {
        limits.create(&auth.0)?;
        let body = body.0;
        let new = NewApp {
            provider: body.provider.0,
            name: body.name.0,
            client_id: body.client_id.0.map(|c| c.0),
            client_secret: body.client_secret.0.map(|c| c.0),
            website: body.website.0,
            scopes: body.scopes.0.map(|s| s.0),
            user_agent: body.user_agent.0.map(|ua| ua.0),
        };
        let app = dravo.create_app(&auth.0, new).await?;
        let location = format!("/v1/oauth-apps/{}", app.id);
        Ok(CreatedApp::Created(Json(app.into()), location))
    }

    /// List OAuth apps
    ///
    /// List your BYOK OAuth app configs, oldest first. Includes the redirect_uri to register
    /// and the scopes Dravo will request. Secrets are never returned.
    #[oai(
        path = "/v1/oauth-apps",
        method = "get",
        operation_id = "listOAuthApps"
    )]
    async fn list(
        &self,
        dravo: Data<&Dravo>,
        auth: DashboardAuth,
        /// Filter by provider.
        provider: Query<Option<Checked<Provider>>>,
    ) -> Result<AppList, ApiError> {
        let provider = provider.0.map(|p| p.0);
        let key = ListKey::Apps(auth.0.clone(), provider);
        // Taken before the list is read: see `rendered`.
        let version = dravo.read_version().await?;
        if let Some(body) = self.rendered.get(&key, version) {
            return Ok(AppList::Ok(JsonBody::from_rendered(body)));
        }
        let apps = dravo.list_apps(&auth.0, provider).await?;
        let views: Vec<OAuthAppView> = apps.into_iter().map(Into::into).collect();
        let body = JsonBody::render(&views);
        self.rendered.put(key, version, &body);
        Ok(AppList::Ok(JsonBody::from_rendered(body)))
    }

    /// Get an OAuth app
    #[oai(
        path = "/v1/oauth-apps/:id",
        method = "get",
        operation_id = "getOAuthApp"
    )]
    async fn get(
        &self,
        dravo: Data<&Dravo>,
        auth: DashboardAuth,
        id: Path<Checked<AppId>>,
    ) -> Result<AppFound, ApiError> {
        let app = dravo.get_app(&auth.0, &id.0.0).await?;
        Ok(AppFound::Ok(Json(app.into())))
    }

    /// Update an OAuth app
    ///
    /// Change an app's `name`, `scopes`, `client_secret` and/or `user_agent` (at least one;
    /// a `null` user agent goes back to the provider's default). A new secret
    /// is encrypted like the first, clears `credentials_error`, and makes the app's accounts
    /// whose refreshes the old one failed due again. New scopes apply to connects started
    /// from now on.
    #[oai(
        path = "/v1/oauth-apps/:id",
        method = "patch",
        operation_id = "updateOAuthApp"
    )]
    async fn update(
        &self,
        dravo: Data<&Dravo>,
        limits: Data<&RateLimits>,
        auth: DashboardAuth,
        id: Path<Checked<AppId>>,
        body: Json<UpdateOAuthApp>,
    ) -> Result<AppUpdated, LimitedError> {
        limits.change(&auth.0)?;
        let body = body.0;
        let changes = AppChanges {
            name: body.name.0.map(|n| n.0),
            scopes: body.scopes.0.map(|s| s.0),
            client_secret: body.client_secret.0.map(|s| s.0),
            user_agent: body.user_agent.0.map(|ua| ua.map(|ua| ua.0)),
        };
        let app = dravo.update_app(&auth.0, &id.0.0, changes).await?;
        Ok(AppUpdated::Ok(Json(app.into())))
    }

    /// Check an OAuth app
    ///
    /// Check the app's configuration before users meet the error: `client_credentials` (the
    /// provider proves the client id and secret where it offers a server-side grant for it:
    /// Facebook and TikTok; `unknown` elsewhere), `redirect_uri` (absolute, `https` unless on
    /// a loopback host, matching `server.public_url`, by the provider's rules), `scopes` (known
    /// to the provider, the ones Dravo needs to identify an account included), and
    /// `public_url_reachable` (Dravo's `/healthz` answers, asked from this machine through
    /// `server.public_url`; only ever a `warning`). Stored as the app's `last_check`. 409
    /// `conflict` when the app's secret or scopes changed during the check. Checks count
    /// against the tenant's app-creation rate limit (`limits.create_per_second`).
    #[oai(
        path = "/v1/oauth-apps/:id/check",
        method = "post",
        operation_id = "checkOAuthApp"
    )]
    async fn check(
        &self,
        dravo: Data<&Dravo>,
        limits: Data<&RateLimits>,
        auth: DashboardAuth,
        id: Path<Checked<AppId>>,
    ) -> Result<AppChecked, LimitedError> {
        // A check calls the provider: it counts against the tenant's app-creation bucket.
        limits.create(&auth.0)?;
        let check = dravo.check_app(&auth.0, &id.0.0).await?;
        Ok(AppChecked::Ok(Json(check.into())))
    }

    /// Delete an OAuth app
    ///
    /// While connected accounts use the app this is refused with 409 `app_in_use`, unless
    /// `cascade=true`: then each account is revoked at its provider (where it can be) and
    /// deleted first, as `DELETE /v1/accounts/{id}` does.
    #[oai(
        path = "/v1/oauth-apps/:id",
        method = "delete",
        operation_id = "deleteOAuthApp"
    )]
    async fn delete(
        &self,
        dravo: Data<&Dravo>,
        auth: DashboardAuth,
        id: Path<Checked<AppId>>,
        /// `true` also deletes (and revokes) the accounts connected with the app.
        cascade: Query<Option<bool>>,
        limits: Data<&RateLimits>,
    ) -> Result<Deleted, LimitedError> {
        limits.change(&auth.0)?;
        dravo
            .delete_app(&auth.0, &id.0.0, cascade.0.unwrap_or(false))
            .await?;
        Ok(Deleted::NoContent)
    }
}
