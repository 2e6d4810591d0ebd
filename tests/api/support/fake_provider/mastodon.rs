//! The fake Mastodon instance. No app exists until one registers (`POST /api/v1/apps` with
//! `client_name`, `redirect_uris`, `scopes`, `website`): each registration issues a new client
//! id and secret, and the instance then knows only the latest. The consent screen
//! (`/oauth/authorize`) checks the redirect URI and scopes against the registration. A 4.3+
//! instance (the default) answers its OAuth metadata at `/.well-known/oauth-authorization-server`
//! and requires PKCE S256; an older one has no metadata (a 404 page) and refuses a
//! `code_challenge`. `/oauth/token` takes the client id and secret in the form body and only the
//! authorization-code grant: tokens never expire and there is no refresh token. Revoke at
//! `/oauth/revoke` with the client's credentials. Identity at
//! `/api/v1/accounts/verify_credentials`, with `profile`, `read` or `read:accounts`.

use super::*;

pub(super) struct Mastodon;

/// The scopes that read who the token belongs to.
const IDENTITY_READERS: &[&str] = &["profile", "read", "read:accounts"];

impl ProviderFake for Mastodon {
    fn id(&self) -> &'static str {
        "mastodon"
    }

    fn default_account(&self) -> (&'static str, Option<&'static str>) {
        ("109876543210", Some("fakeuser"))
    }

    fn scope_separator(&self) -> char {
        ' '
    }

    fn uses_pkce_now(&self, st: &State) -> bool {
        st.modern_instance
    }

    fn check_authorize(&self, st: &State, q: &Params) -> Result<(), String> {
        let client_id = q.get("client_id").unwrap_or_default();
        let Some(app) = st
            .registrations
            .iter()
            .rev()
            .find(|r| r.client_id == client_id)
        else {
            return Err(format!("no app is registered as `{client_id}`"));
        };
        let redirect = q.get("redirect_uri").unwrap_or_default();
        if !app.redirect_uris.iter().any(|r| r == redirect) {
            return Err(format!(
                "redirect_uri `{redirect}` is not one the app registered"
            ));
        }
        let scopes = q.get("scope").unwrap_or_default().split(' ');
        if let Some(extra) = scopes.clone().find(|s| !app.scopes.iter().any(|r| r == s)) {
            return Err(format!("scope `{extra}` was not registered by the app"));
        }
        if !st.modern_instance && scopes.clone().any(|s| s == "profile") {
            return Err("this instance predates the `profile` scope".into());
        }
        Ok(())
    }

    fn is_token_path(&self, path: &str) -> bool {
        path == "/oauth/token"
    }

    fn token(&self, st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
        mastodon_token(st, c)
    }

    fn route(&self, st: &mut State, c: &Ctx) -> Option<Response> {
        match c.path.as_str() {
            "/.well-known/oauth-authorization-server" => Some(metadata(st)),
            "/api/v1/apps" => Some(register(st, c)),
            "/oauth/authorize" => Some(authorize(st, c)),
            "/oauth/token" => Some(token(st, c)),
            "/oauth/revoke" => Some(revoke(st, c)),
            "/api/v1/accounts/verify_credentials" => Some(identity(st, c)),
            _ => None,
        }
    }

    fn api_error(&self, _status: u16, message: &str) -> Value {
        json!({"error": message})
    }

    fn me(&self, st: &State, _c: &Ctx, record: &AccessToken) -> Response {
        if !record
            .scopes
            .iter()
            .any(|s| IDENTITY_READERS.contains(&s.as_str()))
        {
            return identity_error(st.kind, 403, "This action is outside the authorized scopes");
        }
        let account = &st.account;
        let username = account
            .username
            .clone()
            .unwrap_or_else(|| "fakeuser".into());
        json_response(
            200,
            &json!({
                "id": account.id,
                "username": username,
                "acct": username,
                "display_name": account.display_name.clone().unwrap_or_default(),
                "avatar": format!("{}/avatars/{}.png", st.base_url, account.id),
                "url": format!("{}/@{username}", st.base_url),
            }),
        )
    }
}

