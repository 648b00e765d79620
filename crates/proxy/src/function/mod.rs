//! Function targets: ALB's Lambda integration (reference/ALB.md §5) against the real Invoke API. A request to a
//! `protocol = "lambda"` group becomes ALB's event ([`event`]), is sent as a SigV4-signed invoke ([`invoke`],
//! with [`credentials`] from the standard AWS chain and, for web identities, [`sts`]), and the function's
//! answer is validated as ALB validates it ([`response`]) before the client gets it (`crate::invocation`, in
//! the exchange layer with the record and the error responses; this module is the target state and the
//! protocol, below it).
//!
//! The connection to the Invoke endpoint is an [`Upstream`] like any target's: pooled, metered, and its
//! connect, TLS and timeout failures carry the connection's snapshot. They are named with ALB's Lambda codes
//! (LambdaConnectionError, LambdaConnectionTimeout), and the access log writes the target as `-`, as ALB does.

pub mod call;
pub mod check;
pub mod credentials;
pub mod event;
pub mod invoke;
pub mod response;
pub mod sts;

use std::sync::Arc;
use std::time::SystemTime;

use http::Method;
use waygate_config::TargetGroup;
use waygate_faults::{Cause, LambdaEvidence, Phase, classify};
use waygate_telemetry::Metrics;

use crate::target::health::Health;
use crate::upstream::h1::{self, RequestFraming};
use crate::upstream::{AttemptFailure, ConnectSpec, TlsTarget, Upstream, session, tls};

/// ALB's limit on the request body a function receives: larger is 413 LambdaRequestTooLarge.
pub const MAX_REQUEST_BODY: u64 = 1024 * 1024;
/// ALB's limit on the function's response JSON: larger is 502 LambdaResponseTooLarge.
pub const MAX_RESPONSE_PAYLOAD: usize = 1024 * 1024;

/// A lambda group's function at run time.
#[derive(Debug)]
pub struct Function {
    pub config: waygate_config::Function,
    pub endpoint: invoke::Endpoint,
    /// The endpoint's `host:port`, as the system log names it.
    pub authority: Arc<str>,
    /// The pooled, metered connections to the endpoint.
    pub upstream: Upstream,
    pub credentials: credentials::Provider,
    /// The STS endpoint that exchanges a web identity for credentials, when the chain finds one.
    pub sts: sts::Sts,
    /// What the group's health checks say of the function (ALB: off unless enabled), kept across reloads
    /// with the function.
    pub health: Health,
}

impl Function {
    /// The function of `group` (a lambda group), its credentials read from `env`. Errors name the group.
    pub fn new(
        group: &TargetGroup,
        metrics: &Arc<Metrics>,
        pool_slots: usize,
        env: Arc<dyn credentials::Env>,
    ) -> Result<Self, String> {
        let ctx = |e: String| format!("target group {:?}: {e}", group.name);
        let config = group.function.clone().ok_or_else(|| ctx("protocol \"lambda\" without a function".into()))?;
        let endpoint =
            invoke::Endpoint::new(&config.endpoint, &config.name, config.qualifier.as_deref()).map_err(ctx)?;
        let tls = if endpoint.https {
            let client = tls::client_config(group.tls.verify, group.tls.ca.as_deref()).map_err(ctx)?;
            let server_name = tls::server_name(group.tls.sni.as_deref(), &endpoint.host).map_err(ctx)?;
            Some(TlsTarget { config: client, server_name })
        } else {
            None
        };
        let authority: Arc<str> = endpoint.authority().into();
        let connect = ConnectSpec {
            host: endpoint.host.clone(),
            port: endpoint.port,
            connect_timeout: group.connect_timeout,
            tls_handshake_timeout: group.tls_handshake_timeout,
            tls,
        };
        let upstream = Upstream::new(
            connect,
            authority.clone(),
            group.pool_idle_timeout,
            metrics.clone(),
            group.name.as_str().into(),
            pool_slots,
        );
        let sts = sts::Sts::new(&config.region, &*env, group, metrics, pool_slots).map_err(ctx)?;
        let credentials = credentials::Provider::new(env, config.profile.clone());
        Ok(Self { config, endpoint, authority, upstream, credentials, sts, health: Health::default() })
    }

    /// The invoke of `payload`, signed with the current credentials; the error says why it cannot be signed.
    pub async fn signed(&self, payload: &[u8]) -> Result<session::Request, String> {
        let creds = self.credentials.get(|w| self.sts.exchange(w)).await?;
        let headers = invoke::signed_headers(&self.endpoint, &self.config.region, &creds, payload, SystemTime::now())?;
        let framing = RequestFraming::Length(payload.len() as u64);
        Ok(session::Request::H1(h1::Request::new(&Method::POST, &self.endpoint.path_and_query, &headers, &(), framing)))
    }
}

/// The cause of a failed invoke: the endpoint connection's evidence (if any) and the Invoke API's verdict (if
/// any), read in the function_invoke phase by the catalogue's classifier.
pub fn invoke_cause(failure: &AttemptFailure, lambda: Option<LambdaEvidence>) -> Cause {
    let mut e = failure.evidence();
    e.phase = Phase::FunctionInvoke;
    e.lambda = lambda;
    classify(&e)
}
