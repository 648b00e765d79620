//! STS `AssumeRoleWithWebIdentity`: a web-identity token (read from its file at each exchange, since the
//! platform rotates it) exchanged for temporary credentials. The call is unsigned (the token is the proof),
//! goes to `AWS_ENDPOINT_URL_STS` (else `AWS_ENDPOINT_URL`, else `https://sts.{region}.amazonaws.com`) through
//! an [`Upstream`] of its own, pooled and metered like the invokes', and its XML answer is read for the four
//! fields it needs (a full XML parser would buy nothing: the document's shape is fixed).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::Method;
use http::header::{self, HeaderMap, HeaderValue};
use waygate_config::TargetGroup;
use waygate_telemetry::Metrics;

use super::call::{CallError, call};
use super::credentials::{Credentials, Env, WebIdentity};
use super::invoke::{Endpoint, encode};
use crate::upstream::h1::{self, RequestFraming};
use crate::upstream::{ConnectSpec, TlsTarget, Upstream, session, tls};

/// A token exchange gets this long, connect included.
const TIMEOUT: Duration = Duration::from_secs(10);
/// An STS answer is a few kilobytes.
const MAX_ANSWER: usize = 64 * 1024;

/// Where web identities are exchanged.
#[derive(Debug)]
pub struct Sts {
    url: String,
    endpoint: Endpoint,
    connect: ConnectSpec,
    pool_idle_timeout: Duration,
    metrics: Arc<Metrics>,
    group: Arc<str>,
    pool_slots: usize,
    /// Built at the first exchange: most gateways never need it.
    upstream: OnceLock<Result<Upstream, String>>,
}

impl Sts {
    pub fn new(
        region: &str,
        env: &dyn Env,
        group: &TargetGroup,
        metrics: &Arc<Metrics>,
        pool_slots: usize,
    ) -> Result<Self, String> {
        let url = env
            .var("AWS_ENDPOINT_URL_STS")
            .or_else(|| env.var("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"));
        let url = url.trim_end_matches('/').to_owned();
        let mut endpoint = Endpoint::new(&url, "-", None).map_err(|e| format!("STS endpoint: {e}"))?;
        // The action goes in the form body, to the endpoint's root.
        let base = url.parse::<http::Uri>().map(|u| u.path().trim_end_matches('/').to_owned()).unwrap_or_default();
        endpoint.path_and_query = format!("{base}/");
        let connect = ConnectSpec {
            host: endpoint.host.clone(),
            port: endpoint.port,
            connect_timeout: group.connect_timeout.min(TIMEOUT),
            tls_handshake_timeout: group.tls_handshake_timeout.min(TIMEOUT),
            tls: None,
        };
        Ok(Self {
            url,
            endpoint,
            connect,
            pool_idle_timeout: group.pool_idle_timeout,
            metrics: metrics.clone(),
            group: group.name.as_str().into(),
            pool_slots,
            upstream: OnceLock::new(),
        })
    }

    fn upstream(&self) -> Result<&Upstream, String> {
        let built = self.upstream.get_or_init(|| {
            let mut connect = self.connect.clone();
            if self.endpoint.https {
                let config = tls::client_config(true, None)?;
                connect.tls = Some(TlsTarget { config, server_name: tls::server_name(None, &self.endpoint.host)? });
            }
            let authority: Arc<str> = self.endpoint.authority().into();
            Ok(Upstream::new(
                connect,
                authority,
                self.pool_idle_timeout,
                self.metrics.clone(),
                self.group.clone(),
                self.pool_slots,
            ))
        });
        built.as_ref().map_err(Clone::clone)
    }

    /// Exchanges `identity`'s token for temporary credentials.
    pub async fn exchange(&self, identity: WebIdentity) -> Result<Credentials, String> {
        let ctx = |e: String| format!("web identity ({}): STS {}: {e}", identity.source, self.url);
        let token = tokio::fs::read_to_string(&identity.token_file)
            .await
            .map_err(|e| ctx(format!("cannot read {}: {e}", identity.token_file.display())))?;
        let form = format!(
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn={}&RoleSessionName={}&WebIdentityToken={}",
            encode(&identity.role_arn),
            encode(&identity.session_name),
            encode(token.trim())
        );
        let mut headers = HeaderMap::new();
        let host = HeaderValue::from_str(&self.endpoint.host_header).map_err(|_| ctx("invalid host".into()))?;
        headers.insert(header::HOST, host);
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(form.len()));
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/xml"));
        let framing = RequestFraming::Length(form.len() as u64);
        let request = session::Request::H1(h1::Request::new(
            &Method::POST,
            &self.endpoint.path_and_query,
            &headers,
            &(),
            framing,
        ));
        let upstream = self.upstream().map_err(ctx)?;
        let payload = Bytes::from(form);
        let mut result = call(upstream, &request, payload.clone(), TIMEOUT, MAX_ANSWER, false).await;
        if result.as_ref().is_err_and(CallError::keep_alive_race) {
            result = call(upstream, &request, payload, TIMEOUT, MAX_ANSWER, true).await;
        }
        let reply = match result {
            Ok(reply) => reply,
            Err(CallError::Failed { failure, .. }) => {
                return Err(ctx(format!("{}: {}", failure.phase.as_str(), failure.brief())));
            }
            Err(CallError::TooLarge { status, .. }) => return Err(ctx(format!("{status} with an answer over 64 KiB"))),
        };
        let xml = String::from_utf8_lossy(&reply.body);
        if !reply.status.is_success() {
            let code = element(&xml, "Code").unwrap_or_default();
            let message = element(&xml, "Message").unwrap_or_default();
            return Err(ctx(format!("{} {code}: {message}", reply.status.as_u16())));
        }
        let field = |name: &str| element(&xml, name).ok_or_else(|| ctx(format!("no <{name}> in the answer")));
        let expiration = field("Expiration")?;
        Ok(Credentials {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: field("SecretAccessKey")?,
            session_token: Some(field("SessionToken")?),
            expiry: Some(parse_iso8601(&expiration).ok_or_else(|| ctx(format!("Expiration {expiration:?}")))?),
            source: format!("{} via STS AssumeRoleWithWebIdentity ({})", identity.source, identity.role_arn),
        })
    }
}

/// The text of the first `<name>...</name>` element, XML entities for `&`, `<`, `>` undone.
pub fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    let text = xml[start..end].trim();
    Some(text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&"))
}

/// `2024-05-01T12:34:56Z` (fractional seconds allowed) as a time.
pub fn parse_iso8601(s: &str) -> Option<SystemTime> {
    let t = aws_smithy_types::DateTime::from_str(s.trim(), aws_smithy_types::date_time::Format::DateTime).ok()?;
    SystemTime::try_from(t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601() {
        let t = parse_iso8601("2023-11-14T22:13:20Z").unwrap();
        assert_eq!(t, SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        assert_eq!(
            parse_iso8601("2000-03-01T00:00:00.123Z").unwrap(),
            SystemTime::UNIX_EPOCH + Duration::from_millis(951_868_800_123)
        );
        for bad in ["2023-11-14 22:13:20Z", "2023-13-14T22:13:20Z", "2023-11-14T22:13:20", "x"] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn elements() {
        let xml =
            "<R><Credentials><AccessKeyId> ASIA1 </AccessKeyId><SessionToken>a&amp;b</SessionToken></Credentials></R>";
        assert_eq!(element(xml, "AccessKeyId").as_deref(), Some("ASIA1"));
        assert_eq!(element(xml, "SessionToken").as_deref(), Some("a&b"));
        assert_eq!(element(xml, "Expiration"), None);
    }
}
