//! Generator 2's synthesised sounds: voicemail beeps of every shape (single, dual, rising,
//! falling or level multi-beeps of 1-5 tones, 60 ms-2 s each, optional echo), tones that can
//! ring near a person (microwave, notification chirp, DTMF key, call-waiting), and the
//! background beds people talk over (street, babble, TV, music). Pure and seeded.

use rand::Rng;
use rand::rngs::StdRng;

use crate::tools::corpus::channel::{NoiseColour, db_to_lin, gaussian, noise, scale_to_dbfs};

/// Samples per millisecond.
pub const MS: usize = 8;

/// One labelled tone of a beep: `[start, end)` samples relative to the beep's start and its
/// frequencies (one, or two for a dual tone).
#[derive(Clone, Debug, PartialEq)]
pub struct Tone {
    pub start: usize,
    pub end: usize,
    pub hz: Vec<f32>,
}

/// A synthesised beep: samples, its tones and how it was made.
#[derive(Clone, Debug, PartialEq)]
pub struct Beep {
    pub pcm: Vec<f32>,
    pub tones: Vec<Tone>,
    /// `single`, `dual`, `rising3`, `falling2`, `level4`, ...
    pub shape: String,
    /// Echo delay (ms) and level (dB under the direct tone), if any.
    pub echo: Option<(usize, f32)>,
}

/// Which beeps a category asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeepKind {
    /// Any shape.
    Any,
    /// 2-5 tones in a row.
    Multi,
    /// Any shape, with an echo.
    Echo,
}

/// Adds a sine burst of `len` samples at `at` with peak `amp`, 3 ms raised-cosine edges.
pub fn add_tone(out: &mut Vec<f32>, at: usize, len: usize, hz: &[f32], amp: f32, phase: f32) {
    if out.len() < at + len {
        out.resize(at + len, 0.0);
    }
    let ramp = (3 * MS).min(len / 4).max(1);
    let per = amp / hz.len() as f32;
    for i in 0..len {
        let edge = if i < ramp {
            0.5 - 0.5 * (std::f32::consts::PI * i as f32 / ramp as f32).cos()
        } else if i >= len - ramp {
            0.5 - 0.5 * (std::f32::consts::PI * (len - 1 - i) as f32 / ramp as f32).cos()
        } else {
            1.0
        };
        let t = i as f32 / 8000.0;
        let s: f32 = hz
            .iter()
            .map(|f| (2.0 * std::f32::consts::PI * f * t + phase).sin())
            .sum();
        out[at + i] += per * edge * s;
    }
}

/// Durations from 60 ms to 2 s, log-uniform, whole ms.
fn tone_ms(rng: &mut StdRng, lo: f32, hi: f32) -> usize {
    (lo.ln() + rng.random::<f32>() * (hi.ln() - lo.ln()))
        .exp()
        .round() as usize
}

/// A beep of the asked kind with a peak level of `peak_dbfs` (-30..-3 in the corpus).
pub fn beep(rng: &mut StdRng, kind: BeepKind, peak_dbfs: f32) -> Beep {
    let amp = db_to_lin(peak_dbfs);
    let count: usize = match kind {
        BeepKind::Multi => rng.random_range(2..=5),
        _ if rng.random_bool(0.6) => 1,
        _ => rng.random_range(1..=5),
    };
    let dual = count == 1 && rng.random_bool(0.3);
    let mut pcm = Vec::new();
    let mut tones = Vec::new();
    let shape = if count == 1 {
        let ms = tone_ms(rng, 60.0, 2000.0);
        let f = rng.random_range(350.0..2500.0f32).round();
        let hz = if dual {
            let g = (f * rng.random_range(1.15..1.6f32)).min(3000.0).round();
            vec![f, g]
        } else {
            vec![f]
        };
        add_tone(&mut pcm, 0, ms * MS, &hz, amp, 0.0);
        tones.push(Tone {
            start: 0,
            end: ms * MS,
            hz,
        });
        if dual { "dual" } else { "single" }.to_string()
    } else {
        let pattern = rng.random_range(0..3);
        let base = rng.random_range(400.0..1600.0f32);
        let step = rng.random_range(1.1..1.4f32);
        let each = tone_ms(rng, 60.0, 400.0);
        let gap = rng.random_range(20..=200);
        let mut at = 0;
        for k in 0..count {
            let f = match pattern {
                0 => base * step.powi(k as i32),
                1 => base * step.powi((count - 1 - k) as i32),
                _ => base,
            }
            .min(2800.0)
            .round();
            // The last tone of a sequence is often the long one.
            let ms = if k == count - 1 && rng.random_bool(0.4) {
                tone_ms(rng, 200.0, 1200.0)
            } else {
                each
            };
            add_tone(&mut pcm, at, ms * MS, &[f], amp, 0.0);
            tones.push(Tone {
                start: at,
                end: at + ms * MS,
                hz: vec![f],
            });
            at += (ms + gap) * MS;
        }
        format!(
            "{}{count}",
            ["rising", "falling", "level"][pattern as usize]
        )
    };
    let echo = if kind == BeepKind::Echo || rng.random_bool(0.1) {
        let delay = rng.random_range(20..=120);
        let db = rng.random_range(8.0..20.0f32);
        let direct = pcm.clone();
        pcm.resize(direct.len() + delay * MS, 0.0);
        let g = db_to_lin(-db);
        for (i, s) in direct.iter().enumerate() {
            pcm[i + delay * MS] += s * g;
        }
        Some((delay, db))
    } else {
        None
    };
    Beep {
        pcm,
        tones,
        shape,
        echo,
    }
}

