//! From what a user types to the authorization server that speaks for the account: a handle
//! (`alice.example.com`), a DID (`did:plc:…`, `did:web:…`), or the URL of a PDS or entryway.
//!
//! - handle → DID: the DNS TXT record `_atproto.{handle}` (`did=…`), else
//!   `https://{handle}/.well-known/atproto-did`;
//! - DID → document: `did:plc` from the PLC directory, `did:web` from the host's
//!   `/.well-known/did.json`; the document names the account's handle (`alsoKnownAs`) and its
//!   PDS (the `#atproto_pds` service); a handle counts only when it resolves back to the DID;
//! - PDS → its authorization server (`/.well-known/oauth-protected-resource`) → that server's
//!   metadata (`/.well-known/oauth-authorization-server`), checked against what the atproto
//!   profile requires.
//!
//! Every document comes from a host that user input chose, so through the guarded client,
//! with bounded answers.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use url::Url;

use super::{AtprotoHttp, host_of};
use crate::providers::http::{ProviderError, ProviderResponse};

/// The PLC directory of the public network.
pub const DEFAULT_PLC_DIRECTORY: &str = "https://plc.directory";

/// The most a `/.well-known/atproto-did` answer may hold: a DID is at most 2 KB.
const MAX_DID_TEXT_BYTES: usize = 4096;

/// A handle: a DNS name of at least two labels, checked by the atproto handle syntax and kept
/// in lower case (handles are case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Handle(String);

/// Top-level domains the atproto handle spec refuses (`.test` stays allowed for tests).
const DISALLOWED_TLDS: [&str; 8] = [
    "alt",
    "arpa",
    "example",
    "internal",
    "invalid",
    "local",
    "localhost",
    "onion",
];

impl Handle {
    /// A handle as a user writes it, with or without a leading `@`.
    pub fn parse(input: &str) -> Result<Handle, String> {
        let text = input.trim();
        let text = text.strip_prefix('@').unwrap_or(text);
        let shown: String = text.chars().take(80).collect();
        let invalid = |why: &str| Err(format!("`{shown}` is not a handle: {why}"));
        if text.is_empty() {
            return invalid("it is empty");
        }
        if text.len() > 253 {
            return invalid("it is longer than 253 characters");
        }
        if !text.is_ascii() {
            return invalid("it has characters outside ASCII (write IDNs in punycode)");
        }
        let labels: Vec<&str> = text.split('.').collect();
        if labels.len() < 2 {
            return invalid("it needs at least two parts separated by dots");
        }
        for label in &labels {
            if label.is_empty() || label.len() > 63 {
                return invalid("each part must have 1 to 63 characters");
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return invalid("only letters, digits, hyphens and dots are allowed");
            }
            if label.starts_with('-') || label.ends_with('-') {
                return invalid("a part may not start or end with a hyphen");
            }
        }
        let tld = labels[labels.len() - 1].to_ascii_lowercase();
        if tld.starts_with(|c: char| c.is_ascii_digit()) {
            return invalid("the last part may not start with a digit");
        }
        if DISALLOWED_TLDS.contains(&tld.as_str()) {
            return invalid(&format!("`.{tld}` names are not allowed as handles"));
        }
        Ok(Handle(text.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A DID of a method atproto blesses: `did:plc:` and 24 base32 characters, or `did:web:` and
/// a host name (a port, written `%3A`, only for `localhost` in development).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Did(String);

impl Did {
    pub fn parse(input: &str) -> Result<Did, String> {
        let text = input.trim();
        let shown: String = text.chars().take(80).collect();
        if let Some(id) = text.strip_prefix("did:plc:") {
            let base32 = |b: u8| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b);
            if id.len() == 24 && id.bytes().all(base32) {
                return Ok(Did(text.to_owned()));
            }
            return Err(format!(
                "`{shown}` is not a did:plc (24 characters of a-z and 2-7 follow `did:plc:`)"
            ));
        }
        if let Some(host) = text.strip_prefix("did:web:") {
            let (name, port) = match host.split_once("%3A").or_else(|| host.split_once("%3a")) {
                Some((name, port)) => (name, Some(port)),
                None => (host, None),
            };
            let port_ok = match port {
                None => true,
                Some(port) => name == "localhost" && port.parse::<u16>().is_ok(),
            };
            let name_ok = name == "localhost" || Handle::parse(name).is_ok();
            if name_ok && port_ok && !host.contains(':') {
                return Ok(Did(text.to_owned()));
            }
            return Err(format!(
                "`{shown}` is not a did:web of a host name (atproto allows no path, and a \
                 port only on localhost)"
            ));
        }
        Err(format!(
            "`{shown}` is not a DID atproto accepts (did:plc or did:web)"
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Did {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a user starts a connect from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginInput {
    Handle(Handle),
    Did(Did),
    /// A PDS or an entryway, as an origin.
    Server(Url),
}

impl LoginInput {
    /// `did:…` is a DID; an `http(s)://` URL or something with a port is a server; anything
    /// else a handle. A server is checked as `guard::target_url` checks a host.
    pub fn parse(input: &str, allow_private: bool) -> Result<LoginInput, String> {
        let text = input.trim();
        if text.starts_with("did:") {
            return Did::parse(text).map(LoginInput::Did);
        }
        if text.contains("://") || text.contains(':') || text.contains('/') {
            return crate::providers::guard::target_url(text, allow_private).map(|mut url| {
                url.set_path("");
                LoginInput::Server(url)
            });
        }
        Handle::parse(text).map(LoginInput::Handle)
    }
}

/// DNS TXT lookups, behind a trait so tests answer without a network.
#[async_trait]
pub trait TxtLookup: Send + Sync {
    /// The TXT strings at `name`, each record's segments joined; empty when the name has no
    /// TXT record or does not exist. `Err` when DNS itself failed.
    async fn txt(&self, name: &str) -> Result<Vec<String>, String>;
}

/// The system's DNS servers (`/etc/resolv.conf`), through hickory.
pub struct SystemDns(hickory_resolver::TokioResolver);

impl SystemDns {
    pub fn from_system_conf() -> Result<SystemDns, String> {
        hickory_resolver::TokioResolver::builder_tokio()
            .and_then(|builder| builder.build())
            .map(SystemDns)
            .map_err(|e| format!("the system's DNS configuration cannot be read: {e}"))
    }
}

impl SystemDns {
    /// A resolver that asks only the DNS server at `addr` over UDP: private networks with
    /// their own DNS, and tests.
    pub fn with_name_server(addr: std::net::SocketAddr) -> Result<SystemDns, String> {
        use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
        let mut udp = ConnectionConfig::udp();
        udp.port = addr.port();
        let config = ResolverConfig::from_name_servers(vec![NameServerConfig::new(
            addr.ip(),
            true,
            vec![udp],
        )]);
        hickory_resolver::TokioResolver::builder_with_config(
            config,
            hickory_resolver::net::runtime::TokioRuntimeProvider::default(),
        )
        .build()
        .map(SystemDns)
        .map_err(|e| format!("the DNS resolver cannot be built: {e}"))
    }
}

#[async_trait]
impl TxtLookup for SystemDns {
    async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        match self.0.txt_lookup(name).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    hickory_resolver::proto::rr::RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|segment| String::from_utf8_lossy(segment))
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(vec![]),
            Err(e) => Err(format!("DNS failed for {name}: {e}")),
        }
    }
}

/// What a DID document says that matters here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DidDocument {
    pub did: Did,
    /// The first `at://` name in `alsoKnownAs`, as the document claims it (not yet verified).
    pub claimed_handle: Option<Handle>,
    /// The `#atproto_pds` service's endpoint.
    pub pds: Url,
}

/// An account: its DID, its handle when the handle and the DID name each other, its PDS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub did: Did,
    pub handle: Option<Handle>,
    pub pds: Url,
}

/// An authorization server's metadata, checked against the atproto profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthServer {
    /// Its origin, exactly as its metadata's `issuer` says (and as the URL it came from).
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub pushed_authorization_request_endpoint: Url,
    pub revocation_endpoint: Option<Url>,
}

/// Where a connect goes: the authorization server, the account when the user named one, and
/// the `login_hint` to send (what the user typed, as the spec recommends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    pub account: Option<Account>,
    pub server: AuthServer,
    pub login_hint: Option<String>,
}

/// Resolves identities and servers. Cheap to clone.
#[derive(Clone)]
pub struct Resolver {
    http: AtprotoHttp,
    plc_directory: Url,
    dns: Arc<dyn TxtLookup>,
    /// Tests and private networks: handle documents are asked at
    /// `{base}/{handle}/.well-known/atproto-did` instead of on the handle's own host.
    handle_documents_at: Option<Url>,
}

/// An identity that cannot be found.
fn not_found(description: String) -> ProviderError {
    ProviderError::Rejected {
        code: "identity_not_found".into(),
        description: Some(description),
    }
}

/// Two documents that should name each other and do not.
pub(crate) fn mismatch(description: String) -> ProviderError {
    ProviderError::Rejected {
        code: "identity_mismatch".into(),
        description: Some(description),
    }
}

impl Resolver {
    pub fn new(http: AtprotoHttp, plc_directory: Url, dns: Arc<dyn TxtLookup>) -> Resolver {
        Resolver {
            http,
            plc_directory,
            dns,
            handle_documents_at: None,
        }
    }

