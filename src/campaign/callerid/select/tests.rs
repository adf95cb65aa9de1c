use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

const NOW: i64 = 1_750_000_000_000;
const MIN_MS: i64 = 60_000;

fn did(number: &str) -> DidView<'_> {
    DidView {
        number,
        score: 1.0,
        pulled: false,
        cooling_until_ms: None,
        last_used_at_ms: None,
        recent_calls_ms: &[],
    }
}

fn strategy(selection: SelectionKind, local_presence: bool) -> CallerIdStrategy {
    CallerIdStrategy {
        selection,
        local_presence,
    }
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

/// `n` picks for one prospect, the numbers chosen.
fn picks(
    sel: &mut CallerIdSelector,
    s: CallerIdStrategy,
    dids: &[DidView<'_>],
    prospect: &str,
    n: usize,
) -> Vec<String> {
    let mut r = rng();
    (0..n)
        .map(|k| {
            sel.select(s, dids, prospect, NOW + k as i64, &mut r)
                .expect("a caller ID")
                .number
        })
        .collect()
}

const A: &str = "+12085550001";
const B: &str = "+12085550002";
const C: &str = "+12085550003";
const D: &str = "+12085550004";
const E: &str = "+12085550005";
const PROSPECT: &str = "+13055550100";

#[test]
fn round_robin_cycles_in_list_order() {
    let dids = [did(A), did(B), did(C)];
    let mut sel = CallerIdSelector::new(CallerIdConfig::default());
    let got = picks(
        &mut sel,
        strategy(SelectionKind::RoundRobin, false),
        &dids,
        PROSPECT,
        7,
    );
    assert_eq!(got, [A, B, C, A, B, C, A]);
}

#[test]
fn round_robin_skips_pulled_cooling_and_unhealthy_dids() {
    let dids = [
        did(A),
        DidView {
            pulled: true,
            ..did(B)
        },
        DidView {
            cooling_until_ms: Some(NOW + 10 * MIN_MS),
            ..did(C)
        },
        DidView {
            score: 0.49,
            ..did(D)
        },
        did(E),
    ];
    let mut sel = CallerIdSelector::new(CallerIdConfig::default());
    let got = picks(
        &mut sel,
        strategy(SelectionKind::RoundRobin, false),
        &dids,
        PROSPECT,
        4,
    );
    assert_eq!(got, [A, E, A, E]);
}

#[test]
fn round_robin_continues_after_a_did_that_became_ineligible() {
    let mut sel = CallerIdSelector::new(CallerIdConfig::default());
    let s = strategy(SelectionKind::RoundRobin, false);
    let mut r = rng();
    let all = [did(A), did(B), did(C)];
    assert_eq!(
        sel.select(s, &all, PROSPECT, NOW, &mut r).unwrap().number,
        A
    );
    assert_eq!(
        sel.select(s, &all, PROSPECT, NOW, &mut r).unwrap().number,
        B
    );
    // B now cools: the next is still the one after B in list order.
    let b_cooling = [
        did(A),
        DidView {
            cooling_until_ms: Some(NOW + MIN_MS),
            ..did(B)
        },
        did(C),
    ];
    assert_eq!(
        sel.select(s, &b_cooling, PROSPECT, NOW, &mut r)
            .unwrap()
            .number,
        C
    );
    assert_eq!(
        sel.select(s, &b_cooling, PROSPECT, NOW, &mut r)
            .unwrap()
            .number,
        A
    );
}

#[test]
fn a_past_cooling_time_is_over() {
    let dids = [DidView {
        cooling_until_ms: Some(NOW - 1),
        ..did(A)
    }];
    let mut sel = CallerIdSelector::new(CallerIdConfig::default());
    assert_eq!(
        picks(
            &mut sel,
            strategy(SelectionKind::RoundRobin, false),
            &dids,
            PROSPECT,
            1
        ),
        [A]
    );
    let cooling = [DidView {
        cooling_until_ms: Some(NOW),
        ..did(A)
    }];
    assert_eq!(sel.availability(&cooling[0], NOW), Availability::Available);
    assert_eq!(
        sel.availability(&cooling[0], NOW - 1),
        Availability::RestingUntil(NOW)
    );
}

#[test]
fn random_is_spread_over_eligible_dids_and_repeatable_with_a_seed() {
    let dids = [
        did(A),
        did(B),
        DidView {
            pulled: true,
            ..did(C)
        },
        did(D),
        did(E),
    ];
    let s = strategy(SelectionKind::Random, false);
    let run = |seed: u64| {
        let mut sel = CallerIdSelector::new(CallerIdConfig::default());
        let mut r = StdRng::seed_from_u64(seed);
        (0..4000)
            .map(|_| sel.select(s, &dids, PROSPECT, NOW, &mut r).unwrap().index)
            .collect::<Vec<_>>()
    };
    let first = run(42);
    assert_eq!(first, run(42), "same seed, same picks");
    assert_ne!(first, run(43), "another seed, other picks");
    let mut counts = [0usize; 5];
    for i in &first {
        counts[*i] += 1;
    }
    assert_eq!(counts[2], 0, "pulled DID picked: {counts:?}");
    // Four eligible: 1000 each expected; binomial sd ~27, so +-150 is > 5 sd.
    for i in [0, 1, 3, 4] {
        assert!((850..=1150).contains(&counts[i]), "{counts:?}");
    }
}

#[test]
fn health_score_prefers_healthy_then_least_recently_used() {
    let dids = [
        DidView {
            score: 0.6, // reduced band
            last_used_at_ms: None,
            ..did(A)
        },
        DidView {
            score: 0.85,
            last_used_at_ms: Some(NOW - 5 * MIN_MS),
            ..did(B)
        },
        DidView {
            score: 0.95,
            last_used_at_ms: Some(NOW - MIN_MS),
            ..did(C)
        },
    ];
    let mut sel = CallerIdSelector::new(CallerIdConfig::default());
    let got = picks(
        &mut sel,
        strategy(SelectionKind::HealthScore, false),
        &dids,
        PROSPECT,
        4,
    );
    // B used longest ago, then C, then the selector's own picks alternate; A (reduced) never.
    assert_eq!(got, [B, C, B, C]);

    // Healthy DIDs all cooling: the reduced one carries the call.
    let only_reduced_free = [
        dids[0],
        DidView {
            cooling_until_ms: Some(NOW + MIN_MS),
            ..dids[1]
        },
        DidView {
            cooling_until_ms: Some(NOW + MIN_MS),
            ..dids[2]
        },
    ];
    let got = picks(
        &mut sel,
        strategy(SelectionKind::HealthScore, false),
        &only_reduced_free,
        PROSPECT,
        1,
    );
    assert_eq!(got, [A]);
}

#[test]
fn health_score_breaks_usage_ties_by_higher_score() {
    let dids = [
        DidView {
            score: 0.82,
            ..did(A)
        },
        DidView {
            score: 0.97,
            ..did(B)
        },
        DidView {
            score: 0.90,
            ..did(C)
        },
    ];
    let mut sel = CallerIdSelector::new(CallerIdConfig::default());
    let got = picks(
        &mut sel,
        strategy(SelectionKind::HealthScore, false),
        &dids,
        PROSPECT,
        3,
    );
    assert_eq!(got, [B, C, A]);
}

#[test]
fn sticky_keeps_the_did_per_prospect_and_falls_back_when_pulled() {
    let p1 = "+13055550101";
    let p2 = "+13055550102";
    let s = strategy(SelectionKind::Sticky, false);
    let mut sel = CallerIdSelector::new(CallerIdConfig::default());
    let mut r = rng();
    let all = [did(A), did(B), did(C)];
    let first = sel.select(s, &all, p1, NOW, &mut r).unwrap();
    assert_eq!((first.number.as_str(), first.sticky_reused), (A, false));
    assert_eq!(sel.select(s, &all, p2, NOW, &mut r).unwrap().number, B);
    for _ in 0..3 {
        let again = sel.select(s, &all, p1, NOW, &mut r).unwrap();
        assert_eq!((again.number.as_str(), again.sticky_reused), (A, true));
        assert_eq!(sel.select(s, &all, p2, NOW, &mut r).unwrap().number, B);
    }
    // A is pulled: p1 moves on by round robin (after B, the last round-robin pick) and keeps
    // the new DID even once A is back.
    let a_pulled = [
        DidView {
            pulled: true,
            ..did(A)
        },
        did(B),
        did(C),
    ];
    let moved = sel.select(s, &a_pulled, p1, NOW, &mut r).unwrap();
    assert_eq!((moved.number.as_str(), moved.sticky_reused), (C, false));
    let back = sel.select(s, &all, p1, NOW, &mut r).unwrap();
    assert_eq!((back.number.as_str(), back.sticky_reused), (C, true));
}

#[test]
fn sticky_forgets_the_oldest_prospect_beyond_capacity_and_can_be_seeded() {
    let cfg = CallerIdConfig {
        sticky_capacity: 2,
        ..CallerIdConfig::default()
    };
    let s = strategy(SelectionKind::Sticky, false);
    let dids = [did(A), did(B), did(C)];
    let mut sel = CallerIdSelector::new(cfg);
    let mut r = rng();
    let p = ["+13055550101", "+13055550102", "+13055550103"];
    for prospect in p {
        sel.select(s, &dids, prospect, NOW, &mut r).unwrap();
    }
    // p[0] (on A) was forgotten; round robin continues after C.
    let c = sel.select(s, &dids, p[0], NOW, &mut r).unwrap();
    assert_eq!((c.number.as_str(), c.sticky_reused), (A, false));
    // p[1] was pushed out by re-adding p[0]; p[2] is kept.
    assert!(
        sel.select(s, &dids, p[2], NOW, &mut r)
            .unwrap()
            .sticky_reused
    );

    let mut fresh = CallerIdSelector::new(CallerIdConfig::default());
    fresh.remember_sticky(p[0], C);
    let seeded = fresh.select(s, &dids, p[0], NOW, &mut r).unwrap();
    assert_eq!((seeded.number.as_str(), seeded.sticky_reused), (C, true));
}

// Local presence: 208 and 986 are Idaho, 212 and 718 New York, 415 California, 305 Florida.
const ID_208: &str = "+12085550001";
const ID_986: &str = "+19865550001";
const NY_212: &str = "+12125550001";
const CA_415: &str = "+14155550001";
const CA_415_B: &str = "+14155550002";

#[test]
fn local_presence_prefers_area_code_then_state_then_any() {
    let dids = [did(NY_212), did(ID_986), did(ID_208), did(CA_415)];
    let s = strategy(SelectionKind::RoundRobin, true);
    let mut sel = CallerIdSelector::new(CallerIdConfig::default());
    let mut r = rng();
    let mut pick = |dids: &[DidView<'_>], prospect: &str| {
        let c = sel.select(s, dids, prospect, NOW, &mut r).unwrap();
        (c.number, c.tier)
    };
    // Same area code.
    assert_eq!(pick(&dids, "+12085559999"), (ID_208.into(), Tier::AreaCode));
    // Another NPA of a state that has a DID: that state's DID.
    assert_eq!(pick(&dids, "+17185559999"), (NY_212.into(), Tier::Region));
    // 208 DID cooling: the other Idaho area code.
    let cooling_208 = [
        did(NY_212),
        did(ID_986),
        DidView {
            cooling_until_ms: Some(NOW + MIN_MS),
            ..did(ID_208)
        },
        did(CA_415),
    ];
    assert_eq!(
        pick(&cooling_208, "+12085559999"),
        (ID_986.into(), Tier::Region)
    );
    // Florida has no DID, nor has a UK number: any DID, by round robin after the last pick.
    let (n, t) = pick(&dids, "+13055559999");
    assert_eq!((n.as_str(), t), (ID_208, Tier::Any));
    let (n, t) = pick(&dids, "+442071838750");
    assert_eq!((n.as_str(), t), (CA_415, Tier::Any));
}

#[test]
fn strategies_choose_within_the_local_tier() {
    let dids = [did(NY_212), did(CA_415), did(ID_208), did(CA_415_B)];
    let prospect = "+14155559999";
    let mut sel = CallerIdSelector::new(CallerIdConfig::default());
    let rr = picks(
        &mut sel,
        strategy(SelectionKind::RoundRobin, true),
        &dids,
        prospect,
        4,
    );
    assert_eq!(rr, [CA_415, CA_415_B, CA_415, CA_415_B]);
    let random = picks(
        &mut sel,
        strategy(SelectionKind::Random, true),
        &dids,
        prospect,
        50,
    );
    assert!(
        random.iter().all(|n| n == CA_415 || n == CA_415_B),
        "{random:?}"
    );
    assert!(random.iter().any(|n| n == CA_415) && random.iter().any(|n| n == CA_415_B));
    // Without local presence the whole list rotates; the tier still says how it relates.
    let mut sel = CallerIdSelector::new(CallerIdConfig::default());
    let mut r = rng();
    let s = strategy(SelectionKind::RoundRobin, false);
    let c = sel.select(s, &dids, prospect, NOW, &mut r).unwrap();
    assert_eq!((c.number.as_str(), c.tier), (NY_212, Tier::Any));
    let c = sel.select(s, &dids, prospect, NOW, &mut r).unwrap();
    assert_eq!((c.number.as_str(), c.tier), (CA_415, Tier::AreaCode));
}

fn cap_cfg(per_hour: u32, per_day: u32) -> CallerIdConfig {
    CallerIdConfig {
        max_calls_per_hour: per_hour,
        max_calls_per_day: per_day,
        ..CallerIdConfig::default()
    }
}

const REST_MS: i64 = 2 * 3_600_000;

#[test]
fn reaching_the_hourly_cap_starts_the_cooling_rest() {
    let mut sel = CallerIdSelector::new(cap_cfg(3, 100));
    let s = strategy(SelectionKind::RoundRobin, false);
    let mut r = rng();
    // Two calls in the last hour (and one older, outside it): this third call reaches 3.
    let calls = [NOW - 90 * MIN_MS, NOW - 50 * MIN_MS, NOW - 10 * MIN_MS];
    let dids = [DidView {
        recent_calls_ms: &calls,
        ..did(A)
    }];
    let c = sel.select(s, &dids, PROSPECT, NOW, &mut r).unwrap();
    assert_eq!(
        c.start_cooling,
        Some(StartCooling {
            number: A.into(),
            until_ms: NOW + REST_MS,
            cap: CapKind::Hour
        })
    );
    // One call fewer: no cooling.
    let dids = [DidView {
        recent_calls_ms: &calls[..2],
        ..did(A)
    }];
    assert_eq!(
        sel.select(s, &dids, PROSPECT, NOW, &mut r)
            .unwrap()
            .start_cooling,
        None
    );
}

#[test]
fn a_did_at_its_cap_is_skipped_until_the_window_frees() {
    let mut sel = CallerIdSelector::new(cap_cfg(3, 100));
    let s = strategy(SelectionKind::RoundRobin, false);
    let full = [NOW - 50 * MIN_MS, NOW - 20 * MIN_MS, NOW - 10 * MIN_MS];
    let dids = [
        DidView {
            recent_calls_ms: &full,
            ..did(A)
        },
        did(B),
    ];
    // Not cooling (the runtime missed it) but at the cap: skipped.
    assert_eq!(picks(&mut sel, s, &dids, PROSPECT, 2), [B, B]);
    // Under the cap when the oldest of the hour leaves it, 10 minutes from now.
    assert_eq!(
        sel.availability(&dids[0], NOW),
        Availability::RestingUntil(NOW + 10 * MIN_MS)
    );
}

#[test]
fn reaching_the_daily_cap_rests_until_the_day_window_frees() {
    let mut sel = CallerIdSelector::new(cap_cfg(100, 5));
    let s = strategy(SelectionKind::RoundRobin, false);
    let mut r = rng();
    let hour_ms = 60 * MIN_MS;
    // Four calls in the last 24 h (the oldest 20 h ago) and one 25 h ago that no longer counts.
    let calls = [
        NOW - 25 * hour_ms,
        NOW - 20 * hour_ms,
        NOW - 12 * hour_ms,
        NOW - 6 * hour_ms,
        NOW - hour_ms,
    ];
    let dids = [DidView {
        recent_calls_ms: &calls,
        ..did(A)
    }];
    let c = sel.select(s, &dids, PROSPECT, NOW, &mut r).unwrap();
    // The 5th call: under the cap again when the 20 h-old call leaves the day, in 4 h > rest.
    assert_eq!(
        c.start_cooling,
        Some(StartCooling {
            number: A.into(),
            until_ms: NOW + 4 * hour_ms,
            cap: CapKind::Day
        })
    );
}

#[test]
fn a_reduced_did_runs_at_a_scaled_hourly_cap() {
    // 10/h, factor 0.5 -> 5/h in the reduced band.
    let mut sel = CallerIdSelector::new(cap_cfg(10, 100));
    let s = strategy(SelectionKind::RoundRobin, false);
    let mut r = rng();
    let four: Vec<i64> = (1..=4).map(|k| NOW - k * MIN_MS).collect();
    let reduced = [DidView {
        score: 0.7,
        recent_calls_ms: &four,
        ..did(A)
    }];
    let c = sel.select(s, &reduced, PROSPECT, NOW, &mut r).unwrap();
    assert_eq!(c.start_cooling.map(|x| x.cap), Some(CapKind::Hour));
    let healthy = [DidView {
        score: 0.8,
        recent_calls_ms: &four,
        ..did(A)
    }];
    assert_eq!(
        sel.select(s, &healthy, PROSPECT, NOW, &mut r)
            .unwrap()
            .start_cooling,
        None
    );
    // Five calls: the reduced DID is at its cap, the healthy one is not.
    let five: Vec<i64> = (1..=5).map(|k| NOW - k * MIN_MS).collect();
    let at_cap = DidView {
        score: 0.7,
        recent_calls_ms: &five,
        ..did(A)
    };
    assert!(matches!(
        sel.availability(&at_cap, NOW),
        Availability::RestingUntil(_)
    ));
    let healthy_five = DidView {
        score: 0.8,
        ..at_cap
    };
    assert_eq!(
        sel.availability(&healthy_five, NOW),
        Availability::Available
    );
}

#[test]
fn no_caller_id_says_why() {
    let mut sel = CallerIdSelector::new(cap_cfg(3, 100));
    let s = strategy(SelectionKind::RoundRobin, true);
    let mut r = rng();
    assert_eq!(
        sel.select(s, &[], PROSPECT, NOW, &mut r),
        Err(NoCallerId::NoDids)
    );

    let pulled = [
        DidView {
            pulled: true,
            ..did(A)
        },
        DidView {
            score: 0.2,
            ..did(B)
        },
    ];
    assert_eq!(
        sel.select(s, &pulled, PROSPECT, NOW, &mut r),
        Err(NoCallerId::AllPulled)
    );

    // A cools for 30 more minutes; B is at its hourly cap and frees in 15; C is pulled.
    let full = [NOW - 45 * MIN_MS, NOW - 30 * MIN_MS, NOW - 5 * MIN_MS];
    let resting = [
        DidView {
            cooling_until_ms: Some(NOW + 30 * MIN_MS),
            ..did(A)
        },
        DidView {
            recent_calls_ms: &full,
            ..did(B)
        },
        DidView {
            pulled: true,
            ..did(C)
        },
    ];
    assert_eq!(
        sel.select(s, &resting, PROSPECT, NOW, &mut r),
        Err(NoCallerId::AllResting {
            available_at_ms: NOW + 15 * MIN_MS
        })
    );
    // A cooling DID also at its cap is available only when both are over.
    let both = DidView {
        cooling_until_ms: Some(NOW + 5 * MIN_MS),
        recent_calls_ms: &full,
        ..did(A)
    };
    assert_eq!(
        sel.availability(&both, NOW),
        Availability::RestingUntil(NOW + 15 * MIN_MS)
    );
}

#[test]
fn an_unvalidated_zero_cap_rests_forever_instead_of_panicking() {
    let sel = CallerIdSelector::new(cap_cfg(0, 100));
    assert_eq!(
        sel.availability(&did(A), NOW),
        Availability::RestingUntil(i64::MAX)
    );
}
