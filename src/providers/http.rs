//! Calls to providers: one HTTP client with connect and total timeouts, no redirects followed
//! (a token endpoint that redirects is refused, not chased), and response bodies capped.
//! Errors are reduced to a code and a description that are safe to show and to log: a
//! response body is never logged, since it may hold a token.

use std::time::Duration;

use serde_json::Value;

/// Larger provider responses are refused.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

pub use crate::error::ProviderError;

/// A provider's JSON answer and its HTTP status.
#[derive(Debug)]
pub struct ProviderResponse {
    pub status: u16,
    pub body: Value,
    /// Its `Retry-After`, in seconds, when it sent one.
    pub retry_after: Option<u64>,
}

impl ProviderResponse {
    /// The body of a 2xx answer that carries no error; otherwise the provider's error.
    /// TikTok reports some errors with HTTP 200, so a 2xx body is checked too.
    pub fn into_success(self) -> Result<Value, ProviderError> {
        if let Some((code, description)) = oauth_error(&self.body) {
            return Err(ProviderError::Rejected { code, description });
        }
        if (200..300).contains(&self.status) {
            return Ok(self.body);
        }
        Err(ProviderError::Rejected {
            code: "provider_rejected".into(),
            description: Some(format!("HTTP {}", self.status)),
        })
    }
}

/// An answer as it came: status, headers and at most the size asked for.
pub struct RawAnswer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub bytes: Vec<u8>,
}

impl RawAnswer {
    /// A header as text, when present and readable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON, `None` when it is not.
    pub fn json_body(&self) -> Option<Value> {
        serde_json::from_slice(&self.bytes).ok()
    }

    /// The answer as `ProviderHttp::send` gives it: a 429 is `RateLimited`.
    pub fn into_response(self) -> Result<ProviderResponse, ProviderError> {
        let resp = self.into_any_response()?;
        if resp.status == 429 {
            return Err(ProviderError::RateLimited {
                retry_after: resp.retry_after,
            });
        }
        Ok(resp)
    }

    /// The answer as `ProviderHttp::send_any` gives it: a 5xx is `Unavailable` (or `Failing`
    /// with its OAuth error); a body that is not JSON is `Malformed`, unless it is an empty
    /// success or a 429 (then `Null`).
    fn into_any_response(self) -> Result<ProviderResponse, ProviderError> {
        let status = self.status;
        // Seconds only; an HTTP-date is rare from these APIs and then the backoff decides.
        let retry_after = self
            .header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body: Value = match serde_json::from_slice(&self.bytes) {
            Ok(v) => v,
            // An empty success (Google's and LinkedIn's revoke) or a plain-text 429.
            Err(_) if status == 429 || (self.bytes.trim_ascii().is_empty() && status < 300) => {
                Value::Null
            }
            Err(_) if status >= 500 => {
                return Err(ProviderError::Unavailable(format!("HTTP {status}")));
            }
            Err(_) => {
                return Err(ProviderError::Malformed(format!(
                    "HTTP {status} with a body that is not JSON"
                )));
            }
        };
        if status >= 500 {
            return Err(match oauth_error(&body) {
                Some((code, description)) => ProviderError::Failing {
                    status,
                    code,
                    description,
                },
                None => ProviderError::Unavailable(format!("HTTP {status}")),
            });
        }
        Ok(ProviderResponse {
            status,
            body,
            retry_after,
        })
    }
}

/// The shared client for provider calls, with the `User-Agent` of the app they are made for.
/// Cheap to clone: the client is shared.
#[derive(Clone)]
pub struct ProviderHttp {
    client: reqwest::Client,
    timeout: Duration,
    /// Replaces the client's `dravo/<version>` on every request `send` sends.
    user_agent: Option<reqwest::header::HeaderValue>,
    /// For a client of user-chosen hosts (`guarded`): whether private addresses are allowed.
    /// Each request's URL is checked, since an address literal reaches no resolver.
    guard: Option<bool>,
}

