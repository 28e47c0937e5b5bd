//! Injected faults: what the next API calls answer instead of the job (a status, a raw body,
//! a delay, a `Retry-After`, a dropped connection), and for how many calls.
//!
//! Faults form a queue: the first one that matches a call applies to it until its `count` is
//! used up, then the next one applies; a fault without `count` applies until the faults are
//! cleared. A fault matches every call unless it names an operation (`api`, as in `by_api`)
//! or a piece of the path (`path`), so a test can break one project's list and nothing else. When no
//! fault is armed, an API call costs one atomic load here.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::reply::{self, Documented};

/// The longest delay a fault may ask for, so a typo cannot hang a test run.
const MAX_DELAY_MS: u64 = 600_000;

/// One fault as the control API receives it (`PUT /_sim/faults`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultSpec {
    status: Option<u16>,
    body: Option<String>,
    delay_ms: Option<u64>,
    retry_after: Option<u64>,
    count: Option<u32>,
    #[serde(default)]
    drop: bool,
    /// Only calls of this operation (`"ListProjectJobs"`, ...).
    api: Option<String>,
    /// Only calls whose path contains this text.
    path: Option<String>,
}

/// A validated fault, ready to answer calls.
#[derive(Debug)]
pub(crate) struct Fault {
    spec: FaultSpec,
    delay: Option<Duration>,
    /// The status to answer; `None` when the call is only delayed and then served normally.
    status: Option<StatusCode>,
    /// The raw body and its content type, when one was given.
    body: Option<(Bytes, HeaderValue)>,
    retry_after: Option<HeaderValue>,
}

impl Fault {
    fn from_spec(spec: FaultSpec) -> Result<Self, String> {
        let status = match (spec.status, &spec.body) {
            (Some(code), _) if !(200..=599).contains(&code) => {
                return Err(format!("status {code} is not between 200 and 599"));
            }
            (Some(code), None) if code < 400 => {
                return Err(format!(
                    "status {code} needs a body (only 4xx and 5xx have a documented one)"
                ));
            }
            (Some(code), _) => StatusCode::from_u16(code).ok(),
            (None, Some(_)) => Some(StatusCode::OK),
            (None, None) => None,
        };
        if spec.retry_after.is_some() && status.is_none() {
            return Err("retry_after needs a status (or a body) to answer with".to_owned());
        }
        if status.is_none() && spec.delay_ms.is_none() && !spec.drop {
            return Err("the fault does nothing: give status, body, delay_ms or drop".to_owned());
        }
        if spec.count == Some(0) {
            return Err("count must be at least 1 (leave it out for all calls)".to_owned());
        }
        let delay = match spec.delay_ms {
            Some(ms) if ms > MAX_DELAY_MS => {
                return Err(format!("delay_ms {ms} is more than {MAX_DELAY_MS}"));
            }
            Some(ms) => Some(Duration::from_millis(ms)),
            None => None,
        };
        let body = spec
            .body
            .as_ref()
            .map(|raw| (Bytes::from(raw.clone()), content_type_of(raw)));
        let retry_after = spec.retry_after.map(HeaderValue::from);
        Ok(Fault {
            spec,
            delay,
            status,
            body,
            retry_after,
        })
    }

    /// Whether the fault applies to a call of `api` (its `by_api` name) at `path`.
    fn matches(&self, api: Option<&str>, path: &str) -> bool {
        self.spec
            .api
            .as_deref()
            .is_none_or(|want| Some(want) == api)
            && self
                .spec
                .path
                .as_deref()
                .is_none_or(|want| path.contains(want))
    }

    /// How long to wait before answering.
    pub(crate) fn delay(&self) -> Option<Duration> {
        self.delay
    }

    /// Whether the connection is dropped instead of answered.
    pub(crate) fn drops(&self) -> bool {
        self.spec.drop
    }

    /// The answer that replaces the normal one; `None` when the call is served normally
    /// (after the delay).
    pub(crate) fn response(&self, request_id: &str) -> Option<Response> {
        let status = self.status?;
        let mut response = match &self.body {
            Some((bytes, content_type)) => {
                let mut response = Response::new(Body::from(bytes.clone()));
                *response.status_mut() = status;
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, content_type.clone());
                response
            }
            None => Documented::for_status(status)
                .map_or_else(|| reply::generic(status), |doc| doc.response(request_id)),
        };
        if let Some(after) = &self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, after.clone());
        }
        Some(response)
    }

    /// The fault as the control API shows it.
    fn view(&self, remaining: Option<u32>) -> Value {
        json!({
            "status": self.spec.status,
            "body": self.spec.body,
            "delay_ms": self.spec.delay_ms,
            "retry_after": self.spec.retry_after,
            "count": remaining,
            "drop": self.spec.drop,
            "api": self.spec.api,
            "path": self.spec.path,
        })
    }
}

/// A response whose body fails at once: hyper then closes the connection without completing
/// the answer, so the client sees a broken connection.
pub(crate) fn dropped_connection() -> Response {
    let broken = futures_util::stream::iter([Err::<Bytes, std::io::Error>(std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "simulated dropped connection",
    ))]);
    Response::new(Body::from_stream(broken))
}

