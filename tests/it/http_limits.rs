//! The HTTP listener exposed to a hostile network: 2,000 clients that open a connection, send
//! half a request and wait. The bot must keep its descriptors bounded, close them by itself,
//! and still answer `/healthz`, a Discord PING and run its poll cycle meanwhile.

use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::harness::{Env, serve, start_bot, tick};

const SLOW_CLIENTS: usize = 2_000;
const MAX_CONNECTIONS: usize = 256;

/// Open descriptors of this process (the test and the bot share it).
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// The bot's own ends of TCP connections to `port` (its accepted sockets), counted through
/// /proc: unlike the process's whole descriptor count, this is not moved by the other tests
/// of the binary (their database pools, their servers) running at the same time.
fn bot_sockets(port: u16) -> usize {
    let mut inodes = std::collections::HashSet::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            // State 0A is the listening socket itself.
            if local_port == Some(port)
                && fields.get(3) != Some(&"0A")
                && let Some(inode) = fields.get(9)
            {
                inodes.insert(format!("socket:[{inode}]"));
            }
        }
    }
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| {
        dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|link| inodes.contains(&link.to_string_lossy().into_owned()))
            .count()
    })
}

/// Lets this process hold the slow clients' sockets as well as the bot's: the soft limit up
/// to the hard one (a no-op where it already is).
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

async fn signed_ping(
    http: &reqwest::Client,
    addr: std::net::SocketAddr,
    key: &SigningKey,
) -> (u16, Value) {
    let body = br#"{"type":1}"#;
    let ts = chrono::Utc::now().timestamp().to_string();
    let mut message = ts.as_bytes().to_vec();
    message.extend_from_slice(body);
    let response = http
        .post(format!("http://{addr}/discord/interactions"))
        .header(
            "x-signature-ed25519",
            hex::encode(key.sign(&message).to_bytes()),
        )
        .header("x-signature-timestamp", ts)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .expect("the PING is answered");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn two_thousand_slow_connections_keep_neither_healthz_nor_a_ping_nor_a_cycle_out() {
    raise_fd_limit();
    let env = Env::start_on_sqlite(2).await;
    let key = SigningKey::from_bytes(&[7; 32]);
    let config = env
        .toml()
        .jobs(2)
        .http(Some(&format!(
            "header_timeout_secs = 2\nmax_connections = {MAX_CONNECTIONS}"
        )))
        .table(&format!(
            "[discord]\npublic_key = \"{}\"",
            hex::encode(key.verifying_key().to_bytes())
        ))
        .config();
    let bot = start_bot(config).await;
    let served = serve(&bot).await;
    let baseline = open_fds();

    let mut slow = Vec::with_capacity(SLOW_CLIENTS);
    for _ in 0..SLOW_CLIENTS {
        let mut stream = TcpStream::connect(served.addr).await.expect("connects");
        // Half a request: the headers never end.
        let _ = stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: bot\r\nX-Slow: 1\r\n")
            .await;
        slow.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held_by_bot = bot_sockets(served.addr.port());
    eprintln!("the bot holds {held_by_bot} sockets for {SLOW_CLIENTS} slow clients");
    assert!(held_by_bot > 0, "the count sees the bot's sockets");
    assert!(
        held_by_bot <= MAX_CONNECTIONS + 32,
        "the bot holds {held_by_bot} descriptors for {SLOW_CLIENTS} slow clients (cap {MAX_CONNECTIONS})"
    );

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    let health = http
        .get(format!("http://{}/healthz", served.addr))
        .send()
        .await
        .expect("/healthz answers under the flood");
    assert_eq!(health.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        signed_ping(&http, served.addr, &key).await,
        (200, json!({"type": 1}))
    );
    let metrics = bot.metrics.render();
    assert!(
        metrics.contains("codearts_bot_http_connections_total{outcome=\"evicted\"}"),
        "{metrics}"
    );
    let report = tick(&bot).await;
    assert_eq!(report.ok, 2, "the poll cycle reaches CodeArts: {report:?}");

    // The slow clients still held are closed by the bot once the header timeout passes.
    let mut closed = 0;
    for stream in slow.iter_mut().rev().take(50) {
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
        if matches!(read, Ok(Ok(_) | Err(_))) {
            closed += 1;
        }
    }
    assert_eq!(
        closed, 50,
        "every slow connection is closed within the header timeout"
    );
    drop(slow);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        bot_sockets(served.addr.port()) <= 32,
        "the bot's sockets back to normal: {} (descriptors {}, {baseline} at the start)",
        bot_sockets(served.addr.port()),
        open_fds()
    );
}
