//! `rmcp-reference`: the same tools as tether's benchmark workloads, served
//! by the official Rust SDK (`rmcp` 3.11) the way its documentation shows:
//! `#[tool_router]` tools, `StreamableHttpService` under axum, with
//! `TCP_NODELAY` on accepted sockets (without it every call waits on a
//! delayed ACK: a 44 ms floor that would flatter tether).
//!
//! Two modes, one process each:
//!
//! - default: the stateful session mode (`legacy_session_mode: true`,
//!   `LocalSessionManager`), for 2025-11-25 sessions. rmcp answers those
//!   as SSE only.
//! - `--stateless`: the mode rmcp serves MCP 2026-07-28 in
//!   (`legacy_session_mode: false`, `json_response: true`): every request
//!   stands alone, `server/discover` is answered, and a result with no
//!   notification before it is one JSON body.
//!
//! `ask_model` asks the client's model in either era: on a session, as a
//! `sampling/createMessage` request to the client; on a 2026-07-28 request,
//! as an `input_required` result asking `sample` (MRTR), completed when the
//! client retries with `inputResponses.sample`.
//!
//! ```sh
//! rmcp-reference --listen 127.0.0.1:8081 [--stateless]   # MCP on /mcp, health on /healthz
//! ```

#![allow(deprecated)] // rmcp marks session-era sampling deprecated (gone in 2026-07-28).

use clap::Parser;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::InputResponses;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, CreateMessageRequest,
    CreateMessageRequestParams, CreateMessageResult, InputRequest, InputRequests,
    InputRequiredResult, ProtocolVersion, SamplingMessage, ServerCapabilities, ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Parser)]
#[command(about = "The benchmark tools served by the official Rust SDK (rmcp)")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Serve statelessly (no sessions, JSON answers): rmcp's mode for MCP
    /// 2026-07-28 requests.
    #[arg(long)]
    stateless: bool,
}

/// The key of the one sampling question `ask_model` asks in the 2026-07-28
/// era.
const SAMPLE_KEY: &str = "sample";

/// The text of the first content block of a sampling answer.
fn answer_text(result: &CreateMessageResult) -> String {
    result
        .message
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default()
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Echo {
    /// The text to return.
    text: String,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct AskModel {
    /// The question for the client's model.
    question: String,
}

#[derive(Clone)]
struct Reference {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Reference {
    fn new() -> Self {
        Reference {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Returns its text.")]
    fn echo(&self, Parameters(Echo { text }): Parameters<Echo>) -> String {
        text
    }

    #[tool(description = "Asks the client's model (sampling) and returns its answer.")]
    async fn ask_model(
        &self,
        Parameters(AskModel { question }): Parameters<AskModel>,
        InputResponses(answers): InputResponses,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let params =
            CreateMessageRequestParams::new(vec![SamplingMessage::user_text(question)], 200);
        let new_era = ctx
            .protocol_version()
            .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
        let result = if let Some(answer) = answers.and_then(|mut a| a.remove(SAMPLE_KEY)) {
            // The retry of a 2026-07-28 request, with the client's answer.
            serde_json::from_value::<CreateMessageResult>(answer).map_err(|e| {
                ErrorData::invalid_params(format!("inputResponses.{SAMPLE_KEY}: {e}"), None)
            })?
        } else if new_era {
            // No session to ask on: ask in the result (MRTR).
            let mut asks = InputRequests::new();
            asks.insert(
                SAMPLE_KEY.to_owned(),
                InputRequest::CreateMessage(CreateMessageRequest::new(params)),
            );
            return Ok(InputRequiredResult::from_input_requests(asks).into());
        } else {
            ctx.peer
                .create_message(params)
                .await
                .map_err(|e| ErrorData::internal_error(format!("sampling failed: {e}"), None))?
        };
        Ok(CallToolResult::success(vec![ContentBlock::text(answer_text(&result))]).into())
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Reference {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    // The struct is non-exhaustive: `{ legacy_session_mode, json_response,
    // .. }` spelled with its builder.
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(!args.stateless)
        .with_json_response(args.stateless);
    let service = StreamableHttpService::new(
        || Ok(Reference::new()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let app = axum::Router::new()
        .nest_service("/mcp", service)
        .route("/healthz", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            eprintln!("rmcp-reference: TCP_NODELAY: {e}");
        }
    });
    eprintln!("rmcp-reference listening on {}", args.listen);
    axum::serve(listener, app).await
}
