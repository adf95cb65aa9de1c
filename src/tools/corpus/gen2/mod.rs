//! Generator 2: a second, independently built corpus of answered calls, for measuring the
//! AMD on calls it was not tuned on. It shares no composition code with generator 1
//! (`crate::tools::corpus`): other espeak-ng voices and variants at wider speed and pitch ranges,
//! no Asterisk prompts, scripted answers of every length (one-word hellos, sentences, long
//! ramblers, two-part hellos), people over street/babble/TV/music beds at 0-20 dB SNR, tones
//! ringing near a person, greetings of 1-25 s with and without music beds, long initial
//! silences, beeps of every shape (1-5 tones, single/dual/rising/falling/level, 60 ms-2 s,
//! -30 to -3 dBFS peak, with and without echo) and a causal line chain with G.711 A/u (and
//! transcoding), GSM-like low-pass, packet loss with concealment, clipping, gain steps, DC
//! offset and 50/60 Hz hum (`line`). Only small signal helpers (noise, biquads, G.711) are
//! shared.
//!
//! Labels: the usual `labels.csv` columns (beep start = start of the first tone, beep end =
//! end of the LAST tone), and in the notes `cat=`, `utt_end=MS` (end of the person's first
//! utterance: speech followed by at least 500 ms without speech, measured on the person's
//! clean track, see [`calls::utterance_end`]) and `tones=S-E@HZ[/HZ]+...` (every tone of the
//! beep).
//!
//! Pure and seeded like generator 1: the runtime (`tools::corpus::corpus2`) loads the ingredients
//! (music and the espeak-ng lines of [`script::lines`]) and writes what comes back.

pub mod calls;
pub mod line;
pub mod script;
pub mod sounds;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::IngredientError;
use super::labels::Label;
use super::script::SpeakerKind;
use crate::amd::bench::Truth;
use crate::audio::rms_dbfs;
use script::Line;

/// The kinds of call generator 2 makes (the `cat=` of the notes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    HumanHello,
    HumanSentence,
    HumanRambler,
    HumanTwoPart,
    HumanNoisy,
    HumanLate,
    HumanToneNearby,
    VmShort,
    VmLong,
    VmMusicBed,
    VmLateStart,
    VmMultibeep,
    VmBeepEcho,
    VmNoBeep,
    VmSystem,
}

