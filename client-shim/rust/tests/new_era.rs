//! The MCP client speaking 2026-07-28 against real tether replicas: the
//! modes (auto adopts the new era where the replica serves it and starts a
//! session where it does not; legacy keeps a session; 2026-07-28 alone
//! refuses a server without it), and, without any session on the server,
//! tools, mirrored arguments, progress and logs on the request's own
//! answer, sampling, elicitation and roots asked by `input_required`
//! results (MRTR) and answered by the callbacks, resources, prompts, and
//! calls that go on as tasks.

mod common;

use clap::Parser;
use common::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tether_server::{Config, Replica};
use tether_shim::{Client, ClientBuilder, Error, Event, LogLevel, Mode, RequestOptions};
use tokio::sync::broadcast::Receiver;

struct Running {
    replica: Arc<Replica>,
    url: String,
}

impl Running {
    fn builder(&self) -> ClientBuilder {
        Client::builder(&self.url).request_timeout(WAIT)
    }

    async fn connect(&self, b: ClientBuilder) -> Client {
        within("connect", b.connect())
            .await
            .unwrap_or_else(|e| panic!("connects: {e}"))
    }

    /// The server holds no session: nothing of the new era made one.
    fn assert_sessionless(&self) {
        assert_eq!(
            self.replica.sessions.len(),
            0,
            "the replica holds a session"
        );
    }
}

/// A replica with the bundled catalog and `flags`.
async fn start(flags: &[&str]) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let mut args = vec!["tether-server", "--listen", &addr, "--route", "n1"];
    args.extend_from_slice(flags);
    let config = Config::parse_from(args);
    let (replica, _task) =
        tether_server::spawn(listener, config, tether_server::catalog::default_server());
    Running {
        replica,
        url: format!("http://{addr}/mcp"),
    }
}

/// A replica as it starts by default: both eras.
async fn new_era() -> Running {
    start(&[]).await
}

/// A replica of sessions only, as servers before 2026-07-28 are.
async fn sessions_only() -> Running {
    start(&["--serve-2026-07-28=false"]).await
}

/// What a callback was asked, in order.
type Asked = Arc<Mutex<Vec<Value>>>;

/// An elicitation callback that accepts with `content`, and records what
/// it was asked.
fn accept(content: Value) -> (tether_shim::Callback, Asked) {
    let asked = Asked::default();
    let seen = asked.clone();
    let f = tether_shim::callback(move |params: Value| {
        seen.lock().unwrap().push(params);
        futures::future::ready(Ok(json!({"action": "accept", "content": content.clone()})))
    });
    (f, asked)
}

/// The log messages among `events` so far.
fn logs(events: &mut Receiver<Event>) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let Event::Notification(n) = e
            && n.method == "notifications/message"
        {
            out.push(n.params);
        }
    }
    out
}

#[tokio::test]
async fn auto_adopts_2026_07_28_where_it_is_served_and_makes_no_session() {
    let r = new_era().await;
    let client = r.connect(r.builder()).await;
    assert!(client.is_stateless());
    assert_eq!(client.mode(), Mode::Auto);
    assert_eq!(client.protocol_version(), "2026-07-28");
    assert_eq!(client.session_id(), None);
    assert_eq!(client.server_info().server_info.name, "tether");
    assert!(client.server_info().capabilities.has("tools"));
    let discover = client.discover_result().expect("the discover result");
    assert_eq!(discover["supportedVersions"], json!(["2026-07-28"]));

    let echoed = within("echo", client.call_tool("echo", json!({"text": "hi"})))
        .await
        .expect("echo");
    assert_eq!(echoed.text(), "hi");
    let tools = within("tools/list", client.list_tools())
        .await
        .expect("tools");
    assert!(tools.iter().any(|t| t["name"] == "long_task"));
    within("ping", client.ping()).await.expect("ping");
    within("close", client.close()).await.expect("close");
    r.assert_sessionless();
}

#[tokio::test]
async fn auto_starts_a_session_where_2026_07_28_is_not_served() {
    let r = sessions_only().await;
    let client = r.connect(r.builder()).await;
    assert!(!client.is_stateless());
    assert_eq!(client.protocol_version(), "2025-11-25");
    assert!(client.session_id().is_some());
    assert_eq!(r.replica.sessions.len(), 1);
    let c = within("counter", client.call_tool("counter", json!({})))
        .await
        .expect("counter");
    assert_eq!(c.structured_content.expect("structured")["count"], 1);
}

