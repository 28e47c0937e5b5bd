//! The sinks against a real HTTP server on loopback: what a chat service receives, and how
//! each kind of answer (or no answer) is reported to the dispatcher.

use std::time::Duration;

use crate::support::capture::{CaptureServer, Reply};
use base64::Engine as _;
use chrono::{TimeZone, Utc};
use codearts_bot::codearts::JobInfo;
use codearts_bot::config::{ChannelConfig, ChannelType, Person};
use codearts_bot::domain::context::{Context, StageOutcome, TestCounts};
use codearts_bot::domain::event::{Event, EventKind};
use codearts_bot::notify::{Outgoing, SendError, Sink, webhook};
use codearts_bot::util::secret::Secret;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

const HMAC_KEY: &str = "hm4c-s3cret";
const TOKEN: &str = "SECRETTOKENabc123";

fn http(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder().timeout(timeout).build().unwrap()
}

fn channel(kind: ChannelType, url: String, secret: Option<&str>) -> ChannelConfig {
    ChannelConfig {
        name: "ops".to_owned(),
        kind,
        url: Some(Secret::new(url)),
        secret: secret.map(Secret::new),
        events: None,
        min_severity: None,
        projects: None,
        channel_id: None,
        source_alerts: false,
        remind_every_mins: None,
        flaky_digest: false,
        mention: None,
        storm_threshold: None,
        timezone: None,
        buttons: None,
        digest: None,
        digest_timezone: None,
        digest_when_green: false,
        batch: false,
    }
}

fn webhook_sink(server: &CaptureServer) -> Sink {
    let url = server.url(&format!("/hooks/{TOKEN}"));
    Sink::from_config(
        &channel(ChannelType::Webhook, url, Some(HMAC_KEY)),
        http(Duration::from_secs(5)),
        None,
    )
}

fn discord_sink(server: &CaptureServer) -> Sink {
    let url = server.url(&format!("/api/webhooks/123/{TOKEN}?thread_id=77"));
    Sink::from_config(
        &channel(ChannelType::Discord, url, None),
        http(Duration::from_secs(5)),
        None,
    )
}

fn info(status: &str) -> JobInfo {
    JobInfo {
        id: Some("f5af662119404ad187437cd272b5099b".to_owned()),
        job_name: Some("web-frontend".to_owned()),
        last_build_status: Some(status.to_owned()),
        last_build_time: Some(1_721_793_407_000),
        health_score: Some(74),
        build_time: Some("27.51".to_owned()),
        disabled: Some(false),
        ..JobInfo::default()
    }
}

fn build_failed() -> Event {
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

fn assert_no_credential(err: &SendError) {
    for shown in [err.reason().to_owned(), err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(TOKEN), "token leaked: {shown}");
        assert!(!shown.contains("/hooks/"), "url path leaked: {shown}");
        assert!(!shown.contains("/api/webhooks"), "url path leaked: {shown}");
        assert!(!shown.contains("http://"), "url leaked: {shown}");
        assert!(!shown.contains(HMAC_KEY), "secret leaked: {shown}");
    }
}

