//! The engine, and the only I/O of the product: sockets, tasks, channels, the clock, signals,
//! HTTP clients. Everything protocol- or signal-shaped lives in the sans-IO modules; this layer
//! feeds them input and carries out what they ask.
//!
//! - [`call`]: one call's sockets and tasks (SIP endpoint, dial, TLS, agent bridge, external AMD);
//! - [`campaigns`]: the campaign engines (voice dialer, SMS sender over SMPP, compliance, DNC);
//! - [`amd`]: AMD over files, the AMD service, its records, the ONNX Runtime loader;
//! - the shared leaves: [`clock`], [`fetch`], [`metrics`], [`latency`], [`nodes`],
//!   [`webhooks`], and [`server`] (`trunx serve`, which wires them together).
//!
//! Nothing here imports `crate::tools` (see `tests/architecture.rs`).

pub mod amd;
pub mod call;
pub mod campaigns;
pub mod clock;
pub mod fetch;
pub mod latency;
pub mod metrics;
pub mod nodes;
pub mod server;
pub mod webhooks;
