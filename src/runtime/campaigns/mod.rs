//! The campaign engines: the voice dialer, the SMS sender and its SMPP client, the compliance
//! gate at claim time, and the DNC import.

pub(crate) mod compliance;
pub mod dialer;
pub mod dnc_import;
pub mod smpp;
pub mod sms_sender;
pub(crate) mod windows;
