//! The labelled answered-call corpus: a deterministic, seeded generator of 8 kHz calls (human
//! answers, voicemail greetings with and without beeps, decoys, SIT intercepts and fax) for
//! benchmarking and training the AMD.
//!
//! Owns: the category mix, how each call is put together from ingredients (real Asterisk
//! prompts and music, espeak-ng lines, synthesised tones), the telephone channel every call
//! passes through, the labels (`labels.csv`), the golden-subset choice and the licence text.
//!
//! Must not (outside its I/O children): read or write files, spawn processes, read the clock or
//! use unseeded randomness. The I/O lives in the child modules `ingredients`, `corpus2` and
//! `cli` (`trunx corpus`): they load the ingredients, hand them over as plain sample buffers
//! and write what comes back. The same ingredients, seed and count always give the same
//! samples and labels.

mod bank;
mod calls;
pub mod channel;
pub mod cli;
pub mod corpus2;
pub mod gen2;
pub mod ingredients;
pub mod labels;
pub mod script;
pub mod split;
pub mod tones;

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

pub use bank::Corpus;
pub use labels::{LABELS_HEADER, Label, LabelError};

/// The two truths of the labels file (owned by the AMD benchmark, which reads them).
pub use crate::amd::bench::Truth;

/// What kind of call a corpus entry is (the `cat=` of the notes column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    HumanShort,
    HumanLong,
    HumanHelloHello,
    HumanNoise,
    HumanTv,
    HumanSilent,
    HumanRambling,
    MachineShort,
    MachineLong,
    MachineMusic,
    MachineLate,
    MachineBeepSingle,
    MachineBeepDual,
    MachineBeepSeq,
    MachineBeepTriple,
    MachineNobeep,
    MachineDecoy,
    Sit,
    Fax,
}

impl Category {
    pub const ALL: [Category; 19] = [
        Category::HumanShort,
        Category::HumanLong,
        Category::HumanHelloHello,
        Category::HumanNoise,
        Category::HumanTv,
        Category::HumanSilent,
        Category::HumanRambling,
        Category::MachineShort,
        Category::MachineLong,
        Category::MachineMusic,
        Category::MachineLate,
        Category::MachineBeepSingle,
        Category::MachineBeepDual,
        Category::MachineBeepSeq,
        Category::MachineBeepTriple,
        Category::MachineNobeep,
        Category::MachineDecoy,
        Category::Sit,
        Category::Fax,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::HumanShort => "human_short",
            Category::HumanLong => "human_long",
            Category::HumanHelloHello => "human_hello_hello",
            Category::HumanNoise => "human_noise",
            Category::HumanTv => "human_tv",
            Category::HumanSilent => "human_silent",
            Category::HumanRambling => "human_rambling",
            Category::MachineShort => "machine_short",
            Category::MachineLong => "machine_long",
            Category::MachineMusic => "machine_music",
            Category::MachineLate => "machine_late",
            Category::MachineBeepSingle => "machine_beep_single",
            Category::MachineBeepDual => "machine_beep_dual",
            Category::MachineBeepSeq => "machine_beep_seq",
            Category::MachineBeepTriple => "machine_beep_triple",
            Category::MachineNobeep => "machine_nobeep",
            Category::MachineDecoy => "machine_decoy",
            Category::Sit => "sit",
            Category::Fax => "fax",
        }
    }

    pub fn from_name(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.name() == name)
    }

    pub fn truth(self) -> Truth {
        if self.name().starts_with("human") {
            Truth::Human
        } else {
            Truth::Machine
        }
    }

    /// Whether calls of this category end with a labelled beep.
    pub fn has_beep(self) -> bool {
        self.truth() == Truth::Machine
            && !matches!(
                self,
                Category::MachineNobeep | Category::Sit | Category::Fax
            )
    }
}

/// Share of human calls in a plan.
pub const HUMAN_SHARE: f64 = 0.45;

/// Everything the generator needs from outside, already decoded to 8 kHz mono -1.0..1.0.
#[derive(Clone, Debug, Default)]
pub struct Ingredients {
    /// Asterisk prompts by stem (`hello`, `vm-intro`, `digits/5`); at least
    /// [`script::REQUIRED_PROMPTS`].
    pub prompts: BTreeMap<String, Vec<f32>>,
    /// Music tracks (name, samples), in a fixed order.
    pub music: Vec<(String, Vec<f32>)>,
    /// One clip per entry of [`script::tts_requests`], in the same order.
    pub tts: Vec<Vec<f32>>,
}

/// Ingredients that cannot make a corpus.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IngredientError {
    #[error("missing Asterisk prompt {0:?}")]
    MissingPrompt(String),
    #[error("no music tracks")]
    NoMusic,
    #[error("expected {expected} synthesised lines, got {got}")]
    TtsCount { expected: usize, got: usize },
    #[error("ingredient {0:?} holds no audio")]
    Silent(String),
}

/// One generated call: 8 kHz mono PCM and its label.
#[derive(Clone, Debug)]
pub struct Call {
    pub index: usize,
    pub category: Category,
    pub pcm: Vec<i16>,
    pub label: Label,
}

/// File name of the `index`-th call: `0042-machine_decoy.wav`.
pub fn file_name(index: usize, category: Category) -> String {
    format!("{index:04}-{}.wav", category.name())
}

/// The category of each of `count` calls: `round(count * HUMAN_SHARE)` human calls split
/// equally over the human categories, the rest over the machine ones (the first categories
/// of a side take the remainder), in a seeded shuffled order.
pub fn plan(count: usize, seed: u64) -> Vec<Category> {
    let humans = (count as f64 * HUMAN_SHARE).round() as usize;
    let mut out: Vec<Category> = Vec::with_capacity(count);
    for (truth, total) in [(Truth::Human, humans), (Truth::Machine, count - humans)] {
        let side: Vec<Category> = Category::ALL
            .into_iter()
            .filter(|c| c.truth() == truth)
            .collect();
        for (i, c) in side.iter().enumerate() {
            let n = total / side.len() + usize::from(i < total % side.len());
            out.extend(std::iter::repeat_n(*c, n));
        }
    }
    out.shuffle(&mut StdRng::seed_from_u64(mix_seed(seed, u64::MAX)));
    out
}

/// Independent per-call seed (SplitMix64 finaliser over seed and index).
pub fn mix_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests;
