//! The configuration file: one TOML file, `${NAME}` replaced from the environment in every
//! string, unknown keys refused, and every problem reported with the key it is about.
//!
//! The annotated example is `config/codearts-bot.example.toml`; the reference is the README.

mod clients;

pub use clients::parse_discord_public_key;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::codearts::{JobId, region};
use crate::domain::detect::{EventKind, Rules};
use crate::util::secret::Secret;

/// Where the config is looked for when `--config` is not given.
pub const ENV_CONFIG_PATH: &str = "CODEARTS_BOT_CONFIG";
pub const DEFAULT_CONFIG_PATH: &str = "config/codearts-bot.toml";

/// The whole file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub codearts: CodeArtsConfig,
    #[serde(default)]
    pub poll: PollConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub rules: RulesConfig,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub discord: DiscordConfig,
    #[serde(default)]
    pub slack: SlackConfig,
    #[serde(default)]
    pub commands: CommandsConfig,
    #[serde(default)]
    pub maintenance: Vec<MaintenanceWindow>,
    #[serde(default)]
    pub jobs: Vec<JobConfig>,
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CodeArtsConfig {
    /// One of the SDKs' regions; decides the endpoint unless `endpoint` is set.
    pub region: String,
    /// Overrides the region's endpoint (a proxy, or the simulator on loopback).
    pub endpoint: Option<String>,
    pub auth: AuthConfig,
    /// The link every chat card carries, e.g.
    /// `https://devcloud.cn-north-4.huaweicloud.com/cloudbuild/project/{project_id}/job/{job_id}/detail`:
    /// `{job_id}` is required, `{project_id}` optional (empty when unknown). No link when absent.
    pub link_template: Option<String>,
}

/// `[codearts.auth]`: exactly one method.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `token` (the default when `token` is set), `password` or `aksk`.
    pub method: Option<AuthMethod>,
    /// A static IAM token sent as `X-Auth-Token`.
    pub token: Option<Secret>,
    /// password: the account (domain) name.
    pub domain: Option<String>,
    /// password: the IAM user name.
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// password: scope tokens to this project id (default: the region's project by name).
    pub project_id: Option<String>,
    /// password: scope tokens to this project name (default: the region name).
    pub project_name: Option<String>,
    /// password: IAM base URL (default `https://iam.{region}.myhuaweicloud.com`).
    pub iam_endpoint: Option<String>,
    /// password: renew this long before expiry (default 3600).
    pub refresh_margin_secs: Option<u64>,
    /// aksk: the access key id (default: `$CLOUD_SDK_AK`).
    pub ak: Option<String>,
    /// aksk: the secret access key (default: `$CLOUD_SDK_SK`).
    pub sk: Option<Secret>,
    /// aksk: temporary credentials' security token, sent as `X-Security-Token`.
    pub security_token: Option<Secret>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    Token,
    Password,
    Aksk,
}

impl AuthConfig {
    /// The method in effect: `method`, or `token` when only a token is given.
    pub fn effective_method(&self) -> Option<AuthMethod> {
        self.method
            .or_else(|| self.token.as_ref().map(|_| AuthMethod::Token))
    }

    pub fn iam_endpoint(&self, region: &str) -> String {
        self.iam_endpoint
            .clone()
            .unwrap_or_else(|| format!("https://iam.{region}.myhuaweicloud.com"))
    }

    fn validate(&self, problems: &mut Vec<String>) {
        let key = "codearts.auth";
        let set = |name: &'static str, present: bool| present.then_some(name);
        let token_keys: Vec<&str> = [set("token", self.token.is_some())]
            .into_iter()
            .flatten()
            .collect();
        let password_keys: Vec<&str> = [
            set("domain", self.domain.is_some()),
            set("user", self.user.is_some()),
            set("password", self.password.is_some()),
            set("project_name", self.project_name.is_some()),
            set("iam_endpoint", self.iam_endpoint.is_some()),
            set("refresh_margin_secs", self.refresh_margin_secs.is_some()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let aksk_keys: Vec<&str> = [
            set("ak", self.ak.is_some()),
            set("sk", self.sk.is_some()),
            set("security_token", self.security_token.is_some()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let foreign = |method: &str, keys: &[&str]| {
            (!keys.is_empty()).then(|| {
                format!(
                    "{key}: {} belong to another method than method = {method:?}; configure exactly one method",
                    keys.join(", ")
                )
            })
        };
        let missing = |method: &str, name: &str, present: bool| {
            (!present).then(|| format!("{key}.{name}: required with method = {method:?}"))
        };
        let mut out: Vec<Option<String>> = Vec::new();
        match self.effective_method() {
            None => out.push(Some(format!(
                "{key}: no method configured: set token = \"...\", or method = \"password\" (domain, user, password) or method = \"aksk\" (ak, sk, project_id)"
            ))),
            Some(AuthMethod::Token) => {
                out.push(missing("token", "token", self.token.is_some()));
                let mut others = password_keys.clone();
                others.extend(&aksk_keys);
                if self.project_id.is_some() {
                    others.push("project_id");
                }
                out.push(foreign("token", &others));
                if self.token.as_ref().is_some_and(Secret::is_empty) {
                    out.push(Some(format!("{key}.token: is empty (is the environment variable it names set to nothing?)")));
                }
            }
            Some(AuthMethod::Password) => {
                out.push(missing("password", "domain", self.domain.is_some()));
                out.push(missing("password", "user", self.user.is_some()));
                out.push(missing("password", "password", self.password.is_some()));
                let mut others = token_keys.clone();
                others.extend(&aksk_keys);
                out.push(foreign("password", &others));
                if self.project_id.is_some() && self.project_name.is_some() {
                    out.push(Some(format!("{key}: project_id and project_name both set; keep one")));
                }
                if let Some(endpoint) = &self.iam_endpoint
                    && let Err(e) = validate_url(endpoint)
                {
                    out.push(Some(format!("{key}.iam_endpoint: {e}")));
                }
                if self.refresh_margin_secs.is_some_and(|m| m > 23 * 3600) {
                    out.push(Some(format!("{key}.refresh_margin_secs: at most 82800 (tokens live 24 hours)")));
                }
            }
            Some(AuthMethod::Aksk) => {
                out.push(self.ak.is_none().then(|| format!("{key}.ak: required with method = \"aksk\" (or set CLOUD_SDK_AK)")));
                out.push(self.sk.is_none().then(|| format!("{key}.sk: required with method = \"aksk\" (or set CLOUD_SDK_SK)")));
                out.push(missing("aksk", "project_id", self.project_id.is_some()));
                let mut others = token_keys.clone();
                others.extend(&password_keys);
                out.push(foreign("aksk", &others));
            }
        }
        problems.extend(out.into_iter().flatten());
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollConfig {
    /// 6-field cron with seconds, UTC.
    pub schedule: String,
    pub concurrency: usize,
    pub timeout_secs: u64,
    /// Ceiling on CodeArts calls per second (absent: none; throttling answers still slow the
    /// poller down).
    pub max_rps: Option<f64>,
    /// How often the job lists of subscribed projects (`[[channels]] projects`) are read
    /// again to find new and removed jobs.
    pub discover_every_secs: u64,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            schedule: "0 * * * * *".to_owned(),
            concurrency: 8,
            timeout_secs: 10,
            max_rps: None,
            discover_every_secs: 300,
        }
    }
}

impl PollConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The SQLite file; created with its folder when missing.
    pub path: PathBuf,
    /// Snapshot history and finished deliveries older than this are pruned.
    pub retention_days: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("codearts-bot.db"),
            retention_days: 30,
        }
    }
}

/// `[http]`: the health, readiness and metrics server.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on; port 0 picks a free port (logged at start).
    pub listen: String,
    /// Seconds that shutdown waits for the running cycle and in-flight deliveries.
    pub shutdown_grace_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".to_owned(),
            shutdown_grace_secs: 10,
        }
    }
}

