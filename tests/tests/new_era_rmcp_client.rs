//! The official Rust SDK, rmcp 3.11, as a client of MCP 2026-07-28: in its
//! discover mode (`ClientLifecycleMode::Discover`) and its auto mode
//! against a replica that serves the era, it makes no session, and tools,
//! progress-free calls, questions to the client through `input_required`
//! (its `call_tool` answers them with the client handler and retries),
//! resources and prompts work; in auto mode against a replica without the
//! era it falls back to the initialize handshake and gets a session.

mod common;

use common::*;
use rmcp::ClientHandler;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult,
    ElicitationAction, ElicitationCapability, ErrorData as McpError, GetPromptRequestParams,
    Implementation, ProtocolVersion, ReadResourceRequestParams,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RequestContext, RoleClient};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;

/// A client that declares elicitation and accepts every form with
/// `{"name": "Ada"}`.
#[derive(Clone, Default)]
struct Answers;

impl ClientHandler for Answers {
    /// Declares what it answers: elicitation.
    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::default();
        capabilities.elicitation = Some(ElicitationCapability::new());
        ClientConfig::new(capabilities, Implementation::from_build_env())
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        match request {
            ElicitRequestParams::FormElicitationParams { .. } => {
                Ok(ElicitResult::new(ElicitationAction::Accept)
                    .with_content(json!({"name": "Ada"})))
            }
            _ => Ok(ElicitResult::new(ElicitationAction::Decline)),
        }
    }
}

async fn connect(
    url: &str,
    mode: ClientLifecycleMode,
) -> rmcp::service::RunningService<RoleClient, Answers> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()),
    );
    within(
        "rmcp connects",
        Answers.serve_with_lifecycle(transport, mode),
    )
    .await
    .expect("rmcp connects")
}

fn auto() -> ClientLifecycleMode {
    ClientLifecycleMode::Auto {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        legacy_version: Some(ProtocolVersion::V_2025_11_25),
    }
}

async fn serves_the_era_without_a_session(mode: ClientLifecycleMode) {
    let r = start().await;
    let client = connect(&r.url, mode).await;
    let tools = within("tools/list", client.list_all_tools())
        .await
        .expect("tools/list");
    assert!(tools.iter().any(|t| t.name == "echo"), "{tools:?}");
    let echoed = within(
        "tools/call",
        client.call_tool(
            CallToolRequestParams::new("echo").with_arguments(
                json!({"text": "hi"})
                    .as_object()
                    .cloned()
                    .expect("an object"),
            ),
        ),
    )
    .await
    .expect("tools/call");
    assert_eq!(
        echoed.content[0].as_text().map(|t| t.text.as_str()),
        Some("hi")
    );
    // A question to the client: answered by the handler, the call retried.
    let asked = within(
        "an MRTR call",
        client.call_tool(CallToolRequestParams::new(
            "test_input_required_result_elicitation",
        )),
    )
    .await
    .expect("the MRTR call");
    let text = asked.content[0]
        .as_text()
        .map(|t| t.text.clone())
        .unwrap_or_default();
    assert_eq!(text, "Hello, Ada!");
    let read = within(
        "resources/read",
        client.read_resource(ReadResourceRequestParams::new("test://static-text")),
    )
    .await
    .expect("resources/read");
    assert!(!read.contents.is_empty(), "{read:?}");
    let prompt = within(
        "prompts/get",
        client.get_prompt(GetPromptRequestParams::new("test_simple_prompt")),
    )
    .await
    .expect("prompts/get");
    assert!(!prompt.messages.is_empty(), "{prompt:?}");
    let _ = client.cancel().await;
    assert_eq!(r.replica.sessions.len(), 0, "the era has no sessions");
    assert!(
        r.replica
            .metrics_text()
            .lines()
            .any(|l| l == "tether_sessions_created_total 0"),
        "no session was ever created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_in_discover_mode_is_served_without_a_session() {
    serves_the_era_without_a_session(ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_in_auto_mode_adopts_the_era() {
    serves_the_era_without_a_session(auto()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_in_auto_mode_gets_a_session_where_the_era_is_not_served() {
    let r = start_tweaked(|c| c.serve_2026_07_28 = false).await;
    let client = connect(&r.url, auto()).await;
    let counted = within(
        "tools/call",
        client.call_tool(CallToolRequestParams::new("counter")),
    )
    .await
    .expect("tools/call");
    assert_eq!(
        counted
            .structured_content
            .as_ref()
            .map(|s| s["count"].clone()),
        Some(json!(1))
    );
    assert_eq!(r.replica.sessions.len(), 1, "a session of 2025-11-25");
    let _ = client.cancel().await;
}
