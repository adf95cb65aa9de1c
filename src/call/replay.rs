//! A recorded call replayed through the detector and the call flow in audio time, frame by
//! frame as a live call feeds them: when the prepared message would start and which AMD event
//! started it. This is the sans-IO twin of the voicemail drop in `runtime::call::dial`, used to
//! measure the start delay after the beep over a whole corpus without sockets. It owns only
//! the replay loop; it reads no file and no clock.

use crate::amd::{Amd, AmdConfig, AmdEvent, BeepModel};
use crate::audio::{SampleTime, frames_of};

use super::{CallAction, CallFlow, VoiceMode};

/// When the message starts on a replayed call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MessageStart {
    /// The AMD event that started the message (`MachineEndBeep`, `MachineEndSilence`, `Human`
    /// or `Unknown`); its `at` is what `trunx dial` reports as `playback_start_ms`.
    pub trigger: AmdEvent,
    /// End of the frame in which the detector decided: a live call cannot act on the decision
    /// before this sample has arrived (plus the jitter buffer's playout delay).
    pub frame_end: SampleTime,
}

/// Replays `pcm` (8 kHz mono, from the first answered sample) through the AMD and a call flow
/// that has a message to leave. `None` when the message would never start (no end of the
/// greeting in the recording, fax, SIT).
pub fn message_start(
    pcm: &[i16],
    config: &AmdConfig,
    model: Option<BeepModel>,
) -> Option<MessageStart> {
    let mut amd = Amd::new(config.clone(), model);
    let mut flow = CallFlow::new(VoiceMode {
        has_message: true,
        ai: false,
    });
    for frame in frames_of(pcm) {
        if let Some(event) = amd.process(&frame)
            && flow.on_amd(&event) == Some(CallAction::StartPlayback)
        {
            return Some(MessageStart {
                trigger: event,
                frame_end: frame.end(),
            });
        }
        if amd.is_done() {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amd::{AmdEventKind, analyse_recording};
    use crate::audio::wav::read_telephone_wav;

    fn fixture(name: &str) -> Vec<i16> {
        read_telephone_wav(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("audio-fixtures/calls")
                .join(name),
        )
        .unwrap()
    }

    #[test]
    fn silence_never_starts_a_message() {
        assert_eq!(
            message_start(&vec![0i16; 8000 * 3], &AmdConfig::default(), None),
            None
        );
    }

    #[test]
    fn a_machine_gets_the_message_at_the_beep_decision_not_at_machine() {
        let pcm = fixture("0087-machine_beep_single.wav");
        let config = AmdConfig::default();
        let (events, _) = analyse_recording(&pcm, &config, None);
        let beep = events
            .iter()
            .find(|e| matches!(e.kind, AmdEventKind::MachineEndBeep { .. }))
            .expect("the detector hears the beep");
        assert!(events[0].kind == AmdEventKind::Machine && events[0].at < beep.at);
        let start = message_start(&pcm, &config, None).expect("the message starts");
        assert_eq!(start.trigger, *beep);
        assert!(start.frame_end >= beep.at && start.frame_end.0 - beep.at.0 < 160);
    }

    #[test]
    fn a_person_gets_the_message_at_the_human_decision() {
        let pcm = fixture("0014-human_short.wav");
        let start = message_start(&pcm, &AmdConfig::default(), None).expect("the message starts");
        assert_eq!(start.trigger.kind, AmdEventKind::Human);
    }
}
