//! Properties of the detector on arbitrary audio: it never panics, always decides by its
//! analysis limit, and emits at most the events a call can use, in order.

use proptest::prelude::*;
use trunx::amd::{AmdConfig, AmdEventKind, analyse_recording};

/// Audio made of random segments: silence, noise, tones and raw garbage at random levels.
fn segments() -> impl Strategy<Value = Vec<i16>> {
    let segment = (
        0u8..4,
        1usize..200,
        0u32..33000,
        200.0f32..3000.0,
        any::<u64>(),
    );
    prop::collection::vec(segment, 1..40).prop_map(|segs| {
        let mut pcm = Vec::new();
        for (kind, len10ms, amp, freq, seed) in segs {
            let mut state = seed | 1;
            for i in 0..len10ms * 80 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let t = i as f32 / 8000.0;
                let a = amp as f32;
                let s = match kind {
                    0 => 0.0,
                    1 => ((state >> 40) as i16 as f32) * a / 32768.0,
                    2 => (2.0 * std::f32::consts::PI * freq * t).sin() * a,
                    _ => (state >> 48) as i16 as f32,
                };
                pcm.push(s.clamp(-32768.0, 32767.0) as i16);
            }
        }
        pcm
    })
}

fn decisive(kind: &AmdEventKind) -> bool {
    !matches!(
        kind,
        AmdEventKind::MachineEndSilence | AmdEventKind::BeepTimeout
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn decides_by_the_analysis_limit_on_structured_audio(pcm in segments()) {
        let config = AmdConfig::default();
        let (events, _) = analyse_recording(&pcm, &config, None);
        prop_assert!(!events.is_empty());
        let first = &events[0];
        prop_assert!(decisive(&first.kind), "{:?}", first);
        let audio_ms = pcm.len() as u64 / 8;
        // total_analysis_ms, extended (up to max_analysis_ms) only while a late or still
        // spoken greeting is being heard.
        if audio_ms >= config.max_analysis_ms as u64 + 20 {
            prop_assert!(first.at.as_ms() <= config.max_analysis_ms as u64, "{:?}", first);
        }
        // Times never go backwards and never pass the end of the audio (+ one frame).
        let mut last = 0;
        for e in &events {
            prop_assert!(e.at.as_ms() >= last);
            prop_assert!(e.at.as_ms() <= audio_ms + 20);
            last = e.at.as_ms();
        }
        // Only machine is followed by anything.
        if events.len() > 1 {
            prop_assert_eq!(first.kind, AmdEventKind::Machine);
            prop_assert!(events.len() == 2);
        }
    }

    #[test]
    fn silence_and_noise_decide_at_the_base_limit(level in 0u32..200, seconds in 9usize..12) {
        // Steady hiss is never speech: the base window applies.
        let config = AmdConfig::default();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let pcm: Vec<i16> = (0..seconds * 8000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 48) as i16 as i32 * level as i32 / 32768) as i16
            })
            .collect();
        let (events, _) = analyse_recording(&pcm, &config, None);
        prop_assert_eq!(events[0].kind, AmdEventKind::Unknown);
        prop_assert_eq!(events[0].at.as_ms(), config.total_analysis_ms as u64);
    }

    #[test]
    fn never_panics_on_arbitrary_samples(pcm in prop::collection::vec(any::<i16>(), 0..48_000)) {
        let (events, _) = analyse_recording(&pcm, &AmdConfig::default(), None);
        // Every recording gets a verdict, even an empty one.
        prop_assert!(!events.is_empty());
    }
}
