//! An SIT that starts with the first answered sample (the announcement plays before any line
//! noise is heard) is still recognised: with nothing quieter in the noise-floor window, the
//! tone would otherwise be its own floor and never count as a tone.

mod amd_audio;

use amd_audio::{push_line_noise, push_tone};
use trunx::amd::{AmdConfig, AmdEventKind, analyse_recording};

/// SIT "SLL" (274, 380, 380 ms at 913.8 / 1370.6 / 1776.7 Hz), optionally after line noise.
fn sit_call(lead_ms: usize) -> Vec<i16> {
    let mut pcm = Vec::new();
    push_line_noise(&mut pcm, lead_ms);
    for (hz, ms) in [(913.8, 274), (1370.6, 380), (1776.7, 380)] {
        push_tone(&mut pcm, hz, ms, 0.08);
    }
    push_line_noise(&mut pcm, 3000);
    pcm
}

#[test]
fn sit_from_the_first_sample_is_recognised_like_one_after_line_noise() {
    for lead_ms in [0, 20, 500] {
        let (events, _) = analyse_recording(&sit_call(lead_ms), &AmdConfig::default(), None);
        let first = events.first().expect("an event");
        assert_eq!(
            first.kind,
            AmdEventKind::Sit,
            "lead {lead_ms} ms: {events:?}"
        );
        assert!(
            first.cause.as_str().starts_with("SIT-914HZ"),
            "{}",
            first.cause.as_str()
        );
    }
}
