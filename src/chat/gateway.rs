//! The Discord gateway (serenity): registers the slash commands and answers interactions with
//! the same handler and rendering as the HTTP endpoint ([`super::discord`]); only the way the
//! answer travels differs (serenity's HTTP client instead of the HTTP response).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use serenity::all::{
    CommandDataOptionValue, CommandInteraction, ComponentInteraction, Context, EventHandler,
    GatewayIntents, GuildId, Http, InteractionId, Ready,
};
use tracing::{info, warn};

use super::discord::{self, CommandOption, Data, IdOnly, Interaction, Member};
use super::handler::Chat;
use super::reply::Reply;

/// The bot's interaction, in the shape the shared handler reads.
pub fn from_serenity(cmd: &CommandInteraction, kind: u8) -> Interaction {
    let options = cmd
        .data
        .options
        .iter()
        .map(|o| {
            let (value, focused) = match &o.value {
                CommandDataOptionValue::String(s) => (json!(s), false),
                CommandDataOptionValue::Integer(n) => (json!(n), false),
                CommandDataOptionValue::Number(n) => (json!(n), false),
                CommandDataOptionValue::Boolean(b) => (json!(b), false),
                CommandDataOptionValue::Autocomplete { value, .. } => (json!(value), true),
                _ => (Value::Null, false),
            };
            CommandOption {
                name: o.name.clone(),
                value: Some(value),
                focused,
            }
        })
        .collect();
    Interaction {
        kind,
        id: cmd.id.to_string(),
        application_id: cmd.application_id.to_string(),
        token: cmd.token.clone(),
        guild_id: cmd.guild_id.map(|g| g.to_string()),
        channel_id: Some(cmd.channel_id.to_string()),
        channel: None,
        member: cmd.member.as_ref().map(|m| Member {
            user: Some(IdOnly {
                id: m.user.id.to_string(),
                username: Some(m.user.name.clone()),
                global_name: m.user.global_name.clone(),
            }),
            roles: m.roles.iter().map(ToString::to_string).collect(),
        }),
        user: Some(IdOnly {
            id: cmd.user.id.to_string(),
            username: Some(cmd.user.name.clone()),
            global_name: cmd.user.global_name.clone(),
        }),
        data: Some(Data {
            name: cmd.data.name.clone(),
            options,
            custom_id: String::new(),
        }),
        message: None,
    }
}

/// A button click (component interaction) in the shape the shared handler reads: serenity's
/// own JSON of it, which is Discord's.
pub fn component(click: &ComponentInteraction) -> Option<Interaction> {
    let mut value = serde_json::to_value(click).ok()?;
    value["type"] = json!(3);
    serde_json::from_value(value).ok()
}

/// Answers one interaction through serenity's HTTP client: autocomplete (type 4) with
/// choices, a command (type 2) with its reply, or, when the command is slow, a deferral then
/// an edit of the original response.
pub async fn respond(chat: &Chat, http: &Http, interaction: &Interaction) -> serenity::Result<()> {
    let id = InteractionId::new(interaction.id.parse().unwrap_or(1));
    let token = interaction.token.as_str();
    if interaction.kind == 4 {
        let answer = discord::autocomplete(chat, interaction).await;
        return http
            .create_interaction_response(id, token, &answer, Vec::new())
            .await;
    }
    let task = {
        let (chat, interaction) = (chat.clone(), interaction.clone());
        tokio::spawn(async move { discord::answer(&chat, &interaction).await })
    };
    match super::late::deadline(task).await {
        Ok(reply) => {
            let answer = json!({"type": 4, "data": discord::render(&reply)});
            http.create_interaction_response(id, token, &answer, Vec::new())
                .await
        }
        Err(task) => {
            let deferral = discord::deferral(interaction);
            http.create_interaction_response(id, token, &deferral, Vec::new())
                .await?;
            let reply = task
                .await
                .unwrap_or_else(|_| Reply::Error("The command failed.".to_owned()));
            http.edit_original_interaction_response(token, &discord::render(&reply), Vec::new())
                .await
                .map(|_| ())
        }
    }
}

/// Registers the commands in each allowed guild (instant), or globally when none is listed.
pub async fn register(chat: &Chat, http: &Http) -> serenity::Result<()> {
    let definitions = discord::command_definitions();
    let guilds = &chat.ctx.config.discord.guilds;
    if guilds.is_empty() {
        http.create_global_commands(&definitions).await?;
        info!("slash commands registered globally (Discord may take a while to show them)");
    } else {
        for guild in guilds {
            let Ok(id) = guild.parse::<u64>() else {
                continue; // refused by config validation
            };
            http.create_guild_commands(GuildId::new(id), &definitions)
                .await?;
        }
        info!(
            guilds = guilds.len(),
            "slash commands registered in the allowed guilds"
        );
    }
    Ok(())
}

