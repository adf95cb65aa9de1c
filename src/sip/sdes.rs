//! SDES keying for SRTP in SDP (RFC 4568): our `a=crypto` line with the
//! `AES_CM_128_HMAC_SHA1_80` suite, and reading the one the answer chose.
//!
//! Owns only the SDP text and the key bytes; it never encrypts (that is `rtp::srtp`), never
//! draws randomness (the runtime hands the key in) and never logs a key.

use base64::Engine as _;

/// The only suite offered and accepted.
pub const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";
/// Master key (16) plus master salt (14) octets.
pub const KEY_SALT_LEN: usize = 30;

/// Whether the trunk's media is encrypted (SDES-keyed SRTP, RFC 4568 / RFC 3711).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SrtpPolicy {
    /// `required` over TLS, `off` over UDP (keys in SDP over plain UDP are readable by all).
    #[default]
    Auto,
    Off,
    /// Offered (`RTP/AVP` with a crypto line), used when the answer accepts it.
    Optional,
    /// `RTP/SAVP` only; an answer without a key ends the call.
    Required,
}

impl SrtpPolicy {
    pub fn parse(v: &str) -> Result<SrtpPolicy, String> {
        match v {
            "auto" => Ok(SrtpPolicy::Auto),
            "off" => Ok(SrtpPolicy::Off),
            "optional" => Ok(SrtpPolicy::Optional),
            "required" => Ok(SrtpPolicy::Required),
            _ => Err("expected auto, off, optional or required".into()),
        }
    }

    /// The policy in effect on a trunk of this transport.
    pub fn effective(self, tls: bool) -> SrtpPolicy {
        match (self, tls) {
            (SrtpPolicy::Auto, true) => SrtpPolicy::Required,
            (SrtpPolicy::Auto, false) => SrtpPolicy::Off,
            (p, _) => p,
        }
    }
}

/// One side's SRTP master key and salt, from an `a=crypto` line. `Debug` hides the key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SdesKey {
    pub tag: u32,
    pub key_salt: [u8; KEY_SALT_LEN],
}

impl std::fmt::Debug for SdesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SdesKey {{ tag: {}, key: *** }}", self.tag)
    }
}

impl SdesKey {
    pub fn master_key(&self) -> &[u8] {
        &self.key_salt[..16]
    }

    pub fn master_salt(&self) -> &[u8] {
        &self.key_salt[16..]
    }

    /// The `a=crypto:` attribute value, e.g. `1 AES_CM_128_HMAC_SHA1_80 inline:...`.
    pub fn attribute(&self) -> String {
        format!(
            "{} {SUITE} inline:{}",
            self.tag,
            base64::engine::general_purpose::STANDARD.encode(self.key_salt)
        )
    }

    /// Reads an `a=crypto:` value (after the colon). `None` for another suite, a key of the
    /// wrong length, an MKI (not supported), or session parameters we cannot honour.
    pub fn parse(value: &str) -> Option<SdesKey> {
        let mut parts = value.split_whitespace();
        let tag: u32 = parts.next()?.parse().ok()?;
        if parts.next()? != SUITE {
            return None;
        }
        let key_params = parts.next()?;
        // One key only; `inline:KEY|2^31|1:1` carries a lifetime and an MKI.
        if key_params.contains(';') {
            return None;
        }
        let inline = key_params.strip_prefix("inline:")?;
        let mut fields = inline.split('|');
        let key = fields.next()?;
        for f in fields {
            // A lifetime is fine; an MKI (`n:len`) would change the packet format.
            if f.contains(':') {
                return None;
            }
        }
        // Session parameters (UNENCRYPTED_SRTP, KDR, ...) change the transform: refuse them.
        if parts.next().is_some() {
            return None;
        }
        if key.len() > 64 {
            return None;
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(key))
            .ok()?;
        let key_salt: [u8; KEY_SALT_LEN] = bytes.try_into().ok()?;
        Some(SdesKey { tag, key_salt })
    }
}

/// Our offer with SRTP: `RTP/SAVP` when SRTP is required (`RTP/AVP` with the crypto line when
/// it is only offered, as baresip's `srtp` mode does), plus the crypto line on the audio.
pub fn secure_offer(offer: &str, savp: bool, key: &SdesKey) -> String {
    let mut out = String::with_capacity(offer.len() + 80);
    for line in offer.split_inclusive("\r\n") {
        match line.strip_prefix("m=audio ") {
            Some(rest) if savp => {
                out.push_str("m=audio ");
                out.push_str(&rest.replacen(" RTP/AVP ", " RTP/SAVP ", 1));
            }
            _ => out.push_str(line),
        }
    }
    out.push_str("a=crypto:");
    out.push_str(&key.attribute());
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SdesKey {
        SdesKey {
            tag: 1,
            key_salt: std::array::from_fn(|i| i as u8),
        }
    }

    #[test]
    fn our_attribute_reads_back() {
        let a = key().attribute();
        assert!(a.starts_with("1 AES_CM_128_HMAC_SHA1_80 inline:"), "{a}");
        assert_eq!(SdesKey::parse(&a), Some(key()));
        assert!(!format!("{:?}", key()).contains("inline"));
    }

    #[test]
    fn the_rfc_4568_example_parses_and_other_suites_do_not() {
        let k = SdesKey::parse(
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20",
        )
        .unwrap();
        assert_eq!(k.tag, 1);
        assert_eq!(&k.master_key()[..3], b"=-n");
        assert_eq!(k.master_salt().len(), 14);
        for bad in [
            "1 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4",
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVe",
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR UNENCRYPTED_SRTP",
            "x AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
            "1 AES_CM_128_HMAC_SHA1_80",
        ] {
            assert_eq!(SdesKey::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_secure_offer_names_savp_and_carries_the_key() {
        let plain = crate::sip::sdp::offer("127.0.0.1".parse().unwrap(), 10000, 1, 1);
        let o = secure_offer(&plain, true, &key());
        assert!(o.contains("\r\nm=audio 10000 RTP/SAVP 0 8 101\r\n"), "{o}");
        assert!(o.ends_with(&format!("a=crypto:{}\r\n", key().attribute())));
        let sd = crate::sip::sdp::SessionDescription::parse(&o).unwrap();
        assert_eq!(sd.negotiate().unwrap().srtp, Some(key()));
        let optional = secure_offer(&plain, false, &key());
        assert!(optional.contains(" RTP/AVP 0 8 101\r\n"));
    }
}
