//! The ESME side of one SMPP 3.4 transceiver connection as a sans-IO state machine:
//! Closed -> (transport connected) Binding -> Bound -> Unbinding -> Closed.
//!
//! It owns binding, the window of outstanding submit_sm, the order of the parts of a message,
//! throttling pauses (ESME_RTHROTTLED / ESME_RMSGQFUL hand a part back for a later try, never
//! fail it), enquire_link keepalive, response timeouts, answering the SMSC's requests
//! (enquire_link, deliver_sm, unbind) and turning deliver_sm into receipts or inbound messages.
//! It must not open sockets, read the clock, persist anything or decide policy (suppression,
//! pacing, retries after a failure): input is bytes and `now`, output is bytes to write
//! (`poll_transmit`), events (`poll_event`) and the next deadline (`poll_timeout`).
//!
//! Driving it (the runtime's loop): `connected(now)` once TCP is up; `on_bytes` with what was
//! read; `handle_timeout` at `poll_timeout()`; after every call write out all of
//! `poll_transmit()` and handle all of `poll_event()`. On `ConnectionLost` write what is left
//! in `poll_transmit()` (an unbind_resp or generic_nack), close the socket and reconnect after
//! [`Backoff::next_delay`].
//!
//! Duplicate-risk choice: delivery is at least once. When the connection ends, every message
//! not fully accepted comes back in `ConnectionLost::unacknowledged`, including parts the SMSC
//! may have taken without its response reaching us, and multi-part messages whose first parts
//! were accepted. Resubmitting them (with the same concatenation reference, so a handset that
//! holds an earlier part can merge it) may duplicate a text now and then; dropping them would
//! lose texts silently, which the issue forbids.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use super::keywords::{self, Keyword};
use super::pdu::{
    self, Address, Bind, Body, CommandStatus, DEFAULT_MAX_PDU_BYTES, DecodeError,
    INTERFACE_VERSION_34, MAX_ADDRESS_CHARS, Pdu, ShortMessage, tag,
};
use super::receipt::{self, ReceiptOutcome};
use super::text::{self, Gsm7Layout, TextError};

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

/// What an outstanding sequence number waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Awaiting {
    Bind,
    EnquireLink,
    Unbind,
    /// `part` counts from 0.
    Submit {
        key: u64,
        part: usize,
    },
}

#[derive(Clone, Copy, Debug)]
struct Outstanding {
    sequence: u32,
    awaiting: Awaiting,
    deadline: Instant,
}

/// A message held by the session until every part is accepted or one fails.
#[derive(Clone, Debug)]
struct Message {
    key: u64,
    source: Address,
    destination: Address,
    data_coding: u8,
    esm_class: u8,
    parts: Vec<Vec<u8>>,
    /// Parts before this index were sent at least once.
    next_part: usize,
    message_ids: Vec<Option<String>>,
}

/// One SMPP transceiver session. See the module docs for the driving loop.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    rx: Vec<u8>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<SessionEvent>,
    next_sequence: u32,
    outstanding: Vec<Outstanding>,
    messages: Vec<Message>,
    /// Throttled parts to send again, oldest first.
    resend: VecDeque<(u64, usize)>,
    last_received: Option<Instant>,
    paused_until: Option<Instant>,
    throttle: Backoff,
    counters: SessionCounters,
}