#[tokio::test]
async fn legacy_keeps_a_session_with_a_replica_of_both_eras() {
    let r = new_era().await;
    let client = r.connect(r.builder().mode(Mode::Legacy)).await;
    assert!(!client.is_stateless());
    assert!(client.session_id().is_some());
    assert_eq!(r.replica.sessions.len(), 1);
    // Session state: the counter counts in the session.
    for want in 1..=2 {
        let c = within("counter", client.call_tool("counter", json!({})))
            .await
            .expect("counter");
        assert_eq!(c.structured_content.expect("structured")["count"], want);
    }
}

#[tokio::test]
async fn mode_2026_07_28_refuses_a_server_without_it() {
    let r = sessions_only().await;
    let err = within("connect", r.builder().mode(Mode::Stateless).connect())
        .await
        .expect_err("no new era there");
    assert!(matches!(err, Error::NotStateless(_)), "{err}");
    assert!(err.to_string().contains("2026-07-28"), "{err}");
    assert_eq!(r.replica.sessions.len(), 0);
    assert_eq!("2026-07-28".parse::<Mode>(), Ok(Mode::Stateless));
    assert!("v2".parse::<Mode>().is_err());
}

#[tokio::test]
async fn progress_and_logs_arrive_on_the_call_s_own_answer() {
    let r = new_era().await;
    let b = r.builder().mode(Mode::Stateless);
    let mut events = b.events();
    let client = r.connect(b).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let progress = seen.clone();
    // Without a level, no logs.
    let quiet = within(
        "long_task",
        client.call_tool_with(
            "long_task",
            json!({"steps": 3, "step_ms": 20}),
            RequestOptions::new().on_progress(move |p| progress.lock().unwrap().push(p)),
        ),
    )
    .await
    .expect("long_task");
    assert_eq!(quiet.text(), "finished 3 steps");
    let steps: Vec<_> = seen.lock().unwrap().iter().map(|p| p.progress).collect();
    assert_eq!(steps, [1.0, 2.0, 3.0]);
    assert_eq!(
        seen.lock().unwrap()[2].message.as_deref(),
        Some("step 3 of 3")
    );
    assert!(logs(&mut events).is_empty(), "logs nobody asked for");

    // A level for this request alone.
    within(
        "long_task",
        client.call_tool_with(
            "long_task",
            json!({"steps": 2, "step_ms": 10}),
            RequestOptions::new().log_level(LogLevel::Debug),
        ),
    )
    .await
    .expect("long_task");
    let got = logs(&mut events);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1]["data"], json!({"step": 2}));

    // The client's level, for every request; a higher one filters.
    within("level", client.set_log_level(LogLevel::Warning))
        .await
        .expect("level");
    within(
        "long_task",
        client.call_tool("long_task", json!({"steps": 1, "step_ms": 10})),
    )
    .await
    .expect("long_task");
    assert!(logs(&mut events).is_empty(), "debug logs above warning");
    r.assert_sessionless();
}

