//! `[target_group.health_check]` -> [`HealthCheck`]: ALB's ranges (interval 5-300 s, timeout 2-120 s and
//! shorter than the interval, thresholds 2-10) and the status matcher (`"200-299,302"`, codes 200-499). A gRPC
//! group's check is ALB's gRPC one: path `/AWS.ALB/healthcheck` and matcher `"12"` by default, codes 0-99.

use serde_spanned::Spanned;

use super::check::{Checker, secs};
use crate::duration::format_duration;
use crate::file;
use crate::model::{HealthCheck, HealthProtocol, ProtocolVersion, TargetProtocol};

/// ALB's defaults for a gRPC group's health check.
const GRPC_PATH: &str = "/AWS.ALB/healthcheck";
const GRPC_MATCHER: (u16, u16) = (12, 12);

pub(super) fn health_check(
    c: &mut Checker<'_>,
    group_ctx: &str,
    group_protocol: TargetProtocol,
    version: ProtocolVersion,
    written: Option<&file::HealthCheck>,
) -> HealthCheck {
    let grpc = version == ProtocolVersion::Grpc;
    let default = file::HealthCheck::default();
    let h = written.unwrap_or(&default);
    let ctx = format!("{group_ctx}: health_check");
    let protocol = match (h.protocol.as_ref().map(|p| *p.get_ref()), group_protocol) {
        (Some(file::HealthProtocol::Http), _) | (None, TargetProtocol::Http | TargetProtocol::Lambda) => {
            HealthProtocol::Http
        }
        (Some(file::HealthProtocol::Https), _) | (None, TargetProtocol::Https) => HealthProtocol::Https,
        (Some(file::HealthProtocol::Tcp), _) => HealthProtocol::Tcp,
    };
    let path = match &h.path {
        Some(p) if !p.get_ref().starts_with('/') || p.get_ref().chars().any(char::is_whitespace) => {
            c.error(p.span(), format!("{ctx}: path {:?} must start with '/' and contain no spaces", p.get_ref()));
            "/".to_owned()
        }
        Some(p) => p.get_ref().clone(),
        None if grpc => GRPC_PATH.to_owned(),
        None => "/".to_owned(),
    };
    let port = h.port.as_ref().map(|p| c.int(&ctx, "port", Some(p), 80, 1..=65535));
    let interval = c.duration(&ctx, "interval", h.interval.as_ref(), secs(30), &[secs(5)..=secs(300)]);
    let timeout = c.duration(&ctx, "timeout", h.timeout.as_ref(), secs(5), &[secs(2)..=secs(120)]);
    if timeout >= interval {
        let span = h.timeout.as_ref().or(h.interval.as_ref()).map(Spanned::span);
        let msg = format!(
            "{ctx}: timeout ({}) must be less than interval ({})",
            format_duration(timeout),
            format_duration(interval)
        );
        c.error(span.unwrap_or(0..0), msg);
    }
    let healthy_threshold = c.int(&ctx, "healthy_threshold", h.healthy_threshold.as_ref(), 5, 2..=10);
    let unhealthy_threshold = c.int(&ctx, "unhealthy_threshold", h.unhealthy_threshold.as_ref(), 2, 2..=10);
    let (default, codes) = if grpc { (GRPC_MATCHER, GRPC_CODES) } else { ((200, 200), HTTP_CODES) };
    let matcher = match &h.matcher {
        None => vec![default],
        Some(m) => parse_matcher(m.get_ref(), codes).unwrap_or_else(|e| {
            c.error(m.span(), format!("{ctx}: matcher {:?}: {e}", m.get_ref()));
            vec![default]
        }),
    };
    if let (true, Some(p @ file::HealthProtocol::Tcp)) = (grpc, h.protocol.as_ref().map(|p| *p.get_ref())) {
        let span = h.protocol.as_ref().map_or(0..0, Spanned::span);
        c.error(span, format!("{ctx}: protocol {p:?} cannot carry a gRPC health check; leave it out"));
    }
    HealthCheck {
        enabled: h.enabled.unwrap_or(true),
        protocol,
        path,
        port,
        interval,
        timeout,
        healthy_threshold,
        unhealthy_threshold,
        matcher,
        grpc: grpc && protocol != HealthProtocol::Tcp,
    }
}

/// What a matcher's codes may be: HTTP statuses, or gRPC status codes (ALB's `GrpcCode`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Codes {
    what: &'static str,
    range: (u16, u16),
}

pub(crate) const HTTP_CODES: Codes = Codes { what: "status code", range: (200, 499) };
const GRPC_CODES: Codes = Codes { what: "gRPC status code", range: (0, 99) };

/// `"200"`, `"200-299,302"`: inclusive ranges of codes, each within `codes`' range.
pub(crate) fn parse_matcher(s: &str, codes: Codes) -> Result<Vec<(u16, u16)>, String> {
    let (low, high) = codes.range;
    let code = |t: &str| -> Result<u16, String> {
        let t = t.trim();
        match t.parse::<u16>() {
            Ok(n) if (low..=high).contains(&n) => Ok(n),
            Ok(_) => Err(format!("code {t} is outside {low}-{high}")),
            Err(_) => Err(format!("{t:?} is not a {}", codes.what)),
        }
    };
    s.split(',')
        .map(|part| {
            let (low, high) = match part.split_once('-') {
                Some((l, h)) => (code(l)?, code(h)?),
                None => {
                    let c = code(part)?;
                    (c, c)
                }
            };
            if low > high {
                return Err(format!("range {}-{} has its low end above its high end", low, high));
            }
            Ok((low, high))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{GRPC_CODES, HTTP_CODES, parse_matcher};

    #[test]
    fn matchers() {
        let http = |s| parse_matcher(s, HTTP_CODES);
        assert_eq!(http("200"), Ok(vec![(200, 200)]));
        assert_eq!(http("200-299,302"), Ok(vec![(200, 299), (302, 302)]));
        assert_eq!(http(" 200 - 204 , 499"), Ok(vec![(200, 204), (499, 499)]));
        for bad in ["", "199", "500", "200-", "-200", "299-200", "200,,302", "abc", "200-299-300"] {
            assert!(http(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn grpc_matchers_take_grpc_codes() {
        let grpc = |s| parse_matcher(s, GRPC_CODES);
        assert_eq!(grpc("0-1,12"), Ok(vec![(0, 1), (12, 12)]));
        assert_eq!(grpc("99"), Ok(vec![(99, 99)]));
        assert_eq!(grpc("200"), Err("code 200 is outside 0-99".to_owned()));
    }
}
