//! What `waygate doctor probe TARGET` reaches: TARGET as `host:port`, as an `http://` or `https://` URL, or as
//! a target group name of `--config FILE` (every target of the group, with the group's timeouts and TLS
//! settings). Command-line flags override what the config says; without a config, the gateway's defaults apply.

use std::path::PathBuf;
use std::time::Duration;

use waygate_config::{Config, TargetGroup, TargetProtocol};

use super::ProbeArgs;

/// TLS settings for one probed target.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsSettings {
    pub verify: bool,
    /// PEM bundle of trusted roots; `None`: the system roots.
    pub ca: Option<PathBuf>,
    /// The server name sent and verified; `None`: the target's host.
    pub sni: Option<String>,
}

/// The timers the probe uses, named as in the config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timers {
    pub connect_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    pub response_timeout: Duration,
    pub pool_idle_timeout: Duration,
}

/// One target to probe (each of its resolved addresses is probed separately).
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeTarget {
    /// `host:port` as written (IPv6 bracketed).
    pub authority: String,
    pub target_group: Option<String>,
    pub host: String,
    pub port: u16,
    pub tls: Option<TlsSettings>,
    /// The path of the HTTP/1.1 request, when one is sent.
    pub http_path: Option<String>,
    pub keepalive: bool,
    /// How long `--keepalive` waits at most for the target to close the idle connection.
    pub keepalive_max: Duration,
    pub timers: Timers,
}

/// Turns TARGET and the flags into the targets to probe. Errors say what is wrong with which argument.
pub fn targets(args: &ProbeArgs) -> Result<Vec<ProbeTarget>, String> {
    let config = match &args.config {
        Some(path) => Some(waygate_config::load(path).map_err(|e| e.to_string().trim_end().to_owned())?),
        None => None,
    };
    let t = args.target.trim();
    if let Some((scheme, rest)) = t.split_once("://") {
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            other => return Err(format!("TARGET {t:?}: unsupported scheme {other:?} (use http:// or https://)")),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = split_authority(authority, default_port).map_err(|e| format!("TARGET {t:?}: {e}"))?;
        return Ok(vec![single(args, host, port, tls, Some(path))]);
    }
    if t.contains(':') {
        let (host, port) = waygate_config::parse_target_address(t).map_err(|e| format!("TARGET {t:?}: {e}"))?;
        let tls = args.tls || port == 443;
        let path = (args.http || args.keepalive).then(|| args.path.clone().unwrap_or_else(|| "/".to_owned()));
        return Ok(vec![single(args, host, port, tls, path)]);
    }
    let Some(config) = config else {
        return Err(format!(
            "TARGET {t:?} is not host:port or a URL; to probe a target group by name, pass --config FILE"
        ));
    };
    let group = config.target_group(t).ok_or_else(|| no_group(t, &config, args))?;
    group_targets(args, group)
}

fn no_group(name: &str, config: &Config, args: &ProbeArgs) -> String {
    let names: Vec<&str> = config.target_groups.iter().map(|g| g.name.as_str()).collect();
    let file = args.config.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    format!("{file}: no target group named {name:?} (target groups: {})", names.join(", "))
}

/// Every target of a group, with the group's settings (flags still override).
pub fn group_targets(args: &ProbeArgs, group: &TargetGroup) -> Result<Vec<ProbeTarget>, String> {
    let timers = Timers {
        connect_timeout: args.connect_timeout.unwrap_or(group.connect_timeout),
        tls_handshake_timeout: args.tls_handshake_timeout.unwrap_or(group.tls_handshake_timeout),
        response_timeout: args.response_timeout.unwrap_or(group.response_timeout),
        pool_idle_timeout: args.pool_idle_timeout.unwrap_or(group.pool_idle_timeout),
    };
    if let Some(function) = group.function.as_ref().filter(|_| group.protocol == TargetProtocol::Lambda) {
        return function_endpoint(args, group, function, timers).map(|t| vec![t]);
    }
    let tls = group.protocol == TargetProtocol::Https;
    let path =
        (args.http || args.keepalive).then(|| args.path.clone().unwrap_or_else(|| group.health_check.path.clone()));
    Ok(group
        .targets
        .iter()
        .map(|spec| ProbeTarget {
            authority: spec.authority(),
            target_group: Some(group.name.clone()),
            host: spec.host.clone(),
            port: spec.port,
            tls: tls.then(|| TlsSettings {
                verify: group.tls.verify && !args.insecure,
                ca: args.ca.clone().or_else(|| group.tls.ca.clone()),
                sni: args.sni.clone().or_else(|| group.tls.sni.clone()),
            }),
            http_path: path.clone(),
            keepalive: args.keepalive,
            keepalive_max: args.keepalive_max,
            timers,
        })
        .collect())
}

