//! The links a card carries: the job's page in CodeArts (`codearts.link_template`) and on the
//! status board (`[http] public_url`, docs/board.md), and a storm summary's link to the board
//! filtered to its jobs; and the [`Outgoing`] a delivery becomes, which borrows them.

use std::collections::HashSet;
use std::sync::Arc;

use super::Dispatcher;
use crate::config::HttpConfig;
use crate::notify::outgoing::{Outgoing, render_link};
use crate::store::DueDelivery;

/// One card's links, owned here so the [`crate::notify::Outgoing`] handed to the sink can
/// borrow them.
#[derive(Debug, Default)]
pub(super) struct Links {
    /// `codearts.link_template` filled in for the job.
    pub codearts: Option<String>,
    /// The job's board page, or a storm's filtered board.
    pub board: Option<String>,
}

impl Dispatcher {
    /// Cards link to the status board under `http.public_url` (when `http.board` is on too).
    /// The token is not kept: links never carry it, and the dispatcher holds no secret it
    /// does not use.
    pub fn with_board(mut self, http: &HttpConfig) -> Self {
        self.board = Arc::new(HttpConfig {
            board_token: None,
            ..http.clone()
        });
        self
    }

    /// The links of `delivery`'s card.
    pub(super) fn links(&self, delivery: &DueDelivery) -> Links {
        let job = delivery.event.job_id.as_str();
        Links {
            codearts: self.link(delivery),
            // An event about CodeArts as a whole, or several jobs, has no page of its own.
            board: (!job.is_empty())
                .then(|| self.board.board_job_url(job))
                .flatten(),
        }
    }

    /// What the sink is handed for one delivery: the event, its links, its context and whom
    /// it mentions on this channel.
    pub(super) fn outgoing<'a>(&'a self, d: &'a DueDelivery, links: &'a Links) -> Outgoing<'a> {
        Outgoing {
            delivery_id: &d.id,
            event: &d.event,
            link: links.codearts.as_deref(),
            context: d.context.as_ref(),
            mention: self
                .mentions
                .for_event(&d.channel, &d.event, d.context.as_ref()),
            buttons: None,
            board: links.board.as_deref(),
        }
    }

    /// The card's link: `codearts.link_template` filled in for this job.
    fn link(&self, delivery: &DueDelivery) -> Option<String> {
        let template = self.link_template.as_deref()?;
        let event = &delivery.event;
        if event.job_id.is_empty() {
            return None; // an event about CodeArts as a whole, or several jobs
        }
        let project = event
            .current
            .as_ref()
            .and_then(|i| i.project_id.as_deref())
            .or_else(|| {
                event
                    .previous
                    .as_ref()
                    .and_then(|i| i.project_id.as_deref())
            });
        Some(render_link(template, &event.job_id, project))
    }

    /// A storm summary's board link: the board filtered to the storm's jobs, or, when that
    /// URL would be longer than the platform's `link_max`, the board's problems view.
    pub(super) fn storm_board_link(
        &self,
        storm: &[DueDelivery],
        link_max: usize,
    ) -> Option<String> {
        let mut seen = HashSet::new();
        let ids: Vec<&str> = storm
            .iter()
            .map(|d| d.event.job_id.as_str())
            .filter(|id| !id.is_empty() && seen.insert(*id))
            .collect();
        storm_link(&self.board, &ids, link_max)
    }
}

/// The board filtered to `ids` when that URL fits in `link_max` (and there are ids), else the
/// problems view: every job not passing, which holds a storm's failing, vanished and
/// disabled jobs (its recovered ones are passing by then). `None` without a board.
fn storm_link(http: &HttpConfig, ids: &[&str], link_max: usize) -> Option<String> {
    (!ids.is_empty())
        .then(|| http.board_jobs_url(ids.iter().copied()))
        .flatten()
        .filter(|url| url.len() <= link_max)
        .or_else(|| http.board_problems_url())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(on: bool, public_url: Option<&str>) -> HttpConfig {
        HttpConfig {
            board: on,
            public_url: public_url.map(str::to_owned),
            ..HttpConfig::default()
        }
    }

    #[test]
    fn a_storm_links_its_jobs_or_the_problems_view_when_they_do_not_fit() {
        let http = board(true, Some("https://bot.example/"));
        let ids = ["a1", "b2"];
        assert_eq!(
            storm_link(&http, &ids, 512).as_deref(),
            Some("https://bot.example/?jobs=a1,b2")
        );
        // 40 real ids (32 hex characters) are ~1,350 characters: past Discord's 512.
        let long: Vec<String> = (0..40).map(|i| format!("{i:032x}")).collect();
        let long: Vec<&str> = long.iter().map(String::as_str).collect();
        assert_eq!(
            storm_link(&http, &long, 512).as_deref(),
            Some("https://bot.example/?status=problems")
        );
        let slack = storm_link(&http, &long, 3000).unwrap();
        assert!(slack.starts_with("https://bot.example/?jobs=") && slack.len() <= 3000);
        assert_eq!(
            storm_link(&http, &[], 512).as_deref(),
            Some("https://bot.example/?status=problems"),
            "no job ids: the problems view"
        );
    }

    #[test]
    fn no_board_no_link() {
        for http in [board(false, Some("https://bot.example")), board(true, None)] {
            assert_eq!(storm_link(&http, &["a1"], 512), None);
            assert_eq!(http.board_job_url("a1"), None);
        }
    }
}
