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
//!
//! Files: this one holds the session's state and its connection lifecycle (bind, keepalive,
//! timeouts, unbind, request/response bookkeeping); `types` the public settings, events and
//! errors; `window` the submit window (message parts, throttling, submit_sm results);
//! `deliver` the SMSC's deliver_sm (receipts and inbound texts).

use std::collections::VecDeque;
use std::time::Instant;

use super::pdu::{
    self, Address, Bind, Body, CommandStatus, DecodeError, INTERFACE_VERSION_34, Pdu,
};

mod deliver;
mod types;
mod window;

pub use types::{
    Backoff, LostReason, SessionConfig, SessionCounters, SessionEvent, SmppPassword, State,
    SubmitRejected, SubmitRequest,
};

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

#[cfg(test)]
mod tests;
