//! The built-in simulated carrier: a SIP UAS on UDP that answers like a real population of
//! numbers, using the bundled recorded calls (`trunx carrier-sim`, `trunx demo`, `trunx bench
//! load`). Which answer a number gets is [`population::scenario_for`] (pure, seeded, the same
//! in every process); the SIP behaviour per call is the sans-IO [`uas::Uas`]. This file owns
//! the I/O: the sockets, three tasks, the 20 ms media clock and the signals of the CLI.
//!
//! Tasks (under one `TaskTracker`, stopped by one `CancellationToken`):
//! - the SIP task owns the SIP socket and the `Uas`, answers counter queries, and hands media
//!   commands to
//! - the media task: ONE pacing loop for all calls on an absolute 20 ms grid, split into ten
//!   2 ms phases. Every 20 ms it sends one pre-encoded G.711 packet per answered call (the
//!   recording, then silence until the call ends), each call in its own phase, so 1,000 calls
//!   cost 500 wake-ups per second, not 50,000, and no 1,000-packet bursts.
//! - the drain task reads (and counts) the caller's RTP and RTCP.
//!
//! Media uses ONE shared RTP socket (and the RTCP socket above it) for every call: every SDP
//! answer names the same port, and each call gets its own SSRC. The sim sends to the address
//! of the caller's SDP offer; it never needs to tell incoming streams apart (it only counts
//! them), so no per-call demultiplexing is done. One socket instead of 1,000 keeps file
//! descriptors and wake-ups flat.
//!
//! It must not decide anything about the population or SIP itself: those are the pure modules
//! below.

mod arrivals;
pub mod population;
pub mod uas;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audio::FRAME_SAMPLES;
use crate::audio::g711::Law;
use crate::rtp::packet::MAX_RTP_DATAGRAM;
use arrivals::CallArrivals;
use population::{BUNDLED_CALLS, PopulationError, catalogue, number_hash};
pub use population::{Playback, PopulationMix, Scenario, ScenarioKind, scenario_for};
pub use uas::{MediaCommand, SimTiming, Uas, UasConfig, UasCounters};

use crate::runtime::clock;

/// The media clock.
const TICK: Duration = Duration::from_millis(20);
/// RTP header (12 bytes) plus one 20 ms G.711 frame.
const RTP_PACKET: usize = 12 + FRAME_SAMPLES;
/// Media commands queued between the SIP task and the media task.
const MEDIA_QUEUE: usize = 8192;

