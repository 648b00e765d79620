//! The report's examples ([`crate::links`]): the first requests of each cause with the connection they
//! came on and that connection's other requests, and the first connections of each connection-log failure.
//! What an SRE reads next after a count: which request, from which client, over which TLS, and whether the
//! failure was the connection's first request or a later one (the keep-alive race's signature).

use crate::links::{ConnDetail, ConnRequests, Joined, RequestExample};
use crate::time::format_timestamp;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A request given as an example of its cause.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RequestExampleReport {
    pub time: String,
    pub elb_status_code: u16,
    /// `target:port`, `-` for none.
    pub target: String,
    /// The request line as logged (its first 200 bytes).
    pub request: String,
    pub conn_trace_id: Option<String>,
    /// The connection-log line of its connection; null without one (no ALB connection log in the input, no
    /// `conn_trace_id` on the line, or none matches).
    pub connection: Option<ConnectionDetail>,
    /// Every request of its connection in the input; null unless the input holds ALB connection logs (the
    /// join reads the files a second time only then) and the line has a `conn_trace_id`.
    pub connection_requests: Option<ConnectionRequests>,
}

/// An ALB connection-log line.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionDetail {
    pub time: String,
    /// `client_ip:client_port` (`[v6]:port`).
    pub client: String,
    pub listener_port: String,
    pub tls_protocol: String,
    pub tls_cipher: String,
    /// Seconds, as logged.
    pub tls_handshake_latency: String,
    pub client_cert_subject: String,
    pub tls_verify_status: String,
    pub conn_trace_id: Option<String>,
}

/// The requests a connection carried.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionRequests {
    pub count: u64,
    pub elb_5xx: u64,
    /// The earliest (at most 5), in time order.
    pub first: Vec<LinkedRequest>,
}

/// One request of a linked connection.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkedRequest {
    pub time: String,
    pub elb_status_code: u16,
    pub request: String,
}

/// A connection given as an example of its connection-log failure.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionExample {
    #[serde(flatten)]
    pub connection: ConnectionDetail,
    /// Access-log lines carrying its `conn_trace_id` (0 for a failed handshake); null when not looked up
    /// (no `conn_trace_id`).
    pub requests: Option<u64>,
}

fn detail(d: &ConnDetail) -> ConnectionDetail {
    ConnectionDetail {
        time: format_timestamp(d.time),
        client: text(&d.client),
        listener_port: text(&d.listener),
        tls_protocol: text(&d.tls_protocol),
        tls_cipher: text(&d.tls_cipher),
        tls_handshake_latency: text(&d.handshake),
        client_cert_subject: text(&d.subject),
        tls_verify_status: text(&d.verify),
        conn_trace_id: d.trace_id.as_deref().map(text),
    }
}

fn requests(r: Option<&ConnRequests>) -> ConnectionRequests {
    let r = r.cloned().unwrap_or_default();
    ConnectionRequests {
        count: r.count,
        elb_5xx: r.elb_5xx,
        first: r
            .first
            .iter()
            .map(|(t, _, s, q)| LinkedRequest { time: format_timestamp(*t), elb_status_code: *s, request: text(q) })
            .collect(),
    }
}

pub(crate) fn request_examples(v: &[RequestExample], joined: Option<&Joined>) -> Vec<RequestExampleReport> {
    v.iter()
        .map(|e| {
            let id = e.trace_id.as_deref();
            RequestExampleReport {
                time: format_timestamp(e.time),
                elb_status_code: e.status,
                target: if e.target.is_empty() { "-".to_owned() } else { text(&e.target) },
                request: text(&e.request),
                conn_trace_id: id.map(text),
                connection: id.zip(joined).and_then(|(id, j)| j.conns.get(id)).map(detail),
                connection_requests: id.zip(joined).map(|(id, j)| requests(j.requests.get(id))),
            }
        })
        .collect()
}

pub(crate) fn connection_examples(v: &[ConnDetail], joined: Option<&Joined>) -> Vec<ConnectionExample> {
    v.iter()
        .map(|d| ConnectionExample {
            connection: detail(d),
            requests: d.trace_id.as_deref().zip(joined).map(|(id, j)| j.requests.get(id).map_or(0, |r| r.count)),
        })
        .collect()
}

fn short(ts: &str) -> &str {
    ts.get(..19).unwrap_or(ts)
}

impl ConnectionDetail {
    /// `203.0.113.9:51234 → :443, TLSv1.3 TLS_AES_128_GCM_SHA256, handshake 0.004 s, client certificate
    /// "CN=client", verify Success`.
    pub fn line(&self) -> String {
        let cert = if self.client_cert_subject == "-" {
            String::new()
        } else {
            format!(", client certificate \"{}\"", self.client_cert_subject)
        };
        let latency = match self.tls_handshake_latency.as_str() {
            "-" => "-".to_owned(),
            s => format!("{s} s"),
        };
        format!(
            "{} → :{}, {} {}, handshake {latency}{cert}, verify {}",
            self.client, self.listener_port, self.tls_protocol, self.tls_cipher, self.tls_verify_status
        )
    }
}

impl RequestExampleReport {
    /// The terminal's lines for this example.
    pub fn lines(&self) -> Vec<String> {
        let mut out =
            vec![format!("e.g. {} {} \"{}\" → {}", short(&self.time), self.elb_status_code, self.request, self.target)];
        let Some(id) = &self.conn_trace_id else { return out };
        match &self.connection {
            Some(c) => out.push(format!("  on connection {id}: {}", c.line())),
            None if self.connection_requests.is_some() => {
                out.push(format!("  on connection {id}: not in the connection logs read"));
            }
            None => out.push(format!("  on connection {id}")),
        }
        if let Some(r) = &self.connection_requests {
            let which =
                if r.count > r.first.len() as u64 { format!("; the first {}", r.first.len()) } else { String::new() };
            out.push(format!("  {} request(s) on that connection, {} 5xx{which}:", r.count, r.elb_5xx));
            for q in &r.first {
                out.push(format!("    {} {} \"{}\"", short(&q.time), q.elb_status_code, q.request));
            }
        }
        out
    }
}

impl ConnectionExample {
    /// The terminal's line for this example.
    pub fn line(&self) -> String {
        let c = &self.connection;
        let id = c.conn_trace_id.as_deref().unwrap_or("-");
        let requests = match self.requests {
            Some(0) => ": no request on it".to_owned(),
            Some(n) => format!(": {n} request(s) on it"),
            None => String::new(),
        };
        format!("e.g. {} {} ({id}){requests}", short(&c.time), c.line())
    }
}
