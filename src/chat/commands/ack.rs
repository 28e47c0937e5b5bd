//! `/ack <id>`: "I'm on it": no repeat alerts for the job until it recovers (through the
//! silence service).

use super::shared::{Call, silence_reply};
use crate::chat::reply::Reply;
use crate::engine::silences;

pub(crate) async fn run(call: &Call<'_>, id: &str) -> Result<Reply, String> {
    silence_reply(silences::ack(call.ctx, id, &call.who.label()).await)
}
