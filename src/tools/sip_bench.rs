//! `trunx bench sip`: a load run of call setups against a real UAS. One task owns one UDP
//! socket and many sans-IO `OutboundCall`s (dispatched by Call-ID), starts calls at a fixed
//! rate up to a concurrency cap, hangs each up as soon as it is answered, and reports the
//! achieved rate, setup latency (INVITE to 200) and failures. No media.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::UdpSocket;

use crate::sip::call::{CallEvent, CallParams, Ids, OutboundCall, Outcome, Timers};
use crate::sip::sdp;

use crate::runtime::call::routing::call_id_of;
use crate::runtime::clock;

#[derive(Clone, Debug)]
pub struct SipBenchOptions {
    pub target: SocketAddr,
    pub local: SocketAddr,
    pub calls: usize,
    pub cps: f64,
    pub concurrent: usize,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct SipBenchReport {
    pub calls: usize,
    pub answered: usize,
    pub failures: usize,
    pub failure_causes: HashMap<String, usize>,
    pub seconds: f64,
    pub achieved_cps: f64,
    pub setup_ms: SetupLatency,
    pub datagrams_sent: u64,
    pub datagrams_received: u64,
    pub unmatched: u64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct SetupLatency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum SipBenchError {
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid options: {0}")]
    Options(&'static str),
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Live {
    call: OutboundCall,
    started: Instant,
    answered: bool,
}

pub async fn run(opts: &SipBenchOptions) -> Result<SipBenchReport, SipBenchError> {
    if opts.calls == 0 || opts.cps <= 0.0 || opts.concurrent == 0 {
        return Err(SipBenchError::Options(
            "calls, cps and concurrent must be positive",
        ));
    }
    let socket = UdpSocket::bind(opts.local).await?;
    let local = socket.local_addr()?;
    let offer = sdp::offer(local.ip(), 40_000, 1, 1);
    let interval = Duration::from_secs_f64(1.0 / opts.cps);
    let start = clock::now();
    let mut next_start = start;
    let mut started = 0usize;
    let mut live: HashMap<String, Live> = HashMap::new();
    let mut report = SipBenchReport {
        calls: opts.calls,
        ..SipBenchReport::default()
    };
    let mut latencies = Vec::with_capacity(opts.calls);
    let mut buf = vec![0u8; 65_535];
    let seed = clock::wall_now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let mut finished = 0usize;
    while finished < opts.calls {
        let now = clock::now();
        // Start calls on the rate grid, never more than `concurrent` at once.
        while started < opts.calls && now >= next_start && live.len() < opts.concurrent {
            let n = started as u64;
            let ids = Ids {
                call_id: format!("{:x}-{n}@bench", seed),
                from_tag: format!("b{n}"),
                seed: seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            };
            let call = OutboundCall::new(
                now,
                CallParams {
                    request_uri: format!("sip:+1555{:07}@{}", n % 10_000_000, opts.target),
                    from_uri: format!("sip:+15550001111@{}", local.ip()),
                    p_asserted_identity: None,
                    local,
                    trunk: opts.target,
                    sdp_offer: offer.clone(),
                    username: None,
                    password: None,
                    ring_timeout: Duration::from_secs(30),
                    timers: Timers::default(),
                },
                ids.clone(),
            );
            live.insert(
                ids.call_id,
                Live {
                    call,
                    started: now,
                    answered: false,
                },
            );
            started += 1;
            next_start += interval;
        }
        // Flush what the calls want to send and collect their events.
        let mut done = Vec::new();
        for (id, l) in live.iter_mut() {
            while let Some(t) = l.call.poll_transmit() {
                socket.send_to(&t.bytes, t.to).await?;
                report.datagrams_sent += 1;
            }
            while let Some(event) = l.call.poll_event() {
                match event {
                    CallEvent::Answered { .. } => {
                        l.answered = true;
                        latencies.push(now.duration_since(l.started).as_secs_f64() * 1000.0);
                        l.call.hangup(now);
                        while let Some(t) = l.call.poll_transmit() {
                            socket.send_to(&t.bytes, t.to).await?;
                            report.datagrams_sent += 1;
                        }
                    }
                    CallEvent::Ended(Outcome::Completed { .. }) => {}
                    CallEvent::Ended(other) => {
                        report.failures += 1;
                        *report
                            .failure_causes
                            .entry(format!("{other:?}"))
                            .or_default() += 1;
                    }
                    CallEvent::Ringing { .. } => {}
                }
            }
            if l.call.is_terminated() {
                done.push(id.clone());
            }
        }
        for id in done {
            if let Some(l) = live.remove(&id) {
                finished += 1;
                report.answered += l.answered as usize;
            }
        }
        if finished >= opts.calls {
            break;
        }
        let mut deadline = live
            .values()
            .filter_map(|l| l.call.poll_timeout())
            .min()
            .unwrap_or(now + Duration::from_millis(100));
        if started < opts.calls && live.len() < opts.concurrent {
            deadline = deadline.min(next_start);
        }
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let (n, from) = r?;
                report.datagrams_received += 1;
                let now = clock::now();
                match call_id_of(&buf[..n]).and_then(|id| live.get_mut(id)) {
                    Some(l) => l.call.handle_datagram(now, from, &buf[..n]),
                    None => report.unmatched += 1,
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                let now = clock::now();
                for l in live.values_mut() {
                    if l.call.poll_timeout().is_some_and(|t| t <= now) {
                        l.call.handle_timeout(now);
                    }
                }
            }
        }
    }
    report.seconds = clock::seconds_since(start);
    report.achieved_cps = opts.calls as f64 / report.seconds.max(1e-9);
    latencies.sort_by(|a, b| a.total_cmp(b));
    report.setup_ms = SetupLatency {
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        max: latencies.last().copied().unwrap_or(0.0),
    };
    Ok(report)
}
