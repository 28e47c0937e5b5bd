//! The generic JSON webhook: a stable public contract for receivers we do not write.
//!
//! Body (exactly these keys, documented in the README; `context` and `mention` in
//! docs/events.md, "The webhook contract: `context`, `mention` and `link`"):
//! ```json
//! {"id": "<delivery id>", "event": "build_failed", "job_id": "...", "job_name": "...",
//!  "detected_at": "2026-11-26T12:00:00Z", "previous": {JobInfo} | null,
//!  "current": {JobInfo} | null, "summary": "Build failed: web (success → failed)",
//!  "context": {Context}, "mention": {Person}, "link": "https://...",
//!  "board_url": "https://..."}
//! ```
//! `context`, `mention`, `link` (the job's page from `codearts.link_template`, for the
//! receiver's own "Open" button) and `board_url` (the job's page on the status board, with
//! `[http] board` and `public_url`) are left out (the key absent, never `null`) when the event
//! has none, so a body without them is byte for byte what it was before they existed.
//! Headers: `Content-Type: application/json`, `User-Agent: codearts-bot/<version>`,
//! `X-CodeArts-Bot-Delivery: <id>` (the same on every retry: de-duplicate on it),
//! `X-CodeArts-Bot-Event: <kind>`, and with a channel secret
//! `X-Signature: sha256=<lower-case hex HMAC-SHA256(secret, raw body)>`.
//!
//! With `batch = true` (docs/events.md, "Batched webhook"), one POST carries a JSON array of
//! up to [`BATCH_MAX`] such objects, oldest first, always an array (even of one); the headers
//! are `X-CodeArts-Bot-Batch: <count>` instead of the delivery and event headers (each object
//! has its own `id` and `event`), and the signature covers the whole array. A failed POST is
//! retried whole: receivers de-duplicate on each object's `id`.

use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use sha2::Sha256;

use super::error::SendError;
use super::http;
use super::outgoing::Outgoing;
use super::platform::{Platform, PlatformFacts, Signing, Window};
use crate::codearts::JobInfo;
use crate::config::{ChannelConfig, Person};
use crate::domain::context::Context;
use crate::util::secret::Secret;
use crate::util::text;

/// The header carrying the delivery id.
pub const DELIVERY_HEADER: &str = "x-codearts-bot-delivery";
/// The header carrying the event kind.
pub const EVENT_HEADER: &str = "x-codearts-bot-event";
/// The header carrying how many events a batched POST holds (`batch = true`).
pub const BATCH_HEADER: &str = "x-codearts-bot-batch";
/// The most events one batched POST carries.
pub const BATCH_MAX: usize = 50;
/// The header carrying the body's HMAC, when the channel has a secret.
pub const SIGNATURE_HEADER: &str = "x-signature";
/// What the signature header's value starts with.
pub const SIGNATURE_PREFIX: &str = "sha256=";

/// The generic webhook's facts (see `docs/platforms.md#generic-webhook`): one POST per event
/// by contract, at most 10 per second so a receiver is not flooded, signed in a header when
/// the channel has a secret, no editing, no size limit of ours.
pub const FACTS: PlatformFacts = PlatformFacts {
    name: "webhook",
    max_batch: 1,
    pacing: &[Window::per_secs(10, 1)],
    signing: Signing::SecretInHeader,
    edits_messages: false,
    buttons: false,
    size_limit: None,
    link_max: super::platform::PORTABLE_URL_MAX,
};

type HmacSha256 = Hmac<Sha256>;

/// A receiver of the generic JSON body, optionally signed.
pub struct WebhookSink {
    url: Secret,
    secret: Option<Secret>,
    http: reqwest::Client,
    /// `batch = true`: one POST of an array per batch.
    batch: bool,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink")
            .field("url", &self.url)
            .field("signed", &self.secret.is_some())
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// `secret`, when set, signs every body (an empty secret counts as none).
    pub fn new(url: Secret, secret: Option<Secret>, http: reqwest::Client) -> Self {
        let secret = secret.filter(|s| !s.is_empty());
        Self {
            url,
            secret,
            http,
            batch: false,
        }
    }

    /// The same sink, posting arrays (`batch = true`) or one event per POST.
    pub fn batched(self, batch: bool) -> Self {
        Self { batch, ..self }
    }

    /// Posts the contract body; `Ok` once the receiver answered 2xx.
    pub async fn send(&self, out: &Outgoing<'_>) -> Result<(), SendError> {
        self.post(
            body(out),
            &[
                (DELIVERY_HEADER, out.delivery_id),
                (EVENT_HEADER, out.event.kind.as_str()),
            ],
        )
        .await
    }

