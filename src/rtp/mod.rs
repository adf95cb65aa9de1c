//! Sans-IO RTP/RTCP for a telephone call: packets (webrtc-rs `rtp`/`rtcp`), receive session
//! state, the jitter buffer that hands the AMD continuous 20 ms frames, the absolute-grid send
//! pacer, RTCP reports and RFC 4733 DTMF.
//!
//! Owns media state of one call. It never touches a socket or the clock: the runtime passes
//! datagrams and `now` in, and takes frames, packets and deadlines out. Malformed datagrams are
//! counted and dropped.

pub mod dtmf;
pub mod jitter;
pub mod pacer;
pub mod packet;
pub mod rtcp;
pub mod session;
pub mod srtp;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::audio::g711::Law;
use dtmf::{DtmfEvent, DtmfReceiver};
use jitter::{JitterBuffer, JitterStats, PlayoutFrame};
use session::{ReceiveSession, ReceiveStats};

/// Counts of what the receive path dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropStats {
    pub malformed: u64,
    pub unknown_payload_type: u64,
    pub stale: u64,
    pub bad_dtmf: u64,
    /// Another source address or SSRC than the established stream (the one-stream rule).
    pub foreign: u64,
}

/// How long the established stream must be silent before another source or SSRC may take
/// its place (an SBC or carrier switching media); until then such packets are dropped.
pub const STREAM_SWITCH_AFTER: Duration = Duration::from_millis(500);

/// Consecutive in-sequence packets (one address, one SSRC) a source other than the SDP's must
/// send before its audio is taken: Asterisk's strict-RTP learning uses 4, RFC 3550 A.1 at
/// least 2. A flood of forged packets (random SSRC and sequence) never passes it, so it can
/// neither anchor the playout clock nor put a frame in front of the AMD.
pub const PROBATION_PACKETS: u8 = 4;

/// A source on probation: where it sends from, its SSRC, its last sequence number and how
/// many in-sequence packets it has sent.
#[derive(Clone, Copy)]
struct Candidate {
    source: SocketAddr,
    ssrc: u32,
    sequence: u16,
    count: u8,
}

/// The receive half of a call's media: datagrams in, frames and DTMF out.
pub struct RtpReceiver {
    law: Law,
    /// Payload type of telephone-event, when negotiated.
    dtmf_payload_type: Option<u8>,
    session: ReceiveSession,
    jitter: JitterBuffer,
    dtmf: DtmfReceiver,
    dtmf_events: Option<DtmfEvent>,
    drops: DropStats,
    /// Where media comes from: symmetric RTP sends back to this address.
    remote: Option<SocketAddr>,
    /// The established stream: source, SSRC and when it last sent valid media.
    stream: Option<(SocketAddr, u32, Instant)>,
    /// The address the far end's SDP named: its media takes the stream over at once.
    expected: Option<SocketAddr>,
    /// Media came from `expected` at least once.
    expected_seen: bool,
    /// When the current stream's source took over.
    stream_since: Option<Instant>,
    /// A source other than the SDP's that is proving itself (see [`PROBATION_PACKETS`]).
    candidate: Option<Candidate>,
}

impl RtpReceiver {
    pub fn new(law: Law, dtmf_payload_type: Option<u8>, playout_delay: Duration) -> Self {
        RtpReceiver {
            law,
            dtmf_payload_type,
            session: ReceiveSession::new(8000),
            jitter: JitterBuffer::new(playout_delay),
            dtmf: DtmfReceiver::default(),
            dtmf_events: None,
            drops: DropStats::default(),
            remote: None,
            stream: None,
            expected: None,
            expected_seen: false,
            stream_since: None,
            candidate: None,
        }
    }

    /// The media address of the far end's SDP. A stream from it wins over one latched from
    /// elsewhere at once; any other source only gets in while it is silent.
    pub fn with_expected_source(mut self, source: SocketAddr) -> Self {
        self.expected = Some(source);
        self
    }

    /// Hands frames to the caller as soon as they arrive in order (see
    /// [`JitterBuffer::with_early_release`]): for a call whose audio is analysed, not played.
    pub fn with_early_release(mut self) -> Self {
        self.jitter = self.jitter.with_early_release();
        self
    }

