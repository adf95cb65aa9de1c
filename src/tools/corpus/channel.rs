//! The telephone channel every generated call passes through: zero-phase 300-3400 Hz band-pass,
//! a random gain, comfort noise, a G.711 round trip and a little packet loss.
//!
//! Pure and seeded: the same input, parameters and random stream give the same samples. The
//! band-pass runs forwards then backwards (zero phase), so tone onsets keep their sample
//! positions and the beep labels stay exact; packet loss never touches a protected span (the
//! beep and a frame either side of it).

use rand::Rng;
use rand::rngs::StdRng;

use crate::audio::g711::Law;
use crate::audio::prompt::to_i16;
use crate::audio::{FRAME_SAMPLES, SAMPLE_RATE, rms_dbfs};

/// Corner of the high-pass section. Run forwards and backwards, the 2nd-order Butterworth is
/// about -3 dB at 300 Hz.
pub const HIGH_PASS_HZ: f64 = 240.0;
/// Corner of the low-pass section (about -3 dB at 3400 Hz after the two passes).
pub const LOW_PASS_HZ: f64 = 3700.0;
/// Highest absolute sample value allowed after the gain, leaving room for codec rounding.
const PEAK_CEILING: f32 = 0.97;

/// One second-order IIR section (RBJ audio-EQ cookbook), run in f64.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Biquad {
    b0: f64,
    b1: f64,
    b2: f64,
    a1: f64,
    a2: f64,
}

impl Biquad {
    /// Butterworth-style low-pass (q = 1/sqrt 2 for a maximally flat pass band).
    pub fn low_pass(corner_hz: f64, q: f64, rate: f64) -> Biquad {
        let (cos, alpha) = Self::angles(corner_hz, q, rate);
        Self::normalised(
            (1.0 - cos) / 2.0,
            1.0 - cos,
            (1.0 - cos) / 2.0,
            1.0 + alpha,
            -2.0 * cos,
            1.0 - alpha,
        )
    }

    /// Butterworth-style high-pass.
    pub fn high_pass(corner_hz: f64, q: f64, rate: f64) -> Biquad {
        let (cos, alpha) = Self::angles(corner_hz, q, rate);
        Self::normalised(
            (1.0 + cos) / 2.0,
            -(1.0 + cos),
            (1.0 + cos) / 2.0,
            1.0 + alpha,
            -2.0 * cos,
            1.0 - alpha,
        )
    }

    fn angles(corner_hz: f64, q: f64, rate: f64) -> (f64, f64) {
        let w0 = 2.0 * std::f64::consts::PI * corner_hz / rate;
        (w0.cos(), w0.sin() / (2.0 * q))
    }

    fn normalised(b0: f64, b1: f64, b2: f64, a0: f64, a1: f64, a2: f64) -> Biquad {
        Biquad {
            b0: b0 / a0,
            b1: b1 / a0,
            b2: b2 / a0,
            a1: a1 / a0,
            a2: a2 / a0,
        }
    }

    /// Filters in place from a zero state (transposed direct form II).
    pub fn run(&self, pcm: &mut [f32]) {
        let (mut z1, mut z2) = (0.0f64, 0.0f64);
        for s in pcm.iter_mut() {
            let x = f64::from(*s);
            let y = self.b0 * x + z1;
            z1 = self.b1 * x - self.a1 * y + z2;
            z2 = self.b2 * x - self.a2 * y;
            *s = y as f32;
        }
    }

    /// Magnitude of the response at `freq_hz` (one pass).
    pub fn magnitude(&self, freq_hz: f64, rate: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * freq_hz / rate;
        let (c1, s1) = (w.cos(), -w.sin());
        let (c2, s2) = ((2.0 * w).cos(), -(2.0 * w).sin());
        let num = (
            self.b0 + self.b1 * c1 + self.b2 * c2,
            self.b1 * s1 + self.b2 * s2,
        );
        let den = (
            1.0 + self.a1 * c1 + self.a2 * c2,
            self.a1 * s1 + self.a2 * s2,
        );
        (num.0.hypot(num.1)) / (den.0.hypot(den.1))
    }
}

