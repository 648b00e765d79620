//! Target registrations (ALB §6): which targets are registered in each group, and which are draining. The
//! config file and the admin API both change registrations: a reload applies the file's own changes (targets
//! added to or removed from the file since the last load) on top of what the API did, so a reload never
//! silently undoes an operator's register or deregister. A target that leaves drains ([`super::drain`]): it
//! takes no new requests, its in-flight ones continue, and when `deregistration_delay` elapses the rest are
//! aborted (502 TargetDeregistered) and its connections closed; draining ends early when nothing is in flight.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use waygate_config::{Config, TargetSpec};

use crate::audit::{Action, AuditLog};
use crate::lock;
use crate::target::Target;
use crate::target::lifecycle::DrainInfo;

/// A target that is draining, with the group it left.
#[derive(Debug, Clone)]
pub struct Draining {
    pub group: String,
    pub target: Arc<Target>,
}

/// The registered targets of one group: the config file's list as last loaded, and the list in force.
#[derive(Debug, Clone, Default)]
struct Members {
    file: Vec<TargetSpec>,
    registered: Vec<TargetSpec>,
}

/// Why a control-plane request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// No such target group (404).
    UnknownGroup(String),
    /// The target is not registered in the group (404).
    NotRegistered { group: String, target: String },
    /// The request itself is wrong (400): the message says what and where.
    Invalid(String),
    /// The change could not be applied (a certificate or CA file that cannot be read...).
    Failed(String),
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlError::UnknownGroup(g) => write!(f, "no target group named {g:?}"),
            ControlError::NotRegistered { group, target } => {
                write!(f, "target {target} is not registered in target group {group:?}")
            }
            ControlError::Invalid(m) | ControlError::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ControlError {}

/// Registrations of every group, the targets draining, and the audit log.
#[derive(Debug, Default)]
pub struct Registry {
    members: Mutex<HashMap<String, Members>>,
    pub(super) draining: Mutex<Vec<Draining>>,
    pub audit: Arc<AuditLog>,
}

fn same_target(a: &TargetSpec, b: &TargetSpec) -> bool {
    a.host.eq_ignore_ascii_case(&b.host) && a.port == b.port
}

/// A registration change a config load makes, for the audit log.
#[derive(Debug, PartialEq, Eq)]
pub struct Change {
    pub action: Action,
    pub group: String,
    pub target: String,
}

impl Registry {
    /// The configuration with each group's targets replaced by the registered ones, applying the file's own
    /// changes since its last load; returns it with the registrations it would make and the changes. Nothing
    /// is stored until [`Registry::commit`].
    pub fn plan_load(&self, mut config: Config) -> (Config, Registrations, Vec<Change>) {
        let members = lock(&self.members);
        let mut next = Registrations::default();
        let mut changes = Vec::new();
        for group in &mut config.target_groups {
            let file = group.targets.clone();
            let registered = match members.get(&group.name) {
                // A group new to the gateway (all of them at startup): its file targets are registered.
                None => {
                    changes.extend(file.iter().map(|t| Change {
                        action: Action::Register,
                        group: group.name.clone(),
                        target: t.authority(),
                    }));
                    file.clone()
                }
                Some(old) => {
                    let mut list: Vec<TargetSpec> = old
                        .registered
                        .iter()
                        .filter(|t| {
                            let dropped =
                                old.file.iter().any(|f| same_target(f, t)) && !file.iter().any(|f| same_target(f, t));
                            if dropped {
                                changes.push(Change {
                                    action: Action::Deregister,
                                    group: group.name.clone(),
                                    target: t.authority(),
                                });
                            }
                            !dropped
                        })
                        .cloned()
                        .collect();
                    for f in &file {
                        match list.iter_mut().find(|t| same_target(t, f)) {
                            // The file's weight wins for a target it lists.
                            Some(t) => t.weight = f.weight,
                            None if !old.file.iter().any(|o| same_target(o, f)) => {
                                changes.push(Change {
                                    action: Action::Register,
                                    group: group.name.clone(),
                                    target: f.authority(),
                                });
                                list.push(f.clone());
                            }
                            // Listed in the file before and now, but deregistered through the API: stays out.
                            None => {}
                        }
                    }
                    list
                }
            };
            group.targets = registered.clone();
            next.0.insert(group.name.clone(), Members { file, registered });
        }
        for (name, old) in members.iter() {
            if !next.0.contains_key(name) {
                for t in &old.registered {
                    changes.push(Change { action: Action::Deregister, group: name.clone(), target: t.authority() });
                }
            }
        }
        (config, next, changes)
    }

