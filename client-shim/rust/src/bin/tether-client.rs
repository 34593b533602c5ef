//! `tether-client`: try an MCP server or a tether cluster by hand.
//!
//! ```sh
//! tether-client --url http://127.0.0.1:8080/mcp info
//! tether-client tools
//! tether-client call counter --repeat 3          # same replica each time
//! tether-client call long_task '{"steps":5,"step_ms":200}' --log-level debug
//! tether-client --sampling-reply "42" call ask_model '{"question":"why?"}'
//! tether-client --elicit-accept '{"confirm":true}' call confirm_delete '{"filename":"a"}'
//! tether-client --mode legacy call counter       # a session, even with a new-era server
//! tether-client read test://static-text
//! tether-client watch --subscribe test://static-text --secs 30
//! tether-client ping --count 20
//! ```
//!
//! `--mode` (or `TETHER_CLIENT_MODE`) picks the era: `auto` (the default)
//! asks the server with `server/discover` and speaks 2026-07-28 if it does,
//! without a session, else starts a session; `legacy` always starts a
//! session; `2026-07-28` never does, and fails if the server does not
//! speak it. Everything below works in both eras.
//!
//! Results go to stdout as JSON; everything for people goes to stderr,
//! prefixed with `#`: the era, the session and the replica that owns it
//! (the route prefix of a tether session id), notifications, and, while a
//! `call` runs, its progress (a bar on a terminal, one line per
//! notification otherwise) and its log messages as they arrive (from
//! `--log-level`, `info` by default for `call`; `off` asks for none).
//! A call that the server turns into a task (2026-07-28) is followed to
//! its end; its status messages show as progress.

use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tether_shim::protocol::ProtocolVersion;
use tether_shim::{
    Client, ClientBuilder, Event, LogLevel, Mode, ProgressParams, RequestOptions, RpcError,
};

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
    /// Which era to speak: auto (2026-07-28 if the server speaks it, else
    /// a session), legacy (a session), or 2026-07-28 (never a session).
    #[arg(
        long,
        env = "TETHER_CLIENT_MODE",
        default_value = "auto",
        global = true
    )]
    mode: Mode,
    /// 2026-07-28: do not declare the tasks extension (a call is then
    /// never turned into a task).
    #[arg(long, global = true)]
    no_tasks: bool,
    /// Ask for log messages from this level up (debug, info, notice,
    /// warning, error, critical, alert, emergency) or `off`. Default: `info`
    /// for `call` (when the server offers logging), none otherwise.
    #[arg(long, value_parser = log_choice, global = true)]
    log_level: Option<LogChoice>,
    /// Keep no cookies (a cookie-pinning balancer then loses the session).
    #[arg(long, global = true)]
    no_cookies: bool,
    /// Seconds each request may take.
    #[arg(long, default_value_t = 60, global = true)]
    timeout: u64,
    /// Protocol revision to ask for in `initialize` (sessions).
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
        /// Do not ask for progress (by default it is shown as it arrives).
        #[arg(long)]
        no_progress: bool,
        /// Ask for progress (the default; kept for older scripts).
        #[arg(long, hide = true)]
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
        /// Stop after this many seconds.
        #[arg(long, default_value_t = 600)]
        secs: u64,
    },
}

