//! Abandoned calls and each campaign's abandonment budget (TSR 16 CFR 310.4(b)(4); FCC 47 CFR
//! 64.1200(a)(7)): a call answered by a person who is not connected to the agent (or to the
//! message) within 2 s of the end of their greeting is abandoned; at most 3 % of the calls a
//! person answers may be, per campaign, over each 30-day period.
//!
//! [`is_abandoned`] classifies one attempt; [`AbandonBudget`] keeps a campaign's live answers
//! of the last 30 days and tells the pacer how fast the campaign may dial ([`BudgetPace`]):
//! full speed while the rate is under [`SLOW_FROM`] of the limit, then slower the nearer it
//! gets, and paused when one more abandoned call would pass it (until answers age out of the
//! period). The rate's denominator is at least [`MIN_SAMPLE`] answers, and a fresh campaign
//! starts at [`SLOW_START`] of its speed and ramps up over its first [`RAMP_ANSWERS`], so its
//! first answers cannot put it over the limit. Pure: time is an argument.

use std::collections::VecDeque;

/// A campaign's limit: `mode.max_abandon_rate` if set (never above the configured one), else
/// `configured` (`max_abandon_rate` of the configuration, default [`DEFAULT_MAX_RATE`]).
pub fn max_rate_for(mode: &serde_json::Value, configured: f64) -> f64 {
    mode.get("max_abandon_rate")
        .and_then(serde_json::Value::as_f64)
        .filter(|r| *r > 0.0)
        .map_or(configured, |r| r.min(configured))
}

/// A person must be connected within this long after their greeting ends.
pub const GRACE_MS: i64 = 2_000;
/// The rolling period of the rate.
pub const PERIOD_MS: i64 = 30 * 24 * 3_600_000;
/// The legal limit and default `max_abandon_rate`.
pub const DEFAULT_MAX_RATE: f64 = 0.03;
/// The rate's denominator is at least this many live answers.
pub const MIN_SAMPLE: u64 = 100;
/// Share of its speed a campaign dials at with no live answer yet; it ramps up to full speed
/// over its first [`RAMP_ANSWERS`] (a jump to full speed floods the agents at once).
pub const SLOW_START: f64 = 0.3;
pub const RAMP_ANSWERS: u64 = 1_000;
/// Share of the budget used above which the campaign slows down.
pub const SLOW_FROM: f64 = 0.3;
/// The slowest a campaign is made to dial before it is paused.
pub const MIN_FACTOR: f64 = 0.1;

/// Whether an answered call was abandoned. `person`: a person answered (the detector said
/// `human` or `unknown`, or the call was hung up before it decided and not as a machine).
/// Times are ms after the answer: `greeting_end_ms` when the detector decided (the end of the
/// greeting; `None` if it never did), `connected_ms` when the agent or the message reached the
/// person (`None` if never).
pub fn is_abandoned(person: bool, greeting_end_ms: Option<i64>, connected_ms: Option<i64>) -> bool {
    if !person {
        return false;
    }
    match (greeting_end_ms, connected_ms) {
        (Some(g), Some(c)) => c > g + GRACE_MS,
        // Never connected: abandoned (a hang-up within the grace period is not, since the
        // person left before the call could be; the caller passes connected = the hang-up
        // time then).
        (_, None) => true,
        (None, Some(_)) => false,
    }
}

/// How the budget lets a campaign dial now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetPace {
    /// Share of the campaign's `calls_per_second` it may use (0 when paused).
    pub factor: f64,
    pub state: BudgetState,
    /// Live answers and abandoned calls of the last 30 days.
    pub answered: u64,
    pub abandoned: u64,
    pub max_rate: f64,
}

