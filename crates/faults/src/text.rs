//! The words around each cause: a short client-facing title (safe to send: no addresses, no internals)
//! and the operator remediation the doctor and docs print (from FAULTS.md "Remediation", one per cause,
//! naming the command or setting to reach for).

use crate::Cause;

/// How to capture and read a failure on the wire (a macro so texts stay `&'static str` via `concat!`).
macro_rules! pcap {
    () => {
        "capture packets (`tcpdump -i any -s 0 host <ip> -w cap.pcap`, then `waygate doctor pcap cap.pcap`)"
    };
}

/// The shared advice for connection-level failures (FAULTS.md: refused / unreachable / connect timeout).
macro_rules! network {
    () => {
        "Security groups, network ACLs and host firewalls must allow the gateway's traffic both ways, \
        including the return path on ephemeral ports 1024-65535."
    };
}

impl Cause {
    /// A short title for clients (problem+json `title`, page text). Says what failed, never where.
    pub const fn title(self) -> &'static str {
        match self {
            Self::NoRoute => "No route matches this request",
            Self::NoRegisteredTargets => "No upstream servers are registered",
            Self::NoHealthyTargets => "No healthy upstream servers",
            Self::GatewayOverloaded => "The gateway is at capacity",
            Self::GatewayResourceExhausted => "The gateway ran out of local resources",
            Self::TargetDnsFailure => "The upstream host name did not resolve",
            Self::TargetConnectionRefused => "The upstream server refused the connection",
            Self::TargetHostUnreachable => "The upstream server is unreachable",
            Self::TargetConnectTimeout => "Timed out connecting to the upstream server",
            Self::TargetTlsHandshakeTimeout => "Timed out negotiating TLS with the upstream server",
            Self::TargetPathMtuBlackhole => "Packets to the upstream server were too large for the network path",
            Self::TargetTlsAlert => "The upstream server rejected the TLS handshake",
            Self::TargetTlsCertificateInvalid => "The upstream server's certificate is not trusted",
            Self::TargetTlsProtocolError => "The upstream server did not complete TLS",
            Self::TargetKeepAliveRace => "The upstream server closed an idle connection as the request was sent",
            Self::TargetClosedConnection => "The upstream server closed the connection without responding",
            Self::TargetResetConnection => "The upstream server reset the connection",
            Self::TargetMalformedResponse => "The upstream server sent an invalid response",
            Self::TargetResponseHeadersTooLarge => "The upstream response headers are too large",
            Self::TargetResponseTimeout => "The upstream server did not respond in time",
            Self::TargetDeregistered => "The upstream server was removed while handling the request",
            Self::TargetResponseIncomplete => "The upstream response ended early",
            Self::TargetResponseStalled => "The upstream response stalled",
            Self::TargetStreamReset => "The upstream server reset the request's stream",
            Self::TargetGoAway => "The upstream server shut the connection down (GOAWAY)",
            Self::TargetHttp2ProtocolError => "The upstream server violated the HTTP framing protocol",
            Self::TargetHttp2NotNegotiated => "The upstream server does not offer the required HTTP version",
            Self::ClientRequestMalformed => "The request is malformed",
            Self::ClientRequestTimeout => "The request was not received in time",
            Self::ClientClosedRequest => "The client closed the request",
            Self::ClientIdleTimeout => "The client stopped reading the response",
            Self::ClientXffTooMany => "Too many X-Forwarded-For addresses",
            Self::ClientUnsupportedTransferEncoding => "Unsupported Transfer-Encoding",
            Self::ClientMethodNotAllowed => "The method is not allowed",
            Self::ClientProtocolMismatch => "The request's protocol does not match the upstream's",
            Self::LambdaRequestTooLarge => "The request body is too large for the function",
            Self::LambdaInvalidResponse => "The function returned an invalid response",
            Self::LambdaResponseTooLarge => "The function's response is too large",
            Self::LambdaUnhandled => "The function failed",
            Self::LambdaThrottling => "The function is throttled",
            Self::LambdaResourceNotFound => "The function does not exist",
            Self::LambdaAccessDenied => "The gateway may not invoke the function",
            Self::LambdaConnectionError => "The function service is unreachable",
            Self::LambdaConnectionTimeout => "The function service did not answer in time",
            Self::LambdaServiceException => "The function service failed",
            Self::ClientCertMissing => "A client certificate is required",
            Self::ClientCertUntrusted => "The client certificate is not trusted",
            Self::ClientCertExpired => "The client certificate has expired",
            Self::ClientCertCrlHit => "The client certificate has been revoked",
            Self::LambdaBadRequest => "The request cannot be passed to the function",
            Self::LambdaWebsocketNotSupported => "Functions do not support WebSockets",
            Self::TargetExtendedConnectDisabled => "The upstream server does not open WebSockets on its streams",
        }
    }

    /// What the operator should do about it. Mentions `waygate doctor probe` / `doctor pcap` where a
    /// probe or a capture is how the question gets answered.
    pub const fn remediation(self) -> &'static str {
        match self {
            Self::NoRoute => {
                "No listener rule matched the request's host and path, and the listener has no default \
                action. Add a [[listener.rule]] for this host and path, or set the listener's \
                default_target_group or default_fixed_response."
            }
            Self::NoRegisteredTargets => {
                "The target group is empty, or every target is draining or unused. Register \
                targets (`waygate targets`, or POST /api/v1/target-groups/{name}/targets) or list them in the \
                config and reload."
            }
            Self::NoHealthyTargets => {
                "Every target fails its health checks and fail_open is off. Compare the health \
                check (path, matcher, timeout) with what the targets answer (reason codes in GET \
                /api/v1/target-groups), check the targets with `waygate doctor probe`, and set fail_open = true \
                to keep routing to them meanwhile."
            }
            Self::GatewayOverloaded => {
                "The gateway's connection or pending-request limit was reached. Add targets or \
                gateway capacity, and look for slow targets holding requests \
                (waygate_target_response_time_seconds)."
            }
            Self::GatewayResourceExhausted => {
                "The gateway's own host ran out of a resource it needs to open a connection: file \
                descriptors (EMFILE: the process's RLIMIT_NOFILE; ENFILE: the system's fs.file-max), socket \
                buffers or kernel memory (ENOBUFS, ENOMEM), or ephemeral ports (EADDRNOTAVAIL: every local \
                port towards that target address is in use, common behind NAT or with many targets). The \
                target is not blamed: it is not marked unhealthy and not counted in \
                waygate_target_connection_errors_total. The system log names the errno once a second with a \
                count. Raise the limit (LimitNOFILE= in the systemd unit, `ulimit -n`, fs.file-max), widen \
                net.ipv4.ip_local_port_range or add source addresses, and look for what holds the \
                descriptors: slow or non-reading clients, or a pool kept too large (pool_idle_timeout)."
            }
            Self::TargetDnsFailure => {
                "The target's host name did not resolve, or the resolver timed out \
                (Proxy-Status error=dns_timeout). Check the name and the gateway host's resolver \
                (/etc/resolv.conf); `waygate doctor probe` resolves it the way the gateway does."
            }
            Self::TargetConnectionRefused => concat!(
                "The target answered the SYN with a RST: nothing listens on that port, or a host firewall rejects \
                the gateway. Check that the service runs and listens on the target's address and port, and run \
                `waygate doctor probe` from the gateway host. ",
                network!()
            ),
            Self::TargetHostUnreachable => concat!(
                "The network reported the target unreachable (ICMP host or network unreachable): the host is down \
                or there is no route to it. Check the address and routing, and run `waygate doctor probe` from \
                the gateway host. ",
                network!()
            ),
            Self::TargetConnectTimeout => concat!(
                "No SYN-ACK arrived before connect_timeout: the host is down, or something drops the SYN. Run \
                `waygate doctor probe`, ",
                pcap!(),
                ". ",
                network!()
            ),
            Self::TargetTlsHandshakeTimeout => concat!(
                "TCP connected and the ClientHello was sent, but nothing came back before tls_handshake_timeout: \
                the target or a firewall in between drops the gateway's traffic after TCP connects, or the port \
                does not speak TLS and waits. Check connectivity to every resolved IP of the target \
                (`waygate doctor probe`), ",
                pcap!(),
                ", and lift firewall rules for the gateway's addresses on every \
                network layer."
            ),
            Self::TargetPathMtuBlackhole => concat!(
                "A path-MTU black hole: a router on the way to the target said a packet was too large \
                (ICMP fragmentation needed, or ICMPv6 packet too big, with the next-hop MTU), and the gateway \
                kept sending packets of the old size, so they vanished and the handshake (or a large request) \
                timed out. Path-MTU discovery needs those ICMP errors delivered: allow ICMP type 3 code 4 and \
                ICMPv6 type 2 through host firewalls, security groups and network ACLs on the gateway's side, \
                or clamp the MSS on the path (`iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j \
                TCPMSS --clamp-mss-to-pmtu`), or lower the interface MTU to the next-hop MTU the error names; \
                `net.ipv4.tcp_mtu_probing = 1` lets Linux find the size without ICMP. To confirm, ",
                pcap!(),
                ": the report gives the ICMP error's frame and MTU and the oversized packets sent after it."
            ),
            Self::TargetTlsAlert => {
                "The target ended the TLS handshake with a fatal alert: protocol_version or \
                handshake_failure means no shared TLS version or cipher, bad_certificate or certificate_required \
                means it wants a client certificate, unrecognized_name means the SNI is wrong. \
                `waygate doctor probe` shows the handshake; fix the versions, ciphers, SNI (tls.sni) or client \
                certificate on either side."
            }
            Self::TargetTlsCertificateInvalid => {
                "The target's certificate failed verification: unknown issuer or \
                self-signed, expired, not yet valid, or a name mismatch. `waygate doctor probe` prints the chain \
                the target presents; renew or reissue it, give the gateway the issuing CA (tls.ca), or set \
                tls.sni to a name the certificate covers."
            }
            Self::TargetTlsProtocolError => {
                "The target answered the ClientHello with something that is not TLS, or \
                closed during the handshake: usually the port serves plain HTTP. Use protocol = \"http\" for the \
                target group or point it at the TLS port; `waygate doctor probe` shows what the port speaks."
            }
            Self::TargetKeepAliveRace => {
                "The target closed a pooled connection just as a request was sent on it: its \
                keep-alive timeout is shorter than the gateway's pool_idle_timeout. Set the target's keep-alive \
                timeout longer than pool_idle_timeout, or lower pool_idle_timeout; the doctor reports the observed \
                close time of the target's idle connections."
            }
            Self::TargetClosedConnection => concat!(
                "The target closed a fresh connection (FIN) before any response byte: the application crashed, hit \
                a limit, or closes deliberately. Check the target's logs at that time; ",
                pcap!(),
                " to see which side \
                closed first."
            ),
            Self::TargetResetConnection => concat!(
                "The target reset a fresh connection (RST) before any response byte: the process crashed or \
                aborted, its accept queue overflowed, or a middlebox killed the flow. Check the target's logs \
                and limits; ",
                pcap!(),
                "."
            ),
            Self::TargetMalformedResponse => concat!(
                "The target's response head is not valid HTTP (status line, header name or value, or framing). \
                Capture the target's response (`curl -v` from the gateway host, or ",
                pcap!(),
                ") and fix the application."
            ),
            Self::TargetResponseHeadersTooLarge => {
                "The target's response head exceeds 32 KiB, usually many or large \
                Set-Cookie headers. Capture the response (`curl -v` from the gateway host) and shrink the headers \
                in the application."
            }
            Self::TargetResponseTimeout => {
                "The target is slower than response_timeout. Find the slow requests by \
                target and path (target_processing_time in the access log, `waygate doctor logs`), fix the slow \
                path, or raise response_timeout if that duration is expected."
            }
            Self::TargetDeregistered => {
                "The target was deregistered and its deregistration_delay elapsed while this \
                request was in flight. Raise deregistration_delay above the longest request duration (the doctor \
                reports it); GET /api/v1/audit shows who deregistered the target and when."
            }
            Self::TargetResponseIncomplete => concat!(
                "The target's body ended early: it closed or reset mid-body, sent fewer bytes than Content-Length, \
                or broke chunked framing, so the client's connection was aborted. Check the target's logs for \
                crashes or timeouts while streaming and that Content-Length matches the body; ",
                pcap!(),
                " to see where \
                the stream stopped."
            ),
            Self::TargetResponseStalled => {
                "The target stopped sending body bytes for longer than idle_timeout \
                mid-response. Find what the application waits on while streaming, send heartbeats on long-lived \
                streams, or raise idle_timeout if long pauses are expected."
            }
            Self::TargetStreamReset => {
                "The target reset the request's HTTP/2 stream (RST_STREAM) before sending a response \
                head; the error code is in the log line and in Proxy-Status details. CANCEL or INTERNAL_ERROR \
                usually means the application gave up or crashed on this request (its logs say why); \
                REFUSED_STREAM means it did not process it (the gateway retries that on another target within \
                retries, whatever the method); ENHANCE_YOUR_CALM means it throttles the gateway."
            }
            Self::TargetGoAway => {
                "The target sent GOAWAY and closed the connection while this stream, which it had \
                accepted, was waiting for its response (a restart, a deploy, or max-connection-age on the \
                target). Streams it had not accepted (above the GOAWAY's last_stream_id) are retried on another \
                target; this one may have been processed, so it is not. Drain targets before stopping them \
                (deregister, wait for deregistration_delay), and make the target's graceful shutdown wait for \
                in-flight streams."
            }
            Self::TargetHttp2ProtocolError => {
                "The target broke the HTTP/2 protocol (a bad frame or header block, a connection \
                error, or GOAWAY/RST_STREAM with PROTOCOL_ERROR). Often it is not an HTTP/2 server at all: an \
                http2 or grpc group sends h2c with prior knowledge to plain-http targets, which an HTTP/1-only \
                server answers with a 400 the gateway cannot read. Set protocol_version = \"http1\" for such \
                targets, or enable h2c on them."
            }
            Self::TargetHttp2NotNegotiated => {
                "The group's protocol_version is http2 or grpc, but the target's TLS handshake did not \
                select h2 by ALPN (it offers only http/1.1, or no ALPN at all). Enable HTTP/2 on the target's TLS \
                listener, or set protocol_version = \"http1\". `waygate doctor probe` shows the negotiated \
                protocol."
            }
            Self::ClientRequestMalformed => {
                "The client sent a request the gateway could not parse, or one that \
                desync_mitigation blocks (see classification and classification_reason in the access log). Fix \
                the client; relax desync_mitigation only for requests known to be safe."
            }
            Self::ClientRequestTimeout => {
                "The client did not send a complete request head in time (request_header_timeout), \
                or its request body stalled: no byte of it for the listener's idle_timeout. A slow or idle client, \
                or a checker that connects without sending. Raise the timeout only if legitimate clients are that \
                slow."
            }
            Self::ClientClosedRequest => {
                "The client went away before the response was ready, usually because its own \
                timeout is shorter than the target's processing time. Compare target_processing_time with the \
                client's timeout; speed up the target or raise the client's timeout."
            }
            Self::ClientIdleTimeout => {
                "The client stopped reading its response: no byte left for the listener's \
                idle_timeout while the gateway had more to send (HTTP/1), or the stream's HTTP/2 flow-control \
                window stayed shut that long. The connection was closed (the stream reset on HTTP/2) and the \
                target's connection released. Usually a client that hung or is paused (a stalled consumer, a \
                paused download); raise idle_timeout only if clients legitimately pause that long."
            }
            Self::ClientXffTooMany => {
                "The request's X-Forwarded-For lists more than 30 addresses: a forwarding loop, \
                or a client forging the header. Find the proxy chain that keeps appending to it."
            }
            Self::ClientUnsupportedTransferEncoding => {
                "The request used a Transfer-Encoding other than chunked or \
                identity. Fix the client to send chunked or a Content-Length."
            }
            Self::ClientMethodNotAllowed => {
                "The request used CONNECT: this gateway is a reverse proxy, not a forward proxy, and \
                tunnels only WebSocket upgrades. Send the request to the target's own URL through the gateway."
            }
            Self::ClientProtocolMismatch => {
                "The request cannot be sent with the target group's protocol_version (ALB's 464): an \
                HTTP/1.x request, or a request that is not gRPC, routed to a grpc group. gRPC clients speak \
                HTTP/2; route other traffic to an http1 or http2 group with a rule matching its path or host."
            }
            Self::LambdaRequestTooLarge => {
                "The request body exceeds the 1 MB limit for function targets. Send smaller \
                bodies, or route large uploads to an HTTP target."
            }
            Self::LambdaInvalidResponse => {
                "The function's response is not valid JSON or misses statusCode, headers or \
                isBase64Encoded. Fix the function to return \
                {\"statusCode\":200,\"headers\":{},\"isBase64Encoded\":false,\"body\":\"...\"}."
            }
            Self::LambdaResponseTooLarge => {
                "The function's response exceeds 1 MB. Return less: paginate, compress, or \
                return a link to the payload."
            }
            Self::LambdaUnhandled => {
                "The function raised an error (X-Amz-Function-Error), or ran past its own timeout \
                (error type Sandbox.Timedout). The gateway's log line names the error type and message; read the \
                function's own logs for the stack trace, and fix it or raise its timeout."
            }
            Self::LambdaThrottling => {
                "The invoke was throttled (429 TooManyRequestsException): the function reached \
                its concurrency limit. Raise its reserved concurrency or the account limit, or smooth the traffic."
            }
            Self::LambdaResourceNotFound => {
                "The function does not exist at the configured endpoint and region. Check \
                function.name, function.region and function.endpoint in the target group."
            }
            Self::LambdaAccessDenied => {
                "The invoke was refused (403), or could not be signed: the gateway's credentials \
                are missing, wrong (InvalidSignatureException, UnrecognizedClientException) or may not invoke this \
                function (AccessDeniedException). The gateway's log line says which; fix the credentials or grant \
                lambda:InvokeFunction on the function to the gateway's identity."
            }
            Self::LambdaConnectionError => {
                "The function endpoint could not be reached. Check function.endpoint and \
                the network path to it with `waygate doctor probe` from the gateway host."
            }
            Self::LambdaConnectionTimeout => {
                "The function endpoint did not answer within the target group's connect_timeout \
                or response_timeout. Raise response_timeout above the function's own timeout, and check the \
                network path to the endpoint (`waygate doctor probe`)."
            }
            Self::LambdaServiceException => {
                "The invoke endpoint answered with a server error: the function service \
                failed, not the function. Retry later; if it persists, check the service's status."
            }
            Self::ClientCertMissing => {
                "The listener verifies client certificates (mutual_authentication mode \"verify\") and \
                the client sent none: configure the client with its certificate and key, or use mode \"passthrough\" \
                if targets decide."
            }
            Self::ClientCertUntrusted => {
                "The client's certificate does not chain to a CA in the listener's trust_store: add the \
                issuing CA (and intermediates) to the trust store, or have the client send its full chain. The \
                connection log names the certificate's subject."
            }
            Self::ClientCertExpired => {
                "The client's certificate is outside its validity period: renew it, or check the \
                client's clock; mutual_authentication's ignore_client_certificate_expiry accepts expired ones."
            }
            Self::ClientCertCrlHit => {
                "The client's certificate is revoked by a CRL in the listener's trust_store: an expected \
                refusal unless the CRL is wrong; the client needs a new certificate."
            }
            Self::LambdaBadRequest => {
                "The request has a header value, or a text body (text/*, application/json, \
                application/javascript, application/xml without Content-Encoding), that is not UTF-8, which a \
                function's JSON event cannot carry. The gateway's log line names the header or the body. Send \
                UTF-8, or send binary bodies with a binary content type (they reach the function base64-encoded)."
            }
            Self::LambdaWebsocketNotSupported => {
                "The request asks for an upgrade (a WebSocket handshake, or an HTTP/2 extended CONNECT) \
                and the target group is a function, which answers one request at a time. Route WebSocket paths \
                to an http1 target group with a listener rule."
            }
            Self::TargetExtendedConnectDisabled => {
                "The request is a WebSocket and the target group's protocol_version is http2, but the \
                target did not enable RFC 8441's extended CONNECT (its SETTINGS lack \
                SETTINGS_ENABLE_CONNECT_PROTOCOL = 1), so a WebSocket cannot open on an HTTP/2 stream to it. \
                Enable RFC 8441 on the target (hyper: `enable_connect_protocol()`; h2: \
                `Builder::enable_connect_protocol`), or route WebSockets to an http1 target group with a listener \
                rule on their path."
            }
        }
    }
}
