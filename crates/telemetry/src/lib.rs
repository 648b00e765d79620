//! Telemetry: the exchange record and its observers.
