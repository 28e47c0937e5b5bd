//! `/digest [channel]`: the digest on demand, posted in the channel (it is the same summary the
//! team gets on schedule, nothing private). With an alert channel's name: that channel's jobs
//! since its last scheduled digest (in its `digest_timezone`), or over the last 24 hours when
//! it has no schedule. Without: every job chat may query (`commands.projects`), last 24 hours.

use super::shared::{Call, store_failure};
use crate::chat::reply::{Line, Reply};
use crate::util::text::truncate_chars;

/// The longest one section of the answer may be.
const SECTION_MAX: usize = 600;

pub(crate) async fn run(call: &Call<'_>, channel: Option<&str>) -> Result<Reply, String> {
    let ctx = call.ctx;
    let channel = match channel.map(str::trim) {
        None => None,
        Some(name) => Some(
            ctx.config
                .channels
                .iter()
                .find(|c| c.name == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = ctx
                        .config
                        .channels
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect();
                    format!(
                        "There is no alert channel {name:?} (known: {}).",
                        if names.is_empty() {
                            "none".to_owned()
                        } else {
                            names.join(", ")
                        }
                    )
                })?,
        ),
    };
    // A channel's digest covers its jobs whatever `commands.projects` says; chat may only
    // read it when the two agree, so with an allow-list only the whole-bot digest answers.
    if channel.is_some() && !ctx.config.commands.projects.is_empty() {
        return Err(
            "With commands.projects set, /digest answers only without a channel (for the \
             projects chat may query)."
                .to_owned(),
        );
    }
    let digest = crate::engine::digest::on_demand(ctx, channel, chrono::Utc::now())
        .await
        .map_err(store_failure)?;
    let lines = digest
        .sections
        .iter()
        .map(|s| Line {
            when: None,
            label: s.label.to_owned(),
            // Every section keeps a line of its own within the platforms' list budgets.
            text: truncate_chars(&s.text, SECTION_MAX),
        })
        .collect();
    Ok(Reply::List {
        title: format!("Digest: {}", digest.title),
        lines,
        more: 0,
    })
}
