//! `airlock connect`: a stdio ⇄ Streamable HTTP bridge to the running Airlock, for clients that
//! can only launch a command (Claude Desktop). Every message passes through unchanged, both ways.
//!
//! Requests, responses, progress, cancellation and server notifications all cross as they are;
//! when the client goes away (stdin closes) or the bridge gets SIGTERM, the upstream session is
//! ended (an HTTP DELETE), so its sandbox goes with it. Every failure is one plain line on stderr.
//! When Airlock restarts on another address (its runtime file names a live process there), the
//! bridge opens a new session there with the client's own `initialize` and says so on stderr.

use airlock::config::Settings;
use airlock::paths::{Paths, RuntimeInfo};
use airlock::server::framing::{Limit, LineTransport};
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ClientRequest, ErrorData, RequestId,
    ServerJsonRpcMessage,
};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, Transport};
use rmcp::RoleServer;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How long ending the upstream session may take (the client is already gone).
const CLOSE_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long a restarted Airlock may take to answer the `initialize` of the new session.
const REJOIN_TIMEOUT: Duration = Duration::from_secs(10);

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
    let upstream = Upstream {
        url: info.url.clone(),
        transport: upstream_to(&info.url, &token),
    };
    let runtime_file = paths.runtime_file();
    let relocate = move |lost: &str| match locate(&runtime_file, lost) {
        Location::Here => Located::Here,
        Location::Gone => Located::Gone,
        Location::At(url) => Located::Moved(Upstream {
            transport: upstream_to(&url, &token),
            url,
        }),
    };
    let (stdin, stdout) = rmcp::transport::io::stdio();
    let limit: Limit = Arc::new(move || limit_bytes);
    let downstream: LineTransport<RoleServer, _, _> = LineTransport::new(stdin, stdout, limit);
    match bridge(downstream, upstream, relocate, stop_signal()).await {
        End::ClientGone | End::Signal => Ok(ExitCode::SUCCESS),
        End::UpstreamGone => Ok(fail(
            "the connection to Airlock was lost (it stopped and did not come back): start Airlock, then restart this client",
        )),
    }
}

type HttpUpstream = StreamableHttpClientTransport<reqwest::Client>;

fn upstream_to(url: &str, token: &str) -> HttpUpstream {
    StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_string())
            .auth_header(token.to_string()),
    )
}

/// Where Airlock is, by its runtime file and whether the process that wrote it is alive.
#[derive(Debug, PartialEq, Eq)]
pub enum Location {
    /// Still at the address the bridge uses.
    Here,
    /// Running at another address (it restarted).
    At(String),
    /// Not running (no runtime file, or the one left by a process that is gone).
    Gone,
}

