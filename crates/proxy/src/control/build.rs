//! Compiling a validated configuration into the data plane's [`Runtime`] snapshot: target groups with their
//! targets and pools, listeners with their routers and TLS configs. A rebuild reuses the targets that stay,
//! with their pools, connections and health; a draining target registered again serves again. Listener TLS
//! is read again from its files on every build ([`TlsFront::build`]): a reload picks up renewed certificates.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::watch;

use fnv::FnvHashMap;
use waygate_config::{Config, TargetGroup, TargetProtocol};
use waygate_telemetry::Metrics;

use super::registry::Registry;
use crate::group::Group;
use crate::router::Router;
use crate::runtime::{ListenerRuntime, Runtime};
use crate::target::Target;
use crate::tls_front::{EXPIRY_WARNING, TlsFront};
use crate::upstream::{ConnectSpec, TlsTarget, Upstream, tls};

/// Compiles a configuration; `previous` lends the targets (and pools) that stay, `registry` the draining
/// targets registered again; new targets' pools get `pool_slots` slots (one per worker). Errors name the
/// file or setting that could not be used (certificates, keys, CA bundles).
pub fn runtime(
    config: Config,
    previous: Option<&Runtime>,
    metrics: &Arc<Metrics>,
    registry: &Registry,
    pool_slots: usize,
) -> Result<Runtime, String> {
    let mut groups = FnvHashMap::default();
    for group in &config.target_groups {
        let old = previous.and_then(|p| p.groups.get(&group.name));
        let built = build_group(group, old.map(Arc::as_ref), metrics, registry, pool_slots)?;
        groups.insert(group.name.clone(), Arc::new(built));
    }
    let mut listeners = FnvHashMap::default();
    for l in &config.listeners {
        let tls = match &l.tls {
            Some(t) => Some(Arc::new(TlsFront::build(t).map_err(|e| format!("listener {:?}: {e}", l.name))?)),
            None => None,
        };
        let rt = ListenerRuntime { config: l.clone(), router: Router::new(l), tls };
        listeners.insert(l.name.clone(), Arc::new(rt));
    }
    Ok(Runtime { config: Arc::new(config), groups, listeners })
}

/// Settings that, when unchanged, let a reload keep a target's live connections.
fn same_connection_settings(a: &TargetGroup, b: &TargetGroup) -> bool {
    a.protocol == b.protocol
        && a.protocol_version == b.protocol_version
        && a.tls == b.tls
        && a.connect_timeout == b.connect_timeout
        && a.tls_handshake_timeout == b.tls_handshake_timeout
        && a.pool_idle_timeout == b.pool_idle_timeout
}

fn build_group(
    group: &TargetGroup,
    old: Option<&Group>,
    metrics: &Arc<Metrics>,
    registry: &Registry,
    pool_slots: usize,
) -> Result<Group, String> {
    let client_tls = match group.protocol {
        TargetProtocol::Https => {
            let config = tls::client_config(group.tls.verify, group.tls.ca.as_deref())
                .map_err(|e| format!("target group {:?}: {e}", group.name))?;
            Some(if group.protocol_version.is_h2() {
                // HTTP/2 only: a target that cannot speak it says so in its handshake (TargetHttp2NotNegotiated).
                let mut h2 = (*config).clone();
                h2.alpn_protocols = vec![b"h2".to_vec()];
                Arc::new(h2)
            } else {
                config
            })
        }
        _ => None,
    };
    let reusable = old.filter(|o| same_connection_settings(&o.config, group));
    let mut targets = Vec::with_capacity(group.targets.len());
    for spec in &group.targets {
        let kept =
            reusable.and_then(|o| o.targets.iter().find(|t| t.spec == *spec && !t.upstream.is_retired()).cloned());
        // A target re-registered before its drain ended serves again with its pool.
        let revived = || reusable.and_then(|_| registry.revivable(&group.name, spec));
        if let Some(kept) = kept.or_else(revived) {
            targets.push(kept);
            continue;
        }
        let tls = match &client_tls {
            Some(config) => Some(TlsTarget {
                config: config.clone(),
                server_name: tls::server_name(group.tls.sni.as_deref(), &spec.host)
                    .map_err(|e| format!("target group {:?}: {e}", group.name))?,
            }),
            None => None,
        };
        let connect = ConnectSpec {
            host: spec.host.clone(),
            port: spec.port,
            connect_timeout: group.connect_timeout,
            tls_handshake_timeout: group.tls_handshake_timeout,
            tls,
        };
        let upstream = Upstream::new(
            connect,
            spec.authority().into(),
            group.pool_idle_timeout,
            metrics.clone(),
            group.name.as_str().into(),
            pool_slots,
        );
        let upstream = if group.protocol_version.is_h2() { upstream.speaking_h2() } else { upstream };
        targets.push(Arc::new(Target::new(spec.clone(), upstream)));
    }
    Ok(Group::new(group.clone(), targets, registry.audit.clone()))
}

/// Publishes the certificates `rt`'s listeners serve in `waygate_listener_certificate_expiry_seconds` (the
/// listeners `previous` had and `rt` has not serve none now), and warns of each that expires within 30 days.
pub fn publish_certificates(rt: &Runtime, previous: Option<&Runtime>, metrics: &Metrics) {
    for name in previous.iter().flat_map(|p| p.listeners.keys()).filter(|n| !rt.listeners.contains_key(*n)) {
        metrics.set_listener_certificates(name, &[]);
    }
    for (name, l) in &rt.listeners {
        metrics.set_listener_certificates(name, l.tls.as_ref().map_or(&[][..], |t| t.expiries()));
    }
    warn_expiring(rt);
}

/// Logs a warning for each listener certificate of `rt` that expires within 30 days or has expired.
pub fn warn_expiring(rt: &Runtime) {
    let now = SystemTime::now();
    for (name, l) in &rt.listeners {
        for (cert, not_after) in l.tls.as_ref().map_or(&[][..], |t| t.expiries()) {
            match not_after.duration_since(now) {
                Ok(left) if left < EXPIRY_WARNING => {
                    let days = left.as_secs() / 86_400;
                    tracing::warn!(target: "waygate::tls", listener = %name, certificate = %cert, days_left = days, "listener certificate expires in {days} day(s): renew it and reload");
                }
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!(target: "waygate::tls", listener = %name, certificate = %cert, "listener certificate has expired: renew it and reload");
                }
            }
        }
    }
}

/// [`warn_expiring`] twice a day, so that a gateway nobody reloads still warns as its certificates near their
/// end; until `shutdown` flips.
pub async fn watch_expiry(runtime: Arc<ArcSwap<Runtime>>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(12 * 3600)) => warn_expiring(&runtime.load()),
            _ = shutdown.changed() => return,
        }
    }
}
