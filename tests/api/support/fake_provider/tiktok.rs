//! The fake TikTok: `client_key` (never `client_id`), comma-separated scopes, the client key
//! and secret in the form body, a rotating refresh token with `refresh_expires_in`, a client
//! token (`client_credentials`), a user who may untick `video.upload`, and errors carrying a
//! `log_id`. Paths: `GET /v2/user/info/`, `POST /v2/oauth/revoke/`.

use super::*;

pub(super) struct Tiktok;

impl ProviderFake for Tiktok {
    fn id(&self) -> &'static str {
        "tiktok"
    }

    fn default_account(&self) -> (&'static str, Option<&'static str>) {
        ("-000fAkE0pEnId-1234567890abcdef", Some("fakeuser"))
    }

    fn client_id_param(&self) -> &'static str {
        "client_key"
    }

    fn token_shape(&self, _path: &str) -> Shape {
        Shape::Tiktok
    }

    fn token(&self, st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
        tiktok_token(st, c)
    }

    fn route(&self, st: &mut State, c: &Ctx) -> Option<Response> {
        match c.path.as_str() {
            "/v2/user/info/" => Some(identity(st, c)),
            "/v2/oauth/revoke/" => Some(revoke(st, c)),
            _ => None,
        }
    }

    fn api_error(&self, status: u16, message: &str) -> Value {
        json!({
            "data": {},
            "error": {
                "code": match status {
                    401 => "access_token_invalid",
                    403 => "scope_not_authorized",
                    429 => "rate_limit_exceeded",
                    s if s >= 500 => "internal_error",
                    _ => "invalid_params",
                },
                "message": message,
                "log_id": log_id(),
            },
        })
    }

    fn me(&self, st: &State, c: &Ctx, record: &AccessToken) -> Response {
        let kind = st.kind;
        if !record.scopes.iter().any(|s| s == "user.info.basic") {
            return identity_error(kind, 403, "user.info.basic was not granted");
        }
        let Some(fields) = c.query.non_empty("fields") else {
            return identity_error(kind, 400, "fields is required");
        };
        let account = &st.account;
        let mut user = Map::new();
        for field in fields.split(',') {
            let value = match field {
                "open_id" => json!(account.id),
                "union_id" => json!(format!("union-{}", account.id)),
                "avatar_url" | "avatar_url_100" | "avatar_large_url" => {
                    json!(format!("{}/static/{}.jpg", st.base_url, account.id))
                }
                "display_name" => match &account.display_name {
                    Some(name) => json!(name),
                    None => continue,
                },
                "username" => match &account.username {
                    Some(name) => json!(name),
                    None => continue,
                },
                "bio_description" | "profile_deep_link" | "is_verified" | "follower_count"
                | "following_count" | "likes_count" | "video_count" => {
                    continue;
                }
                other => {
                    return identity_error(kind, 400, &format!("invalid field `{other}`"));
                }
            };
            user.insert(field.into(), value);
        }
        json_response(
            200,
            &json!({
                "data": {"user": user},
                "error": {"code": "ok", "message": "", "log_id": log_id()},
            }),
        )
    }
}

fn tiktok_token(st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
    require_post_form(c)?;
    let f = &c.form;
    let key = match f.non_empty("client_key") {
        Some(key) => key,
        None if f.has("client_id") => {
            return Err(terr(
                400,
                "invalid_request",
                "client_key is required (tiktok does not read `client_id`)",
            ));
        }
        None => return Err(terr(400, "invalid_request", "client_key is required")),
    };
    let secret = f
        .non_empty("client_secret")
        .ok_or_else(|| terr(400, "invalid_request", "client_secret is required"))?;
    if !st.secret_matches(key, secret) {
        return Err(terr(
            401,
            "invalid_client",
            "Client key or secret is incorrect.",
        ));
    }
    let client_id = key.to_owned();
    if f.get("grant_type") == Some("client_credentials") {
        // A client access token for the key and secret checked above; no user, no refresh.
        return Ok(json!({
            "access_token": format!("clt.{}", random_string(40)),
            "expires_in": 7200,
            "token_type": "Bearer",
        }));
    }
    let scopes = match f.get("grant_type") {
        Some("authorization_code") => {
            let code = f
                .non_empty("code")
                .ok_or_else(|| terr(400, "invalid_request", "code is required"))?;
            let redirect_uri = f
                .non_empty("redirect_uri")
                .ok_or_else(|| terr(400, "invalid_request", "redirect_uri is required"))?;
            let grant = st.take_code(code, &client_id, redirect_uri).map_err(|p| {
                let m = match p {
                    CodeProblem::Used => "Authorization code has been used.",
                    CodeProblem::WrongRedirect => "redirect_uri does not match.",
                    _ => "Authorization code is expired or invalid.",
                };
                terr(400, "invalid_grant", m)
            })?;
            // The user unticked video.upload on the consent screen.
            grant
                .scopes
                .into_iter()
                .filter(|s| s != "video.upload")
                .collect()
        }
        Some("refresh_token") => {
            let old = f
                .non_empty("refresh_token")
                .ok_or_else(|| terr(400, "invalid_request", "refresh_token is required"))?;
            st.use_refresh(old, true)
                .ok_or_else(|| terr(400, "invalid_grant", "Refresh token is invalid or expired."))?
                .scopes
        }
        Some(other) => {
            return Err(terr(
                400,
                "invalid_request",
                format!("grant_type `{other}` is not supported"),
            ));
        }
        None => return Err(terr(400, "invalid_request", "grant_type is required")),
    };
    let scopes: Vec<String> = scopes;
    let access = st.new_access(Stage::Normal, scopes.clone());
    let refresh = st.new_refresh(scopes.clone());
    Ok(json!({
        "open_id": st.account.id,
        "scope": scopes.join(","),
        "access_token": access,
        "expires_in": 86_400,
        "refresh_token": refresh,
        "refresh_expires_in": st.refresh_lifetime,
        "token_type": "Bearer",
    }))
}
