//! The greeting judgement of [`Amd`]: the greeting model's 100 ms ticks, the greeting rules'
//! verdicts as proposals the model seconds, and the events a greeting verdict becomes. Part of
//! the detector's one state machine (it owns no state of its own); sans-IO, no allocation.

use super::cues::CUE_FEATURES;
use super::decision::{GreetingRule, GreetingVerdict};
use super::model::BeepModel;
use super::{Amd, AmdEvent, AmdEventKind, Cause, Phase};

impl Amd {
    pub(super) fn judged_by_model(&self) -> bool {
        self.config.greeting_model
            && !self.greeting_model_failed
            && self.model.as_ref().is_some_and(BeepModel::has_greeting)
    }

    /// The greeting rules' verdict, once given, stands when the model seconds it (see
    /// `AmdConfig::greeting_rules_machine_max_p`); it is kept, so a later tick may second it.
    fn seconded_proposal(&self, p: f32) -> Option<(GreetingVerdict, GreetingRule)> {
        let rule = self.rules_proposal?;
        let verdict = proposed_verdict(rule)?;
        let seconded = match verdict {
            GreetingVerdict::Human => p >= self.config.greeting_rules_human_min_p?,
            _ => p <= self.config.greeting_rules_machine_max_p?,
        };
        seconded.then_some((verdict, rule))
    }

    /// One 100 ms judgement of the greeting model: `human` once the probability stayed at or
    /// above the human threshold for `greeting_confirm_ticks` ticks and the caller has been
    /// silent for `greeting_human_min_silence_ms`; `machine` once it stayed at or below the
    /// machine threshold as long; else wait. `models/train_greeting.py` (`simulate`) applies
    /// exactly this policy to choose the thresholds.
    pub(super) fn judge_by_model(&mut self, row: &[f32; CUE_FEATURES]) -> Option<AmdEvent> {
        let scored = self.model.as_ref()?.score_greeting(row)?;
        self.stats.model_runs += 1;
        let p = match scored {
            Ok(p) => p,
            Err(_) => {
                self.stats.model_errors += 1;
                self.greeting_model_failed = true;
                // The rules judge from now on; a verdict they already gave stands at once.
                let rule = self.rules_proposal.take()?;
                return Some(self.on_greeting(proposed_verdict(rule)?, rule));
            }
        };
        self.last_human_probability = Some(p);
        let at = self.now();
        let permille = |x: f32| (x * 1000.0).round() as u32;
        let bump = |run: u32, on: bool| if on { run + 1 } else { 0 };
        self.human_ticks = bump(self.human_ticks, p >= self.config.greeting_human_threshold);
        self.machine_ticks = bump(
            self.machine_ticks,
            p <= self.config.greeting_machine_threshold,
        );
        let confirm = self.config.greeting_confirm_ticks.max(1);
        let human_ready =
            self.human_ticks >= confirm && self.silence_run >= self.human_min_silence_hops;
        let machine_ready =
            self.config.greeting_model_machine_alone && self.machine_ticks >= confirm;
        let seconded = self.seconded_proposal(p);
        if (human_ready || machine_ready || seconded.is_some()) && self.tones.busy() {
            // A tone group is still being judged: SIT, fax or a beep outrank a greeting
            // verdict, which waits for the group (the tick counters keep running).
            self.stats.verdicts_held_by_tone += 1;
            return None;
        }
        if let Some((verdict, rule)) = seconded {
            let mut event = self.on_greeting(verdict, rule);
            event.confidence = if verdict == GreetingVerdict::Human {
                p
            } else {
                1.0 - p
            };
            return Some(event);
        }
        if human_ready {
            self.phase = Phase::Done;
            return Some(AmdEvent {
                kind: AmdEventKind::Human,
                at,
                confidence: p,
                cause: Cause::new(format_args!(
                    "MODEL-HUMAN-{}-{}",
                    permille(p),
                    self.silence_run * 10
                )),
            });
        }
        if machine_ready {
            self.phase = Phase::AwaitingEnd {
                since_hop: self.hop,
            };
            self.after_machine_silence = 0;
            return Some(AmdEvent {
                kind: AmdEventKind::Machine,
                at,
                confidence: 1.0 - p,
                cause: Cause::new(format_args!(
                    "MODEL-MACHINE-{}-{}",
                    permille(1.0 - p),
                    self.cues.speech_ms()
                )),
            });
        }
        None
    }

    pub(super) fn on_greeting(&mut self, verdict: GreetingVerdict, rule: GreetingRule) -> AmdEvent {
        let at = self.now();
        let cause = match rule {
            GreetingRule::Human {
                speech_ms,
                silence_ms,
            } => Cause::new(format_args!("HUMAN-{speech_ms}-{silence_ms}")),
            GreetingRule::LongGreeting {
                speech_ms,
                threshold_ms,
            } => Cause::new(format_args!("LONGGREETING-{speech_ms}-{threshold_ms}")),
            GreetingRule::MaxWords { words, max } => {
                Cause::new(format_args!("MAXWORDS-{words}-{max}"))
            }
            GreetingRule::TooLong { total_ms } => Cause::new(format_args!("TOOLONG-{total_ms}")),
            GreetingRule::NoSpeech { total_ms } => Cause::new(format_args!("NOSPEECH-{total_ms}")),
        };
        let (kind, confidence) = match verdict {
            GreetingVerdict::Human => {
                self.phase = Phase::Done;
                (AmdEventKind::Human, human_confidence(rule))
            }
            GreetingVerdict::Machine => {
                self.phase = Phase::AwaitingEnd {
                    since_hop: self.hop,
                };
                self.after_machine_silence = 0;
                (AmdEventKind::Machine, 0.85)
            }
            GreetingVerdict::Unknown => {
                self.phase = Phase::Done;
                (AmdEventKind::Unknown, 0.0)
            }
        };
        AmdEvent {
            kind,
            at,
            confidence,
            cause,
        }
    }
}

/// The verdict a greeting rule proposes to the model: only `human` and `machine` are
/// proposals (silence at answer and the analysis limit decide on their own).
fn proposed_verdict(rule: GreetingRule) -> Option<GreetingVerdict> {
    match rule {
        GreetingRule::Human { .. } => Some(GreetingVerdict::Human),
        GreetingRule::LongGreeting { .. } | GreetingRule::MaxWords { .. } => {
            Some(GreetingVerdict::Machine)
        }
        GreetingRule::TooLong { .. } | GreetingRule::NoSpeech { .. } => None,
    }
}

fn human_confidence(rule: GreetingRule) -> f32 {
    match rule {
        GreetingRule::Human {
            speech_ms,
            silence_ms,
        } => {
            let shortness = 1.0 - (speech_ms as f32 / 1800.0).min(1.0);
            let quiet = (silence_ms as f32 / 1000.0).min(1.0);
            (0.5 + 0.3 * shortness + 0.2 * quiet).min(0.99)
        }
        _ => 0.5,
    }
}
