//! Chat commands: one implementation of `/job`, `/watch`, `/unwatch`, `/watches` and
//! `/history`, reached by three transports: the Discord gateway ([`gateway`]), Discord's HTTP
//! interactions endpoint ([`discord`]) and Slack slash commands ([`slack`]).
//!
//! A transport turns its request into a [`Command`] and an [`Invoker`], checks its own
//! allow-lists, and renders the platform-neutral [`Reply`] this module returns.

pub mod discord;
pub mod gateway;
pub mod limits;
pub mod signed;
pub mod slack;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::codearts::{self, JobId, JobInfo};
use crate::domain::detect::Event;
use crate::engine::Ctx;
use crate::engine::silences::{self, SilenceError};
use crate::store::WatchSource;

use limits::{AnswerCache, UserLimiter};

/// Most lines a list reply shows.
pub const MAX_LIST: usize = 20;
/// Readings in a health sparkline.
const TREND_READINGS: u32 = 12;

/// A parsed chat command. Ids are kept as typed so the reply can quote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Job {
        id: String,
    },
    Watch {
        id: String,
        channel: Option<String>,
    },
    Unwatch {
        id: String,
    },
    Watches,
    History {
        id: String,
        n: Option<i64>,
    },
    Mute {
        target: String,
        duration: String,
        reason: Option<String>,
    },
    Unmute {
        target: String,
    },
    Ack {
        id: String,
    },
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Job { .. } => "job",
            Command::Watch { .. } => "watch",
            Command::Unwatch { .. } => "unwatch",
            Command::Watches => "watches",
            Command::History { .. } => "history",
            Command::Mute { .. } => "mute",
            Command::Unmute { .. } => "unmute",
            Command::Ack { .. } => "ack",
        }
    }

    /// Commands that change what the bot watches or sends (they may need a role).
    pub fn mutates(&self) -> bool {
        !matches!(
            self,
            Command::Job { .. } | Command::Watches | Command::History { .. }
        )
    }

    /// Builds a command from its name and named options (the Discord shape; Slack's text is
    /// split into the same). `None` when the name is not a command.
    pub fn from_parts(name: &str, option: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let id = || option("id").unwrap_or_default();
        Some(match name {
            "job" => Command::Job { id: id() },
            "watch" => Command::Watch {
                id: id(),
                channel: option("channel").filter(|c| !c.is_empty()),
            },
            "unwatch" => Command::Unwatch { id: id() },
            "watches" => Command::Watches,
            "history" => Command::History {
                id: id(),
                n: option("n").and_then(|n| n.trim().parse().ok()),
            },
            "mute" => Command::Mute {
                target: option("target").unwrap_or_default(),
                duration: option("duration").unwrap_or_default(),
                reason: option("reason").filter(|r| !r.trim().is_empty()),
            },
            "unmute" => Command::Unmute {
                target: option("target").unwrap_or_default(),
            },
            "ack" => Command::Ack { id: id() },
            _ => return None,
        })
    }
}

/// Who asked, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoker {
    pub transport: &'static str,
    pub user: String,
    /// Discord guild or Slack team.
    pub space: Option<String>,
    pub channel: Option<String>,
    /// Discord role ids (empty elsewhere).
    pub roles: Vec<String>,
}

impl Invoker {
    /// How the invoker is named in silences: `discord:<user id>`.
    pub fn label(&self) -> String {
        format!("{}:{}", self.transport, self.user)
    }

    /// Why the invoker's place is outside the allow-lists (an empty list allows any), if it is:
    /// `spaces` are Discord guilds or Slack teams, `space_word` names one for the refusal.
    pub fn refused_place(
        &self,
        spaces: &[String],
        channels: &[String],
        space_word: &str,
    ) -> Option<String> {
        let listed = |list: &[String], id: Option<&str>| {
            list.is_empty() || id.is_some_and(|id| list.iter().any(|x| x == id))
        };
        if !listed(spaces, self.space.as_deref()) {
            return Some(format!(
                "This bot does not answer commands in this {space_word}."
            ));
        }
        if !listed(channels, self.channel.as_deref()) {
            return Some("This bot does not answer commands in this channel.".to_owned());
        }
        None
    }
}

fn silence_reply(result: Result<String, SilenceError>) -> Reply {
    match result {
        Ok(done) => Reply::Done(done),
        Err(SilenceError::Refused(why)) => Reply::Error(why),
        Err(SilenceError::Store(e)) => Reply::Error(store_failure(e)),
    }
}

/// A job's card, as `/job` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobCard {
    pub id: JobId,
    pub info: JobInfo,
    /// Stored health readings, oldest first (empty when the job is not watched).
    pub trend: Vec<i64>,
    pub watched: bool,
    pub link: Option<String>,
}

