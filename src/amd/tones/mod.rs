//! Tone detection: voicemail beeps (single, dual, two- and three-tone sequences), SIT, fax
//! CNG/CED, and rejection of ringback, busy/reorder, dial tone and DTMF.
//!
//! Works on the per-hop spectral features: hops whose energy sits in one or two narrow peaks
//! form tone segments (stable frequency), segments separated by short gaps form a group, and a
//! finished group is classified. A group that may be a beep becomes a [`BeepCandidate`] whose
//! features the ONNX model (or, without it, fixed rules) confirms. Owns the tone history of one
//! call; no allocation per hop.

use super::config::{AmdConfig, hops};
use super::features::{HOP, HopFeatures};

/// Segments kept per group: beeps have at most three tones, SIT has three.
const MAX_SEGMENTS: usize = 6;
/// Hop-level history used to place tone onsets and offsets precisely.
const LEVEL_HISTORY: usize = 16;
/// Features handed to the beep model.
pub const BEEP_FEATURES: usize = 24;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Segment {
    pub start_hop: u64,
    pub end_hop: u64,
    /// Refined onset/offset (first and last hop carrying the tone's energy).
    pub onset_hop: u64,
    pub offset_hop: u64,
    pub f1: f32,
    pub f2: f32,
    pub dual: bool,
    pub hops: u32,
    purity_sum: f32,
    pub min_purity: f32,
    freq_sum_sq: f32,
    freq_sum: f32,
    pub freq_min: f32,
    pub freq_max: f32,
    level_sum: f32,
    level_sum_sq: f32,
    // least-squares slope of level over hop index
    level_t_sum: f32,
    t_sum: f32,
    t_sum_sq: f32,
    pub harmonic_sum: f32,
    pub flatness_sum: f32,
    pub zcr_sum: f32,
    pub low_share_sum: f32,
    pub jitter_sum: f32,
    last_level: f32,
    pub onset_jump_db: f32,
    pub offset_drop_db: f32,
}

impl Segment {
    fn begin(hop: u64, f: &HopFeatures, dual: bool) -> Self {
        let mut s = Segment {
            start_hop: hop,
            end_hop: hop,
            onset_hop: hop,
            offset_hop: hop,
            f1: if dual {
                f.peak_hz.min(f.peak2_hz)
            } else {
                f.peak_hz
            },
            f2: if dual { f.peak_hz.max(f.peak2_hz) } else { 0.0 },
            dual,
            min_purity: 1.0,
            freq_min: f32::INFINITY,
            freq_max: 0.0,
            last_level: f.band_db,
            ..Segment::default()
        };
        s.add(hop, f);
        s
    }

    fn add(&mut self, hop: u64, f: &HopFeatures) {
        let purity = if self.dual {
            f.dual_purity()
        } else {
            f.peak_purity
        };
        let freq = if self.dual {
            f.peak_hz.min(f.peak2_hz)
        } else {
            f.peak_hz
        };
        let t = (hop - self.start_hop) as f32;
        self.end_hop = hop;
        self.hops += 1;
        self.purity_sum += purity;
        self.min_purity = self.min_purity.min(purity);
        self.freq_sum += freq;
        self.freq_sum_sq += freq * freq;
        self.freq_min = self.freq_min.min(freq);
        self.freq_max = self.freq_max.max(freq);
        self.level_sum += f.band_db;
        self.level_sum_sq += f.band_db * f.band_db;
        self.level_t_sum += f.band_db * t;
        self.t_sum += t;
        self.t_sum_sq += t * t;
        self.harmonic_sum += f.harmonic_ratio.min(10.0);
        self.flatness_sum += f.flatness;
        self.zcr_sum += f.zcr;
        self.low_share_sum += f.low_share;
        // The first hops ramp up while the spectral window fills; they say nothing of beating.
        if self.hops > 3 {
            self.jitter_sum += (f.band_db - self.last_level).abs();
        }
        self.last_level = f.band_db;
        let n = self.hops as f32;
        // Running mean frequency, so a drifting tone is followed.
        if self.dual {
            self.f1 = self.freq_sum / n;
            let hi = f.peak_hz.max(f.peak2_hz);
            self.f2 += (hi - self.f2) / n;
        } else {
            self.f1 = self.freq_sum / n;
        }
    }

