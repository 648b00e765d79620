//! An alert changing state, and what it says: the system-log line, and the webhook body in waygate's format
//! (docs/INTERFACE.md, "Alerts") or Slack's `{"text": ...}`. Slack's, not PagerDuty Events v2: its one field
//! is accepted unchanged by Slack incoming webhooks, Mattermost, Rocket.Chat and most chat bridges, and needs
//! no account-specific routing key in the config; PagerDuty users can route the waygate body through an
//! Events v2 transformer.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use waygate_config::WebhookFormat;

use crate::iso8601;

/// Firing or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Ok,
    Firing,
}

impl AlertState {
    /// The word of the API (`ok`, `firing`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Firing => "firing",
        }
    }
}

/// One transition of one alert, with its evidence at that moment.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    pub alert: String,
    /// `Firing` when it fired, `Ok` when it resolved.
    pub state: AlertState,
    pub value: f64,
    pub threshold: f64,
    pub window: Duration,
    pub at: SystemTime,
    /// Matching exchanges in the window by cause name, most first (`""`: a target's own status, no cause).
    pub causes: Vec<(&'static str, u64)>,
    /// Recent matching exchanges: `waygate explain ID` opens each.
    pub request_ids: Vec<String>,
    /// The leading cause's remediation (FAULTS.md).
    pub remediation: Option<&'static str>,
    pub runbook: Option<String>,
    /// Why a resolution did not come from the value (the rule was removed or changed by a reload).
    pub note: Option<&'static str>,
}

impl AlertEvent {
    /// `"firing"` / `"resolved"`, as the webhook says it.
    pub const fn word(&self) -> &'static str {
        match self.state {
            AlertState::Firing => "firing",
            AlertState::Ok => "resolved",
        }
    }

    /// INTERFACE.md's body.
    pub fn body(&self, format: WebhookFormat) -> Value {
        match format {
            WebhookFormat::Waygate => json!({
                "alert": self.alert,
                "state": self.word(),
                "value": self.value,
                "threshold": self.threshold,
                "window": crate::alerts::seconds_text(self.window),
                "causes": self.causes.iter().map(|(c, n)| (cause_key(c).to_owned(), json!(n))).collect::<serde_json::Map<_, _>>(),
                "request_ids": self.request_ids,
                "remediation": self.remediation,
                "runbook": self.runbook,
                "at": iso8601(self.at),
                "note": self.note,
            }),
            WebhookFormat::Slack => json!({ "text": self.text() }),
        }
    }

    /// The message in words, for chat and the log line.
    pub fn text(&self) -> String {
        let mut s = format!(
            "waygate alert {} {}: value {} (threshold {}, window {})",
            self.alert,
            self.word(),
            round(self.value),
            round(self.threshold),
            crate::alerts::seconds_text(self.window)
        );
        if !self.causes.is_empty() {
            let causes: Vec<String> = self.causes.iter().map(|(c, n)| format!("{} {n}", cause_key(c))).collect();
            let _ = write!(s, "; causes: {}", causes.join(", "));
        }
        if let Some(id) = self.request_ids.first() {
            let _ = write!(s, "; explain: waygate explain {id}");
        }
        if let Some(note) = self.note {
            let _ = write!(s, "; {note}");
        }
        if self.state == AlertState::Firing {
            if let Some(r) = &self.runbook {
                let _ = write!(s, "; runbook: {r}");
            } else if let Some(r) = self.remediation {
                let _ = write!(s, "; remediation: {r}");
            }
        }
        s
    }

    /// The system-log line: WARN when firing, INFO when resolved, the facts as fields.
    pub fn log(&self) {
        let causes: Vec<String> = self.causes.iter().map(|(c, n)| format!("{}={n}", cause_key(c))).collect();
        let causes = causes.join(",");
        let ids = self.request_ids.join(",");
        let window = crate::alerts::seconds_text(self.window);
        match self.state {
            AlertState::Firing => tracing::warn!(
                target: "waygate::alert", alert = %self.alert, state = "firing", value = self.value,
                threshold = self.threshold, window = %window, causes = %causes, request_ids = %ids,
                runbook = self.runbook.as_deref().unwrap_or("-"), "{}", self.text()
            ),
            AlertState::Ok => tracing::info!(
                target: "waygate::alert", alert = %self.alert, state = "resolved", value = self.value,
                threshold = self.threshold, window = %window, causes = %causes, request_ids = %ids, "{}", self.text()
            ),
        }
    }
}

/// A cause's key in the body: its name, or `TargetStatus` for a target's own status (no cause).
fn cause_key(c: &str) -> &str {
    if c.is_empty() { "TargetStatus" } else { c }
}

/// Up to four decimals, without trailing zeros (a ratio of 1/3 reads 0.3333).
fn round(v: f64) -> String {
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        let e = AlertEvent {
            alert: "bad-gateway".into(),
            state: AlertState::Firing,
            value: 12.0,
            threshold: 10.0,
            window: Duration::from_secs(60),
            at: SystemTime::UNIX_EPOCH,
            causes: vec![("TargetConnectionRefused", 11), ("", 1)],
            request_ids: vec!["Root=1-a-b".into()],
            remediation: Some("start it"),
            runbook: None,
            note: None,
        };
        let body = e.body(WebhookFormat::Waygate);
        assert_eq!(body["state"], "firing");
        assert_eq!(body["window"], "60s");
        assert_eq!(body["causes"]["TargetConnectionRefused"], 11);
        assert_eq!(body["causes"]["TargetStatus"], 1);
        assert_eq!(body["request_ids"][0], "Root=1-a-b");
        assert_eq!(body["runbook"], Value::Null);
        let text = e.body(WebhookFormat::Slack)["text"].as_str().unwrap().to_owned();
        assert_eq!(
            text,
            "waygate alert bad-gateway firing: value 12 (threshold 10, window 60s); causes: \
             TargetConnectionRefused 11, TargetStatus 1; explain: waygate explain Root=1-a-b; remediation: start it"
        );
        assert_eq!(round(1.0 / 3.0), "0.3333");
    }
}
