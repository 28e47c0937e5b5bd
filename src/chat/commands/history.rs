//! `/history <id> [n]`: a job's last stored events, with why any was not sent.

use super::shared::{Call, store_failure};
use crate::chat::reply::{Line, MAX_LIST, Reply};
use crate::domain::event::Event;
use crate::domain::ids::parse_job_id;

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
