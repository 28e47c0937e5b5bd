//! The sinks against a real HTTP server on loopback: what a chat service receives, and how
//! each kind of answer (or no answer) is reported to the dispatcher.

mod support;

use std::time::Duration;

use chrono::{TimeZone, Utc};
use codearts_bot::codearts::JobInfo;
use codearts_bot::config::{ChannelConfig, ChannelType};
use codearts_bot::detect::{Event, EventKind};
use codearts_bot::notify::{Outgoing, SendError, Sink, webhook};
use codearts_bot::secret::Secret;
use support::capture::{CaptureServer, Reply};

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
    }
}

fn webhook_sink(server: &CaptureServer) -> Sink {
    let url = server.url(&format!("/hooks/{TOKEN}"));
    Sink::from_config(
        &channel(ChannelType::Webhook, url, Some(HMAC_KEY)),
        http(Duration::from_secs(5)),
    )
}

fn discord_sink(server: &CaptureServer) -> Sink {
    let url = server.url(&format!("/api/webhooks/123/{TOKEN}?thread_id=77"));
    Sink::from_config(
        &channel(ChannelType::Discord, url, None),
        http(Duration::from_secs(5)),
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
    );
    let event = build_failed();

    let sent = sink
        .send(&Outgoing {
            delivery_id: "d",
            event: &event,
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
        })
        .await;

    assert_eq!(sent, Ok(()));
    let received = server.requests();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(
        request.path,
        format!("/api/webhooks/123/{TOKEN}?thread_id=77&wait=true")
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
    );
    let event = build_failed();

    let sent = sink
        .send(&Outgoing {
            delivery_id: "d",
            event: &event,
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
