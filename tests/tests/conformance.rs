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
//! - 0.2.0-alpha.12 `--requirements 2026-07-28` on that replica: the ratchet
//!   of issue 12 (see [`requirements_2026_07_28_fail_exactly_as_listed`]).
//!
//! `tests/run.sh` installs the suites with `npm ci` before the tests run.

mod common;

use common::suite::{Answers, Suite, assert_failures_as_listed, assert_verdicts};
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

/// The referee of issue 12, as a ratchet: `--requirements 2026-07-28`
/// runs whole (scored and unscored scenarios) against a replica with
/// `--serve-2026-07-28`, and the checks that FAIL must be exactly those
/// listed in `tests/conformance/expected-failures-2026-07-28.txt`. It fails
/// when a check fails that is not listed, and when a listed check passes
/// ("now passing, remove from the list"), so the list can only shrink; the
/// issue is done when it is empty.
///
/// After a change that makes checks pass, regenerate the list:
/// `TETHER_UPDATE_EXPECTED_FAILURES=1 cargo nextest run -p tether-tests
/// --test conformance requirements_2026_07_28_fail_exactly_as_listed`.
///
/// One replica, SSE answers, for now: the same ratchet through the
/// balancers (`cluster_conformance.rs`) comes with the cluster step of the
/// plan (`docs/mcp-2026-07-28-plan.md`, step 8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requirements_2026_07_28_fail_exactly_as_listed() {
    let r = replica(Answers::Sse, true).await;
    assert_failures_as_listed(
        &r.url,
        "2026-07-28",
        "requirements_2026_07_28_fail_exactly_as_listed",
    )
    .await;
    r.replica.shutdown();
}