    /// Handle documents are asked under `base` (see the field).
    pub fn with_handle_documents_at(mut self, base: Url) -> Resolver {
        self.handle_documents_at = Some(base);
        self
    }

    pub fn http(&self) -> &AtprotoHttp {
        &self.http
    }

    /// Where the HTTPS method asks for a handle's DID.
    pub fn handle_document_url(&self, handle: &Handle) -> Result<Url, ProviderError> {
        let text = match &self.handle_documents_at {
            Some(base) => format!(
                "{}/{handle}/.well-known/atproto-did",
                base.as_str().trim_end_matches('/')
            ),
            None => format!("https://{handle}/.well-known/atproto-did"),
        };
        Url::parse(&text).map_err(|_| not_found(format!("`{handle}` makes no URL")))
    }

    /// The DID a handle names: the DNS TXT record first, the HTTPS document when DNS has no
    /// record. Several different DIDs in DNS, or a DID that is not valid, fail.
    pub async fn resolve_handle(&self, handle: &Handle) -> Result<Did, ProviderError> {
        let dns_name = format!("_atproto.{handle}");
        let dns_outcome = match self.dns.txt(&dns_name).await {
            Ok(records) => {
                let mut dids: Vec<&str> = records
                    .iter()
                    .filter_map(|r| r.trim().strip_prefix("did="))
                    .collect();
                dids.sort_unstable();
                dids.dedup();
                match dids[..] {
                    [did] => {
                        return Did::parse(did).map_err(|why| {
                            ProviderError::malformed(format!("the TXT record {dns_name}: {why}"))
                        });
                    }
                    [] => format!("no `did=` TXT record at {dns_name}"),
                    _ => {
                        return Err(mismatch(format!(
                            "{dns_name} has TXT records naming different DIDs"
                        )));
                    }
                }
            }
            Err(why) => why,
        };
        let url = self.handle_document_url(handle)?;
        let request = self
            .http
            .client()
            .get(url.clone())
            .build()
            .map_err(|_| not_found(format!("`{handle}` makes no URL")))?;
        let answer = match self.http.execute(request, MAX_DID_TEXT_BYTES).await {
            Ok(answer) => answer,
            Err(e) => {
                return Err(not_found(format!(
                    "the handle {handle} resolves to no DID: {dns_outcome}, and {}: {e}",
                    host_of(&url)
                )));
            }
        };
        if answer.status != 200 {
            return Err(not_found(format!(
                "the handle {handle} resolves to no DID: {dns_outcome}, and {} answered HTTP {}",
                host_of(&url),
                answer.status
            )));
        }
        let text = String::from_utf8_lossy(&answer.bytes);
        Did::parse(text.trim()).map_err(|why| {
            ProviderError::malformed(format!("{}'s atproto-did: {why}", host_of(&url)))
        })
    }

