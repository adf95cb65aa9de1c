//! SMPP 3.4 PDU codec: the 16-octet header, the bodies an ESME transceiver needs
//! (bind_transceiver, submit_sm, deliver_sm, enquire_link, unbind, their responses and
//! generic_nack), C-Octet strings with the 3.4 maximum lengths, and optional TLVs kept as raw
//! tag/value pairs.
//!
//! It owns bytes <-> typed PDUs and the command status names. It must not keep state, read a
//! clock or touch a socket: `decode` is a streaming framer over whatever the caller buffered, and
//! it never panics on any input (property tests below). Strings are read and written as
//! Latin-1 octets so every decoded PDU encodes back to the same bytes.

use std::fmt;

/// Octets in the header: command_length, command_id, command_status, sequence_number.
pub const HEADER_LEN: usize = 16;
/// A sane upper bound on one PDU: a submit_sm/deliver_sm with a 254-octet short message and a
/// generous TLV section is well under 2 KiB; 64 KiB leaves room for message_payload.
pub const DEFAULT_MAX_PDU_BYTES: usize = 64 * 1024;
/// SMPP 3.4 limit on `short_message` (sm_length is 0..=254).
pub const MAX_SHORT_MESSAGE: usize = 254;
/// interface_version for SMPP 3.4 in bind PDUs.
pub const INTERFACE_VERSION_34: u8 = 0x34;

/// command_id values (SMPP 3.4 §5.1.2.1).
pub mod command {
    pub const GENERIC_NACK: u32 = 0x8000_0000;
    pub const SUBMIT_SM: u32 = 0x0000_0004;
    pub const SUBMIT_SM_RESP: u32 = 0x8000_0004;
    pub const DELIVER_SM: u32 = 0x0000_0005;
    pub const DELIVER_SM_RESP: u32 = 0x8000_0005;
    pub const UNBIND: u32 = 0x0000_0006;
    pub const UNBIND_RESP: u32 = 0x8000_0006;
    pub const BIND_TRANSCEIVER: u32 = 0x0000_0009;
    pub const BIND_TRANSCEIVER_RESP: u32 = 0x8000_0009;
    pub const ENQUIRE_LINK: u32 = 0x0000_0015;
    pub const ENQUIRE_LINK_RESP: u32 = 0x8000_0015;
    /// Bit set in every response command_id.
    pub const RESPONSE_BIT: u32 = 0x8000_0000;
}

/// Optional parameter tags (SMPP 3.4 §5.3.2).
pub mod tag {
    pub const RECEIPTED_MESSAGE_ID: u16 = 0x001E;
    pub const SAR_MSG_REF_NUM: u16 = 0x020C;
    pub const SAR_TOTAL_SEGMENTS: u16 = 0x020E;
    pub const SAR_SEGMENT_SEQNUM: u16 = 0x020F;
    pub const SC_INTERFACE_VERSION: u16 = 0x0210;
    pub const NETWORK_ERROR_CODE: u16 = 0x0423;
    pub const MESSAGE_PAYLOAD: u16 = 0x0424;
    pub const MESSAGE_STATE: u16 = 0x0427;
}

/// A command_status value with its 3.4 name.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommandStatus(pub u32);

macro_rules! statuses {
    ($($name:ident = $value:expr),* $(,)?) => {
        impl CommandStatus {
            $(pub const $name: CommandStatus = CommandStatus($value);)*

            /// The 3.4 name (`ESME_RTHROTTLED`), or `UNKNOWN` for values the spec does not name
            /// (carrier-specific codes 0x400-0x4FF and reserved ranges).
            pub fn name(self) -> &'static str {
                match self.0 {
                    $($value => concat!("ESME_", stringify!($name)),)*
                    _ => "UNKNOWN",
                }
            }
        }
    };
}

