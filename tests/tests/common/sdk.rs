//! The official MCP SDK clients, which no one here wrote, as processes the
//! tests start: the Python SDK 1.x (`TETHER_PYTHON`, PyPI `mcp` pinned in
//! `tests/requirements.txt`), the Python SDK 2.x (`TETHER_PYTHON_MCP2`,
//! `tests/requirements-mcp2.txt`) and the TypeScript SDK
//! (`@modelcontextprotocol/sdk`, pinned in `tests/sdk-clients`).
//!
//! - [`python`], [`run_script`], [`run_summary`]: one script run to its end
//!   (the Python SDK sessions of `python_sdk.rs` and `legacy_sse.rs`).
//! - [`Fleet`]: fault drivers (`tests/python/fault_client.py`,
//!   `tests/sdk-clients/fault_client.mjs`), several SDK sessions each with
//!   the SDK's default options, steered on stdin (`go`, `fresh K`, `stop`)
//!   while they report what they saw as JSON lines; the tests read the
//!   [`ClientLog`] of every client, its [`timeline`], and judge.
//!
//! Every wait is bounded; a driver that misbehaves is killed with its
//! fleet (`kill_on_drop`), and a failed wait shows what every driver said.

use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

/// Bound on a fleet's start: interpreters, imports, and every client's
/// first session and call, possibly on a loaded machine.
pub const READY: Duration = Duration::from_secs(25);
/// Bound on a fleet's end after `stop` (sessions closed, processes gone).
pub const STOP: Duration = Duration::from_secs(10);

fn tests_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn var_or_panic(name: &str, how: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: it must name a Python with the pinned `mcp` package \
             (tests/run.sh sets it up; by hand: {how})"
        )
    })
}

/// The interpreter with the Python SDK 1.x (`TETHER_PYTHON`).
pub fn python() -> String {
    var_or_panic(
        "TETHER_PYTHON",
        "python3 -m venv tests/.venv && tests/.venv/bin/pip install -r tests/requirements.txt \
         && export TETHER_PYTHON=$PWD/tests/.venv/bin/python",
    )
}

/// The interpreter with the Python SDK 2.x (`TETHER_PYTHON_MCP2`).
pub fn python2() -> String {
    var_or_panic(
        "TETHER_PYTHON_MCP2",
        "python3 -m venv tests/.venv-mcp2 && tests/.venv-mcp2/bin/pip install -r \
         tests/requirements-mcp2.txt && export TETHER_PYTHON_MCP2=$PWD/tests/.venv-mcp2/bin/python",
    )
}

/// The Node project of the TypeScript SDK clients, installed.
pub fn node_project() -> PathBuf {
    let dir = tests_dir().join("sdk-clients");
    assert!(
        dir.join("node_modules/@modelcontextprotocol/sdk/package.json")
            .exists(),
        "the TypeScript SDK is not installed in {}: run `npm ci` there (tests/run.sh does)",
        dir.display()
    );
    dir
}

/// A command for an SDK process: its own environment for loopback (no
/// proxies), no stdin unless asked, killed if the test lets go of it.
fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for var in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("NO_PROXY", "127.0.0.1,localhost")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Runs `script` (under `tests/python`) with `python` and `args` to its
/// end within `limit`; panics, with its output, if it fails.
pub async fn run_script(python: &str, script: &str, args: &[&str], limit: Duration) -> Output {
    let path = tests_dir().join("python").join(script);
    let mut cmd = command(python);
    cmd.arg(&path).args(args);
    run_to_end(cmd, script, limit).await
}