    /// Where a DID's document is: the PLC directory, or the did:web host.
    pub fn did_document_url(&self, did: &Did) -> Result<Url, ProviderError> {
        let text = if let Some(host) = did.as_str().strip_prefix("did:web:") {
            let host = host.replacen("%3a", ":", 1).replacen("%3A", ":", 1);
            // A development host on this machine has no certificate: the reference
            // implementation reaches `did:web:localhost%3A…` over http, and so does Dravo
            // (the guard allows it only with allow_private_addresses).
            let scheme = if host == "localhost" || host.starts_with("localhost:") {
                "http"
            } else {
                "https"
            };
            format!("{scheme}://{host}/.well-known/did.json")
        } else {
            format!(
                "{}/{did}",
                self.plc_directory.as_str().trim_end_matches('/')
            )
        };
        Url::parse(&text).map_err(|_| not_found(format!("{did} makes no URL")))
    }

    /// The DID's document: its claimed handle and its PDS. The document must be the DID's
    /// own (`id`).
    pub async fn did_document(&self, did: &Did) -> Result<DidDocument, ProviderError> {
        let url = self.did_document_url(did)?;
        let answer = self.http.get_json(&url).await?;
        if answer.status == 404 || answer.status == 410 {
            return Err(not_found(format!(
                "{did} has no DID document ({} answered HTTP {})",
                host_of(&url),
                answer.status
            )));
        }
        let body = success(answer, &format!("the DID document of {did}"))?;
        parse_did_document(did, &body)
    }

    /// The account behind a handle: the DID it names, whose document must claim the handle
    /// back.
    pub async fn account_of_handle(&self, handle: &Handle) -> Result<Account, ProviderError> {
        let did = self.resolve_handle(handle).await?;
        let document = self.did_document(&did).await?;
        if document.claimed_handle.as_ref() != Some(handle) {
            return Err(mismatch(format!(
                "the handle {handle} names {did}, whose DID document claims {} instead",
                document
                    .claimed_handle
                    .as_ref()
                    .map_or("no handle".to_owned(), |h| format!("the handle {h}"))
            )));
        }
        Ok(Account {
            did,
            handle: Some(handle.clone()),
            pds: document.pds,
        })
    }

    /// The account behind a DID; its handle kept only when it resolves back to the DID (an
    /// unverified handle is no reason to refuse a DID, only not to show it).
    pub async fn account_of_did(&self, did: &Did) -> Result<Account, ProviderError> {
        let document = self.did_document(did).await?;
        let handle = match document.claimed_handle {
            Some(handle) => match self.resolve_handle(&handle).await {
                Ok(back) if &back == did => Some(handle),
                _ => None,
            },
            None => None,
        };
        Ok(Account {
            did: did.clone(),
            handle,
            pds: document.pds,
        })
    }

    /// The authorization server a PDS names in its protected-resource metadata (its only
    /// `authorization_servers` entry), as an origin.
    pub async fn authorization_server_url(&self, pds: &Url) -> Result<Url, ProviderError> {
        let url = pds
            .join("/.well-known/oauth-protected-resource")
            .map_err(|_| ProviderError::malformed("the PDS URL cannot be joined"))?;
        let body = success(
            self.http.get_json(&url).await?,
            &format!("the protected-resource metadata of {}", host_of(pds)),
        )?;
        let servers = body["authorization_servers"].as_array().ok_or_else(|| {
            ProviderError::malformed(format!(
                "the protected-resource metadata of {} has no `authorization_servers`",
                host_of(pds)
            ))
        })?;
        let first = servers.first().and_then(Value::as_str).ok_or_else(|| {
            ProviderError::malformed(format!(
                "the protected-resource metadata of {} names no authorization server",
                host_of(pds)
            ))
        })?;
        origin_url(first).ok_or_else(|| {
            ProviderError::malformed(format!(
                "the authorization server {} names is not an origin URL",
                host_of(pds)
            ))
        })
    }

    /// The metadata of the authorization server at `origin`, checked: `issuer` is exactly
    /// that origin, PAR is required, client metadata documents and the callback's `iss` are
    /// supported, DPoP with ES256, `private_key_jwt`, the `atproto` scope and PKCE S256 are
    /// supported, and every endpoint is a URL.
    pub async fn authorization_server(&self, origin: &Url) -> Result<AuthServer, ProviderError> {
        let url = origin
            .join("/.well-known/oauth-authorization-server")
            .map_err(|_| ProviderError::malformed("the server URL cannot be joined"))?;
        let host = host_of(origin);
        let body = success(
            self.http.get_json(&url).await?,
            &format!("the authorization-server metadata of {host}"),
        )?;
        check_auth_server(origin, &body)
    }

    /// The authorization server of a PDS.
    pub async fn authorization_server_of_pds(
        &self,
        pds: &Url,
    ) -> Result<AuthServer, ProviderError> {
        let origin = self.authorization_server_url(pds).await?;
        self.authorization_server(&origin).await
    }

