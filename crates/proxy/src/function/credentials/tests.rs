//! The chain's order and the shared files' format, on files a test writes and an environment it makes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use super::*;

fn dir(tag: &str) -> PathBuf {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let d = std::env::temp_dir().join(format!("waygate-creds-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(d.join(".aws")).unwrap();
    d
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

const CREDENTIALS: &str = "\
# comment
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = secret-default

[dev]
aws_access_key_id=AKIDDEV
aws_secret_access_key=secret-dev
aws_session_token = token-dev
";

const CONFIG: &str = "\
[default]
region = us-east-1
[profile dev]
aws_access_key_id = AKIDFROMCONFIG
region = eu-west-1
s3 =
  max_concurrent_requests = 10
[profile onlyconfig]
aws_access_key_id = AKIDCONFIG
aws_secret_access_key = secret-config
[profile federated]
role_arn = arn:aws:iam::123456789012:role/fn-invoker
web_identity_token_file = /var/run/token
[profile process]
credential_process = /bin/false
";

fn keys(found: Found) -> Credentials {
    match found {
        Found::Keys(k) => k,
        Found::WebIdentity(w) => panic!("expected keys, got {w:?}"),
    }
}

#[tokio::test]
async fn environment_first_then_the_profile_of_the_files() {
    let home = dir("order");
    std::fs::write(home.join(".aws/credentials"), CREDENTIALS).unwrap();
    std::fs::write(home.join(".aws/config"), CONFIG).unwrap();
    let h = home.to_str().unwrap();
    let with_env = env(&[("HOME", h), ("AWS_ACCESS_KEY_ID", "AKIDENV"), ("AWS_SECRET_ACCESS_KEY", "s")]);
    let k = keys(find(&with_env, None).await.unwrap());
    assert_eq!((k.access_key_id.as_str(), k.source.as_str()), ("AKIDENV", "environment"));
    assert_eq!(k.session_token, None);
    // An explicit profile is not overridden by the environment.
    let k = keys(find(&with_env, Some("dev")).await.unwrap());
    assert_eq!(k.access_key_id, "AKIDDEV", "the credentials file wins over the config file key by key");
    assert_eq!(k.session_token.as_deref(), Some("token-dev"));
    // Without keys in the environment: AWS_PROFILE, else default.
    let k = keys(find(&env(&[("HOME", h)]), None).await.unwrap());
    assert_eq!(k.access_key_id, "AKIDDEFAULT");
    let k = keys(find(&env(&[("HOME", h), ("AWS_PROFILE", "onlyconfig")]), None).await.unwrap());
    assert_eq!(k.access_key_id, "AKIDCONFIG", "a profile only the config file has, as [profile name]");
    assert_eq!(k.source, "profile \"onlyconfig\" of the shared files");
}

#[tokio::test]
async fn file_locations_come_from_the_environment() {
    let home = dir("paths");
    let creds = home.join("elsewhere-credentials");
    std::fs::write(&creds, "[default]\naws_access_key_id = AKIDELSEWHERE\naws_secret_access_key = x\n").unwrap();
    let e = env(&[("HOME", "/nonexistent"), ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap())]);
    assert_eq!(keys(find(&e, None).await.unwrap()).access_key_id, "AKIDELSEWHERE");
}

#[tokio::test]
async fn web_identity_from_a_profile_or_the_environment() {
    let home = dir("web");
    std::fs::write(home.join(".aws/config"), CONFIG).unwrap();
    let h = home.to_str().unwrap();
    match find(&env(&[("HOME", h)]), Some("federated")).await.unwrap() {
        Found::WebIdentity(w) => {
            assert_eq!(w.role_arn, "arn:aws:iam::123456789012:role/fn-invoker");
            assert_eq!(w.token_file, PathBuf::from("/var/run/token"));
        }
        other => panic!("{other:?}"),
    }
    let e = env(&[
        ("HOME", "/nonexistent"),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "/tmp/t"),
        ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
        ("AWS_ROLE_SESSION_NAME", "s1"),
    ]);
    match find(&e, None).await.unwrap() {
        Found::WebIdentity(w) => {
            assert_eq!((w.session_name.as_str(), w.role_arn.as_str()), ("s1", "arn:aws:iam::1:role/r"))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn what_cannot_be_used_is_refused_by_name() {
    let home = dir("refused");
    std::fs::write(home.join(".aws/config"), CONFIG).unwrap();
    let h = home.to_str().unwrap();
    let e = find(&env(&[("HOME", h)]), Some("process")).await.unwrap_err();
    assert!(e.contains("credential_process is not supported"), "{e}");
    let e = find(&env(&[("HOME", h)]), Some("missing")).await.unwrap_err();
    assert!(e.contains("profile \"missing\" is in neither shared file"), "{e}");
    let e = find(&env(&[("HOME", h), ("AWS_ACCESS_KEY_ID", "A")]), None).await.unwrap_err();
    assert!(e.contains("AWS_SECRET_ACCESS_KEY is not"), "{e}");
    let e = find(&env(&[("HOME", "/nonexistent")]), None).await.unwrap_err();
    assert!(e.starts_with("no AWS credentials"), "{e}");
    let e = find(&env(&[("HOME", "/nonexistent"), ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t")]), None).await.unwrap_err();
    assert!(e.contains("AWS_ROLE_ARN is not"), "{e}");
}

#[test]
fn ini_sections() {
    let s = ini_section("[a]\nk = 1\n[ b ]\nK = 2 \n  nested = 3\n; c\n", "b").unwrap();
    assert_eq!(s, env(&[("k", "2")]));
    assert_eq!(ini_section("[a]\n", "b"), None);
    assert_eq!(ini_section("[profile  x]\nk=v", "profile x").unwrap()["k"], "v");
}

/// Temporary credentials are exchanged again before they expire; file keys are kept between refreshes.
#[tokio::test]
async fn temporary_credentials_are_renewed_before_expiry() {
    let e: Arc<dyn Env> = Arc::new(env(&[
        ("HOME", "/nonexistent"),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
        ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
    ]));
    let provider = Provider::new(e, None);
    let calls = AtomicUsize::new(0);
    let exchange = |w: WebIdentity| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        async move {
            Ok(Credentials {
                access_key_id: format!("ASIA{n}"),
                secret_access_key: "s".into(),
                session_token: Some("t".into()),
                expiry: Some(SystemTime::now() + EXPIRY_MARGIN + Duration::from_secs(3600)),
                source: w.source,
            })
        }
    };
    let first = provider.get(exchange).await.unwrap();
    assert_eq!(first.access_key_id, "ASIA0");
    let again = provider.get(exchange).await.unwrap();
    assert_eq!(again.access_key_id, "ASIA0", "not renewed while fresh");
    let failing = |_: WebIdentity| async { Err::<Credentials, _>("sts down".to_owned()) };
    // Forced stale: a failed renewal keeps credentials that have not expired.
    lock(&provider.cached).as_mut().unwrap().refresh_at = Some(Instant::now());
    assert_eq!(provider.get(failing).await.unwrap().access_key_id, "ASIA0");
    lock(&provider.cached).as_mut().unwrap().refresh_at = Some(Instant::now());
    assert_eq!(provider.get(exchange).await.unwrap().access_key_id, "ASIA1");
    // Expired and not renewable: an error, never expired credentials.
    lock(&provider.cached).as_mut().unwrap().creds =
        Arc::new(Credentials { expiry: Some(SystemTime::now() - Duration::from_secs(1)), ..(*first).clone() });
    assert_eq!(provider.get(failing).await.unwrap_err(), "sts down");
}
