//! trunx: a self-hosted outbound dialer engine with in-process answering-machine detection.
//!
//! The module tree follows the data flow of a call (see ARCHITECTURE.md): `audio`, `amd`, `sip`,
//! `rtp`, `call`, `agent`, `campaign` and `sms` are sans-IO, `config` validates settings, `store`
//! persists, `api` is the control API, `runtime` is the engine and the only place of the product
//! that does I/O, and `tools` (carrier simulator, demo, benches, corpus generators) builds on
//! all of them and is imported by none.

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
