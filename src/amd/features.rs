//! Per-hop signal features for the AMD: level, zero crossings, a 256-point spectrum (rustfft),
//! spectral flatness, band energies and the two strongest spectral peaks with their purity.
//!
//! One [`HopAnalyzer`] per call. It owns its FFT plan and buffers, so analysing a hop never
//! allocates. It knows nothing about speech or beeps: it only measures.

use std::sync::Arc;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

use crate::audio::SAMPLE_RATE;

/// Samples per analysis hop (10 ms).
pub const HOP: usize = 80;
/// Spectral window length (32 ms): long enough to separate 440 from 480 Hz at the peak.
pub const WINDOW: usize = 256;
const BINS: usize = WINDOW / 2 + 1;
/// Hz per FFT bin.
pub const BIN_HZ: f32 = SAMPLE_RATE as f32 / WINDOW as f32;

const fn bin_of(hz: f32) -> usize {
    (hz / BIN_HZ + 0.5) as usize
}

/// Telephone band used for totals, purity and flatness.
const BAND_LO: usize = bin_of(250.0);
const BAND_HI: usize = bin_of(3500.0);
/// Where tone peaks are searched (beeps, SIT, fax, DTMF, ringback).
const PEAK_LO: usize = bin_of(280.0);
const PEAK_HI: usize = bin_of(3100.0);
/// Bins either side of a peak counted as "in the tone" (Hann main lobe is +-2 bins).
const PEAK_HALF_WIDTH: usize = 2;

/// What one 10 ms hop looks like.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HopFeatures {
    /// RMS level of the hop's 80 samples, dBFS.
    pub energy_db: f32,
    /// Level of the 256-sample spectral window in the telephone band, dBFS.
    pub band_db: f32,
    /// Zero crossings per sample in the hop.
    pub zcr: f32,
    /// Geometric over arithmetic mean of the band power spectrum (1 = white noise, ~0 = tone).
    pub flatness: f32,
    /// Share of band energy below 1 kHz.
    pub low_share: f32,
    /// Strongest peak: interpolated frequency (Hz) and share of band energy in its main lobe.
    pub peak_hz: f32,
    pub peak_purity: f32,
    /// Second strongest peak away from the first, and the share of both peaks together.
    pub peak2_hz: f32,
    pub peak2_purity: f32,
    /// Energy at the second and third harmonics of the strongest peak, relative to the peak.
    pub harmonic_ratio: f32,
}

impl HopFeatures {
    /// Energy in both peaks relative to the band.
    pub fn dual_purity(&self) -> f32 {
        self.peak_purity + self.peak2_purity
    }
}

/// Streaming analyser: push 80-sample hops, get features.
pub struct HopAnalyzer {
    fft: Arc<dyn Fft<f32>>,
    window: [f32; WINDOW],
    history: [f32; WINDOW],
    buffer: Vec<Complex32>,
    scratch: Vec<Complex32>,
    power: [f32; BINS],
}

impl Default for HopAnalyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl HopAnalyzer {
    pub fn new() -> Self {
        let fft = FftPlanner::<f32>::new().plan_fft_forward(WINDOW);
        let scratch_len = fft.get_inplace_scratch_len();
        let window = std::array::from_fn(|i| {
            0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / WINDOW as f32).cos()
        });
        HopAnalyzer {
            fft,
            window,
            history: [0.0; WINDOW],
            buffer: vec![Complex32::default(); WINDOW],
            scratch: vec![Complex32::default(); scratch_len],
            power: [0.0; BINS],
        }
    }

    /// The power spectrum of the last analysed window (bins of [`BIN_HZ`]).
    pub fn power(&self) -> &[f32] {
        &self.power
    }

    /// Analyses the next hop of 80 samples.
    pub fn push(&mut self, hop: &[i16]) -> HopFeatures {
        debug_assert_eq!(hop.len(), HOP);
        self.history.copy_within(HOP.., 0);
        let mut sum_sq = 0.0f32;
        let mut crossings = 0u32;
        let mut prev = self.history[WINDOW - HOP - 1];
        for (dst, s) in self.history[WINDOW - HOP..].iter_mut().zip(hop) {
            let x = *s as f32 / 32768.0;
            sum_sq += x * x;
            if (x >= 0.0) != (prev >= 0.0) {
                crossings += 1;
            }
            prev = x;
            *dst = x;
        }
        let energy_db = 10.0 * (sum_sq / HOP as f32).max(1e-12).log10();

        for ((b, x), w) in self.buffer.iter_mut().zip(&self.history).zip(&self.window) {
            *b = Complex32::new(x * w, 0.0);
        }
        self.fft
            .process_with_scratch(&mut self.buffer, &mut self.scratch);
        for (p, c) in self.power.iter_mut().zip(&self.buffer) {
            *p = c.norm_sqr();
        }
        let mut features = HopFeatures {
            energy_db,
            zcr: crossings as f32 / HOP as f32,
            ..HopFeatures::default()
        };
        self.spectral(&mut features);
        features
    }

    fn spectral(&self, f: &mut HopFeatures) {
        let p = &self.power;
        let mut total = 0.0f32;
        let mut low = 0.0f32;
        let mut log_sum = 0.0f32;
        for (k, &v) in p.iter().enumerate().take(BAND_HI + 1).skip(BAND_LO) {
            total += v;
            if k < bin_of(1000.0) {
                low += v;
            }
            log_sum += (v + 1e-12).ln();
        }
        let n = (BAND_HI + 1 - BAND_LO) as f32;
        // Hann window power gain (sum w^2 = 3N/8) and the one-sided spectrum factor 2.
        let norm = 2.0 / (WINDOW as f32 * WINDOW as f32 * 0.375);
        f.band_db = 10.0 * (total * norm).max(1e-12).log10();
        if total <= 1e-9 {
            return;
        }
        f.flatness = ((log_sum / n).exp() / (total / n)).min(1.0);
        f.low_share = low / total;

        let k1 = argmax(p, PEAK_LO, PEAK_HI);
        let e1 = lobe_energy(p, k1);
        f.peak_hz = interpolate_hz(p, k1);
        f.peak_purity = (e1 / total).min(1.0);

        // Second peak: strongest bin clear of the first peak's lobe.
        let mut k2 = PEAK_LO;
        let mut best = -1.0f32;
        for (k, &v) in p.iter().enumerate().take(PEAK_HI + 1).skip(PEAK_LO) {
            if k.abs_diff(k1) > 2 * PEAK_HALF_WIDTH && v > best {
                best = v;
                k2 = k;
            }
        }
        let e2 = lobe_energy(p, k2);
        f.peak2_hz = interpolate_hz(p, k2);
        f.peak2_purity = (e2 / total).min(1.0);

        let mut harmonics = 0.0f32;
        for h in [2usize, 3] {
            let kh = k1 * h;
            if kh + PEAK_HALF_WIDTH < BINS {
                harmonics += lobe_energy(p, kh);
            }
        }
        f.harmonic_ratio = harmonics / e1.max(1e-12);
    }
}

