//! The AMD's ONNX models (ort), shared by every call of the process:
//! - the beep model confirms a tone candidate against speech, music and chimes. Input
//!   `features` [N, 24] (see [`BeepCandidate::features`]), output `probs` [N, 2], column 1 the
//!   beep probability; it runs once per tone candidate, never per frame;
//! - the greeting model judges human against machine. Input `features` [N, 34] (the cue row of
//!   [`super::cues`]), output `probs` [N, 2], column 1 the probability that a person answered;
//!   it runs once per 100 ms while the call is undecided, and only when
//!   `AmdConfig::greeting_model` is on (the default; see `models/MODEL_CARD.md`).
//!
//! Each session sits behind its own mutex: a run is short (tens of microseconds) and ONNX
//! Runtime sessions are expensive to create.

use std::sync::{Arc, Mutex};

use ndarray::ArrayView2;
use ort::session::Session;
use ort::value::TensorRef;

use super::cues::CUE_FEATURES;
use super::tones::{BEEP_FEATURES, BeepCandidate};
use crate::runtime::amd::onnx::OnnxError;

/// The model trained by `models/train_beep.py`, embedded so the binary needs no model file.
pub static EMBEDDED_BEEP_MODEL: &[u8] = include_bytes!("../../models/beep.onnx");
/// The model trained by `models/train_greeting.py`, embedded likewise.
pub static EMBEDDED_GREETING_MODEL: &[u8] = include_bytes!("../../models/greeting.onnx");

/// The beep model, and the greeting model when loaded (without it the greeting rules judge).
#[derive(Clone)]
pub struct BeepModel {
    session: Arc<Mutex<Session>>,
    greeting: Option<Arc<Mutex<Session>>>,
}

impl std::fmt::Debug for BeepModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BeepModel")
    }
}

impl BeepModel {
    pub fn new(session: Session) -> Self {
        BeepModel {
            session: Arc::new(Mutex::new(session)),
            greeting: None,
        }
    }

    /// Adds the greeting model: with `AmdConfig::greeting_model` on it, not the greeting rules,
    /// judges human/machine.
    pub fn with_greeting(mut self, session: Session) -> Self {
        self.greeting = Some(Arc::new(Mutex::new(session)));
        self
    }

    /// The same beep model with the greeting rules as the judge (for comparisons).
    pub fn without_greeting(mut self) -> Self {
        self.greeting = None;
        self
    }

    pub fn has_greeting(&self) -> bool {
        self.greeting.is_some()
    }

    /// Probability that a person answered, from one cue row; `None` without a greeting model.
    pub fn score_greeting(&self, row: &[f32; CUE_FEATURES]) -> Option<Result<f32, OnnxError>> {
        let session = self.greeting.as_ref()?;
        let mut human = [0.0f32];
        Some(run_probs(session, "greeting.onnx", CUE_FEATURES, row, &mut human).map(|()| human[0]))
    }

    /// Beep probability for raw feature rows.
    pub fn score_rows(&self, rows: &[[f32; BEEP_FEATURES]]) -> Result<Vec<f32>, OnnxError> {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let mut beep = vec![0.0f32; rows.len()];
        run_probs(&self.session, "beep.onnx", BEEP_FEATURES, &flat, &mut beep)?;
        Ok(beep)
    }

    /// Beep probability of one candidate.
    pub fn score(&self, candidate: &BeepCandidate) -> Result<f32, OnnxError> {
        Ok(self.score_rows(&[candidate.features()])?[0])
    }
}

/// Runs a `features` [N, width] -> `probs` [N, 2] model; writes column 1 of each row to `out`
/// (N entries), allocating nothing of its own.
fn run_probs(
    session: &Mutex<Session>,
    what: &str,
    width: usize,
    flat: &[f32],
    out: &mut [f32],
) -> Result<(), OnnxError> {
    let fail = |reason: String| OnnxError::Model {
        what: what.into(),
        reason,
    };
    let rows = flat.len() / width;
    let x = ArrayView2::from_shape((rows, width), flat).map_err(|e| fail(e.to_string()))?;
    let mut session = session
        .lock()
        .map_err(|_| fail("session poisoned".into()))?;
    let tensor = TensorRef::from_array_view(x).map_err(|e| fail(e.to_string()))?;
    let outputs = session
        .run(ort::inputs!["features" => tensor])
        .map_err(|e| fail(e.to_string()))?;
    let (shape, probs) = outputs["probs"]
        .try_extract_tensor::<f32>()
        .map_err(|e| fail(e.to_string()))?;
    if shape.len() != 2 || shape[1] != 2 || shape[0] as usize != rows || out.len() != rows {
        return Err(fail(format!("unexpected output shape {shape:?}")));
    }
    for (o, p) in out.iter_mut().zip(probs.chunks_exact(2)) {
        *o = p[1];
    }
    Ok(())
}
