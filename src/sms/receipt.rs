//! SMSC delivery receipts: the de facto text format of SMPP 3.4 Appendix B
//! (`id:IIII sub:001 dlvrd:001 submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DELIVRD err:000
//! text:...`) and the receipt TLVs (receipted_message_id, message_state, network_error_code).
//!
//! It owns the mapping of a receipt to `delivered` / `failed` / not final, and the rule that
//! combines the receipts of a multi-part message. It must not match receipts to messages (the
//! store knows which message ids belong to which message) nor read any clock: the dates in the
//! text are kept as the SMSC wrote them.

use super::pdu::{Tlv, find_tlv, tag};

/// What a receipt says about a message (or one part of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptOutcome {
    /// DELIVRD: final.
    Delivered,
    /// EXPIRED, DELETED, UNDELIV, REJECTD, UNKNOWN: final.
    Failed,
    /// ACCEPTD, ENROUTE, or a state this module does not know: not final, keep waiting.
    Pending,
}

/// One parsed receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The id the SMSC gave in submit_sm_resp (TLV receipted_message_id preferred over `id:`).
    pub message_id: String,
    pub outcome: ReceiptOutcome,
    /// The state word as received (`DELIVRD`, or the TLV state's name), upper-case.
    pub stat: String,
    /// `err:` as written (often 3 digits), else the network_error_code TLV's error as decimal.
    pub error_code: Option<String>,
    pub submit_date: Option<String>,
    pub done_date: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("the receipt names no message id (no receipted_message_id TLV, no `id:` field)")]
    NoMessageId,
    #[error("the receipt has no state (no message_state TLV, no `stat:` field)")]
    NoState,
}

/// esm_class message-type bits (SMPP 3.4 §5.2.12, bits 5-2).
const ESM_TYPE_MASK: u8 = 0x3C;
const ESM_SMSC_RECEIPT: u8 = 0x04;
const ESM_INTERMEDIATE: u8 = 0x20;

/// True when a deliver_sm carries a receipt rather than a mobile-originated message.
pub fn is_receipt(esm_class: u8, tlvs: &[Tlv]) -> bool {
    let kind = esm_class & ESM_TYPE_MASK;
    kind == ESM_SMSC_RECEIPT
        || kind == ESM_INTERMEDIATE
        || find_tlv(tlvs, tag::RECEIPTED_MESSAGE_ID).is_some()
}

/// Maps a `stat:` word to an outcome (case-insensitive).
pub fn outcome_of_stat(stat: &str) -> ReceiptOutcome {
    match stat.to_ascii_uppercase().as_str() {
        "DELIVRD" | "DELIVERED" => ReceiptOutcome::Delivered,
        "EXPIRED" | "DELETED" | "UNDELIV" | "UNDELIVERABLE" | "REJECTD" | "REJECTED"
        | "UNKNOWN" => ReceiptOutcome::Failed,
        _ => ReceiptOutcome::Pending,
    }
}

/// message_state TLV values (SMPP 3.4 §5.2.28) as the text format's words.
fn stat_of_message_state(state: u8) -> &'static str {
    match state {
        1 => "ENROUTE",
        2 => "DELIVRD",
        3 => "EXPIRED",
        4 => "DELETED",
        5 => "UNDELIV",
        6 => "ACCEPTD",
        7 => "UNKNOWN",
        8 => "REJECTD",
        _ => "INVALID",
    }
}

