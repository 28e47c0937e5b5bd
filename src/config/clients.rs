//! The clients the config describes: the CodeArts client with its authentication method,
//! and serenity's HTTP client for the Discord bot.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::codearts::{
    self,
    auth::{AkSk, AkSkSettings, Auth, IamPassword, PasswordSettings, ProjectScope},
};
use crate::config::codearts::AuthMethod;
use crate::config::load::Config;

impl Config {
    /// serenity's HTTP client for the bot, when `[discord] token` is set: one per process, shared
    /// by `discord_bot` channels and the chat commands. `api_base` points it elsewhere (tests).
    pub fn discord_http(&self) -> Option<Arc<serenity::http::Http>> {
        self.discord_http_builder().map(|b| Arc::new(b.build()))
    }

    /// The builder behind [`Config::discord_http`] (the gateway builds its own client from it).
    pub fn discord_http_builder(&self) -> Option<serenity::http::HttpBuilder> {
        let token = self.discord.token.as_ref()?;
        let mut builder = serenity::http::HttpBuilder::new(token.expose())
            .default_allowed_mentions(serenity::builder::CreateAllowedMentions::new());
        if let Some(base) = &self.discord.api_base {
            // serenity 0.12.5's ratelimiter ignores the proxy and always calls discord.com, so
            // with another base the ratelimiter is off: our dispatcher's pacing and 429 handling
            // still apply.
            builder = builder
                .proxy(base.trim_end_matches('/'))
                .ratelimiter_disabled(true);
        }
        Some(builder)
    }

    /// The CodeArts client the config describes.
    pub fn codearts_client(&self) -> anyhow::Result<codearts::Client> {
        let auth = self.auth()?;
        codearts::Client::new(&self.endpoint(), auth, self.poll.timeout())
            .context("cannot build the CodeArts client")
    }

    /// The authentication method the (validated) config describes.
    pub fn auth(&self) -> anyhow::Result<Auth> {
        let a = &self.codearts.auth;
        let missing = |key: &str| anyhow::anyhow!("codearts.auth.{key} is required");
        Ok(match a.effective_method() {
            None => anyhow::bail!("codearts.auth: no method configured"),
            Some(AuthMethod::Token) => {
                Auth::Token(a.token.clone().ok_or_else(|| missing("token"))?)
            }
            Some(AuthMethod::Password) => {
                let scope = match (&a.project_id, &a.project_name) {
                    (Some(id), _) => ProjectScope::Id(id.clone()),
                    (None, Some(name)) => ProjectScope::Name(name.clone()),
                    (None, None) => ProjectScope::Name(self.codearts.region.clone()),
                };
                Auth::Password(IamPassword::new(PasswordSettings {
                    iam_endpoint: a.iam_endpoint(&self.codearts.region),
                    domain: a.domain.clone().ok_or_else(|| missing("domain"))?,
                    user: a.user.clone().ok_or_else(|| missing("user"))?,
                    password: a.password.clone().ok_or_else(|| missing("password"))?,
                    scope,
                    refresh_margin: Duration::from_secs(a.refresh_margin_secs.unwrap_or(3600)),
                    timeout: self.poll.timeout(),
                })?)
            }
            Some(AuthMethod::Aksk) => Auth::AkSk(AkSk::new(AkSkSettings {
                ak: a.ak.clone().ok_or_else(|| missing("ak"))?,
                sk: a.sk.clone().ok_or_else(|| missing("sk"))?,
                project_id: a.project_id.clone().ok_or_else(|| missing("project_id"))?,
                security_token: a.security_token.clone(),
            })),
        })
    }
}
