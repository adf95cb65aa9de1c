//! Message text <-> SMS octets: GSM 03.38 default alphabet with its extension table (3GPP TS
//! 23.038 §6.2.1), septet packing, UCS-2 (UTF-16BE), and the split into concatenated parts with
//! an 8-bit-reference concatenation UDH (3GPP TS 23.040 §9.2.3.24.1).
//!
//! It owns the choice of data_coding, the part limits and the byte layout of `short_message`.
//! It must not decide the reference number (the caller passes it in, so this stays pure) nor
//! know anything about PDUs or sessions.
//!
//! GSM 7-bit in SMPP: the 3.4 spec does not say whether `short_message` carries septets packed
//! or one per octet, and SMSCs differ. [`Gsm7Layout::Unpacked`] (one septet per octet) is the
//! common SMPP default (Kannel, Cloudhopper, most carrier guides) and what [`encode_message`]
//! uses; [`Gsm7Layout::Packed`] packs septets as on the air interface, with the fill bits that
//! align the first septet after a UDH (1 bit after the 6-octet concat UDH).

/// data_coding for the SMSC default alphabet (GSM 03.38 here).
pub const DATA_CODING_GSM7: u8 = 0x00;
/// data_coding for IA5 (ASCII).
pub const DATA_CODING_IA5: u8 = 0x01;
/// data_coding for Latin-1 (ISO-8859-1).
pub const DATA_CODING_LATIN1: u8 = 0x03;
/// data_coding for UCS-2 (UTF-16BE here, so emoji travel as surrogate pairs).
pub const DATA_CODING_UCS2: u8 = 0x08;
/// esm_class bit: short_message starts with a user data header.
pub const ESM_CLASS_UDHI: u8 = 0x40;
/// The spec's limit on one message, in characters (Unicode scalar values).
pub const MAX_CHARACTERS: usize = 1600;

/// Septets in one GSM 7-bit message without a UDH.
pub const GSM7_SINGLE: usize = 160;
/// Septets per part after a 6-octet concatenation UDH (7 septets of the 160 go to the UDH).
pub const GSM7_PER_PART: usize = 153;
/// UTF-16 units in one UCS-2 message without a UDH (140 octets).
pub const UCS2_SINGLE: usize = 70;
/// UTF-16 units per part after a 6-octet UDH ((140 - 6) / 2).
pub const UCS2_PER_PART: usize = 67;
/// Length of the concatenation UDH this module writes (UDHL + IEI + IEDL + ref + total + seq).
pub const CONCAT_UDH_LEN: usize = 6;

const ESCAPE: u8 = 0x1B;

/// GSM 03.38 default alphabet, indexed by septet. 0x1B is the escape to the extension table.
const GSM_BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1B}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// GSM 03.38 extension table: (septet after the escape, character).
const GSM_EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{0C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// How GSM 7-bit septets sit in `short_message`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Gsm7Layout {
    /// One septet per octet (the usual SMPP convention).
    #[default]
    Unpacked,
    /// Eight septets in seven octets, as on the air interface.
    Packed,
}

/// A message ready for submit_sm: one `short_message` per part, UDH included.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedMessage {
    pub data_coding: u8,
    pub parts: Vec<Vec<u8>>,
    /// 0x40 (UDHI) when the message has several parts, else 0.
    pub esm_class: u8,
    /// Unicode scalar values in the text (what the 1600 limit counts).
    pub characters: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("the message is empty")]
    Empty,
    #[error("the message has {characters} characters; at most {max} are allowed")]
    TooLong { characters: usize, max: usize },
    #[error("the message needs {parts} parts; a concatenation header counts at most 255")]
    TooManyParts { parts: usize },
    #[error("data_coding 0x{0:02X} is not text this module decodes")]
    UnsupportedDataCoding(u8),
    #[error("the user data header runs past the end of short_message")]
    BadUdh,
}

/// One GSM character: its septets (1, or 2 for an extension character with its escape).
fn gsm_septets(c: char) -> Option<([u8; 2], usize)> {
    if c != '\u{1B}'
        && let Some(i) = GSM_BASIC.iter().position(|&g| g == c)
    {
        return Some(([i as u8, 0], 1));
    }
    GSM_EXTENSION
        .iter()
        .find(|&&(_, g)| g == c)
        .map(|&(code, _)| ([ESCAPE, code], 2))
}

/// True when every character of `text` is in the GSM 03.38 default or extension table.
pub fn is_gsm7(text: &str) -> bool {
    text.chars().all(|c| gsm_septets(c).is_some())
}

