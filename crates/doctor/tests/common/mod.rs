//! Test support for the log tests: AWS's documented ALB connection-log examples, and a builder of ALB lines
//! with every field, written in ALB's format or waygate's JSON.
#![allow(dead_code)]

use waygate_doctor::time::{Micros, SECOND, format_timestamp, parse_timestamp};

/// AWS's two documented ALB connection-log examples (mutual TLS verify mode, port 443).
pub const ALB_CONN_OK: &str = "2023-10-04T17:05:15.514108Z 203.0.113.1 36280 443 TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 \
    4.036 \"CN=amazondomains.com,O=endEntity,L=Seattle,ST=Washington,C=US\" \
    NotBefore=2023-09-21T22:43:21Z;NotAfter=2026-06-17T22:43:21Z FEF257372D5C14D4 Success \
    TID_3180a73013c8ca4bac2f731159d4b0fe";
pub const ALB_CONN_UNTRUSTED: &str = "2023-10-04T17:05:15.514108Z 203.0.113.1 36280 443 TLSv1.2 \
    ECDHE-RSA-AES128-GCM-SHA256 - \"CN=amazondomains.com,O=endEntity,L=Seattle,ST=Washington,C=US\" \
    NotBefore=2023-09-21T22:43:21Z;NotAfter=2026-06-17T22:43:21Z FEF257372D5C14D4 Failed:ClientCertUntrusted \
    TID_1c71a68d70587445ad5127ff8b2687d7";

pub const TG: &str = "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067";

pub fn t0() -> Micros {
    parse_timestamp(b"2024-05-01T10:00:00Z").unwrap()
}

/// `t0 + secs`.
pub fn at(secs: f64) -> Micros {
    t0() + (secs * SECOND as f64) as Micros
}

#[derive(Clone, Debug)]
pub struct L {
    pub time: Micros,
    pub target: Option<String>,
    pub times: [&'static str; 3],
    pub elb: u16,
    pub tgt: Option<u16>,
    pub rct: Option<Micros>,
    pub reason: Option<String>,
    pub tg: String,
}

impl L {
    /// A 200 from `target`, 50 ms after the request arrived.
    pub fn ok(time: Micros, target: &str) -> Self {
        Self {
            time,
            target: Some(target.to_owned()),
            times: ["0.000", "0.050", "0.000"],
            elb: 200,
            tgt: Some(200),
            rct: Some(time - 50_000),
            reason: None,
            tg: TG.to_owned(),
        }
    }

    pub fn status(mut self, elb: u16, tgt: Option<u16>) -> Self {
        self.elb = elb;
        self.tgt = tgt;
        self
    }

    pub fn times(mut self, t: [&'static str; 3]) -> Self {
        self.times = t;
        self
    }

    pub fn no_target(mut self) -> Self {
        self.target = None;
        self
    }

    pub fn reason(mut self, r: &str) -> Self {
        self.reason = Some(r.to_owned());
        self
    }

    /// request_creation_time = time - secs (None for `-`).
    pub fn took(mut self, secs: Option<f64>) -> Self {
        self.rct = secs.map(|s| self.time - (s * SECOND as f64) as Micros);
        self
    }

    pub fn tg(mut self, tg: &str) -> Self {
        self.tg = tg.to_owned();
        self
    }

    /// The line in ALB's format, with all 30 fields.
    pub fn alb(&self) -> String {
        let target = self.target.as_deref().unwrap_or("-");
        let tgt = self.tgt.map_or("-".to_owned(), |s| s.to_string());
        format!(
            "http {} app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 {target} {} {} {} {} {tgt} 34 366 \
            \"GET http://www.example.com:80/ HTTP/1.1\" \"curl/7.46.0\" - - {} \
            \"Root=1-58337262-36d228ad5d99923122bbe354\" \"-\" \"-\" 0 {} \"forward\" \"-\" \"{}\" \"{target}\" \
            \"{tgt}\" \"-\" \"-\" TID_dc57cebed65b444ebc8177bb698fe166",
            format_timestamp(self.time),
            self.times[0],
            self.times[1],
            self.times[2],
            self.elb,
            self.tg,
            self.rct.map_or("-".to_owned(), format_timestamp),
            self.reason.as_deref().unwrap_or("-"),
        )
    }

    /// The line in waygate's JSON format (numbers as numbers, `-` as strings).
    pub fn json(&self) -> String {
        let (ip, port) = match &self.target {
            Some(t) => {
                let (ip, port) = t.rsplit_once(':').unwrap();
                (format!("\"{ip}\""), port.to_owned())
            }
            None => ("\"-\"".to_owned(), "\"-\"".to_owned()),
        };
        let num = |s: &str| if s == "-" { "\"-\"".to_owned() } else { s.to_owned() };
        format!(
            "{{\"type\":\"http\",\"time\":\"{}\",\"elb\":\"app/my-loadbalancer/50dc6c495c0c9188\",\
            \"client_ip\":\"192.168.131.39\",\"client_port\":2817,\"target_ip\":{ip},\"target_port\":{port},\
            \"request_processing_time\":{},\"target_processing_time\":{},\"response_processing_time\":{},\
            \"elb_status_code\":{},\"target_status_code\":{},\"received_bytes\":34,\"sent_bytes\":366,\
            \"request\":\"GET http://www.example.com:80/ HTTP/1.1\",\"user_agent\":\"curl/7.46.0\",\
            \"ssl_cipher\":\"-\",\"ssl_protocol\":\"-\",\"target_group_arn\":\"{}\",\"trace_id\":\"Root=1-x\",\
            \"domain_name\":\"-\",\"chosen_cert_arn\":\"-\",\"matched_rule_priority\":0,\
            \"request_creation_time\":\"{}\",\"actions_executed\":\"forward\",\"redirect_url\":\"-\",\
            \"error_reason\":\"{}\",\"target_port_list\":[],\"target_status_code_list\":[],\
            \"classification\":\"-\",\"classification_reason\":\"-\",\"conn_trace_id\":\"TID_dc57cebed65b444ebc8177bb698fe166\"}}",
            format_timestamp(self.time),
            num(self.times[0]),
            num(self.times[1]),
            num(self.times[2]),
            self.elb,
            self.tgt.map_or("\"-\"".to_owned(), |s| s.to_string()),
            self.tg,
            self.rct.map_or("-".to_owned(), format_timestamp),
            self.reason.as_deref().unwrap_or("-"),
        )
    }
}

/// Joins ALB lines into a log.
pub fn alb_log(lines: &[L]) -> String {
    lines.iter().map(|l| l.alb() + "\n").collect()
}

/// A fresh directory under the system temp dir, removed by the caller if it likes.
pub fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("waygate-doctor-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