    fn matches(&self, f: &HopFeatures, dual: bool) -> bool {
        if dual != self.dual {
            return false;
        }
        let tolerance = |hz: f32| (hz * 0.03).max(25.0);
        if dual {
            let (lo, hi) = (f.peak_hz.min(f.peak2_hz), f.peak_hz.max(f.peak2_hz));
            (lo - self.f1).abs() < tolerance(self.f1) && (hi - self.f2).abs() < tolerance(self.f2)
        } else {
            (f.peak_hz - self.f1).abs() < tolerance(self.f1)
        }
    }

    pub fn duration_ms(&self) -> u32 {
        ((self.offset_hop + 1 - self.onset_hop) * 10) as u32
    }

    pub fn mean_purity(&self) -> f32 {
        self.purity_sum / self.hops.max(1) as f32
    }

    /// Mean hop-to-hop level change (dB): near 0 for a steady tone, large for two close tones
    /// beating (ringback 440+480 Hz beats at 40 Hz).
    pub fn mean_jitter_db(&self) -> f32 {
        self.jitter_sum / self.hops.saturating_sub(4).max(1) as f32
    }

    pub fn mean_level_db(&self) -> f32 {
        self.level_sum / self.hops.max(1) as f32
    }

    pub fn level_std_db(&self) -> f32 {
        let n = self.hops.max(1) as f32;
        let mean = self.level_sum / n;
        (self.level_sum_sq / n - mean * mean).max(0.0).sqrt()
    }

    pub fn freq_std_hz(&self) -> f32 {
        let n = self.hops.max(1) as f32;
        let mean = self.freq_sum / n;
        (self.freq_sum_sq / n - mean * mean).max(0.0).sqrt()
    }

    /// Level slope in dB per second (negative for a decaying chime).
    pub fn level_slope_db_s(&self) -> f32 {
        let n = self.hops as f32;
        let denom = n * self.t_sum_sq - self.t_sum * self.t_sum;
        if n < 3.0 || denom.abs() < 1e-6 {
            return 0.0;
        }
        let slope_per_hop = (n * self.level_t_sum - self.t_sum * self.level_sum) / denom;
        slope_per_hop * 100.0
    }
}

/// What a finished tone group turned out to be.
#[derive(Clone, Copy, Debug, PartialEq)]
// Returned by value once per tone group; boxing the candidate would allocate on the audio path.
#[allow(clippy::large_enum_variant)]
pub enum ToneVerdict {
    /// A beep candidate, to be confirmed (model or rules).
    Candidate(BeepCandidate),
    /// Special information tone: the call reached an intercept.
    Sit { first_hz: f32 },
    /// Fax calling (CNG 1100 Hz) or answer (CED 2100 Hz) tone.
    Fax { hz: f32, duration_ms: u32 },
    /// A known network or keypad tone that is never a beep.
    Rejected(RejectReason),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    Ringback,
    Busy,
    DialTone,
    Dtmf,
    TooShort,
    TooLong,
}

/// A group of tone segments that could be a voicemail beep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BeepCandidate {
    pub segments: [Segment; MAX_SEGMENTS],
    pub count: usize,
    /// First sample of the beep and the sample just after it.
    pub start_sample: u64,
    pub end_sample: u64,
    /// Context at the time the group ended.
    pub floor_db: f32,
    pub speech_peak_db: f32,
    pub greeting_speech_ms: u32,
    pub silence_before_ms: u32,
    pub after_machine: bool,
}

impl ToneContext {
    /// A fax machine does not speak: after a spoken greeting, a 1100 Hz or 2100 Hz tone is a
    /// voicemail beep (a 1.1 kHz half-second beep read as fax CNG lost the whole message).
    pub fn fax_possible(&self) -> bool {
        !self.after_machine && self.greeting_speech_ms < FAX_MAX_SPEECH_MS
    }
}

/// Speech before a tone above which the tone cannot be a fax's.
const FAX_MAX_SPEECH_MS: u32 = 500;

impl BeepCandidate {
    pub fn segments(&self) -> &[Segment] {
        &self.segments[..self.count]
    }

    pub fn duration_ms(&self) -> u32 {
        ((self.end_sample - self.start_sample) / 8) as u32
    }

    /// Tonal time (sum of segment durations), ms.
    pub fn tonal_ms(&self) -> u32 {
        self.segments().iter().map(|s| s.duration_ms()).sum()
    }

