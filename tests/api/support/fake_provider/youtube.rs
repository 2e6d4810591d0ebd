//! The fake YouTube: Google's OAuth 2.0 (`google.rs`), and the channels of the Google account
//! at `GET /youtube/v3/channels?part=snippet&mine=true`, a read scope required, paged with
//! `pageToken`.

use super::*;

pub(super) struct Youtube;

const CHANNEL_READERS: &[&str] = &[
    "https://www.googleapis.com/auth/youtube.readonly",
    "https://www.googleapis.com/auth/youtube",
    "https://www.googleapis.com/auth/youtube.force-ssl",
];

impl ProviderFake for Youtube {
    fn id(&self) -> &'static str {
        "youtube"
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
            "/youtube/v3/channels" => Some(channels(st, c)),
            _ => None,
        }
    }

    fn api_error(&self, status: u16, message: &str) -> Value {
        google::api_error(status, message)
    }

    fn me(&self, st: &State, _c: &Ctx, record: &AccessToken) -> Response {
        google::me(st, record)
    }
}

fn channels(st: &State, c: &Ctx) -> Response {
    if let Err(resp) = api_token(st, c, CHANNEL_READERS) {
        return *resp;
    }
    if c.query.get("part") != Some("snippet") || c.query.get("mine") != Some("true") {
        return json_response(
            400,
            &google::api_error(400, "fake: expected part=snippet&mine=true"),
        );
    }
    let offset = match google::page_offset(c) {
        Ok(offset) => offset,
        Err(resp) => return *resp,
    };
    let items = st
        .channels
        .iter()
        .map(|ch| {
            json!({
                "kind": "youtube#channel",
                "id": ch.id,
                "snippet": {
                    "title": ch.title,
                    "customUrl": ch.custom_url,
                    "thumbnails": {"default": {"url": format!("{}/yt/{}.jpg", st.base_url, ch.id)}},
                },
            })
        })
        .collect();
    google::page("items", items, offset)
}
