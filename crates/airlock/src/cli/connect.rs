//! `airlock connect`: a stdio ⇄ Streamable HTTP bridge to the running Airlock, for clients that
//! can only launch a command (Claude Desktop). Every message passes through unchanged, both ways.
//!
//! Requests, responses, progress, cancellation and server notifications all cross as they are;
//! when the client goes away (stdin closes) or the bridge gets SIGTERM, the upstream session is
//! ended (an HTTP DELETE), so its sandbox goes with it. Every failure is one plain line on stderr.

use airlock::config::Settings;
use airlock::paths::{Paths, RuntimeInfo};
use airlock::server::framing::{Limit, LineTransport};
use rmcp::model::{ClientJsonRpcMessage, ErrorData, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, Transport};
use rmcp::RoleServer;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How long ending the upstream session may take (the client is already gone).
const CLOSE_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(clap::Args, Debug)]
pub struct ConnectArgs {
    /// The client whose token to present (as installed by `airlock clients --install`).
    #[arg(long, default_value = "default")]
    client: String,
}

/// What went wrong, as the one line the user reads.
fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("airlock connect: {message}");
    ExitCode::from(2)
}

const NOT_RUNNING: &str =
    "Airlock is not running: start it (the Airlock app, or `airlock serve`), then restart this client";

/// The line for a refused token, naming what to run.
fn refused(client: &str) -> String {
    if std::env::var("AIRLOCK_TOKEN").is_ok_and(|t| !t.is_empty()) {
        "the token in AIRLOCK_TOKEN was refused: unset it, or set it to a token Airlock issued (`airlock clients --install <client>`)".to_string()
    } else if client == airlock_secrets::DEFAULT_CLIENT {
        "the default token was refused: run `airlock clients --install <client>` and add `--client <client>` to this command".to_string()
    } else {
        format!(
            "the token for client {client} was refused: run `airlock clients --install {client}`"
        )
    }
}

/// Whether the server answers at `url`, and takes `token`, before the client is served.
async fn probe(url: &str, token: &str, client: &str) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    let response = http
        .get(url)
        .bearer_auth(token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .map_err(|e| {
            if e.is_connect() {
                NOT_RUNNING.to_string()
            } else {
                format!(
                    "Airlock at {url} did not answer ({}): restart Airlock",
                    plain(&e)
                )
            }
        })?;
    match response.status().as_u16() {
        401 => Err(refused(client)),
        403 => Err(format!("Airlock at {url} refused this connection (403): check that nothing rewrites the request on its way to 127.0.0.1")),
        _ => Ok(()),
    }
}

/// An error's own message and its causes, without type names.
fn plain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = s.source();
    }
    text.replace('\n', " ")
}

pub async fn run(config: Option<PathBuf>, args: ConnectArgs) -> anyhow::Result<ExitCode> {
    let paths = match Paths::resolve(config) {
        Ok(p) => p,
        Err(e) => return Ok(fail(format!("{e:#}"))),
    };
    // The size limit is the server's own; unreadable settings leave the default.
    let limit_bytes = Settings::load(&paths.config_file)
        .unwrap_or_default()
        .max_message_bytes();
    let Some(info) = RuntimeInfo::read(&paths.runtime_file()) else {
        return Ok(fail(NOT_RUNNING));
    };
    let client = args.client.clone();
    let token =
        match tokio::task::spawn_blocking(move || super::clients::token_for_connect(&client)).await
        {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => return Ok(fail(format!("{e:#}").replace('\n', " "))),
            Err(e) => return Ok(fail(format!("reading the token failed: {e}"))),
        };
    if let Err(line) = probe(&info.url, &token, &args.client).await {
        return Ok(fail(line));
    }
    let upstream = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(info.url.clone()).auth_header(token),
    );
    let (stdin, stdout) = rmcp::transport::io::stdio();
    let limit: Limit = Arc::new(move || limit_bytes);
    let downstream: LineTransport<RoleServer, _, _> = LineTransport::new(stdin, stdout, limit);
    match bridge(downstream, upstream, stop_signal()).await {
        End::ClientGone | End::Signal => Ok(ExitCode::SUCCESS),
        End::UpstreamGone => Ok(fail(
            "the connection to Airlock was lost (it stopped or restarted): restart this client",
        )),
    }
}

/// Resolves on SIGTERM, SIGINT or SIGHUP.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Why the bridge ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    ClientGone,
    UpstreamGone,
    Signal,
}

/// A transport's send as a boxed future with a plain error.
fn boxed<E: std::error::Error>(
    send: impl std::future::Future<Output = Result<(), E>> + Send + 'static,
) -> futures::future::BoxFuture<'static, Result<(), String>> {
    Box::pin(async move { send.await.map_err(|e| plain(&e)) })
}

/// Relays messages between the client (`down`) and Airlock (`up`) until either side ends or
/// `stop` resolves, then ends the upstream session.
pub async fn bridge<D, U>(
    mut down: D,
    mut up: U,
    stop: impl std::future::Future<Output = ()>,
) -> End
where
    D: Transport<RoleServer> + 'static,
    U: Transport<rmcp::RoleClient> + 'static,
{
    tokio::pin!(stop);
    // Sends run concurrently (a long call's POST lasts as long as the call); a request whose
    // POST fails is answered here, so the client never waits for nothing.
    let mut to_up = tokio::task::JoinSet::new();
    // Writes to the client go out one after another, in the order Airlock sent them.
    let (to_down, mut writes) = tokio::sync::mpsc::unbounded_channel::<
        futures::future::BoxFuture<'static, Result<(), String>>,
    >();
    let mut writer = tokio::spawn(async move {
        while let Some(write) = writes.recv().await {
            write.await?;
        }
        Ok::<(), String>(())
    });
    let end = loop {
        tokio::select! {
            message = down.receive() => {
                let Some(message) = message else { break End::ClientGone };
                let id = match &message {
                    ClientJsonRpcMessage::Request(r) => Some(r.id.clone()),
                    _ => None,
                };
                let send = up.send(message);
                to_up.spawn(async move { (id, send.await.map_err(|e| plain(&e))) });
            }
            message = up.receive() => {
                let Some(message) = message else { break End::UpstreamGone };
                let _ = to_down.send(boxed(down.send(message)));
            }
            Some(sent) = to_up.join_next(), if !to_up.is_empty() => {
                if let Ok((Some(id), Err(e))) = sent {
                    tracing::debug!("forwarding a request failed: {e}");
                    let error = ErrorData::internal_error(
                        format!("Airlock did not take the request: {e}"),
                        None,
                    );
                    let _ = to_down.send(boxed(
                        down.send(ServerJsonRpcMessage::error(error, Some(id))),
                    ));
                }
            }
            written = &mut writer => {
                if let Ok(Err(e)) = written {
                    tracing::debug!("writing to the client failed: {e}");
                }
                break End::ClientGone;
            }
            _ = &mut stop => break End::Signal,
        }
    };
    // Messages already on their way to the client go out first (the client may still read).
    drop(to_down);
    if end != End::ClientGone {
        let _ = tokio::time::timeout(Duration::from_millis(300), &mut writer).await;
    }
    writer.abort();
    to_up.abort_all();
    // Closing the upstream transport sends the DELETE that ends the session and its sandbox.
    if tokio::time::timeout(CLOSE_TIMEOUT, up.close())
        .await
        .is_err()
    {
        tracing::debug!("ending the upstream session timed out");
    }
    let _ = down.close().await;
    end
}
