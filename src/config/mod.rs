//! Configuration: built-in defaults, then `dravo.toml`, then `DRAVO_*` environment variables.
//! Loaded and checked once at start; a bad value stops the program with one sentence that
//! names the key.

mod sections;
mod sources;
#[cfg(test)]
mod tests;

pub use sections::*;
use sources::*;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::Deserialize;
use url::Url;

use crate::domain::Scopes;
use crate::error::{Error, Result};
use crate::providers;

/// The environment variable that names the configuration file.
pub const CONFIG_ENV: &str = "DRAVO_CONFIG";
const ENV_PREFIX: &str = "DRAVO_";
const DEFAULT_FILE: &str = "dravo.toml";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub security: SecurityConfig,
    pub auth: AuthConfig,
    pub dashboard: DashboardConfig,
    pub providers: ProvidersConfig,
    pub refresh: RefreshConfig,
    pub connect: ConnectConfig,
    pub webhooks: WebhooksConfig,
    pub limits: LimitsConfig,
    pub log: LogConfig,
    /// Where the configuration came from (not a key).
    #[serde(skip)]
    pub origin: Origin,
}

/// `server.bind`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindAddress {
    /// The host as a URL names it: an IPv4 address, `[IPv6]`, or a host name.
    pub url_host: String,
    pub port: u16,
    /// `0.0.0.0` or `[::]`: every interface.
    pub unspecified: bool,
}

/// The top-level sections, as `DRAVO_<SECTION>_<KEY>` names them. A test checks that this is
/// exactly the list of `Config`'s keys.
const SECTIONS: [&str; 11] = [
    "server",
    "database",
    "security",
    "auth",
    "dashboard",
    "providers",
    "refresh",
    "connect",
    "webhooks",
    "limits",
    "log",
];

/// Where the configuration came from, for messages that must say how a value was chosen.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The configuration file read, if any.
    pub file: Option<PathBuf>,
    /// How `database.path` was chosen.
    pub database_path: Chosen,
}

/// How a setting got its value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Chosen {
    /// Built in.
    #[default]
    Default,
    /// From the configuration file.
    File(PathBuf),
    /// From this environment variable.
    Env(String),
    /// From this command-line flag.
    Flag(&'static str),
}

impl std::fmt::Display for Chosen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Chosen::Default => f.write_str("the default"),
            Chosen::File(path) => write!(f, "the setting in {}", path.display()),
            Chosen::Env(var) => write!(f, "the environment variable {var}"),
            Chosen::Flag(flag) => write!(f, "the flag {flag}"),
        }
    }
}