struct Handler {
    chat: Chat,
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        ctx.http.set_application_id(ready.application.id);
        info!(bot = %ready.user.name, "connected to the Discord gateway");
        if let Err(e) = register(&self.chat, &ctx.http).await {
            warn!(error = %e, "cannot register the slash commands");
        }
    }

    async fn interaction_create(&self, ctx: Context, interaction: serenity::all::Interaction) {
        let ours = match &interaction {
            serenity::all::Interaction::Command(cmd) => from_serenity(cmd, 2),
            serenity::all::Interaction::Autocomplete(cmd) => from_serenity(cmd, 4),
            serenity::all::Interaction::Component(click) => {
                let Some(ours) = component(click) else {
                    warn!("a Discord button click could not be read");
                    return;
                };
                let answer = super::discord_buttons::answer_in_time(&self.chat, &ours).await;
                let id = InteractionId::new(ours.id.parse().unwrap_or(1));
                if let Err(e) = ctx
                    .http
                    .create_interaction_response(id, &ours.token, &answer, Vec::new())
                    .await
                {
                    warn!(error = %e, "cannot answer a Discord button click");
                }
                return;
            }
            _ => return,
        };
        if let Err(e) = respond(&self.chat, &ctx.http, &ours).await {
            warn!(error = %e, "cannot answer a Discord interaction");
        }
    }
}

/// Runs the gateway until `stop` fires, reconnecting with backoff when it cannot start
/// (Discord unreachable, or a refused token, which is logged as an error each time).
pub async fn run(chat: Chat, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut backoff = Duration::from_secs(30);
    loop {
        let Some(http) = chat.ctx.config.discord_http_builder() else {
            return;
        };
        let built =
            serenity::all::ClientBuilder::new_with_http(http.build(), GatewayIntents::empty())
                .event_handler(Handler { chat: chat.clone() })
                .await;
        let mut client = match built {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "cannot build the Discord gateway client");
                return;
            }
        };
        let shards = Arc::clone(&client.shard_manager);
        tokio::select! {
            result = client.start() => {
                if let Err(e) = result {
                    warn!(error = %e, retry_in_secs = backoff.as_secs(), "the Discord gateway stopped; slash commands by gateway are unavailable until it reconnects");
                }
            }
            () = stopped(&mut stop) => {
                shards.shutdown_all().await;
                return;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stopped(&mut stop) => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(600));
    }
}

async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A click as the gateway delivers it (Discord's documented shape) reads as the HTTP
    /// endpoint's: the button id, the clicker and their roles, the clicked message.
    #[test]
    fn a_gateway_click_reads_like_an_http_one() {
        let raw = json!({
            "type": 3, "id": "1100000000000000001", "application_id": "1200000000000000002",
            "token": "tok", "version": 1, "guild_id": "1300000000000000003",
            "channel_id": "1400000000000000004", "locale": "en-US", "entitlements": [],
            "authorizing_integration_owners": {}, "attachment_size_limit": 10485760,
            "member": {"user": {"id": "1500000000000000005", "username": "alice",
                                "discriminator": "0", "avatar": null},
                       "roles": ["1600000000000000006"], "joined_at": "2026-01-01T00:00:00Z",
                       "deaf": false, "mute": false, "flags": 0},
            "user": {"id": "1500000000000000005", "username": "alice", "discriminator": "0",
                     "avatar": null},
            "data": {"custom_id": "cb1:0123abcd", "component_type": 2},
            "message": {"id": "555000000000000001", "channel_id": "1400000000000000004",
                        "author": {"id": "1200000000000000002", "username": "bot",
                                   "discriminator": "0", "avatar": null, "bot": true},
                        "content": "", "timestamp": "2026-12-02T12:00:00Z",
                        "edited_timestamp": null, "tts": false, "mention_everyone": false,
                        "mentions": [], "mention_roles": [], "attachments": [],
                        "embeds": [{"title": "web"}], "pinned": false, "type": 0,
                        "flags": 64, "components": []},
        });
        let click: ComponentInteraction = serde_json::from_value(raw).unwrap();
        let ours = component(&click).expect("readable");
        assert_eq!(ours.kind, 3);
        assert_eq!(ours.data.as_ref().unwrap().custom_id, "cb1:0123abcd");
        let who = ours.invoker();
        assert_eq!(who.user, "1500000000000000005");
        assert_eq!(who.roles, vec!["1600000000000000006".to_owned()]);
        let message = ours.message.unwrap();
        assert_eq!(message["id"], "555000000000000001");
        assert_eq!(message["embeds"][0]["title"], "web");
        // An ephemeral confirmation is told apart by its flags, as over HTTP.
        assert_eq!(message["flags"], 64);
    }
}
