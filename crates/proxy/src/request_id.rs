//! Request ids in AWS X-Ray trace-id form, as ALB writes them: `Root=1-{8 hex epoch seconds}-{24 hex random}`.
//! The same string is the access log's trace_id, the system log's request_id, and the `x-request-id` header.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::HeaderValue;
use waygate_telemetry::hex_into;

/// A new id for one request, marked sensitive: HTTP/2 then writes it as a literal that is never indexed (RFC 7541
/// §6.2.3). A value unique to every response only churns the client's HPACK table, and h2's encoder walked its
/// chain of earlier ids (about fifty) on every response. HTTP/1 and the logs (which use `to_str`) ignore the flag.
/// `received`: when the request arrived (its epoch seconds lead the id, as the record's creation time).
pub fn new_request_id(received: SystemTime) -> HeaderValue {
    let secs = received.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let random = rand::random::<u128>().to_be_bytes(); // 96 of its bits
    let mut out = *b"Root=1-00000000-000000000000000000000000";
    hex_into(&mut out[7..15], &(secs as u32).to_be_bytes());
    hex_into(&mut out[16..40], &random[..12]);
    // Only ASCII letters, digits, '=' and '-' were written. Owned by a `Bytes` whose clones (the response
    // header) share it: a copied slice is promoted to shared storage, a second allocation, on its first clone.
    let mut id = HeaderValue::from_maybe_shared(Bytes::from_owner(out))
        .unwrap_or_else(|_| HeaderValue::from_static("Root=1-00000000-000000000000000000000000"));
    id.set_sensitive(true);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_alb_trace_id_shape() {
        let id = new_request_id(SystemTime::now());
        let s = id.to_str().unwrap();
        assert_eq!(s.len(), 40);
        let (root, rest) = s.split_at(7);
        assert_eq!(root, "Root=1-");
        let (epoch, random) = rest.split_at(8);
        assert!(epoch.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(random.starts_with('-') && random[1..].chars().all(|c| c.is_ascii_hexdigit()));
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert!(u64::from_str_radix(epoch, 16).unwrap().abs_diff(now) < 5);
        assert_ne!(new_request_id(SystemTime::now()), new_request_id(SystemTime::now()));
        assert!(id.is_sensitive(), "h2 must write it as a never-indexed literal");
    }

    #[test]
    fn hex_digits_are_each_bytes_most_significant_first() {
        let mut out = [0u8; 8];
        hex_into(&mut out, &0x5f3a_09ffu32.to_be_bytes());
        assert_eq!(&out, b"5f3a09ff");
        for b in 0..=255u8 {
            let mut pair = [0u8; 2];
            hex_into(&mut pair, &[b]);
            assert_eq!(pair, *format!("{b:02x}").as_bytes());
        }
    }
}