fn sections() -> [Biquad; 2] {
    let rate = f64::from(SAMPLE_RATE);
    let q = std::f64::consts::FRAC_1_SQRT_2;
    [
        Biquad::high_pass(HIGH_PASS_HZ, q, rate),
        Biquad::low_pass(LOW_PASS_HZ, q, rate),
    ]
}

/// Telephone band-pass with zero phase: the sections run forwards, then over the reversed
/// signal, so nothing is delayed (group delay 0; pre-echo of a few samples at onsets).
pub fn band_pass(pcm: &mut [f32]) {
    let filters = sections();
    for f in &filters {
        f.run(pcm);
    }
    pcm.reverse();
    for f in &filters {
        f.run(pcm);
    }
    pcm.reverse();
}

/// Power gain of [`band_pass`] at one frequency, in dB (both passes).
pub fn band_pass_gain_db(freq_hz: f64) -> f64 {
    let rate = f64::from(SAMPLE_RATE);
    let one_pass: f64 = sections()
        .iter()
        .map(|f| f.magnitude(freq_hz, rate))
        .product();
    20.0 * (one_pass * one_pass).log10()
}

/// Colour of a noise floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoiseColour {
    White,
    Pink,
    Brown,
}

impl NoiseColour {
    pub fn name(self) -> &'static str {
        match self {
            NoiseColour::White => "white",
            NoiseColour::Pink => "pink",
            NoiseColour::Brown => "brown",
        }
    }
}

