//! The HTTP side every webhook sink shares: posting JSON with the bot's `User-Agent`, reading
//! at most [`MAX_RESPONSE_BYTES`] of an answer, classifying answers into `Ok`, `Retry` and
//! `Permanent` (by HTTP status, or by a platform's JSON result code via [`CodedAnswers`]),
//! describing transport failures, and scrubbing the credential URL out of every reason.
//!
//! A webhook URL is a credential (Discord's, Slack's and Feishu's embed the token, DingTalk's
//! and WeCom's carry it in the query): no reason built here ever contains one. The answer
//! shapes handled here are listed per platform in
//! `docs/platforms.md#how-answers-are-classified`.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::error::SendError;
use crate::util::http::without_url;
use crate::util::secret::Secret;
use crate::util::text;

/// Error bodies are read up to this size; the rest is not needed to explain a failure.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// A failure reason is cut to this many characters.
pub const MAX_REASON_CHARS: usize = 200;

/// The `User-Agent` every sink sends, so a receiver can tell our requests apart.
pub const USER_AGENT: &str = concat!("codearts-bot/", env!("CARGO_PKG_VERSION"));

/// A message as JSON bytes; a value that cannot be encoded is a permanent failure.
pub(crate) fn encode(message: &impl serde::Serialize) -> Result<Vec<u8>, SendError> {
    serde_json::to_vec(message)
        .map_err(|e| SendError::permanent(format!("could not encode the message: {e}")))
}

/// Parses a sink's URL, with an error that does not repeat it.
pub(crate) fn parse_url(url: &Secret) -> Result<reqwest::Url, SendError> {
    if url.is_empty() {
        return Err(SendError::permanent("the channel has no url configured"));
    }
    let parsed = reqwest::Url::parse(url.expose())
        .map_err(|e| SendError::permanent(format!("the channel's url is not valid ({e})")))?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        other => Err(SendError::permanent(format!(
            "the channel's url has scheme {other:?}, not http or https"
        ))),
    }
}

/// What a chat service answered: enough to decide whether it took the message.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// POSTs a JSON body and classifies the outcome by HTTP status alone. Every reason is
/// scrubbed of `secret_url`.
pub(crate) async fn post_json(
    http: &reqwest::Client,
    url: reqwest::Url,
    secret_url: &Secret,
    body: Vec<u8>,
    headers: HeaderMap,
) -> Result<(), SendError> {
    let answer = post(http, url, secret_url, body, headers).await?;
    classify_http(answer.status, &answer.headers, &answer.body).map_err(|e| e.scrubbed(secret_url))
}

/// POSTs a JSON body and returns whatever came back; only a request that got no answer is an
/// error (a retry, scrubbed of `secret_url`).
pub(crate) async fn post(
    http: &reqwest::Client,
    url: reqwest::Url,
    secret_url: &Secret,
    body: Vec<u8>,
    headers: HeaderMap,
) -> Result<Answer, SendError> {
    send_json(http, reqwest::Method::POST, url, secret_url, body, headers).await
}

/// Sends a JSON body with `method` and returns whatever came back (see [`post`]).
pub(crate) async fn send_json(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: reqwest::Url,
    secret_url: &Secret,
    body: Vec<u8>,
    headers: HeaderMap,
) -> Result<Answer, SendError> {
    let response = http
        .request(method, url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::USER_AGENT, USER_AGENT)
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|e| transport_error(&e).scrubbed(secret_url))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = match read_capped(response).await {
        Ok(body) => body,
        // The status already says whether the message was taken; a body cut short changes
        // nothing for a 2xx, and only loses detail for an error.
        Err(e) => {
            tracing::debug!(status = status.as_u16(), error = %scrub(&without_url(&e), secret_url),
                "response body could not be read");
            Vec::new()
        }
    };
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// How a platform that answers HTTP 200 to refused messages says what happened: the JSON key
/// of its result code (0 is success) and which codes mean "slow down" or "never".
pub(crate) struct CodedAnswers {
    /// The platform's name, for reasons.
    pub platform: &'static str,
    /// Keys that may hold the code, the first present wins (`code`, `StatusCode`, `errcode`).
    pub keys: &'static [&'static str],
    /// Rate-limit codes: retried after `throttle_wait` (or the `Retry-After` header).
    pub throttled: &'static [i64],
    pub throttle_wait: Duration,
    /// Codes that no retry can fix (bad signature, keyword check, deleted or disabled bot,
    /// payload refused).
    pub permanent: &'static [i64],
}

