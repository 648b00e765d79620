//! Just enough TLS to tell a handshake's story from the outside: whether a stream's first bytes are a
//! ClientHello, whether an answer is TLS at all, and the first plaintext alert (level and description)
//! in a direction, found by walking record headers over the in-order bytes without buffering records.

/// Record content types.
const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
/// Alert level 1; 2 is fatal.
const WARNING: u8 = 1;
/// TLS 1.3 wraps every record after the handshake as application data; an encrypted close_notify is then
/// 2 bytes of alert, 1 of inner content type and a 16-byte AEAD tag: a record this long or shorter is not
/// a request.
pub const CLOSE_NOTIFY_MAX: u16 = 19;

/// Walks TLS records over one direction's in-order byte stream.
#[derive(Debug, Clone, Default)]
pub struct Walker {
    /// Bytes of the current record header (5) plus, for a 2-byte alert, its body.
    head: [u8; 7],
    head_len: u8,
    /// Body bytes left in the current record.
    remaining: u32,
    /// Stopped: not TLS (then with no record walked), or nothing more worth finding.
    pub done: bool,
    pub records: u32,
    /// First plaintext alert that is not a warning: (level, description, frame).
    pub alert: Option<(u8, u8, u64)>,
    /// First warning-level alert (`unrecognized_name`, `close_notify` ...): the handshake goes on after it.
    pub warning: Option<(u8, u8, u64)>,
    /// An application-data record was seen: the handshake was over (or 0-RTT data went out).
    pub app_data: bool,
}

/// Records walked per direction before giving up: alerts that matter come early.
const MAX_RECORDS: u32 = 64;

impl Walker {
    /// Feeds the next in-order bytes, carried by `frame`.
    pub fn feed(&mut self, mut bytes: &[u8], frame: u64) {
        while !self.done && !bytes.is_empty() {
            if self.remaining > 0 {
                let take = (self.remaining as usize).min(bytes.len());
                self.remaining -= take as u32;
                bytes = &bytes[take..];
                continue;
            }
            let need = if self.head_len >= 5 && self.head[0] == ALERT && self.body_len() == 2 { 7 } else { 5 };
            let take = (need - usize::from(self.head_len)).min(bytes.len());
            let at = usize::from(self.head_len);
            self.head[at..at + take].copy_from_slice(&bytes[..take]);
            self.head_len += take as u8;
            bytes = &bytes[take..];
            if usize::from(self.head_len) == 5 {
                if !is_record_header(&self.head[..5]) {
                    self.done = true;
                    return;
                }
                if self.head[0] == ALERT && self.body_len() == 2 {
                    continue; // collect the two alert bytes into `head`
                }
                self.app_data |= self.head[0] == APPLICATION_DATA;
                self.finish_record(self.body_len());
            } else if usize::from(self.head_len) == 7 {
                let slot = if self.head[5] == WARNING { &mut self.warning } else { &mut self.alert };
                if slot.is_none() {
                    *slot = Some((self.head[5], self.head[6], frame));
                }
                self.finish_record(0);
            }
        }
    }

    /// Passes over `n` bytes the capture does not hold (cut by the snaplen). Inside a record's body they
    /// are skipped as captured ones would be, the header having given the length; if they hold the start
    /// of a record, or the rest of a header, record boundaries are lost and the walk ends.
    pub fn skip(&mut self, n: u32) {
        if self.head_len == 0 && n <= self.remaining {
            self.remaining -= n;
        } else {
            self.done = true;
        }
    }

    fn body_len(&self) -> u32 {
        u32::from(u16::from_be_bytes([self.head[3], self.head[4]]))
    }

    fn finish_record(&mut self, body_left: u32) {
        self.records += 1;
        self.remaining = body_left;
        self.head_len = 0;
        if self.records >= MAX_RECORDS {
            self.done = true;
        }
    }
}

/// A TLS record header: a known content type, version 3.x, a length a record can have.
pub fn is_record_header(h: &[u8]) -> bool {
    h.len() >= 5
        && matches!(h[0], CHANGE_CIPHER_SPEC | ALERT | HANDSHAKE | APPLICATION_DATA)
        && h[1] == 3
        && h[2] <= 4
        && u16::from_be_bytes([h[3], h[4]]) <= 18432
}

