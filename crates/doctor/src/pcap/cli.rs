//! `waygate doctor pcap`: the arguments (a `clap::Args` the binary flattens in) and the command. Exit
//! codes follow `doctor logs`: 0 analysed (whatever it found: failing flows, truncation and corruption
//! are the report, not errors), 1 user error (unreadable file, not a capture, bad --target),
//! 2 internal error.

use std::io::Write;
use std::path::PathBuf;

use super::{TargetFilter, analyze_reader};
use crate::cli::user_error;

/// Explain every TCP connection in a packet capture (pcap or pcapng).
///
/// Example: tcpdump -i any -s 0 host 10.0.0.7 -w cap.pcap; waygate doctor pcap cap.pcap --target 10.0.0.7:443
#[derive(Debug, Clone, clap::Args)]
pub struct PcapArgs {
    /// Capture file: pcap or pcapng; Ethernet, Linux cooked (SLL, SLL2: `tcpdump -i any`), BSD loopback
    /// or raw IP.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print the report as JSON (schema `waygate.doctor.pcap/1`, see docs/doctor.md).
    #[arg(long)]
    pub json: bool,
    /// Only flows to this server: ip, or ip:port ([v6]:port).
    #[arg(long, value_name = "ADDR")]
    pub target: Option<String>,
}

/// Runs `waygate doctor pcap`, printing the report on stdout; returns the exit code.
pub fn run_pcap(args: &PcapArgs) -> u8 {
    run_pcap_to(args, &mut std::io::stdout().lock())
}

/// [`run_pcap`] writing the report to `out`; messages go to stderr.
pub fn run_pcap_to(args: &PcapArgs, out: &mut dyn Write) -> u8 {
    let target = match &args.target {
        Some(t) => match TargetFilter::parse(t) {
            Some(f) => Some(f),
            None => {
                return user_error(
                    "pcap",
                    &format!("--target {t:?} is not an address (e.g. 10.0.0.7 or 10.0.0.7:443)"),
                );
            }
        },
        None => None,
    };
    let name = args.file.display().to_string();
    let file = match std::fs::File::open(&args.file) {
        Ok(f) => f,
        Err(e) => return user_error("pcap", &format!("cannot read {name}: {e}")),
    };
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return user_error("pcap", &format!("{name} is a directory, not a capture file"));
    }
    let result = std::panic::catch_unwind(|| analyze_reader(file, &name, target));
    let report = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return user_error("pcap", &format!("{name}: {e}")),
        Err(_) => {
            eprintln!("waygate doctor pcap: internal error analysing {name}; please report it with the capture");
            return 2;
        }
    };
    if let Err(code) = crate::cli::write_report("pcap", &report, args.json, super::term::render, out) {
        return code;
    }
    // The terminal report lists the problems itself; with --json they are also said on stderr.
    if args.json {
        for p in &report.problems {
            eprintln!("waygate doctor pcap: {name}: {}", p.message);
        }
    }
    0
}
