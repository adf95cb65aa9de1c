//! The SMPP 3.4 encoder: a typed [`Pdu`] into its bytes, command_length included, refusing
//! any field the wire cannot hold ([`EncodeError`]). It must not decode or keep state.

use super::{
    ADDRESS_RANGE, Body, DESTINATION_ADDR, EncodeError, MAX_SHORT_MESSAGE, MESSAGE_ID, PASSWORD,
    Pdu, SCHEDULE_DELIVERY_TIME, SERVICE_TYPE, SOURCE_ADDR, SYSTEM_ID, SYSTEM_TYPE, ShortMessage,
    Tlv, VALIDITY_PERIOD,
};

/// Serialises `pdu`, command_length included.
pub fn encode(pdu: &Pdu) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&pdu.body.command_id().to_be_bytes());
    out.extend_from_slice(&pdu.status.0.to_be_bytes());
    out.extend_from_slice(&pdu.sequence.to_be_bytes());
    match &pdu.body {
        Body::BindTransceiver(b) => {
            put_cstr(&mut out, &b.system_id, SYSTEM_ID)?;
            put_cstr(&mut out, &b.password, PASSWORD)?;
            put_cstr(&mut out, &b.system_type, SYSTEM_TYPE)?;
            out.extend_from_slice(&[b.interface_version, b.addr_ton, b.addr_npi]);
            put_cstr(&mut out, &b.address_range, ADDRESS_RANGE)?;
        }
        Body::BindTransceiverResp(r) => {
            put_cstr(&mut out, &r.system_id, SYSTEM_ID)?;
            put_tlvs(&mut out, &r.tlvs)?;
        }
        Body::SubmitSm(m) | Body::DeliverSm(m) => put_short_message(&mut out, m)?,
        Body::SubmitSmResp { message_id } | Body::DeliverSmResp { message_id } => {
            put_cstr(&mut out, message_id, MESSAGE_ID)?;
        }
        Body::EnquireLink
        | Body::EnquireLinkResp
        | Body::Unbind
        | Body::UnbindResp
        | Body::GenericNack => {}
    }
    let len = out.len() as u32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(out)
}

fn put_cstr(
    out: &mut Vec<u8>,
    s: &str,
    (field, max): (&'static str, usize),
) -> Result<(), EncodeError> {
    let len = s.chars().count();
    if len + 1 > max {
        return Err(EncodeError::FieldTooLong {
            field,
            len,
            max: max - 1,
        });
    }
    for c in s.chars() {
        let code = c as u32;
        if code == 0 || code > 0xFF {
            return Err(EncodeError::BadCharacter { field });
        }
        out.push(code as u8);
    }
    out.push(0);
    Ok(())
}

fn put_tlvs(out: &mut Vec<u8>, tlvs: &[Tlv]) -> Result<(), EncodeError> {
    for t in tlvs {
        let len = u16::try_from(t.value.len()).map_err(|_| EncodeError::TlvTooLong {
            tag: t.tag,
            len: t.value.len(),
        })?;
        out.extend_from_slice(&t.tag.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&t.value);
    }
    Ok(())
}

fn put_short_message(out: &mut Vec<u8>, m: &ShortMessage) -> Result<(), EncodeError> {
    put_cstr(out, &m.service_type, SERVICE_TYPE)?;
    out.extend_from_slice(&[m.source.ton, m.source.npi]);
    put_cstr(out, &m.source.addr, SOURCE_ADDR)?;
    out.extend_from_slice(&[m.destination.ton, m.destination.npi]);
    put_cstr(out, &m.destination.addr, DESTINATION_ADDR)?;
    out.extend_from_slice(&[m.esm_class, m.protocol_id, m.priority_flag]);
    put_cstr(out, &m.schedule_delivery_time, SCHEDULE_DELIVERY_TIME)?;
    put_cstr(out, &m.validity_period, VALIDITY_PERIOD)?;
    out.extend_from_slice(&[
        m.registered_delivery,
        m.replace_if_present_flag,
        m.data_coding,
        m.sm_default_msg_id,
    ]);
    if m.short_message.len() > MAX_SHORT_MESSAGE {
        return Err(EncodeError::FieldTooLong {
            field: "short_message",
            len: m.short_message.len(),
            max: MAX_SHORT_MESSAGE,
        });
    }
    out.push(m.short_message.len() as u8);
    out.extend_from_slice(&m.short_message);
    put_tlvs(out, &m.tlvs)
}
