//! The greeting cues: a fixed-size summary of the call so far (timing of speech and silence,
//! levels, spectral shape, background), produced every 100 ms for the learned human/machine
//! decision (`models/greeting.onnx`, see [`super::model`]).
//!
//! Sans-IO and allocation-free: per hop it updates running sums and a 100-hop speech bitmap,
//! and every [`TICK_HOPS`] hops it writes [`CUE_FEATURES`] numbers. The same code makes the
//! training rows (`trunx bench greeting-features`) and the live rows, so the model sees in
//! production exactly what it was trained on. It decides nothing.

use super::features::HopFeatures;

/// Hops (of 10 ms) between two cue rows: one row, and one model run, per 100 ms.
pub const TICK_HOPS: u32 = 10;
/// Numbers in one cue row (the model's input width).
pub const CUE_FEATURES: usize = 34;
/// A silence this long (hops) ends a speech segment; shorter gaps are inside a segment.
const SEGMENT_GAP_HOPS: u32 = 15;
/// Cap on times (s) so a long call cannot leave the range the model was trained on.
const MAX_SECONDS: f32 = 12.0;

/// Names of the cue columns, in order (the training CSV's documentation and the model card).
pub const CUE_NAMES: [&str; CUE_FEATURES] = [
    "t_s",
    "speech_started",
    "initial_silence_s",
    "since_first_speech_s",
    "speech_s",
    "segments",
    "first_segment_s",
    "first_segment_done",
    "silence_run_s",
    "speech_run_s",
    "longest_speech_run_s",
    "longest_gap_s",
    "speech_share",
    "speech_db_10",
    "speech_above_floor_db_10",
    "speech_level_std_db_10",
    "speech_flatness",
    "speech_zcr",
    "speech_low_share",
    "speech_purity",
    "busy_silence_share",
    "speech_modulation_db_10",
    "speech_last_1s",
    "speech_last_300ms",
    "last_300ms_vs_speech_db_10",
    "floor_db_10",
    "gaps_50_150ms_per_s",
    "gaps_150_300ms_per_s",
    "gaps_300_600ms_per_s",
    "gaps_600ms_up_per_s",
    "runs_under_100ms_per_s",
    "runs_100_250ms_per_s",
    "runs_250_500ms_per_s",
    "runs_500ms_up_per_s",
];
/// Upper edges (hops) of the pause-length bins: the rhythm of pauses between words, phrases and
/// sentences, which differs between someone answering and a greeting read in one take.
const GAP_BIN_EDGES: [u32; 3] = [15, 30, 60];
/// Shortest silence counted as a pause (shorter ones are inside a word).
const GAP_MIN_HOPS: u32 = 5;
/// Upper edges (hops) of the speech-run-length bins.
const RUN_BIN_EDGES: [u32; 3] = [10, 25, 50];

/// Running cues of one call.
#[derive(Clone, Debug, Default)]
pub struct CueTracker {
    hop: u32,
    first_speech_hop: Option<u32>,
    speech_hops: u32,
    segments: u32,
    first_segment_hops: u32,
    first_segment_done: bool,
    silence_run: u32,
    speech_run: u32,
    longest_speech_run: u32,
    longest_gap: u32,
    /// Speech sums: level, level², flatness, zcr, low share, purity, |level step|.
    level_sum: f64,
    level_sq_sum: f64,
    flatness_sum: f64,
    zcr_sum: f64,
    low_share_sum: f64,
    purity_sum: f64,
    step_sum: f64,
    last_level: Option<f32>,
    silence_hops: u32,
    busy_silence_hops: u32,
    /// Bit i = hop (now - i) was speech, for the last 100 hops.
    recent: u128,
    /// Levels of the last 30 hops (ring).
    recent_levels: [f32; 30],
    /// Completed pauses (>= [`GAP_MIN_HOPS`]) and speech runs after the first speech, by length.
    gap_bins: [u32; 4],
    run_bins: [u32; 4],
}

fn bin_of(len: u32, edges: &[u32; 3]) -> usize {
    edges.iter().take_while(|&&edge| len >= edge).count()
}

impl CueTracker {
    pub fn new() -> Self {
        CueTracker::default()
    }

    /// Speech heard so far, in ms.
    pub fn speech_ms(&self) -> u32 {
        self.speech_hops * 10
    }

    /// True once a hop of speech was heard.
    pub fn speech_started(&self) -> bool {
        self.first_speech_hop.is_some()
    }

