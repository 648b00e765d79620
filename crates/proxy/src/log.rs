//! The system log lines of the request path: one per failed attempt, with the cause, the phase, the target
//! and the connection's full snapshot and timings (FAULTS.md's example line), so that an operator reading the
//! log at 3 a.m. needs no tcpdump. Retried attempts log at WARN; the attempt that fails the request at ERROR.

use std::sync::LazyLock;
use std::time::Duration;

use http::HeaderValue;
use tracing::{Level, event};
use waygate_faults::{BadUpgrade, Cause, HttpEvidence, Phase, errno};
use waygate_telemetry::{AttemptDetail, Throttle};

use crate::target::{InFlight, Target};
use crate::upstream::AttemptFailure;

/// Which attempt of which request this is.
pub struct AttemptCtx<'a> {
    pub request_id: &'a HeaderValue,
    pub group: &'a str,
    pub target: &'a str,
    pub attempt: usize,
    pub max_attempts: usize,
}

fn id(v: &HeaderValue) -> &str {
    v.to_str().unwrap_or("-")
}

/// What happened, in words, from the evidence (never the only place the facts are: the fields carry them),
/// naming every address of a host name that was tried.
pub fn describe(f: &AttemptFailure) -> String {
    let words = describe_failure(f);
    if f.addresses.is_empty() { words } else { format!("{words}; addresses tried: {}", f.addresses_tried()) }
}

fn describe_failure(f: &AttemptFailure) -> String {
    let conn = f.conn.as_ref();
    if f.deregistered {
        return "the target was deregistered and its deregistration_delay elapsed with this request in flight"
            .to_owned();
    }
    if let Some(after) = f.timed_out {
        return match f.phase {
            Phase::Dns => format!("name resolution did not finish in {after:?}"),
            Phase::Connect => format!("no SYN-ACK: TCP connect did not complete in {after:?}"),
            Phase::TlsHandshake if conn.is_some_and(|c| c.attempt_bytes_written > 0 && c.attempt_bytes_read == 0) => {
                format!("TCP connected, ClientHello sent, no reply in {after:?}")
            }
            Phase::TlsHandshake => format!("TLS handshake did not complete in {after:?}"),
            Phase::StreamBody => format!("no response body bytes for {after:?}"),
            Phase::SendRequest => format!("the target took no request bytes for {after:?}"),
            _ => format!("request sent, no response head in {after:?}"),
        };
    }
    let mut parts: Vec<String> = Vec::new();
    if let Some(h2) = f.h2 {
        parts.push(crate::upstream::h2::describe(h2));
    }
    if let Some(h) = &f.hyper {
        parts.push(h.to_string());
    } else if let Some(http) = f.http {
        parts.push(http_words(http).to_owned());
    }
    if let Some(t) = &f.tls {
        parts.push(format!("TLS: {t}"));
    } else if let Some(io) = &f.io {
        parts.push(io.to_string());
    }
    if parts.is_empty() { "failed".to_owned() } else { parts.join(": ") }
}

/// What the gateway's own HTTP/1 exchange saw, in words.
fn http_words(http: HttpEvidence) -> &'static str {
    match http {
        HttpEvidence::MalformedHead => "the response head is not valid HTTP/1.1 (status line, header field or framing)",
        HttpEvidence::HeadTooLarge => "the response head exceeds 32 KiB or 100 header fields",
        HttpEvidence::ClosedBeforeHead => "the connection closed before a complete response head",
        HttpEvidence::ProtocolError => "HTTP protocol error",
        HttpEvidence::BodyIncomplete => "the response body ended before its framing said",
        HttpEvidence::BadUpgrade(bad) => upgrade_words(bad),
    }
}

/// What was wrong with a target's answer to a relayed upgrade, in words.
fn upgrade_words(bad: BadUpgrade) -> &'static str {
    match bad {
        BadUpgrade::NoUpgrade => "the target answered the upgrade with 101 Switching Protocols but no Upgrade field",
        BadUpgrade::UpgradeMismatch => {
            "the target's 101 Switching Protocols names in Upgrade a protocol the request did not offer"
        }
        BadUpgrade::NoAccept => "the target's 101 to a WebSocket handshake has no Sec-WebSocket-Accept",
        BadUpgrade::WrongAccept => {
            "the target's Sec-WebSocket-Accept does not match the request's Sec-WebSocket-Key (RFC 6455 §4.2.2)"
        }
        BadUpgrade::NotSwitched => {
            "the target answered a WebSocket upgrade with a 2xx without switching protocols: no tunnel to open"
        }
        BadUpgrade::ExtendedConnectDisabled => {
            "the target's HTTP/2 SETTINGS did not enable extended CONNECT (RFC 8441 \
            SETTINGS_ENABLE_CONNECT_PROTOCOL): a WebSocket cannot open on a stream to it"
        }
    }
}

