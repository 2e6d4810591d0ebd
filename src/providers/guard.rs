//! Requests to hosts that user input chooses (a Mastodon instance, the PDS a Bluesky handle
//! leads to): the input names the host, so it must not be able to aim Dravo at its own network
//! (server-side request forgery). Only public addresses are reached:
//!
//! - the host a user gives is parsed once ([`target_url`]): a host, `host:port` or a URL, https,
//!   no user name, and an address literal only when it is public;
//! - every connection resolves its host name through [`PublicResolver`], which refuses a name
//!   when any address it resolves to is not public, so a name cannot point at `127.0.0.1`,
//!   nor change its answer between a check and the connection (the check *is* the
//!   connection's resolution);
//! - an address literal never reaches a resolver, so [`check_url`] checks each request's URL,
//!   and each redirect's ([`redirect_verdict`]).
//!
//! `providers.<name>.allow_private_addresses` lifts all of it, and allows plain `http`, for
//! tests and private deployments.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use url::{Host, Url};

/// The most redirects followed for a user-chosen host.
pub const MAX_REDIRECTS: usize = 3;

/// Whether a request may reach `ip`: a globally reachable address by IANA's special-purpose
/// registries. An IPv4 address mapped into IPv6 (`::ffff:127.0.0.1`) is judged as the IPv4
/// address it is.
pub fn is_public(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    ip_network::IpNetwork::from(ip).is_global()
}

/// A host name that names this machine whatever DNS says (RFC 6761).
fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    name.eq_ignore_ascii_case("localhost") || name.to_ascii_lowercase().ends_with(".localhost")
}

/// Why `url` may not be requested, as a sentence naming its host; `None` when it may. With
/// `allow_private` anything http(s) may.
pub fn check_url(url: &Url, allow_private: bool) -> Option<String> {
    let host = url.host_str().unwrap_or_default();
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        other => {
            return Some(format!(
                "`{host}` must be reached over https, not {other} (allow_private_addresses \
                 allows http)"
            ));
        }
    }
    if allow_private {
        return None;
    }
    match url.host() {
        Some(Host::Ipv4(ip)) if !is_public(IpAddr::V4(ip)) => {
            Some(format!("`{host}` is not a public address"))
        }
        Some(Host::Ipv6(ip)) if !is_public(IpAddr::V6(ip)) => {
            Some(format!("`{host}` is not a public address"))
        }
        Some(Host::Domain(name)) if is_local_name(name) => Some(format!(
            "`{host}` names this machine, which is not a public address"
        )),
        None => Some("the URL has no host".into()),
        _ => None,
    }
}

/// Why a name that resolved to `ip` is refused.
fn not_public(host: &str, ip: IpAddr) -> String {
    format!("`{host}` resolves to {ip}, which is not a public address")
}

/// The server a user names, as the origin to call: `host`, `host:port` or an `https://` URL
/// (path, query and fragment dropped), in lower case. Refuses what [`check_url`] refuses, a
/// user name or password, and anything that is not a host.
pub fn target_url(input: &str, allow_private: bool) -> Result<Url, String> {
    let input = input.trim();
    if input.is_empty() {
        return Err("the host is empty".into());
    }
    if input.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("the host contains spaces or control characters".into());
    }
    let shown: String = input.chars().take(80).collect();
    let with_scheme = if input.contains("://") {
        input.to_owned()
    } else {
        format!("https://{input}")
    };
    let url = Url::parse(&with_scheme)
        .map_err(|e| format!("`{shown}` is not a host, host:port or URL ({e})"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{shown}` carries a user name or password"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{shown}` names no host"));
    }
    if let Some(why) = check_url(&url, allow_private) {
        return Err(why);
    }
    let mut origin = url;
    origin.set_path("/");
    origin.set_query(None);
    origin.set_fragment(None);
    Ok(origin)
}