/// A standard normal variate (Box-Muller; one of the pair is dropped for simplicity).
pub fn gaussian(rng: &mut StdRng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// `len` samples of noise of the given colour, scaled to an RMS of `dbfs`.
pub fn noise(rng: &mut StdRng, colour: NoiseColour, len: usize, dbfs: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    match colour {
        NoiseColour::White => out.extend((0..len).map(|_| gaussian(rng))),
        NoiseColour::Pink => {
            // Paul Kellet's refined pink filter.
            let mut b = [0.0f32; 7];
            for _ in 0..len {
                let w = gaussian(rng);
                b[0] = 0.99886 * b[0] + w * 0.0555179;
                b[1] = 0.99332 * b[1] + w * 0.0750759;
                b[2] = 0.96900 * b[2] + w * 0.153852;
                b[3] = 0.86650 * b[3] + w * 0.3104856;
                b[4] = 0.55000 * b[4] + w * 0.5329522;
                b[5] = -0.7616 * b[5] - w * 0.0168980;
                out.push(b[0] + b[1] + b[2] + b[3] + b[4] + b[5] + b[6] + w * 0.5362);
                b[6] = w * 0.115926;
            }
        }
        NoiseColour::Brown => {
            let mut acc = 0.0f32;
            for _ in 0..len {
                acc = 0.985 * acc + 0.15 * gaussian(rng);
                out.push(acc);
            }
        }
    }
    scale_to_dbfs(&mut out, dbfs);
    out
}

/// Scales a block so its RMS is `dbfs` (no-op on silence).
pub fn scale_to_dbfs(pcm: &mut [f32], dbfs: f32) {
    let level = rms_dbfs(pcm);
    if level.is_finite() && level > -150.0 {
        let g = db_to_lin(dbfs - level);
        pcm.iter_mut().for_each(|s| *s *= g);
    }
}

/// Amplitude ratio of a level difference in dB.
pub fn db_to_lin(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

/// What the channel does to one call.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelParams {
    /// Gain asked for, in dB (-12..+3); lowered when it would clip.
    pub gain_db: f32,
    pub noise: NoiseColour,
    /// Level of the added line noise, dBFS (-65..-45).
    pub noise_dbfs: f32,
    pub law: Law,
    /// Probability that a 20 ms frame is lost (0..0.015).
    pub loss_rate: f32,
}

impl ChannelParams {
    pub fn random(rng: &mut StdRng) -> ChannelParams {
        ChannelParams {
            gain_db: rng.random_range(-12.0..3.0),
            noise: if rng.random_bool(0.35) {
                NoiseColour::White
            } else {
                NoiseColour::Pink
            },
            noise_dbfs: rng.random_range(-65.0..-45.0),
            law: if rng.random_bool(0.5) {
                Law::Ulaw
            } else {
                Law::Alaw
            },
            loss_rate: rng.random_range(0.0..0.015),
        }
    }
}

/// The channel's output and what it actually applied.
#[derive(Clone, Debug)]
pub struct Transmitted {
    pub pcm: Vec<i16>,
    /// Gain applied after the clipping guard, dB.
    pub gain_db: f32,
    /// Frames replaced by silence or by a repeat of the previous frame.
    pub lost_frames: usize,
}

/// Sends `clean` (8 kHz, -1.0..1.0) through the channel. `protected` holds sample ranges
/// (start, end) where no frame may be lost.
pub fn transmit(
    clean: &[f32],
    params: &ChannelParams,
    protected: &[(usize, usize)],
    rng: &mut StdRng,
) -> Transmitted {
    let mut signal = clean.to_vec();
    band_pass(&mut signal);
    let mut floor = noise(rng, params.noise, clean.len(), params.noise_dbfs);
    band_pass(&mut floor);
    scale_to_dbfs(&mut floor, params.noise_dbfs);

    let peak = |x: &[f32]| x.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    let room = (PEAK_CEILING - peak(&floor)).max(0.1);
    let signal_peak = peak(&signal).max(1e-9);
    let gain = db_to_lin(params.gain_db).min(room / signal_peak);
    let mixed: Vec<i16> = signal
        .iter()
        .zip(&floor)
        .map(|(s, n)| to_i16(s * gain + n))
        .collect();

    let mut pcm = vec![0i16; mixed.len()];
    let mut codes = [0u8; FRAME_SAMPLES];
    for (src, dst) in mixed
        .chunks(FRAME_SAMPLES)
        .zip(pcm.chunks_mut(FRAME_SAMPLES))
    {
        let n = src.len();
        params.law.encode_into(src, &mut codes[..n]);
        params.law.decode_into(&codes[..n], dst);
    }

    let margin = FRAME_SAMPLES;
    let mut lost_frames = 0;
    let frames = pcm.len().div_ceil(FRAME_SAMPLES);
    for f in 1..frames {
        let start = f * FRAME_SAMPLES;
        let end = (start + FRAME_SAMPLES).min(pcm.len());
        let lose = rng.random::<f32>() < params.loss_rate;
        let repeat = rng.random_bool(0.5);
        let guarded = protected
            .iter()
            .any(|&(a, b)| start < b + margin && end + margin > a);
        if !lose || guarded {
            continue;
        }
        lost_frames += 1;
        if repeat && end - start == FRAME_SAMPLES {
            pcm.copy_within(start - FRAME_SAMPLES..start, start);
        } else {
            pcm[start..end].iter_mut().for_each(|s| *s = 0);
        }
    }
    Transmitted {
        pcm,
        gain_db: 20.0 * gain.log10(),
        lost_frames,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn sine(freq: f32, len: usize, amp: f32) -> Vec<f32> {
        (0..len)
            .map(|i| amp * (2.0 * std::f32::consts::PI * freq * i as f32 / 8000.0).sin())
            .collect()
    }

    fn measured_gain_db(freq: f32) -> f32 {
        let mut x = sine(freq, 16000, 0.3);
        let before = rms_dbfs(&x[4000..12000]);
        band_pass(&mut x);
        rms_dbfs(&x[4000..12000]) - before
    }

    #[test]
    fn band_pass_keeps_the_voice_band_and_cuts_outside_it() {
        for f in [500.0, 1000.0, 2000.0, 2500.0] {
            let g = measured_gain_db(f);
            assert!(g.abs() < 0.7, "{f} Hz: {g} dB");
        }
        for f in [300.0, 3400.0] {
            let g = measured_gain_db(f);
            assert!((-4.0..=0.0).contains(&g), "{f} Hz edge: {g} dB");
        }
        assert!(measured_gain_db(3700.0) < -4.0);
        assert!(measured_gain_db(100.0) < -25.0);
        assert!(measured_gain_db(50.0) < -45.0);
        assert!(measured_gain_db(3900.0) < -15.0);
        // The analytic response agrees with the measurement.
        for f in [100.0, 300.0, 1000.0, 3400.0] {
            let a = band_pass_gain_db(f64::from(f)) as f32;
            assert!((a - measured_gain_db(f)).abs() < 0.3, "{f}: {a}");
        }
    }

    #[test]
    fn band_pass_does_not_move_a_tone_burst() {
        // 300 ms of 1 kHz starting at 1.0 s: the filtered envelope must start and stop within
        // 2 ms of the original (zero-phase filtering has no group delay).
        let mut x = vec![0.0f32; 16000];
        let start = 8000;
        let end = start + 2400;
        for (i, s) in sine(1000.0, 2400, 0.5).into_iter().enumerate() {
            x[start + i] = s;
        }
        band_pass(&mut x);
        let env: Vec<f32> = x.chunks(8).map(rms_dbfs).collect();
        let on = env.iter().position(|&e| e > -20.0).unwrap() * 8;
        let off = (env.len() - env.iter().rev().position(|&e| e > -20.0).unwrap()) * 8;
        assert!((on as i64 - start as i64).abs() <= 16, "onset at {on}");
        assert!((off as i64 - end as i64).abs() <= 16, "offset at {off}");
    }

    #[test]
    fn noise_has_the_asked_level_and_colour() {
        let mut rng = StdRng::seed_from_u64(1);
        for colour in [NoiseColour::White, NoiseColour::Pink, NoiseColour::Brown] {
            let n = noise(&mut rng, colour, 8000, -50.0);
            assert!((rms_dbfs(&n) + 50.0).abs() < 0.01);
        }
        // Pink has more low-frequency energy than white: compare first differences.
        let w = noise(&mut rng, NoiseColour::White, 8000, -30.0);
        let p = noise(&mut rng, NoiseColour::Pink, 8000, -30.0);
        let diff = |x: &[f32]| rms_dbfs(&x.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>());
        assert!(diff(&p) < diff(&w) - 3.0);
    }

    #[test]
    fn transmit_is_deterministic_never_clips_and_respects_protected_spans() {
        let clean: Vec<f32> = sine(1000.0, 40000, 1.2);
        let params = ChannelParams {
            gain_db: 3.0,
            noise: NoiseColour::Pink,
            noise_dbfs: -50.0,
            law: Law::Alaw,
            loss_rate: 0.5,
        };
        let run = |seed| {
            transmit(
                &clean,
                &params,
                &[(8000, 16000)],
                &mut StdRng::seed_from_u64(seed),
            )
        };
        let a = run(3);
        let b = run(3);
        assert_eq!(a.pcm, b.pcm);
        assert!(
            a.gain_db < 0.0,
            "the clipping guard lowered the gain: {}",
            a.gain_db
        );
        assert!(a.pcm.iter().all(|s| s.unsigned_abs() < 32767));
        assert!(a.lost_frames > 50);
        // No lost frame within the protected span: every 20 ms frame there carries the tone.
        for frame in a.pcm[8000 - 160..16000 + 160].chunks(160) {
            let f: Vec<f32> = frame.iter().map(|&s| f32::from(s) / 32768.0).collect();
            assert!(rms_dbfs(&f) > -10.0);
        }
    }
}
