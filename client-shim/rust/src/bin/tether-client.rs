//! `tether-client`: try an MCP server or a tether cluster by hand.
//!
//! ```sh
//! tether-client --url http://127.0.0.1:8080/mcp info
//! tether-client tools
//! tether-client call counter --repeat 3          # same replica each time
//! tether-client call long_task '{"steps":5,"step_ms":200}' --progress
//! tether-client --sampling-reply "42" call ask_model '{"question":"why?"}'
//! tether-client read test://static-text
//! tether-client watch --subscribe test://static-text --secs 30
//! tether-client ping --count 20
//! ```
//!
//! Results go to stdout as JSON; the session, the replica that owns it
//! (the route prefix of a tether session id) and notifications go to
//! stderr, prefixed with `#`.

use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tether_shim::protocol::ProtocolVersion;
use tether_shim::{Client, ClientBuilder, Event, LogLevel, RequestOptions, RpcError};

#[derive(Parser)]
#[command(version, about = "Try an MCP server (or a tether cluster) by hand")]
struct Args {
    /// The MCP endpoint.
    #[arg(
        long,
        env = "TETHER_URL",
        default_value = "http://127.0.0.1:8080/mcp",
        global = true
    )]
    url: String,
    /// Keep no cookies (a cookie-pinning balancer then loses the session).
    #[arg(long, global = true)]
    no_cookies: bool,
    /// Seconds each request may take.
    #[arg(long, default_value_t = 60, global = true)]
    timeout: u64,
    /// Protocol revision to ask for.
    #[arg(long, default_value = ProtocolVersion::LATEST.as_str(), global = true)]
    protocol: String,
    /// Answer sampling requests with this text (declares `sampling`).
    #[arg(long, global = true)]
    sampling_reply: Option<String>,
    /// Accept elicitation requests with this JSON object as the content
    /// (declares `elicitation`).
    #[arg(long, global = true, conflicts_with = "elicit_decline")]
    elicit_accept: Option<String>,
    /// Decline elicitation requests (declares `elicitation`).
    #[arg(long, global = true)]
    elicit_decline: bool,
    /// A root to offer (repeatable; declares `roots`).
    #[arg(long = "root", global = true)]
    roots: Vec<String>,
    /// Do not open the standalone GET stream.
    #[arg(long, global = true)]
    no_stream: bool,
    /// Print notifications that arrive while a command runs.
    #[arg(long, short, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Connect; print the server, the session and its replica.
    Info,
    /// List the tools.
    Tools,
    /// Call a tool.
    Call {
        name: String,
        /// Arguments as a JSON object.
        #[arg(default_value = "{}")]
        arguments: String,
        /// Call it this many times in the same session.
        #[arg(long, default_value_t = 1)]
        repeat: u32,
        /// Ask for progress and print it.
        #[arg(long)]
        progress: bool,
    },
    /// List resources and resource templates.
    Resources,
    /// Read a resource.
    Read { uri: String },
    /// List prompts.
    Prompts,
    /// Get a prompt.
    Prompt {
        name: String,
        #[arg(default_value = "{}")]
        arguments: String,
    },
    /// Ping; print each round trip and the replica.
    Ping {
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// Print notifications as they arrive (standalone stream).
    Watch {
        /// Subscribe to this resource first (repeatable).
        #[arg(long)]
        subscribe: Vec<String>,
        /// Ask for log messages at this level (debug, info, ..., emergency).
        #[arg(long, value_parser = log_level)]
        log_level: Option<LogLevel>,
        /// Stop after this many seconds.
        #[arg(long, default_value_t = 600)]
        secs: u64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_json(what: &str, text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("{what} is not JSON: {e}"))
}

fn builder(args: &Args) -> Result<ClientBuilder, String> {
    let mut b = Client::builder(&args.url)
        .client_info("tether-client", env!("CARGO_PKG_VERSION"))
        .cookies(!args.no_cookies)
        .request_timeout(Duration::from_secs(args.timeout))
        .protocol_version(&args.protocol)
        .standalone_stream(!args.no_stream);
    if let Some(text) = args.sampling_reply.clone() {
        b = b.on_sampling(move |params| {
            let text = text.clone();
            async move {
                eprintln!("# sampling request: {params}");
                Ok(json!({
                    "role": "assistant",
                    "content": {"type": "text", "text": text},
                    "model": "tether-client",
                    "stopReason": "endTurn",
                }))
            }
        });
    }
    if let Some(content) = &args.elicit_accept {
        let content = parse_json("--elicit-accept", content)?;
        b = b.on_elicitation(move |params| {
            let content = content.clone();
            async move {
                eprintln!("# elicitation request: {params}");
                Ok(json!({"action": "accept", "content": content}))
            }
        });
    } else if args.elicit_decline {
        b = b.on_elicitation(|params| async move {
            eprintln!("# elicitation request (declined): {params}");
            Ok::<_, RpcError>(json!({"action": "decline"}))
        });
    }
    if !args.roots.is_empty() {
        b = b.roots(args.roots.iter().map(|r| json!({"uri": r})).collect());
    }
    Ok(b)
}

fn describe(client: &Client) -> String {
    format!(
        "session {} on replica {}",
        client.session_id().as_deref().unwrap_or("(none)"),
        client.replica().as_deref().unwrap_or("?")
    )
}

fn print(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

fn print_event(e: &Event) {
    match e {
        Event::Notification(n) => eprintln!("# {} {}", n.method, n.params),
        Event::Reinitialized {
            old_session,
            new_session,
        } => eprintln!(
            "# session lost: {} -> new session {}",
            old_session.as_deref().unwrap_or("-"),
            new_session.as_deref().unwrap_or("-")
        ),
        Event::StreamStopped { reason } => eprintln!("# standalone stream stopped: {reason}"),
    }
}

async fn run(args: Args) -> Result<(), String> {
    let b = builder(&args)?;
    let mut events = b.events();
    let verbose = args.verbose || matches!(args.command, Cmd::Watch { .. });
    let printer = tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(e) if verbose => print_event(&e),
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    eprintln!("# ({n} events dropped)")
                }
                Err(_) => return,
            }
        }
    });
    let client = b.connect().await.map_err(|e| e.to_string())?;
    eprintln!("# {}", describe(&client));
    let outcome = command(&client, args.command).await;
    let _ = client.close().await;
    printer.abort();
    outcome
}

