//! A confirmed tone followed by speech is not a voicemail beep: after the real beep the line
//! stays quiet for the message, while a tone inside a greeting or beside a person talking (a
//! microwave, a phone chime, a concealed lost packet) is followed by more speech. The detector
//! holds a beep for `beep_sequence_wait_ms` anyway; speech in that wait drops it.

mod amd_audio;

use amd_audio::{push_line_noise, push_tone};
use trunx::amd::{AmdConfig, AmdEventKind, analyse_recording};

/// Line noise, a 300 ms 1400 Hz tone, then `after` (the audio that follows the tone), then
/// line noise.
fn tone_then(after: impl Fn(&mut Vec<i16>)) -> Vec<i16> {
    let mut pcm = Vec::new();
    push_line_noise(&mut pcm, 1000);
    push_tone(&mut pcm, 1400.0, 300, 0.2);
    after(&mut pcm);
    push_line_noise(&mut pcm, 2000);
    pcm
}

fn beep_ends(pcm: &[i16], config: &AmdConfig) -> Vec<u64> {
    let (events, _) = analyse_recording(pcm, config, None);
    events
        .iter()
        .filter_map(|e| match e.kind {
            AmdEventKind::MachineEndBeep { beep_end, .. } => Some(beep_end.as_ms()),
            _ => None,
        })
        .collect()
}

/// A sustained vowel-like buzz: a 130 Hz voice with 24 harmonics falling off as 1/k, peaking
/// at about `amp` of full scale. Peaky like speech (white noise is too flat to be speech to
/// the VAD), with no single harmonic strong enough to be a tone.
fn push_vowel(pcm: &mut Vec<i16>, ms: usize, amp: f32) {
    let start = pcm.len();
    let norm: f32 = (1..=24).map(|k| 1.0 / k as f32).sum();
    for i in 0..ms * 8 {
        let t = (start + i) as f32 / 8000.0;
        let v: f32 = (1..=24)
            .map(|k| (2.0 * std::f32::consts::PI * 130.0 * k as f32 * t).sin() / k as f32)
            .sum();
        pcm.push((v / norm * amp * 32767.0) as i16);
    }
}

fn speech_after_tone(pcm: &mut Vec<i16>) {
    push_vowel(pcm, 500, 0.3);
}

#[test]
fn speech_right_after_a_tone_drops_the_beep() {
    let pcm = tone_then(speech_after_tone);
    let found = beep_ends(&pcm, &AmdConfig::default());
    assert!(found.is_empty(), "a beep was reported: {found:?}");
}

#[test]
fn without_the_veto_the_same_tone_is_a_beep() {
    // The control: the same audio with the veto off reports the tone, so the test above
    // measures the veto and not the tone tracker.
    let pcm = tone_then(speech_after_tone);
    let config = AmdConfig {
        beep_speech_veto_ms: 0,
        ..AmdConfig::default()
    };
    let found = beep_ends(&pcm, &config);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].abs_diff(1300) <= 30, "{found:?}");
}

#[test]
fn speech_after_the_wait_keeps_the_beep() {
    // The caller's own message, or a greeting that goes on, starting after the wait does not
    // undo a beep already reported.
    let pcm = tone_then(|pcm| {
        push_line_noise(pcm, 400);
        speech_after_tone(pcm);
    });
    let found = beep_ends(&pcm, &AmdConfig::default());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].abs_diff(1300) <= 30, "{found:?}");
}
