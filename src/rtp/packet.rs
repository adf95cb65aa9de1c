//! RTP packets on the wire: read by a checked RFC 3550 header reader, written through the
//! webrtc-rs `rtp` crate, with the checks a telephone media path needs (version 2, a payload,
//! a bounded size). Malformed input is an error value
//! for the caller to count and drop, never a panic.

use bytes::Bytes;
use rtp::header::Header;
use rtp::packet::Packet;
use webrtc_util::marshal::{Marshal, MarshalSize};

/// Largest datagram accepted as RTP (a 20 ms G.711 packet is 172 bytes).
pub const MAX_RTP_DATAGRAM: usize = 1500;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PacketError {
    #[error("datagram of {0} bytes is too large for RTP")]
    TooLarge(usize),
    #[error("not RTP version 2")]
    BadVersion,
    #[error("malformed RTP: {0}")]
    Malformed(String),
    #[error("RTCP packet on the RTP port")]
    Rtcp,
}

/// The parts of an RTP packet the receive path uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpPacket {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: Bytes,
}

/// Parses one datagram.
pub fn parse(datagram: &[u8]) -> Result<RtpPacket, PacketError> {
    if datagram.len() > MAX_RTP_DATAGRAM {
        return Err(PacketError::TooLarge(datagram.len()));
    }
    if datagram.len() < 12 || datagram[0] >> 6 != 2 {
        return Err(PacketError::BadVersion);
    }
    // RTCP packet types 200-204 share the port when rtcp-mux is used (RFC 5761).
    if (200..=204).contains(&datagram[1]) {
        return Err(PacketError::Rtcp);
    }
    read_header(datagram).map_err(|reason| PacketError::Malformed(reason.into()))
}

/// RFC 3550 section 5.1 with every length checked against the datagram: the CSRC list, the
/// header extension (skipped whole: its elements are not used) and the padding. Written here
/// rather than through webrtc-rs' `Packet::unmarshal`, which panics on some extension lengths
/// (found by fuzz/rtp, tests/fuzz-regressions/); this one cannot index out of bounds.
fn read_header(datagram: &[u8]) -> Result<RtpPacket, &'static str> {
    let b0 = datagram[0];
    let csrc_count = usize::from(b0 & 0x0F);
    let mut at = 12 + 4 * csrc_count;
    if datagram.len() < at {
        return Err("CSRC list past the end");
    }
    if b0 & 0x10 != 0 {
        let ext = datagram
            .get(at..at + 4)
            .ok_or("header extension past the end")?;
        let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        at += 4 + 4 * words;
        if datagram.len() < at {
            return Err("header extension past the end");
        }
    }
    let mut end = datagram.len();
    if b0 & 0x20 != 0 {
        let padding = usize::from(datagram[end - 1]);
        // A zero count (invalid per RFC 3550) is read as no padding, as webrtc-rs does.
        if padding > end - at {
            return Err("padding length out of range");
        }
        end -= padding;
    }
    let word = |i: usize| {
        u32::from_be_bytes([
            datagram[i],
            datagram[i + 1],
            datagram[i + 2],
            datagram[i + 3],
        ])
    };
    Ok(RtpPacket {
        payload_type: datagram[1] & 0x7F,
        marker: datagram[1] & 0x80 != 0,
        sequence: u16::from_be_bytes([datagram[2], datagram[3]]),
        timestamp: word(4),
        ssrc: word(8),
        payload: Bytes::copy_from_slice(&datagram[at..end]),
    })
}

