//! The runtime snapshot: what the request path reads for one configuration (routers, target groups with their
//! pools, TLS configs). Immutable once built ([`crate::control::build`] compiles it) and swapped atomically on
//! reload; requests in flight finish on the snapshot they started with.

use std::sync::Arc;

use fnv::FnvHashMap;
use waygate_config::{Config, Listener};

use crate::group::Group;
use crate::router::Router;

/// One listener's compiled settings.
#[derive(Debug)]
pub struct ListenerRuntime {
    pub config: Listener,
    pub router: Router,
    pub tls: Option<Arc<crate::tls_front::TlsFront>>,
}

/// Everything the request path needs, for one configuration. Looked up by name on every request: FNV hashes a
/// short name in a tenth of SipHash's instructions, and these keys come from the operator's own config (no
/// one else can choose them to collide).
#[derive(Debug)]
pub struct Runtime {
    pub config: Arc<Config>,
    pub groups: FnvHashMap<String, Arc<Group>>,
    pub listeners: FnvHashMap<String, Arc<ListenerRuntime>>,
}
