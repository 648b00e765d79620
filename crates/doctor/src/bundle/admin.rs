//! A small client for the gateway's admin API (plain HTTP/1.1 on the admin listener, bearer token when the
//! config has `[admin] token_file`). The token is sent, never stored.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

/// Bodies larger than this are not bundled.
const MAX_BODY: usize = 32 * 1024 * 1024;
/// Per request: connect, send, and read the whole body.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where the admin API is, from `--admin URL` or the config's `[admin] bind`.
#[derive(Debug, Clone)]
pub struct AdminApi {
    /// `host:port`.
    pub authority: String,
    pub token: Option<String>,
}

/// `http://host:port[/]` → `host:port`. HTTPS admin listeners do not exist.
pub fn parse_admin_url(url: &str) -> Result<String, String> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    if rest.contains("://") {
        return Err(format!("--admin {url:?}: only http:// admin URLs are supported"));
    }
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') || !authority.contains(':') {
        return Err(format!("--admin {url:?}: expected http://HOST:PORT"));
    }
    Ok(authority.to_owned())
}

impl AdminApi {
    /// GET `path`: the status and body, or why the API could not be reached.
    pub async fn get(&self, path: &str) -> Result<(u16, Vec<u8>), String> {
        match tokio::time::timeout(TIMEOUT, self.get_inner(path)).await {
            Ok(r) => r,
            Err(_) => Err(format!("GET {path}: no complete answer within {}s", TIMEOUT.as_secs())),
        }
    }

    async fn get_inner(&self, path: &str) -> Result<(u16, Vec<u8>), String> {
        let err = |e: &dyn std::fmt::Display| format!("GET http://{}{path}: {e}", self.authority);
        let tcp = tokio::net::TcpStream::connect(&self.authority).await.map_err(|e| err(&e))?;
        let (mut sender, conn) = http1::handshake(TokioIo::new(tcp)).await.map_err(|e| err(&e))?;
        let task = tokio::spawn(conn);
        let mut req = http::Request::get(path).header(http::header::HOST, &self.authority);
        if let Some(token) = &self.token {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req.body(Empty::<Bytes>::new()).map_err(|e| err(&e))?;
        let resp = sender.send_request(req).await.map_err(|e| err(&e))?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_BODY).collect().await.map_err(|e| err(&*e))?.to_bytes();
        task.abort();
        Ok((status, body.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_urls() {
        assert_eq!(parse_admin_url("http://127.0.0.1:9901/").unwrap(), "127.0.0.1:9901");
        assert_eq!(parse_admin_url("127.0.0.1:9901").unwrap(), "127.0.0.1:9901");
        assert!(parse_admin_url("https://a:1").is_err());
        assert!(parse_admin_url("http://a/x").is_err());
    }
}
