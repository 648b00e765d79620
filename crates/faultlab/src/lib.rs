//! Loopback targets for waygate's tests, demo and benchmarks: a well-behaved [`Backend`] and a catalogue
//! of misbehaving ones ([`Fault`]), each provoking one cause of `docs/FAULTS.md`; WebSocket targets, an echo
//! and ones that misbehave after the handshake ([`WsTarget`]); and a function host speaking the Lambda Invoke
//! API ([`FunctionHost`]) for function targets.
//!
//! Every server binds the address it is given (usually `127.0.0.1:0`), runs on the current tokio
//! runtime, and stops when its [`Running`] handle is dropped or shut down. Tests synchronise on
//! [`Stats::wait_until`] and [`Running::release`], never on sleeps.

mod backend;
mod body;
mod disk;
mod fault;
mod h2;
pub mod lambda;
mod pki;
mod raw;
mod routes;
mod running;
mod websocket;
mod ws_h2;

pub use backend::Backend;
pub use body::{CHUNK, pattern};
pub use disk::Tmpfs;
pub use fault::{DEFAULT_KEEPALIVE_IDLE, DEFAULT_SLOW_HEAD, Fault, wire};
pub use h2::{GrpcAnswer, H2Behaviour, H2Target, PARTIAL_BODY};
pub use lambda::FunctionHost;
pub use pki::{CertFiles, Identity, LEAF_NAMES, PkiFiles, TestPki, WRONG_NAME, crypto_provider};
pub use routes::ECHO_PREFIX;
pub use running::{Running, Stats};
pub use websocket::WsTarget;
pub use ws_h2::{REFUSED_BODY, REFUSED_PATH, WsH2Target};
