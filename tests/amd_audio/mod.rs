//! Synthetic 8 kHz audio for the AMD's integration tests: a sine tone and line noise. Shared by
//! the test files that build calls sample by sample (`tests/common` pulls in the peer harness,
//! which these tests do not need).

/// A sine tone of `ms` milliseconds at `amp` of full scale, phase-continuous with `pcm`.
pub fn push_tone(pcm: &mut Vec<i16>, hz: f32, ms: usize, amp: f32) {
    let start = pcm.len();
    for i in 0..ms * 8 {
        let t = (start + i) as f32 / 8000.0;
        pcm.push(((2.0 * std::f32::consts::PI * hz * t).sin() * amp * 32767.0) as i16);
    }
}

/// Line noise at about -60 dBFS rather than digital zero: a real line is never silent.
pub fn push_line_noise(pcm: &mut Vec<i16>, ms: usize) {
    let mut state = 0x2545_f491_u32.wrapping_add(pcm.len() as u32);
    for _ in 0..ms * 8 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        pcm.push((state % 65) as i16 - 32);
    }
}
