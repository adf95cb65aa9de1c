//! SMPP 3.4 PDU codec: the 16-octet header, the bodies an ESME transceiver needs
//! (bind_transceiver, submit_sm, deliver_sm, enquire_link, unbind, their responses and
//! generic_nack), C-Octet strings with the 3.4 maximum lengths, and optional TLVs kept as raw
//! tag/value pairs.
//!
//! It owns bytes <-> typed PDUs and the command status names. It must not keep state, read a
//! clock or touch a socket: `decode` is a streaming framer over whatever the caller buffered, and
//! it never panics on any input (property tests in `tests`). Strings are read and written as
//! Latin-1 octets so every decoded PDU encodes back to the same bytes.
//!
//! Files: this one holds the PDU types, command statuses and field limits; `encoder` turns a
//! PDU into bytes; `decoder` frames and parses bytes into a PDU.

use std::fmt;

mod decoder;
mod encoder;

pub use decoder::decode;
pub use encoder::encode;

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

#[cfg(test)]
mod tests;
