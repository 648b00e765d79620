//! A function's health check, as ALB runs it: the function is invoked with a health-check event (`GET` of the
//! check's `path`, `User-Agent: ELB-HealthChecker/2.0`, no body), and the `statusCode` of its response is
//! compared with the matcher. A function that raises, answers something ALB refuses, or cannot be invoked
//! fails the check with the same cause a request would get.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, USER_AGENT};
use waygate_config::HealthCheck;
use waygate_faults::{Cause, LambdaEvidence, Phase};

use super::call::{CallError, call};
use super::{Function, MAX_RESPONSE_PAYLOAD, event, invoke, invoke_cause, response};
use crate::target::health::Outcome;
use crate::upstream::AttemptFailure;

/// ALB's health checker names itself so.
const HEALTH_CHECKER: &str = "ELB-HealthChecker/2.0";

/// One check of `function`; `arn` is its group's.
pub async fn check(function: &Function, hc: &HealthCheck, arn: &str) -> Outcome {
    let mut headers = HeaderMap::new();
    headers.insert(USER_AGENT, HeaderValue::from_static(HEALTH_CHECKER));
    let event = event::build(&event::Request {
        method: "GET",
        path: &hc.path,
        query: None,
        headers: &headers,
        added: &[],
        body: b"",
        target_group_arn: arn,
        multi_value: function.config.multi_value_headers,
    });
    // The check's own fields are ASCII: an event is always made of them.
    let Ok(event) = event else { return Outcome::Failed(Cause::LambdaBadRequest) };
    let payload = Bytes::from(event);
    let attempt = async {
        let Ok(request) = function.signed(&payload).await else {
            return Outcome::Failed(Cause::LambdaAccessDenied);
        };
        let reply =
            match call(&function.upstream, &request, payload.clone(), hc.timeout, MAX_RESPONSE_PAYLOAD, false).await {
                Ok(reply) => reply,
                Err(CallError::TooLarge { .. }) => return failed(None, Some(LambdaEvidence::ResponseTooLarge)),
                Err(CallError::Failed { failure, .. }) => return failed(Some(&failure), None),
            };
        let answer = invoke::answer(reply.status, &reply.headers, &reply.body);
        if answer != invoke::Answer::Payload {
            return failed(None, answer.evidence());
        }
        match response::parse(&reply.body, function.config.multi_value_headers) {
            Ok(r) if hc.matcher.iter().any(|&(lo, hi)| (lo..=hi).contains(&r.status.as_u16())) => Outcome::Passed,
            Ok(r) => Outcome::Mismatch(r.status.as_u16()),
            Err(_) => failed(None, Some(LambdaEvidence::InvalidResponse)),
        }
    };
    match tokio::time::timeout(hc.timeout + Duration::from_millis(100), attempt).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::TimedOut(Cause::LambdaConnectionTimeout),
    }
}

fn failed(failure: Option<&AttemptFailure>, lambda: Option<LambdaEvidence>) -> Outcome {
    let none = AttemptFailure::new(Phase::FunctionInvoke);
    let failure = failure.unwrap_or(&none);
    let cause = invoke_cause(failure, lambda);
    if failure.timed_out.is_some() { Outcome::TimedOut(cause) } else { Outcome::Failed(cause) }
}
