//! Address syntax: listener and admin binds (`IP:port`, port 0 meaning "any free port") and targets
//! (`host:port` where host is an IP literal, `[IPv6]`, or a DNS name, and port is 1-65535).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A bind address: an IP literal and a port (`127.0.0.1:8080`, `[::1]:8080`).
pub(crate) fn parse_bind(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>().map_err(|_| {
        format!("{s:?} is not a valid bind address: expected IP:port, like \"127.0.0.1:8080\" or \"[::1]:8080\"")
    })
}

/// A target: `(host, port)` with IPv6 hosts returned without brackets.
pub(crate) fn parse_target(s: &str) -> Result<(String, u16), String> {
    let bad = |why: &str| format!("target {s:?} is invalid: {why}");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, port) = rest.split_once("]:").ok_or_else(|| bad("expected [IPv6]:port, like \"[::1]:80\""))?;
        host.parse::<Ipv6Addr>().map_err(|_| bad(&format!("{host:?} is not an IPv6 address")))?;
        (host, port)
    } else {
        let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("expected host:port, like \"127.0.0.1:3000\""))?;
        if host.contains(':') {
            return Err(bad("write IPv6 addresses in brackets, like \"[::1]:80\""));
        }
        check_host(host).map_err(|why| bad(&why))?;
        (host, port)
    };
    let port = match port.parse::<u32>() {
        Ok(p @ 1..=65535) => p as u16,
        _ => return Err(bad(&format!("port {port:?} is not 1 to 65535"))),
    };
    Ok((host.to_owned(), port))
}

/// An IPv4 literal or a DNS name (labels of letters, digits, `-`, `_`; no leading or trailing `-`).
fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return host.parse::<Ipv4Addr>().map(|_| ()).map_err(|_| format!("{host:?} is not an IPv4 address"));
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.len() <= 253 && name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!("{host:?} is not a valid host name or IP address"))
    }
}

/// Whether two binds would collide: same port (not 0) and the same IP, or a wildcard of the same family.
pub(crate) fn binds_conflict(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() == 0 || a.port() != b.port() {
        return false;
    }
    match (a.ip(), b.ip()) {
        (IpAddr::V4(x), IpAddr::V4(y)) => x == y || x.is_unspecified() || y.is_unspecified(),
        (IpAddr::V6(x), IpAddr::V6(y)) => x == y || x.is_unspecified() || y.is_unspecified(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(parse_target("127.0.0.1:3000"), Ok(("127.0.0.1".into(), 3000)));
        assert_eq!(parse_target("[::1]:80"), Ok(("::1".into(), 80)));
        assert_eq!(parse_target("backend-1.internal:8443"), Ok(("backend-1.internal".into(), 8443)));
        assert_eq!(parse_target("localhost:1"), Ok(("localhost".into(), 1)));
        for bad in [
            "",
            ":80",
            "127.0.0.1",
            "127.0.0.1:0",
            "127.0.0.1:65536",
            "127.0.0.1:http",
            "::1:80",
            "[::1]80",
            "[zz]:80",
            "999.1.1.1:80",
            "-bad.host:80",
            "a..b:80",
            "host name:80",
            "[::1]:",
            "é:80",
        ] {
            assert!(parse_target(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(parse_target("::1:80").unwrap_err().contains("brackets"));
    }

    #[test]
    fn binds() {
        assert!(parse_bind("0.0.0.0:0").is_ok());
        assert!(parse_bind("[::]:443").is_ok());
        assert!(parse_bind("localhost:80").is_err());
        let b = |s: &str| parse_bind(s).unwrap();
        assert!(binds_conflict(b("127.0.0.1:80"), b("127.0.0.1:80")));
        assert!(binds_conflict(b("0.0.0.0:80"), b("127.0.0.1:80")));
        assert!(!binds_conflict(b("127.0.0.1:80"), b("127.0.0.2:80")));
        assert!(!binds_conflict(b("127.0.0.1:0"), b("127.0.0.1:0")));
        assert!(!binds_conflict(b("127.0.0.1:80"), b("[::1]:80")));
    }
}
