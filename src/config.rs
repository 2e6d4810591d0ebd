//! Configuration: built-in defaults, then `dravo.toml`, then `DRAVO_*` environment variables.
//! Loaded and checked once at start; a bad value stops the program with one sentence that
//! names the key.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use serde_with::{DeserializeFromStr, DisplayFromStr, FromInto, PickFirst, serde_as};
use url::Url;

use std::collections::BTreeMap;

use crate::domain::{Provider, Scopes};
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

#[serde_as]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Listen address; port 0 picks a free port (it is logged).
    pub bind: String,
    /// External base URL; defaults to `http://<bind>`.
    pub public_url: Option<Url>,
    /// Peers whose `X-Forwarded-For` is believed when finding the client's IP address; they
    /// are also exempt from `max_connections_per_ip`.
    pub trusted_proxies: TrustedProxies,
    /// Serve `/metrics` on this address (host and port) instead of on `bind`.
    pub metrics_bind: Option<String>,
    /// Connections served at once; more wait for one to close.
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub max_connections: usize,
    /// Connections one client IP address (IPv6: one /64) may hold; more are refused.
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub max_connections_per_ip: usize,
    /// Seconds a client has to send a request head.
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub header_timeout_seconds: u64,
    /// Seconds a client has to send a request body, from the end of its head.
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub body_timeout_seconds: u64,
    /// Seconds a client has to take a response, from when it is ready.
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub write_timeout_seconds: u64,
    /// Seconds a kept-alive connection may wait for its next request.
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub idle_timeout_seconds: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            public_url: None,
            trusted_proxies: TrustedProxies::default(),
            metrics_bind: None,
            // Leaves descriptors for the database and provider calls only if `ulimit -n` is
            // above this; below it, accept errors are still handled by the back-off.
            max_connections: 1024,
            // An eighth of the cap: a dashboard's connection pool fits many times over, and
            // one address cannot fill the server.
            max_connections_per_ip: 128,
            // A request head is a few hundred bytes and a body at most 64 KiB: 10 s is
            // plenty on any real link.
            header_timeout_seconds: 10,
            body_timeout_seconds: 10,
            // The largest response, the API docs page, is about 1.7 MB.
            write_timeout_seconds: 30,
            // Long enough for a browser or SDK to reuse the connection between calls.
            idle_timeout_seconds: 60,
        }
    }
}

/// `server.trusted_proxies`: the IP addresses and CIDR ranges of the reverse proxies in front
/// of Dravo. Written as a TOML list of strings, or as one string `"a b"` / `"a,b"` (the form an
/// environment variable carries); each entry is parsed when the configuration is loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// What an entry must look like, for error messages.
    const EXPECTED: &str = "IP addresses or CIDR ranges such as 10.0.0.0/8";

    /// Parses entries such as `127.0.0.1`, `::1` or `10.0.0.0/8`; the error names the first
    /// entry that is neither an IP address nor a CIDR range.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> std::result::Result<Self, String> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                entry
                    .parse::<ipnet::IpNet>()
                    .map(|net| net.trunc())
                    .or_else(|_| entry.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| entry.to_owned())
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    /// Whether `ip` is one of the proxies. An IPv4 address written as IPv6 (`::ffff:a.b.c.d`,
    /// how a dual-stack socket reports IPv4 peers) matches its IPv4 entries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> serde::de::Visitor<'de> for ListVisitor {
            type Value = TrustedProxies;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(
                    f,
                    "a list of {} or a space- or comma-separated string of them",
                    TrustedProxies::EXPECTED
                )
            }
            fn visit_str<E: serde::de::Error>(
                self,
                s: &str,
            ) -> std::result::Result<Self::Value, E> {
                parsed(&crate::domain::split_list(s))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = seq.next_element::<String>()? {
                    entries.push(entry);
                }
                parsed(&entries)
            }
        }
        fn parsed<E: serde::de::Error>(
            entries: &[String],
        ) -> std::result::Result<TrustedProxies, E> {
            TrustedProxies::parse(entries).map_err(|bad| {
                E::invalid_value(serde::de::Unexpected::Str(&bad), &TrustedProxies::EXPECTED)
            })
        }
        d.deserialize_any(ListVisitor)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub path: PathBuf,
    /// `postgres://…`: PostgreSQL (several nodes on one database) instead of the SQLite file
    /// at `path`. Secret: it may carry a password.
    pub url: Option<SecretString>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            path: PathBuf::from("dravo.db"),
            url: None,
        }
    }
}

impl DatabaseConfig {
    /// Where the database is: `database.url` when set, else the SQLite file at `database.path`.
    pub fn location(&self) -> crate::store::DatabaseLocation {
        use secrecy::ExposeSecret;
        match &self.url {
            Some(url) => crate::store::DatabaseLocation::Postgres(url.expose_secret().to_owned()),
            None => crate::store::DatabaseLocation::Sqlite(self.path.clone()),
        }
    }

    /// Where the database is, for messages: the SQLite path, or the PostgreSQL host and
    /// database (never a password).
    pub fn describe(&self) -> String {
        self.location().describe()
    }
}

