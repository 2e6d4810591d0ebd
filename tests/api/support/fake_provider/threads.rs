//! The fake Threads: the code exchanged at graph.threads.net's `POST /token` (Dravo's config
//! points `token_url` there) for a short-lived token and the user id, that token exchanged at
//! `GET /access_token` (`th_exchange_token`, with the app secret) for a long-lived one, which
//! renews itself at `GET /refresh_access_token` (`th_refresh_token`, no secret). A client id
//! that is not the Threads app's is refused with Meta's error 4476002. Paths: `POST /token`,
//! `GET /access_token`, `GET /refresh_access_token`, `GET /v1.0/me`.

use super::graph::{Field, graph_code_message, graph_me, long_lived_exchange, self_refresh};
use super::*;

pub(super) struct Threads;

impl ProviderFake for Threads {
    fn id(&self) -> &'static str {
        "threads"
    }

    fn default_account(&self) -> (&'static str, Option<&'static str>) {
        (DEFAULT_THREADS_USER_ID, Some("fakeuser"))
    }

    fn denial(&self) -> &'static [(&'static str, &'static str)] {
        graph::DENIAL
    }

    fn is_token_path(&self, path: &str) -> bool {
        matches!(path, "/token" | "/access_token" | "/refresh_access_token")
    }

    fn token_shape(&self, _path: &str) -> Shape {
        Shape::Graph
    }

    fn token(&self, st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
        threads_token(st, c)
    }

    fn route(&self, st: &mut State, c: &Ctx) -> Option<Response> {
        match c.path.as_str() {
            "/access_token" => Some(render_token(
                Shape::Graph,
                false,
                long_lived_exchange(st, c, "th_exchange_token"),
            )),
            "/refresh_access_token" => Some(render_token(
                Shape::Graph,
                false,
                self_refresh(st, c, "th_refresh_token"),
            )),
            "/v1.0/me" => Some(identity(st, c)),
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
        graph_me(
            st,
            c,
            record.stage,
            "id",
            st.account.id.clone(),
            |account, field| match field {
                "username" => match &account.username {
                    Some(name) => Field::Value(json!(name)),
                    None => Field::Absent,
                },
                "threads_profile_picture_url" | "threads_biography" => Field::Absent,
                _ => Field::Unknown,
            },
        )
    }
}

fn threads_token(st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
    require_post_form(c)?;
    let f = &c.form;
    let bad = |m: &str| terr(400, "invalid_request", m);
    match f.non_empty("client_id") {
        Some(id) if id == st.client_id => {}
        // What Meta answers for an app id that is not a Threads app's (a Facebook app's).
        Some(_) => {
            return Err(terr(400, "OAuthException", "Invalid platform app").graph(4476002));
        }
        None => return Err(bad("Missing required parameter client_id")),
    }
    match f.non_empty("client_secret") {
        Some(secret) if secret == st.client_secret => {}
        Some(_) => {
            return Err(terr(400, "OAuthException", "Error validating client secret.").graph(1));
        }
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
    let client_id = st.client_id.clone();
    let grant = st
        .take_code(code, &client_id, redirect_uri)
        .map_err(|p| match p {
            CodeProblem::Unknown => bad("Invalid authorization code"),
            CodeProblem::Used => bad("This authorization code has been used"),
            other => bad(graph_code_message(other)),
        })?;
    let access = st.new_access(Stage::Short, grant.scopes.clone());
    // Meta's ids exceed 2^53: sent as a JSON number, as Threads does.
    let user_id = st
        .account
        .id
        .parse::<u64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::String(st.account.id.clone()));
    Ok(json!({"access_token": access, "user_id": user_id}))
}
