//! The beep model computes in Rust (ONNX Runtime via ort) what its training script computed:
//! `models/beep_probe.json` holds test rows and the probabilities the script got for them.

use std::path::Path;

use trunx::amd::AmdConfig;
use trunx::amd::model::EMBEDDED_BEEP_MODEL;
use trunx::amd::tones::BEEP_FEATURES;
use trunx::runtime::amd::files::load_beep_model;

fn models_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

#[test]
fn embedded_model_is_the_committed_file() {
    let on_disk = std::fs::read(models_dir().join("beep.onnx")).unwrap();
    assert_eq!(on_disk, EMBEDDED_BEEP_MODEL);
}

/// The figures `models/train_beep.py` reports, and the threshold written into the model, are at
/// the threshold the detector applies.
#[test]
fn beep_threshold_matches_the_config() {
    let metrics: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(models_dir().join("beep_metrics.json")).unwrap(),
    )
    .unwrap();
    let reported = metrics["test"]["threshold"]
        .as_f64()
        .expect("beep_metrics.json lacks test.threshold");
    let applied = f64::from(AmdConfig::default().beep_model_threshold);
    assert!(
        (reported - applied).abs() < 1e-6,
        "beep_metrics.json is at {reported}, the config applies {applied}"
    );
}

#[test]
fn model_output_matches_the_training_script() {
    let probe: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(models_dir().join("beep_probe.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(probe["feature_count"].as_u64(), Some(BEEP_FEATURES as u64));
    let rows: Vec<[f32; BEEP_FEATURES]> = probe["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let v: Vec<f32> = row
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            v.try_into().unwrap()
        })
        .collect();
    let want: Vec<f32> = probe["probs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap() as f32)
        .collect();
    let model = load_beep_model(None, None).unwrap_or_else(|e| panic!("{e}"));
    let got = model.score_rows(&rows).unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-4, "got {got:?}, want {want:?}");
    }
    // The probe holds both classes, so the check covers both sides of the threshold.
    let labels: Vec<u64> = probe["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_u64().unwrap())
        .collect();
    assert!(labels.contains(&0) && labels.contains(&1), "{labels:?}");
}
