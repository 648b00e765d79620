//! waygate's upstream connection layer, on its own so that two readers share one implementation: the data
//! plane (`waygate-proxy`, which adds the pool and keep-alive learning on top) and the doctor's probe
//! (`waygate doctor probe`), which must reach a target exactly the way the gateway does. ARCHITECTURE.md
//! keeps the doctor away from the data plane; this crate is the part of the data plane the doctor may use.
//! It holds no pool, no router and no request state: only how one connection is opened and explained.
//!
//! - [`connector`]: resolve → TCP connect (connect_timeout) → TLS handshake (tls_handshake_timeout).
//! - [`eyeballs`]: the connect race over every resolved address of a host name (RFC 8305).
//! - [`tls`]: the gateway's rustls client config builder (roots, verify on/off, ALPN, SNI).
//! - [`meter`]: the metered socket and its [`meter::ConnSnapshot`] (bytes each way, age, last I/O).
//! - [`transport`]: plain or TLS over the metered socket, one concrete type.
//! - [`failure`]: [`failure::AttemptFailure`] → `waygate_faults::Evidence` → `Cause`, via the catalogue.
//! - [`liveness`]: a non-blocking peek at an idle connection (FIN, RST, unexpected bytes).

pub mod connector;
pub mod eyeballs;
pub mod failure;
pub mod liveness;
pub mod meter;
pub mod tls;
pub mod transport;

pub use connector::{ConnectSpec, Connected, TlsTarget};
pub use failure::{AddressFailure, AttemptFailure};
pub use meter::{ConnCounters, ConnSnapshot};

/// Response heads larger than this are a TargetResponseHeadersTooLarge (ALB's limit), for the gateway and the
/// probe alike.
pub const MAX_RESPONSE_HEAD: usize = 32 * 1024;
