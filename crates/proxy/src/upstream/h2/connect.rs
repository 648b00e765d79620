//! RFC 8441 toward a target: a WebSocket for an http2 group opens as an extended CONNECT (`:protocol`) on a
//! stream of the shared connection, once the target's SETTINGS enabled SETTINGS_ENABLE_CONNECT_PROTOCOL (a
//! target that did not gets nothing: [`BadUpgrade::ExtendedConnectDisabled`]). The request side stays open: a
//! 2xx makes the stream the tunnel ([`Stream::tunnel`]), any other answer is relayed as a response with its
//! body, the request side ended. Kept apart from [`super::stream`], whose send ends the stream with an empty
//! body.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Version};
use waygate_faults::{BadUpgrade, HttpEvidence, Phase};

use super::stream::{Request, Stream, failure};
use crate::upstream::AttemptFailure;
use crate::upstream::h1::{Response, SendError};

/// Opens `req` as an extended CONNECT for `protocol` on `stream` and awaits the answer's head for at most
/// `response_timeout`.
pub async fn send(
    stream: &mut Stream,
    req: &Request,
    protocol: &str,
    response_timeout: Duration,
) -> Result<Response, SendError> {
    let shared = stream.shared().clone();
    let seen = shared.state.seen.clone();
    let unsent =
        |e: &h2::Error| SendError { unsent: true, ..SendError::from(failure(Phase::SendRequest, e, None, &seen)) };
    let mut sender = shared.send.clone().ready().await.map_err(|e| unsent(&e))?;
    if !sender.is_extended_connect_protocol_enabled() {
        let mut f = AttemptFailure::new(Phase::SendRequest);
        f.http = Some(HttpEvidence::BadUpgrade(BadUpgrade::ExtendedConnectDisabled));
        f.conn = Some(stream.snapshot());
        return Err(SendError { unsent: true, ..f.into() });
    }
    let mut head = http::Request::new(());
    *head.method_mut() = Method::CONNECT;
    *head.uri_mut() = req.uri.clone();
    *head.version_mut() = Version::HTTP_2;
    *head.headers_mut() = req.headers.clone();
    head.extensions_mut().insert(h2::ext::Protocol::from(protocol));
    let (response, mut send) = sender.send_request(head, false).map_err(|e| unsent(&e))?;
    stream.opened(u32::from(response.stream_id()), req.head_len);
    match tokio::time::timeout(response_timeout, response).await {
        Ok(Ok(resp)) => {
            if !resp.status().is_success() {
                // Refused: the tunnel will not open, so the request side ends (its answer is read as usual).
                let _ = send.send_data(Bytes::new(), true);
            }
            Ok(stream.answered(resp, send))
        }
        Ok(Err(e)) => Err(stream.fail(Phase::AwaitHeaders, Some(&e)).into()),
        Err(_) => {
            let mut f = AttemptFailure::timeout(Phase::AwaitHeaders, response_timeout);
            f.conn = Some(stream.snapshot());
            Err(f.into())
        }
    }
}
