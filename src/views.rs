//! The JSON shapes both faces print: the API's response bodies, and the CLI's `--json`
//! output (which is exactly what the API would return).

use poem_openapi::Object;
use poem_openapi::types::Example;

use crate::api::types::Checked;
use crate::service::{Account, OAuthApp};

/// A BYOK OAuth app. The client secret is never returned.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(rename = "OAuthApp", example)]
pub struct OAuthAppView {
    /// `oa_` and 20 lowercase base32 characters.
    pub id: String,
    pub provider: Checked<crate::domain::Provider>,
    pub name: String,
    pub client_id: String,
    /// The callback URL to register at the provider.
    pub redirect_uri: String,
    /// The scopes Dravo will request.
    pub scopes: Vec<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
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
            created_at: app.created_at.rfc3339(),
        }
    }
}

impl Example for OAuthAppView {
    fn example() -> Self {
        OAuthAppView {
            id: "oa_1".into(),
            provider: Checked("x".parse().expect("x is registered")),
            name: "My X App".into(),
            client_id: "…".into(),
            redirect_uri: "https://api.dravo.dev/v1/oauth/x/callback".into(),
            scopes: ["tweet.write", "media.write", "users.read", "offline.access"]
                .map(String::from)
                .to_vec(),
            created_at: "2026-01-01T00:00:00Z".into(),
        }
    }
}

/// A connected account.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(rename = "Account", example)]
pub struct AccountView {
    /// `acc_` and 20 lowercase base32 characters.
    pub id: String,
    pub provider: Checked<crate::domain::Provider>,
    /// The BYOK app it was connected with; null for the provider's default app.
    pub oauth_app_id: Option<String>,
    /// The account's id at the provider.
    pub provider_account_id: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
    /// The scopes the user granted.
    pub scopes: Vec<String>,
    /// `active` or `needs_reauth`.
    pub status: String,
    /// When the access token expires (RFC 3339, UTC); null when the provider did not say.
    pub expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
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
            status: a.status,
            expires_at: a.expires_at.map(|t| t.rfc3339()),
            created_at: a.created_at.rfc3339(),
            updated_at: a.updated_at.rfc3339(),
        }
    }
}

impl Example for AccountView {
    fn example() -> Self {
        AccountView {
            id: "acc_7d2kq4m5n6p7r2s3t4v5".into(),
            provider: Checked("x".parse().expect("x is registered")),
            oauth_app_id: Some("oa_4f3ka2m7q9x2c5v8b1n6".into()),
            provider_account_id: "1234567890".into(),
            username: Some("dravo_dev".into()),
            display_name: Some("Dravo".into()),
            scopes: ["tweet.read", "tweet.write", "users.read", "offline.access"]
                .map(String::from)
                .to_vec(),
            status: "active".into(),
            expires_at: Some("2026-01-01T02:00:00Z".into()),
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
