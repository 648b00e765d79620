//! Test support for the `waygate` binary: start it on a config file, learn its ports from its log, read its
//! log lines, send it signals, and make plain HTTP/1.1 requests to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_waygate")
}

pub fn tempdir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("waygate-bin-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Log lines of a running process, with a condition variable to wait on new ones.
#[derive(Default)]
struct Lines {
    lines: Mutex<Vec<String>>,
    changed: Condvar,
}

impl Lines {
    /// Reads `from` line by line on a thread of its own.
    fn collect(from: impl Read + Send + 'static) -> Arc<Lines> {
        let lines = Arc::new(Lines::default());
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines().map_while(Result::ok) {
                sink.lines.lock().unwrap().push(line);
                sink.changed.notify_all();
            }
        });
        lines
    }

    /// Waits (bounded) until `nth` lines (counting from 1) contain every fragment; returns the `nth`.
    fn wait(&self, fragments: &[&str], nth: usize, what: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        let mut lines = self.lines.lock().unwrap();
        loop {
            if let Some(l) = lines.iter().filter(|l| fragments.iter().all(|f| l.contains(f))).nth(nth - 1) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no {what} line {nth} with {fragments:?}; {what} so far:\n{}", lines.join("\n"));
            lines = self.changed.wait_timeout(lines, left).unwrap().0;
        }
    }
}

/// A running `waygate run --config FILE`.
pub struct Proc {
    pub child: Child,
    lines: Arc<Lines>,
    /// What it printed on stdout (the demo's banner).
    stdout: Arc<Lines>,
}

impl Proc {
    pub fn start(config: &Path) -> Proc {
        Self::spawn(Command::new(bin()), config)
    }

    /// `waygate run --config FILE` with extra environment variables.
    pub fn start_env(config: &Path, env: &[(&str, &Path)]) -> Proc {
        let mut cmd = Command::new(bin());
        cmd.envs(env.iter().map(|(k, v)| (*k, *v)));
        Self::spawn(cmd, config)
    }

    /// Runs the gateway inside a network namespace (`ip netns exec NS waygate run ...`).
    pub fn start_in_netns(ns: &str, config: &Path) -> Proc {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, bin()]);
        Self::spawn(cmd, config)
    }

    /// Runs the gateway under a wrapper command (`prlimit --nofile=N:N --`, ...): `WRAPPER... waygate run ...`.
    pub fn start_wrapped(wrapper: &[&str], config: &Path) -> Proc {
        let mut cmd = Command::new(wrapper[0]);
        cmd.args(&wrapper[1..]).arg(bin());
        Self::spawn(cmd, config)
    }

    fn spawn(mut cmd: Command, config: &Path) -> Proc {
        cmd.args(["run", "--config"]).arg(config);
        Self::spawn_command(cmd)
    }

    /// Runs `waygate ARGS...` (e.g. the demo) with its log captured and extra environment variables.
    pub fn start_args_env(args: &[&str], env: &[(&str, &Path)]) -> Proc {
        let mut cmd = Command::new(bin());
        cmd.args(args).envs(env.iter().map(|(k, v)| (*k, *v)));
        Self::spawn_command(cmd)
    }

    fn spawn_command(mut cmd: Command) -> Proc {
        let mut child = cmd
            .env("WAYGATE_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn waygate");
        let lines = Lines::collect(child.stderr.take().expect("stderr"));
        let stdout = Lines::collect(child.stdout.take().expect("stdout"));
        Proc { child, lines, stdout }
    }

    /// Waits (bounded) for a log line containing every fragment; returns it.
    pub fn wait_line(&self, fragments: &[&str]) -> String {
        self.lines.wait(fragments, 1, "log")
    }

    /// Waits (bounded) for the `nth` log line (counting from 1) containing every fragment; returns it.
    pub fn wait_nth_line(&self, fragments: &[&str], nth: usize) -> String {
        self.lines.wait(fragments, nth, "log")
    }

    /// How many log lines so far contain every fragment.
    pub fn count_lines(&self, fragments: &[&str]) -> usize {
        self.lines.lines.lock().unwrap().iter().filter(|l| fragments.iter().all(|f| l.contains(f))).count()
    }

    /// Waits (bounded) for a stdout line containing every fragment; returns it.
    pub fn wait_stdout(&self, fragments: &[&str]) -> String {
        self.stdout.wait(fragments, 1, "stdout")
    }

    /// Everything printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lines.lock().unwrap().join("\n")
    }

    pub fn log(&self) -> String {
        self.lines.lines.lock().unwrap().join("\n")
    }

    /// The address the named listener bound (from its `listening` log line).
    pub fn listener(&self, name: &str) -> SocketAddr {
        let line = self.wait_line(&["listening", &format!("listener={name}")]);
        addr_field(&line)
    }

    pub fn admin(&self) -> SocketAddr {
        addr_field(&self.wait_line(&["admin listening"]))
    }

    /// Sends a signal by name (`HUP`, `TERM`, `INT`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").args(["-s", name, &self.child.id().to_string()]).status().expect("kill(1)");
        assert!(status.success(), "kill -s {name} failed");
    }

    /// Waits (bounded) for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "waygate did not exit; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20)); // polling the exit status, with a deadline
        }
    }

    /// Peak resident set size of the gateway process, in bytes (Linux /proc).
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("proc status");
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM");
        kb * 1024
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn addr_field(line: &str) -> SocketAddr {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix("addr="))
        .and_then(|v| v.trim_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("no addr= in {line:?}"))
}

