//! Running the AMD over files: one recording (`trunx amd`), a labelled directory
//! (`trunx bench amd`) and the beep model's training set (`trunx amd features`).
//!
//! The file reading, CPU-time measurement and model loading live here; the detector and the
//! scoring are the pure `amd` modules, fed exactly as a live call feeds them.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::amd::asterisk::{AsteriskAmd, AsteriskConfig};
use crate::amd::bench::{self, BenchReport, CallOutcome, Label, Truth};
use crate::amd::model::{EMBEDDED_BEEP_MODEL, EMBEDDED_GREETING_MODEL};
use crate::amd::tones::BEEP_FEATURES;
use crate::amd::{AmdConfig, AmdEvent, AmdEventKind, AmdProvider, BeepModel, analyse_recording};
use crate::audio::prompt::{decode_file, resample_to_8k, to_i16};
use crate::audio::wav::read_telephone_wav;
use crate::runtime::amd::onnx;
use crate::runtime::clock;

#[derive(Debug, thiserror::Error)]
pub enum AmdFilesError {
    #[error(transparent)]
    Onnx(#[from] onnx::OnnxError),
    #[error("{0}")]
    Audio(String),
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
    #[error("{path}: {source}")]
    Labels {
        path: String,
        #[source]
        source: bench::LabelError,
    },
    #[error("no labelled calls found in {0}")]
    Empty(String),
}

/// Loads the AMD's models: the beep model (the configured file, else the embedded one) and the
/// embedded greeting model (used only when `AmdConfig::greeting_model` is on).
pub fn load_beep_model(
    ort_library: Option<&Path>,
    model_path: Option<&Path>,
) -> Result<BeepModel, AmdFilesError> {
    load_models(ort_library, model_path, None)
}

/// [`load_beep_model`] with a greeting model file instead of the embedded one.
pub fn load_models(
    ort_library: Option<&Path>,
    beep_path: Option<&Path>,
    greeting_path: Option<&Path>,
) -> Result<BeepModel, AmdFilesError> {
    let env = onnx::environment(ort_library)?;
    let read = |path: Option<&Path>, name: &str, embedded: &[u8]| match path {
        Some(path) => std::fs::read(path)
            .map(|bytes| (path.display().to_string(), bytes))
            .map_err(|e| AmdFilesError::Read {
                path: path.display().to_string(),
                reason: e.to_string(),
            }),
        None => Ok((format!("embedded {name}"), embedded.to_vec())),
    };
    let (what, bytes) = read(beep_path, "beep.onnx", EMBEDDED_BEEP_MODEL)?;
    let beep = onnx::session_from_memory(&env, &what, &bytes)?;
    let (what, bytes) = read(greeting_path, "greeting.onnx", EMBEDDED_GREETING_MODEL)?;
    let greeting = onnx::session_from_memory(&env, &what, &bytes)?;
    Ok(BeepModel::new(beep).with_greeting(greeting))
}

/// Reads any audio file as 8 kHz mono PCM without changing its level.
pub fn read_call_audio(path: &Path) -> Result<Vec<i16>, AmdFilesError> {
    if let Ok(pcm) = read_telephone_wav(path) {
        return Ok(pcm);
    }
    let decoded = decode_file(path, 3600).map_err(|e| AmdFilesError::Audio(e.to_string()))?;
    let what = path.display().to_string();
    let pcm = resample_to_8k(&what, &decoded.downmix(), decoded.rate)
        .map_err(|e| AmdFilesError::Audio(e.to_string()))?;
    Ok(pcm.into_iter().map(to_i16).collect())
}

/// Events of one file as JSON-ready values.
pub fn event_json(e: &AmdEvent) -> serde_json::Value {
    let mut v = serde_json::json!({
        "event": e.kind.as_str(),
        "result": e.kind.public_result(),
        "at_ms": e.at.as_ms(),
        "confidence": (e.confidence * 1000.0).round() / 1000.0,
        "cause": e.cause.as_str(),
    });
    if let AmdEventKind::MachineEndBeep {
        beep_start,
        beep_end,
    } = e.kind
    {
        v["beep_start_ms"] = beep_start.as_ms().into();
        v["beep_end_ms"] = beep_end.as_ms().into();
    }
    v
}

pub fn event_line(e: &AmdEvent) -> String {
    let mut line = format!(
        "{:>6} ms  {:<20} {:<24} confidence {:.2}",
        e.at.as_ms(),
        e.kind.as_str(),
        e.cause.as_str(),
        e.confidence
    );
    if let AmdEventKind::MachineEndBeep {
        beep_start,
        beep_end,
    } = e.kind
    {
        line.push_str(&format!(
            "  beep {}-{} ms",
            beep_start.as_ms(),
            beep_end.as_ms()
        ));
    }
    line
}

fn read_labels(dir: &Path, labels: Option<&Path>) -> Result<Vec<Label>, AmdFilesError> {
    let path = labels
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join("labels.csv"));
    let text = std::fs::read_to_string(&path).map_err(|e| AmdFilesError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let labels = bench::parse_labels(&text).map_err(|source| AmdFilesError::Labels {
        path: path.display().to_string(),
        source,
    })?;
    if labels.is_empty() {
        return Err(AmdFilesError::Empty(dir.display().to_string()));
    }
    Ok(labels)
}

/// The engine a benchmark scores.
#[derive(Clone)]
pub enum Engine {
    /// The built-in detector (with the beep model, or the rules when `None`).
    Builtin {
        config: AmdConfig,
        model: Option<BeepModel>,
    },
    /// The port of Asterisk's app_amd (`crate::amd::asterisk`).
    Asterisk(AsteriskConfig),
}

impl Engine {
    pub fn name(&self) -> &'static str {
        match self {
            Engine::Builtin { .. } => "builtin",
            Engine::Asterisk(_) => "asterisk",
        }
    }

