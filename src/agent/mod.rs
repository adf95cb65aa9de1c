//! The AI agent bridge, sans-IO: the Twilio Media Streams v1 (bidirectional) protocol as trunx
//! speaks it to an AI voice agent over a WebSocket.
//!
//! What it owns:
//! - [`AgentStream`]: the text of every event trunx sends (`connected`, `start`, `media`, `dtmf`,
//!   `mark` echoes, `stop`), with the stream's `sequenceNumber`, `chunk` and `timestamp` counters.
//!   Field names, nesting and string-encoded numbers follow the published protocol exactly.
//! - [`parse_inbound`]: bounded parsing of what the agent sends (`media`, `mark`, `clear`);
//!   unknown events come back as [`Inbound::Other`], garbage as an [`AgentProtocolError`].
//! - [`Playout`]: the bounded queue of agent audio paced out on the 20 ms grid, with marks at
//!   their position in the audio, `clear` (barge-in) and counters.
//! - [`Reconnect`]: when to retry a lost or refused agent socket, within a wall-time budget.
//!
//! What it must not do: open sockets, spawn tasks, read the clock or sleep. Time comes in as a
//! [`SampleTime`](crate::audio::SampleTime) (the call's 8 kHz audio clock); the runtime
//! (`src/runtime/`) owns the WebSocket, the 20 ms media tick and the channels, and counts and
//! drops what [`parse_inbound`] rejects. Nothing here may block the media tick: every queue is
//! bounded and overflow is counted, never waited on.

mod inbound;
mod playout;
mod reconnect;
mod stream;

pub use inbound::{AgentProtocolError, Inbound, InboundLimits, parse_inbound};
pub use playout::{Playout, PlayoutCounters, PlayoutLimits};
pub use reconnect::{Reconnect, ReconnectPolicy, ReconnectStep};
pub use stream::{AgentStream, StartInfo, StreamIds};

/// Bytes in one 20 ms μ-law frame at 8 kHz: the unit of `media` in both directions.
pub const MULAW_FRAME_BYTES: usize = crate::audio::FRAME_SAMPLES;

/// μ-law code of a zero sample, used to pad the last partial frame of an utterance.
pub const MULAW_SILENCE: u8 = 0xFF;