impl Session {
    pub fn new(config: SessionConfig) -> Self {
        let throttle = Backoff::new(config.throttle_pause, config.throttle_pause_max);
        Session {
            config,
            state: State::Closed,
            rx: Vec::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            next_sequence: 1,
            outstanding: Vec::new(),
            messages: Vec::new(),
            resend: VecDeque::new(),
            last_received: None,
            paused_until: None,
            throttle,
            counters: SessionCounters::default(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn counters(&self) -> SessionCounters {
        self.counters
    }

    /// Messages held (queued or awaiting responses).
    pub fn messages_in_flight(&self) -> usize {
        self.messages.len()
    }

    /// The transport is up: send bind_transceiver. A session that was not closed is closed
    /// first (its messages come back in `ConnectionLost`).
    pub fn connected(&mut self, now: Instant) {
        if self.state != State::Closed {
            self.close(LostReason::Disconnected);
        }
        self.transmit.clear();
        self.rx.clear();
        self.state = State::Binding;
        self.last_received = Some(now);
        let bind = Body::BindTransceiver(Bind {
            system_id: self.config.system_id.clone(),
            password: self.config.password.expose().to_string(),
            system_type: self.config.system_type.clone(),
            interface_version: INTERFACE_VERSION_34,
            addr_ton: 0,
            addr_npi: 0,
            address_range: String::new(),
        });
        self.request(bind, Awaiting::Bind, now);
    }

    /// The transport closed. Every held message comes back in `ConnectionLost`.
    pub fn disconnected(&mut self, _now: Instant) {
        self.transmit.clear();
        if self.state != State::Closed {
            self.close(LostReason::Disconnected);
        }
    }

    /// Starts a graceful unbind (or ends a bind in progress).
    pub fn unbind(&mut self, now: Instant) {
        match self.state {
            State::Bound => {
                self.state = State::Unbinding;
                self.request(Body::Unbind, Awaiting::Unbind, now);
            }
            State::Binding => self.close(LostReason::LocalUnbind),
            State::Closed | State::Unbinding => {}
        }
    }

    /// Takes a message to send. Refused when not bound, when `window` messages are already
    /// held, or during a throttle pause: the caller keeps the message and offers it later.
    pub fn submit(&mut self, req: SubmitRequest, now: Instant) -> Result<(), SubmitRejected> {
        if self.state != State::Bound {
            return Err(SubmitRejected::NotBound { state: self.state });
        }
        if let Some(until) = self.paused_until.filter(|&until| until > now) {
            return Err(SubmitRejected::Paused { until });
        }
        if self.messages.len() >= self.config.window {
            return Err(SubmitRejected::WindowFull {
                window: self.config.window,
            });
        }
        if self.messages.iter().any(|m| m.key == req.key) {
            return Err(SubmitRejected::DuplicateKey { key: req.key });
        }
        let source = smpp_address(&req.source, "source")?;
        let destination = smpp_address(&req.destination, "destination")?;
        if destination.ton == TON_ALPHANUMERIC {
            return Err(SubmitRejected::Address {
                field: "destination",
                reason: "a destination must be a phone number",
            });
        }
        let encoded = text::encode_message_with(&req.text, req.reference, self.config.gsm7_layout)?;
        let parts = encoded.parts.len();
        self.messages.push(Message {
            key: req.key,
            source,
            destination,
            data_coding: encoded.data_coding,
            esm_class: encoded.esm_class,
            parts: encoded.parts,
            next_part: 0,
            message_ids: vec![None; parts],
        });
        self.pump(now);
        Ok(())
    }

    /// Bytes read from the transport. Whole PDUs are handled at once; at most one partial PDU
    /// (below `max_pdu_bytes`) stays buffered.
    pub fn on_bytes(&mut self, bytes: &[u8], now: Instant) {
        if self.state == State::Closed {
            self.counters.bytes_ignored_while_closed += bytes.len() as u64;
            return;
        }
        self.rx.extend_from_slice(bytes);
        let mut used = 0;
        while self.state != State::Closed {
            match pdu::decode(&self.rx[used..], self.config.max_pdu_bytes) {
                Ok(None) => break,
                Ok(Some((pdu, n))) => {
                    used += n;
                    self.last_received = Some(now);
                    self.handle_pdu(pdu, now);
                }
                Err(err) => {
                    self.counters.malformed_pdus += 1;
                    self.last_received = Some(now);
                    if let Some(nack) = err.nack() {
                        self.send(&nack);
                    }
                    match err.skip() {
                        Some(n) => {
                            used += n;
                            if let DecodeError::Malformed { header, .. } = err
                                && header.is_response()
                            {
                                // The header settles the request; the body only carried the
                                // message id, which is then unknown (empty).
                                self.handle_response(
                                    header.sequence,
                                    header.command_status,
                                    String::new(),
                                    now,
                                );
                            }
                        }
                        None => {
                            self.close(LostReason::FramingLost);
                        }
                    }
                }
            }
        }
        if self.state == State::Closed {
            self.rx.clear();
        } else {
            self.rx.drain(..used);
        }
        self.pump(now);
    }

    /// The next PDU to write, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must run next: the earliest response deadline, the next
    /// enquire_link, or the end of a throttle pause with parts waiting.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        let response = self.outstanding.iter().map(|o| o.deadline).min();
        let keepalive = self.keepalive_due();
        let resume = self.paused_until.filter(|_| self.has_unsent_parts());
        [response, keepalive, resume].into_iter().flatten().min()
    }

    /// Acts on deadlines that passed: a response timeout ends the connection; an idle link
    /// gets an enquire_link; a finished throttle pause lets waiting parts go.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if self.outstanding.iter().any(|o| o.deadline <= now) {
            self.close(LostReason::ResponseTimeout);
            return;
        }
        if self.keepalive_due().is_some_and(|due| due <= now) {
            self.request(Body::EnquireLink, Awaiting::EnquireLink, now);
        }
        self.pump(now);
    }

    fn keepalive_due(&self) -> Option<Instant> {
        let waiting = self
            .outstanding
            .iter()
            .any(|o| o.awaiting == Awaiting::EnquireLink);
        if self.state != State::Bound || waiting {
            return None;
        }
        self.last_received
            .map(|at| at + self.config.enquire_link_interval)
    }

    fn has_unsent_parts(&self) -> bool {
        !self.resend.is_empty() || self.messages.iter().any(|m| m.next_part < m.parts.len())
    }

    fn sequence(&mut self) -> u32 {
        let s = self.next_sequence;
        // Sequence numbers run 1..=0x7FFFFFFF (SMPP 3.4 §2.6) and wrap.
        self.next_sequence = if s >= 0x7FFF_FFFF { 1 } else { s + 1 };
        s
    }

    fn send(&mut self, pdu: &Pdu) {
        match pdu::encode(pdu) {
            Ok(bytes) => self.transmit.push_back(bytes),
            // Every PDU the session builds is checked beforehand (config and addresses);
            // reaching this is a bug, and dropping the PDU lets the response timeout recover.
            Err(err) => debug_assert!(false, "unencodable PDU: {err}"),
        }
    }

    fn request(&mut self, body: Body, awaiting: Awaiting, now: Instant) {
        let sequence = self.sequence();
        self.send(&Pdu::new(sequence, body));
        self.outstanding.push(Outstanding {
            sequence,
            awaiting,
            deadline: now + self.config.response_timeout,
        });
    }

    /// Sends waiting parts while the window has room and no throttle pause holds.
    fn pump(&mut self, now: Instant) {
        if self.state != State::Bound {
            return;
        }
        match self.paused_until {
            Some(until) if until > now => return,
            Some(_) => self.paused_until = None,
            None => {}
        }
        loop {
            let on_wire = self
                .outstanding
                .iter()
                .filter(|o| matches!(o.awaiting, Awaiting::Submit { .. }))
                .count();
            if on_wire >= self.config.window {
                return;
            }
            let next = match self.resend.pop_front() {
                Some(part) => Some(part),
                None => self
                    .messages
                    .iter_mut()
                    .find(|m| m.next_part < m.parts.len())
                    .map(|m| {
                        m.next_part += 1;
                        (m.key, m.next_part - 1)
                    }),
            };
            let Some((key, part)) = next else { return };
            let Some(m) = self.messages.iter().find(|m| m.key == key) else {
                continue;
            };
            let body = Body::SubmitSm(ShortMessage {
                source: m.source.clone(),
                destination: m.destination.clone(),
                esm_class: m.esm_class,
                registered_delivery: self.config.registered_delivery,
                data_coding: m.data_coding,
                short_message: m.parts[part].clone(),
                ..ShortMessage::default()
            });
            self.request(body, Awaiting::Submit { key, part }, now);
        }
    }

