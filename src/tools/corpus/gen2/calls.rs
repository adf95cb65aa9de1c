//! How generator 2 puts each kind of call together. Pure: a seeded RNG in, a [`Call2`] out.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::line::{self, LineParams};
use super::script::Line;
use super::sounds::{self, Bed, BeepKind, MS};
use super::{Call2, Clip, Gen2, Kind, SPEECH_DBFS, Speaker, file_name};
use crate::tools::corpus::channel::{NoiseColour, db_to_lin, noise};
use crate::tools::corpus::labels::Label;
use crate::tools::corpus::mix_seed;

/// Shortest silence that ends an utterance; speech closer than this is one utterance.
pub const UTTERANCE_GAP_MS: usize = 500;

/// End of the first utterance of a person's clean track: from the first speech, up to the
/// first pause of [`UTTERANCE_GAP_MS`] (5 ms blocks within 35 dB of the loudest, and above
/// -70 dBFS, are speech).
/// Catches pauses inside a synthesised line as well as between lines.
pub fn utterance_end(track: &[f32]) -> Option<usize> {
    const BLOCK: usize = 5 * MS;
    let levels: Vec<f32> = track.chunks(BLOCK).map(crate::audio::rms_dbfs).collect();
    let loudest = levels.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let gate = (loudest - 35.0).max(-70.0);
    let first = levels.iter().position(|&l| l > gate)?;
    let mut last = first;
    for (i, &l) in levels.iter().enumerate().skip(first) {
        if l > gate {
            last = i;
        } else if (i - last) * 5 >= UTTERANCE_GAP_MS {
            break;
        }
    }
    Some(((last + 1) * BLOCK).min(track.len()))
}

