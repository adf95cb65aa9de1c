//! The greeting model's training set: `trunx bench greeting-features DIR... --out CSV` writes
//! one row per 100 ms of every labelled call of each directory (the cue row of
//! [`crate::amd::cues`], the call's truth and its first-utterance end), for
//! `models/train_greeting.py`.
//!
//! A tool, not the engine: file reading and CSV writing only; the cues are the engine's own.

use std::io::Write;
use std::path::Path;

use crate::amd::AmdConfig;
use crate::amd::bench::Truth;
use crate::amd::cues::{CUE_FEATURES, rows_of_recording};
use crate::runtime::amd::files::{AmdFilesError, labelled_files, read_call_audio};

/// Writes the rows of every directory (its name is the row's `set`); returns (calls, rows).
pub fn write_greeting_features(
    dirs: &[&Path],
    config: &AmdConfig,
    out: &Path,
) -> Result<(usize, usize), AmdFilesError> {
    let write_err = |e: std::io::Error| AmdFilesError::Write {
        path: out.display().to_string(),
        reason: e.to_string(),
    };
    let mut file = std::io::BufWriter::new(std::fs::File::create(out).map_err(write_err)?);
    let columns: Vec<String> = (0..CUE_FEATURES).map(|i| format!("f{i}")).collect();
    writeln!(
        file,
        "set,file,human,t_ms,utt_end_ms,beep_start_ms,{}",
        columns.join(",")
    )
    .map_err(write_err)?;
    let (mut calls, mut rows) = (0, 0);
    for dir in dirs {
        let set = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (path, label) in labelled_files(dir)? {
            let pcm = read_call_audio(&path)?;
            // Past the beep, the tone detector decides; the model is trained on what comes
            // before it.
            let limit = label
                .beep_ms
                .map_or(u64::from(config.max_analysis_ms), |(start, _)| {
                    start.min(u64::from(config.max_analysis_ms))
                });
            let utt_end = label
                .first_utterance_end_ms()
                .map(|t| t.to_string())
                .unwrap_or_default();
            let beep = label.beep_ms.map(|b| b.0.to_string()).unwrap_or_default();
            let human = u8::from(label.truth == Truth::Human);
            for (t_ms, row) in rows_of_recording(&pcm, config, limit) {
                let values: Vec<String> = row.iter().map(|v| format!("{v:.5}")).collect();
                writeln!(
                    file,
                    "{set},{},{human},{t_ms},{utt_end},{beep},{}",
                    label.file,
                    values.join(",")
                )
                .map_err(write_err)?;
                rows += 1;
            }
            calls += 1;
        }
    }
    file.flush().map_err(write_err)?;
    Ok((calls, rows))
}