/// Writes one packet into `out`, returning its length.
pub fn write(
    payload_type: u8,
    marker: bool,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    payload: &[u8],
    out: &mut [u8],
) -> Result<usize, PacketError> {
    let packet = Packet {
        header: Header {
            version: 2,
            marker,
            payload_type,
            sequence_number: sequence,
            timestamp,
            ssrc,
            ..Header::default()
        },
        payload: Bytes::copy_from_slice(payload),
    };
    if packet.marshal_size() > out.len() {
        return Err(PacketError::TooLarge(packet.marshal_size()));
    }
    packet
        .marshal_to(out)
        .map_err(|e| PacketError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use webrtc_util::marshal::Unmarshal;

    #[test]
    fn round_trip_of_a_pcmu_packet() {
        let mut buf = [0u8; 200];
        let n = write(
            0,
            true,
            65535,
            0xFFFF_FF60,
            0xCA11_0000,
            &[0xFF; 160],
            &mut buf,
        )
        .unwrap();
        assert_eq!(n, 172);
        let p = parse(&buf[..n]).unwrap();
        assert_eq!((p.payload_type, p.marker, p.sequence), (0, true, 65535));
        assert_eq!((p.timestamp, p.ssrc), (0xFFFF_FF60, 0xCA11_0000));
        assert_eq!(p.payload.len(), 160);
    }

    #[test]
    fn csrcs_extension_and_padding_are_read_as_webrtc_rs_reads_them() {
        // V2, P, X, CC=2; PT 8; two CSRCs; a one-word 0xBEDE block; 3 payload bytes; 2 padding.
        let mut d = vec![0xB2, 8, 0x12, 0x34, 0, 0, 0, 160, 0xCA, 0x11, 0, 1];
        d.extend([0, 0, 0, 1, 0, 0, 0, 2]);
        d.extend([0xBE, 0xDE, 0, 1, 0x10, 0xAA, 0, 0]);
        d.extend([7, 8, 9, 0, 2]);
        let ours = parse(&d).unwrap();
        let theirs = Packet::unmarshal(&mut d.as_slice()).unwrap();
        assert_eq!(&ours.payload[..], &[7, 8, 9]);
        assert_eq!(ours.payload, theirs.payload);
        assert_eq!(
            (ours.payload_type, ours.sequence, ours.timestamp, ours.ssrc),
            (8, 0x1234, 160, 0xCA11_0001)
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert_eq!(parse(&[0u8; 4]), Err(PacketError::BadVersion));
        assert_eq!(parse(&[0x00; 20]), Err(PacketError::BadVersion));
        let mut rr = [0u8; 12];
        rr[0] = 0x80;
        rr[1] = 201;
        assert_eq!(parse(&rr), Err(PacketError::Rtcp));
        assert!(matches!(
            parse(&[0x80; 2000]),
            Err(PacketError::TooLarge(2000))
        ));
        // Padding longer than the payload.
        let mut bad = [0u8; 16];
        bad[0] = 0xA0;
        bad[15] = 200;
        assert!(matches!(parse(&bad), Err(PacketError::Malformed(_))));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&bytes);
        }

        /// Wherever webrtc-rs' reader accepts a datagram with a well-formed extension (and
        /// does not panic), this reader reads the same fields and payload.
        #[test]
        fn reads_what_webrtc_rs_reads(
            b0 in 0x80u8..0xC0, head in prop::collection::vec(any::<u8>(), 11),
            ext_words in 0u16..4, tail in prop::collection::vec(any::<u8>(), 0..60),
        ) {
            let mut bytes = vec![b0];
            bytes.extend(&head);
            bytes[1] &= 0x7F;
            if b0 & 0x10 != 0 && bytes.len() + 4 * usize::from(b0 & 0x0F) <= 12 {
                // A well-formed one-byte-header extension block (padding elements only):
                // webrtc-rs reads elements past a block's declared end, RFC 3550 does not.
                bytes.extend([0xBE, 0xDE]);
                bytes.extend(ext_words.to_be_bytes());
                bytes.extend(std::iter::repeat_n(0u8, 4 * usize::from(ext_words)));
            }
            bytes.extend(&tail);
            let theirs = std::panic::catch_unwind(|| Packet::unmarshal(&mut bytes.as_slice()));
            if let Ok(Ok(theirs)) = theirs {
                let ours = parse(&bytes);
                if !(200..=204).contains(&bytes[1]) {
                    let ours = ours.unwrap();
                    prop_assert_eq!(ours.payload_type, theirs.header.payload_type);
                    prop_assert_eq!(ours.sequence, theirs.header.sequence_number);
                    prop_assert_eq!(ours.timestamp, theirs.header.timestamp);
                    prop_assert_eq!(ours.ssrc, theirs.header.ssrc);
                    prop_assert_eq!(ours.payload, theirs.payload);
                }
            }
        }

        #[test]
        // Payload types 64-95 are left out: with a marker bit they collide with RTCP (RFC 5761).
        fn print_then_parse_is_identity(
            pt in prop_oneof![0u8..64, 96u8..128], marker: bool, seq: u16, ts: u32, ssrc: u32,
            payload in prop::collection::vec(any::<u8>(), 1..300),
        ) {
            let mut buf = [0u8; 400];
            let n = write(pt, marker, seq, ts, ssrc, &payload, &mut buf).unwrap();
            let p = parse(&buf[..n]).unwrap();
            prop_assert_eq!(p, RtpPacket {
                payload_type: pt, marker, sequence: seq, timestamp: ts, ssrc,
                payload: Bytes::from(payload),
            });
        }
    }
}