    /// The loudest segment, which names the beep.
    pub fn main(&self) -> &Segment {
        self.segments()
            .iter()
            .max_by(|a, b| a.hops.cmp(&b.hops))
            .unwrap_or(&self.segments[0])
    }

    /// The model's input vector (documented in models/MODEL_CARD.md).
    pub fn features(&self) -> [f32; BEEP_FEATURES] {
        let segs = self.segments();
        let n = segs.len().max(1) as f32;
        let hops: f32 = segs.iter().map(|s| s.hops as f32).sum::<f32>().max(1.0);
        let wsum = |g: fn(&Segment) -> f32| segs.iter().map(g).sum::<f32>() / hops;
        let main = self.main();
        let mean_level = segs.iter().map(|s| s.level_sum).sum::<f32>() / hops;
        let gaps = if segs.len() > 1 {
            segs.windows(2)
                .map(|w| w[1].onset_hop.saturating_sub(w[0].offset_hop + 1) as f32 * 10.0)
                .sum::<f32>()
                / (segs.len() - 1) as f32
        } else {
            0.0
        };
        let peak_rel = if self.speech_peak_db.is_finite() {
            (mean_level - self.speech_peak_db).clamp(-60.0, 30.0)
        } else {
            0.0
        };
        [
            self.duration_ms() as f32 / 1000.0,
            n,
            segs.iter().filter(|s| s.dual).count() as f32,
            wsum(|s| s.purity_sum),
            segs.iter().map(|s| s.min_purity).fold(1.0, f32::min),
            segs.iter().map(|s| s.freq_std_hz()).fold(0.0, f32::max) / 100.0,
            segs.iter()
                .map(|s| s.freq_max - s.freq_min)
                .fold(0.0, f32::max)
                / 100.0,
            wsum(|s| s.harmonic_sum).min(10.0),
            wsum(|s| s.flatness_sum),
            mean_level / 10.0,
            (mean_level - self.floor_db).clamp(-20.0, 100.0) / 10.0,
            main.level_slope_db_s().clamp(-500.0, 500.0) / 100.0,
            main.level_std_db() / 10.0,
            main.onset_jump_db.clamp(-10.0, 80.0) / 10.0,
            main.offset_drop_db.clamp(-10.0, 80.0) / 10.0,
            main.f1 / 1000.0,
            wsum(|s| s.zcr_sum),
            wsum(|s| s.low_share_sum),
            (self.greeting_speech_ms as f32 / 1000.0).min(20.0),
            (self.silence_before_ms as f32 / 1000.0).min(3.0),
            peak_rel / 10.0,
            gaps / 100.0,
            if self.after_machine { 1.0 } else { 0.0 },
            wsum(|s| s.jitter_sum),
        ]
    }
}

/// Context the tone tracker needs from the rest of the detector at each hop.
#[derive(Clone, Copy, Debug)]
pub struct ToneContext {
    pub floor_db: f32,
    pub speech_peak_db: f32,
    pub greeting_speech_ms: u32,
    pub silence_ms: u32,
    pub after_machine: bool,
}

pub struct ToneTracker {
    config: ToneConfig,
    hop: u64,
    current: Option<Segment>,
    miss: u32,
    group: [Segment; MAX_SEGMENTS],
    group_len: usize,
    group_overflow: bool,
    since_group_tone: u32,
    silence_before_group_ms: u32,
    levels: [f32; LEVEL_HISTORY],
    ced_reported: bool,
    /// The tone that just stopped: its level, and the last hop its spectral tail may reach.
    tail: Option<(f32, u64)>,
    /// Loud, not (yet) tonal hops seen since the group's last tone.
    onset_hold: u32,
    /// Whether the group's tones may be a fax's: nothing spoke before its first tone.
    fax_possible: bool,
}

#[derive(Clone, Copy, Debug)]
struct ToneConfig {
    min_hz: f32,
    max_hz: f32,
    single_purity: f32,
    dual_purity: f32,
    margin_db: f32,
    min_dbfs: f32,
    min_segment_hops: u32,
    group_gap_hops: u32,
    beep_min_ms: u32,
    beep_max_ms: u32,
}

/// Loud hops after a tone that wait for the spectral window to recognise the next tone
/// before counting as gap (speech after a beep holds the group no longer than this).
const ONSET_HOLD_HOPS: u32 = 3;
/// Hops the spectral window keeps seeing a tone after its level fell.
const TAIL_HOPS: u64 = 4;
/// Non-tonal hops tolerated inside a segment (a lost packet, a window straddling an edge).
const MISS_TOLERANCE: u32 = 2;

