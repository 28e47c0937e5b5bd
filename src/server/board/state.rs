//! What every board handler shares: the bot's context and the access rule.

use std::sync::Arc;

use super::access::Access;
use crate::engine::Ctx;

#[derive(Clone)]
pub struct Board {
    pub ctx: Ctx,
    pub access: Arc<Access>,
}
