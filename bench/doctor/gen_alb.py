#!/usr/bin/env python3
"""Generates an AWS ALB access log with known answers, for bench/doctor/run.

Deterministic (seeded): the same arguments always give the same bytes. The mix, per line:
  ~93.9%  200 from a target
   1.5%   target 5xx (500/502/503 in both status fields)
   1.5%   502, target_status_code -, processing times -1 -1 -1, no error_reason (inferred TargetConnectionFailed)
   0.5%   502 with error_reason (waygate causes and Lambda codes)
   0.8%   504, target -, no reason: 10 s after request_creation_time (TargetConnectTimeout) or 60 s (TargetResponseTimeout)
   0.3%   504 with error_reason TargetTlsHandshakeTimeout
   0.5%   503, no target, no reason
   1.0%   4xx
The expected answers (5xx by elb_status/target_status/error_reason, and per cause) go to --expect as JSON.
"""

import argparse
import json
import random
from collections import Counter
from datetime import datetime, timedelta, timezone

TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api-{}/73e2d6bc24d8a067"
AGENTS = [
    "curl/8.5.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "okhttp/4.12.0",
    "python-requests/2.31.0",
    "Go-http-client/2.0",
]
PATHS = ["/", "/api/v1/users", "/api/v1/orders?page=2", "/static/app.js", "/healthz", "/api/v2/search?q=shoes&size=20"]
REASONS_502 = ["TargetConnectionRefused", "TargetKeepAliveRace", "TargetResetConnection", "LambdaUnhandled"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", required=True)
    ap.add_argument("--expect", required=True)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    targets = [f"10.0.{i // 50}.{i % 50 + 10}:8080" for i in range(40)]
    start = datetime(2024, 5, 1, 10, 0, 0, tzinfo=timezone.utc)
    step_us = 3_600_000_000 // max(a.lines, 1)
    by_status = Counter()
    causes = Counter()
    requests = 0

    def ts(us):
        t = start + timedelta(microseconds=us)
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}Z"

    with open(a.out, "w", buffering=1 << 20) as f:
        for n in range(a.lines):
            us = n * step_us + rnd.randrange(step_us)
            target = rnd.choice(targets)
            took = rnd.randrange(1, 400) / 1000.0
            times = (f"{rnd.randrange(0, 3) / 1000:.3f}", f"{took:.3f}", "0.000")
            elb, tgt, reason = 200, "200", "-"
            r = rnd.random()
            if r < 0.015:
                elb = rnd.choice([500, 502, 503])
                tgt = str(elb)
                causes["TargetResponded5xx"] += 1
            elif r < 0.030:
                elb, tgt, times = 502, "-", ("-1", "-1", "-1")
                causes["TargetConnectionFailed"] += 1
            elif r < 0.035:
                elb, tgt, times, reason = 502, "-", ("-1", "-1", "-1"), rnd.choice(REASONS_502)
                if reason.startswith("Lambda"):
                    target = "-"
                causes[reason] += 1
            elif r < 0.043:
                elb, tgt, times = 504, "-", ("-1", "-1", "-1")
                if rnd.random() < 0.5:
                    took = 10.0 + rnd.randrange(0, 50) / 1000.0
                    causes["TargetConnectTimeout"] += 1
                else:
                    took = 60.0 + rnd.randrange(0, 50) / 1000.0
                    causes["TargetResponseTimeout"] += 1
            elif r < 0.046:
                elb, tgt, times, reason = 504, "-", ("-1", "-1", "-1"), "TargetTlsHandshakeTimeout"
                took = 10.0
                causes[reason] += 1
            elif r < 0.051:
                elb, tgt, times, target = 503, "-", ("-1", "-1", "-1"), "-"
                causes["Unexplained503"] += 1
            elif r < 0.061:
                elb = rnd.choice([400, 403, 404])
                tgt = str(elb) if elb != 400 else "-"
            requests += 1
            if elb >= 500:
                by_status[f"{elb} {tgt} {reason}"] += 1
            rct = ts(us - int(took * 1_000_000))
            path = rnd.choice(PATHS)
            trace = f"Root=1-{(1714557600 + us // 1_000_000):08x}-{rnd.getrandbits(96):024x}"
            f.write(
                f'https {ts(us)} app/bench-lb/50dc6c495c0c9188 203.0.113.{rnd.randrange(1, 255)}:{rnd.randrange(1024, 65535)} '
                f'{target} {times[0]} {times[1]} {times[2]} {elb} {tgt} {rnd.randrange(100, 2000)} {rnd.randrange(200, 90000)} '
                f'"GET https://api.example.com:443{path} HTTP/1.1" "{rnd.choice(AGENTS)}" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 '
                f'{TG.format(n % 2)} "{trace}" "api.example.com" '
                f'"arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012" 1 {rct} '
                f'"forward" "-" "{reason}" "{target}" "{tgt}" "-" "-" TID_{rnd.getrandbits(128):032x}\n'
            )
    with open(a.expect, "w") as f:
        json.dump({"requests": requests, "by_status": dict(sorted(by_status.items())), "causes": dict(sorted(causes.items()))}, f, indent=1)


if __name__ == "__main__":
    main()
