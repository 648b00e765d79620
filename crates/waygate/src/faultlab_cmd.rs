//! `waygate faultlab`: run the fault lab's misbehaving targets by hand, to point a gateway (or curl) at.

use std::net::SocketAddr;

use waygate_faultlab::Fault;

pub async fn faultlab(names: &[String], list: bool) -> u8 {
    if list {
        for f in Fault::ALL {
            println!("{:<24} {:<32} {}", f.name(), f.expected_cause(), f.description());
        }
        return 0;
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
