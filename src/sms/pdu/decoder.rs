//! The SMPP 3.4 decoder: a streaming framer over buffered bytes and the body parsers, with a
//! bounds-checked reader. It never panics on any input and must not encode or keep state
//! between calls.

use super::{
    ADDRESS_RANGE, Address, Bind, BindResp, Body, CommandStatus, DESTINATION_ADDR, DecodeError,
    HEADER_LEN, Header, MAX_SHORT_MESSAGE, MESSAGE_ID, Malformed, PASSWORD, Pdu,
    SCHEDULE_DELIVERY_TIME, SERVICE_TYPE, SOURCE_ADDR, SYSTEM_ID, SYSTEM_TYPE, ShortMessage, Tlv,
    VALIDITY_PERIOD, command,
};

/// Streaming framer: `Ok(None)` until `buf` holds a whole PDU, then the PDU and the octets it
/// took. `max_pdu_bytes` bounds command_length. Never panics.
pub fn decode(buf: &[u8], max_pdu_bytes: usize) -> Result<Option<(Pdu, usize)>, DecodeError> {
    let Some(length) = be_u32(buf, 0) else {
        return Ok(None);
    };
    let sequence = be_u32(buf, 12);
    if (length as usize) < HEADER_LEN {
        return Err(DecodeError::LengthTooSmall { length, sequence });
    }
    if length as usize > max_pdu_bytes {
        return Err(DecodeError::LengthTooLarge {
            length,
            max: max_pdu_bytes,
            sequence,
        });
    }
    let length_usize = length as usize;
    if buf.len() < length_usize {
        return Ok(None);
    }
    let header = Header {
        command_length: length,
        command_id: be_u32(buf, 4).unwrap_or_default(),
        command_status: CommandStatus(be_u32(buf, 8).unwrap_or_default()),
        sequence: sequence.unwrap_or_default(),
    };
    let mut r = Reader {
        buf: &buf[HEADER_LEN..length_usize],
        pos: 0,
    };
    let body = decode_body(&header, &mut r)?;
    Ok(Some((
        Pdu {
            status: header.command_status,
            sequence: header.sequence,
            body,
        },
        length_usize,
    )))
}

fn decode_body(header: &Header, r: &mut Reader<'_>) -> Result<Body, DecodeError> {
    let malformed = |reason| DecodeError::Malformed {
        header: *header,
        reason,
    };
    // SMPP 3.4 §3.3: a response with a non-zero status may come without a body.
    let empty_error_resp = header.is_response() && header.command_status.0 != 0 && r.is_empty();
    let body = match header.command_id {
        command::BIND_TRANSCEIVER => Body::BindTransceiver(Bind {
            system_id: r.cstr(SYSTEM_ID).map_err(malformed)?,
            password: r.cstr(PASSWORD).map_err(malformed)?,
            system_type: r.cstr(SYSTEM_TYPE).map_err(malformed)?,
            interface_version: r.u8().map_err(malformed)?,
            addr_ton: r.u8().map_err(malformed)?,
            addr_npi: r.u8().map_err(malformed)?,
            address_range: r.cstr(ADDRESS_RANGE).map_err(malformed)?,
        }),
        command::BIND_TRANSCEIVER_RESP if empty_error_resp => {
            Body::BindTransceiverResp(BindResp::default())
        }
        command::BIND_TRANSCEIVER_RESP => Body::BindTransceiverResp(BindResp {
            system_id: r.cstr(SYSTEM_ID).map_err(malformed)?,
            tlvs: r.tlvs().map_err(malformed)?,
        }),
        command::SUBMIT_SM => Body::SubmitSm(r.short_message().map_err(malformed)?),
        command::DELIVER_SM => Body::DeliverSm(r.short_message().map_err(malformed)?),
        command::SUBMIT_SM_RESP if empty_error_resp => Body::SubmitSmResp {
            message_id: String::new(),
        },
        command::SUBMIT_SM_RESP => Body::SubmitSmResp {
            message_id: r.cstr(MESSAGE_ID).map_err(malformed)?,
        },
        command::DELIVER_SM_RESP if empty_error_resp => Body::DeliverSmResp {
            message_id: String::new(),
        },
        command::DELIVER_SM_RESP => Body::DeliverSmResp {
            message_id: r.cstr(MESSAGE_ID).map_err(malformed)?,
        },
        command::ENQUIRE_LINK => Body::EnquireLink,
        command::ENQUIRE_LINK_RESP => Body::EnquireLinkResp,
        command::UNBIND => Body::Unbind,
        command::UNBIND_RESP => Body::UnbindResp,
        command::GENERIC_NACK => Body::GenericNack,
        _ => return Err(DecodeError::UnknownCommand { header: *header }),
    };
    if !r.is_empty() {
        return Err(malformed(Malformed::TrailingBytes));
    }
    Ok(body)
}

