//! The greeting model computes in Rust what `models/train_greeting.py` computed, and the
//! streaming detector applies exactly the policy the script chose its thresholds with:
//! - `models/greeting_probe.json` holds cue rows and the probabilities onnxruntime gave them;
//! - `models/greeting_metrics.json` holds the chosen policy, which must be the AmdConfig
//!   defaults (the first version chose 0.5 / 0.01 / 0 ms in Python while Rust applied
//!   0.9 / 0.1 / 200 ms);
//! - on real corpus calls, the first decision of `Amd` with the greeting model on is the one
//!   the script's replay of the policy makes from the same cue rows.

use std::path::{Path, PathBuf};

use trunx::amd::cues::{CUE_FEATURES, rows_of_recording};
use trunx::amd::model::EMBEDDED_GREETING_MODEL;
use trunx::amd::{AmdConfig, AmdEventKind, analyse_recording};
use trunx::runtime::amd::files::{labelled_files, load_beep_model, read_call_audio};
use trunx::tools::corpus::corpus2::ensure_split;
use trunx::tools::corpus::split::{Generator, Split};

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

fn json(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(models_dir().join(name)).unwrap()).unwrap()
}

#[test]
fn embedded_model_is_the_committed_file() {
    let on_disk = std::fs::read(models_dir().join("greeting.onnx")).unwrap();
    assert_eq!(on_disk, EMBEDDED_GREETING_MODEL);
}

#[test]
fn model_output_matches_the_training_script() {
    let probe = json("greeting_probe.json");
    assert_eq!(probe["feature_count"].as_u64(), Some(CUE_FEATURES as u64));
    let model = load_beep_model(None, None).unwrap_or_else(|e| panic!("{e}"));
    let rows = probe["features"].as_array().unwrap();
    let probs = probe["probs"].as_array().unwrap();
    assert!(rows.len() >= 2 && rows.len() == probs.len());
    let (mut low, mut high) = (false, false);
    for (row, want) in rows.iter().zip(probs) {
        let v: Vec<f32> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let row: [f32; CUE_FEATURES] = v.try_into().unwrap();
        let got = model.score_greeting(&row).unwrap().unwrap();
        let want = want[1].as_f64().unwrap() as f32;
        assert!((got - want).abs() < 1e-4, "got {got}, want {want}");
        low |= want < 0.5;
        high |= want >= 0.5;
    }
    assert!(low && high, "the probe covers both sides of 0.5");
}

#[test]
fn greeting_policy_matches_the_config() {
    let policy = &json("greeting_metrics.json")["policy"];
    let c = AmdConfig::default();
    let f = |k: &str| {
        policy[k]
            .as_f64()
            .unwrap_or_else(|| panic!("policy lacks {k}"))
    };
    assert!((f("greeting_human_threshold") - f64::from(c.greeting_human_threshold)).abs() < 1e-6);
    assert!(
        (f("greeting_machine_threshold") - f64::from(c.greeting_machine_threshold)).abs() < 1e-6
    );
    assert_eq!(
        f("greeting_human_min_silence_ms") as u32,
        c.greeting_human_min_silence_ms
    );
    assert_eq!(f("greeting_confirm_ticks") as u32, c.greeting_confirm_ticks);
}

/// The script's policy replay (`simulate` in models/train_greeting.py) over one call's rows:
/// (human?, time in ms) of the first model decision, if any.
fn replay(
    rows: &[(u64, [f32; CUE_FEATURES])],
    probs: &[f32],
    c: &AmdConfig,
) -> Option<(bool, u64)> {
    let (mut h, mut m) = (0u32, 0u32);
    for ((t, row), &p) in rows.iter().zip(probs) {
        if row[1] < 0.5 {
            continue;
        }
        h = if p >= c.greeting_human_threshold {
            h + 1
        } else {
            0
        };
        m = if p <= c.greeting_machine_threshold {
            m + 1
        } else {
            0
        };
        let silence_ms = (row[8] * 1000.0).round() as u32;
        if h >= c.greeting_confirm_ticks && silence_ms >= c.greeting_human_min_silence_ms {
            return Some((true, *t));
        }
        if m >= c.greeting_confirm_ticks {
            return Some((false, *t));
        }
    }
    None
}

#[test]
fn streaming_decision_is_the_scripts_replay() {
    // Generator 2's dev split (generated first if missing; needs the packages of `make deps`).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (dir, _) = ensure_split(
        Generator::from_number(2).unwrap(),
        Split::Dev,
        Some(&root.join("corpus/gen2-dev")),
    )
    .unwrap_or_else(|e| panic!("{e} (run `make deps`)"));
    let files = labelled_files(&dir).unwrap_or_else(|e| panic!("{e}"));
    let model = load_beep_model(None, None).unwrap_or_else(|e| panic!("{e}"));
    // The model alone, exactly the script's policy: no rule proposals, machine on its own.
    let config = AmdConfig {
        greeting_model: true,
        greeting_rules_machine_max_p: None,
        greeting_rules_human_min_p: None,
        greeting_model_machine_alone: true,
        ..AmdConfig::default()
    };
    let (mut compared, mut agreed, mut total) = (0, 0, 0);
    for (path, _label) in &files {
        let pcm = read_call_audio(path).unwrap();
        let (events, stats) = analyse_recording(&pcm, &config, Some(model.clone()));
        let first = events.first().expect("an event per call");
        let by_model = first.cause.as_str().starts_with("MODEL-");
        let rows = rows_of_recording(&pcm, &config, first.at.as_ms() + 10);
        let probs: Vec<f32> = rows
            .iter()
            .map(|(_, r)| model.score_greeting(r).unwrap().unwrap())
            .collect();
        let want = replay(&rows, &probs, &config);
        // A rule (beep, silence at answer, fax/SIT) that spoke first means the replay must not
        // have decided earlier; a model decision must be the replay's, at the same tick.
        let same = if by_model {
            compared += 1;
            let verdict = first.kind == AmdEventKind::Human;
            match want {
                Some((w, t)) if w == verdict && t == first.at.as_ms() => true,
                // A verdict reached while a tone rang waits for the tone group's judgement.
                // If the model changed its mind while the tone rang, the verdict lapsed.
                Some((w, t)) => {
                    let lapsed = || {
                        rows.iter().zip(&probs).any(|((at, _), &p)| {
                            *at > t
                                && *at <= first.at.as_ms()
                                && if w {
                                    p < config.greeting_human_threshold
                                } else {
                                    p > config.greeting_machine_threshold
                                }
                        })
                    };
                    t < first.at.as_ms()
                        && stats.verdicts_held_by_tone > 0
                        && (w == verdict || lapsed())
                }
                None => false,
            }
        } else {
            // From a beep's first tone on, the greeting waits for the tone groups' judgement
            // and then for the next tone of the sequence: the replay may decide meanwhile.
            let judged_until = match first.kind {
                AmdEventKind::MachineEndBeep { beep_start, .. } => beep_start.as_ms(),
                _ => first.at.as_ms(),
            };
            // A model verdict held while the tone rang is overtaken by the tone's own event.
            want.is_none_or(|(_, t)| t >= judged_until || stats.verdicts_held_by_tone > 0)
        };
        if same {
            agreed += 1;
        } else {
            eprintln!(
                "{}: replay {want:?}, detector {first:?}, held by tone {}",
                path.display(),
                stats.verdicts_held_by_tone
            );
        }
        total += 1;
    }
    assert!(
        compared >= 100,
        "only {compared} calls decided by the model"
    );
    assert_eq!(agreed, total, "{agreed}/{total} agree");
}
