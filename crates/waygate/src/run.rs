//! `waygate run`: load the configuration, start the admin listener and the gateway, then serve until a
//! signal: SIGHUP reloads the file (an invalid file keeps the running configuration and logs why), SIGTERM
//! and SIGINT drain (stop accepting, finish in-flight requests, exit).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use waygate_admin::AdminState;
use waygate_config::Config;
use waygate_proxy::workers::Workers;
use waygate_proxy::{Drain, Gateway, ReloadError};

pub async fn run(path: &Path, drain_timeout: Duration, workers: usize) -> u8 {
    if !path.exists() {
        eprintln!("waygate: configuration file {} not found (use --config FILE)", path.display());
        return 1;
    }
    let config = match waygate_config::load_checked(path) {
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
    match Started::start(config, path, workers).await {
        Ok(started) => started.serve(drain_timeout).await,
        Err(e) => {
            eprintln!("waygate: {}", e.message);
            e.code
        }
    }
}

/// Why a gateway did not start, and the exit code that says so.
#[derive(Debug)]
pub struct StartError {
    pub code: u8,
    /// What failed to bind, when that is the reason: the caller may know which flag sets it.
    pub bind: Option<Bind>,
    pub message: String,
}

/// The socket that could not be bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    Admin,
    Listener,
}

impl StartError {
    fn new(code: u8, bind: Option<Bind>, message: String) -> Self {
        Self { code, bind, message }
    }
}

/// A gateway whose admin listener and listeners are bound and whose signal handlers are installed: what is
/// printed after this is true of sockets that exist (the demo prints its URLs only then).
pub struct Started {
    gateway: Gateway,
    admin: waygate_admin::AdminHandle,
    admin_state: Arc<AdminState>,
    path: Option<std::path::PathBuf>,
    hup: Signal,
    term: Signal,
    int: Signal,
}

impl Started {
    pub async fn start(config: Config, path: Option<&Path>, workers: usize) -> Result<Self, StartError> {
        let (hup, term, int) =
            match (signal(SignalKind::hangup()), signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
                (Ok(h), Ok(t), Ok(i)) => (h, t, i),
                _ => return Err(StartError::new(2, None, "cannot install signal handlers".into())),
            };
        let token = match &config.admin.token_file {
            Some(path) => Some(waygate_admin::Token::load(path).map_err(|e| StartError::new(1, None, e))?),
            None => None,
        };
        let admin_state =
            Arc::new(AdminState { token, config_path: path.map(Path::to_path_buf), ..AdminState::default() });
        let admin = waygate_admin::spawn(config.admin.bind, admin_state.clone())
            .map_err(|e| StartError::new(1, Some(Bind::Admin), e))?;
        let pool = Workers::start(workers)
            .map_err(|e| StartError::new(2, None, format!("cannot start {workers} worker threads: {e}")))?;
        let gateway = Gateway::start_with_workers(config, pool.clone()).await.map_err(|e| {
            // Listeners are the only sockets the gateway binds; its other start errors are configuration ones.
            let bind = e.0.contains("cannot bind").then_some(Bind::Listener);
            StartError::new(1, bind, e.to_string())
        })?;
        let _ = admin_state.gateway.set(gateway.clone());
        admin_state.ready.store(true, Ordering::Relaxed);
        tracing::info!(target: "waygate", workers = pool.len(), "ready");
        crate::notify::notify("READY=1");
        Ok(Self { gateway, admin, admin_state, path: path.map(Path::to_path_buf), hup, term, int })
    }

    /// The address the admin API bound.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.addr
    }

    /// The address a listener bound (the kernel's choice for port 0).
    pub async fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.gateway.local_addr(name).await
    }

    /// Serves until SIGTERM/SIGINT (SIGHUP reloads), then drains for at most `drain_timeout`.
    pub async fn serve(mut self, drain_timeout: Duration) -> u8 {
        loop {
            tokio::select! {
                _ = self.hup.recv() => {
                    crate::notify::notify("RELOADING=1");
                    reload(&self.gateway, self.path.as_deref()).await;
                    crate::notify::notify("READY=1");
                }
                _ = self.term.recv() => break,
                _ = self.int.recv() => break,
            }
        }
        self.admin_state.ready.store(false, Ordering::Relaxed);
        crate::notify::notify("STOPPING=1");
        tracing::info!(target: "waygate", drain_timeout = ?drain_timeout, "shutting down: draining in-flight requests");
        match self.gateway.shutdown(drain_timeout).await {
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
