//! The official MCP conformance suites (`@modelcontextprotocol/conformance`,
//! pinned in `tests/conformance/package-lock.json`) against one replica
//! serving the bundled catalog. The runner is shared with the cluster runs
//! (`common::suite`), which also names every check and its expected verdict.
//!
//! - 0.1.13 `--suite all`, in both answer modes, with the default flags:
//!   all 47 checks succeed with SSE answers; with JSON answers four SSE
//!   checks do not apply, each named there with the reason
//!   (`JSON_MODE_VERDICTS`), and any other difference fails.
//! - 0.2.0-alpha.12 `--requirements 2025-11-25`, in both answer modes, on a
//!   replica that serves 2026-07-28 too (`--serve-2026-07-28`): the session
//!   revisions must not notice the new era. Every check pinned, none fails.
//! - 0.2.0-alpha.12 `--requirements 2026-07-28` on that replica, scored
//!   and unscored scenarios alike (the tasks extension, the pending header
//!   and JSON Schema scenarios): every check pinned, none fails.
//!
//! `tests/run.sh` installs the suites with `npm ci` before the tests run.

mod common;

use common::suite::{Answers, Suite, assert_verdicts};
use common::{TestReplica, start_tweaked};

/// A replica answering in `answers` mode; `new_era`: with
/// `--serve-2026-07-28`.
async fn replica(answers: Answers, new_era: bool) -> TestReplica {
    start_tweaked(|c| {
        c.json_response = answers == Answers::Json;
        c.serve_2026_07_28 = new_era;
    })
    .await
}

async fn verdicts(suite: Suite, answers: Answers, new_era: bool) {
    let r = replica(answers, new_era).await;
    // 127.0.0.1, not localhost: the DNS-rebinding scenario rewrites Host.
    assert_verdicts(&r.url, suite, answers).await;
    r.replica.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_0113_passes_with_sse_responses() {
    verdicts(Suite::Legacy0113, Answers::Sse, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_0113_gives_the_expected_verdicts_with_json_responses() {
    verdicts(Suite::Legacy0113, Answers::Json, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requirements_2025_11_25_pass_with_sse_responses() {
    verdicts(Suite::Requirements("2025-11-25"), Answers::Sse, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requirements_2025_11_25_give_the_expected_verdicts_with_json_responses() {
    verdicts(Suite::Requirements("2025-11-25"), Answers::Json, true).await;
}

/// The referee of issue 12 on one replica. The answer mode of sessions
/// does not change how this revision is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requirements_2026_07_28_pass() {
    verdicts(Suite::Requirements("2026-07-28"), Answers::Sse, true).await;
}
