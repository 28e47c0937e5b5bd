//! `[[channels]]`: where events go (the platform, its webhook URL and signing secret) and
//! which events each channel takes.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::config::url::validate_url;
use crate::domain::event::EventKind;
use crate::util::secret::Secret;

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
    /// (default: every project), and every job of them is watched. `["*"]` watches every job
    /// the credentials can see ([`EVERY_PROJECT`]).
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
    /// `"author"`: a failure alert mentions the person who ran the failed build, when
    /// `[[people]]` maps them (default: nobody is mentioned).
    pub mention: Option<Mention>,
    /// More deliveries than this waiting on the channel at once are sent as one summary
    /// (default 20; 0: never). The generic webhook keeps one POST per event whatever this says.
    pub storm_threshold: Option<u32>,
    /// The channel's IANA timezone (default `UTC`): its "Mute until 09:00" button ends at
    /// 09:00 there.
    pub timezone: Option<String>,
    /// Re-run, Ack and Mute buttons on the channel's failure cards, where the platform carries
    /// them and clicks can reach the bot (default true; docs/actions.md, "Buttons").
    pub buttons: Option<bool>,
    /// A digest of what is broken and how the period went, on this 6-field cron (sec min hour
    /// day month weekday) in `digest_timezone` (default: never). See `config/digest.rs`.
    pub digest: Option<String>,
    /// IANA timezone of `digest` (default: the channel's `timezone`, else `UTC`).
    pub digest_timezone: Option<String>,
    /// Also send the digest when nothing is failing, flaky or failed in the period.
    #[serde(default)]
    pub digest_when_green: bool,
    /// `webhook` only: POST a JSON array of up to 50 events instead of one POST per event.
    #[serde(default)]
    pub batch: bool,
}

/// Whom a channel's failure alerts mention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mention {
    /// The person who ran the failed build.
    Author,
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
    pub fn severity(self) -> crate::domain::event::Severity {
        use crate::domain::event::Severity;
        match self {
            SeverityName::Info => Severity::Info,
            SeverityName::Good => Severity::Good,
            SeverityName::Warning => Severity::Warning,
            SeverityName::Critical => Severity::Critical,
        }
    }
}

/// Checks every channel; returns the channel names, which `[[jobs]] channels` refer to.
/// `discord_token` says whether `[discord] token` is set, which `discord_bot` channels need.
pub(crate) fn validate_channels<'a>(
    channels: &'a [ChannelConfig],
    discord_token: bool,
    problems: &mut Vec<String>,
) -> HashSet<&'a str> {
    let mut names = HashSet::new();
    for (i, ch) in channels.iter().enumerate() {
        let key = format!("channels[{i}]");
        if ch.name.trim().is_empty() {
            problems.push(format!("{key}.name: is empty"));
        } else if !names.insert(ch.name.as_str()) {
            problems.push(format!(
                "{key}.name: {:?} is used by another channel",
                ch.name
            ));
        }
        ch.validate(&key, discord_token, problems);
    }
    names
}

/// `projects = ["*"]`: every project, and every job the credentials can see (ListJob).
pub const EVERY_PROJECT: &str = "*";

impl ChannelConfig {
    /// Whether the channel takes events of jobs in `project` (`None`: not known).
    pub fn takes_project(&self, project: Option<&str>) -> bool {
        match &self.projects {
            None => true,
            Some(list) if list.iter().any(|p| p == EVERY_PROJECT) => true,
            Some(list) => project.is_some_and(|p| list.iter().any(|x| x == p)),
        }
    }

    /// Whether the channel watches every job the credentials can see (`projects = ["*"]`).
    /// The channel's timezone (validated; UTC when absent).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone
            .as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or(chrono_tz::UTC)
    }

    pub fn watches_everything(&self) -> bool {
        self.projects.iter().flatten().any(|p| p == EVERY_PROJECT)
    }

    /// Everything about one channel but its name's uniqueness; `key` is `channels[i]`.
    fn validate(&self, key: &str, discord_token: bool, problems: &mut Vec<String>) {
        match (self.kind, &self.url) {
            (ChannelType::Stdout | ChannelType::DiscordBot, Some(_)) => {
                problems.push(format!(
                    "{key}.url: a {} channel takes no url",
                    self.kind.as_str()
                ));
            }
            (ChannelType::Stdout, None) => {}
            (ChannelType::DiscordBot, None) => {
                let id_ok = self
                    .channel_id
                    .as_deref()
                    .is_some_and(|id| id.parse::<u64>().is_ok_and(|n| n > 0));
                if !id_ok {
                    problems.push(format!(
                        "{key}.channel_id: a discord_bot channel needs the Discord channel id (digits; right-click the channel, Copy Channel ID)"
                    ));
                }
                if !discord_token {
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
        match &self.secret {
            Some(_) if !self.kind.takes_secret() => problems.push(format!(
                "{key}.secret: only webhook, feishu and dingtalk channels are signed"
            )),
            // The message must not show the secret, not even its first characters.
            Some(secret)
                if self.kind == ChannelType::Dingtalk && !secret.expose().starts_with("SEC") =>
            {
                problems.push(format!(
                    "{key}.secret: a DingTalk signing secret starts with \"SEC\" \
                     (copy it from the robot's security settings, \"加签\")"
                ));
            }
            _ => {}
        }
        if let Some(every) = self.remind_every_mins
            && !(10..=10_080).contains(&every)
        {
            problems.push(format!(
                "{key}.remind_every_mins: {every} is out of range (10 to 10080, a week)"
            ));
        }
        if let Some(tz) = &self.timezone
            && tz.parse::<chrono_tz::Tz>().is_err()
        {
            problems.push(format!(
                "{key}.timezone: {tz:?} is not an IANA timezone name (e.g. Asia/Shanghai, Europe/Berlin, UTC)"
            ));
        }
        self.validate_digest(key, problems);
        if self.batch && self.kind != ChannelType::Webhook {
            problems.push(format!(
                "{key}.batch: only webhook channels batch (chat platforms group events on their own)"
            ));
        }
        for (j, project) in self.projects.iter().flatten().enumerate() {
            if project == EVERY_PROJECT {
                continue;
            }
            if let Err(e) = crate::codearts::listing::check_project_id(project) {
                problems.push(format!("{key}.projects[{j}]: {e}"));
            }
        }
        for (j, ev) in self.events.iter().flatten().enumerate() {
            if EventKind::parse(ev).is_none() {
                problems.push(format!(
                    "{key}.events[{j}]: {ev:?} is not an event kind (known: {})",
                    EventKind::ALL.map(EventKind::as_str).join(", ")
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::with;

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
    fn a_star_project_watches_everything_and_takes_every_project() {
        let config = with(&format!("{}projects = [\"*\"]", channel("slack", None))).unwrap();
        let c = &config.channels[0];
        assert!(c.watches_everything());
        assert!(c.takes_project(Some("p1")) && c.takes_project(None));
        let one = with(&format!("{}projects = [\"p1\"]", channel("slack", None))).unwrap();
        let c = &one.channels[0];
        assert!(!c.watches_everything());
        assert!(c.takes_project(Some("p1")) && !c.takes_project(Some("p2")));
        assert!(!c.takes_project(None));
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
}
