//! The SMSC's deliver_sm in an SMPP session: acknowledging it, and turning it into a delivery
//! receipt or an inbound text (with its keyword). It must not touch the submit window.

use super::window::TON_INTERNATIONAL;
use super::{Session, SessionEvent, State};
use crate::sms::keywords;
use crate::sms::pdu::{self, Address, Body, CommandStatus, Pdu, ShortMessage, tag};
use crate::sms::receipt;
use crate::sms::text;

impl Session {
    pub(super) fn handle_deliver(&mut self, sequence: u32, sm: ShortMessage) {
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
}

/// An inbound address as the rest of trunx writes numbers: `+` for international ones.
fn display_address(a: &Address) -> String {
    if a.ton == TON_INTERNATIONAL && !a.addr.starts_with('+') {
        format!("+{}", a.addr)
    } else {
        a.addr.clone()
    }
}
