//! ONNX Runtime is really loaded and computes: the committed smoke model (models/make_smoke.py)
//! must reproduce the output its generator recorded. Fails, naming `make ort`, when the library
//! is missing.

use std::path::Path;

use ndarray::Array2;
use ort::value::TensorRef;
use trunx::runtime::amd::onnx;

#[test]
fn smoke_model_output_matches_its_generator() {
    let configured = std::env::var_os("ORT_DYLIB_PATH").map(std::path::PathBuf::from);
    let env = onnx::environment(configured.as_deref()).unwrap_or_else(|e| panic!("{e}"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let bytes = std::fs::read(root.join("smoke.onnx")).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("smoke.expected.json")).unwrap())
            .unwrap();
    let input: Vec<f32> = expected["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let want: Vec<f32> = expected["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let mut session = onnx::session_from_memory(&env, "smoke.onnx", &bytes).unwrap();
    let x = Array2::from_shape_vec((1, input.len()), input).unwrap();
    let outputs = session
        .run(ort::inputs!["input" => TensorRef::from_array_view(x.view()).unwrap()])
        .unwrap();
    let (shape, got) = outputs["output"].try_extract_tensor::<f32>().unwrap();
    assert_eq!(shape.as_ref(), &[1, 2]);
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-6, "got {got:?}, want {want:?}");
    }
    // Softmax output: a distribution.
    assert!((got.iter().sum::<f32>() - 1.0).abs() < 1e-6);
}

#[test]
fn a_missing_library_is_an_error_that_names_the_fix() {
    let missing = onnx::candidate_paths(Some(Path::new("/nonexistent/libonnxruntime.so")));
    assert_eq!(missing.len(), 1);
    assert!(!missing[0].exists());
    // environment() is process-wide, so the message is checked on the error type itself.
    let err = onnx::OnnxError::LibraryMissing {
        looked: missing[0].display().to_string(),
    };
    assert!(err.to_string().contains("make ort"));
}