#[serde_as]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Base64 of 64 random bytes.
    pub master_key: Option<SecretString>,
    /// Defaults to `dravo.key` beside the database.
    pub master_key_file: Option<PathBuf>,
    /// Use a key file that users other than its owner may access (Unix); without it such a
    /// file is refused. `true` or `"true"`: environment variables always carry strings.
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub allow_insecure_key_file: bool,
}

#[serde_as]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub jwt_secret: Option<SecretString>,
    pub jwt_public_key_file: Option<PathBuf>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub tenant_claim: String,
    /// The longest a dashboard token may be valid, in seconds: from its `iat` (or from now,
    /// without one) to its `exp`. `dravo token issue --ttl` may not ask for more.
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub max_token_lifetime: u64,
}

/// `auth.max_token_lifetime` by default: 7 days, a dashboard session's order of magnitude.
pub const DEFAULT_MAX_TOKEN_LIFETIME: u64 = 7 * 86_400;

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_secret: None,
            jwt_public_key_file: None,
            issuer: None,
            audience: None,
            tenant_claim: "sub".into(),
            max_token_lifetime: DEFAULT_MAX_TOKEN_LIFETIME,
        }
    }
}

#[serde_as]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    pub return_url: Option<Url>,
    #[serde_as(as = "PickFirst<(_, FromInto<SplitList>)>")]
    pub allowed_return_urls: Vec<String>,
    /// Browser origins (`scheme://host[:port]`) allowed to call the API (CORS); none by
    /// default. Checked when the configuration is loaded.
    #[serde_as(as = "PickFirst<(_, FromInto<SplitList>)>")]
    pub cors_origins: Vec<String>,
}

/// `[log]`: how `dravo serve` writes its log (to stderr).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
}

/// `log.format`: one human-readable line per event, or one JSON object per line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `[refresh]`: when tokens are renewed and deadlines announced.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RefreshConfig {
    /// Refresh a token this long before it expires.
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub skew_seconds: u64,
    /// Mark an account `expiring` this long before a deadline no refresh can move.
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub warn_days: u64,
    /// Whether `dravo serve` runs the background refresher.
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub background: bool,
    /// How often the background refresher looks for due accounts.
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub interval_seconds: u64,
    /// How many accounts it refreshes at once.
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub concurrency: u64,
    /// The background refresher renews an account that nobody used for this long, to prove
    /// its consent still stands (0: never; deadlines the provider enforces still count).
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub keepalive_hours: u64,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        RefreshConfig {
            skew_seconds: 300,
            warn_days: 7,
            background: true,
            interval_seconds: 30,
            concurrency: 4,
            keepalive_hours: 24,
        }
    }
}

/// `[connect]`: how a consent becomes an account.
#[serde_as]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectConfig {
    /// Keep each new connection pending until the dashboard confirms it with the one-time
    /// code the callback gave it (`POST /v1/accounts/{id}/confirm`).
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub require_confirmation: bool,
}

/// `[webhooks]`: where events are posted, the key that signs them, and how long sent and
/// given-up events are kept.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    pub url: Option<Url>,
    pub secret: Option<SecretString>,
    /// Delivered and failed events are deleted this many days after they were recorded (they
    /// name tenants and accounts, deleted ones too).
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub retention_days: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            url: None,
            secret: None,
            retention_days: 7,
        }
    }
}

/// `[limits]`: token buckets, in requests per second, each allowing a burst of 5 × its rate.
/// Whole numbers only (1 to `MAX_PER_SECOND`): a bucket holds whole requests.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// `/v1/oauth/{provider}/start`, per tenant.
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub start_per_second: u32,
    /// `/v1/oauth/{provider}/callback`, per client IP address.
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub callback_per_second: u32,
    /// `POST /v1/oauth-apps`, per tenant.
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub create_per_second: u32,
    /// `/v1/accounts/{id}/access-token` and `/v1/accounts/{id}/refresh` together, per tenant.
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub token_per_second: u32,
    /// Changes by id: `PATCH` and `DELETE /v1/oauth-apps/{id}`, `DELETE /v1/accounts/{id}`
    /// and `POST /v1/accounts/{id}/confirm` together, per tenant.
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub change_per_second: u32,
}

impl LimitsConfig {
    /// The highest rate accepted: far above what one tenant needs, so it is as good as off.
    pub const MAX_PER_SECOND: u32 = 100_000;
    /// A bucket holds this many seconds of its rate.
    pub const BURST_SECONDS: u32 = 5;

    /// Every rate with its key, for checks and messages.
    pub fn rates(&self) -> [(&'static str, u32); 5] {
        [
            ("limits.start_per_second", self.start_per_second),
            ("limits.callback_per_second", self.callback_per_second),
            ("limits.create_per_second", self.create_per_second),
            ("limits.token_per_second", self.token_per_second),
            ("limits.change_per_second", self.change_per_second),
        ]
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            start_per_second: 10,
            callback_per_second: 10,
            create_per_second: 5,
            token_per_second: 50,
            change_per_second: 10,
        }
    }
}

/// The `[providers]` section: the provider-call timeout and one `[providers.<name>]` table
/// per provider, looked up by the provider's name.
#[derive(Debug, Clone)]
pub struct ProvidersConfig {
    /// Total time allowed for one call to a provider (token exchange, identity).
    pub timeout_seconds: u64,
    tables: BTreeMap<Provider, ProviderConfig>,
}

