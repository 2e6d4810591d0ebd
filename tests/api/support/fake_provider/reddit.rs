//! The fake Reddit: space-separated scopes, no PKCE, `duration=permanent` required on the
//! consent URL (without it Reddit issues no refresh token), the client authenticated by HTTP
//! Basic (a failed one answers Reddit's 401 `{"message": "Unauthorized", "error": 401}`), a
//! refresh token that neither rotates nor expires (a refresh answers none), an
//! app-only token (`client_credentials`), a revoke that answers 204 without a body, and, as
//! Reddit throttles them, every API and token call without a descriptive `User-Agent`
//! refused: none at all is 403, a generic one (`dravo/0.1.0`, `reqwest/…`: no
//! `<platform>:<app id>:<version>`) 429. Paths: `POST /token` (Reddit's `access_token`),
//! `POST /revoke_token`, `GET /api/v1/me`.

use super::*;

pub(super) struct Reddit;

impl ProviderFake for Reddit {
    fn id(&self) -> &'static str {
        "reddit"
    }

    fn default_account(&self) -> (&'static str, Option<&'static str>) {
        ("1fakeid9", Some("fakeuser"))
    }

    fn scope_separator(&self) -> char {
        ' '
    }

    fn check_authorize(&self, _st: &State, q: &Params) -> Result<(), String> {
        match q.get("duration") {
            Some("permanent") => Ok(()),
            other => Err(format!(
                "reddit issues a refresh token only with duration=permanent, got {other:?}"
            )),
        }
    }

    fn refuse(&self, c: &Ctx) -> Option<Response> {
        let agent = c
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim();
        if agent.is_empty() {
            return Some(json_response(
                403,
                &json!({"message": "Forbidden", "error": 403, "reason": "no User-Agent"}),
            ));
        }
        // Reddit asks for `<platform>:<app id>:<version> (by /u/<username>)`.
        if agent.split(':').count() < 3 {
            return Some(json_response(
                429,
                &json!({"message": "Too Many Requests", "error": 429}),
            ));
        }
        None
    }

    fn token_shape(&self, _path: &str) -> Shape {
        Shape::Reddit
    }

    fn token(&self, st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
        reddit_token(st, c)
    }

    fn route(&self, st: &mut State, c: &Ctx) -> Option<Response> {
        match c.path.as_str() {
            "/api/v1/me" => Some(identity(st, c)),
            "/revoke_token" => {
                let answer = revoke(st, c);
                Some(if answer.status() == StatusCode::OK {
                    Response::builder().status(StatusCode::NO_CONTENT).finish()
                } else {
                    answer
                })
            }
            _ => None,
        }
    }

    fn api_error(&self, status: u16, message: &str) -> Value {
        json!({"message": message, "error": status})
    }

    fn me(&self, st: &State, _c: &Ctx, record: &AccessToken) -> Response {
        if !record.scopes.iter().any(|s| s == "identity") {
            return identity_error(st.kind, 403, "identity was not granted");
        }
        let account = &st.account;
        let mut me = Map::new();
        me.insert("id".into(), json!(account.id));
        if let Some(name) = &account.username {
            me.insert("name".into(), json!(name));
        }
        me.insert(
            "icon_img".into(),
            json!(format!(
                "{}/static/{}.png?width=256&s=abc",
                st.base_url, account.id
            )),
        );
        me.insert(
            "subreddit".into(),
            json!({"title": account.display_name.clone().unwrap_or_default(),
                   "display_name_prefixed": format!("u/{}", account.username.clone().unwrap_or_default())}),
        );
        json_response(200, &Value::Object(me))
    }

    fn revoke_authenticated(&self, st: &State, c: &Ctx) -> bool {
        c.basic()
            .is_some_and(|(id, secret)| st.secret_matches(&id, &secret))
    }
}

fn reddit_token(st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
    require_post_form(c)?;
    let f = &c.form;
    let unauthorized = || terr(401, "invalid_client", "Unauthorized");
    let (id, secret) = c.basic().ok_or_else(unauthorized)?;
    if !st.secret_matches(&id, &secret) {
        return Err(unauthorized());
    }
    let client_id = st.client_id.clone();
    match f.get("grant_type") {
        Some("client_credentials") => Ok(json!({
            "access_token": format!("app-only-{}", random_string(30)),
            "token_type": "bearer",
            "expires_in": 86_400,
            "scope": "*",
        })),
        Some("authorization_code") => {
            let code = f.non_empty("code").ok_or_else(|| missing("code"))?;
            let redirect_uri = f
                .non_empty("redirect_uri")
                .ok_or_else(|| missing("redirect_uri"))?;
            let grant = st
                .take_code(code, &client_id, redirect_uri)
                .map_err(|_| terr(400, "invalid_grant", "invalid_grant"))?;
            let access = st.new_access(Stage::Normal, grant.scopes.clone());
            let refresh = st.new_refresh(grant.scopes.clone());
            Ok(json!({
                "access_token": access,
                "token_type": "bearer",
                "expires_in": 3600,
                "refresh_token": refresh,
                "scope": grant.scopes.join(" "),
            }))
        }
        Some("refresh_token") => {
            let token = f
                .non_empty("refresh_token")
                .ok_or_else(|| missing("refresh_token"))?;
            // Not rotated: the same refresh token keeps working, and the answer names none.
            let scopes = st
                .use_refresh(token, false)
                .ok_or_else(|| terr(400, "invalid_grant", "invalid_grant"))?
                .scopes;
            let access = st.new_access(Stage::Normal, scopes.clone());
            Ok(json!({
                "access_token": access,
                "token_type": "bearer",
                "expires_in": 3600,
                "scope": scopes.join(" "),
            }))
        }
        Some(_) => Err(terr(
            400,
            "unsupported_grant_type",
            "unsupported_grant_type",
        )),
        None => Err(missing("grant_type")),
    }
}
