//! Synthesised tones for the corpus: voicemail beeps of every shape, decoys (doorbell chimes,
//! DTMF, a sung vowel), Bellcore SIT and fax CNG/CED.
//!
//! Pure and seeded. Every tone segment starts and ends on a whole millisecond so the labels
//! written from [`Beep::tone_start`] / [`Beep::tone_end`] are exact.

use rand::Rng;
use rand::rngs::StdRng;

use super::channel::db_to_lin;

/// Samples per millisecond at 8 kHz.
pub const MS: usize = 8;
/// Raised-cosine on/off ramp of every synthesised tone segment.
const RAMP: usize = 4 * MS;

/// One sinusoid inside a segment; frequency may glide linearly from `hz` to `hz_end`.
#[derive(Clone, Debug, PartialEq)]
pub struct Partial {
    pub hz: f32,
    pub hz_end: f32,
    /// Peak amplitude (a sine of amplitude A has RMS A/sqrt 2).
    pub amp: f32,
}

/// A block of simultaneous partials placed at `offset` samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub offset: usize,
    pub len: usize,
    pub partials: Vec<Partial>,
    /// Amplitude at the end relative to the start (1.0 = flat); a linear ramp in between.
    pub end_gain: f32,
    /// Invert the phase every this many samples (CED with phase reversals), if any.
    pub phase_flip: Option<usize>,
    /// Exponential decay time constant in samples (bells), if any.
    pub decay: Option<f32>,
    pub ramp: usize,
}

impl Segment {
    pub fn steady(offset: usize, len: usize, partials: Vec<Partial>) -> Segment {
        Segment {
            offset,
            len,
            partials,
            end_gain: 1.0,
            phase_flip: None,
            decay: None,
            ramp: RAMP.min(len / 4),
        }
    }
}

/// Renders segments into a fresh buffer long enough to hold them all.
pub fn render(segments: &[Segment], rng: &mut StdRng) -> Vec<f32> {
    let len = segments.iter().map(|s| s.offset + s.len).max().unwrap_or(0);
    let mut out = vec![0.0f32; len];
    for seg in segments {
        let phases: Vec<f64> = seg
            .partials
            .iter()
            .map(|_| rng.random::<f64>() * std::f64::consts::TAU)
            .collect();
        for i in 0..seg.len {
            let t = i as f64 / 8000.0;
            let frac = i as f32 / seg.len.max(1) as f32;
            let mut env = 1.0 + (seg.end_gain - 1.0) * frac;
            if seg.ramp > 0 {
                let edge = i.min(seg.len - 1 - i);
                if edge < seg.ramp {
                    let x = edge as f32 / seg.ramp as f32;
                    env *= 0.5 - 0.5 * (std::f32::consts::PI * x).cos();
                }
            }
            if let Some(tau) = seg.decay {
                env *= (-(i as f32) / tau).exp();
            }
            let flip = match seg.phase_flip {
                Some(p) if (i / p) % 2 == 1 => std::f64::consts::PI,
                _ => 0.0,
            };
            let dur = seg.len as f64 / 8000.0;
            let mut v = 0.0f64;
            for (p, phase) in seg.partials.iter().zip(&phases) {
                // Linear chirp: phase = 2 pi (f0 t + (f1 - f0) t^2 / (2 dur)).
                let f0 = f64::from(p.hz);
                let f1 = f64::from(p.hz_end);
                let arg = std::f64::consts::TAU * (f0 * t + (f1 - f0) * t * t / (2.0 * dur));
                v += f64::from(p.amp) * (arg + phase + flip).sin();
            }
            out[seg.offset + i] += v as f32 * env;
        }
    }
    out
}

/// Beep shapes of the corpus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeepShape {
    Single,
    Dual,
    Seq,
    Triple,
}

impl BeepShape {
    /// The mix used when a category does not fix the shape: mostly single.
    pub fn random(rng: &mut StdRng) -> BeepShape {
        let x: f32 = rng.random();
        if x < 0.72 {
            BeepShape::Single
        } else if x < 0.84 {
            BeepShape::Dual
        } else if x < 0.94 {
            BeepShape::Seq
        } else {
            BeepShape::Triple
        }
    }
}