impl Default for ProvidersConfig {
    fn default() -> Self {
        ProvidersConfig {
            timeout_seconds: 15,
            tables: BTreeMap::new(),
        }
    }
}

impl ProvidersConfig {
    pub fn get(&self, provider: Provider) -> Option<&ProviderConfig> {
        self.tables.get(&provider)
    }

    /// Sets a provider's table (for tests and embedders building a `Config` in code).
    pub fn set(&mut self, provider: Provider, config: ProviderConfig) {
        self.tables.insert(provider, config);
    }

    /// The provider's table, created empty when missing.
    pub fn entry(&mut self, provider: Provider) -> &mut ProviderConfig {
        self.tables.entry(provider).or_default()
    }
}

/// `timeout_seconds` plus a table per registered provider name; any other key is unknown.
impl<'de> Deserialize<'de> for ProvidersConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        /// `15` or `"15"`: environment variables always carry strings.
        #[serde_as]
        #[derive(Deserialize)]
        struct Seconds(#[serde_as(as = "PickFirst<(_, DisplayFromStr)>")] u64);

        struct SectionVisitor;
        impl<'de> serde::de::Visitor<'de> for SectionVisitor {
            type Value = ProvidersConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table of provider settings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut out = ProvidersConfig::default();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "timeout_seconds" {
                        out.timeout_seconds = map.next_value::<Seconds>()?.0;
                    } else if let Ok(provider) = key.parse::<Provider>() {
                        out.tables.insert(provider, map.next_value()?);
                    } else {
                        let mut expected: Vec<&'static str> = vec!["timeout_seconds"];
                        expected.extend(providers::ids().map(Provider::as_str));
                        // serde wants a static list; this runs once, on the way to exiting.
                        return Err(serde::de::Error::unknown_field(
                            &key,
                            Box::leak(expected.into_boxed_slice()),
                        ));
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(SectionVisitor)
    }
}

/// One provider's default (platform) app and endpoint overrides.
#[serde_as]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderConfig {
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    #[serde_as(as = "Option<PickFirst<(_, FromInto<SplitList>)>>")]
    pub scopes: Option<Vec<String>>,
    pub authorize_url: Option<Url>,
    pub token_url: Option<Url>,
    pub api_base: Option<Url>,
    /// Graph API version (facebook only).
    pub api_version: Option<String>,
}

/// A list written as one string, `"a b"` or `"a,b"`: the form an environment variable can
/// carry. List keys read `PickFirst<(_, FromInto<SplitList>)>`: a TOML list as it is, else a
/// string split into one.
#[derive(DeserializeFromStr)]
struct SplitList(Vec<String>);

impl std::str::FromStr for SplitList {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(SplitList(crate::domain::split_list(s)))
    }
}

impl From<SplitList> for Vec<String> {
    fn from(list: SplitList) -> Self {
        list.0
    }
}

/// What a key read with serde_with's `PickFirst` (its own type, or that type written as a
/// string) accepts, for the error sentence: `PickFirst` itself only reports that every form
/// failed.
fn accepted_forms(key: &str) -> &'static str {
    match key.rsplit('.').next().unwrap_or(key) {
        "timeout_seconds"
        | "max_token_lifetime"
        | "skew_seconds"
        | "warn_days"
        | "interval_seconds"
        | "concurrency"
        | "keepalive_hours"
        | "retention_days"
        | "max_connections"
        | "max_connections_per_ip"
        | "header_timeout_seconds"
        | "body_timeout_seconds"
        | "write_timeout_seconds"
        | "idle_timeout_seconds"
        | "start_per_second"
        | "callback_per_second"
        | "create_per_second"
        | "token_per_second"
        | "change_per_second" => "a whole number",
        "allow_insecure_key_file" | "background" => "true or false",
        "allowed_return_urls" | "scopes" | "cors_origins" => {
            "a list of strings or a space- or comma-separated string"
        }
        _ => "a value of another form (see dravo.toml.example)",
    }
}

/// The start of the message `PickFirst` gives when no form fits.
const PICK_FIRST_FAILED: &str = "PickFirst could not deserialize any variant";

/// Where the configuration came from, to name it in error messages.
struct Sources {
    file: Option<PathBuf>,
    /// (dotted key, environment variable) for every `DRAVO_*` variable applied.
    env: Vec<(String, String)>,
}

impl Sources {
    fn describe(&self, key: &str) -> String {
        // The key may be the variable's own key, a part of it (an unknown section), or lie
        // under it.
        if let Some((_, var)) = self.env.iter().find(|(k, _)| {
            k == key || key.starts_with(&format!("{k}.")) || k.starts_with(&format!("{key}."))
        }) {
            return format!(" (from environment variable {var})");
        }
        match &self.file {
            Some(f) => format!(" (in {})", f.display()),
            None => String::new(),
        }
    }
}