/// One line of a list reply: trusted `label` markup-free text, untrusted `text` (escaped by
/// each renderer), and an optional time each platform shows in the reader's timezone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub when: Option<DateTime<Utc>>,
    pub label: String,
    pub text: String,
}

/// What a command answers, before a transport renders it.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Card(Box<JobCard>),
    /// A titled list (`/watches`, `/history`).
    List {
        title: String,
        lines: Vec<Line>,
        more: usize,
    },
    /// A change was made (`/watch`, `/unwatch`): shown in the channel.
    Done(String),
    /// Nothing could be done, and why: shown only to the invoker.
    Error(String),
}

impl Reply {
    /// Errors and refusals are shown only to the person who asked.
    pub fn ephemeral(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    fn outcome(&self) -> &'static str {
        match self {
            Reply::Error(_) => "error",
            _ => "ok",
        }
    }
}

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
            Ok(()) => match command {
                Command::Mute {
                    target,
                    duration,
                    reason,
                } => silence_reply(
                    silences::mute(&self.ctx, target, duration, reason.as_deref(), &who.label())
                        .await,
                ),
                Command::Unmute { target } => {
                    silence_reply(silences::unmute(&self.ctx, target, &who.label()).await)
                }
                Command::Ack { id } => {
                    silence_reply(silences::ack(&self.ctx, id, &who.label()).await)
                }
                _ => self.run(command).await,
            },
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

    async fn run(&self, command: &Command) -> Reply {
        let result = match command {
            Command::Job { id } => self.job(id).await,
            Command::Watch { id, channel } => self.watch(id, channel.as_deref()).await,
            Command::Unwatch { id } => self.unwatch(id).await,
            Command::Watches => self.watches().await,
            Command::History { id, n } => self.history(id, *n).await,
            Command::Mute { .. } | Command::Unmute { .. } | Command::Ack { .. } => {
                return Reply::Error("This command needs to know who asked.".to_owned());
            }
        };
        result.unwrap_or_else(Reply::Error)
    }

    /// The job's answer (shared by queries of the same job within `commands.cache_secs`),
    /// refused when its project is not one chat may query.
    async fn query(&self, raw: &str) -> Result<(JobId, JobInfo), String> {
        let id = parse_id(raw)?;
        let (ctx, job) = (self.ctx.clone(), id.clone());
        let answer = self
            .cache
            .get_or_fetch(&id, || async move {
                ctx.limiter.acquire().await;
                crate::engine::poller::query(&ctx, &job).await
            })
            .await;
        let info = answer.map_err(|e| api_failure(&id, &e))?;
        let allowed = &self.ctx.config.commands.projects;
        if !allowed.is_empty()
            && !info
                .project_id
                .as_deref()
                .is_some_and(|p| allowed.iter().any(|a| a == p))
        {
            return Err(format!(
                "Job `{id}` belongs to a CodeArts project this chat may not query \
                 (allowed: commands.projects in the bot's config)."
            ));
        }
        Ok((id, info))
    }

    async fn job(&self, raw: &str) -> Result<Reply, String> {
        let (id, info) = self.query(raw).await?;
        let watched = self
            .ctx
            .store
            .is_watched(&id)
            .await
            .map_err(store_failure)?;
        let trend = if watched {
            self.ctx
                .store
                .health_trend(&id, TREND_READINGS)
                .await
                .map_err(store_failure)?
        } else {
            Vec::new()
        };
        let link = self
            .ctx
            .config
            .codearts
            .link_template
            .as_deref()
            .map(|t| crate::notify::render_link(t, id.as_str(), info.project_id.as_deref()));
        Ok(Reply::Card(Box::new(JobCard {
            id,
            info,
            trend,
            watched,
            link,
        })))
    }

    async fn watch(&self, raw: &str, channel: Option<&str>) -> Result<Reply, String> {
        if let Some(name) = channel
            && !self.ctx.config.channels.iter().any(|c| c.name == name)
        {
            let known: Vec<&str> = self
                .ctx
                .config
                .channels
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            return Err(format!(
                "No alert channel is named `{}` (configured: {}).",
                crate::util::text::printable(name),
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ));
        }
        // The job must exist and be visible before it is watched.
        let (id, info) = self.query(raw).await?;
        let channels = channel.map(|c| vec![c.to_owned()]);
        let before = self
            .ctx
            .store
            .watch_from_chat(&id, channels.as_deref())
            .await
            .map_err(store_failure)?;
        let name = info.display_name().to_owned();
        Ok(match before {
            None => Reply::Done(format!(
                "Now watching {name} ({id}): alerts go to {}. The next poll takes its baseline.",
                channel.map_or_else(|| "every channel".to_owned(), |c| format!("channel {c}"))
            )),
            Some(source) => Reply::Error(format!(
                "{name} ({id}) is already watched ({}).",
                source_words(source)
            )),
        })
    }

    async fn unwatch(&self, raw: &str) -> Result<Reply, String> {
        let id = parse_id(raw)?;
        let before = self
            .ctx
            .store
            .unwatch_from_chat(&id)
            .await
            .map_err(store_failure)?;
        match before {
            Some(WatchSource::Chat) => Ok(Reply::Done(format!(
                "Stopped watching {id}: no more alerts for it."
            ))),
            Some(WatchSource::Config) => Err(format!(
                "Job {id} is pinned in the bot's config file and cannot be unwatched from chat: \
                 remove it from [[jobs]] instead."
            )),
            Some(WatchSource::Project) => Err(format!(
                "Job {id} is watched because a channel subscribes to its project: change that \
                 channel's `projects` in the config instead."
            )),
            None => Err(format!("Job {id} is not watched.")),
        }
    }

    async fn watches(&self) -> Result<Reply, String> {
        let watched = self.ctx.store.watched_jobs().await.map_err(store_failure)?;
        self.ctx
            .snapshots
            .ensure_loaded(&self.ctx.store)
            .await
            .map_err(store_failure)?;
        let total = watched.len();
        let lines = watched
            .iter()
            .take(MAX_LIST)
            .map(|w| {
                let name = self
                    .ctx
                    .snapshots
                    .get(&w.job_id)
                    .and_then(|s| s.info.as_ref().and_then(|i| i.job_name.clone()))
                    .unwrap_or_else(|| "(not polled yet)".to_owned());
                let label = match w.source {
                    WatchSource::Config => "pinned",
                    WatchSource::Chat => "chat",
                    WatchSource::Project => "project",
                };
                Line {
                    when: None,
                    label: format!("{label} {}", w.job_id),
                    text: name,
                }
            })
            .collect();
        Ok(Reply::List {
            title: format!("Watched jobs ({total})"),
            lines,
            more: total.saturating_sub(MAX_LIST),
        })
    }

    async fn history(&self, raw: &str, n: Option<i64>) -> Result<Reply, String> {
        let id = parse_id(raw)?;
        self.check_stored_project(&id).await?;
        let n = n.unwrap_or(10).clamp(1, MAX_LIST as i64) as u32;
        let events = self
            .ctx
            .store
            .events_for(&id, n)
            .await
            .map_err(store_failure)?;
        if events.is_empty() {
            return Err(format!(
                "No events are stored for job {id} (the bot records events only for jobs it \
                 watches; `/watch {id}` to start)."
            ));
        }
        let name = events[0].0.job_name.clone();
        Ok(Reply::List {
            title: format!("Last {} events of {name}", events.len()),
            lines: events.iter().map(history_line).collect(),
            more: 0,
        })
    }

    /// With `commands.projects` set, refuses a job whose stored snapshot is in another project
    /// (store-only commands must not show what `/job` would refuse).
    async fn check_stored_project(&self, id: &JobId) -> Result<(), String> {
        let allowed = &self.ctx.config.commands.projects;
        if allowed.is_empty() {
            return Ok(());
        }
        self.ctx
            .snapshots
            .ensure_loaded(&self.ctx.store)
            .await
            .map_err(store_failure)?;
        let project = self
            .ctx
            .snapshots
            .get(id)
            .and_then(|s| s.info.as_ref().and_then(|i| i.project_id.clone()));
        match project {
            Some(p) if allowed.contains(&p) => Ok(()),
            _ => Err(format!(
                "Job {id} is not in a CodeArts project this chat may query \
                 (allowed: commands.projects in the bot's config)."
            )),
        }
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

fn history_line((event, suppressed): &(Event, Option<String>)) -> Line {
    Line {
        when: Some(event.detected_at),
        label: event.kind.as_str().to_owned(),
        text: match suppressed {
            Some(why) => format!("{} (not sent: {why})", event.summary),
            None => event.summary.clone(),
        },
    }
}

fn source_words(source: WatchSource) -> &'static str {
    match source {
        WatchSource::Config => "pinned in the config file",
        WatchSource::Chat => "added from chat",
        WatchSource::Project => "through a project subscription",
    }
}

