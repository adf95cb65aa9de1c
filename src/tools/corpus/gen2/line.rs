//! Generator 2's line: a causal chain unlike generator 1's zero-phase channel. Telephone
//! band filter (causal biquads), an optional GSM-like narrow low-pass, gain with an optional
//! step (AGC jump), 50/60 Hz hum with harmonics, DC offset, line noise, optional overdrive
//! clipping, one or two G.711 passes (A- and u-law, transcoded), and packet loss with
//! concealment (repeat-and-fade) or zero fill. Lost frames never touch a labelled tone (nor a
//! frame either side), so the labels stay exact. Pure and seeded.

use rand::Rng;
use rand::rngs::StdRng;

use crate::audio::g711::Law;
use crate::audio::prompt::to_i16;
use crate::tools::corpus::channel::{Biquad, NoiseColour, db_to_lin, noise};

const RATE: f64 = 8000.0;
const FRAME: usize = 160;

/// What the line does to one call.
#[derive(Clone, Debug, PartialEq)]
pub struct LineParams {
    pub high_pass_hz: f64,
    pub low_pass_hz: f64,
    /// GSM-like extra low-pass corner (2.6-3.2 kHz), if any.
    pub gsm_hz: Option<f64>,
    pub gain_db: f32,
    /// (sample, dB) of a gain step, if any.
    pub step: Option<(usize, f32)>,
    /// (Hz, dBFS) of mains hum, if any.
    pub hum: Option<(f32, f32)>,
    /// DC offset as a fraction of full scale, if any.
    pub dc: Option<f32>,
    pub noise_dbfs: f32,
    pub noise_colour: NoiseColour,
    /// Clip ceiling (fraction of full scale) with overdrive, if any.
    pub clip: Option<f32>,
    /// One law, or two (transcoded between them).
    pub laws: Vec<Law>,
    pub loss_rate: f32,
    /// Conceal lost frames (repeat the last one, faded) instead of zero fill.
    pub conceal: bool,
}

impl LineParams {
    /// A random line for a call of `len` samples whose speech sits at `speech_dbfs` before
    /// the gain: noise and hum stay at least 25 and 20 dB under the speech as sent.
    pub fn random(rng: &mut StdRng, len: usize, speech_dbfs: f32) -> LineParams {
        let gain_db = rng.random_range(-14.0..4.0f32);
        let sent = speech_dbfs + gain_db;
        let law = |r: &mut StdRng| {
            if r.random_bool(0.5) {
                Law::Alaw
            } else {
                Law::Ulaw
            }
        };
        let first = law(rng);
        let laws = if rng.random_bool(0.2) {
            vec![
                first,
                if first == Law::Alaw {
                    Law::Ulaw
                } else {
                    Law::Alaw
                },
            ]
        } else {
            vec![first]
        };
        let lossy = rng.random_bool(0.4);
        LineParams {
            high_pass_hz: rng.random_range(150.0..300.0),
            low_pass_hz: rng.random_range(3200.0..3700.0),
            gsm_hz: rng
                .random_bool(0.3)
                .then(|| rng.random_range(2600.0..3200.0)),
            gain_db,
            step: rng.random_bool(0.25).then(|| {
                let db =
                    rng.random_range(3.0..9.0f32) * if rng.random_bool(0.5) { 1.0 } else { -1.0 };
                (rng.random_range(0..len.max(1)), db)
            }),
            hum: rng.random_bool(0.2).then(|| {
                let hz = if rng.random_bool(0.5) { 50.0 } else { 60.0 };
                (hz, rng.random_range(-60.0..-40.0f32).min(sent - 20.0))
            }),
            dc: rng.random_bool(0.2).then(|| {
                rng.random_range(0.002..0.025f32) * if rng.random_bool(0.5) { 1.0 } else { -1.0 }
            }),
            noise_dbfs: rng.random_range(-72.0..-45.0f32).min(sent - 25.0),
            noise_colour: if rng.random_bool(0.5) {
                NoiseColour::White
            } else {
                NoiseColour::Pink
            },
            clip: rng.random_bool(0.15).then(|| rng.random_range(0.3..0.8)),
            laws,
            loss_rate: if lossy {
                rng.random_range(0.005..0.05)
            } else {
                0.0
            },
            conceal: rng.random_bool(0.7),
        }
    }

    /// Gain (dB) in force at sample `at`.
    pub fn gain_at(&self, at: usize) -> f32 {
        match self.step {
            Some((s, db)) if at >= s => self.gain_db + db,
            _ => self.gain_db,
        }
    }