/// Maps `DRAVO_SERVER_PUBLIC_URL` to `server.public_url` and
/// `DRAVO_PROVIDERS_X_CLIENT_ID` to `providers.x.client_id`. Only a name that starts with a
/// known section is configuration: `DRAVO_URL` or `DRAVO_TOKEN` (client-side settings of the
/// examples and scripts) are not, and are left alone.
fn env_key(var: &str) -> Option<String> {
    let rest = var.strip_prefix(ENV_PREFIX)?.to_ascii_lowercase();
    let (section, key) = rest.split_once('_')?;
    if !SECTIONS.contains(&section) {
        return None;
    }
    if section == "providers"
        && let Some((provider, rest)) = key.split_once('_')
        && providers::ids().any(|p| p.as_str() == provider)
    {
        return Some(format!("providers.{provider}.{rest}"));
    }
    Some(format!("{section}.{key}"))
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

/// Whether the dotted `key` holds a secret (`security.master_key`, `auth.jwt_secret`,
/// `providers.<p>.client_secret`, or any other key whose name ends in `secret` or `key`), or
/// lies under such a key: its value must never appear in a message.
fn is_secret_key(key: &str) -> bool {
    key.split('.')
        .any(|part| part.ends_with("secret") || part.ends_with("key"))
}

/// What kind of value `actual` is, without the value itself.
fn kind_of(actual: &figment::error::Actual) -> &'static str {
    use figment::error::Actual;
    match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a floating-point number",
        Actual::Char(_) => "a character",
        Actual::Str(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Unit | Actual::Option => "nothing",
        Actual::Seq => "a list",
        Actual::Map => "a table",
        _ => "a value of another kind",
    }
}

