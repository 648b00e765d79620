//! `waygate demo`: the gateway on an embedded configuration, with demo targets on loopback: two healthy
//! backends behind `/`, and one route per fault-lab failure under `/fault/<name>`, so a newcomer sees every
//! cause the gateway can explain with nothing but curl.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use waygate_faultlab::{Backend, Fault, Running, TestPki};

/// Faults whose delays the demo shortens so a curl answers in seconds.
const DEMO_SLOW_HEAD: Duration = Duration::from_secs(8);
const DEMO_KEEPALIVE_IDLE: Duration = Duration::from_secs(2);

pub async fn demo(port: u16, admin_port: u16, workers: usize) -> u8 {
    match start(port, admin_port).await {
        Ok((config, _targets)) => crate::run::serve(config, None, Duration::from_secs(5), workers).await,
        Err(e) => {
            eprintln!("waygate demo: {e}");
            1
        }
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Starts the demo targets and builds the configuration that routes to them.
async fn start(port: u16, admin_port: u16) -> Result<(waygate_config::Config, Vec<Running>), String> {
    let dir = std::env::temp_dir().join(format!("waygate-demo-{}", std::process::id()));
    let pki = TestPki::shared();
    let files =
        pki.write_files(&dir).map_err(|e| format!("cannot write demo certificates to {}: {e}", dir.display()))?;
    let mut targets = Vec::new();
    let mut healthy = Vec::new();
    for name in ["app-1", "app-2"] {
        let running = Backend::new(name).spawn(loopback()).await.map_err(|e| format!("demo backend: {e}"))?;
        healthy.push(format!("\"{}\"", running.addr()));
        targets.push(running);
    }
    let mut text = format!(
        "[admin]\nbind = \"127.0.0.1:{admin_port}\"\n\n[errors]\nprofile = \"alb\"\n\n\
         [[listener]]\nname = \"demo\"\nbind = \"127.0.0.1:{port}\"\ndefault_target_group = \"app\"\n\n"
    );
    let mut groups = format!("[[target_group]]\nname = \"app\"\ntargets = [{}]\n\n", healthy.join(", "));
    let mut lines =
        vec![format!("  curl -i http://127.0.0.1:{port}/            healthy, round robin over app-1 and app-2")];
    for (i, fault) in Fault::ALL.iter().enumerate() {
        let fault = match fault {
            Fault::SlowHead(_) => Fault::SlowHead(DEMO_SLOW_HEAD),
            Fault::KeepAliveCloser(_) => Fault::KeepAliveCloser(DEMO_KEEPALIVE_IDLE),
            f => *f,
        };
        let running = fault.spawn(loopback()).await.map_err(|e| format!("fault {}: {e}", fault.name()))?;
        let name = fault.name();
        let _ = write!(
            text,
            "[[listener.rule]]\npriority = {}\npath = \"/fault/{name}*\"\ntarget_group = \"{name}\"\n\n",
            i + 1
        );
        let tls = if fault.tls() {
            format!("protocol = \"https\"\ntls = {{ ca = \"{}\", sni = \"localhost\" }}\n", files.ca.display())
        } else {
            String::new()
        };
        let _ = write!(
            groups,
            "[[target_group]]\nname = \"{name}\"\ntargets = [\"{}\"]\nretries = 0\n{tls}\
             connect_timeout = \"3s\"\ntls_handshake_timeout = \"3s\"\nresponse_timeout = \"5s\"\n\n",
            running.addr(),
        );
        let expect = match fault.expected_cause() {
            "" => "the target's own 503, passed through (no Proxy-Status)".to_owned(),
            cause => format!("expect {cause}"),
        };
        lines.push(format!("  curl -i http://127.0.0.1:{port}/fault/{name:<24}{expect}"));
        targets.push(running);
    }
    text.push_str(&groups);
    let config = waygate_config::parse(&text, Path::new("<demo>")).map_err(|e| format!("demo config:\n{e}"))?;
    if port == 0 || admin_port == 0 {
        println!("waygate demo: port 0 given: the ports the kernel picked are in the `listening` log lines below\n");
    }
    println!("waygate demo: gateway on http://127.0.0.1:{port}, admin on http://127.0.0.1:{admin_port}\n");
    println!("Try:");
    for line in lines {
        println!("{line}");
    }
    println!("\nEvery gateway-generated error carries Proxy-Status and x-request-id; the log below explains it.");
    println!("Stop with Ctrl-C.\n");
    Ok((config, targets))
}
