//! The shape of one row of the command table ([`super::COMMANDS`]): a command's name, help
//! text, options and whether it changes state, and what every transport derives from a row
//! (the usage line, Slack's positional words).

/// How a command reads its named options: `Some(value)` for an option that was given.
pub type Options<'a> = &'a dyn Fn(&str) -> Option<String>;

/// One chat command as every transport sees it; `C` is the command type `parse` builds
/// (generic so that this file does not depend on the table that uses it).
pub struct Spec<C> {
    /// The slash name, without the `/`.
    pub name: &'static str,
    /// The help text (Discord shows it next to the command).
    pub description: &'static str,
    /// In the order Discord lists them and Slack reads positional words.
    pub options: &'static [Opt],
    /// Changes what the bot watches or sends, so it may need a manage role or user.
    pub mutates: bool,
    /// Acts on CodeArts (runs or stops a build): needs an actions role or user, which must be
    /// configured (docs/actions.md).
    pub acts: bool,
    /// Answers only the invoker, also when the answer comes late (a deferred Discord response
    /// is ephemeral or not from its deferral on: the edit that follows cannot change it).
    pub private: bool,
    /// Builds the command from its named options.
    pub parse: fn(Options<'_>) -> C,
}

/// An option's value type (Discord checks it before the bot sees the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
}

/// One option of a command.
pub struct Opt {
    pub name: &'static str,
    pub description: &'static str,
    pub required: bool,
    pub kind: Kind,
    /// Discord suggests values as the user types (watched jobs, for ids).
    pub autocomplete: bool,
    /// What the usage text shows for it, e.g. `id` (written `<id>` or `[id]`).
    pub placeholder: &'static str,
    /// Slack: the option takes every remaining word (free text such as a reason).
    pub rest: bool,
    pub min_length: Option<u16>,
    pub max_length: Option<u16>,
    pub min_value: Option<i64>,
    pub max_value: Option<i64>,
}

impl Opt {
    /// A text option with no bounds, shown as `placeholder` in the usage text.
    pub const fn text(
        name: &'static str,
        description: &'static str,
        required: bool,
        placeholder: &'static str,
    ) -> Self {
        Self {
            name,
            description,
            required,
            kind: Kind::Text,
            autocomplete: false,
            placeholder,
            rest: false,
            min_length: None,
            max_length: None,
            min_value: None,
            max_value: None,
        }
    }

    /// The required job id option: 32 characters, autocompleted from the watched jobs.
    pub const fn job_id(description: &'static str) -> Self {
        Self {
            autocomplete: true,
            min_length: Some(32),
            max_length: Some(32),
            ..Self::text("id", description, true, "id")
        }
    }

    /// An optional integer option between `min` and `max`.
    pub const fn integer(
        name: &'static str,
        description: &'static str,
        min: i64,
        max: i64,
    ) -> Self {
        Self {
            kind: Kind::Integer,
            min_value: Some(min),
            max_value: Some(max),
            ..Self::text(name, description, false, name)
        }
    }

    /// The same option, taking every remaining word in Slack, at most `max` characters.
    pub const fn rest_of_line(self, max: u16) -> Self {
        Self {
            rest: true,
            max_length: Some(max),
            ..self
        }
    }
}

impl<C> Spec<C> {
    /// The usage of the command after its name, e.g. `history <id> [n]`.
    pub fn usage(&self) -> String {
        let mut usage = self.name.to_owned();
        for o in self.options {
            let (open, close) = if o.required { ('<', '>') } else { ('[', ']') };
            usage.push_str(&format!(" {open}{}{close}", o.placeholder));
        }
        usage
    }

    /// The value of option `name` when the options are given as words in their table order
    /// (Slack's text): one word each, all remaining words for a `rest` option.
    pub fn positional(&self, words: &[&str], name: &str) -> Option<String> {
        let at = self.options.iter().position(|o| o.name == name)?;
        if self.options[at].rest {
            (words.len() > at).then(|| words[at..].join(" "))
        } else {
            words.get(at).map(|w| (*w).to_owned())
        }
    }
}