impl Kind {
    pub const ALL: [Kind; 15] = [
        Kind::HumanHello,
        Kind::HumanSentence,
        Kind::HumanRambler,
        Kind::HumanTwoPart,
        Kind::HumanNoisy,
        Kind::HumanLate,
        Kind::HumanToneNearby,
        Kind::VmShort,
        Kind::VmLong,
        Kind::VmMusicBed,
        Kind::VmLateStart,
        Kind::VmMultibeep,
        Kind::VmBeepEcho,
        Kind::VmNoBeep,
        Kind::VmSystem,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::HumanHello => "human_hello",
            Kind::HumanSentence => "human_sentence",
            Kind::HumanRambler => "human_rambler",
            Kind::HumanTwoPart => "human_two_part",
            Kind::HumanNoisy => "human_noisy",
            Kind::HumanLate => "human_late",
            Kind::HumanToneNearby => "human_tone_nearby",
            Kind::VmShort => "vm_short",
            Kind::VmLong => "vm_long",
            Kind::VmMusicBed => "vm_music_bed",
            Kind::VmLateStart => "vm_late_start",
            Kind::VmMultibeep => "vm_multibeep",
            Kind::VmBeepEcho => "vm_beep_echo",
            Kind::VmNoBeep => "vm_no_beep",
            Kind::VmSystem => "vm_system",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn truth(self) -> Truth {
        if self.name().starts_with("human") {
            Truth::Human
        } else {
            Truth::Machine
        }
    }

    pub fn has_beep(self) -> bool {
        self.truth() == Truth::Machine && self != Kind::VmNoBeep
    }
}

/// Share of human calls in a plan.
pub const HUMAN_SHARE: f64 = 0.45;

/// The kind of each of `count` calls: `round(count * HUMAN_SHARE)` human calls spread evenly
/// over the human kinds, the rest over the machine kinds, in a seeded shuffled order.
pub fn plan(count: usize, seed: u64) -> Vec<Kind> {
    let humans = (count as f64 * HUMAN_SHARE).round() as usize;
    let mut out = Vec::with_capacity(count);
    for (truth, total) in [(Truth::Human, humans), (Truth::Machine, count - humans)] {
        let side: Vec<Kind> = Kind::ALL
            .into_iter()
            .filter(|k| k.truth() == truth)
            .collect();
        for i in 0..total {
            out.push(side[i % side.len()]);
        }
    }
    out.shuffle(&mut StdRng::seed_from_u64(
        seed.rotate_left(17) ^ 0x6765_6e32,
    ));
    out
}

/// File name of the `index`-th call: `0042-vm_multibeep.wav`.
pub fn file_name(index: usize, kind: Kind) -> String {
    format!("{index:04}-{}.wav", kind.name())
}

/// True for names generator 2 writes.
pub fn is_call_file(name: &str) -> bool {
    let Some((num, kind)) = name.strip_suffix(".wav").and_then(|s| s.split_once('-')) else {
        return false;
    };
    num.len() >= 4 && num.bytes().all(|b| b.is_ascii_digit()) && Kind::from_name(kind).is_some()
}

/// Generator 2's ingredients, decoded to 8 kHz mono -1.0..1.0.
#[derive(Clone, Debug, Default)]
pub struct Ingredients2 {
    /// Music tracks, in a fixed order.
    pub music: Vec<Vec<f32>>,
    /// One clip per entry of [`script::lines`], in the same order.
    pub tts: Vec<Vec<f32>>,
}

type Clip = Vec<f32>;

/// Level of every prepared speech clip (RMS over the trimmed clip).
const SPEECH_DBFS: f32 = -20.0;

/// One speaker's prepared lines by use.
#[derive(Default)]
struct Speaker {
    tag: String,
    lines: std::collections::BTreeMap<Line, Vec<Clip>>,
}

impl Speaker {
    fn get(&self, line: Line) -> &[Clip] {
        self.lines.get(&line).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Prepared ingredients of generator 2.
pub struct Gen2 {
    humans: Vec<Speaker>,
    greeters: Vec<Speaker>,
    systems: Vec<Speaker>,
    music: Vec<Clip>,
}

/// One generated call.
#[derive(Clone, Debug)]
pub struct Call2 {
    pub index: usize,
    pub kind: Kind,
    pub pcm: Vec<i16>,
    pub label: Label,
}

/// Trims silence at both ends (10 ms blocks 35 dB under the loudest, 5 ms margin).
fn trim(pcm: &[f32]) -> Clip {
    const BLOCK: usize = 80;
    let levels: Vec<f32> = pcm.chunks(BLOCK).map(rms_dbfs).collect();
    let loudest = levels.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let first = levels.iter().position(|&l| l > loudest - 35.0).unwrap_or(0);
    let last = levels
        .iter()
        .rposition(|&l| l > loudest - 35.0)
        .unwrap_or(0);
    let start = (first * BLOCK).saturating_sub(40);
    let end = ((last + 1) * BLOCK + 40).min(pcm.len());
    pcm[start..end.max(start)].to_vec()
}

impl Gen2 {
    /// Prepares the ingredients: every line trimmed and normalised, grouped by speaker.
    pub fn new(ing: &Ingredients2) -> Result<Gen2, IngredientError> {
        let lines = script::lines();
        if ing.tts.len() != lines.len() {
            return Err(IngredientError::TtsCount {
                expected: lines.len(),
                got: ing.tts.len(),
            });
        }
        if ing.music.is_empty() {
            return Err(IngredientError::NoMusic);
        }
        let mut humans: Vec<Speaker> = (0..script::speakers(SpeakerKind::Human))
            .map(|_| Speaker::default())
            .collect();
        let mut greeters: Vec<Speaker> = (0..script::speakers(SpeakerKind::Greeter))
            .map(|_| Speaker::default())
            .collect();
        let mut systems: Vec<Speaker> = (0..script::speakers(SpeakerKind::Carrier))
            .map(|_| Speaker::default())
            .collect();
        for (l, pcm) in lines.iter().zip(&ing.tts) {
            let mut clip = trim(pcm);
            if clip.is_empty() || rms_dbfs(&clip) < -70.0 {
                return Err(IngredientError::Silent(l.request.text.clone()));
            }
            super::channel::scale_to_dbfs(&mut clip, SPEECH_DBFS);
            let group = match l.kind {
                SpeakerKind::Human => &mut humans,
                SpeakerKind::Greeter => &mut greeters,
                SpeakerKind::Carrier => &mut systems,
            };
            let s = &mut group[l.speaker];
            s.tag = l.request.voice.clone();
            s.lines.entry(l.line).or_default().push(clip);
        }
        let mut music = Vec::with_capacity(ing.music.len());
        for (i, m) in ing.music.iter().enumerate() {
            let mut m = m.clone();
            if rms_dbfs(&m) < -70.0 {
                return Err(IngredientError::Silent(format!("music track {i}")));
            }
            super::channel::scale_to_dbfs(&mut m, SPEECH_DBFS);
            music.push(m);
        }
        Ok(Gen2 {
            humans,
            greeters,
            systems,
            music,
        })
    }
}

#[cfg(test)]
mod tests;