    fn handle_pdu(&mut self, pdu: Pdu, now: Instant) {
        let sequence = pdu.sequence;
        match pdu.body {
            Body::BindTransceiverResp(resp) => {
                self.handle_response(sequence, pdu.status, resp.system_id, now)
            }
            Body::SubmitSmResp { message_id } => {
                self.handle_response(sequence, pdu.status, message_id, now)
            }
            Body::EnquireLinkResp | Body::UnbindResp | Body::GenericNack => {
                self.handle_response(sequence, pdu.status, String::new(), now)
            }
            Body::DeliverSmResp { .. } => {
                self.counters.stray_responses += 1;
            }
            Body::EnquireLink => self.send(&Pdu::new(sequence, Body::EnquireLinkResp)),
            Body::Unbind => {
                self.send(&Pdu::new(sequence, Body::UnbindResp));
                self.close(LostReason::ServerUnbind);
            }
            Body::DeliverSm(sm) => self.handle_deliver(sequence, sm),
            // Requests only an SMSC serves.
            Body::BindTransceiver(_) | Body::SubmitSm(_) => {
                self.send(&Pdu::generic_nack(sequence, CommandStatus::RINVCMDID));
            }
        }
    }

    /// Settles the request `sequence` answered, by its status; `id` is the response's
    /// message_id or system_id.
    fn handle_response(&mut self, sequence: u32, status: CommandStatus, id: String, now: Instant) {
        let Some(index) = self.outstanding.iter().position(|o| o.sequence == sequence) else {
            self.counters.stray_responses += 1;
            return;
        };
        let awaiting = self.outstanding.swap_remove(index).awaiting;
        match awaiting {
            Awaiting::Bind if status == CommandStatus::ROK => {
                self.state = State::Bound;
                self.events.push_back(SessionEvent::Bound { system_id: id });
            }
            Awaiting::Bind => {
                self.events.push_back(SessionEvent::BindRejected {
                    status,
                    name: status.name(),
                });
                self.close(LostReason::BindRejected);
            }
            // Any answer shows the link is alive.
            Awaiting::EnquireLink => {}
            Awaiting::Unbind => self.close(LostReason::LocalUnbind),
            Awaiting::Submit { key, part } => self.handle_submit_result(key, part, status, id, now),
        }
    }

    fn handle_submit_result(
        &mut self,
        key: u64,
        part: usize,
        status: CommandStatus,
        message_id: String,
        now: Instant,
    ) {
        // A message that already failed ignores its other parts' responses.
        let Some(index) = self.messages.iter().position(|m| m.key == key) else {
            return;
        };
        if status == CommandStatus::ROK {
            self.throttle.reset();
            let m = &mut self.messages[index];
            let parts = m.parts.len();
            m.message_ids[part] = Some(message_id.clone());
            self.events.push_back(SessionEvent::PartAccepted {
                key,
                part: (part + 1) as u8,
                parts: parts as u8,
                message_id,
            });
            if m.message_ids.iter().all(Option::is_some) {
                let m = self.messages.remove(index);
                self.events.push_back(SessionEvent::Accepted {
                    key,
                    message_ids: m.message_ids.into_iter().flatten().collect(),
                });
            }
        } else if status.is_throttle() {
            // One pause per throttle episode: responses to parts that were already on the
            // wire when the first throttle came do not make the pause grow.
            let until = match self.paused_until.filter(|&until| until > now) {
                Some(until) => until,
                None => {
                    let until = now + self.throttle.next_delay(0.0);
                    self.paused_until = Some(until);
                    until
                }
            };
            self.resend.push_back((key, part));
            self.events.push_back(SessionEvent::Throttled {
                key,
                retry_after: until - now,
            });
        } else {
            self.messages.remove(index);
            self.resend.retain(|&(k, _)| k != key);
            self.events.push_back(SessionEvent::Failed {
                key,
                status,
                name: status.name(),
            });
        }
    }

    fn handle_deliver(&mut self, sequence: u32, sm: ShortMessage) {
        if !matches!(self.state, State::Bound | State::Unbinding) {
            let mut nack = Pdu::new(
                sequence,
                Body::DeliverSmResp {
                    message_id: String::new(),
                },
            );
            nack.status = CommandStatus::RINVBNDSTS;
            self.send(&nack);
            return;
        }
        // Acknowledged on receipt: an SMSC resends what we do not acknowledge, and an event
        // we cannot parse would not parse better the second time.
        self.send(&Pdu::new(
            sequence,
            Body::DeliverSmResp {
                message_id: String::new(),
            },
        ));
        let payload = match pdu::find_tlv(&sm.tlvs, tag::MESSAGE_PAYLOAD) {
            Some(p) if sm.short_message.is_empty() => p.to_vec(),
            _ => sm.short_message,
        };
        if receipt::is_receipt(sm.esm_class, &sm.tlvs) {
            let text: String = payload.iter().map(|&b| b as char).collect();
            match receipt::parse_receipt(&text, &sm.tlvs) {
                Ok(r) => self.events.push_back(SessionEvent::Receipt {
                    message_id: r.message_id,
                    outcome: r.outcome,
                    stat: r.stat,
                    error_code: r.error_code,
                }),
                Err(_) => self.counters.unparsable_receipts += 1,
            }
            return;
        }
        let text = text::decode_message(
            sm.data_coding,
            sm.esm_class,
            &payload,
            self.config.gsm7_layout,
        )
        // Unknown codings still reach the caller (as Latin-1) so nothing is silently lost.
        .unwrap_or_else(|_| payload.iter().map(|&b| b as char).collect());
        let keyword = keywords::classify(&text);
        self.events.push_back(SessionEvent::Inbound {
            source: display_address(&sm.source),
            destination: display_address(&sm.destination),
            text,
            keyword,
        });
    }