impl HttpConfig {
    pub fn listen_addr(&self) -> Result<std::net::SocketAddr, String> {
        self.listen.parse().map_err(|e| {
            format!(
                "{:?} is not an address like 127.0.0.1:9464 ({e})",
                self.listen
            )
        })
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    pub health_drop: i64,
    pub health_floor: i64,
    /// Send `health_recovered` when a score below the floor climbs back to it.
    pub health_recovery: bool,
    /// 404/403 answers in a row before `job_not_found`/`job_access_lost`.
    pub missing_after: u32,
    /// Cycles in a row in which every poll failed before `source_unreachable` is sent.
    pub blind_after: u32,
    /// Recent builds the flakiness check looks at.
    pub flaky_window: usize,
    /// Flips (failure/success) within the window that make a job flaky; 0 turns it off.
    pub flaky_threshold: usize,
    pub failure_statuses: Vec<String>,
    pub success_statuses: Vec<String>,
    pub in_progress_statuses: Vec<String>,
}

impl Default for RulesConfig {
    fn default() -> Self {
        let r = Rules::default();
        Self {
            health_drop: r.health_drop,
            health_floor: r.health_floor,
            health_recovery: r.health_recovery,
            missing_after: r.missing_after,
            blind_after: 3,
            flaky_window: r.flaky_window,
            flaky_threshold: r.flaky_threshold,
            failure_statuses: r.failure_statuses,
            success_statuses: r.success_statuses,
            in_progress_statuses: r.in_progress_statuses,
        }
    }
}

impl RulesConfig {
    pub fn rules(&self) -> Rules {
        let lower = |v: &[String]| v.iter().map(|s| s.trim().to_ascii_lowercase()).collect();
        Rules {
            failure_statuses: lower(&self.failure_statuses),
            success_statuses: lower(&self.success_statuses),
            in_progress_statuses: lower(&self.in_progress_statuses),
            health_drop: self.health_drop,
            health_floor: self.health_floor,
            health_recovery: self.health_recovery,
            missing_after: self.missing_after,
            flaky_window: self.flaky_window,
            flaky_threshold: self.flaky_threshold,
        }
    }
}

/// How the dispatcher retries.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Per-request timeout towards a chat service.
    pub timeout_secs: u64,
    /// First retry delay; doubles on each failure (with jitter) up to `max_backoff_secs`.
    pub initial_backoff_secs: u64,
    pub max_backoff_secs: u64,
    /// A delivery still failing after this long is abandoned and reported.
    pub max_age_secs: u64,
    /// Grouping: on a channel that sent something in the last `group_wait_ms`, a new event
    /// waits up to this long after it was queued and goes out with the others as one message;
    /// on a quiet channel it goes at once.
    pub group_wait_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            timeout_secs: 10,
            initial_backoff_secs: 2,
            max_backoff_secs: 300,
            max_age_secs: 24 * 3600,
            group_wait_ms: 5000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    pub id: String,
    /// Channel names; absent means every channel.
    pub channels: Option<Vec<String>>,
}

/// The platform a channel delivers to: `type` in `[[channels]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelType {
    /// A Discord execute-webhook URL.
    Discord,
    /// A Discord channel the bot posts to (`channel_id`, with `[discord] token`).
    DiscordBot,
    /// A Slack incoming webhook (Block Kit).
    Slack,
    /// A Feishu / Lark custom bot (interactive card), optionally signed.
    Feishu,
    /// A DingTalk custom robot (markdown), optionally signed with its `SEC...` secret.
    Dingtalk,
    /// A WeCom (WeChat Work) group robot (markdown).
    Wecom,
    /// The generic JSON webhook, optionally HMAC-signed.
    Webhook,
    /// Cards printed to standard output.
    Stdout,
}

impl ChannelType {
    /// The name used in the config's `type`, in logs and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelType::Discord => "discord",
            ChannelType::DiscordBot => "discord_bot",
            ChannelType::Slack => "slack",
            ChannelType::Feishu => "feishu",
            ChannelType::Dingtalk => "dingtalk",
            ChannelType::Wecom => "wecom",
            ChannelType::Webhook => "webhook",
            ChannelType::Stdout => "stdout",
        }
    }

    /// Whether the channel's `secret` means something for this platform.
    fn takes_secret(self) -> bool {
        matches!(
            self,
            ChannelType::Webhook | ChannelType::Feishu | ChannelType::Dingtalk
        )
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ChannelType,
    /// The webhook URL (it contains the webhook's credential: treated as a secret).
    pub url: Option<Secret>,
    /// Signing secret: the HMAC key of `webhook` channels, the signing secret of `feishu`
    /// bots, the `SEC...` secret of `dingtalk` robots.
    pub secret: Option<Secret>,
    /// Only these event kinds reach the channel (default: all).
    pub events: Option<Vec<String>>,
    /// Only events at least this severe reach the channel: `info`, `good`, `warning` or
    /// `critical` (default: all).
    pub min_severity: Option<SeverityName>,
    /// Only events of jobs in these CodeArts projects (their `project_id`) reach the channel
    /// (default: every project).
    pub projects: Option<Vec<String>>,
    /// `discord_bot`: the id of the Discord channel to post in.
    pub channel_id: Option<String>,
    /// Also receive `source_unreachable` / `source_recovered` (the bot cannot see CodeArts).
    #[serde(default)]
    pub source_alerts: bool,
    /// While an incident stays open, remind the channel this often (minutes, at least 10;
    /// default: never).
    pub remind_every_mins: Option<u32>,
    /// Flips of flaky jobs go into one daily digest instead of one message each.
    #[serde(default)]
    pub flaky_digest: bool,
}