    /// Feeds one hop with the VAD's verdict on it and the noise floor; every [`TICK_HOPS`]
    /// hops returns the cue row of the call so far.
    pub fn push(
        &mut self,
        f: &HopFeatures,
        speech: bool,
        floor_db: f32,
    ) -> Option<[f32; CUE_FEATURES]> {
        let level = f.energy_db.max(-100.0);
        self.recent_levels[self.hop as usize % 30] = level;
        self.hop += 1;
        self.recent = (self.recent << 1) | u128::from(speech);
        if speech {
            let after_speech = self.first_speech_hop.is_some();
            if !after_speech {
                self.first_speech_hop = Some(self.hop - 1);
                self.segments = 1;
            } else if self.silence_run >= SEGMENT_GAP_HOPS {
                self.segments += 1;
                self.first_segment_done = true;
            }
            if self.silence_run > 0 {
                self.longest_gap = self.longest_gap.max(self.silence_run);
                // The silence before the first speech is `initial_silence_s`, not a pause.
                if after_speech && self.silence_run >= GAP_MIN_HOPS {
                    self.gap_bins[bin_of(self.silence_run, &GAP_BIN_EDGES)] += 1;
                }
            }
            if self.segments == 1 {
                self.first_segment_hops = self.hop - self.first_speech_hop.unwrap_or(self.hop - 1);
            }
            self.speech_run += 1;
            self.silence_run = 0;
            self.speech_hops += 1;
            self.longest_speech_run = self.longest_speech_run.max(self.speech_run);
            let l = f64::from(level);
            self.level_sum += l;
            self.level_sq_sum += l * l;
            self.flatness_sum += f64::from(f.flatness);
            self.zcr_sum += f64::from(f.zcr);
            self.low_share_sum += f64::from(f.low_share);
            self.purity_sum += f64::from(f.peak_purity);
            if let Some(prev) = self.last_level {
                self.step_sum += f64::from((level - prev).abs());
            }
            self.last_level = Some(level);
        } else {
            if self.speech_run > 0 {
                self.run_bins[bin_of(self.speech_run, &RUN_BIN_EDGES)] += 1;
            }
            self.silence_run += 1;
            self.speech_run = 0;
            self.last_level = None;
            self.silence_hops += 1;
            if level > floor_db + 6.0 {
                self.busy_silence_hops += 1;
            }
            if self.first_speech_hop.is_some() && self.silence_run >= SEGMENT_GAP_HOPS {
                self.first_segment_done = true;
            }
        }
        if !self.hop.is_multiple_of(TICK_HOPS) {
            return None;
        }
        Some(self.row(floor_db))
    }

    fn row(&self, floor_db: f32) -> [f32; CUE_FEATURES] {
        let secs = |hops: u32| (hops as f32 / 100.0).min(MAX_SECONDS);
        let n = self.speech_hops.max(1) as f64;
        let mean = |sum: f64| {
            if self.speech_hops == 0 {
                0.0
            } else {
                (sum / n) as f32
            }
        };
        let speech_db = if self.speech_hops == 0 {
            floor_db
        } else {
            (self.level_sum / n) as f32
        };
        let level_var = (self.level_sq_sum / n - (self.level_sum / n).powi(2)).max(0.0);
        let started = self.first_speech_hop.is_some();
        let since_first = self.first_speech_hop.map_or(0, |h| self.hop - h);
        let last_300: f32 = self.recent_levels.iter().sum::<f32>() / 30.0;
        let stepped = self.speech_hops.saturating_sub(self.segments).max(1) as f64;
        // Rates over at least 1 s: one pause in the first 200 ms is not 5 pauses a second.
        let per_s = 100.0 / since_first.max(100) as f32;
        let (g, r) = (self.gap_bins, self.run_bins);
        [
            secs(self.hop),
            f32::from(u8::from(started)),
            secs(self.first_speech_hop.unwrap_or(self.hop)),
            secs(since_first),
            secs(self.speech_hops),
            self.segments.min(20) as f32,
            secs(self.first_segment_hops),
            f32::from(u8::from(self.first_segment_done)),
            secs(self.silence_run),
            secs(self.speech_run),
            secs(self.longest_speech_run),
            secs(self.longest_gap),
            if since_first == 0 {
                0.0
            } else {
                self.speech_hops as f32 / since_first as f32
            },
            speech_db / 10.0,
            if started {
                (speech_db - floor_db) / 10.0
            } else {
                0.0
            },
            level_var.sqrt() as f32 / 10.0,
            mean(self.flatness_sum),
            mean(self.zcr_sum),
            mean(self.low_share_sum),
            mean(self.purity_sum),
            if self.silence_hops == 0 {
                0.0
            } else {
                self.busy_silence_hops as f32 / self.silence_hops as f32
            },
            if self.speech_hops == 0 {
                0.0
            } else {
                (self.step_sum / stepped) as f32 / 10.0
            },
            (self.recent & ((1u128 << 100) - 1)).count_ones() as f32 / 100.0,
            (self.recent & ((1u128 << 30) - 1)).count_ones() as f32 / 30.0,
            if started {
                (last_300 - speech_db) / 10.0
            } else {
                0.0
            },
            floor_db.max(-100.0) / 10.0,
            g[0] as f32 * per_s,
            g[1] as f32 * per_s,
            g[2] as f32 * per_s,
            g[3] as f32 * per_s,
            r[0] as f32 * per_s,
            r[1] as f32 * per_s,
            r[2] as f32 * per_s,
            r[3] as f32 * per_s,
        ]
    }
}

