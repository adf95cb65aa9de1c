//! Loading the ONNX Runtime shared library (the `ort` crate with `load-dynamic`).
//!
//! ONNX Runtime allows one environment per process, so it is created once and shared. A missing
//! or wrong library is an error that names the command that installs it, never a panic.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The ONNX Runtime version trunx is built against (`ort` feature `api-31`).
pub const ORT_LIBRARY_NAME: &str = "libonnxruntime.so.1.31.1";
/// Project-local folder `make ort` installs the library into.
pub const ORT_LOCAL_DIR: &str = ".ort";

#[derive(Debug, thiserror::Error, Clone)]
pub enum OnnxError {
    #[error(
        "ONNX Runtime library not found (looked in: {looked}). Install it with `make ort` \
         (downloads the onnxruntime==1.31.1 wheel from PyPI into .ort/) or set ORT_DYLIB_PATH \
         to a libonnxruntime.so 1.31 or newer"
    )]
    LibraryMissing { looked: String },
    #[error("cannot load ONNX Runtime from {path}: {reason}. Run `make ort` to install 1.31.1")]
    Load { path: String, reason: String },
    #[error("ONNX model {what}: {reason}")]
    Model { what: String, reason: String },
}

static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, OnnxError>> = OnceLock::new();

/// Where the library is looked for, in order: the configured path, then `.ort/` in the working
/// directory, then beside the executable and in the `.ort/` of a source checkout that built it.
pub fn candidate_paths(configured: Option<&Path>) -> Vec<PathBuf> {
    if let Some(path) = configured {
        return vec![absolute(path)];
    }
    let mut paths = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        paths.push(cwd.join(ORT_LOCAL_DIR).join(ORT_LIBRARY_NAME));
    }
    if let Ok(exe) = std::env::current_exe() {
        // target/{debug,release}/trunx, or target/debug/deps/test-binary.
        for dir in exe.ancestors().skip(1).take(4) {
            paths.push(dir.join(ORT_LIBRARY_NAME));
            paths.push(dir.join(ORT_LOCAL_DIR).join(ORT_LIBRARY_NAME));
        }
    }
    paths
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// The process-wide ONNX Runtime environment, loaded on first use.
pub fn environment(configured: Option<&Path>) -> Result<ort::environment::Environment, OnnxError> {
    ENVIRONMENT
        .get_or_init(|| {
            let candidates = candidate_paths(configured);
            let path = candidates.iter().find(|p| p.is_file()).ok_or_else(|| {
                OnnxError::LibraryMissing {
                    looked: candidates
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            })?;
            let load_error = |reason: String| OnnxError::Load {
                path: path.display().to_string(),
                reason,
            };
            ort::init_from(path)
                .map_err(|e| load_error(e.to_string()))?
                .with_name("trunx")
                .build()
                .map_err(|e| load_error(e.to_string()))
        })
        .clone()
}

/// Opens a model held in memory as a single-threaded session (one per call task or worker).
pub fn session_from_memory(
    env: &ort::environment::Environment,
    what: &str,
    bytes: &[u8],
) -> Result<ort::session::Session, OnnxError> {
    use ort::session::{Session, builder::GraphOptimizationLevel};
    let model_error = |reason: String| OnnxError::Model {
        what: what.to_string(),
        reason,
    };
    let build = || -> Result<Session, String> {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let mut builder = Session::builder(env)
            .map_err(|x| e(&x))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|x| e(&x))?
            .with_intra_threads(1)
            .map_err(|x| e(&x))?
            .with_inter_threads(1)
            .map_err(|x| e(&x))?
            .with_intra_op_spinning(false)
            .map_err(|x| e(&x))?;
        builder.commit_from_memory(bytes).map_err(|x| e(&x))
    };
    build().map_err(model_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_path_is_the_only_candidate() {
        let c = candidate_paths(Some(Path::new("/opt/ort/lib.so")));
        assert_eq!(c, vec![PathBuf::from("/opt/ort/lib.so")]);
        let defaults = candidate_paths(None);
        assert!(defaults[0].ends_with(".ort/libonnxruntime.so.1.31.1"));
    }
}
