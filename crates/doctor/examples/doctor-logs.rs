//! `doctor-logs`: `waygate doctor logs` as a standalone binary, for the benchmark and for trying the doctor
//! before the main binary wires it (`cargo run --release -p waygate-doctor --example doctor-logs -- PATH`).

use clap::Parser;

#[derive(Parser)]
#[command(name = "doctor-logs")]
struct Cli {
    #[command(flatten)]
    logs: waygate_doctor::LogsArgs,
}

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(waygate_doctor::run_logs(&Cli::parse().logs))
}