    /// Everything a connect needs before PAR, from what the user typed. From a server: its
    /// protected-resource metadata when it is a PDS, else the server itself as the
    /// authorization server (an entryway).
    pub async fn discover(&self, input: &LoginInput) -> Result<Discovery, ProviderError> {
        match input {
            LoginInput::Handle(handle) => {
                let account = self.account_of_handle(handle).await?;
                let server = self.authorization_server_of_pds(&account.pds).await?;
                Ok(Discovery {
                    account: Some(account),
                    server,
                    login_hint: Some(handle.to_string()),
                })
            }
            LoginInput::Did(did) => {
                let account = self.account_of_did(did).await?;
                let server = self.authorization_server_of_pds(&account.pds).await?;
                Ok(Discovery {
                    account: Some(account),
                    server,
                    login_hint: Some(did.to_string()),
                })
            }
            LoginInput::Server(url) => {
                let server = match self.authorization_server_url(url).await {
                    Ok(origin) => self.authorization_server(&origin).await?,
                    Err(ProviderError::Malformed(_) | ProviderError::Rejected { .. }) => {
                        self.authorization_server(url).await?
                    }
                    Err(other) => return Err(other),
                };
                Ok(Discovery {
                    account: None,
                    server,
                    login_hint: None,
                })
            }
        }
    }
}

/// The body of a 200 answer with a JSON object; otherwise what was wrong, naming `what`.
fn success(answer: ProviderResponse, what: &str) -> Result<Value, ProviderError> {
    if answer.status != 200 {
        return Err(ProviderError::Rejected {
            code: "provider_rejected".into(),
            description: Some(format!("{what} answered HTTP {}", answer.status)),
        });
    }
    if !answer.body.is_object() {
        return Err(ProviderError::malformed(format!(
            "{what} is not a JSON object"
        )));
    }
    Ok(answer.body)
}

/// `text` as an origin URL (http(s), no path beyond `/`, no query, fragment or user), or
/// `None`.
fn origin_url(text: &str) -> Option<Url> {
    let url = Url::parse(text).ok()?;
    let origin_only = matches!(url.scheme(), "https" | "http")
        && url.host_str().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    origin_only.then_some(url)
}

/// Reads a DID document for `did`.
fn parse_did_document(did: &Did, body: &Value) -> Result<DidDocument, ProviderError> {
    if body["id"] != did.as_str() {
        return Err(mismatch(format!(
            "the DID document fetched for {did} is the document of another DID"
        )));
    }
    let claimed_handle = body["alsoKnownAs"].as_array().and_then(|names| {
        names
            .iter()
            .filter_map(Value::as_str)
            .find_map(|name| name.strip_prefix("at://"))
            .and_then(|handle| Handle::parse(handle).ok())
    });
    let service = body["service"].as_array().and_then(|services| {
        services.iter().find(|s| {
            let id = s["id"].as_str().unwrap_or_default();
            (id == "#atproto_pds" || id == format!("{did}#atproto_pds"))
                && s["type"] == "AtprotoPersonalDataServer"
        })
    });
    let endpoint = service
        .and_then(|s| s["serviceEndpoint"].as_str())
        .ok_or_else(|| {
            ProviderError::malformed(format!(
                "the DID document of {did} names no PDS (no `#atproto_pds` service of type \
                 AtprotoPersonalDataServer)"
            ))
        })?;
    let pds = Url::parse(endpoint)
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some())
        .ok_or_else(|| {
            ProviderError::malformed(format!("the PDS of {did} is not an http(s) URL"))
        })?;
    Ok(DidDocument {
        did: did.clone(),
        claimed_handle,
        pds,
    })
}

