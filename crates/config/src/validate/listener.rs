//! `[[listener]]` and its `[[listener.rule]]`s -> [`model::Listener`]: binds, protocol/TLS consistency,
//! ALB's timeout ranges, one default action at most, rule priorities unique and sorted.

use std::collections::HashSet;

use serde_spanned::Spanned;

use super::address::parse_bind;
use super::check::{Checker, secs};
use crate::file;
use crate::model::{self, Action, DesyncMode, FixedResponse, ListenerProtocol, Rule};

/// A validated listener and where its name and bind were written (for the cross-listener checks).
pub(super) struct Checked {
    pub listener: model::Listener,
    /// Span of the name, or of the bind when the name is defaulted.
    pub name_span: std::ops::Range<usize>,
    pub bind_span: std::ops::Range<usize>,
    /// The bind parsed (`None` when invalid: no conflict checks then).
    pub bind_ok: bool,
}

pub(super) fn listener(c: &mut Checker<'_>, index: usize, written: &Spanned<file::Listener>) -> Checked {
    let l = written.get_ref();
    let (name, name_span) = match &l.name {
        Some(n) => (c.name(&format!("listener #{}", index + 1), n), n.span()),
        None => (format!("listener-{}", index + 1), l.bind.span()),
    };
    let ctx = format!("listener {name:?}");
    let bind = parse_bind(l.bind.get_ref()).map_err(|e| c.error(l.bind.span(), format!("{ctx}: bind {e}")));
    let protocol = match l.protocol.as_ref().map(|p| *p.get_ref()) {
        None | Some(file::ListenerProtocol::Http) => ListenerProtocol::Http,
        Some(file::ListenerProtocol::Https) => ListenerProtocol::Https,
    };
    let tls = match (&l.tls, protocol, &l.protocol) {
        (Some(tls), ListenerProtocol::Https, _) => Some(super::listener_tls::listener_tls(c, &ctx, tls)),
        (None, ListenerProtocol::Https, Some(p)) => {
            c.error(p.span(), format!("{ctx}: protocol \"https\" needs tls = {{ cert = \"...\", key = \"...\" }}"));
            None
        }
        (Some(tls), ListenerProtocol::Http, _) => {
            c.error(tls.span(), format!("{ctx}: tls is set but protocol is \"http\"; set protocol = \"https\""));
            None
        }
        _ => None,
    };
    let idle_timeout = c.duration(&ctx, "idle_timeout", l.idle_timeout.as_ref(), secs(60), &[secs(1)..=secs(4000)]);
    let client_keep_alive =
        c.duration(&ctx, "client_keep_alive", l.client_keep_alive.as_ref(), secs(3600), &[secs(60)..=secs(604_800)]);
    let request_header_timeout = c.duration(
        &ctx,
        "request_header_timeout",
        l.request_header_timeout.as_ref(),
        secs(60),
        &[secs(1)..=secs(4000)],
    );
    let desync_mitigation = match l.desync_mitigation {
        Some(file::DesyncMode::Monitor) => DesyncMode::Monitor,
        None | Some(file::DesyncMode::Defensive) => DesyncMode::Defensive,
        Some(file::DesyncMode::Strictest) => DesyncMode::Strictest,
    };
    let default_action = match (&l.default_target_group, &l.default_fixed_response) {
        (Some(_), Some(fixed)) => {
            c.error(fixed.span(), format!("{ctx}: set default_target_group or default_fixed_response, not both"));
            None
        }
        (Some(group), None) => Some(Action::Forward(c.reference(format!("{ctx}: default_target_group"), group))),
        (None, Some(fixed)) => Some(Action::FixedResponse(fixed_response(c, &ctx, "default_fixed_response", fixed))),
        (None, None) => None,
    };
    let mut seen = HashSet::new();
    let mut rules = Vec::with_capacity(l.rule.len());
    for r in &l.rule {
        if let Some(rule) = rule(c, &ctx, r) {
            if !seen.insert(rule.priority) {
                let msg = format!("{ctx}: rule priority {} is used by another rule of this listener", rule.priority);
                c.error(r.get_ref().priority.span(), msg);
            }
            rules.push(rule);
        }
    }
    rules.sort_by_key(|r| r.priority);
    let listener = model::Listener {
        name,
        bind: bind.unwrap_or_else(|()| std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
        protocol,
        tls,
        idle_timeout,
        client_keep_alive,
        request_header_timeout,
        desync_mitigation,
        rules,
        default_action,
    };
    Checked { listener, name_span, bind_span: l.bind.span(), bind_ok: bind.is_ok() }
}

/// One rule; `None` when its priority or action is unusable (already reported).
fn rule(c: &mut Checker<'_>, listener_ctx: &str, written: &Spanned<file::Rule>) -> Option<Rule> {
    let r = written.get_ref();
    let priority_written = *r.priority.get_ref();
    let ctx = format!("{listener_ctx}: rule priority {priority_written}");
    let priority: u32 = c.int(listener_ctx, "rule priority", Some(&r.priority), 0, 1..=50_000);
    let host = r.host.as_ref().map(|h| host_pattern(c, &ctx, h));
    let path = r.path.as_ref().map(|p| path_pattern(c, &ctx, p));
    let action = match (&r.target_group, &r.fixed_response) {
        (Some(group), None) => Some(Action::Forward(c.reference(format!("{ctx}: target_group"), group))),
        (None, Some(fixed)) => Some(Action::FixedResponse(fixed_response(c, &ctx, "fixed_response", fixed))),
        (Some(_), Some(fixed)) => {
            c.error(fixed.span(), format!("{ctx}: set target_group or fixed_response, not both"));
            None
        }
        (None, None) => {
            c.error(written.span(), format!("{ctx}: needs an action: target_group or fixed_response"));
            None
        }
    };
    match (priority, action) {
        (1.., Some(action)) => Some(Rule { priority, host, path, action }),
        _ => None,
    }
}

fn fixed_response(c: &mut Checker<'_>, ctx: &str, key: &str, written: &Spanned<file::FixedResponse>) -> FixedResponse {
    let f = written.get_ref();
    let status = c.int(ctx, &format!("{key} status"), Some(&f.status), 503, 200..=599);
    let content_type = match &f.content_type {
        Some(t) => c.non_empty(ctx, &format!("{key} content_type"), t),
        None => "text/plain; charset=utf-8".to_owned(),
    };
    FixedResponse { status, body: f.body.clone().unwrap_or_default(), content_type }
}

/// ALB host conditions: up to 128 of letters, digits, `-`, `.`, `*`, `?` (and `_`, seen in internal names).
fn host_pattern(c: &mut Checker<'_>, ctx: &str, written: &Spanned<String>) -> String {
    let h = written.get_ref();
    let ok = !h.is_empty()
        && h.len() <= 128
        && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'*' | b'?' | b'_'));
    if !ok {
        c.error(
            written.span(),
            format!("{ctx}: host {h:?} is invalid: use up to 128 letters, digits, '-', '.', '*' or '?' (no port)"),
        );
    }
    h.clone()
}

/// ALB path conditions: up to 128 characters, starting with `/` (or a wildcard), no spaces.
fn path_pattern(c: &mut Checker<'_>, ctx: &str, written: &Spanned<String>) -> String {
    let p = written.get_ref();
    let ok = (p.starts_with('/') || p.starts_with('*') || p.starts_with('?'))
        && p.len() <= 128
        && !p.chars().any(char::is_whitespace);
    if !ok {
        c.error(
            written.span(),
            format!("{ctx}: path {p:?} is invalid: it starts with '/', has no spaces and is at most 128 characters"),
        );
    }
    p.clone()
}
