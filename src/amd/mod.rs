//! The streaming answering-machine detector: 20 ms frames in, `human` / `machine` /
//! `machine_end_beep` / `unknown` (plus `fax`, `sit`) events out, each with its sample time, a
//! confidence and a cause string such as `LONGGREETING-1840-1800`.
//!
//! Pure and sans-IO: audio time is the sample count from the first answered sample, so a
//! recording gives the same decisions every run. Per frame it neither allocates nor logs; the
//! beep model runs once per tone candidate. Owns the detector of one call; the call flow
//! decides what to do with its events.

pub mod asterisk;
pub mod bench;
pub mod config;
pub mod cues;
pub mod decision;
pub mod features;
mod judge;
pub mod model;
pub mod provider;
pub mod tones;
pub mod vad;

use std::fmt::{self, Write as _};

pub use config::AmdConfig;
pub use model::BeepModel;
pub use provider::AmdProvider;

use crate::audio::{FRAME_SAMPLES, Frame, SampleTime};
use cues::CueTracker;
use decision::{Greeting, GreetingRule, GreetingVerdict};
use features::{HOP, HopAnalyzer};
use tones::{BeepCandidate, ToneContext, ToneTracker, ToneVerdict};
use vad::Vad;

/// A short cause string held inline (no allocation on the frame path).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Cause {
    len: u8,
    buf: [u8; 47],
}

impl Cause {
    pub fn new(args: fmt::Arguments<'_>) -> Cause {
        let mut cause = Cause {
            len: 0,
            buf: [0; 47],
        };
        let _ = cause.write_fmt(args);
        cause
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("")
    }
}

impl fmt::Write for Cause {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len as usize;
        let take = s.len().min(room);
        self.buf[self.len as usize..self.len as usize + take]
            .copy_from_slice(&s.as_bytes()[..take]);
        self.len += take as u8;
        Ok(())
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmdEventKind {
    /// A person answered.
    Human,
    /// An answering machine; the detector keeps listening for the end of its greeting.
    Machine,
    /// The greeting ended with a beep between these samples: speak now.
    MachineEndBeep {
        beep_start: SampleTime,
        beep_end: SampleTime,
    },
    /// The greeting ended in silence with no beep.
    MachineEndSilence,
    /// Neither a beep nor an end silence within the beep timeout.
    BeepTimeout,
    /// Nothing decisive within the analysis window.
    Unknown,
    /// A fax machine (CNG or CED tone): a failed call.
    Fax,
    /// A special information tone (intercept, vacant number): a failed call.
    Sit,
}

impl AmdEventKind {
    /// Name of the event.
    pub fn as_str(&self) -> &'static str {
        match self {
            AmdEventKind::Human => "human",
            AmdEventKind::Machine => "machine",
            AmdEventKind::MachineEndBeep { .. } => "machine_end_beep",
            AmdEventKind::MachineEndSilence => "machine_end_silence",
            AmdEventKind::BeepTimeout => "beep_timeout",
            AmdEventKind::Unknown => "unknown",
            AmdEventKind::Fax => "fax",
            AmdEventKind::Sit => "sit",
        }
    }

    /// The public AMD result string of the API (`human`, `machine`, `machine_end_beep`,
    /// `unknown`), or `None` for fax and SIT, which are failed calls.
    pub fn public_result(&self) -> Option<&'static str> {
        match self {
            AmdEventKind::Human => Some("human"),
            AmdEventKind::Machine | AmdEventKind::MachineEndSilence | AmdEventKind::BeepTimeout => {
                Some("machine")
            }
            AmdEventKind::MachineEndBeep { .. } => Some("machine_end_beep"),
            AmdEventKind::Unknown => Some("unknown"),
            AmdEventKind::Fax | AmdEventKind::Sit => None,
        }
    }

    /// True when the event says a machine (or a network/fax tone) answered, not a person.
    pub fn is_machine_side(&self) -> bool {
        !matches!(self, AmdEventKind::Human | AmdEventKind::Unknown)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AmdEvent {
    pub kind: AmdEventKind,
    /// Sample time at which the decision was made (end of the hop that decided it).
    pub at: SampleTime,
    /// 0.0..=1.0
    pub confidence: f32,
    pub cause: Cause,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Deciding human or machine (tones are watched too).
    Listening,
    /// Machine decided: waiting for the beep or the end of the greeting.
    AwaitingEnd {
        since_hop: u64,
    },
    Done,
}

/// Counters for reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AmdStats {
    pub hops: u64,
    pub tone_candidates: u32,
    pub model_runs: u32,
    pub model_errors: u32,
    pub beeps_rejected: u32,
    /// Confirmed beeps dropped because speech followed them (`beep_speech_veto_ms`).
    pub beeps_vetoed_by_speech: u32,
    /// Greeting-model verdicts that waited for a ringing tone group to be judged.
    pub verdicts_held_by_tone: u32,
}

