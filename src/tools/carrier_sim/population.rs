//! The simulated carrier's population: which answer a phone number gets. Pure and
//! deterministic: the scenario of a number is a stable hash of the number and a seed (FNV-1a
//! then SplitMix64, never std's randomly keyed `HashMap` hasher), so the same seed gives the
//! same truth in this process, in a `trunx carrier-sim` process and on another machine.
//!
//! The recorded calls are the bundled corpus (`audio-fixtures/calls`), embedded in the binary
//! with its `labels.csv`, so the sim needs no files at run time and every process sees the same
//! pools. The SIT and fax recordings are left out: a real network reports those as failures
//! with tones, which is a scenario of its own that the mix does not model yet.
//!
//! This module owns the population only; it reads no clock, opens no socket and spawns nothing.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::sync::LazyLock;

use serde::Serialize;

use crate::amd::bench::{Label, Truth, parse_labels};

/// `labels.csv` of the bundled recorded calls.
pub const BUNDLED_LABELS: &str = include_str!("../../../audio-fixtures/calls/labels.csv");

macro_rules! bundled {
    ($($file:literal),* $(,)?) => {
        &[$(($file, include_bytes!(concat!("../../../audio-fixtures/calls/", $file)) as &[u8])),*]
    };
}

/// The recorded calls the sim plays (WAV, 8 kHz mono 16-bit), by file name.
pub const BUNDLED_CALLS: &[(&str, &[u8])] = bundled!(
    "0000-machine_nobeep.wav",
    "0001-human_tv.wav",
    "0002-machine_short.wav",
    "0003-machine_beep_triple.wav",
    "0004-human_rambling.wav",
    "0005-machine_beep_seq.wav",
    "0007-human_tv.wav",
    "0008-human_hello_hello.wav",
    "0009-human_hello_hello.wav",
    "0010-machine_short.wav",
    "0014-human_short.wav",
    "0016-machine_beep_dual.wav",
    "0017-machine_long.wav",
    "0022-machine_decoy.wav",
    "0023-human_noise.wav",
    "0025-human_noise.wav",
    "0026-human_long.wav",
    "0028-human_silent.wav",
    "0031-machine_late.wav",
    "0036-machine_late.wav",
    "0041-machine_beep_dual.wav",
    "0048-human_silent.wav",
    "0053-human_rambling.wav",
    "0056-human_long.wav",
    "0062-human_short.wav",
    "0070-machine_beep_single.wav",
    "0075-machine_music.wav",
    "0076-machine_long.wav",
    "0087-machine_beep_single.wav",
    "0092-machine_music.wav",
);

/// A no-beep machine made from a beep greeting stops this long before the labelled beep
/// start, so no part of the beep (or its onset) is heard.
const CUT_BEFORE_BEEP_MS: u64 = 150;

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum PopulationError {
    #[error("mix: {0:?} is not NAME=PERCENT (names: {names})", names = ScenarioKind::NAMES)]
    MixEntry(String),
    #[error("mix: unknown scenario {0:?} (names: {names})", names = ScenarioKind::NAMES)]
    MixName(String),
    #[error("mix: share of {0} must be a finite number >= 0")]
    MixShare(&'static str),
    #[error("mix: the shares must not all be zero")]
    MixEmpty,
    #[error("range {0:?}: expected MIN-MAX in milliseconds with MIN <= MAX")]
    Range(String),
}

/// The kinds of answer, in the order of [`PopulationMix`]'s shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioKind {
    Human,
    MachineBeep,
    MachineNoBeep,
    Busy,
    NoAnswer,
    Invalid,
}

impl ScenarioKind {
    pub const ALL: [ScenarioKind; 6] = [
        ScenarioKind::Human,
        ScenarioKind::MachineBeep,
        ScenarioKind::MachineNoBeep,
        ScenarioKind::Busy,
        ScenarioKind::NoAnswer,
        ScenarioKind::Invalid,
    ];
    const NAMES: &str = "human, machine_beep, machine_nobeep, busy, no_answer, invalid";