/// `[discord]`: the bot, shared by `discord_bot` channels and the chat commands.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordConfig {
    /// The bot token (Developer Portal, Bot, Reset Token).
    pub token: Option<Secret>,
    /// Discord's API base, `https://discord.com` by default; tests point it at loopback.
    pub api_base: Option<String>,
    /// The application's public key (hex, Developer Portal, General Information): turns on
    /// `POST /discord/interactions`, whose requests are verified with it.
    pub public_key: Option<String>,
    /// Connect to the gateway for slash commands when `token` is set (default true).
    pub gateway: bool,
    /// Guilds allowed to use the commands (empty: any). The gateway registers the commands in
    /// these guilds (instantly) or, when empty, globally.
    pub guilds: Vec<String>,
    /// Channels allowed to use the commands (empty: any).
    pub channels: Vec<String>,
    /// Roles allowed to use the commands: a member needs one of them (empty: anyone).
    pub roles: Vec<String>,
    /// Roles allowed to change the watch list (`/watch`, `/unwatch`); empty: whoever may use
    /// the commands.
    pub manage_roles: Vec<String>,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        Self {
            token: None,
            api_base: None,
            public_key: None,
            gateway: true,
            guilds: Vec::new(),
            channels: Vec::new(),
            roles: Vec::new(),
            manage_roles: Vec::new(),
        }
    }
}

/// `[[maintenance]]`: a recurring window during which events are recorded but not sent.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindow {
    pub name: String,
    /// 6-field cron (sec min hour day month weekday) of the moments a window starts, in
    /// `timezone`: `"0 0 22 * * SAT"` is every Saturday at 22:00.
    pub start: String,
    /// How long each window lasts.
    pub duration_mins: u32,
    /// IANA timezone of `start` (default `UTC`), e.g. `Asia/Shanghai`, `Europe/Berlin`.
    #[serde(default = "utc_name")]
    pub timezone: String,
}

fn utc_name() -> String {
    "UTC".to_owned()
}

impl MaintenanceWindow {
    /// Whether `now` falls inside one of the window's occurrences: the first start at or after
    /// `now - duration` is not later than `now`. An invalid window (refused by validation)
    /// contains nothing.
    pub fn contains(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        let (Ok(cron), Ok(tz)) = (
            parse_schedule(&self.start),
            self.timezone.parse::<chrono_tz::Tz>(),
        ) else {
            return false;
        };
        let from =
            (now - chrono::Duration::minutes(i64::from(self.duration_mins))).with_timezone(&tz);
        cron.find_next_occurrence(&from, false)
            .is_ok_and(|start| start.with_timezone(&chrono::Utc) <= now)
    }
}

/// `[slack]`: slash commands at `POST /slack/commands`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    /// The app's signing secret (Basic Information, App Credentials): turns the endpoint on.
    pub signing_secret: Option<Secret>,
    /// Workspaces (team ids, `T...`) allowed to use the commands (empty: any).
    pub teams: Vec<String>,
    /// Channels (`C...`) allowed to use the commands (empty: any).
    pub channels: Vec<String>,
    /// Users (`U...`) allowed to change the watch list (empty: whoever may use the commands).
    /// Slash command requests carry no roles, so users are listed instead.
    pub manage_users: Vec<String>,
}

/// `[commands]`: what every chat transport shares.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommandsConfig {
    /// CodeArts projects whose jobs may be queried and watched from chat (empty: any the
    /// credentials can see).
    pub projects: Vec<String>,
    /// Commands one user may run per minute (a burst of this many, then refilled evenly).
    pub per_user_per_minute: u32,
    /// A job's answer is reused for this long by every query of that job.
    pub cache_secs: u64,
}

impl Default for CommandsConfig {
    fn default() -> Self {
        Self {
            projects: Vec::new(),
            per_user_per_minute: 10,
            cache_secs: 5,
        }
    }
}

/// A severity as written in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeverityName {
    Info,
    Good,
    Warning,
    Critical,
}

impl SeverityName {
    pub fn severity(self) -> crate::domain::detect::Severity {
        use crate::domain::detect::Severity;
        match self {
            SeverityName::Info => Severity::Info,
            SeverityName::Good => Severity::Good,
            SeverityName::Warning => Severity::Warning,
            SeverityName::Critical => Severity::Critical,
        }
    }
}

