//! `trunx amd DIR`: every recording of a folder through the detector, in parallel over the
//! cores, one line per file in name order (with `--json`, the object `trunx amd FILE --json`
//! prints, on one line).
//!
//! Owns the worker threads and the ordering of the output; the analysis is
//! `amd::analyse_recording` and the file reading `files::read_call_audio`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use crate::amd::{AmdConfig, BeepModel, analyse_recording};
use crate::runtime::amd::files;

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("cannot list {path}: {source}")]
    List {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write the output: {0}")]
    Write(#[from] std::io::Error),
}

/// What one file gave.
pub struct FileResult {
    pub file: PathBuf,
    pub line: String,
    pub ok: bool,
}

/// The recordings of a folder: `*.wav` files (any case), sorted by name.
pub fn recordings(dir: &Path) -> Result<Vec<PathBuf>, BatchError> {
    let list = |source| BatchError::List {
        path: dir.display().to_string(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(list)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")))
        .collect();
    files.sort();
    Ok(files)
}

/// One file's line: the JSON object of `trunx amd FILE --json` (compact), or its text form.
pub fn analyse_file(
    file: &Path,
    config: &AmdConfig,
    model: Option<BeepModel>,
    json: bool,
) -> FileResult {
    let shown = file.display().to_string();
    match files::read_call_audio(file) {
        Ok(pcm) => {
            let (events, _) = analyse_recording(&pcm, config, model);
            let line = if json {
                serde_json::json!({
                    "file": shown,
                    "audio_ms": pcm.len() / 8,
                    "events": events.iter().map(files::event_json).collect::<Vec<_>>(),
                })
                .to_string()
            } else {
                let mut text = format!("{} ({} ms)", shown, pcm.len() / 8);
                for e in &events {
                    text.push_str("\n  ");
                    text.push_str(&files::event_line(e));
                }
                text
            };
            FileResult {
                file: file.to_path_buf(),
                line,
                ok: true,
            }
        }
        Err(e) => FileResult {
            file: file.to_path_buf(),
            line: if json {
                serde_json::json!({"file": shown, "error": e.to_string()}).to_string()
            } else {
                format!("{shown}: error: {e}")
            },
            ok: false,
        },
    }
}

/// Analyses every recording of `dir` on `jobs` threads, writing each file's line to `out` in
/// name order as soon as it and all before it are done. Returns (files, failures).
pub fn run(
    dir: &Path,
    config: &AmdConfig,
    model: Option<BeepModel>,
    jobs: usize,
    json: bool,
    out: &mut dyn Write,
) -> Result<(usize, usize), BatchError> {
    let files = recordings(dir)?;
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, FileResult)>();
    let mut failures = 0;
    std::thread::scope(|scope| -> Result<(), BatchError> {
        for _ in 0..jobs.clamp(1, 256).min(files.len().max(1)) {
            let (tx, next, files, model) = (tx.clone(), &next, &files, model.clone());
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = files.get(i) else { return };
                    let r = analyse_file(file, config, model.clone(), json);
                    if tx.send((i, r)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut waiting = BTreeMap::new();
        let mut printed = 0;
        for (i, r) in rx {
            waiting.insert(i, r);
            while let Some(r) = waiting.remove(&printed) {
                if !r.ok {
                    failures += 1;
                }
                writeln!(out, "{}", r.line)?;
                printed += 1;
            }
        }
        Ok(())
    })?;
    Ok((files.len(), failures))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_in_name_order_and_match_the_single_file_form() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/audio-fixtures/calls"));
        let mut out = Vec::new();
        let (n, failed) = run(dir, &AmdConfig::default(), None, 3, true, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!((lines.len(), failed), (n, 0));
        let files = recordings(dir).unwrap();
        for (line, file) in lines.iter().zip(&files) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["file"], file.display().to_string());
        }
        let one = analyse_file(&files[0], &AmdConfig::default(), None, true);
        assert_eq!(lines[0], one.line);
    }
}
