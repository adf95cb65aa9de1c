//! The greeting state machine: speech/silence hops in, `human`/`machine`/`unknown` out.
//!
//! Human-first in the spirit of Asterisk's app_amd: a short utterance followed by silence is a
//! human; a long greeting, many words, or long speech after a long initial silence is a machine;
//! nothing decisive by the analysis limit is unknown. Owns only the counters of one greeting;
//! tones are judged in `tones`.

use super::config::{AmdConfig, hops};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GreetingVerdict {
    Human,
    Machine,
    Unknown,
}

/// Which rule decided, with the measured value and the threshold (in ms or counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GreetingRule {
    /// `HUMAN-<speech ms>-<silence ms>`
    Human { speech_ms: u32, silence_ms: u32 },
    /// `LONGGREETING-<speech ms>-<threshold>`
    LongGreeting { speech_ms: u32, threshold_ms: u32 },
    /// `MAXWORDS-<words>-<max>`
    MaxWords { words: u32, max: u32 },
    /// `TOOLONG-<ms>`: nothing decisive in the analysis window.
    TooLong { total_ms: u32 },
    /// `NOSPEECH-<ms>`: silence for the whole analysis window.
    NoSpeech { total_ms: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    InitialSilence,
    Greeting,
    Decided,
}

pub struct Greeting {
    phase: Phase,
    hop: u32,
    speech_run: u32,
    silence_run: u32,
    in_word: bool,
    words: u32,
    speech_hops: u32,
    first_word_hop: Option<u32>,
    // thresholds in hops
    min_word: u32,
    between_words: u32,
    human_end_silence: u32,
    short_utterance: u32,
    human_short_end_silence: u32,
    machine_speech: u32,
    machine_speech_after_silence: u32,
    initial_silence: u32,
    max_words: u32,
    total: u32,
    phrase_gap: u32,
    machine_min_phrase: u32,
    phrase_hops: u32,
    quiet_run: u32,
    longest_phrase_hops: u32,
    after_first_word: u32,
    max_total: u32,
}

impl Greeting {
    pub fn new(c: &AmdConfig) -> Self {
        Greeting {
            phase: Phase::InitialSilence,
            hop: 0,
            speech_run: 0,
            silence_run: 0,
            in_word: false,
            words: 0,
            speech_hops: 0,
            first_word_hop: None,
            min_word: hops(c.min_word_ms),
            between_words: hops(c.between_words_ms),
            human_end_silence: hops(c.human_end_silence_ms),
            short_utterance: hops(c.short_utterance_ms),
            human_short_end_silence: hops(c.human_short_end_silence_ms),
            machine_speech: hops(c.machine_speech_ms),
            machine_speech_after_silence: hops(c.machine_speech_after_silence_ms),
            initial_silence: hops(c.initial_silence_ms),
            max_words: c.max_words,
            total: hops(c.total_analysis_ms),
            phrase_gap: hops(c.phrase_gap_ms),
            machine_min_phrase: hops(c.machine_min_phrase_ms),
            phrase_hops: 0,
            quiet_run: 0,
            longest_phrase_hops: 0,
            after_first_word: hops(c.analysis_after_first_word_ms),
            max_total: hops(c.max_analysis_ms),
        }
    }

    /// Greeting speech so far, in ms.
    pub fn speech_ms(&self) -> u32 {
        self.speech_hops * 10
    }

    /// Current silence run, in ms.
    pub fn silence_ms(&self) -> u32 {
        self.silence_run * 10
    }

    /// Longest phrase so far (speech with gaps shorter than `phrase_gap_ms` bridged), in ms.
    pub fn longest_phrase_ms(&self) -> u32 {
        self.longest_phrase_hops * 10
    }

    pub fn words(&self) -> u32 {
        self.words
    }

    /// Hop at which the first word began, if any.
    pub fn first_word_hop(&self) -> Option<u32> {
        self.first_word_hop
    }

    pub fn is_decided(&self) -> bool {
        self.phase == Phase::Decided
    }

    /// Feeds one hop; returns a verdict once.
    pub fn push(&mut self, speech: bool) -> Option<(GreetingVerdict, GreetingRule)> {
        self.push_activity(speech, false)
    }