    /// Runs one recording: every event and the audio analysed (ms).
    pub fn analyse(&self, pcm: &[i16]) -> (Vec<AmdEvent>, u64) {
        match self {
            Engine::Builtin { config, model } => {
                let (events, stats) = analyse_recording(pcm, config, model.clone());
                (events, stats.hops * 10)
            }
            Engine::Asterisk(config) => {
                let mut amd = AsteriskAmd::new(*config);
                let mut events = Vec::new();
                let mut frames = 0u64;
                for frame in crate::audio::frames_of(pcm) {
                    frames += 1;
                    events.extend(amd.process(&frame));
                    if amd.is_done() {
                        break;
                    }
                }
                while let Some(e) = amd.finish() {
                    events.push(e);
                }
                (events, frames * 20)
            }
        }
    }
}

/// Replays every labelled call of `dir` through the built-in detector and scores it.
pub fn bench_dir(
    dir: &Path,
    labels: Option<&Path>,
    config: &AmdConfig,
    model: Option<BeepModel>,
) -> Result<(BenchReport, Vec<CallOutcome>), AmdFilesError> {
    bench_dir_with(
        dir,
        labels,
        &Engine::Builtin {
            config: config.clone(),
            model,
        },
    )
}

/// Replays every labelled call of `dir` through `engine` and scores it.
pub fn bench_dir_with(
    dir: &Path,
    labels: Option<&Path>,
    engine: &Engine,
) -> Result<(BenchReport, Vec<CallOutcome>), AmdFilesError> {
    let labels = read_labels(dir, labels)?;
    let mut outcomes = Vec::with_capacity(labels.len());
    let mut cpu = 0.0;
    for label in labels {
        let path = dir.join(&label.file);
        let pcm = read_call_audio(&path)?;
        let start = clock::thread_cpu_seconds();
        let (events, analysed_ms) = engine.analyse(&pcm);
        cpu += clock::thread_cpu_seconds() - start;
        outcomes.push(CallOutcome {
            label,
            events,
            analysed_ms,
            audio_ms: pcm.len() as u64 / 8,
        });
    }
    Ok((bench::report(engine.name(), &outcomes, cpu), outcomes))
}

