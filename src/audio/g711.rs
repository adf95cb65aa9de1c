//! G.711 μ-law and A-law, bit-exact with the ITU-T G.711 reference (the classic Sun `g711.c`).
//!
//! Decoding uses 256-entry tables built at compile time; encoding is branch-light arithmetic.
//! Nothing here allocates, so it is safe on the per-packet path.

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

/// Encodes one 16-bit linear sample to μ-law (G.711, with the all-zero code suppressed by the
/// bit inversion as the standard requires).
#[inline]
pub const fn ulaw_encode(sample: i16) -> u8 {
    let mut pcm = sample as i32;
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0x00
    };
    if pcm > ULAW_CLIP {
        pcm = ULAW_CLIP;
    }
    pcm += ULAW_BIAS;
    // Segment = position of the highest set bit above bit 7.
    let exponent = 31 - (pcm as u32 | 0x7F).leading_zeros() as i32 - 7;
    let mantissa = (pcm >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

const fn ulaw_decode_const(code: u8) -> i16 {
    let code = !code;
    let sign = code & 0x80;
    let exponent = ((code >> 4) & 0x07) as i32;
    let mantissa = (code & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Encodes one 16-bit linear sample to A-law (even bits inverted, per G.711).
#[inline]
pub const fn alaw_encode(sample: i16) -> u8 {
    // A-law works on 13-bit magnitude.
    let pcm = (sample as i32) >> 3;
    let (mask, magnitude) = if pcm >= 0 {
        (0xD5, pcm)
    } else {
        (0x55, -pcm - 1)
    };
    let code = if magnitude < 32 {
        (magnitude >> 1) as u8
    } else {
        let seg = 31 - (magnitude as u32).leading_zeros() as i32 - 4;
        if seg > 7 {
            0x7F
        } else {
            ((seg << 4) | ((magnitude >> seg) & 0x0F)) as u8
        }
    };
    code ^ mask
}

const fn alaw_decode_const(code: u8) -> i16 {
    let a = code ^ 0x55;
    let seg = ((a & 0x70) >> 4) as i32;
    let mut t = ((a & 0x0F) as i32) << 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    if a & 0x80 != 0 { t as i16 } else { -t as i16 }
}

macro_rules! decode_table {
    ($decode:ident) => {{
        let mut table = [0i16; 256];
        let mut i = 0;
        while i < 256 {
            table[i] = $decode(i as u8);
            i += 1;
        }
        table
    }};
}

static ULAW_TO_LINEAR: [i16; 256] = decode_table!(ulaw_decode_const);
static ALAW_TO_LINEAR: [i16; 256] = decode_table!(alaw_decode_const);

#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_TO_LINEAR[code as usize]
}

#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_TO_LINEAR[code as usize]
}

/// The two G.711 laws, named by their RTP static payload types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Law {
    /// PCMU, payload type 0.
    Ulaw,
    /// PCMA, payload type 8.
    Alaw,
}

impl Law {
    pub const fn payload_type(self) -> u8 {
        match self {
            Law::Ulaw => 0,
            Law::Alaw => 8,
        }
    }

    /// A 20 ms μ-law frame (the agent protocols' format) in this law: itself for μ-law,
    /// through linear PCM for A-law.
    pub fn from_ulaw_frame(self, frame: &[u8; super::FRAME_SAMPLES]) -> [u8; super::FRAME_SAMPLES] {
        match self {
            Law::Ulaw => *frame,
            Law::Alaw => {
                let mut pcm = [0i16; super::FRAME_SAMPLES];
                Law::Ulaw.decode_into(frame, &mut pcm);
                let mut out = [0u8; super::FRAME_SAMPLES];
                Law::Alaw.encode_into(&pcm, &mut out);
                out
            }
        }
    }

    /// The code of a zero sample (what a silent frame is made of).
    pub const fn silence(self) -> u8 {
        match self {
            Law::Ulaw => 0xFF,
            Law::Alaw => 0xD5,
        }
    }

    #[inline]
    pub fn encode_into(self, pcm: &[i16], out: &mut [u8]) {
        match self {
            Law::Ulaw => pcm.iter().zip(out).for_each(|(s, o)| *o = ulaw_encode(*s)),
            Law::Alaw => pcm.iter().zip(out).for_each(|(s, o)| *o = alaw_encode(*s)),
        }
    }