/// The facts [`attempt_failed`] logs, kept with the attempt in the record for the flight recorder and
/// `waygate explain` (whose copy of the line, `waygate_telemetry::flight::system_log_line`, a test below pins
/// against this file's). `message`: the failure's [`describe`]; `failed_after`: since the request was received.
pub fn detail(ctx: &AttemptCtx<'_>, f: &AttemptFailure, message: String, failed_after: Duration) -> AttemptDetail {
    AttemptDetail {
        phase: f.phase,
        failed_after,
        timed_out: f.timed_out,
        message,
        errno: f.io.as_ref().and_then(std::io::Error::raw_os_error).and_then(errno::name),
        conn: f.conn.clone(),
        attempt: u8::try_from(ctx.attempt).unwrap_or(u8::MAX),
        max_attempts: u8::try_from(ctx.max_attempts).unwrap_or(u8::MAX),
    }
}

/// Local exhaustion fails every attempt while it lasts (a thousand a second under load): one line a second.
static EXHAUSTED: LazyLock<Throttle> = LazyLock::new(Throttle::per_second);

/// One failed attempt; `message` is the failure's [`describe`].
pub fn attempt_failed(ctx: &AttemptCtx<'_>, cause: Cause, f: &AttemptFailure, message: &str) {
    if cause == Cause::GatewayResourceExhausted {
        return exhausted(ctx, f);
    }
    let last = ctx.attempt >= ctx.max_attempts;
    let attempt = format!("{}/{}", ctx.attempt, ctx.max_attempts);
    macro_rules! emit {
        ($level:expr) => {
            match &f.conn {
                Some(c) => event!(target: "waygate::upstream", $level,
                    request_id = %id(ctx.request_id), cause = %cause.name(), phase = %f.phase.as_str(),
                    target_group = %ctx.group, target = %ctx.target, conn = c.id, remote = %c.remote, local = %c.local,
                    reused = c.reused, use_count = c.use_count, bytes_read = c.attempt_bytes_read,
                    bytes_written = c.attempt_bytes_written, age_ms = c.age.as_millis() as u64,
                    last_io_ms = c.last_io_ago.as_millis() as u64,
                    idle_before_ms = c.idle_before_use.map_or(-1, |d| d.as_millis() as i64),
                    open = c.open, attempt = %attempt, "{message}"),
                None => event!(target: "waygate::upstream", $level,
                    request_id = %id(ctx.request_id), cause = %cause.name(), phase = %f.phase.as_str(),
                    target_group = %ctx.group, target = %ctx.target, attempt = %attempt, "{message}"),
            }
        };
    }
    if last { emit!(Level::ERROR) } else { emit!(Level::WARN) }
}

/// The gateway's own host ran out of descriptors, memory, buffers or ports: at most one line a second, naming
/// the errno and how many attempts failed this way since the previous line.
fn exhausted(ctx: &AttemptCtx<'_>, f: &AttemptFailure) {
    let Some(count) = EXHAUSTED.hit() else { return };
    let errno = f.io.as_ref().and_then(std::io::Error::raw_os_error).and_then(errno::name).unwrap_or("-");
    event!(target: "waygate::upstream", Level::ERROR, request_id = %id(ctx.request_id),
        cause = %Cause::GatewayResourceExhausted.name(), phase = %f.phase.as_str(), errno = %errno, count,
        target_group = %ctx.group, target = %ctx.target,
        "the gateway's own host is out of resources ({}): {count} attempt(s) failed this way since the last such \
        line; the target is not blamed", describe(f));
}

/// Who deregistered the target a request was cut from, and when (FAULTS.md: TargetDeregistered).
pub fn deregistered(request_id: &HeaderValue, target: &Target) {
    let Some(info) = target.lifecycle.drain_info() else { return };
    let at = waygate_telemetry::iso8601(info.since);
    event!(target: "waygate::upstream", Level::ERROR, request_id = %id(request_id),
        cause = %Cause::TargetDeregistered.name(), target = %target.authority, deregistered_by = %info.actor,
        deregistered_at = %at, deregistration_delay_ms = info.deadline.duration_since(info.started).as_millis() as u64,
        "request aborted: its target was deregistered and the deregistration delay elapsed (GET /api/v1/audit)");
}

/// The client went away before the response head was ready (ALB's 460, nothing sent).
pub fn client_closed(request_id: &str, group: &str) {
    event!(target: "waygate::upstream", Level::INFO, request_id = %request_id,
        cause = %Cause::ClientClosedRequest.name(), target_group = %group,
        "client closed the connection before the response; the upstream request was cancelled");
}

/// The client went away while its request was being sent (ClientClosedRequest, logged, nothing sent).
pub fn client_gone(ctx: &AttemptCtx<'_>, f: &AttemptFailure) {
    event!(target: "waygate::upstream", Level::INFO, request_id = %id(ctx.request_id),
        cause = %Cause::ClientClosedRequest.name(), phase = %f.phase.as_str(), target_group = %ctx.group, target = %ctx.target,
        "client closed the connection before the response: {}", describe(f));
}