    /// Feeds one datagram received from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let packet = match packet::parse(datagram) {
            Ok(p) => p,
            Err(_) => {
                self.drops.malformed += 1;
                return;
            }
        };
        // One stream per call: while the established stream is alive, packets from another
        // address or SSRC are injected or stray media and never reach the detector. Events
        // (RFC 4733) from the stream's own address may carry their own SSRC: gateways that
        // generate DTMF apart from the audio do (sipp's pcap DTMF does too).
        let event = Some(packet.payload_type) == self.dtmf_payload_type;
        if let Some((source, ssrc, last)) = self.stream
            && (source != from || (ssrc != packet.ssrc && !event))
            && now.saturating_duration_since(last) < STREAM_SWITCH_AFTER
            && (self.expected != Some(from) || source == from)
        {
            self.drops.foreign += 1;
            return;
        }
        let new_stream = self
            .stream
            .is_none_or(|(source, ssrc, _)| source != from || (ssrc != packet.ssrc && !event));
        if new_stream
            && self.expected.is_some_and(|e| e != from)
            && !self.passes_probation(from, packet.ssrc, packet.sequence)
        {
            self.drops.foreign += 1;
            return;
        }
        if event {
            match self.dtmf.handle(packet.timestamp, &packet.payload, 8000) {
                Ok(Some(event)) => self.dtmf_events = Some(event),
                Ok(None) => {}
                Err(_) => self.drops.bad_dtmf += 1,
            }
            return;
        }
        if packet.payload_type != self.law.payload_type() {
            self.drops.unknown_payload_type += 1;
            return;
        }
        let Some(placed) = self.session.place(now, &packet) else {
            self.drops.stale += 1;
            return;
        };
        // Symmetric RTP: follow the source of valid media (NAT rebinding, SBC changes, once
        // the old stream fell silent). A source other than the SDP's gets our media only once
        // it has been the stream for a second and the SDP's address never sent any.
        if self.stream.is_none_or(|(source, _, _)| source != from) {
            self.stream_since = Some(now);
        }
        self.expected_seen |= self.expected == Some(from);
        let settled = self
            .stream_since
            .is_some_and(|t| now.saturating_duration_since(t) >= Duration::from_secs(1));
        if self.expected.is_none_or(|e| e == from) || (settled && !self.expected_seen) {
            self.remote = Some(from);
        }
        self.stream = Some((from, packet.ssrc, now));
        self.jitter
            .push(now, placed.ext_ts, self.law, &packet.payload);
    }

    /// Counts one more packet of a would-be stream from an address other than the SDP's; true
    /// once it has sent [`PROBATION_PACKETS`] in sequence.
    fn passes_probation(&mut self, from: SocketAddr, ssrc: u32, sequence: u16) -> bool {
        let count = match self.candidate.as_mut() {
            Some(c)
                if c.source == from && c.ssrc == ssrc && sequence == c.sequence.wrapping_add(1) =>
            {
                c.sequence = sequence;
                c.count = c.count.saturating_add(1);
                c.count
            }
            _ => {
                self.candidate = Some(Candidate {
                    source: from,
                    ssrc,
                    sequence,
                    count: 1,
                });
                1
            }
        };
        if count >= PROBATION_PACKETS {
            self.candidate = None;
            true
        } else {
            false
        }
    }

    /// The next 20 ms frame when it is due (a concealed one if the network lost it).
    pub fn poll_frame(&mut self, now: Instant) -> Option<PlayoutFrame> {
        self.jitter.pop(now)
    }

    pub fn poll_dtmf(&mut self) -> Option<DtmfEvent> {
        self.dtmf_events.take()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.jitter.next_deadline()
    }

    /// Where to send our media (the source of the last valid packet).
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }

    pub fn receive_stats(&self) -> ReceiveStats {
        self.session.stats()
    }

    pub fn jitter_stats(&self) -> JitterStats {
        self.jitter.stats()
    }

    pub fn drops(&self) -> DropStats {
        self.drops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(payload_type: u8, sequence: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = [0u8; 256];
        let n = packet::write(
            payload_type,
            false,
            sequence,
            160 * sequence as u32,
            ssrc,
            payload,
            &mut out,
        )
        .unwrap();
        out[..n].to_vec()
    }

    /// A digit "1" ended after 100 ms (RFC 4733: event, E bit + volume, duration).
    const DIGIT_ONE_END: [u8; 4] = [1, 0x80 | 10, 0x03, 0x20];

    #[test]
    fn events_from_the_streams_address_may_carry_their_own_ssrc() {
        let now = crate::runtime::clock::now();
        let far: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        let mut rx = RtpReceiver::new(Law::Ulaw, Some(101), Duration::from_millis(60));
        rx.handle_datagram(now, far, &datagram(0, 1, 7, &[0xff; 160]));
        rx.handle_datagram(now, far, &datagram(101, 2, 99, &DIGIT_ONE_END));
        assert_eq!(rx.poll_dtmf().map(|e| e.digit), Some('1'));
        assert_eq!(rx.drops().foreign, 0);
    }

    #[test]
    fn audio_with_another_ssrc_or_events_from_another_address_are_dropped() {
        let now = crate::runtime::clock::now();
        let far: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        let stranger: SocketAddr = "198.51.100.9:4000".parse().unwrap();
        let mut rx = RtpReceiver::new(Law::Ulaw, Some(101), Duration::from_millis(60));
        rx.handle_datagram(now, far, &datagram(0, 1, 7, &[0xff; 160]));
        rx.handle_datagram(now, far, &datagram(0, 2, 99, &[0xff; 160]));
        rx.handle_datagram(now, stranger, &datagram(101, 3, 7, &DIGIT_ONE_END));
        assert_eq!(rx.poll_dtmf(), None);
        assert_eq!(rx.drops().foreign, 2);
    }

    /// μ-law 0x00 is full scale: any of it reaching the detector would show.
    const LOUD: [u8; 160] = [0x00; 160];
    /// μ-law 0xff is digital silence.
    const QUIET: [u8; 160] = [0xff; 160];

    /// A receiver as a call's AMD uses it: early release, the SDP's media address known.
    fn analysing_receiver(sdp: SocketAddr) -> RtpReceiver {
        RtpReceiver::new(Law::Ulaw, None, Duration::from_millis(60))
            .with_early_release()
            .with_expected_source(sdp)
    }

    #[test]
    fn forged_packets_before_the_stream_never_reach_the_detector() {
        let start = crate::runtime::clock::now();
        let sdp: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        let flooder: SocketAddr = "192.0.2.1:5999".parse().unwrap();
        let mut rx = analysing_receiver(sdp);
        // Forged packets, each with its own SSRC and sequence, arrive before the call's media.
        for k in 0..20u16 {
            let forged = datagram(0, k.wrapping_mul(7919), 0xDEAD_0000 | u32::from(k), &LOUD);
            rx.handle_datagram(start, flooder, &forged);
        }
        assert_eq!(rx.drops().foreign, 20);
        assert_eq!(
            rx.poll_frame(start + Duration::from_secs(1)),
            None,
            "nothing anchored"
        );
        for seq in 1..=5u16 {
            rx.handle_datagram(start, sdp, &datagram(0, seq, 7, &QUIET));
        }
        let frames: Vec<_> = std::iter::from_fn(|| rx.poll_frame(start)).collect();
        assert_eq!(frames.len(), 5);
        assert!(
            frames
                .iter()
                .all(|f| !f.concealed && f.frame.samples.iter().all(|s| *s == 0))
        );
        assert_eq!(frames[0].frame.start, crate::audio::SampleTime(0));
    }

    #[test]
    fn media_from_an_address_the_sdp_did_not_name_is_taken_after_probation() {
        let start = crate::runtime::clock::now();
        let sdp: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let nat: SocketAddr = "203.0.113.7:31000".parse().unwrap();
        let mut rx = analysing_receiver(sdp);
        for seq in 1..=6u16 {
            rx.handle_datagram(start, nat, &datagram(0, seq, 9, &QUIET));
        }
        assert_eq!(rx.drops().foreign, u64::from(PROBATION_PACKETS) - 1);
        let frames: Vec<_> = std::iter::from_fn(|| rx.poll_frame(start)).collect();
        assert_eq!(frames.len(), 6 - usize::from(PROBATION_PACKETS) + 1);
        // A gap in the sequence restarts the probation.
        let mut rx =
            RtpReceiver::new(Law::Ulaw, None, Duration::from_millis(60)).with_expected_source(sdp);
        for seq in [1u16, 2, 4, 5, 6] {
            rx.handle_datagram(start, nat, &datagram(0, seq, 9, &QUIET));
        }
        assert_eq!(rx.drops().foreign, 5);
    }
}
