//! A click on a card's button, whatever the platform (docs/actions.md, "Buttons"): the opaque
//! id is looked up in the store, the click becomes the command the button stands for
//! (`/rerun`, `/stop`, `/mute <job> 1h`, `/ack`), the transport's allow-lists and roles
//! decide as for the typed command, and the same handler runs it. Re-run and Stop ask first
//! where the platform has no confirmation dialog of its own (Discord).

use chrono::Utc;
use tracing::{info, warn};

use super::commands::Command;
use super::handler::Chat;
use super::invoker::Invoker;
use super::reply::Reply;
use crate::domain::buttons::{self, ButtonAction};
use crate::store::Button;

/// What a click comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pressed {
    /// Shown only to the clicker: expired, refused, or the action failed.
    Private(String),
    /// Discord: ask the clicker to confirm with a second button, shown only to them.
    Confirm {
        question: String,
        custom_id: String,
        action: ButtonAction,
    },
    /// Done: the line the card shows from now on ("Muted 1 h by @bob").
    Done {
        line: String,
        /// The card the confirmation came from, as stored with it (Discord).
        origin: Option<String>,
    },
}

/// Shown for an id the store does not know, or no longer.
pub const EXPIRED: &str =
    "This button has expired: `/job <id>` shows the job's card with fresh buttons.";

/// Handles a click on `custom_id` by `who`. `confirm_first`: Re-run and Stop answer with a
/// confirmation instead of acting (Discord; Slack confirms in its own dialog). `origin` is
/// the clicked card, kept with the confirmation. `refused` is the transport's allow-list
/// check for the command the button stands for.
pub async fn press(
    chat: &Chat,
    who: &Invoker,
    custom_id: &str,
    confirm_first: bool,
    origin: Option<String>,
    refused: impl Fn(&Command) -> Option<String>,
) -> Pressed {
    let now = Utc::now();
    let Some(id) = buttons::stored_id(custom_id) else {
        return Pressed::Private(EXPIRED.to_owned());
    };
    let button = match chat.ctx.store.button(id, now).await {
        Ok(Some(button)) => button,
        Ok(None) => return Pressed::Private(EXPIRED.to_owned()),
        Err(e) => {
            warn!(error = %e, "cannot read a button from the database");
            return Pressed::Private(
                "The bot cannot read its database right now: try again in a minute.".to_owned(),
            );
        }
    };
    if button.for_user.as_deref().is_some_and(|u| u != who.label()) {
        return Pressed::Private(
            "This confirmation belongs to whoever clicked first: click the card's button yourself."
                .to_owned(),
        );
    }
    let action = button.action.performs();
    let (command, mute_label) = command_for(chat, &button, action, now);
    if let Some(refusal) = chat.refusal(who, &command, refused(&command)) {
        return Pressed::Private(refusal_text(refusal));
    }
    info!(
        transport = who.transport,
        user = %who.user,
        action = button.action.as_str(),
        job_id = %button.job_id,
        "button clicked"
    );
    if confirm_first && let Some(confirmation) = button.action.confirmation() {
        return confirm(chat, who, &button, confirmation, origin).await;
    }
    match chat.handle(who, &command).await {
        Reply::Done(text) => Pressed::Done {
            line: match action {
                ButtonAction::Ack => format!("Acked by {}", who.shown()),
                ButtonAction::Mute1h | ButtonAction::Mute4h | ButtonAction::MuteTomorrow => {
                    format!("Muted {mute_label} by {}", who.shown())
                }
                _ => text,
            },
            origin: button.origin.clone(),
        },
        Reply::Error(text) => Pressed::Private(text),
        _ => Pressed::Private("Done.".to_owned()),
    }
}

/// The command a button stands for, and for mutes how long in words ("1 h", "until 09:00
/// Asia/Shanghai").
fn command_for(
    chat: &Chat,
    button: &Button,
    action: ButtonAction,
    now: chrono::DateTime<Utc>,
) -> (Command, String) {
    let id = button.job_id.clone();
    let tz = button
        .channel
        .as_deref()
        .and_then(|name| chat.ctx.config.channels.iter().find(|c| c.name == name))
        .map_or(chrono_tz::UTC, |c| c.tz());
    match action {
        ButtonAction::Rerun => (Command::Rerun { id, latest: false }, String::new()),
        ButtonAction::Stop => (Command::Stop { id }, String::new()),
        ButtonAction::Ack => (Command::Ack { id }, String::new()),
        mute => {
            let minutes = buttons::mute_minutes(mute, now, tz).unwrap_or(60);
            let label = match mute {
                ButtonAction::Mute4h => "4 h".to_owned(),
                ButtonAction::MuteTomorrow => format!("until 09:00 {}", tz.name()),
                _ => "1 h".to_owned(),
            };
            let command = Command::Mute {
                target: id,
                duration: format!("{minutes}m"),
                reason: Some(format!("muted {label} from the card")),
            };
            (command, label)
        }
    }
}

/// A refusal reads as one about the button, not the typed command.
fn refusal_text(refusal: Reply) -> String {
    match refusal {
        Reply::Error(text) => text,
        _ => "You may not use this button.".to_owned(),
    }
}

/// Issues the confirmation button for `who` and asks.
async fn confirm(
    chat: &Chat,
    who: &Invoker,
    button: &Button,
    confirmation: ButtonAction,
    origin: Option<String>,
) -> Pressed {
    let issued = chat
        .ctx
        .store
        .issue_confirmation(
            confirmation,
            &button.job_id,
            button.channel.as_deref(),
            &who.label(),
            origin.as_deref(),
            Utc::now(),
        )
        .await;
    let id = match issued {
        Ok(id) => id,
        Err(e) => {
            warn!(error = %e, "cannot store a confirmation button");
            return Pressed::Private(
                "The bot cannot write to its database right now: try again in a minute.".to_owned(),
            );
        }
    };
    let name = job_name(chat, &button.job_id);
    let question = match confirmation {
        ButtonAction::ConfirmStop => format!("Stop the running build of {name}?"),
        _ => format!(
            "Re-run the last build of {name}, with its commit and parameters? (Only you see this.)"
        ),
    };
    Pressed::Confirm {
        question,
        custom_id: format!("{}{id}", buttons::ID_PREFIX),
        action: confirmation,
    }
}

/// The job's name as the bot last saw it, else its id.
fn job_name(chat: &Chat, job_id: &str) -> String {
    crate::codearts::JobId::parse(job_id)
        .ok()
        .and_then(|id| chat.ctx.snapshots.get(&id))
        .and_then(|s| s.info.as_ref().and_then(|i| i.job_name.clone()))
        .unwrap_or_else(|| job_id.to_owned())
}
