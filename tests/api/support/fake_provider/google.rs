//! What the fake YouTube and the fake Google Business Profile share: Google's OAuth 2.0. The
//! client id and secret in the form body; PKCE S256; a refresh token only when the consent
//! asked for offline access with `prompt=consent`; refresh tokens that do not rotate, and
//! `refresh_token_expires_in` only for an app in "Testing" (a test that set a refresh
//! lifetime); the granted `scope` with `email` and `profile` under their long names;
//! `invalid_grant` "Token has been expired or revoked."; userinfo at `GET /v1/userinfo`;
//! `POST /revoke` with the token and no client authentication, answering an empty 200.

use super::*;

/// Google's errors from its APIs: `{"error": {"code", "message", "status"}}`.
pub(super) fn api_error(status: u16, message: &str) -> Value {
    let kind = match status {
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        _ => "INVALID_ARGUMENT",
    };
    json!({"error": {"code": status, "message": message, "status": kind}})
}

/// The long name Google answers in a grant's `scope` for a short one.
fn granted_name(scope: &str) -> &str {
    match scope {
        "email" => "https://www.googleapis.com/auth/userinfo.email",
        "profile" => "https://www.googleapis.com/auth/userinfo.profile",
        other => other,
    }
}

pub(super) fn token(st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
    require_post_form(c)?;
    let f = &c.form;
    let (id, secret) = match (f.non_empty("client_id"), f.non_empty("client_secret")) {
        (Some(id), Some(secret)) => (id.to_owned(), secret.to_owned()),
        _ => {
            return Err(terr(
                401,
                "invalid_client",
                "The OAuth client was not found.",
            ));
        }
    };
    if !st.secret_matches(&id, &secret) {
        return Err(terr(401, "invalid_client", "Unauthorized"));
    }
    match f.get("grant_type") {
        Some("authorization_code") => {
            let code = f.non_empty("code").ok_or_else(|| missing("code"))?;
            let redirect_uri = f
                .non_empty("redirect_uri")
                .ok_or_else(|| missing("redirect_uri"))?;
            let grant = st.take_code(code, &id, redirect_uri).map_err(|p| match p {
                CodeProblem::WrongRedirect => terr(400, "redirect_uri_mismatch", "Bad Request"),
                _ => terr(400, "invalid_grant", "Malformed auth code."),
            })?;
            let verifier = f
                .non_empty("code_verifier")
                .ok_or_else(|| terr(400, "invalid_grant", "Missing code verifier."))?;
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if grant.code_challenge.as_deref() != Some(challenge.as_str()) {
                return Err(terr(400, "invalid_grant", "Invalid code verifier."));
            }
            let asked = |name: &str, value: &str| {
                grant
                    .authorize_params
                    .iter()
                    .any(|(k, v)| k == name && v == value)
            };
            let offline = asked("access_type", "offline") && asked("prompt", "consent");
            Ok(tokens(st, grant.scopes, offline))
        }
        Some("refresh_token") => {
            let token = f
                .non_empty("refresh_token")
                .ok_or_else(|| missing("refresh_token"))?;
            let r = st
                .use_refresh(token, false)
                .filter(|r| st.refresh_left(r) > 0)
                .ok_or_else(|| terr(400, "invalid_grant", "Token has been expired or revoked."))?;
            let access = st.new_access(Stage::Normal, r.scopes.clone());
            let mut body = json!({
                "access_token": access,
                "expires_in": 3599,
                "scope": scope_text(&r.scopes),
                "token_type": "Bearer",
            });
            if r.lifetime < DEFAULT_REFRESH_LIFETIME {
                body["refresh_token_expires_in"] = json!(st.refresh_left(&r));
            }
            Ok(body)
        }
        Some(other) => Err(terr(
            400,
            "unsupported_grant_type",
            format!("Invalid grant_type: {other}"),
        )),
        None => Err(missing("grant_type")),
    }
}

fn scope_text(scopes: &[String]) -> String {
    scopes
        .iter()
        .map(|s| granted_name(s))
        .collect::<Vec<_>>()
        .join(" ")
}

fn tokens(st: &mut State, scopes: Vec<String>, offline: bool) -> Value {
    let access = st.new_access(Stage::Normal, scopes.clone());
    let mut body = json!({
        "access_token": access,
        "expires_in": 3599,
        "scope": scope_text(&scopes),
        "token_type": "Bearer",
    });
    if offline {
        let testing = st.refresh_lifetime < DEFAULT_REFRESH_LIFETIME;
        body["refresh_token"] = Value::String(st.new_refresh(scopes));
        if testing {
            body["refresh_token_expires_in"] = json!(st.refresh_lifetime);
        }
    }
    body
}

/// `GET /v1/userinfo`: `sub` with any of the OpenID scopes, `name` with `profile`, `email`
/// with `email`.
pub(super) fn me(st: &State, record: &AccessToken) -> Response {
    let has = |scope: &str| record.scopes.iter().any(|s| s == scope);
    if !(has("openid") || has("email") || has("profile")) {
        return identity_error(
            st.kind,
            401,
            "Request is missing required authentication credential.",
        );
    }
    let account = &st.account;
    let mut body = json!({"sub": account.id});
    if has("profile") {
        body["name"] = json!(account.display_name);
        body["picture"] = json!(format!("{}/photo/{}.jpg", st.base_url, account.id));
    }
    if has("email") {
        body["email"] = json!(account.username);
        body["email_verified"] = json!(true);
    }
    json_response(200, &body)
}

/// `POST /revoke`, form `token`: a refresh token ends the grant, its access tokens with it.
pub(super) fn revoke(st: &mut State, c: &Ctx) -> Response {
    if let Fault::RevokeStatus(status) = st.fault {
        return json_response(status, &json!({"error": "server_error"}));
    }
    if let Err(e) = require_post_form(c) {
        return render_token(Shape::OAuth, false, Err(e));
    }
    let Some(token) = c.form.non_empty("token").map(str::to_owned) else {
        return render_token(Shape::OAuth, false, Err(missing("token")));
    };
    let known = st.refresh.contains_key(&token) || st.access.contains_key(&token);
    if !known {
        return json_response(
            400,
            &json!({"error": "invalid_token", "error_description": "Token expired or revoked"}),
        );
    }
    if let Some(r) = st.refresh.get_mut(&token) {
        r.valid = false;
        for a in st.access.values_mut() {
            a.valid = false;
        }
    }
    if let Some(a) = st.access.get_mut(&token) {
        a.valid = false;
    }
    st.revoked.push(token);
    Response::builder().status(StatusCode::OK).finish()
}

/// The offset a `pageToken` names (the fake's tokens are offsets), 0 without one.
pub(super) fn page_offset(c: &Ctx) -> Result<usize, Box<Response>> {
    match c.query.get("pageToken") {
        None => Ok(0),
        Some(token) => token.parse().map_err(|_| {
            Box::new(json_response(
                400,
                &api_error(400, "Request contains an invalid argument: pageToken"),
            ))
        }),
    }
}

/// One page of `items` from `offset`, with `nextPageToken` while more are left.
pub(super) fn page(field: &str, items: Vec<Value>, offset: usize) -> Response {
    let total = items.len();
    let shown: Vec<Value> = items
        .into_iter()
        .skip(offset)
        .take(LIST_PAGE_SIZE)
        .collect();
    let mut body = json!({});
    if !shown.is_empty() {
        body[field] = Value::Array(shown);
    }
    if offset + LIST_PAGE_SIZE < total {
        body["nextPageToken"] = json!((offset + LIST_PAGE_SIZE).to_string());
    }
    json_response(200, &body)
}