impl Config {
    /// Loads the configuration the way the CLI does: `path`, else `$DRAVO_CONFIG`, else
    /// `./dravo.toml` when present, each overridden by `DRAVO_*` environment variables.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let explicit = path
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os(CONFIG_ENV).map(PathBuf::from));
        let file = match explicit {
            Some(p) => Some(p),
            None => Some(PathBuf::from(DEFAULT_FILE)).filter(|p| p.exists()),
        };
        let vars: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        Self::load_from(file.as_deref(), vars)
    }

    /// Loads from an optional file plus the given `DRAVO_*` variables (testable without
    /// touching the process environment).
    pub fn load_from(file: Option<&Path>, vars: Vec<(String, String)>) -> Result<Config> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::config(format!(
                    "cannot read the configuration file {}: {e}",
                    path.display()
                ))
            })?;
            figment = figment.merge(Toml::string(&text));
        }
        let mut sources = Sources {
            file: file.map(Path::to_path_buf),
            env: Vec::new(),
        };
        let in_file = figment.find_value("database.path").is_ok();
        for (var, value) in vars {
            let Some(key) = env_key(&var) else {
                continue;
            };
            // Values stay strings: a numeric-looking secret must not turn into a number.
            figment = figment.merge(Serialized::default(&key, value));
            sources.env.push((key, var));
        }
        let mut config: Config = figment
            .extract()
            .map_err(|e| describe_figment_error(e, &figment, &sources))?;
        config.origin = Origin {
            file: sources.file.clone(),
            database_path: match sources.env.iter().find(|(k, _)| k == "database.path") {
                Some((_, var)) => Chosen::Env(var.clone()),
                None if in_file => Chosen::File(sources.file.clone().unwrap_or_default()),
                None => Chosen::Default,
            },
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        self.bind_address()?;
        if let Some(url) = &self.database.url {
            use secrecy::ExposeSecret;
            crate::store::DatabaseLocation::postgres(url.expose_secret())?;
        }
        if let Some(bind) = &self.server.metrics_bind {
            parse_bind("server.metrics_bind", bind)?;
        }
        self.check_connection_limits()?;
        for origin in &self.dashboard.cors_origins {
            check_cors_origin(origin)?;
        }
        if let Some(key) = &self.security.master_key {
            use secrecy::ExposeSecret;
            crate::crypto::MasterKey::from_base64(key.expose_secret(), "security.master_key")?;
        }
        if let Some(url) = &self.server.public_url {
            check_base_url("server.public_url", url)?;
        }
        if self.auth.jwt_secret.is_some() && self.auth.jwt_public_key_file.is_some() {
            return Err(Error::config(
                "auth.jwt_secret and auth.jwt_public_key_file cannot both be set: choose HS256 with a secret or a public key",
            ));
        }
        if let Some(secret) = &self.auth.jwt_secret {
            use secrecy::ExposeSecret;
            if secret.expose_secret().len() < 32 {
                return Err(Error::config(
                    "auth.jwt_secret must be at least 32 bytes long",
                ));
            }
        }
        let claim = &self.auth.tenant_claim;
        if claim.is_empty() || claim.chars().any(char::is_control) {
            return Err(Error::config("auth.tenant_claim must name a JWT claim"));
        }
        if !(60..=31_536_000).contains(&self.auth.max_token_lifetime) {
            return Err(Error::config(
                "auth.max_token_lifetime must be between 60 and 31536000 seconds (one year)",
            ));
        }
        if let Some(url) = &self.dashboard.return_url {
            check_base_url("dashboard.return_url", url)?;
        }
        for prefix in &self.dashboard.allowed_return_urls {
            let url = Url::parse(prefix).map_err(|e| {
                Error::config(format!(
                    "dashboard.allowed_return_urls has an invalid URL `{prefix}`: {e}"
                ))
            })?;
            check_base_url("dashboard.allowed_return_urls", &url)?;
        }
        if !(1..=86_400).contains(&self.refresh.skew_seconds) {
            return Err(Error::config(
                "refresh.skew_seconds must be between 1 and 86400",
            ));
        }
        if !(1..=365).contains(&self.refresh.warn_days) {
            return Err(Error::config("refresh.warn_days must be between 1 and 365"));
        }
        if !(1..=3600).contains(&self.refresh.interval_seconds) {
            return Err(Error::config(
                "refresh.interval_seconds must be between 1 and 3600",
            ));
        }
        if self.refresh.keepalive_hours > 24 * 365 {
            return Err(Error::config(
                "refresh.keepalive_hours must be between 0 (off) and 8760",
            ));
        }
        if !(1..=64).contains(&self.refresh.concurrency) {
            return Err(Error::config(
                "refresh.concurrency must be between 1 and 64",
            ));
        }
        if !(1..=3650).contains(&self.webhooks.retention_days) {
            return Err(Error::config(
                "webhooks.retention_days must be between 1 and 3650",
            ));
        }
        match (&self.webhooks.url, &self.webhooks.secret) {
            (Some(url), Some(secret)) => {
                use secrecy::ExposeSecret;
                if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                    return Err(Error::config(
                        "webhooks.url must be an http:// or https:// URL",
                    ));
                }
                if secret.expose_secret().len() < 16 {
                    return Err(Error::config(
                        "webhooks.secret must be at least 16 characters long",
                    ));
                }
            }
            (Some(_), None) => {
                return Err(Error::config(
                    "webhooks.url is set but webhooks.secret is missing: events are always signed",
                ));
            }
            (None, Some(_)) => {
                return Err(Error::config(
                    "webhooks.secret is set but webhooks.url is missing",
                ));
            }
            (None, None) => {}
        }
        for (key, rate) in self.limits.rates() {
            if !(1..=LimitsConfig::MAX_PER_SECOND).contains(&rate) {
                return Err(Error::config(format!(
                    "{key} must be a whole number of requests per second from 1 to {}, not {rate}",
                    LimitsConfig::MAX_PER_SECOND
                )));
            }
        }
        if !(1..=300).contains(&self.providers.timeout_seconds) {
            return Err(Error::config(
                "providers.timeout_seconds must be between 1 and 300",
            ));
        }
        for (&provider, p) in &self.providers.tables {
            let key = |k: &str| format!("providers.{provider}.{k}");
            check_hosting_keys(provider, p)?;
            match (&p.client_id, &p.client_secret) {
                (Some(_), None) => {
                    return Err(Error::config(format!(
                        "{} is set but {} is missing",
                        key("client_id"),
                        key("client_secret")
                    )));
                }
                (None, Some(_)) => {
                    return Err(Error::config(format!(
                        "{} is set but {} is missing",
                        key("client_secret"),
                        key("client_id")
                    )));
                }
                _ => {}
            }
            if let Some(id) = &p.client_id {
                crate::domain::ClientId::parse(id)
                    .map_err(|e| Error::config(format!("{}: {e}", key("client_id"))))?;
            }
            if let Some(scopes) = &p.scopes {
                Scopes::parse(scopes)
                    .map_err(|e| Error::config(format!("{}: {e}", key("scopes"))))?;
            }
            for (name, url) in [
                ("authorize_url", &p.authorize_url),
                ("token_url", &p.token_url),
                ("api_base", &p.api_base),
            ] {
                if let Some(url) = url {
                    check_base_url(&key(name), url)?;
                }
            }
            if p.api_version.is_some() && providers::get(provider).default_api_version().is_none() {
                let versioned: Vec<String> = providers::all()
                    .filter(|p| p.default_api_version().is_some())
                    .map(|p| format!("providers.{}.api_version", p.id()))
                    .collect();
                return Err(Error::config(format!(
                    "{} is not a key: {provider} has no versioned API (only {} exists)",
                    key("api_version"),
                    versioned.join(", ")
                )));
            }
        }
        Ok(())
    }

    fn check_connection_limits(&self) -> Result<()> {
        let server = &self.server;
        if !(1..=1_000_000).contains(&server.max_connections) {
            return Err(Error::config(
                "server.max_connections must be between 1 and 1000000",
            ));
        }
        if !(1..=server.max_connections).contains(&server.max_connections_per_ip) {
            return Err(Error::config(format!(
                "server.max_connections_per_ip must be between 1 and server.max_connections ({})",
                server.max_connections
            )));
        }
        for (key, seconds) in [
            (
                "server.header_timeout_seconds",
                server.header_timeout_seconds,
            ),
            ("server.body_timeout_seconds", server.body_timeout_seconds),
            ("server.write_timeout_seconds", server.write_timeout_seconds),
            ("server.idle_timeout_seconds", server.idle_timeout_seconds),
        ] {
            if !(1..=3600).contains(&seconds) {
                return Err(Error::config(format!("{key} must be between 1 and 3600")));
            }
        }
        Ok(())
    }

    /// `server.bind` checked: an IP address or a host name, then a port.
    pub fn bind_address(&self) -> Result<BindAddress> {
        parse_bind("server.bind", &self.server.bind)
    }

    /// The external base URL, without a trailing slash. `bound` is the address actually
    /// listened on (its port differs from `server.bind`'s when that is 0). Without
    /// `server.public_url`, the host is `server.bind`'s as written.
    pub fn public_url(&self, bound: Option<SocketAddr>) -> String {
        if let Some(url) = &self.server.public_url {
            return url.as_str().trim_end_matches('/').to_owned();
        }
        match self.bind_address() {
            Ok(b) => format!(
                "http://{}:{}",
                b.url_host,
                bound.map_or(b.port, |a| a.port())
            ),
            // Not reached: the configuration is checked when it is loaded.
            Err(_) => format!("http://{}", self.server.bind),
        }
    }

    /// A warning when the redirect URI Dravo advertises cannot work: listening on all
    /// interfaces (`0.0.0.0`, `[::]`) without `server.public_url` makes it
    /// `http://0.0.0.0:…/callback`, which no browser can reach.
    pub fn public_url_warning(&self) -> Option<String> {
        let bind = self.bind_address().ok()?;
        (self.server.public_url.is_none() && bind.unspecified).then(|| {
            format!(
                "server.bind is {} and server.public_url is not set, so redirect URIs name {}, which browsers cannot reach: set server.public_url (or DRAVO_SERVER_PUBLIC_URL) to the URL users reach this server at",
                self.server.bind,
                self.public_url(None)
            )
        })
    }

    /// The key file used when `security.master_key` is unset.
    pub fn master_key_file(&self) -> PathBuf {
        match &self.security.master_key_file {
            Some(p) => p.clone(),
            None => self
                .database
                .path
                .parent()
                .map(|d| d.join("dravo.key"))
                .unwrap_or_else(|| PathBuf::from("dravo.key")),
        }
    }
}

