//! Remediation text for every cause the doctor can report. Catalogue causes read `waygate-faults`
//! (one source of truth with the gateway and docs); the inferred kinds and ALB's own codes that the
//! catalogue does not hold (Auth*, WAF*, most Lambda*) get their text here.

use std::str::FromStr;

use waygate_faults::Cause;

use crate::attribution::Inferred;
use crate::connlog::ConnKind;

const CONNECTION_FAILED: &str = "The load balancer could not get a response started with the target: the target \
refused (RST) or reset the connection, closed it before answering, or TLS to it failed. ALB does not log which. \
If it is spread thinly over many targets, it is the keep-alive race: set the targets' keep-alive timeout longer \
than the load balancer's idle timeout (ALB: 60 s by default; waygate: pool_idle_timeout). If it is concentrated \
on a few targets, check that they listen on the target port, that security groups and network ACLs allow the \
traffic (including ephemeral ports 1024-65535 on the return path), and that TLS targets share a cipher suite \
with the load balancer; `waygate doctor probe TARGET` checks a target the way the gateway reaches it. Run \
waygate in front to get the exact cause (TargetConnectionRefused, TargetKeepAliveRace, TargetTlsAlert, ...).";

const TARGET_RESPONDED: &str = "The target generated this 5xx itself and the load balancer relayed it: this is \
not a gateway error. Look in the application's logs on the targets listed, for the time range shown.";

const TARGET_CLOSED: &str = "The target closed the connection (FIN or RST) while the load balancer had a \
request outstanding on it: the request was sent, no response started. Spread thinly over many targets it is the \
keep-alive race: set the targets' keep-alive timeout longer than the load balancer's idle timeout (ALB: 60 s; \
waygate: pool_idle_timeout). On a few targets it is the application dying or restarting mid-request (crashes, \
OOM kills, deploys without draining): check their logs at the times shown, and the target processing time \
before the close.";

const FIXED_RESPONSE: &str = "A listener rule's fixed-response action answered with this status: it is \
configuration, not a target failure (no target was involved). Check the listener rules whose action is a \
fixed response with a 5xx code (a maintenance page, a default rule).";

const REDIRECT: &str = "A listener rule's redirect action was executed for this 5xx: check the redirect's \
target URL and the rule's conditions.";

const AUTHENTICATE: &str = "An authenticate action (Cognito or OIDC) ran and the request was never forwarded: \
the identity provider or the action's settings failed. Check the IdP's availability, the client id and \
secret, the endpoints and the session cookie.";

const WAF: &str = "AWS WAF evaluated the request and it was not forwarded: the web ACL blocked it or failed. \
Check AWS WAF's sampled requests and metrics, and the web ACL's fail-open setting.";

const CLASSIC_UNAVAILABLE: &str = "The Classic ELB had no instance to send the request to: no registered instance \
is healthy (check the health check's target, port and thresholds, and the instances' security groups), or the \
surge queue is full (CloudWatch SpilloverCount and SurgeQueueLength: the instances are too slow or too few), or \
the load balancer is short of capacity after a sudden surge (it scales up within minutes).";

/// The remediation for a cause name as it appears in `error_reason`, or for an inferred kind.
pub fn remediation(name: &str, inferred: Option<Inferred>) -> String {
    match inferred {
        Some(Inferred::TargetConnectionFailed) => return CONNECTION_FAILED.to_owned(),
        Some(Inferred::TargetResponded5xx) => return TARGET_RESPONDED.to_owned(),
        Some(Inferred::Unexplained(status)) => return unexplained(status).to_owned(),
        Some(Inferred::TargetConnectTimeout) => return Cause::TargetConnectTimeout.remediation().to_owned(),
        Some(Inferred::TargetResponseTimeout) => return Cause::TargetResponseTimeout.remediation().to_owned(),
        Some(Inferred::TargetClosedConnection) => return TARGET_CLOSED.to_owned(),
        Some(Inferred::ListenerFixedResponse) => return FIXED_RESPONSE.to_owned(),
        Some(Inferred::ListenerRedirect) => return REDIRECT.to_owned(),
        Some(Inferred::AuthenticateFailed) => return AUTHENTICATE.to_owned(),
        Some(Inferred::WafBlocked) => return WAF.to_owned(),
        Some(Inferred::ClassicElbUnavailable) => return CLASSIC_UNAVAILABLE.to_owned(),
        None => {}
    }
    if let Ok(cause) = Cause::from_str(name) {
        return cause.remediation().to_owned();
    }
    let text = if name.starts_with("Lambda") {
        "An ALB Lambda error code: the function or its invocation failed. Check the function's CloudWatch logs \
        and metrics (Errors, Throttles, Duration) for the time range, its response format (statusCode, headers, \
        isBase64Encoded; under 1 MB), its timeout and its reserved concurrency."
    } else if name.starts_with("Auth") {
        "An ALB authenticate-action error: the identity provider or the authentication settings (client id and \
        secret, endpoints, session cookie, scope) failed. Check the IdP's availability and the listener rule's \
        authenticate action."
    } else if name.starts_with("WAF") {
        "An AWS WAF error: the web ACL could not be evaluated in time or failed. Check AWS WAF's metrics and the \
        web ACL's fail-open setting."
    } else if name == "AWSALBTGCookieInvalid" {
        "The target group stickiness cookie (AWSALBTG) is invalid: clients sent a tampered or stale cookie."
    } else if name == "WeightedTargetGroupsUnhandledException" {
        "ALB failed choosing among weighted target groups: an internal load-balancer error. Contact AWS support \
        with the request ids."
    } else {
        "Not a cause in waygate's catalogue: see the error_reason codes in the ALB documentation."
    };
    text.to_owned()
}