fn argmax(p: &[f32], lo: usize, hi: usize) -> usize {
    let mut best = lo;
    for k in lo..=hi {
        if p[k] > p[best] {
            best = k;
        }
    }
    best
}

fn lobe_energy(p: &[f32], k: usize) -> f32 {
    let lo = k.saturating_sub(PEAK_HALF_WIDTH);
    let hi = (k + PEAK_HALF_WIDTH).min(p.len() - 1);
    p[lo..=hi].iter().sum()
}

/// Parabolic interpolation of a peak on log power, in Hz.
fn interpolate_hz(p: &[f32], k: usize) -> f32 {
    if k == 0 || k + 1 >= p.len() {
        return k as f32 * BIN_HZ;
    }
    let (a, b, c) = (
        (p[k - 1] + 1e-12).ln(),
        (p[k] + 1e-12).ln(),
        (p[k + 1] + 1e-12).ln(),
    );
    let denom = a - 2.0 * b + c;
    let delta = if denom.abs() > 1e-9 {
        (0.5 * (a - c) / denom).clamp(-0.5, 0.5)
    } else {
        0.0
    };
    (k as f32 + delta) * BIN_HZ
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freqs: &[f32], amp: f32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f32 / 8000.0;
                let s: f32 = freqs
                    .iter()
                    .map(|f| (2.0 * std::f32::consts::PI * f * t).sin())
                    .sum();
                (s * amp * 32767.0 / freqs.len() as f32) as i16
            })
            .collect()
    }

    fn last_features(pcm: &[i16]) -> HopFeatures {
        let mut a = HopAnalyzer::new();
        let mut f = HopFeatures::default();
        for hop in pcm.chunks_exact(HOP) {
            f = a.push(hop);
        }
        f
    }

    #[test]
    fn pure_tone_has_high_purity_and_accurate_frequency() {
        for freq in [400.0, 700.0, 1000.0, 1776.7, 2450.0] {
            let f = last_features(&tone(&[freq], 0.3, 800));
            assert!((f.peak_hz - freq).abs() < 8.0, "{freq}: {}", f.peak_hz);
            assert!(f.peak_purity > 0.95, "{freq}: {}", f.peak_purity);
            assert!(f.flatness < 0.05);
            assert!((f.energy_db - (-13.47)).abs() < 0.3, "{}", f.energy_db);
        }
    }

    #[test]
    fn busy_tone_is_two_peaks_not_one() {
        let f = last_features(&tone(&[480.0, 620.0], 0.3, 800));
        assert!(f.peak_purity < 0.75, "{}", f.peak_purity);
        assert!(f.dual_purity() > 0.9, "{}", f.dual_purity());
        let (lo, hi) = if f.peak_hz < f.peak2_hz {
            (f.peak_hz, f.peak2_hz)
        } else {
            (f.peak2_hz, f.peak_hz)
        };
        assert!(
            (lo - 480.0).abs() < 15.0 && (hi - 620.0).abs() < 15.0,
            "{lo} {hi}"
        );
    }

    #[test]
    fn white_noise_is_flat_and_impure() {
        let mut state = 12345u32;
        let noise: Vec<i16> = (0..800)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                ((state >> 16) as i16) / 4
            })
            .collect();
        let f = last_features(&noise);
        assert!(f.flatness > 0.4, "{}", f.flatness);
        assert!(f.peak_purity < 0.2, "{}", f.peak_purity);
    }

    #[test]
    fn silence_is_very_low() {
        let f = last_features(&[0i16; 800]);
        assert!(f.energy_db < -100.0);
        assert_eq!(f.peak_purity, 0.0);
    }
}