/// A rendered beep: samples plus where its tones start and end (sample offsets, whole ms).
#[derive(Clone, Debug)]
pub struct Beep {
    pub pcm: Vec<f32>,
    pub tone_start: usize,
    pub tone_end: usize,
    /// `single:1000`, `dual:1400+1800`, `seq:800/1200`, ... plus `;drift=..`/`;ramp=..`.
    pub description: String,
    /// RMS level of the tones while on, dBFS, as it should be reported.
    pub level_dbfs: f32,
}

impl Beep {
    /// The same beep, reported at another level (the level as sent, after the channel gain).
    pub fn with_level(self, level_dbfs: f32) -> Beep {
        Beep { level_dbfs, ..self }
    }
}

/// Bellcore SIT frequencies (Hz).
pub const SIT_LOW: [f32; 3] = [913.8, 1370.6, 1776.7];
pub const SIT_HIGH: [f32; 2] = [985.2, 1428.5];
const DTMF_ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const DTMF_COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// Frequencies real voicemail systems like; jittered a little when used.
const COMMON_BEEP_HZ: [f32; 17] = [
    600.0, 660.0, 700.0, 750.0, 800.0, 850.0, 1000.0, 1200.0, 1250.0, 1300.0, 1500.0, 1600.0,
    1650.0, 1850.0, 2000.0, 2300.0, 950.0,
];

/// Whether a beep may use this frequency: 300-2500 Hz, away from fax (1100/2100 +-50),
/// the ringback/call-waiting region (420-500) and the SIT frequencies.
pub fn beep_frequency_ok(hz: f32) -> bool {
    (300.0..=2500.0).contains(&hz)
        && !(1050.0..=1150.0).contains(&hz)
        && !(2050.0..=2150.0).contains(&hz)
        && !(420.0..=500.0).contains(&hz)
        && SIT_LOW
            .iter()
            .chain(SIT_HIGH.iter())
            .all(|s| (hz - s).abs() > 20.0)
}

/// Whether two simultaneous frequencies make an acceptable dual beep (not a call-progress
/// pair, not a DTMF pair, far enough apart not to beat).
pub fn dual_pair_ok(a: f32, b: f32) -> bool {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let near = |x: f32, y: f32| (x - y).abs() <= y * 0.03;
    let dtmf = DTMF_ROWS.iter().any(|r| near(lo, *r)) && DTMF_COLS.iter().any(|c| near(hi, *c));
    let call_progress = [(440.0, 480.0), (480.0, 620.0), (350.0, 440.0)]
        .iter()
        .any(|&(x, y)| near(lo, x) && near(hi, y));
    beep_frequency_ok(lo) && beep_frequency_ok(hi) && hi - lo >= 120.0 && !dtmf && !call_progress
}

/// A beep frequency: half the time a common value (jittered), otherwise uniform.
pub fn beep_frequency(rng: &mut StdRng) -> f32 {
    loop {
        let hz = if rng.random_bool(0.5) {
            COMMON_BEEP_HZ[rng.random_range(0..COMMON_BEEP_HZ.len())] + rng.random_range(-8.0..8.0)
        } else {
            rng.random_range(300.0..2500.0)
        };
        let hz = hz.round();
        if beep_frequency_ok(hz) {
            return hz;
        }
    }
}

/// Total duration of a beep in ms: a few short (80-150), a few long (1-2 s), mostly 150-900.
fn beep_total_ms(rng: &mut StdRng) -> usize {
    let x: f32 = rng.random();
    if x < 0.12 {
        rng.random_range(80..=150)
    } else if x < 0.22 {
        rng.random_range(1000..=2000)
    } else if x < 0.75 {
        rng.random_range(150..=500)
    } else {
        rng.random_range(500..=1000)
    }
}