/// The built-in detector for one call.
pub struct Amd {
    config: AmdConfig,
    analyzer: HopAnalyzer,
    vad: Vad,
    greeting: Greeting,
    tones: ToneTracker,
    model: Option<BeepModel>,
    phase: Phase,
    hop: u64,
    silence_run: u32,
    after_machine_silence: u32,
    pending: Option<AmdEvent>,
    stats: AmdStats,
    end_silence_hops: u32,
    beep_timeout_hops: u64,
    candidate_log: Option<Vec<BeepCandidate>>,
    /// The VAD's verdict on the last hop, and the beep model's last probability (read-only
    /// views for the per-call AMD record).
    last_speech: bool,
    last_model_probability: Option<f32>,
    /// The greeting model's inputs, and its last probability that a person answered.
    cues: CueTracker,
    last_human_probability: Option<f32>,
    /// Set when the greeting model failed on this call: the greeting rules judge from then on.
    greeting_model_failed: bool,
    human_min_silence_hops: u32,
    model_deadline_hops: u64,
    /// Consecutive model ticks at or above the human threshold, at or below the machine one.
    human_ticks: u32,
    machine_ticks: u32,
    /// The greeting rules' verdict while the model judges: a proposal the model may second.
    rules_proposal: Option<GreetingRule>,
    /// A confirmed beep waiting for the next tone of its sequence (see
    /// `AmdConfig::beep_sequence_wait_ms`).
    held_beep: Option<HeldBeep>,
    sequence_wait_hops: u64,
    speech_veto_hops: u32,
}

/// A beep held back while its sequence may still go on: what the event will say.
#[derive(Clone, Copy, Debug)]
struct HeldBeep {
    start_sample: u64,
    end_sample: u64,
    tones: usize,
    f1: f32,
    f2: f32,
    dual: bool,
    confidence: f32,
    /// The hop from which the beep is released if no next tone is ringing.
    until_hop: u64,
    /// The hop at which it is released whatever rings (a tone that never stops).
    deadline_hop: u64,
    /// What the detector was doing before the beep: it goes back to that if speech follows.
    prior_phase: Phase,
    /// Hops of speech, with no tone ringing, since the beep was held.
    speech_hops: u32,
}

impl HeldBeep {
    fn event(&self, at: SampleTime) -> AmdEvent {
        let ms = (self.end_sample - self.start_sample) / 8;
        let cause = if self.dual {
            Cause::new(format_args!(
                "BEEP-{:.0}+{:.0}HZ-{ms}MS-{}T",
                self.f1, self.f2, self.tones
            ))
        } else {
            Cause::new(format_args!("BEEP-{:.0}HZ-{ms}MS-{}T", self.f1, self.tones))
        };
        AmdEvent {
            kind: AmdEventKind::MachineEndBeep {
                beep_start: SampleTime(self.start_sample),
                beep_end: SampleTime(self.end_sample),
            },
            at,
            confidence: self.confidence,
            cause,
        }
    }
}

impl Amd {
    pub fn new(config: AmdConfig, model: Option<BeepModel>) -> Self {
        Amd {
            analyzer: HopAnalyzer::new(),
            vad: Vad::new(&config),
            greeting: Greeting::new(&config),
            tones: ToneTracker::new(&config),
            model,
            phase: Phase::Listening,
            hop: 0,
            silence_run: 0,
            after_machine_silence: 0,
            pending: None,
            stats: AmdStats::default(),
            end_silence_hops: config::hops(config.greeting_end_silence_ms),
            beep_timeout_hops: config::hops(config.beep_timeout_ms) as u64,
            candidate_log: None,
            last_speech: false,
            last_model_probability: None,
            cues: CueTracker::new(),
            last_human_probability: None,
            greeting_model_failed: false,
            human_min_silence_hops: config.greeting_human_min_silence_ms / 10,
            model_deadline_hops: u64::from(config::hops(config.max_analysis_ms)),
            human_ticks: 0,
            machine_ticks: 0,
            rules_proposal: None,
            held_beep: None,
            sequence_wait_hops: u64::from(config.beep_sequence_wait_ms.div_ceil(10)),
            speech_veto_hops: config.beep_speech_veto_ms.div_ceil(10),
            config,
        }
    }

