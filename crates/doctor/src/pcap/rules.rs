//! The evidence a verdict needs before it is given, as data: how long a wait must last to be a timeout,
//! how long a connection must sit idle before a close on reuse is a keep-alive race. Below a threshold the
//! packets show something else (a client that gave up, a capture that ended, a close that was not about
//! idleness), and the classifier says that instead. docs/doctor.md lists the same table; a test holds the
//! two together.

/// A minimum a verdict's evidence must reach, and why that number.
#[derive(Debug, Clone, Copy)]
pub struct Threshold {
    /// The verdict it guards.
    pub verdict: &'static str,
    /// What is measured.
    pub measures: &'static str,
    pub min_ns: i64,
    pub why: &'static str,
}

const SECOND: i64 = 1_000_000_000;

/// `TargetConnectTimeout`: the SYN went unanswered at least this long.
pub const CONNECT_TIMEOUT: Threshold = Threshold {
    verdict: "TargetConnectTimeout",
    measures: "first SYN to the client's last SYN, its give-up, or the capture's end",
    min_ns: SECOND,
    why: "a SYN is first retransmitted after 1 s (RFC 6298's initial RTO; Linux, Windows, BSD); two SYNs \
          closer than that are one SYN captured twice, and a capture that ends sooner ended, it did not time out",
};

/// `TargetTlsHandshakeTimeout`: the ClientHello went unanswered at least this long.
pub const TLS_HANDSHAKE_TIMEOUT: Threshold = Threshold {
    verdict: "TargetTlsHandshakeTimeout",
    measures: "ClientHello to the client's FIN/RST, or to the last retransmission",
    min_ns: SECOND,
    why: "no common client or gateway gives a TLS handshake less than a second (curl, Go, Envoy, nginx, \
          waygate: 5 to 60 s); a client that leaves sooner gave up on its own",
};

/// `TargetResponseTimeout`: the request went unanswered at least this long.
pub const RESPONSE_TIMEOUT: Threshold = Threshold {
    verdict: "TargetResponseTimeout",
    measures: "request to the client's FIN/RST",
    min_ns: SECOND,
    why: "response timeouts in common clients and gateways are seconds or more (ALB 60 s, nginx 60 s, \
          waygate 60 s, browsers minutes); a client that closes sooner gave up on its own (ClientClosedRequest)",
};

/// `TargetKeepAliveRace`: the reused connection had been idle at least this long.
pub const KEEPALIVE_IDLE: Threshold = Threshold {
    verdict: "TargetKeepAliveRace",
    measures: "idle time before the request on the reused connection",
    min_ns: SECOND,
    why: "the shortest keep-alive idle timeout of common servers is gunicorn's 2 s (Node.js and Apache 5 s, \
          nginx 75 s); a server that closes a connection idle for less was not timing it out \
          (TargetClosedConnection)",
};

/// Every threshold, for the docs' table and its test.
pub const ALL: [Threshold; 4] = [CONNECT_TIMEOUT, TLS_HANDSHAKE_TIMEOUT, RESPONSE_TIMEOUT, KEEPALIVE_IDLE];

impl Threshold {
    /// Whether a wait of `ns` is evidence enough.
    pub fn met(&self, ns: i64) -> bool {
        ns >= self.min_ns
    }

    /// `1.0 s`, for stories.
    pub fn min(&self) -> String {
        super::classify::dur(self.min_ns)
    }
}
