//! Generator 2 and the harness's numbers.
//!
//! 1. A small slice of generator 2, made from the real ingredients (espeak-ng and the Debian
//!    music-on-hold that `make deps` installs), is deterministic and its labels agree with its
//!    audio: every labelled tone is a tone at its labelled frequency and time, every labelled
//!    first-utterance end is speech followed by silence.
//! 2. The harness's figures on tiny hand-made sets are exactly what they must be: WAV files
//!    through the app_amd port (whose decisions follow by hand from its rules), and
//!    hand-written detector outcomes for the beep figures.

use std::path::Path;

use trunx::amd::bench::{CallOutcome, Label, Truth, parse_labels, report};
use trunx::amd::{AmdEvent, AmdEventKind, Cause};
use trunx::audio::SampleTime;
use trunx::audio::wav::write_telephone_wav;
use trunx::runtime::amd::files::{Engine, bench_dir_with};
use trunx::tools::corpus::corpus2::generate2;
use trunx::tools::corpus::gen2::Kind;
use trunx::tools::corpus::ingredients::{GenerateOptions, IngredientSources};

fn read_pcm(path: &Path) -> Vec<i16> {
    trunx::audio::wav::read_telephone_wav(path).unwrap()
}

fn rms_db(x: &[i16]) -> f32 {
    let ms: f64 = x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len().max(1) as f64;
    (10.0 * (ms / 32768f64.powi(2)).max(1e-12).log10()) as f32
}