/// Checks an authorization server's metadata fetched from `origin`.
fn check_auth_server(origin: &Url, body: &Value) -> Result<AuthServer, ProviderError> {
    let host = host_of(origin);
    let expected_issuer = origin.origin().ascii_serialization();
    let refuse = |why: String| {
        ProviderError::malformed(format!(
            "the authorization server {host} does not follow the atproto OAuth profile: {why}"
        ))
    };
    let issuer = body["issuer"]
        .as_str()
        .ok_or_else(|| refuse("its metadata has no `issuer`".into()))?;
    if issuer != expected_issuer {
        return Err(mismatch(format!(
            "the authorization-server metadata fetched from {expected_issuer} names the issuer \
             `{}`",
            issuer.chars().take(100).collect::<String>()
        )));
    }
    let endpoint = |field: &str| -> Result<Url, ProviderError> {
        let text = body[field]
            .as_str()
            .ok_or_else(|| refuse(format!("its metadata has no `{field}`")))?;
        Url::parse(text)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http"))
            .ok_or_else(|| refuse(format!("its `{field}` is not an http(s) URL")))
    };
    let lists = |field: &str, value: &str| {
        body[field]
            .as_array()
            .is_some_and(|items| items.iter().any(|item| item == value))
    };
    // PAR is how Dravo asks, the client metadata document how it is known, and the callback's
    // `iss` how a code is tied to its server (`oauth::check_callback_issuer`).
    for flag in [
        "require_pushed_authorization_requests",
        "client_id_metadata_document_supported",
        "authorization_response_iss_parameter_supported",
    ] {
        if body[flag] != true {
            return Err(refuse(format!("`{flag}` is not true")));
        }
    }
    for (field, value) in [
        ("dpop_signing_alg_values_supported", "ES256"),
        ("scopes_supported", "atproto"),
        ("token_endpoint_auth_methods_supported", "private_key_jwt"),
        ("code_challenge_methods_supported", "S256"),
    ] {
        if !lists(field, value) {
            return Err(refuse(format!("`{field}` does not list {value}")));
        }
    }
    Ok(AuthServer {
        issuer: issuer.to_owned(),
        authorization_endpoint: endpoint("authorization_endpoint")?,
        token_endpoint: endpoint("token_endpoint")?,
        pushed_authorization_request_endpoint: endpoint("pushed_authorization_request_endpoint")?,
        revocation_endpoint: match body.get("revocation_endpoint") {
            Some(Value::String(_)) => Some(endpoint("revocation_endpoint")?),
            _ => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn handles_follow_the_atproto_syntax_and_are_lower_cased() {
        for (input, expected) in [
            ("alice.example.com", "alice.example.com"),
            ("@Alice.Bsky.Social", "alice.bsky.social"),
            ("  xn--ls8h.test ", "xn--ls8h.test"),
            ("a-b.c-d.io", "a-b.c-d.io"),
            ("8.cn", "8.cn"),
        ] {
            assert_eq!(Handle::parse(input).unwrap().as_str(), expected, "{input}");
        }
        for (input, why) in [
            ("", "it is empty"),
            ("alice", "it needs at least two parts separated by dots"),
            ("alice..com", "each part must have 1 to 63 characters"),
            (
                "al_ice.com",
                "only letters, digits, hyphens and dots are allowed",
            ),
            ("-alice.com", "a part may not start or end with a hyphen"),
            ("alice.123", "the last part may not start with a digit"),
            ("alice.local", "`.local` names are not allowed as handles"),
            ("alice.onion", "`.onion` names are not allowed as handles"),
            (
                "ålice.com",
                "it has characters outside ASCII (write IDNs in punycode)",
            ),
        ] {
            let err = Handle::parse(input).unwrap_err();
            assert!(err.ends_with(why), "{input}: {err}");
        }
        let long = format!("{}.com", "a".repeat(64));
        assert!(Handle::parse(&long).is_err());
        let too_long = vec!["abcdefghi"; 26].join(".");
        assert!(Handle::parse(&too_long).unwrap_err().contains("253"));
    }

    #[test]
    fn dids_are_plc_or_web_of_a_host() {
        for ok in [
            "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
            "did:web:example.com",
            "did:web:localhost%3A8080",
        ] {
            assert_eq!(Did::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "did:plc:short",
            "did:plc:EWVI7NXZYOUN6ZHXRHS64OIZ",
            "did:plc:ewvi7nxzyoun6zhxrhs64oi1",
            "did:web:example.com:user:alice",
            "did:web:example.com%3A8443",
            "did:key:z6Mk",
            "alice.example.com",
        ] {
            assert!(Did::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn login_input_tells_handles_dids_and_servers_apart() {
        assert_eq!(
            LoginInput::parse("@alice.example.com", false).unwrap(),
            LoginInput::Handle(Handle::parse("alice.example.com").unwrap())
        );
        assert_eq!(
            LoginInput::parse("did:plc:ewvi7nxzyoun6zhxrhs64oiz", false).unwrap(),
            LoginInput::Did(Did::parse("did:plc:ewvi7nxzyoun6zhxrhs64oiz").unwrap())
        );
        let server = |input: &str| match LoginInput::parse(input, false).unwrap() {
            LoginInput::Server(url) => url.to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(server("https://bsky.social"), "https://bsky.social/");
        assert_eq!(
            server("https://pds.example:8443/x?y"),
            "https://pds.example:8443/"
        );
        assert_eq!(server("pds.example:8443"), "https://pds.example:8443/");
        assert!(
            LoginInput::parse("http://127.0.0.1:3000", false)
                .unwrap_err()
                .contains("over https")
        );
        assert!(LoginInput::parse("https://10.0.0.1", false).is_err());
        assert!(LoginInput::parse("http://127.0.0.1:3000", true).is_ok());
        assert!(LoginInput::parse("did:key:z6Mk", false).is_err());
        assert!(LoginInput::parse("not a handle", false).is_err());
    }

    fn resolver() -> Resolver {
        struct NoDns;
        #[async_trait]
        impl TxtLookup for NoDns {
            async fn txt(&self, _: &str) -> Result<Vec<String>, String> {
                Ok(vec![])
            }
        }
        Resolver::new(
            AtprotoHttp::guarded(std::time::Duration::from_secs(5), false),
            Url::parse(DEFAULT_PLC_DIRECTORY).unwrap(),
            Arc::new(NoDns),
        )
    }

    #[test]
    fn documents_are_fetched_where_the_did_method_says() {
        let r = resolver();
        let plc = Did::parse("did:plc:ewvi7nxzyoun6zhxrhs64oiz").unwrap();
        assert_eq!(
            r.did_document_url(&plc).unwrap().as_str(),
            "https://plc.directory/did:plc:ewvi7nxzyoun6zhxrhs64oiz"
        );
        let web = Did::parse("did:web:alice.example.com").unwrap();
        assert_eq!(
            r.did_document_url(&web).unwrap().as_str(),
            "https://alice.example.com/.well-known/did.json"
        );
        let local = Did::parse("did:web:localhost%3A8080").unwrap();
        assert_eq!(
            r.did_document_url(&local).unwrap().as_str(),
            "http://localhost:8080/.well-known/did.json"
        );
        let handle = Handle::parse("alice.example.com").unwrap();
        assert_eq!(
            r.handle_document_url(&handle).unwrap().as_str(),
            "https://alice.example.com/.well-known/atproto-did"
        );
        let moved = r.with_handle_documents_at(Url::parse("http://127.0.0.1:9/h/").unwrap());
        assert_eq!(
            moved.handle_document_url(&handle).unwrap().as_str(),
            "http://127.0.0.1:9/h/alice.example.com/.well-known/atproto-did"
        );
    }

    #[test]
    fn a_did_document_gives_the_claimed_handle_and_the_pds() {
        let did = Did::parse("did:plc:ewvi7nxzyoun6zhxrhs64oiz").unwrap();
        let body = json!({
            "id": did.as_str(),
            "alsoKnownAs": ["https://elsewhere.example", "at://Alice.Example.com"],
            "service": [
                {"id": "#atproto_labeler", "type": "AtprotoLabeler", "serviceEndpoint": "https://l.example"},
                {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": "https://pds.example"},
            ],
        });
        let doc = parse_did_document(&did, &body).unwrap();
        assert_eq!(doc.claimed_handle.unwrap().as_str(), "alice.example.com");
        assert_eq!(doc.pds.as_str(), "https://pds.example/");

        let mut full_id = body.clone();
        full_id["service"][1]["id"] = json!(format!("{did}#atproto_pds"));
        assert!(parse_did_document(&did, &full_id).is_ok());

        let mut other = body.clone();
        other["id"] = json!("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa");
        assert_eq!(
            parse_did_document(&did, &other).unwrap_err().to_string(),
            format!(
                "the provider refused: identity_mismatch (the DID document fetched for {did} \
                 is the document of another DID)"
            )
        );
        let mut no_pds = body.clone();
        no_pds["service"][1]["type"] = json!("Other");
        assert!(
            parse_did_document(&did, &no_pds)
                .unwrap_err()
                .to_string()
                .contains("names no PDS")
        );
        let mut bad_pds = body;
        bad_pds["service"][1]["serviceEndpoint"] = json!("ftp://pds.example");
        assert!(
            parse_did_document(&did, &bad_pds)
                .unwrap_err()
                .to_string()
                .contains("is not an http(s) URL")
        );
    }

    fn metadata(issuer: &str) -> Value {
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/oauth/authorize"),
            "token_endpoint": format!("{issuer}/oauth/token"),
            "pushed_authorization_request_endpoint": format!("{issuer}/oauth/par"),
            "revocation_endpoint": format!("{issuer}/oauth/revoke"),
            "require_pushed_authorization_requests": true,
            "client_id_metadata_document_supported": true,
            "authorization_response_iss_parameter_supported": true,
            "dpop_signing_alg_values_supported": ["RS256", "ES256"],
            "scopes_supported": ["atproto", "transition:generic"],
            "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
            "code_challenge_methods_supported": ["S256"],
        })
    }

    #[test]
    fn authorization_server_metadata_is_checked_against_the_profile() {
        let origin = Url::parse("https://as.example").unwrap();
        let server = check_auth_server(&origin, &metadata("https://as.example")).unwrap();
        assert_eq!(server.issuer, "https://as.example");
        assert_eq!(
            server.pushed_authorization_request_endpoint.as_str(),
            "https://as.example/oauth/par"
        );
        assert_eq!(
            server.revocation_endpoint.unwrap().as_str(),
            "https://as.example/oauth/revoke"
        );
        let mut no_revoke = metadata("https://as.example");
        no_revoke
            .as_object_mut()
            .unwrap()
            .remove("revocation_endpoint");
        assert_eq!(
            check_auth_server(&origin, &no_revoke)
                .unwrap()
                .revocation_endpoint,
            None
        );

        let refused = |body: Value| check_auth_server(&origin, &body).unwrap_err().to_string();
        assert_eq!(
            refused(metadata("https://evil.example")),
            "the provider refused: identity_mismatch (the authorization-server metadata \
             fetched from https://as.example names the issuer `https://evil.example`)"
        );
        assert!(refused(metadata("https://as.example/")).contains("identity_mismatch"));
        let prefix = "the provider's answer cannot be read: the authorization server as.example \
                      does not follow the atproto OAuth profile: ";
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "require_pushed_authorization_requests",
                json!(false),
                "`require_pushed_authorization_requests` is not true",
            ),
            (
                "client_id_metadata_document_supported",
                Value::Null,
                "`client_id_metadata_document_supported` is not true",
            ),
            (
                "authorization_response_iss_parameter_supported",
                json!(false),
                "`authorization_response_iss_parameter_supported` is not true",
            ),
            (
                "dpop_signing_alg_values_supported",
                json!(["RS256"]),
                "`dpop_signing_alg_values_supported` does not list ES256",
            ),
            (
                "scopes_supported",
                json!(["openid"]),
                "`scopes_supported` does not list atproto",
            ),
            (
                "token_endpoint_auth_methods_supported",
                json!(["none"]),
                "`token_endpoint_auth_methods_supported` does not list private_key_jwt",
            ),
            (
                "code_challenge_methods_supported",
                json!(["plain"]),
                "`code_challenge_methods_supported` does not list S256",
            ),
            (
                "pushed_authorization_request_endpoint",
                Value::Null,
                "its metadata has no `pushed_authorization_request_endpoint`",
            ),
            (
                "token_endpoint",
                json!("not a url"),
                "its `token_endpoint` is not an http(s) URL",
            ),
            (
                "authorization_endpoint",
                Value::Null,
                "its metadata has no `authorization_endpoint`",
            ),
        ];
        for (field, value, why) in cases {
            let mut body = metadata("https://as.example");
            body[field] = value;
            assert_eq!(refused(body), format!("{prefix}{why}"), "{field}");
        }
    }

    #[test]
    fn an_authorization_server_url_must_be_an_origin() {
        assert!(origin_url("https://as.example").is_some());
        assert!(origin_url("https://as.example:8443/").is_some());
        assert!(origin_url("https://as.example/path").is_none());
        assert!(origin_url("https://as.example/?q").is_none());
        assert!(origin_url("https://u:p@as.example").is_none());
        assert!(origin_url("ftp://as.example").is_none());
    }

    mod network {
        use std::collections::HashMap;
        use std::time::Duration;

        use super::*;
        use crate::providers::atproto::fake::{FakeDns, World, did_document};

        fn resolver_with(world: &World, dns: FakeDns) -> Resolver {
            Resolver::new(
                AtprotoHttp::guarded(Duration::from_secs(5), true),
                world.plc(),
                Arc::new(dns),
            )
            .with_handle_documents_at(world.handles())
        }

        fn handle(text: &str) -> Handle {
            Handle::parse(text).unwrap()
        }

        fn refusal(err: ProviderError) -> (String, String) {
            match err {
                ProviderError::Rejected { code, description } => {
                    (code, description.unwrap_or_default())
                }
                other => panic!("not a refusal: {other}"),
            }
        }

        fn bob() -> String {
            format!("did:plc:{}", "b".repeat(24))
        }

        #[tokio::test]
        async fn a_handle_resolves_by_its_well_known_document_and_is_checked_both_ways() {
            let world = World::start().await;
            let r = resolver_with(&world, FakeDns::default());
            let account = r.account_of_handle(&handle("@Alice.test")).await.unwrap();
            assert_eq!(account.did.as_str(), world.did());
            assert_eq!(account.handle, Some(handle("alice.test")));
            assert_eq!(account.pds, world.base);
            // From the DID, the handle is kept because it resolves back.
            let did = Did::parse(&world.did()).unwrap();
            assert_eq!(r.account_of_did(&did).await.unwrap(), account);
        }

        /// DNS is asked first; its answer wins over a different HTTPS document.
        #[tokio::test]
        async fn a_handle_resolves_by_dns_txt_first() {
            let world = World::start().await;
            {
                let mut st = world.lock();
                let base = st.base.clone();
                st.dids
                    .insert(bob(), did_document(&bob(), "bob.test", &base));
                let alice = st.account.clone();
                st.handles.insert("bob.test".into(), alice);
            }
            let dns = FakeDns(HashMap::from([(
                "_atproto.bob.test".to_owned(),
                vec!["v=other".to_owned(), format!("did={}", bob())],
            )]));
            let r = resolver_with(&world, dns);
            let account = r.account_of_handle(&handle("bob.test")).await.unwrap();
            assert_eq!(account.did.as_str(), bob());
        }

        #[tokio::test]
        async fn dns_records_naming_different_dids_are_refused() {
            let world = World::start().await;
            let dns = FakeDns(HashMap::from([(
                "_atproto.bob.test".to_owned(),
                vec![format!("did={}", bob()), format!("did={}", world.did())],
            )]));
            let err = resolver_with(&world, dns)
                .resolve_handle(&handle("bob.test"))
                .await
                .unwrap_err();
            assert_eq!(
                refusal(err),
                (
                    "identity_mismatch".into(),
                    "_atproto.bob.test has TXT records naming different DIDs".into()
                )
            );
        }

        /// A handle that names a DID whose document does not claim it back proves nothing.
        #[tokio::test]
        async fn a_handle_the_did_document_does_not_claim_is_refused() {
            let world = World::start().await;
            let alice = world.did();
            world
                .lock()
                .handles
                .insert("mallory.test".into(), alice.clone());
            let err = resolver_with(&world, FakeDns::default())
                .account_of_handle(&handle("mallory.test"))
                .await
                .unwrap_err();
            assert_eq!(
                refusal(err),
                (
                    "identity_mismatch".into(),
                    format!(
                        "the handle mallory.test names {alice}, whose DID document claims the \
                         handle alice.test instead"
                    )
                )
            );
        }

        #[tokio::test]
        async fn an_unknown_handle_says_what_was_tried() {
            let world = World::start().await;
            let err = resolver_with(&world, FakeDns::default())
                .resolve_handle(&handle("nobody.test"))
                .await
                .unwrap_err();
            let host = host_of(&world.base);
            assert_eq!(
                refusal(err),
                (
                    "identity_not_found".into(),
                    format!(
                        "the handle nobody.test resolves to no DID: no `did=` TXT record at \
                         _atproto.nobody.test, and {host} answered HTTP 404"
                    )
                )
            );
        }

        /// Answers are bounded: a handle document larger than a DID can be is not read.
        #[tokio::test]
        async fn an_oversized_handle_document_is_not_read() {
            let world = World::start().await;
            world
                .lock()
                .handles
                .insert("big.test".into(), "did:plc:".to_owned() + &"a".repeat(8000));
            let (code, description) = refusal(
                resolver_with(&world, FakeDns::default())
                    .resolve_handle(&handle("big.test"))
                    .await
                    .unwrap_err(),
            );
            assert_eq!(code, "identity_not_found");
            assert!(description.ends_with("is too large"), "{description}");
        }

        #[tokio::test]
        async fn a_did_missing_from_the_plc_directory_is_not_found() {
            let world = World::start().await;
            let did = Did::parse(&bob()).unwrap();
            let err = resolver_with(&world, FakeDns::default())
                .did_document(&did)
                .await
                .unwrap_err();
            assert_eq!(
                refusal(err),
                (
                    "identity_not_found".into(),
                    format!(
                        "{did} has no DID document ({} answered HTTP 404)",
                        host_of(&world.base)
                    )
                )
            );
        }

        /// A did:web document comes from its host; the handle it claims resolves to another
        /// DID, so the account is kept without a handle.
        #[tokio::test]
        async fn a_did_web_document_is_read_from_its_host_and_an_unverified_handle_dropped() {
            let world = World::start().await;
            let did = Did::parse(&format!(
                "did:web:localhost%3A{}",
                world.base.port().unwrap()
            ))
            .unwrap();
            let base = world.issuer();
            world.lock().did_web = Some(did_document(did.as_str(), "alice.test", &base));
            let account = resolver_with(&world, FakeDns::default())
                .account_of_did(&did)
                .await
                .unwrap();
            assert_eq!(account.did, did);
            assert_eq!(account.handle, None);
            assert_eq!(account.pds, world.base);
        }

        #[tokio::test]
        async fn a_pds_url_leads_to_its_authorization_server() {
            let world = World::start().await;
            let r = resolver_with(&world, FakeDns::default());
            let input = LoginInput::parse(world.base.as_str(), true).unwrap();
            let discovery = r.discover(&input).await.unwrap();
            assert_eq!(discovery.account, None);
            assert_eq!(discovery.login_hint, None);
            assert_eq!(discovery.server.issuer, world.issuer());
            assert_eq!(
                discovery.server.token_endpoint,
                world.base.join("/oauth/token").unwrap()
            );
        }

        #[tokio::test]
        async fn an_entryway_without_resource_metadata_is_its_own_authorization_server() {
            let world = World::start().await;
            world.lock().entryway = true;
            let r = resolver_with(&world, FakeDns::default());
            let input = LoginInput::Server(world.base.clone());
            assert_eq!(
                r.discover(&input).await.unwrap().server.issuer,
                world.issuer()
            );
            // From a handle the PDS must have its metadata.
            let from_handle = LoginInput::Handle(handle("alice.test"));
            assert!(r.discover(&from_handle).await.is_err());
        }

        #[tokio::test]
        async fn metadata_whose_issuer_is_another_server_is_refused() {
            let world = World::start().await;
            world.lock().metadata["issuer"] = serde_json::json!("https://evil.example");
            let err = resolver_with(&world, FakeDns::default())
                .discover(&LoginInput::Handle(handle("alice.test")))
                .await
                .unwrap_err();
            assert_eq!(
                refusal(err),
                (
                    "identity_mismatch".into(),
                    format!(
                        "the authorization-server metadata fetched from {} names the issuer \
                         `https://evil.example`",
                        world.issuer()
                    )
                )
            );
        }

        /// Without allow_private_addresses nothing on this machine is asked.
        #[tokio::test]
        async fn a_loopback_host_is_refused_without_allow_private() {
            let world = World::start().await;
            let r = Resolver::new(
                AtprotoHttp::guarded(Duration::from_secs(5), false),
                world.plc(),
                Arc::new(FakeDns::default()),
            );
            let did = Did::parse(&world.did()).unwrap();
            let err = r.did_document(&did).await.unwrap_err();
            assert_eq!(err.code(), "host_refused", "{err}");
            let err = r.authorization_server(&world.base).await.unwrap_err();
            assert_eq!(err.code(), "host_refused", "{err}");
        }
    }

    /// hickory against a DNS server on 127.0.0.1: TXT segments are joined, a name that does
    /// not exist has no records, and the first method of handle resolution uses it.
    mod dns {
        use std::collections::HashMap;
        use std::net::SocketAddr;
        use std::time::Duration;

        use hickory_resolver::proto::op::{Message, OpCode, ResponseCode};
        use hickory_resolver::proto::rr::rdata::TXT;
        use hickory_resolver::proto::rr::{RData, Record};

        use super::*;

        /// Answers TXT queries from `records` (name → records → segments), NXDOMAIN else.
        async fn dns_server(records: HashMap<String, Vec<Vec<String>>>) -> SocketAddr {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = socket.local_addr().unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 1500];
                while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
                    let Ok(query) = Message::from_vec(&buf[..n]) else {
                        continue;
                    };
                    let Some(question) = query.queries.first().cloned() else {
                        continue;
                    };
                    let name = question.name().to_string();
                    let mut answer = Message::response(query.metadata.id, OpCode::Query);
                    answer.metadata.recursion_desired = query.metadata.recursion_desired;
                    answer.metadata.recursion_available = true;
                    answer.add_query(question.clone());
                    match records.get(name.trim_end_matches('.')) {
                        Some(txts) => {
                            for segments in txts {
                                answer.add_answer(Record::from_rdata(
                                    question.name().clone(),
                                    60,
                                    RData::TXT(TXT::new(segments.clone())),
                                ));
                            }
                        }
                        None => answer.metadata.response_code = ResponseCode::NXDomain,
                    }
                    let _ = socket.send_to(&answer.to_vec().unwrap(), peer).await;
                }
            });
            addr
        }

        #[tokio::test]
        async fn hickory_reads_txt_records_and_an_absent_name_has_none() {
            let did = format!("did:plc:{}", "b".repeat(24));
            let server = dns_server(HashMap::from([(
                "_atproto.bob.test".to_owned(),
                vec![
                    vec!["did=did:plc:".to_owned(), "b".repeat(24)],
                    vec!["unrelated".to_owned()],
                ],
            )]))
            .await;
            let dns = SystemDns::with_name_server(server).unwrap();
            let mut found = dns.txt("_atproto.bob.test").await.unwrap();
            found.sort();
            assert_eq!(found, [format!("did={did}"), "unrelated".to_owned()]);
            assert_eq!(
                dns.txt("_atproto.nobody.test").await.unwrap(),
                Vec::<String>::new()
            );

            // Handle resolution asks DNS first: nothing else is needed (the PLC directory
            // and the handle's host are unreachable here).
            let resolver = Resolver::new(
                AtprotoHttp::guarded(Duration::from_secs(2), true),
                Url::parse("http://127.0.0.1:9/").unwrap(),
                Arc::new(dns),
            );
            let resolved = resolver
                .resolve_handle(&Handle::parse("bob.test").unwrap())
                .await
                .unwrap();
            assert_eq!(resolved.as_str(), did);
        }
    }
}