    pub const fn as_str(self) -> &'static str {
        match self {
            ScenarioKind::Human => "human",
            ScenarioKind::MachineBeep => "machine_beep",
            ScenarioKind::MachineNoBeep => "machine_nobeep",
            ScenarioKind::Busy => "busy",
            ScenarioKind::NoAnswer => "no_answer",
            ScenarioKind::Invalid => "invalid",
        }
    }

    pub fn parse(name: &str) -> Option<ScenarioKind> {
        ScenarioKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Position in [`ScenarioKind::ALL`] (for counter arrays).
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// One bundled recording.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    /// Position in [`Catalogue::recordings`] (and in [`BUNDLED_CALLS`]).
    pub index: usize,
    pub label: Label,
}

/// What an answered scenario plays: a recording, whole or cut short (a greeting without its
/// beep).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Playback {
    pub recording: usize,
    /// Audio played, in ms from the answer; `None` = the whole recording.
    pub play_ms: Option<u64>,
}

impl Playback {
    pub fn recording(&self) -> &'static Recording {
        &catalogue().recordings[self.recording]
    }

    pub fn file(&self) -> &'static str {
        &self.recording().label.file
    }

    /// The beep the far end plays (ms from the answer), if it plays one.
    pub fn beep_ms(&self) -> Option<(u64, u64)> {
        let beep = self.recording().label.beep_ms?;
        match self.play_ms {
            Some(cut) if cut < beep.1 => None,
            _ => Some(beep),
        }
    }
}

/// The bundled recordings and the pools each answered scenario draws from.
#[derive(Debug)]
pub struct Catalogue {
    pub recordings: Vec<Recording>,
    pub humans: Vec<Playback>,
    pub beep_machines: Vec<Playback>,
    /// `machine_nobeep` recordings whole, then every beep greeting cut before its beep.
    pub nobeep_machines: Vec<Playback>,
}

impl Catalogue {
    fn pool(&self, kind: ScenarioKind) -> &[Playback] {
        match kind {
            ScenarioKind::Human => &self.humans,
            ScenarioKind::MachineBeep => &self.beep_machines,
            ScenarioKind::MachineNoBeep => &self.nobeep_machines,
            _ => &[],
        }
    }

    fn build(labels: &str, files: &[&str]) -> Catalogue {
        let labels = parse_labels(labels).expect("the bundled labels.csv parses");
        let recordings: Vec<Recording> = files
            .iter()
            .enumerate()
            .map(|(index, file)| Recording {
                index,
                label: labels
                    .iter()
                    .find(|l| l.file == *file)
                    .unwrap_or_else(|| panic!("{file} is bundled but not in labels.csv"))
                    .clone(),
            })
            .collect();
        let whole = |r: &Recording| Playback {
            recording: r.index,
            play_ms: None,
        };
        let humans = recordings
            .iter()
            .filter(|r| r.label.truth == Truth::Human)
            .map(whole)
            .collect();
        let beep_machines: Vec<Playback> = recordings
            .iter()
            .filter(|r| r.label.truth == Truth::Machine && r.label.beep_ms.is_some())
            .map(whole)
            .collect();
        let nobeep_machines = recordings
            .iter()
            .filter(|r| r.label.category() == "machine_nobeep")
            .map(whole)
            .chain(beep_machines.iter().map(|p| {
                Playback {
                    recording: p.recording,
                    play_ms: recordings[p.recording]
                        .label
                        .beep_ms
                        .map(|(start, _)| start.saturating_sub(CUT_BEFORE_BEEP_MS)),
                }
            }))
            .collect();
        Catalogue {
            recordings,
            humans,
            beep_machines,
            nobeep_machines,
        }
    }
}

static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| {
    let files: Vec<&str> = BUNDLED_CALLS.iter().map(|(f, _)| *f).collect();
    Catalogue::build(BUNDLED_LABELS, &files)
});

/// The bundled recordings and pools (parsed once from the embedded labels).
pub fn catalogue() -> &'static Catalogue {
    &CATALOGUE
}

/// What the simulated carrier does with a call to one number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "scenario", rename_all = "snake_case")]
pub enum Scenario {
    /// Answered by a person: `call` indexes [`Catalogue::humans`].
    Human { call: usize },
    /// Answered by a machine whose greeting ends with a beep: indexes
    /// [`Catalogue::beep_machines`].
    MachineBeep { call: usize },
    /// Answered by a machine that never beeps: indexes [`Catalogue::nobeep_machines`].
    MachineNoBeep { call: usize },
    /// `486 Busy Here` after the post-dial delay.
    Busy,
    /// Rings until the caller gives up (CANCEL) or the ring cap (`480`).
    NoAnswer,
    /// `404 Not Found` after the post-dial delay.
    Invalid,
}