/// The cue rows of a whole recording (time in ms at the end of each tick, row), fed exactly
/// as [`super::Amd`] feeds its tracker, up to `max_ms` of audio: the greeting model's
/// training rows.
pub fn rows_of_recording(
    pcm: &[i16],
    config: &super::AmdConfig,
    max_ms: u64,
) -> Vec<(u64, [f32; CUE_FEATURES])> {
    let mut analyzer = super::features::HopAnalyzer::new();
    let mut vad = super::vad::Vad::new(config);
    let mut cues = CueTracker::new();
    let mut rows = Vec::new();
    let hops = pcm.chunks_exact(super::features::HOP);
    for (i, hop) in hops.take((max_ms / 10) as usize).enumerate() {
        let features = analyzer.push(hop);
        let speech = vad.push(&features);
        if let Some(row) = cues.push(&features, speech, vad.floor_db()) {
            rows.push(((i as u64 + 1) * 10, row));
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(db: f32) -> HopFeatures {
        HopFeatures {
            energy_db: db,
            flatness: 0.2,
            ..HopFeatures::default()
        }
    }

    fn run(pattern: &[(bool, u32)]) -> Vec<[f32; CUE_FEATURES]> {
        let mut cues = CueTracker::new();
        let mut rows = Vec::new();
        for &(speech, hops) in pattern {
            for _ in 0..hops {
                let db = if speech { -20.0 } else { -60.0 };
                rows.extend(cues.push(&hop(db), speech, -62.0));
            }
        }
        rows
    }

    #[test]
    fn one_row_every_100_ms() {
        let rows = run(&[(false, 95)]);
        assert_eq!(rows.len(), 9);
        assert!((rows[8][0] - 0.9).abs() < 1e-6);
        assert_eq!(rows[8][1], 0.0, "no speech yet");
    }

    #[test]
    fn a_hello_then_silence_reads_as_one_finished_short_segment() {
        let rows = run(&[(false, 50), (true, 60), (false, 40)]);
        let last = rows.last().unwrap();
        let col = |name: &str| last[CUE_NAMES.iter().position(|n| *n == name).unwrap()];
        assert!((col("initial_silence_s") - 0.5).abs() < 1e-6);
        assert!((col("first_segment_s") - 0.6).abs() < 1e-6);
        assert_eq!(col("first_segment_done"), 1.0);
        assert_eq!(col("segments"), 1.0);
        assert!((col("silence_run_s") - 0.4).abs() < 1e-6);
        assert!((col("speech_last_1s") - 0.6).abs() < 1e-6);
        assert_eq!(col("speech_last_300ms"), 0.0);
        assert!((col("speech_above_floor_db_10") - 4.2).abs() < 1e-4);
    }

    #[test]
    fn short_pauses_stay_inside_a_segment_and_long_ones_split_it() {
        let rows = run(&[(true, 50), (false, 10), (true, 50), (false, 20), (true, 20)]);
        let last = rows.last().unwrap();
        let col = |name: &str| last[CUE_NAMES.iter().position(|n| *n == name).unwrap()];
        assert_eq!(col("segments"), 2.0);
        assert!((col("first_segment_s") - 1.1).abs() < 1e-6);
        assert!((col("longest_gap_s") - 0.2).abs() < 1e-6);
        assert!((col("speech_s") - 1.2).abs() < 1e-6);
    }

    #[test]
    fn pauses_and_speech_runs_are_counted_by_length_per_second_since_the_first_speech() {
        // Speech runs of 50, 8, 30, 12 and 5 hops; pauses of 3 (inside a word, not counted),
        // 10, 40 and 70 hops; the last row comes 2.3 s after the first speech.
        let rows = run(&[
            (false, 20),
            (true, 50),
            (false, 3),
            (true, 8),
            (false, 10),
            (true, 30),
            (false, 40),
            (true, 12),
            (false, 70),
            (true, 5),
            (false, 10),
        ]);
        let last = rows.last().unwrap();
        let col = |name: &str| last[CUE_NAMES.iter().position(|n| *n == name).unwrap()];
        let per_s = 1.0 / 2.3;
        let near = |name: &str, want: f32| {
            assert!(
                (col(name) - want).abs() < 5e-3,
                "{name} {} != {want}",
                col(name)
            );
        };
        near("gaps_50_150ms_per_s", per_s);
        near("gaps_150_300ms_per_s", 0.0);
        near("gaps_300_600ms_per_s", per_s);
        near("gaps_600ms_up_per_s", per_s);
        near("runs_under_100ms_per_s", 2.0 * per_s);
        near("runs_100_250ms_per_s", per_s);
        near("runs_250_500ms_per_s", per_s);
        near("runs_500ms_up_per_s", per_s);
    }
}
