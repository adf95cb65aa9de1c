//! A port of Asterisk's `app_amd` (apps/app_amd.c) with the defaults of its `amd.conf`, as a
//! baseline engine for `trunx bench amd --provider asterisk`: the same files, the same
//! harness, so the comparison with the built-in detector is reproducible.
//!
//! The algorithm, frame by frame (20 ms of signed linear audio each):
//! - the DSP silence detector (`ast_dsp_silence`, main/dsp.c): a frame is silent when the mean
//!   absolute sample is below `silence_threshold`; the detector accumulates the silent run in
//!   ms and resets it on the first non-silent frame;
//! - total time: `iTotalTime += 20`; at `total_analysis_time` the verdict is NOTSURE
//!   (`TOOLONG-<ms>`), checked before the frame is analysed;
//! - a silent frame: a run >= `between_words_silence` puts the state IN_SILENCE and clears the
//!   consecutive voice; still in the initial silence and a run >= `initial_silence` is
//!   MACHINE (`INITIALSILENCE-<run>-<limit>`); in the greeting and a run >=
//!   `after_greeting_silence` is HUMAN (`HUMAN-<run>-<limit>`);
//! - a voice frame: consecutive and total voice += 20; consecutive voice >=
//!   `min_word_length` after IN_SILENCE counts a word (state IN_WORD; the initial state is
//!   IN_WORD); consecutive voice >= `maximum_word_length` is MACHINE (`MAXWORDLENGTH-<ms>`);
//!   words > `maximum_number_of_words` is MACHINE (`MAXWORDS-<n>-<max>`); in the greeting and
//!   total voice >= `greeting` is MACHINE (`LONGGREETING-<ms>-<limit>`); total voice >=
//!   `min_word_length` clears the remembered silence; the first consecutive voice >=
//!   `min_word_length` leaves the initial silence and enters the greeting.
//!
//! app_amd has no beep detector: it never reports `machine_end_beep`. Pure and sans-IO; no
//! allocation per frame.

use super::{AmdEvent, AmdEventKind, AmdProvider, Cause};
use crate::audio::{FRAME_SAMPLES, Frame, SampleTime};

/// The `amd.conf` settings (names as there, all times in ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsteriskConfig {
    pub initial_silence: u32,
    pub greeting: u32,
    pub after_greeting_silence: u32,
    pub total_analysis_time: u32,
    pub min_word_length: u32,
    pub between_words_silence: u32,
    pub maximum_number_of_words: u32,
    pub silence_threshold: u32,
    pub maximum_word_length: u32,
}

