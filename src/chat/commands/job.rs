//! `/job <id>`: a job's card, with its health trend when the bot watches it.

use super::shared::{Call, store_failure};
use crate::chat::reply::{JobCard, Reply};

/// Readings in a health sparkline.
const TREND_READINGS: u32 = 12;

pub(crate) async fn run(call: &Call<'_>, raw: &str) -> Result<Reply, String> {
    let (id, info) = call.query(raw).await?;
    let ctx = call.ctx;
    let watched = ctx.store.is_watched(&id).await.map_err(store_failure)?;
    let trend = if watched {
        ctx.store
            .health_trend(&id, TREND_READINGS)
            .await
            .map_err(store_failure)?
    } else {
        Vec::new()
    };
    let link = ctx
        .config
        .codearts
        .link_template
        .as_deref()
        .map(|t| crate::notify::render_link(t, id.as_str(), info.project_id.as_deref()));
    Ok(Reply::Card(Box::new(JobCard {
        id,
        info,
        trend,
        watched,
        link,
    })))
}
