//! The AWS credentials that sign function invokes, found the way the AWS SDKs' default chain finds them, and
//! refreshed before they expire.
//!
//! Order, first match wins (the SDKs' order, less the container and instance-metadata sources):
//! 1. The environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`.
//! 2. The shared files' profile (`function.profile`, else `AWS_PROFILE`, else `default`): the credentials file
//!    (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`, sections `[name]`) before the config file
//!    (`AWS_CONFIG_FILE`, default `~/.aws/config`, sections `[profile name]` and `[default]`), key by key.
//!    A profile naming `web_identity_token_file` and `role_arn` gets web-identity credentials (3).
//! 3. A web-identity token file (`AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ROLE_ARN`, optional
//!    `AWS_ROLE_SESSION_NAME`), exchanged for temporary credentials ([`super::sts`]).
//!
//! A profile set in the configuration (`function.profile`) is an explicit choice: the environment's keys do
//! not override it, as the AWS CLI's `--profile` is not overridden by them.
//!
//! Why not the `aws-config` crate: it brings the SSO, STS and IMDS clients with their own HTTP stack (over a
//! hundred crates), while the gateway needs three sources and must send every request through its own metered
//! connections. What the files can hold beyond keys, a role and a token file (`credential_process`,
//! `source_profile` chains, SSO) is refused by name rather than ignored.
//!
//! Refresh: keys from the environment are read once (a process's environment does not change under it); keys
//! from the files are read again every [`FILE_REFRESH`] (a rotated file is picked up); temporary credentials
//! are renewed [`EXPIRY_MARGIN`] before they expire. A failed refresh keeps credentials that have not expired.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::lock;

/// How often keys read from the shared files are read again.
pub const FILE_REFRESH: Duration = Duration::from_secs(300);
/// Temporary credentials are renewed this long before they expire (the SDKs' margin).
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

const ENVIRONMENT: &str = "environment";

/// One set of credentials, and where it came from (for the log, never the secret).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub expiry: Option<SystemTime>,
    pub source: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiry", &self.expiry)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Where the chain reads variables: the process's environment, or a map in tests.
pub trait Env: Send + Sync + std::fmt::Debug {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process's environment; an empty variable counts as unset (as the SDKs read it).
#[derive(Debug, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).cloned()
    }
}

/// What the chain found before any network exchange: keys, or a web identity to exchange for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Keys(Credentials),
    WebIdentity(WebIdentity),
}

/// A role to assume with a web-identity token (EKS's IRSA, GitHub's OIDC...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebIdentity {
    pub token_file: PathBuf,
    pub role_arn: String,
    pub session_name: String,
    pub source: String,
}

/// The chain, walked without any network exchange. `profile`: `function.profile` when set.
pub async fn find(env: &dyn Env, profile: Option<&str>) -> Result<Found, String> {
    if profile.is_none()
        && let Some(keys) = from_env(env)?
    {
        return Ok(Found::Keys(keys));
    }
    let name = profile.map(str::to_owned).or_else(|| env.var("AWS_PROFILE")).unwrap_or_else(|| "default".into());
    if let Some(found) = from_files(env, &name).await? {
        return Ok(found);
    }
    if profile.is_some() {
        return Err(format!("profile {name:?} is in neither shared file ({})", files_tried(env)));
    }
    if let Some(token_file) = env.var("AWS_WEB_IDENTITY_TOKEN_FILE") {
        let role_arn = env.var("AWS_ROLE_ARN").ok_or("AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not")?;
        return Ok(Found::WebIdentity(WebIdentity {
            token_file: token_file.into(),
            role_arn,
            session_name: env.var("AWS_ROLE_SESSION_NAME").unwrap_or_else(default_session_name),
            source: "environment (AWS_WEB_IDENTITY_TOKEN_FILE)".into(),
        }));
    }
    Err(format!(
        "no AWS credentials: none in the environment (AWS_ACCESS_KEY_ID), no profile {name:?} in the shared files \
         ({}), no AWS_WEB_IDENTITY_TOKEN_FILE",
        files_tried(env)
    ))
}