fn secs(rng: &mut StdRng, lo: f32, hi: f32) -> usize {
    ((rng.random_range(lo..hi) * 8000.0) as usize).div_ceil(MS) * MS
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// A call being composed, before the line.
struct Scene {
    /// The person, the greeting and the beep.
    fore: Vec<f32>,
    /// Background beds and room noise.
    back: Vec<f32>,
    /// Labelled tones: absolute (start, end) samples and frequencies.
    tones: Vec<(usize, usize, Vec<f32>)>,
    utt_end: Option<usize>,
    notes: Vec<String>,
}

fn put(buf: &mut Vec<f32>, at: usize, clip: &[f32], gain: f32) {
    if buf.len() < at + clip.len() {
        buf.resize(at + clip.len(), 0.0);
    }
    for (d, s) in buf[at..].iter_mut().zip(clip) {
        *d += s * gain;
    }
}

impl Scene {
    fn note(&mut self, key: &str, value: impl std::fmt::Display) {
        self.notes.push(format!("{key}={value}"));
    }

    fn end(&self) -> usize {
        self.fore.len()
    }
}

impl Gen2 {
    /// Generates call `index` of a corpus with `seed`; depends only on the prepared
    /// ingredients, the seed, the index and the kind.
    pub fn call(&self, seed: u64, index: usize, kind: Kind) -> Call2 {
        let mut rng = StdRng::seed_from_u64(mix_seed(seed ^ 0x2_0000_0000, index as u64));
        let mut s = Scene {
            fore: Vec::new(),
            back: Vec::new(),
            tones: Vec::new(),
            utt_end: None,
            notes: Vec::new(),
        };
        s.note("cat", kind.name());
        let level = if kind.truth() == crate::amd::bench::Truth::Human {
            rng.random_range(-26.0..-14.0f32)
        } else {
            rng.random_range(-24.0..-16.0f32)
        };
        let gain = db_to_lin(level - SPEECH_DBFS);
        // Where the greeting ends (machines), for the beep.
        let greeting_end = match kind {
            Kind::HumanHello => self.person(&mut rng, &mut s, gain, Line::Short, 0.1, 1.5),
            Kind::HumanSentence => self.person(&mut rng, &mut s, gain, Line::Medium, 0.1, 1.5),
            Kind::HumanRambler => self.rambler(&mut rng, &mut s, gain),
            Kind::HumanTwoPart => self.two_part(&mut rng, &mut s, gain),
            Kind::HumanNoisy => self.noisy(&mut rng, &mut s, gain, level),
            Kind::HumanLate => {
                let line = if rng.random_bool(0.5) {
                    Line::Short
                } else {
                    Line::Medium
                };
                self.person(&mut rng, &mut s, gain, line, 2.0, 5.0)
            }
            Kind::HumanToneNearby => self.tone_nearby(&mut rng, &mut s, gain),
            Kind::VmShort => self.greeting(&mut rng, &mut s, gain, 0.2, 1.5, 1.0, 3.0),
            Kind::VmLong => self.greeting(&mut rng, &mut s, gain, 0.2, 1.5, 5.0, 25.0),
            Kind::VmMusicBed => self.music_greeting(&mut rng, &mut s, gain, level),
            Kind::VmLateStart => self.greeting(&mut rng, &mut s, gain, 2.5, 8.0, 1.0, 10.0),
            Kind::VmMultibeep | Kind::VmBeepEcho => {
                self.greeting(&mut rng, &mut s, gain, 0.2, 1.5, 1.0, 12.0)
            }
            Kind::VmNoBeep => self.greeting(&mut rng, &mut s, gain, 0.2, 1.5, 1.0, 20.0),
            Kind::VmSystem => self.system(&mut rng, &mut s, gain),
        };

        if kind.truth() == crate::amd::bench::Truth::Human {
            s.utt_end = utterance_end(&s.fore);
        }
        // The beep (or the silence after a beepless greeting), then the recording's tail.
        let beep_at = if kind.has_beep() {
            Some((greeting_end + secs(&mut rng, 0.15, 1.5)).div_ceil(MS) * MS)
        } else {
            None
        };
        let beep_kind = match kind {
            Kind::VmMultibeep => BeepKind::Multi,
            Kind::VmBeepEcho => BeepKind::Echo,
            _ => BeepKind::Any,
        };
        let beep_dbfs = rng.random_range(-30.0..-3.0f32);
        let beep = beep_at.map(|_| sounds::beep(&mut rng, beep_kind, 0.0));
        let content_end = match (&beep, beep_at) {
            (Some(b), Some(at)) => at + b.pcm.len(),
            _ => s.end().max(greeting_end),
        };
        let tail = if kind.has_beep() {
            secs(&mut rng, 1.5, 4.0)
        } else if kind == Kind::VmNoBeep {
            secs(&mut rng, 3.0, 6.0)
        } else {
            secs(&mut rng, 2.5, 5.0)
        };
        let total = (content_end + tail).max(6 * 8000);
        s.fore.resize(total, 0.0);
        s.back.resize(total, 0.0);

        let mut params = LineParams::random(&mut rng, total, level);
        if let (Some(b), Some(at)) = (&beep, beep_at) {
            // No gain step inside the beep: the labelled level holds for every tone.
            if let Some((step, _)) = params.step
                && step + 1600 > at
                && step < at + b.pcm.len() + 1600
            {
                params.step = params.step.map(|(_, db)| (at / 2, db));
            }
            let g = db_to_lin(beep_dbfs - params.gain_at(at));
            put(&mut s.fore, at, &b.pcm, g);
            for t in &b.tones {
                s.tones.push((at + t.start, at + t.end, t.hz.clone()));
            }
            s.note("beep", &b.shape);
            s.note("beep_dbfs", format!("{beep_dbfs:.0}"));
            if let Some((ms, db)) = b.echo {
                s.note("echo", format!("{ms}ms-{db:.0}dB"));
            }
        }
        // The room the far end is in.
        let room_db = rng.random_range(-78.0..-62.0);
        let room = noise(&mut rng, NoiseColour::Pink, total, room_db);
        put(&mut s.back, 0, &room, 1.0);
        let mix: Vec<f32> = s.fore.iter().zip(&s.back).map(|(a, b)| a + b).collect();
        let protected: Vec<(usize, usize)> = s.tones.iter().map(|t| (t.0, t.1)).collect();
        let (pcm, lost) = line::transmit(&mix, &params, &protected, &mut rng);
        s.notes.push(params.describe());
        s.note("lost", lost);
        if let Some(end) = s.utt_end {
            s.note("utt_end", end.div_ceil(MS));
        }
        if !s.tones.is_empty() {
            let tones: Vec<String> = s
                .tones
                .iter()
                .map(|(a, b, hz)| {
                    let hz: Vec<String> = hz.iter().map(|f| format!("{f:.0}")).collect();
                    format!("{}-{}@{}", a / MS, b.div_ceil(MS), hz.join("/"))
                })
                .collect();
            s.note("tones", tones.join("+"));
        }
        let beep_ms = match (s.tones.first(), s.tones.last()) {
            (Some(first), Some(last)) => Some(((first.0 / MS) as u64, last.1.div_ceil(MS) as u64)),
            _ => None,
        };
        Call2 {
            index,
            kind,
            pcm,
            label: Label {
                file: file_name(index, kind),
                truth: kind.truth(),
                beep_ms,
                notes: s.notes.join(";").replace([',', '\n', ' '], "_"),
            },
        }
    }

    fn human<'a>(&'a self, rng: &mut StdRng, s: &mut Scene) -> &'a Speaker {
        let h = pick(rng, &self.humans);
        s.note("voice", &h.tag);
        h
    }

    /// One answer after a pause of `lo..hi` s; the person may try again later.
    fn person(
        &self,
        rng: &mut StdRng,
        s: &mut Scene,
        gain: f32,
        line: Line,
        lo: f32,
        hi: f32,
    ) -> usize {
        let h = self.human(rng, s);
        let at = secs(rng, lo, hi);
        let clip = pick(rng, h.get(line));
        put(&mut s.fore, at, clip, gain);
        s.note("lead_ms", at / MS);
        if rng.random_bool(0.35) {
            let again = pick(rng, h.get(Line::Again));
            let at2 = s.end() + secs(rng, 1.5, 3.0);
            put(
                &mut s.fore,
                at2,
                again,
                gain * db_to_lin(rng.random_range(0.0..4.0)),
            );
        }
        s.end()
    }

    /// A run-on answer: one to three long phrases with breaths of 60-250 ms between them
    /// (one utterance unless a line has a long pause of its own).
    fn rambler(&self, rng: &mut StdRng, s: &mut Scene, gain: f32) -> usize {
        let h = self.human(rng, s);
        let mut at = secs(rng, 0.1, 1.2);
        s.note("lead_ms", at / MS);
        let parts = match rng.random_range(0..20) {
            0..=9 => 1,
            10..=16 => 2,
            _ => 3,
        };
        for k in 0..parts {
            let line = if k == 0 || rng.random_bool(0.6) {
                Line::Ramble
            } else {
                Line::Medium
            };
            let clip = pick(rng, h.get(line));
            put(&mut s.fore, at, clip, gain);
            at += clip.len() + rng.random_range(60..250) * MS;
        }
        s.end()
    }

    /// "Hello?" ... "Hello? Is anyone there?": the first utterance is the first part.
    fn two_part(&self, rng: &mut StdRng, s: &mut Scene, gain: f32) -> usize {
        let h = self.human(rng, s);
        let at = secs(rng, 0.1, 1.5);
        s.note("lead_ms", at / MS);
        let first = pick(rng, h.get(Line::Short));
        put(&mut s.fore, at, first, gain);
        let gap = rng.random_range(UTTERANCE_GAP_MS as f32 / 1000.0 + 0.1..2.2);
        let second = if rng.random_bool(0.6) {
            pick(rng, h.get(Line::Again))
        } else {
            pick(rng, h.get(Line::Medium))
        };
        let at2 = s.end() + secs(rng, gap, gap + 0.01);
        put(&mut s.fore, at2, second, gain);
        s.end()
    }

    /// A person over a street, babble, TV or music bed at 0-20 dB SNR.
    fn noisy(&self, rng: &mut StdRng, s: &mut Scene, gain: f32, level: f32) -> usize {
        let end = match rng.random_range(0..3) {
            0 => self.person(rng, s, gain, Line::Short, 0.1, 1.5),
            1 => self.person(rng, s, gain, Line::Medium, 0.1, 1.5),
            _ => self.two_part(rng, s, gain),
        };
        let len = end + 6 * 8000;
        let bed = [Bed::Street, Bed::Babble, Bed::Tv, Bed::Music][rng.random_range(0..4)];
        let others: Vec<&[f32]> = self
            .greeters
            .iter()
            .chain(&self.systems)
            .flat_map(|g| g.lines.values().flatten())
            .map(Vec::as_slice)
            .collect();
        let mut b = match bed {
            Bed::Street => sounds::street(rng, len),
            Bed::Babble => {
                let talkers = rng.random_range(3..7);
                sounds::babble(rng, &others, talkers, len)
            }
            Bed::Tv => {
                let mut tv = sounds::babble(rng, &others, 1, len);
                let track = rng.random_range(0..self.music.len());
                let m = sounds::excerpt(rng, &self.music[track], len);
                put(&mut tv, 0, &m, db_to_lin(-10.0));
                tv
            }
            Bed::Music => {
                let track = rng.random_range(0..self.music.len());
                sounds::excerpt(rng, &self.music[track], len)
            }
        };
        let snr = rng.random_range(0.0..20.0f32);
        sounds::level_bed(&mut b, level, snr);
        put(&mut s.back, 0, &b, 1.0);
        s.note("bed", bed.name());
        s.note("snr", format!("{snr:.0}"));
        end
    }

    /// A person with a tone ringing nearby (microwave, chirp, DTMF, call waiting).
    fn tone_nearby(&self, rng: &mut StdRng, s: &mut Scene, gain: f32) -> usize {
        let line = if rng.random_bool(0.5) {
            Line::Short
        } else {
            Line::Medium
        };
        let end = self.person(rng, s, gain, line, 0.1, 1.5);
        let tone_db = rng.random_range(-35.0..-12.0);
        let (tone, name) = sounds::nearby_tone(rng, tone_db);
        let speech = utterance_end(&s.fore).unwrap_or(0);
        let at = (speech as i64 + rng.random_range(-16000..16000)).max(0) as usize;
        put(&mut s.back, at, &tone, 1.0);
        s.note("nearby", name);
        end.max(at + tone.len())
    }

    /// A recorded greeting of about `lo..hi` s after `lead_lo..lead_hi` s of silence.
    #[allow(clippy::too_many_arguments)]
    fn greeting(
        &self,
        rng: &mut StdRng,
        s: &mut Scene,
        gain: f32,
        lead_lo: f32,
        lead_hi: f32,
        lo: f32,
        hi: f32,
    ) -> usize {
        let g = pick(rng, &self.greeters);
        s.note("voice", &g.tag);
        let lead = secs(rng, lead_lo, lead_hi);
        s.note("lead_ms", lead / MS);
        let target = secs(rng, lo, hi);
        let clips = self.greeting_clips(rng, g, target);
        let mut at = lead;
        for (k, c) in clips.iter().enumerate() {
            if k > 0 {
                at += secs(rng, 0.25, 0.9);
            }
            put(&mut s.fore, at, c, gain);
            at += c.len();
        }
        s.note("greeting_ms", (at - lead) / MS);
        at
    }

    fn greeting_clips<'a>(&self, rng: &mut StdRng, g: &'a Speaker, target: usize) -> Vec<&'a Clip> {
        if target < 3 * 8000 {
            let mut v = vec![pick(rng, g.get(Line::GreetShort))];
            if target > 2 * 8000 && rng.random_bool(0.5) {
                v.push(pick(rng, g.get(Line::GreetClose)));
            }
            return v;
        }
        let mut v = vec![pick(rng, g.get(Line::GreetOpen))];
        let mut len = v[0].len();
        let bodies = g.get(Line::GreetBody);
        let mut k = rng.random_range(0..bodies.len());
        while len + 4000 < target && v.len() < 12 {
            let c = &bodies[k % bodies.len()];
            k += 1;
            len += c.len() + 4000;
            v.push(c);
        }
        if rng.random_bool(0.6) {
            v.push(pick(rng, g.get(Line::GreetClose)));
        }
        v
    }

    /// A greeting over a music bed that starts before the voice and fades after it.
    fn music_greeting(&self, rng: &mut StdRng, s: &mut Scene, gain: f32, level: f32) -> usize {
        let intro = secs(rng, 0.5, 3.0);
        let start = secs(rng, 0.1, 1.0);
        let end = self.greeting(rng, s, gain, 0.0, 0.01, 2.0, 15.0);
        // Shift the greeting to make room for the music intro.
        let shift = start + intro;
        let mut fore = vec![0.0f32; shift];
        fore.extend_from_slice(&s.fore);
        s.fore = fore;
        let end = end + shift;
        let music_end = end + secs(rng, 0.1, 0.5);
        let track = rng.random_range(0..self.music.len());
        let mut m = sounds::excerpt(rng, &self.music[track], music_end - start);
        let fade = 2400.min(m.len());
        let n = m.len();
        for (i, x) in m[n - fade..].iter_mut().enumerate() {
            *x *= 1.0 - i as f32 / fade as f32;
        }
        let under = rng.random_range(6.0..18.0f32);
        sounds::level_bed(&mut m, level, under);
        put(&mut s.back, start, &m, 1.0);
        s.note("music_under_db", format!("{under:.0}"));
        music_end
    }

    /// A carrier's voicemail system: two or three system prompts.
    fn system(&self, rng: &mut StdRng, s: &mut Scene, gain: f32) -> usize {
        let v = pick(rng, &self.systems);
        s.note("voice", &v.tag);
        let mut at = secs(rng, 0.2, 1.2);
        s.note("lead_ms", at / MS);
        let lines = v.get(Line::System);
        let n = rng.random_range(2..=3);
        let first = rng.random_range(0..lines.len());
        for k in 0..n {
            let c = &lines[(first + k) % lines.len()];
            put(&mut s.fore, at, c, gain);
            at += c.len() + secs(rng, 0.3, 0.8);
        }
        s.end()
    }
}