    /// Whether the last hop analysed was speech.
    pub fn in_speech(&self) -> bool {
        self.last_speech
    }

    /// The beep model's probability for the last candidate it scored, if any.
    pub fn last_model_probability(&self) -> Option<f32> {
        self.last_model_probability
    }

    /// The greeting model's last probability that a person answered, if it ran.
    pub fn last_human_probability(&self) -> Option<f32> {
        self.last_human_probability
    }

    /// Training mode: every tone candidate is recorded and none ends the analysis, so a whole
    /// recording yields all its candidates (used to build the beep model's data set).
    pub fn with_candidate_log(mut self) -> Self {
        self.candidate_log = Some(Vec::new());
        self
    }

    /// The candidates recorded in training mode.
    pub fn take_candidates(&mut self) -> Vec<BeepCandidate> {
        self.candidate_log.take().unwrap_or_default()
    }

    pub fn config(&self) -> &AmdConfig {
        &self.config
    }

    pub fn stats(&self) -> AmdStats {
        self.stats
    }

    /// True once the detector has nothing more to say for this call.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done && self.pending.is_none() && self.held_beep.is_none()
    }

    /// Analyses one 20 ms frame. Returns at most one event per call; a second event decided in
    /// the same frame is returned by the next call (or by `finish`).
    pub fn process(&mut self, frame: &Frame) -> Option<AmdEvent> {
        if let Some(event) = self.pending.take() {
            self.step_frame(frame);
            return Some(event);
        }
        self.step_frame(frame)
    }

    fn step_frame(&mut self, frame: &Frame) -> Option<AmdEvent> {
        let mut first = None;
        for hop in frame.samples.chunks_exact(HOP) {
            if self.phase == Phase::Done && self.held_beep.is_none() && self.candidate_log.is_none()
            {
                break;
            }
            if let Some(event) = self.step_hop(hop) {
                if first.is_none() {
                    first = Some(event);
                } else {
                    self.pending = Some(event);
                }
            }
        }
        first
    }

    /// Ends the analysis (the call or the recording ended). Returns what is still owed: a
    /// pending event, a beep that was still ringing out, or `unknown` if nothing was decided.
    pub fn finish(&mut self) -> Option<AmdEvent> {
        if let Some(event) = self.pending.take() {
            return Some(event);
        }
        let at = self.now();
        if self.held_beep.is_some() {
            if let Some(ToneVerdict::Candidate(c)) = self.tones.finish(&self.tone_context()) {
                self.extend_held_beep(&c);
            }
            return self.held_beep.take().map(|h| h.event(at));
        }
        let verdict = match self.phase {
            Phase::Done => return None,
            _ => self.tones.finish(&self.tone_context()),
        };
        if let Some(v) = verdict
            && let Some(event) = self.on_tone(v)
        {
            // The recording ended: nothing can extend the beep, so it is not held.
            self.held_beep = None;
            self.phase = Phase::Done;
            return Some(event);
        }
        let event = match self.phase {
            Phase::Listening => AmdEvent {
                kind: AmdEventKind::Unknown,
                at,
                confidence: 0.0,
                cause: Cause::new(format_args!("HANGUP-{}", at.as_ms())),
            },
            Phase::AwaitingEnd { .. } => AmdEvent {
                kind: AmdEventKind::BeepTimeout,
                at,
                confidence: 0.5,
                cause: Cause::new(format_args!("HANGUP-{}", at.as_ms())),
            },
            Phase::Done => return None,
        };
        self.phase = Phase::Done;
        Some(event)
    }

    fn now(&self) -> SampleTime {
        SampleTime(self.hop * HOP as u64)
    }

    fn tone_context(&self) -> ToneContext {
        ToneContext {
            floor_db: self.vad.tone_floor_db(),
            speech_peak_db: self.vad.speech_peak_db(),
            greeting_speech_ms: self.greeting.speech_ms(),
            silence_ms: self.silence_run * 10,
            after_machine: matches!(self.phase, Phase::AwaitingEnd { .. })
                || self.held_beep.is_some(),
        }
    }

    fn step_hop(&mut self, hop: &[i16]) -> Option<AmdEvent> {
        self.hop += 1;
        self.stats.hops += 1;
        let features = self.analyzer.push(hop);
        let speech = self.vad.push(&features);
        self.last_speech = speech;
        let cue_row = self.cues.push(&features, speech, self.vad.floor_db());
        if speech {
            self.silence_run = 0;
        } else {
            self.silence_run += 1;
        }
        let ctx = self.tone_context();
        let verdict = self.tones.push(&features, &ctx);
        if self.held_beep.is_some() {
            return self.step_held_beep(verdict, speech);
        }
        if let Some(verdict) = verdict
            && let Some(event) = self.on_tone(verdict)
            && self.phase != Phase::Done
        {
            self.phase = Phase::Done;
            if let AmdEventKind::MachineEndBeep { .. } = event.kind
                && self.sequence_wait_hops > 0
                && let Some(held) = self.held_beep.as_mut()
            {
                // on_tone filled in what the event will say; it leaves when the wait is over.
                held.until_hop = self.hop + self.sequence_wait_hops;
                held.deadline_hop =
                    held.until_hop + u64::from(config::hops(self.config.beep_max_ms));
                return None;
            }
            self.held_beep = None;
            return Some(event);
        }
        if self.phase == Phase::Done {
            // Only reached in training mode, which records tone candidates to the end.
            return None;
        }
        match self.phase {
            Phase::Listening => {
                // A tone too quiet for the speech gate is still not silence: the human rule
                // must not fire while a beep is ringing, nor before its group is judged.
                let ruled = if !speech && self.tones.busy() {
                    self.greeting.push_hold()
                } else if !speech && self.vad.is_background() {
                    self.greeting.push_background()
                } else {
                    self.greeting.push(speech)
                };
                if !self.judged_by_model() {
                    let (verdict, rule) = ruled?;
                    return Some(self.on_greeting(verdict, rule));
                }
                // The model judges; the rules that stay rules are silence at answer and the
                // analysis limit.
                match ruled {
                    Some((verdict, rule @ GreetingRule::NoSpeech { .. })) => {
                        return Some(self.on_greeting(verdict, rule));
                    }
                    Some((GreetingVerdict::Machine | GreetingVerdict::Human, rule)) => {
                        self.rules_proposal = Some(rule);
                    }
                    _ => {}
                }
                if self.hop >= self.model_deadline_hops {
                    let total_ms = (self.hop * 10) as u32;
                    return Some(self.on_greeting(
                        GreetingVerdict::Unknown,
                        GreetingRule::TooLong { total_ms },
                    ));
                }
                // Every tick after speech began is judged, a ringing tone included, so the
                // decision is exactly the policy `models/train_greeting.py` replays on the cue
                // rows (skipping busy ticks made the detector decide later than its replay; a
                // beep still ends the call through the tone detector).
                let row = cue_row?;
                if !self.cues.speech_started() {
                    return None;
                }
                self.judge_by_model(&row)
            }
            Phase::AwaitingEnd { since_hop } => {
                self.after_machine_silence = if speech {
                    0
                } else {
                    self.after_machine_silence + 1
                };
                if self.after_machine_silence >= self.end_silence_hops && !self.tones.busy() {
                    self.phase = Phase::Done;
                    return Some(AmdEvent {
                        kind: AmdEventKind::MachineEndSilence,
                        at: self.now(),
                        confidence: 0.7,
                        cause: Cause::new(format_args!(
                            "ENDSILENCE-{}-{}",
                            self.after_machine_silence * 10,
                            self.config.greeting_end_silence_ms
                        )),
                    });
                }
                if self.hop - since_hop >= self.beep_timeout_hops {
                    self.phase = Phase::Done;
                    return Some(AmdEvent {
                        kind: AmdEventKind::BeepTimeout,
                        at: self.now(),
                        confidence: 0.5,
                        cause: Cause::new(format_args!(
                            "BEEPTIMEOUT-{}",
                            self.config.beep_timeout_ms
                        )),
                    });
                }
                None
            }
            Phase::Done => None,
        }
    }

    fn on_tone(&mut self, verdict: ToneVerdict) -> Option<AmdEvent> {
        let at = self.now();
        match verdict {
            ToneVerdict::Sit { first_hz } => Some(AmdEvent {
                kind: AmdEventKind::Sit,
                at,
                confidence: 0.95,
                cause: Cause::new(format_args!("SIT-{first_hz:.0}HZ")),
            }),
            ToneVerdict::Fax { hz, duration_ms } => Some(AmdEvent {
                kind: AmdEventKind::Fax,
                at,
                confidence: 0.95,
                cause: Cause::new(format_args!("FAX-{hz:.0}HZ-{duration_ms}MS")),
            }),
            ToneVerdict::Rejected(_) => None,
            ToneVerdict::Candidate(candidate) => {
                self.stats.tone_candidates += 1;
                if let Some(log) = &mut self.candidate_log {
                    log.push(candidate);
                    return None;
                }
                let (is_beep, confidence) = self.confirm(&candidate);
                if !is_beep {
                    self.stats.beeps_rejected += 1;
                    return None;
                }
                let main = candidate.main();
                let held = HeldBeep {
                    start_sample: candidate.start_sample,
                    end_sample: candidate.end_sample,
                    tones: candidate.count,
                    f1: main.f1,
                    f2: main.f2,
                    dual: main.dual,
                    confidence,
                    until_hop: u64::MAX,
                    deadline_hop: u64::MAX,
                    prior_phase: self.phase,
                    speech_hops: 0,
                };
                self.held_beep = Some(held);
                Some(held.event(at))
            }
        }
    }

    /// One hop while a beep is held: a next confirmed tone group extends it (the reported end
    /// becomes that group's end); speech with no tone ringing drops it (the detector goes back
    /// to what it was doing); the beep leaves once no tone rings and the wait is over.
    fn step_held_beep(&mut self, verdict: Option<ToneVerdict>, speech: bool) -> Option<AmdEvent> {
        if let Some(ToneVerdict::Candidate(c)) = verdict {
            self.extend_held_beep(&c);
        }
        let held = self.held_beep.as_mut()?;
        let quiet = !self.tones.busy();
        if speech && quiet && self.speech_veto_hops > 0 {
            held.speech_hops += 1;
            if held.speech_hops >= self.speech_veto_hops {
                self.phase = held.prior_phase;
                self.held_beep = None;
                self.stats.beeps_vetoed_by_speech += 1;
                return None;
            }
        }
        let held = *held;
        if (self.hop >= held.until_hop && quiet) || self.hop >= held.deadline_hop {
            self.held_beep = None;
            return Some(held.event(self.now()));
        }
        None
    }

    fn extend_held_beep(&mut self, c: &BeepCandidate) {
        let Some(held) = self.held_beep else {
            return;
        };
        // A group that starts after the wait is not part of this beep.
        if c.start_sample > held.end_sample + self.sequence_wait_hops * HOP as u64 + HOP as u64 {
            return;
        }
        let (is_beep, confidence) = self.confirm(c);
        if !is_beep {
            self.stats.beeps_rejected += 1;
            return;
        }
        self.held_beep = Some(HeldBeep {
            end_sample: c.end_sample.max(held.end_sample),
            tones: held.tones + c.count,
            confidence: held.confidence.max(confidence),
            until_hop: self.hop + self.sequence_wait_hops,
            ..held
        });
    }

    /// Model when present, else fixed rules; a model failure falls back to the rules.
    fn confirm(&mut self, c: &BeepCandidate) -> (bool, f32) {
        if let Some(model) = &self.model {
            self.stats.model_runs += 1;
            match model.score(c) {
                Ok(p) => {
                    self.last_model_probability = Some(p);
                    return (p >= self.config.beep_model_threshold, p);
                }
                Err(_) => self.stats.model_errors += 1,
            }
        }
        let ok = rules_accept(c);
        (ok, if ok { 0.8 } else { 0.2 })
    }
}

