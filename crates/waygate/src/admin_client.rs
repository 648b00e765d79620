//! A small client of the admin API for the CLI (`waygate targets ...`): one HTTP/1.1 request per call over
//! a fresh loopback connection, with the bearer token when one is configured. Where the admin API is and
//! which token to send come from flags or, with `--config`, from the gateway's own `[admin]` section.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;

/// How to reach the admin API (flags shared by the admin clients).
#[derive(clap::Args, Debug, Clone)]
pub struct AdminArgs {
    /// Admin API address, `http://host:port` or `host:port` (default: `[admin].bind` of --config, else
    /// 127.0.0.1:9901).
    #[arg(long, global = true)]
    pub admin: Option<String>,
    /// File with the admin bearer token (its first token; default: `[admin].token_file` of --config).
    #[arg(long, global = true)]
    pub token_file: Option<PathBuf>,
    /// The gateway's configuration file, to find its admin address and token.
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,
}

/// A connected admin API client.
pub struct Admin {
    authority: String,
    token: Option<String>,
}

/// The admin API answered; `status` and the body as text.
pub struct Answer {
    pub status: StatusCode,
    pub body: String,
}

impl Admin {
    /// Resolves address and token from the flags; errors name the file or value at fault.
    pub fn from_args(args: &AdminArgs) -> Result<Self, String> {
        let config = match &args.config {
            Some(path) => Some(waygate_config::load(path).map_err(|e| e.to_string())?),
            None => None,
        };
        let authority = match (&args.admin, &config) {
            (Some(a), _) => {
                let a = a.strip_prefix("http://").unwrap_or(a).trim_end_matches('/');
                if a.starts_with("https://") || a.is_empty() || a.contains('/') {
                    return Err(format!("--admin {a:?}: expected http://host:port"));
                }
                a.to_owned()
            }
            (None, Some(c)) => c.admin.bind.to_string(),
            (None, None) => "127.0.0.1:9901".to_owned(),
        };
        let token_file = args.token_file.clone().or_else(|| config.as_ref().and_then(|c| c.admin.token_file.clone()));
        let token = match token_file {
            None => None,
            // Read as the gateway reads it: a file it would refuse is refused here too, naming the line.
            Some(path) => Some(waygate_config::TokenFile::load(&path)?.first().to_owned()),
        };
        Ok(Self { authority, token })
    }

    /// Sends one request; `Err` only when the admin API could not be reached or answered nonsense.
    pub async fn call(&self, method: Method, path: &str, body: Option<String>) -> Result<Answer, String> {
        let unreachable = |e: &dyn std::fmt::Display| format!("admin API at {} unreachable: {e}", self.authority);
        let connect = tokio::net::TcpStream::connect(&self.authority);
        let tcp = match tokio::time::timeout(Duration::from_secs(10), connect).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(unreachable(&e)),
            Err(_) => return Err(unreachable(&"connect timed out after 10s")),
        };
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(|e| unreachable(&e))?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.authority)
            .header(header::USER_AGENT, concat!("waygate-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(t) = &self.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req.body(Full::new(Bytes::from(body.unwrap_or_default()))).map_err(|e| e.to_string())?;
        let exchange = async {
            let resp = sender.send_request(req).await.map_err(|e| unreachable(&e))?;
            let status = resp.status();
            let bytes = resp.into_body().collect().await.map_err(|e| unreachable(&e))?.to_bytes();
            Ok::<_, String>(Answer { status, body: String::from_utf8_lossy(&bytes).into_owned() })
        };
        tokio::time::timeout(Duration::from_secs(60), exchange)
            .await
            .unwrap_or_else(|_| Err(unreachable(&"no answer in 60s")))
    }
}

impl Answer {
    /// The body's JSON, or the error the API gave (`{"error": ...}` or its text) with the status.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        let parsed: Option<serde_json::Value> = serde_json::from_str(&self.body).ok();
        if self.status.is_success() {
            return parsed.ok_or_else(|| format!("admin API answered {} with a body that is not JSON", self.status));
        }
        let message = parsed
            .as_ref()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_else(|| self.body.trim().to_owned());
        Err(format!("{} ({})", message, self.status))
    }
}