/// Share of the energy of `x` at the frequencies `hz` (Goertzel).
fn tone_share(x: &[i16], hz: &[f32]) -> f32 {
    let total: f32 = x
        .iter()
        .map(|&s| f32::from(s).powi(2))
        .sum::<f32>()
        .max(1.0);
    let mut at = 0.0;
    for f in hz {
        let w = 2.0 * std::f32::consts::PI * f / 8000.0;
        let (mut s1, mut s2) = (0.0f32, 0.0f32);
        for &v in x {
            let s0 = f32::from(v) + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        at += 2.0 * (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) / x.len() as f32;
    }
    at / total
}

fn slice(pcm: &[i16], from_ms: u64, to_ms: u64) -> &[i16] {
    let a = (from_ms as usize * 8).min(pcm.len());
    let b = (to_ms as usize * 8).min(pcm.len());
    &pcm[a..b]
}

#[test]
fn generator_two_labels_agree_with_the_audio() {
    let dir = tempfile::tempdir().unwrap();
    // The espeak-ng cache is kept between runs in cargo's scratch directory.
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gen2-espeak-cache");
    let options = |out: &Path| {
        let mut sources = IngredientSources::system(out);
        sources.cache_dir = cache.clone();
        GenerateOptions {
            out: out.to_path_buf(),
            count: 45,
            seed: 77,
            sources,
        }
    };
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let report = generate2(&options(&a)).unwrap_or_else(|e| panic!("{e}"));
    generate2(&options(&b)).unwrap();
    assert_eq!(report.count, 45);
    assert_eq!(report.per_kind.len(), Kind::ALL.len(), "{report}");

    let labels = parse_labels(&std::fs::read_to_string(a.join("labels.csv")).unwrap()).unwrap();
    assert_eq!(labels.len(), 45);
    let (mut tones_checked, mut utterances_checked) = (0, 0);
    for l in &labels {
        let pcm = read_pcm(&a.join(&l.file));
        assert!(pcm == read_pcm(&b.join(&l.file)), "{} differs", l.file);
        let kind = Kind::from_name(l.category()).unwrap();
        assert_eq!(l.truth, kind.truth());
        assert_eq!(l.beep_ms.is_some(), kind.has_beep(), "{}", l.notes);

        // Every labelled tone: at its frequencies inside, louder than the second before the
        // beep (the end of the greeting and the gap), and the beep end is the last tone's end.
        let tones = l.beep_tones_ms();
        if let Some((start, end)) = l.beep_ms {
            assert_eq!((tones[0].0, tones[tones.len() - 1].1), (start, end));
            let freqs: Vec<Vec<f32>> = l
                .note("tones")
                .unwrap()
                .split('+')
                .map(|t| {
                    let hz = t.split_once('@').unwrap().1;
                    hz.split('/').map(|f| f.parse().unwrap()).collect()
                })
                .collect();
            let before = rms_db(slice(
                &pcm,
                start.saturating_sub(140),
                start.saturating_sub(10),
            ));
            for ((s, e), hz) in tones.iter().zip(&freqs) {
                let inner = slice(&pcm, s + 10, e - 10);
                let share = tone_share(inner, hz);
                assert!(share > 0.5, "{} {s}-{e} {hz:?}: {share}", l.notes);
                assert!(rms_db(inner) > before + 6.0, "{} {s}-{e}", l.notes);
                tones_checked += 1;
            }
            assert!(
                pcm.len() as u64 / 8 >= end + 1500,
                "a tail follows the beep"
            );
        }

        // The first utterance: speech, then at least 300 ms of much lower level (calls
        // without a background bed or nearby tone).
        match (l.first_utterance_end_ms(), kind.truth()) {
            (Some(end), Truth::Human) => {
                let lead: u64 = l.note("lead_ms").unwrap().parse().unwrap();
                assert!(end > lead + 200, "{}", l.notes);
                if kind != Kind::HumanNoisy && kind != Kind::HumanToneNearby {
                    let speech = rms_db(slice(&pcm, lead.max(end.saturating_sub(400)), end));
                    let after = rms_db(slice(&pcm, end + 60, end + 360));
                    assert!(speech > -55.0, "{}: {speech}", l.notes);
                    assert!(speech > after + 12.0, "{}: {speech} vs {after}", l.notes);
                    utterances_checked += 1;
                }
            }
            (None, Truth::Machine) => {}
            other => panic!("{other:?}: {}", l.notes),
        }
    }
    assert!(tones_checked >= 20, "{tones_checked}");
    assert!(utterances_checked >= 10, "{utterances_checked}");
}

/// 20 ms-aligned test audio: (is voice, ms). Voice is a 1 kHz sine of amplitude 3000 (mean
/// absolute 1910, above app_amd's 256); silence is digital zero.
fn write(dir: &Path, name: &str, pattern: &[(bool, u64)]) {
    let mut pcm = Vec::new();
    for &(voice, ms) in pattern {
        for _ in 0..ms * 8 {
            let t = pcm.len() as f32 / 8000.0;
            let v = if voice {
                3000.0 * (2.0 * std::f32::consts::PI * 1000.0 * t).sin()
            } else {
                0.0
            };
            pcm.push(v as i16);
        }
    }
    write_telephone_wav(&dir.join(name), &pcm).unwrap();
}

#[test]
fn harness_figures_on_hand_made_calls_through_the_app_amd_port_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // h1: "hello" 500-1000 ms, then silence: HUMAN at 1000 + 800 = 1800 ms.
    write(d, "h1.wav", &[(false, 500), (true, 500), (false, 3000)]);
    // h2: three words with 200 ms pauses: the third word is MACHINE at 1600 ms.
    let words = [
        (false, 300),
        (true, 400),
        (false, 200),
        (true, 400),
        (false, 200),
        (true, 400),
        (false, 2000),
    ];
    write(d, "h2.wav", &words);
    // m1: a long greeting (LONGGREETING at 1700 ms) and a beep the port never reports.
    write(
        d,
        "m1.wav",
        &[
            (false, 200),
            (true, 3000),
            (false, 300),
            (true, 200),
            (false, 1300),
        ],
    );
    // m2: silence: INITIALSILENCE at 2500 ms.
    write(d, "m2.wav", &[(false, 3000)]);
    // m3: a machine that sounds like a hello: HUMAN at 1700 ms; its labelled beep is missed.
    write(d, "m3.wav", &[(false, 600), (true, 300), (false, 3000)]);
    std::fs::write(
        d.join("labels.csv"),
        "file,truth,beep_start_ms,beep_end_ms,notes\n\
         h1.wav,human,,,cat=a;utt_end=1000\n\
         h2.wav,human,,,cat=a;utt_end=2100\n\
         m1.wav,machine,3500,3700,cat=b;tones=3500-3580@1000+3620-3700@1000\n\
         m2.wav,machine,,,cat=b\n\
         m3.wav,machine,1000,1100,cat=b\n",
    )
    .unwrap();
    let engine = Engine::Asterisk(Default::default());
    let (r, outcomes) = bench_dir_with(d, None, &engine).unwrap();
    let causes: Vec<&str> = outcomes
        .iter()
        .map(|o| o.events[0].cause.as_str())
        .collect();
    assert_eq!(
        causes,
        [
            "HUMAN-800-800",
            "MAXWORDS-3-2",
            "LONGGREETING-1500-1500",
            "INITIALSILENCE-2500-2500",
            "HUMAN-800-800"
        ]
    );
    assert_eq!(r.provider, "asterisk");
    assert_eq!(r.calls, 5);
    assert_eq!(
        (
            r.confusion.human_as_human,
            r.confusion.human_as_machine,
            r.confusion.machine_as_human,
            r.confusion.machine_as_machine
        ),
        (1, 1, 1, 2)
    );
    assert_eq!(r.accuracy, 0.6);
    assert_eq!(r.humans_as_machine, 0.5);
    assert_eq!(r.machines_as_human, 1.0 / 3.0);
    assert_eq!(r.first_beep_recall, 0.0);
    assert_eq!(r.beep_recall, 0.0);
    assert_eq!(r.false_beeps, 0);
    assert_eq!(r.false_beep_rate, 0.0);
    // Both labelled beeps missed: full errors 5000 - 3700 and 3900 - 1100.
    assert_eq!(r.beep_end_error_ms.p50, 1300.0);
    assert_eq!(r.beep_end_error_ms.p95, 2800.0);
    assert_eq!(r.beep_end_error_ms.max, 2800.0);
    assert!(r.beep_end_error_found_ms.p50.is_nan());
    // Only h1 is a person judged a person: 1800 - 1000.
    assert_eq!(r.human_latency.calls, 1);
    assert_eq!(r.decision_after_speech_ms.p50, 800.0);
    assert_eq!(r.human_latency.from_start.p95, 1800.0);
    assert_eq!(
        (r.decision_ms.human.p50, r.decision_ms.human.p95),
        (1700.0, 1800.0)
    );
    assert_eq!(
        (r.decision_ms.machine.p50, r.decision_ms.machine.p95),
        (1700.0, 2500.0)
    );
    assert_eq!(r.by_category["a"].calls, 2);
    assert_eq!(r.by_category["b"].accuracy, 2.0 / 3.0);
    assert_eq!(
        outcomes[2].label.beep_tones_ms(),
        [(3500, 3580), (3620, 3700)]
    );

    // The original four-column labels still read.
    let old =
        parse_labels("file,truth,beep_start_ms,beep_end_ms\nm1.wav,machine,3500,3700\n").unwrap();
    assert_eq!(old[0].beep_tones_ms(), [(3500, 3700)]);
    assert_eq!(old[0].first_utterance_end_ms(), None);
}