/// Parses a receipt from the short_message text and the TLVs. Keys are case-insensitive and
/// every field is optional, but a message id and a state must come from somewhere.
pub fn parse_receipt(text: &str, tlvs: &[Tlv]) -> Result<Receipt, ReceiptError> {
    let fields = Fields::new(text);
    let tlv_id = find_tlv(tlvs, tag::RECEIPTED_MESSAGE_ID)
        .map(|v| {
            let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
            v[..end].iter().map(|&b| b as char).collect::<String>()
        })
        .filter(|id| !id.is_empty());
    let message_id = tlv_id
        .or_else(|| fields.get("id").map(str::to_string))
        .ok_or(ReceiptError::NoMessageId)?;
    let tlv_stat = find_tlv(tlvs, tag::MESSAGE_STATE)
        .and_then(|v| v.first())
        .map(|&s| stat_of_message_state(s).to_string());
    let stat = tlv_stat
        .or_else(|| fields.get("stat").map(str::to_ascii_uppercase))
        .ok_or(ReceiptError::NoState)?;
    // network_error_code: network type (1 octet) then the error (2 octets).
    let tlv_err = find_tlv(tlvs, tag::NETWORK_ERROR_CODE).and_then(|v| match v {
        [_, hi, lo] => Some(format!("{:03}", u16::from_be_bytes([*hi, *lo]))),
        _ => None,
    });
    let error_code = fields.get("err").map(str::to_string).or(tlv_err);
    Ok(Receipt {
        message_id,
        outcome: outcome_of_stat(&stat),
        stat,
        error_code,
        submit_date: fields.get("submit date").map(str::to_string),
        done_date: fields.get("done date").map(str::to_string),
    })
}

/// `key:value` fields of the text format, found case-insensitively at a word start.
struct Fields<'a> {
    text: &'a str,
    lower: String,
}

impl<'a> Fields<'a> {
    fn new(text: &'a str) -> Self {
        // ASCII lower-casing keeps byte offsets, so positions in `lower` index `text`.
        Fields {
            text,
            lower: text.to_ascii_lowercase(),
        }
    }

    /// The value after `key:` up to the next whitespace (`text:` is never asked for: it is
    /// free text and may hold anything, including other keys, so lookups stop before it).
    fn get(&self, key: &str) -> Option<&'a str> {
        let needle = format!("{key}:");
        let end_of_fields = self.find_key("text:").unwrap_or(self.lower.len());
        let at = self.find_key(&needle).filter(|&at| at < end_of_fields)?;
        let rest = &self.text[at + needle.len()..end_of_fields];
        let value = rest.split_whitespace().next().filter(|v| !v.is_empty())?;
        // A value directly followed by the next key without a space is not a value.
        Some(value)
    }

    fn find_key(&self, needle: &str) -> Option<usize> {
        let mut from = 0;
        while let Some(found) = self.lower.get(from..)?.find(needle) {
            let at = from + found;
            let at_word_start = at == 0
                || self.lower[..at]
                    .chars()
                    .next_back()
                    .is_some_and(char::is_whitespace);
            if at_word_start {
                return Some(at);
            }
            from = at + needle.len();
        }
        None
    }
}

