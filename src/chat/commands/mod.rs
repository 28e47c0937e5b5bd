//! The chat commands and their one table, [`COMMANDS`]: each command's name, help text,
//! options, usage and whether it changes state. Discord's command definitions, Slack's parser
//! (both `/codearts job <id>` and `/job <id>`), Slack's usage text and the role checks are all
//! derived from it, and each command's work lives in its own file.
//!
//! Adding a command: write its file (`run`), then here add its `mod` line, its [`Command`]
//! variant, its row in [`COMMANDS`] and its arm in [`Command::run`].

mod ack;
mod actions;
mod digest;
mod history;
mod job;
mod log;
mod mute;
pub(crate) mod shared;
pub mod spec;
mod unmute;
mod unwatch;
mod watch;
mod watches;

use shared::Call;
use spec::{Opt, Options};

use crate::chat::reply::Reply;
use crate::config::MAX_LOG_LINES;

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
    Log {
        id: String,
        lines: Option<i64>,
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
    Rerun {
        id: String,
        latest: bool,
    },
    Stop {
        id: String,
    },
    Digest {
        channel: Option<String>,
    },
}

/// One row of [`COMMANDS`].
pub type Spec = spec::Spec<Command>;

/// Every command, in the order Discord lists them and Slack's usage text names them.
pub static COMMANDS: [Spec; 12] = [
    Spec {
        name: "job",
        description: "Show a CodeArts Build job's card",
        options: &[Opt::job_id("The job id (32 letters and digits)")],
        mutates: false,
        acts: false,
        private: false,
        parse: |o| Command::Job { id: given(o, "id") },
    },
    Spec {
        name: "watch",
        description: "Alert on a job's changes",
        options: &[
            Opt::job_id("The job id"),
            Opt::text(
                "channel",
                "Only this alert channel (a name from the bot's config)",
                false,
                "channel",
            ),
        ],
        mutates: true,
        acts: false,
        private: false,
        parse: |o| Command::Watch {
            id: given(o, "id"),
            channel: o("channel").filter(|c| !c.is_empty()),
        },
    },
    Spec {
        name: "unwatch",
        description: "Stop alerting on a job added from chat",
        options: &[Opt::job_id("The job id")],
        mutates: true,
        acts: false,
        private: false,
        parse: |o| Command::Unwatch { id: given(o, "id") },
    },
    Spec {
        name: "watches",
        description: "List the jobs the bot watches",
        options: &[],
        mutates: false,
        acts: false,
        private: false,
        parse: |_| Command::Watches,
    },
    Spec {
        name: "history",
        description: "A job's last events",
        options: &[
            Opt::job_id("The job id"),
            Opt::integer("n", "How many (1 to 20, default 10)", 1, 20),
        ],
        mutates: false,
        acts: false,
        private: false,
        parse: |o| Command::History {
            id: given(o, "id"),
            n: o("n").and_then(|n| n.trim().parse().ok()),
        },
    },
    Spec {
        name: "log",
        description: "The last lines of a job's last build log (only you see it)",
        options: &[
            Opt::job_id("The job id"),
            Opt::integer(
                "lines",
                "How many lines (1 to 50, default from the bot's config)",
                1,
                MAX_LOG_LINES as i64,
            ),
        ],
        mutates: false,
        acts: false,
        private: true,
        parse: |o| Command::Log {
            id: given(o, "id"),
            lines: o("lines").and_then(|n| n.trim().parse().ok()),
        },
    },
    Spec {
        name: "mute",
        description: "Stop sending alerts for a while (they are still recorded)",
        options: &[
            Opt::text(
                "target",
                "A job id, a project id, or all",
                true,
                "id|project|all",
            ),
            Opt::text(
                "duration",
                "e.g. 30m, 2h, 1d (at most 30d)",
                true,
                "30m|2h|1d",
            ),
            Opt::text("reason", "Why (shown with the silence)", false, "reason").rest_of_line(200),
        ],
        mutates: true,
        acts: false,
        private: false,
        parse: |o| Command::Mute {
            target: given(o, "target"),
            duration: given(o, "duration"),
            reason: o("reason").filter(|r| !r.trim().is_empty()),
        },
    },
    Spec {
        name: "unmute",
        description: "End a mute now",
        options: &[Opt::text(
            "target",
            "The job id, project id, or all that was muted",
            true,
            "id|project|all",
        )],
        mutates: true,
        acts: false,
        private: false,
        parse: |o| Command::Unmute {
            target: given(o, "target"),
        },
    },
    Spec {
        name: "ack",
        description: "I'm on it: no repeat alerts for this job until it recovers",
        options: &[Opt::job_id("The job id")],
        mutates: true,
        acts: false,
        private: false,
        parse: |o| Command::Ack { id: given(o, "id") },
    },
    Spec {
        name: "rerun",
        description: "Run a job's last build again: its commit and parameters (or latest: the branch head)",
        options: &[
            Opt::job_id("The job id"),
            Opt::text(
                "from",
                "latest: build the branch head instead of the last build's commit",
                false,
                "latest",
            ),
        ],
        mutates: false,
        acts: true,
        private: false,
        parse: |o| Command::Rerun {
            id: given(o, "id"),
            latest: o("from").is_some_and(|f| f.trim().eq_ignore_ascii_case("latest")),
        },
    },
    Spec {
        name: "stop",
        description: "Stop a job's running build",
        options: &[Opt::job_id("The job id")],
        mutates: false,
        acts: true,
        private: false,
        parse: |o| Command::Stop { id: given(o, "id") },
    },
    Spec {
        name: "digest",
        description: "A summary of what is broken and how builds went lately",
        options: &[Opt::text(
            "channel",
            "An alert channel (a name from the bot's config): its jobs, since its last digest",
            false,
            "channel",
        )],
        mutates: false,
        acts: false,
        private: false,
        parse: |o| Command::Digest {
            channel: o("channel").filter(|c| !c.trim().is_empty()),
        },
    },
];

