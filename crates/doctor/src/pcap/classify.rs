//! One flow's verdict: a catalogue [`Cause`] (or a healthy outcome) and its story, told frame by frame
//! the way the TLS-handshake-timeout playbook reads a Wireshark trace ("frame 1 SYN, frame 2 SYN-ACK,
//! frame 3 ACK: TCP handshake complete in 0.1 ms; frame 4 ClientHello (517 bytes) ...").
//!
//! The order of questions: did the SYN get an answer (ICMP unreachable, RST, nothing)? Did the client
//! speak TLS, and what came back (nothing, an alert, non-TLS bytes, a ServerHello)? For plain streams,
//! was a request left unanswered when the first FIN or RST came, and from which side? What the packets show
//! becomes the catalogue's [`Evidence`] (a refusal is `ConnectionRefused`, a ClientHello left unanswered a
//! fired timer...), and `waygate_faults::classify`, the one classifier, names the cause. A timeout or a
//! keep-alive race is given only when the wait reaches its threshold ([`rules`]); short of it, the flow is
//! a client that gave up (ClientClosedRequest) or a capture that ended (`incomplete`). Flows that are
//! neither HTTP nor TLS are `other` traffic unless they fail at the TCP level.

use std::io::ErrorKind;

use waygate_faults::{Cause, Evidence, Phase, TlsEvidence, classify as catalogue};

use super::flow::Flow;
use super::rules::{self, Threshold};
use super::tls;

/// How a flow ended, in the report's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A catalogue cause: the gateway would have produced an error.
    Failed,
    /// Data both ways (or a clean close) and nothing wrong seen.
    Ok,
    /// The server closed an idle keep-alive connection after a complete exchange (not an error, but the
    /// close time matters: see TargetKeepAliveRace).
    IdleClose,
    /// The capture ended (or began) before the flow said how it ends, or sees one side of it only.
    Incomplete,
    /// Neither HTTP nor TLS (SSH, SMTP, LDAP, a database ...) and no failure at the TCP level: no verdict.
    Other,
}

/// A flow's classification.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub outcome: Outcome,
    pub cause: Option<Cause>,
    /// The story, step by step.
    pub steps: Vec<String>,
    /// Every frame the story names, ascending.
    pub frames: Vec<u64>,
    /// TLS alert description name, for TargetTlsAlert and TargetTlsCertificateInvalid.
    pub alert: Option<String>,
    /// For idle closes and keep-alive races: the idle time before the server's FIN (or before reuse), ms.
    pub idle_ms: Option<f64>,
    /// How sure the verdict is when the packets cannot prove it (`probable`: a keep-alive race read from
    /// TLS record sizes and timing); None when they do.
    pub confidence: Option<&'static str>,
    /// The next-hop MTU of an ICMP fragmentation-needed / packet-too-big error quoting the flow.
    pub path_mtu: Option<u32>,
}

impl Verdict {
    /// The story as one line.
    pub fn evidence(&self) -> String {
        self.steps.join("; ")
    }
}

/// Human duration: `0.04 ms`, `250.0 ms`, `10.0 s`.
pub fn dur(ns: i64) -> String {
    let ns = ns.max(0) as f64;
    if ns < 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns < 1e9 {
        format!("{:.1} ms", ns / 1e6)
    } else {
        format!("{:.1} s", ns / 1e9)
    }
}

fn list(frames: &[u64]) -> String {
    frames.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

fn plural(frames: &[u64]) -> &'static str {
    if frames.len() > 1 { "frames" } else { "frame" }
}

struct Story {
    steps: Vec<String>,
    frames: Vec<u64>,
}

impl Story {
    fn say(&mut self, frames: &[u64], text: String) {
        self.frames.extend_from_slice(frames);
        self.steps.push(text);
    }

