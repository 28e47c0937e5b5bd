//! Leadership (docs/ha.md): takes and keeps the `leader` lease in the database, and publishes
//! this process's [`Role`] for the services that only the leader runs (poller, dispatcher,
//! digests, retention, the Discord gateway) and for `/readyz` and `/metrics`.
//!
//! A follower asks for the lease every third of a lease; the leader renews it as often. Each
//! attempt is bounded so that a leader whose database stops answering steps down by its
//! deadline ([`crate::domain::lease`]), a third of a lease before another replica can take
//! over. Every change is logged with why, and counted.

use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::domain::lease::{Attempt, Change, LeaseTiming, Role, step};
use crate::engine::Ctx;

/// The lease's name in the `leases` table.
pub use crate::store::LEADER_LEASE as LEADER;

/// One attempt to take or keep the lease, then the role it leads to (published, logged and
/// counted when it changed).
pub async fn attempt(ctx: &Ctx) -> Role {
    let timing = LeaseTiming::new(ctx.config.ha.lease());
    let lead = &ctx.lead;
    let current = lead.role();
    let started = Instant::now();
    let lease_ms = i64::try_from(timing.lease.as_millis()).unwrap_or(i64::MAX);
    // A leader's attempt must answer before its deadline; a follower's within a renewal period.
    let bound = match current {
        Role::Leader { until, .. } => until.saturating_duration_since(started),
        Role::Follower => timing.renew_every(),
    }
    .max(Duration::from_millis(1));
    let asked = async {
        match current {
            Role::Leader { token, .. } => ctx
                .store
                .renew_lease(LEADER, &lead.holder, token, lease_ms)
                .await
                .map(|kept| {
                    if kept {
                        Attempt::Granted { token }
                    } else {
                        Attempt::Refused
                    }
                }),
            Role::Follower => ctx
                .store
                .take_lease(LEADER, &lead.holder, lease_ms)
                .await
                .map(|granted| {
                    granted.map_or(Attempt::Refused, |token| Attempt::Granted { token })
                }),
        }
    };
    let outcome = match tokio::time::timeout(bound, asked).await {
        Ok(Ok(attempt)) => attempt,
        Ok(Err(e)) => {
            warn!(error = %e, "cannot reach the database for the leader's lease");
            Attempt::Unreachable
        }
        Err(_) => Attempt::Unreachable,
    };
    let (next, change) = step(current, outcome, started, Instant::now(), timing);
    lead.set(next);
    ctx.metrics.set(
        "codearts_bot_leader",
        &[],
        if next.token().is_some() { 1.0 } else { 0.0 },
    );
    match change {
        Some(Change::Took { token }) => {
            info!(
                holder = %lead.holder,
                token,
                lease_secs = timing.lease.as_secs(),
                "this replica leads now: polling, alerting and sending"
            );
            ctx.metrics
                .inc("codearts_bot_lease_changes_total", &[("change", "took")]);
        }
        Some(Change::Lost { why }) => {
            warn!(holder = %lead.holder, reason = why, "this replica no longer leads: it stops polling and sending");
            ctx.metrics
                .inc("codearts_bot_lease_changes_total", &[("change", "lost")]);
        }
        None => {}
    }
    next
}

/// Keeps taking or renewing the lease every third of a lease until `stop`; then gives the
/// lease up, so another replica takes over at once instead of after it expires.
pub async fn run(ctx: Ctx, stop: impl std::future::Future<Output = ()>) {
    let every = LeaseTiming::new(ctx.config.ha.lease()).renew_every();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep(every) => {}
        }
        attempt(&ctx).await;
    }
    if let Role::Leader { token, .. } = ctx.lead.role() {
        ctx.lead.set(Role::Follower);
        match ctx
            .store
            .release_lease(LEADER, &ctx.lead.holder, token)
            .await
        {
            Ok(()) => info!("the leader's lease is given up"),
            Err(e) => {
                warn!(error = %e, "cannot give the lease up; another replica takes over when it expires")
            }
        }
    }
}