/// Every problem found in a config file, each naming its key.
#[derive(Debug)]
pub struct ConfigError {
    pub origin: String,
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [only] = self.problems.as_slice() {
            return write!(f, "{}: {only}", self.origin);
        }
        write!(f, "{}: {} problems:", self.origin, self.problems.len())?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Resolves the config path: `--config`, then `$CODEARTS_BOT_CONFIG`, then the default.
    pub fn resolve_path(flag: Option<&Path>) -> PathBuf {
        flag.map(Path::to_path_buf)
            .or_else(|| std::env::var_os(ENV_CONFIG_PATH).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
    }

    /// Reads, expands and validates a config file, taking `${NAME}` from the process
    /// environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: origin.clone(),
            problems: vec![format!(
                "cannot read the file ({e}); pass --config PATH or set {ENV_CONFIG_PATH} \
                 (start from config/codearts-bot.example.toml)"
            )],
        })?;
        Self::from_toml(&text, &origin, &|name| std::env::var(name).ok())
    }

    /// Parses, expands and validates config text; `env` answers `${NAME}` look-ups.
    pub fn from_toml(
        text: &str,
        origin: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let fail = |problems| ConfigError {
            origin: origin.to_owned(),
            problems,
        };
        let mut config: Config = toml::from_str(text).map_err(|e| {
            fail(vec![
                e.to_string()
                    .trim_end()
                    .replace("TOML parse error", "invalid TOML"),
            ])
        })?;
        let mut problems = Vec::new();
        config.expand_env(env, &mut problems);
        if problems.is_empty() {
            config.validate(&mut problems);
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(fail(
                problems.into_iter().map(|p| with_line(text, p)).collect(),
            ))
        }
    }

    /// The configuration in effect (defaults filled in, `${NAME}` expanded), as TOML, with
    /// every secret shown as `***`.
    pub fn effective_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    fn expand_env(&mut self, env: &dyn Fn(&str) -> Option<String>, problems: &mut Vec<String>) {
        let mut text = |key: &str, value: &mut String| match expand(value, env) {
            Ok(v) => *value = v,
            Err(e) => problems.push(format!("{key}: {e}")),
        };
        text("codearts.region", &mut self.codearts.region);
        if let Some(endpoint) = &mut self.codearts.endpoint {
            text("codearts.endpoint", endpoint);
        }
        if let Some(template) = &mut self.codearts.link_template {
            text("codearts.link_template", template);
        }
        text("poll.schedule", &mut self.poll.schedule);
        text("http.listen", &mut self.http.listen);
        if let Some(base) = &mut self.discord.api_base {
            text("discord.api_base", base);
        }
        if let Some(key) = &mut self.discord.public_key {
            text("discord.public_key", key);
        }
        let mut path = self.store.path.to_string_lossy().into_owned();
        text("store.path", &mut path);
        self.store.path = PathBuf::from(path);
        for (i, job) in self.jobs.iter_mut().enumerate() {
            text(&format!("jobs[{i}].id"), &mut job.id);
            for (j, ch) in job.channels.iter_mut().flatten().enumerate() {
                text(&format!("jobs[{i}].channels[{j}]"), ch);
            }
        }
        for (i, ch) in self.channels.iter_mut().enumerate() {
            text(&format!("channels[{i}].name"), &mut ch.name);
        }
        let auth = &mut self.codearts.auth;
        for (key, value) in [
            ("codearts.auth.domain", &mut auth.domain),
            ("codearts.auth.user", &mut auth.user),
            ("codearts.auth.project_id", &mut auth.project_id),
            ("codearts.auth.project_name", &mut auth.project_name),
            ("codearts.auth.iam_endpoint", &mut auth.iam_endpoint),
            ("codearts.auth.ak", &mut auth.ak),
        ] {
            if let Some(v) = value {
                text(key, v);
            }
        }
        // Secrets last, so their values never meet the plain-text closure above.
        let mut secret = |key: &str, value: &mut Secret| match expand(value.expose(), env) {
            Ok(v) => *value = Secret::new(v),
            Err(e) => problems.push(format!("{key}: {e}")),
        };
        if let Some(token) = &mut self.discord.token {
            secret("discord.token", token);
        }
        if let Some(signing) = &mut self.slack.signing_secret {
            secret("slack.signing_secret", signing);
        }
        for (key, value) in [
            ("codearts.auth.token", &mut auth.token),
            ("codearts.auth.password", &mut auth.password),
            ("codearts.auth.sk", &mut auth.sk),
            ("codearts.auth.security_token", &mut auth.security_token),
        ] {
            if let Some(v) = value {
                secret(key, v);
            }
        }
        // As the official SDK samples do: an access key pair from the environment.
        if auth.method == Some(AuthMethod::Aksk) {
            if auth.ak.is_none() {
                auth.ak = env("CLOUD_SDK_AK").filter(|v| !v.is_empty());
            }
            if auth.sk.is_none() {
                auth.sk = env("CLOUD_SDK_SK")
                    .filter(|v| !v.is_empty())
                    .map(Secret::new);
            }
        }
        for (i, ch) in self.channels.iter_mut().enumerate() {
            if let Some(url) = &mut ch.url {
                secret(&format!("channels[{i}].url"), url);
            }
            if let Some(s) = &mut ch.secret {
                secret(&format!("channels[{i}].secret"), s);
            }
        }
    }

    fn validate(&self, problems: &mut Vec<String>) {
        let c = &self.codearts;
        match &c.endpoint {
            Some(endpoint) => {
                if let Err(e) = validate_url(endpoint) {
                    problems.push(format!("codearts.endpoint: {e}"));
                }
            }
            None if region::endpoint(&c.region).is_none() => problems.push(format!(
                "codearts.region: {:?} is not a region CodeArts Build serves (known: {}); \
                 set codearts.endpoint to use another host",
                c.region,
                region::REGIONS.join(", ")
            )),
            None => {}
        }
        if let Some(template) = &c.link_template
            && let Err(e) = validate_link_template(template)
        {
            problems.push(format!("codearts.link_template: {e}"));
        }
        c.auth.validate(problems);
        if let Err(e) = parse_schedule(&self.poll.schedule) {
            problems.push(format!("poll.schedule: {e}"));
        }
        if !(1..=256).contains(&self.poll.concurrency) {
            problems.push(format!(
                "poll.concurrency: {} is out of range (1 to 256)",
                self.poll.concurrency
            ));
        }
        if let Some(rps) = self.poll.max_rps
            && !(rps > 0.0 && rps <= 10_000.0)
        {
            problems.push(format!(
                "poll.max_rps: {rps} is out of range (above 0, at most 10000)"
            ));
        }
        if !(1..=300).contains(&self.poll.timeout_secs) {
            problems.push(format!(
                "poll.timeout_secs: {} is out of range (1 to 300)",
                self.poll.timeout_secs
            ));
        }
        if !(10..=86_400).contains(&self.poll.discover_every_secs) {
            problems.push(format!(
                "poll.discover_every_secs: {} is out of range (10 to 86400)",
                self.poll.discover_every_secs
            ));
        }
        if let Err(e) = self.http.listen_addr() {
            problems.push(format!("http.listen: {e}"));
        }
        if !(1..=300).contains(&self.http.shutdown_grace_secs) {
            problems.push(format!(
                "http.shutdown_grace_secs: {} is out of range (1 to 300)",
                self.http.shutdown_grace_secs
            ));
        }
        if self.store.retention_days == 0 {
            problems.push("store.retention_days: must be at least 1".to_owned());
        }
        if self.store.path.as_os_str().is_empty() {
            problems.push("store.path: is empty".to_owned());
        }
        let r = &self.rules;
        if r.health_drop < 1 {
            problems.push(format!(
                "rules.health_drop: {} must be at least 1",
                r.health_drop
            ));
        }
        if !(0..=100).contains(&r.health_floor) {
            problems.push(format!(
                "rules.health_floor: {} is not a score from 0 to 100",
                r.health_floor
            ));
        }
        if !(1..=100).contains(&r.missing_after) {
            problems.push(format!(
                "rules.missing_after: {} is out of range (1 to 100 polls)",
                r.missing_after
            ));
        }
        if !(1..=1000).contains(&r.blind_after) {
            problems.push(format!(
                "rules.blind_after: {} is out of range (1 to 1000 cycles)",
                r.blind_after
            ));
        }
        if !(2..=100).contains(&r.flaky_window) {
            problems.push(format!(
                "rules.flaky_window: {} is out of range (2 to 100 builds)",
                r.flaky_window
            ));
        }
        if r.flaky_threshold >= r.flaky_window.max(2) {
            problems.push(format!(
                "rules.flaky_threshold: {} flips cannot happen within {} builds (at most {}; 0 turns the check off)",
                r.flaky_threshold,
                r.flaky_window,
                r.flaky_window.saturating_sub(1)
            ));
        }
        let rules = r.rules();
        for status in &rules.failure_statuses {
            if rules.success_statuses.contains(status) {
                problems.push(format!(
                    "rules: status {status:?} is listed as both failure and success"
                ));
            }
        }
        let d = &self.delivery;
        if !(1..=300).contains(&d.timeout_secs) {
            problems.push(format!(
                "delivery.timeout_secs: {} is out of range (1 to 300)",
                d.timeout_secs
            ));
        }
        if d.group_wait_ms > 60_000 {
            problems.push(format!(
                "delivery.group_wait_ms: {} is more than a minute",
                d.group_wait_ms
            ));
        }
        if d.initial_backoff_secs == 0 || d.max_backoff_secs < d.initial_backoff_secs {
            problems.push("delivery: need 0 < initial_backoff_secs <= max_backoff_secs".to_owned());
        }

        self.validate_commands(problems);
        for (i, w) in self.maintenance.iter().enumerate() {
            if let Err(e) = parse_schedule(&w.start) {
                problems.push(format!("maintenance[{i}].start: {e}"));
            }
            if w.timezone.parse::<chrono_tz::Tz>().is_err() {
                problems.push(format!(
                    "maintenance[{i}].timezone: {:?} is not an IANA timezone name \
                     (e.g. \"UTC\", \"Asia/Shanghai\", \"Europe/Berlin\")",
                    w.timezone
                ));
            }
            if !(1..=10_080).contains(&w.duration_mins) {
                problems.push(format!(
                    "maintenance[{i}].duration_mins: {} is out of range (1 to 10080, a week)",
                    w.duration_mins
                ));
            }
        }

        let mut names = HashSet::new();
        for (i, ch) in self.channels.iter().enumerate() {
            let key = format!("channels[{i}]");
            if ch.name.trim().is_empty() {
                problems.push(format!("{key}.name: is empty"));
            } else if !names.insert(ch.name.as_str()) {
                problems.push(format!(
                    "{key}.name: {:?} is used by another channel",
                    ch.name
                ));
            }
            match (ch.kind, &ch.url) {
                (ChannelType::Stdout | ChannelType::DiscordBot, Some(_)) => {
                    problems.push(format!(
                        "{key}.url: a {} channel takes no url",
                        ch.kind.as_str()
                    ));
                }
                (ChannelType::Stdout, None) => {}
                (ChannelType::DiscordBot, None) => {
                    let id_ok = ch
                        .channel_id
                        .as_deref()
                        .is_some_and(|id| id.parse::<u64>().is_ok_and(|n| n > 0));
                    if !id_ok {
                        problems.push(format!(
                            "{key}.channel_id: a discord_bot channel needs the Discord channel id (digits; right-click the channel, Copy Channel ID)"
                        ));
                    }
                    if self.discord.token.is_none() {
                        problems.push(format!(
                            "{key}: a discord_bot channel needs [discord] token (the bot's token)"
                        ));
                    }
                }
                (kind, None) => problems.push(format!(
                    "{key}.url: a {} channel needs the webhook url",
                    kind.as_str()
                )),
                (_, Some(url)) => {
                    // The message must not show the URL: it is the webhook's credential.
                    if let Err(e) = validate_url(url.expose()) {
                        problems.push(format!("{key}.url: {}", e.redacted()));
                    }
                }
            }
            match &ch.secret {
                Some(_) if !ch.kind.takes_secret() => problems.push(format!(
                    "{key}.secret: only webhook, feishu and dingtalk channels are signed"
                )),
                // The message must not show the secret, not even its first characters.
                Some(secret)
                    if ch.kind == ChannelType::Dingtalk && !secret.expose().starts_with("SEC") =>
                {
                    problems.push(format!(
                        "{key}.secret: a DingTalk signing secret starts with \"SEC\" \
                         (copy it from the robot's security settings, \"加签\")"
                    ));
                }
                _ => {}
            }
            if let Some(every) = ch.remind_every_mins
                && !(10..=10_080).contains(&every)
            {
                problems.push(format!(
                    "{key}.remind_every_mins: {every} is out of range (10 to 10080, a week)"
                ));
            }
            for (j, project) in ch.projects.iter().flatten().enumerate() {
                if let Err(e) = crate::codearts::listing::check_project_id(project) {
                    problems.push(format!("{key}.projects[{j}]: {e}"));
                }
            }
            for (j, ev) in ch.events.iter().flatten().enumerate() {
                if EventKind::parse(ev).is_none() {
                    problems.push(format!(
                        "{key}.events[{j}]: {ev:?} is not an event kind (known: {})",
                        EventKind::ALL.map(EventKind::as_str).join(", ")
                    ));
                }
            }
        }
        let mut ids = HashSet::new();
        for (i, job) in self.jobs.iter().enumerate() {
            match JobId::parse(&job.id) {
                Ok(id) => {
                    if !ids.insert(id) {
                        problems.push(format!("jobs[{i}].id: {:?} is listed twice", job.id));
                    }
                }
                Err(e) => problems.push(format!("jobs[{i}].id: {e}")),
            }
            for (j, name) in job.channels.iter().flatten().enumerate() {
                if !names.contains(name.as_str()) {
                    problems.push(format!(
                        "jobs[{i}].channels[{j}]: no channel is named {name:?}"
                    ));
                }
            }
        }
    }

    fn validate_commands(&self, problems: &mut Vec<String>) {
        let d = &self.discord;
        if let Some(key) = &d.public_key
            && parse_discord_public_key(key).is_err()
        {
            problems.push(
                "discord.public_key: not an Ed25519 public key: expected 64 hex digits \
                 (Developer Portal, General Information, Public Key)"
                    .to_owned(),
            );
        }
        let snowflakes = [
            ("discord.guilds", &d.guilds),
            ("discord.channels", &d.channels),
            ("discord.roles", &d.roles),
            ("discord.manage_roles", &d.manage_roles),
        ];
        for (key, ids) in snowflakes {
            for (i, id) in ids.iter().enumerate() {
                if id.parse::<u64>().map_or(true, |n| n == 0) {
                    problems.push(format!(
                        "{key}[{i}]: {id:?} is not a Discord id (digits; Developer Mode, Copy ID)"
                    ));
                }
            }
        }
        for (i, project) in self.commands.projects.iter().enumerate() {
            if let Err(e) = crate::codearts::listing::check_project_id(project) {
                problems.push(format!("commands.projects[{i}]: {e}"));
            }
        }
        if !(1..=600).contains(&self.commands.per_user_per_minute) {
            problems.push(format!(
                "commands.per_user_per_minute: {} is out of range (1 to 600)",
                self.commands.per_user_per_minute
            ));
        }
        if self.commands.cache_secs > 300 {
            problems.push(format!(
                "commands.cache_secs: {} is more than 300",
                self.commands.cache_secs
            ));
        }
    }

    /// The API endpoint: the override, or the region's.
    pub fn endpoint(&self) -> String {
        self.codearts
            .endpoint
            .clone()
            .or_else(|| region::endpoint(&self.codearts.region))
            .unwrap_or_default()
    }

    /// The watched jobs, validated.
    pub fn job_ids(&self) -> Vec<JobId> {
        self.jobs
            .iter()
            .filter_map(|j| JobId::parse(&j.id).ok())
            .collect()
    }
}

