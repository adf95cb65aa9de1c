//! The AMD on the whole generated corpus (320 calls, seed 7, from the Debian recordings and
//! espeak-ng that `make deps` installs): the figures the closing notes quote must hold, and
//! the committed golden calls must be exactly what the generator makes.
//!
//! The floors are the measured figures with a small margin, so a change that makes the
//! detector worse fails here; speed is measured by `trunx bench amd`, not asserted.

use trunx::amd::AmdConfig;
use trunx::runtime::amd::files::{bench_dir, load_beep_model};
use trunx::tools::corpus::ingredients::{GenerateOptions, IngredientSources, generate};

#[test]
fn generated_corpus_scores_at_least_the_recorded_figures() {
    let dir = tempfile::tempdir().unwrap();
    let report = generate(&GenerateOptions {
        out: dir.path().to_path_buf(),
        count: 320,
        seed: 7,
        sources: IngredientSources::system(dir.path()),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.count, 320);

    // The golden calls are a byte-identical subset of this corpus.
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("audio-fixtures/calls");
    for entry in std::fs::read_dir(&golden).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wav") {
            let name = path.file_name().unwrap();
            let generated = std::fs::read(dir.path().join(name)).unwrap();
            assert!(
                generated == std::fs::read(&path).unwrap(),
                "{name:?} differs"
            );
        }
    }

    let model = load_beep_model(None, None).unwrap_or_else(|e| panic!("{e}"));
    let (with_model, _) = bench_dir(dir.path(), None, &AmdConfig::default(), Some(model)).unwrap();
    let r = &with_model;
    let summary = serde_json::to_string(r).unwrap();
    assert_eq!(r.calls, 320);
    assert!(r.accuracy >= 0.95, "{summary}");
    assert!(r.humans_as_machine <= 0.01, "{summary}");
    assert!(r.beep_recall >= 0.95, "{summary}");
    assert!(r.false_beep_rate <= 0.015, "{summary}");
    assert!(r.beep_end_error_ms.p95 <= 50.0, "{summary}");
    // One hop past the longest gap inside a group, then the wait for a next group.
    assert!(r.beep_event_delay_ms.p95 <= 300.0, "{summary}");
    assert!(
        r.beep_event_delay_ms.p50 > 0.0,
        "a beep is never reported before it ends"
    );
    for (cat, c) in &r.by_category {
        if cat.starts_with("human") {
            assert!(c.humans_as_machine <= 0.05, "{cat}: {summary}");
        }
    }
    assert_eq!(r.by_category["sit"].accuracy, 1.0, "{summary}");
    assert_eq!(r.by_category["fax"].accuracy, 1.0, "{summary}");

    // The model earns its place: without it, beeps are found less and false beeps rise.
    let (rules, _) = bench_dir(dir.path(), None, &AmdConfig::default(), None).unwrap();
    assert!(
        rules.false_beep_rate > r.false_beep_rate,
        "{}",
        serde_json::to_string(&rules).unwrap()
    );
    assert!(rules.accuracy < r.accuracy);
}