/// The outcome of a multi-part message from its parts' latest receipts (`None`: no receipt
/// yet): failed as soon as any part failed, delivered when every part was delivered, else
/// pending. A handset cannot show a message with a part missing, so one failed part fails it.
pub fn combine_parts(parts: &[Option<ReceiptOutcome>]) -> ReceiptOutcome {
    if parts.contains(&Some(ReceiptOutcome::Failed)) {
        ReceiptOutcome::Failed
    } else if !parts.is_empty() && parts.iter().all(|p| *p == Some(ReceiptOutcome::Delivered)) {
        ReceiptOutcome::Delivered
    } else {
        ReceiptOutcome::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELIVERED: &str = "id:0123456789 sub:001 dlvrd:001 submit date:2611271405 \
                             done date:2611271406 stat:DELIVRD err:000 text:Hello there";

    #[test]
    fn the_appendix_b_format() {
        let r = parse_receipt(DELIVERED, &[]).unwrap();
        assert_eq!(
            r,
            Receipt {
                message_id: "0123456789".into(),
                outcome: ReceiptOutcome::Delivered,
                stat: "DELIVRD".into(),
                error_code: Some("000".into()),
                submit_date: Some("2611271405".into()),
                done_date: Some("2611271406".into()),
            }
        );
    }

    #[test]
    fn failures_carry_their_error_code() {
        for stat in ["EXPIRED", "DELETED", "UNDELIV", "REJECTD", "UNKNOWN"] {
            let text = format!("id:abc sub:001 dlvrd:000 stat:{stat} err:034 text:");
            let r = parse_receipt(&text, &[]).unwrap();
            assert_eq!(r.outcome, ReceiptOutcome::Failed, "{stat}");
            assert_eq!(r.error_code.as_deref(), Some("034"));
        }
        for stat in ["ACCEPTD", "ENROUTE", "SOMETHINGNEW"] {
            let r = parse_receipt(&format!("id:abc stat:{stat}"), &[]).unwrap();
            assert_eq!(r.outcome, ReceiptOutcome::Pending, "{stat}");
        }
    }

    #[test]
    fn tolerant_of_case_order_and_missing_fields() {
        let r = parse_receipt("ID:AbC99 Stat:delivrd", &[]).unwrap();
        assert_eq!(r.message_id, "AbC99"); // the id keeps its case
        assert_eq!(r.outcome, ReceiptOutcome::Delivered);
        assert_eq!(r.error_code, None);
        assert_eq!(r.submit_date, None);
        // "text:" is free text: keys inside it are not fields.
        let r = parse_receipt("id:1 stat:UNDELIV text:stat:DELIVRD id:2", &[]).unwrap();
        assert_eq!(
            (r.message_id.as_str(), r.outcome),
            ("1", ReceiptOutcome::Failed)
        );
        // "id:" must start a word ("msgid:" is not "id:").
        assert_eq!(
            parse_receipt("msgid:7 stat:DELIVRD", &[]),
            Err(ReceiptError::NoMessageId)
        );
        assert_eq!(parse_receipt("id:7", &[]), Err(ReceiptError::NoState));
        assert_eq!(parse_receipt("", &[]), Err(ReceiptError::NoMessageId));
    }

    #[test]
    fn tlvs_win_over_the_text() {
        let tlvs = [
            Tlv {
                tag: tag::RECEIPTED_MESSAGE_ID,
                value: b"tlv-id\0".to_vec(),
            },
            Tlv {
                tag: tag::MESSAGE_STATE,
                value: vec![5],
            },
            Tlv {
                tag: tag::NETWORK_ERROR_CODE,
                value: vec![3, 0x00, 0x22],
            },
        ];
        let r = parse_receipt("id:text-id stat:DELIVRD", &tlvs).unwrap();
        assert_eq!(r.message_id, "tlv-id");
        assert_eq!(
            (r.stat.as_str(), r.outcome),
            ("UNDELIV", ReceiptOutcome::Failed)
        );
        assert_eq!(r.error_code.as_deref(), Some("034"));
        // TLVs alone are enough.
        let r = parse_receipt("", &tlvs[..2]).unwrap();
        assert_eq!(r.message_id, "tlv-id");
    }

    #[test]
    fn receipt_detection() {
        assert!(is_receipt(0x04, &[]));
        assert!(is_receipt(0x20, &[]));
        assert!(!is_receipt(0x00, &[]));
        assert!(!is_receipt(0x40, &[])); // UDHI alone: an MO part
        let tlv = Tlv {
            tag: tag::RECEIPTED_MESSAGE_ID,
            value: b"x\0".to_vec(),
        };
        assert!(is_receipt(0x00, &[tlv]));
    }

    #[test]
    fn multi_part_rule() {
        use ReceiptOutcome::*;
        assert_eq!(
            combine_parts(&[Some(Delivered), Some(Delivered)]),
            Delivered
        );
        assert_eq!(combine_parts(&[Some(Delivered), None]), Pending);
        assert_eq!(combine_parts(&[Some(Delivered), Some(Pending)]), Pending);
        assert_eq!(combine_parts(&[None, Some(Failed)]), Failed);
        assert_eq!(combine_parts(&[]), Pending);
    }
}