#[tokio::test]
async fn sampling_elicitation_and_roots_are_asked_by_input_required_and_answered_by_the_callbacks()
{
    let r = new_era().await;
    let (on_elicit, asked) = accept(json!({"username": "ada", "email": "ada@example.com"}));
    let client = r
        .connect(
            r.builder()
                .mode(Mode::Stateless)
                .on_sampling(echo_sampling)
                .callback("elicitation/create", on_elicit)
                .roots(vec![json!({"uri": "file:///work", "name": "work"})]),
        )
        .await;
    let sampled = within(
        "ask_model",
        client.call_tool("ask_model", json!({"question": "why?"})),
    )
    .await
    .expect("ask_model");
    assert_eq!(sampled.text(), "answer to why?");

    let elicited = within(
        "test_elicitation",
        client.call_tool("test_elicitation", json!({"message": "Who are you?"})),
    )
    .await
    .expect("test_elicitation");
    assert!(elicited.text().contains("ada@example.com"), "{elicited:?}");
    assert_eq!(asked.lock().unwrap()[0]["message"], "Who are you?");

    let rooted = within(
        "test_input_required_result_list_roots",
        client.call_tool("test_input_required_result_list_roots", json!({})),
    )
    .await
    .expect("roots");
    assert_eq!(rooted.text(), "Found 1 root(s)", "{rooted:?}");

    // Three questions in one round, then two rounds one after the other.
    let multiple = within(
        "test_input_required_result_multiple_inputs",
        client.call_tool("test_input_required_result_multiple_inputs", json!({})),
    )
    .await
    .expect("multiple inputs");
    assert!(!multiple.is_error, "{multiple:?}");
    asked.lock().unwrap().clear();
    let rounds = within(
        "test_input_required_result_multi_round",
        client.call_tool("test_input_required_result_multi_round", json!({})),
    )
    .await
    .expect("multi round");
    assert!(!rounds.is_error, "{rounds:?}");
    let messages: Vec<_> = asked
        .lock()
        .unwrap()
        .iter()
        .map(|p| p["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        messages,
        [
            "Step 1: What is your name?",
            "Step 2: What is your favorite color?"
        ]
    );
    r.assert_sessionless();
}

#[tokio::test]
async fn a_question_the_client_cannot_answer_is_an_error_naming_it() {
    let r = new_era().await;
    // Declares elicitation, but the callback refuses.
    let client = r
        .connect(
            r.builder()
                .mode(Mode::Stateless)
                .on_elicitation(|_| async { Err(tether_shim::RpcError::internal("no user here")) }),
        )
        .await;
    let err = within(
        "test_input_required_result_elicitation",
        client.call_tool("test_input_required_result_elicitation", json!({})),
    )
    .await
    .expect_err("unanswerable");
    match &err {
        Error::Input { key, method, error } => {
            assert_eq!(key, "user_name");
            assert_eq!(method, "elicitation/create");
            assert!(error.message.contains("no user here"));
        }
        other => panic!("{other}"),
    }
    // Without the capability, the server refuses to ask at all.
    let bare = r.connect(r.builder().mode(Mode::Stateless)).await;
    let err = within(
        "test_input_required_result_elicitation",
        bare.call_tool("test_input_required_result_elicitation", json!({})),
    )
    .await
    .expect_err("no capability");
    assert_eq!(err.rpc_code(), Some(-32021), "{err}");
}

#[tokio::test]
async fn arguments_marked_x_mcp_header_are_mirrored() {
    let r = new_era().await;
    let client = r.connect(r.builder().mode(Mode::Stateless)).await;
    // Without listing first: the client lists the tools on demand.
    for region in ["us-west1", "ümlaut région"] {
        let got = within(
            "test_header_param",
            client.call_tool("test_header_param", json!({"region": region})),
        )
        .await
        .unwrap_or_else(|e| panic!("{region}: {e}"));
        assert_eq!(got.text(), format!("Region: {region}"));
    }
}

#[tokio::test]
async fn resources_and_prompts_work_without_a_session() {
    let r = new_era().await;
    let (on_elicit, _) = accept(json!({"context": "from the shim"}));
    let client = r
        .connect(
            r.builder()
                .mode(Mode::Stateless)
                .callback("elicitation/create", on_elicit),
        )
        .await;
    let resources = within("resources", client.list_resources())
        .await
        .expect("resources");
    assert!(resources.iter().any(|r| r["uri"] == "test://static-text"));
    let templates = within("templates", client.list_resource_templates())
        .await
        .expect("templates");
    assert!(!templates.is_empty());
    let text = within("read", client.read_resource("test://static-text"))
        .await
        .expect("read");
    assert!(text[0]["text"].as_str().is_some(), "{text:?}");
    let prompts = within("prompts", client.list_prompts())
        .await
        .expect("prompts");
    assert!(prompts.iter().any(|p| p["name"] == "test_simple_prompt"));
    let p = within(
        "prompts/get",
        client.get_prompt("test_simple_prompt", json!({})),
    )
    .await
    .expect("prompt");
    assert!(p["messages"].is_array(), "{p}");
    // A prompt that asks (MRTR through prompts/get).
    let asked = within(
        "test_input_required_result_prompt",
        client.get_prompt("test_input_required_result_prompt", json!({})),
    )
    .await
    .expect("prompt that asks");
    assert!(asked.to_string().contains("from the shim"), "{asked}");
    r.assert_sessionless();
}

#[tokio::test]
async fn a_call_that_goes_on_as_a_task_is_followed_to_its_result() {
    let r = new_era().await;
    let (on_elicit, asked) = accept(json!({"confirm": true}));
    let client = r
        .connect(
            r.builder()
                .mode(Mode::Stateless)
                .callback("elicitation/create", on_elicit),
        )
        .await;
    let messages = Arc::new(Mutex::new(Vec::new()));
    let seen = messages.clone();
    let done = within(
        "slow_compute",
        client.call_tool_with(
            "slow_compute",
            json!({"seconds": 1, "label": "pi"}),
            RequestOptions::new().on_progress(move |p| seen.lock().unwrap().push(p.message)),
        ),
    )
    .await
    .expect("slow_compute");
    assert_eq!(done.text(), "computed pi in 1s");
    assert!(
        messages
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.as_deref() == Some("computing pi")),
        "{messages:?}"
    );
    // A task that asks: answered by the callback through tasks/update.
    let deleted = within(
        "confirm_delete",
        client.call_tool("confirm_delete", json!({"filename": "a.txt"})),
    )
    .await
    .expect("confirm_delete");
    assert_eq!(deleted.text(), "Deleted a.txt");
    assert_eq!(asked.lock().unwrap().len(), 1);
    // Asked by an input_required round first, then a task; and two
    // questions of a task at once.
    let (on_name, _) = accept(json!({"name": "ada"}));
    let named = r
        .connect(
            r.builder()
                .mode(Mode::Stateless)
                .callback("elicitation/create", on_name),
        )
        .await;
    let greeted = within(
        "test_tool_with_task",
        named.call_tool("test_tool_with_task", json!({})),
    )
    .await
    .expect("test_tool_with_task");
    assert_eq!(greeted.text(), "Hello, ada!");
    let both = within("multi_input", named.call_tool("multi_input", json!({})))
        .await
        .expect("multi_input");
    assert_eq!(both.text(), "first: ada, second: ada");
    // A task that fails as a protocol is an error; as a tool, a result.
    let failed = within(
        "protocol_error_job",
        named.call_tool("protocol_error_job", json!({})),
    )
    .await
    .expect_err("a failed task");
    assert!(matches!(failed, Error::Rpc(_)), "{failed}");
    let tool_error = within("failing_job", named.call_tool("failing_job", json!({})))
        .await
        .expect("failing_job completes with a tool error");
    assert!(tool_error.is_error, "{tool_error:?}");

    // Without the extension, the same tool runs as a plain call.
    let plain = r
        .connect(r.builder().mode(Mode::Stateless).tasks(false))
        .await;
    let done = within(
        "slow_compute",
        plain.call_tool("slow_compute", json!({"seconds": 0})),
    )
    .await
    .expect("slow_compute");
    assert_eq!(done.text(), "computed result in 0s");
    r.assert_sessionless();
}