pub(super) fn be_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at + 4)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// Bounds-checked cursor over one PDU body.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn u8(&mut self) -> Result<u8, Malformed> {
        let b = *self.buf.get(self.pos).ok_or(Malformed::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8], Malformed> {
        let end = self.pos.checked_add(n).ok_or(Malformed::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(Malformed::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    /// A C-Octet string of at most `max` octets including its NUL, read as Latin-1.
    fn cstr(&mut self, (field, max): (&'static str, usize)) -> Result<String, Malformed> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let window = &rest[..rest.len().min(max)];
        let Some(nul) = window.iter().position(|&b| b == 0) else {
            // Ran out of body before the field could end, or the field is simply too long.
            return Err(if rest.len() < max {
                Malformed::Truncated
            } else {
                Malformed::UnterminatedString(field)
            });
        };
        let s = window[..nul].iter().map(|&b| b as char).collect();
        self.pos += nul + 1;
        Ok(s)
    }

    fn short_message(&mut self) -> Result<ShortMessage, Malformed> {
        let service_type = self.cstr(SERVICE_TYPE)?;
        let source = Address {
            ton: self.u8()?,
            npi: self.u8()?,
            addr: self.cstr(SOURCE_ADDR)?,
        };
        let destination = Address {
            ton: self.u8()?,
            npi: self.u8()?,
            addr: self.cstr(DESTINATION_ADDR)?,
        };
        let esm_class = self.u8()?;
        let protocol_id = self.u8()?;
        let priority_flag = self.u8()?;
        let schedule_delivery_time = self.cstr(SCHEDULE_DELIVERY_TIME)?;
        let validity_period = self.cstr(VALIDITY_PERIOD)?;
        let registered_delivery = self.u8()?;
        let replace_if_present_flag = self.u8()?;
        let data_coding = self.u8()?;
        let sm_default_msg_id = self.u8()?;
        let sm_length = self.u8()? as usize;
        if sm_length > MAX_SHORT_MESSAGE {
            return Err(Malformed::ShortMessageLength);
        }
        let short_message = self
            .bytes(sm_length)
            .map_err(|_| Malformed::ShortMessageLength)?
            .to_vec();
        let tlvs = self.tlvs()?;
        Ok(ShortMessage {
            service_type,
            source,
            destination,
            esm_class,
            protocol_id,
            priority_flag,
            schedule_delivery_time,
            validity_period,
            registered_delivery,
            replace_if_present_flag,
            data_coding,
            sm_default_msg_id,
            short_message,
            tlvs,
        })
    }

    /// TLVs to the end of the body.
    fn tlvs(&mut self) -> Result<Vec<Tlv>, Malformed> {
        let mut tlvs = Vec::new();
        while !self.is_empty() {
            let head = self.bytes(4).map_err(|_| Malformed::BadTlv)?;
            let tag = u16::from_be_bytes([head[0], head[1]]);
            let len = u16::from_be_bytes([head[2], head[3]]) as usize;
            let value = self.bytes(len).map_err(|_| Malformed::BadTlv)?.to_vec();
            tlvs.push(Tlv { tag, value });
        }
        Ok(tlvs)
    }
}