/// [`encode_message_with`] in the default (unpacked) GSM layout.
pub fn encode_message(text: &str, reference: u8) -> Result<EncodedMessage, TextError> {
    encode_message_with(text, reference, Gsm7Layout::Unpacked)
}

/// Chooses GSM 7-bit when every character is representable, else UCS-2; splits into parts
/// (160/153 septets or 70/67 UTF-16 units) without separating an escape from its extension
/// character or the halves of a surrogate pair; `reference` goes in every part's UDH.
pub fn encode_message_with(
    text: &str,
    reference: u8,
    layout: Gsm7Layout,
) -> Result<EncodedMessage, TextError> {
    let characters = text.chars().count();
    if characters == 0 {
        return Err(TextError::Empty);
    }
    if characters > MAX_CHARACTERS {
        return Err(TextError::TooLong {
            characters,
            max: MAX_CHARACTERS,
        });
    }
    let gsm: Option<Vec<([u8; 2], usize)>> = text.chars().map(gsm_septets).collect();
    let (data_coding, units, single, per_part): (u8, Vec<Vec<u8>>, usize, usize) = match gsm {
        Some(chars) => {
            // A unit is one character's septets: never split across parts.
            let units = chars.iter().map(|(s, n)| s[..*n].to_vec()).collect();
            (DATA_CODING_GSM7, units, GSM7_SINGLE, GSM7_PER_PART)
        }
        None => {
            let units = text
                .chars()
                .map(|c| {
                    let mut buf = [0u16; 2];
                    c.encode_utf16(&mut buf)
                        .iter()
                        .flat_map(|u| u.to_be_bytes())
                        .collect()
                })
                .collect();
            (DATA_CODING_UCS2, units, UCS2_SINGLE, UCS2_PER_PART)
        }
    };
    // Septets for GSM, UTF-16 units (two octets) for UCS-2.
    let weight = |unit: &Vec<u8>| {
        if data_coding == DATA_CODING_UCS2 {
            unit.len() / 2
        } else {
            unit.len()
        }
    };
    let total: usize = units.iter().map(weight).sum();
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    if total <= single {
        chunks.push(units.concat());
    } else {
        let mut current = Vec::new();
        let mut used = 0;
        for unit in &units {
            let w = weight(unit);
            if used + w > per_part {
                chunks.push(std::mem::take(&mut current));
                used = 0;
            }
            current.extend_from_slice(unit);
            used += w;
        }
        chunks.push(current);
    }
    let count = chunks.len();
    if count > 255 {
        return Err(TextError::TooManyParts { parts: count });
    }
    let multipart = count > 1;
    let parts = chunks
        .into_iter()
        .enumerate()
        .map(|(i, payload)| {
            let mut sm = Vec::with_capacity(CONCAT_UDH_LEN + payload.len());
            if multipart {
                sm.extend_from_slice(&[0x05, 0x00, 0x03, reference, count as u8, i as u8 + 1]);
            }
            if data_coding == DATA_CODING_GSM7 && layout == Gsm7Layout::Packed {
                sm.extend_from_slice(&pack_septets(&payload, fill_bits(sm.len())));
            } else {
                sm.extend_from_slice(&payload);
            }
            sm
        })
        .collect();
    Ok(EncodedMessage {
        data_coding,
        parts,
        esm_class: if multipart { ESM_CLASS_UDHI } else { 0 },
        characters,
    })
}

/// Bits of padding after a UDH of `udh_octets` so the first septet starts on a septet boundary.
pub fn fill_bits(udh_octets: usize) -> usize {
    (7 - (udh_octets * 8) % 7) % 7
}

/// Packs septets LSB first after `fill` padding bits. When the last octet has exactly 7 spare
/// bits, they hold a CR (3GPP TS 23.038 §6.1.2.3.1) so a reader does not see a trailing '@'.
pub fn pack_septets(septets: &[u8], fill: usize) -> Vec<u8> {
    let bits = fill + septets.len() * 7;
    let mut out = vec![0u8; bits.div_ceil(8)];
    for (i, &s) in septets.iter().enumerate() {
        put_septet(&mut out, fill + i * 7, s);
    }
    if out.len() * 8 - bits == 7 {
        put_septet(&mut out, bits, b'\r');
    }
    out
}

