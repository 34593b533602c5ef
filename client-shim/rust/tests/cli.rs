//! `tether-client`, the built binary, against a real replica: a long call
//! shows its progress and its log messages on stderr as they arrive (not
//! all at the end), in both eras, with the result alone on stdout as JSON;
//! `--mode` picks the era.

mod common;

use clap::Parser;
use common::*;
use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A replica with the bundled catalog; its MCP URL.
async fn start(flags: &[&str]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let mut args = vec!["tether-server", "--listen", &addr, "--route", "c1"];
    args.extend_from_slice(flags);
    let config = tether_server::Config::parse_from(args);
    let _ = tether_server::spawn(listener, config, tether_server::catalog::default_server());
    format!("http://{addr}/mcp")
}

/// What one run printed: stderr lines with when each came (from the
/// start), stdout, and how long the whole run took.
struct Run {
    stderr: Vec<(Duration, String)>,
    stdout: String,
    took: Duration,
    ok: bool,
}

impl Run {
    fn lines(&self, prefix: &str) -> Vec<&(Duration, String)> {
        self.stderr
            .iter()
            .filter(|(_, l)| l.starts_with(prefix))
            .collect()
    }
}

async fn tether_client(args: &[&str]) -> Run {
    let start = Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tether-client"))
        .args(args)
        .env_remove("TETHER_URL")
        .env_remove("TETHER_CLIENT_MODE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("tether-client runs");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let out = tokio::spawn(async move {
        let mut s = String::new();
        let mut r = BufReader::new(stdout);
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut r, &mut s).await;
        s
    });
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    within("tether-client's stderr", async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push((start.elapsed(), line));
        }
    })
    .await;
    let status = within("tether-client to exit", child.wait())
        .await
        .expect("exit status");
    Run {
        stderr: seen,
        stdout: within("stdout", out).await.expect("stdout read"),
        took: start.elapsed(),
        ok: status.success(),
    }
}

/// `call long_task` of 4 steps of 300 ms: the first progress line and the
/// first log line come while the call runs, the result on stdout.
async fn long_call_shows_progress_and_logs_as_they_come(url: &str, mode: &str, era: &str) {
    let run = tether_client(&[
        "--url",
        url,
        "--mode",
        mode,
        "--log-level",
        "debug",
        "call",
        "long_task",
        r#"{"steps":4,"step_ms":300}"#,
    ])
    .await;
    let all: Vec<_> = run.stderr.iter().map(|(_, l)| l.as_str()).collect();
    assert!(run.ok, "{all:#?}");
    assert!(all[0].contains(era), "{all:#?}");
    let progress = run.lines("# progress ");
    let texts: Vec<_> = progress.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(
        texts,
        [
            "# progress 1/4 step 1 of 4",
            "# progress 2/4 step 2 of 4",
            "# progress 3/4 step 3 of 4",
            "# progress 4/4 step 4 of 4"
        ]
    );
    let logs = run.lines("# log debug [long_task] ");
    assert_eq!(logs.len(), 4, "{all:#?}");
    assert_eq!(logs[0].1, r#"# log debug [long_task] {"step":1}"#);
    // The first step is reported while three more (900 ms) remain.
    for first in [progress[0].0, logs[0].0] {
        assert!(
            first + Duration::from_millis(600) < run.took,
            "printed at {first:?} of {:?}: {all:#?}",
            run.took
        );
    }
    let result: Value = serde_json::from_str(&run.stdout).expect("stdout is the JSON result");
    assert_eq!(result["content"][0]["text"], "finished 4 steps");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_call_shows_progress_and_logs_as_they_arrive_in_2026_07_28() {
    let url = start(&[]).await;
    long_call_shows_progress_and_logs_as_they_come(&url, "auto", "MCP 2026-07-28, no session")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_call_shows_progress_and_logs_as_they_arrive_in_a_session() {
    let url = start(&[]).await;
    long_call_shows_progress_and_logs_as_they_come(&url, "legacy", "# session c1.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_2026_07_28_fails_clearly_against_a_server_of_sessions_only() {
    let url = start(&["--serve-2026-07-28=false"]).await;
    let run = tether_client(&["--url", &url, "--mode", "2026-07-28", "ping"]).await;
    assert!(!run.ok);
    let all: Vec<_> = run.stderr.iter().map(|(_, l)| l.as_str()).collect();
    assert!(
        all.iter()
            .any(|l| l.starts_with("error: the server does not speak MCP 2026-07-28")),
        "{all:#?}"
    );
    let auto = tether_client(&["--url", &url, "ping"]).await;
    assert!(auto.ok);
    assert!(auto.stdout.starts_with("ping 1: "), "{}", auto.stdout);
    assert!(auto.stderr[0].1.starts_with("# session c1."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_becomes_a_task_is_answered_and_followed() {
    let url = start(&[]).await;
    let run = tether_client(&[
        "--url",
        &url,
        "--elicit-accept",
        r#"{"confirm":true}"#,
        "call",
        "confirm_delete",
        r#"{"filename":"notes.txt"}"#,
    ])
    .await;
    let all: Vec<_> = run.stderr.iter().map(|(_, l)| l.as_str()).collect();
    assert!(run.ok, "{all:#?}");
    assert!(
        all.iter()
            .any(|l| l.starts_with("# elicitation request: ") && l.contains("Delete notes.txt?")),
        "{all:#?}"
    );
    let result: Value = serde_json::from_str(&run.stdout).expect("JSON result");
    assert_eq!(result["content"][0]["text"], "Deleted notes.txt");
}
