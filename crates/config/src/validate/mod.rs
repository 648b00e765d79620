//! [`File`] -> [`Config`]: fills defaults, checks every value against ALB's ranges, and checks what spans
//! sections: unique listener names and binds, unique target group names, and that every target group a
//! listener names exists, the `[[alert]]` rules (unique names, groups and listeners that exist), and `[tracing]`. Every problem is collected; the model is returned only when there are none.

mod address;
mod alert;
mod check;
mod health;
mod listener;
mod listener_tls;
mod target_group;
mod tracing;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;

use check::Checker;
use serde_spanned::Spanned;

use crate::decode::Decoded;
use crate::error::Diag;
use crate::file::{self, File};
use crate::model::{AccessLog, Admin, Config, ConnectionLog, ErrorProfile, Errors, LogFormat};

pub(crate) use address::{parse_bind, parse_target};

/// Validates a decoded file; `base` is the directory relative paths are resolved against. `files`: read the
/// files TLS names too.
pub(crate) fn validate(decoded: &Decoded, base: &Path, files: bool, diags: &mut Vec<Diag>) -> Config {
    let mut c = Checker { diags, base, references: Vec::new(), files };
    let file: &File = &decoded.file;
    let (admin, admin_bind_span) = admin(&mut c, file.admin.as_ref());
    let access_log = file.access_log.as_ref().and_then(|a| access_log(&mut c, a));
    let errors = errors(file.errors.as_ref());
    let connection_log = file.connection_log.as_ref().and_then(|l| {
        let dir = l.dir.as_ref()?;
        Some(ConnectionLog { dir: c.path("[connection_log]", "dir", dir) })
    });
    let tracing = file.tracing.as_ref().map(|t| tracing::tracing(&mut c, t));

    let checked: Vec<_> = file.listener.iter().enumerate().map(|(i, l)| listener::listener(&mut c, i, l)).collect();
    let mut names = HashSet::new();
    let mut binds: Vec<(SocketAddr, String)> = Vec::new();
    if admin_bind_span.is_some() || file.admin.as_ref().is_none_or(|a| a.bind.is_none()) {
        binds.push((admin.bind, "[admin]".to_owned()));
    }
    for l in &checked {
        let name = &l.listener.name;
        if !names.insert(name.clone()) {
            c.error(l.name_span.clone(), format!("listener {name:?}: another listener has this name"));
        }
        if !l.bind_ok {
            continue;
        }
        let bind = l.listener.bind;
        match binds.iter().find(|(other, _)| address::binds_conflict(bind, *other)) {
            Some((other, by)) => {
                c.error(l.bind_span.clone(), format!("listener {name:?}: bind {bind} conflicts with {other} of {by}"));
            }
            None => binds.push((bind, format!("listener {name:?}"))),
        }
    }
    if checked.is_empty() && decoded.listeners_written == 0 {
        c.diags.push(Diag::file("no [[listener]] is defined; at least one listener is required"));
    }

    let mut groups = Vec::with_capacity(file.target_group.len());
    let mut group_names = HashSet::new();
    for g in &file.target_group {
        let group = target_group::target_group(&mut c, g);
        if !group_names.insert(group.name.clone()) {
            c.error(
                g.get_ref().name.span(),
                format!("target_group {:?}: another target group has this name", group.name),
            );
        }
        groups.push(group);
    }
    let mut listener_refs = Vec::new();
    let mut alerts: Vec<crate::model::Alert> = Vec::with_capacity(file.alert.len());
    for (i, a) in file.alert.iter().enumerate() {
        let rule = alert::alert(&mut c, i, a, &mut listener_refs);
        if alerts.iter().any(|other| other.name == rule.name) {
            let span = a.get_ref().name.as_ref().map_or(a.span(), Spanned::span);
            c.error(span, format!("alert {:?}: another alert has this name", rule.name));
        }
        alerts.push(rule);
    }
    for r in listener_refs {
        if !checked.iter().any(|l| l.listener.name == r.name) {
            c.error(r.span, format!("alert {:?}: when.listener {:?} is not defined", r.alert, r.name));
        }
    }
    for r in std::mem::take(&mut c.references) {
        if !group_names.contains(&r.name) && !decoded.undecoded_groups.contains(&r.name) {
            c.error(r.span, format!("{} {:?} is not defined", r.what, r.name));
        }
    }

    Config {
        admin,
        access_log,
        errors,
        listeners: checked.into_iter().map(|l| l.listener).collect(),
        target_groups: groups,
        alerts,
        connection_log,
        tracing,
    }
}

/// `[admin]`, and the bind's span when it was written and valid.
fn admin(c: &mut Checker<'_>, written: Option<&file::Admin>) -> (Admin, Option<std::ops::Range<usize>>) {
    let default_bind = SocketAddr::from(([127, 0, 0, 1], 9901));
    let Some(a) = written else {
        return (Admin { bind: default_bind, token_file: None, flight_recorder: Admin::FLIGHT_RECORDER }, None);
    };
    let token_file = a.token_file.as_ref().map(|t| c.path("[admin]", "token_file", t));
    let flight_recorder =
        c.int("[admin]", "flight_recorder", a.flight_recorder.as_ref(), Admin::FLIGHT_RECORDER, 0..=100_000);
    let Some(bind_written) = &a.bind else {
        return (Admin { bind: default_bind, token_file, flight_recorder }, None);
    };
    match parse_bind(bind_written.get_ref()) {
        Ok(bind) => {
            if !bind.ip().is_loopback() && token_file.is_none() {
                c.error(
                    bind_written.span(),
                    format!("[admin]: bind {bind} is not a loopback address, so token_file is required"),
                );
            }
            (Admin { bind, token_file, flight_recorder }, Some(bind_written.span()))
        }
        Err(e) => {
            c.error(bind_written.span(), format!("[admin]: bind {e}"));
            (Admin { bind: default_bind, token_file, flight_recorder }, None)
        }
    }
}

fn access_log(c: &mut Checker<'_>, a: &file::AccessLog) -> Option<AccessLog> {
    let dir = c.path("[access_log]", "dir", a.dir.as_ref()?);
    let format = match a.format {
        None | Some(file::LogFormat::Alb) => LogFormat::Alb,
        Some(file::LogFormat::Json) => LogFormat::Json,
    };
    Some(AccessLog { dir, format, gzip: a.gzip.unwrap_or(false) })
}

fn errors(e: Option<&file::Errors>) -> Errors {
    let profile = match e.and_then(|e| e.profile) {
        None | Some(file::Profile::Alb) => ErrorProfile::Alb,
        Some(file::Profile::Apigee) => ErrorProfile::Apigee,
        Some(file::Profile::Problem) => ErrorProfile::Problem,
    };
    Errors { profile, expose_details: e.and_then(|e| e.expose_details).unwrap_or(false) }
}
