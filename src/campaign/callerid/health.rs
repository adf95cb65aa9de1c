//! DID health: a score in 0..=1 from a DID's most recent calls, and the band it puts the DID in.

use serde::Serialize;

use super::CallerIdConfig;

/// One call placed from a DID, as the health score sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CallRecord {
    /// When the call was placed (Unix ms); orders the records.
    pub at_ms: i64,
    /// Picked up, by a person or a machine.
    pub answered: bool,
    /// Talk time after answer, seconds (0 when not answered).
    pub duration_s: f64,
    /// A person engaged (spoke or pressed keys). Counted only on answered calls.
    pub human: bool,
    /// Rang out unanswered (busy and failed calls are neither answered nor no-answer).
    pub no_answer: bool,
    /// A spam database or carrier label flagged this call / the DID at the time of the call.
    pub spam_flagged: bool,
}

/// The five components of the score, each in 0..=1 (1 = good).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct HealthComponents {
    pub answer_rate: f64,
    pub duration: f64,
    pub human_engagement: f64,
    pub no_answer_trend: f64,
    pub spam_clean: f64,
}

/// A DID's health: the score, what it was computed from, and the components (for `GET /dids`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Health {
    /// 0..=1; the store keeps it as 0-100 (`score * 100`).
    pub score: f64,
    /// Calls in the window the components were computed from.
    pub calls: usize,
    /// Fewer than `health_min_calls` calls: `score` is 1.0 whatever the components say.
    pub provisional: bool,
    /// `None` when the DID has no calls yet.
    pub components: Option<HealthComponents>,
}

/// Where a score puts a DID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthBand {
    /// `score >= healthy_min`: normal rotation.
    Healthy,
    /// `pulled_below <= score < healthy_min`: hourly cap scaled by `reduced_rate_factor`.
    Reduced,
    /// `score < pulled_below` (or not a number): out of rotation until reviewed.
    Pulled,
}

/// The band of `score`: Healthy at or above `healthy_min`, Pulled below `pulled_below`,
/// Reduced between. A NaN score is Pulled.
pub fn classify(score: f64, cfg: &CallerIdConfig) -> HealthBand {
    if score >= cfg.healthy_min {
        HealthBand::Healthy
    } else if score >= cfg.pulled_below {
        HealthBand::Reduced
    } else {
        HealthBand::Pulled
    }
}

/// [`health`]`(records, cfg).score`.
pub fn health_score(records: &[CallRecord], cfg: &CallerIdConfig) -> f64 {
    health(records, cfg).score
}

/// Health over the most recent `cfg.health_window` of `records` (by `at_ms`; any order in).
///
/// With `n` calls in the window, `a` of them answered:
/// - **answer rate** = `min(1, (a / n) / good_answer_rate)`;
/// - **duration** = `min(1, mean duration_s of the answered calls / good_duration_s)`, 0 if
///   `a = 0` (negative or NaN durations count as 0);
/// - **human engagement** = `min(1, (answered calls with human) / a / good_human_share)`, 0 if
///   `a = 0`;
/// - **no-answer trend** = `1 - max(0, r_new - r_old)` where `r_old` is the no-answer share of
///   the older `floor(n / 2)` calls and `r_new` that of the newer `n - floor(n / 2)`: a DID
///   whose calls have started ringing out (carrier blocking, a new label) loses up to the whole
///   component; a steady or improving DID keeps it. 1 when `n < 2`;
/// - **spam clean** = `1 - (spam_flagged calls) / n`.
///
/// `score` = weighted mean of the five with the `weight_*` settings (divided by their sum),
/// clamped to 0..=1. No calls, or fewer than `health_min_calls`, score 1.0: new DIDs start
/// healthy.
pub fn health(records: &[CallRecord], cfg: &CallerIdConfig) -> Health {
    let sorted_copy;
    let records = if records.is_sorted_by_key(|r| r.at_ms) {
        records
    } else {
        let mut v = records.to_vec();
        v.sort_by_key(|r| r.at_ms);
        sorted_copy = v;
        &sorted_copy[..]
    };
    let window = &records[records.len().saturating_sub(cfg.health_window)..];
    let n = window.len();
    if n == 0 {
        return Health {
            score: 1.0,
            calls: 0,
            provisional: true,
            components: None,
        };
    }
    let c = components(window, cfg);
    let weighted = [
        (cfg.weight_answer_rate, c.answer_rate),
        (cfg.weight_duration, c.duration),
        (cfg.weight_human_engagement, c.human_engagement),
        (cfg.weight_no_answer_trend, c.no_answer_trend),
        (cfg.weight_spam_clean, c.spam_clean),
    ];
    let weight_sum: f64 = weighted.iter().map(|(w, _)| w).sum();
    let raw = if weight_sum > 0.0 {
        weighted.iter().map(|(w, x)| w * x).sum::<f64>() / weight_sum
    } else {
        1.0
    };
    let provisional = n < cfg.health_min_calls;
    Health {
        score: if provisional {
            1.0
        } else {
            raw.clamp(0.0, 1.0)
        },
        calls: n,
        provisional,
        components: Some(c),
    }
}

