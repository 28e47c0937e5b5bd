//! `[http]`: the health, readiness and metrics server's address, shutdown grace, and the
//! limits that keep it standing when it is exposed (docs/http.md).

use serde::{Deserialize, Serialize};

/// `[http]`: the health, readiness and metrics server.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on; port 0 picks a free port (logged at start).
    pub listen: String,
    /// Seconds that shutdown waits for the running cycle and in-flight deliveries.
    pub shutdown_grace_secs: u64,
    /// A client must send a request's headers within this many seconds.
    pub header_timeout_secs: u64,
    /// A connection that sends and receives nothing for this many seconds is closed.
    pub idle_timeout_secs: u64,
    /// Connections served at once; past it, the longest-idle connection makes room (or the
    /// new one gets 503 when every connection is busy).
    pub max_connections: usize,
    /// Largest request body any route reads, in bytes.
    pub max_body_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".to_owned(),
            shutdown_grace_secs: 10,
            header_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_connections: 256,
            max_body_bytes: 64 * 1024,
        }
    }
}

impl HttpConfig {
    pub fn listen_addr(&self) -> Result<std::net::SocketAddr, String> {
        self.listen.parse().map_err(|e| {
            format!(
                "{:?} is not an address like 127.0.0.1:9464 ({e})",
                self.listen
            )
        })
    }

    pub(crate) fn validate(&self, problems: &mut Vec<String>) {
        if let Err(e) = self.listen_addr() {
            problems.push(format!("http.listen: {e}"));
        }
        if !(1..=300).contains(&self.shutdown_grace_secs) {
            problems.push(format!(
                "http.shutdown_grace_secs: {} is out of range (1 to 300)",
                self.shutdown_grace_secs
            ));
        }
        let ranges: [(&str, usize, std::ops::RangeInclusive<usize>); 4] = [
            (
                "header_timeout_secs",
                self.header_timeout_secs as usize,
                1..=300,
            ),
            (
                "idle_timeout_secs",
                self.idle_timeout_secs as usize,
                1..=3600,
            ),
            ("max_connections", self.max_connections, 4..=65_536),
            (
                "max_body_bytes",
                self.max_body_bytes,
                1024..=16 * 1024 * 1024,
            ),
        ];
        for (key, value, range) in ranges {
            if !range.contains(&value) {
                problems.push(format!(
                    "http.{key}: {value} is out of range ({} to {})",
                    range.start(),
                    range.end()
                ));
            }
        }
    }
}