/// Writes a config file with a `public` listener on an ephemeral port and group `app`.
pub fn write_config(dir: &Path, targets: &[SocketAddr]) -> PathBuf {
    let path = dir.join("waygate.toml");
    let list: Vec<String> = targets.iter().map(|a| format!("\"{a}\"")).collect();
    let text = format!(
        "[admin]\nbind = \"127.0.0.1:0\"\n\n[[listener]]\nname = \"public\"\nbind = \"127.0.0.1:0\"\n\
         default_target_group = \"app\"\n\n[[target_group]]\nname = \"app\"\ntargets = [{}]\n",
        list.join(", ")
    );
    std::fs::write(&path, text).expect("write config");
    path
}

pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A blocking HTTP/1.1 request with `Connection: close`; returns the whole response as text.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(tcp, "GET {path} HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).expect("read response");
    out
}

/// Runs `waygate COMMAND ARGS... --admin ADDR --token-file FILE`, an admin API client command; returns
/// (exit code, stdout, stderr).
pub fn admin_cli(command: &str, admin: SocketAddr, token: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .arg(command)
        .args(args)
        .args(["--admin", &admin.to_string()])
        .arg("--token-file")
        .arg(token)
        .output()
        .unwrap_or_else(|e| panic!("run waygate {command}: {e}"));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// The `x-request-id` header of a response as text.
pub fn request_id(response: &str) -> String {
    response
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .unwrap_or_else(|| panic!("no x-request-id: {response}"))
        .trim()
        .to_owned()
}

/// Whether `test` cannot run here: it needs root (`why_root` says for what) and `tools`. When it cannot, says
/// so on stdout and returns true, unless `WAYGATE_TEST_REQUIRE_ALL` is set (`.ci/run` sets it when it runs as
/// root and has installed the tools): then a missing prerequisite fails the test, because a skip there would
/// pass without testing anything.
pub fn cannot_run(test: &str, why_root: &str, tools: &[&str]) -> bool {
    let uid = Command::new("id").arg("-u").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let has = |tool: &&str| {
        Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
    };
    let reason = if uid.as_deref() != Some("0") {
        format!("not root: {why_root}")
    } else if let Some(tool) = tools.iter().find(|t| !has(t)) {
        format!("{tool} is not installed")
    } else {
        return false;
    };
    assert!(std::env::var_os("WAYGATE_TEST_REQUIRE_ALL").is_none(), "{test} cannot run: {reason}");
    println!("SKIPPED {test}: {reason}");
    true
}

/// A network namespace of the test's own (root only), deleted on drop.
pub struct Netns(pub String);

impl Netns {
    pub fn create(tag: &str) -> Option<Netns> {
        let name = format!("wg-{tag}-{}", std::process::id());
        let ok = |args: &[&str]| Command::new("ip").args(args).status().is_ok_and(|s| s.success());
        ok(&["netns", "add", &name])
            .then(|| Netns(name.clone()))
            .filter(|_| ok(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]))
    }

    pub fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip").args(["netns", "exec", &self.0]).args(args).output().expect("ip netns exec")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.0));
    }
}
