//! The snake_case spellings of [`Phase`] and [`Profile`], as they appear in logs (`phase=tls_handshake`),
//! traces and the config file (`profile = "apigee"`). One spelling each, parsed back exactly.

use std::fmt;
use std::str::FromStr;

use crate::{Phase, Profile};

impl Phase {
    /// Every phase, in request order.
    pub const ALL: &'static [Phase] = &[
        Self::Route,
        Self::Select,
        Self::Dns,
        Self::Connect,
        Self::TlsHandshake,
        Self::SendRequest,
        Self::AwaitHeaders,
        Self::StreamBody,
        Self::FunctionInvoke,
    ];

    /// The name FAULTS.md uses, e.g. `tls_handshake`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Route => "route",
            Self::Select => "select",
            Self::Dns => "dns",
            Self::Connect => "connect",
            Self::TlsHandshake => "tls_handshake",
            Self::SendRequest => "send_request",
            Self::AwaitHeaders => "await_headers",
            Self::StreamBody => "stream_body",
            Self::FunctionInvoke => "function_invoke",
        }
    }
}

impl Profile {
    /// Every profile.
    pub const ALL: &'static [Profile] = &[Self::Alb, Self::Apigee, Self::Problem];

    /// The `[errors] profile` value: `alb`, `apigee` or `problem`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Alb => "alb",
            Self::Apigee => "apigee",
            Self::Problem => "problem",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a phase name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsePhaseError(pub String);

/// A string that is not a profile name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseProfileError(pub String);

impl fmt::Display for ParsePhaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown phase `{}`", self.0)
    }
}

impl fmt::Display for ParseProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown error profile `{}` (expected alb, apigee or problem)", self.0)
    }
}

impl std::error::Error for ParsePhaseError {}
impl std::error::Error for ParseProfileError {}

impl FromStr for Phase {
    type Err = ParsePhaseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.iter().copied().find(|p| p.as_str() == s).ok_or_else(|| ParsePhaseError(s.to_owned()))
    }
}

impl FromStr for Profile {
    type Err = ParseProfileError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.iter().copied().find(|p| p.as_str() == s).ok_or_else(|| ParseProfileError(s.to_owned()))
    }
}
