//! What happens to the gateway while the load runs: hot reloads (a new config generation every 4 s, alternately
//! through `POST /api/v1/reload` and SIGHUP), register/deregister cycles (every 3 s a fault lab target with a
//! random fault joins the `flaky` group and the previous one leaves; every 7 s a well-behaved extra target joins
//! or leaves `app`), and a watch on the well-behaved targets' health, which no local trouble may turn unhealthy.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::gateway::{Layout, admin};

/// What the chaos did and what it saw go wrong.
#[derive(Debug, Default)]
pub struct ChaosReport {
    pub reloads_api: u64,
    pub reloads_sighup: u64,
    /// API reloads refused because the file could not be opened for lack of descriptors.
    pub reloads_refused_emfile: u64,
    pub registered: u64,
    pub deregistered: u64,
    /// Faults registered, by name.
    pub faults: BTreeMap<&'static str, u64>,
    /// Control-plane calls that failed (each with what it answered).
    pub errors: Vec<String>,
    /// A well-behaved target seen unhealthy: address, state, reason.
    pub blamed: Vec<String>,
    pub health_samples: u64,
}

/// The run's chaos: where the gateway is, what to register, until when.
pub struct Chaos<'a> {
    pub admin: SocketAddr,
    pub pid: u32,
    pub layout: &'a Layout,
    /// Fault lab targets, each with its fault's name.
    pub faulty: Vec<(&'static str, SocketAddr)>,
    /// A well-behaved target that joins and leaves `app`.
    pub extra: SocketAddr,
    pub until: Instant,
}

const RELOAD_EVERY: Duration = Duration::from_secs(4);
const FLAKY_EVERY: Duration = Duration::from_secs(3);
const EXTRA_EVERY: Duration = Duration::from_secs(7);
const HEALTH_EVERY: Duration = Duration::from_secs(1);

impl Chaos<'_> {
    pub async fn run(self) -> ChaosReport {
        let mut report = ChaosReport::default();
        let (mut reload, mut flaky, mut extra, mut health) = (
            tokio::time::interval(RELOAD_EVERY),
            tokio::time::interval(FLAKY_EVERY),
            tokio::time::interval(EXTRA_EVERY),
            tokio::time::interval(HEALTH_EVERY),
        );
        let (mut generation, mut in_flaky, mut extra_in) = (0u64, None::<SocketAddr>, false);
        // Bounded twice: by the deadline and by a tick count no run reaches (one tick a second at most per timer).
        for _ in 0..10_000_000u64 {
            if Instant::now() >= self.until {
                break;
            }
            tokio::select! {
                _ = reload.tick() => {
                    generation += 1;
                    self.reload(generation, &mut report).await;
                }
                _ = flaky.tick() => {
                    if let Some(old) = in_flaky.take() {
                        self.deregister("flaky", old, &mut report).await;
                    }
                    let (name, addr) = self.faulty[rand::rng().random_range(0..self.faulty.len())];
                    if self.register("flaky", addr, &mut report).await {
                        *report.faults.entry(name).or_default() += 1;
                        in_flaky = Some(addr);
                    }
                }
                _ = extra.tick() => {
                    if extra_in {
                        self.deregister("app", self.extra, &mut report).await;
                    } else {
                        self.register("app", self.extra, &mut report).await;
                    }
                    extra_in = !extra_in;
                }
                _ = health.tick() => self.watch_health(&mut report).await,
                () = tokio::time::sleep_until(self.until.into()) => break,
            }
        }
        if let Some(old) = in_flaky {
            self.deregister("flaky", old, &mut report).await;
        }
        report
    }

    async fn reload(&self, generation: u64, report: &mut ChaosReport) {
        if let Err(e) = self.layout.write(generation) {
            report.errors.push(format!("writing config generation {generation}: {e}"));
            return;
        }
        if generation.is_multiple_of(2) {
            match admin(self.admin, "POST", "/api/v1/reload", "").await {
                Ok((200, _)) => report.reloads_api += 1,
                // Reading the file needs a descriptor: at EMFILE the reload is refused, cleanly, and the running
                // configuration stays (the answer names the errno). Counted, not a failure.
                Ok((422, body)) if body.contains("os error 24") => report.reloads_refused_emfile += 1,
                other => report.errors.push(format!("reload {generation}: {other:?}")),
            }
        } else if crate::gateway::hangup(self.pid) {
            report.reloads_sighup += 1;
        } else {
            report.errors.push(format!("SIGHUP for generation {generation} failed"));
        }
    }

    async fn register(&self, group: &str, addr: SocketAddr, report: &mut ChaosReport) -> bool {
        let path = format!("/api/v1/target-groups/{group}/targets");
        match admin(self.admin, "POST", &path, &format!("{{\"targets\":[\"{addr}\"]}}")).await {
            Ok((status, _)) if (200..300).contains(&status) => {
                report.registered += 1;
                true
            }
            other => {
                report.errors.push(format!("register {addr} in {group}: {other:?}"));
                false
            }
        }
    }

    async fn deregister(&self, group: &str, addr: SocketAddr, report: &mut ChaosReport) {
        let path = format!("/api/v1/target-groups/{group}/targets/{addr}");
        match admin(self.admin, "DELETE", &path, "").await {
            Ok((status, _)) if (200..300).contains(&status) => report.deregistered += 1,
            // A reload in between may have dropped the registration already: nothing left to deregister.
            Ok((404, _)) => {}
            other => report.errors.push(format!("deregister {addr} from {group}: {other:?}")),
        }
    }

    /// The well-behaved targets (the file's) may be initial after a reload, never unhealthy.
    async fn watch_health(&self, report: &mut ChaosReport) {
        let Ok((200, body)) = admin(self.admin, "GET", "/api/v1/target-groups", "").await else {
            report.errors.push("GET /api/v1/target-groups failed".into());
            return;
        };
        report.health_samples += 1;
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&body) else { return };
        let good: Vec<String> =
            self.layout.app.iter().chain([&self.layout.flaky_ok, &self.extra]).map(|a| a.to_string()).collect();
        for group in json["target_groups"].as_array().into_iter().flatten() {
            for t in group["targets"].as_array().into_iter().flatten() {
                let address = t["address"].as_str().unwrap_or("");
                if good.iter().any(|g| g == address) && t["state"] == "unhealthy" {
                    report
                        .blamed
                        .push(format!("{address} unhealthy: {} (last check {})", t["reason"], t["last_check"]));
                }
            }
        }
    }
}
