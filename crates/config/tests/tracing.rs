//! `[tracing]`: the defaults, every key as written, and each mistake at its line:col.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{LISTENER, ok, one};

#[test]
fn absent_means_no_tracing() {
    assert_eq!(ok(LISTENER).tracing, None);
}

#[test]
fn interface_md_line_with_defaults() {
    let c = ok(&format!("{LISTENER}[tracing]\notlp_endpoint = \"http://127.0.0.1:4318\"\nsample_ratio = 0.01\n"));
    let t = c.tracing.expect("[tracing]");
    assert_eq!(t.otlp_endpoint, "http://127.0.0.1:4318/v1/traces", "OTLP/HTTP's path on a base URL");
    assert_eq!(t.sample_ratio, 0.01);
    assert_eq!(t.service_name, "waygate");
    assert!(t.headers.is_empty());
    assert_eq!(t.ca, None);
    assert_eq!((t.max_queue, t.max_batch), (2048, 512));
    assert_eq!((t.batch_delay, t.export_timeout), (Duration::from_secs(5), Duration::from_secs(10)));
    let only = ok(&format!("{LISTENER}[tracing]\notlp_endpoint = \"http://127.0.0.1:4318/\"\n")).tracing.unwrap();
    assert_eq!(only.sample_ratio, waygate_config::Tracing::SAMPLE_RATIO);
}

#[test]
fn every_key_as_written() {
    let c = ok(&format!(
        "{LISTENER}[tracing]\notlp_endpoint = \"https://otlp.example:443/otlp/v1/traces\"\nsample_ratio = 1.0\n\
         service_name = \"edge-gw\"\nca = \"ca.pem\"\nmax_queue = 10\nmax_batch = 4\nbatch_delay = \"100ms\"\n\
         export_timeout = \"2s\"\nheaders = {{ \"X-Honeycomb-Team\" = \"key\", authorization = \"Bearer t\" }}\n"
    ));
    let t = c.tracing.unwrap();
    assert_eq!(t.otlp_endpoint, "https://otlp.example:443/otlp/v1/traces", "a path is kept as written");
    assert_eq!((t.sample_ratio, t.service_name.as_str()), (1.0, "edge-gw"));
    assert_eq!(t.ca, Some(PathBuf::from("ca.pem")));
    assert_eq!((t.max_queue, t.max_batch), (10, 4));
    assert_eq!((t.batch_delay, t.export_timeout), (Duration::from_millis(100), Duration::from_secs(2)));
    let mut headers = t.headers.clone();
    headers.sort();
    assert_eq!(
        headers,
        [("authorization".to_owned(), "Bearer t".to_owned()), ("x-honeycomb-team".to_owned(), "key".to_owned())]
    );
}

#[test]
fn mistakes_point_at_the_value() {
    let t = |rest: &str| format!("{LISTENER}[tracing]\n{rest}");
    one(&t("sample_ratio = 0.5\n"), 3, 1, "[tracing]: missing key `otlp_endpoint`");
    one(&t("otlp_endpoint = \"grpc://127.0.0.1:4317\"\n"), 4, 17, "must start with http:// or https://");
    one(&t("otlp_endpoint = \"http://127.0.0.1:0\"\n"), 4, 17, "port \"0\" is not 1-65535");
    let url = "otlp_endpoint = \"http://127.0.0.1:4318\"\n";
    one(&t(&format!("{url}sample_ratio = 1.5\n")), 5, 16, "sample_ratio 1.5 out of range (0 to 1)");
    one(&t(&format!("{url}sample_ratio = -0.1\n")), 5, 16, "out of range (0 to 1)");
    one(&t(&format!("{url}ca = \"ca.pem\"\n")), 5, 6, "ca applies to an https otlp_endpoint");
    one(&t(&format!("{url}service_name = \" \"\n")), 5, 16, "service_name must not be empty");
    one(&t(&format!("{url}max_queue = 0\n")), 5, 13, "max_queue 0 out of range (1 to 1000000)");
    one(&t(&format!("{url}max_batch = 100001\n")), 5, 13, "max_batch 100001 out of range");
    one(&t(&format!("{url}batch_delay = \"2m\"\n")), 5, 15, "batch_delay \"2m\" out of range (1ms to 60s)");
    one(&t(&format!("{url}export_timeout = \"fast\"\n")), 5, 18, "[tracing]: export_timeout");
    one(
        &t(&format!("{url}headers = {{ \"bad name\" = \"v\" }}\n")),
        5,
        26,
        "\"bad name\" is not a valid HTTP field name",
    );
    one(&t(&format!("{url}headers = {{ Content-Type = \"x\" }}\n")), 5, 28, "is set by the exporter itself");
    one(&t(&format!("{url}headers = {{ a = \"x\", A = \"y\" }}\n")), 5, 17, "is written twice");
    one(&t(&format!("{url}headers = {{ a = \"x\\ny\" }}\n")), 5, 17, "has a value with control characters");
    one(&t(&format!("{url}ratio = 1\n")), 5, 1, "[tracing]: unknown key `ratio`");
}

/// check-config reads the ca as the exporter will: a file that is no PEM certificate is an error at the key.
#[test]
fn check_config_reads_the_ca() {
    let dir = std::env::temp_dir().join(format!("waygate-config-tracing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), "not a certificate").unwrap();
    let text = format!("{LISTENER}[tracing]\notlp_endpoint = \"https://127.0.0.1:4318\"\nca = \"ca.pem\"\n");
    let origin = dir.join("waygate.toml");
    assert!(waygate_config::parse(&text, &origin).is_ok(), "files are read only when checked");
    let errors = waygate_config::parse_checked(&text, &origin).unwrap_err().0;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].line, errors[0].col), (5, 6));
    assert!(
        errors[0].message.starts_with("[tracing]: ca: ") && errors[0].message.contains("not PEM"),
        "{}",
        errors[0].message
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