    fn end(mut self, outcome: Outcome, cause: Option<Cause>) -> Verdict {
        if let Some(c) = cause
            && let Some(last) = self.steps.last_mut()
        {
            last.push_str(&format!(" → {}", c.name()));
        }
        self.frames.sort_unstable();
        self.frames.dedup();
        Verdict {
            outcome,
            cause,
            steps: self.steps,
            frames: self.frames,
            alert: None,
            idle_ms: None,
            confidence: None,
            path_mtu: None,
        }
    }

    /// Ends a failed flow with the cause the catalogue gives its evidence.
    fn fail(self, evidence: &Evidence) -> Verdict {
        self.end(Outcome::Failed, Some(catalogue(evidence)))
    }

    /// Ends a flow that failed on TLS alert `name` (frame `n`, told by `text`).
    fn alert(mut self, n: u64, text: String, tls: TlsEvidence, name: String) -> Verdict {
        self.say(&[n], text);
        let evidence = Evidence { tls: Some(tls), ..Evidence::new(Phase::TlsHandshake) };
        Verdict { alert: Some(name), ..self.fail(&evidence) }
    }
}

/// Classifies one flow. The path-MTU evidence, when an ICMP error quotes the flow, is told just before
/// the story's last step (the verdict), where it explains it.
pub fn classify(f: &Flow) -> Verdict {
    let mut v = verdict(f);
    let mut mtu = Story { steps: Vec::new(), frames: Vec::new() };
    path_mtu_story(&mut mtu, f);
    let at = v.steps.len().saturating_sub(1);
    v.steps.splice(at..at, mtu.steps);
    v.frames.extend(mtu.frames);
    v.frames.sort_unstable();
    v.frames.dedup();
    Verdict { path_mtu: f.frag_needed.as_ref().and_then(|(_, _, u)| u.mtu), ..v }
}

/// The ICMP fragmentation-needed / packet-too-big error quoting the flow, and a client packet still larger
/// than its MTU after it.
fn path_mtu_story(st: &mut Story, f: &Flow) {
    if let Some((n, _, u)) = &f.frag_needed {
        let mtu = u.mtu.unwrap_or(0);
        st.say(
            &[*n],
            format!(
                "frame {n} ICMP {} from {} (next-hop MTU {mtu}): a packet of this connection was too large for the \
                 path; if such errors do not reach the sender (a path-MTU black hole) large packets vanish, and \
                 TLS handshakes and large responses hang",
                u.what, u.from
            ),
        );
        if let Some((m, size)) = f.oversize_after_icmp {
            st.say(
                &[m],
                format!(
                    "frame {m} the client still sent a packet of at least {size} bytes after it, more than the MTU \
                     {mtu}: the error did not take effect (dropped by a host firewall, or never delivered to the \
                     TCP stack), so packets of that size vanish"
                ),
            );
        }
    }
}

/// Ends a flow whose client left before `threshold`'s wait was reached: the client gave up (a client-side
/// cause), it did not time the target out.
fn gave_up(mut st: Story, phase: Phase, threshold: &Threshold, frame: u64, text: String) -> Verdict {
    st.say(
        &[frame],
        format!(
            "{text}: sooner than any {} ({}), so the client gave up on its own",
            threshold.verdict,
            threshold.min()
        ),
    );
    st.fail(&Evidence { client_closed: true, ..Evidence::new(phase) })
}

