//! One soak, start to finish: targets, the gateway, the load with its chaos and the sampler, the drain, then
//! the checks. Returns what the report needs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use waygate_faultlab::{Backend, Fault, Running};

use crate::Args;
use crate::chaos::{Chaos, ChaosReport};
use crate::gateway::{Layout, Process};
use crate::load::{self, Seen, Tally, Target};
use crate::verify::{self, Findings, class, sum};

/// The descriptor limit set after the warm-up is this many below the most the gateway had open while warming
/// up: the load's bursts (new client and target connections, registrations, slow and non-reading clients) run
/// into EMFILE again and again, on accept and on connect, while the steady load still fits.
pub const FD_BELOW_PEAK: u64 = 16;
/// Resident memory the gateway may reach (a debug build, under this load): far above what it needs, far below
/// what a client that does not read could pin without the idle timeout (16 MiB each, many times over).
pub const RSS_LIMIT: u64 = 256 << 20;
/// How much the resident memory may grow from the end of the warm-up to the end of the run: leaks show as
/// steady growth over minutes, allocator noise does not.
pub const RSS_GROWTH: u64 = 48 << 20;

/// The faults registered at random into the `flaky` group (plain-HTTP ones; `SlowHead` beyond its 2 s
/// response_timeout).
fn faults() -> Vec<Fault> {
    vec![
        Fault::Refuse,
        Fault::CloseBeforeResponse,
        Fault::ResetBeforeResponse,
        Fault::MalformedStatusLine,
        Fault::MalformedHeader,
        Fault::HugeHead,
        Fault::SlowHead(Duration::from_secs(3)),
        Fault::TruncatedBody,
        Fault::StalledBody,
        Fault::KeepAliveRace,
        Fault::ServerError,
    ]
}

/// Per client kind: requests, statuses, bodies that ended in an error.
#[derive(Debug, Default)]
pub struct KindCount {
    pub requests: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub body_errors: u64,
}

/// Everything the report shows.
#[derive(Debug, Default)]
pub struct Outcome {
    pub ran: Duration,
    pub warmup: Duration,
    pub kinds: BTreeMap<&'static str, KindCount>,
    pub causes: BTreeMap<String, u64>,
    /// Per status class: the client's count, the access log's, the metrics'.
    pub classes: BTreeMap<String, (u64, u64, u64)>,
    pub lost: u64,
    pub chaos: ChaosReport,
    pub nonread_cut: u64,
    pub fd_warm_peak: u64,
    pub fd_limit: u64,
    pub fd_peak: u64,
    pub accept_failures: u64,
    pub accept_failure_lines: u64,
    /// (seconds since start, resident bytes) once a second.
    pub rss: Vec<(u64, u64)>,
    pub rss_warm: u64,
    pub exit_code: Option<i32>,
    pub load_before: String,
    pub load_after: String,
    pub findings: Findings,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

pub async fn soak(args: &Args) -> Result<Outcome, String> {
    let mut out = Outcome { load_before: loadavg(), ..Outcome::default() };
    std::fs::create_dir_all(&args.dir).map_err(|e| format!("{}: {e}", args.dir.display()))?;
    let lo: SocketAddr = ([127, 0, 0, 1], 0).into();
    let spawn = |name: &str| Backend::new(name).spawn(lo);
    let mut good: Vec<Running> = Vec::new();
    for name in ["app-1", "app-2", "app-3", "flaky-ok", "app-extra"] {
        good.push(spawn(name).await.map_err(|e| format!("backend {name}: {e}"))?);
    }
    let mut faulty_running = Vec::new();
    let mut faulty = Vec::new();
    for f in faults() {
        let r = f.spawn(lo).await.map_err(|e| format!("fault {}: {e}", f.name()))?;
        faulty.push((f.name(), r.addr()));
        faulty_running.push(r);
    }
    let layout =
        Layout { dir: args.dir.clone(), app: good[..3].iter().map(Running::addr).collect(), flaky_ok: good[3].addr() };
    layout.write(0).map_err(|e| format!("config: {e}"))?;
    let mut gw = Process::start(&args.waygate, &layout)?;
    crate::gateway::wait_ready(gw.admin).await?;

    let started = Instant::now();
    let until = started + args.duration;
    out.warmup = (args.duration / 10).clamp(Duration::from_secs(5), Duration::from_secs(60));
    let tally = Arc::new(Tally::default());
    let target = Target { addr: gw.public, until };
    let mut tasks = Vec::new();
    let mix: [(&str, usize); 5] = [("h1-keepalive", 6), ("h1-close", 3), ("h2", 2), ("slow", 2), ("nonread", 2)];
    for (kind, workers) in mix {
        for _ in 0..workers {
            let tally = tally.clone();
            tasks.push(tokio::spawn(async move {
                match kind {
                    "h1-keepalive" => load::h1(target, &tally, false).await,
                    "h1-close" => load::h1(target, &tally, true).await,
                    "h2" => load::h2(target, &tally).await,
                    "slow" => load::slow(target, &tally).await,
                    _ => load::nonread(target, &tally).await,
                }
            }));
        }
    }
    let chaos = Chaos { admin: gw.admin, pid: gw.pid, layout: &layout, faulty, extra: good[4].addr(), until };
    let sampler = sample(&gw, started, until, out.warmup);
    let (chaos, samples) = tokio::join!(chaos.run(), sampler);
    out.chaos = chaos;
    (out.rss, out.rss_warm, out.fd_warm_peak, out.fd_limit, out.fd_peak) = samples?;
    for t in tasks {
        // Each worker stops at the deadline; a request then in flight ends within its own bounds.
        if tokio::time::timeout(Duration::from_secs(120), t).await.is_err() {
            out.findings.failures.push("a load worker did not finish within 120 s of the deadline".into());
        }
    }
    out.ran = started.elapsed();
    let seen = tally.take();
    out.nonread_cut = tally.nonread_cut.load(Relaxed);
    let nonread_not_cut = tally.nonread_not_cut.load(Relaxed);

    // Every exchange observed: the gateway's request count reaches the client's.
    let total = seen.len() as f64;
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        text = crate::gateway::admin(gw.admin, "GET", "/metrics", "").await.map(|r| r.1).unwrap_or_default();
        if verify::sum(&verify::metrics(&text), "waygate_requests_total", |_| true) >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await; // polling the metrics, with the deadline above
    }
    let samples = verify::metrics(&text);
    out.exit_code = gw.terminate(Duration::from_secs(90));
    out.load_after = loadavg();
    drop(good);
    drop(faulty_running);

