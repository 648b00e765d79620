//! AWS's Athena table definition for ALB access logs (reference/ALB.md §1): the regex and its columns, exported
//! so every test that checks "an existing Athena table reads waygate's logs unchanged" uses the same text.

/// AWS's 2022 Athena `input.regex` for ALB access logs, copied unchanged from reference/ALB.md.
pub const ATHENA: &str = r#"([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*):([0-9]*) ([^ ]*)[:-]([0-9]*) ([-.0-9]*) ([-.0-9]*) ([-.0-9]*) (|[-0-9]*) (-|[-0-9]*) ([-0-9]*) ([-0-9]*) \"([^ ]*) (.*) (- |[^ ]*)\" \"([^\"]*)\" ([A-Z0-9-_]+) ([A-Za-z0-9.-]*) ([^ ]*) \"([^\"]*)\" \"([^\"]*)\" \"([^\"]*)\" ([-.0-9]*) ([^ ]*) \"([^\"]*)\" \"([^\"]*)\" \"([^ ]*)\" \"([^\s]+?)\" \"([^\s]+)\" \"([^ ]*)\" \"([^ ]*)\""#;

/// The Athena table's columns, in capture order.
pub const COLUMNS: [&str; 33] = [
    "type",
    "time",
    "elb",
    "client_ip",
    "client_port",
    "target_ip",
    "target_port",
    "request_processing_time",
    "target_processing_time",
    "response_processing_time",
    "elb_status_code",
    "target_status_code",
    "received_bytes",
    "sent_bytes",
    "request_verb",
    "request_url",
    "request_proto",
    "user_agent",
    "ssl_cipher",
    "ssl_protocol",
    "target_group_arn",
    "trace_id",
    "domain_name",
    "chosen_cert_arn",
    "matched_rule_priority",
    "request_creation_time",
    "actions_executed",
    "redirect_url",
    "lambda_error_reason",
    "target_port_list",
    "target_status_code_list",
    "classification",
    "classification_reason",
];
