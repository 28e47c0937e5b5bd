//! `/rerun <id> [latest]` and `/stop <id>`: act on CodeArts through
//! [`crate::engine::actions`], which records the action first so it happens once.

use super::shared::Call;
use crate::chat::reply::Reply;
use crate::engine::actions::{self, Actor};

pub(crate) async fn rerun(call: &Call<'_>, raw: &str, latest: bool) -> Result<Reply, String> {
    let (id, info) = call.query(raw).await?;
    let (label, shown) = names(call);
    let actor = actor(call, &label, &shown);
    actions::rerun(call.ctx, &id, &info, latest, actor)
        .await
        .map(Reply::Done)
}

pub(crate) async fn stop(call: &Call<'_>, raw: &str) -> Result<Reply, String> {
    let (id, info) = call.query(raw).await?;
    let (label, shown) = names(call);
    let actor = actor(call, &label, &shown);
    actions::stop(call.ctx, &id, &info, actor)
        .await
        .map(Reply::Done)
}

/// The invoker as stored (`discord:<id>`) and as shown in the channel (`@alice`).
fn names(call: &Call<'_>) -> (String, String) {
    (call.who.label(), call.who.shown())
}

fn actor<'a>(call: &'a Call<'_>, label: &'a str, shown: &'a str) -> Actor<'a> {
    Actor {
        label,
        shown_as: shown,
        platform: call.who.transport,
        channel: call.who.channel.as_deref(),
    }
}
