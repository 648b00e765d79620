//! The demo's routes: the targets behind them, the configuration that reaches them, and for each route the
//! command to try with what it really answers. Each promise printed here is checked by the test
//! `demo_keeps_every_printed_promise` (crates/waygate/tests/demo.rs), which runs the printed commands.
//!
//! With AWS credentials at hand (any keys: `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` will do), two routes
//! under `/function/` invoke the fault lab's function host, which checks the gateway's signatures with those keys.
//!
//! Commands are templates: `{gw}` is the gateway's base URL and `{admin}` the admin API's, known only once
//! the sockets are bound (port 0 lets the kernel choose).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use waygate_faultlab::{Backend, Fault, FunctionHost, Running};

use super::dir::DemoDir;

/// Delays the demo shortens so that every curl answers within seconds.
const SLOW_HEAD: Duration = Duration::from_secs(8);
const KEEPALIVE_IDLE: Duration = Duration::from_secs(2);
/// The timeouts of the fault groups and the listener: short, and each shorter than the fault it meets.
const CONNECT_TIMEOUT: &str = "3s";
const TLS_HANDSHAKE_TIMEOUT: &str = "3s";
const RESPONSE_TIMEOUT: &str = "5s";
const IDLE_TIMEOUT: &str = "5s";
/// Health checks every 5 s (ALB's shortest) so that `refuse` turns unhealthy within seconds of the start.
const HEALTH_CHECK: &str = "[target_group.health_check]\ninterval = \"5s\"\ntimeout = \"2s\"\n";
/// Targets whose requests all fail while their health check (one GET /, status only) passes. (huge-head fails
/// its checks as its requests: a check reads the response head as a request does.)
pub const PASS_HEALTH_CHECKS: [Fault; 2] = [Fault::TruncatedBody, Fault::StalledBody];

/// A command to try and what it answers.
pub struct Try {
    pub command: String,
    pub expect: String,
}