/// Prefixes a `key: message` problem with the line of `key` in the file, when it is there.
fn with_line(text: &str, problem: String) -> String {
    let Some((key, _)) = problem.split_once(": ") else {
        return problem;
    };
    match line_of(text, key) {
        Some(line) => format!("line {line}: {problem}"),
        None => problem,
    }
}

/// The 1-based line where a key path such as `jobs[2].id` or `codearts.auth.token` is set.
fn line_of(text: &str, path: &str) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let root = DeTable::parse(text).ok()?;
    let mut table = root.get_ref();
    let mut span = None;
    for segment in path.split('.') {
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let (key, value) = table.iter().find(|(k, _)| k.get_ref().as_ref() == name)?;
        span = Some(key.span());
        let mut value = value;
        if let Some(i) = index {
            let DeValue::Array(items) = value.get_ref() else {
                break;
            };
            value = items.get(i)?;
            span = Some(value.span());
        }
        match value.get_ref() {
            DeValue::Table(inner) => table = inner,
            _ => break,
        }
    }
    let start = span?.start;
    Some(text.get(..start)?.matches('\n').count() + 1)
}

/// The gap between the schedule's next two ticks: the poll interval `/readyz` measures against.
pub fn schedule_interval(expr: &str) -> Duration {
    let Ok(cron) = parse_schedule(expr) else {
        return Duration::from_secs(60);
    };
    let now = chrono::Utc::now();
    let first = cron.find_next_occurrence(&now, false);
    let second = first
        .as_ref()
        .ok()
        .and_then(|t| cron.find_next_occurrence(t, false).ok());
    match (first, second) {
        (Ok(a), Some(b)) => (b - a).to_std().unwrap_or(Duration::from_secs(60)),
        _ => Duration::from_secs(60),
    }
}