    /// Feeds a hop of background (see `Vad::is_background`): silence for the human rule, but
    /// it does not break a phrase.
    pub fn push_background(&mut self) -> Option<(GreetingVerdict, GreetingRule)> {
        self.push_activity(false, true)
    }

    fn push_activity(
        &mut self,
        speech: bool,
        background: bool,
    ) -> Option<(GreetingVerdict, GreetingRule)> {
        if self.phase == Phase::Decided {
            return None;
        }
        self.hop += 1;
        let verdict = if speech {
            self.on_speech()
        } else {
            self.on_silence(background)
        };
        let verdict = verdict.or_else(|| self.on_time());
        if verdict.is_some() {
            self.phase = Phase::Decided;
        }
        verdict
    }

    /// Feeds a hop in which a tone rings but nobody speaks: not speech, yet not the silence
    /// that would end a greeting. Only the analysis limit can decide here.
    pub fn push_hold(&mut self) -> Option<(GreetingVerdict, GreetingRule)> {
        if self.phase == Phase::Decided {
            return None;
        }
        self.hop += 1;
        let verdict = self.on_time();
        if verdict.is_some() {
            self.phase = Phase::Decided;
        }
        verdict
    }

    fn on_speech(&mut self) -> Option<(GreetingVerdict, GreetingRule)> {
        self.speech_run += 1;
        self.silence_run = 0;
        self.quiet_run = 0;
        if !self.in_word && self.speech_run >= self.min_word {
            self.in_word = true;
            self.words += 1;
            // The hops that led up to the word count as its speech.
            self.speech_hops += self.speech_run - 1;
            if self.phase == Phase::InitialSilence {
                self.phase = Phase::Greeting;
                self.first_word_hop = Some(self.hop + 1 - self.speech_run);
            }
        }
        if !self.in_word {
            return None;
        }
        if self.speech_run == self.min_word || self.phrase_hops > 0 {
            // A phrase grows by its speech and the short gaps inside it.
            self.phrase_hops += if self.speech_run == self.min_word {
                self.min_word
            } else {
                1
            };
            self.longest_phrase_hops = self.longest_phrase_hops.max(self.phrase_hops);
        }
        self.speech_hops += 1;
        let threshold = if self.first_word_hop.unwrap_or(0) >= self.initial_silence {
            self.machine_speech_after_silence
        } else {
            self.machine_speech
        };
        if self.speech_hops >= threshold && self.longest_phrase_hops >= self.machine_min_phrase {
            return Some((
                GreetingVerdict::Machine,
                GreetingRule::LongGreeting {
                    speech_ms: self.speech_hops * 10,
                    threshold_ms: threshold * 10,
                },
            ));
        }
        if self.words > self.max_words {
            return Some((
                GreetingVerdict::Machine,
                GreetingRule::MaxWords {
                    words: self.words,
                    max: self.max_words,
                },
            ));
        }
        None
    }

    fn on_silence(&mut self, background: bool) -> Option<(GreetingVerdict, GreetingRule)> {
        self.silence_run += 1;
        self.quiet_run = if background { 0 } else { self.quiet_run + 1 };
        if self.phrase_hops > 0 {
            if self.quiet_run >= self.phrase_gap {
                self.phrase_hops = 0;
            } else {
                self.phrase_hops += 1;
            }
        }
        if self.silence_run >= self.between_words {
            self.in_word = false;
            self.speech_run = 0;
        }
        if self.phase != Phase::Greeting {
            return None;
        }
        let needed = if self.speech_hops < self.short_utterance {
            self.human_short_end_silence
        } else {
            self.human_end_silence
        };
        if self.silence_run >= needed {
            return Some((
                GreetingVerdict::Human,
                GreetingRule::Human {
                    speech_ms: self.speech_hops * 10,
                    silence_ms: self.silence_run * 10,
                },
            ));
        }
        None
    }

