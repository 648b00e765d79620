//! `[[alert]]` -> [`model::Alert`]: a preset filled in, exactly one trigger (`threshold` or `ratio`), the
//! hysteresis below the trigger, a window in whole seconds, cause names from the catalogue, and a webhook the
//! sender can reach (http or https, with an optional private CA). Target group names are checked with every other reference once all groups are known;
//! listener names by the caller, once all listeners are.

use std::ops::Range;
use std::str::FromStr;
use std::time::Duration;

use serde_spanned::Spanned;
use waygate_faults::{Cause, Source};

use super::check::{Checker, secs};
use crate::file;
use crate::model::{self, AlertMatch, AlertTrigger, Origin, StatusMatch, Webhook, WebhookFormat};

/// The presets a rule can start from with one line, `preset = "..."`.
const PRESETS: &[&str] = &["gateway-5xx-ratio", "target-cause-spike"];

const WINDOWS: [std::ops::RangeInclusive<Duration>; 1] = [secs(1)..=secs(3600)];
const WEBHOOK_TIMEOUTS: [std::ops::RangeInclusive<Duration>; 1] = [Duration::from_millis(100)..=secs(60)];

/// A preset's rule: what its keys mean when the file does not write them.
fn preset(name: &str) -> Option<(AlertMatch, AlertTrigger, Duration)> {
    match name {
        // ALB users' first alarm: HTTPCode_ELB_5XX_Count over RequestCount.
        "gateway-5xx-ratio" => Some((
            AlertMatch { status: Some(StatusMatch::Class(5)), origin: Origin::Gateway, ..AlertMatch::default() },
            AlertTrigger::Ratio { ratio: 0.05, min_requests: 20 },
            secs(300),
        )),
        // Gateway answers caused by a target (connect, TLS, HTTP), counted by cause in the webhook.
        "target-cause-spike" => Some((
            AlertMatch { source: Some(Source::Target), origin: Origin::Gateway, ..AlertMatch::default() },
            AlertTrigger::Count(10),
            secs(60),
        )),
        _ => None,
    }
}

/// A listener name an alert uses, checked by the caller once all listeners are known.
pub(super) struct ListenerRef {
    pub name: String,
    pub span: Range<usize>,
    pub alert: String,
}

pub(super) fn alert(
    c: &mut Checker<'_>,
    index: usize,
    written: &Spanned<file::Alert>,
    listeners: &mut Vec<ListenerRef>,
) -> model::Alert {
    let a = written.get_ref();
    let base = a.preset.as_ref().and_then(|p| match preset(p.get_ref()) {
        Some(rule) => Some(rule),
        None => {
            let known: Vec<String> = PRESETS.iter().map(|p| format!("{p:?}")).collect();
            c.error(p.span(), format!("alert: unknown preset {:?}, expected one of {}", p.get_ref(), known.join(", ")));
            None
        }
    });
    let name = match (&a.name, &a.preset) {
        (Some(n), _) => c.name("alert", n),
        (None, Some(p)) => p.get_ref().clone(),
        (None, None) => {
            c.error(written.span(), format!("alert #{}: missing key `name`", index + 1));
            format!("alert-{}", index + 1)
        }
    };
    let ctx = format!("alert {name:?}");
    let (base_when, base_trigger, base_window) = base.unzip3();
    let when = match &a.when {
        Some(w) => when(c, &ctx, w, listeners, &name),
        None => base_when.unwrap_or_default(),
    };
    let trigger = trigger(c, &ctx, a, base_trigger, written.span());
    let window = c.duration(&ctx, "window", a.window.as_ref(), base_window.unwrap_or(secs(60)), &WINDOWS);
    if window.subsec_nanos() != 0
        && let Some(w) = &a.window
    {
        c.error(w.span(), format!("{ctx}: window must be whole seconds"));
    }
    let threshold = trigger.threshold();
    let resolve_below = match &a.resolve_below {
        None => threshold / 2.0,
        Some(r) if *r.get_ref() >= 0.0 && *r.get_ref() < threshold => *r.get_ref(),
        Some(r) => {
            c.error(
                r.span(),
                format!(
                    "{ctx}: resolve_below {} must be at least 0 and below the firing value {threshold}",
                    r.get_ref()
                ),
            );
            threshold / 2.0
        }
    };
    let runbook = a.runbook.as_ref().map(|r| c.non_empty(&ctx, "runbook", r));
    model::Alert { name, when, trigger, window, resolve_below, webhook: webhook(c, &ctx, a), runbook }
}