impl Scenario {
    pub fn kind(&self) -> ScenarioKind {
        match self {
            Scenario::Human { .. } => ScenarioKind::Human,
            Scenario::MachineBeep { .. } => ScenarioKind::MachineBeep,
            Scenario::MachineNoBeep { .. } => ScenarioKind::MachineNoBeep,
            Scenario::Busy => ScenarioKind::Busy,
            Scenario::NoAnswer => ScenarioKind::NoAnswer,
            Scenario::Invalid => ScenarioKind::Invalid,
        }
    }

    /// The audio an answered scenario plays.
    pub fn playback(&self) -> Option<Playback> {
        let (kind, call) = match *self {
            Scenario::Human { call }
            | Scenario::MachineBeep { call }
            | Scenario::MachineNoBeep { call } => (self.kind(), call),
            _ => return None,
        };
        catalogue().pool(kind).get(call).copied()
    }

    /// The `outcome` trunx should report (`DialReport::outcome`).
    pub fn expected_outcome(&self) -> &'static str {
        match self {
            Scenario::Human { .. }
            | Scenario::MachineBeep { .. }
            | Scenario::MachineNoBeep { .. } => "answered",
            Scenario::Busy => "busy",
            Scenario::NoAnswer => "noAnswer",
            Scenario::Invalid => "failed",
        }
    }

    /// The public AMD result a perfect detector gives (`human`, `machine_end_beep`, `machine`).
    pub fn expected_amd(&self) -> Option<&'static str> {
        match self {
            Scenario::Human { .. } => Some("human"),
            Scenario::MachineBeep { .. } => Some("machine_end_beep"),
            Scenario::MachineNoBeep { .. } => Some("machine"),
            _ => None,
        }
    }
}

/// Shares of each answer in the population, in percent of calls. They are relative weights
/// (normalised by their sum), so they need not add up to exactly 100.
///
/// The defaults resemble a cold outbound list in the US: 30 % people, 35 % voicemail with a
/// beep, 5 % machines that never beep (full mailboxes, carrier greetings), 8 % busy, 15 % no
/// answer, 7 % disconnected or invalid numbers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PopulationMix {
    pub human: f64,
    pub machine_beep: f64,
    pub machine_nobeep: f64,
    pub busy: f64,
    pub no_answer: f64,
    pub invalid: f64,
}

impl Default for PopulationMix {
    fn default() -> Self {
        PopulationMix {
            human: 30.0,
            machine_beep: 35.0,
            machine_nobeep: 5.0,
            busy: 8.0,
            no_answer: 15.0,
            invalid: 7.0,
        }
    }
}

impl PopulationMix {
    /// A mix with every share zero, to fill with [`PopulationMix::with`].
    pub fn none() -> Self {
        PopulationMix {
            human: 0.0,
            machine_beep: 0.0,
            machine_nobeep: 0.0,
            busy: 0.0,
            no_answer: 0.0,
            invalid: 0.0,
        }
    }

    pub fn share(&self, kind: ScenarioKind) -> f64 {
        match kind {
            ScenarioKind::Human => self.human,
            ScenarioKind::MachineBeep => self.machine_beep,
            ScenarioKind::MachineNoBeep => self.machine_nobeep,
            ScenarioKind::Busy => self.busy,
            ScenarioKind::NoAnswer => self.no_answer,
            ScenarioKind::Invalid => self.invalid,
        }
    }

    /// The mix with one share replaced.
    pub fn with(mut self, kind: ScenarioKind, share: f64) -> Self {
        *match kind {
            ScenarioKind::Human => &mut self.human,
            ScenarioKind::MachineBeep => &mut self.machine_beep,
            ScenarioKind::MachineNoBeep => &mut self.machine_nobeep,
            ScenarioKind::Busy => &mut self.busy,
            ScenarioKind::NoAnswer => &mut self.no_answer,
            ScenarioKind::Invalid => &mut self.invalid,
        } = share;
        self
    }

    /// The share of `kind` as a fraction of all calls.
    pub fn fraction(&self, kind: ScenarioKind) -> f64 {
        self.share(kind) / self.total()
    }

    fn total(&self) -> f64 {
        ScenarioKind::ALL.iter().map(|k| self.share(*k)).sum()
    }