async fn run_to_end(mut cmd: Command, script: &str, limit: Duration) -> Output {
    let out = tokio::time::timeout(limit, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within {limit:?}"))
        .unwrap_or_else(|e| panic!("{script} could not be started: {e}"));
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// Runs `script` like [`run_script`] and returns the JSON summary it
/// printed as its last line of stdout (panicking, with its output, if there
/// is none).
pub async fn run_summary(python: &str, script: &str, args: &[&str], limit: Duration) -> Value {
    let out = run_script(python, script, args, limit).await;
    summary_of(script, &out)
}

/// Runs `script` (under `tests/sdk-clients`, the TypeScript SDK's project)
/// with Node and `args`, like [`run_summary`].
pub async fn run_node_summary(script: &str, args: &[&str], limit: Duration) -> Value {
    let dir = node_project();
    let mut cmd = command("node");
    cmd.arg(dir.join(script)).args(args).current_dir(&dir);
    let out = run_to_end(cmd, script, limit).await;
    summary_of(script, &out)
}

fn summary_of(script: &str, out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "the summary of {script} is not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Bound on a whole SDK session script (interpreter start-up included).
pub const SESSION_LIMIT: Duration = Duration::from_secs(40);

/// Runs a whole session with the Python SDK 1.x against `url`
/// (`tests/python/mcp_session.py`) and returns its summary; check it with
/// [`assert_full_session`].
pub async fn python_session(url: &str) -> Value {
    run_summary(&python(), "mcp_session.py", &[url], SESSION_LIMIT).await
}

/// The same with the TypeScript SDK (`tests/sdk-clients/session.mjs`).
pub async fn typescript_session(url: &str) -> Value {
    run_node_summary("session.mjs", &[url], SESSION_LIMIT).await
}

/// Checks the summary of a whole session run by an official SDK client
/// (`tests/python/mcp_session.py`, `tests/sdk-clients/session.mjs`): the
/// common steps, sampling answered with `sampled`, elicitation, the
/// subscribed resource's update on the GET stream, the call whose stream
/// the server closed (resumed with `Last-Event-ID`), and not one error the
/// SDK reported.
pub fn assert_full_session(summary: &Value, sampled: &str) {
    assert_eq!(summary["protocol_version"], "2025-11-25", "{summary}");
    let session = summary["session_id"].as_str().expect("session id");
    assert_common_steps(summary, session, &["counter", "long_task", "ask_model"]);
    assert_eq!(
        summary["sampled_questions"],
        json!(["What is 2+2?"]),
        "{summary}"
    );
    assert_eq!(
        summary["ask_model"],
        json!({"is_error": false, "text": sampled}),
        "{summary}"
    );
    assert_eq!(
        summary["elicited_messages"],
        json!(["Who are you?"]),
        "{summary}"
    );
    assert_eq!(summary["elicitation"]["is_error"], false, "{summary}");
    assert!(
        summary["elicitation"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("action=accept") && t.contains("ada@example.com")),
        "{summary}"
    );
    assert_eq!(summary["updates"], json!(["demo://note"]), "{summary}");
    assert_eq!(summary["reconnection"]["is_error"], false, "{summary}");
    assert!(
        summary["reconnection"]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Reconnection test completed successfully")),
        "{summary}"
    );
    assert_eq!(
        summary["errors"],
        json!([]),
        "the SDK reported errors: {summary}"
    );
}

/// Checks the steps that every Python SDK session script runs (see
/// `tests/python/sdk_common.py`): the server named itself, `tools` were
/// listed, both `counter` calls counted 1 and 2 in `session` on the replica
/// that owns it, and `long_task` finished its 5 steps with their progress,
/// in order.
pub fn assert_common_steps(summary: &Value, session: &str, tools: &[&str]) {
    assert_eq!(summary["server_name"], "tether", "{summary}");
    let listed: Vec<&str> = summary["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for tool in tools {
        assert!(listed.contains(tool), "{tool} not listed: {listed:?}");
    }
    let route = session.split_once('.').expect("<route>.<random>").0;
    let counts = summary["counter"].as_array().expect("counter");
    assert_eq!(counts.len(), 2, "{summary}");
    for (i, c) in counts.iter().enumerate() {
        assert_eq!(c["count"], i + 1, "{summary}");
        assert_eq!(c["session"], session, "{summary}");
        assert_eq!(c["replica"], route, "{summary}");
    }
    assert_eq!(
        summary["long_task"],
        serde_json::json!({"is_error": false, "text": "finished 5 steps"}),
        "{summary}"
    );
    let progress: Vec<f64> = summary["progress"]
        .as_array()
        .expect("progress")
        .iter()
        .map(|p| p["progress"].as_f64().expect("progress value"))
        .collect();
    assert_eq!(progress, [1.0, 2.0, 3.0, 4.0, 5.0], "{summary}");
}

/// An official SDK client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Sdk {
    /// PyPI `mcp` 1.x: `ClientSession` over `streamable_http_client`.
    Python,
    /// PyPI `mcp` 2.x: `mcp.Client` with its default options (mode
    /// "auto": 2026-07-28, without a session, against tether).
    Python2,
    /// PyPI `mcp` 2.x: `mcp.Client` with `mode="legacy"`: the initialize
    /// handshake and a session, as 2025-11-25 clients have.
    Python2Legacy,
    /// npm `@modelcontextprotocol/sdk`: `Client` over
    /// `StreamableHTTPClientTransport` with the default fetch.
    TypeScript,
}

impl Sdk {
    /// Every SDK client with a session (the session fault tests'); the
    /// Python SDK 2.x in its default mode is in `new_era_faults.rs`.
    pub const ALL: [Sdk; 3] = [Sdk::Python, Sdk::Python2Legacy, Sdk::TypeScript];

    pub fn name(self) -> &'static str {
        match self {
            Sdk::Python => "python-sdk-1",
            Sdk::Python2 => "python-sdk-2",
            Sdk::Python2Legacy => "python-sdk-2-legacy",
            Sdk::TypeScript => "typescript-sdk",
        }
    }

    fn driver_command(self) -> Command {
        match self {
            Sdk::Python => {
                let mut cmd = command(python());
                cmd.arg(tests_dir().join("python/fault_client.py"));
                cmd
            }
            Sdk::Python2 | Sdk::Python2Legacy => {
                let mut cmd = command(python2());
                cmd.arg(tests_dir().join("python/fault_client.py"));
                if self == Sdk::Python2Legacy {
                    cmd.args(["--sdk-mode", "legacy"]);
                }
                cmd
            }
            Sdk::TypeScript => {
                let dir = node_project();
                let mut cmd = command("node");
                cmd.arg(dir.join("fault_client.mjs")).current_dir(dir);
                cmd
            }
        }
    }
}

/// What the drivers' clients do once told `go`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `counter` in a loop; a new session after an error.
    Loop,
    /// One `long_task` with a progress callback.
    Long,
    /// `ping` in a loop.
    Ping,
}