statuses! {
    ROK = 0x00,
    RINVMSGLEN = 0x01,
    RINVCMDLEN = 0x02,
    RINVCMDID = 0x03,
    RINVBNDSTS = 0x04,
    RALYBND = 0x05,
    RINVPRTFLG = 0x06,
    RINVREGDLVFLG = 0x07,
    RSYSERR = 0x08,
    RINVSRCADR = 0x0A,
    RINVDSTADR = 0x0B,
    RINVMSGID = 0x0C,
    RBINDFAIL = 0x0D,
    RINVPASWD = 0x0E,
    RINVSYSID = 0x0F,
    RCANCELFAIL = 0x11,
    RREPLACEFAIL = 0x13,
    RMSGQFUL = 0x14,
    RINVSERTYP = 0x15,
    RINVNUMDESTS = 0x33,
    RINVDLNAME = 0x34,
    RINVDESTFLAG = 0x40,
    RINVSUBREP = 0x42,
    RINVESMCLASS = 0x43,
    RCNTSUBDL = 0x44,
    RSUBMITFAIL = 0x45,
    RINVSRCTON = 0x48,
    RINVSRCNPI = 0x49,
    RINVDSTTON = 0x50,
    RINVDSTNPI = 0x51,
    RINVSYSTYP = 0x53,
    RINVREPFLAG = 0x54,
    RINVNUMMSGS = 0x55,
    RTHROTTLED = 0x58,
    RINVSCHED = 0x61,
    RINVEXPIRY = 0x62,
    RINVDFTMSGID = 0x63,
    RX_T_APPN = 0x64,
    RX_P_APPN = 0x65,
    RX_R_APPN = 0x66,
    RQUERYFAIL = 0x67,
    RINVOPTPARSTREAM = 0xC0,
    ROPTPARNOTALLWD = 0xC1,
    RINVPARLEN = 0xC2,
    RMISSINGOPTPARAM = 0xC3,
    RINVOPTPARAMVAL = 0xC4,
    RDELIVERYFAILURE = 0xFE,
    RUNKNOWNERR = 0xFF,
}

impl CommandStatus {
    /// The carrier asks us to slow down: the message is not failed, it is sent again later.
    pub fn is_throttle(self) -> bool {
        self == Self::RTHROTTLED || self == Self::RMSGQFUL
    }
}

impl fmt::Debug for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(0x{:08X})", self.name(), self.0)
    }
}

impl fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// An optional parameter, kept as it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tlv {
    pub tag: u16,
    pub value: Vec<u8>,
}

/// The first TLV with `tag`, if any.
pub fn find_tlv(tlvs: &[Tlv], tag: u16) -> Option<&[u8]> {
    tlvs.iter()
        .find(|t| t.tag == tag)
        .map(|t| t.value.as_slice())
}

/// An SME address: type of number, numbering plan, digits (or alphanumeric sender).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Address {
    pub ton: u8,
    pub npi: u8,
    pub addr: String,
}

/// bind_transceiver body. The password never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Bind {
    pub system_id: String,
    pub password: String,
    pub system_type: String,
    pub interface_version: u8,
    pub addr_ton: u8,
    pub addr_npi: u8,
    pub address_range: String,
}

impl fmt::Debug for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bind")
            .field("system_id", &self.system_id)
            .field("password", &"****")
            .field("system_type", &self.system_type)
            .field("interface_version", &self.interface_version)
            .field("addr_ton", &self.addr_ton)
            .field("addr_npi", &self.addr_npi)
            .field("address_range", &self.address_range)
            .finish()
    }
}

/// bind_transceiver_resp body (empty system_id when the SMSC sent no body with an error).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BindResp {
    pub system_id: String,
    pub tlvs: Vec<Tlv>,
}

/// The common submit_sm / deliver_sm body (SMPP 3.4 §4.4.1 and §4.6.1 share the layout).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShortMessage {
    pub service_type: String,
    pub source: Address,
    pub destination: Address,
    pub esm_class: u8,
    pub protocol_id: u8,
    pub priority_flag: u8,
    pub schedule_delivery_time: String,
    pub validity_period: String,
    pub registered_delivery: u8,
    pub replace_if_present_flag: u8,
    pub data_coding: u8,
    pub sm_default_msg_id: u8,
    pub short_message: Vec<u8>,
    pub tlvs: Vec<Tlv>,
}

/// Every body this codec knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    BindTransceiver(Bind),
    BindTransceiverResp(BindResp),
    SubmitSm(ShortMessage),
    /// message_id (empty when the SMSC sent no body with an error status).
    SubmitSmResp {
        message_id: String,
    },
    DeliverSm(ShortMessage),
    /// message_id is unused in 3.4 and normally empty.
    DeliverSmResp {
        message_id: String,
    },
    EnquireLink,
    EnquireLinkResp,
    Unbind,
    UnbindResp,
    GenericNack,
}

