//! The AMD record of one answered call: its first 10 s of audio (8 kHz u-law) and the
//! detector's trace (per 100 ms: level, speech flag, beep-model probability; the events with
//! their causes), for `GET /attempts/:id/amd` and `/audio` and the dashboard's call page.
//!
//! Pure and allocation-free per frame: every buffer is sized for 10 s when the call is
//! answered, and frames past 10 s are ignored. Events (a handful per call) copy their cause.

use serde::Serialize;

use crate::amd::{AmdEvent, AmdEventKind};
use crate::audio::FRAME_SAMPLES;
use crate::audio::g711::Law;

/// Audio kept per call, ms.
pub const RECORD_MS: u32 = 10_000;
/// Samples kept per call.
pub const RECORD_SAMPLES: usize = (RECORD_MS as usize) * 8;
/// One trace point per this many ms.
pub const BLOCK_MS: u32 = 100;
const BLOCK_SAMPLES: u32 = BLOCK_MS * 8;
const BLOCKS: usize = (RECORD_MS / BLOCK_MS) as usize;
/// Most events kept per call.
const MAX_EVENTS: usize = 16;

/// One 100 ms point of the trace.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TracePoint {
    /// Start of the block, ms after the answer.
    pub t_ms: u32,
    /// RMS level of the block, dBFS (-100 for digital silence).
    pub level_db: f32,
    /// The detector counted speech in most of the block.
    pub speech: bool,
    /// The beep model's last probability when the block ended, if it ran by then.
    pub model_probability: Option<f32>,
}

/// One detector event.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceEvent {
    /// Audio time of the decision, ms after the answer.
    pub at_ms: u64,
    pub kind: &'static str,
    /// The public result it implies (`human`, `machine`, `machine_end_beep`, `unknown`).
    pub result: Option<&'static str>,
    pub cause: String,
    pub confidence: f32,
    pub beep_start_ms: Option<u64>,
    pub beep_end_ms: Option<u64>,
}

/// The trace as `GET /attempts/:id/amd` returns it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AmdTrace {
    pub sample_rate: u32,
    pub block_ms: u32,
    /// Audio kept, ms (at most 10 s).
    pub audio_ms: u32,
    pub points: Vec<TracePoint>,
    pub events: Vec<TraceEvent>,
}

/// What a call hands over when it ends.
#[derive(Clone, Debug, PartialEq)]
pub struct AmdRecord {
    /// 8 kHz u-law, at most 10 s.
    pub ulaw: Vec<u8>,
    pub trace: AmdTrace,
}

/// Collects the record while the call runs.
pub struct AmdRecorder {
    ulaw: Vec<u8>,
    points: Vec<TracePoint>,
    events: Vec<TraceEvent>,
    block_sq: f64,
    block_samples: u32,
    block_speech_frames: u32,
    block_frames: u32,
}

impl Default for AmdRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl AmdRecorder {
    /// Allocates everything 10 s of audio needs, once.
    pub fn new() -> AmdRecorder {
        AmdRecorder {
            ulaw: Vec::with_capacity(RECORD_SAMPLES),
            points: Vec::with_capacity(BLOCKS),
            events: Vec::with_capacity(MAX_EVENTS),
            block_sq: 0.0,
            block_samples: 0,
            block_speech_frames: 0,
            block_frames: 0,
        }
    }

    /// True once 10 s are kept.
    pub fn is_full(&self) -> bool {
        self.ulaw.len() >= RECORD_SAMPLES
    }

    /// One 20 ms frame of answered audio with the detector's state after it: the speech flag
    /// and the beep model's last probability. Never allocates.
    pub fn push_frame(
        &mut self,
        samples: &[i16; FRAME_SAMPLES],
        speech: bool,
        model_probability: Option<f32>,
    ) {
        if self.is_full() {
            return;
        }
        let start = self.ulaw.len();
        self.ulaw.resize(start + FRAME_SAMPLES, 0);
        Law::Ulaw.encode_into(samples, &mut self.ulaw[start..]);
        self.block_sq += samples
            .iter()
            .map(|&s| f64::from(s) * f64::from(s))
            .sum::<f64>();
        self.block_samples += FRAME_SAMPLES as u32;
        self.block_frames += 1;
        self.block_speech_frames += u32::from(speech);
        if self.block_samples >= BLOCK_SAMPLES && self.points.len() < BLOCKS {
            let mean = self.block_sq / f64::from(self.block_samples);
            let level_db = if mean <= 0.0 {
                -100.0
            } else {
                (10.0 * (mean / (32768.0 * 32768.0)).log10()).max(-100.0) as f32
            };
            self.points.push(TracePoint {
                t_ms: (self.points.len() as u32) * BLOCK_MS,
                level_db,
                speech: self.block_speech_frames * 2 > self.block_frames,
                model_probability,
            });
            self.block_sq = 0.0;
            self.block_samples = 0;
            self.block_frames = 0;
            self.block_speech_frames = 0;
        }
    }

