//! Speech/silence per 10 ms hop against an adaptive noise floor.
//!
//! The floor is the minimum hop level over a sliding window (minimum statistics), so comfort
//! noise, line hiss and level changes set their own threshold; once speech has been heard, a
//! relative gate keeps background TV or babble well below the talker from reading as speech.
//! Owns only these two estimates; decisions about greetings live in `decision`.

use super::config::{AmdConfig, hops};
use super::features::HopFeatures;

const MAX_FLOOR_HOPS: usize = 400;
/// Below this a hop is digital silence, not line noise.
const DIGITAL_SILENCE_DB: f32 = -85.0;

/// The floor assumed while a call has only sent digital silence: a quiet G.711 line.
const QUIET_LINE_DB: f32 = -70.0;

pub struct Vad {
    levels: [f32; MAX_FLOOR_HOPS],
    window: usize,
    filled: usize,
    pos: usize,
    in_speech: bool,
    background: bool,
    speech_peak_db: f32,
    floor_db: f32,
    margin_db: f32,
    hold_margin_db: f32,
    min_dbfs: f32,
    relative_gate_db: f32,
    max_flatness: f32,
}

impl Vad {
    pub fn new(config: &AmdConfig) -> Self {
        Vad {
            levels: [0.0; MAX_FLOOR_HOPS],
            window: (hops(config.floor_window_ms) as usize).clamp(10, MAX_FLOOR_HOPS),
            filled: 0,
            pos: 0,
            in_speech: false,
            background: false,
            speech_peak_db: f32::NEG_INFINITY,
            floor_db: -90.0,
            margin_db: config.speech_margin_db,
            hold_margin_db: config.speech_hold_margin_db,
            min_dbfs: config.min_speech_dbfs,
            relative_gate_db: config.relative_gate_db,
            max_flatness: config.max_speech_flatness,
        }
    }

    pub fn floor_db(&self) -> f32 {
        self.floor_db
    }

    /// The floor a tone must clear. Until the window has filled, a call that opened with a
    /// tone (an SIT or a beep from the first sample) has only that tone in its window, which
    /// would make the tone its own floor: while that floor is louder than any speech floor
    /// (`min_speech_dbfs`), the quiet line's level stands in.
    pub fn tone_floor_db(&self) -> f32 {
        if self.filled < self.window && self.floor_db > self.min_dbfs {
            self.floor_db.min(QUIET_LINE_DB)
        } else {
            self.floor_db
        }
    }

    /// The last hop was voice-like and well above the floor, but far below the talker: a soft
    /// syllable, or a TV in the room. It is not speech, yet not the quiet that ends a phrase.
    pub fn is_background(&self) -> bool {
        self.background
    }

    pub fn speech_peak_db(&self) -> f32 {
        self.speech_peak_db
    }

    /// Classifies one hop; returns true for speech.
    pub fn push(&mut self, f: &HopFeatures) -> bool {
        let level = f.energy_db.max(-100.0);
        // Digital silence (a lost packet concealed with zeros, silence suppression) is not the
        // line's noise: it would drag the floor to -100 dB and make every hiss read as speech.
        if level > DIGITAL_SILENCE_DB {
            self.levels[self.pos] = level;
            self.pos = (self.pos + 1) % self.window;
            self.filled = (self.filled + 1).min(self.window);
            self.floor_db = self.levels[..self.filled]
                .iter()
                .fold(f32::INFINITY, |m, &l| m.min(l));
        } else if self.filled == 0 {
            // A call that opens in digital silence has not shown its noise yet: without a seed
            // the first sound (a beep, a "hello") would become the floor and be heard as
            // nothing. The seed ages out of the window like any other level.
            self.levels[self.pos] = QUIET_LINE_DB;
            self.pos = (self.pos + 1) % self.window;
            self.filled = 1;
            self.floor_db = QUIET_LINE_DB;
        }

        let margin = if self.in_speech {
            self.hold_margin_db
        } else {
            self.margin_db
        };
        let above_floor = level > self.floor_db + margin && level > self.min_dbfs;
        let above_gate =
            self.relative_gate_db <= 0.0 || level > self.speech_peak_db - self.relative_gate_db;
        let speech_like = f.flatness < self.max_flatness;
        self.in_speech = above_floor && above_gate && speech_like;
        self.background = above_floor && speech_like && !above_gate;
        if self.in_speech {
            // Peak follows the loudest speech, decaying slowly so one shout does not mute
            // the rest of the call.
            self.speech_peak_db = level.max(self.speech_peak_db - 0.05);
        }
        self.in_speech
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(db: f32, flatness: f32) -> HopFeatures {
        HopFeatures {
            energy_db: db,
            flatness,
            ..HopFeatures::default()
        }
    }

    #[test]
    fn a_loud_opening_is_not_its_own_tone_floor_until_the_window_fills() {
        let config = AmdConfig::default();
        let mut vad = Vad::new(&config);
        let window = hops(config.floor_window_ms) as usize;
        for _ in 0..window - 1 {
            vad.push(&hop(-25.0, 0.01));
        }
        assert!((vad.floor_db() + 25.0).abs() < 0.01);
        assert_eq!(vad.tone_floor_db(), QUIET_LINE_DB);
        vad.push(&hop(-25.0, 0.01));
        assert!((vad.tone_floor_db() + 25.0).abs() < 0.01, "window full");

        // A quiet opening keeps its own floor for tones too.
        let mut quiet = Vad::new(&config);
        for _ in 0..10 {
            quiet.push(&hop(-58.0, 0.9));
        }
        assert!((quiet.tone_floor_db() + 58.0).abs() < 0.01);
    }

    #[test]
    fn steady_noise_sets_its_own_floor() {
        let mut vad = Vad::new(&AmdConfig::default());
        for i in 0..300 {
            let jitter = if i % 2 == 0 { 1.0 } else { -1.0 };
            assert!(!vad.push(&hop(-40.0 + jitter, 0.3)), "hop {i}");
        }
        assert!((vad.floor_db() + 41.0).abs() < 0.01);
        assert!(vad.push(&hop(-25.0, 0.1)));
    }

    #[test]
    fn background_far_below_the_talker_is_not_speech() {
        let mut vad = Vad::new(&AmdConfig::default());
        for _ in 0..50 {
            vad.push(&hop(-70.0, 0.3));
        }
        for _ in 0..40 {
            assert!(vad.push(&hop(-15.0, 0.1)));
        }
        // TV babble 25 dB below the talker, well above the line floor.
        assert!(!vad.push(&hop(-40.0, 0.1)));
    }

    #[test]
    fn lost_packets_do_not_pull_the_floor_down() {
        let mut vad = Vad::new(&AmdConfig::default());
        for i in 0..300 {
            let level = if i % 37 == 0 { -120.0 } else { -45.0 };
            vad.push(&hop(level, 0.3));
        }
        assert!((vad.floor_db() + 45.0).abs() < 0.01, "{}", vad.floor_db());
        assert!(!vad.push(&hop(-44.0, 0.3)));
    }

    #[test]
    fn white_noise_bursts_are_not_speech() {
        let mut vad = Vad::new(&AmdConfig::default());
        for _ in 0..50 {
            vad.push(&hop(-70.0, 0.3));
        }
        assert!(!vad.push(&hop(-20.0, 0.6)));
    }
}