    pub fn validate(&self) -> Result<(), PopulationError> {
        for kind in ScenarioKind::ALL {
            let s = self.share(kind);
            if !s.is_finite() || s < 0.0 {
                return Err(PopulationError::MixShare(kind.as_str()));
            }
        }
        if self.total() <= 0.0 {
            return Err(PopulationError::MixEmpty);
        }
        Ok(())
    }

    /// The kind at `u` in [0, 1) along the cumulative shares.
    fn pick(&self, u: f64) -> ScenarioKind {
        let target = u * self.total();
        let mut cumulative = 0.0;
        let mut last = ScenarioKind::Human;
        for kind in ScenarioKind::ALL {
            let share = self.share(kind);
            if share <= 0.0 {
                continue;
            }
            cumulative += share;
            last = kind;
            if target < cumulative {
                return kind;
            }
        }
        last
    }
}

/// `human=30,machine_beep=35,...`: scenarios not named get 0.
impl FromStr for PopulationMix {
    type Err = PopulationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut mix = PopulationMix::none();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, share) = entry
                .split_once('=')
                .ok_or_else(|| PopulationError::MixEntry(entry.chars().take(60).collect()))?;
            let kind = ScenarioKind::parse(name.trim())
                .ok_or_else(|| PopulationError::MixName(name.trim().chars().take(40).collect()))?;
            let share: f64 = share
                .trim()
                .trim_end_matches('%')
                .parse()
                .map_err(|_| PopulationError::MixShare(kind.as_str()))?;
            mix = mix.with(kind, share);
        }
        mix.validate()?;
        Ok(mix)
    }
}

impl fmt::Display for PopulationMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = ScenarioKind::ALL
            .iter()
            .map(|k| format!("{}={}", k.as_str(), self.share(*k)))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// FNV-1a over the bytes: stable across processes, platforms and Rust versions.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64's finaliser: spreads every input bit over the output.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable 64-bit value for (number, seed, purpose).
pub fn number_hash(phone: &str, seed: u64, salt: u64) -> u64 {
    mix64(fnv1a(phone.trim().as_bytes()) ^ mix64(seed ^ salt.wrapping_mul(0xA24B_AED4_963E_E407)))
}

const SALT_KIND: u64 = 1;
const SALT_CALL: u64 = 2;

/// The scenario of `phone_e164` in the population `mix` under `seed`.
pub fn scenario_for(phone_e164: &str, mix: &PopulationMix, seed: u64) -> Scenario {
    let u = (number_hash(phone_e164, seed, SALT_KIND) >> 11) as f64 / (1u64 << 53) as f64;
    let kind = mix.pick(u);
    let pool_len = catalogue().pool(kind).len() as u64;
    let call = match pool_len {
        0 => 0,
        n => (number_hash(phone_e164, seed, SALT_CALL) % n) as usize,
    };
    match kind {
        ScenarioKind::Human => Scenario::Human { call },
        ScenarioKind::MachineBeep => Scenario::MachineBeep { call },
        ScenarioKind::MachineNoBeep => Scenario::MachineNoBeep { call },
        ScenarioKind::Busy => Scenario::Busy,
        ScenarioKind::NoAnswer => Scenario::NoAnswer,
        ScenarioKind::Invalid => Scenario::Invalid,
    }
}

/// A deterministic value in `range` for (number, seed, salt): the jitter of ring times.
pub fn jitter_ms(phone: &str, seed: u64, salt: u64, range: &RangeInclusive<u64>) -> u64 {
    let (lo, hi) = (*range.start(), *range.end());
    if hi <= lo {
        return lo;
    }
    lo + number_hash(phone, seed, salt) % (hi - lo + 1)
}

