//! The official MCP conformance suite (`@modelcontextprotocol/conformance`,
//! pinned in `tests/conformance/package-lock.json`), run against any MCP URL
//! and checked from the JSON files it writes.
//!
//! The outcome is pinned check by check, by name: every verdict the suite
//! gives must be the one expected for the answer mode, so that a check that
//! stops passing, one that appears, disappears or changes its status (a
//! new suite release too) fails the run, naming the check.
//!
//! `tests/run.sh` installs the suite with `npm ci` before the tests run.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every check of `--suite all` in 0.1.13, as `scenario/check`: all of
/// them succeed against a replica that answers with SSE.
pub const SSE_MODE_PASSES: [&str; 47] = [
    "completion-complete/completion-complete",
    "dns-rebinding-protection/localhost-host-rebinding-rejected",
    "dns-rebinding-protection/localhost-host-valid-accepted",
    "elicitation-sep1034-defaults/elicitation-sep1034-string-default",
    "elicitation-sep1034-defaults/elicitation-sep1034-integer-default",
    "elicitation-sep1034-defaults/elicitation-sep1034-number-default",
    "elicitation-sep1034-defaults/elicitation-sep1034-enum-default",
    "elicitation-sep1034-defaults/elicitation-sep1034-boolean-default",
    "elicitation-sep1330-enums/elicitation-sep1330-untitled-single",
    "elicitation-sep1330-enums/elicitation-sep1330-titled-single",
    "elicitation-sep1330-enums/elicitation-sep1330-legacy-enumnames",
    "elicitation-sep1330-enums/elicitation-sep1330-untitled-multi",
    "elicitation-sep1330-enums/elicitation-sep1330-titled-multi",
    "json-schema-2020-12/json-schema-2020-12-tool-found",
    "json-schema-2020-12/json-schema-2020-12-$schema",
    "json-schema-2020-12/json-schema-2020-12-$defs",
    "json-schema-2020-12/json-schema-2020-12-additionalProperties",
    "logging-set-level/logging-set-level",
    "ping/ping",
    "prompts-get-embedded-resource/prompts-get-embedded-resource",
    "prompts-get-simple/prompts-get-simple",
    "prompts-get-with-args/prompts-get-with-args",
    "prompts-get-with-image/prompts-get-with-image",
    "prompts-list/prompts-list",
    "resources-list/resources-list",
    "resources-read-binary/resources-read-binary",
    "resources-read-text/resources-read-text",
    "resources-subscribe/resources-subscribe",
    "resources-templates-read/resources-templates-read",
    "resources-unsubscribe/resources-unsubscribe",
    "server-initialize/server-initialize",
    "server-sse-multiple-streams/server-accepts-multiple-post-streams",
    "server-sse-multiple-streams/server-sse-streams-functional",
    "server-sse-polling/server-sse-priming-event",
    "server-sse-polling/server-sse-retry-field",
    "server-sse-polling/server-sse-disconnect-resume",
    "tools-call-audio/tools-call-audio",
    "tools-call-elicitation/tools-call-elicitation",
    "tools-call-embedded-resource/tools-call-embedded-resource",
    "tools-call-error/tools-call-error",
    "tools-call-image/tools-call-image",
    "tools-call-mixed-content/tools-call-mixed-content",
    "tools-call-sampling/tools-call-sampling",
    "tools-call-simple-text/tools-call-simple-text",
    "tools-call-with-logging/tools-call-with-logging",
    "tools-call-with-progress/tools-call-with-progress",
    "tools-list/tools-list",
];

/// Every check of `--suite all` in 0.1.13.
pub const ALL_CHECKS: usize = SSE_MODE_PASSES.len();

/// A check whose verdict differs in JSON-response mode, what the suite
/// reports instead (`None`: the check is not run) and why that is right.
pub struct JsonModeVerdict {
    pub check: &'static str,
    pub status: Option<&'static str>,
    pub why: &'static str,
}

/// The checks that do not pass in JSON-response mode, and the one that is
/// reported there only. None is a failure: their requests raise no message
/// before the result, so the replica rightly answers with plain JSON
/// (transports: a server MAY answer a request with `application/json`),
/// and there is no stream for the SSE checks to examine. The scenario
/// sources (0.1.13) say so in the details they attach, which
/// [`assert_suite_outcome`] checks too.
pub const JSON_MODE_VERDICTS: [JsonModeVerdict; 5] = [
    JsonModeVerdict {
        check: "server-sse-polling/server-sse-content-type",
        status: Some("INFO"),
        why: "the POST of `test_reconnection` is answered with JSON (its result comes \
              with nothing before it); the scenario notes that its SSE checks do not \
              apply (details.contentType application/json) and stops there",
    },
    JsonModeVerdict {
        check: "server-sse-polling/server-sse-priming-event",
        status: None,
        why: "not run: no SSE stream, so no priming event to look for",
    },
    JsonModeVerdict {
        check: "server-sse-polling/server-sse-retry-field",
        status: None,
        why: "not run: no SSE stream, so no `retry` field to look for",
    },
    JsonModeVerdict {
        check: "server-sse-polling/server-sse-disconnect-resume",
        status: None,
        why: "not run: a JSON answer carries the result at once; there is no stream \
              to close mid-call and resume",
    },
    JsonModeVerdict {
        check: "server-sse-multiple-streams/server-sse-streams-functional",
        status: Some("INFO"),
        why: "its three concurrent `tools/list` are answered with JSON \
              (details.numSseStreams 0): SSE streams are optional",
    },
];

/// How the replica under test answers a request that raises no message
/// before its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answers {
    /// With an SSE stream (the default).
    Sse,
    /// With plain JSON (`--json-response`).
    Json,
}

