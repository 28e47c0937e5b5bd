//! Chat commands over loopback: the Discord interactions endpoint with real Ed25519 keys, the
//! Slack endpoint with real signatures, and the gateway path through serenity's HTTP client
//! pointed at a capture server; all answering from the simulator and a real SQLite file.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::harness::{Env, Served, serve, start_bot, wraps_env};
use codearts_bot::chat::{Chat, gateway};
use codearts_bot::config::Config;
use codearts_bot::engine::Ctx;
use codearts_bot::engine::poller;
use codearts_bot::sim;
use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const SLACK_SECRET: &str = "slack-signing-secret-for-tests";

/// The shared [`Env`] with the bot's endpoints serving, and a client that signs like the
/// platforms do (also used by `chat_context`).
pub(crate) struct Bot {
    env: Env,
    pub(crate) app: Ctx,
    addr: SocketAddr,
    key: SigningKey,
    http: reqwest::Client,
    _served: Served,
}

wraps_env!(Bot, env);

impl Bot {
    /// A bot with both endpoints on, one webhook alert channel, and nothing watched.
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// As [`Bot::start`], with the config changed by `edit` first.
    pub(crate) async fn start_with(edit: impl FnOnce(&mut Config)) -> Self {
        let env = Env::start(2).await;
        let key = SigningKey::from_bytes(&[42; 32]);
        let mut config = env
            .toml()
            .codearts("link_template = \"https://console.example/job/{job_id}\"")
            .poll("timeout_secs = 5")
            .delivery("group_wait_ms = 100")
            .table(&format!(
                "[discord]\npublic_key = \"{public}\"\napi_base = \"{api_base}\"\n\
                 [slack]\nsigning_secret = \"{SLACK_SECRET}\"",
                public = hex::encode(key.verifying_key().to_bytes()),
                api_base = env.capture.url(""),
            ))
            .webhook("alerts", &env.capture.url("/hook"), "")
            .config();
        edit(&mut config);
        let app = start_bot(config).await;
        let served = serve(&app).await;
        Self {
            env,
            app,
            addr: served.addr,
            key,
            http: reqwest::Client::new(),
            _served: served,
        }
    }