impl Mode {
    fn arg(self) -> &'static str {
        match self {
            Mode::Loop => "loop",
            Mode::Long => "long",
            Mode::Ping => "ping",
        }
    }
}

/// Now, in the drivers' unit: Unix time in milliseconds.
pub fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// A script of the tests' (a driver of SDK clients) running, and what it
/// printed so far: one JSON object a line on stdout (its events), the rest
/// kept as the tail of its stderr. Commands go to its stdin, a line each.
pub struct Script {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub events: Arc<Mutex<Vec<Value>>>,
    pub stderr: Arc<Mutex<VecDeque<String>>>,
}

/// One SDK's driver process.
struct Driver {
    sdk: Sdk,
    script: Script,
}

impl std::ops::Deref for Driver {
    type Target = Script;
    fn deref(&self) -> &Script {
        &self.script
    }
}

impl std::ops::DerefMut for Driver {
    fn deref_mut(&mut self) -> &mut Script {
        &mut self.script
    }
}

/// Lines of a driver's stderr kept for a failure's message.
const STDERR_TAIL: usize = 60;

impl Driver {
    fn spawn(sdk: Sdk, mode: Mode, url: &str, clients: usize, opts: &[(&str, String)]) -> Driver {
        let mut cmd = sdk.driver_command();
        cmd.arg(mode.arg())
            .arg(url)
            .arg("--clients")
            .arg(clients.to_string());
        for (k, v) in opts {
            cmd.arg(format!("--{k}")).arg(v);
        }
        Driver {
            sdk,
            script: Script::spawn(cmd, &format!("the {} driver", sdk.name())),
        }
    }
}

