//! waygate's data plane, and the control plane that runs it. [`Gateway`] owns both: start it on a validated
//! configuration, reload it with another, register and deregister targets, shut it down gracefully.
//!
//! Request flow (docs/ARCHITECTURE.md): `listener` → `server` (HTTP/1) or hyper (HTTP/2) → `forward` (router,
//! then a target from `group`) → `upstream` (pool checkout or connect → TLS → a protocol [`upstream::Session`])
//! → `relay`, with every failure classified through the fault catalogue and the exchange's record handed to the
//! observers of [`record`].
//!
//! The arrows point one way: [`control`] (the gateway controller, reload, registrations and draining, active
//! health checks) uses the data plane's modules, and nothing in the data plane uses `control`. What both sides
//! read lives on the data plane's [`target::Target`] (its health and drain state) and in [`audit`].

pub mod audit;
pub mod body;
pub mod control;
pub mod count;
mod forward;
pub mod function;
pub mod group;
pub mod guard;
pub mod h2conn;
mod headers;
mod invocation;
mod listener;
mod log;
pub mod record;
mod relay;
pub mod request_id;
mod respond;
pub mod retry;
pub mod router;
pub mod runtime;
pub mod server;
pub mod target;
pub mod tls_front;
mod trace;
pub mod tunnel;
mod upgrade;
pub mod upstream;
mod wake;
pub mod wire;
pub mod workers;

pub use control::{Deregistered, Drain, Gateway, GatewayError, ReloadError};
pub use runtime::Runtime;

/// Locks a std mutex whatever a panicking holder left: every mutex of this crate guards data that a panic
/// cannot leave half-updated (a queue, a list, a counter), so poisoning carries no information here.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
