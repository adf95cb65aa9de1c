//! The prepared ingredients ([`Corpus`]): speech trimmed and normalised and grouped by
//! speaker and role, plus the sources the categories draw from (greetings, answers, music,
//! babble, street and car noise). Pure.

use rand::Rng;
use rand::rngs::StdRng;

use super::channel::{self, NoiseColour, db_to_lin, scale_to_dbfs};
use super::script::{self, Role, SpeakerKind};
use super::tones::MS;
use super::{IngredientError, Ingredients};
use crate::audio::rms_dbfs;

/// Level every prepared speech clip is normalised to (RMS over the trimmed clip).
pub(super) const SPEECH_DBFS: f32 = -20.0;

pub(super) type Clip = Vec<f32>;

/// A live answerer's lines.
pub(super) struct HumanVoice {
    pub(super) tag: String,
    pub(super) answers: Vec<Clip>,
    pub(super) long: Vec<Clip>,
    pub(super) rambles: Vec<Clip>,
    pub(super) again: Vec<Clip>,
}

/// A recorded greeting voice (a person or a carrier system).
pub(super) struct GreeterVoice {
    pub(super) tag: String,
    pub(super) kind: SpeakerKind,
    pub(super) short: Vec<Clip>,
    pub(super) open: Vec<Clip>,
    pub(super) body: Vec<Clip>,
    pub(super) name: Option<Clip>,
}

/// Prepared ingredients: speech trimmed and normalised, ready to mix.
pub struct Corpus {
    pub(super) humans: Vec<HumanVoice>,
    /// The real recorded "hello" (Asterisk `hello.wav`), trimmed and normalised.
    pub(super) real_hello: Clip,
    pub(super) greeters: Vec<GreeterVoice>,
    pub(super) prompts: std::collections::BTreeMap<String, Clip>,
    /// `beep.wav` as recorded (not trimmed or normalised: the tone edges matter).
    pub(super) recorded_beep: Clip,
    pub(super) music: Vec<Clip>,
}

/// Samples for a random duration in seconds.
pub(super) fn secs(rng: &mut StdRng, lo: f32, hi: f32) -> usize {
    (rng.random_range(lo..hi) * 8000.0) as usize
}

pub(super) fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

pub(super) fn dur_s(clip: &[f32]) -> f32 {
    clip.len() as f32 / 8000.0
}

/// A clip whose duration lies in `lo..=hi` seconds (random among those), else the nearest.
pub(super) fn pick_fitting<'a>(rng: &mut StdRng, clips: &'a [Clip], lo: f32, hi: f32) -> &'a Clip {
    let fitting: Vec<&Clip> = clips
        .iter()
        .filter(|c| (lo..=hi).contains(&dur_s(c)))
        .collect();
    if fitting.is_empty() {
        let mid = (lo + hi) / 2.0;
        let mut best = &clips[0];
        for c in clips {
            if (dur_s(c) - mid).abs() < (dur_s(best) - mid).abs() {
                best = c;
            }
        }
        best
    } else {
        fitting[rng.random_range(0..fitting.len())]
    }
}

/// Trims leading and trailing silence (5 ms blocks 40 dB under the loudest, 10 ms margin).
fn trim(pcm: &[f32]) -> Clip {
    const BLOCK: usize = 5 * MS;
    let levels: Vec<f32> = pcm.chunks(BLOCK).map(rms_dbfs).collect();
    let loudest = levels.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let gate = loudest - 40.0;
    let first = levels.iter().position(|&l| l > gate).unwrap_or(0);
    let last = levels.iter().rposition(|&l| l > gate).unwrap_or(0);
    let start = (first * BLOCK).saturating_sub(10 * MS);
    let end = ((last + 1) * BLOCK + 10 * MS).min(pcm.len());
    pcm[start..end.max(start)].to_vec()
}

fn prepare_speech(what: &str, pcm: &[f32]) -> Result<Clip, IngredientError> {
    let mut clip = trim(pcm);
    if clip.is_empty() || rms_dbfs(&clip) < -70.0 {
        return Err(IngredientError::Silent(what.to_string()));
    }
    scale_to_dbfs(&mut clip, SPEECH_DBFS);
    Ok(clip)
}

