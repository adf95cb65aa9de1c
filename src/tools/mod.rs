//! Tools around the engine, never imported by it: the carrier simulator, the demo, the
//! benches (`load_bench`, `sip_bench`, `api_bench`, `amd_serve_bench`), the throwaway
//! PostgreSQL (`pg_local`) and the corpus generators (`corpus`).

pub mod amd_serve_bench;
pub mod api_bench;
pub mod carrier_sim;
pub mod corpus;
pub mod demo;
pub mod load_bench;
pub mod pg_local;
pub mod sip_bench;
