//! The official MCP conformance suite (`@modelcontextprotocol/conformance`,
//! pinned in `tests/conformance/package-lock.json`), run against any MCP URL
//! and checked from the JSON files it writes.
//!
//! `tests/run.sh` installs the suite with `npm ci` before the tests run.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every check of `--suite all` in 0.1.13.
pub const ALL_CHECKS: usize = 47;
/// In JSON-response mode four checks of the SSE scenarios report INFO
/// rather than SUCCESS: their requests raise no message before the result,
/// so the replica rightly answers with JSON and there is no stream to
/// examine: `server-sse-polling`'s three (priming event, retry field,
/// resumption) and `server-sse-streams-functional`. None fails.
pub const JSON_MODE_CHECKS: usize = 43;

/// Bound on one run of the whole suite.
pub const SUITE_LIMIT: Duration = Duration::from_secs(180);

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

/// Runs `--suite all` against `url` and asserts that no check failed or
/// warned, that the suite exited successfully, and that exactly
/// `expected_successes` checks passed.
pub async fn assert_suite_passes(url: &str, expected_successes: usize) {
    let out = tempdir();
    let run = tokio::process::Command::new(suite_bin())
        .args(["server", "--url", url])
        .args(["--suite", "all", "-o"])
        .arg(&out)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(SUITE_LIMIT, run)
        .await
        .unwrap_or_else(|_| panic!("the conformance suite did not finish within {SUITE_LIMIT:?}"))
        .expect("the conformance suite started");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));

    // Every check's status, from the JSON files the suite writes: the
    // summary line does not show warnings.
    let mut passed = 0;
    let mut problems = Vec::new();
    for dir in std::fs::read_dir(&out).expect("the suite's output folder") {
        let dir = dir.expect("an output entry").path();
        let checks: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join("checks.json")).expect("checks.json of a scenario"),
        )
        .expect("checks.json is JSON");
        for c in checks.as_array().expect("checks.json is an array") {
            match c["status"].as_str() {
                Some("SUCCESS") => passed += 1,
                Some("FAILURE" | "WARNING") => problems.push(format!(
                    "{}: {} {} {}",
                    dir.file_name().unwrap_or_default().to_string_lossy(),
                    c["id"],
                    c["status"],
                    c["errorMessage"]
                )),
                _ => {}
            }
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    assert!(
        problems.is_empty(),
        "failed or warned checks against {url}:\n{}",
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
            .unwrap_or_default()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).expect("create the suite's output folder");
    dir
}
