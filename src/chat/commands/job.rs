//! `/job <id>`: a job's card, with its health trend when the bot watches it and, when the job
//! is failing, why its last failed build failed (the context the bot fetched for the alert).

use tracing::warn;

use super::shared::{Call, store_failure};
use crate::chat::reply::{JobCard, Reply};
use crate::codearts::{JobId, JobInfo};
use crate::domain::buttons::{ButtonAction, CardButtons};
use crate::domain::context::Context;
use crate::engine::Ctx;

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
    let context = failure_context(ctx, &id, &info).await;
    let buttons = card_buttons(ctx, &id, &info, watched).await;
    let board = ctx.config.http.board_job_url(id.as_str());
    Ok(Reply::Card(Box::new(JobCard {
        id,
        info,
        trend,
        watched,
        link,
        context,
        buttons,
        board,
    })))
}

/// The card's buttons: Re-run, Stop while a build runs, Ack while it fails, the mutes while
/// the bot watches it. A database error leaves them out: the card is still worth showing.
async fn card_buttons(ctx: &Ctx, id: &JobId, info: &JobInfo, watched: bool) -> Option<CardButtons> {
    let status = info.last_build_status.as_deref().unwrap_or_default();
    let mut actions = vec![ButtonAction::Rerun];
    if status.eq_ignore_ascii_case("running") {
        actions.push(ButtonAction::Stop);
    }
    if ctx.rules.is_failure(status) {
        actions.push(ButtonAction::Ack);
    }
    if watched {
        actions.extend([
            ButtonAction::Mute1h,
            ButtonAction::Mute4h,
            ButtonAction::MuteTomorrow,
        ]);
    }
    match ctx
        .store
        .issue_card_buttons(None, id.as_str(), None, &actions, chrono::Utc::now())
        .await
    {
        Ok(buttons) => Some(buttons),
        Err(e) => {
            warn!(job_id = %id, error = %e, "chat /job: cannot issue the card's buttons");
            None
        }
    }
}

/// The stored context of the job's last failure, when the job is failing now (a job that
/// recovered should not show an old failure as if it were current). A database error leaves
/// it out: the card is still worth showing.
async fn failure_context(ctx: &Ctx, id: &JobId, info: &JobInfo) -> Option<Context> {
    let failing = info
        .last_build_status
        .as_deref()
        .is_some_and(|s| ctx.rules.is_failure(s));
    if !failing {
        return None;
    }
    match ctx.store.last_failure_context(id).await {
        Ok(context) => context.filter(|c| !c.is_empty()),
        Err(e) => {
            warn!(job_id = %id, error = %e, "chat /job: cannot read the failure context");
            None
        }
    }
}