/// Text that parses as JSON is sent as JSON, text starting with `<` as HTML, the rest as text.
fn content_type_of(raw: &str) -> HeaderValue {
    if serde_json::from_str::<serde::de::IgnoredAny>(raw).is_ok() {
        reply::JSON
    } else if raw.trim_start().starts_with('<') {
        HeaderValue::from_static("text/html; charset=utf-8")
    } else {
        HeaderValue::from_static("text/plain; charset=utf-8")
    }
}

/// Parses a `PUT /_sim/faults` body: one fault object, or an array of them applied in order.
pub(crate) fn parse(body: &[u8]) -> Result<Vec<Armed>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let specs: Vec<FaultSpec> = match value {
        Value::Array(_) => serde_json::from_value(value),
        _ => serde_json::from_value(value).map(|one| vec![one]),
    }
    .map_err(|e| format!("not a fault: {e}"))?;
    specs
        .into_iter()
        .enumerate()
        .map(|(i, spec)| {
            let remaining = spec.count;
            Fault::from_spec(spec)
                .map(|fault| Armed {
                    fault: Arc::new(fault),
                    remaining,
                })
                .map_err(|e| format!("fault {i}: {e}"))
        })
        .collect()
}

/// A fault in the queue with the calls it still applies to (`None`: until cleared).
#[derive(Debug)]
pub(crate) struct Armed {
    fault: Arc<Fault>,
    remaining: Option<u32>,
}

/// The queue of armed faults.
#[derive(Default)]
pub(crate) struct Faults {
    /// `true` while the queue is not empty; read without the lock on every call.
    armed: AtomicBool,
    queue: Mutex<VecDeque<Armed>>,
}

impl Faults {
    /// Replaces the queue.
    pub(crate) fn set(&self, faults: Vec<Armed>) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        *queue = faults.into();
        self.armed.store(!queue.is_empty(), Ordering::Release);
    }

    pub(crate) fn clear(&self) {
        self.set(Vec::new());
    }

    /// The fault for a call of `api` (its `by_api` name) at `path`, if any, using up one of
    /// its `count`.
    pub(crate) fn next(&self, api: Option<&str>, path: &str) -> Option<Arc<Fault>> {
        if !self.armed.load(Ordering::Acquire) {
            return None;
        }
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let at = queue.iter().position(|a| a.fault.matches(api, path))?;
        let armed = &mut queue[at];
        let fault = Arc::clone(&armed.fault);
        match &mut armed.remaining {
            None => {}
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => {
                queue.remove(at);
                self.armed.store(!queue.is_empty(), Ordering::Release);
            }
        }
        Some(fault)
    }

    /// The queue as the control API shows it.
    pub(crate) fn view(&self) -> Vec<Value> {
        let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.iter().map(|a| a.fault.view(a.remaining)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counted_fault_applies_that_many_times_then_the_next_one() {
        let faults = Faults::default();
        faults
            .set(parse(br#"[{"status": 500, "count": 2}, {"status": 503, "count": 1}]"#).unwrap());
        let statuses: Vec<Option<u16>> = (0..4)
            .map(|_| {
                faults
                    .next(None, "/")
                    .and_then(|f| f.status)
                    .map(|s| s.as_u16())
            })
            .collect();
        assert_eq!(statuses, [Some(500), Some(500), Some(503), None]);
    }

    #[test]
    fn a_fault_without_count_applies_until_cleared() {
        let faults = Faults::default();
        faults.set(parse(br#"{"delay_ms": 5}"#).unwrap());
        for _ in 0..10 {
            assert!(faults.next(None, "/").is_some());
        }
        faults.clear();
        assert!(faults.next(None, "/").is_none());
    }

    #[test]
    fn a_targeted_fault_applies_only_to_its_operation_and_path() {
        let faults = Faults::default();
        faults.set(
            parse(br#"{"status": 403, "api": "ListProjectJobs", "path": "/v1/job/p2/"}"#).unwrap(),
        );
        assert!(
            faults
                .next(Some("ShowJobInfo"), "/v1/job/p2/info")
                .is_none()
        );
        assert!(
            faults
                .next(Some("ListProjectJobs"), "/v1/job/p1/list")
                .is_none()
        );
        assert!(
            faults
                .next(Some("ListProjectJobs"), "/v1/job/p2/list")
                .is_some()
        );
    }

    #[test]
    fn nonsense_faults_are_refused() {
        for bad in [
            &br#"{}"#[..],
            br#"{"status": 99}"#,
            br#"{"status": 200}"#,
            br#"{"status": 500, "count": 0}"#,
            br#"{"retry_after": 3}"#,
            br#"{"status": 500, "delay": 3}"#,
            br#"{"delay_ms": 9999999}"#,
            b"not json",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn raw_bodies_get_a_fitting_content_type() {
        assert_eq!(content_type_of(r#"{"a":1}"#), reply::JSON);
        assert_eq!(
            content_type_of("<html>502</html>"),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type_of("oops"), "text/plain; charset=utf-8");
    }
}