fn components(window: &[CallRecord], cfg: &CallerIdConfig) -> HealthComponents {
    let n = window.len() as f64;
    let answered: Vec<&CallRecord> = window.iter().filter(|r| r.answered).collect();
    let a = answered.len() as f64;
    // NaN (only from an unvalidated zero reference with a zero ratio) counts as 0.
    let capped = |ratio: f64, reference: f64| {
        let x = ratio / reference;
        if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
    };

    let answer_rate = capped(a / n, cfg.good_answer_rate);
    let (duration, human_engagement) = if answered.is_empty() {
        (0.0, 0.0)
    } else {
        let talk: f64 = answered
            .iter()
            .map(|r| {
                if r.duration_s > 0.0 {
                    r.duration_s
                } else {
                    0.0
                }
            })
            .sum();
        let humans = answered.iter().filter(|r| r.human).count() as f64;
        (
            capped(talk / a, cfg.good_duration_s),
            capped(humans / a, cfg.good_human_share),
        )
    };
    let no_answer_trend = if window.len() < 2 {
        1.0
    } else {
        let (older, newer) = window.split_at(window.len() / 2);
        let rate = |calls: &[CallRecord]| {
            calls.iter().filter(|r| r.no_answer).count() as f64 / calls.len() as f64
        };
        1.0 - (rate(newer) - rate(older)).max(0.0)
    };
    let flagged = window.iter().filter(|r| r.spam_flagged).count() as f64;
    HealthComponents {
        answer_rate,
        duration,
        human_engagement,
        no_answer_trend,
        spam_clean: 1.0 - flagged / n,
    }
}

/// The fate of one SMS sent from a DID, as the SMS health score sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmsRecord {
    /// When the message reached its final status (Unix ms); orders the records.
    pub at_ms: i64,
    pub delivered: bool,
}

/// Delivery share at which an SMS DID's delivery component is full (carriers filter DIDs that
/// look like bulk senders; a clean DID delivers nearly everything).
pub const GOOD_SMS_DELIVERY_RATE: f64 = 0.95;
/// Share of opt-outs at which an SMS DID's opt-out component is empty.
pub const MAX_SMS_OPT_OUT_SHARE: f64 = 0.10;

