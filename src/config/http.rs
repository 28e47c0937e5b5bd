//! `[http]`: the health, readiness and metrics server's address, shutdown grace, the
//! limits that keep it standing when it is exposed (docs/http.md), and the status board
//! (docs/board.md).

use serde::{Deserialize, Serialize};

use crate::util::secret::Secret;

/// The shortest `board_token` accepted: a token guessed at the login form must be out of reach.
pub const MIN_BOARD_TOKEN_CHARS: usize = 16;

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
    /// Serve the status board (`/`, `/jobs/{id}`, `/api/v1/...`; docs/board.md).
    pub board: bool,
    /// What the board asks for (`Authorization: Bearer` or the login form). Required when
    /// `listen` is not a loopback address; when set, required on loopback too.
    pub board_token: Option<Secret>,
    /// Where people reach this listener (`https://bot.example.com`): cards link to the job's
    /// board page under it, storm summaries to the board filtered to their jobs.
    pub public_url: Option<String>,
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
            board: false,
            board_token: None,
            public_url: None,
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

    /// Whether `listen` binds only the loopback interface (127.0.0.0/8, ::1): only this
    /// machine can reach it. Decided on the configured address, not on who connects, so a
    /// bot bound to 0.0.0.0 asks for the token from every client, loopback ones included.
    pub fn is_loopback(&self) -> bool {
        self.listen_addr().is_ok_and(|a| a.ip().is_loopback())
    }

    /// The board page of `job` under `public_url`, when both the board and the URL are set.
    pub fn board_job_url(&self, job_id: &str) -> Option<String> {
        self.board_base()
            .map(|base| format!("{base}/jobs/{}", crate::util::text::url_component(job_id)))
    }

    /// The board filtered to `jobs`, when both the board and `public_url` are set.
    pub fn board_jobs_url<'a>(&self, jobs: impl IntoIterator<Item = &'a str>) -> Option<String> {
        let base = self.board_base()?;
        let ids: Vec<String> = jobs
            .into_iter()
            .map(crate::util::text::url_component)
            .collect();
        Some(format!("{base}/?jobs={}", ids.join(",")))
    }

    /// The board showing every job that is not passing (`?status=problems`), when both the
    /// board and `public_url` are set: where a storm summary links when the list of its jobs
    /// would make too long a URL.
    pub fn board_problems_url(&self) -> Option<String> {
        self.board_base()
            .map(|base| format!("{base}/?status=problems"))
    }

    fn board_base(&self) -> Option<&str> {
        self.public_url
            .as_deref()
            .filter(|_| self.board)
            .map(|u| u.trim_end_matches('/'))
    }

    pub(crate) fn validate(&self, problems: &mut Vec<String>) {
        if let Err(e) = self.listen_addr() {
            problems.push(format!("http.listen: {e}"));
        }
        self.validate_board(problems);
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

    /// The board's keys: a token wherever others can connect, a token long enough not to be
    /// guessed, and a public URL the cards can link to. Messages never quote the token.
    fn validate_board(&self, problems: &mut Vec<String>) {
        let token = self.board_token.as_ref();
        if self.board && token.is_none() && self.listen_addr().is_ok() && !self.is_loopback() {
            problems.push(format!(
                "http.board_token: required when http.board = true and http.listen ({}) is not \
                 a loopback address: anyone who can reach the port would read the board. Set \
                 board_token (e.g. board_token = \"${{BOARD_TOKEN}}\", at least \
                 {MIN_BOARD_TOKEN_CHARS} characters) or listen on 127.0.0.1",
                self.listen
            ));
        }
        if let Some(token) = token {
            let chars = token.expose().chars().count();
            if chars < MIN_BOARD_TOKEN_CHARS {
                problems.push(format!(
                    "http.board_token: {chars} characters is too short (at least \
                     {MIN_BOARD_TOKEN_CHARS}; e.g. `openssl rand -hex 24`)"
                ));
            } else if token.expose().chars().any(|c| c.is_control() || c == ' ') {
                problems.push(
                    "http.board_token: must not contain spaces or control characters (it is \
                     sent in an Authorization header)"
                        .to_owned(),
                );
            }
        }
        if let Some(url) = &self.public_url
            && let Err(e) = super::url::validate_url(url)
        {
            problems.push(format!("http.public_url: {e}"));
        }
    }
}
