//! A multi-tone voicemail beep is reported once, at the end of its LAST tone, even when the
//! gaps between its tones are longer than the tone tracker's own group gap; a tone group that
//! starts after the wait is not part of the beep.

mod amd_audio;

use amd_audio::{push_line_noise, push_tone};
use trunx::amd::{AmdConfig, AmdEventKind, analyse_recording};

/// Silence, then three rising 120 ms tones with `gap_ms` between them, then silence.
/// Returns the audio and the end of the last tone (ms).
fn three_tone_beep(gap_ms: usize) -> (Vec<i16>, u64) {
    let mut pcm = Vec::new();
    push_line_noise(&mut pcm, 1000);
    for (k, hz) in [900.0, 1100.0, 1350.0].into_iter().enumerate() {
        if k > 0 {
            push_line_noise(&mut pcm, gap_ms);
        }
        push_tone(&mut pcm, hz, 120, 0.2);
    }
    let end_ms = (pcm.len() / 8) as u64;
    push_line_noise(&mut pcm, 1500);
    (pcm, end_ms)
}

fn beeps(pcm: &[i16], config: &AmdConfig) -> Vec<(u64, String)> {
    let (events, _) = analyse_recording(pcm, config, None);
    events
        .iter()
        .filter_map(|e| match e.kind {
            AmdEventKind::MachineEndBeep { beep_end, .. } => {
                Some((beep_end.as_ms(), e.cause.as_str().to_string()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn gaps_of_150_ms_still_end_at_the_last_tone() {
    let (pcm, end_ms) = three_tone_beep(150);
    let found = beeps(&pcm, &AmdConfig::default());
    assert_eq!(found.len(), 1, "{found:?}");
    let (at, cause) = &found[0];
    assert!(
        at.abs_diff(end_ms) <= 30,
        "beep end {at} ms, last tone ends {end_ms} ms"
    );
    assert!(cause.ends_with("-3T"), "{cause}");
}

#[test]
fn without_the_wait_the_first_tone_is_reported() {
    // The control: the same audio, no sequence wait, reports the first tone alone, so the test
    // above measures the wait and not the tracker's grouping.
    let (pcm, end_ms) = three_tone_beep(150);
    let config = AmdConfig {
        beep_sequence_wait_ms: 0,
        ..AmdConfig::default()
    };
    let found = beeps(&pcm, &config);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].0 + 200 < end_ms, "{found:?} vs {end_ms}");
}

#[test]
fn a_tone_after_the_wait_is_not_part_of_the_beep() {
    let (pcm, end_ms) = three_tone_beep(600);
    let found = beeps(&pcm, &AmdConfig::default());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].0 + 500 < end_ms, "{found:?} vs {end_ms}");
    assert!(found[0].1.ends_with("-1T"), "{found:?}");
}

#[test]
fn a_beep_after_digital_silence_is_heard() {
    // A voicemail server that sends exact zeros before its beep: the first sound must not
    // become the noise floor.
    let mut pcm = vec![0i16; 8000];
    push_tone(&mut pcm, 1000.0, 300, 0.2);
    let end_ms = (pcm.len() / 8) as u64;
    pcm.extend(std::iter::repeat_n(0i16, 8000));
    let found = beeps(&pcm, &AmdConfig::default());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].0.abs_diff(end_ms) <= 30, "{found:?} vs {end_ms}");
}
