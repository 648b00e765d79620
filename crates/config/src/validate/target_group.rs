//! `[[target_group]]` -> [`model::TargetGroup`]: targets, ALB's ranges for timeouts and delays, protocol
//! consistency (TLS only for https, a function exactly for lambda) and the health check.

use std::collections::HashSet;
use std::time::Duration;

use serde_spanned::Spanned;

use super::address::parse_target;
use super::check::{Checker, secs};
use super::health::health_check;
use crate::file;
use crate::model::{self, Algorithm, Function, ProtocolVersion, TargetProtocol, TargetSpec, TargetTls};

/// Connect, TLS handshake and response timeouts: at least 1 ms, at most ALB's longest idle timeout.
const REQUEST_TIMEOUTS: [std::ops::RangeInclusive<Duration>; 1] = [Duration::from_millis(1)..=secs(4000)];

pub(super) fn target_group(c: &mut Checker<'_>, written: &Spanned<file::TargetGroup>) -> model::TargetGroup {
    let g = written.get_ref();
    let name = c.name("target_group", &g.name);
    let ctx = format!("target_group {name:?}");
    let protocol = match g.protocol.as_ref().map(|p| *p.get_ref()) {
        None | Some(file::TargetProtocol::Http) => TargetProtocol::Http,
        Some(file::TargetProtocol::Https) => TargetProtocol::Https,
        Some(file::TargetProtocol::Lambda) => TargetProtocol::Lambda,
    };
    let protocol_version = match g.protocol_version.as_ref().map(|v| *v.get_ref()) {
        None | Some(file::ProtocolVersion::Http1) => ProtocolVersion::Http1,
        Some(file::ProtocolVersion::Http2) => ProtocolVersion::Http2,
        Some(file::ProtocolVersion::Grpc) => ProtocolVersion::Grpc,
    };
    if let (Some(written), TargetProtocol::Lambda) = (&g.protocol_version, protocol) {
        c.error(written.span(), format!("{ctx}: protocol_version is for http and https groups, not \"lambda\""));
    }
    let algorithm = match g.algorithm.as_ref().map(|a| *a.get_ref()) {
        None | Some(file::Algorithm::RoundRobin) => Algorithm::RoundRobin,
        Some(file::Algorithm::LeastOutstandingRequests) => Algorithm::LeastOutstandingRequests,
        Some(file::Algorithm::WeightedRandom) => Algorithm::WeightedRandom,
    };
    let targets = targets(c, &ctx, protocol, &g.targets);
    let connect_timeout = c.duration(
        &ctx,
        "connect_timeout",
        g.connect_timeout.as_ref(),
        model::DEFAULT_CONNECT_TIMEOUT,
        &REQUEST_TIMEOUTS,
    );
    let tls_handshake_timeout = c.duration(
        &ctx,
        "tls_handshake_timeout",
        g.tls_handshake_timeout.as_ref(),
        model::DEFAULT_TLS_HANDSHAKE_TIMEOUT,
        &REQUEST_TIMEOUTS,
    );
    let response_timeout = c.duration(
        &ctx,
        "response_timeout",
        g.response_timeout.as_ref(),
        model::DEFAULT_RESPONSE_TIMEOUT,
        &REQUEST_TIMEOUTS,
    );
    let pool_idle_timeout = c.duration(
        &ctx,
        "pool_idle_timeout",
        g.pool_idle_timeout.as_ref(),
        model::DEFAULT_POOL_IDLE_TIMEOUT,
        &[secs(1)..=secs(4000)],
    );
    let deregistration_delay =
        c.duration(&ctx, "deregistration_delay", g.deregistration_delay.as_ref(), secs(300), &[secs(0)..=secs(3600)]);
    let retries = c.int(&ctx, "retries", g.retries.as_ref(), 1, 0..=i64::from(model::MAX_RETRIES));
    let retry_body_limit = c.int(&ctx, "retry_body_limit", g.retry_body_limit.as_ref(), 64 * 1024, 0..=1024 * 1024);
    let max_in_flight_requests =
        c.int(&ctx, "max_in_flight_requests", g.max_in_flight_requests.as_ref(), 0, 0..=1_000_000);
    let slow_start = c.duration(
        &ctx,
        "slow_start",
        g.slow_start.as_ref(),
        Duration::ZERO,
        &[secs(0)..=secs(0), secs(30)..=secs(900)],
    );
    if let (Some(written), false) = (&g.slow_start, slow_start.is_zero() || algorithm == Algorithm::RoundRobin) {
        // ALB: slow start ramps round-robin weights; the other algorithms pick by load or weight already.
        c.error(written.span(), format!("{ctx}: slow_start works only with algorithm \"round_robin\""));
    }
    let tls = match &g.tls {
        None => TargetTls { verify: true, ca: None, sni: None },
        Some(t) => {
            if protocol != TargetProtocol::Https {
                c.error(t.span(), format!("{ctx}: tls is set but protocol is not \"https\""));
            }
            let t = t.get_ref();
            TargetTls {
                verify: t.verify.unwrap_or(true),
                ca: t.ca.as_ref().map(|ca| c.path(&ctx, "tls.ca", ca)),
                sni: t.sni.as_ref().map(|sni| c.non_empty(&ctx, "tls.sni", sni)),
            }
        }
    };
    let function = match (&g.function, protocol) {
        (Some(f), TargetProtocol::Lambda) => Some(function(c, &ctx, f.get_ref())),
        (Some(f), _) => {
            c.error(f.span(), format!("{ctx}: function is set but protocol is not \"lambda\""));
            None
        }
        (None, TargetProtocol::Lambda) => {
            let span = g.protocol.as_ref().map_or(written.span(), Spanned::span);
            c.error(span, format!("{ctx}: protocol \"lambda\" needs function = {{ name = \"...\" }}"));
            None
        }
        (None, _) => None,
    };
    let health_check = health_check(c, &ctx, protocol, protocol_version, g.health_check.as_ref().map(Spanned::get_ref));
    model::TargetGroup {
        name,
        protocol,
        protocol_version,
        algorithm,
        targets,
        connect_timeout,
        tls_handshake_timeout,
        response_timeout,
        pool_idle_timeout,
        deregistration_delay,
        retries,
        retry_body_limit,
        max_in_flight_requests,
        fail_open: g.fail_open.unwrap_or(true),
        slow_start,
        tls,
        function,
        health_check,
    }
}