impl Script {
    /// Starts `cmd` (`what` names it in a failure), its stdio piped.
    pub fn spawn(mut cmd: Command, what: &str) -> Script {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{what} could not be started: {e}"));
        let events = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        tokio::spawn({
            let events = events.clone();
            let stderr = stderr.clone();
            async move {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    match serde_json::from_str::<Value>(&line) {
                        Ok(v) => events.lock().expect("events").push(v),
                        Err(_) => keep_tail(&stderr, format!("(stdout) {line}")),
                    }
                }
            }
        });
        tokio::spawn({
            let stderr = stderr.clone();
            async move {
                let mut lines = BufReader::new(err).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    keep_tail(&stderr, line);
                }
            }
        });
        Script {
            stdin: child.stdin.take(),
            child,
            events,
            stderr,
        }
    }

    pub fn has(&self, event: &str) -> bool {
        self.events
            .lock()
            .expect("events")
            .iter()
            .any(|e| e["event"] == event)
    }

    /// The events named `event` so far.
    pub fn of(&self, event: &str) -> Vec<Value> {
        self.events
            .lock()
            .expect("events")
            .iter()
            .filter(|e| e["event"] == event)
            .cloned()
            .collect()
    }

    /// Every event and the tail of stderr, for a failure's message.
    pub fn report(&self) -> String {
        let events = self.events.lock().expect("events");
        let stderr = self.stderr.lock().expect("stderr");
        let mut out = String::from("events:\n");
        for e in events.iter() {
            let _ = writeln!(out, "{e}");
        }
        out.push_str("stderr:\n");
        for line in stderr.iter() {
            let _ = writeln!(out, "{line}");
        }
        out
    }

    pub async fn command(&mut self, line: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            // A driver that died already shows in its events and stderr.
            let _ = stdin.write_all(format!("{line}\n").as_bytes()).await;
            let _ = stdin.flush().await;
        }
    }
}

fn keep_tail(tail: &Mutex<VecDeque<String>>, line: String) {
    let mut tail = tail.lock().expect("stderr");
    if tail.len() == STDERR_TAIL {
        tail.pop_front();
    }
    tail.push_back(line);
}

/// Several SDK drivers, each with its clients, against one endpoint.
pub struct Fleet {
    drivers: Vec<Driver>,
}

impl Fleet {
    /// Starts one driver per SDK of `sdks`, each with `clients` clients in
    /// `mode` against `url` (`opts`: the drivers' `--name value` options),
    /// and waits until every client has opened its session and made its
    /// first call (within [`READY`]).
    pub async fn start(
        sdks: &[Sdk],
        mode: Mode,
        url: &str,
        clients: usize,
        opts: &[(&str, String)],
    ) -> Fleet {
        let drivers = sdks
            .iter()
            .map(|&sdk| Driver::spawn(sdk, mode, url, clients, opts))
            .collect();
        let fleet = Fleet { drivers };
        fleet
            .wait("every client's first session and call", READY, |f| {
                f.drivers.iter().all(|d| d.has("ready"))
            })
            .await;
        fleet
    }

    /// Sends `line` to every driver.
    pub async fn command(&mut self, line: &str) {
        for d in &mut self.drivers {
            d.command(line).await;
        }
    }

