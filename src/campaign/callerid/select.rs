//! Choosing the caller ID of one call: eligibility (health band, cooling, hourly and daily
//! caps), local-presence tiers, then the campaign's selection strategy within the best tier.

use std::collections::{HashMap, VecDeque};

use rand::Rng;

use super::health::{HealthBand, classify};
use super::npa::{area_code, region_of};
use super::{CallerIdConfig, CallerIdStrategy, SelectionKind};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// What the selector needs to know about one of the campaign's DIDs at `now_ms`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DidView<'a> {
    /// E.164 number.
    pub number: &'a str,
    /// Health score 0..=1 (the store's 0-100 divided by 100).
    pub score: f64,
    /// Out of rotation whatever its score (the store's `burned`, an external quarantine).
    pub pulled: bool,
    /// Resting until then (Unix ms); a past time means the rest is over.
    pub cooling_until_ms: Option<i64>,
    /// When the DID last presented a call, for least-recently-used ordering.
    pub last_used_at_ms: Option<i64>,
    /// Start times (Unix ms) of calls placed from this DID, at least all of the last 24 h, in
    /// any order; older ones are ignored. The caps count these.
    pub recent_calls_ms: &'a [i64],
}

/// How the chosen DID relates to the prospect's number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// Same NANP area code.
    AreaCode,
    /// Same US state / Canadian province (another area code).
    Region,
    /// Neither (or the prospect's region is unknown).
    Any,
}

/// Which cap a DID reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapKind {
    Hour,
    Day,
}

/// The chosen DID reaches a cap with this call: the runtime records `cooling` until `until_ms`
/// (the store's `state = cooling`, `cooling_until_ms`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartCooling {
    pub number: String,
    pub until_ms: i64,
    pub cap: CapKind,
}

/// The caller ID for one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerIdChoice {
    /// Index of the DID in the slice passed to [`CallerIdSelector::select`].
    pub index: usize,
    pub number: String,
    pub tier: Tier,
    /// The sticky strategy reused the prospect's previous DID.
    pub sticky_reused: bool,
    /// Set when this call uses up the DID's hourly or daily allowance.
    pub start_cooling: Option<StartCooling>,
}

/// Why no caller ID can be presented now.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoCallerId {
    #[error("the campaign has no caller IDs")]
    NoDids,
    #[error("every caller ID is pulled from rotation")]
    AllPulled,
    /// Every DID not pulled is cooling or at a cap; the first is usable again at this time.
    #[error("every usable caller ID is cooling or at its call cap until {available_at_ms} ms")]
    AllResting { available_at_ms: i64 },
}

/// Whether a DID can present a call at `now_ms`, and if not, until when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Availability {
    Available,
    /// Cooling, or at its hourly/daily cap, until then.
    RestingUntil(i64),
    Pulled,
}

/// Picks caller IDs for one campaign (or one SMS sender pool). Holds the little state the
/// strategies need: the round-robin position, when it picked each DID (so several picks between
/// two store writes still spread), and the sticky prospect -> DID map (at most
/// `sticky_capacity` prospects, oldest forgotten first).
///
/// Per call: DIDs that are pulled (flag or health band), cooling at `now_ms`, or at a cap are
/// not eligible. The hourly cap is `max_calls_per_hour`, scaled by `reduced_rate_factor` (at
/// least 1) for a DID in the reduced band; the daily cap is `max_calls_per_day`; both count
/// `recent_calls_ms` over a rolling hour / 24 h. With `local_presence`, the eligible DIDs in the
/// prospect's area code are the candidates, else those in its state/province, else all. Then:
/// - `round_robin`: the first candidate after the last round-robin pick in `dids` order
///   (wrapping), so the list cycles in order and ineligible DIDs are skipped;
/// - `random`: uniform among the candidates, drawn from the caller's rng;
/// - `health_score`: the candidates of the best band (healthy before reduced), the least
///   recently used of them (never used first), ties to the higher score, then list order.
///   Best-first rather than score-weighted random, so a reduced DID carries calls only when no
///   healthy one can, and least-recently-used spreads calls over equally healthy DIDs instead of
///   bursting on one;
/// - `sticky`: the prospect's previous DID if it is still eligible (whatever its tier), else a
///   round-robin pick, remembered for the next attempt.
///
/// A pick that brings the DID to a cap starts its rest: [`StartCooling`] until
/// `max(now + cooling_rest_s, when the rolling windows fall back under the caps)`.
#[derive(Debug)]
pub struct CallerIdSelector {
    cfg: CallerIdConfig,
    last_round_robin: Option<String>,
    picked_at_ms: HashMap<String, i64>,
    sticky: HashMap<u64, u64>,
    sticky_order: VecDeque<u64>,
}

