//! `waygate targets list|register|deregister`: the admin API's target registration from the command line.
//! `deregister --wait` follows the drain to its end and says how it ended, so a fleet can be replaced one
//! target at a time from a script. Exit codes: 0 done, 1 refused (unknown group, target not registered, bad
//! address), 2 the admin API could not be reached, 3 (`--wait`) requests were aborted when the drain ended.

use std::time::{Duration, Instant};

use clap::Subcommand;
use http::Method;
use serde_json::{Value, json};

use crate::admin_client::{Admin, AdminArgs};

#[derive(Subcommand, Debug)]
pub enum TargetsCommand {
    /// Show every target group's targets with state, reason, requests in flight and time left to drain.
    ///
    /// Example: waygate targets list --config waygate.toml
    List {
        /// Only this target group.
        group: Option<String>,
        /// Print the admin API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Register targets in a group; they take traffic once healthy.
    ///
    /// Example: waygate targets register web 10.0.0.7:8080 10.0.0.8:8080
    Register {
        group: String,
        /// `host:port` of each target.
        #[arg(required = true)]
        targets: Vec<String>,
        /// Weight of these targets (weighted_random; 0-999).
        #[arg(long, default_value_t = 1)]
        weight: u32,
    },
    /// Deregister a target: it takes no new requests and drains for the group's deregistration_delay.
    ///
    /// Example: waygate targets deregister web 10.0.0.7:8080 --wait
    Deregister {
        group: String,
        /// `host:port` of the target.
        target: String,
        /// Wait until the drain ends and report how it ended.
        #[arg(long)]
        wait: bool,
    },
}

pub async fn targets(admin: &AdminArgs, command: &TargetsCommand) -> u8 {
    let admin = match Admin::from_args(admin) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("waygate targets: {e}");
            return 1;
        }
    };
    match run(&admin, command).await {
        Ok(code) => code,
        Err(Failure::Refused(e)) => {
            eprintln!("waygate targets: {e}");
            1
        }
        Err(Failure::Unreachable(e)) => {
            eprintln!("waygate targets: {e}");
            2
        }
    }
}

enum Failure {
    Refused(String),
    Unreachable(String),
}

async fn call(admin: &Admin, method: Method, path: &str, body: Option<Value>) -> Result<Value, Failure> {
    let answer = admin.call(method, path, body.map(|b| b.to_string())).await.map_err(Failure::Unreachable)?;
    answer.json().map_err(Failure::Refused)
}

/// A path segment with the characters an address may hold escaped (`[::1]:80`).
fn escape(segment: &str) -> String {
    segment.replace('%', "%25").replace('[', "%5B").replace(']', "%5D").replace('/', "%2F")
}

async fn run(admin: &Admin, command: &TargetsCommand) -> Result<u8, Failure> {
    match command {
        TargetsCommand::List { group, json } => {
            let path = match group {
                Some(g) => format!("/api/v1/target-groups/{}", escape(g)),
                None => "/api/v1/target-groups".to_owned(),
            };
            let v = call(admin, Method::GET, &path, None).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                let groups = match v.get("target_groups") {
                    Some(Value::Array(a)) => a.clone(),
                    _ => vec![v],
                };
                print!("{}", table(&groups));
            }
            Ok(0)
        }
        TargetsCommand::Register { group, targets, weight } => {
            let list: Vec<Value> = targets.iter().map(|t| json!({ "address": t, "weight": weight })).collect();
            let path = format!("/api/v1/target-groups/{}/targets", escape(group));
            let v = call(admin, Method::POST, &path, Some(json!({ "targets": list }))).await?;
            for t in v["registered"].as_array().into_iter().flatten() {
                println!("registered {} in {group}", t.as_str().unwrap_or("?"));
            }
            for t in v["already_registered"].as_array().into_iter().flatten() {
                println!("{} was already registered in {group}", t.as_str().unwrap_or("?"));
            }
            Ok(0)
        }
        TargetsCommand::Deregister { group, target, wait } => {
            let path = format!("/api/v1/target-groups/{}/targets/{}", escape(group), escape(target));
            let v = call(admin, Method::DELETE, &path, None).await?;
            let delay = Duration::from_millis(v["deregistration_delay_ms"].as_u64().unwrap_or(0));
            let address = v["target"].as_str().unwrap_or(target).to_owned();
            println!(
                "deregistered {address} from {group}: draining for up to {:.1}s ({} request(s) in flight)",
                delay.as_secs_f64(),
                v["in_flight"]
            );
            if !*wait {
                return Ok(0);
            }
            // Following from the start instead could take an older drain of the same target for this one.
            let Some(since) = v["audit_seq"].as_u64() else {
                let why = "the deregistration's answer has no audit_seq to follow the drain from";
                return Err(Failure::Unreachable(why.to_owned()));
            };
            wait_for_drain(admin, group, &address, delay, since).await
        }
    }
}

/// Polls the audit log after the deregistration's own event (`since`) until the target's drain has ended;
/// 0 when nothing was aborted, 3 otherwise.
async fn wait_for_drain(
    admin: &Admin,
    group: &str,
    address: &str,
    delay: Duration,
    mut since: u64,
) -> Result<u8, Failure> {
    let give_up = Instant::now() + delay + Duration::from_secs(30);
    while Instant::now() < give_up {
        let v = call(admin, Method::GET, &format!("/api/v1/audit?since={since}"), None).await?;
        for e in v["events"].as_array().into_iter().flatten() {
            since = since.max(e["seq"].as_u64().unwrap_or(0));
            let ours = e["target_group"] == group && e["target"] == address;
            if ours && e["action"] == "drained" {
                let details = e["details"].as_str().unwrap_or("");
                println!("{address}: {details}");
                return Ok(if e["aborted"].as_u64().unwrap_or(0) > 0 { 3 } else { 0 });
            }
            if ours && e["action"] == "register" {
                println!("{address}: registered again while draining; back in service");
                return Ok(0);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(Failure::Unreachable(format!("the drain of {address} did not end within deregistration_delay + 30s")))
}

fn table(groups: &[Value]) -> String {
    let mut rows = vec![["GROUP", "TARGET", "STATE", "REASON", "IN_FLIGHT", "DRAIN_LEFT"].map(str::to_owned)];
    for g in groups {
        let name = g["name"].as_str().unwrap_or("?");
        let targets = g["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            rows.push([name, "-", "-", "no registered targets", "-", "-"].map(str::to_owned));
        }
        for t in targets {
            let left =
                t["drain_time_left_ms"].as_u64().map_or("-".to_owned(), |ms| format!("{:.1}s", ms as f64 / 1000.0));
            rows.push([
                name.to_owned(),
                t["address"].as_str().unwrap_or("?").to_owned(),
                t["state"].as_str().unwrap_or("?").to_owned(),
                t["reason"].as_str().unwrap_or("-").to_owned(),
                t["in_flight"].to_string(),
                left,
            ]);
        }
    }
    let widths: Vec<usize> = (0..6).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
