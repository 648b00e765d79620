//! Compiling a validated configuration into the data plane's [`Runtime`] snapshot: target groups with their
//! targets and pools, listeners with their routers and TLS configs. A rebuild reuses the targets that stay,
//! with their pools, connections and health; a draining target registered again serves again.

use std::path::Path;
use std::sync::Arc;

use fnv::FnvHashMap;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use waygate_config::{Config, TargetGroup, TargetProtocol};
use waygate_telemetry::Metrics;

use super::registry::Registry;
use crate::group::Group;
use crate::router::Router;
use crate::runtime::{ListenerRuntime, Runtime};
use crate::target::Target;
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
            Some(t) => Some(server_tls(&t.cert, &t.key).map_err(|e| format!("listener {:?}: {e}", l.name))?),
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

/// The TLS config of an https listener: its certificate chain and key, ALPN h2 then http/1.1.
pub fn server_tls(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: cannot read certificate: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: bad certificate PEM: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", cert.display()));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: cannot read private key: {e}", key.display()))?;
    let mut config = ServerConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS server setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("{}: certificate and key do not form a usable identity: {e}", cert.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
