//! Who sent a request: the client IP address that rate limits are keyed by and request logs
//! show. It is the TCP peer, unless the peer is one of `server.trusted_proxies`: then it is
//! read from `X-Forwarded-For`, which only a trusted proxy can vouch for.

use std::net::IpAddr;

use poem::http::HeaderMap;

use crate::config::TrustedProxies;

/// The client IP address of the request being served (in the request's data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

const FORWARDED_FOR: &str = "x-forwarded-for";

/// The client behind `peer`. From an untrusted peer, `X-Forwarded-For` is ignored: anyone can
/// write it. From a trusted one, the header is read from the right (each proxy appends the
/// address it received the request from), skipping trusted addresses: the first untrusted one
/// is the client; when every address is trusted, the leftmost is. A missing or malformed
/// header (an entry that is not an IP address) leaves the peer.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if trusted.is_empty() || !trusted.contains(peer) {
        return peer;
    }
    // Several headers form one list, in order (RFC 9110 §5.3).
    let mut hops = Vec::new();
    for value in headers.get_all(FORWARDED_FOR) {
        let Ok(value) = value.to_str() else {
            return peer;
        };
        hops.extend(value.split(',').map(str::trim));
    }
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            return peer;
        };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an IP address, as some proxies write it with a port
/// (`1.2.3.4:5678`, `[::1]:5678`) or an IPv6 address in brackets.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(addr) = hop.parse::<std::net::SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(entries).unwrap()
    }

    fn with_xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let headers = with_xff(&["203.0.113.9"]);
        assert_eq!(
            client_ip(ip("198.51.100.1"), &headers, &proxies(&[])),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_ip(ip("198.51.100.1"), &headers, &proxies(&["10.0.0.0/8"])),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn a_trusted_peer_names_the_first_untrusted_hop_from_the_right() {
        let trusted = proxies(&["10.0.0.0/8", "127.0.0.1"]);
        // The client wrote a fake first entry; the proxies appended the real hops.
        let headers = with_xff(&["1.1.1.1, 203.0.113.9, 10.0.0.2"]);
        assert_eq!(
            client_ip(ip("127.0.0.1"), &headers, &trusted),
            ip("203.0.113.9")
        );
        // Split over several headers, the same list.
        let headers = with_xff(&["1.1.1.1", "203.0.113.9,10.0.0.2"]);
        assert_eq!(
            client_ip(ip("127.0.0.1"), &headers, &trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn every_hop_trusted_means_the_leftmost_and_no_header_means_the_peer() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let headers = with_xff(&["10.1.1.1, 10.0.0.2"]);
        assert_eq!(
            client_ip(ip("10.0.0.3"), &headers, &trusted),
            ip("10.1.1.1")
        );
        assert_eq!(
            client_ip(ip("10.0.0.3"), &HeaderMap::new(), &trusted),
            ip("10.0.0.3")
        );
    }

    #[test]
    fn a_malformed_hop_on_the_way_leaves_the_peer() {
        let trusted = proxies(&["10.0.0.0/8"]);
        for value in [
            "unknown",
            "203.0.113.9, nonsense",
            "203.0.113.9,,10.0.0.2",
            "",
        ] {
            assert_eq!(
                client_ip(ip("10.0.0.3"), &with_xff(&[value]), &trusted),
                ip("10.0.0.3"),
                "{value:?}"
            );
        }
        // Garbage left of the client's own address is never reached.
        let headers = with_xff(&["nonsense, 203.0.113.9"]);
        assert_eq!(
            client_ip(ip("10.0.0.3"), &headers, &trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn hops_with_ports_brackets_and_mapped_addresses_are_read() {
        let trusted = proxies(&["127.0.0.1"]);
        for (value, want) in [
            ("203.0.113.9:4711", "203.0.113.9"),
            ("[2001:db8::7]:4711", "2001:db8::7"),
            ("[2001:db8::7]", "2001:db8::7"),
            ("::ffff:203.0.113.9", "203.0.113.9"),
        ] {
            assert_eq!(
                client_ip(ip("::ffff:127.0.0.1"), &with_xff(&[value]), &trusted),
                ip(want),
                "{value}"
            );
        }
    }
}