#[tokio::test]
async fn webhook_sink_delivers_the_contract_body_signed_with_the_channel_secret() {
    let server = CaptureServer::start().await;
    let sink = webhook_sink(&server);
    let event = build_failed();

    let sent = sink
        .send(&Outgoing {
            delivery_id: "dlv-42",
            event: &event,
            link: None,
            context: None,
            mention: None,
            buttons: None,
            board: None,
        })
        .await;

    assert_eq!(sent, Ok(()));
    let received = server.requests();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/hooks/{TOKEN}"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.header("user-agent"),
        Some(concat!("codearts-bot/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(request.header("x-codearts-bot-delivery"), Some("dlv-42"));
    assert_eq!(request.header("x-codearts-bot-event"), Some("build_failed"));
    let signature = request.header("x-signature").expect("signed");
    assert!(webhook::verify(
        HMAC_KEY.as_bytes(),
        &request.body,
        signature
    ));
    assert!(!webhook::verify(b"wrong key", &request.body, signature));
    let body = request.json();
    assert_eq!(body["id"], "dlv-42");
    assert_eq!(body["event"], "build_failed");
    assert_eq!(body["job_id"], "f5af662119404ad187437cd272b5099b");
    assert_eq!(body["job_name"], "web-frontend");
    assert_eq!(body["detected_at"], "2026-11-26T12:00:00Z");
    assert_eq!(body["previous"]["last_build_status"], "success");
    assert_eq!(body["current"]["last_build_status"], "failed");
    assert_eq!(
        body["summary"],
        "Build failed: web-frontend (success → failed)"
    );
    assert_eq!(body.as_object().unwrap().len(), 8);
}

#[tokio::test]
async fn webhook_without_a_secret_is_sent_unsigned() {
    let server = CaptureServer::start().await;
    let sink = Sink::from_config(
        &channel(ChannelType::Webhook, server.url("/plain"), None),
        http(Duration::from_secs(5)),
        None,
    );
    let event = build_failed();

    let sent = sink
        .send(&Outgoing {
            delivery_id: "d",
            event: &event,
            link: None,
            context: None,
            mention: None,
            buttons: None,
            board: None,
        })
        .await;

    assert_eq!(sent, Ok(()));
    assert_eq!(server.requests()[0].header("x-signature"), None);
}

#[tokio::test]
async fn discord_sink_posts_one_embed_with_wait_true_keeping_the_thread() {
    let server = CaptureServer::start().await;
    let sink = discord_sink(&server);
    let event = build_failed();

    let sent = sink
        .send(&Outgoing {
            delivery_id: "dlv-7",
            event: &event,
            link: None,
            context: None,
            mention: None,
            buttons: None,
            board: None,
        })
        .await;

    assert_eq!(sent, Ok(()));
    let received = server.requests();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(
        request.path,
        format!("/api/webhooks/123/{TOKEN}?thread_id=77&wait=true&with_components=true")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body = request.json();
    assert_eq!(body["allowed_mentions"]["parse"], serde_json::json!([]));
    assert_eq!(body["username"], "CodeArts Build");
    let embeds = body["embeds"].as_array().unwrap();
    assert_eq!(embeds.len(), 1);
    assert_eq!(embeds[0]["title"], "🔴 Build failed: web-frontend");
    assert_eq!(embeds[0]["footer"]["text"], "Delivery dlv-7");
    assert_eq!(embeds[0]["color"], 0xE7_4C_3C);
}

#[tokio::test]
async fn discord_rate_limit_is_retried_after_its_retry_after_then_accepted() {
    let server = CaptureServer::start().await;
    server.script(vec![Reply::discord_rate_limited(1.5)]);
    let sink = discord_sink(&server);
    let event = build_failed();
    let out = Outgoing {
        delivery_id: "d",
        event: &event,
        link: None,
        context: None,
        mention: None,
        buttons: None,
        board: None,
    };

    let first = sink.send(&out).await;
    let second = sink.send(&out).await;

    match first {
        Err(SendError::Retry { reason, after }) => {
            assert_eq!(
                after,
                Some(Duration::from_millis(1500)),
                "body wins over header"
            );
            assert!(reason.contains("429"), "{reason}");
            assert!(reason.contains("You are being rate limited."), "{reason}");
        }
        other => panic!("expected Retry, got {other:?}"),
    }
    assert_eq!(second, Ok(()));
    assert_eq!(server.all_requests().len(), 2);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn webhook_server_error_is_retried_after_the_header_delay() {
    let server = CaptureServer::start().await;
    server.script(vec![Reply::status(503).with_header("retry-after", "7")]);
    let sink = webhook_sink(&server);
    let event = build_failed();
    let out = Outgoing {
        delivery_id: "d",
        event: &event,
        link: None,
        context: None,
        mention: None,
        buttons: None,
        board: None,
    };

    let first = sink.send(&out).await;
    let second = sink.send(&out).await;

    assert!(
        matches!(&first, Err(SendError::Retry { after: Some(a), .. }) if *a == Duration::from_secs(7)),
        "{first:?}"
    );
    assert_eq!(second, Ok(()));
}

#[tokio::test]
async fn deleted_discord_webhook_is_permanent_with_discords_message() {
    let server = CaptureServer::start().await;
    server.script(vec![Reply::json(
        404,
        serde_json::json!({"message": "Unknown Webhook", "code": 10015}),
    )]);
    let sink = discord_sink(&server);
    let event = build_failed();

    let sent = sink
        .send(&Outgoing {
            delivery_id: "d",
            event: &event,
            link: None,
            context: None,
            mention: None,
            buttons: None,
            board: None,
        })
        .await;

    let err = sent.unwrap_err();
    assert!(!err.is_retry(), "{err:?}");
    assert!(err.reason().contains("404"), "{err}");
    assert!(
        err.reason().contains("Unknown Webhook (code 10015)"),
        "{err}"
    );
    assert_no_credential(&err);
}

#[tokio::test]
async fn stopped_server_is_retried_and_the_error_shows_no_url_or_secret() {
    let server = CaptureServer::start().await;
    let addr = server.addr();
    let webhook = webhook_sink(&server);
    let discord = discord_sink(&server);
    let event = build_failed();
    let out = Outgoing {
        delivery_id: "d",
        event: &event,
        link: None,
        context: None,
        mention: None,
        buttons: None,
        board: None,
    };
    // A first send leaves a pooled keep-alive connection behind: stop must cut it too.
    assert_eq!(webhook.send(&out).await, Ok(()));
    server.stop().await;

    for sink in [&webhook, &discord] {
        let err = sink.send(&out).await.unwrap_err();
        assert!(err.is_retry(), "{} gave {err:?}", sink.kind());
        assert_no_credential(&err);
    }

    let back = CaptureServer::start_on(addr).await;
    assert_eq!(webhook.send(&out).await, Ok(()));
    assert_eq!(back.requests().len(), 1);
}

#[tokio::test]
async fn stop_cuts_a_request_waiting_for_a_slow_answer() {
    let server = CaptureServer::start().await;
    server.script(vec![Reply::status(200).after(Duration::from_secs(30))]);
    let sink = webhook_sink(&server);
    let event = build_failed();

    let sending = async {
        sink.send(&Outgoing {
            delivery_id: "d",
            event: &event,
            link: None,
            context: None,
            mention: None,
            buttons: None,
            board: None,
        })
        .await
    };
    let stopping = async {
        while server.all_requests().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        server.stop().await;
    };
    let (sent, ()) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(sending, stopping)
    })
    .await
    .expect("stop cut the connection instead of waiting 30s");

    let err = sent.unwrap_err();
    assert!(err.is_retry(), "{err:?}");
    assert_no_credential(&err);
}

#[tokio::test]
async fn a_service_slower_than_the_timeout_is_retried() {
    let server = CaptureServer::start().await;
    server.script(vec![Reply::status(200).after(Duration::from_secs(5))]);
    let sink = Sink::from_config(
        &channel(
            ChannelType::Webhook,
            server.url(&format!("/hooks/{TOKEN}")),
            Some(HMAC_KEY),
        ),
        http(Duration::from_millis(200)),
        None,
    );
    let event = build_failed();

    let sent = sink
        .send(&Outgoing {
            delivery_id: "d",
            event: &event,
            link: None,
            context: None,
            mention: None,
            buttons: None,
            board: None,
        })
        .await;

    let err = sent.unwrap_err();
    assert!(err.is_retry(), "{err:?}");
    assert!(err.reason().contains("timed out"), "{err}");
    assert_no_credential(&err);
    assert!(
        server.requests().is_empty(),
        "the slow answer was never delivered"
    );
}

// ---------------------------------------------------------------------------------------------
// Chat platforms: Slack, Feishu, DingTalk, WeCom, and Discord batches.
// ---------------------------------------------------------------------------------------------

const FEISHU_SECRET: &str = "fs-s1gn1ng-secret";
const DINGTALK_SECRET: &str = "SEC0123456789abcdefDINGTALK";
const LINK: &str = "https://console.example/project/p1/job/f5af662119404ad187437cd272b5099b";

/// Strings that must never reach a chat service as written: each would mention someone.
const RAW_MENTIONS: [&str; 5] = ["@everyone", "<!channel>", "@all", "@here", "<@123>"];

/// A 300-character job name written to ping and format: what a careless or hostile job owner
/// could name a job.
fn hostile_name() -> String {
    let head = "@everyone <!channel> @all @here **bold** <@123> 🚀🔥 ";
    let mut name = head.to_owned();
    while name.chars().count() < 300 {
        name.push_str("deploy-😀-");
    }
    name.chars().take(300).collect()
}

fn event_named(name: &str) -> Event {
    let mut event = build_failed();
    event.job_name = name.to_owned();
    for info in [event.previous.as_mut(), event.current.as_mut()]
        .into_iter()
        .flatten()
    {
        info.job_name = Some(name.to_owned());
    }
    event.summary = format!("Build failed: {name} (success → failed)");
    event
}

fn sink_for(kind: ChannelType, url: String, secret: Option<&str>) -> Sink {
    Sink::from_config(
        &channel(kind, url, secret),
        http(Duration::from_secs(5)),
        None,
    )
}

fn slack_sink(server: &CaptureServer) -> Sink {
    sink_for(
        ChannelType::Slack,
        server.url(&format!("/services/T1/B2/{TOKEN}")),
        None,
    )
}

fn feishu_sink(server: &CaptureServer) -> Sink {
    sink_for(
        ChannelType::Feishu,
        server.url(&format!("/open-apis/bot/v2/hook/{TOKEN}")),
        Some(FEISHU_SECRET),
    )
}

fn dingtalk_sink(server: &CaptureServer) -> Sink {
    sink_for(
        ChannelType::Dingtalk,
        server.url(&format!("/robot/send?access_token={TOKEN}")),
        Some(DINGTALK_SECRET),
    )
}

fn wecom_sink(server: &CaptureServer) -> Sink {
    sink_for(
        ChannelType::Wecom,
        server.url(&format!("/cgi-bin/webhook/send?key={TOKEN}")),
        None,
    )
}

/// The events as a batch, delivery ids `d0`, `d1`, ... and the link on each.
fn outgoing<'a>(events: &'a [Event], ids: &'a [String]) -> Vec<Outgoing<'a>> {
    events
        .iter()
        .zip(ids)
        .map(|(event, id)| Outgoing {
            delivery_id: id,
            event,
            link: Some(LINK),
            context: None,
            mention: None,
            buttons: None,
            board: None,
        })
        .collect()
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("d{i}")).collect()
}

fn assert_inert(platform: &str, body: &str) {
    for needle in RAW_MENTIONS {
        assert!(
            !body.contains(needle),
            "{platform}: {needle:?} passed through: {body}"
        );
    }
}

/// The texts a platform renders as markdown (plain-text headers and titles show as typed).
fn markdown_texts(kind: ChannelType, body: &serde_json::Value) -> Vec<String> {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let all = |v: &serde_json::Value| v.as_array().cloned().unwrap_or_default();
    match kind {
        ChannelType::Discord => all(&body["embeds"])
            .iter()
            .flat_map(|e| {
                let mut texts = vec![s(&e["title"]), s(&e["description"])];
                texts.extend(all(&e["fields"]).iter().map(|f| s(&f["value"])));
                texts
            })
            .collect(),
        ChannelType::Slack => {
            let mut texts = vec![s(&body["text"])];
            texts.extend(
                all(&body["blocks"])
                    .iter()
                    .filter(|b| b["type"] == "section")
                    .map(|b| s(&b["text"]["text"])),
            );
            texts
        }
        ChannelType::Feishu => all(&body["card"]["elements"])
            .iter()
            .map(|e| s(&e["content"]))
            .collect(),
        ChannelType::Dingtalk => vec![s(&body["markdown"]["text"])],
        _ => vec![s(&body["markdown"]["content"])],
    }
}

fn hmac_sha256_base64(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// What a 2xx-with-a-code platform answers on success.
fn accepted(key: &str) -> Reply {
    Reply::json(200, json!({ key: 0, "msg": "success", "errmsg": "ok" }))
}

fn expect_retry_after(result: Result<(), SendError>, secs: u64) {
    match result {
        Err(SendError::Retry { after, ref reason }) => {
            assert_eq!(after, Some(Duration::from_secs(secs)), "{reason}");
        }
        other => panic!("expected Retry after {secs}s, got {other:?}"),
    }
}

fn expect_permanent(result: Result<(), SendError>, needle: &str) {
    let err = result.expect_err("expected a permanent failure");
    assert!(!err.is_retry(), "{err:?}");
    assert!(err.reason().contains(needle), "{err}");
    assert_no_credential(&err);
}

#[tokio::test]
async fn slack_sink_posts_block_kit_with_every_fact_and_a_link_button() {
    let server = CaptureServer::start().await;
    server.script(vec![Reply::text(200, "ok")]);
    let sink = slack_sink(&server);
    let event = build_failed();

    let sent = sink
        .send(&Outgoing {
            delivery_id: "dlv-9",
            event: &event,
            link: Some(LINK),
            context: None,
            mention: None,
            buttons: None,
            board: None,
        })
        .await;

    assert_eq!(sent, Ok(()));
    let request = &server.requests()[0];
    assert_eq!(request.path, format!("/services/T1/B2/{TOKEN}"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body = request.json();
    assert_eq!(body["text"], "🔴 Build failed: web-frontend");
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert_eq!(blocks[0]["text"]["text"], "🔴 Build failed: web-frontend");
    assert_eq!(blocks[1]["type"], "section");
    assert_eq!(blocks[1]["text"]["type"], "mrkdwn");
    let section = blocks[1]["text"]["text"].as_str().unwrap();
    for fact in [
        "*Job:* web-frontend",
        "*Changed:* success → failed",
        "*Job id:* f5af662119404ad187437cd272b5099b",
        "*Last build:* 2024-07-24 03:56:47 UTC",
        "*Duration:* 28s",
        "*Health score:* 74",
    ] {
        assert!(section.contains(fact), "{fact} missing from {section}");
    }
    assert_eq!(blocks[1]["accessory"]["type"], "button");
    assert_eq!(blocks[1]["accessory"]["url"], LINK);
}

#[tokio::test]
async fn slack_answers_are_classified_ok_permanent_and_retry_after() {
    let server = CaptureServer::start().await;
    server.script(vec![
        Reply::text(200, "ok"),
        Reply::text(404, "channel_not_found"),
        Reply::text(429, "rate_limited").with_header("retry-after", "3"),
    ]);
    let sink = slack_sink(&server);
    let event = build_failed();
    let out = Outgoing {
        delivery_id: "d",
        event: &event,
        link: None,
        context: None,
        mention: None,
        buttons: None,
        board: None,
    };

    let ok = sink.send(&out).await;
    let gone = sink.send(&out).await;
    let throttled = sink.send(&out).await;

    assert_eq!(ok, Ok(()));
    expect_permanent(gone, "channel_not_found");
    expect_retry_after(throttled, 3);
}

#[tokio::test]
async fn slack_batch_of_five_is_one_post_naming_every_job() {
    let server = CaptureServer::start().await;
    let sink = slack_sink(&server);
    let events: Vec<Event> = (0..5).map(|i| event_named(&format!("job-{i}"))).collect();
    let ids = ids(5);

    let sent = sink.send_batch(&outgoing(&events, &ids)).await;

    assert_eq!(sent, Ok(()));
    let received = server.requests();
    assert_eq!(received.len(), 1, "one message for the whole batch");
    let body = received[0].json();
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 6, "a header and a section per event");
    assert_eq!(blocks[0]["text"]["text"], "🔴 5 CodeArts Build events");
    for i in 0..5 {
        let section = blocks[i + 1]["text"]["text"].as_str().unwrap();
        assert!(section.contains(&format!("job-{i}")), "{section}");
        assert_eq!(blocks[i + 1]["accessory"]["url"], LINK);
    }
}

#[tokio::test]
async fn feishu_sink_posts_an_interactive_card_signed_with_the_documented_algorithm() {
    let server = CaptureServer::start().await;
    server.script(vec![accepted("code")]);
    let sink = feishu_sink(&server);
    let event = build_failed();
    let before = Utc::now().timestamp();

    let sent = sink
        .send(&Outgoing {
            delivery_id: "dlv-3",
            event: &event,
            link: Some(LINK),
            context: None,
            mention: None,
            buttons: None,
            board: None,
        })
        .await;

    assert_eq!(sent, Ok(()));
    let request = &server.requests()[0];
    assert_eq!(request.path, format!("/open-apis/bot/v2/hook/{TOKEN}"));
    assert!(request.body.len() <= 20_000);
    let body = request.json();
    assert_eq!(body["msg_type"], "interactive");
    let card = &body["card"];
    assert_eq!(card["header"]["template"], "red");
    assert_eq!(card["header"]["title"]["tag"], "plain_text");
    assert_eq!(
        card["header"]["title"]["content"],
        "🔴 Build failed: web-frontend"
    );
    let elements = card["elements"].as_array().unwrap();
    assert_eq!(elements[0]["tag"], "markdown");
    let markdown = elements[0]["content"].as_str().unwrap();
    for fact in [
        "**Job:** web-frontend",
        "**Changed:** success → failed",
        "**Job id:** f5af662119404ad187437cd272b5099b",
        "**Last build:** 2024-07-24 03:56:47 UTC",
        "**Duration:** 28s",
        "**Health score:** 74",
    ] {
        assert!(markdown.contains(fact), "{fact} missing from {markdown}");
    }
    let button = &elements
        .iter()
        .find(|e| e["tag"] == "action")
        .expect("a button")["actions"][0];
    assert_eq!(button["tag"], "button");
    assert_eq!(button["url"], LINK);
    // Recomputed independently: key = timestamp + "\n" + secret, message empty.
    let timestamp = body["timestamp"].as_str().expect("timestamp as text");
    let seconds: i64 = timestamp.parse().unwrap();
    assert!((before..=before + 60).contains(&seconds), "{seconds}");
    let expected = hmac_sha256_base64(format!("{timestamp}\n{FEISHU_SECRET}").as_bytes(), b"");
    assert_eq!(body["sign"], expected);
    assert!(!request.text().contains(FEISHU_SECRET));
}

#[tokio::test]
async fn feishu_result_codes_decide_between_sent_retried_and_refused() {
    let server = CaptureServer::start().await;
    server.script(vec![
        Reply::json(
            200,
            json!({"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}),
        ),
        Reply::json(200, json!({"code": 11232, "msg": "frequency limited"})),
        Reply::json(200, json!({"code": 0, "msg": "success", "data": {}})),
        Reply::json(200, json!({"StatusCode": 0, "StatusMessage": "success"})),
        Reply::json(200, json!({"code": 19024, "msg": "Key Words Not Found"})),
        Reply::json(400, json!({"code": 9499, "msg": "Bad Request"})),
        Reply::json(200, json!({"code": 12345, "msg": "something new"})),
        Reply::status(200),
    ]);
    let sink = feishu_sink(&server);
    let event = build_failed();
    let out = Outgoing {
        delivery_id: "d",
        event: &event,
        link: None,
        context: None,
        mention: None,
        buttons: None,
        board: None,
    };

    let mut results = Vec::new();
    for _ in 0..8 {
        results.push(sink.send(&out).await);
    }

    let mut results = results.into_iter();
    expect_permanent(results.next().unwrap(), "(code 19021)");
    expect_retry_after(results.next().unwrap(), 60);
    assert_eq!(results.next().unwrap(), Ok(()));
    assert_eq!(results.next().unwrap(), Ok(()), "old-style StatusCode");
    expect_permanent(results.next().unwrap(), "code 19024");
    expect_permanent(results.next().unwrap(), "code 9499");
    let unknown = results.next().unwrap().unwrap_err();
    assert!(
        matches!(&unknown, SendError::Retry { after: None, .. }),
        "{unknown:?}"
    );
    let silent = results.next().unwrap().unwrap_err();
    assert!(silent.is_retry(), "no code, no proof: {silent:?}");
    assert!(
        silent.reason().contains("without a result code"),
        "{silent}"
    );
}

#[tokio::test]
async fn dingtalk_sink_posts_markdown_mentioning_nobody_signed_in_the_query() {
    let server = CaptureServer::start().await;
    server.script(vec![accepted("errcode")]);
    let sink = dingtalk_sink(&server);
    let event = build_failed();
    let before = Utc::now().timestamp_millis();

    let sent = sink
        .send(&Outgoing {
            delivery_id: "dlv-5",
            event: &event,
            link: Some(LINK),
            context: None,
            mention: None,
            buttons: None,
            board: None,
        })
        .await;

    assert_eq!(sent, Ok(()));
    let request = &server.requests()[0];
    assert!(request.path.starts_with("/robot/send?"), "{}", request.path);
    assert_eq!(request.query("access_token").as_deref(), Some(TOKEN));
    // Recomputed independently: key = secret, message = timestamp + "\n" + secret.
    let timestamp = request.query("timestamp").expect("timestamp");
    let ms: i64 = timestamp.parse().unwrap();
    assert!((before..=before + 60_000).contains(&ms), "{ms}");
    let expected = hmac_sha256_base64(
        DINGTALK_SECRET.as_bytes(),
        format!("{timestamp}\n{DINGTALK_SECRET}").as_bytes(),
    );
    assert_eq!(request.query("sign").as_deref(), Some(expected.as_str()));
    assert!(!request.path.contains(DINGTALK_SECRET));
    let body = request.json();
    assert_eq!(body["msgtype"], "markdown");
    assert_eq!(body["markdown"]["title"], "🔴 Build failed: web-frontend");
    let text = body["markdown"]["text"].as_str().unwrap();
    for fact in [
        "#### 🔴 Build failed: web-frontend",
        "**Changed:** success → failed",
        "**Job id:** f5af662119404ad187437cd272b5099b",
        "**Last build:** 2024-07-24 03:56:47 UTC",
        "**Duration:** 28s",
        "**Health score:** 74",
        &format!("[Open in CodeArts]({LINK})"),
    ] {
        assert!(text.contains(fact), "{fact} missing from {text}");
    }
    assert_eq!(
        body["at"],
        json!({"isAtAll": false, "atMobiles": [], "atUserIds": []})
    );
}

#[tokio::test]
async fn dingtalk_errcodes_decide_between_sent_retried_and_refused() {
    let server = CaptureServer::start().await;
    server.script(vec![
        Reply::json(
            200,
            json!({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}),
        ),
        Reply::json(
            200,
            json!({"errcode": 310000, "errmsg": "keywords not in content"}),
        ),
        Reply::json(
            200,
            json!({"errcode": 300001, "errmsg": "token is not exist"}),
        ),
        Reply::json(200, json!({"errcode": 0, "errmsg": "ok"})),
    ]);
    let sink = dingtalk_sink(&server);
    let event = build_failed();
    let out = Outgoing {
        delivery_id: "d",
        event: &event,
        link: None,
        context: None,
        mention: None,
        buttons: None,
        board: None,
    };

    let throttled = sink.send(&out).await;
    let keyword = sink.send(&out).await;
    let token = sink.send(&out).await;
    let ok = sink.send(&out).await;

    expect_retry_after(throttled, 60);
    expect_permanent(keyword, "keywords not in content (code 310000)");
    expect_permanent(token, "code 300001");
    assert_eq!(ok, Ok(()));
}

#[tokio::test]
async fn wecom_sink_posts_markdown_and_reads_its_errcode() {
    let server = CaptureServer::start().await;
    server.script(vec![
        Reply::json(
            200,
            json!({"errcode": 45009, "errmsg": "api freq out of limit"}),
        ),
        Reply::json(200, json!({"errcode": 0, "errmsg": "ok"})),
        Reply::json(
            200,
            json!({"errcode": 93000, "errmsg": "invalid webhook url"}),
        ),
    ]);
    let sink = wecom_sink(&server);
    let event = build_failed();
    let out = Outgoing {
        delivery_id: "dlv-6",
        event: &event,
        link: Some(LINK),
        context: None,
        mention: None,
        buttons: None,
        board: None,
    };

    let throttled = sink.send(&out).await;
    let ok = sink.send(&out).await;
    let gone = sink.send(&out).await;

    expect_retry_after(throttled, 60);
    assert_eq!(ok, Ok(()));
    expect_permanent(gone, "invalid webhook url (code 93000)");
    let request = &server.requests()[0];
    assert_eq!(request.query("key").as_deref(), Some(TOKEN));
    let body = request.json();
    assert_eq!(body["msgtype"], "markdown");
    let content = body["markdown"]["content"].as_str().unwrap();
    for fact in [
        "web-frontend",
        "**Changed:** success → failed",
        "**Job id:** f5af662119404ad187437cd272b5099b",
        "**Last build:** 2024-07-24 03:56:47 UTC",
        "**Duration:** 28s",
        "**Health score:** 74",
        &format!("[Open in CodeArts]({LINK})"),
    ] {
        assert!(content.contains(fact), "{fact} missing from {content}");
    }
}

#[tokio::test]
async fn a_300_character_hostile_job_name_stays_within_every_platforms_limits_and_pings_nobody() {
    let name = hostile_name();
    assert_eq!(name.chars().count(), 300);
    let events: Vec<Event> = (0..20).map(|_| event_named(&name)).collect();
    let ids = ids(20);
    let batch = outgoing(&events, &ids);

    for (kind, size) in [
        (ChannelType::Discord, 1),
        (ChannelType::Discord, 20),
        (ChannelType::Slack, 1),
        (ChannelType::Slack, 20),
        (ChannelType::Feishu, 1),
        (ChannelType::Feishu, 20),
        (ChannelType::Dingtalk, 1),
        (ChannelType::Dingtalk, 20),
        (ChannelType::Wecom, 1),
        (ChannelType::Wecom, 10),
    ] {
        let server = CaptureServer::start().await;
        server.script(vec![Reply::json(200, json!({"code": 0, "errcode": 0}))]);
        let sink = match kind {
            ChannelType::Discord => discord_sink(&server),
            ChannelType::Slack => slack_sink(&server),
            ChannelType::Feishu => feishu_sink(&server),
            ChannelType::Dingtalk => dingtalk_sink(&server),
            _ => wecom_sink(&server),
        };
        assert!(size <= sink.max_batch(), "{kind:?}");
        let what = format!("{} x{size}", kind.as_str());

        let sent = sink.send_batch(&batch[..size]).await;

        assert_eq!(sent, Ok(()), "{what}");
        let request = &server.requests()[0];
        let raw = request.text();
        assert_inert(&what, &raw);
        assert!(raw.contains("🚀"), "{what}: the emoji survives");
        let body = request.json();
        let markdown = markdown_texts(kind, &body);
        assert!(!markdown.is_empty(), "{what}");
        for text in markdown {
            assert!(
                !text.contains("**bold**"),
                "{what}: markdown not escaped: {text}"
            );
        }
        match kind {
            ChannelType::Discord => {
                let embeds = body["embeds"].as_array().unwrap();
                assert!(embeds.len() <= 10, "{what}");
                assert!(
                    discord_total(&body) <= 6000,
                    "{what}: {}",
                    discord_total(&body)
                );
                assert_eq!(body["allowed_mentions"], json!({"parse": []}));
                for embed in embeds {
                    assert!(utf16(&embed["title"]) <= 256, "{what}");
                }
            }
            ChannelType::Slack => {
                let blocks = body["blocks"].as_array().unwrap();
                assert!(blocks.len() <= 50, "{what}");
                for block in blocks {
                    let limit = if block["type"] == "header" { 150 } else { 3000 };
                    assert!(utf16(&block["text"]["text"]) <= limit, "{what}: {block}");
                }
            }
            ChannelType::Feishu => {
                assert!(
                    request.body.len() <= 20_000,
                    "{what}: {}",
                    request.body.len()
                );
            }
            ChannelType::Dingtalk => {
                assert!(
                    request.body.len() <= 20_000,
                    "{what}: {}",
                    request.body.len()
                );
                assert_eq!(body["at"]["isAtAll"], false);
            }
            _ => {
                let content = body["markdown"]["content"].as_str().unwrap();
                assert!(content.len() <= 4096, "{what}: {} bytes", content.len());
            }
        }
    }
}

fn utf16(value: &serde_json::Value) -> usize {
    value.as_str().map_or(0, |s| s.encode_utf16().count())
}

/// Discord's count: title, description, field names and values, footer, author of every embed.
fn discord_total(body: &serde_json::Value) -> usize {
    body["embeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            utf16(&e["title"])
                + utf16(&e["description"])
                + utf16(&e["footer"]["text"])
                + utf16(&e["author"]["name"])
                + e["fields"].as_array().map_or(0, |fields| {
                    fields
                        .iter()
                        .map(|f| utf16(&f["name"]) + utf16(&f["value"]))
                        .sum()
                })
        })
        .sum()
}

#[tokio::test]
async fn discord_batch_of_30_is_one_post_of_ten_embeds_the_last_listing_the_rest() {
    let server = CaptureServer::start().await;
    let sink = discord_sink(&server);
    let events: Vec<Event> = (0..30).map(|i| event_named(&format!("job-{i}"))).collect();
    let ids = ids(30);

    let sent = sink.send_batch(&outgoing(&events, &ids)).await;

    assert_eq!(sent, Ok(()));
    let received = server.requests();
    assert_eq!(received.len(), 1, "one message for the whole batch");
    let body = received[0].json();
    assert_eq!(body["allowed_mentions"], json!({"parse": []}));
    let embeds = body["embeds"].as_array().unwrap();
    assert_eq!(embeds.len(), 10);
    assert!(discord_total(&body) <= 6000, "{}", discord_total(&body));
    for (i, embed) in embeds[..9].iter().enumerate() {
        assert_eq!(embed["title"], format!("🔴 Build failed: job-{i}"));
        assert_eq!(embed["url"], LINK);
        assert_eq!(embed["footer"]["text"], format!("Delivery d{i}"));
    }
    let summary = &embeds[9];
    assert_eq!(summary["title"], "🔴 21 more events");
    let listed = summary["description"].as_str().unwrap();
    for i in 9..30 {
        assert!(
            listed.contains(&format!("Build failed: job-{i} (success → failed)")),
            "job-{i} missing from {listed}"
        );
    }
    assert_eq!(listed.lines().count(), 21);
}

#[tokio::test]
async fn discord_batch_of_30_hostile_names_keeps_every_limit() {
    let server = CaptureServer::start().await;
    let sink = discord_sink(&server);
    let name = hostile_name();
    let events: Vec<Event> = (0..30).map(|_| event_named(&name)).collect();
    let ids = ids(30);

    let sent = sink.send_batch(&outgoing(&events, &ids)).await;

    assert_eq!(sent, Ok(()));
    let request = &server.requests()[0];
    let body = request.json();
    assert!(body["embeds"].as_array().unwrap().len() <= 10);
    assert!(discord_total(&body) <= 6000, "{}", discord_total(&body));
    assert_inert("discord x30", &request.text());
    let listed = body["embeds"][9]["description"].as_str().unwrap();
    assert!(
        listed.ends_with("more") || listed.lines().count() == 21,
        "{listed}"
    );
}

#[tokio::test]
async fn webhook_batch_is_one_post_per_event_in_order() {
    let server = CaptureServer::start().await;
    let sink = webhook_sink(&server);
    let events: Vec<Event> = (0..3).map(|i| event_named(&format!("job-{i}"))).collect();
    let ids = ids(3);
    assert_eq!(sink.max_batch(), 1);

    let sent = sink.send_batch(&outgoing(&events, &ids)).await;

    assert_eq!(sent, Ok(()));
    let names: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.json()["job_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["job-0", "job-1", "job-2"]);
}

#[tokio::test]
async fn chat_platforms_unreachable_are_retried_without_showing_a_credential() {
    let server = CaptureServer::start().await;
    let sinks = [
        slack_sink(&server),
        feishu_sink(&server),
        dingtalk_sink(&server),
        wecom_sink(&server),
    ];
    server.stop().await;
    let event = build_failed();
    let out = Outgoing {
        delivery_id: "d",
        event: &event,
        link: None,
        context: None,
        mention: None,
        buttons: None,
        board: None,
    };

    for sink in &sinks {
        let err = sink.send(&out).await.unwrap_err();
        assert!(err.is_retry(), "{} gave {err:?}", sink.kind());
        assert_no_credential(&err);
        for secret in [FEISHU_SECRET, DINGTALK_SECRET] {
            assert!(!err.to_string().contains(secret));
            assert!(!format!("{sink:?}").contains(secret));
        }
        assert!(!format!("{sink:?}").contains(TOKEN));
    }
}

/// A failed build's context as the engine attaches it: a long log tail (ending in a line that
/// tries to close a code block and ping everyone), a failed stage, a linked commit, tests.
fn failure_context() -> Context {
    let mut log_tail: Vec<String> = (1..=150)
        .map(|i| format!("[INFO] compiling crate_{i} v0.{i}.0 {}", "x".repeat(50)))
        .collect();
    log_tail.push("``` @everyone <@123> closing the fence".to_owned());
    log_tail.push("error: could not compile `web-frontend`".to_owned());
    Context {
        build_no: Some(42),
        record_id: Some("rec-42".to_owned()),
        branch: Some("release/2.3".to_owned()),
        commit: Some("a1b2c3d4e5f60718293a4b5c6d7e8f9012345678".to_owned()),
        commit_message: Some("Fix the login page".to_owned()),
        commit_url: Some("https://code.example/web/commit/a1b2c3d4".to_owned()),
        triggered_by: Some("alice".to_owned()),
        user_id: Some("u-1".to_owned()),
        trigger_type: Some("Manual".to_owned()),
        failed_stage: Some("compile".to_owned()),
        failed_stage_ms: Some(72_000),
        stages: vec![StageOutcome {
            name: "compile".to_owned(),
            status: Some("failed".to_owned()),
            duration_ms: Some(72_000),
        }],
        error: Some("compile failed: exit code 101".to_owned()),
        log_tail,
        log_truncated: true,
        tests: Some(TestCounts {
            total: 120,
            failed: 3,
            errors: 1,
        }),
        complete: true,
        ..Context::default()
    }
}

const DISCORD_ID: &str = "123456789012345678";
const SLACK_ID: &str = "U012ABCDEF";

fn author() -> Person {
    Person {
        codearts: "alice".to_owned(),
        discord: Some(DISCORD_ID.to_owned()),
        slack: Some(SLACK_ID.to_owned()),
        feishu: None,
        dingtalk_mobile: Some("13800000000".to_owned()),
        wecom: None,
    }
}

#[tokio::test]
async fn discord_webhook_carries_the_failure_context_and_mentions_exactly_the_author() {
    let server = CaptureServer::start().await;
    let sink = discord_sink(&server);
    let event = build_failed();
    let (context, person) = (failure_context(), author());

    let sent = sink
        .send(&Outgoing {
            delivery_id: "dlv-9",
            event: &event,
            link: Some(LINK),
            context: Some(&context),
            mention: Some(&person),
            buttons: None,
            board: None,
        })
        .await;

    assert_eq!(sent, Ok(()));
    let body = server.requests()[0].json();
    assert_eq!(body["content"], format!("<@{DISCORD_ID}>"));
    assert_eq!(
        body["allowed_mentions"],
        json!({"parse": [], "users": [DISCORD_ID]})
    );
    let embed = &body["embeds"][0];
    let field = |name: &str| {
        embed["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .map(|f| f["value"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(field("Failed stage"), "compile (1 m 12 s)");
    assert_eq!(field("Branch"), "release/2.3");
    assert_eq!(
        field("Commit"),
        "[a1b2c3d4](https://code.example/web/commit/a1b2c3d4) Fix the login page"
    );
    assert_eq!(field("Triggered by"), "alice (Manual)");
    assert_eq!(field("Tests"), "120 tests, 3 failed, 1 error");
    let description = embed["description"].as_str().unwrap();
    assert!(
        description.contains("```\ncompile failed: exit code 101\n```"),
        "{description}"
    );
    assert!(
        description.ends_with("error: could not compile `web-frontend`\n```"),
        "{description}"
    );
    // The hostile log line neither closes the block nor pings: two blocks, four fences.
    assert_eq!(description.matches("```").count(), 4, "{description}");
    assert_inert(
        "discord",
        &body.to_string().replace(&format!("<@{DISCORD_ID}>"), ""),
    );
    assert!(utf16(&embed["description"]) <= 4096);
    assert!(discord_total(&body) <= 6000, "{}", discord_total(&body));
}

#[tokio::test]
async fn discord_batch_of_ten_failures_with_context_stays_valid_and_allows_only_their_authors() {
    let server = CaptureServer::start().await;
    let sink = discord_sink(&server);
    let events: Vec<Event> = (0..10).map(|i| event_named(&format!("job-{i}"))).collect();
    let (context, person) = (failure_context(), author());
    let batch: Vec<Outgoing<'_>> = events
        .iter()
        .map(|event| Outgoing {
            delivery_id: "d",
            event,
            link: Some(LINK),
            context: Some(&context),
            mention: Some(&person),
            buttons: None,
            board: None,
        })
        .collect();

    let sent = sink.send_batch(&batch).await;

    assert_eq!(sent, Ok(()));
    let body = server.requests()[0].json();
    assert_eq!(body["allowed_mentions"]["users"], json!([DISCORD_ID]));
    assert_eq!(body["allowed_mentions"]["parse"], json!([]));
    assert_eq!(body["embeds"].as_array().unwrap().len(), 10);
    assert!(discord_total(&body) <= 6000, "{}", discord_total(&body));
    for embed in body["embeds"].as_array().unwrap() {
        let description = embed["description"].as_str().unwrap_or_default();
        assert_eq!(description.matches("```").count() % 2, 0, "{description}");
    }
}

#[tokio::test]
async fn slack_send_carries_the_failure_context_and_mentions_the_member() {
    let server = CaptureServer::start().await;
    server.script(vec![Reply::text(200, "ok")]);
    let sink = slack_sink(&server);
    let event = build_failed();
    let (context, person) = (failure_context(), author());

    let sent = sink
        .send(&Outgoing {
            delivery_id: "dlv-9",
            event: &event,
            link: Some(LINK),
            context: Some(&context),
            mention: Some(&person),
            buttons: None,
            board: None,
        })
        .await;

    assert_eq!(sent, Ok(()));
    let body = server.requests()[0].json();
    let mention = format!("<@{SLACK_ID}>");
    assert!(
        body["text"].as_str().unwrap().starts_with(&mention),
        "{body}"
    );
    let blocks = body["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 50);
    assert!(
        blocks[1]["text"]["text"]
            .as_str()
            .unwrap()
            .contains(&mention)
    );
    let fields: Vec<String> = blocks
        .iter()
        .flat_map(|b| b["fields"].as_array().cloned().unwrap_or_default())
        .map(|f| f["text"].as_str().unwrap().to_owned())
        .collect();
    for expected in [
        "*Failed stage*\ncompile (1 m 12 s)",
        "*Branch*\nrelease/2.3",
        "*Commit*\n<https://code.example/web/commit/a1b2c3d4|a1b2c3d4> Fix the login page",
        "*Triggered by*\nalice (Manual)",
        "*Tests*\n120 tests, 3 failed, 1 error",
    ] {
        assert!(
            fields.iter().any(|f| f == expected),
            "{expected}: {fields:?}"
        );
    }
    assert!(blocks.iter().any(|b| b["type"] == "context"));
    let log = blocks
        .iter()
        .filter_map(|b| b["text"]["text"].as_str())
        .find(|t| t.starts_with("*Log (last "))
        .expect("a log section");
    assert!(
        log.ends_with("error: could not compile `web-frontend`\n```"),
        "{log}"
    );
    assert_eq!(log.matches("```").count(), 2, "{log}");
    for block in blocks {
        let limit = if block["type"] == "header" { 150 } else { 3000 };
        assert!(utf16(&block["text"]["text"]) <= limit, "{block}");
    }
    // Exactly the mapped member is mentioned, in the notification text and the section.
    let raw = body.to_string();
    assert_eq!(raw.matches("<@").count(), 2, "{raw}");
    assert_eq!(raw.matches(&mention).count(), 2, "{raw}");
    assert_inert("slack", &raw);
}

#[tokio::test]
async fn webhook_body_carries_the_context_as_its_json_and_the_mentioned_person() {
    let server = CaptureServer::start().await;
    let sink = webhook_sink(&server);
    let event = build_failed();
    let (context, person) = (failure_context(), author());

    let sent = sink
        .send(&Outgoing {
            delivery_id: "dlv-9",
            event: &event,
            link: None,
            context: Some(&context),
            mention: Some(&person),
            buttons: None,
            board: None,
        })
        .await;

    assert_eq!(sent, Ok(()));
    let request = &server.requests()[0];
    assert!(webhook::verify(
        HMAC_KEY.as_bytes(),
        &request.body,
        request.header("x-signature").unwrap()
    ));
    let body = request.json();
    assert_eq!(body["context"], serde_json::to_value(&context).unwrap());
    assert_eq!(
        serde_json::from_value::<Context>(body["context"].clone()).unwrap(),
        context
    );
    assert_eq!(body["context"]["failed_stage"], "compile");
    assert_eq!(body["context"]["failed_stage_ms"], 72_000);
    assert_eq!(body["context"]["log_tail"].as_array().unwrap().len(), 152);
    assert_eq!(body["context"]["stages"][0]["name"], "compile");
    assert_eq!(body["mention"]["codearts"], "alice");
    assert_eq!(body["mention"]["discord"], DISCORD_ID);
    assert!(body["mention"]["feishu"].is_null());
    // Every existing field is as it was.
    assert_eq!(body["id"], "dlv-9");
    assert_eq!(body["event"], "build_failed");
    assert_eq!(body["current"]["last_build_status"], "failed");
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 10, "{keys:?}");
}