fn verdict(f: &Flow) -> Verdict {
    let mut st = Story { steps: Vec::new(), frames: Vec::new() };
    let syn_at = f.syns.first().copied();
    if f.icmp_only {
        st.say(
            &[],
            "no TCP packet of this connection in the capture (filtered to ICMP, or the SYN was rejected before \
             the capture point): the ICMP error's quoted header names it"
                .into(),
        );
    }
    if f.mid_stream {
        st.say(
            &[f.first.0],
            format!("frame {} first packet mid-connection (the capture began after the SYN)", f.first.0),
        );
    } else if let Some((n, _)) = syn_at {
        st.say(&[n], format!("frame {n} SYN"));
        if f.syns.len() > 1 {
            let again: Vec<u64> = f.syns[1..].iter().map(|a| a.0).collect();
            let more = if f.syn_count as usize > f.syns.len() { " (and more)" } else { "" };
            st.say(&again, format!("{} {} SYN retransmitted{more}", plural(&again), list(&again)));
        }
    }
    let syn_ts = syn_at.map_or(f.first.1, |a| a.1);
    if f.synack.is_none() && !f.mid_stream {
        if let Some((n, ts, u)) = &f.unreachable {
            st.say(&[*n], format!("frame {n} ICMP {} from {} after {}", u.what, u.from, dur(ts - syn_ts)));
            return st.fail(&io(Phase::Connect, ErrorKind::HostUnreachable));
        }
        if let Some((n, ts)) = f.s.rst {
            st.say(
                &[n],
                format!("frame {n} RST in reply after {}: nothing listens, or a firewall rejects", dur(ts - syn_ts)),
            );
            return st.fail(&io(Phase::Connect, ErrorKind::ConnectionRefused));
        }
        if let Some((n, _)) = f.acked_unseen_synack {
            st.say(
                &[n],
                format!(
                    "frame {n} the client acknowledges a SYN-ACK the capture does not hold: the capture sees one \
                     direction only (asymmetric routing, a filter or an interface on one side)"
                ),
            );
            return st.end(Outcome::Incomplete, None);
        }
        let connect = &rules::CONNECT_TIMEOUT;
        if let Some((n, ts)) = f.c.closed() {
            if !connect.met(ts - syn_ts) {
                let text = format!("frame {n} client {} after {} without a SYN-ACK", how(f, n), dur(ts - syn_ts));
                return gave_up(st, Phase::Connect, connect, n, text);
            }
            st.say(&[n], format!("frame {n} client gave up after {} without a SYN-ACK", dur(ts - syn_ts)));
            return st.fail(&timed_out(f, Phase::Connect));
        }
        if f.syn_count >= 2 {
            let waited = f.last.1 - syn_ts;
            if !connect.met(waited) {
                st.say(
                    &[],
                    format!(
                        "the capture ends {} after the first SYN: too soon for a connect timeout (a SYN is first \
                         retransmitted after {}; closer SYNs are one SYN captured twice)",
                        dur(waited),
                        connect.min()
                    ),
                );
                return st.end(Outcome::Incomplete, None);
            }
            st.say(&[], format!("no SYN-ACK in {}", dur(waited)));
            return st.fail(&timed_out(f, Phase::Connect));
        }
        st.say(&[], "no answer before the capture ended".into());
        return st.end(Outcome::Incomplete, None);
    }
    if let Some((n, ts)) = f.synack {
        st.say(&[n], format!("frame {n} SYN-ACK"));
        if let Some((a, ats)) = f.handshake_ack {
            st.say(&[a], format!("frame {a} ACK: TCP handshake complete in {}", dur(ats - syn_ts)));
        } else {
            st.say(&[], format!("TCP connected in {}", dur(ts - syn_ts)));
        }
    }
    let Some((cn, cts, clen)) = f.c.first_data else {
        return no_client_data(st, f);
    };
    let missed = f.server_bytes_missed();
    if missed > 0 && f.s.first_data.is_none() {
        st.say(
            &[],
            format!(
                "the client acknowledged {missed} byte(s) from the server that the capture does not hold (the \
                capture dropped packets: see tcpdump's \"dropped by kernel\"); cannot tell what the server said"
            ),
        );
        return st.end(Outcome::Incomplete, None);
    }
    let hello = tls::is_client_hello(&f.c.head);
    if !hello && !speaks_http_or_tls(f) {
        return other_traffic(st, f, cn, clen);
    }
    if hello {
        st.say(&[cn], format!("frame {cn} ClientHello ({clen} bytes)"));
    } else {
        st.say(&[cn], format!("frame {cn} {} ({clen} bytes)", what_client_sent(&f.c.head)));
    }
    if !f.c.first_retrans.is_empty() {
        let r = &f.c.first_retrans;
        let what = if hello { "ClientHello" } else { "request" };
        st.say(r, format!("{} {} {what} retransmitted", plural(r), list(r)));
    }
    if hello {
        return tls_flow(st, f, cts);
    }
    close_story(st, f, false)
}

