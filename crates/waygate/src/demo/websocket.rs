//! The demo's WebSocket routes: `/ws/echo`, a WebSocket echo behind the gateway (the connection becomes a
//! tunnel), and `/ws/bad-accept`, a target whose `101` carries a `Sec-WebSocket-Accept` that does not match the
//! key (the gateway answers 502 TargetMalformedResponse instead of handing the client a broken WebSocket). Two
//! more reach `protocol_version = "http2"` groups, where a WebSocket travels as an RFC 8441 extended CONNECT:
//! `/ws/h2-echo`, an HTTP/2 echo that enabled it, and `/ws/h2-no-connect`, an HTTP/2 target that did not (502
//! TargetExtendedConnectDisabled). curl speaks no WebSocket here, so the printed commands send the handshake's
//! fields themselves.

use std::fmt::Write as _;
use std::net::SocketAddr;

use waygate_faultlab::{Running, WsH2Target, WsTarget};

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
    for (target, path) in [(WsH2Target::Echo, "h2-echo"), (WsH2Target::NoExtendedConnect, "h2-no-connect")] {
        let running = target
            .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| format!("websocket target ws-{path}: {e}"))?;
        let _ = write!(
            out.rules,
            "[[listener.rule]]\npriority = {priority}\npath = \"/ws/{path}*\"\ntarget_group = \"ws-{path}\"\n\n"
        );
        let _ = write!(
            out.groups,
            "[[target_group]]\nname = \"ws-{path}\"\nprotocol_version = \"http2\"\ntargets = [\"{}\"]\nretries = 0\n\
             {health_check}\n",
            running.addr()
        );
        let expect = match target {
            WsH2Target::Echo => {
                "101: the WebSocket went to an http2 target group as an extended CONNECT (RFC 8441) and \
                                 the target's 200 became this 101; a tunnel over one HTTP/2 stream (curl gives up at -m 2)"
            }
            _ => {
                "502 TargetExtendedConnectDisabled: the http2 target did not enable extended CONNECT, so a WebSocket \
                  cannot reach it; route WebSockets to an http1 group or enable RFC 8441 on the target"
            }
        };
        out.tries.push(try_(format!("curl -si -m 2 {HANDSHAKE} {{gw}}/ws/{path}"), expect.to_owned()));
        out.targets.push(running);
        priority += 1;
    }
    Ok(out)
}
