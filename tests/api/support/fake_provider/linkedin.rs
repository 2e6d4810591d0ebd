//! The fake LinkedIn: the client id and secret in the form body (HTTP Basic refused), scopes
//! space-separated in the request and comma-separated in the answer, an OpenID `id_token`, a
//! refresh token that does not rotate, and the versioned REST API's organizations. Paths:
//! `GET /v2/userinfo`, `POST /revoke`, `GET /rest/organizationAcls`,
//! `GET /rest/organizations/{id}`.

use super::*;

pub(super) struct Linkedin;

impl ProviderFake for Linkedin {
    fn id(&self) -> &'static str {
        "linkedin"
    }

    fn default_account(&self) -> (&'static str, Option<&'static str>) {
        ("fAkEsUb123", None)
    }

    fn scope_separator(&self) -> char {
        ' '
    }

    fn denial(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("error", "user_cancelled_authorize"),
            ("error_description", "The user cancelled the authorization"),
        ]
    }

    fn token(&self, st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
        linkedin_token(st, c)
    }

    fn route(&self, st: &mut State, c: &Ctx) -> Option<Response> {
        match c.path.as_str() {
            "/v2/userinfo" => Some(identity(st, c)),
            "/revoke" => Some(revoke(st, c)),
            "/rest/organizationAcls" => Some(linkedin_organization_acls(st, c)),
            path => path
                .strip_prefix("/rest/organizations/")
                .map(|id| linkedin_organization(st, c, id)),
        }
    }

    fn api_error(&self, status: u16, message: &str) -> Value {
        json!({
            "serviceErrorCode": if status == 401 { 65600 } else { 100 },
            "message": message,
            "status": status,
        })
    }

    fn me(&self, st: &State, _c: &Ctx, record: &AccessToken) -> Response {
        let has = |scope: &str| record.scopes.iter().any(|s| s == scope);
        if !has("openid") {
            return identity_error(
                st.kind,
                403,
                "Not enough permissions to access: userinfo.GET.NO_VERSION",
            );
        }
        let account = &st.account;
        let mut body = Map::new();
        body.insert("sub".into(), json!(account.id));
        if has("profile") {
            if let Some(name) = &account.display_name {
                body.insert("name".into(), json!(name));
            }
            body.insert(
                "picture".into(),
                json!(format!("{}/static/{}.jpg", st.base_url, account.id)),
            );
        }
        json_response(200, &Value::Object(body))
    }
}

fn linkedin_token(st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
    require_post_form(c)?;
    let f = &c.form;
    let (id, secret) = match (f.non_empty("client_id"), f.non_empty("client_secret")) {
        (Some(id), Some(secret)) => (id, secret),
        _ if c.has_basic() => {
            return Err(terr(
                401,
                "invalid_client",
                "Client authentication failed: client_id and client_secret must be in the \
                 request body (HTTP Basic is not accepted)",
            ));
        }
        (None, _) => {
            return Err(terr(
                400,
                "invalid_request",
                "A required parameter \"client_id\" is missing",
            ));
        }
        (_, None) => {
            return Err(terr(
                400,
                "invalid_request",
                "A required parameter \"client_secret\" is missing",
            ));
        }
    };
    if !st.secret_matches(id, secret) {
        return Err(terr(401, "invalid_client", "Client authentication failed"));
    }
    let client_id = id.to_owned();
    match f.get("grant_type") {
        Some("authorization_code") => {
            let code = f.non_empty("code").ok_or_else(|| missing("code"))?;
            let redirect_uri = f
                .non_empty("redirect_uri")
                .ok_or_else(|| missing("redirect_uri"))?;
            let grant = st.take_code(code, &client_id, redirect_uri).map_err(|_| {
                terr(
                    400,
                    "invalid_grant",
                    "Unable to retrieve access token: appid/redirect uri/code verifier does \
                         not match authorization code. Or authorization code expired.",
                )
            })?;
            let access = st.new_access(Stage::Normal, grant.scopes.clone());
            let mut body = json!({
                "access_token": access,
                "expires_in": 5_184_000,
                "scope": grant.scopes.join(","),
                "token_type": "Bearer",
            });
            if st.issue_refresh_tokens {
                body["refresh_token"] = Value::String(st.new_refresh(grant.scopes.clone()));
                body["refresh_token_expires_in"] = Value::from(st.refresh_lifetime);
            }
            if grant.scopes.iter().any(|s| s == "openid") {
                body["id_token"] = Value::String(linkedin_id_token(st));
            }
            Ok(body)
        }
        Some("refresh_token") => {
            let token = f
                .non_empty("refresh_token")
                .ok_or_else(|| missing("refresh_token"))?;
            let r = st.use_refresh(token, false).ok_or_else(|| {
                terr(
                    400,
                    "invalid_grant",
                    "The provided authorization grant or refresh token is invalid, expired or \
                     revoked.",
                )
            })?;
            let access = st.new_access(Stage::Normal, r.scopes.clone());
            let left = st.refresh_left(&r);
            let mut body = json!({
                "access_token": access,
                "expires_in": 5_184_000,
                "refresh_token": token,
                "refresh_token_expires_in": left,
                "scope": r.scopes.join(","),
                "token_type": "Bearer",
            });
            if !st.refresh_lifetime_on_refresh {
                body.as_object_mut()
                    .unwrap()
                    .remove("refresh_token_expires_in");
            }
            Ok(body)
        }
        Some(other) => Err(terr(
            400,
            "unsupported_grant_type",
            format!("grant_type `{other}` is not supported"),
        )),
        None => Err(missing("grant_type")),
    }
}

