//! Error responses in every profile: bodies parse, name the cause and request id, leak nothing by
//! default, and show exposed details only when given.

use std::collections::BTreeMap;

use waygate_faults::{
    Cause, PROBLEM_TYPE_PREFIX, Profile, ProxyStatus, ResponseDetails, parse_proxy_status_cause, reason_phrase, render,
    render_with,
};

/// A minimal JSON value and strict parser (RFC 8259), enough to check the bodies are well-formed.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.get(key),
            _ => None,
        }
    }
    fn str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Json::Str(s)) => Some(s),
            _ => None,
        }
    }
}

fn parse_json(s: &str) -> Result<Json, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut p = JsonParser { c: &chars, i: 0 };
    let v = p.value()?;
    p.ws();
    if p.i != chars.len() {
        return Err(format!("trailing data at {}", p.i));
    }
    Ok(v)
}

struct JsonParser<'a> {
    c: &'a [char],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.c.get(self.i).is_some_and(|c| matches!(c, ' ' | '\t' | '\n' | '\r')) {
            self.i += 1;
        }
    }
    fn eat(&mut self, want: char) -> Result<(), String> {
        self.ws();
        if self.c.get(self.i) == Some(&want) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {want:?} at {}", self.i))
        }
    }
    fn lit(&mut self, word: &str, v: Json) -> Result<Json, String> {
        for w in word.chars() {
            if self.c.get(self.i) != Some(&w) {
                return Err(format!("bad literal at {}", self.i));
            }
            self.i += 1;
        }
        Ok(v)
    }
    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.c.get(self.i) {
            Some('{') => {
                self.i += 1;
                let mut m = BTreeMap::new();
                self.ws();
                if self.c.get(self.i) == Some(&'}') {
                    self.i += 1;
                    return Ok(Json::Obj(m));
                }
                loop {
                    self.ws();
                    let Json::Str(k) = self.string()? else { unreachable!() };
                    self.eat(':')?;
                    let v = self.value()?;
                    if m.insert(k.clone(), v).is_some() {
                        return Err(format!("duplicate key {k}"));
                    }
                    self.ws();
                    match self.c.get(self.i) {
                        Some(',') => self.i += 1,
                        Some('}') => {
                            self.i += 1;
                            return Ok(Json::Obj(m));
                        }
                        _ => return Err(format!("bad object at {}", self.i)),
                    }
                }
            }
            Some('[') => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.c.get(self.i) == Some(&']') {
                    self.i += 1;
                    return Ok(Json::Arr(a));
                }
                loop {
                    a.push(self.value()?);
                    self.ws();
                    match self.c.get(self.i) {
                        Some(',') => self.i += 1,
                        Some(']') => {
                            self.i += 1;
                            return Ok(Json::Arr(a));
                        }
                        _ => return Err(format!("bad array at {}", self.i)),
                    }
                }
            }
            Some('"') => self.string(),
            Some('t') => self.lit("true", Json::Bool(true)),
            Some('f') => self.lit("false", Json::Bool(false)),
            Some('n') => self.lit("null", Json::Null),
            Some(c) if *c == '-' || c.is_ascii_digit() => {
                let start = self.i;
                while self.c.get(self.i).is_some_and(|c| c.is_ascii_digit() || "-+.eE".contains(*c)) {
                    self.i += 1;
                }
                let text: String = self.c[start..self.i].iter().collect();
                text.parse().map(Json::Num).map_err(|e| format!("{text}: {e}"))
            }
            other => Err(format!("unexpected {other:?} at {}", self.i)),
        }
    }
    fn string(&mut self) -> Result<Json, String> {
        if self.c.get(self.i) != Some(&'"') {
            return Err(format!("expected string at {}", self.i));
        }
        self.i += 1;
        let mut out = String::new();
        loop {
            let c = *self.c.get(self.i).ok_or("unterminated string")?;
            self.i += 1;
            match c {
                '"' => return Ok(Json::Str(out)),
                '\\' => {
                    let e = *self.c.get(self.i).ok_or("bad escape")?;
                    self.i += 1;
                    match e {
                        '"' | '\\' | '/' => out.push(e),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'u' => {
                            let hex: String = self.c.get(self.i..self.i + 4).ok_or("short \\u")?.iter().collect();
                            self.i += 4;
                            let n = u32::from_str_radix(&hex, 16).map_err(|e| e.to_string())?;
                            out.push(char::from_u32(n).ok_or("surrogate")?);
                        }
                        _ => return Err(format!("bad escape {e:?}")),
                    }
                }
                c if (c as u32) < 0x20 => return Err("raw control character in string".into()),
                c => out.push(c),
            }
        }
    }
}

