//! What the bot knows about its own health: when the last poll cycle reached CodeArts, and
//! why the last one did not. Read by `/readyz`, written by the poller.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

#[derive(Debug)]
pub struct Health {
    pub started: Instant,
    /// The schedule's interval (the gap between its next two ticks at start).
    pub interval: Duration,
    last_success: Mutex<Option<DateTime<Utc>>>,
    last_failure: Mutex<Option<String>>,
}

impl Health {
    pub fn new(interval: Duration) -> Self {
        Self {
            started: Instant::now(),
            interval,
            last_success: Mutex::new(None),
            last_failure: Mutex::new(None),
        }
    }

    pub fn cycle_succeeded(&self, at: DateTime<Utc>) {
        if let Ok(mut last) = self.last_success.lock() {
            *last = Some(at);
        }
        if let Ok(mut failure) = self.last_failure.lock() {
            *failure = None;
        }
    }

    pub fn cycle_failed(&self, why: String) {
        if let Ok(mut failure) = self.last_failure.lock() {
            *failure = Some(why);
        }
    }

    pub fn last_success(&self) -> Option<DateTime<Utc>> {
        self.last_success.lock().ok().and_then(|l| *l)
    }

    pub fn last_failure(&self) -> Option<String> {
        self.last_failure.lock().ok().and_then(|l| l.clone())
    }
}