fn event(kind: AmdEventKind, at_ms: u64) -> AmdEvent {
    AmdEvent {
        kind,
        at: SampleTime::from_ms(at_ms),
        confidence: 1.0,
        cause: Cause::new(format_args!("T")),
    }
}

fn beep(start: u64, end: u64, at: u64) -> AmdEvent {
    event(
        AmdEventKind::MachineEndBeep {
            beep_start: SampleTime::from_ms(start),
            beep_end: SampleTime::from_ms(end),
        },
        at,
    )
}

fn outcome(
    truth: Truth,
    beep: Option<(u64, u64)>,
    notes: &str,
    events: Vec<AmdEvent>,
) -> CallOutcome {
    CallOutcome {
        label: Label {
            file: "x.wav".into(),
            truth,
            beep_ms: beep,
            notes: notes.into(),
        },
        events,
        analysed_ms: 8000,
        audio_ms: 8000,
    }
}

#[test]
fn beep_figures_on_hand_written_outcomes_are_exact() {
    let machine = || event(AmdEventKind::Machine, 2000);
    let outcomes = vec![
        // A two-tone beep whose first tone is reported first (the dialer would speak 300 ms
        // early), then the real end.
        outcome(
            Truth::Machine,
            Some((4000, 4400)),
            "cat=m;tones=4000-4100@800+4200-4400@1000",
            vec![machine(), beep(4000, 4100, 4190), beep(4200, 4400, 4490)],
        ),
        // Found, 10 ms late.
        outcome(
            Truth::Machine,
            Some((3000, 3200)),
            "cat=m",
            vec![machine(), beep(3000, 3210, 3300)],
        ),
        // Missed: full error 8000 - 5300.
        outcome(Truth::Machine, Some((5000, 5300)), "cat=m", vec![machine()]),
        // A person with a tone nearby, taken for a machine with a beep.
        outcome(
            Truth::Human,
            None,
            "cat=h;utt_end=700",
            vec![machine(), beep(2300, 2500, 2590)],
        ),
        // A person judged a person 400 ms after the end of the first utterance.
        outcome(
            Truth::Human,
            None,
            "cat=h;utt_end=900",
            vec![event(AmdEventKind::Human, 1300)],
        ),
    ];
    let r = report("builtin", &outcomes, 0.0);
    assert_eq!(r.beep_recall, 2.0 / 3.0);
    assert_eq!(r.first_beep_recall, 1.0 / 3.0);
    assert_eq!(r.false_beeps, 2);
    assert_eq!(r.false_beep_rate, 0.5);
    assert_eq!(
        (
            r.beep_end_error_ms.p50,
            r.beep_end_error_ms.p95,
            r.beep_end_error_ms.max
        ),
        (300.0, 2700.0, 2700.0)
    );
    assert_eq!(r.beep_end_error_found_ms.max, 300.0);
    assert_eq!(r.beep_event_delay_ms.p50, -210.0);
    assert_eq!(r.humans_as_machine, 0.5);
    assert_eq!(r.decision_after_speech_ms.p50, 400.0);
    assert_eq!(r.human_latency.from_start.p50, 1300.0);
    assert_eq!(r.by_category["m"].first_beep_recall, 1.0 / 3.0);
    assert!(r.realtime_factor.is_nan());
}