/// A lambda group's Invoke API endpoint, reached the gateway's way (TCP, and TLS for https with the group's
/// settings). No HTTP request: an invoke needs a signature, and the gateway's own log names what the service
/// answered.
fn function_endpoint(
    args: &ProbeArgs,
    group: &TargetGroup,
    function: &waygate_config::Function,
    timers: Timers,
) -> Result<ProbeTarget, String> {
    let ctx = |e: String| format!("target group {:?}: function.endpoint {:?}: {e}", group.name, function.endpoint);
    let (https, rest) = match function.endpoint.split_once("://") {
        Some(("https", rest)) => (true, rest),
        Some(("http", rest)) => (false, rest),
        _ => return Err(ctx("not an http:// or https:// URL".into())),
    };
    let authority = rest.split('/').next().unwrap_or("");
    let (host, port) = split_authority(authority, if https { 443 } else { 80 }).map_err(ctx)?;
    Ok(ProbeTarget {
        authority: if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") },
        target_group: Some(group.name.clone()),
        host,
        port,
        tls: https.then(|| TlsSettings {
            verify: group.tls.verify && !args.insecure,
            ca: args.ca.clone().or_else(|| group.tls.ca.clone()),
            sni: args.sni.clone().or_else(|| group.tls.sni.clone()),
        }),
        http_path: None,
        keepalive: false,
        keepalive_max: args.keepalive_max,
        timers,
    })
}

fn single(args: &ProbeArgs, host: String, port: u16, tls: bool, path: Option<String>) -> ProbeTarget {
    let authority = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    ProbeTarget {
        authority,
        target_group: None,
        host,
        port,
        tls: tls.then(|| TlsSettings { verify: !args.insecure, ca: args.ca.clone(), sni: args.sni.clone() }),
        http_path: path,
        keepalive: args.keepalive,
        keepalive_max: args.keepalive_max,
        timers: Timers {
            connect_timeout: args.connect_timeout.unwrap_or(waygate_config::DEFAULT_CONNECT_TIMEOUT),
            tls_handshake_timeout: args.tls_handshake_timeout.unwrap_or(waygate_config::DEFAULT_TLS_HANDSHAKE_TIMEOUT),
            response_timeout: args.response_timeout.unwrap_or(waygate_config::DEFAULT_RESPONSE_TIMEOUT),
            pool_idle_timeout: args.pool_idle_timeout.unwrap_or(waygate_config::DEFAULT_POOL_IDLE_TIMEOUT),
        },
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` of a URL.
fn split_authority(a: &str, default_port: u16) -> Result<(String, u16), String> {
    let a = a.rsplit_once('@').map_or(a, |(_, h)| h);
    if a.is_empty() {
        return Err("no host".to_owned());
    }
    let (host, port) = if let Some(rest) = a.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or("unclosed [ in IPv6 address")?;
        (h, after.strip_prefix(':'))
    } else {
        match a.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (a, None),
        }
    };
    let port = match port {
        None => default_port,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| format!("bad port {p:?}"))?,
    };
    if host.is_empty() {
        return Err("no host".to_owned());
    }
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_authorities() {
        assert_eq!(split_authority("a.example", 443), Ok(("a.example".into(), 443)));
        assert_eq!(split_authority("a.example:8443", 443), Ok(("a.example".into(), 8443)));
        assert_eq!(split_authority("[::1]:9", 80), Ok(("::1".into(), 9)));
        assert_eq!(split_authority("[::1]", 80), Ok(("::1".into(), 80)));
        assert!(split_authority("a:0", 80).is_err());
        assert!(split_authority("", 80).is_err());
    }

    /// A lambda group is probed at its Invoke API endpoint: TCP, and TLS with the group's settings for https.
    #[test]
    fn a_function_group_probes_its_endpoint() {
        let text = "[[listener]]\nbind = \"127.0.0.1:0\"\ndefault_target_group = \"fn\"\n[[target_group]]\nname = \"fn\"\n\
                    protocol = \"lambda\"\nfunction = { name = \"f\", endpoint = \"https://[::1]:9443/base\" }\n\
                    tls = { ca = \"ca.pem\", sni = \"lambda.local\" }\n";
        let config = waygate_config::parse(text, std::path::Path::new("t.toml")).unwrap();
        let args = ProbeArgs::new("fn");
        let t = group_targets(&args, &config.target_groups[0]).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].authority.as_str(), t[0].host.as_str(), t[0].port), ("[::1]:9443", "::1", 9443));
        let tls = t[0].tls.as_ref().unwrap();
        assert_eq!(
            (tls.ca.as_deref(), tls.sni.as_deref()),
            (Some(std::path::Path::new("ca.pem")), Some("lambda.local"))
        );
        assert_eq!(t[0].http_path, None, "an invoke needs a signature: no HTTP request");
        let plain = text
            .replace("https://[::1]:9443/base", "http://127.0.0.1")
            .replace("tls = { ca = \"ca.pem\", sni = \"lambda.local\" }\n", "");
        let config = waygate_config::parse(&plain, std::path::Path::new("t.toml")).unwrap();
        let t = group_targets(&args, &config.target_groups[0]).unwrap();
        assert_eq!((t[0].port, t[0].tls.is_none()), (80, true));
    }
}