fn what_client_sent(head: &[u8]) -> String {
    if head.is_empty() {
        return "data".into();
    }
    if tls::looks_like_tls(head) {
        return "TLS record".into();
    }
    let p = tls::preview(head);
    if p.contains(" HTTP/") { format!("request \"{p}\"") } else { "data".into() }
}

/// `FIN` or `RST`, for the client's close at frame `n`.
fn how(f: &Flow, n: u64) -> &'static str {
    if f.c.rst.is_some_and(|r| r.0 == n) { "RST" } else { "FIN" }
}

/// HTTP/1 methods (and HTTP/2's connection preface): what a plain HTTP client sends first. An empty head
/// (the snaplen kept no payload) cannot be told apart, and is read as HTTP, the capture's usual traffic.
fn is_http_request(head: &[u8]) -> bool {
    const METHODS: [&[u8]; 10] =
        [b"GET ", b"POST ", b"PUT ", b"DELETE ", b"HEAD ", b"OPTIONS ", b"PATCH ", b"CONNECT ", b"TRACE ", b"PRI "];
    head.is_empty() || METHODS.iter().any(|m| head.starts_with(m) || m.starts_with(head))
}

/// Whether the flow carries HTTP or TLS: the client's first bytes say so; a flow whose start the capture
/// missed may show it on either side.
fn speaks_http_or_tls(f: &Flow) -> bool {
    let server = f.s.head.starts_with(b"HTTP/") || tls::looks_like_tls(&f.s.head);
    let client = tls::looks_like_tls(&f.c.head) || (!f.c.head.is_empty() && is_http_request(&f.c.head));
    if f.mid_stream {
        client || server || (f.c.head.is_empty() && f.s.head.is_empty())
    } else {
        is_http_request(&f.c.head) || client
    }
}

/// A flow that is neither HTTP nor TLS (SSH, SMTP, LDAP, FTP ...): no HTTP or TLS verdict applies. Only a
/// TCP-level failure is one: the server resetting the connection before it said anything.
fn other_traffic(mut st: Story, f: &Flow, n: u64, len: u32) -> Verdict {
    let p = tls::preview(&f.c.head);
    st.say(&[n], format!("frame {n} the client sent {len} bytes that are neither HTTP nor TLS: \"{p}\""));
    if let Some((r, ts)) = f.s.rst
        && f.s.first_data.is_none()
    {
        st.say(&[r], format!("frame {r} server RST {} later, before a byte of its own", dur(ts - f.first.1)));
        return st.fail(&io(Phase::AwaitHeaders, ErrorKind::ConnectionReset));
    }
    st.say(&[], "other traffic: no HTTP or TLS verdict applies".into());
    st.end(Outcome::Other, None)
}

fn no_client_data(mut st: Story, f: &Flow) -> Verdict {
    match f.s.first_data {
        Some(_) if f.mid_stream || speaks_http_or_tls(f) => close_story(st, f, false),
        Some((n, _, len)) => {
            // Banner protocols (SSH, SMTP, FTP, POP3) speak first; an HTTP or TLS server never does.
            let p = tls::preview(&f.s.head);
            st.say(&[n], format!("frame {n} the server spoke first ({len} bytes: \"{p}\")"));
            st.say(&[], "other traffic (HTTP and TLS servers never speak first): no verdict".into());
            st.end(Outcome::Other, None)
        }
        None => match f.first_close {
            Some(c) => {
                st.say(&[c.at.0], format!("frame {} {} {} with no data exchanged", c.at.0, c.who(), c.how()));
                st.end(Outcome::Ok, None)
            }
            None => {
                st.say(&[], "no data before the capture ended".into());
                st.end(Outcome::Incomplete, None)
            }
        },
    }
}

