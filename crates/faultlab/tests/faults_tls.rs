//! TLS-phase faults, poked with a rustls client trusting the shared test CA.

mod common;

use std::time::Duration;

use common::*;
use rustls::{AlertDescription, CertificateError};
use tokio::io::AsyncWriteExt;
use waygate_faultlab::{Fault, TestPki, wire};

fn cert_error(err: &std::io::Error) -> CertificateError {
    match rustls_error(err) {
        rustls::Error::InvalidCertificate(e) => e.clone(),
        other => panic!("expected a certificate error, got {other:?}"),
    }
}

#[tokio::test]
async fn tls_blackhole_swallows_the_client_hello() {
    let target = Fault::TlsBlackhole.spawn(local()).await.unwrap();
    let config = TestPki::shared().client_config();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tcp = within(tokio::net::TcpStream::connect(target.addr())).await.unwrap();
    let handshake = tokio::spawn(tokio_rustls::TlsConnector::from(config).connect(name, tcp));
    within(target.stats().wait_until(|s| s.bytes_read() > 0)).await;
    // The ClientHello arrived (a TLS handshake record) and nothing answers it.
    assert!(target.stats().bytes_read() > 5);
    let waited = tokio::time::timeout(Duration::from_millis(300), handshake).await;
    assert!(waited.is_err(), "handshake should hang");
    assert_eq!(target.stats().connections_closed(), 0);
}

#[tokio::test]
async fn tls_alert_sends_handshake_failure() {
    let target = Fault::TlsAlert.spawn(local()).await.unwrap();
    let err = tls_connect(target.addr(), TestPki::shared().client_config(), "localhost").await.unwrap_err();
    assert!(matches!(rustls_error(&err), rustls::Error::AlertReceived(AlertDescription::HandshakeFailure)), "{err:?}");
    assert_eq!(wire::HANDSHAKE_FAILURE_ALERT, [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
}

#[tokio::test]
async fn plain_http_answers_a_client_hello_with_http() {
    let target = Fault::PlainHttpOnTls.spawn(local()).await.unwrap();
    let err = tls_connect(target.addr(), TestPki::shared().client_config(), "localhost").await.unwrap_err();
    assert!(
        matches!(rustls_error(&err), rustls::Error::InvalidMessage(_)),
        "a non-TLS reply should be an invalid message: {err:?}"
    );

    // What it actually sends back to a TLS-looking first record.
    let mut stream = send_raw(target.addr(), &[0x16, 0x03, 0x01, 0x00, 0x02, 0x01, 0x00]).await;
    let reply = String::from_utf8(read_all(&mut stream).await.unwrap()).unwrap();
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");

    // And it is a plain HTTP server for plain requests.
    let mut stream = send_raw(target.addr(), GET).await;
    let reply = String::from_utf8(read_all(&mut stream).await.unwrap()).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    stream.shutdown().await.unwrap();
}

#[tokio::test]
async fn self_signed_is_an_unknown_issuer() {
    let target = Fault::TlsSelfSigned.spawn(local()).await.unwrap();
    let err = tls_connect(target.addr(), TestPki::shared().client_config(), "localhost").await.unwrap_err();
    assert_eq!(cert_error(&err), CertificateError::UnknownIssuer);
}

#[tokio::test]
async fn expired_is_expired() {
    let target = Fault::TlsExpired.spawn(local()).await.unwrap();
    let err = tls_connect(target.addr(), TestPki::shared().client_config(), "localhost").await.unwrap_err();
    let e = cert_error(&err);
    assert!(matches!(e, CertificateError::Expired | CertificateError::ExpiredContext { .. }), "{e:?}");
}

#[tokio::test]
async fn wrong_name_is_not_valid_for_name_but_serves_http_under_its_own_name() {
    let target = Fault::TlsWrongName.spawn(local()).await.unwrap();
    let err = tls_connect(target.addr(), TestPki::shared().client_config(), "localhost").await.unwrap_err();
    let e = cert_error(&err);
    assert!(matches!(e, CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }), "{e:?}");

    let tls = tls_connect(target.addr(), TestPki::shared().client_config(), "wrong.example").await.unwrap();
    let mut send = http1(tls).await;
    let (resp, body) = collect(within(send.send_request(get_req("/"))).await.unwrap()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(body, "hello from tls-wrong-name\n");
}

#[tokio::test]
async fn explicit_pki_is_used() {
    let pki = TestPki::new();
    let target = Fault::TlsWrongName.spawn_with_pki(local(), &pki).await.unwrap();
    // Trusting only the shared CA, this PKI's certificate is from an unknown issuer. (An expired
    // certificate would say Expired either way: webpki checks validity dates before the issuer.)
    let err = tls_connect(target.addr(), TestPki::shared().client_config(), "localhost").await.unwrap_err();
    assert_eq!(cert_error(&err), CertificateError::UnknownIssuer);
    let tls = tls_connect(target.addr(), pki.client_config(), "wrong.example").await;
    assert!(tls.is_ok(), "{err:?}");
}