fn unexplained(status: u16) -> &'static str {
    match status {
        500 => {
            "The load balancer failed internally, or an authenticate action or AWS WAF failed without a code. \
            Correlate with the listener rules' actions and contact AWS support with the trace ids if it persists."
        }
        502 => {
            "A load-balancer 502 without -1 processing times: the target answered with a malformed response or \
            headers over 32 KiB, or was deregistered mid-request. Capture the target's responses \
            (`tcpdump -i any -s 0 host <ip> -w cap.pcap`, then `waygate doctor pcap cap.pcap`) and check \
            DeregisterTargets calls for the time range."
        }
        503 => {
            "No registered targets, or every registered target is unused (draining or in an unused zone). Register \
            targets, or check the target group's health checks and fail-open behaviour."
        }
        504 => {
            "The target did not answer in time: connect timeout, idle timeout, a Content-Length larger than the \
            body, or network ACLs blocking the return path. Compare time - request_creation_time with the \
            load balancer's timeouts."
        }
        505 => "The client's HTTP version is not supported by the target group's protocol version.",
        _ => "A load-balancer 5xx without error_reason; see the ALB troubleshooting page for this status.",
    }
}

/// What to do about a failure reason in a connection log (see [`crate::connlog`]): ALB's
/// `tls_verify_status` codes, the TLS alerts NLB clients send, Classic's connections without a backend.
pub fn connection_advice(kind: ConnKind, reason: &str) -> &'static str {
    match (kind, reason) {
        (ConnKind::ClassicTcp, _) => {
            "The ELB accepted the client's connection and could not open one to an instance: check the \
            instances' health, that they listen on the instance port, and that their security groups admit the \
            ELB."
        }
        (_, "ClientCertUntrusted") => {
            "The client's certificate does not chain to a CA in the listener's trust store: add the issuing CA \
            (and intermediates) to the trust store, or have the client send its full chain."
        }
        (_, "ClientCertExpired" | "ClientCertNotYetValid") => {
            "The client's certificate is outside its validity period: renew it, or check the client's clock; the \
            trust store can be set to ignore client certificate expiry."
        }
        (_, "ClientCertCrlHit") => {
            "The client's certificate is revoked by the trust store's CRL: an expected rejection, unless the \
            CRL is wrong; the client needs a new certificate."
        }
        (_, "ClientCertCrlProcessingError") => {
            "The trust store's certificate revocation list could not be processed: check the CRL's format, \
            signature and issuer in the trust store."
        }
        (_, "ClientCertMaxChainDepthExceeded" | "ClientCertMaxSizeExceeded") => {
            "The client's certificate chain is deeper or larger than the load balancer accepts: send a shorter \
            chain (leaf and intermediates only, no root)."
        }
        (
            _,
            "ClientCertTypeUnsupported" | "ClientCertInvalid" | "ClientCertPurposeInvalid" | "ClientCertIncompatible",
        ) => {
            "The client's certificate cannot be used here: its key type, its key usage or extended key usage \
            (clientAuth), or its algorithms do not fit the listener's security policy. Reissue it accordingly."
        }
        (_, "ClientCertRejected") => "Custom server validation rejected the client's certificate: check that rule.",
        (_, "UnmappedConnectionError") => {
            "A connection error AWS does not classify: most often the client closed or reset during the \
            handshake, or it shares no protocol version or cipher with the listener's security policy. Compare \
            the clients' tls_protocol and tls_cipher with the policy."
        }
        (_, "handshake_failure" | "protocol_version" | "insufficient_security") => {
            "The client found no protocol version or cipher suite it shares with the listener's security policy \
            (e.g. ELBSecurityPolicy-TLS13-1-2-2021-06 refuses TLS 1.0 and 1.1): compare the clients' TLS \
            versions and ciphers with the policy, or choose a policy that includes them."
        }
        (
            _,
            "unknown_ca" | "bad_certificate" | "certificate_unknown" | "certificate_expired" | "certificate_revoked",
        ) => {
            "The client does not accept the listener's certificate: serve the full chain, renew an expired one, \
            and check that the name the clients use (SNI) is on the certificate."
        }
        (_, "unrecognized_name") => "The client rejected the name on the certificate chosen for its SNI.",
        (_, "no alert") => {
            "The handshake did not complete and the client sent no alert: it closed or reset the connection (a \
            port scanner, a health checker speaking plain TCP, a client timing out or sending plain HTTP to the \
            TLS port)."
        }
        _ => "See the reason's description in the load balancer's documentation (TLS alerts: RFC 8446 §6.2).",
    }
}
