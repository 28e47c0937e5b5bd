//! `/history <id> [n]`: a job's last stored events, with why any was not sent, and the
//! actions taken on it from chat (re-runs, stops), newest first.

use super::shared::{Call, store_failure};
use crate::chat::reply::{Line, MAX_LIST, Reply};
use crate::domain::event::Event;
use crate::domain::ids::parse_job_id;
use crate::store::ActionRow;

pub(crate) async fn run(call: &Call<'_>, raw: &str, n: Option<i64>) -> Result<Reply, String> {
    let id = parse_job_id(raw)?;
    call.check_stored_project(&id).await?;
    let n = n.unwrap_or(10).clamp(1, MAX_LIST as i64) as u32;
    let events = call
        .ctx
        .store
        .events_for(&id, n)
        .await
        .map_err(store_failure)?;
    let actions = call
        .ctx
        .store
        .actions(Some(id.as_str()), n)
        .await
        .map_err(store_failure)?;
    if events.is_empty() && actions.is_empty() {
        return Err(format!(
            "No events are stored for job {id} (the bot records events only for jobs it \
             watches; `/watch {id}` to start)."
        ));
    }
    let name = events
        .first()
        .map_or_else(|| id.to_string(), |e| e.0.job_name.clone());
    let mut lines: Vec<Line> = events
        .iter()
        .map(history_line)
        .chain(actions.iter().map(action_line))
        .collect();
    lines.sort_by_key(|line| std::cmp::Reverse(line.when));
    lines.truncate(n as usize);
    Ok(Reply::List {
        title: format!("Last {} events and actions of {name}", lines.len()),
        lines,
        more: 0,
    })
}

/// An action as a history line: "rerun by discord:123: done: Re-run of … build #43 started".
fn action_line(row: &ActionRow) -> Line {
    Line {
        when: Some(row.created()),
        label: row.kind.clone(),
        text: format!(
            "by {} ({}): {}",
            row.who,
            row.state,
            row.answer.as_deref().unwrap_or("CodeArts has not answered")
        ),
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
