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
        // address or SSRC are injected or stray media and never reach the detector.
        if let Some((source, ssrc, last)) = self.stream
            && (source != from || ssrc != packet.ssrc)
            && now.saturating_duration_since(last) < STREAM_SWITCH_AFTER
            && (self.expected != Some(from) || source == from)
        {
            self.drops.foreign += 1;
            return;
        }
        if Some(packet.payload_type) == self.dtmf_payload_type {
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