impl BudgetPace {
    /// abandoned / answered over the period (0 with no answer).
    pub fn rate(&self) -> f64 {
        if self.answered == 0 {
            0.0
        } else {
            self.abandoned as f64 / self.answered as f64
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetState {
    Normal,
    /// Fewer than [`MIN_SAMPLE`] answers yet.
    SlowStart,
    Slowed,
    Paused,
}

impl BudgetState {
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetState::Normal => "normal",
            BudgetState::SlowStart => "slow_start",
            BudgetState::Slowed => "slowed",
            BudgetState::Paused => "paused",
        }
    }
}

/// One campaign's live answers over the rolling period.
#[derive(Clone, Debug, Default)]
pub struct AbandonBudget {
    /// (answer time, abandoned), oldest first.
    events: VecDeque<(i64, bool)>,
    abandoned: u64,
}

impl AbandonBudget {
    /// A call a person answered (`abandoned` or not) at `at_ms`. Out-of-order times are kept
    /// in order.
    pub fn record(&mut self, at_ms: i64, abandoned: bool) {
        let pos = self.events.partition_point(|(t, _)| *t <= at_ms);
        self.events.insert(pos, (at_ms, abandoned));
        self.abandoned += u64::from(abandoned);
    }

    fn prune(&mut self, now_ms: i64) {
        while let Some(&(t, a)) = self.events.front() {
            if now_ms - t < PERIOD_MS {
                break;
            }
            self.events.pop_front();
            self.abandoned -= u64::from(a);
        }
    }

    /// The pace allowed at `now_ms` under `max_rate`.
    pub fn pace(&mut self, now_ms: i64, max_rate: f64) -> BudgetPace {
        self.prune(now_ms);
        let answered = self.events.len() as u64;
        let abandoned = self.abandoned;
        let n = answered.max(MIN_SAMPLE) as f64;
        let used = abandoned as f64 / (max_rate * n);
        let (factor, state) = if (abandoned + 1) as f64 > max_rate * n {
            (0.0, BudgetState::Paused)
        } else if used > SLOW_FROM {
            let f = 1.0 - (used - SLOW_FROM) / (1.0 - SLOW_FROM) * (1.0 - MIN_FACTOR);
            (f.clamp(MIN_FACTOR, 1.0), BudgetState::Slowed)
        } else {
            (1.0, BudgetState::Normal)
        };
        let (factor, state) = if answered < RAMP_ANSWERS && state != BudgetState::Paused {
            let cap = SLOW_START + (1.0 - SLOW_START) * answered as f64 / RAMP_ANSWERS as f64;
            (factor.min(cap), BudgetState::SlowStart)
        } else {
            (factor, state)
        };
        BudgetPace {
            factor,
            state,
            answered,
            abandoned,
            max_rate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abandoned_calls() {
        assert!(!is_abandoned(false, None, None));
        assert!(!is_abandoned(true, Some(1500), Some(3000)));
        assert!(is_abandoned(true, Some(1500), Some(3501)));
        assert!(is_abandoned(true, Some(1500), None));
        assert!(!is_abandoned(true, None, Some(800)));
    }

    #[test]
    fn budget_slows_then_pauses_and_recovers_as_answers_age_out() {
        let mut b = AbandonBudget::default();
        let p = b.pace(0, 0.03);
        assert_eq!((p.state, p.factor), (BudgetState::SlowStart, SLOW_START));
        for i in 0..1000 {
            b.record(i, false);
        }
        assert_eq!(b.pace(1000, 0.03).state, BudgetState::Normal);
        // 1000 answers allow 30 abandons: over 15 the campaign slows; when one more would
        // pass the limit it pauses.
        for i in 0..16 {
            b.record(5000 + i, true);
        }
        let p = b.pace(5100, 0.03);
        assert_eq!(p.state, BudgetState::Slowed);
        assert!(p.factor < 1.0 && p.factor > MIN_FACTOR, "{p:?}");
        for i in 0..15 {
            b.record(6000 + i, true);
        }
        let p = b.pace(6100, 0.03);
        assert_eq!(
            (p.state, p.factor, p.abandoned),
            (BudgetState::Paused, 0.0, 31)
        );
        assert!(p.rate() <= 0.031);
        // 30 days on, the early answers leave the period: still paused on 31 of 31.
        let p = b.pace(PERIOD_MS + 1000, 0.03);
        assert_eq!(
            (p.answered, p.abandoned, p.state),
            (31, 31, BudgetState::Paused)
        );
        // Then the abandoned ones leave too.
        assert_eq!(b.pace(PERIOD_MS + 7000, 0.03).state, BudgetState::SlowStart);
    }
}