    /// Stores the registrations of a configuration now in force.
    pub fn commit(&self, next: Registrations) {
        *lock(&self.members) = next.0;
    }

    /// The configuration in force with `targets` added to `group` (those already registered are left as they
    /// are); returns it with the new registrations and the targets actually added.
    pub fn plan_register(
        &self,
        mut config: Config,
        group: &str,
        targets: &[TargetSpec],
    ) -> Result<(Config, Registrations, Vec<TargetSpec>), ControlError> {
        let members = lock(&self.members);
        let mut next = Registrations(members.clone());
        let entry = next.0.get_mut(group).ok_or_else(|| ControlError::UnknownGroup(group.to_owned()))?;
        let tg = config.target_groups.iter_mut().find(|g| g.name == group);
        let Some(tg) = tg else { return Err(ControlError::UnknownGroup(group.to_owned())) };
        if tg.protocol == waygate_config::TargetProtocol::Lambda {
            return Err(ControlError::Invalid(format!(
                "target group {group:?} is a lambda group: its function is the target"
            )));
        }
        let mut added = Vec::new();
        for t in targets {
            if !entry.registered.iter().any(|r| same_target(r, t)) && !added.iter().any(|a| same_target(a, t)) {
                entry.registered.push(t.clone());
                added.push(t.clone());
            }
        }
        tg.targets = entry.registered.clone();
        Ok((config, next, added))
    }

    /// The configuration in force with `target` (`host:port`) taken out of `group`.
    pub fn plan_deregister(
        &self,
        mut config: Config,
        group: &str,
        target: &str,
    ) -> Result<(Config, Registrations, TargetSpec), ControlError> {
        let (host, port) = waygate_config::parse_target_address(target).map_err(ControlError::Invalid)?;
        let wanted = TargetSpec { host, port, weight: 1 };
        let members = lock(&self.members);
        let mut next = Registrations(members.clone());
        let entry = next.0.get_mut(group).ok_or_else(|| ControlError::UnknownGroup(group.to_owned()))?;
        let Some(pos) = entry.registered.iter().position(|r| same_target(r, &wanted)) else {
            return Err(ControlError::NotRegistered { group: group.to_owned(), target: wanted.authority() });
        };
        let removed = entry.registered.remove(pos);
        if let Some(tg) = config.target_groups.iter_mut().find(|g| g.name == group) {
            tg.targets = entry.registered.clone();
        }
        Ok((config, next, removed))
    }

    /// The targets draining now.
    pub fn draining(&self) -> Vec<Draining> {
        lock(&self.draining).clone()
    }

    /// A draining target of `group` that can serve again (re-registered before its drain ended).
    pub(crate) fn revivable(&self, group: &str, spec: &TargetSpec) -> Option<Arc<Target>> {
        lock(&self.draining)
            .iter()
            .find(|d| d.group == group && d.target.spec == *spec && !d.target.upstream.is_retired())
            .map(|d| d.target.clone())
    }

    /// Takes targets that are in service again out of the draining list.
    pub(crate) fn revived(&self, in_service: &[(String, Arc<Target>)]) {
        let mut draining = lock(&self.draining);
        draining.retain(|d| {
            let back = in_service.iter().any(|(g, t)| *g == d.group && Arc::ptr_eq(t, &d.target));
            if back {
                d.target.lifecycle.cancel();
            }
            !back
        });
    }

    /// Starts draining a target that left `group`.
    pub(crate) fn begin_drain(
        self: &Arc<Self>,
        handle: &tokio::runtime::Handle,
        group: &str,
        target: Arc<Target>,
        delay: Duration,
        actor: &str,
    ) {
        let started = Instant::now();
        target.lifecycle.begin(DrainInfo {
            since: SystemTime::now(),
            started,
            deadline: started + delay,
            actor: actor.to_owned(),
        });
        lock(&self.draining).push(Draining { group: group.to_owned(), target: target.clone() });
        handle.spawn(super::drain::run(self.clone(), group.to_owned(), target, delay));
    }
}

/// Registrations computed by a plan, stored by [`Registry::commit`] once the configuration is in force.
#[derive(Debug, Clone, Default)]
pub struct Registrations(HashMap<String, Members>);