fn targets(
    c: &mut Checker<'_>,
    ctx: &str,
    protocol: TargetProtocol,
    written: &[Spanned<file::Target>],
) -> Vec<TargetSpec> {
    if let (Some(first), TargetProtocol::Lambda) = (written.first(), protocol) {
        c.error(first.span(), format!("{ctx}: a \"lambda\" group takes no targets; its function is the target"));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(written.len());
    for t in written {
        let (address, span, weight) = match t.get_ref() {
            file::Target::Address(a) => (a.as_str(), t.span(), 1),
            file::Target::Weighted(w) => (
                w.address.get_ref().as_str(),
                w.address.span(),
                c.int(ctx, "target weight", w.weight.as_ref(), 1, 0..=999),
            ),
        };
        match parse_target(address) {
            Ok((host, port)) => {
                let spec = TargetSpec { host, port, weight };
                if !seen.insert((spec.host.to_ascii_lowercase(), port)) {
                    c.error(span, format!("{ctx}: target {:?} is listed twice", spec.authority()));
                }
                out.push(spec);
            }
            Err(e) => c.error(span, format!("{ctx}: {e}")),
        }
    }
    out
}

fn function(c: &mut Checker<'_>, ctx: &str, f: &file::Function) -> Function {
    let name = c.non_empty(ctx, "function.name", &f.name);
    let region = f.region.as_ref().map_or_else(|| "us-east-1".to_owned(), |r| c.non_empty(ctx, "function.region", r));
    let endpoint = match &f.endpoint {
        Some(e) => {
            let url = e.get_ref();
            let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
            if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
                c.error(e.span(), format!("{ctx}: function.endpoint {url:?} is not an http:// or https:// URL"));
            }
            url.trim_end_matches('/').to_owned()
        }
        None => format!("https://lambda.{region}.amazonaws.com"),
    };
    Function { name, endpoint, region }
}