fn parse_id(raw: &str) -> Result<JobId, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(
            "Give a job id: the 32 letters and digits at the end of the job's URL.".to_owned(),
        );
    }
    JobId::parse(raw).map_err(|_| {
        format!(
            "`{}` is not a job id: a job id is 32 letters and digits (copy it from the job's URL).",
            crate::util::text::truncate_chars(&crate::util::text::printable(raw), 64)
        )
    })
}

/// What the invoker is told when CodeArts would not answer; the details go to the log.
fn api_failure(id: &JobId, e: &codearts::Error) -> String {
    warn!(job_id = %id, error = %e, kind = e.kind(), request_id = e.request_id().unwrap_or("-"), "chat query failed");
    match e {
        codearts::Error::NotFound(_) => {
            format!("CodeArts has no job {id} (404): check the id, or the job was deleted.")
        }
        codearts::Error::Forbidden(_) => format!(
            "The bot's credentials may not see job {id} (403): ask for read access to its project."
        ),
        codearts::Error::BadRequest(_) => format!("CodeArts refused the id {id} (400)."),
        codearts::Error::RateLimited { .. } => {
            "CodeArts is throttling the bot right now: try again in a few seconds.".to_owned()
        }
        codearts::Error::Unauthorized(_) | codearts::Error::Auth(_) => {
            "The bot's CodeArts credentials are being refused: tell whoever runs the bot."
                .to_owned()
        }
        _ => format!(
            "CodeArts could not be reached ({}): try again in a minute.",
            e.kind().replace('_', " ")
        ),
    }
}