/// The beep rules used without the model: a clean, steady, non-decaying tone.
pub fn rules_accept(c: &BeepCandidate) -> bool {
    c.segments().iter().all(|s| {
        let purity_needed = if s.dual { 0.88 } else { 0.85 };
        s.mean_purity() >= purity_needed
            && s.freq_std_hz() < 15.0
            && s.harmonic_sum / s.hops.max(1) as f32 <= 0.3
            && s.level_slope_db_s() > -40.0
            && s.level_std_db() < 4.0
            && s.mean_jitter_db() < 1.0
    })
}

/// Runs a whole recording through a fresh detector, the way a live call feeds it: frame by
/// frame until the detector is done, then `finish`. Returns every event.
pub fn analyse_recording(
    pcm: &[i16],
    config: &AmdConfig,
    model: Option<BeepModel>,
) -> (Vec<AmdEvent>, AmdStats) {
    let mut amd = Amd::new(config.clone(), model);
    let mut events = Vec::new();
    for frame in crate::audio::frames_of(pcm) {
        if let Some(event) = amd.process(&frame) {
            events.push(event);
        }
        if amd.is_done() {
            break;
        }
    }
    while let Some(event) = amd.finish() {
        events.push(event);
    }
    (events, amd.stats())
}

const _: () = assert!(FRAME_SAMPLES.is_multiple_of(HOP));
