//! trunx: a self-hosted outbound dialer engine with in-process answering-machine detection.
//!
//! The module tree follows the data flow of a call (see DESIGN.md): `audio` and `amd` are pure
//! signal code, `config` validates settings, and `runtime` is the only place that does I/O.

pub mod agent;
pub mod amd;
pub mod api;
pub mod audio;
pub mod call;
pub mod campaign;
pub mod config;
pub mod egress;
pub mod rtp;
pub mod runtime;
pub mod sip;
pub mod sms;
pub mod store;
pub mod tools;