/// Everything the demo runs before the gateway starts.
pub struct Plan {
    pub config: String,
    pub targets: Vec<Running>,
    pub tries: Vec<Try>,
    /// `waygate doctor probe` commands for failing targets.
    pub probes: Vec<Try>,
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

pub(crate) fn try_(command: impl Into<String>, expect: impl Into<String>) -> Try {
    Try { command: command.into(), expect: expect.into() }
}

/// What a request to a fault's route answers in this demo, in the words the test checks: the status codes
/// first, then the cause (in Proxy-Status, unless it says "in the log").
fn expect(fault: Fault) -> String {
    let cause = fault.expected_cause();
    match fault {
        Fault::SynBlackhole => format!("504 {cause} after connect_timeout ({CONNECT_TIMEOUT})"),
        Fault::TlsBlackhole => format!("504 {cause} after tls_handshake_timeout ({TLS_HANDSHAKE_TIMEOUT})"),
        Fault::SlowHead(_) => {
            format!("504 {cause} after response_timeout ({RESPONSE_TIMEOUT}; the target answers after {SLOW_HEAD:?})")
        }
        Fault::TruncatedBody => {
            format!("200, then the body is cut after 100 of 1000 bytes (curl: error 18); {cause} in the log")
        }
        Fault::StalledBody => format!(
            "200, then 100 of 1000 body bytes and silence: cut after the listener's idle_timeout ({IDLE_TIMEOUT}); \
             {cause} in the log"
        ),
        Fault::KeepAliveCloser(_) => format!(
            "200 200, 3s apart; {KEEPALIVE_IDLE:?} later the target closes each idle pooled connection, and the \
             second close, at another moment, confirms the first (one close could be a restart): a WARN line says \
             its keep-alive is shorter than pool_idle_timeout, and GET {{admin}}/api/v1/target-groups shows it"
        ),
        Fault::KeepAliveRace => format!(
            "200 200: the second GET reuses a pooled connection that the target closes (a keep-alive race): a WARN \
             line logs the lost attempt ({cause}) and the GET is replayed on a fresh connection"
        ),
        Fault::ServerError => "503 from the target itself, passed through: no Proxy-Status".to_owned(),
        _ => format!("502 {cause}"),
    }
}

/// The demo's faults, with their delays shortened.
fn faults() -> impl Iterator<Item = Fault> {
    Fault::ALL.iter().map(|fault| match fault {
        Fault::SlowHead(_) => Fault::SlowHead(SLOW_HEAD),
        Fault::KeepAliveCloser(_) => Fault::KeepAliveCloser(KEEPALIVE_IDLE),
        f => *f,
    })
}

/// Starts the demo targets and writes the configuration that routes to them; the gateway listens on
/// 127.0.0.1:`port`, the admin API on 127.0.0.1:`admin_port`.
pub async fn plan(dir: &DemoDir, port: u16, admin_port: u16) -> Result<Plan, String> {
    let mut targets = Vec::new();
    let mut healthy = Vec::new();
    for name in ["app-1", "app-2"] {
        let running = Backend::new(name).spawn(loopback()).await.map_err(|e| format!("demo backend: {e}"))?;
        healthy.push(format!("\"{}\"", running.addr()));
        targets.push(running);
    }
    let mut config = format!(
        "# The configuration of `waygate demo` (removed when the demo ends).\n\n\
         [admin]\nbind = \"127.0.0.1:{admin_port}\"\n\n\
         [access_log]\ndir = \"{logs}\"\n\n\
         [errors]\nprofile = \"alb\"\n\n\
         [[listener]]\nname = \"demo\"\nbind = \"127.0.0.1:{port}\"\nidle_timeout = \"{IDLE_TIMEOUT}\"\n\
         default_target_group = \"app\"\n\n",
        logs = dir.logs().display(),
    );
    let mut groups = format!("[[target_group]]\nname = \"app\"\ntargets = [{}]\n{HEALTH_CHECK}\n", healthy.join(", "));
    let mut tries = vec![try_("curl -i {gw}/", "200 from app-1, then app-2 (round robin)")];
    let mut probes = Vec::new();
    for (i, fault) in faults().enumerate() {
        let running = fault.spawn(loopback()).await.map_err(|e| format!("fault {}: {e}", fault.name()))?;
        let name = fault.name();
        let _ = write!(
            config,
            "[[listener.rule]]\npriority = {}\npath = \"/fault/{name}*\"\ntarget_group = \"{name}\"\n\n",
            i + 1
        );
        let tls = if fault.tls() {
            format!("protocol = \"https\"\ntls = {{ ca = \"{}\", sni = \"localhost\" }}\n", dir.ca().display())
        } else {
            String::new()
        };
        let _ = write!(
            groups,
            "[[target_group]]\nname = \"{name}\"\ntargets = [\"{}\"]\nretries = 0\n{tls}\
             connect_timeout = \"{CONNECT_TIMEOUT}\"\ntls_handshake_timeout = \"{TLS_HANDSHAKE_TIMEOUT}\"\n\
             response_timeout = \"{RESPONSE_TIMEOUT}\"\n{HEALTH_CHECK}\n",
            running.addr(),
        );
        let url = format!("{{gw}}/fault/{name}");
        match fault {
            Fault::KeepAliveRace => {
                tries.push(try_(format!("curl -si {url} {url}"), expect(fault)));
                tries.push(try_(
                    format!("curl -si {url} --next -si -d x {url}"),
                    format!(
                        "200 502 {}: the POST loses the same race and is not replayed (it may have reached \
                         the target)",
                        fault.expected_cause()
                    ),
                ));
            }
            Fault::KeepAliveCloser(_) => tries.push(try_(format!("curl -si --rate 20/m {url} {url}"), expect(fault))),
            _ => tries.push(try_(format!("curl -i {url}"), expect(fault))),
        }
        let config_path = dir.config();
        match fault {
            Fault::Refuse | Fault::TlsExpired => probes.push(try_(
                format!("waygate doctor probe {name} --config {}", config_path.display()),
                format!("{}, from this host, the gateway's way", fault.expected_cause()),
            )),
            Fault::KeepAliveCloser(idle) => probes.push(try_(
                format!("waygate doctor probe {name} --config {} --keepalive", config_path.display()),
                format!("the target's idle keep-alive measured: about {idle:?}, under pool_idle_timeout (60s)"),
            )),
            _ => {}
        }
        targets.push(running);
    }
    let grpc = super::grpc::routes(100).await?;
    config.push_str(&grpc.rules);
    groups.push_str(&grpc.groups);
    tries.extend(grpc.tries);
    targets.extend(grpc.targets);
    let ws = super::websocket::routes(200, HEALTH_CHECK).await?;
    config.push_str(&ws.rules);
    groups.push_str(&ws.groups);
    tries.extend(ws.tries);
    targets.extend(ws.targets);
    if let Some(host) = function_host().await? {
        for (i, (name, expect)) in FUNCTIONS.iter().enumerate() {
            let _ = write!(
                config,
                "[[listener.rule]]\npriority = {}\npath = \"/function/{name}*\"\ntarget_group = \"function-{name}\"\n\n",
                1000 + i
            );
            let _ = write!(
                groups,
                "[[target_group]]\nname = \"function-{name}\"\nprotocol = \"lambda\"\n\
                 function = {{ name = \"{name}\", endpoint = \"http://{}\" }}\n\n",
                host.addr()
            );
            tries.push(try_(format!("curl -i {{gw}}/function/{name}"), *expect));
        }
        targets.push(host);
    }
    config.push_str(&groups);
    config.push_str(&super::alert::config());
    Ok(Plan { config, targets, tries, probes })
}

/// The function routes: the lab's function host behind a lambda group each (docs/lambda.md).
const FUNCTIONS: [(&str, &str); 2] = [
    ("echo", "200 from a function (the lab's echo): the body is the event ALB would send it"),
    ("raise", "502 LambdaUnhandled: the function raised; its error type and message are in the log, not the response"),
];

/// The lab's function host, accepting the keys the gateway will sign with (the environment's or the shared
/// files'; they never leave this machine). `None` when there are none: the function routes are left out.
async fn function_host() -> Result<Option<Running>, String> {
    use waygate_proxy::function::credentials::{Found, ProcessEnv, find};
    let Ok(Found::Keys(keys)) = find(&ProcessEnv, None).await else { return Ok(None) };
    let host = FunctionHost::new().credentials(keys.access_key_id, keys.secret_access_key);
    host.spawn(loopback()).await.map(Some).map_err(|e| format!("function host: {e}"))
}
