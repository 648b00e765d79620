//! The credential chain end to end: the environment first, the shared files' profiles (credentials and config
//! file), a web-identity token exchanged at the lab's STS, none at all. The lab's function host verifies every
//! signature, so a wrong secret or an unknown key is refused as the service refuses it.

mod common;

use common::function_lab::*;
use common::*;
use waygate_faultlab::FunctionHost;
use waygate_faultlab::lambda::{TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};

/// Files a credentials test reads: the shared credentials file's `[default]` has a wrong secret, `[lab]` and
/// the config file's `[profile cfg]` the lab's keys, `[stranger]` a key the host does not know.
fn shared_files(tag: &str) -> (String, String) {
    let dir = tempdir(tag);
    let (credentials, config) = (dir.join("credentials"), dir.join("config"));
    std::fs::write(
        &credentials,
        format!(
            "[default]\naws_access_key_id = {TEST_ACCESS_KEY_ID}\naws_secret_access_key = not-the-secret\n\n\
             [lab]\naws_access_key_id = {TEST_ACCESS_KEY_ID}\naws_secret_access_key = {TEST_SECRET_ACCESS_KEY}\n\n\
             [stranger]\naws_access_key_id = AKIDSTRANGER\naws_secret_access_key = x\n"
        ),
    )
    .unwrap();
    std::fs::write(
        &config,
        format!("[profile cfg]\nregion = us-east-1\naws_access_key_id = {TEST_ACCESS_KEY_ID}\naws_secret_access_key = {TEST_SECRET_ACCESS_KEY}\n"),
    )
    .unwrap();
    (credentials.display().to_string(), config.display().to_string())
}

/// Groups `/{name}` each with `profile` (none for `default`) and what their invoke gives.
const PROFILES: [(&str, &str, u16, &str); 5] = [
    ("lab", ", profile = \"lab\"", 200, ""),
    ("cfg", ", profile = \"cfg\"", 200, ""),
    ("default", "", 502, "InvalidSignatureException"),
    ("stranger", ", profile = \"stranger\"", 502, "UnrecognizedClientException"),
    ("nope", ", profile = \"nope\"", 502, "profile \"nope\" is in neither shared file"),
];

#[test]
fn credentials_from_the_shared_files_and_their_profiles() {
    let (credentials, config_file) = shared_files("fn-profiles");
    let vars = [("AWS_SHARED_CREDENTIALS_FILE", credentials.as_str()), ("AWS_CONFIG_FILE", config_file.as_str())];
    if parent("credentials_from_the_shared_files_and_their_profiles", &vars) {
        return;
    }
    run(async {
        let host = FunctionHost::new().spawn(loopback()).await.unwrap();
        let groups: Vec<(&str, String, &str)> =
            PROFILES.iter().map(|p| (p.0, function("echo", host.addr(), p.1), "")).collect();
        let log = LogCapture::default();
        let _guard = log.install();
        let (_gw, addr) = gateway(&config("", "", &groups)).await;
        for (name, _, status, says) in PROFILES {
            let resp = within(name, get(addr, &format!("/{name}"))).await;
            assert_eq!(resp.status.as_u16(), status, "{name}: {}", resp.text());
            if status != 200 {
                assert!(resp.header("proxy-status").contains("details=\"LambdaAccessDenied\""), "{name}");
                let line = log.line(resp.header("x-request-id"), "LambdaAccessDenied");
                assert!(line.contains(says), "{name}: {line}");
            }
        }
        // The bad profile never reached the host: 4 invokes for 5 requests.
        assert_eq!(host.stats().requests_served(), 4);
    });
}

#[test]
fn credentials_from_the_environment_come_first() {
    let (credentials, _) = shared_files("fn-env");
    let vars = [
        LAB_KEYS[0],
        LAB_KEYS[1],
        ("AWS_SESSION_TOKEN", "lab-session-token"),
        ("AWS_SHARED_CREDENTIALS_FILE", credentials.as_str()),
    ];
    if parent("credentials_from_the_environment_come_first", &vars) {
        return;
    }
    run(async {
        let host = FunctionHost::new().spawn(loopback()).await.unwrap();
        let (_gw, addr) = gateway(&config("", "", &[("env", function("echo", host.addr(), ""), "")])).await;
        let e = within("env", get(addr, "/env")).await;
        assert_eq!(e.status, 200, "the environment's keys, not [default]'s wrong secret: {}", e.text());
    });
}