/// Synthesises a beep of `shape` whose tones have an RMS of `level_dbfs` while on.
pub fn beep(rng: &mut StdRng, shape: BeepShape, level_dbfs: f32) -> Beep {
    let rms = db_to_lin(level_dbfs);
    let drift = if rng.random_bool(0.1) {
        rng.random_range(0.005f32..0.02) * if rng.random_bool(0.5) { 1.0 } else { -1.0 }
    } else {
        0.0
    };
    let end_gain: f32 = if rng.random_bool(0.1) {
        if rng.random_bool(0.5) {
            rng.random_range(0.4..0.75)
        } else {
            rng.random_range(1.4..2.2)
        }
    } else {
        1.0
    };
    let glide = |hz: f32| Partial {
        hz,
        hz_end: hz * (1.0 + drift),
        amp: 0.0,
    };
    // Scale so the average RMS over the segment matches the level despite an amplitude ramp.
    let ramp_norm = ((1.0 + end_gain * end_gain + end_gain) / 3.0).sqrt();
    let single_amp = rms * std::f32::consts::SQRT_2 / ramp_norm;
    let (segments, description) = match shape {
        BeepShape::Single => {
            let hz = beep_frequency(rng);
            let len = beep_total_ms(rng) * MS;
            let p = Partial {
                amp: single_amp,
                ..glide(hz)
            };
            (
                vec![Segment::steady(0, len, vec![p])],
                format!("single:{hz:.0}"),
            )
        }
        BeepShape::Dual => {
            let (a, b) = loop {
                let a = beep_frequency(rng);
                let b = beep_frequency(rng);
                if dual_pair_ok(a, b) {
                    break if a < b { (a, b) } else { (b, a) };
                }
            };
            let len = beep_total_ms(rng) * MS;
            // Equal power per tone, with up to 3 dB of twist.
            let twist = db_to_lin(rng.random_range(-3.0..3.0));
            let amp = single_amp / (1.0 + twist * twist).sqrt();
            let partials = vec![
                Partial { amp, ..glide(a) },
                Partial {
                    amp: amp * twist,
                    ..glide(b)
                },
            ];
            (
                vec![Segment::steady(0, len, partials)],
                format!("dual:{a:.0}+{b:.0}"),
            )
        }
        BeepShape::Seq | BeepShape::Triple => {
            let n = if shape == BeepShape::Seq { 2 } else { 3 };
            let mut freqs: Vec<f32> = Vec::with_capacity(n);
            while freqs.len() < n {
                let hz = beep_frequency(rng);
                if freqs.iter().all(|f| (f - hz).abs() >= 120.0) {
                    freqs.push(hz);
                }
            }
            if rng.random_bool(0.6) {
                // Rising or falling runs are the common kind.
                freqs.sort_by(f32::total_cmp);
                if rng.random_bool(0.4) {
                    freqs.reverse();
                }
            }
            let long = rng.random_bool(0.1);
            let mut segments = Vec::with_capacity(n);
            let mut at = 0;
            for (i, hz) in freqs.iter().enumerate() {
                if i > 0 {
                    at += rng.random_range(0..=50) * MS;
                }
                let len = if long {
                    rng.random_range(300..=600)
                } else {
                    rng.random_range(50..=300)
                } * MS;
                let p = Partial {
                    amp: single_amp,
                    ..glide(*hz)
                };
                segments.push(Segment::steady(at, len, vec![p]));
                at += len;
            }
            let kind = if n == 2 { "seq" } else { "triple" };
            let list: Vec<String> = freqs.iter().map(|f| format!("{f:.0}")).collect();
            (segments, format!("{kind}:{}", list.join("/")))
        }
    };
    let segments: Vec<Segment> = segments
        .into_iter()
        .map(|s| Segment { end_gain, ..s })
        .collect();
    let pcm = render(&segments, rng);
    let mut description = description;
    if drift != 0.0 {
        description.push_str(&format!(";drift={:+.1}%", drift * 100.0));
    }
    if end_gain != 1.0 {
        let dir = if end_gain > 1.0 { "up" } else { "down" };
        description.push_str(&format!(";ramp={dir}"));
    }
    let tone_end = pcm.len();
    Beep {
        pcm,
        tone_start: 0,
        tone_end,
        description,
        level_dbfs,
    }
}