/// A listen address checked: an IP address or a host name, then a port. `key` names the
/// setting in the error.
fn parse_bind(key: &str, value: &str) -> Result<BindAddress> {
    let bind = value.trim();
    let invalid = || {
        Error::config(format!(
            "{key} must be a host and port like 127.0.0.1:8080 or localhost:8080, not `{value}`"
        ))
    };
    if let Ok(addr) = bind.parse::<SocketAddr>() {
        return Ok(BindAddress {
            url_host: match addr {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            },
            port: addr.port(),
            unspecified: addr.ip().is_unspecified(),
        });
    }
    let (host, port) = bind.rsplit_once(':').ok_or_else(invalid)?;
    let port: u16 = port.parse().map_err(|_| invalid())?;
    match url::Host::parse(host) {
        Ok(url::Host::Domain(name)) if !name.is_empty() && name == host => Ok(BindAddress {
            url_host: name,
            port,
            unspecified: false,
        }),
        _ => Err(invalid()),
    }
}

/// A `dashboard.cors_origins` entry checked: exactly an origin as browsers send it in the
/// `Origin` header (`scheme://host[:port]`, lower case, no default port, no path), because
/// requests are matched against the entries byte for byte.
fn check_cors_origin(entry: &str) -> Result<()> {
    const KEY: &str = "dashboard.cors_origins";
    const FORM: &str = "scheme://host[:port], without a path or trailing slash";
    if entry == "*" {
        return Err(Error::config(format!(
            "{KEY} does not accept `*`: list each dashboard origin exactly, such as https://dashboard.example.com, so that no other web page can call the API with a token it got hold of"
        )));
    }
    let origin = Url::parse(entry)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
        .map(|url| url.origin().ascii_serialization());
    match origin {
        Some(origin) if origin == entry => Ok(()),
        Some(origin) => Err(Error::config(format!(
            "{KEY} entry `{entry}` is not an origin as browsers send it: write `{origin}` ({FORM})"
        ))),
        None => Err(Error::config(format!(
            "{KEY} entry `{entry}` is not an http(s) origin such as https://dashboard.example.com ({FORM})"
        ))),
    }
}

