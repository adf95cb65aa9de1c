//! Pacing and fairness of the dialer: how many new calls each `dialing` campaign may start
//! now, given its own `mode.calls_per_second`, the node's trunk limits (concurrent calls and
//! calls per second) and the other campaigns waiting.
//!
//! Owns token buckets and the round-robin order across campaigns. It must not do I/O or read
//! the clock: `now_ms` is an argument and the runtime reports starts and ends of calls. It does
//! not know prospects, windows or caller IDs; the runtime asks it for permission to start one
//! call at a time and gives the token back if that prospect cannot be dialled after all.

use std::collections::BTreeMap;

use super::abandon::{AbandonBudget, BudgetPace, BudgetState};

/// A token bucket refilled continuously at `rate` tokens per second, holding at most `burst`.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last_ms: i64,
}

impl TokenBucket {
    /// Starts full-but-one-token so a fresh campaign dials its first call at once without
    /// bursting: a burst of `rate` calls in the first millisecond is what carriers flag.
    pub fn new(rate: f64, burst: f64, now_ms: i64) -> TokenBucket {
        let burst = burst.max(1.0);
        TokenBucket {
            rate: rate.max(0.0),
            burst,
            tokens: 1.0,
            last_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: i64) {
        let dt = (now_ms - self.last_ms).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.last_ms = self.last_ms.max(now_ms);
    }

    pub fn available(&mut self, now_ms: i64) -> bool {
        self.refill(now_ms);
        self.tokens >= 1.0
    }

    pub fn take(&mut self, now_ms: i64) -> bool {
        self.refill(now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Gives back a token taken for a call that was not placed.
    pub fn give_back(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.burst);
    }

    /// When the next token is due (now if one is available).
    pub fn next_token_ms(&mut self, now_ms: i64) -> i64 {
        self.refill(now_ms);
        if self.tokens >= 1.0 || self.rate <= 0.0 {
            return now_ms;
        }
        now_ms + ((1.0 - self.tokens) / self.rate * 1000.0).ceil() as i64
    }

    pub fn set_rate(&mut self, rate: f64, burst: f64, now_ms: i64) {
        self.refill(now_ms);
        self.rate = rate.max(0.0);
        self.burst = burst.max(1.0);
        self.tokens = self.tokens.min(self.burst);
    }
}

/// The trunk's limits for the whole node.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeLimits {
    pub max_concurrent: u32,
    pub max_cps: f64,
}

/// Why a campaign may not start a call now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// The node holds `max_concurrent` calls.
    NodeConcurrency,
    /// The node's calls-per-second budget is spent until the given time.
    NodeRate { until_ms: i64 },
    /// The campaign's own `calls_per_second` budget is spent until the given time.
    CampaignRate { until_ms: i64 },
}

#[derive(Clone, Debug)]
struct CampaignPace {
    bucket: TokenBucket,
    in_flight: u32,
    /// `calls_per_second` as asked; the bucket runs at this times the budget's factor.
    base_rate: f64,
    factor: f64,
    /// `None`: no abandonment budget (nothing dials a person, e.g. SMS).
    max_abandon_rate: Option<f64>,
    budget: AbandonBudget,
}

/// How long a campaign paused by its abandonment budget waits before asking again.
const BUDGET_RECHECK_MS: i64 = 60_000;

/// Per-campaign and per-node pacing with a rotating order, so a big campaign cannot starve a
/// small one: each round visits every campaign once before any campaign gets a second call.
#[derive(Clone, Debug)]
pub struct Pacing {
    limits: NodeLimits,
    node: TokenBucket,
    campaigns: BTreeMap<String, CampaignPace>,
    in_flight: u32,
    /// The campaign after which the next round starts.
    cursor: Option<String>,
}

impl Pacing {
    pub fn new(limits: NodeLimits, now_ms: i64) -> Pacing {
        Pacing {
            limits,
            node: TokenBucket::new(limits.max_cps, limits.max_cps.max(1.0), now_ms),
            campaigns: BTreeMap::new(),
            in_flight: 0,
            cursor: None,
        }
    }

    /// Adds or updates a campaign with its `calls_per_second`. A bucket holds one second of
    /// calls, so a campaign that waited does not make up for lost time in one burst larger
    /// than its rate.
    pub fn upsert_campaign(&mut self, id: &str, calls_per_second: f64, now_ms: i64) {
        match self.campaigns.get_mut(id) {
            Some(c) => {
                c.base_rate = calls_per_second;
                let rate = calls_per_second * c.factor;
                c.bucket.set_rate(rate, calls_per_second, now_ms);
            }
            None => {
                self.campaigns.insert(
                    id.to_string(),
                    CampaignPace {
                        bucket: TokenBucket::new(calls_per_second, calls_per_second, now_ms),
                        in_flight: 0,
                        base_rate: calls_per_second,
                        factor: 1.0,
                        max_abandon_rate: None,
                        budget: AbandonBudget::default(),
                    },
                );
            }
        }
    }