/// The recorded Asterisk `beep.wav` as a beep: finds where its tone starts and ends (first
/// and last sample above 2% of the peak, widened to whole ms) and pads it to whole ms.
pub fn recorded_beep(clip: &[f32], level_dbfs: f32) -> Beep {
    let peak = clip.iter().fold(0.0f32, |m, s| m.max(s.abs())).max(1e-9);
    let first = clip.iter().position(|s| s.abs() > 0.02 * peak).unwrap_or(0);
    let last = clip
        .iter()
        .rposition(|s| s.abs() > 0.02 * peak)
        .unwrap_or(clip.len().saturating_sub(1));
    let start = first / MS * MS;
    let end = (last + 1).div_ceil(MS) * MS;
    let mut pcm = vec![0.0f32; end - start];
    let n = clip.len().min(end) - start;
    pcm[..n].copy_from_slice(&clip[start..start + n]);
    super::channel::scale_to_dbfs(&mut pcm, level_dbfs);
    Beep {
        tone_end: pcm.len(),
        pcm,
        tone_start: 0,
        description: "recorded:asterisk-beep".to_string(),
        level_dbfs,
    }
}

/// A Bellcore SIT: three segments, the first two 274 or 380 ms at the low or high frequency,
/// the third 1776.7 Hz for 380 ms, gaps of 0-4 ms. Returns the samples and `SSL:913.8/...`.
pub fn sit(rng: &mut StdRng, level_dbfs: f32) -> (Vec<f32>, String) {
    let amp = db_to_lin(level_dbfs) * std::f32::consts::SQRT_2;
    let mut segments = Vec::with_capacity(3);
    let mut code = String::new();
    let mut freqs = Vec::with_capacity(3);
    let mut at = 0;
    for i in 0..3 {
        let long = i == 2 || rng.random_bool(0.5);
        let hz = if i < 2 && rng.random_bool(0.5) {
            SIT_HIGH[i]
        } else {
            SIT_LOW[i]
        };
        code.push(if long { 'L' } else { 'S' });
        freqs.push(format!("{hz}"));
        let len = if long { 380 } else { 274 } * MS;
        let p = Partial {
            hz,
            hz_end: hz,
            amp,
        };
        let mut seg = Segment::steady(at, len, vec![p]);
        seg.ramp = 2 * MS;
        segments.push(seg);
        at += len + rng.random_range(0..=4) * MS;
    }
    (
        render(&segments, rng),
        format!("{code}:{}", freqs.join("/")),
    )
}

/// Fax CNG (calling tone): 1100 Hz, 0.5 s on / 3 s off, `cycles` times.
pub fn fax_cng(rng: &mut StdRng, cycles: usize, level_dbfs: f32) -> Vec<f32> {
    let amp = db_to_lin(level_dbfs) * std::f32::consts::SQRT_2;
    let segments: Vec<Segment> = (0..cycles)
        .map(|i| {
            let p = Partial {
                hz: 1100.0,
                hz_end: 1100.0,
                amp,
            };
            Segment::steady(i * 3500 * MS, 500 * MS, vec![p])
        })
        .collect();
    render(&segments, rng)
}

/// Fax CED (answer tone): 2100 Hz for `ms`, optionally with phase reversals every 450 ms,
/// then 75 ms of silence and `preamble_ms` of V.21 HDLC flags (300 bd FSK, 1650/1850 Hz).
pub fn fax_ced(
    rng: &mut StdRng,
    ms: usize,
    reversals: bool,
    preamble_ms: usize,
    level_dbfs: f32,
) -> Vec<f32> {
    let amp = db_to_lin(level_dbfs) * std::f32::consts::SQRT_2;
    let mut ced = Segment::steady(
        0,
        ms * MS,
        vec![Partial {
            hz: 2100.0,
            hz_end: 2100.0,
            amp,
        }],
    );
    if reversals {
        ced.phase_flip = Some(450 * MS);
    }
    let mut out = render(&[ced], rng);
    out.extend(std::iter::repeat_n(0.0, 75 * MS));
    // V.21 channel 2: mark (1) = 1650 Hz, space (0) = 1850 Hz; HDLC flag 0x7E = 01111110.
    let flag = [0u8, 1, 1, 1, 1, 1, 1, 0];
    let samples_per_bit = 8000.0 / 300.0;
    let n = preamble_ms * MS;
    let mut phase = rng.random::<f64>() * std::f64::consts::TAU;
    for i in 0..n {
        let bit = flag[((i as f64 / samples_per_bit) as usize) % 8];
        let hz = if bit == 1 { 1650.0 } else { 1850.0 };
        phase += std::f64::consts::TAU * hz / 8000.0;
        let edge = i.min(n - 1 - i).min(RAMP) as f32 / RAMP as f32;
        out.push(amp * phase.sin() as f32 * edge);
    }
    out
}