fn default_session_name() -> String {
    let secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("waygate-{secs}")
}

fn from_env(env: &dyn Env) -> Result<Option<Credentials>, String> {
    match (env.var("AWS_ACCESS_KEY_ID"), env.var("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Ok(Some(Credentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: env.var("AWS_SESSION_TOKEN"),
            expiry: None,
            source: ENVIRONMENT.into(),
        })),
        (Some(_), None) => Err("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".into()),
        (None, _) => Ok(None),
    }
}

fn home_file(env: &dyn Env, var: &str, name: &str) -> Option<PathBuf> {
    env.var(var).map(PathBuf::from).or_else(|| env.var("HOME").map(|h| PathBuf::from(h).join(".aws").join(name)))
}

fn files_tried(env: &dyn Env) -> String {
    let show = |p: Option<PathBuf>| p.map_or("-".to_owned(), |p| p.display().to_string());
    format!(
        "{}, {}",
        show(home_file(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials")),
        show(home_file(env, "AWS_CONFIG_FILE", "config"))
    )
}

/// Keys of the profile the files hold. A file that does not exist is no error; one that cannot be read is.
async fn read_profile(path: Option<PathBuf>, section: &str) -> Result<Option<HashMap<String, String>>, String> {
    let Some(path) = path else { return Ok(None) };
    let text = match tokio::fs::read_to_string(&path).await {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    Ok(ini_section(&text, section))
}

async fn from_files(env: &dyn Env, name: &str) -> Result<Option<Found>, String> {
    let credentials_path = home_file(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials");
    let config_path = home_file(env, "AWS_CONFIG_FILE", "config");
    let config_section = if name == "default" { "default".to_owned() } else { format!("profile {name}") };
    let from_credentials = read_profile(credentials_path.clone(), name).await?;
    let from_config = read_profile(config_path.clone(), &config_section).await?;
    if from_credentials.is_none() && from_config.is_none() {
        return Ok(None);
    }
    // The credentials file wins key by key (the SDKs merge the two files' profiles).
    let mut keys = from_config.unwrap_or_default();
    keys.extend(from_credentials.unwrap_or_default());
    let source = format!("profile {name:?} of the shared files");
    for unsupported in ["credential_process", "source_profile", "sso_start_url", "sso_session", "credential_source"] {
        if keys.contains_key(unsupported) {
            return Err(format!("{source}: {unsupported} is not supported by waygate's credential chain"));
        }
    }
    if let (Some(id), Some(secret)) = (keys.get("aws_access_key_id"), keys.get("aws_secret_access_key")) {
        return Ok(Some(Found::Keys(Credentials {
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
            session_token: keys.get("aws_session_token").cloned(),
            expiry: None,
            source,
        })));
    }
    if let (Some(token_file), Some(role_arn)) = (keys.get("web_identity_token_file"), keys.get("role_arn")) {
        return Ok(Some(Found::WebIdentity(WebIdentity {
            token_file: token_file.into(),
            role_arn: role_arn.clone(),
            session_name: keys.get("role_session_name").cloned().unwrap_or_else(default_session_name),
            source,
        })));
    }
    Err(format!("{source}: no aws_access_key_id and aws_secret_access_key, nor web_identity_token_file and role_arn"))
}

/// The `key = value` pairs of `[section]` in an INI text as the AWS files write it (`#` and `;` comments,
/// keys lower-cased); `None` when the section is absent. Indented lines (nested `s3 =` settings) are skipped.
pub fn ini_section(text: &str, section: &str) -> Option<HashMap<String, String>> {
    let mut current: Option<bool> = None;
    let mut found: Option<HashMap<String, String>> = None;
    for raw in text.lines() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let name = rest.split(']').next().unwrap_or("").trim();
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            let here = name == section;
            if here {
                found.get_or_insert_with(HashMap::new);
            }
            current = Some(here);
            continue;
        }
        if current != Some(true) || line.starts_with([' ', '\t']) {
            continue;
        }
        if let (Some(map), Some((k, v))) = (found.as_mut(), trimmed.split_once('=')) {
            map.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    found
}

/// Credentials as the invokes use them: found once, kept, and found again before they go stale.
#[derive(Debug)]
pub struct Provider {
    env: Arc<dyn Env>,
    profile: Option<String>,
    cached: Mutex<Option<Cached>>,
    /// One refresh at a time: the others wait for its result rather than each walking the chain.
    refreshing: tokio::sync::Mutex<()>,
}

#[derive(Debug, Clone)]
struct Cached {
    creds: Arc<Credentials>,
    /// `None`: never (keys from the environment).
    refresh_at: Option<Instant>,
}

impl Cached {
    fn usable(&self) -> bool {
        self.creds.expiry.is_none_or(|e| SystemTime::now() < e)
    }
}

impl Provider {
    pub fn new(env: Arc<dyn Env>, profile: Option<String>) -> Self {
        Self { env, profile, cached: Mutex::new(None), refreshing: tokio::sync::Mutex::new(()) }
    }

    /// Current credentials; `exchange` turns a web identity into temporary credentials (an STS call).
    pub async fn get<F, Fut>(&self, exchange: F) -> Result<Arc<Credentials>, String>
    where
        F: FnOnce(WebIdentity) -> Fut,
        Fut: Future<Output = Result<Credentials, String>>,
    {
        if let Some(c) = self.fresh() {
            return Ok(c);
        }
        let _one = self.refreshing.lock().await;
        if let Some(c) = self.fresh() {
            return Ok(c);
        }
        let resolved = match find(&*self.env, self.profile.as_deref()).await {
            Ok(Found::Keys(keys)) => Ok(keys),
            Ok(Found::WebIdentity(w)) => exchange(w).await,
            Err(e) => Err(e),
        };
        let stale = lock(&self.cached).clone();
        match resolved {
            Ok(creds) => {
                let refresh_at = refresh_at(&creds);
                let creds = Arc::new(creds);
                if stale.as_ref().is_none_or(|s| s.creds.source != creds.source) {
                    tracing::info!(target: "waygate::function", source = %creds.source,
                        access_key_id = %creds.access_key_id, "AWS credentials for function invokes");
                }
                *lock(&self.cached) = Some(Cached { creds: creds.clone(), refresh_at });
                Ok(creds)
            }
            Err(e) => match stale.filter(Cached::usable) {
                Some(s) => {
                    tracing::warn!(target: "waygate::function", "refreshing AWS credentials failed, the current ones \
                        are still valid: {e}");
                    // Try again in a minute, not on every request.
                    let retry = Some(Instant::now() + Duration::from_secs(60));
                    *lock(&self.cached) = Some(Cached { creds: s.creds.clone(), refresh_at: retry });
                    Ok(s.creds)
                }
                None => Err(e),
            },
        }
    }

    fn fresh(&self) -> Option<Arc<Credentials>> {
        let cached = lock(&self.cached);
        cached
            .as_ref()
            .filter(|c| c.refresh_at.is_none_or(|at| Instant::now() < at) && c.usable())
            .map(|c| c.creds.clone())
    }
}

/// When to look again: environment keys never, file keys every [`FILE_REFRESH`], temporary ones
/// [`EXPIRY_MARGIN`] before they expire (at least a second from now).
fn refresh_at(creds: &Credentials) -> Option<Instant> {
    let now = Instant::now();
    match creds.expiry {
        Some(expiry) => {
            let left = expiry.duration_since(SystemTime::now()).unwrap_or_default();
            Some(now + left.saturating_sub(EXPIRY_MARGIN).max(Duration::from_secs(1)))
        }
        None if creds.source == ENVIRONMENT => None,
        None => Some(now + FILE_REFRESH),
    }
}

#[cfg(test)]
mod tests;