/// Parses a 6-field cron expression (seconds first, UTC) exactly as the scheduler will.
pub fn parse_schedule(expr: &str) -> Result<croner::Cron, String> {
    let fields = expr.split_whitespace().count();
    if fields != 6 {
        return Err(format!(
            "{expr:?} has {fields} fields; expected 6 (sec min hour day month weekday), \
             e.g. \"0 * * * * *\" for every minute"
        ));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
        .map_err(|e| format!("{expr:?} is not a valid cron expression: {e}"))
}

#[derive(Debug)]
enum UrlProblem {
    Invalid(String),
    Scheme(String),
}

impl fmt::Display for UrlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlProblem::Invalid(e) => write!(f, "not a valid URL ({e})"),
            UrlProblem::Scheme(s) => write!(f, "scheme {s:?} is not http or https"),
        }
    }
}

impl UrlProblem {
    fn redacted(&self) -> String {
        self.to_string()
    }
}

/// A link template must name `{job_id}`, use no other placeholder than `{project_id}`, and
/// give an http(s) URL once filled in.
fn validate_link_template(template: &str) -> Result<(), String> {
    if !template.contains("{job_id}") {
        return Err(format!(
            "{template:?} does not contain {{job_id}}, so every card would link to the same page"
        ));
    }
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let tail = &rest[start..];
        let end = tail.find('}').map_or(tail.len(), |e| e + 1);
        let placeholder = &tail[..end];
        if placeholder != "{job_id}" && placeholder != "{project_id}" {
            return Err(format!(
                "{placeholder:?} is not a placeholder (known: {{job_id}}, {{project_id}})"
            ));
        }
        rest = &tail[end..];
    }
    // Filled in as `notify::render_link` does (ids need no encoding).
    let sample = template
        .replace("{job_id}", "f5af662119404ad187437cd272b5099b")
        .replace("{project_id}", "85caf40575794f989920-5216d1148af6");
    validate_url(&sample).map_err(|e| format!("once filled in, {e}"))
}

fn validate_url(raw: &str) -> Result<(), UrlProblem> {
    let url = reqwest::Url::parse(raw).map_err(|e| UrlProblem::Invalid(e.to_string()))?;
    match url.scheme() {
        "http" | "https" => Ok(()),
        other => Err(UrlProblem::Scheme(other.to_owned())),
    }
}

