//! `rmcp-reference`: the same tools as tether's benchmark workloads, served
//! by the official Rust SDK (`rmcp` 3.9) the way its documentation shows:
//! `#[tool_router]` tools, `StreamableHttpService` in its stateful session
//! mode (`legacy_session_mode: true`, `LocalSessionManager`), under axum,
//! with `TCP_NODELAY` on accepted sockets (without it every call waits on a
//! delayed ACK: a 44 ms floor that would flatter tether).
//!
//! ```sh
//! rmcp-reference --listen 127.0.0.1:8081   # MCP on /mcp, health on /healthz
//! ```

#![allow(deprecated)] // rmcp 3.9 marks sampling deprecated (gone in 2026-07-28).

use clap::Parser;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CreateMessageRequestParams, SamplingMessage, ServerCapabilities, ServerConfig};
use rmcp::service::{Peer, RoleServer};
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
        client: Peer<RoleServer>,
    ) -> Result<String, ErrorData> {
        let result = client
            .create_message(CreateMessageRequestParams::new(
                vec![SamplingMessage::user_text(question)],
                200,
            ))
            .await
            .map_err(|e| ErrorData::internal_error(format!("sampling failed: {e}"), None))?;
        let text = result
            .message
            .content
            .first()
            .and_then(|c| c.as_text())
            .map(|t| t.text.clone())
            .unwrap_or_default();
        Ok(text)
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
    // The struct is non-exhaustive: `{ legacy_session_mode: true, .. }`
    // spelled with its builder.
    let config = StreamableHttpServerConfig::default().with_legacy_session_mode(true);
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
