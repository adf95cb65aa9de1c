//! The Asterisk AudioSocket framing (res_audiosocket / `AudioSocket()`), pure: bytes in,
//! frames out, with a bounded buffer.
//!
//! A frame is a 1-byte kind, a 2-byte big-endian payload length and the payload. Kinds:
//! `0x00` hangup, `0x01` the call's UUID (16 bytes), `0x10` audio (8 kHz signed linear 16-bit
//! little-endian), `0xff` error. Owns the parsing and encoding only; the TCP task is in
//! `runtime::amd::serve`.

pub const KIND_HANGUP: u8 = 0x00;
pub const KIND_UUID: u8 = 0x01;
pub const KIND_AUDIO: u8 = 0x10;
pub const KIND_ERROR: u8 = 0xff;

/// Largest payload accepted: Asterisk sends 320 bytes (20 ms); a second of audio is 16,000.
pub const MAX_PAYLOAD: usize = 16_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AudioSocketError {
    #[error("frame payload of {0} bytes is over the {MAX_PAYLOAD}-byte limit")]
    TooLarge(usize),
    #[error("unknown frame kind 0x{0:02x}")]
    UnknownKind(u8),
    #[error("a UUID frame must hold 16 bytes, not {0}")]
    BadUuid(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AsFrame {
    Hangup,
    Uuid(String),
    /// 8 kHz signed linear samples.
    Audio(Vec<i16>),
    Error(Vec<u8>),
}

/// Accumulates bytes and yields whole frames.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            buf: Vec::with_capacity(3 + MAX_PAYLOAD),
        }
    }

    /// Appends received bytes. The buffer never holds more than one frame's worth plus what
    /// one read brings: call [`Decoder::poll`] until it yields `None` after every push.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, `Ok(None)` when more bytes are needed.
    pub fn poll(&mut self) -> Result<Option<AsFrame>, AudioSocketError> {
        if self.buf.len() < 3 {
            return Ok(None);
        }
        let kind = self.buf[0];
        let len = u16::from_be_bytes([self.buf[1], self.buf[2]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(AudioSocketError::TooLarge(len));
        }
        if !matches!(kind, KIND_HANGUP | KIND_UUID | KIND_AUDIO | KIND_ERROR) {
            return Err(AudioSocketError::UnknownKind(kind));
        }
        if self.buf.len() < 3 + len {
            return Ok(None);
        }
        let payload = &self.buf[3..3 + len];
        let frame = match kind {
            KIND_HANGUP => AsFrame::Hangup,
            KIND_UUID => {
                if len != 16 {
                    return Err(AudioSocketError::BadUuid(len));
                }
                AsFrame::Uuid(format_uuid(payload))
            }
            KIND_AUDIO => AsFrame::Audio(
                payload
                    .chunks_exact(2)
                    .map(|p| i16::from_le_bytes([p[0], p[1]]))
                    .collect(),
            ),
            _ => AsFrame::Error(payload.to_vec()),
        };
        self.buf.drain(..3 + len);
        Ok(Some(frame))
    }
}

/// 16 bytes as the canonical lowercase `8-4-4-4-12` UUID text.
pub fn format_uuid(b: &[u8]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A UUID's text (with or without dashes) as its 16 bytes.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = s.bytes().filter(|&b| b != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// Encodes one frame.
pub fn encode(kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    let len = payload.len().min(u16::MAX as usize);
    out.push(kind);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&payload[..len]);
}

/// An audio frame of 8 kHz samples.
pub fn encode_audio(samples: &[i16], out: &mut Vec<u8>) {
    let mut payload = Vec::with_capacity(samples.len() * 2);
    super::l16_bytes(samples, &mut payload);
    encode(KIND_AUDIO, &payload, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_anywhere_are_reassembled() {
        let uuid = "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9";
        let mut wire = Vec::new();
        encode(KIND_UUID, &parse_uuid(uuid).unwrap(), &mut wire);
        encode_audio(&[1, -2, 300], &mut wire);
        encode(KIND_HANGUP, &[], &mut wire);
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for b in &wire {
            d.push(std::slice::from_ref(b));
            while let Some(f) = d.poll().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(
            got,
            vec![
                AsFrame::Uuid(uuid.into()),
                AsFrame::Audio(vec![1, -2, 300]),
                AsFrame::Hangup
            ]
        );
    }

    #[test]
    fn oversized_unknown_and_bad_uuid_frames_are_errors() {
        let mut d = Decoder::new();
        d.push(&[KIND_AUDIO, 0xff, 0xff]);
        assert_eq!(d.poll(), Err(AudioSocketError::TooLarge(65535)));
        let mut d = Decoder::new();
        d.push(&[0x42, 0, 0]);
        assert_eq!(d.poll(), Err(AudioSocketError::UnknownKind(0x42)));
        let mut d = Decoder::new();
        d.push(&[KIND_UUID, 0, 2, 1, 2]);
        assert_eq!(d.poll(), Err(AudioSocketError::BadUuid(2)));
        assert_eq!(parse_uuid("nope"), None);
    }
}
