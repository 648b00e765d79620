//! waygate's JSON access-log format: one object per line with the ALB fields under snake_case names
//! (`elb_status_code`, `target_ip`, `target_port`, `error_reason`, ...). Parsing is tolerant the way log
//! pipelines need: numbers may be numbers or strings, `-` and `null` mean absent, unknown keys are ignored,
//! and `target_ip`/`target_port` may also come joined as `target`. Strings borrow from the line unless they
//! hold escapes. This path is slower than the ALB one (serde does the tokenising) and is not the benchmark's.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::record::{Malformed, Record, parse_seconds, parse_status};
use crate::time::{Micros, SECOND, parse_timestamp};

/// A JSON value as the access log may write it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JVal<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Null,
    /// Arrays, objects, booleans: present but not a scalar we read.
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for JVal<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = JVal<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(JVal::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JVal::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(JVal::Str(Cow::Owned(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(JVal::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).map_or(JVal::Float(v as f64), JVal::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(JVal::Float(v))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(JVal::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(JVal::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(JVal::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(JVal::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(JVal::Other)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl<'a> JVal<'a> {
    /// The value as text, `None` for null, `-` and non-scalars.
    fn text(&self) -> Option<Cow<'a, [u8]>> {
        match self {
            JVal::Str(s) if s.as_ref() == "-" || s.is_empty() => None,
            JVal::Str(Cow::Borrowed(s)) => Some(Cow::Borrowed(s.as_bytes())),
            JVal::Str(Cow::Owned(s)) => Some(Cow::Owned(s.clone().into_bytes())),
            JVal::Int(i) => Some(Cow::Owned(i.to_string().into_bytes())),
            JVal::Float(f) => Some(Cow::Owned(f.to_string().into_bytes())),
            JVal::Null | JVal::Other => None,
        }
    }

    fn status(&self) -> Result<Option<u16>, Malformed> {
        match self {
            JVal::Int(i) => {
                u16::try_from(*i).ok().filter(|s| (100..1000).contains(s)).map(Some).ok_or(Malformed::BadStatus)
            }
            JVal::Str(s) if s.as_ref() == "-" || s.is_empty() => Ok(None),
            JVal::Str(s) => parse_status(s.as_bytes()).map(Some).ok_or(Malformed::BadStatus),
            JVal::Null => Ok(None),
            JVal::Float(_) | JVal::Other => Err(Malformed::BadStatus),
        }
    }

    fn seconds(&self) -> Option<Micros> {
        match self {
            JVal::Int(i) => i.checked_mul(SECOND),
            JVal::Float(f) if f.is_finite() && f.abs() < 1e12 => Some((f * SECOND as f64).round() as Micros),
            JVal::Str(s) => parse_seconds(s.as_bytes()),
            _ => None,
        }
    }

    /// A timestamp: an ISO 8601 string, or a number of seconds since the epoch.
    fn timestamp(&self) -> Option<Micros> {
        match self {
            JVal::Str(s) => parse_timestamp(s.as_bytes()),
            JVal::Int(_) | JVal::Float(_) => self.seconds(),
            _ => None,
        }
    }
}

/// The keys the doctor reads; everything else in the object is skipped.
#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonLine<'a> {
    #[serde(borrow)]
    time: Option<JVal<'a>>,
    #[serde(borrow)]
    elb_status_code: Option<JVal<'a>>,
    #[serde(borrow)]
    target_status_code: Option<JVal<'a>>,
    #[serde(borrow)]
    target_ip: Option<JVal<'a>>,
    #[serde(borrow)]
    target_port: Option<JVal<'a>>,
    #[serde(borrow)]
    target: Option<JVal<'a>>,
    #[serde(borrow)]
    request_processing_time: Option<JVal<'a>>,
    #[serde(borrow)]
    target_processing_time: Option<JVal<'a>>,
    #[serde(borrow)]
    response_processing_time: Option<JVal<'a>>,
    #[serde(borrow)]
    target_group_arn: Option<JVal<'a>>,
    #[serde(borrow)]
    request_creation_time: Option<JVal<'a>>,
    #[serde(borrow)]
    error_reason: Option<JVal<'a>>,
    #[serde(borrow)]
    actions_executed: Option<JVal<'a>>,
}

fn text<'a>(v: &Option<JVal<'a>>) -> Option<Cow<'a, [u8]>> {
    v.as_ref().and_then(JVal::text)
}

/// `ip` and `port` as ALB writes them (`10.0.0.1:80`, `[::1]:80`).
fn join_target<'a>(ip: Cow<'a, [u8]>, port: Option<Cow<'a, [u8]>>) -> Cow<'a, [u8]> {
    let Some(port) = port else { return ip };
    let v6 = ip.contains(&b':') && !ip.starts_with(b"[");
    let mut out = Vec::with_capacity(ip.len() + port.len() + 3);
    if v6 {
        out.push(b'[');
    }
    out.extend_from_slice(&ip);
    if v6 {
        out.push(b']');
    }
    out.push(b':');
    out.extend_from_slice(&port);
    Cow::Owned(out)
}

/// Parses one JSON-format line.
pub fn parse_json_line(line: &[u8]) -> Result<Record<'_>, Malformed> {
    let j: JsonLine<'_> = serde_json::from_slice(line).map_err(|_| Malformed::InvalidJson)?;
    let time = j.time.as_ref().ok_or(Malformed::MissingField("time"))?.timestamp().ok_or(Malformed::BadTime)?;
    let elb_status = j
        .elb_status_code
        .as_ref()
        .ok_or(Malformed::MissingField("elb_status_code"))?
        .status()?
        .ok_or(Malformed::BadStatus)?;
    let target_status = match &j.target_status_code {
        Some(v) => v.status()?,
        None => None,
    };
    let target = match text(&j.target_ip) {
        Some(ip) => join_target(ip, text(&j.target_port)),
        None => text(&j.target).unwrap_or(Cow::Borrowed(&[])),
    };
    let secs = |v: &Option<JVal<'_>>| v.as_ref().and_then(JVal::seconds);
    Ok(Record {
        time,
        elb_status,
        target_status,
        target: crate::record::normalise_target(target),
        processing: [
            secs(&j.request_processing_time),
            secs(&j.target_processing_time),
            secs(&j.response_processing_time),
        ],
        target_group: text(&j.target_group_arn).unwrap_or(Cow::Borrowed(&[])),
        request_creation_time: j.request_creation_time.as_ref().and_then(JVal::timestamp),
        error_reason: text(&j.error_reason).unwrap_or(Cow::Borrowed(&[])),
        actions: text(&j.actions_executed).unwrap_or(Cow::Borrowed(&[])),
        classic: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerant() {
        let r = parse_json_line(
            br#"{"type":"http","time":"2024-05-01T10:00:00.000001Z","elb_status_code":"502","target_status_code":"-","target_ip":"10.0.0.1","target_port":8080,"request_processing_time":-1,"target_processing_time":"-1","response_processing_time":-1.0,"error_reason":"TargetConnectionRefused","target_port_list":["10.0.0.1:8080"],"extra":{"a":[1,2]}}"#,
        )
        .unwrap();
        assert_eq!(r.elb_status, 502);
        assert_eq!(r.target_status, None);
        assert_eq!(&*r.target, b"10.0.0.1:8080");
        assert!(r.all_processing_failed());
        assert_eq!(&*r.error_reason, b"TargetConnectionRefused");
        let r = parse_json_line(
            br#"{"time":"2024-05-01T10:00:00Z","elb_status_code":200,"target_ip":"::1","target_port":"80"}"#,
        )
        .unwrap();
        assert_eq!(&*r.target, b"[::1]:80");
        assert_eq!(r.error_reason.len(), 0);
        // `target` joined instead of `target_ip` + `target_port`; `null` is absent like `-`.
        let r = parse_json_line(
            br#"{"time":"2024-05-01T10:00:00Z","elb_status_code":"502","target_status_code":null,"target":"10.0.0.2:80","error_reason":null}"#,
        )
        .unwrap();
        assert_eq!((&*r.target, r.target_status, r.error_reason.len()), (&b"10.0.0.2:80"[..], None, 0));
        assert_eq!(parse_json_line(br#"{"elb_status_code":200}"#).unwrap_err(), Malformed::MissingField("time"));
        assert_eq!(parse_json_line(br#"{"time":"x""#).unwrap_err(), Malformed::InvalidJson);
    }
}
