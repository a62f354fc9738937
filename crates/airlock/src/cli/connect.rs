//! `airlock connect`: a stdio MCP server that forwards every request to the running Airlock
//! over HTTP, for clients that can only launch a command (Claude Desktop).

use airlock::paths::{Paths, RuntimeInfo};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ListToolsResult, PaginatedRequestParams,
    ProtocolVersion, ServerCapabilities, ServerConfig,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ErrorData as McpError, RoleClient, RoleServer, ServerHandler, ServiceExt};
use std::borrow::Cow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Forwards `tools/list` and `tools/call` to the upstream server.
#[derive(Clone)]
struct Bridge {
    upstream: Arc<RunningService<RoleClient, ()>>,
}

fn upstream_error(e: rmcp::ServiceError) -> McpError {
    McpError::internal_error(format!("the Airlock server did not answer: {e}"), None)
}

impl ServerHandler for Bridge {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build());
        if let Some(upstream) = self.upstream.peer_info() {
            if let Some(server_info) = upstream.server_info.clone() {
                info = info.with_server_info(server_info);
            }
            if let Some(i) = &upstream.instructions {
                info = info.with_instructions(i.clone());
            }
        }
        info
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(
            &ProtocolVersion::LATEST_WITH_INITIALIZE,
        ))
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        self.upstream
            .list_tools(request)
            .await
            .map_err(upstream_error)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        Ok(self
            .upstream
            .call_tool(request)
            .await
            .map_err(upstream_error)?
            .into())
    }
}

#[derive(clap::Args, Debug)]
pub struct ConnectArgs {
    /// The client whose token to present (as installed by `airlock clients --install`).
    #[arg(long, default_value = "default")]
    client: String,
}

pub async fn run(config: Option<PathBuf>, args: ConnectArgs) -> anyhow::Result<ExitCode> {
    let paths = Paths::resolve(config)?;
    let Some(info) = RuntimeInfo::read(&paths.runtime_file()) else {
        eprintln!("airlock connect: no Airlock server is running (start the Airlock app, or run `airlock serve`)");
        return Ok(ExitCode::from(2));
    };
    let client = args.client.clone();
    let token =
        tokio::task::spawn_blocking(move || super::clients::token_for_connect(&client)).await??;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(info.url.clone()).auth_header(token),
    );
    let upstream = match ().serve(transport).await {
        Ok(u) => u,
        Err(e) => {
            eprintln!(
                "airlock connect: the Airlock server at {} did not accept the connection: {e}",
                info.url
            );
            return Ok(ExitCode::from(2));
        }
    };
    let bridge = Bridge {
        upstream: Arc::new(upstream),
    };
    let running = bridge
        .serve(rmcp::transport::io::stdio())
        .await
        .map_err(|e| anyhow::anyhow!("stdio session failed: {e}"))?;
    let _ = running.waiting().await;
    Ok(ExitCode::SUCCESS)
}