fn put_septet(out: &mut [u8], at_bit: usize, septet: u8) {
    let value = u16::from(septet & 0x7F) << (at_bit % 8);
    if let Some(first) = out.get_mut(at_bit / 8) {
        *first |= value as u8;
    }
    if let Some(next) = out.get_mut(at_bit / 8 + 1) {
        *next |= (value >> 8) as u8;
    }
}

/// Unpacks every whole septet after `fill` bits; a CR filling the last 7 spare bits is dropped.
pub fn unpack_septets(octets: &[u8], fill: usize) -> Vec<u8> {
    let bits = (octets.len() * 8).saturating_sub(fill);
    let count = bits / 7;
    let mut out: Vec<u8> = (0..count)
        .map(|i| {
            let at = fill + i * 7;
            let lo = u16::from(octets[at / 8]);
            let hi = u16::from(octets.get(at / 8 + 1).copied().unwrap_or(0));
            (((hi << 8 | lo) >> (at % 8)) & 0x7F) as u8
        })
        .collect();
    // Septets ending exactly on the last bit with a CR are 3GPP's padding for 7 spare bits. (A
    // text whose own last character is a CR on that boundary loses it: the 23.038 "CR CR" rule
    // is not applied; trunx never sends such a text, and inbound packed GSM is rare.)
    if bits.is_multiple_of(7) && out.last() == Some(&b'\r') {
        out.pop();
    }
    out
}

/// GSM septets (one per element) to text; unknown extension codes fall back to the basic
/// table as 23.038 asks; octets above 0x7F become U+FFFD.
pub fn gsm_to_string(septets: &[u8]) -> String {
    let mut out = String::with_capacity(septets.len());
    let mut iter = septets.iter();
    while let Some(&s) = iter.next() {
        if s == ESCAPE {
            // An escape as the last septet has nothing to extend: dropped.
            if let Some(&code) = iter.next() {
                match GSM_EXTENSION.iter().find(|&&(c, _)| c == code) {
                    Some(&(_, ch)) => out.push(ch),
                    None => out.push(basic(code)),
                }
            }
        } else {
            out.push(basic(s));
        }
    }
    out
}

fn basic(septet: u8) -> char {
    match GSM_BASIC.get(septet as usize) {
        Some(&'\u{1B}') => ' ',
        Some(&c) => c,
        None => char::REPLACEMENT_CHARACTER,
    }
}