impl ProviderHttp {
    pub fn new(timeout: Duration) -> Self {
        let builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        ProviderHttp::built(builder, timeout, None)
    }

    /// A client for hosts that user input chooses (a Mastodon instance, a Bluesky PDS): public
    /// addresses and https only unless `allow_private`, redirects followed only to hosts that
    /// pass the same check (`guard`).
    pub fn guarded(timeout: Duration, allow_private: bool) -> Self {
        ProviderHttp::built(
            super::guard::client_builder(allow_private),
            timeout,
            Some(allow_private),
        )
    }

    fn built(builder: reqwest::ClientBuilder, timeout: Duration, guard: Option<bool>) -> Self {
        let client = builder
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .user_agent(concat!("dravo/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client configuration is valid");
        ProviderHttp {
            client,
            timeout,
            user_agent: None,
            guard,
        }
    }

    /// The same client, sending `user_agent` (when given, and a valid header value) instead of
    /// the default `dravo/<version>`. Apps' user agents are printable ASCII, checked when set.
    pub fn with_user_agent(&self, user_agent: Option<&str>) -> ProviderHttp {
        ProviderHttp {
            client: self.client.clone(),
            timeout: self.timeout,
            user_agent: user_agent.and_then(|ua| reqwest::header::HeaderValue::from_str(ua).ok()),
            guard: self.guard,
        }
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends a request and reads a JSON answer of at most `MAX_RESPONSE_BYTES`; a 429 is
    /// `RateLimited`.
    pub async fn send(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<ProviderResponse, ProviderError> {
        let resp = self.send_any(req).await?;
        if resp.status == 429 {
            return Err(ProviderError::RateLimited {
                retry_after: resp.retry_after,
            });
        }
        Ok(resp)
    }

    /// As `send`, but a 429 comes back as an answer with its body (`Null` when it is not
    /// JSON), for a provider whose 429 can mean something other than "slow down" (Google's
    /// quota of 0 for an app it has not approved).
    pub async fn send_any(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<ProviderResponse, ProviderError> {
        let req = match &self.user_agent {
            // A request's own header wins over the client's default one.
            Some(ua) => req.header(reqwest::header::USER_AGENT, ua.clone()),
            None => req,
        };
        let request = req
            .header(reqwest::header::ACCEPT, "application/json")
            .build()
            .map_err(|e| self.transport_error(&e))?;
        self.execute_raw(request, MAX_RESPONSE_BYTES)
            .await?
            .into_any_response()
    }

    /// Sends a built request (checked by the guard on a guarded client) and reads at most
    /// `limit` bytes of its answer, headers kept: for callers that need a header (DPoP's
    /// nonce) or a body that is not JSON (a handle's DID as text). A redirect is refused on
    /// the plain client; a guarded one follows it only to hosts that pass the guard.
    pub async fn execute_raw(
        &self,
        request: reqwest::Request,
        limit: usize,
    ) -> Result<RawAnswer, ProviderError> {
        if let Some(allow_private) = self.guard
            && let Some(why) = super::guard::check_url(request.url(), allow_private)
        {
            return Err(ProviderError::Refused(why));
        }
        let mut resp = self
            .client
            .execute(request)
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = resp.status().as_u16();
        if resp.status().is_redirection() {
            return Err(ProviderError::Malformed(format!(
                "HTTP {status} redirect (redirects are not followed)"
            )));
        }
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(ProviderError::Malformed("the response is too large".into()));
        }
        let headers = resp.headers().clone();
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport_error(&e))? {
            if bytes.len() + chunk.len() > limit {
                return Err(ProviderError::Malformed("the response is too large".into()));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(RawAnswer {
            status,
            headers,
            bytes,
        })
    }

    /// What failed on the way to the provider, naming its host and the cause: never the URL's
    /// path or query (Meta's token call carries the client secret there).
    fn transport_error(&self, e: &reqwest::Error) -> ProviderError {
        if let Some(refused) = guard_refusal(e) {
            return ProviderError::Refused(refused);
        }
        let host = e
            .url()
            .and_then(|u| {
                let host = u.host_str()?;
                Some(match u.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_owned(),
                })
            })
            .unwrap_or_else(|| "the provider".to_owned());
        ProviderError::Unavailable(if e.is_timeout() {
            format!(
                "{host} did not answer: timed out after {} s",
                self.timeout.as_secs()
            )
        } else if e.is_connect() {
            format!("cannot connect to {host}: {}", root_cause(e))
        } else {
            format!("the connection to {host} failed: {}", root_cause(e))
        })
    }
}

/// The guard's refusal in `e`'s chain (a name that resolved to a private address, a redirect
/// to one), if that is what failed.
fn guard_refusal(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut inner = Some(e);
    while let Some(error) = inner {
        if let Some(refused) = error.downcast_ref::<super::guard::NotPublic>() {
            return Some(refused.0.clone());
        }
        inner = error.source();
    }
    None
}

/// The innermost error of `e`'s chain (`connection refused`, a DNS or TLS failure), in lower
/// case and without the OS error number: the outer layers only repeat that a request failed.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(source) = inner.source() {
        inner = source;
    }
    if let Some(io) = inner.downcast_ref::<std::io::Error>() {
        match io.kind() {
            std::io::ErrorKind::ConnectionRefused => return "connection refused".into(),
            std::io::ErrorKind::ConnectionReset => return "connection reset".into(),
            _ => {}
        }
    }
    let text = inner.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).trim();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "unknown cause".into(),
    }
}

