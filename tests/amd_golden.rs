//! Golden calls (audio-fixtures/calls, a committed subset of the generated corpus): the
//! detector's result for each call and the timing of every labelled beep, through the same
//! code path a live call uses, with the beep model.

use std::path::Path;

use trunx::amd::bench::{Truth, parse_labels};
use trunx::amd::{AmdConfig, AmdEventKind, analyse_recording};
use trunx::audio::wav::read_telephone_wav;
use trunx::runtime::amd::files::load_beep_model;

/// Calls whose truth the detector is known to miss, with the reason. Every other call must
/// be classified correctly.
const KNOWN_MISSES: &[(&str, &str)] = &[(
    "0000-machine_nobeep.wav",
    "a 2.2 s greeting with no beep followed by silence is timed exactly like a long human answer",
)];

#[test]
fn golden_calls_decide_as_labelled_and_time_their_beeps() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("audio-fixtures/calls");
    let labels = parse_labels(&std::fs::read_to_string(dir.join("labels.csv")).unwrap()).unwrap();
    assert!(labels.len() >= 30, "golden set too small: {}", labels.len());
    let model = load_beep_model(None, None).unwrap_or_else(|e| panic!("{e}"));
    let config = AmdConfig::default();
    let mut failures = Vec::new();
    for label in &labels {
        let pcm = read_telephone_wav(&dir.join(&label.file)).unwrap();
        let (events, _) = analyse_recording(&pcm, &config, Some(model.clone()));
        let first = events.first().expect("every call gets a decision");
        let machine_side = first.kind.is_machine_side();
        let expected_machine = label.truth == Truth::Machine;
        let known_miss = KNOWN_MISSES.iter().any(|(f, _)| *f == label.file);
        if (machine_side != expected_machine) != known_miss {
            failures.push(format!(
                "{}: truth {:?}, first event {} {} (known miss: {known_miss})",
                label.file,
                label.truth,
                first.kind.as_str(),
                first.cause
            ));
        }
        let beep = events.iter().find_map(|e| match e.kind {
            AmdEventKind::MachineEndBeep {
                beep_start,
                beep_end,
            } => Some((beep_start.as_ms(), beep_end.as_ms(), e.at.as_ms())),
            _ => None,
        });
        match (label.beep_ms, beep) {
            (Some((start, end)), Some((got_start, got_end, at))) => {
                if got_end.abs_diff(end) > 50 || got_start.abs_diff(start) > 60 {
                    failures.push(format!(
                        "{}: beep {got_start}-{got_end} ms, labelled {start}-{end} ms",
                        label.file
                    ));
                }
                // Never before the beep has ended, and promptly after it: the group gap and
                // the wait for a next tone of the sequence, plus 70 ms.
                if at < end || at > end + 120 + u64::from(config.beep_sequence_wait_ms) {
                    failures.push(format!(
                        "{}: beep reported at {at} ms, ended {end}",
                        label.file
                    ));
                }
            }
            (Some((start, end)), None) if !known_miss => failures.push(format!(
                "{}: labelled beep {start}-{end} ms not found",
                label.file
            )),
            (None, Some((s, e, _))) => {
                failures.push(format!("{}: false beep {s}-{e} ms", label.file))
            }
            _ => {}
        }
        // Fax and SIT calls are reported as such, never as a beep.
        match label.category() {
            "fax" => assert_eq!(first.kind, AmdEventKind::Fax, "{}", label.file),
            "sit" => assert_eq!(first.kind, AmdEventKind::Sit, "{}", label.file),
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn causes_carry_the_measured_values() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("audio-fixtures/calls");
    let labels = parse_labels(&std::fs::read_to_string(dir.join("labels.csv")).unwrap()).unwrap();
    let config = AmdConfig::default();
    let mut seen = std::collections::BTreeSet::new();
    for label in &labels {
        let pcm = read_telephone_wav(&dir.join(&label.file)).unwrap();
        let (events, _) = analyse_recording(&pcm, &config, None);
        for e in events {
            let cause = e.cause.as_str().to_string();
            let (rule, rest) = cause.split_once('-').unwrap_or((&cause, ""));
            assert!(!rest.is_empty(), "cause without a value: {cause}");
            assert!(rest.chars().any(|c| c.is_ascii_digit()), "{cause}");
            seen.insert(rule.to_string());
        }
    }
    for rule in ["HUMAN", "LONGGREETING", "BEEP", "SIT", "FAX"] {
        assert!(
            seen.contains(rule),
            "no {rule} cause in the golden set: {seen:?}"
        );
    }
}