/// Text of an inbound (MO) short message: strips a UDH when `esm_class` has UDHI, then decodes
/// GSM 7-bit (in `layout`), IA5, Latin-1 or UCS-2. Bad UTF-16 becomes U+FFFD.
pub fn decode_message(
    data_coding: u8,
    esm_class: u8,
    short_message: &[u8],
    layout: Gsm7Layout,
) -> Result<String, TextError> {
    let udh_octets = if esm_class & ESM_CLASS_UDHI != 0 {
        let udhl = *short_message.first().ok_or(TextError::BadUdh)? as usize;
        if 1 + udhl > short_message.len() {
            return Err(TextError::BadUdh);
        }
        1 + udhl
    } else {
        0
    };
    let body = &short_message[udh_octets..];
    match data_coding {
        // 0xF0-0xF3: message class coding group with the default alphabet.
        DATA_CODING_GSM7 | 0xF0..=0xF3 => Ok(match layout {
            Gsm7Layout::Unpacked => gsm_to_string(body),
            Gsm7Layout::Packed => {
                // Septets continue from the UDH's bit position, after the fill bits.
                let start_bit = udh_octets * 8 + fill_bits(udh_octets);
                let septets = unpack_septets(&short_message[start_bit / 8..], start_bit % 8);
                gsm_to_string(&septets)
            }
        }),
        DATA_CODING_IA5 | DATA_CODING_LATIN1 => Ok(body.iter().map(|&b| b as char).collect()),
        DATA_CODING_UCS2 => {
            let units = body.chunks(2).map(|p| match p {
                [a, b] => u16::from_be_bytes([*a, *b]),
                _ => 0xFFFD,
            });
            Ok(char::decode_utf16(units)
                .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect())
        }
        other => Err(TextError::UnsupportedDataCoding(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn udh(part: &[u8]) -> [u8; 6] {
        part[..6].try_into().unwrap()
    }

    #[test]
    fn plain_ascii_is_one_gsm_part() {
        let m = encode_message("Hello, world!", 1).unwrap();
        assert_eq!(m.data_coding, DATA_CODING_GSM7);
        assert_eq!(m.esm_class, 0);
        assert_eq!(m.parts, vec![b"Hello, world!".to_vec()]);
        assert_eq!(m.characters, 13);
    }

    #[test]
    fn gsm_specials_map_to_their_septets() {
        let m = encode_message("@£$¥èÄ_€[", 1).unwrap();
        assert_eq!(
            m.parts[0],
            vec![
                0x00, 0x01, 0x02, 0x03, 0x04, 0x5B, 0x11, 0x1B, 0x65, 0x1B, 0x3C
            ]
        );
        assert_eq!(gsm_to_string(&m.parts[0]), "@£$¥èÄ_€[");
    }

    #[test]
    fn single_part_limits_are_160_septets_and_70_units() {
        let gsm160 = "a".repeat(160);
        assert_eq!(encode_message(&gsm160, 1).unwrap().parts.len(), 1);
        let gsm161 = "a".repeat(161);
        let m = encode_message(&gsm161, 9).unwrap();
        assert_eq!(m.parts.len(), 2);
        assert_eq!(m.esm_class, ESM_CLASS_UDHI);
        assert_eq!(udh(&m.parts[0]), [0x05, 0x00, 0x03, 9, 2, 1]);
        assert_eq!(udh(&m.parts[1]), [0x05, 0x00, 0x03, 9, 2, 2]);
        assert_eq!(m.parts[0].len(), 6 + 153);
        assert_eq!(m.parts[1].len(), 6 + 8);
        // 80 extension characters are 160 septets: still one part; one more needs two parts.
        assert_eq!(encode_message(&"€".repeat(80), 1).unwrap().parts.len(), 1);
        assert_eq!(
            encode_message(&("€".repeat(80) + "a"), 1)
                .unwrap()
                .parts
                .len(),
            2
        );

        let ucs70 = "я".repeat(70);
        let m = encode_message(&ucs70, 1).unwrap();
        assert_eq!(
            (m.data_coding, m.parts.len(), m.parts[0].len()),
            (DATA_CODING_UCS2, 1, 140)
        );
        let m = encode_message(&"я".repeat(71), 1).unwrap();
        assert_eq!(m.parts.len(), 2);
        assert_eq!(m.parts[0].len(), 6 + 134);
        assert_eq!(m.parts[1].len(), 6 + 8);
    }

    #[test]
    fn an_extension_character_is_never_split_from_its_escape() {
        // 152 'a' then '€': the escape would be septet 153 and the code septet 154.
        let text = "a".repeat(152) + "€" + &"b".repeat(10);
        let m = encode_message(&text, 1).unwrap();
        assert_eq!(m.parts.len(), 2);
        assert_eq!(m.parts[0].len(), 6 + 152);
        assert_eq!(&m.parts[1][6..9], &[0x1B, 0x65, b'b']);
        assert_eq!(m.parts[1].len(), 6 + 12);
    }

    #[test]
    fn emoji_are_surrogate_pairs_never_split() {
        // 66 units then an emoji (2 units) does not fit in 67: the pair moves to part 2.
        let text = "я".repeat(66) + "😀" + &"я".repeat(10);
        let m = encode_message(&text, 3).unwrap();
        assert_eq!(m.data_coding, DATA_CODING_UCS2);
        assert_eq!(m.parts.len(), 2);
        assert_eq!(m.parts[0].len(), 6 + 132);
        assert_eq!(&m.parts[1][6..10], &[0xD8, 0x3D, 0xDE, 0x00]);
        // 35 emoji = 70 units: one part.
        assert_eq!(encode_message(&"😀".repeat(35), 1).unwrap().parts.len(), 1);
        let joined: Vec<u8> = m.parts.iter().flat_map(|p| p[6..].to_vec()).collect();
        assert_eq!(
            decode_message(8, 0, &joined, Gsm7Layout::Unpacked).unwrap(),
            text
        );
    }

    #[test]
    fn one_non_gsm_character_switches_the_whole_message_to_ucs2() {
        let m = encode_message("Price: 5€ – ok", 1).unwrap(); // en dash is not GSM
        assert_eq!(m.data_coding, DATA_CODING_UCS2);
        assert_eq!(m.parts[0].len(), 14 * 2);
    }

    #[test]
    fn limits_are_typed() {
        assert_eq!(encode_message("", 1), Err(TextError::Empty));
        assert_eq!(
            encode_message(&"a".repeat(1601), 1),
            Err(TextError::TooLong {
                characters: 1601,
                max: 1600
            })
        );
        let m = encode_message(&"a".repeat(1600), 1).unwrap();
        assert_eq!(m.parts.len(), 1600usize.div_ceil(153));
        let m = encode_message(&"😀".repeat(1600), 1).unwrap();
        assert_eq!(m.parts.len(), 3200usize.div_ceil(66));
    }

    #[test]
    fn packing_matches_the_23_038_example() {
        // "hellohello" packed: the classic example E8329BFD4697D9EC37.
        let septets: Vec<u8> = b"hellohello".to_vec();
        let packed = pack_septets(&septets, 0);
        assert_eq!(
            packed,
            vec![0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37]
        );
        assert_eq!(unpack_septets(&packed, 0), septets);
    }

    #[test]
    fn seven_spare_bits_hold_a_cr_that_unpacking_drops() {
        let septets = b"1234567".to_vec(); // 49 bits -> 7 octets with 7 spare bits
        let packed = pack_septets(&septets, 0);
        assert_eq!(packed.len(), 7);
        assert_eq!(packed[6] >> 1, b'\r');
        assert_eq!(unpack_septets(&packed, 0), septets);
    }

    #[test]
    fn packed_parts_after_the_concat_udh_have_one_fill_bit() {
        assert_eq!(fill_bits(6), 1);
        assert_eq!(fill_bits(0), 0);
        let text = "a".repeat(200);
        let m = encode_message_with(&text, 5, Gsm7Layout::Packed).unwrap();
        assert_eq!(m.parts.len(), 2);
        // 6 UDH octets + (1 fill bit + 153 * 7 bits) / 8 = 6 + 134.
        assert_eq!(m.parts[0].len(), 6 + 134);
        // The first septet 'a' (0x61) starts at bit 1 of the octet after the UDH.
        assert_eq!(m.parts[0][6], 0x61 << 1);
        let decoded: String = m
            .parts
            .iter()
            .map(|p| decode_message(0, ESM_CLASS_UDHI, p, Gsm7Layout::Packed).unwrap())
            .collect();
        assert_eq!(decoded, text);
    }

    #[test]
    fn inbound_decoding_by_data_coding() {
        assert_eq!(
            decode_message(0, 0, b"STOP", Gsm7Layout::Unpacked).unwrap(),
            "STOP"
        );
        assert_eq!(
            decode_message(3, 0, &[0x53, 0xE9], Gsm7Layout::Unpacked).unwrap(),
            "Sé"
        );
        assert_eq!(
            decode_message(8, 0, &[0x00, 0x53, 0x04, 0x4F], Gsm7Layout::Unpacked).unwrap(),
            "Sя"
        );
        // A concatenated MO part: the UDH is skipped.
        let part = [0x05, 0x00, 0x03, 1, 2, 1, b'h', b'i'];
        assert_eq!(
            decode_message(0, 0x40, &part, Gsm7Layout::Unpacked).unwrap(),
            "hi"
        );
        assert_eq!(
            decode_message(0, 0x40, &[9, 1], Gsm7Layout::Unpacked),
            Err(TextError::BadUdh)
        );
        assert_eq!(
            decode_message(4, 0, b"x", Gsm7Layout::Unpacked),
            Err(TextError::UnsupportedDataCoding(4))
        );
        // Bytes outside the 7-bit range do not panic.
        assert_eq!(gsm_to_string(&[0xFF, 0x1B]), "\u{FFFD}");
    }

    proptest! {
        #[test]
        fn any_text_round_trips_through_its_parts(text in "\\PC{1,400}", reference: u8, packed: bool) {
            let layout = if packed { Gsm7Layout::Packed } else { Gsm7Layout::Unpacked };
            let m = encode_message_with(&text, reference, layout).unwrap();
            let multipart = m.parts.len() > 1;
            let mut decoded = String::new();
            for (i, part) in m.parts.iter().enumerate() {
                prop_assert!(part.len() <= 140 + usize::from(layout == Gsm7Layout::Unpacked) * 20);
                if multipart {
                    prop_assert_eq!(&part[..6], &[5, 0, 3, reference, m.parts.len() as u8, i as u8 + 1][..]);
                }
                decoded += &decode_message(m.data_coding, m.esm_class, part, layout).unwrap();
            }
            prop_assert_eq!(decoded, text);
        }

        #[test]
        fn decoding_never_panics(dc: u8, esm: u8, bytes in proptest::collection::vec(any::<u8>(), 0..300), packed: bool) {
            let layout = if packed { Gsm7Layout::Packed } else { Gsm7Layout::Unpacked };
            let _ = decode_message(dc, esm, &bytes, layout);
        }
    }
}
