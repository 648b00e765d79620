//! Label sets of the metrics (docs/INTERFACE.md, "Metrics"). Values are config names and addresses
//! (`Arc<str>`, cloned by an atomic increment), catalogue names and fixed words (`&'static str`), and status
//! codes: nothing per-request (no paths, no ids), so cardinality is bounded by the config and the catalogue.
//! A missing value (no target group, no cause) is the empty string, which Prometheus treats as no label.

use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};

/// Which side of the gateway a connection is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Client connections accepted by a listener.
    Client,
    /// Connections the gateway opened to targets.
    Target,
}

impl Side {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Target => "target",
        }
    }
}

impl EncodeLabelValue for Side {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct ListenerLabels {
    pub listener: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct ListenerCauseLabels {
    pub listener: Arc<str>,
    pub cause: &'static str,
}

/// `waygate_listener_certificate_expiry_seconds{listener, name}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct CertificateLabels {
    pub listener: Arc<str>,
    pub name: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub listener: Arc<str>,
    pub target_group: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct ElbLabels {
    pub listener: Arc<str>,
    pub code: u16,
    pub cause: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct TargetClassLabels {
    pub target_group: Arc<str>,
    pub target: Arc<str>,
    pub class: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct TargetGrpcLabels {
    pub target_group: Arc<str>,
    pub target: Arc<str>,
    /// The gRPC status code, as its number (`14`).
    pub grpc_status: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct TargetCauseLabels {
    pub target_group: Arc<str>,
    pub target: Arc<str>,
    pub cause: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct TargetLabels {
    pub target_group: Arc<str>,
    pub target: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct GroupLabels {
    pub target_group: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct GroupCauseLabels {
    pub target_group: Arc<str>,
    pub cause: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct SideLabels {
    pub side: Side,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct DesyncLabels {
    pub listener: Arc<str>,
    pub classification: &'static str,
}

/// The `class` label of a status: `1xx` .. `5xx`, `other` outside 100..=599.
pub(crate) const fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

/// `waygate_alert_firing{alert}`: a rule name from the config.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct AlertLabels {
    pub alert: String,
}
