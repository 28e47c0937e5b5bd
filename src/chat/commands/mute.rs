//! `/mute <target> <duration> [reason]`: stops sending alerts for a job, a project or all for
//! a while (the silence service checks and records it; alerts are still recorded).

use super::shared::{Call, silence_reply};
use crate::chat::reply::Reply;
use crate::engine::silences;

pub(crate) async fn run(
    call: &Call<'_>,
    target: &str,
    duration: &str,
    reason: Option<&str>,
) -> Result<Reply, String> {
    silence_reply(silences::mute(call.ctx, target, duration, reason, &call.who.label()).await)
}
