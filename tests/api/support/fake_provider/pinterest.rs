//! The fake Pinterest (API v5): comma-separated scopes, no PKCE, the client authenticated by
//! HTTP Basic only (an id or secret in the form is refused), errors as `{code, message}`, and
//! continuous refresh: every refresh answers a new refresh token and the one used stops
//! working. No revoke endpoint. Paths: `POST /token` (Pinterest's `/v5/oauth/token`),
//! `GET /v5/user_account`.

use super::*;

pub(super) struct Pinterest;

/// Access tokens live 30 days.
const ACCESS_LIFETIME: u64 = 2_592_000;

impl ProviderFake for Pinterest {
    fn id(&self) -> &'static str {
        "pinterest"
    }

    fn default_account(&self) -> (&'static str, Option<&'static str>) {
        ("549755885175", Some("fakeuser"))
    }

    fn token_shape(&self, _path: &str) -> Shape {
        Shape::Pinterest
    }

    fn token(&self, st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
        pinterest_token(st, c)
    }

    fn route(&self, st: &mut State, c: &Ctx) -> Option<Response> {
        match c.path.as_str() {
            "/v5/user_account" => Some(identity(st, c)),
            _ => None,
        }
    }

    fn api_error(&self, status: u16, message: &str) -> Value {
        json!({"code": if status == 401 { 2 } else { 1 }, "message": message})
    }

    fn me(&self, st: &State, _c: &Ctx, record: &AccessToken) -> Response {
        if !record.scopes.iter().any(|s| s == "user_accounts:read") {
            return identity_error(st.kind, 403, "user_accounts:read was not granted");
        }
        let account = &st.account;
        let mut user = Map::new();
        user.insert("account_type".into(), json!("BUSINESS"));
        user.insert("id".into(), json!(account.id));
        if let Some(username) = &account.username {
            user.insert("username".into(), json!(username));
        }
        if let Some(name) = &account.display_name {
            user.insert("business_name".into(), json!(name));
        }
        user.insert(
            "profile_image".into(),
            json!(format!("{}/static/{}.jpg", st.base_url, account.id)),
        );
        json_response(200, &Value::Object(user))
    }
}

fn pinterest_token(st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
    require_post_form(c)?;
    let f = &c.form;
    let unauthorized = || terr(401, "invalid_client", "Authentication failed.");
    let (id, secret) = c.basic().ok_or_else(unauthorized)?;
    if !st.secret_matches(&id, &secret) {
        return Err(unauthorized());
    }
    if f.has("client_secret") {
        return Err(terr(
            400,
            "invalid_request",
            "client credentials go in the Authorization header",
        ));
    }
    let client_id = st.client_id.clone();
    let scopes = match f.get("grant_type") {
        Some("authorization_code") => {
            let code = f.non_empty("code").ok_or_else(|| missing("code"))?;
            let redirect_uri = f
                .non_empty("redirect_uri")
                .ok_or_else(|| missing("redirect_uri"))?;
            let grant = st.take_code(code, &client_id, redirect_uri).map_err(|p| {
                let m = match p {
                    CodeProblem::Used => "Authorization code has already been used.",
                    CodeProblem::WrongRedirect => "redirect_uri does not match.",
                    _ => "Invalid authorization code.",
                };
                terr(400, "invalid_grant", m)
            })?;
            grant.scopes
        }
        Some("refresh_token") => {
            let old = f
                .non_empty("refresh_token")
                .ok_or_else(|| missing("refresh_token"))?;
            // Continuous refresh: the token used is spent.
            st.use_refresh(old, true)
                .ok_or_else(|| terr(400, "invalid_grant", "Invalid refresh token."))?
                .scopes
        }
        Some(other) => {
            return Err(terr(
                400,
                "unsupported_grant_type",
                format!("grant_type `{other}` is not supported"),
            ));
        }
        None => return Err(missing("grant_type")),
    };
    let access = st.new_access(Stage::Normal, scopes.clone());
    let refresh = st.new_refresh(scopes.clone());
    Ok(json!({
        "access_token": access,
        "refresh_token": refresh,
        "response_type": "authorization_code",
        "token_type": "bearer",
        "expires_in": ACCESS_LIFETIME,
        "refresh_token_expires_in": st.refresh_lifetime,
        "scope": scopes.join(","),
    }))
}