impl Default for AsteriskConfig {
    /// `configs/samples/amd.conf.sample` of current Asterisk (silence_threshold from
    /// dsp.conf's default).
    fn default() -> Self {
        AsteriskConfig {
            initial_silence: 2500,
            greeting: 1500,
            after_greeting_silence: 800,
            total_analysis_time: 5000,
            min_word_length: 100,
            between_words_silence: 50,
            maximum_number_of_words: 2,
            silence_threshold: 256,
            maximum_word_length: 5000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WordState {
    InWord,
    InSilence,
}

/// Frame length in ms (20 ms frames at 8 kHz).
const FRAME_MS: u32 = (FRAME_SAMPLES / 8) as u32;

/// The app_amd state machine for one call.
#[derive(Clone, Debug)]
pub struct AsteriskAmd {
    config: AsteriskConfig,
    /// The DSP's accumulated silent run (ms).
    dsp_total_silence: u32,
    in_initial_silence: bool,
    in_greeting: bool,
    voice_duration: u32,
    silence_duration: u32,
    total_time: u32,
    words: u32,
    state: WordState,
    consecutive_voice: u32,
    done: bool,
}

impl AsteriskAmd {
    pub fn new(config: AsteriskConfig) -> Self {
        AsteriskAmd {
            config,
            dsp_total_silence: 0,
            in_initial_silence: true,
            in_greeting: false,
            voice_duration: 0,
            silence_duration: 0,
            total_time: 0,
            words: 0,
            state: WordState::InWord,
            consecutive_voice: 0,
            done: false,
        }
    }

    /// `ast_dsp_silence`: true when the frame is silent; keeps the silent run.
    fn dsp_silence(&mut self, samples: &[i16]) -> bool {
        let sum: u64 = samples.iter().map(|s| u64::from(s.unsigned_abs())).sum();
        let mean = sum / samples.len().max(1) as u64;
        if mean < u64::from(self.config.silence_threshold) {
            self.dsp_total_silence += FRAME_MS;
            true
        } else {
            self.dsp_total_silence = 0;
            false
        }
    }

    fn decide(&mut self, kind: AmdEventKind, at: SampleTime, cause: Cause) -> Option<AmdEvent> {
        self.done = true;
        Some(AmdEvent {
            kind,
            at,
            confidence: 1.0,
            cause,
        })
    }
}

impl AmdProvider for AsteriskAmd {
    fn name(&self) -> &'static str {
        "asterisk"
    }

    fn process(&mut self, frame: &Frame) -> Option<AmdEvent> {
        if self.done {
            return None;
        }
        let c = self.config;
        let at = SampleTime(frame.start.0 + FRAME_SAMPLES as u64);
        self.total_time += FRAME_MS;
        if self.total_time >= c.total_analysis_time {
            let cause = Cause::new(format_args!("TOOLONG-{}", self.total_time));
            return self.decide(AmdEventKind::Unknown, at, cause);
        }
        if self.dsp_silence(&frame.samples) {
            self.silence_duration = self.dsp_total_silence;
            if self.silence_duration >= c.between_words_silence {
                self.state = WordState::InSilence;
                self.consecutive_voice = 0;
            }
            if self.in_initial_silence && self.silence_duration >= c.initial_silence {
                let cause = Cause::new(format_args!(
                    "INITIALSILENCE-{}-{}",
                    self.silence_duration, c.initial_silence
                ));
                return self.decide(AmdEventKind::Machine, at, cause);
            }
            if self.silence_duration >= c.after_greeting_silence && self.in_greeting {
                let cause = Cause::new(format_args!(
                    "HUMAN-{}-{}",
                    self.silence_duration, c.after_greeting_silence
                ));
                return self.decide(AmdEventKind::Human, at, cause);
            }
        } else {
            self.consecutive_voice += FRAME_MS;
            self.voice_duration += FRAME_MS;
            if self.consecutive_voice >= c.min_word_length && self.state == WordState::InSilence {
                self.words += 1;
                self.state = WordState::InWord;
            }
            if self.consecutive_voice >= c.maximum_word_length {
                let cause = Cause::new(format_args!("MAXWORDLENGTH-{}", self.consecutive_voice));
                return self.decide(AmdEventKind::Machine, at, cause);
            }
            if self.words > c.maximum_number_of_words {
                let cause = Cause::new(format_args!(
                    "MAXWORDS-{}-{}",
                    self.words, c.maximum_number_of_words
                ));
                return self.decide(AmdEventKind::Machine, at, cause);
            }
            if self.in_greeting && self.voice_duration >= c.greeting {
                let cause = Cause::new(format_args!(
                    "LONGGREETING-{}-{}",
                    self.voice_duration, c.greeting
                ));
                return self.decide(AmdEventKind::Machine, at, cause);
            }
            if self.voice_duration >= c.min_word_length {
                self.silence_duration = 0;
            }
            if self.consecutive_voice >= c.min_word_length && !self.in_greeting {
                self.in_initial_silence = false;
                self.in_greeting = true;
            }
        }
        None
    }

    /// The recording ended before a verdict: app_amd's hang-up case, reported as `unknown`.
    fn finish(&mut self) -> Option<AmdEvent> {
        if self.done {
            return None;
        }
        let at = SampleTime(u64::from(self.total_time) * 8);
        let cause = Cause::new(format_args!("HANGUP-{}", self.total_time));
        self.decide(AmdEventKind::Unknown, at, cause)
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 20 ms frames: `true` = a 1 kHz tone at amplitude 3000 (mean abs ~1900, voice), `false`
    /// = digital silence.
    fn run(pattern: &[(bool, u32)]) -> Vec<AmdEvent> {
        let mut amd = AsteriskAmd::new(AsteriskConfig::default());
        let mut events = Vec::new();
        let mut n = 0u64;
        for &(voice, ms) in pattern {
            for _ in 0..ms / 20 {
                let mut frame = Frame::silent(SampleTime(n * 160));
                if voice {
                    for (i, s) in frame.samples.iter_mut().enumerate() {
                        let t = (n * 160 + i as u64) as f32 / 8000.0;
                        *s = (3000.0 * (2.0 * std::f32::consts::PI * 1000.0 * t).sin()) as i16;
                    }
                }
                events.extend(amd.process(&frame));
                n += 1;
            }
        }
        events.extend(amd.finish());
        events
    }

    fn one(events: &[AmdEvent]) -> (&'static str, u64, &str) {
        assert_eq!(events.len(), 1, "{events:?}");
        let e = &events[0];
        (e.kind.as_str(), e.at.as_ms(), e.cause.as_str())
    }

    #[test]
    fn a_short_hello_then_silence_is_human_after_800_ms() {
        // 500 ms pause, 500 ms "hello", silence: HUMAN when the silent run reaches 800 ms.
        let e = run(&[(false, 500), (true, 500), (false, 2000)]);
        assert_eq!(one(&e), ("human", 1800, "HUMAN-800-800"));
    }

    #[test]
    fn initial_silence_is_machine_at_2500_ms() {
        let e = run(&[(false, 3000)]);
        assert_eq!(one(&e), ("machine", 2500, "INITIALSILENCE-2500-2500"));
    }

    #[test]
    fn a_long_greeting_is_machine_at_1500_ms_of_voice() {
        let e = run(&[(false, 200), (true, 3000)]);
        assert_eq!(one(&e), ("machine", 1700, "LONGGREETING-1500-1500"));
    }

    #[test]
    fn the_third_word_is_machine() {
        // "Hello? Who's this?" shape: three voice runs after >= 50 ms silences.
        let e = run(&[
            (false, 200),
            (true, 200),
            (false, 100),
            (true, 200),
            (false, 100),
            (true, 200),
            (false, 2000),
        ]);
        // Words: 1st at 300 ms, 2nd at 600, 3rd at 900 ms (> 2 words).
        assert_eq!(one(&e), ("machine", 900, "MAXWORDS-3-2"));
    }

    #[test]
    fn voice_from_the_first_frame_is_not_a_word() {
        // The initial state is IN_WORD: voice with no leading silence is not counted, so
        // two later words make only 2 and the call is judged human.
        let e = run(&[
            (true, 300),
            (false, 100),
            (true, 200),
            (false, 100),
            (true, 200),
            (false, 1000),
        ]);
        assert_eq!(one(&e), ("human", 1700, "HUMAN-800-800"));
    }

    #[test]
    fn continuous_quiet_noise_is_notsure_at_5000_ms() {
        // Clicks of 60 ms (shorter than a word) between 700 ms silences.
        let mut pattern = vec![(false, 100)];
        for _ in 0..7 {
            pattern.push((true, 60));
            pattern.push((false, 700));
        }
        let e = run(&pattern);
        // 60 ms runs never make a word nor enter the greeting; the silences stay under the
        // initial 2500 ms because each voice frame resets the DSP run.
        assert_eq!(one(&e), ("unknown", 5000, "TOOLONG-5000"));
    }

    #[test]
    fn a_recording_that_ends_early_is_unknown_and_nothing_follows_a_verdict() {
        let e = run(&[(false, 1000)]);
        assert_eq!(one(&e), ("unknown", 1000, "HANGUP-1000"));
        let mut amd = AsteriskAmd::new(AsteriskConfig::default());
        for i in 0..200u64 {
            amd.process(&Frame::silent(SampleTime(i * 160)));
        }
        assert!(amd.is_done());
        assert_eq!(amd.finish(), None);
        assert_eq!(amd.name(), "asterisk");
    }
}
