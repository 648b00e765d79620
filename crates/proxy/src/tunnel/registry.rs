//! Every open tunnel of the gateway, so that shutdown can close them once the rest has drained: a tunnel has
//! no end of its own (a WebSocket may stay open for days), so waiting for it would hold shutdown until its
//! deadline, and cutting it at once would close it before the requests that can finish have. Shutdown closes
//! tunnels when the only client connections left are those that tunnels hold open ([`Tunnels::carriers`]: an
//! HTTP/1 client's connection left the server at the switch, an HTTP/2 one stays open under its tunnels'
//! streams), then waits for their records ([`Tunnels::closed`]).

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::lock;

/// The gateway's open tunnels and the signal that closes them.
#[derive(Debug)]
pub struct Tunnels {
    close: watch::Sender<bool>,
    open: watch::Sender<usize>,
    /// The client connection (by `conn_trace_id`) of each open tunnel on HTTP/2.
    carriers: Mutex<Vec<Arc<str>>>,
}

impl Default for Tunnels {
    fn default() -> Self {
        Self { close: watch::Sender::new(false), open: watch::Sender::new(0), carriers: Mutex::new(Vec::new()) }
    }
}

/// One open tunnel: counted until dropped; [`Open::closing`] resolves when the gateway closes tunnels.
#[derive(Debug)]
pub struct Open {
    tunnels: Arc<Tunnels>,
    carrier: Option<Arc<str>>,
    closing: watch::Receiver<bool>,
}

impl Tunnels {
    /// Counts a tunnel in; `carrier`: the HTTP/2 client connection it keeps open.
    pub fn open(self: &Arc<Self>, carrier: Option<Arc<str>>) -> Open {
        self.open.send_modify(|n| *n += 1);
        if let Some(c) = &carrier {
            lock(&self.carriers).push(c.clone());
        }
        Open { tunnels: self.clone(), carrier, closing: self.close.subscribe() }
    }

    /// Tunnels open now.
    pub fn count(&self) -> usize {
        *self.open.borrow()
    }

    /// How many client connections are open only because tunnels on HTTP/2 streams hold them (counted once
    /// each, however many tunnels they carry).
    pub fn carriers(&self) -> usize {
        let mut ids: Vec<Arc<str>> = lock(&self.carriers).clone();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    /// Closes every tunnel open now, and any opened from now on.
    pub fn close_all(&self) {
        self.close.send_replace(true);
    }

    /// Resolves once no tunnel is open (each wrote its record before it counted out).
    pub async fn closed(&self) {
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|n| *n == 0).await;
    }
}

impl Open {
    /// Resolves when the gateway closes tunnels (shutdown).
    pub async fn closing(&mut self) {
        if self.closing.wait_for(|c| *c).await.is_err() {
            // The registry is gone with the gateway: nothing will ask again.
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(c) = self.carrier.take() {
            let mut carriers = lock(&self.tunnels.carriers);
            if let Some(at) = carriers.iter().position(|x| Arc::ptr_eq(x, &c) || **x == *c) {
                carriers.swap_remove(at);
            }
        }
        self.tunnels.open.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tunnels_count_in_and_out_and_close_on_the_signal() {
        let tunnels = Arc::new(Tunnels::default());
        let id: Arc<str> = "conn-1".into();
        let a = tunnels.open(Some(id.clone()));
        let b = tunnels.open(Some(id));
        let mut c = tunnels.open(None);
        assert_eq!((tunnels.count(), tunnels.carriers()), (3, 1), "two tunnels on one HTTP/2 connection");
        drop(a);
        assert_eq!((tunnels.count(), tunnels.carriers()), (2, 1));
        drop(b);
        assert_eq!(tunnels.carriers(), 0);
        tunnels.close_all();
        c.closing().await;
        let mut late = tunnels.open(None);
        late.closing().await;
        drop((c, late));
        tunnels.closed().await;
        assert_eq!(tunnels.count(), 0);
    }
}
