//! `/unmute <target>`: ends a mute now (through the silence service).

use super::shared::{Call, silence_reply};
use crate::chat::reply::Reply;
use crate::engine::silences;

pub(crate) async fn run(call: &Call<'_>, target: &str) -> Result<Reply, String> {
    silence_reply(silences::unmute(call.ctx, target, &call.who.label()).await)
}
