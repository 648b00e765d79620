//! The fault catalogue: names, parsing, causes, and that every fault starts and stops.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use waygate_faultlab::Fault;

/// Target-provoked causes from docs/FAULTS.md.
const CAUSES: &[&str] = &[
    "TargetConnectionRefused",
    "TargetConnectTimeout",
    "TargetTlsHandshakeTimeout",
    "TargetTlsAlert",
    "TargetTlsCertificateInvalid",
    "TargetTlsProtocolError",
    "TargetKeepAliveRace",
    "TargetClosedConnection",
    "TargetResetConnection",
    "TargetMalformedResponse",
    "TargetResponseHeadersTooLarge",
    "TargetResponseTimeout",
    "TargetResponseIncomplete",
    "TargetResponseStalled",
];

#[test]
fn names_are_unique_and_parse_back() {
    let mut seen = HashSet::new();
    for fault in Fault::ALL {
        assert!(seen.insert(fault.name()), "duplicate {}", fault.name());
        assert_eq!(Fault::from_name(fault.name()), Some(*fault));
        assert_eq!(Fault::from_name(&fault.to_string()), Some(*fault));
        assert!(!fault.description().is_empty());
    }
    assert_eq!(seen.len(), 19);
}

#[test]
fn from_name_accepts_camel_case_and_durations() {
    assert_eq!(Fault::from_name("SynBlackhole"), Some(Fault::SynBlackhole));
    assert_eq!(Fault::from_name("close_before_response"), Some(Fault::CloseBeforeResponse));
    assert_eq!(Fault::from_name("slow-head:2s"), Some(Fault::SlowHead(Duration::from_secs(2))));
    assert_eq!(Fault::from_name("KeepAliveCloser=250ms"), Some(Fault::KeepAliveCloser(Duration::from_millis(250))));
    assert_eq!(Fault::from_name("refuse:2s"), None);
    assert_eq!(Fault::from_name("slow-head:soon"), None);
    assert_eq!(Fault::from_name("nope"), None);
}

#[test]
fn expected_causes_are_from_the_catalogue() {
    for fault in Fault::ALL {
        match fault {
            Fault::ServerError => assert_eq!(fault.expected_cause(), ""),
            _ => assert!(CAUSES.contains(&fault.expected_cause()), "{fault}: {}", fault.expected_cause()),
        }
    }
    let covered: HashSet<_> = Fault::ALL.iter().map(Fault::expected_cause).collect();
    for cause in CAUSES {
        assert!(covered.contains(cause), "no fault provokes {cause}");
    }
}

#[tokio::test]
async fn every_fault_starts_and_stops() {
    for fault in Fault::ALL {
        let target = fault.spawn(local()).await.unwrap_or_else(|e| panic!("{fault}: {e}"));
        assert_ne!(target.addr().port(), 0);
        within(target.shutdown()).await;
    }
}
