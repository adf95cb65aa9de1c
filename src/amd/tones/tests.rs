//! Unit tests of the tone tracker: beeps, sequences, SIT, fax and the tones it rejects.

use super::super::features::HopAnalyzer;
use super::*;

fn ctx() -> ToneContext {
    ToneContext {
        floor_db: -70.0,
        speech_peak_db: f32::NEG_INFINITY,
        greeting_speech_ms: 0,
        silence_ms: 500,
        after_machine: true,
    }
}

/// Pieces of (frequencies, ms); empty frequencies = silence. Returns all verdicts with
/// the sample they were produced at.
fn run(pieces: &[(&[f32], u32)]) -> Vec<(ToneVerdict, u64)> {
    run_in(pieces, &ctx())
}

fn run_in(pieces: &[(&[f32], u32)], ctx: &ToneContext) -> Vec<(ToneVerdict, u64)> {
    let mut pcm = Vec::new();
    for (freqs, ms) in pieces {
        let n = (*ms as usize) * 8;
        for _ in 0..n {
            let t = pcm.len() as f32 / 8000.0;
            let s: f32 = freqs
                .iter()
                .map(|f| (2.0 * std::f32::consts::PI * f * t).sin())
                .sum::<f32>();
            let v = if freqs.is_empty() {
                0.0
            } else {
                s / freqs.len() as f32
            };
            pcm.push((v * 0.1 * 32767.0) as i16);
        }
    }
    pcm.extend(std::iter::repeat_n(0i16, 4000));
    let mut analyzer = HopAnalyzer::new();
    let mut tracker = ToneTracker::new(&AmdConfig::default());
    let mut out = Vec::new();
    for (i, hop) in pcm.chunks_exact(HOP).enumerate() {
        let f = analyzer.push(hop);
        if let Some(v) = tracker.push(&f, ctx) {
            out.push((v, ((i + 1) * HOP) as u64));
        }
    }
    out
}

fn only_candidate(v: &[(ToneVerdict, u64)]) -> (BeepCandidate, u64) {
    assert_eq!(v.len(), 1, "{v:?}");
    match v[0] {
        (ToneVerdict::Candidate(c), at) => (c, at),
        other => panic!("{other:?}"),
    }
}

#[test]
fn single_beep_is_timed_to_a_hop() {
    let v = run(&[(&[], 500), (&[1000.0], 300), (&[], 500)]);
    let (c, at) = only_candidate(&v);
    assert!(
        (c.start_sample as i64 - 4000).abs() <= 160,
        "start {}",
        c.start_sample
    );
    assert!(
        (c.end_sample as i64 - 6400).abs() <= 160,
        "end {}",
        c.end_sample
    );
    assert!(
        at - c.end_sample <= 800,
        "reported {} samples late",
        at - c.end_sample
    );
    assert!((c.main().f1 - 1000.0).abs() < 10.0);
}

#[test]
fn two_tone_sequence_is_one_beep() {
    let v = run(&[(&[], 500), (&[800.0], 150), (&[1200.0], 150), (&[], 500)]);
    let (c, _) = only_candidate(&v);
    assert_eq!(c.count, 2);
    assert!(
        (c.end_sample as i64 - 6400).abs() <= 160,
        "end {}",
        c.end_sample
    );
}

#[test]
fn dual_tone_beep_is_a_candidate() {
    let v = run(&[(&[], 500), (&[1400.0, 1800.0], 250), (&[], 500)]);
    let (c, _) = only_candidate(&v);
    assert!(c.segments()[0].dual);
}

#[test]
fn ringback_busy_and_dtmf_are_rejected() {
    for (freqs, reason) in [
        (&[440.0, 480.0][..], RejectReason::Ringback),
        (&[480.0, 620.0][..], RejectReason::Busy),
        (&[770.0, 1336.0][..], RejectReason::Dtmf),
    ] {
        let v = run(&[(&[], 300), (freqs, 400), (&[], 300)]);
        assert_eq!(v.len(), 1, "{freqs:?}: {v:?}");
        assert_eq!(v[0].0, ToneVerdict::Rejected(reason), "{freqs:?}");
    }
}

#[test]
fn sit_is_recognised() {
    let v = run(&[
        (&[], 200),
        (&[913.8], 274),
        (&[1370.6], 274),
        (&[1776.7], 380),
        (&[], 500),
    ]);
    assert!(matches!(v[0].0, ToneVerdict::Sit { .. }), "{v:?}");
}

#[test]
fn sit_split_by_a_dropout_is_still_sit() {
    let v = run(&[
        (&[], 200),
        (&[985.2], 180),
        (&[], 20),
        (&[985.2], 180),
        (&[1428.5], 380),
        (&[1776.7], 380),
        (&[], 500),
    ]);
    assert!(matches!(v[0].0, ToneVerdict::Sit { .. }), "{v:?}");
}

#[test]
fn fax_tones_are_recognised_when_nothing_spoke_first() {
    let silent = ToneContext {
        after_machine: false,
        ..ctx()
    };
    let v = run_in(&[(&[], 200), (&[1100.0], 500), (&[], 1000)], &silent);
    assert!(matches!(v[0].0, ToneVerdict::Fax { .. }), "{v:?}");
    let v = run_in(&[(&[], 200), (&[2100.0], 3000), (&[], 500)], &silent);
    assert!(matches!(v[0].0, ToneVerdict::Fax { .. }), "{v:?}");
    // After a spoken greeting the same tones are beeps.
    let greeted = ToneContext {
        greeting_speech_ms: 2400,
        ..silent
    };
    let v = run_in(&[(&[], 200), (&[1100.0], 500), (&[], 1000)], &greeted);
    assert!(matches!(v[0].0, ToneVerdict::Candidate(_)), "{v:?}");
    let v = run_in(&[(&[], 200), (&[2100.0], 1500), (&[], 500)], &greeted);
    assert!(matches!(v[0].0, ToneVerdict::Candidate(_)), "{v:?}");
}

#[test]
fn blips_are_too_short() {
    let v = run(&[(&[], 300), (&[900.0], 50), (&[], 500)]);
    assert!(
        v.is_empty() || v[0].0 == ToneVerdict::Rejected(RejectReason::TooShort),
        "{v:?}"
    );
}
