//! The fake Google Business Profile: Google's OAuth 2.0 (`google.rs`), the business accounts at
//! `GET /v1/accounts` and each account's locations at `GET /v1/accounts/{id}/locations` (a
//! `readMask` required), both needing `business.manage` and paged with `pageToken`. With
//! [`Fault::QuotaGate`] both answer Google's quota error, as for a project Google has not
//! approved.

use super::*;

pub(super) struct GoogleBusiness;

const MANAGE: &str = "https://www.googleapis.com/auth/business.manage";

impl ProviderFake for GoogleBusiness {
    fn id(&self) -> &'static str {
        "google_business"
    }

    fn default_account(&self) -> (&'static str, Option<&'static str>) {
        (DEFAULT_GOOGLE_SUB, Some("fake.user@example.com"))
    }

    fn scope_separator(&self) -> char {
        ' '
    }

    fn uses_pkce(&self) -> bool {
        true
    }

    fn denial(&self) -> &'static [(&'static str, &'static str)] {
        &[("error", "access_denied")]
    }

    fn token(&self, st: &mut State, c: &Ctx) -> Result<Value, TokErr> {
        google::token(st, c)
    }

    fn route(&self, st: &mut State, c: &Ctx) -> Option<Response> {
        match c.path.as_str() {
            "/v1/userinfo" => Some(identity(st, c)),
            "/revoke" => Some(google::revoke(st, c)),
            "/v1/accounts" => Some(accounts(st, c)),
            path => path
                .strip_prefix("/v1/accounts/")
                .and_then(|rest| rest.strip_suffix("/locations"))
                .map(|account| locations(st, c, account)),
        }
    }

    fn api_error(&self, status: u16, message: &str) -> Value {
        google::api_error(status, message)
    }

    fn me(&self, st: &State, _c: &Ctx, record: &AccessToken) -> Response {
        google::me(st, record)
    }
}

/// The checks both lists make: the approval gate, the token, `business.manage`.
fn checked(st: &State, c: &Ctx, service: &str) -> Result<usize, Box<Response>> {
    if let Fault::QuotaGate(status) = st.fault {
        return Err(Box::new(json_response(
            status,
            &json!({"error": {
                "code": status,
                "message": format!("Quota exceeded for quota metric 'Requests' and limit 'Requests per minute' of service '{service}' for consumer 'project_number:123456789'."),
                "status": "RESOURCE_EXHAUSTED",
            }}),
        )));
    }
    api_token(st, c, &[MANAGE])?;
    google::page_offset(c)
}

fn accounts(st: &State, c: &Ctx) -> Response {
    let offset = match checked(st, c, "mybusinessaccountmanagement.googleapis.com") {
        Ok(offset) => offset,
        Err(resp) => return *resp,
    };
    let items = st
        .business_accounts
        .iter()
        .map(|a| json!({"name": format!("accounts/{}", a.id), "accountName": format!("Business {}", a.id), "type": "LOCATION_GROUP"}))
        .collect();
    google::page("accounts", items, offset)
}

fn locations(st: &State, c: &Ctx, account: &str) -> Response {
    let offset = match checked(st, c, "mybusinessbusinessinformation.googleapis.com") {
        Ok(offset) => offset,
        Err(resp) => return *resp,
    };
    if c.query.non_empty("readMask").is_none() {
        return json_response(
            400,
            &google::api_error(
                400,
                "Request contains an invalid argument: read_mask is required",
            ),
        );
    }
    let Some(found) = st.business_accounts.iter().find(|a| a.id == account) else {
        return json_response(
            404,
            &google::api_error(404, "Requested entity was not found."),
        );
    };
    let items = found
        .locations
        .iter()
        .map(|(id, title)| json!({"name": format!("locations/{id}"), "title": title}))
        .collect();
    google::page("locations", items, offset)
}
