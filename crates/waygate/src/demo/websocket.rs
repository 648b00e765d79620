//! The demo's WebSocket routes: `/ws/echo`, a WebSocket echo behind the gateway (the connection becomes a
//! tunnel), and `/ws/bad-accept`, a target whose `101` carries a `Sec-WebSocket-Accept` that does not match the
//! key (the gateway answers 502 TargetMalformedResponse instead of handing the client a broken WebSocket). curl
//! speaks no WebSocket here, so the printed commands send the handshake's fields themselves.

use std::fmt::Write as _;
use std::net::SocketAddr;

use waygate_faultlab::{Running, WsTarget};

use super::routes::{Try, try_};

/// The handshake of RFC 6455 §1.2 as curl sends it (its key is the RFC's example).
const HANDSHAKE: &str = "-H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
                         -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='";

/// What the WebSocket routes add to the demo.
pub struct Routes {
    /// `[[listener.rule]]` tables.
    pub rules: String,
    /// `[[target_group]]` tables.
    pub groups: String,
    pub tries: Vec<Try>,
    pub targets: Vec<Running>,
}

/// Starts the WebSocket targets; their rules take priorities from `priority` on. `health_check` is the table
/// every demo group has.
pub async fn routes(mut priority: usize, health_check: &str) -> Result<Routes, String> {
    let mut out = Routes { rules: String::new(), groups: String::new(), tries: Vec::new(), targets: Vec::new() };
    for (target, path) in [(WsTarget::Echo, "echo"), (WsTarget::BadAccept, "bad-accept")] {
        let running = target
            .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| format!("websocket target {}: {e}", target.name()))?;
        let name = target.name();
        let _ = write!(
            out.rules,
            "[[listener.rule]]\npriority = {priority}\npath = \"/ws/{path}*\"\ntarget_group = \"{name}\"\n\n"
        );
        let _ = write!(
            out.groups,
            "[[target_group]]\nname = \"{name}\"\ntargets = [\"{}\"]\nretries = 0\n{health_check}\n",
            running.addr()
        );
        let expect = match target {
            WsTarget::Echo => "101: the connection is now a WebSocket tunnel to the echo target (curl, which speaks \
                               no WebSocket, gives up at -m 2); its access-log line has type ws"
                .to_owned(),
            _ => format!(
                "502 {}: the target's 101 carries a Sec-WebSocket-Accept that does not match the key, so no \
                 client gets a broken WebSocket",
                target.expected_cause()
            ),
        };
        out.tries.push(try_(format!("curl -si -m 2 {HANDSHAKE} {{gw}}/ws/{path}"), expect));
        out.targets.push(running);
        priority += 1;
    }
    Ok(out)
}