    /// Ends the connection: every held message comes back to the caller.
    fn close(&mut self, reason: LostReason) {
        let unacknowledged = self.messages.drain(..).map(|m| m.key).collect();
        self.outstanding.clear();
        self.resend.clear();
        self.paused_until = None;
        self.last_received = None;
        self.state = State::Closed;
        self.events.push_back(SessionEvent::ConnectionLost {
            unacknowledged,
            reason,
        });
    }
}

const TON_INTERNATIONAL: u8 = 1;
const TON_ALPHANUMERIC: u8 = 5;
const NPI_ISDN: u8 = 1;
/// GSM 03.40 alphanumeric originators hold 11 characters.
const MAX_ALPHANUMERIC: usize = 11;

/// `+digits` -> international/ISDN without the `+`; digits -> unknown TON, ISDN plan;
/// letters -> alphanumeric sender.
fn smpp_address(number: &str, field: &'static str) -> Result<Address, SubmitRejected> {
    let bad = |reason| SubmitRejected::Address { field, reason };
    if let Some(digits) = number.strip_prefix('+') {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("`+` must be followed by digits only"));
        }
        if digits.len() > MAX_ADDRESS_CHARS {
            return Err(bad("longer than 20 digits"));
        }
        return Ok(Address {
            ton: TON_INTERNATIONAL,
            npi: NPI_ISDN,
            addr: digits.to_string(),
        });
    }
    if number.is_empty() {
        return Err(bad("empty"));
    }
    if number.bytes().all(|b| b.is_ascii_digit()) {
        if number.len() > MAX_ADDRESS_CHARS {
            return Err(bad("longer than 20 digits"));
        }
        return Ok(Address {
            ton: 0,
            npi: NPI_ISDN,
            addr: number.to_string(),
        });
    }
    if number.len() > MAX_ALPHANUMERIC || !number.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
    {
        return Err(bad(
            "an alphanumeric sender is at most 11 printable ASCII characters",
        ));
    }
    Ok(Address {
        ton: TON_ALPHANUMERIC,
        npi: 0,
        addr: number.to_string(),
    })
}