    /// Sets a campaign's abandonment limit (`max_abandon_rate`, a fraction); `None` removes
    /// the budget.
    pub fn set_max_abandon_rate(&mut self, id: &str, max_rate: Option<f64>) {
        if let Some(c) = self.campaigns.get_mut(id) {
            c.max_abandon_rate = max_rate;
        }
    }

    /// A call of `campaign` a person answered at `at_ms`, abandoned or not (see
    /// [`super::abandon::is_abandoned`]).
    pub fn record_live_answer(&mut self, campaign: &str, at_ms: i64, abandoned: bool) {
        if let Some(c) = self.campaigns.get_mut(campaign) {
            c.budget.record(at_ms, abandoned);
        }
    }

    /// The campaign's abandonment budget now (`None` without one).
    pub fn abandonment(&mut self, campaign: &str, now_ms: i64) -> Option<BudgetPace> {
        let c = self.campaigns.get_mut(campaign)?;
        let max = c.max_abandon_rate?;
        Some(c.budget.pace(now_ms, max))
    }

    /// Forgets a campaign that is no longer dialling (its calls in flight still end through
    /// [`Pacing::call_ended`]).
    pub fn remove_campaign(&mut self, id: &str) {
        if let Some(c) = self.campaigns.get(id)
            && c.in_flight == 0
        {
            self.campaigns.remove(id);
        }
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    pub fn campaign_in_flight(&self, id: &str) -> u32 {
        self.campaigns.get(id).map_or(0, |c| c.in_flight)
    }

    /// The campaigns in this round's order: the one after the cursor first.
    pub fn round_order(&self) -> Vec<String> {
        let ids: Vec<&String> = self.campaigns.keys().collect();
        let start = match &self.cursor {
            Some(c) => ids.iter().position(|id| *id > c).unwrap_or(0),
            None => 0,
        };
        ids[start..]
            .iter()
            .chain(ids[..start].iter())
            .map(|s| (*s).clone())
            .collect()
    }

    /// Asks to start one call for `campaign` now; on success the call counts as in flight
    /// and the cursor moves past this campaign.
    pub fn try_start(&mut self, campaign: &str, now_ms: i64) -> Result<(), Hold> {
        if self.in_flight >= self.limits.max_concurrent {
            return Err(Hold::NodeConcurrency);
        }
        if !self.node.available(now_ms) {
            return Err(Hold::NodeRate {
                until_ms: self.node.next_token_ms(now_ms),
            });
        }
        let Some(c) = self.campaigns.get_mut(campaign) else {
            return Err(Hold::CampaignRate { until_ms: i64::MAX });
        };
        // The abandonment budget slows the campaign's bucket, or holds it while one more
        // abandoned call would pass the limit.
        if let Some(max) = c.max_abandon_rate {
            let pace = c.budget.pace(now_ms, max);
            if pace.state == BudgetState::Paused {
                return Err(Hold::CampaignRate {
                    until_ms: now_ms + BUDGET_RECHECK_MS,
                });
            }
            if (pace.factor - c.factor).abs() > 1e-9 {
                c.factor = pace.factor;
                c.bucket
                    .set_rate(c.base_rate * c.factor, c.base_rate.max(1.0), now_ms);
            }
        }
        if !c.bucket.take(now_ms) {
            return Err(Hold::CampaignRate {
                until_ms: c.bucket.next_token_ms(now_ms),
            });
        }
        self.node.take(now_ms);
        c.in_flight += 1;
        self.in_flight += 1;
        self.cursor = Some(campaign.to_string());
        Ok(())
    }

    /// Undoes [`Pacing::try_start`] for a call that was not placed after all (window closed,
    /// no caller ID): the tokens return so another prospect can use them.
    pub fn cancel_start(&mut self, campaign: &str) {
        if let Some(c) = self.campaigns.get_mut(campaign) {
            c.bucket.give_back();
            c.in_flight = c.in_flight.saturating_sub(1);
        }
        self.node.give_back();
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// A placed call ended (any outcome).
    pub fn call_ended(&mut self, campaign: &str) {
        if let Some(c) = self.campaigns.get_mut(campaign) {
            c.in_flight = c.in_flight.saturating_sub(1);
        }
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// The earliest time any campaign could start a call (for the runtime's sleep).
    pub fn next_wake_ms(&mut self, now_ms: i64) -> i64 {
        let node = self.node.next_token_ms(now_ms);
        let campaign = self
            .campaigns
            .values_mut()
            .map(|c| c.bucket.next_token_ms(now_ms))
            .min()
            .unwrap_or(now_ms + 1000);
        node.max(campaign)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_concurrent: u32, max_cps: f64) -> NodeLimits {
        NodeLimits {
            max_concurrent,
            max_cps,
        }
    }

    /// Starts as many calls as allowed every 10 ms of virtual time and ends each call after
    /// `hold_ms`; returns the start times per campaign.
    fn simulate(
        p: &mut Pacing,
        campaigns: &[&str],
        until_ms: i64,
        hold_ms: i64,
    ) -> BTreeMap<String, Vec<i64>> {
        let mut starts: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        let mut live: Vec<(i64, String)> = Vec::new();
        let mut now = 0;
        while now < until_ms {
            live.retain(|(end, c)| {
                if *end <= now {
                    p.call_ended(c);
                    false
                } else {
                    true
                }
            });
            loop {
                let mut started = false;
                for c in p.round_order() {
                    if !campaigns.contains(&c.as_str()) {
                        continue;
                    }
                    if p.try_start(&c, now).is_ok() {
                        starts.entry(c.clone()).or_default().push(now);
                        live.push((now + hold_ms, c));
                        started = true;
                    }
                }
                if !started {
                    break;
                }
            }
            now += 10;
        }
        starts
    }

    #[test]
    fn campaign_rate_is_held() {
        let mut p = Pacing::new(limits(1000, 100.0), 0);
        p.upsert_campaign("a", 5.0, 0);
        let s = simulate(&mut p, &["a"], 10_000, 100);
        let n = s["a"].len();
        // 1 at once, then 5 per second for 10 s.
        assert!((50..=51).contains(&n), "{n} calls in 10 s at 5 cps");
        // Never more than 5 in any one-second window after the start.
        for w in s["a"].windows(6) {
            assert!(w[5] - w[0] >= 1000 - 10, "{w:?}");
        }
    }

    #[test]
    fn node_rate_caps_the_sum_and_shares_fairly() {
        let mut p = Pacing::new(limits(1000, 10.0), 0);
        p.upsert_campaign("a", 10.0, 0);
        p.upsert_campaign("b", 10.0, 0);
        let s = simulate(&mut p, &["a", "b"], 10_000, 100);
        let (a, b) = (s["a"].len() as i64, s["b"].len() as i64);
        assert!((a + b - 100).abs() <= 2, "{a}+{b} at a 10 cps node");
        assert!((a - b).abs() <= 1, "unfair: {a} vs {b}");
    }

    #[test]
    fn node_concurrency_is_a_ceiling() {
        let mut p = Pacing::new(limits(3, 100.0), 0);
        p.upsert_campaign("a", 50.0, 0);
        for _ in 0..3 {
            assert!(p.try_start("a", 0).is_ok() || p.try_start("a", 100).is_ok());
        }
        assert_eq!(p.in_flight(), 3);
        assert_eq!(p.try_start("a", 5_000), Err(Hold::NodeConcurrency));
        p.call_ended("a");
        assert_eq!(p.try_start("a", 5_000), Ok(()));
    }

    #[test]
    fn slow_campaign_is_not_starved_by_a_fast_one() {
        let mut p = Pacing::new(limits(1000, 6.0), 0);
        p.upsert_campaign("big", 100.0, 0);
        p.upsert_campaign("small", 1.0, 0);
        let s = simulate(&mut p, &["big", "small"], 10_000, 100);
        assert!(s["small"].len() >= 10, "small got {}", s["small"].len());
    }

    #[test]
    fn a_cancelled_start_returns_its_tokens() {
        let mut p = Pacing::new(limits(10, 1.0), 0);
        p.upsert_campaign("a", 1.0, 0);
        assert_eq!(p.try_start("a", 0), Ok(()));
        p.cancel_start("a");
        assert_eq!(p.in_flight(), 0);
        assert_eq!(p.try_start("a", 0), Ok(()));
        assert!(matches!(
            p.try_start("a", 0),
            Err(Hold::NodeRate { .. } | Hold::CampaignRate { .. })
        ));
    }

    #[test]
    fn next_token_time() {
        let mut b = TokenBucket::new(4.0, 4.0, 0);
        assert!(b.take(0));
        assert!(!b.take(0));
        assert_eq!(b.next_token_ms(0), 250);
        assert!(b.take(250));
        // A long idle period refills to the burst, not beyond.
        for _ in 0..4 {
            assert!(b.take(60_000));
        }
        assert!(!b.take(60_000));
    }
}