fn tls_flow(mut st: Story, f: &Flow, hello_ts: i64) -> Verdict {
    let Some((sn, sts, slen)) = f.s.first_data else {
        st.say(&[], "no ServerHello".into());
        return match f.first_close {
            Some(c) => {
                let ((n, ts), how) = (c.at, c.how());
                if c.by_server {
                    st.say(&[n], format!("frame {n} server {how} after {} without a byte of TLS", dur(ts - hello_ts)));
                    st.fail(&Evidence { tls: Some(TlsEvidence::PeerClosed), ..Evidence::new(Phase::TlsHandshake) })
                } else if !rules::TLS_HANDSHAKE_TIMEOUT.met(ts - hello_ts) {
                    let text = format!("frame {n} client {how} after {}", dur(ts - hello_ts));
                    gave_up(st, Phase::TlsHandshake, &rules::TLS_HANDSHAKE_TIMEOUT, n, text)
                } else {
                    st.say(&[n], format!("frame {n} client {how} after {}", dur(ts - hello_ts)));
                    st.fail(&timed_out(f, Phase::TlsHandshake))
                }
            }
            // Linux queues the client's FIN behind unacknowledged data, so a dropped ClientHello is often
            // followed by retransmissions only: never acknowledged is the evidence.
            None if !f.c.first_retrans.is_empty() && rules::TLS_HANDSHAKE_TIMEOUT.met(f.last.1 - hello_ts) => {
                let waited = dur(f.last.1 - hello_ts);
                st.say(
                    &[],
                    format!("never acknowledged in {waited}: dropped on the way (the client's FIN waits behind it)"),
                );
                st.fail(&timed_out(f, Phase::TlsHandshake))
            }
            None => {
                st.say(&[], format!("still waiting {} later when the capture ended", dur(f.last.1 - hello_ts)));
                st.end(Outcome::Incomplete, None)
            }
        };
    };
    let wait = dur(sts - hello_ts);
    if let Some((_, desc, n)) = f.s.tls.warning {
        let name = tls::alert_name(desc);
        st.say(&[n], format!("frame {n} TLS alert warning {name} ({desc}) from the server: a warning, not a failure"));
    }
    if let Some((level, desc, n)) = f.s.tls.alert
        && f.s.tls.records <= 1
    {
        let name = tls::alert_name(desc);
        let text = format!("frame {n} TLS alert {} {name} ({desc}) after {wait}", level_name(level));
        return st.alert(n, text, TlsEvidence::AlertReceived { description: name.clone() }, name);
    }
    if !tls::looks_like_tls(&f.s.head) {
        let p = tls::preview(&f.s.head);
        st.say(&[sn], format!("frame {sn} server answered with non-TLS bytes ({slen} bytes) after {wait}: \"{p}\""));
        return st.fail(&Evidence { tls: Some(TlsEvidence::NotTls), ..Evidence::new(Phase::TlsHandshake) });
    }
    if tls::is_server_hello(&f.s.head) {
        st.say(&[sn], format!("frame {sn} ServerHello after {wait}"));
    } else {
        st.say(&[sn], format!("frame {sn} TLS reply ({slen} bytes) after {wait}"));
    }
    if let Some((level, desc, n)) = f.s.tls.alert {
        let name = tls::alert_name(desc);
        let text = format!("frame {n} TLS alert {} {name} ({desc}) from the server", level_name(level));
        return st.alert(n, text, TlsEvidence::AlertReceived { description: name.clone() }, name);
    }
    if let Some((level, desc, n)) = f.c.tls.alert
        && tls::is_certificate_alert(desc)
    {
        let name = tls::alert_name(desc);
        let text =
            format!("frame {n} client TLS alert {} {name} ({desc}): it rejected the certificate", level_name(level));
        let reason = format!("the client sent {name}");
        return st.alert(n, text, TlsEvidence::CertificateInvalid { reason }, name);
    }
    close_story(st, f, true)
}