impl Body {
    pub fn command_id(&self) -> u32 {
        match self {
            Body::BindTransceiver(_) => command::BIND_TRANSCEIVER,
            Body::BindTransceiverResp(_) => command::BIND_TRANSCEIVER_RESP,
            Body::SubmitSm(_) => command::SUBMIT_SM,
            Body::SubmitSmResp { .. } => command::SUBMIT_SM_RESP,
            Body::DeliverSm(_) => command::DELIVER_SM,
            Body::DeliverSmResp { .. } => command::DELIVER_SM_RESP,
            Body::EnquireLink => command::ENQUIRE_LINK,
            Body::EnquireLinkResp => command::ENQUIRE_LINK_RESP,
            Body::Unbind => command::UNBIND,
            Body::UnbindResp => command::UNBIND_RESP,
            Body::GenericNack => command::GENERIC_NACK,
        }
    }
}

/// One PDU: the header fields other than the length and id (which follow from the body).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdu {
    pub status: CommandStatus,
    pub sequence: u32,
    pub body: Body,
}

impl Pdu {
    /// A request or a successful response.
    pub fn new(sequence: u32, body: Body) -> Self {
        Pdu {
            status: CommandStatus::ROK,
            sequence,
            body,
        }
    }

    pub fn generic_nack(sequence: u32, status: CommandStatus) -> Self {
        Pdu {
            status,
            sequence,
            body: Body::GenericNack,
        }
    }
}

/// The 16-octet header as read from the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub command_length: u32,
    pub command_id: u32,
    pub command_status: CommandStatus,
    pub sequence: u32,
}

impl Header {
    pub fn is_response(&self) -> bool {
        self.command_id & command::RESPONSE_BIT != 0
    }
}

/// What was wrong inside a body whose header was fine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// The body ended before a required field.
    Truncated,
    /// Octets left after a body that takes no optional parameters.
    TrailingBytes,
    /// A C-Octet string without its NUL within the field's maximum length.
    UnterminatedString(&'static str),
    /// sm_length above 254 or past the end of the body.
    ShortMessageLength,
    /// A TLV header or length running past the end of the PDU.
    BadTlv,
}

/// Why `decode` could not produce a PDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The stream cannot be re-synchronised: the connection has to be dropped.
    #[error("command_length {length} is below the {HEADER_LEN}-octet header")]
    LengthTooSmall { length: u32, sequence: Option<u32> },
    /// The stream cannot be re-synchronised: the connection has to be dropped.
    #[error("command_length {length} is above the bound of {max} octets")]
    LengthTooLarge {
        length: u32,
        max: usize,
        sequence: Option<u32>,
    },
    /// A well-framed PDU with a command_id this codec does not handle; skip `length` octets.
    #[error("unknown command_id 0x{:08X} (sequence {})", .header.command_id, .header.sequence)]
    UnknownCommand { header: Header },
    /// A well-framed PDU whose body does not parse; skip `length` octets.
    #[error("malformed body of command_id 0x{:08X}: {reason:?}", .header.command_id)]
    Malformed { header: Header, reason: Malformed },
}

impl DecodeError {
    /// Octets to drop to reach the next PDU, or `None` when framing is lost.
    pub fn skip(&self) -> Option<usize> {
        match self {
            DecodeError::LengthTooSmall { .. } | DecodeError::LengthTooLarge { .. } => None,
            DecodeError::UnknownCommand { header } | DecodeError::Malformed { header, .. } => {
                Some(header.command_length as usize)
            }
        }
    }

    /// The generic_nack to answer with (status, sequence), per SMPP 3.4 §4.3: RINVCMDLEN for a
    /// bad length, RINVCMDID for an unknown command, RINVMSGLEN / RINVOPTPARSTREAM / RSYSERR for
    /// a bad body. `None` for a malformed *response*: nacking a response confuses SMSCs, and the
    /// header alone settles the request it answers.
    pub fn nack(&self) -> Option<Pdu> {
        let (status, sequence) = match *self {
            DecodeError::LengthTooSmall { sequence, .. }
            | DecodeError::LengthTooLarge { sequence, .. } => {
                (CommandStatus::RINVCMDLEN, sequence.unwrap_or(0))
            }
            DecodeError::UnknownCommand { header } => (CommandStatus::RINVCMDID, header.sequence),
            DecodeError::Malformed { header, reason } => {
                if header.is_response() {
                    return None;
                }
                let status = match reason {
                    Malformed::Truncated
                    | Malformed::TrailingBytes
                    | Malformed::ShortMessageLength => CommandStatus::RINVMSGLEN,
                    Malformed::BadTlv => CommandStatus::RINVOPTPARSTREAM,
                    Malformed::UnterminatedString(_) => CommandStatus::RSYSERR,
                };
                (status, header.sequence)
            }
        };
        Some(Pdu::generic_nack(sequence, status))
    }
}

