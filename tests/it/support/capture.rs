//! A chat service stand-in: a real HTTP server on loopback that records every request and
//! answers from a script, so tests observe exactly what a platform would receive.
//!
//! `stop` really takes the service away: the listener closes (new connections are refused),
//! idle keep-alive connections close, and a connection still waiting for a slow scripted
//! answer is cut without one, as when a process dies. `start_on` brings a server back on the
//! same port.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Captured {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The decoded value of the first query parameter with this name (as a platform such as
    /// DingTalk reads `timestamp` and `sign`).
    pub fn query(&self, name: &str) -> Option<String> {
        let url = reqwest::Url::parse(&format!("http://capture{}", self.path)).ok()?;
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Wait this long before answering (a slow chat service).
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    /// A JSON answer (sets `Content-Type`).
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self::status(status)
            .with_header("content-type", "application/json")
            .with_body(&body.to_string())
    }

    /// A plain-text answer, as Slack gives (`ok`, `channel_not_found`, ...).
    pub fn text(status: u16, body: &str) -> Self {
        Self::status(status)
            .with_header("content-type", "text/plain")
            .with_body(body)
    }

    /// Discord's 429: JSON `retry_after` (seconds) and the `Retry-After` header.
    pub fn discord_rate_limited(retry_after: f64) -> Self {
        Self::json(
            429,
            serde_json::json!({
                "message": "You are being rate limited.",
                "retry_after": retry_after,
                "global": false,
            }),
        )
        .with_header("retry-after", &retry_after.ceil().to_string())
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn with_body(mut self, body: &str) -> Self {
        self.body = body.to_owned();
        self
    }
}

#[derive(Default)]
struct Shared {
    accepted: Vec<Captured>,
    all: Vec<Captured>,
    script: std::collections::VecDeque<Reply>,
}

#[derive(Clone)]
struct AppState {
    shared: Arc<Mutex<Shared>>,
    stopped: watch::Receiver<bool>,
}

/// The running server. Dropping it without `stop` also closes it (the stop signal's sender
/// goes away), but only `stop` waits until the port is closed.
pub struct CaptureServer {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl CaptureServer {
    /// Binds `127.0.0.1:0`.
    pub async fn start() -> Self {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Binds a given address: brings a stopped server back on its old port. Retries briefly,
    /// since the old socket may take a moment to be released.
    pub async fn start_on(addr: SocketAddr) -> Self {
        let mut attempts = 0;
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(_) if attempts < 100 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("capture server cannot bind {addr}: {e}"),
            }
        };
        let addr = listener.local_addr().expect("bound address");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (stop, stopped) = watch::channel(false);
        let app = Router::new().fallback(record).with_state(AppState {
            shared: Arc::clone(&shared),
            stopped: stopped.clone(),
        });
        let listener = KillableListener {
            inner: listener,
            stopped: stopped.clone(),
        };
        let mut shutdown = stopped;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // Resolves on `stop` and when the server is dropped (sender gone).
                    let _ = shutdown.wait_for(|s| *s).await;
                })
                .await;
        });
        Self {
            addr,
            shared,
            stop,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port><path>`; `path` may carry a query.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests answered with a 2xx, in arrival order.
    pub fn requests(&self) -> Vec<Captured> {
        self.shared.lock().unwrap().accepted.clone()
    }

    /// Every request received, whatever it was answered.
    pub fn all_requests(&self) -> Vec<Captured> {
        self.shared.lock().unwrap().all.clone()
    }

    /// The next requests get these answers, in order; after them every request gets the
    /// default: 200 with a Discord-like `{"id": ...}` message when the query asks `wait=true`,
    /// 200 with an empty body otherwise.
    pub fn script(&self, replies: Vec<Reply>) {
        self.shared.lock().unwrap().script.extend(replies);
    }

    /// Waits until `n` requests were accepted (or `limit` passed) and returns what arrived.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Captured> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let got = self.requests();
            if got.len() >= n || tokio::time::Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The first request to `path`, waiting up to `limit` for it (panics when none came).
    pub async fn wait_for_path(&self, path: &str, limit: Duration) -> Captured {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(found) = self.requests().into_iter().find(|r| r.path == path) {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "nothing reached {path} within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Closes the listener and cuts every connection; returns once the port is closed, so a
    /// client connecting afterwards is refused.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
            let _ = task.await;
        }
    }
}

async fn record(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let captured = Captured {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), ToString::to_string),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let wants_message = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "wait=true"));
    let (reply, seq) = {
        let mut shared = state.shared.lock().unwrap();
        shared.all.push(captured.clone());
        let seq = shared.all.len();
        (shared.script.pop_front(), seq)
    };
    let reply = reply.unwrap_or_else(|| {
        if wants_message {
            Reply::json(
                200,
                serde_json::json!({"id": seq.to_string(), "type": 0, "channel_id": "1"}),
            )
        } else {
            Reply::status(200)
        }
    });
    if !reply.delay.is_zero() {
        let mut stopped = state.stopped.clone();
        tokio::select! {
            () = tokio::time::sleep(reply.delay) => {}
            // Stopped while answering slowly: the connection is cut (see `Killable`), so the
            // client never sees this answer and it is not recorded as accepted.
            _ = stopped.wait_for(|s| *s) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
        }
    }
    if (200..300).contains(&reply.status) {
        state.shared.lock().unwrap().accepted.push(captured);
    }
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        reply.body,
    )
        .into_response();
    for (k, v) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// A listener whose connections all fail once the server is stopped.
struct KillableListener {
    inner: TcpListener,
    stopped: watch::Receiver<bool>,
}

impl axum::serve::Listener for KillableListener {
    type Io = Killable;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((io, addr)) => {
                    let mut stopped = self.stopped.clone();
                    let killed = Box::pin(async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    });
                    return (
                        Killable {
                            io,
                            killed,
                            dead: false,
                        },
                        addr,
                    );
                }
                // Out of file descriptors and the like: back off, as axum's own listener does.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that errors on every read and write once the server is stopped, so hyper
/// drops it (closing the socket) even in the middle of a request.
struct Killable {
    io: TcpStream,
    killed: Pin<Box<dyn Future<Output = ()> + Send>>,
    dead: bool,
}

impl Killable {
    fn is_dead(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.dead && self.killed.as_mut().poll(cx).is_ready() {
            self.dead = true;
        }
        self.dead
    }
}

fn cut() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "capture server stopped")
}

impl AsyncRead for Killable {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.is_dead(cx) {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Killable {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.is_dead(cx) {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.is_dead(cx) {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
