//! The configuration's sections as `dravo.toml` and `DRAVO_*` give them, with their defaults.

use std::net::IpAddr;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use serde_with::{DeserializeFromStr, DisplayFromStr, FromInto, PickFirst, serde_as};
use url::Url;

use std::collections::BTreeMap;

use crate::domain::Provider;
use crate::providers;

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
    pub(super) tables: BTreeMap<Provider, ProviderConfig>,
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
    /// Lets connects reach loopback and private addresses, and plain `http`, on servers users
    /// name (Mastodon instances): for tests and private deployments, never production.
    /// `true` or `"true"` (environment variables carry strings).
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub allow_private_addresses: bool,
}

/// A list written as one string, `"a b"` or `"a,b"`: the form an environment variable can
/// carry. List keys read `PickFirst<(_, FromInto<SplitList>)>`: a TOML list as it is, else a
/// string split into one.
#[derive(DeserializeFromStr)]
pub(super) struct SplitList(Vec<String>);

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