/// Sum, per running replica, of the metric lines of `cluster` that start
/// with `prefix`.
async fn per_replica(cluster: &tether_cluster::Cluster, prefix: &str) -> Vec<f64> {
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for r in cluster.replicas.iter().filter(|r| r.is_running()) {
        let text = within("the metrics", async {
            http.get(format!("{}/metrics", r.url()))
                .send()
                .await
                .expect("metrics answer")
                .text()
                .await
                .expect("metrics body")
        })
        .await;
        out.push(
            text.lines()
                .filter(|l| l.starts_with(prefix))
                .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
                .sum(),
        );
    }
    out
}

/// Three replicas with peers behind a plain round robin (no affinity, no
/// cookies): every request of the client may land elsewhere, so the
/// retries of one call that asks twice complete on replicas that did not
/// ask, and no replica makes a session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_round_robin_a_call_s_retries_complete_on_other_replicas() {
    use tether_cluster::{Balancer, Cluster, Spec};
    let mut spec = Spec::new(3, Balancer::RoundRobin);
    spec.forwarding = true;
    let cluster = within("the cluster to start", Cluster::start(spec))
        .await
        .expect("the cluster starts (build the server first: cargo build --workspace --bins)");
    let (on_elicit, asked) = accept(json!({"name": "ada", "color": "teal"}));
    let client = within(
        "connect",
        Client::builder(cluster.mcp_url())
            .request_timeout(WAIT)
            .callback("elicitation/create", on_elicit)
            .on_sampling(echo_sampling)
            .connect(),
    )
    .await
    .expect("connects");
    assert!(client.is_stateless());
    let done = within(
        "test_input_required_result_multi_round",
        client.call_tool("test_input_required_result_multi_round", json!({})),
    )
    .await
    .expect("multi round");
    assert_eq!(done.text(), "Multi-round complete for ada who likes teal");
    assert_eq!(asked.lock().unwrap().len(), 2);
    let calls = per_replica(&cluster, "tether_rpc_requests_total{method=\"tools/call\"").await;
    assert_eq!(calls.iter().sum::<f64>(), 3.0, "three rounds: {calls:?}");
    assert!(
        calls.iter().filter(|n| **n > 0.0).count() >= 2,
        "one replica served every round: {calls:?}"
    );
    let sampled = within(
        "ask_model",
        client.call_tool("ask_model", json!({"question": "where?"})),
    )
    .await
    .expect("ask_model");
    assert_eq!(sampled.text(), "answer to where?");
    let sessions = per_replica(&cluster, "tether_sessions_created_total").await;
    assert_eq!(sessions.iter().sum::<f64>(), 0.0, "{sessions:?}");
}

