//! What the dispatcher hands a sink: [`Outgoing`], one stored event with its delivery id and
//! link, and how that link is filled in from `codearts.link_template`.

use crate::config::Person;
use crate::domain::buttons::CardButtons;
use crate::domain::context::Context;
use crate::domain::event::Event;

/// The words of the link button or line on every card.
pub const LINK_LABEL: &str = "Open in CodeArts";

/// The words of the board's link button or line (`[http] public_url`, docs/board.md).
pub const BOARD_LABEL: &str = "Open on the board";

/// One message to send: a stored event, its delivery's stable id (the same on every retry,
/// so a receiver can de-duplicate) and the link the card carries.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub delivery_id: &'a str,
    pub event: &'a Event,
    /// The rendered `codearts.link_template` (see [`render_link`]), or `None` for no link.
    /// A link that is not an http(s) URL is left out of the card.
    pub link: Option<&'a str>,
    /// Why it happened, when the bot learned it (a failed build's stage, commit, author and
    /// log tail; who disabled or deleted a job). Already scrubbed.
    pub context: Option<&'a Context>,
    /// Who to mention: the person who ran the failed build, when the channel has
    /// `mention = "author"` and `[[people]]` maps them. Never anyone else.
    pub mention: Option<&'a Person>,
    /// The card's buttons (Re-run, Ack, Mute), on channels whose platform carries them and
    /// whose clicks reach the bot; `None` elsewhere and on grouped messages.
    pub buttons: Option<&'a CardButtons>,
    /// The job's page on the status board (`[http] public_url` + `/jobs/{id}`), or, for a
    /// storm summary, the board filtered to its jobs; `None` without a board. Shown next to
    /// the CodeArts link, and left out like it when it is not an http(s) URL.
    pub board: Option<&'a str>,
}

/// Fills in a `codearts.link_template`: `{job_id}` and `{project_id}` (empty when unknown)
/// are replaced by the ids, percent-encoded where they hold anything but `A-Z a-z 0-9 - . _ ~`
/// (real ids never do); the rest of the template is used exactly as written.
pub fn render_link(template: &str, job_id: &str, project_id: Option<&str>) -> String {
    template
        .replace("{job_id}", &encode_component(job_id))
        .replace("{project_id}", &encode_component(project_id.unwrap_or("")))
}

use crate::util::text::url_component as encode_component;

/// A board link, the same in every platform's tests.
#[cfg(test)]
pub(crate) const TEST_BOARD: &str = "https://bot.example/jobs/f5af662119404ad187437cd272b5099b";

/// One event with a CodeArts link and `board`, the same in every platform's tests.
#[cfg(test)]
pub(crate) fn with_board<'a>(event: &'a Event, board: Option<&'a str>) -> Outgoing<'a> {
    Outgoing {
        delivery_id: "d",
        event,
        link: Some("https://console.example/job/1"),
        context: None,
        mention: None,
        buttons: None,
        board,
    }
}

/// A build_failed event of a job with this name, the same in every platform's tests.
#[cfg(test)]
pub(crate) fn test_event(name: &str) -> crate::domain::event::Event {
    let info = |status: &str, health| crate::codearts::JobInfo {
        job_name: Some(name.to_owned()),
        last_build_status: Some(status.to_owned()),
        last_build_time: Some(1_721_793_407_000),
        health_score: Some(health),
        build_time: Some("27.51".to_owned()),
        ..crate::codearts::JobInfo::default()
    };
    Event {
        kind: crate::domain::event::EventKind::BuildFailed,
        job_id: "f5af662119404ad187437cd272b5099b".to_owned(),
        job_name: name.to_owned(),
        detected_at: chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 26, 12, 0, 0)
            .unwrap(),
        previous: Some(info("success", 80)),
        current: Some(info("failed", 70)),
        summary: format!("Build failed: {name} (success → failed)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_filled_in_and_only_the_ids_encoded() {
        let template = "https://console.example/p/{project_id}/job/{job_id}?tab=a%20b&x={job_id}";
        assert_eq!(
            render_link(
                template,
                "f5af662119404ad187437cd272b5099b",
                Some("85ca-52")
            ),
            "https://console.example/p/85ca-52/job/f5af662119404ad187437cd272b5099b?tab=a%20b&x=f5af662119404ad187437cd272b5099b"
        );
        assert_eq!(
            render_link(template, "a b/c", None),
            "https://console.example/p//job/a%20b%2Fc?tab=a%20b&x=a%20b%2Fc"
        );
    }
}
