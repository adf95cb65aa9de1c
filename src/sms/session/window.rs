//! The submit window of an SMPP session: taking a message (address checks, encoding into
//! parts), sending parts while the window has room and no throttle pause holds, and settling
//! each submit_sm_resp (accepted, throttled and handed back, or failed). It must not handle
//! binding, keepalive or inbound PDUs.

use std::time::Instant;

use super::{Awaiting, Message, Session, SessionEvent, State, SubmitRejected, SubmitRequest};
use crate::sms::pdu::{Address, Body, CommandStatus, MAX_ADDRESS_CHARS, ShortMessage};
use crate::sms::text;

impl Session {
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

    pub(super) fn has_unsent_parts(&self) -> bool {
        !self.resend.is_empty() || self.messages.iter().any(|m| m.next_part < m.parts.len())
    }

    /// Sends waiting parts while the window has room and no throttle pause holds.
    pub(super) fn pump(&mut self, now: Instant) {
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

    pub(super) fn handle_submit_result(
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
}

pub(super) const TON_INTERNATIONAL: u8 = 1;
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
