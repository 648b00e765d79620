#!/usr/bin/env python3
"""DuckDB's answer to the benchmark's question: 5xx responses by elb_status_code, target_status_code and
error_reason, reading the ALB log as space-delimited CSV with double quotes (one column per ALB field)."""

import sys

import duckdb

COLUMNS = [
    "type", "time", "elb", "client", "target", "request_processing_time", "target_processing_time",
    "response_processing_time", "elb_status_code", "target_status_code", "received_bytes", "sent_bytes",
    "request", "user_agent", "ssl_cipher", "ssl_protocol", "target_group_arn", "trace_id", "domain_name",
    "chosen_cert_arn", "matched_rule_priority", "request_creation_time", "actions_executed", "redirect_url",
    "error_reason", "target_port_list", "target_status_code_list", "classification", "classification_reason",
    "conn_trace_id",
]


def main():
    path = sys.argv[1]
    threads = sys.argv[2] if len(sys.argv) > 2 else None
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    cols = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in COLUMNS) + "}"
    rows = con.execute(
        f"""
        SELECT elb_status_code, target_status_code, error_reason, count(*) AS n
        FROM read_csv(?, delim = ' ', quote = '"', escape = '"', header = false, auto_detect = false,
                      columns = {cols}, null_padding = true, ignore_errors = true, parallel = true)
        WHERE elb_status_code LIKE '5%'
        GROUP BY ALL ORDER BY ALL
        """,
        [path],
    ).fetchall()
    for elb, tgt, reason, n in rows:
        print(f"{elb} {tgt} {reason}\t{n}")


if __name__ == "__main__":
    main()
