//! The `connect` phase for a host name with several addresses, RFC 8305 style ("Happy Eyeballs v2"): the
//! addresses in the resolver's order with the families alternated, one attempt started every
//! [`ATTEMPT_DELAY`] or as soon as the previous one fails, the first to connect wins and the others are
//! dropped (closed). The whole race is bounded by connect_timeout, like a single attempt.
//!
//! Without it a target named `localhost:8080` failed wherever localhost resolves to `::1` first and the target
//! listens on 127.0.0.1 only. When every address fails, the failure names each address tried and what it
//! answered ([`AttemptFailure::addresses`]), so the log says `[::1]:8080 refused, 127.0.0.1:8080 timed out`
//! instead of blaming one address for all.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::time::Instant;
use waygate_faults::{Cause, Phase};

use super::connector::{Tcp, open_tcp};
use super::failure::{AddressFailure, AttemptFailure};

/// RFC 8305 §8's recommended Connection Attempt Delay: long enough for a loopback or LAN connect to finish,
/// short enough that a black-holed first address costs a client a quarter of a second, not connect_timeout.
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// The resolver's order with address families alternated, starting with the family of its first answer
/// (RFC 8305 §4: "First Address Family Count" of 1).
pub fn interleave(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else { return Vec::new() };
    let (mut preferred, mut other): (Vec<_>, Vec<_>) =
        addrs.iter().copied().partition(|a| a.is_ipv4() == first.is_ipv4());
    preferred.reverse();
    other.reverse();
    let mut out = Vec::with_capacity(addrs.len());
    while !preferred.is_empty() || !other.is_empty() {
        out.extend(preferred.pop());
        out.extend(other.pop());
    }
    out
}

/// Connects to the first of `addrs` that answers, within `timeout` for the whole race. A single address is a
/// plain [`open_tcp`] (the IP-literal case costs nothing extra).
pub async fn race(addrs: &[SocketAddr], timeout: Duration) -> Result<Tcp, AttemptFailure> {
    if let [addr] = addrs {
        return open_tcp(*addr, timeout).await;
    }
    let order = interleave(addrs);
    let deadline = Instant::now() + timeout;
    let mut pending = order.iter().copied();
    let mut running = FuturesUnordered::new();
    let mut failed: Vec<(SocketAddr, AttemptFailure)> = Vec::new();
    let start = |addr: SocketAddr| async move {
        (addr, open_tcp(addr, deadline.saturating_duration_since(Instant::now())).await)
    };
    running.extend(pending.next().map(start));
    loop {
        let stagger = tokio::time::sleep(ATTEMPT_DELAY);
        tokio::select! {
            Some((addr, result)) = running.next() => match result {
                Ok(tcp) => return Ok(tcp),
                Err(failure) => {
                    failed.push((addr, failure));
                    // A failed attempt starts the next at once (RFC 8305 §5), not after the delay.
                    running.extend(pending.next().map(start));
                    if running.is_empty() {
                        return Err(all_failed(failed));
                    }
                }
            },
            () = stagger, if pending.len() > 0 => running.extend(pending.next().map(start)),
            () = tokio::time::sleep_until(deadline) => {
                // The attempts still running share the one timeout: each is named as timed out.
                let mut failure = AttemptFailure::timeout(Phase::Connect, timeout);
                failure.addresses = named(&failed);
                let in_flight = order.iter().filter(|a| !failed.iter().any(|(f, _)| f == *a));
                let cause = Cause::TargetConnectTimeout;
                failure.addresses.extend(in_flight.map(|&addr| AddressFailure { addr, cause, error: "timed out".into() }));
                return Err(failure);
            }
        }
    }
}

/// The failure reported when every address failed, naming every address: the last one that reached for the
/// target; the gateway's own exhaustion only when every address failed that way (EMFILE fails them all
/// alike, while one address's EADDRNOTAVAIL, e.g. `::1` on a host without IPv6, must not hide a refusal).
fn all_failed(mut failed: Vec<(SocketAddr, AttemptFailure)>) -> AttemptFailure {
    let addresses = named(&failed);
    let target = addresses.iter().rposition(|a| a.cause != Cause::GatewayResourceExhausted);
    let index = target.unwrap_or(failed.len() - 1);
    let (_, mut failure) = failed.swap_remove(index);
    failure.addresses = addresses;
    failure
}

fn named(failed: &[(SocketAddr, AttemptFailure)]) -> Vec<AddressFailure> {
    failed.iter().map(|(addr, f)| AddressFailure { addr: *addr, cause: f.classify(), error: f.brief() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn families_alternate_from_the_first_answer() {
        let v6 = [a("[::1]:1"), a("[::2]:1"), a("[::3]:1")];
        let v4 = [a("127.0.0.1:1"), a("127.0.0.2:1")];
        let resolver = [v6[0], v6[1], v6[2], v4[0], v4[1]];
        assert_eq!(interleave(&resolver), [v6[0], v4[0], v6[1], v4[1], v6[2]]);
        let resolver = [v4[0], v6[0], v4[1], v6[1]];
        assert_eq!(interleave(&resolver), [v4[0], v6[0], v4[1], v6[1]]);
        assert_eq!(interleave(&[v4[1]]), [v4[1]]);
        assert!(interleave(&[]).is_empty());
    }
}
