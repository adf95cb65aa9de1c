//! The public vocabulary of an SMPP session: its settings (with the never-printed password),
//! what it is asked to send, what it reports, why it refuses or loses a connection, and the
//! reconnect backoff. Plain data: it must not hold connection state or drive the session.

use std::fmt;
use std::time::{Duration, Instant};

use crate::sms::keywords::Keyword;
use crate::sms::pdu::{CommandStatus, DEFAULT_MAX_PDU_BYTES};
use crate::sms::receipt::ReceiptOutcome;
use crate::sms::text::{Gsm7Layout, TextError};

/// The bind password; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SmppPassword(String);

impl SmppPassword {
    pub fn new(password: impl Into<String>) -> Self {
        SmppPassword(password.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SmppPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SmppPassword(****)")
    }
}

/// Settings of one session.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// At most 15 characters (SMPP 3.4 system_id is 16 octets with its NUL).
    pub system_id: String,
    /// At most 8 characters.
    pub password: SmppPassword,
    /// At most 12 characters; often empty.
    pub system_type: String,
    /// Most submit_sm on the wire without a response, and most messages held by the session.
    pub window: usize,
    /// Silence after which an enquire_link is sent.
    pub enquire_link_interval: Duration,
    /// How long any request may wait for its response before the connection is declared dead.
    pub response_timeout: Duration,
    /// Bound on one inbound PDU (command_length).
    pub max_pdu_bytes: usize,
    /// How GSM 7-bit sits in short_message, outbound and inbound (see `text`).
    pub gsm7_layout: Gsm7Layout,
    /// registered_delivery on submit_sm: 1 asks for a receipt on the final outcome.
    pub registered_delivery: u8,
    /// First pause after a throttle response; doubles while throttles continue.
    pub throttle_pause: Duration,
    /// Cap on the throttle pause.
    pub throttle_pause_max: Duration,
}

impl SessionConfig {
    /// Defaults: window 10, enquire_link every 30 s, 10 s response timeout, 64 KiB PDUs,
    /// unpacked GSM, receipts requested, throttle pauses 1 s doubling to 60 s.
    pub fn new(system_id: impl Into<String>, password: SmppPassword) -> Self {
        SessionConfig {
            system_id: system_id.into(),
            password,
            system_type: String::new(),
            window: 10,
            enquire_link_interval: Duration::from_secs(30),
            response_timeout: Duration::from_secs(10),
            max_pdu_bytes: DEFAULT_MAX_PDU_BYTES,
            gsm7_layout: Gsm7Layout::Unpacked,
            registered_delivery: 1,
            throttle_pause: Duration::from_secs(1),
            throttle_pause_max: Duration::from_secs(60),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// No transport, or the transport must be closed.
    Closed,
    /// bind_transceiver sent, waiting for its response.
    Binding,
    Bound,
    /// unbind sent; responses to earlier submits are still taken.
    Unbinding,
}

/// One message to send. `key` is the caller's id for it (unique among messages in the
/// session); `reference` goes in the concatenation header of every part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmitRequest {
    pub key: u64,
    /// E.164 (`+15550001111`), digits, or an alphanumeric sender (at most 11 characters).
    pub source: String,
    pub destination: String,
    pub text: String,
    pub reference: u8,
}

/// Why `submit` did not take a message. The first three are momentary: the caller keeps the
/// message and offers it again later.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitRejected {
    #[error("the session is not bound (state {state:?})")]
    NotBound { state: State },
    #[error("the window of {window} messages is full")]
    WindowFull { window: usize },
    #[error("the carrier throttled; submits pause until the given instant")]
    Paused { until: Instant },
    #[error("a message with key {key} is already in the session")]
    DuplicateKey { key: u64 },
    #[error("the text cannot be sent: {0}")]
    Text(#[from] TextError),
    #[error("{field} is not a valid SMPP address: {reason}")]
    Address {
        field: &'static str,
        reason: &'static str,
    },
}

impl SubmitRejected {
    /// True when the same request may succeed later (not bound, window full, paused).
    pub fn is_momentary(&self) -> bool {
        matches!(
            self,
            SubmitRejected::NotBound { .. }
                | SubmitRejected::WindowFull { .. }
                | SubmitRejected::Paused { .. }
        )
    }
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LostReason {
    /// The transport closed (`disconnected`).
    Disconnected,
    /// The SMSC refused the bind (a `BindRejected` event came first).
    BindRejected,
    /// The SMSC sent unbind; we answered.
    ServerUnbind,
    /// Our `unbind` completed (or was cut short before the bind completed).
    LocalUnbind,
    /// A request went unanswered for `response_timeout`.
    ResponseTimeout,
    /// An inbound command_length made the byte stream unreadable.
    FramingLost,
}

/// What the session reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    Bound {
        system_id: String,
    },
    BindRejected {
        status: CommandStatus,
        name: &'static str,
    },
    /// One part taken by the SMSC; `part` counts from 1.
    PartAccepted {
        key: u64,
        part: u8,
        parts: u8,
        message_id: String,
    },
    /// Every part taken: the message is `sent`. `message_ids[i]` is part i+1's id (the first
    /// is the message's id); receipts name any of them (see `receipt::combine_parts`). An id is
    /// empty when the SMSC accepted a part with an unreadable response body.
    Accepted {
        key: u64,
        message_ids: Vec<String>,
    },
    /// The SMSC refused a part for good: the message failed (remaining parts are not sent).
    Failed {
        key: u64,
        status: CommandStatus,
        name: &'static str,
    },
    /// The SMSC asked us to slow down: the part is kept and sent again after `retry_after`;
    /// the message is not failed.
    Throttled {
        key: u64,
        retry_after: Duration,
    },
    Receipt {
        message_id: String,
        outcome: ReceiptOutcome,
        stat: String,
        error_code: Option<String>,
    },
    /// A mobile-originated message. `source` is `+digits` when the SMSC marked it international.
    /// Each part of a concatenated MO arrives as its own event (no reassembly).
    Inbound {
        source: String,
        destination: String,
        text: String,
        keyword: Keyword,
    },
    /// The connection is over: close the transport. Every message not fully accepted is
    /// listed (submission order) for the caller to submit again on a new connection.
    ConnectionLost {
        unacknowledged: Vec<u64>,
        reason: LostReason,
    },
}

/// Counts of oddities the session absorbed instead of failing (for metrics and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionCounters {
    pub malformed_pdus: u64,
    pub stray_responses: u64,
    pub unparsable_receipts: u64,
    pub bytes_ignored_while_closed: u64,
}

/// Reconnect (or any retry) delays: base, 2 x base, 4 x base, ... capped, reset after success.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Default for Backoff {
    /// 1 s, 2 s, 4 s, ... 60 s.
    fn default() -> Self {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(60))
    }
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The next delay. `jitter` in [0, 1] (clamped; NaN counts as 0) comes from the caller's
    /// random source and shortens the nominal delay by up to half ("equal jitter"), so many
    /// clients that lost the same carrier do not come back in step, and the cap is never passed.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let nominal = self
            .base
            .checked_mul(1u32.checked_shl(self.attempt).unwrap_or(u32::MAX))
            .unwrap_or(self.cap)
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1).min(32);
        let jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        nominal.mul_f64(1.0 - jitter / 2.0)
    }

    /// After a successful bind.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}