const SECRET_HOP: &str = "10.0.0.7:443";
const SECRET_MSG: &str = "rustls: InvalidCertificate(Expired) CN=internal.corp";

fn exposed() -> ResponseDetails<'static> {
    ResponseDetails { next_hop: Some(SECRET_HOP), tls_alert: Some("bad_certificate"), message: Some(SECRET_MSG) }
}

#[test]
fn json_parser_self_check() {
    assert!(parse_json("{\"a\":[1,true,null,\"x\\u0041\"]}").is_ok());
    for bad in ["{", "{\"a\":1,}", "{\"a\":1}x", "\"\u{1}\"", "{\"a\":1,\"a\":2}"] {
        assert!(parse_json(bad).is_err(), "{bad}");
    }
}

#[test]
fn apigee_bodies() {
    for &cause in Cause::ALL {
        let r = render(cause, Profile::Apigee, "req-1", None);
        assert_eq!(r.content_type, "application/json");
        let v = parse_json(&r.body).unwrap_or_else(|e| panic!("{cause}: {e}: {}", r.body));
        let fault = v.get("fault").unwrap_or_else(|| panic!("{cause}: no fault"));
        assert_eq!(fault.str("faultstring"), Some(cause.apigee_faultstring()));
        let detail = fault.get("detail").unwrap_or_else(|| panic!("{cause}: no detail"));
        assert_eq!(detail.str("errorcode"), Some(cause.apigee_errorcode()));
        assert_eq!(detail.str("reason"), cause.apigee_reason(), "{cause}: reason only when the cause has one");
        assert_eq!(detail.str("cause"), Some(cause.name()));
        assert_eq!(detail.str("request_id"), Some("req-1"));
        if let Some(status) = cause.status(Profile::Apigee) {
            assert_eq!(r.status, status);
        }
    }
    let r = render(Cause::TargetResponseTimeout, Profile::Apigee, "r", None);
    assert_eq!(
        r.body,
        "{\"fault\":{\"faultstring\":\"Gateway Timeout\",\"detail\":{\"errorcode\":\
         \"messaging.adaptors.http.flow.GatewayTimeout\",\"reason\":\"TARGET_READ_TIMEOUT\",\
         \"cause\":\"TargetResponseTimeout\",\"request_id\":\"r\"}}}"
    );
}

#[test]
fn problem_bodies() {
    for &cause in Cause::ALL {
        let r = render(cause, Profile::Problem, "req-2", None);
        assert_eq!(r.content_type, "application/problem+json");
        let v = parse_json(&r.body).unwrap_or_else(|e| panic!("{cause}: {e}: {}", r.body));
        let expected_type = format!("{PROBLEM_TYPE_PREFIX}{cause}");
        assert_eq!(v.str("type"), Some(expected_type.as_str()));
        assert_eq!(v.str("title"), Some(cause.title()));
        assert_eq!(v.get("status"), Some(&Json::Num(f64::from(r.status))));
        assert_eq!(v.str("cause"), Some(cause.name()));
        assert_eq!(v.str("request_id"), Some("req-2"));
        assert!(v.str("detail").is_some_and(|d| d.contains("req-2")));
        assert_eq!(Some(r.status), cause.status(Profile::Problem).or(Some(r.status)));
    }
}

#[test]
fn alb_pages() {
    for &cause in Cause::ALL {
        let r = render(cause, Profile::Alb, "req-3", None);
        assert_eq!(r.content_type, "text/html");
        let reason = reason_phrase(r.status).unwrap_or_else(|| panic!("{cause}: no phrase for {}", r.status));
        let heading = format!("<center><h1>{} {reason}</h1></center>", r.status);
        assert!(r.body.starts_with("<html>"), "{cause}");
        assert!(r.body.contains(&format!("<title>{} {reason}</title>", r.status)), "{cause}");
        assert!(r.body.contains(&heading), "{cause}");
        assert!(r.body.contains(cause.name()) && r.body.contains("req-3"), "{cause}");
        assert!(r.body.trim_end().ends_with("</html>"));
        assert!(r.body.is_ascii());
    }
}