/// Writes the beep model's training set: every tone candidate of every labelled call of every
/// directory in `dirs`, with label 1 when it overlaps the labelled beep, and a deterministic
/// train/test split by call (every fifth call of each directory is `test`). Each call is heard
/// twice: as recorded, and with 1-5 % of its 20 ms frames lost and concealed the way the
/// jitter buffer conceals them (a lost frame after speech repeats it at half level, which can
/// ring like a short tone: a beep model that never saw that took it for a beep). `labels`
/// replaces the labels file of a single directory.
pub fn write_features(
    dirs: &[PathBuf],
    labels: Option<&Path>,
    config: &AmdConfig,
    out: &Path,
) -> Result<(usize, usize), AmdFilesError> {
    let write_err = |e: std::io::Error| AmdFilesError::Write {
        path: out.display().to_string(),
        reason: e.to_string(),
    };
    let mut file = std::io::BufWriter::new(std::fs::File::create(out).map_err(write_err)?);
    let header: Vec<String> = (0..BEEP_FEATURES).map(|i| format!("f{i}")).collect();
    writeln!(file, "label,split,{}", header.join(",")).map_err(write_err)?;
    let (mut positives, mut negatives) = (0, 0);
    for (dir_index, dir) in dirs.iter().enumerate() {
        let labels = read_labels(dir, labels)?;
        for (index, label) in labels.iter().enumerate() {
            let pcm = read_call_audio(&dir.join(&label.file))?;
            let split = if index % 5 == 0 { "test" } else { "train" };
            let seed = (dir_index as u64) << 32 | index as u64;
            let mut candidates = candidates_of(&pcm, config, None);
            candidates.extend(candidates_of(&pcm, config, Some(seed)));
            for c in candidates {
                let is_beep = match label.beep_ms {
                    Some((start, end)) => {
                        let (cs, ce) = (c.start_sample / 8, c.end_sample / 8);
                        cs < end + 30 && ce + 30 > start
                    }
                    None => false,
                };
                if is_beep {
                    positives += 1;
                } else {
                    negatives += 1;
                }
                let values: Vec<String> = c.features().iter().map(|v| format!("{v:.6}")).collect();
                writeln!(file, "{},{split},{}", is_beep as u8, values.join(","))
                    .map_err(write_err)?;
            }
        }
    }
    file.flush().map_err(write_err)?;
    Ok((positives, negatives))
}

/// The tone candidates of one call, as recorded (`loss_seed` None) or with frames lost at a
/// rate of 1-5 % drawn from the seed and concealed by [`crate::rtp::jitter::conceal`].
fn candidates_of(
    pcm: &[i16],
    config: &AmdConfig,
    loss_seed: Option<u64>,
) -> Vec<crate::amd::tones::BeepCandidate> {
    use rand::{Rng, SeedableRng};
    let mut amd = crate::amd::Amd::new(config.clone(), None).with_candidate_log();
    let mut loss = loss_seed.map(|seed| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let rate = rng.random_range(0.01..0.05);
        (rng, rate)
    });
    let mut previous = [0i16; crate::audio::FRAME_SAMPLES];
    let mut run = 0;
    for mut frame in crate::audio::frames_of(pcm) {
        if let Some((rng, rate)) = &mut loss {
            if rng.random_bool(*rate) {
                run += 1;
                frame.samples = crate::rtp::jitter::conceal(&previous, run);
            } else {
                run = 0;
                previous = frame.samples;
            }
        }
        amd.process(&frame);
    }
    while amd.finish().is_some() {}
    amd.take_candidates()
}

/// Every labelled directory entry as (path, label), for the demo.
pub fn labelled_files(dir: &Path) -> Result<Vec<(PathBuf, Label)>, AmdFilesError> {
    Ok(read_labels(dir, None)?
        .into_iter()
        .map(|l| (dir.join(&l.file), l))
        .collect())
}

/// `human`/`machine` of a truth, for printing.
pub fn truth_str(t: Truth) -> &'static str {
    match t {
        Truth::Human => "human",
        Truth::Machine => "machine",
    }
}