/// The next notification `method` among `events`, within [`WAIT`].
async fn next_notification(events: &mut Receiver<Event>, method: &str) -> Value {
    within(method, async {
        loop {
            match events.recv().await {
                Ok(Event::Notification(n)) if n.method == method => return n.params,
                Ok(_) => {}
                Err(e) => panic!("events: {e}"),
            }
        }
    })
    .await
}

#[tokio::test]
async fn subscriptions_and_list_changes_come_on_the_listen_stream() {
    let r = new_era().await;
    let b = r.builder().mode(Mode::Stateless);
    let mut events = b.events();
    let client = r.connect(b).await;
    within("subscribe", client.subscribe("demo://note"))
        .await
        .expect("subscribed");
    within(
        "set_note",
        client.call_tool("set_note", json!({"text": "new"})),
    )
    .await
    .expect("set_note");
    let updated = next_notification(&mut events, "notifications/resources/updated").await;
    assert_eq!(updated["uri"], "demo://note");
    within(
        "test_trigger_tool_change",
        client.call_tool("test_trigger_tool_change", json!({})),
    )
    .await
    .expect("trigger");
    next_notification(&mut events, "notifications/tools/list_changed").await;

    let err = within("subscribe", client.subscribe("nope://nothing"))
        .await
        .expect_err("not served");
    assert_eq!(err.rpc_code(), Some(-32602), "{err}");
    within("unsubscribe", client.unsubscribe("demo://note"))
        .await
        .expect("unsubscribed");
    within(
        "set_note",
        client.call_tool("set_note", json!({"text": "newer"})),
    )
    .await
    .expect("set_note");
    // The tool change is announced after the note changed: had the update
    // come, it would come first.
    within(
        "test_trigger_tool_change",
        client.call_tool("test_trigger_tool_change", json!({})),
    )
    .await
    .expect("trigger");
    within("the second list change", async {
        loop {
            match events.recv().await {
                Ok(Event::Notification(n)) if n.method == "notifications/tools/list_changed" => {
                    return;
                }
                Ok(Event::Notification(n)) => {
                    assert_ne!(n.method, "notifications/resources/updated", "{n:?}")
                }
                Ok(_) => {}
                Err(e) => panic!("events: {e}"),
            }
        }
    })
    .await;
    r.assert_sessionless();
}

#[tokio::test]
async fn a_task_whose_call_times_out_is_cancelled() {
    let r = new_era().await;
    let client = r.connect(r.builder().mode(Mode::Stateless)).await;
    let call = tokio::spawn(async move {
        client
            .call_tool_with(
                "slow_compute",
                json!({"seconds": 60}),
                RequestOptions::new().timeout(std::time::Duration::from_millis(1500)),
            )
            .await
    });
    let sleep = || tokio::time::sleep(std::time::Duration::from_millis(20));
    within("the task to start", async {
        while r.replica.tasks.running() == 0 {
            sleep().await;
        }
    })
    .await;
    let err = within("slow_compute", call)
        .await
        .expect("no panic")
        .expect_err("times out");
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    // The task would run for a minute: the client's tasks/cancel stops it.
    within("the task to stop", async {
        while r.replica.tasks.running() > 0 {
            sleep().await;
        }
    })
    .await;
}