    /// A detector event (kept even after 10 s of audio; at most 16).
    pub fn push_event(&mut self, e: &AmdEvent) {
        if self.events.len() >= MAX_EVENTS {
            return;
        }
        let (beep_start_ms, beep_end_ms) = match e.kind {
            AmdEventKind::MachineEndBeep {
                beep_start,
                beep_end,
            } => (Some(beep_start.as_ms()), Some(beep_end.as_ms())),
            _ => (None, None),
        };
        self.events.push(TraceEvent {
            at_ms: e.at.as_ms(),
            kind: e.kind.as_str(),
            result: e.kind.public_result(),
            cause: e.cause.as_str().to_string(),
            confidence: e.confidence,
            beep_start_ms,
            beep_end_ms,
        });
    }

    /// The record, when the call ends.
    pub fn finish(self) -> AmdRecord {
        let audio_ms = (self.ulaw.len() / 8) as u32;
        AmdRecord {
            ulaw: self.ulaw,
            trace: AmdTrace {
                sample_rate: 8000,
                block_ms: BLOCK_MS,
                audio_ms,
                points: self.points,
                events: self.events,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amd::Cause;
    use crate::audio::SampleTime;

    #[test]
    fn ten_seconds_are_kept_in_preallocated_buffers_with_a_point_per_100_ms() {
        let mut r = AmdRecorder::new();
        let (audio_cap, points_cap) = (r.ulaw.capacity(), r.points.capacity());
        let loud = [8_000i16; FRAME_SAMPLES];
        let quiet = [0i16; FRAME_SAMPLES];
        for i in 0..600 {
            // 1 s loud speech, then silence; 12 s in all.
            let speech = i < 50;
            r.push_frame(if speech { &loud } else { &quiet }, speech, Some(0.25));
        }
        // No reallocation happened.
        assert_eq!(r.ulaw.capacity(), audio_cap);
        assert_eq!(r.points.capacity(), points_cap);
        r.push_event(&AmdEvent {
            kind: AmdEventKind::MachineEndBeep {
                beep_start: SampleTime::from_ms(2_000),
                beep_end: SampleTime::from_ms(2_400),
            },
            at: SampleTime::from_ms(2_420),
            confidence: 0.9,
            cause: Cause::new(format_args!("BEEP-400")),
        });
        let rec = r.finish();
        assert_eq!(rec.ulaw.len(), RECORD_SAMPLES);
        assert_eq!(rec.trace.audio_ms, 10_000);
        assert_eq!(rec.trace.points.len(), 100);
        let p = rec.trace.points[3];
        assert_eq!(p.t_ms, 300);
        assert!(p.speech);
        // 8000/32768 full scale: about -12.2 dBFS.
        assert!((p.level_db + 12.25).abs() < 0.1, "{p:?}");
        assert_eq!(p.model_probability, Some(0.25));
        let q = rec.trace.points[20];
        assert!(!q.speech && q.level_db <= -99.0, "{q:?}");
        let e = &rec.trace.events[0];
        assert_eq!(
            (e.at_ms, e.kind, e.result),
            (2_420, e.kind, Some("machine_end_beep"))
        );
        assert_eq!((e.beep_start_ms, e.beep_end_ms), (Some(2_000), Some(2_400)));
        assert_eq!(e.cause, "BEEP-400");
        let json = serde_json::to_value(&rec.trace).unwrap();
        assert_eq!(
            json["points"][3]["levelDb"].as_f64().map(|v| v < -12.0),
            Some(true)
        );
        assert_eq!(json["events"][0]["atMs"], 2_420);
    }
}
