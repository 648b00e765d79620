//! The gateway under test: its configuration file (rewritten for each hot reload), the `waygate run` process
//! with its system log captured to a file, its admin API (a small HTTP/1.1 client), and what `/proc` says about
//! it (resident memory, open descriptors, and the descriptor limit the soak tightens with prlimit(1)).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// What the configuration is made of: fixed for the run except the generation (a hot reload's change).
pub struct Layout {
    pub dir: PathBuf,
    /// The `app` group's targets: well-behaved, never to be blamed.
    pub app: Vec<SocketAddr>,
    /// The `flaky` group's well-behaved target (faulty ones are registered into the group and deregistered).
    pub flaky_ok: SocketAddr,
}

/// The listener's idle_timeout: a client that reads nothing for this long is cut off.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(2);

impl Layout {
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("waygate.toml")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("access-logs")
    }

    /// Writes the configuration of generation `generation`: what changes between generations is a fixed
    /// response's body and the health-check interval, so that each reload swaps in a real new config.
    pub fn write(&self, generation: u64) -> std::io::Result<()> {
        let list = |addrs: &[SocketAddr]| addrs.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", ");
        let interval = if generation.is_multiple_of(2) { "5s" } else { "6s" };
        let health = format!(
            "[target_group.health_check]\nenabled = true\npath = \"/status/200\"\ninterval = \"{interval}\"\n\
             timeout = \"2s\"\nhealthy_threshold = 2\nunhealthy_threshold = 2\n"
        );
        let text = format!(
            "[admin]\nbind = \"127.0.0.1:0\"\n\n[access_log]\ndir = \"{logs}\"\nformat = \"json\"\n\n\
             [[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\nidle_timeout = \"{idle}s\"\n\
             default_target_group = \"app\"\n\n\
             [[listener.rule]]\npriority = 1\npath = \"/soak-fixed\"\n\
             fixed_response = {{ status = 200, body = \"generation {generation}\", content_type = \"text/plain\" }}\n\n\
             [[listener.rule]]\npriority = 2\nhost = \"flaky.example\"\ntarget_group = \"flaky\"\n\n\
             [[target_group]]\nname = \"app\"\ntargets = [{app}]\nderegistration_delay = \"5s\"\nretries = 1\n{health}\n\
             [[target_group]]\nname = \"flaky\"\ntargets = [\"{flaky}\"]\nresponse_timeout = \"2s\"\n\
             deregistration_delay = \"1s\"\nretries = 1\n{health}",
            logs = self.log_dir().display(),
            idle = IDLE_TIMEOUT.as_secs(),
            app = list(&self.app),
            flaky = self.flaky_ok,
        );
        let tmp = self.dir.join("waygate.toml.new");
        std::fs::write(&tmp, text)?;
        // Whole or not at all: a reload never reads a half-written file.
        std::fs::rename(&tmp, self.config_path())
    }
}

/// A running `waygate run`; killed on drop.
pub struct Process {
    child: Child,
    pub pid: u32,
    pub public: SocketAddr,
    pub admin: SocketAddr,
    pub system_log: PathBuf,
}

impl Process {
    /// Starts the binary on `layout`'s config and waits (bounded) for its listener and admin addresses.
    pub fn start(waygate: &Path, layout: &Layout) -> Result<Process, String> {
        let mut child = Command::new(waygate)
            .args(["run", "--config"])
            .arg(layout.config_path())
            .env("WAYGATE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", waygate.display()))?;
        let system_log = layout.dir.join("system.log");
        let addrs = Arc::new((Mutex::new((None, None)), Condvar::new()));
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let mut file = std::fs::File::create(&system_log).map_err(|e| format!("{}: {e}", system_log.display()))?;
        let found = addrs.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
                let field = || line.split_whitespace().find_map(|kv| kv.strip_prefix("addr=")?.parse().ok());
                let (lock, changed) = &*found;
                let mut addrs = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if line.contains("admin listening") {
                    addrs.1 = field();
                } else if line.contains("listening") && line.contains("listener=public") {
                    addrs.0 = field();
                }
                changed.notify_all();
            }
        });
        let (lock, changed) = &*addrs;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut guard = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (public, admin) = loop {
            if let (Some(p), Some(a)) = *guard {
                break (p, a);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                let log = std::fs::read_to_string(&system_log).unwrap_or_default();
                return Err(format!("waygate did not start; its log ({}):\n{log}", system_log.display()));
            }
            let wait = left.min(Duration::from_millis(200));
            guard = changed.wait_timeout(guard, wait).unwrap_or_else(std::sync::PoisonError::into_inner).0;
        };
        drop(guard);
        Ok(Process { pid: child.id(), child, public, admin, system_log })
    }

    /// SIGTERM, then waits (bounded) for the drain to finish and the process to exit; its exit code.
    pub fn terminate(&mut self, within: Duration) -> Option<i32> {
        let _ = Command::new("kill").args(["-s", "TERM", &self.pid.to_string()]).status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50)); // polling the exit status, with a deadline
        }
        None
    }

    /// Sets the soft and hard descriptor limit of the running process (prlimit(1)).
    pub fn limit_descriptors(&self, limit: u64) -> Result<(), String> {
        let out = Command::new("prlimit")
            .args(["--pid", &self.pid.to_string(), &format!("--nofile={limit}:{limit}")])
            .output()
            .map_err(|e| format!("prlimit(1) from util-linux is needed: {e}"))?;
        if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
    }

    /// Resident memory now, in bytes (VmRSS).
    pub fn rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let kb: u64 =
            status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    }

    /// Descriptors open now.
    pub fn open_descriptors(&self) -> Option<u64> {
        Some(std::fs::read_dir(format!("/proc/{}/fd", self.pid)).ok()?.count() as u64)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (bounded) until the admin API says the gateway is ready (config loaded, listeners bound).
pub async fn wait_ready(admin_addr: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok((200, _)) = admin(admin_addr, "GET", "/ready", "").await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // polling readiness, with the deadline above
    }
    Err("the gateway was not ready within 60 s".into())
}

/// Sends SIGHUP to `pid` (a reload, the way an init system asks for one).
pub fn hangup(pid: u32) -> bool {
    Command::new("kill").args(["-s", "HUP", &pid.to_string()]).status().is_ok_and(|s| s.success())
}

/// One admin API request (HTTP/1.1, a fresh connection): its status and body, or why it failed.
pub async fn admin(addr: SocketAddr, method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(conn);
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, "admin")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .map_err(|e| e.to_string())?;
        let resp = send.send_request(req).await.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.map_err(|e| format!("{method} {path} body: {e}"))?.to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| format!("{method} {path}: no answer in 10 s"))?
}
