//! Caller-ID choice and DID health: which of a campaign's registered DIDs presents the next
//! call, how healthy each DID is from its recent calls, and when a DID must rest.
//!
//! Owns: the NPA -> state table ([`region_of`], [`area_code`]), the health score
//! ([`health()`], [`health_score`], [`classify`]), per-DID hourly/daily caps with a cooling rest,
//! local-presence tiers and the `callerIdStrategy.selection` strategies ([`CallerIdSelector`]).
//! The SMS channel reuses the same selector.
//!
//! Must not: touch the store, the clock or the network. Times are Unix milliseconds passed in
//! (`now_ms`), randomness is a caller-supplied `rand::Rng`, and decisions the runtime must
//! persist (a DID starting to cool) are returned as values ([`StartCooling`]).

mod health;
mod npa;
mod select;

pub use health::{
    CallRecord, Health, HealthBand, HealthComponents, SmsRecord, classify, health, health_score,
    sms_health_score,
};
pub use npa::{area_code, region_of};
pub use select::{
    CallerIdChoice, CallerIdSelector, CapKind, DidView, NoCallerId, StartCooling, Tier,
};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How the DID is chosen among the eligible ones (`callerIdStrategy.selection`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SelectionKind {
    /// The next eligible DID after the last one used, in the campaign's `callerIds` order.
    #[default]
    RoundRobin,
    /// Uniformly at random among the eligible DIDs.
    Random,
    /// The healthiest band first, least recently used within it (see [`CallerIdSelector`]).
    HealthScore,
    /// The same DID for every attempt to one prospect while it stays eligible.
    Sticky,
}

/// A campaign's parsed `callerIdStrategy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallerIdStrategy {
    pub selection: SelectionKind,
    /// Prefer a DID in the prospect's area code, then its state/province, then any.
    pub local_presence: bool,
}

/// Reads a `callerIdStrategy` object already checked by
/// [`validate_caller_id_strategy`](super::validate_caller_id_strategy). Missing or unexpected
/// values fall back to the defaults (`round_robin`, no local presence); other keys are ignored.
pub fn strategy_from_json(v: &Value) -> CallerIdStrategy {
    let selection = match v.get("selection").and_then(Value::as_str) {
        Some("random") => SelectionKind::Random,
        Some("health_score") => SelectionKind::HealthScore,
        Some("sticky") => SelectionKind::Sticky,
        _ => SelectionKind::RoundRobin,
    };
    let local_presence = v
        .get("local_presence")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    CallerIdStrategy {
        selection,
        local_presence,
    }
}

/// Health and rate settings for caller IDs. Every figure is configurable; the defaults are
/// documented per field. Flat keys so they can sit in the TOML config as they are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallerIdConfig {
    /// Calls of a DID the health score looks at (its most recent ones). Default 50.
    pub health_window: usize,
    /// Fewer calls than this in the window score 1.0: a handful of calls says nothing, and one
    /// unanswered first call must not pull a new DID. Default 10.
    pub health_min_calls: usize,
    /// Weight of the answer-rate component. Default 0.30.
    pub weight_answer_rate: f64,
    /// Weight of the average-duration component. Default 0.25.
    pub weight_duration: f64,
    /// Weight of the human-engagement component. Default 0.20.
    pub weight_human_engagement: f64,
    /// Weight of the no-answer-trend component. Default 0.15.
    pub weight_no_answer_trend: f64,
    /// Weight of the spam-clean component. Default 0.10.
    pub weight_spam_clean: f64,
    /// Answer rate that earns the full answer-rate component. Default 0.30: outbound answer
    /// rates of a few tens of percent are ordinary, so comparing against 100 % would mark every
    /// working DID unhealthy. An assumption to tune with real traffic; 1.0 gives the raw rate.
    pub good_answer_rate: f64,
    /// Average answered-call duration (seconds) that earns the full duration component.
    /// Default 30 s: short calls are a spam-labelling signal; a person who stays 30 s engaged.
    pub good_duration_s: f64,
    /// Share of answered calls reaching a person that earns the full engagement component.
    /// Default 0.50 (the rest are voicemail); 1.0 gives the raw share.
    pub good_human_share: f64,
    /// Score at or above which a DID is healthy (normal rotation). Default 0.8.
    pub healthy_min: f64,
    /// Score below which a DID is pulled from rotation. Default 0.5.
    pub pulled_below: f64,
    /// Between the two thresholds a DID runs at this share of its hourly cap. Default 0.5.
    pub reduced_rate_factor: f64,
    /// Most calls per DID in any rolling hour. Default 30: a DID may not spend its day's
    /// allowance in one burst (bursts within minutes are a labelling signal); 30/h with the
    /// 2 h rest spreads 100 calls over a working day.
    pub max_calls_per_hour: u32,
    /// Most calls per DID in any rolling 24 h. Default 100: the public rules of thumb put the
    /// safe line at 75-100 calls per DID per day (lineshield, Arbeit; Readymode's presets are
    /// 75/100/150/200).
    pub max_calls_per_day: u32,
    /// Rest of a DID that reached a cap, in seconds. Default 7200 (2 h, Trunx's cooling).
    pub cooling_rest_s: u64,
    /// Most prospects the sticky strategy remembers per selector; the oldest are forgotten
    /// first. Default 100,000 (16 bytes each).
    pub sticky_capacity: usize,
}