/// What the redirect policy does with a redirect to `next` after `followed` others: the
/// reason to refuse it, or `None` to follow it.
pub fn redirect_verdict(next: &Url, followed: usize, allow_private: bool) -> Option<String> {
    if followed >= MAX_REDIRECTS {
        return Some(format!("more than {MAX_REDIRECTS} redirects"));
    }
    check_url(next, allow_private).map(|why| format!("a redirect was refused: {why}"))
}

/// A resolver that answers only public addresses: a name with any other address among its
/// answers is refused as a whole (a mix is how a rebinding name would slip through).
#[derive(Debug, Default)]
pub struct PublicResolver;

/// A host refused by the guard during a connection (a name that resolved to an address that
/// is not public, a redirect to such a host), as a sentence naming the host: the HTTP client
/// finds it in the connection error's chain and reports `ProviderError::Refused`.
#[derive(Debug)]
pub struct NotPublic(pub String);

impl std::fmt::Display for NotPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotPublic {}

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            if is_local_name(&host) {
                return Err(Box::new(NotPublic(format!(
                    "`{host}` names this machine, which is not a public address"
                ))) as _);
            }
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
                return Err(Box::new(NotPublic(not_public(&host, bad.ip()))) as _);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A client builder for user-chosen hosts: public addresses only (unless `allow_private`),
