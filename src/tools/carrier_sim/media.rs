//! The simulated carrier's media: the shared RTP/RTCP socket pair, the ONE media task that
//! paces every answered call's pre-encoded G.711 packets on an absolute 20 ms grid (ten 2 ms
//! phases, late slots caught up or skipped), and the drain task that counts what callers send.
//! It only sends what the SIP task's `MediaCommand`s say and counts: it must not decide who
//! answers or what a call plays (that is `population` and `uas`), nor touch the SIP socket.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::population::number_hash;
use super::uas::MediaCommand;
use super::{AudioBank, CarrierSimError, MediaCounters};
use crate::audio::FRAME_SAMPLES;
use crate::audio::g711::Law;
use crate::rtp::packet::MAX_RTP_DATAGRAM;
use crate::runtime::clock;

/// The media clock.
const TICK: Duration = Duration::from_millis(20);
/// RTP header (12 bytes) plus one 20 ms G.711 frame.
const RTP_PACKET: usize = 12 + FRAME_SAMPLES;

/// Receive buffer asked for the shared RTP socket: every caller's media arrives on it, and
/// the default (about 200 KB) overflows when the drain task is not scheduled for a few ms.
pub(super) const RTP_RECEIVE_BUFFER: usize = 4 << 20;

/// Asks for a larger receive buffer (the kernel caps it at `net.core.rmem_max`). Failure only
/// means more incoming RTP is dropped, which the sim merely counts.
pub(super) fn grow_receive_buffer(socket: &UdpSocket, bytes: usize) {
    use std::os::fd::AsRawFd;
    let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt on a socket we own, with a c_int option value of the size passed.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// An even RTP port and the odd RTCP port above it.
pub(super) async fn bind_rtp_pair(
    ip: IpAddr,
    ports: &RangeInclusive<u16>,
) -> Result<(UdpSocket, UdpSocket), CarrierSimError> {
    let start = (*ports.start() & !1).max(2);
    for port in (start..*ports.end()).step_by(2) {
        if let Ok(rtp) = UdpSocket::bind(SocketAddr::new(ip, port)).await
            && let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(ip, port + 1)).await
        {
            return Ok((rtp, rtcp));
        }
    }
    Err(CarrierSimError::NoRtpPorts(ports.clone()))
}

/// One answered call's outgoing media.
struct Stream {
    id: u64,
    to: SocketAddr,
    payload_type: u8,
    silence: u8,
    codes: &'static [u8],
    ssrc: u32,
    first_tick: u64,
    sequence: u16,
    timestamp_base: u32,
    sent: u64,
}

