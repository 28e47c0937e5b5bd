//! `/unwatch <id>`: stops watching a job that was added from chat (config and project watches
//! are changed in the config instead, and the answer says so).

use super::shared::{Call, store_failure};
use crate::chat::reply::Reply;
use crate::domain::ids::parse_job_id;
use crate::store::WatchSource;

pub(crate) async fn run(call: &Call<'_>, raw: &str) -> Result<Reply, String> {
    let id = parse_job_id(raw)?;
    let before = call
        .ctx
        .store
        .unwatch_from_chat(&id)
        .await
        .map_err(store_failure)?;
    match before {
        Some(WatchSource::Chat) => Ok(Reply::Done(format!(
            "Stopped watching {id}: no more alerts for it."
        ))),
        Some(WatchSource::Config) => Err(format!(
            "Job {id} is pinned in the bot's config file and cannot be unwatched from chat: \
             remove it from [[jobs]] instead."
        )),
        Some(WatchSource::Project) => Err(format!(
            "Job {id} is watched because a channel subscribes to its project: change that \
             channel's `projects` in the config instead."
        )),
        None => Err(format!("Job {id} is not watched.")),
    }
}