/// An option's value, empty when it was not given (the command then explains what is missing).
fn given(option: Options<'_>, name: &str) -> String {
    option(name).unwrap_or_default()
}

/// The table's row for a command name.
pub fn spec(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|s| s.name == name)
}

impl Command {
    /// The command's row in [`COMMANDS`]: the one whose `parse` builds the same variant (so the
    /// name is written only in the table).
    pub fn spec(&self) -> &'static Spec {
        let variant = std::mem::discriminant(self);
        COMMANDS
            .iter()
            .find(|s| std::mem::discriminant(&(s.parse)(&|_| None)) == variant)
            .expect("every Command variant has a row in COMMANDS")
    }

    pub fn name(&self) -> &'static str {
        self.spec().name
    }

    /// Commands that change what the bot watches or sends (they may need a role).
    pub fn mutates(&self) -> bool {
        self.spec().mutates
    }

    /// Commands that act on CodeArts (they need an actions role or user).
    pub fn acts(&self) -> bool {
        self.spec().acts
    }

    /// Commands whose answer only the invoker sees, even when it comes late.
    pub fn private(&self) -> bool {
        self.spec().private
    }

    /// Builds a command from its name and named options (the Discord shape; Slack's text is
    /// split into the same). `None` when the name is not a command.
    pub fn from_parts(name: &str, option: impl Fn(&str) -> Option<String>) -> Option<Self> {
        spec(name).map(|s| (s.parse)(&option))
    }

    /// Runs the command; what went wrong is the invoker's error reply.
    pub(crate) async fn run(&self, call: &Call<'_>) -> Reply {
        let result = match self {
            Command::Job { id } => job::run(call, id).await,
            Command::Watch { id, channel } => watch::run(call, id, channel.as_deref()).await,
            Command::Unwatch { id } => unwatch::run(call, id).await,
            Command::Watches => watches::run(call).await,
            Command::History { id, n } => history::run(call, id, *n).await,
            Command::Log { id, lines } => log::run(call, id, *lines).await,
            Command::Mute {
                target,
                duration,
                reason,
            } => mute::run(call, target, duration, reason.as_deref()).await,
            Command::Unmute { target } => unmute::run(call, target).await,
            Command::Ack { id } => ack::run(call, id).await,
            Command::Rerun { id, latest } => actions::rerun(call, id, *latest).await,
            Command::Stop { id } => actions::stop(call, id).await,
            Command::Digest { channel } => digest::run(call, channel.as_deref()).await,
        };
        result.unwrap_or_else(Reply::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::discord::{Data, Interaction, command_definitions};
    use crate::chat::slack::{SlashCommand, usage};

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

    /// Every row is reachable from every transport, and comes back as itself.
    #[test]
    fn every_command_in_the_table_is_reachable_everywhere() {
        let definitions = command_definitions();
        let usage = usage();
        let mut names = std::collections::BTreeSet::new();
        for spec in &COMMANDS {
            assert!(
                names.insert(spec.name),
                "{} is in the table twice",
                spec.name
            );
            let back = |c: Option<Command>| c.map(|c| (c.name(), c.mutates()));
            let expected = Some((spec.name, spec.mutates));
            let words: Vec<&str> = spec
                .options
                .iter()
                .map(|o| {
                    if o.kind == spec::Kind::Integer {
                        "5"
                    } else {
                        "abc"
                    }
                })
                .collect();

            // Discord: defined, and an interaction naming it parses back to it.
            let defined = definitions
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["name"] == spec.name);
            let defined = defined.unwrap_or_else(|| panic!("{} not defined", spec.name));
            let options = defined["options"].as_array().map_or(0, Vec::len);
            assert_eq!(options, spec.options.len(), "{}", spec.name);
            let interaction = Interaction {
                kind: 2,
                data: Some(Data {
                    name: spec.name.to_owned(),
                    options: Vec::new(),
                    ..Data::default()
                }),
                ..Interaction::default()
            };
            assert_eq!(back(interaction.command()), expected, "discord");

            // Slack: as a subcommand of /codearts and as its own slash command.
            let slack = |command: &str, text: String| SlashCommand {
                command: command.to_owned(),
                text,
                ..SlashCommand::default()
            };
            let text = words.join(" ");
            let sub = slack("/codearts", format!("{} {text}", spec.name));
            assert_eq!(back(sub.parse()), expected, "/codearts {}", spec.name);
            let direct = slack(&format!("/{}", spec.name), text);
            assert_eq!(back(direct.parse()), expected, "/{}", spec.name);

            // Slack's usage text names it.
            assert!(
                usage.contains(&format!("`/codearts {}", spec.usage())),
                "usage misses {}: {usage}",
                spec.name
            );
        }
    }

    #[test]
    fn positional_words_follow_the_table_order() {
        let mute = spec("mute").unwrap();
        let words = ["all", "2h", "deploy", "window"];
        assert_eq!(mute.positional(&words, "target").as_deref(), Some("all"));
        assert_eq!(mute.positional(&words, "duration").as_deref(), Some("2h"));
        assert_eq!(
            mute.positional(&words, "reason").as_deref(),
            Some("deploy window")
        );
        assert_eq!(mute.positional(&words[..2], "reason"), None);
        assert_eq!(mute.usage(), "mute <id|project|all> <30m|2h|1d> [reason]");
    }
}
