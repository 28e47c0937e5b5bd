//! The listener: accepts connections and serves each with hyper's HTTP/1 under limits, so a
//! client that opens connections and never finishes them cannot hold the bot's file
//! descriptors (and with them its CodeArts and chat clients) hostage (docs/http.md):
//!
//! - a request's headers must arrive within `http.header_timeout_secs`;
//! - a connection that sends and receives nothing for `http.idle_timeout_secs` is closed;
//! - at most `http.max_connections` are served at once. At the cap, a new connection makes
//!   room by closing the connection that has been idle longest (waiting for headers or between
//!   keep-alive requests); only when every connection is inside a request does the new one get
//!   a 503. So a flood of slow clients delays nobody by more than its own accept.
//!
//! The body limit (`http.max_body_bytes`) is a layer of the router ([`super::router`]).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Sleep;
use tower::ServiceExt;
use tracing::{debug, warn};

use crate::config::HttpConfig;
use crate::util::metrics::Metrics;

/// How long shutdown waits for connections to finish their request.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// The answer to a connection that finds every slot busy.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n\
Content-Type: text/plain\r\nContent-Length: 33\r\n\r\ntoo many connections; retry later\n";

/// The limits, from `[http]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    pub fn from_config(http: &HttpConfig) -> Self {
        Self {
            header_timeout: Duration::from_secs(http.header_timeout_secs),
            idle_timeout: Duration::from_secs(http.idle_timeout_secs),
            max_connections: http.max_connections,
        }
    }
}

/// One open connection, as the accept loop sees it.
struct Conn {
    id: u64,
    /// Requests being answered now.
    busy: AtomicUsize,
    /// When it last started or finished a request (or opened).
    idle_since: Mutex<Instant>,
    /// Told to close (to make room).
    evicted: AtomicBool,
    kill: Notify,
}

impl Conn {
    fn touch(&self) {
        *self
            .idle_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    fn idle_since(&self) -> Instant {
        *self
            .idle_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The open connections.
#[derive(Default)]
struct Table {
    conns: Mutex<Vec<Arc<Conn>>>,
    next_id: AtomicU64,
}

impl Table {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Connections that count against the cap (not already told to close).
    fn live(&self) -> usize {
        self.lock()
            .iter()
            .filter(|c| !c.evicted.load(Ordering::Relaxed))
            .count()
    }

    fn add(&self) -> Arc<Conn> {
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            busy: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            evicted: AtomicBool::new(false),
            kill: Notify::new(),
        });
        self.lock().push(Arc::clone(&conn));
        conn
    }

    fn remove(&self, id: u64) {
        self.lock().retain(|c| c.id != id);
    }

    /// Tells the connection idle longest to close; `false` when every one is in a request.
    fn evict_idlest(&self) -> bool {
        let conns = self.lock();
        let idlest = conns
            .iter()
            .filter(|c| !c.evicted.load(Ordering::Relaxed) && c.busy.load(Ordering::Relaxed) == 0)
            .min_by_key(|c| c.idle_since());
        match idlest {
            Some(conn) => {
                conn.evicted.store(true, Ordering::Relaxed);
                conn.kill.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets the connections finish
/// their request (for up to 5 s).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let table = Arc::new(Table::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was accepted:
                // pause a moment rather than spin.
                warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if table.live() >= limits.max_connections {
            if table.evict_idlest() {
                count(&metrics, "evicted");
            } else {
                count(&metrics, "refused");
                tokio::spawn(refuse(stream));
                continue;
            }
        }
        count(&metrics, "accepted");
        let conn = table.add();
        let (router, table, stop) = (router.clone(), Arc::clone(&table), stop_rx.clone());
        tokio::spawn(async move {
            serve_one(stream, &conn, router, limits, stop).await;
            table.remove(conn.id);
        });
    }
    let _ = stop_tx.send(true);
    let waited = Instant::now();
    while !table.lock().is_empty() && waited.elapsed() < SHUTDOWN_WAIT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

fn count(metrics: &Metrics, outcome: &str) {
    metrics.inc(
        "codearts_bot_http_connections_total",
        &[("outcome", outcome)],
    );
}

/// Answers 503 and closes, without waiting on a client that does not read.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_millis(200), stream.write_all(BUSY)).await;
}

/// Serves one connection until it closes, times out, is evicted or the server stops.
async fn serve_one(
    stream: TcpStream,
    conn: &Arc<Conn>,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let io = TokioIo::new(IdleStream::new(stream, limits.idle_timeout));
    let this = Arc::clone(conn);
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let (router, conn) = (router.clone(), Arc::clone(&this));
        async move {
            conn.busy.fetch_add(1, Ordering::Relaxed);
            conn.touch();
            let response = router.oneshot(request.map(axum::body::Body::new)).await;
            conn.busy.fetch_sub(1, Ordering::Relaxed);
            conn.touch();
            response
        }
    });
    let http = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(io, service);
    tokio::pin!(http);
    tokio::select! {
        result = http.as_mut() => {
            if let Err(e) = result {
                debug!(error = %e, "connection closed");
            }
        }
        () = conn.kill.notified() => debug!("connection closed to make room"),
        () = async { drop(stop.wait_for(|stopping| *stopping).await) } => {
            http.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_WAIT, http).await;
        }
    }
}

/// A stream that fails with `TimedOut` once nothing has been read or written for `timeout`
/// while the server waits on it.
struct IdleStream {
    inner: TcpStream,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl IdleStream {
    fn new(inner: TcpStream, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    fn active(&mut self) {
        let next = tokio::time::Instant::now() + self.timeout;
        self.deadline.as_mut().reset(next);
    }

    /// `Pending` unless the deadline passed, then the timeout error.
    fn expired<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "idle connection closed",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for IdleStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.active();
                Poll::Ready(result)
            }
            Poll::Pending => this.expired(cx),
        }
    }
}

impl AsyncWrite for IdleStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(result) => {
                this.active();
                Poll::Ready(result)
            }
            Poll::Pending => this.expired(cx),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
