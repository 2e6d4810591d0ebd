//! The fake Instagram (Instagram API with Instagram Login): the code exchanged at
//! api.instagram.com's `POST /token` for a short-lived token and the user id (a JSON number
//! above 2^53), that token exchanged at graph.instagram.com for a long-lived one, which
//! refreshes itself; the code arrives with `#_` after it. Paths: `POST /token`,
//! `GET /access_token`, `GET /refresh_access_token`, `GET /me`.

use super::graph::{Field, graph_code_message, graph_me, long_lived_exchange, self_refresh};
use super::*;

pub(super) struct Instagram;

impl ProviderFake for Instagram {
    fn id(&self) -> &'static str {
        "instagram"
    }

    fn default_account(&self) -> (&'static str, Option<&'static str>) {
        (DEFAULT_INSTAGRAM_USER_ID, Some("fakeuser"))
    }

    fn denial(&self) -> &'static [(&'static str, &'static str)] {
        graph::DENIAL
    }

    /// The state first, then the code, and the `#_` Instagram appends to the redirect.
    fn code_redirect(
        &self,
        redirect: &mut Url,
        code_value: &str,
        state: &str,
        hash_in_query: bool,
    ) {
        redirect
            .query_pairs_mut()
            .append_pair("state", state)
            .append_pair("code", code_value);
        if !hash_in_query {
            redirect.set_fragment(Some("_"));
        }
    }

    fn is_token_path(&self, path: &str) -> bool {
        matches!(path, "/token" | "/access_token" | "/refresh_access_token")
    }

    /// api.instagram.com's own error shape at `/token`, Graph's elsewhere.
    fn token_shape(&self, path: &str) -> Shape {
        if path == "/token" {
            Shape::InstagramApi
        } else {
            Shape::Graph
        }
    }

    fn token(&self, st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
        instagram_token(st, c)
    }

    fn route(&self, st: &mut State, c: &Ctx) -> Option<Response> {
        match c.path.as_str() {
            "/access_token" => Some(render_token(
                Shape::Graph,
                false,
                long_lived_exchange(st, c, "ig_exchange_token"),
            )),
            "/refresh_access_token" => Some(render_token(
                Shape::Graph,
                false,
                self_refresh(st, c, "ig_refresh_token"),
            )),
            "/me" => Some(identity(st, c)),
            _ => None,
        }
    }

    fn user_token(&self, c: &Ctx) -> Option<String> {
        c.bearer_or_query()
    }

    fn api_error(&self, status: u16, message: &str) -> Value {
        graph::api_error(status, message)
    }

    fn me(&self, st: &State, c: &Ctx, record: &AccessToken) -> Response {
        let id = app_scoped_id(&st.account.id);
        graph_me(
            st,
            c,
            record.stage,
            "id",
            id,
            |account, field| match field {
                "user_id" => Field::Value(instagram_user_id(&account.id)),
                "username" => match &account.username {
                    Some(name) => Field::Value(json!(name)),
                    None => Field::Absent,
                },
                "account_type" => Field::Value(json!("BUSINESS")),
                "profile_picture_url" | "followers_count" | "follows_count" | "media_count" => {
                    Field::Absent
                }
                _ => Field::Unknown,
            },
        )
    }
}

/// The instagram user id as a JSON number when it fits in a u64, else a string.
fn instagram_user_id(id: &str) -> Value {
    id.parse::<u64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::String(id.into()))
}

/// An app-scoped id distinct from (but stable for) the user id, as Graph's `id` field.
fn app_scoped_id(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    let mut eight = [0u8; 8];
    eight.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(eight) % 9_000_000_000_000_000 + 1_000_000_000_000_000).to_string()
}

fn instagram_token(st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
    require_post_form(c)?;
    let f = &c.form;
    let bad = |m: &str| terr(400, "invalid_request", m);
    match f.non_empty("client_id") {
        Some(id) if id == st.client_id => {}
        Some(_) => return Err(bad("Invalid platform app")),
        None => return Err(bad("Missing required parameter client_id")),
    }
    match f.non_empty("client_secret") {
        Some(secret) if secret == st.client_secret => {}
        Some(_) => return Err(bad("Error validating client secret.")),
        None => return Err(bad("Missing required parameter client_secret")),
    }
    match f.get("grant_type") {
        Some("authorization_code") => {}
        Some(_) => return Err(bad("Invalid grant_type: expected authorization_code")),
        None => return Err(bad("Missing required parameter grant_type")),
    }
    let redirect_uri = f
        .non_empty("redirect_uri")
        .ok_or_else(|| bad("Missing required parameter redirect_uri"))?;
    let code = f
        .non_empty("code")
        .ok_or_else(|| bad("Missing required parameter code"))?;
    if code.contains('#') {
        return Err(bad("Invalid authorization code"));
    }
    let client_id = st.client_id.clone();
    let grant = st
        .take_code(code, &client_id, redirect_uri)
        .map_err(|p| match p {
            CodeProblem::Unknown => bad("Invalid authorization code"),
            CodeProblem::Used => bad("This authorization code has been used"),
            other => bad(graph_code_message(other)),
        })?;
    let access = st.new_access(Stage::Short, grant.scopes.clone());
    let body = json!({
        "access_token": access,
        "user_id": instagram_user_id(&st.account.id),
        "permissions": grant.scopes.join(","),
    });
    if st.fault == Fault::InstagramDataWrapper {
        Ok(json!({"data": [body]}))
    } else {
        Ok(body)
    }
}