/// An unsigned-looking OpenID id_token (the signature is not real; Dravo should not need it).
fn linkedin_id_token(st: &State) -> String {
    let header = json!({"alg": "RS256", "kid": "fake", "typ": "JWT"});
    let claims = json!({
        "iss": "https://www.linkedin.com/oauth",
        "aud": st.client_id,
        "sub": st.account.id,
        "name": st.account.display_name,
        "iat": 1_700_000_000u64,
        "exp": 4_100_000_000u64,
    });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode("fake-signature"),
    )
}
/// LinkedIn's versioned REST API refuses calls without its version headers.
fn linkedin_rest_headers(c: &Ctx) -> Result<(), Box<Response>> {
    let header = |name: &str| c.headers.get(name).and_then(|v| v.to_str().ok());
    let version_ok = header("LinkedIn-Version")
        .is_some_and(|v| v.len() == 6 && v.bytes().all(|b| b.is_ascii_digit()));
    if !version_ok {
        return Err(Box::new(json_response(
            426,
            &json!({"status": 426, "code": "NONEXISTENT_VERSION", "message": "Requested version is not active"}),
        )));
    }
    if header("X-Restli-Protocol-Version") != Some("2.0.0") {
        return Err(Box::new(json_response(
            400,
            &json!({"status": 400, "message": "X-Restli-Protocol-Version 2.0.0 is required"}),
        )));
    }
    Ok(())
}

const ORGANIZATION_SCOPES: [&str; 3] = [
    "r_organization_admin",
    "rw_organization_admin",
    "w_organization_social",
];

/// `GET /rest/organizationAcls?q=roleAssignee&role=ADMINISTRATOR&state=APPROVED&start&count`.
fn linkedin_organization_acls(st: &State, c: &Ctx) -> Response {
    if let Err(resp) = linkedin_rest_headers(c) {
        return *resp;
    }
    if let Err(resp) = api_token(st, c, &ORGANIZATION_SCOPES) {
        return *resp;
    }
    for (name, want) in [
        ("q", "roleAssignee"),
        ("role", "ADMINISTRATOR"),
        ("state", "APPROVED"),
    ] {
        if c.query.get(name) != Some(want) {
            return json_response(
                400,
                &json!({"status": 400, "message": format!("fake: expected {name}={want}")}),
            );
        }
    }
    let start: usize = c
        .query
        .get("start")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let count: usize = c
        .query
        .get("count")
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
        .clamp(1, LIST_PAGE_SIZE);
    let elements: Vec<Value> = st
        .organizations
        .iter()
        .skip(start)
        .take(count)
        .map(|o| {
            json!({
                "organization": format!("urn:li:organization:{}", o.id),
                "role": "ADMINISTRATOR",
                "state": "APPROVED",
                "roleAssignee": format!("urn:li:person:{}", st.account.id),
            })
        })
        .collect();
    json_response(
        200,
        &json!({"elements": elements, "paging": {"start": start, "count": count, "total": st.organizations.len()}}),
    )
}

/// `GET /rest/organizations/{id}`.
fn linkedin_organization(st: &State, c: &Ctx, id: &str) -> Response {
    if let Err(resp) = linkedin_rest_headers(c) {
        return *resp;
    }
    if let Err(resp) = api_token(st, c, &ORGANIZATION_SCOPES) {
        return *resp;
    }
    match st.organizations.iter().find(|o| o.id.to_string() == id) {
        Some(o) => json_response(
            200,
            &json!({"id": o.id, "localizedName": o.name, "vanityName": o.vanity_name}),
        ),
        None => json_response(404, &json!({"status": 404, "message": "Not Found"})),
    }
}