trait Unzip3<A, B, C> {
    fn unzip3(self) -> (Option<A>, Option<B>, Option<C>);
}

impl<A, B, C> Unzip3<A, B, C> for Option<(A, B, C)> {
    fn unzip3(self) -> (Option<A>, Option<B>, Option<C>) {
        match self {
            Some((a, b, c)) => (Some(a), Some(b), Some(c)),
            None => (None, None, None),
        }
    }
}

fn trigger(
    c: &mut Checker<'_>,
    ctx: &str,
    a: &file::Alert,
    base: Option<AlertTrigger>,
    span: Range<usize>,
) -> AlertTrigger {
    let min_requests =
        |c: &mut Checker<'_>| c.int::<u64>(ctx, "min_requests", a.min_requests.as_ref(), 20, 1..=1_000_000_000);
    match (&a.threshold, &a.ratio) {
        (Some(_), Some(r)) => {
            c.error(r.span(), format!("{ctx}: set either threshold (a count) or ratio (a fraction), not both"));
            AlertTrigger::Count(1)
        }
        (Some(t), None) => {
            if let Some(m) = &a.min_requests {
                c.error(m.span(), format!("{ctx}: min_requests applies to a ratio, not to a threshold"));
            }
            AlertTrigger::Count(c.int(ctx, "threshold", Some(t), 1, 1..=1_000_000_000))
        }
        (None, Some(r)) => {
            let ratio = *r.get_ref();
            if !(ratio > 0.0 && ratio <= 1.0) {
                c.error(r.span(), format!("{ctx}: ratio {ratio} out of range (above 0, at most 1)"));
            }
            AlertTrigger::Ratio { ratio: ratio.clamp(f64::MIN_POSITIVE, 1.0), min_requests: min_requests(c) }
        }
        (None, None) => match base {
            Some(AlertTrigger::Ratio { ratio, .. }) if a.min_requests.is_some() => {
                AlertTrigger::Ratio { ratio, min_requests: min_requests(c) }
            }
            Some(t) => t,
            // An unknown preset is already reported.
            None if a.preset.is_some() => AlertTrigger::Count(1),
            None => {
                c.error(span, format!("{ctx}: missing key `threshold` (a count) or `ratio` (a fraction of requests)"));
                AlertTrigger::Count(1)
            }
        },
    }
}

fn when(
    c: &mut Checker<'_>,
    ctx: &str,
    written: &Spanned<file::AlertWhen>,
    listeners: &mut Vec<ListenerRef>,
    alert: &str,
) -> AlertMatch {
    let w = written.get_ref();
    let mut m = AlertMatch::default();
    if let Some(causes) = &w.cause {
        for n in &causes.get_ref().0 {
            // A lone string carries no span of its own: point at the `cause` value.
            let span = if n.span() == (0..0) { causes.span() } else { n.span() };
            match Cause::from_str(n.get_ref()) {
                // Refused handshakes are no exchanges, which is what alert rules count.
                Ok(cause) if cause.is_client_certificate_error() => c.error(
                    span,
                    format!(
                        "{ctx}: when.cause: {cause} refuses a TLS handshake before any request exists, so no alert \
                         rule sees it: alert on waygate_client_tls_negotiation_errors_total{{cause=\"{cause}\"}} instead"
                    ),
                ),
                Ok(cause) => m.causes.push(cause),
                Err(e) => c.error(
                    span,
                    format!("{ctx}: when.cause: {e} (names as in FAULTS.md, e.g. TargetConnectionRefused)"),
                ),
            }
        }
        if causes.get_ref().0.is_empty() {
            c.error(causes.span(), format!("{ctx}: when.cause must name at least one cause"));
        }
    }
    if let Some(s) = &w.status {
        m.status = status(&s.get_ref().0);
        if m.status.is_none() {
            c.error(
                s.span(),
                format!("{ctx}: when.status {:?} is neither a class like \"5xx\" nor a code 100-599", s.get_ref().0),
            );
        }
    }
    m.source = w.source.as_ref().map(|s| match s.get_ref() {
        file::CauseSource::Client => Source::Client,
        file::CauseSource::Gateway => Source::Gateway,
        file::CauseSource::Target => Source::Target,
        file::CauseSource::Function => Source::Function,
    });
    m.target_group = w.target_group.as_ref().map(|g| c.reference(format!("{ctx}: when.target_group"), g));
    if let Some(l) = &w.listener {
        listeners.push(ListenerRef { name: l.get_ref().clone(), span: l.span(), alert: alert.to_owned() });
        m.listener = Some(l.get_ref().clone());
    }
    m.origin = match (w.elb_only.unwrap_or(false), w.target_only.unwrap_or(false)) {
        (true, true) => {
            c.error(written.span(), format!("{ctx}: when: elb_only and target_only exclude each other"));
            Origin::Any
        }
        (true, false) => Origin::Gateway,
        (false, true) => Origin::Target,
        (false, false) => Origin::Any,
    };
    m
}