#[derive(Debug, thiserror::Error)]
pub enum CarrierSimError {
    #[error("cannot bind the SIP socket {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("no free even/odd RTP/RTCP port pair in {0:?}")]
    NoRtpPorts(RangeInclusive<u16>),
    #[error("bundled recording {file}: {reason}")]
    Audio { file: &'static str, reason: String },
    #[error(transparent)]
    Population(#[from] PopulationError),
    #[error("invalid option: {0}")]
    Options(&'static str),
    #[error("carrier-sim I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// How to run the sim.
#[derive(Clone, Debug)]
pub struct CarrierSimConfig {
    /// The SIP address (UDP).
    pub listen: SocketAddr,
    /// Where to look for the shared RTP/RTCP port pair (on the SIP address's IP).
    pub rtp_ports: RangeInclusive<u16>,
    pub seed: u64,
    pub mix: PopulationMix,
    pub timing: SimTiming,
    /// Calls held at once (ringing, talking or lingering 32 s after the end); more get `503`.
    pub max_calls: usize,
}

impl Default for CarrierSimConfig {
    fn default() -> Self {
        CarrierSimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 5090)),
            rtp_ports: 31_000..=31_999,
            seed: 1,
            mix: PopulationMix::default(),
            timing: SimTiming::default(),
            max_calls: 20_000,
        }
    }
}

/// Counters of the media task and the drain task.
#[derive(Debug, Default)]
struct MediaCounters {
    rtp_sent: AtomicU64,
    rtp_send_errors: AtomicU64,
    rtp_received: AtomicU64,
    rtcp_received: AtomicU64,
    /// 2 ms media slots skipped because the media clock woke up late.
    ticks_skipped: AtomicU64,
    streams: AtomicU64,
    peak_streams: AtomicU64,
    /// Numbers that got a second new call (INVITE with a new Call-ID), and the most new
    /// calls one number got: a dialer that never dials twice keeps these at 0 and 1.
    numbers_called_twice: AtomicU64,
    max_calls_per_number: AtomicU64,
    /// The most new calls that arrived within any one second (sliding window).
    peak_calls_per_second: AtomicU64,
}

/// What `trunx carrier-sim` prints on exit and [`CarrierSim::counters`] returns.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SimCounters {
    pub seed: u64,
    /// New calls (INVITEs with a new Call-ID).
    pub calls: u64,
    pub calls_by_scenario: BTreeMap<&'static str, u64>,
    /// Answered calls by the recording played.
    pub calls_by_recording: BTreeMap<String, u64>,
    pub answered: u64,
    pub rejected_busy: u64,
    pub rejected_invalid: u64,
    pub cancelled: u64,
    pub ring_cap_reached: u64,
    pub no_acceptable_codec: u64,
    pub overload_rejected: u64,
    pub ack_timeouts: u64,
    pub bye_received: u64,
    pub sim_hangups: u64,
    pub invite_retransmissions: u64,
    pub options: u64,
    pub unknown_dialog: u64,
    pub malformed_dropped: u64,
    pub keepalives: u64,
    pub concurrent_calls: u64,
    pub peak_concurrent_calls: u64,
    pub media_streams: u64,
    pub peak_media_streams: u64,
    pub rtp_packets_sent: u64,
    pub rtp_send_errors: u64,
    pub rtp_packets_received: u64,
    pub rtcp_packets_received: u64,
    pub media_slots_skipped: u64,
    /// Dialled numbers that reached the carrier in more than one new INVITE.
    pub numbers_invited_twice: u64,
    /// New INVITEs by dialled number.
    pub invites_by_number: BTreeMap<String, u64>,
    /// Numbers that got more than one new call, by the sim's own count of INVITEs.
    pub numbers_called_twice: u64,
    pub max_calls_per_number: u64,
    /// The most new calls that arrived within any one second (sliding window).
    pub peak_calls_per_second: u64,
}

impl SimCounters {
    fn from_parts(seed: u64, u: &UasCounters, m: &MediaCounters) -> SimCounters {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SimCounters {
            seed,
            calls: u.calls_by_scenario.iter().sum(),
            calls_by_scenario: ScenarioKind::ALL
                .iter()
                .map(|k| (k.as_str(), u.calls_by_scenario[k.index()]))
                .collect(),
            calls_by_recording: u
                .calls_by_recording
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(i, n)| (catalogue().recordings[i].label.file.clone(), *n))
                .collect(),
            answered: u.answered,
            rejected_busy: u.rejected_busy,
            rejected_invalid: u.rejected_invalid,
            cancelled: u.cancelled,
            ring_cap_reached: u.ring_cap_reached,
            no_acceptable_codec: u.no_acceptable_codec,
            overload_rejected: u.overload_rejected,
            ack_timeouts: u.ack_timeouts,
            bye_received: u.bye_received,
            sim_hangups: u.sim_hangups,
            invite_retransmissions: u.invite_retransmissions,
            options: u.options,
            unknown_dialog: u.unknown_dialog,
            malformed_dropped: u.malformed_dropped,
            keepalives: u.keepalives,
            concurrent_calls: u.concurrent_calls,
            peak_concurrent_calls: u.peak_concurrent_calls,
            media_streams: load(&m.streams),
            peak_media_streams: load(&m.peak_streams),
            rtp_packets_sent: load(&m.rtp_sent),
            rtp_send_errors: load(&m.rtp_send_errors),
            rtp_packets_received: load(&m.rtp_received),
            rtcp_packets_received: load(&m.rtcp_received),
            media_slots_skipped: load(&m.ticks_skipped),
            numbers_invited_twice: u.invites_by_number.values().filter(|n| **n > 1).count() as u64,
            invites_by_number: u.invites_by_number.clone(),
            numbers_called_twice: load(&m.numbers_called_twice),
            max_calls_per_number: load(&m.max_calls_per_number),
            peak_calls_per_second: load(&m.peak_calls_per_second),
        }
    }
}