#[test]
fn statuses_follow_the_profile() {
    assert_eq!(render(Cause::TargetConnectTimeout, Profile::Alb, "", None).status, 504);
    assert_eq!(render(Cause::TargetConnectTimeout, Profile::Apigee, "", None).status, 503);
    assert_eq!(render(Cause::TargetConnectTimeout, Profile::Problem, "", None).status, 504);
    assert_eq!(render(Cause::ClientXffTooMany, Profile::Alb, "", None).status, 463);
    assert_eq!(render(Cause::ClientClosedRequest, Profile::Apigee, "", None).status, 499);
    // Never sent, but rendered for the doctor with the pre-head status of the same failure.
    assert_eq!(render(Cause::TargetResponseIncomplete, Profile::Alb, "", None).status, 502);
    assert_eq!(render(Cause::TargetResponseStalled, Profile::Apigee, "", None).status, 504);
}

#[test]
fn reason_phrases() {
    for (code, phrase) in [
        (400, "Bad Request"),
        (408, "Request Timeout"),
        (413, "Content Too Large"),
        (460, "Client Closed Request"),
        (463, "Too Many X-Forwarded-For Addresses"),
        (499, "Client Closed Request"),
        (501, "Not Implemented"),
        (502, "Bad Gateway"),
        (503, "Service Unavailable"),
        (504, "Gateway Timeout"),
    ] {
        assert_eq!(reason_phrase(code), Some(phrase));
    }
    assert_eq!(reason_phrase(299), None);
    for &cause in Cause::ALL {
        for &profile in Profile::ALL {
            assert!(reason_phrase(render(cause, profile, "", None).status).is_some(), "{cause} {profile}");
        }
    }
}

#[test]
fn nothing_leaks_by_default() {
    for &cause in Cause::ALL {
        for &profile in Profile::ALL {
            let r = render(cause, profile, "id", None);
            for text in [&r.body, &r.proxy_status] {
                for secret in ["10.0.0.7", "rustls", "CN=", "bad_certificate", "next-hop", "next_hop"] {
                    assert!(!text.contains(secret), "{cause} {profile}: {secret} in {text}");
                }
            }
            assert_eq!(parse_proxy_status_cause(&r.proxy_status), Some(cause));
        }
    }
}

#[test]
fn exposed_details_appear_everywhere() {
    let d = exposed();
    let cause = Cause::TargetTlsAlert;
    let apigee = render(cause, Profile::Apigee, "id", Some(&d));
    let v = parse_json(&apigee.body).unwrap_or_else(|e| panic!("{e}"));
    let detail = v.get("fault").and_then(|f| f.get("detail")).unwrap_or_else(|| panic!("detail"));
    assert_eq!(detail.str("next_hop"), Some(SECRET_HOP));
    assert_eq!(detail.str("tls_alert"), Some("bad_certificate"));
    assert_eq!(detail.str("message"), Some(SECRET_MSG));

    let problem = render(cause, Profile::Problem, "id", Some(&d));
    let v = parse_json(&problem.body).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.str("detail"), Some(SECRET_MSG));
    assert_eq!(v.str("next_hop"), Some(SECRET_HOP));
    assert!(problem.proxy_status.contains("next-hop=\"10.0.0.7:443\""));
    assert!(problem.proxy_status.contains("alert-id=42"));

    let alb = render(cause, Profile::Alb, "id", Some(&d));
    assert!(alb.body.contains(SECRET_HOP) && alb.body.contains("InvalidCertificate(Expired)"));
}

#[test]
fn hostile_inputs_are_escaped() {
    let id = "</center><script>\"x\"\n\u{0}é";
    let d = ResponseDetails { message: Some("<b>\"\\"), ..Default::default() };
    for &profile in Profile::ALL {
        let r = render(Cause::NoRoute, profile, id, Some(&d));
        assert!(!r.body.contains("<script>"), "{profile}: {}", r.body);
        if profile != Profile::Alb {
            let v = parse_json(&r.body).unwrap_or_else(|e| panic!("{profile}: {e}: {}", r.body));
            let rid = v.str("request_id").or_else(|| v.get("fault")?.get("detail")?.str("request_id"));
            assert_eq!(rid, Some(id), "{profile}: round-trips exactly");
        } else {
            assert!(r.body.is_ascii() && r.body.contains("&lt;/center&gt;&lt;script&gt;&quot;x&quot;"));
        }
    }
}

#[test]
fn render_with_says_dns_timeout() {
    let r = render_with(&ProxyStatus::new(Cause::TargetDnsFailure).timed_out(true), Profile::Alb, "id");
    assert_eq!(r.proxy_status, "waygate; error=dns_timeout; details=\"TargetDnsFailure\"");
    assert_eq!(r.status, 502);
}
