//! The lab's STS: `AssumeRoleWithWebIdentity` as the service answers it (an XML document), so the gateway's
//! web-identity credentials are exercised over the wire. The token is the proof: the lab's token gets the lab's
//! keys, with a session token and an expiration an hour ahead.

use std::time::{Duration, SystemTime};

use http::{Response, StatusCode};

use super::Answer;
use super::verify::{TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};
use crate::body::RespBody;

/// The web-identity token the lab's STS accepts.
pub const TEST_WEB_IDENTITY_TOKEN: &str = "waygate-lab-web-identity-token";

pub(crate) fn assume_role_with_web_identity(form: &[u8], answer: &Answer<'_>) -> Response<RespBody> {
    let form = String::from_utf8_lossy(form);
    let param = |name: &str| form.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='));
    let xml = |status, body: String| answer.document(status, "text/xml", body);
    if param("Action") != Some("AssumeRoleWithWebIdentity") || param("RoleArn").is_none() {
        return xml(StatusCode::BAD_REQUEST, error("InvalidAction", "only AssumeRoleWithWebIdentity with a RoleArn"));
    }
    if param("WebIdentityToken") != Some(TEST_WEB_IDENTITY_TOKEN) {
        return xml(
            StatusCode::BAD_REQUEST,
            error("InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider"),
        );
    }
    let expiration = iso8601(SystemTime::now() + Duration::from_secs(3600));
    xml(
        StatusCode::OK,
        format!(
            "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
             <AssumeRoleWithWebIdentityResult><Credentials><SessionToken>lab-session-{}</SessionToken>\
             <SecretAccessKey>{TEST_SECRET_ACCESS_KEY}</SecretAccessKey><Expiration>{expiration}</Expiration>\
             <AccessKeyId>{TEST_ACCESS_KEY_ID}</AccessKeyId></Credentials></AssumeRoleWithWebIdentityResult>\
             <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>",
            answer.request_id, answer.request_id
        ),
    )
}

fn error(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error></ErrorResponse>"
    )
}

/// `2024-05-01T12:34:56Z`.
fn iso8601(t: SystemTime) -> String {
    let t = aws_smithy_types::DateTime::from(t);
    let secs = aws_smithy_types::DateTime::from_secs(t.secs());
    secs.fmt(aws_smithy_types::date_time::Format::DateTime).unwrap_or_default()
}
