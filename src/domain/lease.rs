//! Leadership by lease (docs/ha.md): of all the `run` processes sharing one database, the one
//! holding the lease polls, alerts and sends; the others serve HTTP only.
//!
//! The database decides who holds the lease, on its own clock (`expires_at`), and numbers each
//! new holder's term with a fencing token. This file decides, on the holder's own monotonic
//! clock, how long it may still act: until the moment its last successful renewal *started*,
//! plus two thirds of the lease. The database's expiry is at least a whole lease after that
//! same moment, so the holder stops acting a third of a lease before anyone else can take over,
//! whatever the clocks of the machines say and however long the renewal took. A process that
//! was paused (SIGSTOP, a long GC-like stall) finds its deadline passed when it resumes and
//! stops before doing anything.

use std::time::{Duration, Instant};

/// The lease's timing, from `ha.lease_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long the database keeps the lease after a renewal.
    pub lease: Duration,
}

impl LeaseTiming {
    pub fn new(lease: Duration) -> Self {
        Self { lease }
    }

    /// How often the holder renews, and a follower tries to take over: a third of the lease.
    pub fn renew_every(&self) -> Duration {
        self.lease / 3
    }

    /// How long after a renewal *started* the holder may still act: two thirds of the lease,
    /// so it stops a third of a lease before the database could give the lease to another.
    pub fn trust_for(&self) -> Duration {
        self.lease * 2 / 3
    }
}

/// The token of a lead held without any lease (`run --once`, the demo, tests driving one
/// process): the database grants tokens from 1, so nothing is fenced against it.
pub const UNLEASED: i64 = 0;

/// This process's part: leading (with its term's token, until when) or following.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    Leader { token: i64, until: Instant },
}

impl Role {
    /// Whether the process may act (poll, write events, send) at `now`.
    pub fn may_act(&self, now: Instant) -> bool {
        matches!(self, Role::Leader { until, .. } if now < *until)
    }

    /// The term's fencing token while leading.
    pub fn token(&self) -> Option<i64> {
        match self {
            Role::Leader { token, .. } => Some(*token),
            Role::Follower => None,
        }
    }

    /// The token to fence writes and sends with: a term granted by the database's lease
    /// (none for a lead held without one, [`UNLEASED`]).
    pub fn lease_token(&self) -> Option<i64> {
        self.token().filter(|&t| t != UNLEASED)
    }
}

/// What one attempt to take or keep the lease found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The database granted (or renewed) the term `token`.
    Granted { token: i64 },
    /// Another process holds an unexpired lease, or this one's term ended.
    Refused,
    /// The database could not be asked (down, timed out).
    Unreachable,
}

/// A change of role worth logging, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Took { token: i64 },
    Lost { why: &'static str },
}

/// The role after an attempt that *started* at `started`, from `role` at `now`. Returns the
/// new role and the change, if any.
pub fn step(
    role: Role,
    attempt: Attempt,
    started: Instant,
    now: Instant,
    timing: LeaseTiming,
) -> (Role, Option<Change>) {
    let until = started + timing.trust_for();
    match (role, attempt) {
        (Role::Leader { token, .. }, Attempt::Granted { token: granted }) if token == granted => {
            let next = Role::Leader { token, until };
            if next.may_act(now) {
                (next, None)
            } else {
                // Granted, but the answer came too late to act on it safely.
                (
                    Role::Follower,
                    Some(Change::Lost {
                        why: "the renewal answered too late",
                    }),
                )
            }
        }
        (_, Attempt::Granted { token }) => {
            let next = Role::Leader { token, until };
            if next.may_act(now) {
                (next, Some(Change::Took { token }))
            } else {
                (Role::Follower, None)
            }
        }
        (Role::Leader { .. }, Attempt::Refused) => (
            Role::Follower,
            Some(Change::Lost {
                why: "the lease expired or another replica holds it",
            }),
        ),
        (leader @ Role::Leader { .. }, Attempt::Unreachable) => {
            if leader.may_act(now) {
                (leader, None)
            } else {
                (
                    Role::Follower,
                    Some(Change::Lost {
                        why: "the database did not answer before the lease could run out",
                    }),
                )
            }
        }
        (Role::Follower, _) => (Role::Follower, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: LeaseTiming = LeaseTiming {
        lease: Duration::from_secs(15),
    };

    #[test]
    fn a_holder_stops_a_third_of_a_lease_before_anyone_can_take_over() {
        let t0 = Instant::now();
        let (role, change) = step(
            Role::Follower,
            Attempt::Granted { token: 7 },
            t0,
            t0 + Duration::from_millis(5),
            T,
        );
        assert_eq!(change, Some(Change::Took { token: 7 }));
        assert!(role.may_act(t0 + Duration::from_secs(9)));
        assert!(
            !role.may_act(t0 + Duration::from_secs(10)),
            "10 s: 5 s before the database's 15 s"
        );
        assert_eq!(T.renew_every(), Duration::from_secs(5));
    }

    #[test]
    fn renewals_move_the_deadline_and_a_slow_or_refused_one_ends_the_term() {
        let t0 = Instant::now();
        let leader = Role::Leader {
            token: 7,
            until: t0 + T.trust_for(),
        };
        let at = |s: u64| t0 + Duration::from_secs(s);
        // Renewed at 5 s: trusted until 15 s.
        let (renewed, change) = step(leader, Attempt::Granted { token: 7 }, at(5), at(5), T);
        assert_eq!(change, None);
        assert!(renewed.may_act(at(14)) && !renewed.may_act(at(15)));
        // A renewal that started at 5 s but answered at 16 s (the process was paused).
        let (late, change) = step(leader, Attempt::Granted { token: 7 }, at(5), at(16), T);
        assert_eq!(late, Role::Follower);
        assert!(matches!(change, Some(Change::Lost { .. })));
        // The database says no.
        let (refused, change) = step(renewed, Attempt::Refused, at(10), at(10), T);
        assert_eq!(refused, Role::Follower);
        assert!(matches!(change, Some(Change::Lost { .. })));
    }

    #[test]
    fn an_unreachable_database_is_waited_out_only_while_the_term_is_trusted() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let leader = Role::Leader {
            token: 3,
            until: at(10),
        };
        assert_eq!(
            step(leader, Attempt::Unreachable, at(5), at(6), T),
            (leader, None)
        );
        let (after, change) = step(leader, Attempt::Unreachable, at(9), at(11), T);
        assert_eq!(after, Role::Follower);
        assert!(matches!(change, Some(Change::Lost { .. })));
        // A follower stays one until granted; a grant with another token is a new term.
        assert_eq!(
            step(Role::Follower, Attempt::Refused, at(1), at(1), T),
            (Role::Follower, None)
        );
        let (new_term, change) = step(leader, Attempt::Granted { token: 4 }, at(5), at(5), T);
        assert_eq!(new_term.token(), Some(4));
        assert_eq!(change, Some(Change::Took { token: 4 }));
    }
}
