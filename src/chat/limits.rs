//! What keeps chat from spending the bot's CodeArts budget: a token bucket per user, and one
//! shared answer per job for a few seconds (concurrent queries of one job make one call).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use crate::codearts::{self, JobId, JobInfo};

/// Most users remembered; the longest idle are forgotten first (their buckets were full).
const MAX_USERS: usize = 10_000;

/// Each user's bucket: `per_minute` commands at once, refilled evenly over a minute.
#[derive(Debug)]
pub struct UserLimiter {
    per_minute: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl UserLimiter {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: f64::from(per_minute.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one command from the user's bucket, or says how long until one is available.
    pub fn check(&self, user: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let rate = self.per_minute / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_USERS && !buckets.contains_key(user) {
            let full = Duration::from_secs(60);
            buckets.retain(|_, (_, at)| now.duration_since(*at) < full);
        }
        let (tokens, at) = buckets
            .entry(user.to_owned())
            .or_insert((self.per_minute, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(self.per_minute);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / rate))
        }
    }
}

type Answer = Result<JobInfo, codearts::Error>;
/// When an entry was made, and the answer (set once the call returns).
type Entry = (Instant, Arc<OnceCell<Answer>>);

/// One answer per job, reused for `ttl` by every query of that job; queries that arrive while
/// a call is in flight wait for it instead of making their own.
#[derive(Debug)]
pub struct AnswerCache {
    ttl: Duration,
    entries: Mutex<HashMap<JobId, Entry>>,
}

impl AnswerCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub async fn get_or_fetch<F, Fut>(&self, job: &JobId, fetch: F) -> Answer
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Answer>,
    {
        let cell = {
            let now = Instant::now();
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            entries
                .retain(|_, (at, cell)| now.duration_since(*at) < self.ttl || !cell.initialized());
            Arc::clone(
                &entries
                    .entry(job.clone())
                    .or_insert_with(|| (now, Arc::new(OnceCell::new())))
                    .1,
            )
        };
        cell.get_or_init(fetch).await.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_user_gets_a_burst_then_waits() {
        let limiter = UserLimiter::new(3);
        assert!(limiter.check("u").is_ok());
        assert!(limiter.check("u").is_ok());
        assert!(limiter.check("u").is_ok());
        let wait = limiter.check("u").unwrap_err();
        assert!(
            wait <= Duration::from_secs(20) && wait > Duration::from_secs(15),
            "{wait:?}"
        );
        assert!(limiter.check("someone else").is_ok());
    }

    #[tokio::test]
    async fn concurrent_queries_of_one_job_make_one_call() {
        let cache = Arc::new(AnswerCache::new(Duration::from_secs(5)));
        let calls = Arc::new(AtomicUsize::new(0));
        let job = JobId::parse("f5af662119404ad187437cd272b5099b").unwrap();
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (cache, calls, job) = (Arc::clone(&cache), Arc::clone(&calls), job.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_fetch(&job, || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(JobInfo::default())
                    })
                    .await
            }));
        }
        for t in tasks {
            assert!(t.await.unwrap().is_ok());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