    /// A short description for the notes column.
    pub fn describe(&self) -> String {
        let laws: Vec<&str> = self
            .laws
            .iter()
            .map(|l| if *l == Law::Alaw { "alaw" } else { "ulaw" })
            .collect();
        let mut d = format!("line={}", laws.join(">"));
        if let Some(g) = self.gsm_hz {
            d.push_str(&format!("+gsm{g:.0}"));
        }
        if let Some((_, db)) = self.step {
            d.push_str(&format!("+step{db:.0}"));
        }
        if let Some((hz, db)) = self.hum {
            d.push_str(&format!("+hum{hz:.0}@{db:.0}"));
        }
        if self.dc.is_some() {
            d.push_str("+dc");
        }
        if let Some(c) = self.clip {
            d.push_str(&format!("+clip{c:.2}"));
        }
        if self.loss_rate > 0.0 {
            let how = if self.conceal { "plc" } else { "zero" };
            d.push_str(&format!("+loss{:.1}%{how}", self.loss_rate * 100.0));
        }
        d
    }
}

/// Sends `clean` through the line. `protected` are sample spans no lost frame may touch.
/// Returns the PCM and the number of lost frames.
pub fn transmit(
    clean: &[f32],
    p: &LineParams,
    protected: &[(usize, usize)],
    rng: &mut StdRng,
) -> (Vec<i16>, usize) {
    let mut x = clean.to_vec();
    let q = std::f64::consts::FRAC_1_SQRT_2;
    Biquad::high_pass(p.high_pass_hz, q, RATE).run(&mut x);
    Biquad::low_pass(p.low_pass_hz, q, RATE).run(&mut x);
    if let Some(g) = p.gsm_hz {
        Biquad::low_pass(g, 0.6, RATE).run(&mut x);
        Biquad::low_pass(g, 0.6, RATE).run(&mut x);
    }
    let floor = noise(rng, p.noise_colour, x.len(), p.noise_dbfs);
    for (i, s) in x.iter_mut().enumerate() {
        let mut v = *s * db_to_lin(p.gain_at(i)) + floor[i];
        if let Some((hz, db)) = p.hum {
            let t = i as f32 / 8000.0;
            let a = db_to_lin(db) * std::f32::consts::SQRT_2;
            let w = 2.0 * std::f32::consts::PI * hz * t;
            v += a * (w.sin() + 0.5 * (3.0 * w).sin() + 0.25 * (5.0 * w).sin()) / 1.146;
        }
        if let Some(dc) = p.dc {
            v += dc;
        }
        let ceiling = p.clip.unwrap_or(0.999);
        *s = v.clamp(-ceiling, ceiling);
    }
    let mut pcm: Vec<i16> = x.iter().map(|&s| to_i16(s)).collect();
    let mut codes = [0u8; FRAME];
    for law in &p.laws {
        for chunk in pcm.chunks_mut(FRAME) {
            let n = chunk.len();
            law.encode_into(chunk, &mut codes[..n]);
            law.decode_into(&codes[..n], chunk);
        }
    }
    let mut lost = 0;
    let frames = pcm.len() / FRAME;
    for f in 1..frames {
        let (start, end) = (f * FRAME, (f + 1) * FRAME);
        let lose = rng.random::<f32>() < p.loss_rate;
        let guarded = protected
            .iter()
            .any(|&(a, b)| start < b + FRAME && end + FRAME > a);
        if !lose || guarded {
            continue;
        }
        lost += 1;
        if p.conceal {
            for i in start..end {
                let fade = 1.0 - (i - start) as f32 / FRAME as f32 * 0.5;
                pcm[i] = (f32::from(pcm[i - FRAME]) * fade) as i16;
            }
        } else {
            pcm[start..end].iter_mut().for_each(|s| *s = 0);
        }
    }
    (pcm, lost)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_line_keeps_a_protected_tone_and_is_deterministic() {
        let mut clean = vec![0.0f32; 16000];
        for (i, s) in clean.iter_mut().enumerate().skip(8000).take(2400) {
            *s = 0.3 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 8000.0).sin();
        }
        let mut rng = StdRng::seed_from_u64(1);
        let mut p = LineParams::random(&mut rng, clean.len(), -20.0);
        p.loss_rate = 0.5;
        p.clip = None;
        p.step = None;
        let (a, lost) = transmit(&clean, &p, &[(8000, 10400)], &mut StdRng::seed_from_u64(2));
        let (b, _) = transmit(&clean, &p, &[(8000, 10400)], &mut StdRng::seed_from_u64(2));
        assert_eq!(a, b);
        assert!(lost > 10);
        // Every frame of the tone is still there at about the asked gain.
        let want = 0.3 * db_to_lin(p.gain_db) * 32768.0;
        for frame in a[8000 + 160..10400 - 160].chunks(160) {
            let peak = frame
                .iter()
                .map(|s| f32::from(s.unsigned_abs()))
                .fold(0.0, f32::max);
            assert!(peak > want * 0.7 && peak < want * 1.3, "{peak} vs {want}");
        }
        assert!(p.describe().starts_with("line="));
    }
}
