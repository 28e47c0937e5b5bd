//! `/watches`: the jobs the bot watches, with why (pinned, chat, project) and their names.

use super::shared::{Call, store_failure};
use crate::chat::reply::{Line, MAX_LIST, Reply};
use crate::store::WatchSource;

pub(crate) async fn run(call: &Call<'_>) -> Result<Reply, String> {
    let ctx = call.ctx;
    let watched = ctx.store.watched_jobs().await.map_err(store_failure)?;
    ctx.snapshots
        .ensure_loaded(&ctx.store)
        .await
        .map_err(store_failure)?;
    let total = watched.len();
    let lines = watched
        .iter()
        .take(MAX_LIST)
        .map(|w| {
            let name = ctx
                .snapshots
                .get(&w.job_id)
                .and_then(|s| s.info.as_ref().and_then(|i| i.job_name.clone()))
                .unwrap_or_else(|| "(not polled yet)".to_owned());
            let label = match w.source {
                WatchSource::Config => "pinned",
                WatchSource::Chat => "chat",
                WatchSource::Project => "project",
            };
            Line {
                when: None,
                label: format!("{label} {}", w.job_id),
                text: name,
            }
        })
        .collect();
    Ok(Reply::List {
        title: format!("Watched jobs ({total})"),
        lines,
        more: total.saturating_sub(MAX_LIST),
    })
}
