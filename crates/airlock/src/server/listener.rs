//! Accepted HTTP connections: small writes go out at once (no Nagle), only so many are open at a
//! time, so that a flood of idle connections cannot take the file descriptors the engine needs
//! for its own work (the audit log, Docker, the settings file), and one that sends nothing at
//! all within [`FIRST_BYTES`] is closed, so that such connections cannot hold the slots either.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a new connection may stay silent before it is closed.
pub const FIRST_BYTES: Duration = Duration::from_secs(10);

/// The most connections open at once: half the descriptors the process may have, at most 4096.
/// Past it, new connections wait in the kernel's queue until one closes.
pub fn max_connections() -> usize {
    (raise_fd_limit() / 2).clamp(64, 4096) as usize
}

/// Raises the soft limit on open files to the hard one (at most 65536): macOS starts apps at
/// 256. Returns the limit in force.
fn raise_fd_limit() -> libc::rlim_t {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 256;
        }
        // macOS refuses more than `kern.maxfilesperproc` (10240 on many Macs) even when the
        // hard limit says "unlimited": try less before giving up.
        for wanted in [limit.rlim_max.min(65536), limit.rlim_max.min(10240)] {
            if wanted <= limit.rlim_cur {
                break;
            }
            let raised = libc::rlimit {
                rlim_cur: wanted,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = wanted;
                break;
            }
        }
    }
    limit.rlim_cur
}

/// A TCP listener handing out at most `slots` connections at a time.
pub struct CappedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    first_bytes: Duration,
}

impl CappedListener {
    pub fn new(inner: TcpListener, slots: usize, first_bytes: Duration) -> CappedListener {
        CappedListener {
            inner,
            slots: Arc::new(Semaphore::new(slots)),
            first_bytes,
        }
    }
}

impl axum::serve::Listener for CappedListener {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        let Ok(slot) = self.slots.clone().acquire_owned().await else {
            // The semaphore is never closed; should it be, accept without a slot.
            return self.accept_one(None).await;
        };
        self.accept_one(Some(slot)).await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl CappedListener {
    async fn accept_one(&self, slot: Option<OwnedSemaphorePermit>) -> (Connection, SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok((tcp, addr)) => {
                    // Responses are SSE streams written in more than one piece (a priming
                    // event, then the message): with Nagle's algorithm on, the second piece
                    // waits for the client's delayed ACK (~40 ms per call for Node's and
                    // Python's HTTP stacks).
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!("could not set TCP_NODELAY on an accepted connection: {e}");
                    }
                    let silence = Box::pin(tokio::time::sleep(self.first_bytes));
                    let connection = Connection {
                        tcp,
                        _slot: slot,
                        silence: Some(silence),
                    };
                    return (connection, addr);
                }
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was taken: wait a
                    // moment rather than spin.
                    tracing::debug!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// An accepted connection; its slot frees when it closes.
pub struct Connection {
    tcp: TcpStream,
    _slot: Option<OwnedSemaphorePermit>,
    /// Until the first bytes come: when the connection is given up.
    silence: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.silence = None;
        } else if let Some(silence) = self.silence.as_mut() {
            if read.is_pending() && silence.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the connection sent nothing",
                )));
            }
        }
        read
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener;

    #[tokio::test]
    async fn past_its_slots_a_connection_waits_until_one_closes() {
        let inner = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = inner.local_addr().unwrap();
        let mut listener = CappedListener::new(inner, 2, FIRST_BYTES);
        let _a = TcpStream::connect(addr).await.unwrap();
        let _b = TcpStream::connect(addr).await.unwrap();
        let _c = TcpStream::connect(addr).await.unwrap();
        let first = listener.accept().await.0;
        let _second = listener.accept().await.0;
        let wait = Duration::from_millis(200);
        assert!(
            tokio::time::timeout(wait, listener.accept()).await.is_err(),
            "a third connection was taken with two slots"
        );
        drop(first);
        let third = tokio::time::timeout(Duration::from_secs(5), listener.accept()).await;
        assert!(
            third.is_ok(),
            "a freed slot was not given to the waiting connection"
        );
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_is_closed_and_frees_its_slot() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let inner = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = inner.local_addr().unwrap();
        let mut listener = CappedListener::new(inner, 1, Duration::from_millis(200));
        let _silent = TcpStream::connect(addr).await.unwrap();
        let mut silent_side = listener.accept().await.0;
        let mut buf = [0u8; 8];
        let read = tokio::time::timeout(Duration::from_secs(5), silent_side.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Err(ref e)) if e.kind() == io::ErrorKind::TimedOut),
            "{read:?}"
        );
        drop(silent_side);
        // The slot is free again; a talking connection keeps reading past the deadline.
        let mut talker = TcpStream::connect(addr).await.unwrap();
        let mut talking_side = listener.accept().await.0;
        talker.write_all(b"GET").await.unwrap();
        assert_eq!(talking_side.read(&mut buf).await.unwrap(), 3);
        tokio::time::sleep(Duration::from_millis(300)).await;
        talker.write_all(b" /").await.unwrap();
        assert_eq!(talking_side.read(&mut buf).await.unwrap(), 2);
    }

    #[test]
    fn the_cap_leaves_descriptors_for_the_engine() {
        let cap = max_connections();
        assert!((64..=4096).contains(&cap), "{cap}");
    }
}