/// A `--log-level`: a level, or none at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogChoice {
    Off,
    At(LogLevel),
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            ui().line(&format!("error: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// What goes to stderr for people: lines, and the progress bar of the
/// call under way (drawn on a terminal only; lines print above it).
struct Ui {
    tty: bool,
    bar: Mutex<Option<Bar>>,
}

struct Bar {
    progress: f64,
    total: Option<f64>,
    message: String,
    drawn: bool,
}

const BAR_WIDTH: usize = 30;

fn ui() -> &'static Ui {
    static UI: OnceLock<Ui> = OnceLock::new();
    UI.get_or_init(|| Ui {
        tty: std::io::stderr().is_terminal(),
        bar: Mutex::new(None),
    })
}

impl Ui {
    /// A line on stderr, above the bar if one is drawn.
    fn line(&self, text: &str) {
        let mut bar = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        let mut err = std::io::stderr().lock();
        if let Some(b) = bar.as_mut().filter(|b| b.drawn) {
            let _ = write!(err, "\r\x1b[2K");
            b.drawn = false;
        }
        let _ = writeln!(err, "{text}");
        if let Some(b) = bar.as_mut() {
            b.draw(&mut err);
        }
        let _ = err.flush();
    }

    /// A progress notification: the bar on a terminal, else a line.
    fn progress(&self, p: &ProgressParams) {
        let message = p.message.clone().unwrap_or_default();
        if !self.tty {
            let total = p.total.map(|t| t.to_string()).unwrap_or_else(|| "?".into());
            self.line(&format!("# progress {}/{total} {message}", p.progress));
            return;
        }
        let mut bar = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        let b = bar.get_or_insert(Bar {
            progress: 0.0,
            total: None,
            message: String::new(),
            drawn: false,
        });
        b.progress = p.progress;
        b.total = p.total;
        b.message = message;
        let mut err = std::io::stderr().lock();
        b.draw(&mut err);
        let _ = err.flush();
    }

    /// The call ended: its bar goes.
    fn done(&self) {
        let mut bar = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        if bar.take().is_some_and(|b| b.drawn) {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

impl Bar {
    fn draw(&mut self, out: &mut impl Write) {
        let text = match self.total.filter(|t| *t > 0.0) {
            Some(total) => {
                let filled = ((self.progress / total).clamp(0.0, 1.0) * BAR_WIDTH as f64) as usize;
                format!(
                    "[{}{}] {}/{} {}",
                    "#".repeat(filled),
                    "-".repeat(BAR_WIDTH - filled),
                    self.progress,
                    total,
                    self.message
                )
            }
            None => format!(
                "[{}] {} {}",
                "~".repeat(BAR_WIDTH),
                self.progress,
                self.message
            ),
        };
        let _ = write!(out, "\r\x1b[2K{text}");
        self.drawn = true;
    }
}

fn parse_json(what: &str, text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("{what} is not JSON: {e}"))
}

fn builder(args: &Args) -> Result<ClientBuilder, String> {
    let mut b = Client::builder(&args.url)
        .mode(args.mode)
        .tasks(!args.no_tasks)
        .client_info("tether-client", env!("CARGO_PKG_VERSION"))
        .cookies(!args.no_cookies)
        .request_timeout(Duration::from_secs(args.timeout))
        .protocol_version(&args.protocol)
        .standalone_stream(!args.no_stream);
    if let Some(text) = args.sampling_reply.clone() {
        b = b.on_sampling(move |params| {
            let text = text.clone();
            async move {
                ui().line(&format!("# sampling request: {params}"));
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
                ui().line(&format!("# elicitation request: {params}"));
                Ok(json!({"action": "accept", "content": content}))
            }
        });
    } else if args.elicit_decline {
        b = b.on_elicitation(|params| async move {
            ui().line(&format!("# elicitation request (declined): {params}"));
            Ok::<_, RpcError>(json!({"action": "decline"}))
        });
    }
    if !args.roots.is_empty() {
        b = b.roots(args.roots.iter().map(|r| json!({"uri": r})).collect());
    }
    Ok(b)
}

fn describe(client: &Client) -> String {
    if client.is_stateless() {
        return "MCP 2026-07-28, no session".to_owned();
    }
    format!(
        "session {} on replica {} (MCP {})",
        client.session_id().as_deref().unwrap_or("(none)"),
        client.replica().as_deref().unwrap_or("?"),
        client.protocol_version()
    )
}

/// A line of results on stdout. A reader that went away (`| head`) ends
/// the program quietly, with the status of a broken pipe.
fn out(text: &str) {
    let mut o = std::io::stdout().lock();
    if writeln!(o, "{text}").and_then(|()| o.flush()).is_err() {
        std::process::exit(141);
    }
}

fn print(v: &Value) {
    out(&serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()));
}

/// A log message for people: `# log <level> [<logger>] <data>`.
fn log_line(params: &Value) -> String {
    let level = params["level"].as_str().unwrap_or("?");
    let data = match &params["data"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match params["logger"].as_str() {
        Some(logger) => format!("# log {level} [{logger}] {data}"),
        None => format!("# log {level} {data}"),
    }
}

fn print_event(e: &Event, verbose: bool) {
    let text = match e {
        Event::Notification(n) if n.method == "notifications/message" => log_line(&n.params),
        _ if !verbose => return,
        Event::Notification(n) => format!("# {} {}", n.method, n.params),
        Event::Reinitialized {
            old_session,
            new_session,
        } => format!(
            "# session lost: {} -> new session {}",
            old_session.as_deref().unwrap_or("-"),
            new_session.as_deref().unwrap_or("-")
        ),
        Event::StreamStopped { reason } => format!("# standalone stream stopped: {reason}"),
    };
    ui().line(&text);
}

async fn run(args: Args) -> Result<(), String> {
    let b = builder(&args)?;
    let mut events = b.events();
    let verbose = args.verbose || matches!(args.command, Cmd::Watch { .. });
    let printer = tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(e) => print_event(&e, verbose),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    ui().line(&format!("# ({n} events dropped)"))
                }
                Err(_) => return,
            }
        }
    });
    let client = b.connect().await.map_err(|e| e.to_string())?;
    ui().line(&format!("# {}", describe(&client)));
    // Log messages: what was asked, or `info` for a call when the server
    // offers logging.
    let level = match (args.log_level, &args.command) {
        (Some(LogChoice::At(level)), _) => Some(level),
        (None, Cmd::Call { .. }) if client.server_info().capabilities.has("logging") => {
            Some(LogLevel::Info)
        }
        _ => None,
    };
    let outcome = match level {
        Some(level) => client.set_log_level(level).await.map_err(|e| e.to_string()),
        None => Ok(()),
    };
    let outcome = match outcome {
        Ok(()) => command(&client, args.command).await,
        Err(e) => Err(e),
    };
    ui().done();
    let _ = client.close().await;
    // The printer ends once the client is gone (the channel closes), after
    // the messages that came with the last answer.
    drop(client);
    let mut printer = printer;
    if tokio::time::timeout(Duration::from_millis(500), &mut printer)
        .await
        .is_err()
    {
        printer.abort();
    }
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
                "mode": client.mode().as_str(),
                "session": client.session_id(),
                "replica": client.replica(),
            }));
        }
        Cmd::Tools => {
            for t in client.list_tools().await.map_err(e)? {
                out(&format!(
                    "{:<32} {}",
                    t["name"].as_str().unwrap_or("?"),
                    t["description"].as_str().unwrap_or("")
                ));
            }
        }
        Cmd::Call {
            name,
            arguments,
            repeat,
            no_progress,
            progress: _,
        } => {
            let arguments = parse_json("the arguments", &arguments)?;
            for i in 1..=repeat.max(1) {
                let mut opts = RequestOptions::new();
                if !no_progress {
                    opts = opts.on_progress(|p| ui().progress(&p));
                }
                let start = Instant::now();
                let r = client.call_tool_with(&name, arguments.clone(), opts).await;
                ui().done();
                let r = r.map_err(e)?;
                let took = start.elapsed();
                let mut line = json!({"content": r.content, "isError": r.is_error});
                if let Some(s) = r.structured_content {
                    line["structuredContent"] = s;
                }
                if repeat > 1 {
                    out(&line.to_string());
                } else {
                    print(&line);
                }
                ui().line(&format!("# call {i}: {took:.1?}, {}", describe(client)));
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
                out(&format!(
                    "ping {i}: {:.2?} ({})",
                    start.elapsed(),
                    describe(client)
                ));
            }
        }
        Cmd::Watch { subscribe, secs } => {
            for uri in subscribe {
                client.subscribe(&uri).await.map_err(e)?;
                ui().line(&format!("# subscribed to {uri}"));
            }
            ui().line(&format!("# watching for {secs} s (Ctrl-C to stop)"));
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(secs)) => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
    }
    Ok(())
}

fn log_choice(s: &str) -> Result<LogChoice, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(LogChoice::Off);
    }
    LogLevel::parse(s).map(LogChoice::At).ok_or_else(|| {
        let all: Vec<_> = LogLevel::ALL.iter().map(|l| l.as_str()).collect();
        format!("off or one of {}", all.join(", "))
    })
}
