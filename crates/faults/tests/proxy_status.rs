//! The `Proxy-Status` header: RFC 8941 syntax for every cause (checked by an independent checker here and
//! by the crate's parser), the cause read back, and details only when exposed.

use waygate_faults::sf::{self, BareItem, Member};
use waygate_faults::{Cause, ProxyStatus, ProxyStatusDetails, parse_proxy_status_cause, proxy_status};

/// An independent check of `sf-item` with parameters (RFC 8941 §3.3 and §3.1.2), limited to the bare
/// item types a Proxy-Status member uses here: token, string, integer.
fn check_item(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let mut i = 0;
    let token = |i: &mut usize| -> Result<(), String> {
        if !b.get(*i).is_some_and(|c| c.is_ascii_alphabetic() || *c == b'*') {
            return Err(format!("token start at {i}"));
        }
        while b.get(*i).is_some_and(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(c)) {
            *i += 1;
        }
        Ok(())
    };
    let bare = |i: &mut usize| -> Result<(), String> {
        match b.get(*i) {
            Some(b'"') => {
                *i += 1;
                loop {
                    match b.get(*i) {
                        Some(b'\\') if matches!(b.get(*i + 1), Some(b'"' | b'\\')) => *i += 2,
                        Some(b'"') => {
                            *i += 1;
                            return Ok(());
                        }
                        Some(c) if (0x20..0x7f).contains(c) && *c != b'\\' => *i += 1,
                        other => return Err(format!("bad string byte {other:?} at {i}")),
                    }
                }
            }
            Some(c) if c.is_ascii_digit() => {
                let start = *i;
                while b.get(*i).is_some_and(u8::is_ascii_digit) {
                    *i += 1;
                }
                if *i - start > 15 { Err("integer too long".into()) } else { Ok(()) }
            }
            _ => token(i),
        }
    };
    token(&mut i)?;
    while i < b.len() {
        if b[i] != b';' {
            return Err(format!("expected ';' at {i} in {s}"));
        }
        i += 1;
        while b.get(i) == Some(&b' ') {
            i += 1;
        }
        if !b.get(i).is_some_and(|c| c.is_ascii_lowercase() || *c == b'*') {
            return Err(format!("key start at {i} in {s}"));
        }
        while b.get(i).is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-.*".contains(c)) {
            i += 1;
        }
        if b.get(i) == Some(&b'=') {
            i += 1;
            bare(&mut i)?;
        }
    }
    Ok(())
}

fn params(value: &str) -> Vec<(String, BareItem)> {
    let item = sf::parse_item(value).unwrap_or_else(|| panic!("not an sf-item: {value}"));
    assert_eq!(item.bare, BareItem::Token("waygate".into()));
    item.params
}

fn string(s: &str) -> BareItem {
    BareItem::String(s.into())
}

#[test]
fn every_cause_serialises_validly_and_parses_back() {
    let exposed = ProxyStatusDetails {
        next_hop: Some("10.0.0.7:443"),
        tls_alert: Some("HandshakeFailure"),
        message: Some("odd \"quoted\" \\ text\twith ünïcode\r\n"),
    };
    for &cause in Cause::ALL {
        for timed_out in [false, true] {
            for details in [None, Some(&exposed)] {
                let value = ProxyStatus::new(cause).timed_out(timed_out).details(details).to_string();
                check_item(&value).unwrap_or_else(|e| panic!("{value}: {e}"));
                assert!(value.bytes().all(|c| (0x20..0x7f).contains(&c)), "{value}");
                assert!(sf::parse_list(&value).is_some(), "{value}");
                assert_eq!(parse_proxy_status_cause(&value), Some(cause), "{value}");
            }
        }
    }
}

#[test]
fn default_header_is_the_documented_form() {
    assert_eq!(
        proxy_status(Cause::TargetConnectionRefused, None),
        "waygate; error=connection_refused; details=\"TargetConnectionRefused\""
    );
    assert_eq!(
        ProxyStatus::new(Cause::TargetDnsFailure).timed_out(true).to_string(),
        "waygate; error=dns_timeout; details=\"TargetDnsFailure\""
    );
    assert_eq!(proxy_status(Cause::TargetDnsFailure, None), "waygate; error=dns_error; details=\"TargetDnsFailure\"");
    assert_eq!(proxy_status(Cause::ClientClosedRequest, None), "waygate; details=\"ClientClosedRequest\"");
}

#[test]
fn default_header_carries_no_details() {
    for &cause in Cause::ALL {
        let p = params(&proxy_status(cause, None));
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        let expected: &[&str] = if cause.proxy_status_error().is_some() { &["error", "details"] } else { &["details"] };
        assert_eq!(keys, expected, "{cause}");
        assert_eq!(p.last().map(|(_, v)| v.clone()), Some(string(cause.name())));
    }
}

