//! The fake Facebook: Graph's token endpoint called with GET and query parameters, a
//! short-lived token from the code exchanged for a long-lived one (`fb_exchange_token`), an app
//! token (`client_credentials`), the Pages the user manages, and a revoke by
//! `DELETE /me/permissions`. Graph paths carry a version (`/v25.0/me`). Paths: `GET /token`,
//! `GET /v{N}/me`, `GET /v{N}/me/accounts`, `DELETE /v{N}/me/permissions`.

use super::graph::{Field, exchangeable, graph_code_message, graph_me, strip_graph_version};
use super::*;

pub(super) struct Facebook;

impl ProviderFake for Facebook {
    fn id(&self) -> &'static str {
        "facebook"
    }

    fn default_account(&self) -> (&'static str, Option<&'static str>) {
        ("1029384756473829", None)
    }

    fn denial(&self) -> &'static [(&'static str, &'static str)] {
        graph::DENIAL
    }

    fn token_shape(&self, _path: &str) -> Shape {
        Shape::Graph
    }

    fn token(&self, st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
        facebook_token(st, c)
    }

    fn route(&self, st: &mut State, c: &Ctx) -> Option<Response> {
        match strip_graph_version(&c.path)? {
            "/me" => Some(identity(st, c)),
            "/me/permissions" => Some(revoke(st, c)),
            "/me/accounts" => Some(facebook_pages(st, c)),
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
            "id,name",
            st.account.id.clone(),
            |_, field| match field {
                "first_name" | "last_name" | "email" | "picture" => Field::Absent,
                _ => Field::Unknown,
            },
        )
    }

    /// Graph's revoke: `DELETE /me/permissions` with the user's token, no client secret.
    fn revoked_token(&self, st: &State, c: &Ctx) -> Result<String, Box<Response>> {
        if c.method != Method::DELETE {
            return Err(Box::new(identity_error(
                st.kind,
                405,
                "use DELETE /me/permissions",
            )));
        }
        let Some(token) = c.bearer_or_query() else {
            return Err(Box::new(identity_error(
                st.kind,
                401,
                "An active access token must be used",
            )));
        };
        if st.access_token(&token).is_none() {
            return Err(Box::new(identity_error(
                st.kind,
                401,
                "Invalid OAuth access token",
            )));
        }
        Ok(token)
    }

    fn revoked_body(&self) -> Value {
        json!({"success": true})
    }
}

fn facebook_token(st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
    if c.method != Method::GET {
        return Err(terr(
            405,
            "invalid_request",
            "fake: the facebook token endpoint is called with GET and query parameters",
        ));
    }
    let q = &c.query;
    let id = q
        .non_empty("client_id")
        .ok_or_else(|| terr(400, "invalid_request", "Missing client_id parameter.").graph(101))?;
    if id != st.client_id {
        return Err(terr(
            400,
            "invalid_client",
            "Error validating application. Invalid application ID.",
        )
        .graph(101));
    }
    let secret = q
        .non_empty("client_secret")
        .ok_or_else(|| terr(400, "invalid_client", "Missing client_secret parameter.").graph(1))?;
    if secret != st.client_secret {
        return Err(terr(400, "invalid_client", "Error validating client secret.").graph(1));
    }
    match q.get("grant_type") {
        // Meta's app access token: `{app id}|{random}` for a good id and secret (checked above).
        Some("client_credentials") => Ok(json!({
            "access_token": format!("{}|{}", st.client_id, random_string(27)),
            "token_type": "bearer",
        })),
        Some("fb_exchange_token") => {
            let old = q.non_empty("fb_exchange_token").ok_or_else(|| {
                terr(
                    400,
                    "invalid_request",
                    "Missing fb_exchange_token parameter.",
                )
                .graph(100)
            })?;
            let scopes = exchangeable(st, old, &[Stage::Short, Stage::Long])?;
            let access = st.new_access(Stage::Long, scopes);
            Ok(json!({"access_token": access, "token_type": "bearer", "expires_in": 5_184_000}))
        }
        Some(other) => Err(terr(
            400,
            "unsupported_grant_type",
            format!("Unsupported grant_type `{other}`."),
        )),
        None => {
            let code = q
                .non_empty("code")
                .ok_or_else(|| terr(400, "invalid_request", "Missing code parameter."))?;
            let redirect_uri = q
                .non_empty("redirect_uri")
                .ok_or_else(|| terr(400, "invalid_request", "Missing redirect_uri parameter."))?;
            let client_id = st.client_id.clone();
            let grant = st
                .take_code(code, &client_id, redirect_uri)
                .map_err(|p| terr(400, "invalid_grant", graph_code_message(p)))?;
            let access = st.new_access(Stage::Short, grant.scopes);
            Ok(json!({"access_token": access, "token_type": "bearer", "expires_in": 5183}))
        }
    }
}
/// `GET /me/accounts?fields=id,name,access_token,tasks[&after=]`: the Pages the user manages,
/// a page at a time, with Meta's `paging.cursors.after` and a `next` URL while more follow.
fn facebook_pages(st: &State, c: &Ctx) -> Response {
    let record = match api_token(st, c, &["pages_show_list"]) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    if record.stage != Stage::Long {
        return identity_error(st.kind, 400, "fake: exchange for a long-lived token first");
    }
    let fields: Vec<&str> = c
        .query
        .non_empty("fields")
        .unwrap_or("id,name")
        .split(',')
        .collect();
    let start = match c.query.non_empty("after") {
        None => 0,
        Some(cursor) => match URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<usize>().ok())
        {
            Some(n) => n,
            None => return identity_error(st.kind, 400, "Invalid cursor"),
        },
    };
    let limit = c
        .query
        .non_empty("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(25)
        .clamp(1, LIST_PAGE_SIZE);
    let slice: Vec<&FakePage> = st.pages.iter().skip(start).take(limit).collect();
    let data: Vec<Value> = slice
        .iter()
        .map(|p| {
            let mut page = Map::new();
            page.insert("id".into(), json!(p.id));
            if fields.contains(&"name") {
                page.insert("name".into(), json!(p.name));
            }
            if fields.contains(&"access_token") {
                page.insert("access_token".into(), json!(p.token));
            }
            if fields.contains(&"tasks") {
                page.insert("tasks".into(), json!(p.tasks));
            }
            Value::Object(page)
        })
        .collect();
    let end = start + slice.len();
    let cursor = |n: usize| URL_SAFE_NO_PAD.encode(n.to_string());
    let mut paging = json!({"cursors": {"before": cursor(start), "after": cursor(end)}});
    if end < st.pages.len() {
        paging["next"] = json!(format!(
            "{}{}?after={}&access_token=SECRET-DO-NOT-FOLLOW",
            st.base_url,
            c.path,
            cursor(end)
        ));
    }
    json_response(200, &json!({"data": data, "paging": paging}))
}