/// Concatenates clips with the given gaps (in samples) between them.
pub(super) fn join(parts: &[&[f32]], gaps: &[usize]) -> Clip {
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.extend(std::iter::repeat_n(
                0.0,
                gaps.get(i - 1).copied().unwrap_or(0),
            ));
        }
        out.extend_from_slice(p);
    }
    out
}

impl Corpus {
    /// Prepares the ingredients (trims and normalises speech). Fails when something the
    /// categories need is missing.
    pub fn new(ing: &Ingredients) -> Result<Corpus, IngredientError> {
        let requests = script::tts_requests();
        if ing.tts.len() != requests.len() {
            return Err(IngredientError::TtsCount {
                expected: requests.len(),
                got: ing.tts.len(),
            });
        }
        let mut prompts = std::collections::BTreeMap::new();
        for name in script::REQUIRED_PROMPTS {
            let pcm = ing
                .prompts
                .get(*name)
                .ok_or_else(|| IngredientError::MissingPrompt(name.to_string()))?;
            prompts.insert(name.to_string(), prepare_speech(name, pcm)?);
        }
        let recorded_beep = ing.prompts.get("beep").cloned().unwrap_or_default();
        let real_hello = prompts.get("hello").cloned().unwrap_or_default();

        let mut humans: Vec<HumanVoice> = Vec::new();
        let mut greeters: Vec<GreeterVoice> = Vec::new();
        let mut last_speaker = usize::MAX;
        for (req, pcm) in requests.iter().zip(&ing.tts) {
            let what = format!("espeak-ng {} {:?}", req.voice, req.text);
            let clip = prepare_speech(&what, pcm)?;
            let new_speaker = req.speaker != last_speaker;
            last_speaker = req.speaker;
            match req.kind {
                SpeakerKind::Human => {
                    if new_speaker {
                        humans.push(HumanVoice {
                            tag: req.tag().to_string(),
                            answers: Vec::new(),
                            long: Vec::new(),
                            rambles: Vec::new(),
                            again: Vec::new(),
                        });
                    }
                    if let Some(v) = humans.last_mut() {
                        match req.role {
                            Role::Answer => v.answers.push(clip),
                            Role::LongAnswer => v.long.push(clip),
                            Role::Ramble => v.rambles.push(clip),
                            _ => v.again.push(clip),
                        }
                    }
                }
                SpeakerKind::Greeter | SpeakerKind::Carrier => {
                    if new_speaker {
                        greeters.push(GreeterVoice {
                            tag: req.tag().to_string(),
                            kind: req.kind,
                            short: Vec::new(),
                            open: Vec::new(),
                            body: Vec::new(),
                            name: None,
                        });
                    }
                    if let Some(v) = greeters.last_mut() {
                        match req.role {
                            Role::GreetShort => v.short.push(clip),
                            Role::GreetOpen => v.open.push(clip),
                            Role::Name => v.name = Some(clip),
                            _ => v.body.push(clip),
                        }
                    }
                }
            }
        }
        let incomplete_human = humans.iter().any(|h| {
            h.answers.is_empty() || h.long.is_empty() || h.rambles.len() < 3 || h.again.is_empty()
        });
        let incomplete_greeter = greeters
            .iter()
            .any(|g| g.short.is_empty() || g.open.is_empty() || g.body.is_empty());
        if humans.is_empty() || greeters.is_empty() || incomplete_human || incomplete_greeter {
            return Err(IngredientError::Silent("espeak-ng script".to_string()));
        }
        if !greeters.iter().any(|g| g.name.is_some()) {
            return Err(IngredientError::Silent("greeter names".to_string()));
        }

        let music: Vec<Clip> = ing
            .music
            .iter()
            .filter(|(_, m)| m.len() > 30 * 8000)
            .map(|(_, m)| m.clone())
            .collect();
        if music.is_empty() {
            return Err(IngredientError::NoMusic);
        }
        Ok(Corpus {
            humans,
            real_hello,
            greeters,
            prompts,
            recorded_beep,
            music,
        })
    }

