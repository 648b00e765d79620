//! `[target_group.health_check]` -> [`HealthCheck`]: ALB's ranges (interval 5-300 s, timeout 2-120 s and
//! shorter than the interval, thresholds 2-10) and the status matcher (`"200-299,302"`, codes 200-499).

use serde_spanned::Spanned;

use super::check::{Checker, secs};
use crate::duration::format_duration;
use crate::file;
use crate::model::{HealthCheck, HealthProtocol, TargetProtocol};

pub(super) fn health_check(
    c: &mut Checker<'_>,
    group_ctx: &str,
    group_protocol: TargetProtocol,
    written: Option<&file::HealthCheck>,
) -> HealthCheck {
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
    let matcher = match &h.matcher {
        None => vec![(200, 200)],
        Some(m) => parse_matcher(m.get_ref()).unwrap_or_else(|e| {
            c.error(m.span(), format!("{ctx}: matcher {:?}: {e}", m.get_ref()));
            vec![(200, 200)]
        }),
    };
    HealthCheck {
        // ALB: health checks of a Lambda target group are off unless enabled.
        enabled: h.enabled.unwrap_or(group_protocol != TargetProtocol::Lambda),
        protocol,
        path,
        port,
        interval,
        timeout,
        healthy_threshold,
        unhealthy_threshold,
        matcher,
    }
}

/// `"200"`, `"200-299,302"`: inclusive ranges of status codes, each within 200-499.
pub(crate) fn parse_matcher(s: &str) -> Result<Vec<(u16, u16)>, String> {
    let code = |t: &str| -> Result<u16, String> {
        let t = t.trim();
        match t.parse::<u16>() {
            Ok(n @ 200..=499) => Ok(n),
            Ok(_) => Err(format!("code {t} is outside 200-499")),
            Err(_) => Err(format!("{t:?} is not a status code")),
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
    use super::parse_matcher;

    #[test]
    fn matchers() {
        assert_eq!(parse_matcher("200"), Ok(vec![(200, 200)]));
        assert_eq!(parse_matcher("200-299,302"), Ok(vec![(200, 299), (302, 302)]));
        assert_eq!(parse_matcher(" 200 - 204 , 499"), Ok(vec![(200, 204), (499, 499)]));
        for bad in ["", "199", "500", "200-", "-200", "299-200", "200,,302", "abc", "200-299-300"] {
            assert!(parse_matcher(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
