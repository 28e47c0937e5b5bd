//! The [`Chat`] handler every transport calls: each user's command budget, the answer cache,
//! refusals, the commands metric and log line, dispatch to the commands, and the `id` option's
//! autocomplete.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::commands::Command;
use super::commands::shared::Call;
use super::invoker::Invoker;
use super::limits::{AnswerCache, UserLimiter};
use super::reply::Reply;
use crate::engine::Ctx;

/// The commands' shared state: the ctx, one cached answer per job, and each user's budget.
#[derive(Clone)]
pub struct Chat {
    pub ctx: Ctx,
    cache: Arc<AnswerCache>,
    users: Arc<UserLimiter>,
}

impl Chat {
    pub fn new(ctx: Ctx) -> Self {
        let c = &ctx.config.commands;
        Self {
            cache: Arc::new(AnswerCache::new(Duration::from_secs(c.cache_secs))),
            users: Arc::new(UserLimiter::new(c.per_user_per_minute)),
            ctx,
        }
    }

    /// Runs a command for someone the transport already let in (see [`Chat::refusal`]).
    pub async fn handle(&self, who: &Invoker, command: &Command) -> Reply {
        let reply = match self.users.check(&format!("{}:{}", who.transport, who.user)) {
            Err(wait) => Reply::Error(format!(
                "You are sending commands faster than this bot allows ({} per minute): try again in {} s.",
                self.ctx.config.commands.per_user_per_minute,
                wait.as_secs().max(1)
            )),
            Ok(()) => {
                let call = Call {
                    ctx: &self.ctx,
                    cache: &self.cache,
                    who,
                };
                command.run(&call).await
            }
        };
        self.count(who, command, reply.outcome());
        info!(
            transport = who.transport,
            user = %who.user,
            command = command.name(),
            outcome = reply.outcome(),
            "chat command"
        );
        reply
    }

    /// The refusal for someone the allow-lists keep out, logged; `None` lets them in.
    pub fn refusal(&self, who: &Invoker, command: &Command, why: Option<String>) -> Option<Reply> {
        let why = why?;
        warn!(
            transport = who.transport,
            user = %who.user,
            space = who.space.as_deref().unwrap_or("-"),
            channel = who.channel.as_deref().unwrap_or("-"),
            command = command.name(),
            reason = %why,
            "chat command refused"
        );
        self.count(who, command, "refused");
        Some(Reply::Error(why))
    }

    fn count(&self, who: &Invoker, command: &Command, outcome: &str) {
        self.ctx.metrics.inc(
            "codearts_bot_chat_commands_total",
            &[
                ("transport", who.transport),
                ("command", command.name()),
                ("outcome", outcome),
            ],
        );
    }

    /// Autocomplete for the `id` option: watched jobs whose id or name contains what was typed,
    /// as `(label, id)`, at most 25.
    pub async fn suggestions(&self, typed: &str) -> Vec<(String, String)> {
        let Ok(watched) = self.ctx.store.watched_jobs().await else {
            return Vec::new();
        };
        if self
            .ctx
            .snapshots
            .ensure_loaded(&self.ctx.store)
            .await
            .is_err()
        {
            return Vec::new();
        }
        let typed = typed.trim().to_lowercase();
        watched
            .iter()
            .filter_map(|w| {
                let name = self
                    .ctx
                    .snapshots
                    .get(&w.job_id)
                    .and_then(|s| s.info.as_ref().and_then(|i| i.job_name.clone()))
                    .unwrap_or_default();
                let hit = typed.is_empty()
                    || w.job_id.as_str().contains(&typed)
                    || name.to_lowercase().contains(&typed);
                hit.then(|| {
                    let label = if name.is_empty() {
                        w.job_id.to_string()
                    } else {
                        format!(
                            "{} ({})",
                            crate::util::text::truncate_chars(&name, 60),
                            w.job_id
                        )
                    };
                    (label, w.job_id.to_string())
                })
            })
            .take(25)
            .collect()
    }
}