fn check_base_url(key: &str, url: &Url) -> Result<()> {
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::config(format!(
            "{key} must be an absolute http(s) URL, not `{url}`"
        )));
    }
    Ok(())
}

/// The keys a provider's table may hold depend on where its servers are: a provider whose
/// users name their server (Mastodon) has no platform app and no fixed endpoints, only the
/// private-address switch; the others have no use for that switch.
fn check_hosting_keys(provider: providers::Provider, p: &ProviderConfig) -> Result<()> {
    let key = |k: &str| format!("providers.{provider}.{k}");
    let hosting = providers::get(provider).hosting();
    if let Some(param) = hosting.server_param() {
        let fixed = [
            ("client_id", p.client_id.is_some()),
            ("client_secret", p.client_secret.is_some()),
            ("scopes", p.scopes.is_some()),
            ("authorize_url", p.authorize_url.is_some()),
            ("token_url", p.token_url.is_some()),
            ("api_base", p.api_base.is_some()),
            ("api_version", p.api_version.is_some()),
        ];
        if let Some((name, _)) = fixed.iter().find(|(_, set)| *set) {
            return Err(Error::config(format!(
                "{} is not a key: {provider} has no platform app and no fixed endpoints (each \
                 connect names its server with `{param}`, and Dravo registers the tenant's app \
                 there); only {} exists",
                key(name),
                key("allow_private_addresses")
            )));
        }
    } else if p.allow_private_addresses {
        let open: Vec<String> = providers::all()
            .filter(|p| p.hosting().server_param().is_some())
            .map(|p| format!("providers.{}.allow_private_addresses", p.id()))
            .collect();
        return Err(Error::config(format!(
            "{} is not a key: {provider}'s servers are fixed (only {} exists)",
            key("allow_private_addresses"),
            open.join(", ")
        )));
    }
    Ok(())
}
