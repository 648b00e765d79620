//! `waygate run`: load the configuration, start the admin listener and the gateway, then serve until a
//! signal: SIGHUP reloads the file (an invalid file keeps the running configuration and logs why), SIGTERM
//! and SIGINT drain (stop accepting, finish in-flight requests, exit).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use waygate_admin::AdminState;
use waygate_config::Config;
use waygate_proxy::workers::Workers;
use waygate_proxy::{Drain, Gateway, ReloadError};

pub async fn run(path: &Path, drain_timeout: Duration, workers: usize) -> u8 {
    if !path.exists() {
        eprintln!("waygate: configuration file {} not found (use --config FILE)", path.display());
        return 1;
    }
    let config = match waygate_config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    serve(config, Some(path), drain_timeout, workers).await
}

/// Runs a gateway on `config`, its client connections on `workers` threads, until SIGTERM/SIGINT; `path` is
/// what SIGHUP reloads (none for the demo).
pub async fn serve(config: Config, path: Option<&Path>, drain_timeout: Duration, workers: usize) -> u8 {
    let (mut hup, mut term, mut int) =
        match (signal(SignalKind::hangup()), signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(h), Ok(t), Ok(i)) => (h, t, i),
            _ => {
                eprintln!("waygate: cannot install signal handlers");
                return 2;
            }
        };
    let token = match &config.admin.token_file {
        Some(path) => match waygate_admin::Token::load(path) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("waygate: {e}");
                return 1;
            }
        },
        None => None,
    };
    let admin_state = Arc::new(AdminState { token, config_path: path.map(Path::to_path_buf), ..AdminState::default() });
    let _admin = match waygate_admin::spawn(config.admin.bind, admin_state.clone()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("waygate: {e}");
            return 1;
        }
    };
    let workers = match Workers::start(workers) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("waygate: cannot start {workers} worker threads: {e}");
            return 2;
        }
    };
    let gateway = match Gateway::start_with_workers(config, workers.clone()).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("waygate: {e}");
            return 1;
        }
    };
    let _ = admin_state.gateway.set(gateway.clone());
    admin_state.ready.store(true, Ordering::Relaxed);
    tracing::info!(target: "waygate", workers = workers.len(), "ready");
    loop {
        tokio::select! {
            _ = hup.recv() => reload(&gateway, path).await,
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    admin_state.ready.store(false, Ordering::Relaxed);
    tracing::info!(target: "waygate", drain_timeout = ?drain_timeout, "shutting down: draining in-flight requests");
    match gateway.shutdown(drain_timeout).await {
        Drain::Complete => {
            tracing::info!(target: "waygate", "drained, exiting");
            0
        }
        Drain::TimedOut => {
            tracing::warn!(target: "waygate", "drain timeout passed with requests in flight, exiting");
            0
        }
    }
}

async fn reload(gateway: &Gateway, path: Option<&Path>) {
    let Some(path) = path else {
        tracing::warn!(target: "waygate::reload", "SIGHUP ignored: no configuration file to reload");
        return;
    };
    match gateway.reload_file(path, "signal").await {
        Ok(()) => {
            tracing::info!(target: "waygate::reload", file = %path.display(), actor = "signal", "configuration reloaded")
        }
        Err(ReloadError::Config(e)) => {
            tracing::error!(target: "waygate::reload", file = %path.display(), "reload rejected, keeping the running configuration:\n{e}");
        }
        Err(ReloadError::Apply(e)) => {
            tracing::error!(target: "waygate::reload", file = %path.display(), "reload rejected, keeping the running configuration: {e}")
        }
    }
}
