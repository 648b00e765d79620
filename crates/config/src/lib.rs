//! waygate's configuration: a TOML file is parsed into serde file types that remember where each value was
//! written (`file`, built by `decode`), then validated into an immutable runtime snapshot (`model`). Errors
//! name the file, line and column, so `waygate check-config` and reloads can point at the exact mistake, and
//! every mistake in a file is reported at once.

mod decode;
mod duration;
mod error;
pub mod file;
pub mod model;
pub mod tls_files;
pub mod tls_policy;
mod token_file;
mod validate;

use std::path::Path;

pub use duration::{format_duration, parse_duration};
pub use error::{ConfigError, ConfigErrors};
pub use model::*;
pub use token_file::TokenFile;

use error::{Diag, Locator};

/// Reads and validates the config file at `path`. A missing or unreadable file is one error naming the path
/// (line and column 0). The files TLS names are not read: see [`load_checked`].
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    load_with(path, false)
}

/// [`load`], and every certificate, key and trust store a listener names is read as the gateway will serve it:
/// an unreadable file, one that is not PEM, a key that does not match its certificate or an expired certificate
/// is an error at the config entry. What `check-config`, the gateway's start and its reloads use.
pub fn load_checked(path: &Path) -> Result<Config, ConfigErrors> {
    load_with(path, true)
}

fn load_with(path: &Path, files: bool) -> Result<Config, ConfigErrors> {
    let bytes = std::fs::read(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            col: 0,
            message: format!("cannot read config file: {e}"),
        }])
    })?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => parse_with(text, path, files),
        Err(e) => {
            // Locate the first bad byte within the valid prefix.
            let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
            let diag = Diag::at(valid.len()..valid.len(), "the file is not valid UTF-8");
            Err(Locator::new(valid).finish(path, vec![diag]))
        }
    }
}

/// Parses and validates config text. `origin` names the file in errors, and its directory is the base for
/// relative paths (`tls.cert`, `tls.key`, `tls.ca`, `token_file`, `access_log.dir`).
pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigErrors> {
    parse_with(text, origin, false)
}

/// [`parse`], reading the files TLS names as [`load_checked`] does.
pub fn parse_checked(text: &str, origin: &Path) -> Result<Config, ConfigErrors> {
    parse_with(text, origin, true)
}

fn parse_with(text: &str, origin: &Path, files: bool) -> Result<Config, ConfigErrors> {
    let mut diags = Vec::new();
    let locator = Locator::new(text);
    let Ok(decoded) = decode::decode(text, &mut diags) else {
        return Err(locator.finish(origin, diags));
    };
    let base = origin.parent().unwrap_or(Path::new(""));
    let config = validate::validate(&decoded, base, files, &mut diags);
    if diags.is_empty() { Ok(config) } else { Err(locator.finish(origin, diags)) }
}

/// Checks a target address as the config accepts it (`host:port`, `[IPv6]:port`, port 1-65535) and returns
/// the host (IPv6 without brackets) and port. For the admin API's register endpoint.
pub fn parse_target_address(s: &str) -> Result<(String, u16), String> {
    validate::parse_target(s)
}

/// Checks a bind address as the config accepts it (`IP:port`).
pub fn parse_bind_address(s: &str) -> Result<std::net::SocketAddr, String> {
    validate::parse_bind(s)
}
