//! One tcpdump per shape, on the client namespace's interface: started and ready ("listening on") before
//! the shape's traffic, stopped once the capture file shows the verdict the shape is waiting for.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use waygate_doctor::pcap::{FlowReport, analyze_bytes};

use super::DEADLINE;

pub struct Tcpdump {
    child: Child,
    file: PathBuf,
}

impl Tcpdump {
    /// Captures `filter` on `c0` into `file`, keeping `snaplen` bytes per frame.
    pub fn start(file: &Path, filter: &str, snaplen: u32) -> Tcpdump {
        let mut child = Command::new("tcpdump")
            .args(["-i", "c0", "--immediate-mode", "-U", "-n", "-Z", "root", "-s", &snaplen.to_string(), "-w"])
            .arg(file)
            .arg(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tcpdump");
        if let Err(seen) = super::wait_for_line(child.stderr.take().expect("stderr"), "listening on") {
            let _ = child.kill();
            panic!("tcpdump for {} never got ready: {seen:?}", file.display());
        }
        Tcpdump { child, file: file.to_owned() }
    }

    /// Waits (bounded) until the capture's only flow satisfies `done`, then stops tcpdump. Returns whether
    /// it did; the caller's check reports what the capture holds either way.
    pub fn stop_when(mut self, done: impl Fn(&FlowReport) -> bool) -> bool {
        let deadline = Instant::now() + DEADLINE;
        let mut seen = false;
        while Instant::now() < deadline {
            let bytes = std::fs::read(&self.file).unwrap_or_default();
            if let Ok(r) = analyze_bytes(&bytes, None)
                && r.flows.len() == 1
                && done(&r.flows[0])
            {
                seen = true;
                break;
            }
            std::thread::park_timeout(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        while Instant::now() < deadline + DEADLINE {
            if let Ok(Some(_)) = self.child.try_wait() {
                return seen;
            }
            // Polling a child's exit has no blocking-with-timeout form in std; this bounds the wait.
            std::thread::park_timeout(Duration::from_millis(20));
        }
        panic!("tcpdump for {} did not exit after SIGINT", self.file.display());
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