/// `"5xx"` or `"502"`.
fn status(text: &str) -> Option<StatusMatch> {
    let b = text.as_bytes();
    if b.len() == 3 && b[1..].eq_ignore_ascii_case(b"xx") && (b'1'..=b'5').contains(&b[0]) {
        return Some(StatusMatch::Class(u16::from(b[0] - b'0')));
    }
    text.parse::<u16>().ok().filter(|c| (100..=599).contains(c)).map(StatusMatch::Code)
}

fn webhook(c: &mut Checker<'_>, ctx: &str, a: &file::Alert) -> Option<Webhook> {
    let Some(url) = &a.webhook else {
        for (key, span) in [
            ("webhook_format", a.webhook_format.as_ref().map(Spanned::span)),
            ("webhook_timeout", a.webhook_timeout.as_ref().map(Spanned::span)),
            ("webhook_retries", a.webhook_retries.as_ref().map(Spanned::span)),
            ("webhook_ca", a.webhook_ca.as_ref().map(Spanned::span)),
        ] {
            if let Some(span) = span {
                c.error(span, format!("{ctx}: {key} needs a webhook"));
            }
        }
        return None;
    };
    if let Err(e) = check_url(url.get_ref()) {
        c.error(url.span(), format!("{ctx}: webhook {:?}: {e}", url.get_ref()));
    }
    let format = match a.webhook_format.as_ref().map(|f| *f.get_ref()) {
        None | Some(file::WebhookFormat::Waygate) => WebhookFormat::Waygate,
        Some(file::WebhookFormat::Slack) => WebhookFormat::Slack,
    };
    let timeout = c.duration(ctx, "webhook_timeout", a.webhook_timeout.as_ref(), secs(5), &WEBHOOK_TIMEOUTS);
    let retries = c.int(ctx, "webhook_retries", a.webhook_retries.as_ref(), 3, 0..=10);
    let ca = a.webhook_ca.as_ref().map(|ca| {
        if !url.get_ref().starts_with("https://") {
            c.error(ca.span(), format!("{ctx}: webhook_ca applies to an https webhook"));
        }
        c.path(ctx, "webhook_ca", ca)
    });
    Some(Webhook { url: url.get_ref().clone(), ca, format, timeout, retries })
}

/// `http://host[:port][/path]` or `https://...`: what the sender speaks (HTTP/1.1, over TLS for https).
pub(super) fn check_url(url: &str) -> Result<(), String> {
    let Some(rest) = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")) else {
        return Err("must start with http:// or https://".to_owned());
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') || authority.chars().any(char::is_whitespace) {
        return Err("needs a host (and no user info or spaces)".to_owned());
    }
    // `[v6]:port` or `host:port`; the port is optional (80).
    let port = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map(|(_, after)| after.strip_prefix(':')),
        None => Some(authority.rsplit_once(':').map(|(_, p)| p)),
    };
    match port {
        None => return Err("has an unclosed [ in the host".to_owned()),
        Some(Some(port)) if port.parse::<u16>().map_or(true, |p| p == 0) => {
            return Err(format!("port {port:?} is not 1-65535"));
        }
        _ => {}
    }
    if url.chars().any(|ch| ch.is_control() || ch == ' ') {
        return Err("contains spaces or control characters".to_owned());
    }
    Ok(())
}