    async fn discord_raw(
        &self,
        body: &[u8],
        timestamp: i64,
        sign_with: &SigningKey,
    ) -> reqwest::Response {
        let ts = timestamp.to_string();
        let mut message = ts.as_bytes().to_vec();
        message.extend_from_slice(body);
        let signature = hex::encode(sign_with.sign(&message).to_bytes());
        self.http
            .post(format!("http://{}/discord/interactions", self.addr))
            .header("x-signature-ed25519", signature)
            .header("x-signature-timestamp", ts)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn discord(&self, interaction: Value) -> (u16, Value) {
        let body = serde_json::to_vec(&interaction).unwrap();
        let response = self
            .discord_raw(&body, chrono::Utc::now().timestamp(), &self.key)
            .await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn slack_raw(&self, body: &str, timestamp: i64) -> reqwest::Response {
        self.slack_signed("/slack/commands", body, timestamp, false)
            .await
    }

    /// A form POST to `path` signed as Slack signs; `tamper` changes the body after signing.
    pub(crate) async fn slack_signed(
        &self,
        path: &str,
        body: &str,
        timestamp: i64,
        tamper: bool,
    ) -> reqwest::Response {
        let ts = timestamp.to_string();
        let mut mac = Hmac::<Sha256>::new_from_slice(SLACK_SECRET.as_bytes()).unwrap();
        mac.update(format!("v0:{ts}:{body}").as_bytes());
        let signature = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
        let body = if tamper {
            body.replacen("bob", "eve", 1)
        } else {
            body.to_owned()
        };
        self.http
            .post(format!("http://{}{path}", self.addr))
            .header("x-slack-signature", signature)
            .header("x-slack-request-timestamp", ts)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn slack(&self, command: &str, text: &str, user: &str) -> Value {
        let body = serde_urlencoded::to_string([
            ("team_id", "T1"),
            ("channel_id", "C1"),
            ("user_id", user),
            ("command", command),
            ("text", text),
            ("response_url", &self.capture.url("/slack-response")),
        ])
        .unwrap();
        let response = self.slack_raw(&body, chrono::Utc::now().timestamp()).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

/// A signed-shape Discord command interaction (type 2) of `name` with `options`.
pub(crate) fn command(name: &str, options: Value) -> Value {
    json!({
        "type": 2, "id": "1100000000000000001", "application_id": "1200000000000000002",
        "token": "interaction-token", "guild_id": "1300000000000000003",
        "channel_id": "1400000000000000004",
        "member": {"user": {"id": "1500000000000000005"}, "roles": ["1600000000000000006"]},
        "data": {"name": name, "options": options},
    })
}

#[tokio::test]
async fn discord_ping_job_card_and_every_bad_request_get_what_discord_expects() {
    let bot = Bot::start().await;

    let (status, pong) = bot.discord(json!({"type": 1})).await;
    assert_eq!((status, pong), (200, json!({"type": 1})));

    let job = bot.job(0);
    let (status, answer) = bot
        .discord(command(
            "job",
            json!([{"name": "id", "type": 3, "value": job}]),
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(answer["type"], 4);
    let embed = &answer["data"]["embeds"][0];
    assert_eq!(embed["title"], sim::seeded_job_name(0));
    assert_eq!(embed["url"], format!("https://console.example/job/{job}"));
    let fields = embed["fields"].to_string();
    assert!(
        fields.contains("Status") && fields.contains("success"),
        "{fields}"
    );
    assert!(
        fields.contains("<t:"),
        "last build in the reader's timezone: {fields}"
    );
    assert_eq!(answer["data"]["allowed_mentions"], json!({"parse": []}));
    assert!(answer["data"].get("flags").is_none(), "a card is public");

    // Bad signature, stale timestamp, missing headers, oversized body: 401 each.
    let body = br#"{"type":1}"#;
    let now = chrono::Utc::now().timestamp();
    let stranger = SigningKey::from_bytes(&[9; 32]);
    assert_eq!(bot.discord_raw(body, now, &stranger).await.status(), 401);
    assert_eq!(
        bot.discord_raw(body, now - 301, &bot.key).await.status(),
        401
    );
    let missing = bot
        .http
        .post(format!("http://{}/discord/interactions", bot.addr))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    let huge = vec![b' '; 100 * 1024];
    assert_eq!(bot.discord_raw(&huge, now, &bot.key).await.status(), 401);

    // An invalid id: an ephemeral explanation, no API call.
    let before = bot.sim.control().stats().await.unwrap()["requests"].clone();
    let (_, answer) = bot
        .discord(command(
            "job",
            json!([{"name": "id", "type": 3, "value": "12345"}]),
        ))
        .await;
    assert_eq!(answer["type"], 4);
    assert_eq!(answer["data"]["flags"], 64);
    assert!(
        answer["data"]["content"]
            .as_str()
            .unwrap()
            .contains("not a job id")
    );
    assert_eq!(bot.sim.control().stats().await.unwrap()["requests"], before);

    // An unknown job: the 404 explained, ephemerally.
    let (_, answer) = bot
        .discord(command(
            "job",
            json!([{"name": "id", "type": 3, "value": "0".repeat(32)}]),
        ))
        .await;
    assert_eq!(answer["data"]["flags"], 64);
    assert!(
        answer["data"]["content"].as_str().unwrap().contains("404"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_guild_or_role_outside_the_allow_lists_is_refused_ephemerally() {
    let bot = Bot::start_with(|config| {
        config.discord.guilds = vec!["1300000000000000003".into()];
        config.discord.manage_roles = vec!["1700000000000000007".into()];
    })
    .await;
    let job = bot.job(0);
    let mut other_guild = command("job", json!([{"name": "id", "value": job}]));
    other_guild["guild_id"] = json!("9990000000000000999");
    let (_, answer) = bot.discord(other_guild).await;
    assert_eq!(answer["data"]["flags"], 64);
    assert!(
        answer["data"]["content"]
            .as_str()
            .unwrap()
            .contains("server"),
        "{answer}"
    );

    // Allowed guild, but /watch needs a manage role the member lacks.
    let (_, answer) = bot
        .discord(command("watch", json!([{"name": "id", "value": job}])))
        .await;
    assert_eq!(answer["data"]["flags"], 64);
    assert!(
        answer["data"]["content"]
            .as_str()
            .unwrap()
            .contains("manage"),
        "{answer}"
    );
    assert!(bot.app.store.watched_jobs().await.unwrap().is_empty());

    // /job is fine for them.
    let (_, answer) = bot
        .discord(command("job", json!([{"name": "id", "value": job}])))
        .await;
    assert!(answer["data"]["embeds"][0]["title"].is_string(), "{answer}");
}

#[tokio::test]
async fn watch_then_a_transition_alerts_and_unwatch_silences() {
    let bot = Bot::start().await;
    let job = bot.job(1);
    let id = json!([{"name": "id", "value": job}]);

    let (_, answer) = bot.discord(command("watch", id.clone())).await;
    let text = answer["data"]["content"].as_str().unwrap_or_default();
    assert!(text.contains("Now watching"), "{answer}");
    let (_, again) = bot.discord(command("watch", id.clone())).await;
    assert_eq!(again["data"]["flags"], 64, "already watched: {again}");

    poller::run_cycle(&bot.app).await.unwrap(); // baseline
    bot.sim
        .control()
        .put_job(&job, json!({"last_build_status": "failed"}))
        .await
        .unwrap();
    poller::run_cycle(&bot.app).await.unwrap();
    codearts_bot::engine::context::settle(&bot.app).await;
    bot.app.dispatcher().drain_due().await.unwrap();
    let alerts = bot.capture.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(alerts[0].json()["job_id"], job);
    assert_eq!(alerts[0].json()["event"], "build_failed");

    // /watches lists it; /history shows the event.
    let (_, list) = bot.discord(command("watches", json!([]))).await;
    assert!(
        list["data"]["embeds"][0]["description"]
            .to_string()
            .contains(&job),
        "{list}"
    );
    let (_, history) = bot.discord(command("history", id.clone())).await;
    assert!(
        history["data"]["embeds"][0]["description"]
            .to_string()
            .contains("build_failed"),
        "{history}"
    );

    let (_, answer) = bot.discord(command("unwatch", id.clone())).await;
    assert!(
        answer["data"]["content"]
            .as_str()
            .unwrap()
            .contains("Stopped watching"),
        "{answer}"
    );
    bot.sim
        .control()
        .put_job(&job, json!({"last_build_status": "success"}))
        .await
        .unwrap();
    let report = poller::run_cycle(&bot.app).await.unwrap();
    bot.app.dispatcher().drain_due().await.unwrap();
    assert_eq!((report.jobs, report.events), (0, 0));
    assert_eq!(bot.capture.requests().len(), 1, "no alert after /unwatch");
}

#[tokio::test]
async fn a_slow_api_is_deferred_then_the_original_response_is_edited() {
    let bot = Bot::start().await;
    bot.sim
        .control()
        .set_fault(json!({"delay_ms": 2600, "count": 1}))
        .await
        .unwrap();
    let job = bot.job(0);
    let started = std::time::Instant::now();
    let (_, answer) = bot
        .discord(command("job", json!([{"name": "id", "value": job}])))
        .await;
    assert_eq!(answer, json!({"type": 5}));
    assert!(
        started.elapsed() < Duration::from_millis(2900),
        "within Discord's 3 s"
    );
    let edits = bot.capture.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(edits[0].method, "PATCH");
    assert_eq!(
        edits[0].path,
        "/api/v10/webhooks/1200000000000000002/interaction-token/messages/@original"
    );
    assert_eq!(
        edits[0].json()["embeds"][0]["title"],
        sim::seeded_job_name(0)
    );
}

#[tokio::test]
async fn autocomplete_offers_watched_jobs_by_name() {
    let bot = Bot::start().await;
    let job = bot.job(0);
    bot.app
        .store
        .watch_from_chat(&sim::seeded_job_id(0), None)
        .await
        .unwrap();
    poller::run_cycle(&bot.app).await.unwrap();
    let mut typed = command(
        "job",
        json!([{"name": "id", "type": 3, "value": "sim", "focused": true}]),
    );
    typed["type"] = json!(4);
    let (_, answer) = bot.discord(typed).await;
    assert_eq!(answer["type"], 8);
    assert_eq!(answer["data"]["choices"][0]["value"], job);
    assert!(
        answer["data"]["choices"][0]["name"]
            .as_str()
            .unwrap()
            .contains(&sim::seeded_job_name(0))
    );
}

#[tokio::test]
async fn slack_commands_verify_and_answer_with_blocks() {
    let bot = Bot::start().await;
    let job = bot.job(0);

    let answer = bot.slack("/codearts", &format!("job {job}"), "U1").await;
    assert_eq!(answer["response_type"], "in_channel");
    let blocks = answer["blocks"].to_string();
    assert!(blocks.contains(&sim::seeded_job_name(0)), "{blocks}");
    assert!(blocks.contains("*Status*\\nsuccess"), "{blocks}");
    let answer = bot.slack("/job", &job, "U1").await;
    assert!(answer["blocks"].is_array(), "the separate-command form too");

    let answer = bot.slack("/codearts", "job nope", "U1").await;
    assert_eq!(answer["response_type"], "ephemeral");
    assert!(answer["text"].as_str().unwrap().contains("not a job id"));

    // A tampered body and an old timestamp: 401.
    let body = format!("team_id=T1&user_id=U1&command=%2Fjob&text={job}");
    let now = chrono::Utc::now().timestamp();
    let good = bot.slack_raw(&body, now).await;
    assert_eq!(good.status(), 200);
    let ts = now.to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(SLACK_SECRET.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    let signature = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    let tampered = bot
        .http
        .post(format!("http://{}/slack/commands", bot.addr))
        .header("x-slack-signature", signature)
        .header("x-slack-request-timestamp", ts)
        .body(body.replace("text=", "text=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 401);
    assert_eq!(bot.slack_raw(&body, now - 301).await.status(), 401);
}

#[tokio::test]
async fn a_user_hammering_job_cannot_spend_the_api_budget() {
    let bot = Bot::start().await;
    bot.sim.control().reset_stats().await.unwrap();
    let job = bot.job(0);
    let mut refused = 0;
    for _ in 0..15 {
        let answer = bot.slack("/job", &job, "U-hammer").await;
        if answer["response_type"] == "ephemeral" {
            assert!(
                answer["text"]
                    .as_str()
                    .unwrap()
                    .contains("faster than this bot allows")
            );
            refused += 1;
        }
    }
    assert_eq!(refused, 5, "10 per minute by default");
    assert_eq!(
        bot.sim.control().stats().await.unwrap()["requests"],
        1,
        "repeated queries of one job within commands.cache_secs reuse one answer"
    );
    // Someone else is not held back by the first user.
    assert_eq!(
        bot.slack("/job", &job, "U-other").await["response_type"],
        "in_channel"
    );
}

#[tokio::test]
async fn the_gateway_answers_through_serenitys_client_with_the_same_handler() {
    let bot = Bot::start().await;
    let job = bot.job(0);
    let http = serenity::http::HttpBuilder::new("bot-token-for-tests")
        .proxy(bot.capture.url(""))
        .ratelimiter_disabled(true)
        .application_id(serenity::all::ApplicationId::new(1_200_000_000_000_000_002))
        .build();
    // A command interaction as the gateway delivers it, read by serenity's own model.
    let raw = json!({
        "id": "1100000000000000001", "application_id": "1200000000000000002", "type": 2,
        "token": "gateway-token", "version": 1, "locale": "en-US",
        "guild_id": "1300000000000000003", "channel_id": "1400000000000000004",
        "member": {"user": {"id": "1500000000000000005", "username": "oncall", "discriminator": "0",
                            "global_name": null, "avatar": null},
                   "roles": [], "joined_at": "2024-01-01T00:00:00Z", "deaf": false, "mute": false,
                   "flags": 0},
        "data": {"id": "1800000000000000008", "name": "job", "type": 1,
                 "options": [{"name": "id", "type": 3, "value": job}]},
        "entitlements": [], "authorizing_integration_owners": {}, "context": 0,
        "attachment_size_limit": 8_388_608,
    });
    let interaction: serenity::all::CommandInteraction =
        serde_json::from_value(raw).expect("serenity reads the gateway payload");
    let ours = gateway::from_serenity(&interaction, 2);
    gateway::respond(&Chat::new(bot.app.clone()), &http, &ours)
        .await
        .expect("the callback reaches the capture server");
    let sent = bot.capture.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "POST");
    assert_eq!(
        sent[0].path,
        "/api/v10/interactions/1100000000000000001/gateway-token/callback"
    );
    let body = sent[0].json();
    assert_eq!(body["type"], 4);
    assert_eq!(body["data"]["embeds"][0]["title"], sim::seeded_job_name(0));
}

#[tokio::test]
async fn silences_from_chat_are_stored_with_who_and_why() {
    let bot = Bot::start().await;
    let job = bot.job(0);
    let answer = bot
        .slack("/codearts", &format!("mute {job} 2h deploy freeze"), "U7")
        .await;
    assert_eq!(answer["response_type"], "in_channel", "{answer}");
    assert!(answer["text"].as_str().unwrap().contains("Muted job"));
    let open = bot.app.store.open_silences().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(
        (open[0].created_by.as_str(), open[0].reason.as_str()),
        ("slack:U7", "deploy freeze")
    );
    let bad = bot.slack("/codearts", "mute everything 2h", "U7").await;
    assert_eq!(bad["response_type"], "ephemeral");
    let bad = bot
        .slack("/codearts", &format!("mute {job} forever"), "U7")
        .await;
    assert!(
        bad["text"].as_str().unwrap().contains("not a duration"),
        "{bad}"
    );

    let (_, answer) = bot
        .discord(command("unmute", json!([{"name": "target", "value": job}])))
        .await;
    assert!(
        answer["data"]["content"]
            .as_str()
            .unwrap()
            .contains("Unmuted"),
        "{answer}"
    );
    assert!(bot.app.store.open_silences().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_gateway_registers_the_commands_in_each_allowed_guild() {
    let bot = Bot::start_with(|config| {
        config.discord.guilds = vec!["1300000000000000003".into(), "1300000000000000009".into()];
    })
    .await;
    let http = serenity::http::HttpBuilder::new("bot-token-for-tests")
        .proxy(bot.capture.url(""))
        .ratelimiter_disabled(true)
        .application_id(serenity::all::ApplicationId::new(1_200_000_000_000_000_002))
        .build();
    bot.capture.script(vec![
        crate::support::capture::Reply::json(200, json!([])),
        crate::support::capture::Reply::json(200, json!([])),
    ]);
    gateway::register(&Chat::new(bot.app.clone()), &http)
        .await
        .expect("registration reaches the capture server");
    let sent = bot.capture.requests();
    let paths: Vec<(String, String)> = sent
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    assert_eq!(
        paths,
        vec![
            (
                "PUT".to_owned(),
                "/api/v10/applications/1200000000000000002/guilds/1300000000000000003/commands"
                    .to_owned()
            ),
            (
                "PUT".to_owned(),
                "/api/v10/applications/1200000000000000002/guilds/1300000000000000009/commands"
                    .to_owned()
            ),
        ]
    );
    let names: Vec<String> = sent[0]
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "job", "watch", "unwatch", "watches", "history", "log", "mute", "unmute", "ack",
            "rerun", "stop", "digest"
        ]
    );
}
