//! `waygate demo`: the gateway on an embedded configuration, with demo targets on loopback: two healthy
//! backends behind `/`, and one route per fault-lab failure under `/fault/<name>`, so a newcomer sees every
//! cause the gateway can explain with nothing but curl. One alert rule (`alert.rs`) watches a failing route's
//! cause, and the banner says how to make it fire and where it shows.
//!
//! The sockets are bound before anything is printed: the URLs on screen are the gateway's own (the real ports
//! when `--port 0` or `--admin-port 0` let the kernel choose), and a taken port is an error naming the flag
//! that moves it.

mod alert;
mod dir;
mod grpc;
mod routes;

use std::time::Duration;

use waygate_faultlab::TestPki;

use crate::run::{Bind, Started};
use dir::DemoDir;
use routes::Try;

pub async fn demo(port: u16, admin_port: u16, workers: usize) -> u8 {
    let mut dir = match DemoDir::create(TestPki::shared().ca_pem()) {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("waygate demo: cannot write the demo's directory in {}: {e}", std::env::temp_dir().display());
            return 1;
        }
    };
    let (started, plan) = match start(&dir, port, admin_port, workers).await {
        Ok(s) => s,
        Err((code, message)) => {
            eprintln!("waygate demo: {message}");
            return code;
        }
    };
    dir.started();
    let gw = match started.listener_addr("demo").await {
        Some(addr) => format!("http://{addr}"),
        None => {
            eprintln!("waygate demo: the demo listener is not bound");
            return 2;
        }
    };
    let admin = format!("http://{}", started.admin_addr());
    print_banner(&dir, &gw, &admin, &plan);
    let code = started.serve(Duration::from_secs(5)).await;
    // The targets stop only after the gateway drained: requests in flight still reach them.
    drop(plan.targets);
    code
}

/// Starts the targets, then the gateway; a port that cannot be bound is named with its flag.
async fn start(
    dir: &DemoDir,
    port: u16,
    admin_port: u16,
    workers: usize,
) -> Result<(Started, routes::Plan), (u8, String)> {
    let plan = routes::plan(dir, port, admin_port).await.map_err(|e| (1, e))?;
    std::fs::write(dir.config(), &plan.config)
        .map_err(|e| (1, format!("cannot write {}: {e}", dir.config().display())))?;
    let config = waygate_config::parse(&plan.config, &dir.config()).map_err(|e| (2, format!("demo config:\n{e}")))?;
    let started = Started::start(config, None, workers).await.map_err(|e| {
        let hint = match e.bind {
            Some(Bind::Listener) => format!(
                "\n  the gateway's port cannot be bound: choose another with --port N (--port 0 picks a free one), e.g. \
                 waygate demo --port 0 --admin-port {admin_port}"
            ),
            Some(Bind::Admin) => format!(
                "\n  the admin port cannot be bound: choose another with --admin-port N (--admin-port 0 picks a free \
                 one), e.g. waygate demo --port {port} --admin-port 0"
            ),
            None => String::new(),
        };
        (e.code, format!("{}{hint}", e.message))
    })?;
    Ok((started, plan))
}

/// `text` broken at spaces into lines of at most `width` characters (a longer word gets a line of its own).
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split(' ') {
        if line_len > 0 && line_len + 1 + word.len() > width {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += word.len();
    }
    out
}

fn render(text: &str, gw: &str, admin: &str) -> String {
    text.replace("{gw}", gw).replace("{admin}", admin)
}

/// Commands longer than this take their expectation on the next line.
const COMMAND_WIDTH: usize = 60;

/// `command  # expectation` lines (the expectation on its own line after a long command): each can be pasted
/// into a shell as it is.
fn print_tries(tries: &[Try], gw: &str, admin: &str) {
    let commands: Vec<String> = tries.iter().map(|t| render(&t.command, gw, admin)).collect();
    let width = commands.iter().map(String::len).filter(|&n| n <= COMMAND_WIDTH).max().unwrap_or(0);
    for (command, t) in commands.iter().zip(tries) {
        let expect = render(&t.expect, gw, admin);
        if command.len() <= width {
            println!("  {command:<width$}  # {expect}");
        } else {
            println!("  {command}\n      # {expect}");
        }
    }
}

fn print_banner(dir: &DemoDir, gw: &str, admin: &str, plan: &routes::Plan) {
    println!("waygate demo: gateway on {gw}, admin API on {admin}");
    println!("  configuration: {}", dir.config().display());
    println!("  access log:    {}\n", dir.logs().display());
    println!(
        "Try (every error the gateway generates carries Proxy-Status and x-request-id; the log below explains it):"
    );
    print_tries(&plan.tries, gw, admin);
    let passing: Vec<&str> = routes::PASS_HEALTH_CHECKS.iter().map(|f| f.name()).collect();
    let (last, rest) = passing.split_last().unwrap_or((&"", &[]));
    let remark = format!(
        "Health checks (GET / every 5s) pass on {} and {last}, whose requests all fail: a check sees only what one \
         GET / shows. refuse turns unhealthy after two failed checks, and a group whose every target is unhealthy \
         fails open: its requests still reach the target and still answer 502 TargetConnectionRefused, not 503 \
         NoHealthyTargets. Each target's last check: GET {admin}/api/v1/target-groups.",
        rest.join(", ")
    );
    println!("\n{}", wrap(&remark, 116));
    println!("\n{}", wrap(&alert::intro(), 116));
    print_tries(&alert::tries(), gw, admin);
    println!("{}", wrap(&render(&alert::remark(), gw, admin), 116));
    println!("\nThen:");
    let mut next = vec![
        Try {
            command: format!("waygate doctor logs {}", dir.logs().display()),
            expect: "every 5xx of the requests above, by cause, with remediation".into(),
        },
        Try {
            command: "curl -s {admin}/api/v1/target-groups".into(),
            expect: "each target's health state, reason code, last check and learned keep-alive".into(),
        },
        Try {
            command: "curl -s {admin}/metrics".into(),
            expect: "waygate_elb_responses_total by cause, waygate_alert_firing by alert".into(),
        },
        Try {
            command: "curl -s {admin}/dashboard".into(),
            expect: "the live dashboard (open the URL in a browser): requests and gateway 5xx by cause, latency, \
                     targets, alerts"
                .into(),
        },
    ];
    next.extend(plan.probes.iter().map(|p| Try { command: p.command.clone(), expect: p.expect.clone() }));
    print_tries(&next, gw, admin);
    println!("\nStop with Ctrl-C (the demo's certificate and configuration are removed; the access log stays).\n");
}