fn store_failure(e: crate::store::Error) -> String {
    warn!(error = %e, "chat command: the database failed");
    "The bot's database failed: try again, and tell whoever runs the bot if it keeps failing."
        .to_owned()
}

/// A list reply's lines as one text of at most `budget` bytes: each line is the time as `when`
/// writes it, the label in code style and the text escaped by `escape`; then how many more.
pub(crate) fn list_text(
    lines: &[Line],
    more: usize,
    budget: usize,
    when: impl Fn(DateTime<Utc>) -> String,
    escape: impl Fn(&str) -> String,
) -> String {
    let mut text = String::new();
    for line in lines {
        let at = line
            .when
            .map(|t| format!("{} ", when(t)))
            .unwrap_or_default();
        let entry = format!(
            "{at}`{}` {}\n",
            line.label.replace('`', "'"),
            escape(&line.text)
        );
        if text.len() + entry.len() > budget {
            break;
        }
        text.push_str(&entry);
    }
    if more > 0 {
        text.push_str(&format!("… and {more} more"));
    }
    if text.is_empty() {
        text.push_str("(none)");
    }
    text
}

/// The HTTP client for answers sent after the request returned (a deferred Discord
/// interaction's edit, a Slack `response_url`).
pub(crate) fn follow_up_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// Sends the reply of a command that outlived its request once it is done: `request` builds
/// the call that carries the rendered reply.
pub(crate) fn answer_later(
    task: tokio::task::JoinHandle<Reply>,
    platform: &'static str,
    request: impl FnOnce(&Reply) -> reqwest::RequestBuilder + Send + 'static,
) {
    tokio::spawn(async move {
        let reply = task
            .await
            .unwrap_or_else(|_| Reply::Error("The command failed.".to_owned()));
        match request(&reply).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => warn!(
                platform,
                status = r.status().as_u16(),
                "the late answer was refused"
            ),
            Err(e) => {
                warn!(platform, error = %crate::codearts::client::without_url(&e), "cannot send the late answer")
            }
        }
    });
}

/// Health readings as a sparkline, e.g. `▆▆▅▃▂`.
pub fn sparkline(scores: &[i64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    scores
        .iter()
        .map(|s| BARS[(s.clamp(&0, &100) * 7 / 100) as usize])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_come_from_names_and_options() {
        let opts = |k: &str| match k {
            "id" => Some("abc".to_owned()),
            "n" => Some("5".to_owned()),
            _ => None,
        };
        assert_eq!(
            Command::from_parts("history", opts),
            Some(Command::History {
                id: "abc".into(),
                n: Some(5)
            })
        );
        assert_eq!(Command::from_parts("deploy", opts), None);
        assert!(Command::from_parts("watch", opts).unwrap().mutates());
    }

    #[test]
    fn a_bad_id_is_named_and_explained() {
        let e = parse_id("12345").unwrap_err();
        assert!(e.contains("`12345` is not a job id"), "{e}");
        assert!(parse_id(" ").unwrap_err().contains("Give a job id"));
    }

    #[test]
    fn sparkline_spans_the_score_range() {
        assert_eq!(sparkline(&[0, 50, 100]), "▁▄█");
        assert_eq!(sparkline(&[]), "");
    }
}