/// Every bundled recording pre-encoded in both laws, decoded once per process.
struct AudioBank {
    ulaw: Vec<Vec<u8>>,
    alaw: Vec<Vec<u8>>,
}

fn decode_wav(bytes: &[u8]) -> Result<Vec<i16>, String> {
    let reader = hound::WavReader::new(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let spec = reader.spec();
    if spec.sample_rate != 8000 || spec.channels != 1 || spec.bits_per_sample != 16 {
        return Err(format!(
            "{} Hz, {} channel(s), {}-bit; expected 8000 Hz mono 16-bit",
            spec.sample_rate, spec.channels, spec.bits_per_sample
        ));
    }
    reader
        .into_samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())
}

static AUDIO_BANK: LazyLock<Result<AudioBank, CarrierSimError>> = LazyLock::new(|| {
    let mut bank = AudioBank {
        ulaw: Vec::with_capacity(BUNDLED_CALLS.len()),
        alaw: Vec::with_capacity(BUNDLED_CALLS.len()),
    };
    for (file, bytes) in BUNDLED_CALLS {
        let pcm = decode_wav(bytes).map_err(|reason| CarrierSimError::Audio { file, reason })?;
        for (law, out) in [(Law::Ulaw, &mut bank.ulaw), (Law::Alaw, &mut bank.alaw)] {
            let mut codes = vec![0u8; pcm.len()];
            law.encode_into(&pcm, &mut codes);
            out.push(codes);
        }
    }
    Ok(bank)
});

fn audio_bank() -> Result<&'static AudioBank, CarrierSimError> {
    AUDIO_BANK.as_ref().map_err(|e| match e {
        CarrierSimError::Audio { file, reason } => CarrierSimError::Audio {
            file,
            reason: reason.clone(),
        },
        _ => CarrierSimError::Options("audio bank"),
    })
}

/// The G.711 codes a playback sends, in `law`.
pub fn playback_codes(playback: &Playback, law: Law) -> Result<&'static [u8], CarrierSimError> {
    let bank = audio_bank()?;
    let codes = match law {
        Law::Ulaw => &bank.ulaw[playback.recording],
        Law::Alaw => &bank.alaw[playback.recording],
    };
    let end = playback
        .play_ms
        .map(|ms| (ms as usize * 8).min(codes.len()))
        .unwrap_or(codes.len());
    Ok(&codes[..end])
}

/// Receive buffer asked for the shared RTP socket: every caller's media arrives on it, and
/// the default (about 200 KB) overflows when the drain task is not scheduled for a few ms.
const RTP_RECEIVE_BUFFER: usize = 4 << 20;