/// One DTMF digit (row + column tone, a little twist). Returns samples and the digit.
pub fn dtmf(rng: &mut StdRng, ms: usize, level_dbfs: f32) -> (Vec<f32>, char) {
    const KEYS: [[char; 4]; 4] = [
        ['1', '2', '3', 'A'],
        ['4', '5', '6', 'B'],
        ['7', '8', '9', 'C'],
        ['*', '0', '#', 'D'],
    ];
    let r = rng.random_range(0..4);
    let c = rng.random_range(0..3);
    let amp = db_to_lin(level_dbfs);
    let twist = db_to_lin(rng.random_range(0.0..3.0));
    let partials = vec![
        Partial {
            hz: DTMF_ROWS[r],
            hz_end: DTMF_ROWS[r],
            amp,
        },
        Partial {
            hz: DTMF_COLS[c],
            hz_end: DTMF_COLS[c],
            amp: amp * twist,
        },
    ];
    (
        render(&[Segment::steady(0, ms * MS, partials)], rng),
        KEYS[r][c],
    )
}

/// A two-note doorbell ("ding-dong"): bell-like partials with exponential decay.
pub fn doorbell(rng: &mut StdRng, level_dbfs: f32) -> Vec<f32> {
    let base: f32 = [659.3, 587.3, 784.0, 698.5][rng.random_range(0..4)];
    let second = base * [0.794, 0.841, 0.749][rng.random_range(0..3)];
    let note_ms = rng.random_range(300..=600);
    let tau = rng.random_range(100.0..300.0) * MS as f32;
    let amp = db_to_lin(level_dbfs) * 2.5;
    let bell = |hz: f32| {
        vec![
            Partial {
                hz,
                hz_end: hz,
                amp,
            },
            Partial {
                hz: hz * 2.76,
                hz_end: hz * 2.76,
                amp: amp * 0.3,
            },
            Partial {
                hz: hz * 5.4,
                hz_end: hz * 5.4,
                amp: amp * 0.1,
            },
        ]
    };
    let mut segments = Vec::with_capacity(2);
    for (i, hz) in [base, second].into_iter().enumerate() {
        let mut seg = Segment::steady(i * note_ms * MS, (note_ms + 200) * MS, bell(hz));
        seg.decay = Some(tau);
        seg.ramp = MS;
        segments.push(seg);
    }
    render(&segments, rng)
}

