//! When the agent's socket is lost or never opens: when to try again, and when to give up.
//!
//! A person is on the line listening to silence while we reconnect, so the policy is a budget
//! of wall time per outage, not a count: retries back off (1 s, 2 s, 4 s, capped) and stop once
//! the next one would start after the budget. Pure: the runtime passes `now` and performs the
//! retries; a successful connection ends the outage and resets the backoff.

use std::time::{Duration, Instant};

/// How hard to try. The defaults give retries 1, 3 and 7 s into an outage and give up at 10 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReconnectPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Wall time from the loss to the last retry's start.
    pub budget: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(4),
            budget: Duration::from_secs(10),
        }
    }
}

/// What to do about a lost or refused connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconnectStep {
    /// Try again at this instant.
    RetryAt(Instant),
    /// The budget is spent: play the fallback or hang up.
    GiveUp {
        /// Retries made in this outage.
        retries: u32,
        outage: Duration,
    },
}

/// One call's reconnect state.
#[derive(Clone, Debug)]
pub struct Reconnect {
    policy: ReconnectPolicy,
    outage_since: Option<Instant>,
    next_delay: Duration,
    retries_this_outage: u32,
    retries_total: u32,
}

impl Reconnect {
    pub fn new(policy: ReconnectPolicy) -> Reconnect {
        Reconnect {
            policy,
            outage_since: None,
            next_delay: policy.first_delay,
            retries_this_outage: 0,
            retries_total: 0,
        }
    }

    /// The connection failed or dropped at `now`.
    pub fn lost(&mut self, now: Instant) -> ReconnectStep {
        let since = *self.outage_since.get_or_insert(now);
        let at = now + self.next_delay;
        if at.saturating_duration_since(since) > self.policy.budget {
            return ReconnectStep::GiveUp {
                retries: self.retries_this_outage,
                outage: now.saturating_duration_since(since),
            };
        }
        self.retries_this_outage += 1;
        self.retries_total += 1;
        self.next_delay = (self.next_delay * 2).min(self.policy.max_delay);
        ReconnectStep::RetryAt(at)
    }

    /// A connection is open again: the outage is over and the backoff starts afresh.
    pub fn connected(&mut self) {
        self.outage_since = None;
        self.next_delay = self.policy.first_delay;
        self.retries_this_outage = 0;
    }

    /// How long a retry started at `now` may take to connect: the configured timeout, cut to
    /// what is left of the budget (never below 100 ms, so a last retry still gets a chance).
    pub fn connect_timeout(&self, now: Instant, configured: Duration) -> Duration {
        match self.outage_since {
            None => configured,
            Some(since) => {
                let left = (since + self.policy.budget).saturating_duration_since(now);
                configured.min(left).max(Duration::from_millis(100))
            }
        }
    }

    /// Retries over the whole call.
    pub fn retries(&self) -> u32 {
        self.retries_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn retries_back_off_and_stop_at_the_budget() {
        let t0 = crate::runtime::clock::now();
        let mut r = Reconnect::new(ReconnectPolicy::default());
        // Each retry fails at once: the next one is scheduled from its failure.
        let mut now = t0;
        let mut starts = Vec::new();
        loop {
            match r.lost(now) {
                ReconnectStep::RetryAt(at) => {
                    starts.push(at.duration_since(t0));
                    now = at;
                }
                ReconnectStep::GiveUp { retries, outage } => {
                    assert_eq!(retries, 3);
                    assert_eq!(outage, secs(7.0));
                    break;
                }
            }
        }
        assert_eq!(starts, vec![secs(1.0), secs(3.0), secs(7.0)]);
        assert_eq!(r.retries(), 3);
    }

    #[test]
    fn the_delay_is_capped() {
        let t0 = crate::runtime::clock::now();
        let mut r = Reconnect::new(ReconnectPolicy {
            budget: secs(60.0),
            ..ReconnectPolicy::default()
        });
        let mut now = t0;
        let mut gaps = Vec::new();
        while let ReconnectStep::RetryAt(at) = r.lost(now) {
            gaps.push(at.duration_since(now));
            now = at;
        }
        assert_eq!(&gaps[..4], &[secs(1.0), secs(2.0), secs(4.0), secs(4.0)]);
        assert!(gaps.iter().all(|g| *g <= secs(4.0)));
        assert!(now.duration_since(t0) <= secs(60.0));
    }

    #[test]
    fn a_connection_ends_the_outage_and_resets_the_backoff() {
        let t0 = crate::runtime::clock::now();
        let mut r = Reconnect::new(ReconnectPolicy::default());
        assert_eq!(r.lost(t0), ReconnectStep::RetryAt(t0 + secs(1.0)));
        assert_eq!(
            r.lost(t0 + secs(1.0)),
            ReconnectStep::RetryAt(t0 + secs(3.0))
        );
        r.connected();
        // A later, separate drop gets the whole budget and the first delay again.
        let t1 = t0 + secs(100.0);
        assert_eq!(r.lost(t1), ReconnectStep::RetryAt(t1 + secs(1.0)));
        assert_eq!(r.retries(), 3);
    }

    #[test]
    fn a_retry_may_not_outlive_the_budget() {
        let t0 = crate::runtime::clock::now();
        let mut r = Reconnect::new(ReconnectPolicy::default());
        assert_eq!(r.connect_timeout(t0, secs(5.0)), secs(5.0));
        let _ = r.lost(t0);
        assert_eq!(r.connect_timeout(t0 + secs(7.0), secs(5.0)), secs(3.0));
        assert_eq!(
            r.connect_timeout(t0 + secs(9.95), secs(5.0)),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn a_zero_budget_gives_up_at_once() {
        let t0 = crate::runtime::clock::now();
        let mut r = Reconnect::new(ReconnectPolicy {
            budget: Duration::ZERO,
            ..ReconnectPolicy::default()
        });
        assert_eq!(
            r.lost(t0),
            ReconnectStep::GiveUp {
                retries: 0,
                outage: Duration::ZERO
            }
        );
    }
}
