//! RFC 8441 toward a target: a WebSocket for an http2 group opens as an extended CONNECT (`:protocol`) on a
//! stream of the shared connection, once the target's SETTINGS enabled SETTINGS_ENABLE_CONNECT_PROTOCOL (a
//! target that did not gets nothing: [`BadUpgrade::ExtendedConnectDisabled`]). The request side stays open: a
//! 2xx makes the stream the tunnel ([`Stream::tunnel`]), any other answer is relayed as a response with its
//! body, the request side ended. Kept apart from [`Stream::send`], whose send ends the stream with the body.

use std::sync::atomic::Ordering;
use std::time::Duration;

use http::Method;
use waygate_faults::{BadUpgrade, HttpEvidence, Phase};

use super::stream::{Request, Stream};
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
    if !stream.shared().state.connect_protocol.load(Ordering::Acquire) {
        let mut f = AttemptFailure::new(Phase::SendRequest);
        f.http = Some(HttpEvidence::BadUpgrade(BadUpgrade::ExtendedConnectDisabled));
        f.conn = Some(stream.snapshot());
        return Err(SendError { unsent: true, ..f.into() });
    }
    let connect =
        Request { method: Method::CONNECT, uri: req.uri.clone(), headers: req.headers.clone(), head_len: req.head_len };
    let key = stream.open(&connect, Some(protocol), false)?;
    let resp = stream.await_head(key, response_timeout, true).await?;
    if !resp.head.status.is_success() {
        // Refused: the tunnel will not open, so the request side ends (its answer is read as usual).
        stream.end_request(key);
    }
    Ok(resp)
}
