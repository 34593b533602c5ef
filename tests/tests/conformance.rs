//! The official MCP conformance suite (`@modelcontextprotocol/conformance`,
//! pinned in `tests/conformance/package-lock.json`) against one replica
//! serving the bundled catalog, in both answer modes.
//!
//! `tests/run.sh` installs the suite with `npm ci` before the tests run.

use std::path::{Path, PathBuf};
use std::time::Duration;
use tether_server::{Config, catalog};

/// Every check of `--suite all` in 0.1.13.
const ALL_CHECKS: usize = 47;
/// In JSON-response mode four checks of the SSE scenarios report INFO
/// rather than SUCCESS: their requests raise no message before the result,
/// so the replica rightly answers with JSON and there is no stream to
/// examine: `server-sse-polling`'s three (priming event, retry field,
/// resumption) and `server-sse-streams-functional`. None fails.
const JSON_MODE_CHECKS: usize = 43;

fn suite_bin() -> PathBuf {
    let bin =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/node_modules/.bin/conformance");
    assert!(
        bin.exists(),
        "{} is missing: run `npm ci` in tests/conformance (tests/run.sh does)",
        bin.display()
    );
    bin
}

async fn run_suite(json_response: bool, expected_successes: usize) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = Config::local();
    config.json_response = json_response;
    let (replica, _task) = tether_server::spawn(listener, config, catalog::default_server());

    let out = tempdir();
    let run = tokio::process::Command::new(suite_bin())
        .args(["server", "--url", &format!("http://127.0.0.1:{port}/mcp")])
        .args(["--suite", "all", "-o"])
        .arg(&out)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the conformance suite finished within 3 minutes")
        .expect("the conformance suite started");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));

    // Every check's status, from the JSON files the suite writes: the
    // summary line does not show warnings.
    let mut passed = 0;
    let mut problems = Vec::new();
    for dir in std::fs::read_dir(&out).unwrap() {
        let dir = dir.unwrap().path();
        let checks: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("checks.json")).unwrap()).unwrap();
        for c in checks.as_array().unwrap() {
            match c["status"].as_str() {
                Some("SUCCESS") => passed += 1,
                Some("FAILURE" | "WARNING") => problems.push(format!(
                    "{}: {} {} {}",
                    dir.file_name().unwrap().to_string_lossy(),
                    c["id"],
                    c["status"],
                    c["errorMessage"]
                )),
                _ => {}
            }
        }
    }
    replica.shutdown();
    let _ = std::fs::remove_dir_all(&out);
    assert!(
        problems.is_empty(),
        "failed or warned checks:\n{}",
        problems.join("\n")
    );
    assert!(
        output.status.success(),
        "the suite exited with {}",
        output.status
    );
    assert_eq!(passed, expected_successes, "checks passed");
    assert!(stdout.contains(&format!("Total: {expected_successes} passed, 0 failed")));
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tether-conformance-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_with_sse_responses() {
    run_suite(false, ALL_CHECKS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_with_json_responses() {
    run_suite(true, JSON_MODE_CHECKS).await;
}
