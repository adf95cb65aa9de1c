//! The built-in simulated carrier: a SIP UAS on UDP that answers like a real population of
//! numbers, using the bundled recorded calls (`trunx carrier-sim`, `trunx demo`, `trunx bench
//! load`). Which answer a number gets is [`population::scenario_for`] (pure, seeded, the same
//! in every process); the SIP behaviour per call is the sans-IO [`uas::Uas`]. This file owns
//! the I/O: the sockets, three tasks, the 20 ms media clock and the signals of the CLI; the
//! RTP socket pair, the media task and the drain task are in `media`.
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
mod media;
pub mod population;
pub mod uas;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audio::g711::Law;
use arrivals::CallArrivals;
use media::{RTP_RECEIVE_BUFFER, bind_rtp_pair, drain_task, grow_receive_buffer, media_task};
use population::{BUNDLED_CALLS, PopulationError, catalogue};
pub use population::{Playback, PopulationMix, Scenario, ScenarioKind, scenario_for};
pub use uas::{MediaCommand, SimTiming, Uas, UasConfig, UasCounters};

use crate::runtime::clock;

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
}