impl ToneTracker {
    pub fn new(c: &AmdConfig) -> Self {
        ToneTracker {
            config: ToneConfig {
                min_hz: c.tone_min_hz,
                max_hz: c.tone_max_hz,
                single_purity: c.single_tone_purity,
                dual_purity: c.dual_tone_purity,
                margin_db: c.tone_margin_db,
                min_dbfs: c.min_tone_dbfs,
                min_segment_hops: 3,
                // The hop the tone stops in counts as the first gap hop, so a gap of exactly
                // `beep_gap_ms` must not end the group: one hop more than the gap.
                group_gap_hops: hops(c.beep_gap_ms) + 1,
                beep_min_ms: c.beep_min_ms,
                beep_max_ms: c.beep_max_ms,
            },
            hop: 0,
            current: None,
            miss: 0,
            group: [Segment::default(); MAX_SEGMENTS],
            group_len: 0,
            group_overflow: false,
            since_group_tone: 0,
            silence_before_group_ms: 0,
            levels: [-100.0; LEVEL_HISTORY],
            ced_reported: false,
            tail: None,
            onset_hold: 0,
            fax_possible: true,
        }
    }

    /// True while a tone is ringing.
    pub fn in_tone(&self) -> bool {
        self.current.is_some()
    }

    /// True while a tone is ringing or a tone group may still grow.
    pub fn busy(&self) -> bool {
        self.current.is_some() || self.group_len > 0
    }

    fn classify_hop(&self, f: &HopFeatures, floor_db: f32) -> Option<bool> {
        let c = &self.config;
        if f.band_db < c.min_dbfs || f.band_db < floor_db + c.margin_db {
            return None;
        }
        let in_band = |hz: f32| hz >= c.min_hz && hz <= c.max_hz;
        if f.peak_purity >= c.single_purity && in_band(f.peak_hz) {
            return Some(false);
        }
        let apart = (f.peak_hz - f.peak2_hz).abs() > 60.0;
        if f.dual_purity() >= c.dual_purity
            && f.peak2_purity >= 0.12
            && apart
            && in_band(f.peak_hz)
            && in_band(f.peak2_hz)
        {
            return Some(true);
        }
        None
    }

    /// Feeds one hop. Returns a verdict when a tone group ends (or a fax answer tone has lasted
    /// long enough to be sure).
    pub fn push(&mut self, f: &HopFeatures, ctx: &ToneContext) -> Option<ToneVerdict> {
        self.hop += 1;
        let hop = self.hop;
        self.levels[(hop as usize) % LEVEL_HISTORY] = f.energy_db;
        let mut tonal = self.classify_hop(f, ctx.floor_db);
        // The hop level is not smeared by the spectral window: a drop of 12 dB means the tone
        // has stopped, even while the window still sees it.
        let stopped = self
            .current
            .as_ref()
            .is_some_and(|seg| seg.hops >= 2 && f.energy_db < seg.mean_level_db() - 12.0);
        if stopped {
            tonal = None;
            self.miss = MISS_TOLERANCE;
        }
        // After a tone stops, the spectral window still sees it for a few hops while the hop
        // level has fallen: that tail is not a new tone (it would restart the group's gap
        // count and delay the end of the beep by the window's length).
        if self.current.is_none()
            && let Some((level, until)) = self.tail
            && hop <= until
            && f.energy_db < level - 12.0
        {
            tonal = None;
        }

        match (&mut self.current, tonal) {
            (Some(seg), Some(dual)) if seg.matches(f, dual) => {
                seg.add(hop, f);
                self.miss = 0;
            }
            (Some(_), _) if self.miss < MISS_TOLERANCE && tonal.is_none() => {
                self.miss += 1;
            }
            (Some(_), _) => {
                self.close_segment(ctx);
                if let Some(dual) = tonal {
                    self.open_segment(hop, f, dual, ctx);
                }
            }
            (None, Some(dual)) => self.open_segment(hop, f, dual, ctx),
            (None, None) => {}
        }

        if self.current.is_some() {
            self.since_group_tone = 0;
            self.onset_hold = 0;
            // A fax answer tone is reported while it lasts: no need to wait 3 s for its end.
            if let Some(seg) = &self.current
                && !self.ced_reported
                && self.fax_possible
                && !seg.dual
                && (seg.f1 - 2100.0).abs() < 40.0
                && seg.hops >= 100
            {
                self.ced_reported = true;
                return Some(ToneVerdict::Fax {
                    hz: seg.f1,
                    duration_ms: seg.hops * 10,
                });
            }
            return None;
        }
        if self.group_len == 0 {
            return None;
        }
        // The next tone of a sequence is loud from its first hop, a few hops before the
        // spectral window calls it a tone: such hops hold the group open instead of counting
        // as gap, so the wait after the last tone is exactly the longest gap between tones.
        let last_level = self.group[self.group_len - 1].mean_level_db();
        let loud = f.energy_db >= (last_level - 12.0).max(ctx.floor_db + self.config.margin_db);
        if loud && self.onset_hold < ONSET_HOLD_HOPS {
            self.onset_hold += 1;
            return None;
        }
        self.since_group_tone += 1;
        if self.since_group_tone < self.config.group_gap_hops {
            return None;
        }
        let verdict = self.classify_group(ctx);
        self.group_len = 0;
        self.group_overflow = false;
        self.onset_hold = 0;
        verdict
    }