    fn on_time(&mut self) -> Option<(GreetingVerdict, GreetingRule)> {
        let limit = match self.first_word_hop {
            Some(first) => self
                .total
                .max(first + self.after_first_word)
                .min(self.max_total),
            None => self.total,
        };
        if self.hop < limit {
            return None;
        }
        // A greeting still being spoken at the limit gets more time, up to the maximum.
        if self.phase == Phase::Greeting
            && self.hop < self.max_total
            && self.silence_run < self.human_end_silence
        {
            return None;
        }
        let total_ms = self.hop * 10;
        let rule = if self.phase == Phase::InitialSilence {
            GreetingRule::NoSpeech { total_ms }
        } else {
            GreetingRule::TooLong { total_ms }
        };
        Some((GreetingVerdict::Unknown, rule))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a pattern of (speech?, ms) segments and returns the verdict and its hop.
    fn run(pattern: &[(bool, u32)]) -> Option<(GreetingVerdict, GreetingRule, u32)> {
        run_with(&AmdConfig::default(), pattern)
    }

    fn run_with(
        config: &AmdConfig,
        pattern: &[(bool, u32)],
    ) -> Option<(GreetingVerdict, GreetingRule, u32)> {
        let mut g = Greeting::new(config);
        let mut hop = 0;
        for &(speech, ms) in pattern {
            for _ in 0..ms / 10 {
                hop += 1;
                if let Some((v, r)) = g.push(speech) {
                    return Some((v, r, hop * 10));
                }
            }
        }
        None
    }

    #[test]
    fn hello_then_silence_is_human_quickly() {
        let (v, r, at) = run(&[(false, 500), (true, 500), (false, 2000)]).unwrap();
        assert_eq!(v, GreetingVerdict::Human);
        assert_eq!(
            r,
            GreetingRule::Human {
                speech_ms: 500,
                silence_ms: 1000
            }
        );
        assert_eq!(at, 2000);
        // A longer answer needs a longer silence.
        let (_, r, _) = run(&[(false, 300), (true, 1000), (false, 3000)]).unwrap();
        assert_eq!(
            r,
            GreetingRule::Human {
                speech_ms: 1000,
                silence_ms: 1400
            }
        );
    }

    #[test]
    fn long_continuous_greeting_is_machine() {
        let (v, r, at) = run(&[(false, 300), (true, 2500)]).unwrap();
        assert_eq!(v, GreetingVerdict::Machine);
        assert_eq!(
            r,
            GreetingRule::LongGreeting {
                speech_ms: 1500,
                threshold_ms: 1500
            }
        );
        assert_eq!(at, 1800);
    }

    #[test]
    fn many_words_is_machine() {
        let mut p = vec![(false, 200)];
        for _ in 0..5 {
            p.push((true, 200));
            p.push((false, 200));
        }
        let config = AmdConfig {
            max_words: 4,
            machine_speech_ms: 5000,
            ..AmdConfig::default()
        };
        let (v, r, _) = run_with(&config, &p).unwrap();
        assert_eq!(v, GreetingVerdict::Machine);
        assert_eq!(r, GreetingRule::MaxWords { words: 5, max: 4 });
    }

    #[test]
    fn short_bursts_with_pauses_are_not_a_long_greeting() {
        // "Yeah, hello? ... who is this? ... hello?": 2.4 s of speech, no phrase over 0.8 s.
        let (v, _, _) = run(&[
            (false, 300),
            (true, 800),
            (false, 500),
            (true, 800),
            (false, 500),
            (true, 800),
            (false, 3000),
        ])
        .unwrap();
        assert_eq!(v, GreetingVerdict::Human);
    }

    #[test]
    fn speech_after_long_silence_is_judged_strictly() {
        let (v, r, _) = run(&[(false, 2600), (true, 1500)]).unwrap();
        assert_eq!(v, GreetingVerdict::Machine);
        assert!(matches!(
            r,
            GreetingRule::LongGreeting {
                threshold_ms: 1300,
                ..
            }
        ));
        // ...but a short hello after a silent pickup is still human.
        let (v, _, _) = run(&[(false, 2600), (true, 500), (false, 1000)]).unwrap();
        assert_eq!(v, GreetingVerdict::Human);
    }

    #[test]
    fn silence_throughout_is_unknown_at_the_limit() {
        let (v, r, at) = run(&[(false, 9000)]).unwrap();
        assert_eq!(v, GreetingVerdict::Unknown);
        assert_eq!(r, GreetingRule::NoSpeech { total_ms: 8000 });
        assert_eq!(at, 8000);
    }

    #[test]
    fn clicks_are_not_words() {
        let (v, r, _) = run(&[(true, 50), (false, 300), (true, 50), (false, 9000)]).unwrap();
        assert_eq!(v, GreetingVerdict::Unknown);
        assert!(matches!(r, GreetingRule::NoSpeech { .. }));
    }
}