/// Evidence of an io error of `kind` in `phase`.
fn io(phase: Phase, kind: ErrorKind) -> Evidence {
    Evidence { io_kind: Some(kind), ..Evidence::new(phase) }
}

/// Evidence that `phase`'s timer would have fired: the wait the packets show never ended.
/// A timer that fired, on a flow whose packets may have outgrown the path (see [`Flow::oversize_after_icmp`]).
fn timed_out(f: &Flow, phase: Phase) -> Evidence {
    Evidence { timed_out: true, path_mtu_exceeded: f.oversize_after_icmp.is_some(), ..Evidence::new(phase) }
}

fn level_name(level: u8) -> &'static str {
    match level {
        1 => "warning",
        2 => "fatal",
        _ => "level?",
    }
}

/// A server FIN sooner than this after the last data is `Connection: close`, not an idle timeout.
const CLOSE_AFTER_RESPONSE: i64 = 100_000_000;

/// The end of a flow with data: the first FIN or RST and what was pending when it came. Inside TLS the
/// bursts are encrypted (and TLS 1.3 servers send tickets unasked), so requests are not counted there
/// and a client's close after its own data is its close_notify, not a timeout; a server's close on a
/// client record is a keep-alive race only when the record sizes and timing say so ([`tls_reuse`]).
fn close_story(mut st: Story, f: &Flow, tls: bool) -> Verdict {
    if let Some((n, _, len)) = f.s.first_data
        && !st.frames.contains(&n)
    {
        st.say(&[n], format!("frame {n} first response bytes ({len} bytes)"));
    }
    if let Some(n) = f.upgraded {
        st.say(
            &[n],
            format!("frame {n} 101 Switching Protocols: a tunnel (WebSocket, h2c) from here on, not keep-alive"),
        );
    }
    let Some(c) = f.first_close else {
        let bytes = format!("{} bytes sent, {} received", f.c.bytes, f.s.bytes);
        if f.s.bytes == 0 {
            st.say(&[], format!("no response before the capture ended ({bytes})"));
            return st.end(Outcome::Incomplete, None);
        }
        st.say(&[], format!("open when the capture ended ({bytes})"));
        return st.end(Outcome::Ok, None);
    };
    let how = c.how();
    let idle_ns = c.last_data.map_or(0, |d| c.at.1 - d.1);
    let idle_enough = c.idle_before_request.is_some_and(|ns| rules::KEEPALIVE_IDLE.met(ns));
    match (c.by_server, c.awaiting) {
        (true, Some((rn, rts))) if tls => tls_server_close(st, f, &c, rn, rts, idle_enough),
        (true, Some((rn, rts))) => {
            let wait = dur(c.at.1 - rts);
            let reused = c.requests > 1;
            let evidence = Evidence {
                reused: reused && idle_enough,
                io_kind: c.rst.then_some(ErrorKind::ConnectionReset),
                ..Evidence::new(Phase::AwaitHeaders)
            };
            let idle_txt = c.idle_before_request.map_or(String::new(), |ns| format!(" after {} idle", dur(ns)));
            if catalogue(&evidence) == Cause::TargetKeepAliveRace {
                st.say(&[rn], format!("frame {rn} request #{} on the reused connection{idle_txt}", c.requests));
                st.say(&[c.at.0], format!("frame {} server {how} {wait} later, before any response byte", c.at.0));
                let idle_ms = c.idle_before_request.map(|ns| ns as f64 / 1e6);
                return Verdict { idle_ms, ..st.fail(&evidence) };
            }
            if reused {
                st.say(
                    &[rn],
                    format!(
                        "frame {rn} request #{} on the reused connection{idle_txt}: idle less than any keep-alive \
                         timeout ({}), so not a keep-alive race",
                        c.requests,
                        rules::KEEPALIVE_IDLE.min()
                    ),
                );
            }
            st.say(
                &[c.at.0],
                format!("frame {} server {how} {wait} after the request, before any response byte", c.at.0),
            );
            st.fail(&evidence)
        }
        (false, Some((rn, rts))) if !tls && rn != c.at.0 => {
            let waited = c.at.1 - rts;
            let text = format!("frame {} client {how}: no response in {}", c.at.0, dur(waited));
            if !rules::RESPONSE_TIMEOUT.met(waited) {
                return gave_up(st, Phase::AwaitHeaders, &rules::RESPONSE_TIMEOUT, c.at.0, text);
            }
            st.say(&[c.at.0], text);
            st.fail(&timed_out(f, Phase::AwaitHeaders))
        }
        (true, None) if f.s.bytes > 0 && f.c.bytes > 0 && idle_ns >= CLOSE_AFTER_RESPONSE && f.upgraded.is_none() => {
            st.say(
                &[c.at.0],
                format!("frame {} server {how} after {} idle, following a complete exchange", c.at.0, dur(idle_ns)),
            );
            let mut v = st.end(Outcome::IdleClose, None);
            v.idle_ms = Some(idle_ns as f64 / 1e6);
            v
        }
        _ => {
            let who = c.who();
            st.say(
                &[c.at.0],
                format!("frame {} {who} {how} ({} bytes sent, {} received)", c.at.0, f.c.bytes, f.s.bytes),
            );
            st.end(Outcome::Ok, None)
        }
    }
}