/// Why `encode` refused a PDU (a local mistake: the caller passed a field the wire cannot hold).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{field} is {len} octets; SMPP 3.4 allows at most {max}")]
    FieldTooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{field} holds a NUL or a character outside Latin-1")]
    BadCharacter { field: &'static str },
    #[error("TLV 0x{tag:04X} value is {len} octets; the length field holds at most 65535")]
    TlvTooLong { tag: u16, len: usize },
}

// Field maxima in octets *including* the terminating NUL (SMPP 3.4 §4).
const SYSTEM_ID: (&str, usize) = ("system_id", 16);
const PASSWORD: (&str, usize) = ("password", 9);
const SYSTEM_TYPE: (&str, usize) = ("system_type", 13);
const ADDRESS_RANGE: (&str, usize) = ("address_range", 41);
const SERVICE_TYPE: (&str, usize) = ("service_type", 6);
const SOURCE_ADDR: (&str, usize) = ("source_addr", 21);
const DESTINATION_ADDR: (&str, usize) = ("destination_addr", 21);
const SCHEDULE_DELIVERY_TIME: (&str, usize) = ("schedule_delivery_time", 17);
const VALIDITY_PERIOD: (&str, usize) = ("validity_period", 17);
const MESSAGE_ID: (&str, usize) = ("message_id", 65);

/// Most characters a C-Octet field may carry (its maximum minus the NUL): what callers check
/// before building a PDU.
pub const MAX_ADDRESS_CHARS: usize = SOURCE_ADDR.1 - 1;

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

