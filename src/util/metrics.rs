//! Prometheus metrics: counters, gauges and histograms kept in memory and rendered in the text
//! exposition format (version 0.0.4) at `GET /metrics`.
//!
//! A handful of metric families with low-cardinality labels does not justify a metrics
//! framework: this is a map from (name, labels) to a value, rendered in a stable order.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Latency buckets in seconds: from a loopback call to a slow API.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// The families we export: name, type, help. Rendering and tests iterate this list.
const FAMILIES: &[(&str, Kind, &str)] = &[
    (
        "codearts_bot_polls_total",
        Kind::Counter,
        "ShowJobInfo calls by outcome (ok, not_found, forbidden, or the error kind).",
    ),
    (
        "codearts_bot_poll_duration_seconds",
        Kind::Histogram,
        "Latency of ShowJobInfo calls.",
    ),
    (
        "codearts_bot_list_pages_total",
        Kind::Counter,
        "Job list pages read by the poller (ListProjectJobs, ListJob), by API and outcome.",
    ),
    (
        "codearts_bot_contexts_total",
        Kind::Counter,
        "Failure contexts fetched, by outcome (done, partial, failed).",
    ),
    (
        "codearts_bot_actions_total",
        Kind::Counter,
        "Actions on CodeArts from chat, by action (rerun, stop) and outcome (done, failed, already, refused).",
    ),
    (
        "codearts_bot_leader",
        Kind::Gauge,
        "1 while this replica holds the leader's lease (polls, alerts, sends), 0 otherwise.",
    ),
    (
        "codearts_bot_lease_changes_total",
        Kind::Counter,
        "Times this replica took (took) or lost (lost) the leader's lease.",
    ),
    (
        "codearts_bot_http_connections_total",
        Kind::Counter,
        "Connections to the HTTP listener, by outcome (accepted, evicted to make room, refused).",
    ),
    (
        "codearts_bot_digests_total",
        Kind::Counter,
        "Scheduled digests by channel and outcome (queued, green: all green and not sent, missed: the bot was down).",
    ),
    (
        "codearts_bot_cycles_total",
        Kind::Counter,
        "Poll cycles run, by result (ok, source_unreachable, store_error).",
    ),
    (
        "codearts_bot_cycle_duration_seconds",
        Kind::Histogram,
        "Wall time of poll cycles.",
    ),
    (
        "codearts_bot_cycle_skips_total",
        Kind::Counter,
        "Scheduler ticks skipped because the previous cycle was still running.",
    ),
    (
        "codearts_bot_watched_jobs",
        Kind::Gauge,
        "Jobs watched at the last cycle.",
    ),
    (
        "codearts_bot_events_total",
        Kind::Counter,
        "Job events detected, by kind.",
    ),
    (
        "codearts_bot_deliveries_total",
        Kind::Counter,
        "Delivery attempts by channel and outcome (sent, retry, failed).",
    ),
    (
        "codearts_bot_outbox_pending",
        Kind::Gauge,
        "Deliveries waiting to be sent.",
    ),
    (
        "codearts_bot_outbox_oldest_age_seconds",
        Kind::Gauge,
        "Age of the oldest pending delivery.",
    ),
    (
        "codearts_bot_token_refreshes_total",
        Kind::Counter,
        "IAM token requests by outcome.",
    ),
    (
        "codearts_bot_chat_commands_total",
        Kind::Counter,
        "Chat commands by name and outcome.",
    ),
    (
        "codearts_bot_last_cycle_success_timestamp_seconds",
        Kind::Gauge,
        "Unix time of the last cycle that reached CodeArts.",
    ),
];

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The outcomes a poll can have: `ok`, `not_found`, `forbidden`, and the client's error kinds.
pub const POLL_OUTCOMES: [&str; 13] = [
    "ok",
    "not_found",
    "forbidden",
    "unauthorized",
    "bad_request",
    "rate_limited",
    "server_error",
    "unexpected_status",
    "timeout",
    "connect",
    "malformed",
    "api_failed",
    "auth",
];

/// Per-poll metrics, updated on the hot path without locks or allocation: a 10,000-job cycle
/// records 20,000 of these.
#[derive(Debug, Default)]
struct PollMetrics {
    outcomes: [AtomicU64; POLL_OUTCOMES.len()],
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// The process's metrics. One instance lives in the app state.
#[derive(Debug, Default)]
pub struct Metrics {
    values: Mutex<BTreeMap<(&'static str, Labels), f64>>,
    histograms: Mutex<BTreeMap<(&'static str, Labels), Histogram>>,
    polls: PollMetrics,
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one poll: its outcome (one of [`POLL_OUTCOMES`]) and latency.
    pub fn poll(&self, outcome: &str, latency: Duration) {
        if let Some(i) = POLL_OUTCOMES.iter().position(|o| *o == outcome) {
            self.polls.outcomes[i].fetch_add(1, Ordering::Relaxed);
        }
        let secs = latency.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.polls.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.polls.count.fetch_add(1, Ordering::Relaxed);
        self.polls.sum_micros.fetch_add(
            u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Adds `by` to a counter.
    pub fn add(&self, name: &'static str, pairs: &[(&'static str, &str)], by: f64) {
        if let Ok(mut values) = self.values.lock() {
            *values.entry((name, labels(pairs))).or_insert(0.0) += by;
        }
    }

    pub fn inc(&self, name: &'static str, pairs: &[(&'static str, &str)]) {
        self.add(name, pairs, 1.0);
    }