    #[inline]
    pub fn decode_into(self, codes: &[u8], out: &mut [i16]) {
        let table = match self {
            Law::Ulaw => &ULAW_TO_LINEAR,
            Law::Alaw => &ALAW_TO_LINEAR,
        };
        codes
            .iter()
            .zip(out)
            .for_each(|(c, o)| *o = table[*c as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ulaw_frame_in_either_law_decodes_to_the_same_samples() {
        let pcm: Vec<i16> = (0..160)
            .map(|i| ((i * 397) % 20_000 - 10_000) as i16)
            .collect();
        let mut ulaw = [0u8; 160];
        Law::Ulaw.encode_into(&pcm, &mut ulaw);
        assert_eq!(Law::Ulaw.from_ulaw_frame(&ulaw), ulaw);
        let (mut via_ulaw, mut via_alaw) = ([0i16; 160], [0i16; 160]);
        Law::Ulaw.decode_into(&ulaw, &mut via_ulaw);
        Law::Alaw.decode_into(&Law::Alaw.from_ulaw_frame(&ulaw), &mut via_alaw);
        for (u, a) in via_ulaw.iter().zip(&via_alaw) {
            // One A-law step at most apart (A-law's steps are at most 1024 at full scale).
            assert!((i32::from(*u) - i32::from(*a)).abs() <= 1024, "{u} vs {a}");
        }
        assert_eq!(Law::Alaw.silence(), 0xD5);
        assert_eq!(Law::Ulaw.silence(), 0xFF);
    }

    #[test]
    fn ulaw_reference_points() {
        // Values of the ITU-T G.711 μ-law decoding table.
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0xFE), 8);
        assert_eq!(ulaw_decode(0x7E), -8);
        assert_eq!(ulaw_decode(0xEF), 132); // first level of segment 1
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
    }

    #[test]
    fn alaw_reference_points() {
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
    }

    #[test]
    fn every_ulaw_code_round_trips() {
        for code in 0..=255u8 {
            let linear = ulaw_decode(code);
            let back = ulaw_encode(linear);
            // 0x7F is "negative zero"; it decodes to 0, which encodes as positive zero 0xFF.
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(
                back, expected,
                "code {code:#04x} -> {linear} -> {back:#04x}"
            );
        }
    }

    #[test]
    fn every_alaw_code_round_trips() {
        for code in 0..=255u8 {
            let linear = alaw_decode(code);
            assert_eq!(alaw_encode(linear), code, "code {code:#04x} -> {linear}");
        }
    }

    #[test]
    fn decoded_levels_are_strictly_monotonic() {
        for (name, decode) in [
            ("ulaw", ulaw_decode as fn(u8) -> i16),
            ("alaw", alaw_decode as fn(u8) -> i16),
        ] {
            let mut levels: Vec<i16> = (0..=255u8).map(decode).collect();
            levels.sort_unstable();
            levels.dedup();
            // μ-law has two zeros, A-law none: 255 and 256 distinct levels.
            let expected = if name == "ulaw" { 255 } else { 256 };
            assert_eq!(levels.len(), expected, "{name}");
        }
    }

    #[test]
    fn every_linear_sample_encodes_to_a_nearest_level() {
        // For every 16-bit input the encoder must pick a code whose decoded level is within
        // one quantisation step of the input (the reference rounds inside each segment).
        for law in [Law::Ulaw, Law::Alaw] {
            let mut levels: Vec<i32> = (0..=255u8)
                .map(|c| match law {
                    Law::Ulaw => ulaw_decode(c) as i32,
                    Law::Alaw => alaw_decode(c) as i32,
                })
                .collect();
            levels.sort_unstable();
            levels.dedup();
            for x in i16::MIN..=i16::MAX {
                let code = match law {
                    Law::Ulaw => ulaw_encode(x),
                    Law::Alaw => alaw_encode(x),
                };
                let y = match law {
                    Law::Ulaw => ulaw_decode(code),
                    Law::Alaw => alaw_decode(code),
                } as i32;
                let x = x as i32;
                let idx = levels.partition_point(|&l| l < y);
                let below = if idx > 0 { levels[idx - 1] } else { y };
                let above = levels.get(idx + 1).copied().unwrap_or(y);
                let step = (above - below).max(2);
                assert!(
                    (y - x).abs() <= step,
                    "{law:?}: {x} -> {y}, neighbour step {step}"
                );
                // Sign is preserved except around zero.
                if x.abs() > 16 {
                    assert_eq!(x.signum(), y.signum(), "{law:?}: {x} -> {y}");
                }
            }
        }
    }

    #[test]
    fn frame_helpers_match_scalar_functions() {
        let pcm: Vec<i16> = (0..160).map(|i| (i * 397 - 30000) as i16).collect();
        let mut codes = [0u8; 160];
        let mut back = [0i16; 160];
        Law::Ulaw.encode_into(&pcm, &mut codes);
        Law::Ulaw.decode_into(&codes, &mut back);
        for i in 0..160 {
            assert_eq!(codes[i], ulaw_encode(pcm[i]));
            assert_eq!(back[i], ulaw_decode(codes[i]));
        }
        Law::Alaw.encode_into(&pcm, &mut codes);
        assert_eq!(codes[7], alaw_encode(pcm[7]));
        assert_eq!(Law::Alaw.payload_type(), 8);
    }
}
