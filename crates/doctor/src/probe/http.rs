//! The probe's HTTP/1.1 exchange: one GET over the probed connection with hyper's client and the gateway's
//! 32 KiB head limit, so an invalid or oversized head gets the cause the gateway would give it. With
//! `--keepalive`, the connection then stays idle for [`super::keepalive::watch_idle`].

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use waygate_connect::transport::Transport;
use waygate_connect::{AttemptFailure, ConnCounters, MAX_RESPONSE_HEAD};
use waygate_faults::Phase;

use super::check::{describe, failure, ms};
use super::keepalive::{unknown_keepalive, watch_idle};
use super::report::{AddressReport, Http};
use super::target::ProbeTarget;

/// Response bodies are read (and counted) up to this size; the rest is not needed to judge the target.
const MAX_BODY: u64 = 4 * 1024 * 1024;

pub async fn exchange(
    t: &ProbeTarget,
    path: &str,
    transport: Transport,
    counters: &Arc<ConnCounters>,
    report: &mut AddressReport,
) {
    let mut http = Http {
        path: path.to_owned(),
        completed: false,
        ms: 0.0,
        status: None,
        version: None,
        body_bytes: 0,
        keep_alive_header: None,
        connection_close: false,
    };
    let started = Instant::now();
    counters.begin_use();
    let io = TokioIo::new(transport);
    let (mut sender, conn) = match http1::Builder::new().max_header_size(MAX_RESPONSE_HEAD).handshake(io).await {
        Ok(parts) => parts,
        Err(e) => {
            let f = AttemptFailure::from_hyper(Phase::SendRequest, e).with_conn(counters.snapshot(false, None));
            report.failure = Some(failure(&f, describe(&f)));
            report.http = Some(http);
            return;
        }
    };
    let conn_task = tokio::spawn(conn);
    let request = http::Request::get(path)
        .header(http::header::HOST, &t.authority)
        .header(http::header::USER_AGENT, concat!("waygate-doctor-probe/", env!("CARGO_PKG_VERSION")))
        .body(Empty::<Bytes>::new());
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            report.warnings.push(format!("cannot build a request for path {path:?}: {e}"));
            report.http = Some(http);
            return;
        }
    };
    let timeout = t.timers.response_timeout;
    let response = tokio::time::timeout(timeout, sender.send_request(request)).await;
    let response = match response {
        Err(_) => Err(AttemptFailure::timeout(Phase::AwaitHeaders, timeout)),
        Ok(Err(e)) => Err(AttemptFailure::from_hyper(Phase::AwaitHeaders, e)),
        Ok(Ok(r)) => Ok(r),
    };
    let response = match response {
        Ok(r) => r,
        Err(f) => {
            let f = f.with_conn(counters.snapshot(false, None));
            http.ms = ms(started.elapsed());
            report.failure = Some(failure(&f, describe(&f)));
            report.http = Some(http);
            conn_task.abort();
            return;
        }
    };
    http.status = Some(response.status().as_u16());
    http.version = Some(format!("{:?}", response.version()));
    http.keep_alive_header = response.headers().get("keep-alive").and_then(|v| v.to_str().ok()).map(str::to_owned);
    http.connection_close = response
        .headers()
        .get(http::header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
    let mut body = response.into_body();
    let deadline = tokio::time::Instant::now() + timeout;
    let body_result = loop {
        if http.body_bytes >= MAX_BODY {
            break Ok(false);
        }
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => break Err(AttemptFailure::timeout(Phase::StreamBody, timeout)),
            Ok(None) => break Ok(true),
            Ok(Some(Err(e))) => break Err(AttemptFailure::from_hyper(Phase::StreamBody, e)),
            Ok(Some(Ok(frame))) => {
                http.body_bytes += frame.data_ref().map_or(0, |d| d.len() as u64);
            }
        }
    };
    drop(body);
    http.ms = ms(started.elapsed());
    let whole = match body_result {
        Ok(whole) => whole,
        Err(f) => {
            let mut f = f.with_conn(counters.snapshot(false, None));
            f.response_started = true;
            report.failure = Some(failure(&f, describe(&f)));
            http.completed = false;
            report.http = Some(http);
            conn_task.abort();
            return;
        }
    };
    http.completed = true;
    if http.status.is_some_and(|s| s >= 500) {
        report.warnings.push(format!(
            "the target answered {} itself: the gateway would relay it (not a gateway error); see the target's logs",
            http.status.unwrap_or_default()
        ));
    }
    let closes = http.connection_close;
    report.http = Some(http);
    if t.keepalive {
        report.keepalive = Some(if !whole {
            unknown_keepalive(t, "the response body was too large to wait for the idle connection")
        } else if closes {
            unknown_keepalive(t, "the target closes the connection after each response (Connection: close)")
        } else {
            watch_idle(t, counters, conn_task, sender).await
        });
        if let Some(k) = &report.keepalive
            && k.shorter == "target"
        {
            report.warnings.push(k.advice.clone());
        }
    } else {
        conn_task.abort();
    }
}