#[test]
fn no_credentials_is_access_denied_without_an_invoke() {
    if parent("no_credentials_is_access_denied_without_an_invoke", &[]) {
        return;
    }
    run(async {
        let host = FunctionHost::new().spawn(loopback()).await.unwrap();
        let log = LogCapture::default();
        let _guard = log.install();
        let (_gw, addr) = gateway(&config("", "", &[("none", function("echo", host.addr(), ""), "")])).await;
        let resp = within("none", get(addr, "/none")).await;
        assert_eq!(resp.status, 502);
        assert!(log.line(resp.header("x-request-id"), "LambdaAccessDenied").contains("no AWS credentials"));
        assert_eq!(host.stats().requests_served(), 0);
    });
}

/// A web-identity token file exchanged at the lab's STS (`AWS_ENDPOINT_URL_STS`) for temporary credentials;
/// a token STS refuses is LambdaAccessDenied with STS's error in the log.
#[test]
fn credentials_from_a_web_identity_token_file() {
    let dir = tempdir("fn-web");
    let (good, bad) = (dir.join("token"), dir.join("bad-token"));
    std::fs::write(&good, waygate_faultlab::lambda::TEST_WEB_IDENTITY_TOKEN).unwrap();
    std::fs::write(&bad, "not-the-token").unwrap();
    // The lab's STS is the function host itself, and its address must be in the child's environment: the
    // parent runs it, on a runtime of its own, while the child runs.
    let child = std::env::var(CHILD).is_ok();
    let parent_rt = tokio::runtime::Runtime::new().unwrap();
    let host = (!child).then(|| parent_rt.block_on(FunctionHost::new().spawn(loopback())).unwrap());
    let at = match &host {
        Some(h) => h.addr().to_string(),
        None => std::env::var("WAYGATE_TEST_FUNCTION_HOST").unwrap(),
    };
    let sts = format!("http://{at}");
    let config_file = dir.join("config");
    std::fs::write(
        &config_file,
        format!(
            "[profile bad]\nrole_arn = arn:aws:iam::000000000000:role/r\nweb_identity_token_file = {}\n",
            bad.display()
        ),
    )
    .unwrap();
    let vars = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", good.to_str().unwrap()),
        ("AWS_ROLE_ARN", "arn:aws:iam::000000000000:role/fn-invoker"),
        ("AWS_ENDPOINT_URL_STS", sts.as_str()),
        ("AWS_CONFIG_FILE", config_file.to_str().unwrap()),
        ("WAYGATE_TEST_FUNCTION_HOST", at.as_str()),
    ];
    if parent("credentials_from_a_web_identity_token_file", &vars) {
        // One STS exchange and two invokes for `/web` (the temporary credentials are kept until near their
        // expiry), one refused exchange for `/bad`.
        assert_eq!(host.map(|h| h.stats().requests_served()), Some(4));
        return;
    }
    run(async {
        let groups =
            [("web", function("echo", &at, ""), ""), ("bad", function("echo", &at, ", profile = \"bad\""), "")];
        let log = LogCapture::default();
        let _guard = log.install();
        let (_gw, addr) = gateway(&config("", "", &groups)).await;
        for _ in 0..2 {
            let resp = within("web", get(addr, "/web")).await;
            assert_eq!(resp.status, 200, "{}", resp.text());
        }
        assert!(log.text().contains("via STS AssumeRoleWithWebIdentity"), "{}", log.text());
        let resp = within("bad", get(addr, "/bad")).await;
        assert_eq!(resp.status, 502);
        assert!(log.line(resp.header("x-request-id"), "LambdaAccessDenied").contains("InvalidIdentityToken"));
    });
}