fn be_u32(buf: &[u8], at: usize) -> Option<u32> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    fn bind() -> Pdu {
        Pdu::new(
            1,
            Body::BindTransceiver(Bind {
                system_id: "trunx".into(),
                password: "secret".into(),
                system_type: "".into(),
                interface_version: INTERFACE_VERSION_34,
                addr_ton: 0,
                addr_npi: 0,
                address_range: "".into(),
            }),
        )
    }

    #[test]
    fn bind_transceiver_matches_the_3_4_layout() {
        // Hand-assembled from SMPP 3.4 §4.1.5: header, system_id "trunx\0", password
        // "secret\0", system_type "\0", interface_version 0x34, addr_ton 0, addr_npi 0,
        // address_range "\0".
        let expected = hex("00000022 00000009 00000000 00000001
             7472756e7800 73656372657400 00 34 00 00 00");
        let bytes = encode(&bind()).unwrap();
        assert_eq!(bytes, expected);
        assert_eq!(
            decode(&expected, DEFAULT_MAX_PDU_BYTES).unwrap(),
            Some((bind(), 34))
        );
    }

    #[test]
    fn submit_sm_with_udh_matches_the_3_4_layout() {
        let udh_and_text = hex("050003 2a 02 01 48 69"); // concat ref 0x2a, 2 parts, part 1, "Hi"
        let pdu = Pdu::new(
            7,
            Body::SubmitSm(ShortMessage {
                source: Address {
                    ton: 1,
                    npi: 1,
                    addr: "15550001111".into(),
                },
                destination: Address {
                    ton: 1,
                    npi: 1,
                    addr: "15550002222".into(),
                },
                esm_class: 0x40,
                registered_delivery: 1,
                data_coding: 0,
                short_message: udh_and_text,
                ..ShortMessage::default()
            }),
        );
        // SMPP 3.4 §4.4.1 in order: service_type "\0"; src ton/npi 01 01 + "15550001111\0";
        // dst ton/npi 01 01 + "15550002222\0"; esm_class 40; protocol_id 00; priority 00;
        // schedule "\0"; validity "\0"; registered_delivery 01; replace 00; data_coding 00;
        // sm_default_msg_id 00; sm_length 08; short_message.
        let expected = hex("0000003F 00000004 00000000 00000007
             00
             01 01 313535353030303131313100
             01 01 313535353030303232323200
             40 00 00 00 00 01 00 00 00
             08 0500032a02014869");
        assert_eq!(encode(&pdu).unwrap(), expected);
        assert_eq!(
            decode(&expected, DEFAULT_MAX_PDU_BYTES).unwrap(),
            Some((pdu, expected.len()))
        );
    }

    #[test]
    fn deliver_sm_keeps_tlvs() {
        let pdu = Pdu::new(
            9,
            Body::DeliverSm(ShortMessage {
                esm_class: 0x04,
                short_message: b"id:abc stat:DELIVRD".to_vec(),
                tlvs: vec![
                    Tlv {
                        tag: tag::RECEIPTED_MESSAGE_ID,
                        value: b"abc\0".to_vec(),
                    },
                    Tlv {
                        tag: tag::MESSAGE_STATE,
                        value: vec![2],
                    },
                    Tlv {
                        tag: tag::NETWORK_ERROR_CODE,
                        value: vec![3, 0, 0x22],
                    },
                ],
                ..ShortMessage::default()
            }),
        );
        let bytes = encode(&pdu).unwrap();
        // The TLV section is tag, length, value in network order.
        assert!(bytes.ends_with(&hex("001E 0004 61626300 0427 0001 02 0423 0003 030022")));
        let (back, used) = decode(&bytes, DEFAULT_MAX_PDU_BYTES).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(back, pdu);
    }

    #[test]
    fn framer_waits_for_the_whole_pdu_and_reports_consumed() {
        let a = encode(&Pdu::new(5, Body::EnquireLink)).unwrap();
        let b = encode(&Pdu::new(6, Body::UnbindResp)).unwrap();
        let stream = [a.clone(), b.clone()].concat();
        for cut in 0..a.len() {
            assert_eq!(decode(&stream[..cut], 1024).unwrap(), None, "cut at {cut}");
        }
        let (first, used) = decode(&stream, 1024).unwrap().unwrap();
        assert_eq!((first.sequence, used), (5, 16));
        let (second, used2) = decode(&stream[used..], 1024).unwrap().unwrap();
        assert_eq!((second.body, used2), (Body::UnbindResp, b.len()));
    }

    #[test]
    fn bad_lengths_lose_framing_and_nack_rinvcmdlen() {
        let short = hex("0000000F 00000015 00000000 00000003");
        let err = decode(&short, 1024).unwrap_err();
        assert_eq!(
            err,
            DecodeError::LengthTooSmall {
                length: 15,
                sequence: Some(3)
            }
        );
        assert_eq!(err.skip(), None);
        assert_eq!(
            err.nack(),
            Some(Pdu::generic_nack(3, CommandStatus::RINVCMDLEN))
        );
        // Detected from the length field alone, before the rest arrives.
        let huge = hex("00100000");
        assert!(matches!(
            decode(&huge, DEFAULT_MAX_PDU_BYTES),
            Err(DecodeError::LengthTooLarge {
                length: 0x0010_0000,
                sequence: None,
                ..
            })
        ));
    }

    #[test]
    fn unknown_command_is_skippable_and_nacks_rinvcmdid_with_its_sequence() {
        // query_sm (0x03) is valid SMPP but not something this ESME handles.
        let pdu = hex("00000014 00000003 00000000 0000002A 41424300");
        let err = decode(&pdu, 1024).unwrap_err();
        assert_eq!(err.skip(), Some(20));
        assert_eq!(
            err.nack(),
            Some(Pdu::generic_nack(42, CommandStatus::RINVCMDID))
        );
    }

    #[test]
    fn malformed_bodies_are_typed() {
        // enquire_link with a stray body octet.
        let trailing = hex("00000011 00000015 00000000 00000004 00");
        let err = decode(&trailing, 1024).unwrap_err();
        assert_eq!(
            err.nack(),
            Some(Pdu::generic_nack(4, CommandStatus::RINVMSGLEN))
        );
        // submit_sm_resp with a message_id missing its NUL: no nack for a response.
        let resp = hex("00000013 80000004 00000000 00000008 414243");
        let err = decode(&resp, 1024).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::Malformed {
                reason: Malformed::Truncated,
                ..
            }
        ));
        assert_eq!(err.nack(), None);
        // A system_id of 16 octets without NUL is longer than the field allows.
        let mut long = hex("00000000 00000009 00000000 00000001");
        long.extend_from_slice(&[b'a'; 20]);
        long.push(0);
        let n = long.len() as u32;
        long[..4].copy_from_slice(&n.to_be_bytes());
        assert!(matches!(
            decode(&long, 1024),
            Err(DecodeError::Malformed {
                reason: Malformed::UnterminatedString("system_id"),
                ..
            })
        ));
    }

    #[test]
    fn error_responses_may_come_without_a_body() {
        let pdu = hex("00000010 80000004 00000058 00000009");
        let (p, _) = decode(&pdu, 1024).unwrap().unwrap();
        assert_eq!(p.status, CommandStatus::RTHROTTLED);
        assert_eq!(
            p.body,
            Body::SubmitSmResp {
                message_id: String::new()
            }
        );
    }

    #[test]
    fn status_names() {
        assert_eq!(CommandStatus::RTHROTTLED.0, 0x58);
        assert_eq!(CommandStatus::RMSGQFUL.0, 0x14);
        assert_eq!(CommandStatus::RTHROTTLED.name(), "ESME_RTHROTTLED");
        assert_eq!(CommandStatus::RINVCMDID.name(), "ESME_RINVCMDID");
        assert_eq!(CommandStatus(0x400).name(), "UNKNOWN");
        assert!(CommandStatus::RMSGQFUL.is_throttle());
        assert!(!CommandStatus::RSYSERR.is_throttle());
    }

    #[test]
    fn encode_refuses_fields_the_wire_cannot_hold() {
        let mut p = bind();
        if let Body::BindTransceiver(b) = &mut p.body {
            b.password = "123456789".into();
        }
        assert_eq!(
            encode(&p),
            Err(EncodeError::FieldTooLong {
                field: "password",
                len: 9,
                max: 8
            })
        );
        let sm = Pdu::new(
            1,
            Body::SubmitSm(ShortMessage {
                short_message: vec![0; 255],
                ..ShortMessage::default()
            }),
        );
        assert!(matches!(
            encode(&sm),
            Err(EncodeError::FieldTooLong {
                field: "short_message",
                ..
            })
        ));
    }

    #[test]
    fn password_never_prints() {
        let shown = format!("{:?}", bind());
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("****"));
    }

    fn latin1(max: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(1u8..=255, 0..max)
            .prop_map(|v| v.into_iter().map(|b| b as char).collect())
    }

    fn tlvs() -> impl Strategy<Value = Vec<Tlv>> {
        proptest::collection::vec(
            (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..40))
                .prop_map(|(tag, value)| Tlv { tag, value }),
            0..4,
        )
    }

    fn short_message() -> impl Strategy<Value = ShortMessage> {
        (
            (
                latin1(6),
                any::<(u8, u8)>(),
                latin1(21),
                any::<(u8, u8)>(),
                latin1(21),
            ),
            any::<(u8, u8, u8, u8, u8, u8, u8)>(),
            (latin1(17), latin1(17)),
            proptest::collection::vec(any::<u8>(), 0..=254),
            tlvs(),
        )
            .prop_map(
                |((st, s, sa, d, da), f, (sched, valid), sm, tlvs)| ShortMessage {
                    service_type: st,
                    source: Address {
                        ton: s.0,
                        npi: s.1,
                        addr: sa,
                    },
                    destination: Address {
                        ton: d.0,
                        npi: d.1,
                        addr: da,
                    },
                    esm_class: f.0,
                    protocol_id: f.1,
                    priority_flag: f.2,
                    schedule_delivery_time: sched,
                    validity_period: valid,
                    registered_delivery: f.3,
                    replace_if_present_flag: f.4,
                    data_coding: f.5,
                    sm_default_msg_id: f.6,
                    short_message: sm,
                    tlvs,
                },
            )
    }

    fn any_pdu() -> impl Strategy<Value = Pdu> {
        let body = prop_oneof![
            (
                latin1(16),
                latin1(9),
                latin1(13),
                any::<(u8, u8, u8)>(),
                latin1(41)
            )
                .prop_map(
                    |(system_id, password, system_type, (v, t, n), address_range)| {
                        Body::BindTransceiver(Bind {
                            system_id,
                            password,
                            system_type,
                            interface_version: v,
                            addr_ton: t,
                            addr_npi: n,
                            address_range,
                        })
                    }
                ),
            (latin1(16), tlvs()).prop_map(|(system_id, tlvs)| Body::BindTransceiverResp(
                BindResp { system_id, tlvs }
            )),
            short_message().prop_map(Body::SubmitSm),
            short_message().prop_map(Body::DeliverSm),
            latin1(65).prop_map(|message_id| Body::SubmitSmResp { message_id }),
            latin1(65).prop_map(|message_id| Body::DeliverSmResp { message_id }),
            Just(Body::EnquireLink),
            Just(Body::EnquireLinkResp),
            Just(Body::Unbind),
            Just(Body::UnbindResp),
            Just(Body::GenericNack),
        ];
        (any::<u32>(), any::<u32>(), body).prop_filter_map(
            "fields within their maxima",
            |(status, sequence, body)| {
                let pdu = Pdu {
                    status: CommandStatus(status),
                    sequence,
                    body,
                };
                encode(&pdu).ok().map(|_| pdu)
            },
        )
    }

    proptest! {
        #[test]
        fn encode_decode_round_trips(pdu in any_pdu()) {
            let bytes = encode(&pdu).unwrap();
            let decoded = decode(&bytes, DEFAULT_MAX_PDU_BYTES).unwrap();
            // An error response with an empty body decodes as the default body: same bytes.
            let (back, used) = decoded.unwrap();
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(encode(&back).unwrap(), bytes);
        }

        #[test]
        fn random_buffers_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..300)) {
            check_decoded_consistency(&buf);
        }

        #[test]
        fn random_bodies_under_known_commands_never_panic(
            id in prop::sample::select(vec![
                command::BIND_TRANSCEIVER, command::BIND_TRANSCEIVER_RESP, command::SUBMIT_SM,
                command::SUBMIT_SM_RESP, command::DELIVER_SM, command::DELIVER_SM_RESP,
                command::ENQUIRE_LINK, command::UNBIND, command::GENERIC_NACK, 0x0000_0103,
            ]),
            status in prop::sample::select(vec![0u32, 0x58]),
            body in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            // A well-formed header in front of random octets reaches the body parsers.
            let mut buf = Vec::with_capacity(HEADER_LEN + body.len());
            buf.extend_from_slice(&((HEADER_LEN + body.len()) as u32).to_be_bytes());
            buf.extend_from_slice(&id.to_be_bytes());
            buf.extend_from_slice(&status.to_be_bytes());
            buf.extend_from_slice(&1u32.to_be_bytes());
            buf.extend_from_slice(&body);
            check_decoded_consistency(&buf);
        }

        #[test]
        fn mutated_valid_pdus_never_panic(
            pdu in any_pdu(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = encode(&pdu).unwrap();
            for (at, value) in edits {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            check_decoded_consistency(&bytes);
            let end = cut.index(bytes.len() + 1);
            check_decoded_consistency(&bytes[..end]);
        }
    }

    /// Whatever decodes re-encodes to the octets it consumed (Latin-1 strings keep this exact),
    /// and every skippable error reports a frame inside the declared bound.
    fn check_decoded_consistency(buf: &[u8]) {
        match decode(buf, 512) {
            Ok(Some((pdu, used))) => {
                assert!(used >= HEADER_LEN && used <= buf.len());
                if let Ok(again) = encode(&pdu) {
                    // Only an error response with an empty body may differ (it gains a body).
                    if !(pdu.status.0 != 0 && again.len() != used) {
                        assert_eq!(&again[..], &buf[..used]);
                    }
                }
            }
            Ok(None) => {
                assert!(buf.len() < 4 || (buf.len() as u64) < u64::from(be_u32(buf, 0).unwrap()))
            }
            Err(e) => {
                if let Some(skip) = e.skip() {
                    assert!((HEADER_LEN..=512).contains(&skip) && skip <= buf.len());
                }
                if let Some(nack) = e.nack() {
                    assert_eq!(nack.body, Body::GenericNack);
                    assert!(encode(&nack).is_ok());
                }
            }
        }
    }
}
