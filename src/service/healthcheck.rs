//! `dravo healthcheck`: asks a running server whether it is ready, for container and
//! service-manager health checks. One GET, a few seconds at most; a 2xx is healthy.

use crate::config::Config;
use crate::error::{Error, Result};

/// The endpoint asked by default (the API's readiness check).
pub const READINESS_PATH: &str = "/readyz";

/// How long the probe waits for an answer.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A server that answered ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// The URL asked.
    pub url: String,
    /// The HTTP status it answered (a 2xx).
    pub status: u16,
}

/// The URL asked when none is given: the readiness endpoint at `server.bind`, on loopback
/// when it names every interface.
pub fn default_url(config: &Config) -> Result<String> {
    let bind = config.bind_address()?;
    let host = match (bind.unspecified, bind.url_host.starts_with('[')) {
        (true, true) => "[::1]".to_owned(),
        (true, false) => "127.0.0.1".to_owned(),
        (false, _) => bind.url_host,
    };
    Ok(format!("http://{host}:{}{READINESS_PATH}", bind.port))
}

/// Asks `url` (else `default_url`) once. Not ready, unreachable or too slow is an error
/// that says why: the server's own reason when it gave one, else the innermost cause.
pub async fn probe(config: &Config, url: Option<&str>) -> Result<Ready> {
    let url = match url {
        Some(url) => url.to_owned(),
        None => default_url(config)?,
    };
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::Internal(format!("cannot build an HTTP client: {e}")))?;
    let resp = client.get(&url).send().await.map_err(|e| {
        // The innermost cause says it plainly ("Connection refused").
        let mut cause: &dyn std::error::Error = &e;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        Error::Config(format!("GET {url} failed: {cause}"))
    })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(Ready {
            url,
            status: status.as_u16(),
        });
    }
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    let why = body["error"]["message"]
        .as_str()
        .unwrap_or("no reason given");
    Err(Error::Config(format!(
        "GET {url} answered {}: {why}",
        status.as_u16()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound_to(bind: &str) -> Config {
        let mut config = Config::default();
        config.server.bind = bind.into();
        config
    }

    #[test]
    fn the_default_url_asks_loopback_when_the_server_listens_everywhere() {
        for (bind, url) in [
            ("127.0.0.1:8080", "http://127.0.0.1:8080/readyz"),
            ("0.0.0.0:9000", "http://127.0.0.1:9000/readyz"),
            ("[::]:9000", "http://[::1]:9000/readyz"),
            ("[::1]:7000", "http://[::1]:7000/readyz"),
        ] {
            assert_eq!(default_url(&bound_to(bind)).unwrap(), url, "{bind}");
        }
    }

    #[tokio::test]
    async fn nothing_listening_is_an_error_naming_the_url() {
        // A port just freed: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/readyz");
        let error = probe(&Config::default(), Some(&url)).await.unwrap_err();
        assert!(matches!(error, Error::Config(_)), "{error:?}");
        assert!(
            error
                .to_string()
                .starts_with(&format!("GET {url} failed: ")),
            "{error}"
        );
    }
}