/// The client's request body stalled (no byte for idle_timeout) while it was being sent: answered 408
/// ClientRequestTimeout, and the target's connection, which had a partial request, aborted.
pub fn client_body_stalled(ctx: &AttemptCtx<'_>, f: &AttemptFailure) {
    let sent = f.conn.as_ref().map_or(0, |c| c.attempt_bytes_written);
    event!(target: "waygate::upstream", Level::WARN, request_id = %id(ctx.request_id),
        cause = %Cause::ClientRequestTimeout.name(), phase = %f.phase.as_str(), target_group = %ctx.group,
        target = %ctx.target, bytes_written = sent,
        "the client's request body stalled: no byte for idle_timeout; answered 408 and the target's connection \
        aborted (the target is not blamed)");
}

/// The client stopped reading its response (ClientIdleTimeout): its connection was closed, or its HTTP/2 stream
/// reset, after idle_timeout, and the target's connection released. The target is not blamed.
pub fn client_idle(request_id: &HeaderValue, in_flight: &InFlight, sent: u64) {
    let target = in_flight.target();
    event!(target: "waygate::upstream", Level::WARN, request_id = %id(request_id),
        cause = %Cause::ClientIdleTimeout.name(), phase = %Phase::StreamBody.as_str(), target = %target.authority,
        sent_bytes = sent,
        "the client stopped reading the response: nothing taken for idle_timeout after {sent} bytes; the client \
        connection (or HTTP/2 stream) was ended and the target's connection released");
}

/// The target's body failed after its status was relayed: the client connection is aborted.
pub fn body_failed(
    request_id: &HeaderValue,
    in_flight: &InFlight,
    cause: Cause,
    failure: &AttemptFailure,
    body_bytes: u64,
    error: Option<&crate::upstream::h1::BodyError>,
) {
    let message = match error {
        Some(e) => format!("response body cut short after {body_bytes} bytes: {e}"),
        None => format!("response body stalled after {body_bytes} bytes: {}", describe(failure)),
    };
    let target = in_flight.target();
    let Some(c) = &failure.conn else { return };
    event!(target: "waygate::upstream", Level::ERROR, request_id = %id(request_id), cause = %cause.name(),
        phase = %Phase::StreamBody.as_str(), target = %target.authority, conn = c.id, remote = %c.remote,
        local = %c.local, reused = c.reused, use_count = c.use_count, bytes_read = c.attempt_bytes_read,
        bytes_written = c.attempt_bytes_written, age_ms = c.age.as_millis() as u64,
        last_io_ms = c.last_io_ago.as_millis() as u64, open = c.open, "{message}");
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use http::HeaderValue;
    use waygate_faults::{Cause, Phase};
    use waygate_telemetry::{Attempt, Exchange, TargetGroupRef, flight::system_log_line};

    use super::{AttemptCtx, attempt_failed, describe, detail};
    use crate::upstream::{AttemptFailure, ConnSnapshot};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The line `waygate explain` shows is the line this module writes (the binary's logfmt format, time
    /// aside), with and without a connection snapshot, for a retried and a final attempt.
    #[test]
    fn explain_reproduces_the_logged_line() {
        let snapshot = ConnSnapshot {
            id: 7,
            remote: "127.0.0.1:8080".parse().unwrap(),
            local: "127.0.0.1:50000".parse().unwrap(),
            reused: true,
            use_count: 3,
            bytes_read: 10,
            bytes_written: 20,
            attempt_bytes_read: 0,
            attempt_bytes_written: 78,
            age: Duration::from_millis(1500),
            last_io_ago: Duration::from_millis(2),
            idle_before_use: Some(Duration::from_millis(900)),
            open: false,
        };
        let reset = std::io::Error::from_raw_os_error(104);
        let failures = [
            (AttemptFailure::from_io(Phase::AwaitHeaders, reset).with_conn(snapshot), 1, 2),
            (AttemptFailure::from_io(Phase::Connect, std::io::Error::from_raw_os_error(111)), 2, 2),
        ];
        let id = HeaderValue::from_static("Root=1-00000000-000000000000000000000001");
        for (failure, attempt, max_attempts) in failures {
            let ctx = AttemptCtx { request_id: &id, group: "web", target: "127.0.0.1:8080", attempt, max_attempts };
            let cause = failure.classify();
            let buf = Buf::default();
            let writer = buf.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .with_target(true)
                .without_time()
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                attempt_failed(&ctx, cause, &failure, &describe(&failure))
            });
            let logged = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();

            let mut ex = Exchange::new("l".into(), "app/waygate/l".into(), "127.0.0.1:1".parse().unwrap());
            ex.trace_id = id.to_str().unwrap().into();
            ex.target_group = Some(TargetGroupRef::new("web"));
            let a = Attempt::failed_with(ctx.target, cause, detail(&ctx, &failure, describe(&failure), Duration::ZERO));
            let rebuilt = system_log_line(&ex, &a).unwrap();
            assert_eq!(logged.trim(), rebuilt.trim(), "attempt {attempt}");
            assert_eq!(cause, [Cause::TargetKeepAliveRace, Cause::TargetConnectionRefused][attempt - 1]);
        }
    }
}
