//! The function under `cargo lambda watch` (PyPI `cargo-lambda`, pinned in
//! `tests/run.sh`), the local emulator of Lambda and its Function URLs,
//! with the official MCP Python SDK's client (`tests/.venv`, default
//! options) through it: `initialize` without a session, the tool list, and
//! a `long_task` whose progress the client hears before the result.
//!
//! The emulator runs with `--only-lambda-apis` (it starts no `cargo run`
//! of its own, which would build the crate again inside the test run); the
//! built binary is started against its Runtime API.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const WAIT: Duration = Duration::from_secs(30);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `$var`, else `tests/.venv/bin/<name>`, else `name` on PATH.
fn tool(var: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var) {
        return p.into();
    }
    let venv = root().join("tests/.venv/bin").join(name);
    if venv.exists() { venv } else { name.into() }
}

fn missing(what: &str, e: std::io::Error) -> ! {
    panic!(
        "cannot run {what} ({e}). tests/run.sh installs it into tests/.venv: \
         tests/.venv/bin/pip install -r tests/requirements.txt && \
         tests/.venv/bin/pip install --no-deps cargo-lambda==1.9.2"
    )
}

/// A free loopback port (the emulator takes no port 0).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Emulator {
    child: Child,
    runtime_api: String,
    port: u16,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Starts `cargo lambda watch --only-lambda-apis` on a free port and reads
/// from its log where the Runtime API is; a few tries, in case another
/// process took the port first.
async fn start_emulator() -> Emulator {
    let exe = tool("TETHER_CARGO_LAMBDA", "cargo-lambda");
    for _ in 0..3 {
        let port = free_port();
        let mut child = Command::new(&exe)
            .args(["lambda", "watch", "--only-lambda-apis", "--color", "never"])
            .args(["-A", "127.0.0.1", "-P", &port.to_string()])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| missing("cargo-lambda", e));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    eprintln!("cargo-lambda: {line}");
                    let _ = tx.send(line);
                }
            });
        }
        drop(tx);
        let mut runtime_api = None;
        let started = tokio::time::timeout(WAIT, async {
            while let Some(line) = rx.recv().await {
                if let Some(v) = line.split("AWS_LAMBDA_RUNTIME_API=").nth(1) {
                    runtime_api = Some(v.trim().to_owned());
                }
                if line.contains("starting Runtime server") {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false);
        match (started, runtime_api) {
            (true, Some(runtime_api)) => {
                // Keep draining its output so that it never blocks on a pipe.
                tokio::spawn(async move { while rx.recv().await.is_some() {} });
                return Emulator {
                    child,
                    runtime_api,
                    port,
                };
            }
            _ => {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
    }
    panic!("cargo lambda watch did not start");
}

#[tokio::test]
async fn the_python_sdk_through_cargo_lambda_watch() {
    let emulator = start_emulator().await;
    // The emulator's own function name for a runtime it did not start.
    let mut function = Command::new(env!("CARGO_BIN_EXE_tether-lambda"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", &emulator.runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_REGION", "us-east-1")
        // The emulator passes the Host the client sent: loopback here.
        .env("TETHER_ALLOWED_HOSTS", "127.0.0.1")
        .env(
            "TETHER_MRTR_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start tether-lambda");
    let url = format!("http://127.0.0.1:{}/lambda-url/_/mcp", emulator.port);
    let python = tool("TETHER_PYTHON", "python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/sdk_client.py");
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        Command::new(&python)
            .arg(&script)
            .arg(&url)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the SDK client did not finish")
    .unwrap_or_else(|e| missing("the Python SDK", e));
    let _ = function.start_kill();
    assert!(
        out.status.success(),
        "the SDK client failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).expect("the client's JSON");
    assert_eq!(seen["protocolVersion"], "2025-11-25", "{seen}");
    assert_eq!(seen["sessionId"], Value::Null, "no session: {seen}");
    assert!(
        seen["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|n| n == "long_task")),
        "{seen}"
    );
    assert_eq!(seen["result"][0], "finished 3 steps", "{seen}");
    assert_eq!(seen["isError"], false);
    let progress = seen["progress"].as_array().expect("progress");
    assert_eq!(progress.len(), 3, "every step's progress: {seen}");
    // Heard while the tool ran: the first step's progress one step (300 ms)
    // or more before the result, of the two steps it is ahead at the source.
    let first = progress[0]["at"].as_f64().unwrap();
    let result = seen["resultAt"].as_f64().unwrap();
    assert!(
        result - first >= 0.3,
        "progress came {:.3} s before the result: {seen}",
        result - first
    );
}
