//! `X-Request-Id`: every request has one, echoed on its response and in its log lines. A
//! client's (or proxy's) own id is kept when it is sane; otherwise Dravo makes one.

use poem::http::{HeaderMap, HeaderName, HeaderValue};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest id kept from a request; a longer one is replaced.
pub const MAX_LEN: usize = 128;

/// The request's `X-Request-Id` if it is 1 to `MAX_LEN` visible ASCII characters (no spaces
/// or control characters, so it cannot break a log line), else a fresh one: 32 hex digits
/// (128 random bits).
pub fn for_request(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(&X_REQUEST_ID)
        .filter(|v| is_sane(v.as_bytes()))
        .cloned()
        .unwrap_or_else(fresh)
}

fn is_sane(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len()) && id.iter().all(|b| b.is_ascii_graphic())
}

fn fresh() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let random: [u8; 16] = rand::random();
    let mut text = [0u8; 32];
    for (i, byte) in random.iter().enumerate() {
        text[2 * i] = HEX[usize::from(byte >> 4)];
        text[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
    }
    HeaderValue::from_bytes(&text).expect("hex digits are a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(&X_REQUEST_ID, HeaderValue::from_bytes(value).unwrap());
        headers
    }

    #[test]
    fn a_sane_id_is_kept() {
        for id in [
            "abc-123",
            "7f3c2a1e-4b5d-4c6e-8f90-123456789abc",
            &"x".repeat(MAX_LEN),
        ] {
            assert_eq!(for_request(&with(id.as_bytes())), id);
        }
    }

    #[test]
    fn an_id_too_long_empty_or_with_spaces_is_replaced() {
        for id in [
            &"x".repeat(MAX_LEN + 1)[..],
            "",
            "has space",
            "tab\there",
            "caf\u{e9}",
        ] {
            let kept = for_request(&with(id.as_bytes()));
            assert_ne!(kept, id);
            assert_eq!(kept.len(), 32, "{kept:?}");
        }
    }

    #[test]
    fn fresh_ids_are_32_hex_digits_and_differ() {
        let (a, b) = (
            for_request(&HeaderMap::new()),
            for_request(&HeaderMap::new()),
        );
        assert_ne!(a, b);
        for id in [a, b] {
            assert_eq!(id.len(), 32);
            assert!(
                id.as_bytes().iter().all(|c| c.is_ascii_hexdigit()),
                "{id:?}"
            );
        }
    }
}