impl CallerIdSelector {
    pub fn new(cfg: CallerIdConfig) -> CallerIdSelector {
        CallerIdSelector {
            cfg,
            last_round_robin: None,
            picked_at_ms: HashMap::new(),
            sticky: HashMap::new(),
            sticky_order: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &CallerIdConfig {
        &self.cfg
    }

    /// Chooses the caller ID for a call to `prospect_phone` at `now_ms`. `rng` is drawn from
    /// only by the `random` strategy; the result is deterministic given it.
    pub fn select<R: Rng + ?Sized>(
        &mut self,
        strategy: CallerIdStrategy,
        dids: &[DidView<'_>],
        prospect_phone: &str,
        now_ms: i64,
        rng: &mut R,
    ) -> Result<CallerIdChoice, NoCallerId> {
        if dids.is_empty() {
            return Err(NoCallerId::NoDids);
        }
        let mut eligible: Vec<usize> = Vec::with_capacity(dids.len());
        let mut earliest_rest_end: Option<i64> = None;
        for (i, did) in dids.iter().enumerate() {
            match self.availability(did, now_ms) {
                Availability::Available => eligible.push(i),
                Availability::RestingUntil(t) => {
                    earliest_rest_end = Some(earliest_rest_end.map_or(t, |e| e.min(t)));
                }
                Availability::Pulled => {}
            }
        }
        if eligible.is_empty() {
            return Err(match earliest_rest_end {
                Some(available_at_ms) => NoCallerId::AllResting { available_at_ms },
                None => NoCallerId::AllPulled,
            });
        }

        let prospect_key = digits_key(prospect_phone);
        if strategy.selection == SelectionKind::Sticky
            && let Some(previous) = prospect_key.and_then(|k| self.sticky.get(&k))
            && let Some(&i) = eligible
                .iter()
                .find(|&&i| digits_key(dids[i].number) == Some(*previous))
        {
            return Ok(self.finish(dids, i, prospect_phone, now_ms, true));
        }

        let candidates = if strategy.local_presence {
            best_tier(dids, &eligible, prospect_phone)
        } else {
            eligible
        };
        let chosen = match strategy.selection {
            SelectionKind::RoundRobin | SelectionKind::Sticky => {
                self.round_robin(dids, &candidates)
            }
            SelectionKind::Random => candidates[rng.random_range(0..candidates.len())],
            SelectionKind::HealthScore => self.healthiest_least_used(dids, &candidates),
        };
        if strategy.selection == SelectionKind::Sticky
            && let (Some(prospect), Some(did)) = (prospect_key, digits_key(dids[chosen].number))
        {
            self.remember(prospect, did);
        }
        Ok(self.finish(dids, chosen, prospect_phone, now_ms, false))
    }

    /// Seeds the sticky map (e.g. from the last attempt's caller ID after a restart).
    pub fn remember_sticky(&mut self, prospect_phone: &str, did_number: &str) {
        if let (Some(p), Some(d)) = (digits_key(prospect_phone), digits_key(did_number)) {
            self.remember(p, d);
        }
    }

    /// The DID's band-aware availability at `now_ms` (also what `GET /dids` can show).
    pub fn availability(&self, did: &DidView<'_>, now_ms: i64) -> Availability {
        let band = self.band(did);
        if band == HealthBand::Pulled {
            return Availability::Pulled;
        }
        let mut until = now_ms;
        if let Some(c) = did.cooling_until_ms {
            until = until.max(c);
        }
        let hour_cap = self.hour_cap(band);
        let day_cap = self.cfg.max_calls_per_day;
        for t in [
            under_cap_at(did.recent_calls_ms, None, now_ms, HOUR_MS, hour_cap),
            under_cap_at(did.recent_calls_ms, None, now_ms, DAY_MS, day_cap),
        ]
        .into_iter()
        .flatten()
        {
            until = until.max(t);
        }
        if until > now_ms {
            Availability::RestingUntil(until)
        } else {
            Availability::Available
        }
    }

    fn band(&self, did: &DidView<'_>) -> HealthBand {
        if did.pulled {
            HealthBand::Pulled
        } else {
            classify(did.score, &self.cfg)
        }
    }

    fn hour_cap(&self, band: HealthBand) -> u32 {
        let cap = self.cfg.max_calls_per_hour;
        if band == HealthBand::Reduced {
            // Truncation is intended: a reduced DID never gets more than its share.
            ((f64::from(cap) * self.cfg.reduced_rate_factor) as u32).max(1)
        } else {
            cap
        }
    }

    fn round_robin(&mut self, dids: &[DidView<'_>], candidates: &[usize]) -> usize {
        let after = self
            .last_round_robin
            .as_deref()
            .and_then(|last| dids.iter().position(|d| d.number == last));
        let chosen = after
            .and_then(|p| candidates.iter().copied().find(|&i| i > p))
            .unwrap_or(candidates[0]);
        self.last_round_robin = Some(dids[chosen].number.to_string());
        chosen
    }

    fn healthiest_least_used(&self, dids: &[DidView<'_>], candidates: &[usize]) -> usize {
        let last_used = |i: usize| {
            let own = self.picked_at_ms.get(dids[i].number).copied();
            dids[i].last_used_at_ms.max(own).unwrap_or(i64::MIN)
        };
        candidates
            .iter()
            .copied()
            .min_by(|&a, &b| {
                self.band(&dids[a])
                    .cmp(&self.band(&dids[b]))
                    .then(last_used(a).cmp(&last_used(b)))
                    .then(dids[b].score.total_cmp(&dids[a].score))
                    .then(a.cmp(&b))
            })
            .unwrap_or(candidates[0])
    }

    fn finish(
        &mut self,
        dids: &[DidView<'_>],
        index: usize,
        prospect_phone: &str,
        now_ms: i64,
        sticky_reused: bool,
    ) -> CallerIdChoice {
        let did = &dids[index];
        if self.picked_at_ms.len() > 2 * dids.len() + 64 {
            self.picked_at_ms
                .retain(|n, _| dids.iter().any(|d| d.number == n.as_str()));
        }
        self.picked_at_ms.insert(did.number.to_string(), now_ms);
        CallerIdChoice {
            index,
            number: did.number.to_string(),
            tier: tier_of(did.number, prospect_phone),
            sticky_reused,
            start_cooling: self.cooling_after_call(did, now_ms),
        }
    }

    /// Counting the call placed now, does the DID reach a cap? Then it rests for the cooling
    /// time, and longer if the rolling windows are still full when that ends.
    fn cooling_after_call(&self, did: &DidView<'_>, now_ms: i64) -> Option<StartCooling> {
        let hour_cap = self.hour_cap(self.band(did));
        let calls = did.recent_calls_ms;
        let hour = under_cap_at(calls, Some(now_ms), now_ms, HOUR_MS, hour_cap);
        let day = under_cap_at(
            calls,
            Some(now_ms),
            now_ms,
            DAY_MS,
            self.cfg.max_calls_per_day,
        );
        let cap = match (hour, day) {
            (None, None) => return None,
            (_, Some(_)) => CapKind::Day,
            (Some(_), None) => CapKind::Hour,
        };
        let rest_ms =
            i64::try_from(self.cfg.cooling_rest_s.saturating_mul(1000)).unwrap_or(i64::MAX);
        let until_ms = [Some(now_ms.saturating_add(rest_ms)), hour, day]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(now_ms);
        Some(StartCooling {
            number: did.number.to_string(),
            until_ms,
            cap,
        })
    }

    fn remember(&mut self, prospect: u64, did: u64) {
        if self.sticky.insert(prospect, did).is_none() {
            self.sticky_order.push_back(prospect);
        }
        while self.sticky.len() > self.cfg.sticky_capacity {
            match self.sticky_order.pop_front() {
                Some(oldest) => {
                    self.sticky.remove(&oldest);
                }
                None => break,
            }
        }
    }
}

/// When the calls in the rolling `window_ms` before `now_ms` (plus `extra_call_ms`, a call
/// being placed now) fall back under `cap`; `None` if they are under it already.
fn under_cap_at(
    calls_ms: &[i64],
    extra_call_ms: Option<i64>,
    now_ms: i64,
    window_ms: i64,
    cap: u32,
) -> Option<i64> {
    if cap == 0 {
        // Only an unvalidated config has a zero cap: the DID never becomes usable.
        return Some(i64::MAX);
    }
    let start = now_ms.saturating_sub(window_ms);
    let in_window = |t: &&i64| **t > start;
    let count = calls_ms.iter().filter(in_window).count() + usize::from(extra_call_ms.is_some());
    let cap = cap as usize;
    if count < cap {
        return None;
    }
    let mut times: Vec<i64> = calls_ms.iter().filter(in_window).copied().collect();
    times.extend(extra_call_ms);
    times.sort_unstable();
    // Under the cap once count - cap + 1 of them have left the window.
    Some(times[count - cap].saturating_add(window_ms))
}

/// The eligible DIDs of the best local-presence tier that has any.
fn best_tier(dids: &[DidView<'_>], eligible: &[usize], prospect_phone: &str) -> Vec<usize> {
    for tier in [Tier::AreaCode, Tier::Region] {
        let matching: Vec<usize> = eligible
            .iter()
            .copied()
            .filter(|&i| tier_of(dids[i].number, prospect_phone) == tier)
            .collect();
        if !matching.is_empty() {
            return matching;
        }
    }
    eligible.to_vec()
}

fn tier_of(did_number: &str, prospect_phone: &str) -> Tier {
    if let Some(npa) = area_code(prospect_phone)
        && area_code(did_number) == Some(npa)
    {
        return Tier::AreaCode;
    }
    match region_of(prospect_phone) {
        Some(region) if region_of(did_number) == Some(region) => Tier::Region,
        _ => Tier::Any,
    }
}

/// An E.164 number as an integer key (at most 15 digits fit in a u64).
fn digits_key(e164: &str) -> Option<u64> {
    let digits = e164.strip_prefix('+')?;
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests;