/// Where Airlock is now, seen from a bridge that uses `current`.
pub fn locate(runtime_file: &Path, current: &str) -> Location {
    match RuntimeInfo::read(runtime_file) {
        Some(info) if process_alive(info.pid) && info.url == current => Location::Here,
        Some(info) if process_alive(info.pid) => Location::At(info.url),
        _ => Location::Gone,
    }
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // Signal 0 checks that the process exists (EPERM: it does, as another user's).
    let signalled = unsafe { libc::kill(pid, 0) };
    signalled == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The Airlock the bridge talks to: its address and the transport to it.
pub struct Upstream<U> {
    pub url: String,
    pub transport: U,
}

/// Where the bridge finds Airlock after losing it (see [`Location`]), with a transport to its
/// new address.
pub enum Located<U> {
    Here,
    Moved(Upstream<U>),
    Gone,
}

/// A send to Airlock: the session it went to, the request (to answer, or send again), and how
/// it went.
type Sent = (
    u32,
    Option<(RequestId, ClientJsonRpcMessage)>,
    Result<(), String>,
);

/// Sends `message` to Airlock without waiting for it (a long call's POST lasts as long as the
/// call).
fn forward<U: Transport<rmcp::RoleClient>>(
    to_up: &mut tokio::task::JoinSet<Sent>,
    up: &mut U,
    session: u32,
    message: ClientJsonRpcMessage,
) {
    let request = match &message {
        ClientJsonRpcMessage::Request(r) => Some((r.id.clone(), message.clone())),
        _ => None,
    };
    let mut send = Box::pin(up.send(message));
    // Polled once now, the send takes its place in the transport's queue at once: messages
    // reach Airlock in the order the client sent them (its `initialized` before its first call;
    // sends first polled in their own tasks could swap), while the rest of the send (a call's
    // whole POST) goes on in its own task.
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::Pin::new(&mut tokio::task::unconstrained(send.as_mut())).poll(&mut cx) {
        std::task::Poll::Ready(sent) => {
            to_up.spawn(async move { (session, request, sent.map_err(|e| plain(&e))) })
        }
        std::task::Poll::Pending => {
            to_up.spawn(async move { (session, request, send.await.map_err(|e| plain(&e))) })
        }
    };
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

/// What the bridge keeps of the client's handshake, to open a new session on a restarted
/// Airlock as the client once did.
#[derive(Default)]
struct Handshake {
    initialize: Option<ClientJsonRpcMessage>,
    initialized: Option<ClientJsonRpcMessage>,
}

impl Handshake {
    fn observe(&mut self, message: &ClientJsonRpcMessage) {
        match message {
            ClientJsonRpcMessage::Request(r)
                if matches!(r.request, ClientRequest::InitializeRequest(_)) =>
            {
                self.initialize = Some(message.clone());
            }
            ClientJsonRpcMessage::Notification(n)
                if matches!(
                    n.notification,
                    ClientNotification::InitializedNotification(_)
                ) =>
            {
                self.initialized = Some(message.clone());
            }
            _ => {}
        }
    }

    /// Opens a session on `up` with the client's `initialize`; its answer stays here (the
    /// client has one), then the client's `initialized` follows.
    async fn replay<U: Transport<rmcp::RoleClient>>(&self, up: &mut U) -> Result<(), String> {
        let (Some(initialize), Some(initialized)) = (&self.initialize, &self.initialized) else {
            return Err("the client had not finished its handshake".into());
        };
        let ClientJsonRpcMessage::Request(request) = initialize else {
            return Err("the client's initialize is not a request".into());
        };
        let id = request.id.clone();
        up.send(initialize.clone()).await.map_err(|e| plain(&e))?;
        let answered = tokio::time::timeout(REJOIN_TIMEOUT, async {
            loop {
                match up.receive().await {
                    Some(ServerJsonRpcMessage::Response(r)) if r.id == id => return Ok(()),
                    Some(ServerJsonRpcMessage::Error(e)) if e.id == Some(id.clone()) => {
                        return Err(e.error.message.to_string())
                    }
                    Some(_) => continue,
                    None => return Err("it closed the connection".to_string()),
                }
            }
        })
        .await
        .map_err(|_| format!("no answer within {} s", REJOIN_TIMEOUT.as_secs()))?;
        answered?;
        up.send(initialized.clone()).await.map_err(|e| plain(&e))
    }
}

/// The client's answer for a request Airlock did not take.
fn not_taken<D: Transport<RoleServer>>(
    down: &mut D,
    id: RequestId,
    e: &str,
) -> futures::future::BoxFuture<'static, Result<(), String>> {
    tracing::debug!("forwarding a request failed: {e}");
    let error = ErrorData::internal_error(format!("Airlock did not take the request: {e}"), None);
    boxed(down.send(ServerJsonRpcMessage::error(error, Some(id))))
}

/// How long the bridge looks for a restarted Airlock after losing it.
const RESTART_GRACE: Duration = Duration::from_secs(10);

/// Relays messages between the client (`down`) and Airlock (`up`) until either side ends or
/// `stop` resolves, then ends the upstream session. When Airlock is lost (a request cannot be
/// sent, or its stream ends) and `relocate` finds it restarted elsewhere, the bridge opens a new
/// session there, sends the request that failed again, says so on stderr, and goes on.
pub async fn bridge<D, U>(
    mut down: D,
    up: Upstream<U>,
    mut relocate: impl FnMut(&str) -> Located<U>,
    stop: impl std::future::Future<Output = ()>,
) -> End
where
    D: Transport<RoleServer> + 'static,
    U: Transport<rmcp::RoleClient> + 'static,
{
    tokio::pin!(stop);
    let Upstream {
        mut url,
        transport: mut up,
    } = up;
    let mut handshake = Handshake::default();
    // Sends run concurrently (a long call's POST lasts as long as the call); a request whose
    // POST fails is answered here, so the client never waits for nothing.
    let mut to_up = tokio::task::JoinSet::<Sent>::new();
    // Each send is tagged with the session it went to: a send that failed on an earlier
    // session failed with it, and is answered, not a reason to move again.
    let mut session = 0u32;
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
    let end = 'relay: loop {
        // Airlock was lost: its stream ended (`None`), or this request could not be sent.
        let failed: Option<(RequestId, ClientJsonRpcMessage, String)> = tokio::select! {
            message = down.receive() => {
                let Some(message) = message else { break End::ClientGone };
                handshake.observe(&message);
                forward(&mut to_up, &mut up, session, message);
                continue;
            }
            message = up.receive() => match message {
                Some(message) => {
                    let _ = to_down.send(boxed(down.send(message)));
                    continue;
                }
                None => None,
            },
            Some(sent) = to_up.join_next(), if !to_up.is_empty() => {
                match sent {
                    Ok((on, Some((id, message)), Err(e))) if on == session => Some((id, message, e)),
                    Ok((_, Some((id, _)), Err(e))) => {
                        let _ = to_down.send(not_taken(&mut down, id, &e));
                        continue;
                    }
                    _ => continue,
                }
            }
            written = &mut writer => {
                if let Ok(Err(e)) = written {
                    tracing::debug!("writing to the client failed: {e}");
                }
                break End::ClientGone;
            }
            _ = &mut stop => break End::Signal,
        };
        // Where is Airlock? Gone for now: look again for a while (the app restarts its engine
        // at once); still here: the failure was the request's own.
        let deadline = tokio::time::Instant::now() + RESTART_GRACE;
        let moved = loop {
            match relocate(&url) {
                Located::Moved(next) => break Some(next),
                Located::Here => break None,
                Located::Gone if tokio::time::Instant::now() >= deadline => break None,
                Located::Gone => {}
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = &mut stop => break 'relay End::Signal,
            }
        };
        let rejoined = match moved {
            Some(mut next) => match handshake.replay(&mut next.transport).await {
                Ok(()) => Some(next),
                Err(e) => {
                    tracing::debug!("opening a session at {} failed: {e}", next.url);
                    None
                }
            },
            None => None,
        };
        match (rejoined, failed) {
            (Some(next), failed) => {
                eprintln!(
                    "airlock connect: Airlock restarted at {}; reconnected with a new session (its sandbox starts afresh)",
                    next.url
                );
                // The old session's sends fail with it and are answered as such.
                drop(std::mem::replace(&mut up, next.transport));
                url = next.url;
                session += 1;
                if let Some((_, message, _)) = failed {
                    forward(&mut to_up, &mut up, session, message);
                }
            }
            // A request that could not be sent, with Airlock nowhere else: answered, and the
            // next request tries again.
            (None, Some((id, _, e))) => {
                let _ = to_down.send(not_taken(&mut down, id, &e));
            }
            (None, None) => break End::UpstreamGone,
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