/// RFC 8414 metadata on a 4.3+ instance; an older one answers a 404 page.
fn metadata(st: &State) -> Response {
    if !st.modern_instance {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .content_type("text/html")
            .body("<!doctype html><title>The page you are looking for isn't here.</title>");
    }
    let base = &st.base_url;
    json_response(
        200,
        &json!({
            "issuer": format!("{base}/"),
            "authorization_endpoint": format!("{base}/oauth/authorize"),
            "token_endpoint": format!("{base}/oauth/token"),
            "revocation_endpoint": format!("{base}/oauth/revoke"),
            "scopes_supported": ["read", "write", "push", "profile", "read:accounts",
                                 "write:statuses", "write:media"],
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "app_registration_endpoint": format!("{base}/api/v1/apps"),
        }),
    )
}

/// `POST /api/v1/apps`: a new client id and secret, which replace any earlier app's.
fn register(st: &mut State, c: &Ctx) -> Response {
    let unprocessable = |message: &str| json_response(422, &json!({"error": message}));
    if c.method != Method::POST || !c.is_form {
        return unprocessable("expected a form POST");
    }
    let Some(client_name) = c.form.non_empty("client_name") else {
        return unprocessable("Validation failed: Application name can't be blank");
    };
    let Some(redirect_uris) = c.form.non_empty("redirect_uris") else {
        return unprocessable("Validation failed: Redirect URI can't be blank");
    };
    let scopes: Vec<String> = c
        .form
        .get("scopes")
        .unwrap_or("read")
        .split(' ')
        .map(str::to_owned)
        .collect();
    let client_id = format!("mastodon-client-{}", random_string(20));
    let client_secret = format!("mastodon-secret-{}", random_string(32));
    st.client_id = client_id.clone();
    st.client_secret = client_secret.clone();
    st.registrations.push(FakeRegistration {
        client_name: client_name.to_owned(),
        website: c.form.non_empty("website").map(str::to_owned),
        redirect_uris: redirect_uris.split('\n').map(str::to_owned).collect(),
        scopes: scopes.clone(),
        client_id: client_id.clone(),
    });
    json_response(
        200,
        &json!({
            "id": st.registrations.len().to_string(),
            "name": client_name,
            "website": c.form.get("website"),
            "scopes": scopes,
            "redirect_uris": redirect_uris.split('\n').collect::<Vec<_>>(),
            "client_id": client_id,
            "client_secret": client_secret,
        }),
    )
}

fn mastodon_token(st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
    require_post_form(c)?;
    let f = &c.form;
    let unauthorized = || {
        terr(
            401,
            "invalid_client",
            "Client authentication failed due to unknown client, no client authentication \
             included, or unsupported authentication method.",
        )
    };
    let (Some(id), Some(secret)) = (f.non_empty("client_id"), f.non_empty("client_secret")) else {
        return Err(unauthorized());
    };
    if !st.secret_matches(id, secret) {
        return Err(unauthorized());
    }
    let id = id.to_owned();
    match f.get("grant_type") {
        Some("authorization_code") => {
            let code = f.non_empty("code").ok_or_else(|| missing("code"))?;
            let redirect_uri = f
                .non_empty("redirect_uri")
                .ok_or_else(|| missing("redirect_uri"))?;
            let invalid = || {
                terr(
                    400,
                    "invalid_grant",
                    "The provided authorization grant is invalid, expired, revoked, does not \
                     match the redirection URI used in the authorization request, or was \
                     issued to another client.",
                )
            };
            let grant = st
                .take_code(code, &id, redirect_uri)
                .map_err(|_| invalid())?;
            if let Some(challenge) = &grant.code_challenge {
                let verifier = f.non_empty("code_verifier").ok_or_else(invalid)?;
                let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
                if &computed != challenge {
                    return Err(invalid());
                }
            }
            let access = st.new_access(Stage::Normal, grant.scopes.clone());
            Ok(json!({
                "access_token": access,
                "token_type": "Bearer",
                "scope": grant.scopes.join(" "),
                "created_at": 1_767_225_600,
            }))
        }
        Some(other) => Err(terr(
            400,
            "unsupported_grant_type",
            format!(
                "The authorization grant type `{other}` is not supported by the authorization server."
            ),
        )),
        None => Err(missing("grant_type")),
    }
}