    fn level_at(&self, hop: u64) -> f32 {
        self.levels[(hop as usize) % LEVEL_HISTORY]
    }

    fn open_segment(&mut self, hop: u64, f: &HopFeatures, dual: bool, ctx: &ToneContext) {
        let mut seg = Segment::begin(hop, f, dual);
        // The spectral window trails the hop by up to 22 ms: the onset is the earliest recent
        // hop already carrying the tone's level.
        let threshold = (f.energy_db - 10.0).max(ctx.floor_db + 3.0);
        let mut onset = hop;
        for back in 1..=3u64 {
            if hop <= back || self.level_at(hop - back) < threshold {
                break;
            }
            onset = hop - back;
        }
        if let Some(prev) = self.group[..self.group_len].last() {
            onset = onset.max(prev.offset_hop + 1);
        }
        seg.onset_hop = onset;
        seg.onset_jump_db = f.energy_db - self.level_at(onset.saturating_sub(2));
        if self.group_len == 0 {
            self.silence_before_group_ms = ctx.silence_ms;
            // Read before the tone: the speech detector counts a long tone as speech.
            self.fax_possible = ctx.fax_possible();
        }
        self.current = Some(seg);
        self.miss = 0;
    }

    fn close_segment(&mut self, ctx: &ToneContext) {
        let Some(mut seg) = self.current.take() else {
            return;
        };
        self.miss = 0;
        self.tail = Some((seg.mean_level_db(), self.hop + TAIL_HOPS));
        if seg.hops < self.config.min_segment_hops {
            return;
        }
        // Offset: the last hop, up to the tolerated misses after the last tonal one, whose
        // level is still within 10 dB of the tone.
        let level = seg.mean_level_db();
        let threshold = (level - 10.0).max(ctx.floor_db + 3.0);
        let mut offset = seg.end_hop;
        for ahead in 1..=MISS_TOLERANCE as u64 {
            let h = seg.end_hop + ahead;
            if h > self.hop || self.level_at(h) < threshold {
                break;
            }
            offset = h;
        }
        // The trailing spectral window keeps seeing the tone for up to 2 hops after it stops.
        while offset > seg.onset_hop && self.level_at(offset) < threshold {
            offset -= 1;
        }
        seg.offset_hop = offset;
        seg.offset_drop_db = level - self.level_at((offset + 2).min(self.hop));
        if self.group_len < MAX_SEGMENTS {
            self.group[self.group_len] = seg;
            self.group_len += 1;
        } else {
            self.group_overflow = true;
        }
    }

    /// Ends the call: a group still open is judged now.
    pub fn finish(&mut self, ctx: &ToneContext) -> Option<ToneVerdict> {
        self.close_segment(ctx);
        if self.group_len == 0 {
            return None;
        }
        let v = self.classify_group(ctx);
        self.group_len = 0;
        v
    }

