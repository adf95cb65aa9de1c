//! The `trunx` binary's own modules, beside `main.rs` (they are not part of the library):
//! `args` the command line's definition (clap), `bench` the `trunx bench` handlers. Like
//! `main.rs` they only parse, load and hand over to the library: they must not hold engine or
//! tool logic, and the library never names them.

pub(crate) mod args;
pub(crate) mod bench;