/// Asks for a larger receive buffer (the kernel caps it at `net.core.rmem_max`). Failure only
/// means more incoming RTP is dropped, which the sim merely counts.
fn grow_receive_buffer(socket: &UdpSocket, bytes: usize) {
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
async fn bind_rtp_pair(
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

/// A running simulated carrier.
pub struct CarrierSim {
    sip: SocketAddr,
    rtp: SocketAddr,
    seed: u64,
    mix: PopulationMix,
    token: CancellationToken,
    tracker: TaskTracker,
    queries: mpsc::Sender<oneshot::Sender<UasCounters>>,
    media: Arc<MediaCounters>,
    sip_task: tokio::task::JoinHandle<UasCounters>,
}

impl CarrierSim {
    /// Binds the sockets and starts the tasks on the current tokio runtime.
    pub async fn start(config: CarrierSimConfig) -> Result<CarrierSim, CarrierSimError> {
        config.mix.validate()?;
        if config.max_calls == 0 {
            return Err(CarrierSimError::Options("max_calls must be positive"));
        }
        let bank = audio_bank()?;
        let socket =
            UdpSocket::bind(config.listen)
                .await
                .map_err(|source| CarrierSimError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let sip = socket.local_addr()?;
        let (rtp_socket, rtcp_socket) = bind_rtp_pair(sip.ip(), &config.rtp_ports).await?;
        let rtp = rtp_socket.local_addr()?;
        grow_receive_buffer(&rtp_socket, RTP_RECEIVE_BUFFER);
        let rtp_socket = Arc::new(rtp_socket);
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let media = Arc::new(MediaCounters::default());
        let (media_tx, media_rx) = mpsc::channel(MEDIA_QUEUE);
        let (queries, queries_rx) = mpsc::channel(16);
        let uas = Uas::new(UasConfig {
            local: sip,
            rtp,
            seed: config.seed,
            mix: config.mix.clone(),
            timing: config.timing.clone(),
            max_calls: config.max_calls,
        });
        let sip_task = tracker.spawn(sip_task(
            socket,
            uas,
            media_tx,
            queries_rx,
            media.clone(),
            token.clone(),
        ));
        tracker.spawn(media_task(
            rtp_socket.clone(),
            bank,
            media_rx,
            media.clone(),
            token.clone(),
        ));
        tracker.spawn(drain_task(
            rtp_socket,
            rtcp_socket,
            media.clone(),
            token.clone(),
        ));
        tracker.close();
        tracing::info!(%sip, %rtp, seed = config.seed, mix = %config.mix, "carrier-sim listening");
        Ok(CarrierSim {
            sip,
            rtp,
            seed: config.seed,
            mix: config.mix,
            token,
            tracker,
            queries,
            media,
            sip_task,
        })
    }

    pub fn sip_addr(&self) -> SocketAddr {
        self.sip
    }

    /// The shared RTP socket every answer names.
    pub fn rtp_addr(&self) -> SocketAddr {
        self.rtp
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn mix(&self) -> &PopulationMix {
        &self.mix
    }

    /// The truth for `number`: what this sim does with a call to it.
    pub fn truth(&self, number: &str) -> Scenario {
        scenario_for(number, &self.mix, self.seed)
    }

    /// A snapshot of the counters.
    pub async fn counters(&self) -> SimCounters {
        let (tx, rx) = oneshot::channel();
        let uas = match self.queries.send(tx).await {
            Ok(()) => rx.await.unwrap_or_default(),
            Err(_) => UasCounters::default(),
        };
        SimCounters::from_parts(self.seed, &uas, &self.media)
    }

    /// Ends every call (BYE or 503), stops the tasks and returns the final counters.
    pub async fn shutdown(self) -> SimCounters {
        self.token.cancel();
        let uas = self.sip_task.await.unwrap_or_default();
        self.tracker.wait().await;
        SimCounters::from_parts(self.seed, &uas, &self.media)
    }
}

async fn sip_task(
    socket: UdpSocket,
    mut uas: Uas,
    media_tx: mpsc::Sender<MediaCommand>,
    mut queries: mpsc::Receiver<oneshot::Sender<UasCounters>>,
    arrivals: Arc<MediaCounters>,
    token: CancellationToken,
) -> UasCounters {
    // One byte more than the limit, so an oversized datagram is seen (and counted) as such.
    let mut buf = vec![0u8; uas::MAX_SIM_DATAGRAM + 1];
    let mut calls = CallArrivals::default();
    let idle = Duration::from_secs(3600);
    loop {
        while let Some(t) = uas.poll_transmit() {
            // A send error (an ICMP-refused caller) loses one datagram; retransmission timers
            // cover it as they would on a real network.
            let _ = socket.send_to(&t.bytes, t.to).await;
        }
        while let Some(m) = uas.poll_media() {
            if media_tx.send(m).await.is_err() {
                break;
            }
        }
        let deadline = uas.poll_timeout().unwrap_or_else(|| clock::now() + idle);
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                if let Ok((n, from)) = r {
                    let before: u64 = uas.counters().calls_by_scenario.iter().sum();
                    let now = clock::now();
                    uas.handle_datagram(now, from, &buf[..n]);
                    if uas.counters().calls_by_scenario.iter().sum::<u64>() > before {
                        calls.new_call(&buf[..n], now, &arrivals);
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => uas.handle_timeout(clock::now()),
            Some(reply) = queries.recv() => {
                let _ = reply.send(uas.counters().clone());
            }
            _ = token.cancelled() => {
                uas.shutdown(clock::now());
                while let Some(t) = uas.poll_transmit() {
                    let _ = socket.send_to(&t.bytes, t.to).await;
                }
                return uas.counters().clone();
            }
        }
    }
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

async fn media_task(
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

async fn drain_task(
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

/// `trunx carrier-sim`: the options.
#[derive(clap::Args, Debug, Clone)]
pub struct CarrierSimArgs {
    /// SIP address (UDP) to listen on.
    #[arg(long, default_value = "127.0.0.1:5090")]
    pub listen: SocketAddr,
    /// Seed of the population: the same seed gives every number the same answer.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Shares in percent, e.g. human=30,machine_beep=35,machine_nobeep=5,busy=8,no_answer=15,invalid=7
    /// (scenarios not named get 0; default: that mix).
    #[arg(long)]
    pub mix: Option<PopulationMix>,
    /// Ports to find the shared RTP/RTCP pair in, MIN-MAX.
    #[arg(long, default_value = "31000-31999")]
    pub rtp_ports: String,
    /// Post-dial delay before 180 (or busy/invalid), ms MIN-MAX, jittered per number.
    #[arg(long, default_value = "50-250")]
    pub alert_ms: String,
    /// Ring time from 180 to the answer, ms MIN-MAX, jittered per number.
    #[arg(long, default_value = "1000-4000")]
    pub answer_ms: String,
    /// Seconds an unanswered call rings before 480.
    #[arg(long, default_value_t = 90)]
    pub ring_cap_secs: u64,
    /// Seconds after which the sim hangs up an answered call itself.
    #[arg(long, default_value_t = 120)]
    pub max_call_secs: u64,
    /// Calls held at once before new ones get 503.
    #[arg(long, default_value_t = 20_000)]
    pub max_calls: usize,
}

impl CarrierSimArgs {
    pub fn config(&self) -> Result<CarrierSimConfig, CarrierSimError> {
        let rtp = population::parse_ms_range(&self.rtp_ports)?;
        let to_port =
            |p: u64| u16::try_from(p).map_err(|_| CarrierSimError::Options("--rtp-ports"));
        Ok(CarrierSimConfig {
            listen: self.listen,
            rtp_ports: to_port(*rtp.start())?..=to_port(*rtp.end())?,
            seed: self.seed,
            mix: self.mix.clone().unwrap_or_default(),
            timing: SimTiming {
                alert_ms: population::parse_ms_range(&self.alert_ms)?,
                answer_ms: population::parse_ms_range(&self.answer_ms)?,
                ring_cap: Duration::from_secs(self.ring_cap_secs),
                max_call: Duration::from_secs(self.max_call_secs),
                ..SimTiming::default()
            },
            max_calls: self.max_calls,
        })
    }
}

/// `trunx carrier-sim`: runs until SIGINT or SIGTERM on two worker threads. Writes one JSON
/// line when listening (`sip`, `rtp`, `seed`, `mix`) and one with the counters on exit.
pub fn run_until_signal(
    args: &CarrierSimArgs,
    out: &mut dyn Write,
) -> Result<SimCounters, CarrierSimError> {
    let config = args.config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let sim = CarrierSim::start(config).await?;
        let ready = serde_json::json!({
            "event": "listening",
            "sip": sim.sip_addr().to_string(),
            "rtp": sim.rtp_addr().to_string(),
            "seed": sim.seed(),
            "mix": sim.mix(),
        });
        writeln!(out, "{ready}")?;
        out.flush()?;
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        let counters = sim.shutdown().await;
        writeln!(
            out,
            "{}",
            serde_json::to_string(&counters).map_err(std::io::Error::other)?
        )?;
        out.flush()?;
        Ok(counters)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_recording_decodes_and_cuts_stay_inside() {
        let bank = audio_bank().unwrap();
        assert_eq!(bank.ulaw.len(), catalogue().recordings.len());
        for p in catalogue().nobeep_machines.iter() {
            let codes = playback_codes(p, Law::Alaw).unwrap();
            let full = &bank.alaw[p.recording];
            match p.play_ms {
                Some(ms) => assert_eq!(codes.len(), (ms as usize * 8).min(full.len())),
                None => assert_eq!(codes.len(), full.len()),
            }
        }
    }

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
