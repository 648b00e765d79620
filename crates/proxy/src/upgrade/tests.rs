use std::sync::Arc;

use bytes::BytesMut;
use http::{Method, Request, Version};
use waygate_faults::BadUpgrade;

use super::{Answer, Upgrade, accept_for};
use crate::tunnel::Tunnels;
use crate::upstream::h1::head::{Parsed, ResponseHead, parse_response_to};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// RFC 6455 §1.3's example.
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn head(text: &str) -> ResponseHead {
    match parse_response_to(&mut BytesMut::from(text), false, true, 1 << 15) {
        Ok(Parsed::Final(h)) => h,
        other => panic!("{text:?}: {other:?}"),
    }
}

fn websocket_request() -> Box<Upgrade> {
    let req = Request::get("/chat")
        .header("host", "a")
        .header("connection", "keep-alive, Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-key", KEY)
        .header("sec-websocket-version", "13")
        .body(())
        .unwrap();
    let (mut parts, ()) = req.into_parts();
    Upgrade::of(&mut parts, true, true, &Arc::new(Tunnels::default()), false).expect("an upgrade")
}

#[test]
fn the_accept_is_rfc_6455s() {
    assert_eq!(accept_for(KEY.as_bytes()), ACCEPT);
}

#[test]
fn only_an_http_1_1_request_with_connection_upgrade_and_no_body_upgrades() {
    let tunnels = Arc::new(Tunnels::default());
    let parts = |connection: &str, version: Version| {
        let mut req = Request::get("/").header("upgrade", "websocket").body(()).unwrap();
        if !connection.is_empty() {
            req.headers_mut().insert("connection", connection.parse().unwrap());
        }
        *req.version_mut() = version;
        req.into_parts().0
    };
    assert!(Upgrade::of(&mut parts("upgrade", Version::HTTP_11), true, true, &tunnels, false).is_some());
    let alone = Upgrade::of(&mut parts("", Version::HTTP_11), true, true, &tunnels, false);
    assert!(alone.is_none(), "Upgrade alone is not asked");
    assert!(Upgrade::of(&mut parts("upgrade", Version::HTTP_11), true, false, &tunnels, false).is_none(), "a body");
    assert!(Upgrade::of(&mut parts("upgrade", Version::HTTP_10), true, true, &tunnels, false).is_none());
    let mut connect = Request::builder().method(Method::CONNECT).uri("https://a/chat").body(()).unwrap();
    *connect.version_mut() = Version::HTTP_2;
    assert!(
        Upgrade::of(&mut connect.into_parts().0, false, true, &tunnels, false).is_none(),
        "no :protocol, no upgrade"
    );
}

#[test]
fn the_forwarded_request_keeps_its_handshake() {
    let up = websocket_request();
    let mut parts = Request::get("/chat").body(()).unwrap().into_parts().0;
    up.restore(&mut parts);
    assert_eq!(parts.headers["upgrade"], "websocket");
    assert_eq!(parts.headers["connection"], "upgrade");
}

#[test]
fn a_101_must_switch_as_asked() {
    let up = websocket_request();
    let good = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
    );
    assert_eq!(up.answer(&head(&good)), Ok(Answer::Switched));
    let cases = [
        ("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n".to_owned(), BadUpgrade::NoUpgrade),
        (format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n"), BadUpgrade::UpgradeMismatch),
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_owned(), BadUpgrade::NoAccept),
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n"
                .to_owned(),
            BadUpgrade::WrongAccept,
        ),
    ];
    for (text, bad) in cases {
        assert_eq!(up.answer(&head(&text)), Err(bad), "{text}");
    }
    let refused = head("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(up.answer(&refused), Ok(Answer::Refused));
    let ok = head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(up.answer(&ok), Ok(Answer::Refused), "an HTTP/1.1 client sees the 200 for what it is");
}

/// Toward an http2 group: an HTTP/1.1 WebSocket handshake becomes an extended CONNECT for `websocket`
/// without the key, a 2xx is its switch; another upgrade token is not translated (a plain request).
#[test]
fn toward_an_http2_target_a_websocket_is_an_extended_connect() {
    let tunnels = Arc::new(Tunnels::default());
    let req = |upgrade: &str| {
        let req = Request::get("/chat")
            .header("connection", "Upgrade")
            .header("upgrade", upgrade)
            .header("sec-websocket-key", KEY)
            .header("sec-websocket-version", "13")
            .header("sec-websocket-protocol", "chat")
            .body(())
            .unwrap();
        req.into_parts().0
    };
    assert!(Upgrade::of(&mut req("h2c"), true, true, &tunnels, true).is_none(), "only WebSockets are translated");
    let mut parts = req("websocket");
    let up = Upgrade::of(&mut parts, true, true, &tunnels, true).expect("an upgrade");
    assert_eq!(up.h2_protocol(), Some("websocket"));
    for hop in ["connection", "upgrade"] {
        parts.headers.remove(hop);
    }
    up.restore(&mut parts);
    assert_eq!(parts.method, Method::CONNECT);
    assert!(!parts.headers.contains_key("sec-websocket-key") && !parts.headers.contains_key("upgrade"));
    assert_eq!(parts.headers["sec-websocket-version"], "13");
    assert_eq!(parts.headers["sec-websocket-protocol"], "chat");
    let mut ok = head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    ok.version = Version::HTTP_2;
    assert_eq!(up.answer(&ok), Ok(Answer::Switched));
    assert_eq!(up.answer(&head("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")), Ok(Answer::Refused));
    assert_eq!(websocket_request().h2_protocol(), None, "toward an http1 target: an HTTP/1.1 upgrade");
}
