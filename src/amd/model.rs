//! The ONNX beep model (ort): confirms a tone candidate against speech, music and chimes.
//!
//! Input `features` [N, 24] (see [`BeepCandidate::features`]), output `probs` [N, 2], column 1
//! the beep probability. The model runs once per tone candidate, never per frame. One session
//! is shared by every call of the process behind a mutex: inference is rare and short, and
//! ONNX Runtime sessions are expensive to create.

use std::sync::{Arc, Mutex};

use ndarray::Array2;
use ort::session::Session;
use ort::value::TensorRef;

use super::tones::{BEEP_FEATURES, BeepCandidate};
use crate::runtime::onnx::OnnxError;

/// The model trained by `models/train_beep.py`, embedded so the binary needs no model file.
pub static EMBEDDED_BEEP_MODEL: &[u8] = include_bytes!("../../models/beep.onnx");

#[derive(Clone)]
pub struct BeepModel {
    session: Arc<Mutex<Session>>,
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
        }
    }

    /// Beep probability for raw feature rows.
    pub fn score_rows(&self, rows: &[[f32; BEEP_FEATURES]]) -> Result<Vec<f32>, OnnxError> {
        let fail = |reason: String| OnnxError::Model {
            what: "beep.onnx".into(),
            reason,
        };
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let x = Array2::from_shape_vec((rows.len(), BEEP_FEATURES), flat)
            .map_err(|e| fail(e.to_string()))?;
        let mut session = self
            .session
            .lock()
            .map_err(|_| fail("session poisoned".into()))?;
        let tensor = TensorRef::from_array_view(x.view()).map_err(|e| fail(e.to_string()))?;
        let outputs = session
            .run(ort::inputs!["features" => tensor])
            .map_err(|e| fail(e.to_string()))?;
        let (shape, probs) = outputs["probs"]
            .try_extract_tensor::<f32>()
            .map_err(|e| fail(e.to_string()))?;
        if shape.len() != 2 || shape[1] != 2 || shape[0] as usize != rows.len() {
            return Err(fail(format!("unexpected output shape {shape:?}")));
        }
        Ok(probs.chunks_exact(2).map(|p| p[1]).collect())
    }

    /// Beep probability of one candidate.
    pub fn score(&self, candidate: &BeepCandidate) -> Result<f32, OnnxError> {
        Ok(self.score_rows(&[candidate.features()])?[0])
    }
}