async fn command(client: &Client, cmd: Cmd) -> Result<(), String> {
    let e = |e: tether_shim::Error| e.to_string();
    match cmd {
        Cmd::Info => {
            let info = client.server_info();
            print(&json!({
                "protocolVersion": info.protocol_version,
                "serverInfo": info.server_info,
                "capabilities": info.capabilities,
                "instructions": info.instructions,
                "session": client.session_id(),
                "replica": client.replica(),
            }));
        }
        Cmd::Tools => {
            for t in client.list_tools().await.map_err(e)? {
                println!(
                    "{:<32} {}",
                    t["name"].as_str().unwrap_or("?"),
                    t["description"].as_str().unwrap_or("")
                );
            }
        }
        Cmd::Call {
            name,
            arguments,
            repeat,
            progress,
        } => {
            let arguments = parse_json("the arguments", &arguments)?;
            for i in 1..=repeat.max(1) {
                let mut opts = RequestOptions::new();
                if progress {
                    opts = opts.on_progress(|p| {
                        eprintln!(
                            "# progress {}/{} {}",
                            p.progress,
                            p.total.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
                            p.message.unwrap_or_default()
                        )
                    });
                }
                let start = Instant::now();
                let r = client
                    .call_tool_with(&name, arguments.clone(), opts)
                    .await
                    .map_err(e)?;
                let took = start.elapsed();
                let mut out = json!({"content": r.content, "isError": r.is_error});
                if let Some(s) = r.structured_content {
                    out["structuredContent"] = s;
                }
                if repeat > 1 {
                    println!("{out}");
                } else {
                    print(&out);
                }
                eprintln!("# call {i}: {took:.1?}, {}", describe(client));
            }
        }
        Cmd::Resources => {
            let resources = client.list_resources().await.map_err(e)?;
            let templates = client.list_resource_templates().await.map_err(e)?;
            print(&json!({"resources": resources, "resourceTemplates": templates}));
        }
        Cmd::Read { uri } => print(&Value::Array(client.read_resource(&uri).await.map_err(e)?)),
        Cmd::Prompts => print(&Value::Array(client.list_prompts().await.map_err(e)?)),
        Cmd::Prompt { name, arguments } => {
            let arguments = parse_json("the arguments", &arguments)?;
            print(&client.get_prompt(&name, arguments).await.map_err(e)?);
        }
        Cmd::Ping { count } => {
            for i in 1..=count.max(1) {
                let start = Instant::now();
                client.ping().await.map_err(e)?;
                println!("ping {i}: {:.2?} ({})", start.elapsed(), describe(client));
            }
        }
        Cmd::Watch {
            subscribe,
            log_level,
            secs,
        } => {
            if let Some(level) = log_level {
                client.set_log_level(level).await.map_err(e)?;
            }
            for uri in subscribe {
                client.subscribe(&uri).await.map_err(e)?;
                eprintln!("# subscribed to {uri}");
            }
            eprintln!("# watching for {secs} s (Ctrl-C to stop)");
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(secs)) => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
    }
    Ok(())
}

fn log_level(s: &str) -> Result<LogLevel, String> {
    LogLevel::parse(s).ok_or_else(|| {
        let all: Vec<_> = LogLevel::ALL.iter().map(|l| l.as_str()).collect();
        format!("one of {}", all.join(", "))
    })
}