/// Checks that only record the exchange (requests sent, responses and
/// events received): always `INFO`, as many as the exchange had. They are
/// no verdict, unless the suite gives them another status (a tool error
/// seen on a stream is `incoming-sse-event` FAILURE).
const TRACE_CHECKS: [&str; 4] = [
    "outgoing-request",
    "incoming-response",
    "incoming-sse-event",
    "stream-closed",
];

/// Every verdict the suite must give, `scenario/check` -> status.
pub fn expected_verdicts(answers: Answers) -> BTreeMap<String, &'static str> {
    let mut expected: BTreeMap<String, &'static str> = SSE_MODE_PASSES
        .iter()
        .map(|c| ((*c).to_owned(), "SUCCESS"))
        .collect();
    if answers == Answers::Json {
        for v in &JSON_MODE_VERDICTS {
            match v.status {
                Some(status) => expected.insert(v.check.to_owned(), status),
                None => expected.remove(v.check),
            };
        }
    }
    expected
}

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

/// Runs `--suite all` against `url` and asserts that every check of the
/// suite succeeds (`expected_successes` must be [`ALL_CHECKS`]), as
/// [`assert_suite_outcome`] with [`Answers::Sse`] does.
pub async fn assert_suite_passes(url: &str, expected_successes: usize) {
    assert_eq!(
        expected_successes, ALL_CHECKS,
        "every check passes in SSE mode; JSON mode: assert_suite_outcome(url, Answers::Json)"
    );
    assert_suite_outcome(url, Answers::Sse).await;
}

/// One verdict as the suite wrote it.
struct Verdict {
    status: String,
    details: Value,
    error: Value,
}

/// Runs `--suite all` against `url` and asserts that its verdicts are
/// exactly [`expected_verdicts`] for `answers`, check by check, and that
/// the suite exited successfully.
pub async fn assert_suite_outcome(url: &str, answers: Answers) {
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

    // Every check's status, from the JSON files the suite writes (one
    // folder per scenario, `server-<scenario>-<timestamp>`): the summary
    // line does not show warnings.
    let mut verdicts: BTreeMap<String, Verdict> = BTreeMap::new();
    let mut problems = Vec::new();
    for dir in std::fs::read_dir(&out).expect("the suite's output folder") {
        let dir = dir.expect("an output entry").path();
        let scenario = scenario_of(&dir);
        let checks: Value = serde_json::from_slice(
            &std::fs::read(dir.join("checks.json")).expect("checks.json of a scenario"),
        )
        .expect("checks.json is JSON");
        for c in checks.as_array().expect("checks.json is an array") {
            let id = c["id"].as_str().expect("a check id");
            let status = c["status"].as_str().expect("a check status").to_owned();
            if TRACE_CHECKS.contains(&id) && status == "INFO" {
                continue;
            }
            let name = format!("{scenario}/{id}");
            let verdict = Verdict {
                status,
                details: c["details"].clone(),
                error: c["errorMessage"].clone(),
            };
            if let Some(old) = verdicts.insert(name.clone(), verdict) {
                problems.push(format!("{name}: reported twice (first {})", old.status));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&out);

    let expected = expected_verdicts(answers);
    for (name, want) in &expected {
        match verdicts.get(name) {
            None => problems.push(format!("{name}: expected {want}, not reported")),
            Some(v) if v.status != *want => problems.push(format!(
                "{name}: expected {want}, got {} {} {}",
                v.status, v.error, v.details
            )),
            Some(_) => {}
        }
    }
    for (name, v) in &verdicts {
        if !expected.contains_key(name) {
            problems.push(format!(
                "{name}: not expected, got {} {} {}",
                v.status, v.error, v.details
            ));
        }
    }
    // In JSON mode, the INFO verdicts must say that the answer was JSON.
    if answers == Answers::Json {
        let details = |name: &str| verdicts.get(name).map(|v| v.details.clone());
        if let Some(d) = details("server-sse-polling/server-sse-content-type")
            && !d["contentType"]
                .as_str()
                .is_some_and(|ct| ct.starts_with("application/json"))
        {
            problems.push(format!(
                "server-sse-polling/server-sse-content-type: not a JSON answer: {d}"
            ));
        }
        if let Some(d) = details("server-sse-multiple-streams/server-sse-streams-functional")
            && d["numSseStreams"] != 0
        {
            problems.push(format!(
                "server-sse-multiple-streams/server-sse-streams-functional: not JSON answers: {d}"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the conformance suite's verdicts against {url} ({answers:?} answers) are not the \
         expected ones:\n{}",
        problems.join("\n")
    );
    assert!(
        output.status.success(),
        "the suite exited with {}",
        output.status
    );
    let successes = expected.values().filter(|s| **s == "SUCCESS").count();
    assert!(
        stdout.contains(&format!("Total: {successes} passed, 0 failed")),
        "the suite's summary line"
    );
}

/// The scenario of an output folder, `server-<scenario>-<timestamp>`
/// (timestamp `2026-01-02T03-04-05-678Z`).
fn scenario_of(dir: &Path) -> String {
    let name = dir
        .file_name()
        .expect("a folder name")
        .to_string_lossy()
        .into_owned();
    const STAMP: usize = "-2026-01-02T03-04-05-678Z".len();
    let scenario = name
        .strip_prefix("server-")
        .and_then(|rest| rest.get(..rest.len().checked_sub(STAMP)?))
        .filter(|_| name.ends_with('Z') && name.as_bytes()[name.len() - STAMP] == b'-')
        .unwrap_or_else(|| panic!("unexpected output folder {name:?}"));
    scenario.to_owned()
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
