//! `/watch <id> [channel]`: starts watching a job from chat, optionally alerting only one of
//! the configured channels.

use super::shared::{Call, store_failure};
use crate::chat::reply::Reply;
use crate::store::WatchSource;

pub(crate) async fn run(
    call: &Call<'_>,
    raw: &str,
    channel: Option<&str>,
) -> Result<Reply, String> {
    let ctx = call.ctx;
    if let Some(name) = channel
        && !ctx.config.channels.iter().any(|c| c.name == name)
    {
        let known: Vec<&str> = ctx
            .config
            .channels
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        return Err(format!(
            "No alert channel is named `{}` (configured: {}).",
            crate::util::text::printable(name),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ));
    }
    // The job must exist and be visible before it is watched.
    let (id, info) = call.query(raw).await?;
    let channels = channel.map(|c| vec![c.to_owned()]);
    let before = ctx
        .store
        .watch_from_chat(&id, channels.as_deref())
        .await
        .map_err(store_failure)?;
    let name = info.display_name().to_owned();
    Ok(match before {
        None => Reply::Done(format!(
            "Now watching {name} ({id}): alerts go to {}. The next poll takes its baseline.",
            channel.map_or_else(|| "every channel".to_owned(), |c| format!("channel {c}"))
        )),
        Some(source) => Reply::Error(format!(
            "{name} ({id}) is already watched ({}).",
            source_words(source)
        )),
    })
}

fn source_words(source: WatchSource) -> &'static str {
    match source {
        WatchSource::Config => "pinned in the config file",
        WatchSource::Chat => "added from chat",
        WatchSource::Project => "through a project subscription",
    }
}