    check(&mut out, &layout, &gw, &seen, &samples, nonread_not_cut)?;
    Ok(out)
}

/// Samples memory and descriptors once a second; after the warm-up, sets the descriptor limit just above the
/// most the gateway needed. Returns (rss series, rss at warm-up, warm-up fd peak, limit, fd peak).
async fn sample(
    gw: &Process,
    started: Instant,
    until: Instant,
    warmup: Duration,
) -> Result<(Vec<(u64, u64)>, u64, u64, u64, u64), String> {
    let (mut series, mut rss_warm, mut warm_peak, mut limit, mut peak) = (Vec::new(), 0, 0, 0, 0);
    let mut every = tokio::time::interval(Duration::from_millis(250));
    let mut ticks = 0u64;
    while Instant::now() < until {
        every.tick().await;
        ticks += 1;
        let fds = gw.open_descriptors().unwrap_or(0);
        peak = peak.max(fds);
        if limit == 0 {
            warm_peak = warm_peak.max(fds);
            if started.elapsed() >= warmup {
                limit = warm_peak.saturating_sub(FD_BELOW_PEAK);
                gw.limit_descriptors(limit)?;
                rss_warm = gw.rss().unwrap_or(0);
            }
        }
        if ticks.is_multiple_of(4) {
            series.push((started.elapsed().as_secs(), gw.rss().unwrap_or(0)));
        }
    }
    Ok((series, rss_warm, warm_peak, limit, peak))
}

