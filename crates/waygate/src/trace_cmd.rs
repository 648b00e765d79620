//! `waygate trace start|list|show|stop`: debug (trace) sessions from the command line, a client of
//! `/api/v1/debug-sessions` (Apigee's Trace tool). `start` opens a session with a filter and prints its id,
//! `show` draws each captured exchange's phases to scale ([`crate::trace_show`]), `stop` ends it. The admin
//! API is found as `waygate explain` finds it (`--admin`, `--config`, `--token-file`).
//! Exit codes: 0 done, 1 refused (a bad filter, an unknown session, too many sessions, a token), 2 the admin
//! API could not be reached or answered nonsense.

use clap::Subcommand;
use http::Method;
use serde_json::{Map, Value, json};
use waygate_telemetry::debug::SessionView;

use crate::admin_client::{Admin, AdminArgs};
use crate::explain::encode;

#[derive(Subcommand, Debug)]
pub enum TraceCommand {
    /// Start a debug session: the next exchanges matching every filter given are captured whole (phases,
    /// masked headers, connections; bodies with --capture-body).
    ///
    /// Example: waygate trace start --path /api --status 5xx --max 10 --timeout 5m --config waygate.toml
    Start(StartArgs),
    /// List the debug sessions: state, exchanges captured, expiry, filter.
    ///
    /// Example: waygate trace list --config waygate.toml
    List {
        /// Print the admin API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a session's captured exchanges, each as a timeline of its phases drawn to scale.
    ///
    /// Example: waygate trace show 3f2a9c0d1e4b5a68 --config waygate.toml
    Show {
        id: String,
        /// Print the admin API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop a session and forget what it captured.
    ///
    /// Example: waygate trace stop 3f2a9c0d1e4b5a68 --config waygate.toml
    Stop { id: String },
}

/// `waygate trace start`'s filter and limits (every filter given must match).
#[derive(clap::Args, Debug)]
pub struct StartArgs {
    /// Requests whose path starts with P.
    #[arg(long, value_name = "P")]
    pub path: Option<String>,
    /// Requests with this method.
    #[arg(long, value_name = "M")]
    pub method: Option<String>,
    /// The status the client got: a class (`5xx`) or a code (`502`).
    #[arg(long, value_name = "S")]
    pub status: Option<String>,
    /// The cause (docs/FAULTS.md), e.g. TargetConnectionRefused.
    #[arg(long, value_name = "C")]
    pub cause: Option<String>,
    /// Requests routed to this target group.
    #[arg(long, value_name = "G")]
    pub target_group: Option<String>,
    /// Requests carrying this header with this exact value, `NAME:VALUE`.
    #[arg(long, value_name = "NAME:VALUE")]
    pub header: Option<String>,
    /// Requests from this client address.
    #[arg(long, value_name = "IP")]
    pub client_ip: Option<String>,
    /// Exchanges to capture before the session ends (default 20, at most 100).
    #[arg(long, value_name = "N")]
    pub max: Option<u32>,
    /// How long the session captures (default 10m, 1s to 1h).
    #[arg(long, value_name = "D")]
    pub timeout: Option<String>,
    /// Also capture the first 4 KiB of each request and response body.
    #[arg(long)]
    pub capture_body: bool,
}

pub async fn trace(admin: &AdminArgs, command: &TraceCommand) -> u8 {
    let admin = match Admin::from_args(admin) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("waygate trace: {e}");
            return 1;
        }
    };
    match run(&admin, command).await {
        Ok(()) => 0,
        Err((code, e)) => {
            eprintln!("waygate trace: {e}");
            code
        }
    }
}

/// A failure: the exit code and what to say.
type Failure = (u8, String);

async fn call(admin: &Admin, method: Method, path: &str, body: Option<Value>) -> Result<Value, Failure> {
    let answer = admin.call(method, path, body.map(|b| b.to_string())).await.map_err(|e| (2, e))?;
    answer.json().map_err(|e| (if answer.status.is_client_error() { 1 } else { 2 }, e))
}

fn session(v: Value) -> Result<SessionView, Failure> {
    serde_json::from_value(v).map_err(|e| (2, format!("the admin API's session is not one this waygate reads: {e}")))
}

async fn run(admin: &Admin, command: &TraceCommand) -> Result<(), Failure> {
    match command {
        TraceCommand::Start(args) => {
            let v = call(admin, Method::POST, "/api/v1/debug-sessions", Some(start_body(args)?)).await?;
            let id = v["id"].as_str().unwrap_or("?");
            let filter = crate::trace_show::filter_text(&v["filter"]);
            println!(
                "debug session {id} started: capturing up to {} exchange(s) for {} where {filter}",
                v["max_exchanges"],
                v["timeout"].as_str().unwrap_or("?")
            );
            println!("show it with: waygate trace show {id}   (stop it with: waygate trace stop {id})");
            Ok(())
        }
        TraceCommand::List { json } => {
            let v = call(admin, Method::GET, "/api/v1/debug-sessions", None).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                return Ok(());
            }
            let sessions: Vec<SessionView> = match serde_json::from_value(v["debug_sessions"].clone()) {
                Ok(s) => s,
                Err(e) => return Err((2, format!("the admin API's session list is not one this waygate reads: {e}"))),
            };
            print!("{}", crate::trace_show::list(&sessions));
            Ok(())
        }
        TraceCommand::Show { id, json } => {
            let v = call(admin, Method::GET, &format!("/api/v1/debug-sessions/{}", encode(id)), None).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                print!("{}", crate::trace_show::show(&session(v)?));
            }
            Ok(())
        }
        TraceCommand::Stop { id } => {
            let v =
                session(call(admin, Method::DELETE, &format!("/api/v1/debug-sessions/{}", encode(id)), None).await?)?;
            println!("debug session {} stopped ({}, {} exchange(s) captured)", v.id, v.state, v.captured);
            Ok(())
        }
    }
}

/// The session's body from the flags; the admin API judges the values (its errors name the field).
fn start_body(args: &StartArgs) -> Result<Value, Failure> {
    let mut filter = Map::new();
    let mut put = |key: &str, v: &Option<String>| {
        if let Some(v) = v {
            filter.insert(key.to_owned(), Value::String(v.clone()));
        }
    };
    put("path_prefix", &args.path);
    put("method", &args.method);
    put("status", &args.status);
    put("cause", &args.cause);
    put("target_group", &args.target_group);
    put("client_ip", &args.client_ip);
    if let Some(h) = &args.header {
        let Some((name, value)) = h.split_once(':') else {
            return Err((1, format!("--header {h:?}: expected NAME:VALUE")));
        };
        filter.insert("header".into(), json!({ "name": name.trim(), "value": value.trim() }));
    }
    let mut body = json!({ "filter": filter, "capture_body": args.capture_body });
    if let Some(max) = args.max {
        body["max_exchanges"] = json!(max);
    }
    if let Some(t) = &args.timeout {
        body["timeout"] = json!(t);
    }
    Ok(body)
}
