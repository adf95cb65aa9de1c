//! The per-call flow of the voice modes: what to do with the AMD's verdict. Machine with a
//! voicemail prompt: wait for the beep (or the end of the greeting), play the whole message,
//! hang up (`voicemail`). Machine without one: hang up at `machine` (skip voicemail). Human or
//! unknown: play the message right away (voice broadcast) and hang up (`humanConnected`), or,
//! with `ai`, hand over to the agent. Pure: events in, actions out; no I/O, no clock.

pub mod amd_record;
pub mod identification;
pub mod replay;

use crate::amd::{AmdEvent, AmdEventKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoiceMode {
    /// A voicemail/broadcast prompt is prepared for this campaign.
    pub has_message: bool,
    /// Humans go to the AI agent.
    pub ai: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallAction {
    StartPlayback,
    HangUp,
    BridgeAgent,
}

/// How a machine's greeting was found to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GreetingEnd {
    Beep,
    Silence,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowOutcome {
    /// The message was played to a machine after its greeting.
    Voicemail { end: GreetingEnd, complete: bool },
    /// A machine answered and no message was left (no prompt, or no end of greeting in time).
    MachineNoMessage { cause: &'static str },
    /// A person answered: given the message, or handed to the agent.
    HumanConnected { complete: bool },
    /// Fax or SIT: a failed call.
    Failed { cause: &'static str },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Listening,
    AwaitingGreetingEnd,
    Playing,
    Done,
}

pub struct CallFlow {
    mode: VoiceMode,
    state: State,
    playing_to_machine: Option<GreetingEnd>,
    outcome: Option<FlowOutcome>,
}

impl CallFlow {
    pub fn new(mode: VoiceMode) -> Self {
        CallFlow {
            mode,
            state: State::Listening,
            playing_to_machine: None,
            outcome: None,
        }
    }

    pub fn outcome(&self) -> Option<FlowOutcome> {
        self.outcome
    }

    pub fn is_playing(&self) -> bool {
        self.state == State::Playing
    }

    fn finish(&mut self, outcome: FlowOutcome) -> Option<CallAction> {
        self.state = State::Done;
        self.outcome = Some(outcome);
        Some(CallAction::HangUp)
    }

    fn play_to_machine(&mut self, end: GreetingEnd) -> Option<CallAction> {
        if !self.mode.has_message {
            return self.finish(FlowOutcome::MachineNoMessage {
                cause: "no_voicemail_audio",
            });
        }
        self.state = State::Playing;
        self.playing_to_machine = Some(end);
        Some(CallAction::StartPlayback)
    }

    /// Feeds an AMD event.
    pub fn on_amd(&mut self, event: &AmdEvent) -> Option<CallAction> {
        if matches!(self.state, State::Playing | State::Done) {
            return None;
        }
        match event.kind {
            AmdEventKind::Human | AmdEventKind::Unknown => {
                if self.mode.ai {
                    self.state = State::Done;
                    self.outcome = Some(FlowOutcome::HumanConnected { complete: true });
                    Some(CallAction::BridgeAgent)
                } else if self.mode.has_message {
                    self.state = State::Playing;
                    Some(CallAction::StartPlayback)
                } else {
                    self.finish(FlowOutcome::HumanConnected { complete: true })
                }
            }
            AmdEventKind::Machine if self.mode.has_message => {
                self.state = State::AwaitingGreetingEnd;
                None
            }
            AmdEventKind::Machine => self.finish(FlowOutcome::MachineNoMessage {
                cause: "skip_voicemail",
            }),
            AmdEventKind::MachineEndBeep { .. } => self.play_to_machine(GreetingEnd::Beep),
            AmdEventKind::MachineEndSilence => self.play_to_machine(GreetingEnd::Silence),
            AmdEventKind::BeepTimeout => self.finish(FlowOutcome::MachineNoMessage {
                cause: "beep_timeout",
            }),
            AmdEventKind::Fax => self.finish(FlowOutcome::Failed { cause: "fax" }),
            AmdEventKind::Sit => self.finish(FlowOutcome::Failed { cause: "sit" }),
        }
    }

    /// The whole message has been sent.
    pub fn on_playback_finished(&mut self) -> Option<CallAction> {
        if self.state != State::Playing {
            return None;
        }
        let outcome = match self.playing_to_machine {
            Some(end) => FlowOutcome::Voicemail {
                end,
                complete: true,
            },
            None => FlowOutcome::HumanConnected { complete: true },
        };
        self.finish(outcome)
    }

    /// The far end hung up; a message being played is recorded as incomplete.
    pub fn on_remote_hangup(&mut self) {
        if self.state == State::Playing {
            self.outcome = Some(match self.playing_to_machine {
                Some(end) => FlowOutcome::Voicemail {
                    end,
                    complete: false,
                },
                None => FlowOutcome::HumanConnected { complete: false },
            });
        }
        self.state = State::Done;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amd::Cause;
    use crate::audio::SampleTime;

    fn ev(kind: AmdEventKind) -> AmdEvent {
        AmdEvent {
            kind,
            at: SampleTime(0),
            confidence: 1.0,
            cause: Cause::new(format_args!("T")),
        }
    }

    const BEEP: AmdEventKind = AmdEventKind::MachineEndBeep {
        beep_start: SampleTime(0),
        beep_end: SampleTime(160),
    };

    #[test]
    fn machine_with_message_waits_for_the_beep_then_plays_then_hangs_up() {
        let mut f = CallFlow::new(VoiceMode {
            has_message: true,
            ai: false,
        });
        assert_eq!(f.on_amd(&ev(AmdEventKind::Machine)), None);
        assert_eq!(f.on_amd(&ev(BEEP)), Some(CallAction::StartPlayback));
        assert!(f.is_playing());
        assert_eq!(f.on_playback_finished(), Some(CallAction::HangUp));
        assert_eq!(
            f.outcome(),
            Some(FlowOutcome::Voicemail {
                end: GreetingEnd::Beep,
                complete: true
            })
        );
    }

    #[test]
    fn end_silence_also_plays_and_says_so() {
        let mut f = CallFlow::new(VoiceMode {
            has_message: true,
            ai: false,
        });
        f.on_amd(&ev(AmdEventKind::Machine));
        assert_eq!(
            f.on_amd(&ev(AmdEventKind::MachineEndSilence)),
            Some(CallAction::StartPlayback)
        );
        f.on_remote_hangup();
        assert_eq!(
            f.outcome(),
            Some(FlowOutcome::Voicemail {
                end: GreetingEnd::Silence,
                complete: false
            })
        );
    }

    #[test]
    fn machine_without_message_is_skipped_at_once() {
        let mut f = CallFlow::new(VoiceMode {
            has_message: false,
            ai: true,
        });
        assert_eq!(
            f.on_amd(&ev(AmdEventKind::Machine)),
            Some(CallAction::HangUp)
        );
        assert_eq!(
            f.outcome(),
            Some(FlowOutcome::MachineNoMessage {
                cause: "skip_voicemail"
            })
        );
    }

    #[test]
    fn no_beep_in_time_leaves_no_message() {
        let mut f = CallFlow::new(VoiceMode {
            has_message: true,
            ai: false,
        });
        f.on_amd(&ev(AmdEventKind::Machine));
        assert_eq!(
            f.on_amd(&ev(AmdEventKind::BeepTimeout)),
            Some(CallAction::HangUp)
        );
        assert_eq!(
            f.outcome(),
            Some(FlowOutcome::MachineNoMessage {
                cause: "beep_timeout"
            })
        );
    }

    #[test]
    fn humans_get_the_message_now_or_the_agent() {
        let mut f = CallFlow::new(VoiceMode {
            has_message: true,
            ai: false,
        });
        assert_eq!(
            f.on_amd(&ev(AmdEventKind::Unknown)),
            Some(CallAction::StartPlayback)
        );
        assert_eq!(f.on_playback_finished(), Some(CallAction::HangUp));
        assert_eq!(
            f.outcome(),
            Some(FlowOutcome::HumanConnected { complete: true })
        );
        let mut f = CallFlow::new(VoiceMode {
            has_message: true,
            ai: true,
        });
        assert_eq!(
            f.on_amd(&ev(AmdEventKind::Human)),
            Some(CallAction::BridgeAgent)
        );
    }

    #[test]
    fn fax_and_sit_fail_the_call() {
        let mut f = CallFlow::new(VoiceMode {
            has_message: true,
            ai: false,
        });
        assert_eq!(f.on_amd(&ev(AmdEventKind::Sit)), Some(CallAction::HangUp));
        assert_eq!(f.outcome(), Some(FlowOutcome::Failed { cause: "sit" }));
        // Events after the end change nothing.
        assert_eq!(f.on_amd(&ev(BEEP)), None);
    }
}