fn check(
    out: &mut Outcome,
    layout: &Layout,
    gw: &Process,
    seen: &BTreeMap<u64, (&'static str, Seen)>,
    samples: &[verify::Sample],
    nonread_not_cut: u64,
) -> Result<(), String> {
    let (log, strays, duplicates) = verify::access_log(&layout.log_dir())?;
    let f = &mut out.findings;
    out.lost = verify::client_vs_log(seen, &log, f);
    f.check(strays == 0, || format!("{strays} access-log line(s) without a soak number"));
    f.check(duplicates == 0, || format!("{duplicates} request number(s) with two access-log lines"));
    for (kind, s) in seen.values() {
        let k = out.kinds.entry(kind).or_default();
        k.requests += 1;
        if let Seen::Answered { status, body_ok, .. } = s {
            *k.statuses.entry(*status).or_default() += 1;
            k.body_errors += u64::from(!body_ok && *kind != "nonread");
            out.classes.entry(class(*status)).or_default().0 += 1;
        }
    }
    for line in log.values() {
        out.classes.entry(class(line.status)).or_default().1 += 1;
        *out.causes.entry(line.cause.clone().unwrap_or_else(|| "-".into())).or_default() += 1;
    }
    for (c, counts) in out.classes.iter_mut() {
        let target = sum(samples, "waygate_target_responses_total", |l| l.get("class") == Some(c));
        let elb = sum(samples, "waygate_elb_responses_total", |l| {
            l.get("code").is_some_and(|code| class(code.parse().unwrap_or(0)) == *c)
        });
        counts.2 = (target + elb) as u64;
        f.check(counts.0 == counts.1 && counts.1 == counts.2, || {
            format!("{c}: client {}, access log {}, metrics {}", counts.0, counts.1, counts.2)
        });
    }
    let requests = sum(samples, "waygate_requests_total", |_| true) as u64;
    f.check(requests == seen.len() as u64, || format!("waygate_requests_total {requests}, client {}", seen.len()));
    let dropped = sum(samples, "waygate_access_log_dropped_total", |_| true);
    f.check(dropped == 0.0, || format!("waygate_access_log_dropped_total {dropped}"));

    // Non-reading clients: every one cut off after idle_timeout, and counted so by the log and the metrics.
    let nonread = out.kinds.get("nonread").map_or(0, |k| k.statuses.values().sum::<u64>());
    let idle_lines = out.causes.get("ClientIdleTimeout").copied().unwrap_or(0);
    let idle_metric = sum(samples, "waygate_client_stream_errors_total", |l| {
        l.get("cause").is_some_and(|c| c == "ClientIdleTimeout")
    }) as u64;
    f.check(nonread_not_cut == 0, || format!("{nonread_not_cut} non-reading client(s) never cut off"));
    f.check(idle_lines == nonread && idle_metric == nonread, || {
        format!("non-reading clients {nonread}, ClientIdleTimeout lines {idle_lines}, metric {idle_metric}")
    });

    // Blame: no well-behaved target in a Target* cause, a target error metric, an unhealthy state, and no
    // local errno under a target's cause in the system log.
    let good: Vec<String> = layout.app.iter().chain([&layout.flaky_ok]).map(|a| a.to_string()).collect();
    let is_good = |t: Option<&String>| t.is_some_and(|t| good.contains(t));
    let blamed_lines: Vec<String> = log
        .iter()
        .filter(|(_, l)| l.cause.as_deref().is_some_and(|c| c.starts_with("Target")) && is_good(l.target.as_ref()))
        .map(|(n, l)| format!("#{n} {:?} {:?}", l.cause, l.target))
        .take(5)
        .collect();
    f.check(blamed_lines.is_empty(), || format!("well-behaved targets blamed in the access log: {blamed_lines:?}"));
    for family in [
        "waygate_target_connection_errors_total",
        "waygate_target_tls_negotiation_errors_total",
        "waygate_target_stream_errors_total",
    ] {
        let n = sum(samples, family, |l| is_good(l.get("target")));
        f.check(n == 0.0, || format!("{family}: {n} against well-behaved targets"));
    }
    f.check(out.chaos.blamed.is_empty(), || {
        format!("well-behaved targets seen unhealthy: {:?}", &out.chaos.blamed[..out.chaos.blamed.len().min(5)])
    });
    f.check(out.chaos.errors.is_empty(), || {
        format!("control-plane calls failed: {:?}", &out.chaos.errors[..out.chaos.errors.len().min(5)])
    });
    let system_log =
        std::fs::read_to_string(&gw.system_log).map_err(|e| format!("{}: {e}", gw.system_log.display()))?;
    let wrong: Vec<&str> = system_log.lines().filter(|l| verify::local_fault_blamed_on_target(l)).take(3).collect();
    f.check(wrong.is_empty(), || format!("system log blames a target for a local fault: {wrong:?}"));
    // Accept failures: every one counted as a rejected connection, logged at most once a second.
    out.accept_failures = sum(samples, "waygate_rejected_connections_total", |_| true) as u64;
    let exhausted = out.causes.get("GatewayResourceExhausted").copied().unwrap_or(0);
    f.check(out.accept_failures + exhausted + out.chaos.reloads_refused_emfile > 0, || {
        format!("the descriptor limit ({}) was never reached: the soak did not test it", out.fd_limit)
    });
    out.accept_failure_lines = system_log.lines().filter(|l| l.contains("accept failed")).count() as u64;
    let seconds = out.ran.as_secs() + 1;
    f.check(out.accept_failure_lines <= seconds, || {
        format!("{} accept-failure log lines in {seconds} s: not rate-limited", out.accept_failure_lines)
    });

    // Memory bounded, and not growing once warm.
    let peak = out.rss.iter().map(|s| s.1).max().unwrap_or(0);
    let end = out.rss.last().map_or(0, |s| s.1);
    f.check(peak <= RSS_LIMIT, || {
        format!("resident memory peaked at {} MiB (bound {} MiB)", peak >> 20, RSS_LIMIT >> 20)
    });
    f.check(end <= out.rss_warm + RSS_GROWTH, || {
        format!("resident memory grew from {} MiB after warm-up to {} MiB", out.rss_warm >> 20, end >> 20)
    });
    f.check(out.exit_code == Some(0), || format!("the gateway's drain ended with {:?}", out.exit_code));
    Ok(())
}
