//! `[tracing]` -> [`model::Tracing`]: an OTLP/HTTP endpoint the exporter can reach (http, or https with an
//! optional private CA, read as PEM certificates when files are checked), `/v1/traces` appended to a base URL as OTLP/HTTP prescribes, a ratio within 0-1,
//! collector headers that are valid HTTP fields and not ones the exporter writes itself, and queue and batch
//! bounds.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::alert::check_url;
use super::check::{Checker, secs};
use crate::file;
use crate::model;

const BATCH_DELAYS: [RangeInclusive<Duration>; 1] = [Duration::from_millis(1)..=secs(60)];
const EXPORT_TIMEOUTS: [RangeInclusive<Duration>; 1] = [Duration::from_millis(100)..=secs(60)];

/// Fields the exporter sets on every request: a collector header may not replace them.
const OWN_FIELDS: &[&str] = &["host", "content-type", "content-length", "transfer-encoding", "connection", "te"];

const CTX: &str = "[tracing]";

pub(super) fn tracing(c: &mut Checker<'_>, t: &file::Tracing) -> model::Tracing {
    let url = &t.otlp_endpoint;
    if let Err(e) = check_url(url.get_ref()) {
        c.error(url.span(), format!("{CTX}: otlp_endpoint {:?}: {e}", url.get_ref()));
    }
    let https = url.get_ref().starts_with("https://");
    let sample_ratio = match &t.sample_ratio {
        None => model::Tracing::SAMPLE_RATIO,
        Some(r) if (0.0..=1.0).contains(r.get_ref()) => *r.get_ref(),
        Some(r) => {
            c.error(r.span(), format!("{CTX}: sample_ratio {} out of range (0 to 1)", r.get_ref()));
            model::Tracing::SAMPLE_RATIO
        }
    };
    let service_name =
        t.service_name.as_ref().map_or_else(|| "waygate".to_owned(), |n| c.non_empty(CTX, "service_name", n));
    let mut headers = Vec::new();
    if let Some(written) = &t.headers {
        for (name, value) in written.get_ref() {
            let lower = name.to_ascii_lowercase();
            // Keys carry no span of their own here: the value, on the same line, is pointed at.
            let problem = if !is_token(name) {
                Some("is not a valid HTTP field name")
            } else if OWN_FIELDS.contains(&lower.as_str()) {
                Some("is set by the exporter itself")
            } else if headers.iter().any(|(n, _)| *n == lower) {
                Some("is written twice (names ignore case)")
            } else if !is_field_value(value.get_ref()) {
                Some("has a value with control characters")
            } else {
                None
            };
            if let Some(problem) = problem {
                c.error(value.span(), format!("{CTX}: headers: {name:?} {problem}"));
            }
            headers.push((lower, value.get_ref().trim().to_owned()));
        }
    }
    let ca = t.ca.as_ref().map(|ca| {
        if !https {
            c.error(ca.span(), format!("{CTX}: ca applies to an https otlp_endpoint"));
        }
        let path = c.path(CTX, "ca", ca);
        // Read as the exporter will (check-config, start, reload): certificates in PEM.
        if c.files
            && let Err(reason) = crate::tls_files::read_certificates(&path)
        {
            c.error(ca.span(), format!("{CTX}: ca: {reason}"));
        }
        path
    });
    let max_queue = c.int(CTX, "max_queue", t.max_queue.as_ref(), 2048, 1..=1_000_000);
    let max_batch = c.int(CTX, "max_batch", t.max_batch.as_ref(), 512, 1..=100_000);
    let batch_delay = c.duration(CTX, "batch_delay", t.batch_delay.as_ref(), secs(5), &BATCH_DELAYS);
    let export_timeout = c.duration(CTX, "export_timeout", t.export_timeout.as_ref(), secs(10), &EXPORT_TIMEOUTS);
    model::Tracing {
        otlp_endpoint: traces_url(url.get_ref()),
        sample_ratio,
        service_name,
        headers,
        ca,
        max_queue,
        max_batch,
        batch_delay,
        export_timeout,
    }
}

/// The URL spans are POSTed to: a base URL (no path, or only `/`) gets OTLP/HTTP's `/v1/traces`; a URL with a
/// path is used as written (a collector behind a path prefix).
fn traces_url(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = rest.find(['/', '?']).map_or("", |i| &rest[i..]);
    if path.is_empty() || path == "/" { format!("{}/v1/traces", url.trim_end_matches('/')) } else { url.to_owned() }
}

/// RFC 9110 §5.6.2: a field name is a token.
fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// RFC 9110 §5.5: visible characters, spaces and tabs (obs-text aside).
fn is_field_value(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn a_base_url_gets_the_traces_path() {
        assert_eq!(traces_url("http://127.0.0.1:4318"), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(traces_url("http://127.0.0.1:4318/"), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(traces_url("https://otlp.example/otlp/v1/traces"), "https://otlp.example/otlp/v1/traces");
        assert_eq!(traces_url("http://[::1]:4318/custom"), "http://[::1]:4318/custom");
    }
}