/// Replaces each `${NAME}` with the variable's value. `$${` stands for a literal `${`.
fn expand(raw: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let end = tail
                .find('}')
                .ok_or_else(|| "unclosed ${ (write $${ for a literal)".to_owned())?;
            let name = &tail[..end];
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(format!("${{{name}}} is not a valid variable name"));
            }
            let value = env(name).ok_or_else(|| {
                format!("environment variable {name} is not set (referenced as ${{{name}}})")
            })?;
            out.push_str(&value);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [codearts]
        region = "cn-north-4"
        [codearts.auth]
        token = "${CODEARTS_TOKEN}"
        [[jobs]]
        id = "f5af662119404ad187437cd272b5099b"
        [[channels]]
        name = "ops"
        type = "webhook"
        url = "${HOOK_URL}"
        secret = "s3cret"
    "#;

    fn env(name: &str) -> Option<String> {
        match name {
            "CODEARTS_TOKEN" => Some("tok-123".to_owned()),
            "HOOK_URL" => Some("https://example.invalid/hook?key=SECRETKEY".to_owned()),
            _ => None,
        }
    }

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, "test.toml", &env)
    }

    #[test]
    fn minimal_config_loads_with_defaults_and_expanded_secrets() {
        let c = load(MINIMAL).unwrap();
        assert_eq!(c.codearts.auth.token.as_ref().unwrap().expose(), "tok-123");
        assert_eq!(c.poll.schedule, "0 * * * * *");
        assert_eq!(c.poll.concurrency, 8);
        assert_eq!(
            c.endpoint(),
            "https://cloudbuild-ext.cn-north-4.myhuaweicloud.com"
        );
        assert_eq!(c.job_ids().len(), 1);
        assert!(!format!("{c:?}").contains("tok-123"));
        assert!(!format!("{c:?}").contains("SECRETKEY"));
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load(&MINIMAL.replace("[[jobs]]", "colour = 1\n[[jobs]]")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("unknown field `colour`"), "{text}");
    }

    #[test]
    fn missing_env_var_is_named() {
        let err = load(&MINIMAL.replace("CODEARTS_TOKEN", "NOPE_TOKEN")).unwrap_err();
        assert!(
            err.to_string()
                .contains("codearts.auth.token: environment variable NOPE_TOKEN is not set"),
            "{err}"
        );
    }

    #[test]
    fn bad_cron_bad_job_id_and_unknown_channel_are_all_reported() {
        let text = MINIMAL
            .replace("[[jobs]]", "[poll]\nschedule = \"*/5 * * * *\"\n[[jobs]]")
            .replace("f5af662119404ad187437cd272b5099b", "not-an-id")
            .replace("[[channels]]", "channels = [\"nope\"]\n[[channels]]");
        let err = load(&text).unwrap_err().to_string();
        assert!(
            err.contains("poll.schedule: \"*/5 * * * *\" has 5 fields"),
            "{err}"
        );
        assert!(
            err.contains("jobs[0].id: \"not-an-id\" is not a CodeArts job id"),
            "{err}"
        );
        assert!(
            err.contains("jobs[0].channels[0]: no channel is named \"nope\""),
            "{err}"
        );
    }

    #[test]
    fn invalid_webhook_url_does_not_echo_the_url() {
        let err = load(&MINIMAL.replace("${HOOK_URL}", "ftp://host/SECRETKEY")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("channels[0].url: scheme \"ftp\""), "{text}");
        assert!(!text.contains("SECRETKEY"), "{text}");
    }

    #[test]
    fn expansion_handles_escapes_and_bad_names() {
        assert_eq!(expand("a$${b}c", &env).unwrap(), "a${b}c");
        assert_eq!(expand("cost $5", &env).unwrap(), "cost $5");
        assert_eq!(expand("${CODEARTS_TOKEN}!", &env).unwrap(), "tok-123!");
        assert!(expand("${1X}", &env).is_err());
        assert!(expand("${OPEN", &env).is_err());
    }

    #[test]
    fn problems_point_at_the_line_of_their_key() {
        let text = MINIMAL.replace("f5af662119404ad187437cd272b5099b", "short");
        let err = load(&text).unwrap_err().to_string();
        assert!(err.contains("line 7: jobs[0].id: \"short\""), "{err}");
        let text = MINIMAL.replace("CODEARTS_TOKEN", "UNSET_VAR");
        let err = load(&text).unwrap_err().to_string();
        assert!(
            err.contains("line 5: codearts.auth.token: environment variable UNSET_VAR"),
            "{err}"
        );
    }

    #[test]
    fn the_effective_config_masks_every_secret() {
        let shown = load(MINIMAL).unwrap().effective_toml();
        assert!(shown.contains("schedule = \"0 * * * * *\""), "{shown}");
        assert!(shown.contains("token = \"***\""), "{shown}");
        assert!(
            !shown.contains("tok-123") && !shown.contains("SECRETKEY") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn schedules_parse_like_the_scheduler() {
        assert!(parse_schedule("0 * * * * *").is_ok());
        assert!(parse_schedule("*/10 * * * * *").is_ok());
        assert!(parse_schedule("0 61 * * * *").is_err());
    }

    fn with_auth(auth: &str) -> Result<Config, ConfigError> {
        let text = MINIMAL.replace("token = \"${CODEARTS_TOKEN}\"", auth);
        Config::from_toml(&text, "test.toml", &|name| match name {
            "CLOUD_SDK_AK" => Some("AKFROMENV".to_owned()),
            "CLOUD_SDK_SK" => Some("SKFROMENV".to_owned()),
            other => env(other),
        })
    }

    #[test]
    fn exactly_one_auth_method_and_the_error_names_the_keys() {
        let two = with_auth(
            "token = \"t\"\nmethod = \"password\"\ndomain = \"d\"\nuser = \"u\"\npassword = \"p\"",
        );
        let err = two.unwrap_err().to_string();
        assert!(
            err.contains("codearts.auth: token belong to another method"),
            "{err}"
        );
        let none = with_auth("").unwrap_err().to_string();
        assert!(
            none.contains("codearts.auth: no method configured"),
            "{none}"
        );
        let incomplete = with_auth("method = \"password\"\nuser = \"u\"")
            .unwrap_err()
            .to_string();
        assert!(
            incomplete.contains("codearts.auth.domain: required"),
            "{incomplete}"
        );
        assert!(
            incomplete.contains("codearts.auth.password: required"),
            "{incomplete}"
        );
        let stray = with_auth("token = \"t\"\nak = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(stray.contains("ak belong to another method"), "{stray}");
    }

    #[test]
    fn password_and_aksk_methods_load_and_aksk_falls_back_to_cloud_sdk_env() {
        let password = with_auth(
            "method = \"password\"\ndomain = \"acme\"\nuser = \"bot\"\npassword = \"${CODEARTS_TOKEN}\"",
        )
        .unwrap();
        assert_eq!(
            password.codearts.auth.effective_method(),
            Some(AuthMethod::Password)
        );
        assert_eq!(
            password.codearts.auth.password.as_ref().unwrap().expose(),
            "tok-123"
        );
        assert_eq!(
            password.codearts.auth.iam_endpoint("cn-north-4"),
            "https://iam.cn-north-4.myhuaweicloud.com"
        );
        let aksk = with_auth("method = \"aksk\"\nproject_id = \"p1\"").unwrap();
        assert_eq!(aksk.codearts.auth.ak.as_deref(), Some("AKFROMENV"));
        assert_eq!(
            aksk.codearts.auth.sk.as_ref().unwrap().expose(),
            "SKFROMENV"
        );
        assert!(!format!("{aksk:?}").contains("SKFROMENV"));
        let no_project = with_auth("method = \"aksk\"").unwrap_err().to_string();
        assert!(
            no_project.contains("codearts.auth.project_id: required"),
            "{no_project}"
        );
    }

    #[test]
    fn unknown_region_without_endpoint_is_an_error() {
        let err = load(&MINIMAL.replace("cn-north-4", "mars-1")).unwrap_err();
        assert!(
            err.to_string().contains("codearts.region: \"mars-1\""),
            "{err}"
        );
        let ok = load(&MINIMAL.replace(
            "region = \"cn-north-4\"",
            "region = \"mars-1\"\nendpoint = \"http://127.0.0.1:8080\"",
        ));
        assert!(ok.is_ok());
    }
}

#[cfg(test)]
mod schedule_tests {
    use super::*;

    #[test]
    fn schedule_interval_is_the_gap_between_ticks() {
        assert_eq!(schedule_interval("*/1 * * * * *"), Duration::from_secs(1));
        assert_eq!(schedule_interval("0 * * * * *"), Duration::from_secs(60));
        assert_eq!(schedule_interval("*/10 * * * * *"), Duration::from_secs(10));
    }

    #[test]
    fn a_weekly_window_follows_its_timezone() {
        use chrono::TimeZone;
        let window = MaintenanceWindow {
            name: "saturday night".into(),
            start: "0 0 22 * * SAT".into(),
            duration_mins: 240,
            timezone: "Asia/Shanghai".into(),
        };
        // Saturday 2026-11-28 22:00 in Shanghai is 14:00 UTC; the window ends at 18:00 UTC.
        let utc = |d, h, m| chrono::Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap();
        assert!(!window.contains(utc(28, 13, 59)));
        assert!(window.contains(utc(28, 14, 0)));
        assert!(window.contains(utc(28, 17, 59)));
        assert!(!window.contains(utc(28, 18, 1)));
        assert!(!window.contains(utc(29, 15, 0)), "Sunday");
    }

    #[test]
    fn bad_windows_are_named() {
        let text = r#"
            [codearts]
            region = "cn-north-4"
            [codearts.auth]
            token = "t"
            [[maintenance]]
            name = "w"
            start = "every saturday"
            duration_mins = 0
            timezone = "Mars/Olympus"
        "#;
        let err = Config::from_toml(text, "t.toml", &|_| None)
            .unwrap_err()
            .to_string();
        for key in [
            "maintenance[0].start",
            "maintenance[0].duration_mins",
            "maintenance[0].timezone",
        ] {
            assert!(err.contains(key), "{key}: {err}");
        }
    }
}

#[cfg(test)]
mod channel_tests {
    use super::*;

    const BASE: &str = r#"
        [codearts]
        region = "cn-north-4"
        [codearts.auth]
        token = "t"
    "#;

    fn with(extra: &str) -> Result<Config, ConfigError> {
        Config::from_toml(&format!("{BASE}\n{extra}"), "test.toml", &|_| None)
    }

    fn channel(kind: &str, secret: Option<&str>) -> String {
        let secret = secret.map_or(String::new(), |s| format!("secret = \"{s}\"\n"));
        format!(
            "[[channels]]\nname = \"c\"\ntype = \"{kind}\"\nurl = \"https://chat.example/hook?key=K3Y\"\n{secret}"
        )
    }

    #[test]
    fn every_chat_platform_is_a_channel_type() {
        for kind in ["discord", "slack", "feishu", "dingtalk", "wecom", "webhook"] {
            let config = with(&channel(kind, None)).unwrap();
            assert_eq!(config.channels[0].kind.as_str(), kind);
        }
        let stdout = with("[[channels]]\nname = \"c\"\ntype = \"stdout\"\n").unwrap();
        assert_eq!(stdout.channels[0].kind, ChannelType::Stdout);
    }

    #[test]
    fn every_platform_but_stdout_needs_a_url() {
        for kind in ["slack", "feishu", "dingtalk", "wecom"] {
            let err = with(&format!("[[channels]]\nname = \"c\"\ntype = \"{kind}\"\n"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!(
                    "channels[0].url: a {kind} channel needs the webhook url"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn secrets_are_for_signing_platforms_only_and_dingtalks_start_with_sec() {
        assert!(with(&channel("feishu", Some("fs-secret"))).is_ok());
        assert!(with(&channel("dingtalk", Some("SECabc123"))).is_ok());
        assert!(with(&channel("webhook", Some("hm4c"))).is_ok());
        for kind in ["slack", "wecom", "discord"] {
            let err = with(&channel(kind, Some("nope"))).unwrap_err().to_string();
            assert!(
                err.contains("channels[0].secret: only webhook, feishu and dingtalk"),
                "{err}"
            );
        }
        let err = with(&channel("dingtalk", Some("plainS3CRET")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("starts with \"SEC\""), "{err}");
        assert!(
            !err.contains("plainS3CRET") && !err.contains("K3Y"),
            "{err}"
        );
    }

    #[test]
    fn link_template_needs_job_id_and_must_give_a_url() {
        let set = |t: &str| {
            Config::from_toml(
                &BASE.replace(
                    "region = \"cn-north-4\"",
                    &format!("region = \"cn-north-4\"\nlink_template = \"{t}\""),
                ),
                "test.toml",
                &|_| None,
            )
        };
        let ok = set("https://console.example/project/{project_id}/job/{job_id}").unwrap();
        assert_eq!(
            ok.codearts.link_template.as_deref(),
            Some("https://console.example/project/{project_id}/job/{job_id}")
        );
        let missing = set("https://console.example/jobs").unwrap_err().to_string();
        assert!(
            missing.contains("codearts.link_template: ") && missing.contains("{job_id}"),
            "{missing}"
        );
        let typo = set("https://console.example/{jobid}/{job_id}")
            .unwrap_err()
            .to_string();
        assert!(typo.contains("\"{jobid}\" is not a placeholder"), "{typo}");
        let not_url = set("console/{job_id}").unwrap_err().to_string();
        assert!(
            not_url.contains("once filled in, not a valid URL"),
            "{not_url}"
        );
        assert!(with("").unwrap().codearts.link_template.is_none());
    }
}
