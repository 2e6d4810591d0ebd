//! What the Graph providers (facebook, instagram) share: their denial, error shape, `/me`,
//! versioned paths, code messages and token exchange.

use super::*;

/// Meta's redirect when the user refuses.
pub(super) const DENIAL: &[(&str, &str)] = &[
    ("error", "access_denied"),
    ("error_reason", "user_denied"),
    ("error_description", "Permissions error."),
];

/// Graph's API error.
pub(super) fn api_error(status: u16, message: &str) -> Value {
    json!({"error": {
        "message": message,
        "type": "OAuthException",
        "code": match status { 429 => 4, s if s >= 500 => 2, 400 | 401 | 403 => 190, _ => 1 },
        "fbtrace_id": random_string(11),
    }})
}

/// `/v25.0/me` → `Some("/me")`.
pub(super) fn strip_graph_version(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v")?;
    let slash = rest.find('/')?;
    let (version, tail) = rest.split_at(slash);
    let (major, minor) = version.split_once('.')?;
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (numeric(major) && numeric(minor)).then_some(tail)
}

/// What `/me` answers for one requested field besides `id` and `name`.
pub(super) enum Field {
    Value(Value),
    /// A field Graph knows that this user has no value for: left out.
    Absent,
    /// A field Graph does not know: the call fails.
    Unknown,
}

pub(super) fn graph_code_message(problem: CodeProblem) -> &'static str {
    match problem {
        CodeProblem::Unknown => "Invalid verification code format.",
        CodeProblem::Used => "This authorization code has been used.",
        CodeProblem::WrongClient => "Error validating verification code. App id mismatch.",
        CodeProblem::WrongRedirect => {
            "Error validating verification code. Please make sure your redirect_uri is \
             identical to the one you used in the OAuth dialog request"
        }
    }
}

/// Checks a token handed to an exchange/refresh call: it must be valid and of one of
/// `stages`. A short-lived token is single use.
pub(super) fn exchangeable(
    st: &mut State,
    token: &str,
    stages: &[Stage],
) -> Result<Vec<String>, TokErr> {
    let invalid = || {
        terr(
            400,
            "invalid_grant",
            "Error validating access token: The session is invalid or has expired.",
        )
        .graph(190)
    };
    let record = st
        .access
        .get_mut(token)
        .filter(|a| a.valid && stages.contains(&a.stage))
        .ok_or_else(invalid)?;
    if record.stage == Stage::Short {
        record.valid = false;
    }
    Ok(record.scopes.clone())
}
/// facebook `/v{N}/me` and instagram `/me`: only the long-lived token is accepted; only the
/// requested fields (plus `id`, which is `id`) come back, as Graph does. `field` says what the
/// provider answers for a field other than `id` and `name`.
pub(super) fn graph_me(
    st: &State,
    c: &Ctx,
    stage: Stage,
    default_fields: &str,
    id: String,
    field: impl Fn(&Account, &str) -> Field,
) -> Response {
    if stage != Stage::Long {
        return identity_error(
            st.kind,
            400,
            "fake: this is the short-lived token; exchange it for a long-lived one first \
             (Error validating access token)",
        );
    }
    let account = &st.account;
    let fields = c.query.non_empty("fields").unwrap_or(default_fields);
    let mut body = Map::new();
    body.insert("id".into(), json!(id));
    for name in fields.split(',').map(str::trim) {
        let value = match name {
            "id" => continue,
            "name" => match &account.display_name {
                Some(display_name) => json!(display_name),
                None => continue,
            },
            other => match field(account, other) {
                Field::Value(value) => value,
                Field::Absent => continue,
                Field::Unknown => {
                    return json_response(
                        400,
                        &json!({"error": {
                            "message": format!("(#100) Tried accessing nonexisting field ({other})"),
                            "type": "OAuthException",
                            "code": 100,
                            "fbtrace_id": random_string(11),
                        }}),
                    );
                }
            },
        };
        body.insert(name.into(), value);
    }
    json_response(200, &Value::Object(body))
}

fn require_get(c: &Ctx) -> Result<(), TokErr> {
    if c.method == Method::GET {
        Ok(())
    } else {
        Err(terr(
            405,
            "invalid_request",
            format!("Unsupported {} request.", c.method),
        ))
    }
}

/// `GET /access_token?grant_type={grant}&client_secret&access_token=<short>`: Meta's trade of
/// a short-lived token for a long-lived one (instagram `ig_exchange_token`, threads
/// `th_exchange_token`).
pub(super) fn long_lived_exchange(st: &mut State, c: &Ctx, grant: &str) -> Result<Value, TokErr> {
    require_get(c)?;
    let q = &c.query;
    if q.get("grant_type") != Some(grant) {
        return Err(terr(
            400,
            "invalid_request",
            format!("grant_type must be {grant}"),
        ));
    }
    match q.non_empty("client_secret") {
        Some(secret) if secret == st.client_secret => {}
        Some(_) => {
            return Err(terr(400, "invalid_client", "Error validating client secret.").graph(1));
        }
        None => {
            return Err(terr(400, "invalid_client", "Missing client_secret parameter.").graph(1));
        }
    }
    let short = q
        .non_empty("access_token")
        .ok_or_else(|| terr(400, "invalid_request", "Missing access_token parameter."))?;
    let scopes = exchangeable(st, short, &[Stage::Short])?;
    let access = st.new_access(Stage::Long, scopes);
    Ok(json!({"access_token": access, "token_type": "bearer", "expires_in": 5_184_000}))
}

/// `GET /refresh_access_token?grant_type={grant}&access_token=<long>` (no secret): a long-lived
/// token renewing itself (instagram `ig_refresh_token`, threads `th_refresh_token`).
pub(super) fn self_refresh(st: &mut State, c: &Ctx, grant: &str) -> Result<Value, TokErr> {
    require_get(c)?;
    let q = &c.query;
    if q.get("grant_type") != Some(grant) {
        return Err(terr(
            400,
            "invalid_request",
            format!("grant_type must be {grant}"),
        ));
    }
    let long = q
        .non_empty("access_token")
        .ok_or_else(|| terr(400, "invalid_request", "Missing access_token parameter."))?;
    let scopes = exchangeable(st, long, &[Stage::Long])?;
    let access = st.new_access(Stage::Long, scopes);
    Ok(json!({"access_token": access, "token_type": "bearer", "expires_in": 5_184_000}))
}
