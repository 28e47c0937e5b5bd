//! Who asked for a command and where: the [`Invoker`] each transport builds from its request,
//! and the place allow-list check Discord and Slack share.

/// Who asked, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoker {
    pub transport: &'static str,
    pub user: String,
    /// How the platform names them (Discord display or user name, Slack user name).
    pub name: Option<String>,
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

    /// How answers name them: `@alice`, else `user <id>`.
    pub fn shown(&self) -> String {
        match self
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            Some(name) => format!("@{name}"),
            None => format!("user {}", self.user),
        }
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
