//! The fake X: PKCE (S256) required, the client authenticated by HTTP Basic (an id and
//! secret form-encoded first are accepted too), scopes space-separated, and a rotating refresh
//! token only with `offline.access`. Paths: `GET /2/users/me`, `POST /2/oauth2/revoke`.

use super::*;

pub(super) struct X;

impl ProviderFake for X {
    fn id(&self) -> &'static str {
        "x"
    }

    fn default_account(&self) -> (&'static str, Option<&'static str>) {
        ("1234567890", Some("fakeuser"))
    }

    fn scope_separator(&self) -> char {
        ' '
    }

    fn uses_pkce(&self) -> bool {
        true
    }

    fn invalid_client(&self) -> &'static str {
        "unauthorized_client"
    }

    fn token(&self, st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
        x_token(st, c)
    }

    fn route(&self, st: &mut State, c: &Ctx) -> Option<Response> {
        match c.path.as_str() {
            "/2/users/me" => Some(identity(st, c)),
            "/2/oauth2/revoke" => Some(revoke(st, c)),
            _ => None,
        }
    }

    fn api_error(&self, status: u16, message: &str) -> Value {
        let title = match status {
            401 => "Unauthorized",
            403 => "Forbidden",
            429 => "Too Many Requests",
            s if s >= 500 => "Service Unavailable",
            _ => "Invalid Request",
        };
        json!({"title": title, "type": "about:blank", "status": status, "detail": message})
    }

    fn me(&self, st: &State, _c: &Ctx, record: &AccessToken) -> Response {
        let has = |scope: &str| record.scopes.iter().any(|s| s == scope);
        if !(has("users.read") && has("tweet.read")) {
            return identity_error(
                st.kind,
                403,
                "GET /2/users/me needs users.read and tweet.read",
            );
        }
        let account = &st.account;
        let mut user = Map::new();
        user.insert("id".into(), json!(account.id));
        if let Some(name) = &account.display_name {
            user.insert("name".into(), json!(name));
        }
        if let Some(username) = &account.username {
            user.insert("username".into(), json!(username));
        }
        json_response(200, &json!({"data": user}))
    }

    /// X's revoke authenticates the client by HTTP Basic, as its token endpoint does.
    fn revoke_authenticated(&self, st: &State, c: &Ctx) -> bool {
        c.basic()
            .is_some_and(|(id, secret)| st.secret_matches(&id, &secret))
    }

    fn revoked_body(&self) -> Value {
        json!({"revoked": true})
    }
}

fn x_token(st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
    require_post_form(c)?;
    let f = &c.form;
    let unauthorized = || {
        terr(
            401,
            "unauthorized_client",
            "Missing valid authorization header",
        )
    };
    let (id, secret) = c.basic().ok_or_else(unauthorized)?;
    let decoded = |s: &str| {
        url::form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    if !st.secret_matches(&id, &secret) && !st.secret_matches(&decoded(&id), &decoded(&secret)) {
        return Err(unauthorized());
    }
    if f.get("client_id")
        .is_some_and(|body_id| body_id != st.client_id)
    {
        return Err(terr(
            401,
            "unauthorized_client",
            "client_id in the body does not match the authorization header",
        ));
    }
    let client_id = st.client_id.clone();
    match f.get("grant_type") {
        Some("authorization_code") => {
            let code = f.non_empty("code").ok_or_else(|| missing("code"))?;
            let redirect_uri = f
                .non_empty("redirect_uri")
                .ok_or_else(|| missing("redirect_uri"))?;
            let verifier = f
                .non_empty("code_verifier")
                .ok_or_else(|| missing("code_verifier"))?;
            let invalid = || {
                terr(
                    400,
                    "invalid_request",
                    "Value passed for the authorization code was invalid.",
                )
            };
            let grant = st
                .take_code(code, &client_id, redirect_uri)
                .map_err(|_| invalid())?;
            let verifier_ok = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if !verifier_ok || grant.code_challenge.as_deref() != Some(challenge.as_str()) {
                return Err(invalid());
            }
            Ok(x_tokens(st, grant.scopes))
        }
        Some("refresh_token") => {
            let old = f
                .non_empty("refresh_token")
                .ok_or_else(|| missing("refresh_token"))?;
            let r = st.use_refresh(old, true).ok_or_else(|| {
                terr(
                    400,
                    "invalid_grant",
                    "Value passed for the token was invalid.",
                )
            })?;
            Ok(x_tokens(st, r.scopes))
        }
        Some(other) => Err(terr(
            400,
            "unsupported_grant_type",
            format!("grant_type `{other}` is not supported"),
        )),
        None => Err(missing("grant_type")),
    }
}

fn x_tokens(st: &mut State, scopes: Vec<String>) -> Value {
    let access = st.new_access(Stage::Normal, scopes.clone());
    let mut body = json!({
        "token_type": "bearer",
        "expires_in": 7200,
        "access_token": access,
        "scope": scopes.join(" "),
    });
    if scopes.iter().any(|s| s == "offline.access") {
        body["refresh_token"] = Value::String(st.new_refresh(scopes));
    }
    body
}