impl Default for CallerIdConfig {
    fn default() -> Self {
        CallerIdConfig {
            health_window: 50,
            health_min_calls: 10,
            weight_answer_rate: 0.30,
            weight_duration: 0.25,
            weight_human_engagement: 0.20,
            weight_no_answer_trend: 0.15,
            weight_spam_clean: 0.10,
            good_answer_rate: 0.30,
            good_duration_s: 30.0,
            good_human_share: 0.50,
            healthy_min: 0.8,
            pulled_below: 0.5,
            reduced_rate_factor: 0.5,
            max_calls_per_hour: 30,
            max_calls_per_day: 100,
            cooling_rest_s: 2 * 3600,
            sticky_capacity: 100_000,
        }
    }
}

/// A setting of [`CallerIdConfig`] out of range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("caller ID setting {key}: {message}")]
pub struct CallerIdConfigError {
    pub key: &'static str,
    pub message: String,
}

impl CallerIdConfig {
    /// Checks ranges: weights finite and >= 0 with a positive sum, references > 0, thresholds
    /// `0 <= pulled_below <= healthy_min <= 1`, factor in (0, 1], caps and window >= 1,
    /// `health_min_calls <= health_window`.
    pub fn validate(&self) -> Result<(), CallerIdConfigError> {
        let err = |key, message: &str| {
            Err(CallerIdConfigError {
                key,
                message: message.into(),
            })
        };
        let weights = [
            ("weight_answer_rate", self.weight_answer_rate),
            ("weight_duration", self.weight_duration),
            ("weight_human_engagement", self.weight_human_engagement),
            ("weight_no_answer_trend", self.weight_no_answer_trend),
            ("weight_spam_clean", self.weight_spam_clean),
        ];
        for (key, w) in weights {
            if !(w.is_finite() && w >= 0.0) {
                return err(key, "must be a number >= 0");
            }
        }
        if weights.iter().map(|(_, w)| w).sum::<f64>() <= 0.0 {
            return err("weight_answer_rate", "the five weights must not all be 0");
        }
        for (key, r) in [
            ("good_answer_rate", self.good_answer_rate),
            ("good_duration_s", self.good_duration_s),
            ("good_human_share", self.good_human_share),
        ] {
            if !(r.is_finite() && r > 0.0) {
                return err(key, "must be greater than 0");
            }
        }
        if !(0.0..=1.0).contains(&self.healthy_min) {
            return err("healthy_min", "must be from 0 to 1");
        }
        if !(0.0..=self.healthy_min).contains(&self.pulled_below) {
            return err("pulled_below", "must be from 0 to healthy_min");
        }
        if !(self.reduced_rate_factor > 0.0 && self.reduced_rate_factor <= 1.0) {
            return err(
                "reduced_rate_factor",
                "must be greater than 0 and at most 1",
            );
        }
        if self.health_window == 0 {
            return err("health_window", "must be at least 1");
        }
        if self.health_min_calls > self.health_window {
            return err("health_min_calls", "must be at most health_window");
        }
        if self.max_calls_per_hour == 0 {
            return err("max_calls_per_hour", "must be at least 1");
        }
        if self.max_calls_per_day == 0 {
            return err("max_calls_per_day", "must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategy_from_json_reads_every_selection_and_defaults() {
        let cases = [
            (json!({}), SelectionKind::RoundRobin, false),
            (
                json!({"selection": "round_robin"}),
                SelectionKind::RoundRobin,
                false,
            ),
            (json!({"selection": "random"}), SelectionKind::Random, false),
            (
                json!({"selection": "health_score", "local_presence": true}),
                SelectionKind::HealthScore,
                true,
            ),
            (
                json!({"selection": "sticky", "extra": 1}),
                SelectionKind::Sticky,
                false,
            ),
            (
                json!({"local_presence": true}),
                SelectionKind::RoundRobin,
                true,
            ),
        ];
        for (v, selection, local_presence) in cases {
            assert_eq!(
                strategy_from_json(&v),
                CallerIdStrategy {
                    selection,
                    local_presence
                },
                "{v}"
            );
        }
        // Every selection the API accepts has its own variant.
        let parsed: Vec<_> = crate::campaign::mode::SELECTIONS
            .iter()
            .map(|s| strategy_from_json(&json!({ "selection": s })).selection)
            .collect();
        for (i, a) in parsed.iter().enumerate() {
            assert!(!parsed[i + 1..].contains(a), "{:?} appears twice", a);
        }
    }

    #[test]
    fn defaults_are_valid_and_match_the_issue() {
        let c = CallerIdConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.health_window, 50);
        let w = [
            c.weight_answer_rate,
            c.weight_duration,
            c.weight_human_engagement,
            c.weight_no_answer_trend,
            c.weight_spam_clean,
        ];
        assert_eq!(w, [0.30, 0.25, 0.20, 0.15, 0.10]);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!((c.healthy_min, c.pulled_below), (0.8, 0.5));
        assert_eq!(c.cooling_rest_s, 7200);
    }

    #[test]
    fn config_deserializes_partially_and_rejects_unknown_keys() {
        let c: CallerIdConfig =
            serde_json::from_value(json!({"max_calls_per_hour": 12, "healthy_min": 0.9}))
                .expect("partial config");
        assert_eq!(c.max_calls_per_hour, 12);
        assert_eq!(c.healthy_min, 0.9);
        assert_eq!(
            c.max_calls_per_day,
            CallerIdConfig::default().max_calls_per_day
        );
        assert!(serde_json::from_value::<CallerIdConfig>(json!({"max_calls_per_hr": 1})).is_err());
    }

    #[test]
    fn validate_names_the_bad_setting() {
        let bad = [
            (
                CallerIdConfig {
                    weight_duration: -0.1,
                    ..Default::default()
                },
                "weight_duration",
            ),
            (
                CallerIdConfig {
                    pulled_below: 0.9,
                    ..Default::default()
                },
                "pulled_below",
            ),
            (
                CallerIdConfig {
                    reduced_rate_factor: 0.0,
                    ..Default::default()
                },
                "reduced_rate_factor",
            ),
            (
                CallerIdConfig {
                    max_calls_per_day: 0,
                    ..Default::default()
                },
                "max_calls_per_day",
            ),
            (
                CallerIdConfig {
                    good_duration_s: 0.0,
                    ..Default::default()
                },
                "good_duration_s",
            ),
            (
                CallerIdConfig {
                    health_min_calls: 51,
                    ..Default::default()
                },
                "health_min_calls",
            ),
            (
                CallerIdConfig {
                    weight_answer_rate: 0.0,
                    weight_duration: 0.0,
                    weight_human_engagement: 0.0,
                    weight_no_answer_trend: 0.0,
                    weight_spam_clean: 0.0,
                    ..Default::default()
                },
                "weight_answer_rate",
            ),
        ];
        for (cfg, key) in bad {
            assert_eq!(cfg.validate().map_err(|e| e.key), Err(key));
        }
    }
}