    fn classify_group(&self, ctx: &ToneContext) -> Option<ToneVerdict> {
        let segs = &self.group[..self.group_len];
        if let Some(v) = known_tones(segs, self.fax_possible) {
            return Some(v);
        }
        let mut candidate = BeepCandidate {
            segments: self.group,
            count: self.group_len,
            start_sample: segs[0].onset_hop.saturating_sub(1) * HOP as u64,
            end_sample: segs[segs.len() - 1].offset_hop * HOP as u64,
            floor_db: ctx.floor_db,
            speech_peak_db: ctx.speech_peak_db,
            greeting_speech_ms: ctx.greeting_speech_ms,
            silence_before_ms: self.silence_before_group_ms,
            after_machine: ctx.after_machine,
        };
        if self.group_overflow || candidate.tonal_ms() > self.config.beep_max_ms {
            return Some(ToneVerdict::Rejected(RejectReason::TooLong));
        }
        if candidate.tonal_ms() < self.config.beep_min_ms {
            return Some(ToneVerdict::Rejected(RejectReason::TooShort));
        }
        // Hop h covers samples [(h-1)*80, h*80).
        candidate.end_sample = candidate.end_sample.max(candidate.start_sample + 8);
        Some(ToneVerdict::Candidate(candidate))
    }
}

fn near(hz: f32, target: f32, rel: f32) -> bool {
    (hz - target).abs() <= target * rel
}

const DTMF_ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const DTMF_COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// Network, keypad, SIT and fax tones, recognised by frequency and cadence. `fax_possible`:
/// nothing spoke before the tone (see [`ToneContext::fax_possible`]).
fn known_tones(segs: &[Segment], fax_possible: bool) -> Option<ToneVerdict> {
    // Two tones closer than the window resolves read as one beating tone.
    for s in segs.iter().filter(|s| !s.dual && s.mean_jitter_db() > 1.5) {
        if near(s.f1, 460.0, 0.03) {
            return Some(ToneVerdict::Rejected(RejectReason::Ringback));
        }
        if near(s.f1, 395.0, 0.04) {
            return Some(ToneVerdict::Rejected(RejectReason::DialTone));
        }
    }
    for s in segs.iter().filter(|s| s.dual) {
        let pair = |a: f32, b: f32| near(s.f1, a, 0.03) && near(s.f2, b, 0.03);
        if pair(440.0, 480.0) {
            return Some(ToneVerdict::Rejected(RejectReason::Ringback));
        }
        if pair(480.0, 620.0) {
            return Some(ToneVerdict::Rejected(RejectReason::Busy));
        }
        if pair(350.0, 440.0) {
            return Some(ToneVerdict::Rejected(RejectReason::DialTone));
        }
        if DTMF_ROWS.iter().any(|&r| near(s.f1, r, 0.025))
            && DTMF_COLS.iter().any(|&c| near(s.f2, c, 0.025))
        {
            return Some(ToneVerdict::Rejected(RejectReason::Dtmf));
        }
    }
    // A tone interrupted by a lost packet or a level dip arrives as two segments of the same
    // frequency: join them before reading cadences.
    let mut merged = [(0.0f32, 0u32); MAX_SEGMENTS];
    let mut n = 0;
    for s in segs.iter().filter(|s| !s.dual) {
        if n > 0 && near(s.f1, merged[n - 1].0, 0.02) {
            merged[n - 1].1 += s.duration_ms();
        } else if n < MAX_SEGMENTS {
            merged[n] = (s.f1, s.duration_ms());
            n += 1;
        }
    }
    let singles = &merged[..n];
    let only_singles = segs.iter().all(|s| !s.dual);
    // SIT: 913.8/985.2 then 1370.6/1428.5 then 1776.7 Hz, in order, each 200-450 ms.
    let sit = |(hz, ms): (f32, u32), a: f32, b: f32| {
        (near(hz, a, 0.02) || near(hz, b, 0.02)) && (200..=450).contains(&ms)
    };
    for w in singles.windows(2) {
        // The first two tones are enough: the third (1776.7 Hz) may be lost.
        if sit(w[0], 913.8, 985.2) && sit(w[1], 1370.6, 1428.5) {
            return Some(ToneVerdict::Sit { first_hz: w[0].0 });
        }
    }
    if only_singles
        && fax_possible
        && let [(hz, ms)] = singles
    {
        if near(*hz, 1100.0, 0.035) && (350..=900).contains(ms) {
            return Some(ToneVerdict::Fax {
                hz: *hz,
                duration_ms: *ms,
            });
        }
        if near(*hz, 2100.0, 0.02) && *ms >= 1000 {
            return Some(ToneVerdict::Fax {
                hz: *hz,
                duration_ms: *ms,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests;
