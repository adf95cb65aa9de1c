//! The SMS channel's protocol side: SMPP 3.4 as an ESME transceiver client, sans-IO.
//!
//! `pdu` frames and codes PDUs, `text` turns a message into GSM 03.38 or UCS-2 parts with
//! concatenation headers, `receipt` reads delivery receipts, `keywords` classifies inbound
//! replies (STOP, HELP, START), and `session` is the bind/submit/keepalive state machine.
//! Nothing here opens a socket, spawns a task or reads the clock: `runtime::campaigns::smpp` drives the
//! session with bytes and `now`, and the store decides what an event means for a campaign.

pub mod inbound;
pub mod keywords;
pub mod pdu;
pub mod receipt;
pub mod session;
pub mod text;
