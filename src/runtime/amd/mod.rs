//! AMD with I/O: over files (`files`, `batch`, `training`), as a service (`serve`), the AMD
//! record files (`records`), and loading the ONNX Runtime library (`onnx`).

pub mod batch;
pub mod files;
pub mod onnx;
pub mod records;
pub mod serve;
pub mod training;
