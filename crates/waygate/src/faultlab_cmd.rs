//! `waygate faultlab`: run the fault lab's misbehaving targets by hand, to point a gateway (or curl) at, and
//! its function host (`function-host`: the Lambda Invoke API, docs/lambda.md).

use std::net::SocketAddr;

use waygate_faultlab::lambda::{FUNCTIONS, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};
use waygate_faultlab::{Fault, FunctionHost};

/// The name that runs the function host instead of a fault.
const FUNCTION_HOST: &str = "function-host";

pub async fn faultlab(names: &[String], list: bool) -> u8 {
    if list {
        for f in Fault::ALL {
            println!("{:<24} {:<32} {}", f.name(), f.expected_cause(), f.description());
        }
        println!("{FUNCTION_HOST:<24} {:<32} the Lambda Invoke API: functions {}", "Lambda*", FUNCTIONS.join(", "));
        return 0;
    }
    if names.iter().any(|n| n == FUNCTION_HOST) {
        return function_host().await;
    }
    let mut faults = Vec::new();
    for name in names {
        match Fault::from_name(name) {
            Some(f) => faults.push(f),
            None => {
                eprintln!("waygate faultlab: unknown fault {name:?} (see `waygate faultlab --list`)");
                return 1;
            }
        }
    }
    if faults.is_empty() {
        faults = Fault::ALL.to_vec();
    }
    let mut running = Vec::new();
    for f in faults {
        match f.spawn(SocketAddr::from(([127, 0, 0, 1], 0))).await {
            Ok(r) => {
                println!("{:<24} {:<22} expect {}", f.name(), r.addr(), f.expected_cause());
                running.push(r);
            }
            Err(e) => {
                eprintln!("waygate faultlab: {}: {e}", f.name());
                return 2;
            }
        }
    }
    println!("\nStop with Ctrl-C.");
    let _ = tokio::signal::ctrl_c().await;
    0
}

/// Runs the lab's function host until Ctrl-C.
async fn function_host() -> u8 {
    let host = match FunctionHost::new().spawn(SocketAddr::from(([127, 0, 0, 1], 0))).await {
        Ok(host) => host,
        Err(e) => {
            eprintln!("waygate faultlab: {FUNCTION_HOST}: {e}");
            return 2;
        }
    };
    println!("{FUNCTION_HOST} on http://{}: functions {}", host.addr(), FUNCTIONS.join(", "));
    println!("export AWS_ACCESS_KEY_ID={TEST_ACCESS_KEY_ID} AWS_SECRET_ACCESS_KEY='{TEST_SECRET_ACCESS_KEY}'");
    println!("a target group: function = {{ name = \"echo\", endpoint = \"http://{}\" }}", host.addr());
    println!("\nStop with Ctrl-C.");
    let _ = tokio::signal::ctrl_c().await;
    0
}