/// An inbound address as the rest of trunx writes numbers: `+` for international ones.
fn display_address(a: &Address) -> String {
    if a.ton == TON_INTERNATIONAL && !a.addr.starts_with('+') {
        format!("+{}", a.addr)
    } else {
        a.addr.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sms::pdu::{DEFAULT_MAX_PDU_BYTES, Tlv, decode, encode};
    use crate::sms::text::{DATA_CODING_GSM7, DATA_CODING_UCS2, ESM_CLASS_UDHI};
    use proptest::prelude::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn config() -> SessionConfig {
        let mut c = SessionConfig::new("trunx", SmppPassword::new("pw123"));
        c.system_type = "bulk".into();
        c
    }

    /// Everything the session wants written, decoded.
    fn written(s: &mut Session) -> Vec<Pdu> {
        std::iter::from_fn(|| s.poll_transmit())
            .map(|bytes| {
                let (pdu, used) = decode(&bytes, DEFAULT_MAX_PDU_BYTES).unwrap().unwrap();
                assert_eq!(used, bytes.len(), "one PDU per transmit");
                pdu
            })
            .collect()
    }

    fn events(s: &mut Session) -> Vec<SessionEvent> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    fn feed(s: &mut Session, pdu: Pdu, now: Instant) {
        s.on_bytes(&encode(&pdu).unwrap(), now);
    }

    fn resp(to: &Pdu, status: CommandStatus, body: Body) -> Pdu {
        Pdu {
            status,
            sequence: to.sequence,
            body,
        }
    }

    fn submit_resp(to: &Pdu, id: &str) -> Pdu {
        resp(
            to,
            CommandStatus::ROK,
            Body::SubmitSmResp {
                message_id: id.into(),
            },
        )
    }

    fn bound(t0: Instant) -> Session {
        bound_with(config(), t0)
    }

    fn bound_with(config: SessionConfig, t0: Instant) -> Session {
        let mut s = Session::new(config);
        s.connected(t0);
        let bind = written(&mut s).remove(0);
        feed(
            &mut s,
            resp(
                &bind,
                CommandStatus::ROK,
                Body::BindTransceiverResp(pdu::BindResp {
                    system_id: "smsc".into(),
                    tlvs: vec![],
                }),
            ),
            t0,
        );
        assert_eq!(
            events(&mut s),
            vec![SessionEvent::Bound {
                system_id: "smsc".into()
            }]
        );
        s
    }

    fn request(key: u64, text: &str) -> SubmitRequest {
        SubmitRequest {
            key,
            source: "+15550001111".into(),
            destination: "+15550002222".into(),
            text: text.into(),
            reference: 7,
        }
    }

    fn short_message(pdu: &Pdu) -> &ShortMessage {
        match &pdu.body {
            Body::SubmitSm(sm) | Body::DeliverSm(sm) => sm,
            other => panic!("expected a short message PDU, got {other:?}"),
        }
    }

    fn deliver(sequence: u32, esm_class: u8, source: &str, body: &[u8], tlvs: Vec<Tlv>) -> Pdu {
        Pdu::new(
            sequence,
            Body::DeliverSm(ShortMessage {
                source: Address {
                    ton: 1,
                    npi: 1,
                    addr: source.into(),
                },
                destination: Address {
                    ton: 1,
                    npi: 1,
                    addr: "15550001111".into(),
                },
                esm_class,
                data_coding: DATA_CODING_GSM7,
                short_message: body.to_vec(),
                tlvs,
                ..ShortMessage::default()
            }),
        )
    }

    #[test]
    fn bind_sends_credentials_and_reports_bound() {
        let t0 = crate::runtime::clock::now();
        let mut s = Session::new(config());
        assert_eq!(s.poll_timeout(), None);
        s.connected(t0);
        assert_eq!(s.state(), State::Binding);
        let sent = written(&mut s);
        assert_eq!(sent.len(), 1);
        let Body::BindTransceiver(bind) = &sent[0].body else {
            panic!("{:?}", sent[0]);
        };
        assert_eq!(
            (
                bind.system_id.as_str(),
                bind.password.as_str(),
                bind.system_type.as_str()
            ),
            ("trunx", "pw123", "bulk")
        );
        assert_eq!(bind.interface_version, 0x34);
        assert_eq!(
            s.poll_timeout(),
            Some(t0 + 10 * SECOND),
            "bind response deadline"
        );
        // Submits wait for the bind.
        assert_eq!(
            s.submit(request(1, "hi"), t0),
            Err(SubmitRejected::NotBound {
                state: State::Binding
            })
        );
        let s = bound(t0);
        assert_eq!(s.state(), State::Bound);
        assert_eq!(
            s.poll_timeout(),
            Some(t0 + 30 * SECOND),
            "next enquire_link"
        );
    }

    #[test]
    fn a_refused_bind_closes_with_its_status() {
        let t0 = crate::runtime::clock::now();
        let mut s = Session::new(config());
        s.connected(t0);
        let bind = written(&mut s).remove(0);
        // An error response without a body, as SMSCs send it.
        feed(
            &mut s,
            resp(
                &bind,
                CommandStatus::RINVPASWD,
                Body::BindTransceiverResp(Default::default()),
            ),
            t0,
        );
        assert_eq!(
            events(&mut s),
            vec![
                SessionEvent::BindRejected {
                    status: CommandStatus::RINVPASWD,
                    name: "ESME_RINVPASWD"
                },
                SessionEvent::ConnectionLost {
                    unacknowledged: vec![],
                    reason: LostReason::BindRejected
                }
            ]
        );
        assert_eq!(s.state(), State::Closed);
    }

    #[test]
    fn a_three_part_ucs2_message_goes_out_in_order_and_is_accepted_when_all_parts_are() {
        let t0 = crate::runtime::clock::now();
        let mut s = bound(t0);
        let text = "Привет! ".repeat(19); // 152 UCS-2 units: 67 + 67 + 18
        s.submit(request(42, &text), t0).unwrap();
        let sent = written(&mut s);
        assert_eq!(sent.len(), 3);
        for (i, pdu) in sent.iter().enumerate() {
            let sm = short_message(pdu);
            assert_eq!(sm.data_coding, DATA_CODING_UCS2);
            assert_eq!(sm.esm_class, ESM_CLASS_UDHI);
            assert_eq!(sm.registered_delivery, 1);
            assert_eq!(
                (sm.source.ton, sm.source.npi, sm.source.addr.as_str()),
                (1, 1, "15550001111")
            );
            assert_eq!(sm.destination.addr, "15550002222");
            assert_eq!(&sm.short_message[..6], &[5, 0, 3, 7, 3, i as u8 + 1]);
        }
        // Responses out of order: the message is accepted only with the last of them.
        feed(&mut s, submit_resp(&sent[1], "id-2"), t0);
        feed(&mut s, submit_resp(&sent[2], "id-3"), t0);
        let partial = events(&mut s);
        assert_eq!(partial.len(), 2);
        assert!(partial.iter().all(|e| matches!(
            e,
            SessionEvent::PartAccepted {
                key: 42,
                parts: 3,
                ..
            }
        )));
        feed(&mut s, submit_resp(&sent[0], "id-1"), t0);
        assert_eq!(
            events(&mut s),
            vec![
                SessionEvent::PartAccepted {
                    key: 42,
                    part: 1,
                    parts: 3,
                    message_id: "id-1".into()
                },
                SessionEvent::Accepted {
                    key: 42,
                    message_ids: vec!["id-1".into(), "id-2".into(), "id-3".into()]
                }
            ]
        );
        assert_eq!(s.messages_in_flight(), 0);
    }

    #[test]
    fn a_throttled_part_pauses_submits_then_goes_again() {
        let t0 = crate::runtime::clock::now();
        let mut s = bound(t0);
        s.submit(request(1, "hello"), t0).unwrap();
        let first = written(&mut s).remove(0);
        feed(
            &mut s,
            resp(
                &first,
                CommandStatus::RTHROTTLED,
                Body::SubmitSmResp {
                    message_id: String::new(),
                },
            ),
            t0,
        );
        assert_eq!(
            events(&mut s),
            vec![SessionEvent::Throttled {
                key: 1,
                retry_after: SECOND
            }]
        );
        assert!(
            written(&mut s).is_empty(),
            "nothing goes out during the pause"
        );
        assert_eq!(
            s.submit(request(2, "other"), t0),
            Err(SubmitRejected::Paused { until: t0 + SECOND })
        );
        assert_eq!(s.poll_timeout(), Some(t0 + SECOND));
        s.handle_timeout(t0 + SECOND);
        let again = written(&mut s).remove(0);
        assert_ne!(again.sequence, first.sequence);
        assert_eq!(short_message(&again), short_message(&first));
        // A second throttle in a row doubles the pause (queue full this time).
        let t1 = t0 + SECOND;
        feed(
            &mut s,
            resp(
                &again,
                CommandStatus::RMSGQFUL,
                Body::SubmitSmResp {
                    message_id: String::new(),
                },
            ),
            t1,
        );
        assert_eq!(
            events(&mut s),
            vec![SessionEvent::Throttled {
                key: 1,
                retry_after: 2 * SECOND
            }]
        );
        s.handle_timeout(t1 + 2 * SECOND);
        let third = written(&mut s).remove(0);
        feed(&mut s, submit_resp(&third, "m1"), t1 + 2 * SECOND);
        let ev = events(&mut s);
        assert_eq!(
            ev.last(),
            Some(&SessionEvent::Accepted {
                key: 1,
                message_ids: vec!["m1".into()]
            })
        );
        assert!(!ev.iter().any(|e| matches!(e, SessionEvent::Failed { .. })));
        // Success resets the pause: the next throttle waits 1 s again.
        let t2 = t1 + 3 * SECOND;
        s.submit(request(3, "x"), t2).unwrap();
        let p = written(&mut s).remove(0);
        feed(
            &mut s,
            resp(
                &p,
                CommandStatus::RTHROTTLED,
                Body::SubmitSmResp {
                    message_id: String::new(),
                },
            ),
            t2,
        );
        assert_eq!(
            events(&mut s),
            vec![SessionEvent::Throttled {
                key: 3,
                retry_after: SECOND
            }]
        );
    }

    #[test]
    fn receipts_and_inbound_messages_are_acknowledged_with_their_sequence() {
        let t0 = crate::runtime::clock::now();
        let mut s = bound(t0);
        let receipt = b"id:id-1 sub:001 dlvrd:001 submit date:2611271405 done date:2611271406 \
                        stat:DELIVRD err:000 text:hello";
        feed(
            &mut s,
            deliver(900, 0x04, "15550002222", receipt, vec![]),
            t0,
        );
        let failed = b"id:id-2 stat:UNDELIV err:034";
        feed(
            &mut s,
            deliver(901, 0x04, "15550002222", failed, vec![]),
            t0,
        );
        feed(
            &mut s,
            deliver(902, 0x00, "15550002222", b" Stop ", vec![]),
            t0,
        );
        let acks = written(&mut s);
        assert_eq!(
            acks.iter()
                .map(|p| (p.sequence, p.status, p.body.command_id()))
                .collect::<Vec<_>>(),
            [900, 901, 902].map(|seq| (seq, CommandStatus::ROK, pdu::command::DELIVER_SM_RESP))
        );
        assert_eq!(
            events(&mut s),
            vec![
                SessionEvent::Receipt {
                    message_id: "id-1".into(),
                    outcome: ReceiptOutcome::Delivered,
                    stat: "DELIVRD".into(),
                    error_code: Some("000".into())
                },
                SessionEvent::Receipt {
                    message_id: "id-2".into(),
                    outcome: ReceiptOutcome::Failed,
                    stat: "UNDELIV".into(),
                    error_code: Some("034".into())
                },
                SessionEvent::Inbound {
                    source: "+15550002222".into(),
                    destination: "+15550001111".into(),
                    text: " Stop ".into(),
                    keyword: Keyword::OptOut
                }
            ]
        );
    }

    #[test]
    fn a_receipt_by_tlv_and_an_unparsable_one() {
        let t0 = crate::runtime::clock::now();
        let mut s = bound(t0);
        let tlvs = vec![
            Tlv {
                tag: tag::RECEIPTED_MESSAGE_ID,
                value: b"abc\0".to_vec(),
            },
            Tlv {
                tag: tag::MESSAGE_STATE,
                value: vec![2],
            },
        ];
        feed(&mut s, deliver(5, 0x00, "1", b"", tlvs), t0);
        feed(&mut s, deliver(6, 0x04, "1", b"garbage", vec![]), t0);
        assert_eq!(written(&mut s).len(), 2, "both acknowledged");
        let ev = events(&mut s);
        assert!(
            matches!(&ev[..], [SessionEvent::Receipt { message_id, outcome: ReceiptOutcome::Delivered, .. }] if message_id == "abc")
        );
        assert_eq!(s.counters().unparsable_receipts, 1);
    }

    #[test]
    fn a_server_unbind_is_answered_and_returns_unacknowledged_messages() {
        let t0 = crate::runtime::clock::now();
        let mut s = bound(t0);
        s.submit(request(10, "one"), t0).unwrap();
        s.submit(request(11, "two"), t0).unwrap();
        let sent = written(&mut s);
        feed(&mut s, submit_resp(&sent[0], "a"), t0);
        events(&mut s);
        feed(&mut s, Pdu::new(77, Body::Unbind), t0);
        assert_eq!(written(&mut s), vec![Pdu::new(77, Body::UnbindResp)]);
        assert_eq!(
            events(&mut s),
            vec![SessionEvent::ConnectionLost {
                unacknowledged: vec![11],
                reason: LostReason::ServerUnbind
            }]
        );
        assert_eq!(s.state(), State::Closed);
        assert_eq!(s.poll_timeout(), None);
        // A late response on the dead connection changes nothing.
        feed(&mut s, submit_resp(&sent[1], "b"), t0);
        assert!(events(&mut s).is_empty());
    }

    #[test]
    fn a_response_timeout_declares_the_connection_dead_and_returns_every_unacked_submit() {
        let t0 = crate::runtime::clock::now();
        let mut s = bound(t0);
        let long = "a".repeat(300); // 2 parts
        s.submit(request(1, &long), t0).unwrap();
        s.submit(request(2, "short"), t0 + SECOND).unwrap();
        let sent = written(&mut s);
        assert_eq!(sent.len(), 3);
        feed(&mut s, submit_resp(&sent[0], "p1"), t0 + SECOND); // part 1 of 2 only
        events(&mut s);
        let deadline = s.poll_timeout().unwrap();
        assert_eq!(deadline, t0 + 10 * SECOND, "the oldest unanswered submit");
        s.handle_timeout(deadline - Duration::from_millis(1));
        assert!(events(&mut s).is_empty());
        s.handle_timeout(deadline);
        assert_eq!(
            events(&mut s),
            vec![SessionEvent::ConnectionLost {
                unacknowledged: vec![1, 2],
                reason: LostReason::ResponseTimeout
            }]
        );
        assert_eq!(s.state(), State::Closed);
    }

    #[test]
    fn generic_nack_fails_or_throttles_the_matching_submit() {
        let t0 = crate::runtime::clock::now();
        let mut s = bound(t0);
        s.submit(request(1, "a"), t0).unwrap();
        s.submit(request(2, "b"), t0).unwrap();
        let sent = written(&mut s);
        feed(
            &mut s,
            Pdu::generic_nack(sent[0].sequence, CommandStatus::RINVCMDLEN),
            t0,
        );
        feed(
            &mut s,
            Pdu::generic_nack(sent[1].sequence, CommandStatus::RTHROTTLED),
            t0,
        );
        assert_eq!(
            events(&mut s),
            vec![
                SessionEvent::Failed {
                    key: 1,
                    status: CommandStatus::RINVCMDLEN,
                    name: "ESME_RINVCMDLEN"
                },
                SessionEvent::Throttled {
                    key: 2,
                    retry_after: SECOND
                }
            ]
        );
        assert_eq!(s.messages_in_flight(), 1);
    }

    #[test]
    fn a_failed_part_fails_the_message_and_stops_its_other_parts() {
        let t0 = crate::runtime::clock::now();
        let mut cfg = config();
        cfg.window = 1;
        let mut s = bound_with(cfg, t0);
        s.submit(request(5, &"b".repeat(400)), t0).unwrap(); // 3 parts, window 1
        let p1 = written(&mut s);
        assert_eq!(p1.len(), 1, "the window holds one PDU on the wire");
        feed(&mut s, submit_resp(&p1[0], "x1"), t0);
        let p2 = written(&mut s);
        assert_eq!(
            &short_message(&p2[0]).short_message[..6],
            &[5, 0, 3, 7, 3, 2]
        );
        feed(
            &mut s,
            resp(
                &p2[0],
                CommandStatus::RINVDSTADR,
                Body::SubmitSmResp {
                    message_id: String::new(),
                },
            ),
            t0,
        );
        let ev = events(&mut s);
        assert_eq!(
            ev.last(),
            Some(&SessionEvent::Failed {
                key: 5,
                status: CommandStatus::RINVDSTADR,
                name: "ESME_RINVDSTADR"
            })
        );
        assert!(written(&mut s).is_empty(), "part 3 is not sent");
        assert_eq!(s.messages_in_flight(), 0);
    }

    #[test]
    fn keepalive_when_idle_and_dead_without_its_answer() {
        let t0 = crate::runtime::clock::now();
        let mut s = bound(t0);
        // The SMSC's own enquire_link is answered with its sequence.
        feed(&mut s, Pdu::new(31, Body::EnquireLink), t0 + 5 * SECOND);
        assert_eq!(written(&mut s), vec![Pdu::new(31, Body::EnquireLinkResp)]);
        // Traffic moved the idle deadline.
        assert_eq!(s.poll_timeout(), Some(t0 + 35 * SECOND));
        s.handle_timeout(t0 + 35 * SECOND);
        let ping = written(&mut s);
        assert_eq!(ping.len(), 1);
        assert_eq!(ping[0].body, Body::EnquireLink);
        feed(
            &mut s,
            resp(&ping[0], CommandStatus::ROK, Body::EnquireLinkResp),
            t0 + 36 * SECOND,
        );
        assert_eq!(s.poll_timeout(), Some(t0 + 66 * SECOND));
        s.handle_timeout(t0 + 66 * SECOND);
        written(&mut s);
        assert_eq!(s.poll_timeout(), Some(t0 + 76 * SECOND));
        s.handle_timeout(t0 + 76 * SECOND);
        assert_eq!(
            events(&mut s),
            vec![SessionEvent::ConnectionLost {
                unacknowledged: vec![],
                reason: LostReason::ResponseTimeout
            }]
        );
    }

    #[test]
    fn window_and_input_checks() {
        let t0 = crate::runtime::clock::now();
        let mut cfg = config();
        cfg.window = 2;
        let mut s = bound_with(cfg, t0);
        s.submit(request(1, "a"), t0).unwrap();
        assert_eq!(
            s.submit(request(1, "a"), t0),
            Err(SubmitRejected::DuplicateKey { key: 1 })
        );
        s.submit(request(2, "b"), t0).unwrap();
        let full = s.submit(request(3, "c"), t0).unwrap_err();
        assert_eq!(full, SubmitRejected::WindowFull { window: 2 });
        assert!(full.is_momentary());
        let mut bad = request(4, "x");
        bad.destination = "+1555abc".into();
        let mut s2 = bound(t0);
        assert!(matches!(
            s2.submit(bad, t0),
            Err(SubmitRejected::Address {
                field: "destination",
                ..
            })
        ));
        let mut alpha = request(5, "x");
        alpha.source = "TRUNX".into();
        s2.submit(alpha, t0).unwrap();
        let sm = written(&mut s2).remove(0);
        assert_eq!(
            (
                short_message(&sm).source.ton,
                short_message(&sm).source.addr.as_str()
            ),
            (5, "TRUNX")
        );
        let err = s2.submit(request(6, &"a".repeat(1601)), t0).unwrap_err();
        assert!(matches!(
            err,
            SubmitRejected::Text(TextError::TooLong {
                characters: 1601,
                ..
            })
        ));
        assert!(!err.is_momentary());
    }

    #[test]
    fn local_unbind_waits_for_its_response() {
        let t0 = crate::runtime::clock::now();
        let mut s = bound(t0);
        s.submit(request(1, "a"), t0).unwrap();
        let sm = written(&mut s).remove(0);
        s.unbind(t0);
        assert_eq!(s.state(), State::Unbinding);
        let unbind = written(&mut s).remove(0);
        assert_eq!(unbind.body, Body::Unbind);
        assert!(matches!(
            s.submit(request(2, "b"), t0),
            Err(SubmitRejected::NotBound { .. })
        ));
        // A response to an earlier submit still counts.
        feed(&mut s, submit_resp(&sm, "m"), t0);
        feed(
            &mut s,
            resp(&unbind, CommandStatus::ROK, Body::UnbindResp),
            t0,
        );
        let ev = events(&mut s);
        assert_eq!(
            &ev[ev.len() - 2..],
            &[
                SessionEvent::Accepted {
                    key: 1,
                    message_ids: vec!["m".into()]
                },
                SessionEvent::ConnectionLost {
                    unacknowledged: vec![],
                    reason: LostReason::LocalUnbind
                }
            ]
        );
    }

    #[test]
    fn disconnect_returns_messages_and_reconnect_binds_again() {
        let t0 = crate::runtime::clock::now();
        let mut s = bound(t0);
        s.submit(request(9, "a"), t0).unwrap();
        s.disconnected(t0);
        assert!(
            s.poll_transmit().is_none(),
            "nothing is left for a dead socket"
        );
        assert_eq!(
            events(&mut s),
            vec![SessionEvent::ConnectionLost {
                unacknowledged: vec![9],
                reason: LostReason::Disconnected
            }]
        );
        s.disconnected(t0);
        assert!(events(&mut s).is_empty(), "reported once");
        s.connected(t0 + SECOND);
        assert!(matches!(
            written(&mut s)[..],
            [Pdu {
                body: Body::BindTransceiver(_),
                ..
            }]
        ));
    }

    #[test]
    fn bad_input_from_the_smsc() {
        let t0 = crate::runtime::clock::now();
        let mut s = bound(t0);
        // An unknown command: generic_nack RINVCMDID with its sequence, session stays bound.
        let mut query = vec![0, 0, 0, 0x14, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0x2A];
        query.extend_from_slice(b"ABC\0");
        s.on_bytes(&query, t0);
        assert_eq!(
            written(&mut s),
            vec![Pdu::generic_nack(42, CommandStatus::RINVCMDID)]
        );
        assert_eq!(s.state(), State::Bound);
        // A submit_sm to an ESME is refused the same way.
        feed(
            &mut s,
            Pdu::new(43, Body::SubmitSm(ShortMessage::default())),
            t0,
        );
        assert_eq!(
            written(&mut s),
            vec![Pdu::generic_nack(43, CommandStatus::RINVCMDID)]
        );
        // A response that matches nothing is counted and ignored.
        feed(
            &mut s,
            submit_resp(&Pdu::new(999, Body::EnquireLink), "x"),
            t0,
        );
        assert_eq!(s.counters().stray_responses, 1);
        // A length below the header loses framing: nack RINVCMDLEN, then the connection ends.
        s.submit(request(1, "a"), t0).unwrap();
        written(&mut s);
        s.on_bytes(&[0, 0, 0, 8, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 5], t0);
        assert_eq!(
            written(&mut s),
            vec![Pdu::generic_nack(5, CommandStatus::RINVCMDLEN)]
        );
        assert_eq!(
            events(&mut s),
            vec![SessionEvent::ConnectionLost {
                unacknowledged: vec![1],
                reason: LostReason::FramingLost
            }]
        );
    }

    #[test]
    fn a_malformed_submit_response_still_settles_the_part() {
        let t0 = crate::runtime::clock::now();
        let mut s = bound(t0);
        s.submit(request(1, "a"), t0).unwrap();
        let sm = written(&mut s).remove(0);
        // submit_sm_resp, ROK, message_id without its NUL.
        let mut bytes = vec![0, 0, 0, 19, 0x80, 0, 0, 4, 0, 0, 0, 0];
        bytes.extend_from_slice(&sm.sequence.to_be_bytes());
        bytes.extend_from_slice(b"abc");
        s.on_bytes(&bytes, t0);
        assert!(written(&mut s).is_empty(), "no nack for a response");
        assert_eq!(
            events(&mut s).last(),
            Some(&SessionEvent::Accepted {
                key: 1,
                message_ids: vec![String::new()]
            })
        );
        assert_eq!(s.counters().malformed_pdus, 1);
    }

    #[test]
    fn bytes_may_arrive_one_at_a_time() {
        let t0 = crate::runtime::clock::now();
        let mut s = bound(t0);
        let stream = [
            encode(&deliver(1, 0, "15550002222", b"HELP", vec![])).unwrap(),
            encode(&Pdu::new(2, Body::EnquireLink)).unwrap(),
        ]
        .concat();
        for b in &stream {
            s.on_bytes(std::slice::from_ref(b), t0);
        }
        assert_eq!(written(&mut s).len(), 2);
        assert!(matches!(
            &events(&mut s)[..],
            [SessionEvent::Inbound {
                keyword: Keyword::Help,
                ..
            }]
        ));
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..9).map(|_| b.next_delay(0.0).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        for _ in 0..100 {
            assert_eq!(b.next_delay(0.0), Duration::from_secs(60), "no overflow");
        }
        b.reset();
        assert_eq!(
            b.next_delay(1.0),
            Duration::from_millis(500),
            "full jitter halves"
        );
        assert_eq!(b.next_delay(0.5), Duration::from_millis(1500));
        assert_eq!(
            b.next_delay(7.0),
            Duration::from_secs(2),
            "jitter is clamped"
        );
        assert_eq!(b.next_delay(f64::NAN), Duration::from_secs(8));
    }

    #[test]
    fn the_password_never_prints() {
        let shown = format!("{:?}", config());
        assert!(!shown.contains("pw123"), "{shown}");
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic_and_the_buffer_stays_bounded(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..20),
        ) {
            let t0 = crate::runtime::clock::now();
            let mut cfg = config();
            cfg.max_pdu_bytes = 256;
            let mut s = bound_with(cfg, t0);
            s.submit(request(1, "hello"), t0).unwrap();
            for chunk in &chunks {
                s.on_bytes(chunk, t0);
                prop_assert!(s.rx.len() < 256);
                while s.poll_transmit().is_some() {}
                while s.poll_event().is_some() {}
            }
        }
    }
}