/// Turns a figment error into one sentence that names the key and where it came from. For a
/// key that holds a secret, only the kind of value found is named, never the value.
fn describe_figment_error(err: figment::Error, figment: &Figment, sources: &Sources) -> Error {
    use figment::error::{Actual, Kind};
    let err = err
        .into_iter()
        .next()
        .expect("a figment error holds at least one error");
    let path = err.path.join(".");
    let secret = is_secret_key(&path);
    let found = |actual: &Actual| {
        if secret {
            kind_of(actual).to_owned()
        } else {
            actual.to_string()
        }
    };
    let sentence = match &err.kind {
        Kind::UnknownField(field, _) => {
            // figment's path already ends with the unknown field.
            let key = if path.is_empty() || !path.ends_with(field.as_str()) {
                [path.as_str(), field.as_str()]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(".")
            } else {
                path.clone()
            };
            format!(
                "unknown configuration key `{key}`{}",
                sources.describe(&key)
            )
        }
        Kind::InvalidType(actual, expected) => format!(
            "configuration key `{path}` has the wrong type: expected {expected}, found {}{}",
            found(actual),
            sources.describe(&path)
        ),
        Kind::InvalidValue(actual, expected) => format!(
            "configuration key `{path}` has an invalid value: expected {expected}, found {}{}",
            found(actual),
            sources.describe(&path)
        ),
        Kind::UnknownVariant(found, expected) => {
            let names: Vec<String> = expected.iter().map(|v| format!("`{v}`")).collect();
            let expected = match names.split_last() {
                Some((last, [])) => last.clone(),
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => "nothing".into(),
            };
            format!(
                "configuration key `{path}` has an invalid value: expected {expected}, found `{found}`{}",
                sources.describe(&path)
            )
        }
        // Its message lists each form's error over several lines; say what the key accepts.
        Kind::Message(msg) if msg.starts_with(PICK_FIRST_FAILED) => {
            let actual = figment.find_value(&path).map(|v| v.to_actual()).ok();
            let problem = match actual {
                Some(Actual::Str(_)) => "has an invalid value",
                _ => "has the wrong type",
            };
            let found = actual
                .map(|a| format!(", found {}", found(&a)))
                .unwrap_or_default();
            format!(
                "configuration key `{path}` {problem}: expected {}{found}{}",
                accepted_forms(&path),
                sources.describe(&path)
            )
        }
        Kind::Message(msg) if path.is_empty() => {
            let first_line = msg.lines().next().unwrap_or(msg);
            format!(
                "the configuration is not valid TOML: {first_line}{}",
                sources.describe("")
            )
        }
        // Other messages may quote the value.
        _ if secret => format!(
            "configuration key `{path}` has an invalid value (not shown: the key holds a secret){}",
            sources.describe(&path)
        ),
        other => format!(
            "configuration key `{path}`: {other}{}",
            sources.describe(&path)
        ),
    };
    Error::config(sentence)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn env_keys_map_to_sections() {
        assert_eq!(
            env_key("DRAVO_SERVER_PUBLIC_URL").unwrap(),
            "server.public_url"
        );
        assert_eq!(
            env_key("DRAVO_PROVIDERS_X_CLIENT_ID").unwrap(),
            "providers.x.client_id"
        );
        assert_eq!(env_key("DRAVO_AUTH_JWT_SECRET").unwrap(), "auth.jwt_secret");
        assert_eq!(
            env_key("DRAVO_PROVIDERS_TIMEOUT_SECONDS").unwrap(),
            "providers.timeout_seconds"
        );
        assert_eq!(
            env_key("DRAVO_PROVIDERS_TIKTOK_TOKEN_URL").unwrap(),
            "providers.tiktok.token_url"
        );
    }

    #[test]
    fn numeric_looking_env_values_stay_strings() {
        let c = Config::load_from(
            None,
            env(&[
                ("DRAVO_PROVIDERS_X_CLIENT_ID", "12345"),
                ("DRAVO_PROVIDERS_X_CLIENT_SECRET", "67890"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.providers
                .get("x".parse().unwrap())
                .unwrap()
                .client_id
                .clone()
                .unwrap(),
            "12345"
        );
    }

    #[test]
    fn timeout_accepts_env_string_and_rejects_words() {
        let c = Config::load_from(None, env(&[("DRAVO_PROVIDERS_TIMEOUT_SECONDS", "3")])).unwrap();
        assert_eq!(c.providers.timeout_seconds, 3);
        let msg = Config::load_from(None, env(&[("DRAVO_PROVIDERS_TIMEOUT_SECONDS", "soon")]))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("providers.timeout_seconds"), "{msg}");
    }

    #[test]
    fn client_side_dravo_variables_are_left_alone() {
        let c = Config::load_from(
            None,
            env(&[
                ("DRAVO_TOKEN", "eyJ.not.config"),
                ("DRAVO_URL", "http://127.0.0.1:8080"),
                ("DRAVO_CONFIG", "ignored-here.toml"),
                ("DRAVO_SERVERS_BIND", "x"),
                ("DRAVO_SERVER_BIND", "127.0.0.1:9009"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.bind, "127.0.0.1:9009");
    }

    #[test]
    fn sections_are_exactly_the_configuration_tables() {
        let err = Figment::new()
            .merge(Toml::string("not_a_section = 1"))
            .extract::<Config>()
            .unwrap_err();
        let figment::error::Kind::UnknownField(_, expected) = &err.kind else {
            panic!("expected an unknown-field error, got {err}");
        };
        assert_eq!(*expected, &SECTIONS[..]);
    }

    #[test]
    fn unknown_key_inside_a_known_section_is_still_an_error() {
        for var in ["DRAVO_DATABASE_PATHH", "DRAVO_PROVIDERS_X_CLIENTID"] {
            let msg = Config::load_from(None, env(&[(var, "x")]))
                .unwrap_err()
                .to_string();
            assert!(msg.contains(var), "{msg}");
        }
    }

    #[test]
    fn how_the_database_path_was_chosen_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dravo.toml");
        let c = Config::load_from(None, vec![]).unwrap();
        assert_eq!(c.origin.database_path, Chosen::Default);
        std::fs::write(&file, "[server]\nbind = \"127.0.0.1:9000\"\n").unwrap();
        let c = Config::load_from(Some(&file), vec![]).unwrap();
        assert_eq!(c.origin.database_path, Chosen::Default);
        assert_eq!(c.origin.file.as_deref(), Some(file.as_path()));
        std::fs::write(&file, "[database]\npath = \"x.db\"\n").unwrap();
        let c = Config::load_from(Some(&file), vec![]).unwrap();
        assert_eq!(c.origin.database_path, Chosen::File(file.clone()));
        let c = Config::load_from(Some(&file), env(&[("DRAVO_DATABASE_PATH", "y.db")])).unwrap();
        assert_eq!(
            c.origin.database_path,
            Chosen::Env("DRAVO_DATABASE_PATH".into())
        );
        assert_eq!(c.database.path, PathBuf::from("y.db"));
    }

    #[test]
    fn unknown_env_key_is_named() {
        let err = Config::load_from(None, env(&[("DRAVO_SERVER_BINDD", "x")])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("server.bindd"), "{msg}");
        assert!(msg.contains("DRAVO_SERVER_BINDD"), "{msg}");
    }

    #[test]
    fn env_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dravo.toml");
        std::fs::write(&file, "[server]\nbind = \"127.0.0.1:9000\"\n").unwrap();
        let c = Config::load_from(Some(&file), vec![]).unwrap();
        assert_eq!(c.server.bind, "127.0.0.1:9000");
        let c = Config::load_from(Some(&file), env(&[("DRAVO_SERVER_BIND", "127.0.0.1:9001")]))
            .unwrap();
        assert_eq!(c.server.bind, "127.0.0.1:9001");
    }

    #[test]
    fn wrong_type_in_file_names_key_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dravo.toml");
        std::fs::write(&file, "[server]\nbind = 8080\n").unwrap();
        let msg = Config::load_from(Some(&file), vec![])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("server.bind"), "{msg}");
        assert!(msg.contains("dravo.toml"), "{msg}");
    }

    fn with_bind(bind: &str) -> Result<Config> {
        Config::load_from(None, env(&[("DRAVO_SERVER_BIND", bind)]))
    }

    #[test]
    fn bind_accepts_addresses_and_host_names() {
        for (bind, public) in [
            ("127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("localhost:8080", "http://localhost:8080"),
            ("dravo.internal:9000", "http://dravo.internal:9000"),
            ("[::1]:8080", "http://[::1]:8080"),
        ] {
            let c = with_bind(bind).unwrap_or_else(|e| panic!("{bind}: {e}"));
            assert_eq!(c.public_url(None), public);
            assert_eq!(c.public_url_warning(), None, "{bind}");
        }
        // The port actually bound replaces 0; the host stays as written.
        let c = with_bind("localhost:0").unwrap();
        let bound: SocketAddr = "127.0.0.1:43210".parse().unwrap();
        assert_eq!(c.public_url(Some(bound)), "http://localhost:43210");
        for bad in [
            "localhost",
            "8080",
            ":8080",
            "local host:80",
            "a:b",
            "127.0.0.1:99999",
        ] {
            let msg = with_bind(bad).unwrap_err().to_string();
            assert!(msg.contains("server.bind"), "{bad}: {msg}");
            assert!(msg.contains("localhost:8080"), "{bad}: {msg}");
        }
    }

    #[test]
    fn every_interface_without_a_public_url_is_warned_about() {
        for bind in ["0.0.0.0:8080", "[::]:8080"] {
            let warning = with_bind(bind).unwrap().public_url_warning().unwrap();
            assert!(warning.contains("server.public_url"), "{warning}");
            assert!(warning.contains(bind), "{warning}");
        }
        let c = Config::load_from(
            None,
            env(&[
                ("DRAVO_SERVER_BIND", "0.0.0.0:8080"),
                ("DRAVO_SERVER_PUBLIC_URL", "https://dravo.example.com"),
            ]),
        )
        .unwrap();
        assert_eq!(c.public_url_warning(), None);
    }

    #[test]
    fn secret_keys_are_known_by_name() {
        for key in [
            "security.master_key",
            "auth.jwt_secret",
            "providers.x.client_secret",
            "providers.tiktok.client_secret",
            "some.future_api_key",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "security.master_key_file",
            "auth.jwt_public_key_file",
            "server.bind",
            "providers.timeout_seconds",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_named_but_not_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dravo.toml");
        std::fs::write(
            &file,
            "[providers.x]\nclient_id = \"cid\"\nclient_secret = 7365021894563210987\n",
        )
        .unwrap();
        let msg = Config::load_from(Some(&file), vec![])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`providers.x.client_secret`"), "{msg}");
        assert!(msg.contains("expected a string, found an integer"), "{msg}");
        assert!(!msg.contains("7365021894563210987"), "{msg}");
    }

    fn load_toml(text: &str, vars: &[(&str, &str)]) -> Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dravo.toml");
        std::fs::write(&file, text).unwrap();
        Config::load_from(Some(&file), env(vars))
    }

    #[test]
    fn timeout_accepts_a_number_or_a_string_holding_one() {
        let c = load_toml("[providers]\ntimeout_seconds = 20\n", &[]).unwrap();
        assert_eq!(c.providers.timeout_seconds, 20);
        let c = load_toml("[providers]\ntimeout_seconds = \"21\"\n", &[]).unwrap();
        assert_eq!(c.providers.timeout_seconds, 21);
        assert_eq!(Config::default().providers.timeout_seconds, 15);
        for (toml, found) in [
            ("timeout_seconds = -5", "found signed int `-5`"),
            ("timeout_seconds = 1.5", "found float `1.5`"),
            ("timeout_seconds = \"soon\"", "found string \"soon\""),
            ("timeout_seconds = [1]", "found sequence"),
        ] {
            let msg = load_toml(&format!("[providers]\n{toml}\n"), &[])
                .unwrap_err()
                .to_string();
            assert!(
                msg.starts_with("configuration key `providers.timeout_seconds` has "),
                "{msg}"
            );
            assert!(msg.contains("expected a whole number"), "{msg}");
            assert!(msg.contains(found), "{msg}");
            assert!(!msg.contains('\n') && !msg.contains("PickFirst"), "{msg}");
        }
    }

    #[test]
    fn lists_accept_a_list_or_a_separated_string() {
        let want = vec!["https://a.example", "https://b.example"];
        for toml in [
            "allowed_return_urls = [\"https://a.example\", \"https://b.example\"]",
            "allowed_return_urls = \"https://a.example https://b.example\"",
            "allowed_return_urls = \"https://a.example,https://b.example\"",
        ] {
            let c = load_toml(&format!("[dashboard]\n{toml}\n"), &[]).unwrap();
            assert_eq!(c.dashboard.allowed_return_urls, want, "{toml}");
        }
        let c = load_toml(
            "",
            &[(
                "DRAVO_DASHBOARD_ALLOWED_RETURN_URLS",
                "https://a.example, https://b.example",
            )],
        )
        .unwrap();
        assert_eq!(c.dashboard.allowed_return_urls, want);
        assert!(Config::default().dashboard.allowed_return_urls.is_empty());

        let c = load_toml("[providers.x]\nscopes = [\"a\", \"b\"]\n", &[]).unwrap();
        assert_eq!(
            c.providers.get("x".parse().unwrap()).unwrap().scopes,
            Some(vec!["a".to_string(), "b".to_string()])
        );
        let c = load_toml(
            "[providers.x]\nclient_id = \"cid\"\nclient_secret = \"s\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.providers.get("x".parse().unwrap()).unwrap().scopes, None);

        let msg = load_toml("[providers.x]\nscopes = 5\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with(
                "configuration key `providers.x.scopes` has the wrong type: expected a list of strings or a space- or comma-separated string, found "
            ) && msg.contains("int `5`"),
            "{msg}"
        );
    }

    #[test]
    fn allow_insecure_key_file_accepts_a_boolean_or_a_string_holding_one() {
        assert!(!Config::default().security.allow_insecure_key_file);
        for (toml, vars, want) in [
            ("allow_insecure_key_file = true", vec![], true),
            ("allow_insecure_key_file = false", vec![], false),
            ("allow_insecure_key_file = \"true\"", vec![], true),
            (
                "",
                vec![("DRAVO_SECURITY_ALLOW_INSECURE_KEY_FILE", "true")],
                true,
            ),
            (
                "",
                vec![("DRAVO_SECURITY_ALLOW_INSECURE_KEY_FILE", "false")],
                false,
            ),
            (
                "allow_insecure_key_file = true",
                vec![("DRAVO_SECURITY_ALLOW_INSECURE_KEY_FILE", "false")],
                false,
            ),
        ] {
            let c = load_toml(&format!("[security]\n{toml}\n"), &vars).unwrap();
            assert_eq!(c.security.allow_insecure_key_file, want, "{toml} {vars:?}");
        }
        for value in ["yes", "1", ""] {
            let msg = load_toml("", &[("DRAVO_SECURITY_ALLOW_INSECURE_KEY_FILE", value)])
                .unwrap_err()
                .to_string();
            assert_eq!(
                msg,
                format!(
                    "configuration key `security.allow_insecure_key_file` has an invalid value: expected true or false, found string {value:?} (from environment variable DRAVO_SECURITY_ALLOW_INSECURE_KEY_FILE)"
                )
            );
        }
    }

    #[test]
    fn scopes_accept_string_or_list() {
        let c = Config::load_from(
            None,
            env(&[("DRAVO_PROVIDERS_LINKEDIN_SCOPES", "openid profile")]),
        )
        .unwrap();
        assert_eq!(
            c.providers
                .get("linkedin".parse().unwrap())
                .unwrap()
                .scopes
                .clone()
                .unwrap(),
            vec!["openid", "profile"]
        );
    }

    #[test]
    fn trusted_proxies_accept_addresses_and_ranges_as_a_list_or_a_string() {
        assert!(Config::default().server.trusted_proxies.is_empty());
        for (toml, vars) in [
            (
                "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\", \"192.168.1.7\"]\n",
                vec![],
            ),
            (
                "[server]\ntrusted_proxies = \"10.0.0.0/8 ::1,192.168.1.7\"\n",
                vec![],
            ),
            (
                "",
                vec![(
                    "DRAVO_SERVER_TRUSTED_PROXIES",
                    "10.0.0.0/8, ::1, 192.168.1.7",
                )],
            ),
        ] {
            let c = load_toml(toml, &vars).unwrap_or_else(|e| panic!("{toml} {vars:?}: {e}"));
            let proxies = &c.server.trusted_proxies;
            for inside in ["10.1.2.3", "::1", "192.168.1.7", "::ffff:10.9.9.9"] {
                assert!(proxies.contains(inside.parse().unwrap()), "{inside}");
            }
            for outside in ["11.0.0.1", "192.168.1.8", "::2", "127.0.0.1"] {
                assert!(!proxies.contains(outside.parse().unwrap()), "{outside}");
            }
        }
    }

    #[test]
    fn a_bad_trusted_proxy_names_the_key_and_the_entry() {
        for (toml, vars, bad) in [
            (
                "[server]\ntrusted_proxies = [\"10.0.0.1\", \"proxy.internal\"]\n",
                vec![],
                "proxy.internal",
            ),
            (
                "[server]\ntrusted_proxies = \"10.0.0.0/33\"\n",
                vec![],
                "10.0.0.0/33",
            ),
            ("", vec![("DRAVO_SERVER_TRUSTED_PROXIES", "1.2.3.4,*")], "*"),
        ] {
            let msg = load_toml(toml, &vars).unwrap_err().to_string();
            assert!(
                msg.starts_with("configuration key `server.trusted_proxies` has an invalid value: expected IP addresses or CIDR ranges such as 10.0.0.0/8"),
                "{msg}"
            );
            assert!(msg.contains(&format!("{bad:?}")), "{msg}");
            assert!(!msg.contains('\n'), "{msg}");
        }
        let msg = load_toml("[server]\ntrusted_proxies = 5\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("`server.trusted_proxies` has the wrong type"),
            "{msg}"
        );
    }

    #[test]
    fn limits_default_to_the_contract_and_accept_whole_numbers() {
        let d = Config::default().limits;
        assert_eq!(
            (
                d.start_per_second,
                d.callback_per_second,
                d.create_per_second,
                d.token_per_second,
                d.change_per_second
            ),
            (10, 10, 5, 50, 10)
        );
        let c = load_toml(
            "[limits]\nstart_per_second = 1\ntoken_per_second = 100000\n",
            &[("DRAVO_LIMITS_CREATE_PER_SECOND", "7")],
        )
        .unwrap();
        assert_eq!(c.limits.start_per_second, 1);
        assert_eq!(c.limits.create_per_second, 7);
        assert_eq!(c.limits.token_per_second, 100_000);
        assert_eq!(c.limits.callback_per_second, 10);
    }

    #[test]
    fn limits_out_of_range_or_not_whole_are_refused_by_key() {
        for (toml, vars, key, says) in [
            (
                "start_per_second = 0",
                vec![],
                "limits.start_per_second",
                "from 1 to 100000, not 0",
            ),
            (
                "token_per_second = 100001",
                vec![],
                "limits.token_per_second",
                "from 1 to 100000",
            ),
            (
                "",
                vec![("DRAVO_LIMITS_CALLBACK_PER_SECOND", "0")],
                "limits.callback_per_second",
                "not 0",
            ),
            (
                "create_per_second = 2.5",
                vec![],
                "limits.create_per_second",
                "expected a whole number",
            ),
            (
                "create_per_second = -1",
                vec![],
                "limits.create_per_second",
                "expected a whole number",
            ),
            (
                "",
                vec![("DRAVO_LIMITS_START_PER_SECOND", "0.5")],
                "limits.start_per_second",
                "expected a whole number",
            ),
        ] {
            let msg = load_toml(&format!("[limits]\n{toml}\n"), &vars)
                .unwrap_err()
                .to_string();
            assert!(msg.contains(key), "{toml} {vars:?}: {msg}");
            assert!(msg.contains(says), "{toml} {vars:?}: {msg}");
            assert!(!msg.contains('\n') && !msg.contains("PickFirst"), "{msg}");
        }
        let msg = load_toml("[limits]\nstart_per_minute = 5\n", &[])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`limits.start_per_minute`"), "{msg}");
    }

    #[test]
    fn cors_origins_accept_exact_origins_as_a_list_or_a_string() {
        assert!(Config::default().dashboard.cors_origins.is_empty());
        let want = vec!["https://dash.example.com", "http://localhost:3000"];
        for (toml, vars) in [
            (
                "[dashboard]\ncors_origins = [\"https://dash.example.com\", \"http://localhost:3000\"]\n",
                vec![],
            ),
            (
                "",
                vec![(
                    "DRAVO_DASHBOARD_CORS_ORIGINS",
                    "https://dash.example.com, http://localhost:3000",
                )],
            ),
        ] {
            let c = load_toml(toml, &vars).unwrap_or_else(|e| panic!("{toml} {vars:?}: {e}"));
            assert_eq!(c.dashboard.cors_origins, want);
        }
        let msg = load_toml(
            "[dashboard]\ncors_origins = [\"https://a.example\", \"*\"]\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            msg.starts_with("dashboard.cors_origins does not accept `*`"),
            "{msg}"
        );
        let msg = load_toml("[dashboard]\ncors_origins = 5\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("configuration key `dashboard.cors_origins` has the wrong type: expected a list of strings"),
            "{msg}"
        );
    }

    #[test]
    fn log_format_is_text_or_json() {
        assert_eq!(Config::default().log.format, LogFormat::Text);
        let c = load_toml("[log]\nformat = \"json\"\n", &[]).unwrap();
        assert_eq!(c.log.format, LogFormat::Json);
        let c = load_toml("", &[("DRAVO_LOG_FORMAT", "text")]).unwrap();
        assert_eq!(c.log.format, LogFormat::Text);
        let msg = load_toml("", &[("DRAVO_LOG_FORMAT", "JSON")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "configuration key `log.format` has an invalid value: expected `text` or `json`, found `JSON` (from environment variable DRAVO_LOG_FORMAT)"
        );
    }

    #[test]
    fn metrics_bind_is_a_host_and_port() {
        assert_eq!(Config::default().server.metrics_bind, None);
        let c = load_toml("", &[("DRAVO_SERVER_METRICS_BIND", "127.0.0.1:9100")]).unwrap();
        assert_eq!(c.server.metrics_bind.as_deref(), Some("127.0.0.1:9100"));
        let msg = load_toml("[server]\nmetrics_bind = \":9100\"\n", &[])
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "server.metrics_bind must be a host and port like 127.0.0.1:8080 or localhost:8080, not `:9100`"
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// Any text as a configuration file gives a config or an error, never a panic.
            #[test]
            fn any_toml_text_loads_or_fails_cleanly(text in "\\PC{0,300}") {
                let dir = tempfile::tempdir().unwrap();
                let file = dir.path().join("dravo.toml");
                std::fs::write(&file, &text).unwrap();
                let _ = Config::load_from(Some(&file), Vec::new());
            }

            /// Any value of any known key from the environment: a config or a one-sentence
            /// error naming the key, never a panic.
            #[test]
            fn any_env_value_loads_or_names_the_key(
                key in proptest::sample::select(vec![
                    "DRAVO_SERVER_BIND", "DRAVO_SERVER_PUBLIC_URL", "DRAVO_DATABASE_PATH",
                    "DRAVO_SECURITY_MASTER_KEY", "DRAVO_AUTH_JWT_SECRET", "DRAVO_AUTH_TENANT_CLAIM",
                    "DRAVO_DASHBOARD_ALLOWED_RETURN_URLS", "DRAVO_PROVIDERS_TIMEOUT_SECONDS",
                    "DRAVO_PROVIDERS_X_SCOPES", "DRAVO_REFRESH_SKEW_SECONDS",
                    "DRAVO_CONNECT_REQUIRE_CONFIRMATION", "DRAVO_WEBHOOKS_URL",
                    "DRAVO_SERVER_TRUSTED_PROXIES", "DRAVO_LIMITS_START_PER_SECOND",
                ]),
                value in "\\PC{0,120}",
            ) {
                if let Err(e) = Config::load_from(None, env(&[(key, &value)])) {
                    let message = e.to_string();
                    let dotted = key
                        .trim_start_matches("DRAVO_")
                        .to_ascii_lowercase()
                        .replacen('_', ".", 1);
                    let section = dotted.split('.').next().unwrap().to_owned();
                    prop_assert!(
                        message.contains(&section),
                        "{key}={value:?}: {message}"
                    );
                }
            }
        }
    }
}