/// A sustained sung vowel: harmonics of a vibrato f0 shaped by three formants.
pub fn sung_vowel(rng: &mut StdRng, ms: usize, level_dbfs: f32) -> (Vec<f32>, &'static str) {
    const VOWELS: [(&str, [f32; 3]); 4] = [
        ("ah", [730.0, 1090.0, 2440.0]),
        ("ee", [270.0, 2290.0, 3010.0]),
        ("oo", [300.0, 870.0, 2240.0]),
        ("eh", [530.0, 1840.0, 2480.0]),
    ];
    let (name, formants) = VOWELS[rng.random_range(0..VOWELS.len())];
    let f0: f32 = rng.random_range(150.0..350.0);
    let vib_hz = rng.random_range(4.5f32..6.5);
    let vib_depth = rng.random_range(0.01f32..0.03);
    let n = ms * MS;
    let harmonics = ((3400.0 / f0) as usize).max(1);
    let weights: Vec<f32> = (1..=harmonics)
        .map(|k| {
            let f = f0 * k as f32;
            let res: f32 = formants
                .iter()
                .map(|fm| 1.0 / (1.0 + ((f - fm) / 90.0).powi(2)))
                .sum();
            res / k as f32
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    let mut phase = 0.0f64;
    let attack = 40 * MS;
    for i in 0..n {
        let t = i as f32 / 8000.0;
        let f = f0 * (1.0 + vib_depth * (std::f32::consts::TAU * vib_hz * t).sin());
        phase += std::f64::consts::TAU * f64::from(f) / 8000.0;
        let v: f32 = weights
            .iter()
            .enumerate()
            .map(|(k, w)| w * ((k + 1) as f64 * phase).sin() as f32)
            .sum();
        let edge = i.min(n - 1 - i).min(attack) as f32 / attack as f32;
        out.push(v * edge);
    }
    super::channel::scale_to_dbfs(&mut out, level_dbfs);
    (out, name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::rms_dbfs;
    use rand::SeedableRng;

    /// Goertzel power of one frequency over a block, as dBFS of an equivalent sine.
    pub(crate) fn tone_dbfs(x: &[f32], hz: f32) -> f32 {
        let w = std::f32::consts::TAU * hz / 8000.0;
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0f32, 0.0f32);
        for &v in x {
            let s = v + coeff * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        let amp = 2.0 * power.sqrt() / x.len() as f32;
        20.0 * (amp / std::f32::consts::SQRT_2).max(1e-10).log10()
    }

    #[test]
    fn beeps_respect_the_frequency_rules_and_durations() {
        let mut rng = StdRng::seed_from_u64(11);
        for i in 0..400 {
            let shape = [
                BeepShape::Single,
                BeepShape::Dual,
                BeepShape::Seq,
                BeepShape::Triple,
            ][i % 4];
            let b = beep(&mut rng, shape, -20.0);
            let ms = b.pcm.len() / MS;
            assert_eq!(b.pcm.len() % MS, 0);
            assert!((80..=2000).contains(&ms), "{} lasts {ms} ms", b.description);
            let freqs: Vec<f32> = b
                .description
                .split(';')
                .next()
                .unwrap()
                .split(':')
                .nth(1)
                .unwrap()
                .split(['+', '/'])
                .map(|f| f.parse().unwrap())
                .collect();
            assert!(
                freqs.iter().all(|f| beep_frequency_ok(*f)),
                "{}",
                b.description
            );
            if shape == BeepShape::Dual {
                assert!(dual_pair_ok(freqs[0], freqs[1]));
            }
        }
    }

    #[test]
    fn forbidden_pairs_are_refused() {
        assert!(!dual_pair_ok(440.0, 480.0));
        assert!(!dual_pair_ok(480.0, 620.0));
        assert!(!dual_pair_ok(770.0, 1336.0)); // DTMF 5
        assert!(!dual_pair_ok(913.8, 1370.6));
        assert!(!beep_frequency_ok(1100.0));
        assert!(!beep_frequency_ok(2100.0));
        assert!(dual_pair_ok(1400.0, 1800.0));
    }

    #[test]
    fn single_beep_has_the_asked_level_and_frequency() {
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..30 {
            let b = beep(&mut rng, BeepShape::Single, -25.0);
            if b.description.contains(';') || b.pcm.len() < 200 * MS {
                continue;
            }
            let hz: f32 = b.description["single:".len()..].parse().unwrap();
            let mid = &b.pcm[RAMP..b.pcm.len() - RAMP];
            assert!((rms_dbfs(mid) + 25.0).abs() < 0.2);
            assert!((tone_dbfs(mid, hz) + 25.0).abs() < 0.5);
        }
    }

    #[test]
    fn sit_has_three_segments_with_the_bellcore_frequencies() {
        let mut rng = StdRng::seed_from_u64(2);
        let (pcm, code) = sit(&mut rng, -20.0);
        let total = pcm.len() / MS;
        assert!((274 * 2 + 380..=380 * 3 + 8).contains(&total), "{total} ms");
        assert!(code.ends_with("/1776.7"), "{code}");
        let tail = &pcm[pcm.len() - 300 * MS..pcm.len() - 20 * MS];
        assert!(tone_dbfs(tail, 1776.7) > -21.0);
    }

    #[test]
    fn ced_and_cng_are_at_their_frequencies() {
        let mut rng = StdRng::seed_from_u64(3);
        let ced = fax_ced(&mut rng, 3000, true, 1000, -15.0);
        // Between two phase reversals (450 and 900 ms).
        assert!(tone_dbfs(&ced[500 * MS..850 * MS], 2100.0) > -16.0);
        let cng = fax_cng(&mut rng, 2, -15.0);
        assert!(tone_dbfs(&cng[100 * MS..400 * MS], 1100.0) > -16.0);
        assert!(rms_dbfs(&cng[600 * MS..3400 * MS]) < -100.0);
    }
}