impl Stream {
    /// Writes the packet for grid slot `tick` into `out` (RFC 3550 fixed header, written by
    /// hand: the hot path sends 50,000 packets a second and must not allocate).
    fn packet(&mut self, tick: u64, out: &mut [u8; RTP_PACKET]) {
        let frame = tick.saturating_sub(self.first_tick);
        let marker = self.sent == 0;
        out[0] = 0x80;
        out[1] = self.payload_type | if marker { 0x80 } else { 0 };
        out[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        let timestamp = self
            .timestamp_base
            .wrapping_add((frame as u32).wrapping_mul(FRAME_SAMPLES as u32));
        out[4..8].copy_from_slice(&timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        let start = (frame as usize).saturating_mul(FRAME_SAMPLES);
        let payload = &mut out[12..];
        let available = self.codes.len().saturating_sub(start).min(FRAME_SAMPLES);
        if available > 0 {
            payload[..available].copy_from_slice(&self.codes[start..start + available]);
        }
        payload[available..].fill(self.silence);
        self.sequence = self.sequence.wrapping_add(1);
        self.sent += 1;
    }
}

/// Sub-slots of the 20 ms grid: each stream sends in one of them (chosen by its id), so 1,000
/// streams go out as ten groups of 100 two milliseconds apart, like the unaligned phases of
/// real calls, instead of one burst that overflows receive buffers.
const PHASES: u64 = 10;
const SLOT: Duration = Duration::from_nanos(TICK.as_nanos() as u64 / PHASES);
/// How far a late media clock catches up (slots): 60 ms of packets are sent late, as a
/// congested network delivers them, and a jitter buffer can still use them; older slots are
/// skipped rather than burst.
const MAX_CATCH_UP_SLOTS: u64 = 3 * PHASES;

/// The answered calls' streams, grouped by phase.
struct Streams {
    by_phase: Vec<Vec<Stream>>,
    index: HashMap<u64, (usize, usize)>,
}

impl Streams {
    fn new() -> Self {
        Streams {
            by_phase: (0..PHASES).map(|_| Vec::new()).collect(),
            index: HashMap::new(),
        }
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn remove(&mut self, id: u64) {
        if let Some((phase, i)) = self.index.remove(&id) {
            let group = &mut self.by_phase[phase];
            group.swap_remove(i);
            if let Some(moved) = group.get(i) {
                self.index.insert(moved.id, (phase, i));
            }
        }
    }

    /// Adds a stream whose first packet goes out in its phase's first slot at or after
    /// `next_slot`.
    fn add(&mut self, mut stream: Stream, next_slot: u64) {
        self.remove(stream.id);
        let phase = stream.id % PHASES;
        let first_slot = next_slot + (phase + PHASES - next_slot % PHASES) % PHASES;
        stream.first_tick = first_slot / PHASES;
        let group = &mut self.by_phase[phase as usize];
        self.index.insert(stream.id, (phase as usize, group.len()));
        group.push(stream);
    }
}

pub(super) async fn media_task(
    socket: Arc<UdpSocket>,
    bank: &'static AudioBank,
    mut commands: mpsc::Receiver<MediaCommand>,
    counters: Arc<MediaCounters>,
    token: CancellationToken,
) {
    let epoch = clock::now();
    let mut next_slot: u64 = 0;
    let mut streams = Streams::new();
    let mut packet = [0u8; RTP_PACKET];
    loop {
        let due = epoch + SLOT * next_slot as u32;
        tokio::select! {
            biased;
            _ = token.cancelled() => break,
            command = commands.recv() => {
                match command {
                    Some(MediaCommand::Start { stream, to, law, playback, ssrc }) => {
                        let codes = match law {
                            Law::Ulaw => &bank.ulaw[playback.recording],
                            Law::Alaw => &bank.alaw[playback.recording],
                        };
                        let end = playback.play_ms.map(|ms| (ms as usize * 8).min(codes.len()));
                        let mixed = number_hash("rtp", ssrc as u64, stream);
                        streams.add(
                            Stream {
                                id: stream,
                                to,
                                payload_type: law.payload_type(),
                                silence: law.silence(),
                                codes: &codes[..end.unwrap_or(codes.len())],
                                ssrc,
                                first_tick: 0,
                                sequence: mixed as u16,
                                timestamp_base: (mixed >> 16) as u32,
                                sent: 0,
                            },
                            next_slot,
                        );
                    }
                    Some(MediaCommand::Stop { stream }) => streams.remove(stream),
                    None => break,
                }
                let n = streams.len() as u64;
                counters.streams.store(n, Ordering::Relaxed);
                counters.peak_streams.fetch_max(n, Ordering::Relaxed);
            }
            _ = tokio::time::sleep_until(due.into()) => {
                // Every slot that is due, at most MAX_CATCH_UP_SLOTS of them: a very late
                // wake-up skips older slots (their audio time still passes).
                let current = next_slot
                    + (clock::now().duration_since(due).as_nanos() / SLOT.as_nanos()) as u64;
                let from = next_slot.max((current + 1).saturating_sub(MAX_CATCH_UP_SLOTS));
                if from > next_slot {
                    counters.ticks_skipped.fetch_add(from - next_slot, Ordering::Relaxed);
                }
                let (mut sent, mut errors) = (0u64, 0u64);
                for slot in from..=current {
                    let tick = slot / PHASES;
                    for s in streams.by_phase[(slot % PHASES) as usize].iter_mut() {
                        if tick < s.first_tick {
                            continue;
                        }
                        s.packet(tick, &mut packet);
                        match socket.try_send_to(&packet, s.to) {
                            Ok(_) => sent += 1,
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                                match socket.send_to(&packet, s.to).await {
                                    Ok(_) => sent += 1,
                                    Err(_) => errors += 1,
                                }
                            }
                            Err(_) => errors += 1,
                        }
                    }
                }
                counters.rtp_sent.fetch_add(sent, Ordering::Relaxed);
                counters.rtp_send_errors.fetch_add(errors, Ordering::Relaxed);
                next_slot = current + 1;
            }
        }
    }
}

pub(super) async fn drain_task(
    rtp: Arc<UdpSocket>,
    rtcp: UdpSocket,
    counters: Arc<MediaCounters>,
    token: CancellationToken,
) {
    let mut rtp_buf = vec![0u8; MAX_RTP_DATAGRAM];
    let mut rtcp_buf = vec![0u8; MAX_RTP_DATAGRAM];
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            r = rtp.recv_from(&mut rtp_buf) => {
                if r.is_ok() {
                    counters.rtp_received.fetch_add(1, Ordering::Relaxed);
                }
            }
            r = rtcp.recv_from(&mut rtcp_buf) => {
                if r.is_ok() {
                    counters.rtcp_received.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_follow_the_grid_then_fall_silent() {
        let mut s = Stream {
            id: 1,
            to: "127.0.0.1:1".parse().unwrap(),
            payload_type: 0,
            silence: 0xFF,
            codes: &[7u8; 200],
            ssrc: 0xCA11_0001,
            first_tick: 10,
            sequence: 65535,
            timestamp_base: u32::MAX - 100,
            sent: 0,
        };
        let mut p = [0u8; RTP_PACKET];
        s.packet(10, &mut p);
        let first = crate::rtp::packet::parse(&p).unwrap();
        assert_eq!(
            (first.marker, first.sequence, first.timestamp),
            (true, 65535, u32::MAX - 100)
        );
        assert!(first.payload.iter().all(|&b| b == 7));
        // The short second frame is padded with silence.
        s.packet(11, &mut p);
        let second = crate::rtp::packet::parse(&p).unwrap();
        assert_eq!((second.marker, second.sequence), (false, 0));
        assert_eq!(&second.payload[..40], &[7u8; 40][..]);
        assert!(second.payload[40..].iter().all(|&b| b == 0xFF));
        // A skipped slot advances the timestamp, not the sequence; past the end is silence.
        s.packet(13, &mut p);
        let fourth = crate::rtp::packet::parse(&p).unwrap();
        assert_eq!(fourth.sequence, 1);
        assert_eq!(fourth.timestamp, (u32::MAX - 100).wrapping_add(3 * 160));
        assert!(fourth.payload.iter().all(|&b| b == 0xFF));
        assert_eq!(first.ssrc, 0xCA11_0001);
    }
}