#[test]
fn exposed_tls_alert() {
    let d = ProxyStatusDetails { next_hop: Some("10.0.0.7:443"), tls_alert: Some("handshake_failure"), message: None };
    let value = proxy_status(Cause::TargetTlsAlert, Some(&d));
    assert_eq!(
        value,
        "waygate; error=tls_alert_received; details=\"TargetTlsAlert: handshake_failure\"; \
         next-hop=\"10.0.0.7:443\"; alert-id=40; alert-message=\"handshake_failure\""
    );
    let p = params(&value);
    assert!(p.contains(&("alert-id".into(), BareItem::Integer(40))));
}

#[test]
fn alert_params_only_for_alerts_and_unknown_alerts_keep_their_name() {
    let d = ProxyStatusDetails { tls_alert: Some("handshake_failure"), ..Default::default() };
    assert!(!proxy_status(Cause::TargetTlsProtocolError, Some(&d)).contains("alert"));
    let odd = ProxyStatusDetails { tls_alert: Some("Unknown(250)"), ..Default::default() };
    let value = proxy_status(Cause::TargetTlsAlert, Some(&odd));
    assert!(!value.contains("alert-id"), "{value}");
    assert!(value.contains("alert-message=\"Unknown(250)\""), "{value}");
}

#[test]
fn exposed_message_is_escaped() {
    let d = ProxyStatusDetails { message: Some("a \"b\" \\ c\u{7}é"), ..Default::default() };
    let value = proxy_status(Cause::TargetTlsHandshakeTimeout, Some(&d));
    assert!(value.ends_with("details=\"TargetTlsHandshakeTimeout: a \\\"b\\\" \\\\ c??\""), "{value}");
    let p = params(&value);
    assert!(p.contains(&("details".into(), string("TargetTlsHandshakeTimeout: a \"b\" \\ c??"))));
}

#[test]
fn parse_finds_waygate_among_other_members() {
    let value = "edge-cache; error=http_response_timeout, waygate; error=connection_refused; \
                 details=\"TargetConnectionRefused\"";
    assert_eq!(parse_proxy_status_cause(value), Some(Cause::TargetConnectionRefused));
    assert_eq!(parse_proxy_status_cause("other; details=\"NoRoute\""), None, "not ours");
    assert_eq!(parse_proxy_status_cause("waygate; details=\"Nonsense\""), None);
    assert_eq!(parse_proxy_status_cause("waygate; details=NoRoute"), None, "token, not string");
    assert_eq!(parse_proxy_status_cause("waygate; details=\"NoRoute"), None, "unterminated");
    assert_eq!(parse_proxy_status_cause(""), None);
    assert_eq!(parse_proxy_status_cause("waygate; details=\"NoRoute extra words\""), Some(Cause::NoRoute));
}

#[test]
fn sf_parser_accepts_and_rejects_per_rfc8941() {
    let ok =
        ["a", "a, b", "*tok/en:x; k=1; k2=-12.5; b=?0; bin=:aGVsbG8=:", "(a b);p=1, c", "  a;x=\"q\\\"\"  ", "a;k"];
    for s in ok {
        assert!(sf::parse_list(s).is_some(), "{s}");
    }
    let bad = [
        "a,",
        ",a",
        "a;K=1",
        "a;k=\"\\x\"",
        "a;k=1.",
        "a;k=1.1234",
        "a;k=1234567890123456",
        "1a;",
        "a b",
        "a;k=\"é\"",
        "(a b",
        "a;k=?2",
        "\"unterminated",
    ];
    for s in bad {
        assert!(sf::parse_list(s).is_none(), "{s}");
    }
    let list = sf::parse_list("a;k=1;k=2").unwrap_or_default();
    let Some(Member::Item(item)) = list.first() else { panic!("item") };
    assert_eq!(item.param("k"), Some(&BareItem::Integer(2)), "later duplicate wins");
    assert!(sf::is_token("waygate") && !sf::is_token("1x") && !sf::is_token(""));
    assert!(sf::is_key("next-hop") && !sf::is_key("Next"));
}

#[test]
fn parsers_never_panic_on_arbitrary_input() {
    const ALPHABET: &[u8] = b"waygte;=\"\\,:() ?*-.019\t\x01\x7f";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let len = usize::try_from(next() % 40).unwrap_or(0);
        let bytes: Vec<u8> =
            (0..len).map(|_| ALPHABET[usize::try_from(next() % ALPHABET.len() as u64).unwrap_or(0)]).collect();
        let mut s = String::from_utf8_lossy(&bytes).into_owned();
        if next() % 4 == 0 {
            s.push('é');
        }
        let _ = sf::parse_list(&s);
        let _ = sf::parse_item(&s);
        let _ = parse_proxy_status_cause(&s);
        let _ = parse_proxy_status_cause(&format!("waygate; details=\"{s}\""));
    }
}
