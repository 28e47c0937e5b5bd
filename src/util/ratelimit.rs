//! The ceiling on CodeArts calls: spreads a cycle's calls at most `max_rps` per second, and
//! slows down by itself when the API throttles (429, `APIG.0308`, `CB.00060211`): the rate
//! halves and every caller pauses for the throttle's `Retry-After` (or 2 s); each success then
//! wins back a little (additive increase), as TCP does.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How long everyone pauses after a throttling answer without `Retry-After`: the gateway asks
/// for 2 to 5 seconds (docs/codearts.md, "Throttling").
const DEFAULT_PAUSE: Duration = Duration::from_secs(2);
/// The floor of the adaptive rate.
const MIN_RPS: f64 = 1.0;

#[derive(Debug)]
struct State {
    /// The rate now, calls per second; `None` while unlimited and never throttled.
    rate: Option<f64>,
    /// When the next call may start.
    next_slot: Instant,
    /// No call starts before this (after a throttle).
    paused_until: Instant,
}

/// Shared by the poll workers of every cycle.
#[derive(Debug)]
pub struct RateLimiter {
    max_rps: Option<f64>,
    state: Mutex<State>,
}

impl RateLimiter {
    /// `max_rps`: the ceiling, or `None` for no ceiling (throttling still slows us down).
    pub fn new(max_rps: Option<f64>) -> Self {
        let now = Instant::now();
        Self {
            max_rps: max_rps.filter(|r| *r > 0.0),
            state: Mutex::new(State {
                rate: max_rps.filter(|r| *r > 0.0),
                next_slot: now,
                paused_until: now,
            }),
        }
    }

    /// Waits for this call's slot.
    pub async fn acquire(&self) {
        let start_at = {
            let Ok(mut s) = self.state.lock() else { return };
            let now = Instant::now();
            let earliest = now.max(s.paused_until);
            match s.rate {
                None => earliest,
                Some(rate) => {
                    let slot = earliest.max(s.next_slot);
                    s.next_slot = slot + Duration::from_secs_f64(1.0 / rate.max(MIN_RPS));
                    slot
                }
            }
        };
        // A deadline already passed would still wait for the timer's next tick (1 ms).
        if start_at > Instant::now() {
            tokio::time::sleep_until(start_at).await;
        }
    }

    /// The API said "too many requests": halve the rate and pause everyone.
    pub fn throttled(&self, retry_after: Option<Duration>, observed_rps: f64) {
        let Ok(mut s) = self.state.lock() else { return };
        let current = s.rate.unwrap_or(observed_rps.max(MIN_RPS * 2.0));
        s.rate = Some((current / 2.0).max(MIN_RPS));
        let pause = retry_after
            .unwrap_or(DEFAULT_PAUSE)
            .min(Duration::from_secs(60));
        s.paused_until = s.paused_until.max(Instant::now() + pause);
    }

    /// A call went through: win back a little of the rate.
    pub fn succeeded(&self) {
        let Ok(mut s) = self.state.lock() else { return };
        if let Some(rate) = s.rate {
            let ceiling = self.max_rps.unwrap_or(f64::INFINITY);
            let next = rate + (rate * 0.02).max(0.1);
            s.rate = if next >= ceiling {
                self.max_rps
            } else {
                Some(next)
            };
        }
    }

    /// The rate in force (calls per second), `None` when unlimited.
    pub fn current_rps(&self) -> Option<f64> {
        self.state.lock().ok().and_then(|s| s.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_are_spread_at_the_ceiling() {
        let limiter = RateLimiter::new(Some(10.0));
        let start = Instant::now();
        for _ in 0..11 {
            limiter.acquire().await;
        }
        let spent = start.elapsed();
        assert!(
            spent >= Duration::from_millis(990) && spent <= Duration::from_millis(1010),
            "{spent:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_halves_the_rate_and_pauses_everyone() {
        let limiter = RateLimiter::new(Some(10.0));
        limiter.acquire().await;
        limiter.throttled(Some(Duration::from_secs(3)), 10.0);
        assert_eq!(limiter.current_rps(), Some(5.0));
        let start = Instant::now();
        limiter.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_secs(3),
            "paused for Retry-After"
        );
        for _ in 0..1000 {
            limiter.succeeded();
        }
        assert_eq!(
            limiter.current_rps(),
            Some(10.0),
            "recovers up to the ceiling, not beyond"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_until_throttled() {
        let limiter = RateLimiter::new(None);
        let start = Instant::now();
        for _ in 0..100 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        limiter.throttled(None, 200.0);
        assert_eq!(limiter.current_rps(), Some(100.0));
        let start = Instant::now();
        limiter.acquire().await;
        assert!(start.elapsed() >= DEFAULT_PAUSE);
    }
}