/// A tone that rings near a person (not a voicemail beep), and its name.
pub fn nearby_tone(rng: &mut StdRng, peak_dbfs: f32) -> (Vec<f32>, &'static str) {
    let amp = db_to_lin(peak_dbfs);
    let mut out = Vec::new();
    let name = match rng.random_range(0..4) {
        0 => {
            let f = rng.random_range(1800.0..2700.0f32);
            let n = rng.random_range(1..=3);
            for k in 0..n {
                add_tone(&mut out, k * 700 * MS, 400 * MS, &[f], amp, 0.0);
            }
            "microwave"
        }
        1 => {
            let f = rng.random_range(800.0..1200.0f32);
            for k in 0..3 {
                add_tone(
                    &mut out,
                    k * 110 * MS,
                    90 * MS,
                    &[f * 1.26f32.powi(k as i32)],
                    amp,
                    0.0,
                );
            }
            "chirp"
        }
        2 => {
            let row = [697.0, 770.0, 852.0, 941.0][rng.random_range(0..4)];
            let col = [1209.0, 1336.0, 1477.0][rng.random_range(0..3)];
            add_tone(
                &mut out,
                0,
                rng.random_range(80..200) * MS,
                &[row, col],
                amp,
                0.0,
            );
            "dtmf"
        }
        _ => {
            for k in 0..rng.random_range(1..=2) {
                add_tone(&mut out, k * 500 * MS, 300 * MS, &[440.0], amp, 0.0);
            }
            "callwaiting"
        }
    };
    (out, name)
}

/// Which background a person talks over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bed {
    Street,
    Babble,
    Tv,
    Music,
}

impl Bed {
    pub fn name(self) -> &'static str {
        match self {
            Bed::Street => "street",
            Bed::Babble => "babble",
            Bed::Tv => "tv",
            Bed::Music => "music",
        }
    }
}

/// `len` samples of `src` from a random offset, looping.
pub fn excerpt(rng: &mut StdRng, src: &[f32], len: usize) -> Vec<f32> {
    if src.is_empty() {
        return vec![0.0; len];
    }
    let start = rng.random_range(0..src.len());
    (0..len).map(|i| src[(start + i) % src.len()]).collect()
}

/// Street noise: rumbling brown and pink noise with cars passing (slow swells).
pub fn street(rng: &mut StdRng, len: usize) -> Vec<f32> {
    let mut out = noise(rng, NoiseColour::Brown, len, -20.0);
    let pink = noise(rng, NoiseColour::Pink, len, -26.0);
    for (o, p) in out.iter_mut().zip(&pink) {
        *o += p;
    }
    let mut at = rng.random_range(0..(len / 2).max(1));
    while at < len {
        let dur = rng.random_range(1.0..3.0f32) * 8000.0;
        let peak = db_to_lin(rng.random_range(0.0..8.0));
        for i in 0..dur as usize {
            if at + i >= len {
                break;
            }
            let x = i as f32 / dur;
            let swell = (std::f32::consts::PI * x).sin().powi(2);
            out[at + i] *= 1.0 + (peak - 1.0) * swell + 0.02 * gaussian(rng);
        }
        at += (dur as usize) + rng.random_range(8000..40000);
    }
    out
}

/// Speech of several speakers at once, from `clips` (other voices), `len` samples.
pub fn babble(rng: &mut StdRng, clips: &[&[f32]], talkers: usize, len: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; len];
    for _ in 0..talkers {
        let mut at = rng.random_range(0..(8000 * 2).min(len.max(1)));
        while at < len && !clips.is_empty() {
            let c = clips[rng.random_range(0..clips.len())];
            let g = db_to_lin(rng.random_range(-6.0..0.0));
            for (i, s) in c.iter().enumerate() {
                if at + i >= len {
                    break;
                }
                out[at + i] += s * g;
            }
            at += c.len() + rng.random_range(0..4000);
        }
    }
    out
}

/// Scales `bed` so it sits `snr_db` under a speech level of `speech_dbfs` (RMS).
pub fn level_bed(bed: &mut [f32], speech_dbfs: f32, snr_db: f32) {
    scale_to_dbfs(bed, speech_dbfs - snr_db);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn beeps_cover_every_shape_and_label_their_tones() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut shapes = std::collections::BTreeSet::new();
        for i in 0..400 {
            let kind = [BeepKind::Any, BeepKind::Multi, BeepKind::Echo][i % 3];
            let b = beep(&mut rng, kind, -10.0);
            assert!(!b.tones.is_empty() && b.tones.len() <= 5);
            if kind == BeepKind::Multi {
                assert!(b.tones.len() >= 2);
            }
            if kind == BeepKind::Echo {
                assert!(b.echo.is_some());
            }
            for t in &b.tones {
                let ms = (t.end - t.start) / MS;
                assert!((60..=2000).contains(&ms), "{ms}");
                // The tone is there: its middle is loud.
                let mid = (t.start + t.end) / 2;
                let peak = b.pcm[mid - 40..mid + 40]
                    .iter()
                    .fold(0.0f32, |m, s| m.max(s.abs()));
                assert!(peak > 0.1, "{peak}");
            }
            for w in b.tones.windows(2) {
                assert!(w[1].start >= w[0].end + 20 * MS);
            }
            shapes.insert(b.shape.trim_end_matches(char::is_numeric).to_string());
        }
        for s in ["single", "dual", "rising", "falling", "level"] {
            assert!(shapes.contains(s), "{s}: {shapes:?}");
        }
    }
}
