//! The desync guard (ARCHITECTURE.md: the HTTP/1 server's verdict on every head): [`verdict`] judges one raw
//! request head as ALB's desync mitigation does (AWS's `http_desync_guardian`, ALB's modes and limits), and
//! [`framing`] gives the body framing the head declares. The HTTP/1 server ([`crate::server`]) calls it on the
//! bytes it parses, and the verdict travels with the request.

pub mod framing;
pub mod verdict;

pub use verdict::{Action, Verdict};