impl CodedAnswers {
    /// `Ok` only for a 2xx whose JSON code is 0. A known throttling code is a retry after the
    /// platform's window, a known permanent code a permanent failure (whatever the HTTP
    /// status); other non-2xx answers are classified by [`classify_http`]; any other code, or
    /// a 2xx without one, is retried with backoff: the message may not have been taken.
    pub(crate) fn classify(&self, answer: &Answer) -> Result<(), SendError> {
        let code = result_code(&answer.body, self.keys);
        let reason = || {
            let said = platform_message(&answer.body).unwrap_or_else(|| "no explanation".into());
            truncate_reason(&format!(
                "{} refused the message (HTTP {}): {said}",
                self.platform,
                answer.status.as_u16()
            ))
        };
        if let Some(code) = code {
            if self.throttled.contains(&code) {
                return Err(SendError::Retry {
                    reason: reason(),
                    after: Some(
                        crate::codearts::client::retry_after(&answer.headers)
                            .unwrap_or(self.throttle_wait),
                    ),
                });
            }
            if self.permanent.contains(&code) {
                return Err(SendError::Permanent { reason: reason() });
            }
        }
        classify_http(answer.status, &answer.headers, &answer.body)?;
        match code {
            Some(0) => Ok(()),
            Some(_) => Err(SendError::Retry {
                reason: reason(),
                after: None,
            }),
            None => Err(SendError::Retry {
                reason: truncate_reason(&format!(
                    "{} answered HTTP {} without a result code, so the message may not have been taken",
                    self.platform,
                    answer.status.as_u16()
                )),
                after: None,
            }),
        }
    }
}

