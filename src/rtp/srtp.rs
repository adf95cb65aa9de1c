//! SRTP/SRTCP with `AES_CM_128_HMAC_SHA1_80` (RFC 3711), keyed by SDES (`sip::sdes`): one
//! context per direction, our key protecting what we send and the far end's unprotecting what
//! we receive, with replay protection on receive.
//!
//! Sans-IO over the webrtc-rs `webrtc-srtp` crate: packets in, packets out; it never touches a
//! socket, never logs and never exposes a key. A packet failing authentication or replay
//! checks is an error the caller counts and drops. (The crate returns a new buffer per packet:
//! one small allocation per 20 ms frame each way.)

use bytes::Bytes;
use webrtc_srtp::context::Context;
use webrtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use webrtc_srtp::protection_profile::ProtectionProfile;

use crate::sip::sdes::SdesKey;

/// Packets remembered for replay protection (RFC 3711 §3.3.2 asks for at least 64).
const REPLAY_WINDOW: usize = 128;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SrtpError {
    #[error("SRTP key setup failed: {0}")]
    Key(String),
    #[error("SRTP packet rejected: {0}")]
    Packet(String),
}

/// The SRTP state of one call.
pub struct SrtpSession {
    outbound: Context,
    inbound: Context,
}

impl std::fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SrtpSession { .. }")
    }
}

fn context(key: &SdesKey, replay: bool) -> Result<Context, SrtpError> {
    let (rtp, rtcp) = if replay {
        (
            Some(srtp_replay_protection(REPLAY_WINDOW)),
            Some(srtcp_replay_protection(REPLAY_WINDOW)),
        )
    } else {
        (None, None)
    };
    Context::new(
        key.master_key(),
        key.master_salt(),
        ProtectionProfile::Aes128CmHmacSha1_80,
        rtp,
        rtcp,
    )
    .map_err(|e| SrtpError::Key(e.to_string()))
}

impl SrtpSession {
    /// `ours` keys what we send (our offer's crypto line), `theirs` what we receive (the
    /// answer's).
    pub fn new(ours: &SdesKey, theirs: &SdesKey) -> Result<SrtpSession, SrtpError> {
        Ok(SrtpSession {
            outbound: context(ours, false)?,
            inbound: context(theirs, true)?,
        })
    }

    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<Bytes, SrtpError> {
        self.outbound
            .encrypt_rtp(packet)
            .map_err(|e| SrtpError::Packet(e.to_string()))
    }

    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<Bytes, SrtpError> {
        self.inbound
            .decrypt_rtp(packet)
            .map_err(|e| SrtpError::Packet(e.to_string()))
    }

    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<Bytes, SrtpError> {
        self.outbound
            .encrypt_rtcp(packet)
            .map_err(|e| SrtpError::Packet(e.to_string()))
    }

    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<Bytes, SrtpError> {
        self.inbound
            .decrypt_rtcp(packet)
            .map_err(|e| SrtpError::Packet(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SdesKey {
        SdesKey {
            tag: 1,
            key_salt: [b; 30],
        }
    }

    fn rtp(seq: u16) -> Vec<u8> {
        let mut out = [0u8; 256];
        let n =
            crate::rtp::packet::write(0, false, seq, 160 * seq as u32, 7, &[0x55; 160], &mut out)
                .unwrap();
        out[..n].to_vec()
    }

    #[test]
    fn what_one_side_protects_the_other_reads_once() {
        let mut a = SrtpSession::new(&key(1), &key(2)).unwrap();
        let mut b = SrtpSession::new(&key(2), &key(1)).unwrap();
        let plain = rtp(5);
        let wire = a.protect_rtp(&plain).unwrap();
        assert_eq!(wire.len(), plain.len() + 10);
        assert_eq!(&wire[..12], &plain[..12], "the header stays clear");
        assert_ne!(
            &wire[12..plain.len()],
            &plain[12..],
            "the payload is encrypted"
        );
        assert_eq!(b.unprotect_rtp(&wire).unwrap(), plain);
        // A replay and a tampered packet are rejected.
        assert!(b.unprotect_rtp(&wire).is_err());
        let mut bad = a.protect_rtp(&rtp(6)).unwrap().to_vec();
        bad[20] ^= 1;
        assert!(b.unprotect_rtp(&bad).is_err());
        // The wrong key fails authentication.
        let mut c = SrtpSession::new(&key(2), &key(3)).unwrap();
        assert!(c.unprotect_rtp(&a.protect_rtp(&rtp(7)).unwrap()).is_err());
    }
}
