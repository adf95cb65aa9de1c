//! The only I/O in trunx: the clock, loading the ONNX Runtime library, the HTTP client that
//! fetches voicemail audio, and (as later parts land) sockets, tasks, channels and signals.
//!
//! Everything protocol- or signal-shaped lives in the sans-IO modules; this layer feeds them
//! input and carries out what they ask.

pub mod agent_bridge;
pub mod agent_ws;
pub mod amd_batch;
pub mod amd_external;
pub mod amd_files;
pub mod amd_records;
pub mod amd_serve;
pub mod amd_serve_bench;
pub mod amd_training;
pub mod api_bench;
pub mod carrier_sim;
pub mod clock;
mod compliance;
pub mod corpus2;
pub mod demo;
pub mod dial;
pub mod dialer;
pub mod dnc_import;
pub mod endpoint;
pub mod fetch;
pub mod ingredients;
pub mod latency;
pub mod load_bench;
pub mod metrics;
pub mod nodes;
pub mod onnx;
pub mod pg_local;
pub mod server;
pub mod sip_bench;
pub mod sip_leg;
pub mod sip_tls;
pub mod smpp;
pub mod sms_sender;
pub mod webhooks;