    /// Posts the batch as one array of contract bodies; `Ok` once the receiver answered 2xx.
    pub async fn send_array(&self, batch: &[Outgoing<'_>]) -> Result<(), SendError> {
        let count = batch.len().to_string();
        self.post(batch_body(batch), &[(BATCH_HEADER, &count)])
            .await
    }

    /// Posts `body` with these headers, signed when the channel has a secret.
    async fn post(&self, body: Vec<u8>, pairs: &[(&'static str, &str)]) -> Result<(), SendError> {
        let url = http::parse_url(&self.url)?;
        let mut headers = HeaderMap::new();
        let mut put = |name: &'static str, value: &str| -> Result<(), SendError> {
            let value = HeaderValue::from_str(value).map_err(|_| {
                SendError::permanent(format!("{name} cannot be sent as an HTTP header"))
            })?;
            headers.insert(HeaderName::from_static(name), value);
            Ok(())
        };
        for (name, value) in pairs {
            put(name, value)?;
        }
        if let Some(secret) = &self.secret {
            put(
                SIGNATURE_HEADER,
                &signature(secret.expose().as_bytes(), &body),
            )?;
        }
        http::post_json(&self.http, url, &self.url, body, headers).await
    }
}

impl Platform for WebhookSink {
    fn from_config(
        channel: &ChannelConfig,
        http: reqwest::Client,
        _discord: Option<&std::sync::Arc<serenity::http::Http>>,
    ) -> Self {
        Self::new(
            channel.url.clone().unwrap_or_default(),
            channel.secret.clone(),
            http,
        )
        .batched(channel.batch)
    }

    /// One POST per event by contract, in order; the first failure is returned (receivers
    /// de-duplicate retried ones on the delivery id). With `batch = true`, one POST of an
    /// array: it succeeds or fails (and is retried) whole.
    async fn send_batch(&self, batch: &[Outgoing<'_>]) -> Result<(), SendError> {
        if self.batch {
            return self.send_array(batch).await;
        }
        for out in batch {
            self.send(out).await?;
        }
        Ok(())
    }

    fn max_batch(&self) -> Option<usize> {
        self.batch.then_some(BATCH_MAX)
    }
}

/// The contract body, field order fixed by this struct.
#[derive(Serialize)]
struct Body<'a> {
    id: &'a str,
    event: &'static str,
    job_id: &'a str,
    job_name: &'a str,
    detected_at: String,
    previous: Option<&'a JobInfo>,
    current: Option<&'a JobInfo>,
    summary: &'a str,
    /// The failure context, exactly as `Context` serialises; absent when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a Context>,
    /// The person the channel mentions (`[[people]]`: `codearts` and each platform's id);
    /// absent when nobody is.
    #[serde(skip_serializing_if = "Option::is_none")]
    mention: Option<&'a Person>,
    /// The job's page (`codearts.link_template`), for a receiver's own "Open" button; absent
    /// without a template or for an event about no single job.
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<String>,
    /// The job's page on the status board (`[http] public_url`, docs/board.md); absent
    /// without a board, a public URL, or a single job.
    #[serde(skip_serializing_if = "Option::is_none")]
    board_url: Option<String>,
}

/// The exact bytes sent (and signed) for one message.
pub fn body(out: &Outgoing<'_>) -> Vec<u8> {
    // Strings, options and a derived struct of strings and numbers: serialising cannot fail.
    serde_json::to_vec(&contract(out)).unwrap_or_default()
}

/// The exact bytes sent (and signed) for a batch (`batch = true`): an array of the objects
/// [`body`] sends one by one, in order.
pub fn batch_body(batch: &[Outgoing<'_>]) -> Vec<u8> {
    let bodies: Vec<Body<'_>> = batch.iter().map(contract).collect();
    serde_json::to_vec(&bodies).unwrap_or_default()
}

/// One event's contract object.
fn contract<'a>(out: &Outgoing<'a>) -> Body<'a> {
    let event = out.event;
    Body {
        id: out.delivery_id,
        event: event.kind.as_str(),
        job_id: &event.job_id,
        job_name: &event.job_name,
        detected_at: text::rfc3339(event.detected_at),
        previous: event.previous.as_ref(),
        current: event.current.as_ref(),
        summary: &event.summary,
        context: out.context,
        mention: out.mention,
        link: super::escape::valid_link(out.link),
        board_url: super::escape::valid_link_within(out.board, FACTS.link_max),
    }
}

/// `sha256=<lower-case hex HMAC-SHA256(secret, body)>`, the value of `X-Signature`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    format!(
        "{SIGNATURE_PREFIX}{}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Checks an `X-Signature` value against a body in constant time: what a receiver (and our
/// tests) do. Accepts upper- or lower-case hex; refuses anything without the `sha256=` prefix.
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_part) = header.trim().strip_prefix(SIGNATURE_PREFIX) else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_part) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::{Event, EventKind};
    use chrono::{TimeZone, Utc};

    fn event() -> Event {
        let info = |status: &str| JobInfo {
            id: Some("f5af662119404ad187437cd272b5099b".to_owned()),
            job_name: Some("web-frontend".to_owned()),
            last_build_status: Some(status.to_owned()),
            last_build_time: Some(1_721_793_407_000),
            build_time: Some("27.51".to_owned()),
            ..JobInfo::default()
        };
        Event {
            kind: EventKind::BuildFailed,
            job_id: "f5af662119404ad187437cd272b5099b".to_owned(),
            job_name: "web-frontend".to_owned(),
            detected_at: Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap(),
            previous: Some(info("success")),
            current: Some(info("failed")),
            summary: "Build failed: web-frontend (success → failed)".to_owned(),
        }
    }

    #[test]
    fn the_link_is_there_for_a_receivers_open_button_only_when_usable() {
        let ev = event();
        let with = |link| {
            let raw = body(&Outgoing {
                delivery_id: "dlv-1",
                event: &ev,
                link,
                context: None,
                mention: None,
                buttons: None,
                board: None,
            });
            serde_json::from_slice::<serde_json::Value>(&raw).unwrap()
        };
        assert_eq!(
            with(Some("https://console.example/job/1"))["link"],
            "https://console.example/job/1"
        );
        assert!(with(Some("javascript:alert(1)")).get("link").is_none());
        assert!(with(None).get("link").is_none());
    }

    #[test]
    fn body_has_exactly_the_contract_keys() {
        let ev = event();
        let raw = body(&Outgoing {
            delivery_id: "dlv-1",
            event: &ev,
            link: None,
            context: None,
            mention: None,
            buttons: None,
            board: None,
        });
        let value: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            [
                "current",
                "detected_at",
                "event",
                "id",
                "job_id",
                "job_name",
                "previous",
                "summary"
            ]
        );
        assert_eq!(value["id"], "dlv-1");
        assert_eq!(value["event"], "build_failed");
        assert_eq!(value["detected_at"], "2026-11-26T12:00:00Z");
        assert_eq!(value["previous"]["last_build_status"], "success");
        assert_eq!(value["current"]["last_build_status"], "failed");
        assert_eq!(value["current"]["build_time"], "27.51");
        assert_eq!(value["current"]["last_build_time"], 1_721_793_407_000_i64);
        assert_eq!(
            value["current"],
            serde_json::to_value(ev.current.as_ref().unwrap()).unwrap()
        );
    }

    #[test]
    fn context_and_mention_are_added_exactly_and_only_when_present() {
        use crate::notify::context_text::tests::{alice, failed_context};
        let ev = event();
        let (context, person) = (failed_context(), alice());
        let plain = |raw: &[u8]| {
            let mut value: serde_json::Value = serde_json::from_slice(raw).unwrap();
            let map = value.as_object_mut().unwrap();
            (map.remove("context"), map.remove("mention"), value)
        };
        let without = body(&Outgoing {
            delivery_id: "dlv-1",
            event: &ev,
            link: None,
            context: None,
            mention: None,
            buttons: None,
            board: None,
        });
        let with = body(&Outgoing {
            delivery_id: "dlv-1",
            event: &ev,
            link: None,
            context: Some(&context),
            mention: Some(&person),
            buttons: None,
            board: None,
        });
        let (none, nobody, before) = plain(&without);
        assert_eq!((none, nobody), (None, None), "absent keys, not null");
        let (ctx, mention, after) = plain(&with);
        assert_eq!(before, after, "every other field unchanged");
        let ctx = ctx.unwrap();
        assert_eq!(ctx, serde_json::to_value(&context).unwrap());
        assert_eq!(
            serde_json::from_value::<Context>(ctx.clone()).unwrap(),
            context
        );
        assert_eq!(ctx["failed_stage"], "compile");
        assert_eq!(ctx["log_tail"].as_array().unwrap().len(), 202);
        assert_eq!(
            ctx["tests"],
            serde_json::json!({"total": 120, "failed": 3, "errors": 1})
        );
        let mention = mention.unwrap();
        assert_eq!(mention["codearts"], "alice");
        assert_eq!(mention["discord"], "123456789012345678");
        assert_eq!(mention["slack"], "U012ABCDEF");
        // Key order: the contract's keys first, then context, then mention.
        let text = String::from_utf8(with).unwrap();
        assert!(text.find("\"summary\"") < text.find("\"context\""));
        assert!(text.find("\"context\"") < text.find("\"mention\""));
    }

    #[test]
    fn a_vanished_job_has_null_current() {
        let mut ev = event();
        ev.kind = EventKind::JobNotFound;
        ev.current = None;
        let raw = body(&Outgoing {
            delivery_id: "d",
            event: &ev,
            link: None,
            context: None,
            mention: None,
            buttons: None,
            board: None,
        });
        let value: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert!(value["current"].is_null());
        assert!(value.as_object().unwrap().contains_key("current"));
        assert_eq!(value["event"], "job_not_found");
    }

    #[test]
    fn signature_matches_rfc_4231_test_case_2() {
        let sig = signature(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify(b"Jefe", b"what do ya want for nothing?", &sig));
        assert!(verify(
            b"Jefe",
            b"what do ya want for nothing?",
            &sig.to_ascii_uppercase().replace("SHA256=", "sha256=")
        ));
    }

    #[test]
    fn verify_refuses_tampering_and_garbage() {
        let sig = signature(b"key", b"body");
        assert!(!verify(b"key", b"body!", &sig));
        assert!(!verify(b"other", b"body", &sig));
        assert!(!verify(
            b"key",
            b"body",
            sig.trim_start_matches(SIGNATURE_PREFIX)
        ));
        assert!(!verify(b"key", b"body", "sha256=zz"));
        assert!(!verify(b"key", b"body", "sha256="));
        assert!(!verify(b"key", b"body", &sig[..sig.len() - 2]));
    }

    #[test]
    fn a_batch_is_an_array_of_the_same_objects_in_order() {
        let (first, mut second) = (event(), event());
        second.kind = EventKind::BuildRecovered;
        let out = |id, event| Outgoing {
            delivery_id: id,
            event,
            link: None,
            context: None,
            mention: None,
            buttons: None,
            board: None,
        };
        let batch = [out("d1", &first), out("d2", &second)];
        let raw = batch_body(&batch);
        let value: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        let items = value.as_array().unwrap();
        assert_eq!(items.len(), 2);
        for (item, one) in items.iter().zip(&batch) {
            let alone: serde_json::Value = serde_json::from_slice(&body(one)).unwrap();
            assert_eq!(item, &alone, "each object is what one POST would carry");
        }
        assert_eq!(items[1]["event"], "build_recovered");
        let single: serde_json::Value = serde_json::from_slice(&batch_body(&batch[..1])).unwrap();
        assert!(single.is_array(), "a batch of one is still an array");
        let sink = WebhookSink::new(
            Secret::new("https://h.example/x"),
            None,
            reqwest::Client::new(),
        );
        assert_eq!(Platform::max_batch(&sink), None);
        assert_eq!(Platform::max_batch(&sink.batched(true)), Some(BATCH_MAX));
    }

    #[test]
    fn signing_covers_the_exact_bytes_sent() {
        let ev = event();
        let out = Outgoing {
            delivery_id: "d",
            event: &ev,
            link: None,
            context: None,
            mention: None,
            buttons: None,
            board: None,
        };
        let raw = body(&out);
        assert_eq!(raw, body(&out), "the body must be deterministic");
        assert!(verify(b"s3cret", &raw, &signature(b"s3cret", &raw)));
    }

    #[test]
    fn board_url_is_there_only_when_usable() {
        let ev = event();
        let with = |board| {
            let out = Outgoing {
                delivery_id: "d",
                event: &ev,
                link: None,
                context: None,
                mention: None,
                buttons: None,
                board,
            };
            serde_json::from_slice::<serde_json::Value>(&body(&out)).unwrap()
        };
        let board = "https://bot.example/jobs/f5af662119404ad187437cd272b5099b";
        assert_eq!(with(Some(board))["board_url"], board);
        assert!(with(None).get("board_url").is_none());
        assert!(with(Some("javascript:alert(1)")).get("board_url").is_none());
    }
}