/// The first of `keys` in a JSON object body holding an integer (or an integer as text).
fn result_code(body: &[u8], keys: &[&str]) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    keys.iter().find_map(|k| match value.get(*k)? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A request that got no HTTP answer: always worth retrying (timeouts, refused or reset
/// connections, DNS failures), described without the URL.
fn transport_error(e: &reqwest::Error) -> SendError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    SendError::Retry {
        reason: truncate_reason(&format!("{what}: {}", without_url(e))),
        after: None,
    }
}

/// Reads at most [`MAX_RESPONSE_BYTES`] of a body; the rest is dropped.
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_RESPONSE_BYTES - body.len();
        if chunk.len() >= room {
            body.extend_from_slice(&chunk[..room]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Removes a credential URL from a text: the URL as configured, as normalised, and its path and
/// query (where Discord and Slack put the token), in case a library printed only those.
fn scrub(text: &str, url: &Secret) -> String {
    let raw = url.expose();
    if raw.is_empty() {
        return text.to_owned();
    }
    let mut out = text.replace(raw, "<url>");
    if let Ok(parsed) = reqwest::Url::parse(raw) {
        out = out.replace(parsed.as_str(), "<url>");
        let path = parsed.path();
        if path.len() > 1 {
            out = out.replace(path, "<path>");
        }
        if let Some(query) = parsed.query().filter(|q| !q.is_empty()) {
            out = out.replace(query, "<query>");
        }
    }
    out
}

/// Turns an HTTP answer into `Ok`, `Retry` or `Permanent`.
///
/// 2xx is accepted. 429 is retried after the service's delay: Discord's JSON `retry_after`
/// (float seconds, more precise) wins over the `Retry-After` header. 408, 425 and 5xx are
/// retried (after `Retry-After` when given). Every other status, 3xx and 4xx alike, is
/// permanent, with a reason naming the status and the platform's own message.
pub(crate) fn classify_http(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), SendError> {
    if status.is_success() {
        return Ok(());
    }
    let message = platform_message(body);
    let reason = truncate_reason(&match &message {
        Some(m) => format!("HTTP {status}: {m}"),
        None => format!("HTTP {status}"),
    });
    let header_delay = crate::codearts::client::retry_after(headers);
    match status.as_u16() {
        429 => Err(SendError::Retry {
            reason,
            after: body_retry_after(body).or(header_delay),
        }),
        408 | 425 | 500..=599 => Err(SendError::Retry {
            reason,
            after: header_delay,
        }),
        _ => Err(SendError::Permanent { reason }),
    }
}

/// Discord's `retry_after` (seconds, float) from a 429 body, bounded like the header.
fn body_retry_after(body: &[u8]) -> Option<Duration> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let secs = value.get("retry_after")?.as_f64()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// What the platform said about a failure: Discord's `message` (and `code`), a generic
/// `error`/`error_msg`/`msg`, or the body's text (Slack answers plain `channel_not_found`).
fn platform_message(body: &[u8]) -> Option<String> {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body) {
        let text = [
            "message",
            "error_msg",
            "errmsg",
            "msg",
            "StatusMessage",
            "error",
            "description",
        ]
        .iter()
        .find_map(|k| match map.get(*k) {
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            _ => None,
        });
        let code = ["code", "error_code", "errcode", "StatusCode"]
            .iter()
            .find_map(|k| map.get(*k).filter(|v| !v.is_null()));
        let code = code.map(|c| match c {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        return match (text, code) {
            (Some(t), Some(c)) => Some(format!("{} (code {})", text::printable(&t), c)),
            (Some(t), None) => Some(text::printable(&t)),
            (None, Some(c)) => Some(format!("code {c}")),
            (None, None) => None,
        };
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(4 * MAX_REASON_CHARS)]);
    let text = text::printable(&text);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!text.is_empty()).then_some(text)
}

fn truncate_reason(reason: &str) -> String {
    text::truncate_chars(reason, MAX_REASON_CHARS)
}

impl SendError {
    /// The same error with `url` (and the parts of it that carry the credential) removed from
    /// its reason.
    pub(crate) fn scrubbed(self, url: &Secret) -> Self {
        match self {
            SendError::Retry { reason, after } => SendError::Retry {
                reason: scrub(&reason, url),
                after,
            },
            SendError::Permanent { reason } => SendError::Permanent {
                reason: scrub(&reason, url),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn classify(status: u16, hdrs: &[(&'static str, &str)], body: &str) -> Result<(), SendError> {
        classify_http(
            StatusCode::from_u16(status).unwrap(),
            &headers(hdrs),
            body.as_bytes(),
        )
    }

    #[test]
    fn http_answers_are_classified_as_the_dispatcher_needs() {
        /// What a row expects: accepted, retried after this many seconds, or refused with a
        /// reason containing this text.
        #[derive(Debug)]
        enum Want {
            Ok,
            Retry(Option<f64>),
            Permanent(&'static str),
        }
        let discord_429 =
            r#"{"message":"You are being rate limited.","retry_after":1.5,"global":false}"#;
        type Headers<'a> = &'a [(&'static str, &'a str)];
        let table: &[(u16, Headers, &str, Want)] = &[
            (200, &[], r#"{"id":"1"}"#, Want::Ok),
            (204, &[], "", Want::Ok),
            (
                400,
                &[],
                r#"{"message":"Invalid Form Body","code":50035}"#,
                Want::Permanent("HTTP 400 Bad Request: Invalid Form Body (code 50035)"),
            ),
            (
                401,
                &[],
                r#"{"message":"401: Unauthorized","code":0}"#,
                Want::Permanent("HTTP 401 Unauthorized"),
            ),
            (
                404,
                &[],
                r#"{"message":"Unknown Webhook","code":10015}"#,
                Want::Permanent("HTTP 404 Not Found: Unknown Webhook (code 10015)"),
            ),
            (
                410,
                &[],
                "channel_is_archived",
                Want::Permanent("HTTP 410 Gone: channel_is_archived"),
            ),
            (429, &[("retry-after", "3")], "", Want::Retry(Some(3.0))),
            (
                429,
                &[("retry-after", "2")],
                discord_429,
                Want::Retry(Some(1.5)),
            ),
            (429, &[], discord_429, Want::Retry(Some(1.5))),
            (429, &[], "", Want::Retry(None)),
            (500, &[], "<html>oops</html>", Want::Retry(None)),
            (503, &[("retry-after", "7")], "", Want::Retry(Some(7.0))),
            (408, &[], "", Want::Retry(None)),
            (425, &[], "", Want::Retry(None)),
            (302, &[], "", Want::Permanent("HTTP 302 Found")),
            (418, &[], "", Want::Permanent("HTTP 418")),
        ];
        for (status, hdrs, body, want) in table {
            let got = classify(*status, hdrs, body);
            let ok = match (want, &got) {
                (Want::Ok, Ok(())) => true,
                (Want::Retry(secs), Err(SendError::Retry { after, .. })) => {
                    *after == secs.map(Duration::from_secs_f64)
                }
                (Want::Permanent(needle), Err(SendError::Permanent { reason })) => {
                    reason.contains(needle)
                }
                _ => false,
            };
            assert!(ok, "{status} {hdrs:?} {body:?}: want {want:?}, got {got:?}");
        }
    }

    #[test]
    fn hostile_retry_after_values_do_not_panic() {
        for v in ["-1", "NaN", "inf", "1e400", "soon"] {
            let got = classify(503, &[("retry-after", v)], "");
            assert!(
                matches!(got, Err(SendError::Retry { after: None, .. })),
                "{v}: {got:?}"
            );
        }
        for body in [
            r#"{"retry_after":-4}"#,
            r#"{"retry_after":"x"}"#,
            r#"{"retry_after":1e400}"#,
        ] {
            let got = classify(429, &[], body);
            assert!(
                matches!(got, Err(SendError::Retry { after: None, .. })),
                "{body}: {got:?}"
            );
        }
        let huge = classify(429, &[], r#"{"retry_after":1e12}"#);
        assert!(
            matches!(huge, Err(SendError::Retry { after: Some(d), .. }) if d.as_secs() == 3600)
        );
    }

    #[test]
    fn reasons_are_short_and_single_line() {
        let body = format!("line one\nline two {}", "x".repeat(1000));
        let got = classify(400, &[], &body).unwrap_err();
        assert!(got.reason().chars().count() <= MAX_REASON_CHARS, "{got:?}");
        assert!(!got.reason().contains('\n'));
        assert!(got.reason().ends_with(text::MARKER));
    }

    #[test]
    fn scrub_removes_the_url_and_its_token() {
        let url = Secret::new("https://discord.com/api/webhooks/123/TOKEN?thread_id=9");
        let text = "error sending request for url (https://discord.com/api/webhooks/123/TOKEN?thread_id=9): \
                    also /api/webhooks/123/TOKEN";
        let clean = scrub(text, &url);
        assert!(!clean.contains("TOKEN"), "{clean}");
    }

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    const RULES: CodedAnswers = CodedAnswers {
        platform: "Chat",
        keys: &["code", "StatusCode"],
        throttled: &[11232],
        throttle_wait: Duration::from_secs(60),
        permanent: &[19021],
    };

    #[test]
    fn result_codes_decide_before_and_after_the_http_status() {
        assert_eq!(RULES.classify(&answer(200, r#"{"code":0}"#)), Ok(()));
        assert_eq!(
            RULES.classify(&answer(200, r#"{"StatusCode":"0"}"#)),
            Ok(())
        );
        let throttled = RULES.classify(&answer(200, r#"{"code":11232,"msg":"slow"}"#));
        assert_eq!(
            throttled,
            Err(SendError::Retry {
                reason: "Chat refused the message (HTTP 200): slow (code 11232)".to_owned(),
                after: Some(Duration::from_secs(60)),
            })
        );
        let mut with_header = answer(429, r#"{"code":11232}"#);
        with_header
            .headers
            .insert("retry-after", "5".parse().unwrap());
        assert!(matches!(
            RULES.classify(&with_header),
            Err(SendError::Retry { after: Some(a), .. }) if a == Duration::from_secs(5)
        ));
        assert!(matches!(
            RULES.classify(&answer(400, r#"{"code":19021,"msg":"bad sign"}"#)),
            Err(SendError::Permanent { .. })
        ));
        assert!(matches!(
            RULES.classify(&answer(200, r#"{"code":777}"#)),
            Err(SendError::Retry { after: None, .. })
        ));
        assert!(matches!(
            RULES.classify(&answer(200, "<html>proxy</html>")),
            Err(SendError::Retry { after: None, .. })
        ));
        assert!(matches!(
            RULES.classify(&answer(404, "")),
            Err(SendError::Permanent { .. })
        ));
        assert!(matches!(
            RULES.classify(&answer(503, r#"{"code":0}"#)),
            Err(SendError::Retry { .. })
        ));
    }
}