    /// Sets a counter from a total kept elsewhere (e.g. by the auth method).
    pub fn set_counter(&self, name: &'static str, pairs: &[(&'static str, &str)], total: f64) {
        self.set(name, pairs, total);
    }

    /// Sets a gauge.
    pub fn set(&self, name: &'static str, pairs: &[(&'static str, &str)], value: f64) {
        if let Ok(mut values) = self.values.lock() {
            values.insert((name, labels(pairs)), value);
        }
    }

    /// Records one observation in a histogram.
    pub fn observe(&self, name: &'static str, pairs: &[(&'static str, &str)], value: Duration) {
        let secs = value.as_secs_f64();
        if let Ok(mut histograms) = self.histograms.lock() {
            let h = histograms.entry((name, labels(pairs))).or_default();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        }
    }

    /// The current value of a counter or gauge (0 when never set).
    pub fn value(&self, name: &'static str, pairs: &[(&'static str, &str)]) -> f64 {
        if name == "codearts_bot_polls_total"
            && let [("outcome", outcome)] = pairs
            && let Some(i) = POLL_OUTCOMES.iter().position(|o| o == outcome)
        {
            return self.polls.outcomes[i].load(Ordering::Relaxed) as f64;
        }
        self.values
            .lock()
            .ok()
            .and_then(|v| v.get(&(name, labels(pairs))).copied())
            .unwrap_or(0.0)
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut values = self.values.lock().map(|v| v.clone()).unwrap_or_default();
        let mut histograms = self
            .histograms
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default();
        for (i, outcome) in POLL_OUTCOMES.iter().enumerate() {
            let n = self.polls.outcomes[i].load(Ordering::Relaxed);
            if n > 0 {
                values.insert(
                    ("codearts_bot_polls_total", labels(&[("outcome", outcome)])),
                    n as f64,
                );
            }
        }
        let count = self.polls.count.load(Ordering::Relaxed);
        if count > 0 {
            let mut h = Histogram {
                count,
                sum: self.polls.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
                ..Histogram::default()
            };
            for (i, bucket) in self.polls.buckets.iter().enumerate() {
                h.counts[i] = bucket.load(Ordering::Relaxed);
            }
            histograms.insert(("codearts_bot_poll_duration_seconds", Vec::new()), h);
        }
        let mut out = String::new();
        for (name, kind, help) in FAMILIES {
            let type_name = match kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {type_name}");
            if *kind == Kind::Histogram {
                for ((n, l), h) in histograms.iter().filter(|((n, _), _)| n == name) {
                    for (i, bound) in BUCKETS.iter().enumerate() {
                        let mut with_le = l.clone();
                        with_le.push(("le", format_float(*bound)));
                        let _ =
                            writeln!(out, "{n}_bucket{} {}", render_labels(&with_le), h.counts[i]);
                    }
                    let mut inf = l.clone();
                    inf.push(("le", "+Inf".to_owned()));
                    let _ = writeln!(out, "{n}_bucket{} {}", render_labels(&inf), h.count);
                    let _ = writeln!(out, "{n}_sum{} {}", render_labels(l), format_float(h.sum));
                    let _ = writeln!(out, "{n}_count{} {}", render_labels(l), h.count);
                }
            } else {
                for ((n, l), v) in values.iter().filter(|((n, _), _)| n == name) {
                    let _ = writeln!(out, "{n}{} {}", render_labels(l), format_float(*v));
                }
            }
        }
        out
    }
}

fn render_labels(labels: &Labels) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let escaped = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{escaped}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn format_float(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms_in_the_text_format() {
        let m = Metrics::new();
        m.poll("ok", Duration::from_millis(30));
        m.poll("ok", Duration::from_millis(30));
        m.set("codearts_bot_watched_jobs", &[], 3.0);
        m.inc(
            "codearts_bot_deliveries_total",
            &[("channel", "o\"ps"), ("outcome", "sent")],
        );
        let text = m.render();
        assert!(text.contains("# TYPE codearts_bot_polls_total counter"));
        assert!(
            text.contains("codearts_bot_polls_total{outcome=\"ok\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("codearts_bot_watched_jobs 3\n"));
        assert!(
            text.contains("codearts_bot_deliveries_total{channel=\"o\\\"ps\",outcome=\"sent\"} 1")
        );
        assert!(
            text.contains("codearts_bot_poll_duration_seconds_bucket{le=\"0.025\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("codearts_bot_poll_duration_seconds_bucket{le=\"0.05\"} 2\n"));
        assert!(text.contains("codearts_bot_poll_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("codearts_bot_poll_duration_seconds_count 2\n"));
        assert_eq!(
            m.value("codearts_bot_polls_total", &[("outcome", "ok")]),
            2.0
        );
    }
}