/// Keeps a provider-supplied code to a safe token: `[A-Za-z0-9_.-]`, at most 64 characters.
pub fn safe_code(code: &str) -> String {
    let cleaned: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .take(64)
        .collect();
    if cleaned.is_empty() {
        "provider_error".into()
    } else {
        cleaned
    }
}

/// `OAuthException` → `oauth_exception`, so every code Dravo passes on is snake_case.
fn snake_case(code: &str) -> String {
    let mut out = String::with_capacity(code.len() + 4);
    let chars: Vec<char> = code.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            // A word starts where an upper-case letter follows a lower-case one.
            if i > 0 && chars[i - 1].is_ascii_lowercase() {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(*c);
        }
    }
    safe_code(&out)
}

/// Keeps a provider-supplied description printable and short: control characters (C0, C1),
/// the line and paragraph separators and bidirectional controls become spaces, so the text
/// can neither break a log line nor reorder what a dashboard shows of the redirect.
pub fn safe_description(text: &str) -> String {
    text.chars()
        .map(|c| {
            if crate::domain::breaks_log_lines(c) {
                ' '
            } else {
                c
            }
        })
        .take(300)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Finds an error in the shapes providers use: OAuth `{error, error_description}`, Graph
/// `{error: {message, type, code}}`, Instagram `{error_type, error_message}`, TikTok
/// `{error: {code: "ok"|…}}`.
pub fn oauth_error(body: &Value) -> Option<(String, Option<String>)> {
    let text = |v: &Value| match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let describe = |v: Option<&Value>| v.and_then(text).map(|d| safe_description(&d));
    match body.get("error") {
        Some(Value::String(code)) if !code.is_empty() => {
            return Some((
                safe_code(code),
                describe(body.get("error_description").or(body.get("error_message"))),
            ));
        }
        Some(obj @ Value::Object(_)) => {
            let code = obj.get("code").and_then(text);
            if code.as_deref() == Some("ok") {
                return None;
            }
            // Graph: {"type": "OAuthException", "code": 190, "message": …}; Google's APIs:
            // {"code": 403, "status": "PERMISSION_DENIED", "message": …}.
            let kind = obj.get("type").or_else(|| obj.get("status")).and_then(text);
            let description = match (obj.get("message").and_then(text), &code) {
                (Some(m), Some(c)) => Some(safe_description(&format!("{m} (code {c})"))),
                (m, _) => m.map(|m| safe_description(&m)),
            };
            let code = kind.or(code).unwrap_or_else(|| "provider_error".into());
            return Some((snake_case(&code), description));
        }
        _ => {}
    }
    if let Some(kind) = body.get("error_type").and_then(text) {
        return Some((snake_case(&kind), describe(body.get("error_message"))));
    }
    None
}

/// A string field, accepting numbers too (ids can come either way).
pub fn string_field(body: &Value, key: &str) -> Option<String> {
    match body.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        // serde_json keeps integers up to u64 exact: a 2^53+ id is not rounded.
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An integer field, accepting numeric strings too.
pub fn int_field(body: &Value, key: &str) -> Option<i64> {
    match body.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_description_blanks_c1_line_separators_and_bidi_controls() {
        assert_eq!(
            safe_description(
                "denied\u{85}INFO forged\u{2028}line\u{2029}x\u{202E}txt.exe\u{2066}y"
            ),
            "denied INFO forged line x txt.exe y"
        );
    }
    use serde_json::json;

    #[test]
    fn recognises_provider_error_shapes() {
        assert_eq!(
            oauth_error(&json!({"error": "invalid_grant", "error_description": "bad\ncode"})),
            Some(("invalid_grant".into(), Some("bad code".into())))
        );
        assert_eq!(
            oauth_error(
                &json!({"error": {"message": "Invalid token", "type": "OAuthException", "code": 190}})
            ),
            Some((
                "oauth_exception".into(),
                Some("Invalid token (code 190)".into())
            ))
        );
        assert_eq!(
            oauth_error(
                &json!({"error_type": "OAuthException", "code": 400, "error_message": "Invalid code"})
            ),
            Some(("oauth_exception".into(), Some("Invalid code".into())))
        );
        assert_eq!(
            oauth_error(&json!({"data": {}, "error": {"code": "ok"}})),
            None
        );
        assert_eq!(oauth_error(&json!({"access_token": "t"})), None);
        assert_eq!(
            oauth_error(
                &json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Quota exceeded"}})
            ),
            Some((
                "resource_exhausted".into(),
                Some("Quota exceeded (code 429)".into())
            ))
        );
    }

    #[test]
    fn big_ids_stay_exact() {
        let body: Value = serde_json::from_str(r#"{"user_id": 17841400000000001234}"#).unwrap();
        assert_eq!(
            string_field(&body, "user_id").unwrap(),
            "17841400000000001234"
        );
    }

    /// A client of user-chosen hosts refuses an address literal that is not public before it
    /// connects (no resolver sees a literal), and reaches it when private addresses are
    /// allowed.
    #[tokio::test]
    async fn a_guarded_client_checks_every_request_url() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"ok\":true}")
                    .await;
            }
        });
        let timeout = Duration::from_secs(5);
        let public_only = ProviderHttp::guarded(timeout, false);
        for url in [format!("https://{addr}/"), format!("http://{addr}/")] {
            let err = public_only
                .send(public_only.client().get(&url))
                .await
                .unwrap_err();
            assert_eq!(err.code(), "host_refused", "{url}: {err}");
            assert!(err.to_string().contains("127.0.0.1"), "{err}");
        }
        let private_ok = ProviderHttp::guarded(timeout, true);
        let answer = private_ok
            .send(private_ok.client().get(format!("http://{addr}/")))
            .await
            .unwrap();
        assert_eq!(answer.body["ok"], true);
        // The usual client is not guarded: provider endpoints come from the configuration.
        let plain = ProviderHttp::new(timeout);
        assert!(
            plain
                .send(plain.client().get(format!("http://{addr}/")))
                .await
                .is_ok()
        );
    }

    #[test]
    fn codes_are_sanitised() {
        assert_eq!(safe_code("access_denied"), "access_denied");
        assert_eq!(safe_code("<script>"), "script");
        assert_eq!(safe_code("&&&"), "provider_error");
    }
}
