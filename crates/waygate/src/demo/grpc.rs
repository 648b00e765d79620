//! The demo's gRPC routes: a `grpc` target group whose calls succeed, one whose target refuses connections and
//! one whose target answers too late, so that a newcomer sees a gateway failure reach a gRPC client as a gRPC
//! status (HTTP 200, `grpc-status`, `grpc-message` and Proxy-Status naming the cause). The commands are curl
//! over h2c with prior knowledge, as a gRPC client speaks; each is checked like every other demo promise.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use waygate_faultlab::{Fault, GrpcAnswer, H2Target, Running};

use super::routes::{Try, try_};

/// The slow service answers after this, past its group's response_timeout below.
const SLOW_ANSWER: Duration = Duration::from_secs(8);
const RESPONSE_TIMEOUT: &str = "3s";
/// The healthy service's checks call the standard health method, which the fault lab answers with status 0.
const HEALTH_CHECK: &str = "[target_group.health_check]\npath = \"/grpc.health.v1.Health/Check\"\nmatcher = \"0\"\n\
     interval = \"5s\"\ntimeout = \"2s\"\n";

/// Routes (rules with priorities from `first_priority`), their target groups, what to try, and the targets.
pub struct GrpcRoutes {
    pub rules: String,
    pub groups: String,
    pub tries: Vec<Try>,
    pub targets: Vec<Running>,
}

fn call(service: &str) -> String {
    format!(
        "curl -si --http2-prior-knowledge -H 'content-type: application/grpc' -H 'te: trailers' -d '' \
         {{gw}}/demo.{service}/Get"
    )
}

pub async fn routes(first_priority: u32) -> Result<GrpcRoutes, String> {
    let bind = SocketAddr::from(([127, 0, 0, 1], 0));
    let ok = H2Target::grpc(GrpcAnswer { status: 0, delay: Duration::ZERO });
    let slow = H2Target::grpc(GrpcAnswer { status: 0, delay: SLOW_ANSWER });
    let spawn_err = |e: std::io::Error| format!("demo gRPC target: {e}");
    let targets = vec![
        ok.spawn(bind).await.map_err(spawn_err)?,
        Fault::Refuse.spawn(bind).await.map_err(spawn_err)?,
        slow.spawn(bind).await.map_err(spawn_err)?,
    ];
    let (mut rules, mut groups) = (String::new(), String::new());
    for (i, (service, target)) in ["Orders", "Down", "Slow"].iter().zip(&targets).enumerate() {
        let name = format!("grpc-{}", service.to_lowercase());
        let _ = write!(
            rules,
            "[[listener.rule]]\npriority = {}\npath = \"/demo.{service}/*\"\ntarget_group = \"{name}\"\n\n",
            first_priority + i as u32
        );
        let _ = write!(
            groups,
            "[[target_group]]\nname = \"{name}\"\nprotocol_version = \"grpc\"\ntargets = [\"{}\"]\nretries = 0\n\
             response_timeout = \"{RESPONSE_TIMEOUT}\"\n{HEALTH_CHECK}\n",
            target.addr()
        );
    }
    let tries = vec![
        try_(call("Orders"), "200: the call succeeds over HTTP/2 (its grpc-status 0 comes in the trailers)"),
        try_(
            call("Down"),
            "200 with grpc-status 14 (UNAVAILABLE) and grpc-message TargetConnectionRefused: a gRPC client gets the \
             gateway's failure as a gRPC status, never an HTML page",
        ),
        try_(
            call("Slow"),
            format!(
                "200 with grpc-status 4 (DEADLINE_EXCEEDED) and grpc-message TargetResponseTimeout after \
                 response_timeout ({RESPONSE_TIMEOUT}; the service answers after {SLOW_ANSWER:?})"
            ),
        ),
    ];
    Ok(GrpcRoutes { rules, groups, tries, targets })
}
