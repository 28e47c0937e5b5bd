//! `[http]`: the health, readiness and metrics server's address and shutdown grace.

use serde::{Deserialize, Serialize};

/// `[http]`: the health, readiness and metrics server.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on; port 0 picks a free port (logged at start).
    pub listen: String,
    /// Seconds that shutdown waits for the running cycle and in-flight deliveries.
    pub shutdown_grace_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".to_owned(),
            shutdown_grace_secs: 10,
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
    }
}
