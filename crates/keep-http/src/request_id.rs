//! Request ids: taken from `X-Request-Id` when the client sent a sane one,
//! otherwise generated in Arvados's form (`req-` and 20 base-36 characters).

use rand::Rng;

/// The header carrying the request id, both ways.
pub const HEADER: &str = "x-request-id";

/// The request id to use: the client's if it is printable ASCII of at most
/// 100 characters, else a fresh one.
pub fn pick(client: Option<&http::HeaderValue>) -> String {
    match client.and_then(|v| v.to_str().ok()) {
        Some(s) if !s.is_empty() && s.len() <= 100 && s.bytes().all(|b| b.is_ascii_graphic()) => {
            s.to_owned()
        }
        _ => generate(),
    }
}

/// A fresh id: `req-` followed by 20 lowercase base-36 characters.
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let mut id = String::with_capacity(24);
    id.push_str("req-");
    for _ in 0..20 {
        id.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_sane_client_ids_and_replaces_others() {
        let ok = http::HeaderValue::from_static("req-abc123");
        assert_eq!(pick(Some(&ok)), "req-abc123");
        let bad = http::HeaderValue::from_static("has space");
        let id = pick(Some(&bad));
        assert!(id.starts_with("req-") && id.len() == 24, "{id}");
        assert_ne!(generate(), generate());
    }
}