    /// A live answerer; the real Asterisk "hello" stands in for a quarter of plain answers.
    pub(super) fn human_voice<'a>(&'a self, rng: &mut StdRng) -> &'a HumanVoice {
        pick(rng, &self.humans)
    }

    /// A short answer ("Hello?", 0.4-0.9 s) and the voice tag.
    pub(super) fn short_answer(&self, rng: &mut StdRng) -> (Clip, String) {
        if rng.random_bool(0.25) {
            return (self.real_hello.clone(), "allison".to_string());
        }
        let v = self.human_voice(rng);
        (
            pick_fitting(rng, &v.answers, 0.4, 0.9).clone(),
            v.tag.clone(),
        )
    }

    pub(super) fn talk_gain(rng: &mut StdRng) -> f32 {
        db_to_lin(rng.random_range(-3.0..3.0))
    }

    pub(super) fn prompt(&self, name: &str) -> &[f32] {
        self.prompts.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// A greeting of 1.5-3 s (`long = false`) or 4-15 s. Returns samples and a source tag.
    pub(super) fn greeting(&self, rng: &mut StdRng, long: bool) -> (Clip, String) {
        let (lo, hi) = if long { (4.0, 15.0) } else { (1.5, 3.0) };
        let mut best: Option<(Clip, String)> = None;
        for _ in 0..40 {
            let (g, tag) = if long {
                self.long_greeting_candidate(rng)
            } else {
                self.short_greeting_candidate(rng)
            };
            let d = dur_s(&g);
            if (lo..=hi).contains(&d) {
                return (g, tag);
            }
            let mid = (lo + hi) / 2.0;
            let better = best
                .as_ref()
                .is_none_or(|(b, _)| (d - mid).abs() < (dur_s(b) - mid).abs());
            if better {
                best = Some((g, tag));
            }
        }
        best.unwrap_or_else(|| {
            (
                self.prompt("vm-nobodyavail").to_vec(),
                "asterisk".to_string(),
            )
        })
    }

    fn short_greeting_candidate(&self, rng: &mut StdRng) -> (Clip, String) {
        let x: f32 = rng.random();
        if x < 0.1 {
            return (self.prompt("vm-nobodyavail").to_vec(), "asterisk".into());
        }
        let g = pick(rng, &self.greeters);
        if x < 0.3
            && let Some(name) = &g.name
        {
            let tail = if rng.random_bool(0.5) {
                "vm-isunavail"
            } else {
                "vm-isonphone"
            };
            let gap = secs(rng, 0.05, 0.2);
            return (
                join(&[name, self.prompt(tail)], &[gap]),
                format!("{}+asterisk", g.tag),
            );
        }
        (pick(rng, &g.short).clone(), g.tag.clone())
    }

    fn long_greeting_candidate(&self, rng: &mut StdRng) -> (Clip, String) {
        let x: f32 = rng.random();
        if x < 0.15 {
            // app_voicemail's unavailable greeting: "The person at extension 4 2 1 7 is
            // unavailable. Please leave your message after the tone..."
            let digits: Vec<String> = (0..rng.random_range(3..=4))
                .map(|_| format!("digits/{}", rng.random_range(0..10)))
                .collect();
            let mut parts: Vec<&[f32]> = vec![self.prompt("vm-theperson")];
            parts.extend(digits.iter().map(|d| self.prompt(d)));
            parts.push(if rng.random_bool(0.6) {
                self.prompt("vm-isunavail")
            } else {
                self.prompt("vm-isonphone")
            });
            parts.push(self.prompt("vm-intro"));
            let gaps: Vec<usize> = (0..parts.len()).map(|_| secs(rng, 0.05, 0.25)).collect();
            return (join(&parts, &gaps), "asterisk".into());
        }
        if x < 0.2 {
            let gap = secs(rng, 0.2, 0.5);
            return (
                join(
                    &[self.prompt("vm-nobodyavail"), self.prompt("vm-intro")],
                    &[gap],
                ),
                "asterisk".into(),
            );
        }
        let g = pick(rng, &self.greeters);
        if x < 0.3
            && let Some(name) = &g.name
        {
            let gaps = [secs(rng, 0.05, 0.2), secs(rng, 0.2, 0.5)];
            let parts: [&[f32]; 3] = [name, self.prompt("vm-isunavail"), self.prompt("vm-intro")];
            return (join(&parts, &gaps), format!("{}+asterisk", g.tag));
        }
        let mut parts: Vec<&[f32]> = vec![pick(rng, &g.open).as_slice()];
        let bodies = if g.kind == SpeakerKind::Carrier {
            1
        } else {
            rng.random_range(0..=3)
        };
        let mut used = Vec::new();
        for _ in 0..bodies {
            let k = rng.random_range(0..g.body.len());
            if !used.contains(&k) {
                used.push(k);
                parts.push(&g.body[k]);
            }
        }
        let gaps: Vec<usize> = (0..parts.len()).map(|_| secs(rng, 0.25, 0.7)).collect();
        (join(&parts, &gaps), g.tag.clone())
    }

    /// `len` samples of music from a random track and offset (avoiding quiet passages).
    pub(super) fn music_excerpt(&self, rng: &mut StdRng, len: usize) -> Clip {
        let track = pick(rng, &self.music);
        let mut best: Clip = Vec::new();
        let mut best_db = f32::NEG_INFINITY;
        for _ in 0..8 {
            let max_start = track.len().saturating_sub(len + 1);
            let start = rng.random_range(0..=max_start);
            let mut out: Clip = track[start..(start + len).min(track.len())].to_vec();
            out.resize(len, 0.0);
            let db = rms_dbfs(&out);
            if db > -45.0 {
                return out;
            }
            if db > best_db {
                best_db = db;
                best = out;
            }
        }
        best
    }

    /// Several espeak voices talking over each other (a TV show or a room).
    pub(super) fn babble(&self, rng: &mut StdRng, len: usize) -> Clip {
        let mut out = vec![0.0f32; len];
        let streams = rng.random_range(2..=4);
        for _ in 0..streams {
            let g = pick(rng, &self.greeters);
            let mut at = secs(rng, 0.0, 1.0);
            while at < len {
                let clip = if rng.random_bool(0.5) {
                    pick(rng, &g.open)
                } else {
                    pick(rng, &g.body)
                };
                let gain = db_to_lin(rng.random_range(-6.0..0.0));
                for (d, v) in out[at..].iter_mut().zip(clip) {
                    *d += v * gain;
                }
                at += clip.len() + secs(rng, 0.1, 0.6);
            }
        }
        out
    }

    /// Pink noise with slow swells and the odd passing vehicle.
    pub(super) fn street_noise(rng: &mut StdRng, len: usize) -> Clip {
        let mut n = channel::noise(rng, NoiseColour::Pink, len, -20.0);
        let rate = rng.random_range(0.15f32..0.6);
        let phase = rng.random_range(0.0f32..6.3);
        let pass_at = rng.random_range(0..len.max(1)) as f32;
        let pass_w = rng.random_range(0.6f32..1.5) * 8000.0;
        for (i, v) in n.iter_mut().enumerate() {
            let t = i as f32 / 8000.0;
            let swell = 1.0 + 0.35 * (std::f32::consts::TAU * rate * t + phase).sin();
            let pass = 1.0 + 1.5 * (-((i as f32 - pass_at) / pass_w).powi(2)).exp();
            *v *= swell * pass;
        }
        n
    }

    /// Engine rumble: brown noise plus a little pink hiss.
    pub(super) fn car_noise(rng: &mut StdRng, len: usize) -> Clip {
        let mut n = channel::noise(rng, NoiseColour::Brown, len, -20.0);
        let hiss = channel::noise(rng, NoiseColour::Pink, len, -32.0);
        n.iter_mut().zip(&hiss).for_each(|(a, b)| *a += b);
        n
    }
}