    /// Polls `cond` every 20 ms; panics after `limit` with `what` and what
    /// every driver said.
    pub async fn wait(&self, what: &str, limit: Duration, cond: impl Fn(&Fleet) -> bool) {
        let polled = tokio::time::timeout(limit, async {
            while !cond(self) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        if polled.is_err() {
            panic!(
                "timed out after {limit:?} waiting for {what}\n{}",
                self.report()
            );
        }
    }

    /// Tells every driver to stop, and waits for each to say `done` and
    /// exit (within [`STOP`]).
    pub async fn stop(&mut self) {
        self.command("stop").await;
        self.wait("every driver to close its sessions", STOP, |f| {
            f.drivers.iter().all(|d| d.has("done"))
        })
        .await;
        for d in &mut self.drivers {
            d.stdin = None;
            let exited = tokio::time::timeout(STOP, d.child.wait()).await;
            if !matches!(exited, Ok(Ok(s)) if s.success()) {
                panic!(
                    "the {} driver did not exit cleanly: {exited:?}\n{}",
                    d.sdk.name(),
                    self.report()
                );
            }
        }
    }

    /// Every client's log so far, in the order (SDK, client).
    pub fn clients(&self) -> Vec<ClientLog> {
        let mut out = Vec::new();
        for d in &self.drivers {
            let events = d.events.lock().expect("events");
            let mut by_client: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
            for e in events.iter() {
                if let Some(i) = e["client"].as_u64() {
                    by_client.entry(i).or_default().push(e.clone());
                }
            }
            for (index, events) in by_client {
                out.push(ClientLog {
                    sdk: d.sdk,
                    index,
                    events,
                });
            }
        }
        out
    }

    /// The events of no client (`fresh`, `fresh_error`, `ready`, `done`,
    /// `timeout`), with the SDK that printed them.
    pub fn driver_events(&self) -> Vec<(Sdk, Value)> {
        let mut out = Vec::new();
        for d in &self.drivers {
            for e in d.events.lock().expect("events").iter() {
                if e["client"].is_null() {
                    out.push((d.sdk, e.clone()));
                }
            }
        }
        out
    }

    /// The versions the drivers reported (`ready`), e.g. `python-sdk-2 2.3.0`.
    pub fn versions(&self) -> String {
        self.driver_events()
            .iter()
            .filter(|(_, e)| e["event"] == "ready")
            .map(|(sdk, e)| format!("{} {}", sdk.name(), e["version"].as_str().unwrap_or("?")))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Every client's timeline (times relative to now) and the tail of
    /// every driver's stderr: the evidence of a failure.
    pub fn report(&self) -> String {
        self.report_since(now_ms(), "now")
    }

    /// Prints [`Fleet::report_since`] when `TETHER_SDK_REPORT` is set, to
    /// see what the clients felt in a passing run too (`--no-capture`).
    pub fn print_report_if_asked(&self, t0: f64, label: &str) {
        if std::env::var_os("TETHER_SDK_REPORT").is_some() {
            eprintln!("{}", self.report_since(t0, label));
        }
    }

    /// As [`Fleet::report`], with times relative to `t0` (named `label`).
    pub fn report_since(&self, t0: f64, label: &str) -> String {
        let mut out = format!("--- what the SDK clients saw (ms since {label}) ---\n");
        for c in self.clients() {
            let _ = writeln!(out, "{}", timeline(&c, t0));
        }
        for (sdk, e) in self.driver_events() {
            let _ = writeln!(out, "{} {}", sdk.name(), describe_event(&e, t0));
        }
        for d in &self.drivers {
            let tail = d.stderr.lock().expect("stderr");
            if !tail.is_empty() {
                let _ = writeln!(out, "--- {} driver stderr (last lines) ---", d.sdk.name());
                for line in tail.iter() {
                    let _ = writeln!(out, "{line}");
                }
            }
        }
        out
    }
}

/// Everything one SDK client reported, in order.
#[derive(Debug, Clone)]
pub struct ClientLog {
    pub sdk: Sdk,
    pub index: u64,
    pub events: Vec<Value>,
}

impl ClientLog {
    /// `typescript-sdk#2`.
    pub fn name(&self) -> String {
        format!("{}#{}", self.sdk.name(), self.index)
    }

    /// The replica that answered its first call: where it was placed.
    pub fn placed_on(&self) -> Option<&str> {
        self.events
            .iter()
            .find(|e| e["event"] == "ok" && e["replica"].is_string())
            .and_then(|e| e["replica"].as_str())
    }

    /// Its events of kind `event`.
    pub fn of<'a>(&'a self, event: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.events.iter().filter(move |e| e["event"] == event)
    }

    /// Failures of its calls and sessions (`error`, `session_error`).
    pub fn failures(&self) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["event"] == "error" || e["event"] == "session_error")
            .collect()
    }
}