/// Whether a stream starts with a TLS handshake record holding a ClientHello (SSL 3.0 to TLS 1.3), or with
/// an SSLv2-format ClientHello offering SSL 3.0 or later (what SSLv3-era clients send first: a 2-byte
/// length with the top bit set, message type 1, version 3.x).
pub fn is_client_hello(head: &[u8]) -> bool {
    let record = head.len() >= 6 && head[0] == HANDSHAKE && head[1] == 3 && head[5] == 1;
    let v2 = head.len() >= 4 && head[0] & 0x80 != 0 && head[2] == 1 && head[3] == 3;
    record || v2
}

/// Whether the bytes look like the start of a TLS record (even if too short to be sure).
pub fn looks_like_tls(head: &[u8]) -> bool {
    match head.len() {
        0 => false,
        1..=4 => matches!(head[0], CHANGE_CIPHER_SPEC..=APPLICATION_DATA) && head.get(1).is_none_or(|v| *v == 3),
        _ => is_record_header(head),
    }
}

/// Whether the stream starts with a ServerHello.
pub fn is_server_hello(head: &[u8]) -> bool {
    head.len() >= 6 && head[0] == HANDSHAKE && head[1] == 3 && head[5] == 2
}

/// The alert description's RFC 8446 name, or `alert N`.
pub fn alert_name(desc: u8) -> String {
    waygate_faults::tls_alert_name(desc).map_or_else(|| format!("alert {desc}"), str::to_owned)
}

/// Alerts a client sends when it rejects the server's certificate.
pub fn is_certificate_alert(desc: u8) -> bool {
    matches!(desc, 42..=46 | 48)
}

/// Printable preview of a stream's first bytes: the first line, escaped, at most 48 characters.
pub fn preview(head: &[u8]) -> String {
    let line = head.split(|b| *b == b'\r' || *b == b'\n').next().unwrap_or(head);
    let mut out = String::new();
    for &b in line.iter().take(48) {
        if (0x20..0x7f).contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_an_alert_split_across_segments() {
        let mut w = Walker::default();
        let hello = [22u8, 3, 3, 0, 3, 2, 0, 0];
        w.feed(&hello, 5);
        w.feed(&[21, 3], 6);
        w.feed(&[3, 0, 2, 2], 7);
        w.feed(&[48], 8);
        assert_eq!(w.alert, Some((2, 48, 8)));
        assert!(w.records > 0, "TLS");
    }

    #[test]
    fn skips_uncaptured_body_bytes_but_not_a_header() {
        let mut w = Walker::default();
        w.feed(&[22, 3, 1, 0, 10, 1, 0], 4); // a 10-byte record, 2 body bytes captured
        w.skip(8);
        w.feed(&[21, 3, 3, 0, 2, 2, 42], 5);
        assert_eq!((w.done, w.alert), (false, Some((2, 42, 5))));
        let mut w = Walker::default();
        w.feed(&[22, 3, 1, 0, 10, 1, 0], 4);
        w.skip(9); // the next record's first byte is not in the capture
        w.feed(&[3, 3, 0, 2, 2, 42], 5);
        assert_eq!((w.done, w.alert), (true, None));
        let mut w = Walker::default();
        w.feed(&[22, 3], 4); // cut inside the header
        w.skip(1);
        assert!(w.done);
    }

    #[test]
    fn warnings_are_kept_apart_from_fatal_alerts() {
        let mut w = Walker::default();
        w.feed(&[21, 3, 3, 0, 2, 1, 112, 22, 3, 3, 0, 1, 2], 3);
        assert_eq!((w.warning, w.alert, w.records), (Some((1, 112, 3)), None, 2));
        w.feed(&[21, 3, 3, 0, 2, 2, 40], 4);
        assert_eq!(w.alert, Some((2, 40, 4)));
    }

    #[test]
    fn sslv2_format_and_sslv3_client_hellos() {
        assert!(is_client_hello(&[0x80, 0x2e, 1, 3, 0, 0]), "SSLv2 format, SSL 3.0");
        assert!(is_client_hello(&[22, 3, 0, 0, 0x2d, 1]), "SSL 3.0 record");
        assert!(!is_client_hello(&[0x80, 0x2e, 1, 0, 2, 0]), "SSL 2.0 only");
    }

    #[test]
    fn http_is_not_tls() {
        let mut w = Walker::default();
        w.feed(b"HTTP/1.1 400 Bad Request\r\n", 1);
        assert!(w.done && w.records == 0, "not TLS");
        assert_eq!(preview(b"HTTP/1.1 400 Bad Request\r\nx"), "HTTP/1.1 400 Bad Request");
    }
}