/// The server closed a TLS connection while a client burst was unanswered. The doctor sees records, not
/// requests: a race is named only when the burst opened with an application-data record longer than an
/// encrypted close_notify, after the server had sent application data (the handshake was over and a
/// response had come), and after the connection sat idle at least [`rules::KEEPALIVE_IDLE`]. Even then it
/// is `probable`: the record could be something other than a request (an HTTP/2 PING, a TLS 1.3 key
/// update). Otherwise the flow is `ok`, as after any ServerHello.
fn tls_server_close(
    mut st: Story,
    f: &Flow,
    c: &super::flow::FirstClose,
    rn: u64,
    rts: i64,
    idle_enough: bool,
) -> Verdict {
    let how = c.how();
    let request_like = c.awaiting_record.is_some_and(|(kind, len)| kind == 23 && len > tls::CLOSE_NOTIFY_MAX);
    if request_like && idle_enough && f.s.tls.app_data && c.requests > 1 {
        let idle = c.idle_before_request.unwrap_or(0);
        let len = c.awaiting_record.map_or(0, |r| r.1);
        st.say(
            &[rn],
            format!(
                "frame {rn} client application-data record ({len} bytes) after {} idle on a connection that had \
                 carried application data: a request on the reused connection, probably (inside TLS the doctor \
                 sees record sizes and timing, not requests)",
                dur(idle)
            ),
        );
        st.say(
            &[c.at.0],
            format!("frame {} server {how} {} later, before any byte in reply", c.at.0, dur(c.at.1 - rts)),
        );
        let evidence = Evidence {
            reused: true,
            io_kind: c.rst.then_some(ErrorKind::ConnectionReset),
            ..Evidence::new(Phase::AwaitHeaders)
        };
        let v = st.fail(&evidence);
        return Verdict { idle_ms: Some(idle as f64 / 1e6), confidence: Some("probable"), ..v };
    }
    st.say(
        &[c.at.0],
        format!(
            "frame {} server {how} after the client's last records ({} bytes sent, {} received): inside TLS a \
             close is not a failure unless an alert says so",
            c.at.0, f.c.bytes, f.s.bytes
        ),
    );
    st.end(Outcome::Ok, None)
}