/// The time of an event (ms, Unix).
pub fn t(e: &Value) -> f64 {
    e["t"].as_f64().unwrap_or(f64::NAN)
}

/// A client's timeline on one line, successive `ok`s folded into one entry
/// (`ok x12 r2.1a2b3c count 3..14`).
pub fn timeline(c: &ClientLog, t0: f64) -> String {
    let mut out = format!("{} (placed on {}):", c.name(), c.placed_on().unwrap_or("-"));
    let mut i = 0;
    while i < c.events.len() {
        let e = &c.events[i];
        if e["event"] == "ok" {
            let mut j = i;
            while j + 1 < c.events.len()
                && c.events[j + 1]["event"] == "ok"
                && c.events[j + 1]["session"] == e["session"]
            {
                j += 1;
            }
            let last = &c.events[j];
            let _ = write!(
                out,
                " | {:+.0}..{:+.0} ok x{} {} {}",
                t(e) - t0,
                t(last) - t0,
                j - i + 1,
                e["op"].as_str().unwrap_or(""),
                short_session(e),
            );
            if let (Some(a), Some(b)) = (e["count"].as_u64(), last["count"].as_u64()) {
                let _ = write!(out, " count {a}..{b}");
            }
            i = j + 1;
        } else if e["event"] == "progress" {
            let mut j = i;
            while j + 1 < c.events.len() && c.events[j + 1]["event"] == "progress" {
                j += 1;
            }
            let values: Vec<String> = c.events[i..=j]
                .iter()
                .map(|p| format!("{}@{:+.0}", p["progress"], t(p) - t0))
                .collect();
            let _ = write!(out, " | progress {}", values.join(" "));
            i = j + 1;
        } else {
            let _ = write!(out, " | {}", describe_event(e, t0));
            i += 1;
        }
    }
    out
}

fn short_session(e: &Value) -> String {
    let s = e["session"].as_str().unwrap_or("");
    s.get(..s.find('.').map_or(0, |d| (d + 7).min(s.len())))
        .unwrap_or(s)
        .to_owned()
}

fn describe_event(e: &Value, t0: f64) -> String {
    let mut rest = e.clone();
    if let Some(m) = rest.as_object_mut() {
        for k in ["event", "t", "client"] {
            m.remove(k);
        }
    }
    format!(
        "{:+.0} {} {}",
        t(e) - t0,
        e["event"].as_str().unwrap_or("?"),
        rest
    )
}

/// The route to hurt: the one where every SDK of `clients` has a client and
/// (with `others_too`) also has one elsewhere, preferring the route with
/// the most clients. Panics, with the placements, if no route covers every
/// SDK: the scenario could not show what each client feels.
pub fn pick_route(clients: &[ClientLog], routes: &[String], others_too: bool) -> String {
    let placements: Vec<(Sdk, &str)> = clients
        .iter()
        .filter_map(|c| c.placed_on().map(|r| (c.sdk, r)))
        .collect();
    let sdks: Vec<Sdk> = Sdk::ALL
        .into_iter()
        .filter(|s| clients.iter().any(|c| c.sdk == *s))
        .collect();
    let covers = |route: &str| {
        sdks.iter().all(|s| {
            let here = placements.iter().any(|(p, r)| p == s && *r == route);
            let elsewhere = placements.iter().any(|(p, r)| p == s && *r != route);
            here && (elsewhere || !others_too)
        })
    };
    let mut best: Option<(&String, usize)> = None;
    for route in routes {
        let n = placements.iter().filter(|(_, r)| r == route).count();
        if covers(route) && best.is_none_or(|(_, m)| n > m) {
            best = Some((route, n));
        }
    }
    let Some((route, _)) = best else {
        panic!(
            "no replica has a client of every SDK{}: placements {placements:?}",
            if others_too {
                " (with clients of each elsewhere too)"
            } else {
                ""
            }
        );
    };
    route.clone()
}
