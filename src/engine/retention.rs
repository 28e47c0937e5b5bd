//! Retention: old history, delivered messages and events are pruned once at start and then
//! every hour, in small batches so the writer is never held for long.

use std::time::Duration;

use tracing::{info, warn};

use crate::engine::Ctx;

/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Prunes old rows once at start and then every hour, until shutdown.
pub async fn run(ctx: Ctx, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let days = i64::from(ctx.config.store.retention_days);
        let before = chrono::Utc::now() - chrono::Duration::days(days);
        match ctx.store.prune(before, 500).await {
            Ok(p) if p.history + p.deliveries + p.events + p.contexts > 0 => info!(
                history = p.history,
                deliveries = p.deliveries,
                events = p.events,
                contexts = p.contexts,
                retention_days = days,
                "pruned old rows"
            ),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "retention pass failed; will try again"),
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(RETENTION_EVERY) => {}
        }
    }
}