/// https only (likewise), redirects followed only where [`redirect_verdict`] allows.
pub fn client_builder(allow_private: bool) -> reqwest::ClientBuilder {
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        match redirect_verdict(attempt.url(), attempt.previous().len(), allow_private) {
            Some(why) => attempt.error(NotPublic(why)),
            None => attempt.follow(),
        }
    });
    let builder = reqwest::Client::builder()
        .redirect(policy)
        .https_only(!allow_private);
    if allow_private {
        builder
    } else {
        builder.dns_resolver(Arc::new(PublicResolver))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_globally_reachable_addresses_are_public() {
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a01:4f8::1"] {
            assert!(is_public(ip(public)), "{public}");
        }
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "192.0.2.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip(private)), "{private}");
        }
    }

    #[test]
    fn a_user_given_host_becomes_an_https_origin() {
        let ok = |input: &str| target_url(input, false).unwrap().to_string();
        assert_eq!(ok("mastodon.social"), "https://mastodon.social/");
        assert_eq!(ok(" Mastodon.Social "), "https://mastodon.social/");
        assert_eq!(ok("social.example:8443"), "https://social.example:8443/");
        assert_eq!(
            ok("https://mastodon.social/@alice?x=1#top"),
            "https://mastodon.social/"
        );
        assert_eq!(ok("8.8.8.8"), "https://8.8.8.8/");
    }

    #[test]
    fn private_hosts_plain_http_and_credentials_are_refused_with_the_host_named() {
        let refused = |input: &str| target_url(input, false).unwrap_err();
        assert_eq!(refused("127.0.0.1"), "`127.0.0.1` is not a public address");
        assert_eq!(
            refused("10.0.0.5:8080"),
            "`10.0.0.5` is not a public address"
        );
        assert_eq!(
            refused("https://169.254.169.254/latest/meta-data"),
            "`169.254.169.254` is not a public address"
        );
        assert_eq!(refused("[::1]"), "`[::1]` is not a public address");
        assert_eq!(
            refused("[::ffff:7f00:1]"),
            "`[::ffff:7f00:1]` is not a public address"
        );
        assert_eq!(
            refused("[fe80::1]:443"),
            "`[fe80::1]` is not a public address"
        );
        assert_eq!(
            refused("localhost:3000"),
            "`localhost` names this machine, which is not a public address"
        );
        assert_eq!(
            refused("admin.localhost"),
            "`admin.localhost` names this machine, which is not a public address"
        );
        assert!(
            refused("http://mastodon.social").contains("must be reached over https, not http"),
            "{}",
            refused("http://mastodon.social")
        );
        assert!(refused("ftp://mastodon.social").contains("not ftp"));
        assert_eq!(
            refused("alice:pw@mastodon.social"),
            "`alice:pw@mastodon.social` carries a user name or password"
        );
        assert_eq!(refused(""), "the host is empty");
        assert!(refused("masto don.social").contains("spaces"));
        assert!(
            refused("https://").contains("is not a host"),
            "{}",
            refused("https://")
        );
    }

    #[test]
    fn allow_private_addresses_opens_loopback_private_and_http() {
        let ok = |input: &str| target_url(input, true).unwrap().to_string();
        assert_eq!(ok("http://127.0.0.1:8080/x"), "http://127.0.0.1:8080/");
        assert_eq!(ok("10.0.0.5"), "https://10.0.0.5/");
        assert_eq!(ok("localhost:3000"), "https://localhost:3000/");
    }

    #[test]
    fn redirects_are_followed_only_to_public_https_hosts_and_not_forever() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            redirect_verdict(&url("https://other.example/x"), 0, false),
            None
        );
        assert_eq!(
            redirect_verdict(&url("https://127.0.0.1/admin"), 0, false).as_deref(),
            Some("a redirect was refused: `127.0.0.1` is not a public address")
        );
        assert!(
            redirect_verdict(&url("http://other.example/"), 1, false)
                .unwrap()
                .contains("over https")
        );
        assert_eq!(
            redirect_verdict(&url("https://other.example/"), MAX_REDIRECTS, false).as_deref(),
            Some("more than 3 redirects")
        );
        assert_eq!(redirect_verdict(&url("http://127.0.0.1/"), 0, true), None);
    }

    /// The resolver is the connection's own lookup: a name that resolves to this machine is
    /// refused before any byte is sent, and the error names the name and the address.
    #[tokio::test]
    async fn a_name_that_resolves_to_a_private_address_is_refused_at_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = tokio::spawn(async move {
            tokio::time::timeout(std::time::Duration::from_millis(500), listener.accept())
                .await
                .is_ok()
        });
        let resolver = PublicResolver;
        // `localhost` is refused by name; `127.0.0.1.nip.io`-style names need DNS, so the
        // lookup itself is exercised through the system resolver with a name every host has.
        let refused = reqwest::dns::Resolve::resolve(&resolver, "localhost".parse().unwrap())
            .await
            .err()
            .expect("refused");
        assert_eq!(
            refused.to_string(),
            "`localhost` names this machine, which is not a public address"
        );
        let client = client_builder(false).build().unwrap();
        let err = client
            .get(format!("https://localhost:{port}/"))
            .send()
            .await
            .unwrap_err();
        let mut chain = String::new();
        let mut source: Option<&dyn std::error::Error> = Some(&err);
        while let Some(e) = source {
            chain.push_str(&e.to_string());
            chain.push('\n');
            source = e.source();
        }
        assert!(chain.contains("`localhost` names this machine"), "{chain}");
        assert!(!accepted.await.unwrap(), "no connection was made");
    }

    /// A host name outside `localhost` that resolves to loopback (`/etc/hosts` maps the
    /// machine's own name there on most systems) is refused by its address.
    #[tokio::test]
    async fn the_resolver_judges_every_address_a_name_resolves_to() {
        let Ok(hostname) = std::fs::read_to_string("/etc/hostname") else {
            return;
        };
        let hostname = hostname.trim().to_owned();
        let Ok(addrs) = tokio::net::lookup_host((hostname.as_str(), 0)).await else {
            return;
        };
        let addrs: Vec<SocketAddr> = addrs.collect();
        let resolved =
            reqwest::dns::Resolve::resolve(&PublicResolver, hostname.parse().unwrap()).await;
        match addrs.iter().find(|a| !is_public(a.ip())) {
            Some(bad) => {
                let message = resolved.err().expect("refused").to_string();
                assert_eq!(
                    message,
                    format!(
                        "`{hostname}` resolves to {}, which is not a public address",
                        bad.ip()
                    )
                );
            }
            None => assert!(resolved.is_ok()),
        }
    }
}