/// SMS health of a DID over its most recent `cfg.health_window` final messages (by `at_ms`),
/// with `opt_outs` the STOPs received from numbers this DID texted over the same span:
///
/// - **delivery** = `min(1, (delivered / n) / GOOD_SMS_DELIVERY_RATE)`;
/// - **opt-outs** = `1 - min(1, (opt_outs / n) / MAX_SMS_OPT_OUT_SHARE)`;
///
/// `score` = their product, in 0..=1: a DID whose texts stop arriving, or whose recipients
/// keep opting out, drops into the reduced and pulled bands exactly like a voice DID. Fewer
/// than `health_min_calls` messages score 1.0 (new DIDs start healthy).
pub fn sms_health_score(records: &[SmsRecord], opt_outs: usize, cfg: &CallerIdConfig) -> f64 {
    let n = records.len().min(cfg.health_window);
    if n == 0 || n < cfg.health_min_calls {
        return 1.0;
    }
    let mut recent: Vec<&SmsRecord> = records.iter().collect();
    recent.sort_by_key(|r| r.at_ms);
    let window = &recent[recent.len() - n..];
    let delivered = window.iter().filter(|r| r.delivered).count() as f64;
    let delivery = ((delivered / n as f64) / GOOD_SMS_DELIVERY_RATE).min(1.0);
    let opt_out = 1.0 - ((opt_outs as f64 / n as f64) / MAX_SMS_OPT_OUT_SHARE).min(1.0);
    (delivery * opt_out).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sms_health_follows_delivery_and_opt_outs() {
        use super::{SmsRecord, sms_health_score};
        let cfg = crate::campaign::callerid::CallerIdConfig::default();
        let records = |delivered: usize, failed: usize| -> Vec<SmsRecord> {
            (0..delivered + failed)
                .map(|i| SmsRecord {
                    at_ms: i as i64,
                    delivered: i < delivered,
                })
                .collect()
        };
        // New DIDs start healthy, whatever happened so far.
        assert_eq!(sms_health_score(&records(0, 9), 5, &cfg), 1.0);
        assert_eq!(sms_health_score(&records(40, 0), 0, &cfg), 1.0);
        // Delivery below 95 % lowers the score in proportion.
        let half = sms_health_score(&records(20, 20), 0, &cfg);
        assert!((half - 0.5 / 0.95).abs() < 1e-9, "{half}");
        // 5 % opt-outs halve it; 10 % or more empty it.
        assert!((sms_health_score(&records(40, 0), 2, &cfg) - 0.5).abs() < 1e-9);
        assert_eq!(sms_health_score(&records(40, 0), 4, &cfg), 0.0);
        // Only the newest `health_window` (50) count: old failures age out.
        let mut aged = records(0, 30);
        aged.extend((0..50).map(|i| SmsRecord {
            at_ms: 100 + i,
            delivered: true,
        }));
        assert_eq!(sms_health_score(&aged, 0, &cfg), 1.0);
    }

    use super::*;

    fn call(at_ms: i64) -> CallRecord {
        CallRecord {
            at_ms,
            answered: false,
            duration_s: 0.0,
            human: false,
            no_answer: false,
            spam_flagged: false,
        }
    }
    fn human(at_ms: i64, duration_s: f64) -> CallRecord {
        CallRecord {
            answered: true,
            human: true,
            duration_s,
            ..call(at_ms)
        }
    }
    fn machine(at_ms: i64, duration_s: f64) -> CallRecord {
        CallRecord {
            answered: true,
            duration_s,
            ..call(at_ms)
        }
    }
    fn ring_out(at_ms: i64) -> CallRecord {
        CallRecord {
            no_answer: true,
            ..call(at_ms)
        }
    }

    /// References of 1 make each component its raw ratio; no minimum call count.
    fn raw_cfg() -> CallerIdConfig {
        CallerIdConfig {
            good_answer_rate: 1.0,
            good_human_share: 1.0,
            good_duration_s: 40.0,
            health_min_calls: 0,
            ..CallerIdConfig::default()
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// Ten calls, older half then newer half:
    /// older: human 60 s, human 30 s, machine 15 s, ring-out, busy (neither) -> 1/5 no-answer
    /// newer: machine 15 s, ring-out, ring-out, ring-out (spam flagged), busy -> 3/5 no-answer
    fn ten_calls() -> Vec<CallRecord> {
        vec![
            human(1, 60.0),
            human(2, 30.0),
            machine(3, 15.0),
            ring_out(4),
            call(5),
            machine(6, 15.0),
            ring_out(7),
            ring_out(8),
            CallRecord {
                spam_flagged: true,
                ..ring_out(9)
            },
            call(10),
        ]
    }

    #[test]
    fn each_component_matches_the_hand_computation() {
        let h = health(&ten_calls(), &raw_cfg());
        let c = h.components.expect("components");
        assert_eq!(h.calls, 10);
        // 4 answered of 10.
        assert!(close(c.answer_rate, 0.4), "{c:?}");
        // (60 + 30 + 15 + 15) / 4 = 30 s; / 40 s reference = 0.75.
        assert!(close(c.duration, 0.75), "{c:?}");
        // 2 humans of 4 answered.
        assert!(close(c.human_engagement, 0.5), "{c:?}");
        // newer 3/5 - older 1/5 = 0.4 worse -> 0.6.
        assert!(close(c.no_answer_trend, 0.6), "{c:?}");
        // 1 flagged of 10.
        assert!(close(c.spam_clean, 0.9), "{c:?}");
        // 0.30*0.4 + 0.25*0.75 + 0.20*0.5 + 0.15*0.6 + 0.10*0.9 = 0.5875
        assert!(close(h.score, 0.5875), "{}", h.score);
        assert!(!h.provisional);
    }

    #[test]
    fn references_scale_and_cap_components() {
        let cfg = CallerIdConfig {
            health_min_calls: 0,
            ..CallerIdConfig::default()
        };
        let c = health(&ten_calls(), &cfg).components.expect("components");
        // 0.4 / 0.30 > 1 -> capped at 1; 30 s / 30 s = 1; 0.5 / 0.5 = 1.
        assert_eq!(
            (c.answer_rate, c.duration, c.human_engagement),
            (1.0, 1.0, 1.0)
        );
        // A 90 s average against the 30 s reference is still 1.
        let long = [human(1, 90.0)];
        assert_eq!(health(&long, &cfg).components.unwrap().duration, 1.0);
    }

    #[test]
    fn weights_shift_the_score_and_are_normalised() {
        let calls = ten_calls();
        // Only the spam weight: the score is the spam component.
        let only_spam = CallerIdConfig {
            weight_answer_rate: 0.0,
            weight_duration: 0.0,
            weight_human_engagement: 0.0,
            weight_no_answer_trend: 0.0,
            weight_spam_clean: 3.0,
            ..raw_cfg()
        };
        assert!(close(health_score(&calls, &only_spam), 0.9));
        // Answer rate and trend weighted 1:1 (sum 2): (0.4 + 0.6) / 2 = 0.5.
        let two = CallerIdConfig {
            weight_answer_rate: 1.0,
            weight_duration: 0.0,
            weight_human_engagement: 0.0,
            weight_no_answer_trend: 1.0,
            weight_spam_clean: 0.0,
            ..raw_cfg()
        };
        assert!(close(health_score(&calls, &two), 0.5));
    }

    #[test]
    fn no_answer_trend_only_penalises_getting_worse() {
        let cfg = raw_cfg();
        let trend = |calls: &[CallRecord]| health(calls, &cfg).components.unwrap().no_answer_trend;
        // Older all ring out, newer all answered: improving -> 1.
        assert_eq!(
            trend(&[ring_out(1), ring_out(2), human(3, 10.0), human(4, 10.0)]),
            1.0
        );
        // Older answered, newer ring out: fully worse -> 0.
        assert_eq!(
            trend(&[human(1, 10.0), human(2, 10.0), ring_out(3), ring_out(4)]),
            0.0
        );
        // Odd count: older = first 1, newer = last 2 (1 of 2 ring out) -> 1 - 0.5.
        assert!(close(
            trend(&[human(1, 10.0), ring_out(2), human(3, 10.0)]),
            0.5
        ));
        // One call: no trend.
        assert_eq!(trend(&[ring_out(1)]), 1.0);
    }

    #[test]
    fn no_answered_calls_zero_duration_and_engagement() {
        let c = health(&[ring_out(1), ring_out(2)], &raw_cfg())
            .components
            .unwrap();
        assert_eq!(
            (c.answer_rate, c.duration, c.human_engagement),
            (0.0, 0.0, 0.0)
        );
        // Both halves all ring-out: no trend penalty; nothing flagged.
        assert_eq!((c.no_answer_trend, c.spam_clean), (1.0, 1.0));
    }

    #[test]
    fn only_the_most_recent_window_counts_in_time_order() {
        let cfg = CallerIdConfig {
            health_window: 4,
            ..raw_cfg()
        };
        // Six old ring-outs then four answered humans; given newest first to show sorting.
        let mut calls: Vec<CallRecord> = (0..6).map(ring_out).collect();
        calls.extend((6..10).map(|t| human(t, 60.0)));
        calls.reverse();
        let h = health(&calls, &cfg);
        assert_eq!(h.calls, 4);
        assert_eq!(h.components.unwrap().answer_rate, 1.0);
        assert!(close(h.score, 1.0));
    }

    #[test]
    fn new_and_barely_used_dids_score_one() {
        let cfg = CallerIdConfig::default();
        let h = health(&[], &cfg);
        assert_eq!(
            (h.score, h.calls, h.provisional, h.components),
            (1.0, 0, true, None)
        );
        // Nine ring-outs under the 10-call minimum: still 1.0, components shown.
        let nine: Vec<_> = (0..9).map(ring_out).collect();
        let h = health(&nine, &cfg);
        assert_eq!((h.score, h.provisional), (1.0, true));
        assert_eq!(h.components.unwrap().answer_rate, 0.0);
        // The tenth makes it count: 0.15 (trend steady) + 0.10 (clean) = 0.25.
        let ten: Vec<_> = (0..10).map(ring_out).collect();
        let h = health(&ten, &cfg);
        assert!(!h.provisional);
        assert!(close(h.score, 0.25), "{}", h.score);
    }

    #[test]
    fn bands_at_the_thresholds() {
        let cfg = CallerIdConfig::default();
        assert_eq!(classify(1.0, &cfg), HealthBand::Healthy);
        assert_eq!(classify(0.8, &cfg), HealthBand::Healthy);
        assert_eq!(classify(0.8 - 1e-9, &cfg), HealthBand::Reduced);
        assert_eq!(classify(0.5, &cfg), HealthBand::Reduced);
        assert_eq!(classify(0.5 - 1e-9, &cfg), HealthBand::Pulled);
        assert_eq!(classify(0.0, &cfg), HealthBand::Pulled);
        assert_eq!(classify(f64::NAN, &cfg), HealthBand::Pulled);
        // The worked example (0.5875) is reduced.
        assert_eq!(
            classify(health_score(&ten_calls(), &raw_cfg()), &cfg),
            HealthBand::Reduced
        );
    }
}