/// Parses `MIN-MAX` (milliseconds) or a single `N`.
pub fn parse_ms_range(s: &str) -> Result<RangeInclusive<u64>, PopulationError> {
    let bad = || PopulationError::Range(s.chars().take(40).collect());
    let (lo, hi) = s.split_once('-').unwrap_or((s, s));
    let lo: u64 = lo.trim().parse().map_err(|_| bad())?;
    let hi: u64 = hi.trim().parse().map_err(|_| bad())?;
    if lo > hi {
        return Err(bad());
    }
    Ok(lo..=hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_labelled_call_but_sit_and_fax_is_bundled_and_in_a_pool() {
        let labels = parse_labels(BUNDLED_LABELS).unwrap();
        let c = catalogue();
        for l in &labels {
            let bundled = c.recordings.iter().any(|r| r.label.file == l.file);
            let excluded = matches!(l.category(), "sit" | "fax");
            assert_eq!(bundled, !excluded, "{}", l.file);
        }
        assert_eq!(
            c.humans.len() + c.beep_machines.len() + 1,
            c.recordings.len()
        );
        assert!(
            c.humans
                .iter()
                .all(|p| p.recording().label.truth == Truth::Human)
        );
        assert!(c.beep_machines.iter().all(|p| p.beep_ms().is_some()));
        // One whole no-beep greeting, then each beep greeting cut before its beep.
        assert_eq!(c.nobeep_machines.len(), 1 + c.beep_machines.len());
        for p in &c.nobeep_machines {
            assert_eq!(p.beep_ms(), None, "{p:?}");
            if let (Some(cut), Some((start, _))) = (p.play_ms, p.recording().label.beep_ms) {
                assert!(cut + CUT_BEFORE_BEEP_MS <= start);
            }
        }
    }

    #[test]
    fn the_hash_is_pinned() {
        // FNV-1a of "a" is a published vector; the rest must not change between releases,
        // or a second process (or a later build) would disagree on the truth.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        // Values from an independent Python transcription of FNV-1a + SplitMix64 and the
        // cumulative pick over the default mix.
        assert_eq!(number_hash("+15551234567", 1, 1), 0xba1a_00d3_7f58_e1f7);
        assert_eq!(number_hash("+15551234567", 1, 2), 0x6a63_1722_8955_7bc0);
        let d = PopulationMix::default();
        assert_eq!(
            scenario_for("+15551230001", &d, 7),
            Scenario::MachineBeep { call: 4 }
        );
        assert_eq!(scenario_for("+15551230002", &d, 7), Scenario::Busy);
        assert_eq!(
            scenario_for("+15551230003", &d, 7),
            Scenario::Human { call: 7 }
        );
        assert_eq!(
            scenario_for("+15551234567", &PopulationMix::default(), 7),
            scenario_for(" +15551234567 ", &PopulationMix::default(), 7)
        );
        let a: Vec<Scenario> = (0..50)
            .map(|i| scenario_for(&format!("+1555000{i:04}"), &PopulationMix::default(), 1))
            .collect();
        let b: Vec<Scenario> = (0..50)
            .map(|i| scenario_for(&format!("+1555000{i:04}"), &PopulationMix::default(), 2))
            .collect();
        assert_ne!(a, b, "the seed changes the population");
    }

    #[test]
    fn mix_parses_and_validates() {
        let m: PopulationMix = "human=50, busy=50%".parse().unwrap();
        assert_eq!((m.human, m.busy, m.invalid), (50.0, 50.0, 0.0));
        assert_eq!(m.fraction(ScenarioKind::Human), 0.5);
        assert!(matches!(
            "human".parse::<PopulationMix>(),
            Err(PopulationError::MixEntry(_))
        ));
        assert!(matches!(
            "robots=3".parse::<PopulationMix>(),
            Err(PopulationError::MixName(_))
        ));
        assert_eq!(
            "busy=-1".parse::<PopulationMix>(),
            Err(PopulationError::MixShare("busy"))
        );
        assert_eq!(
            "busy=0".parse::<PopulationMix>(),
            Err(PopulationError::MixEmpty)
        );
        let d = PopulationMix::default();
        assert_eq!(d.to_string().parse::<PopulationMix>().unwrap(), d);
        // A zero share never occurs.
        let only_busy = PopulationMix::none().with(ScenarioKind::Busy, 1.0);
        assert!((0..500).all(|i| scenario_for(&format!("+1{i}"), &only_busy, 3) == Scenario::Busy));
    }

    #[test]
    fn ranges_and_jitter() {
        assert_eq!(parse_ms_range("100-300").unwrap(), 100..=300);
        assert_eq!(parse_ms_range("50").unwrap(), 50..=50);
        assert!(parse_ms_range("300-100").is_err());
        assert!(parse_ms_range("x").is_err());
        let values: Vec<u64> = (0..200)
            .map(|i| jitter_ms(&format!("+1{i}"), 9, 5, &(100..=300)))
            .collect();
        assert!(values.iter().all(|v| (100..=300).contains(v)));
        assert!(values.iter().min() < Some(&130) && values.iter().max() > Some(&270));
    }
}
