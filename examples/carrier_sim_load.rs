//! Load driver for the simulated carrier: holds many answered calls on a running
//! `trunx carrier-sim` and measures that process's CPU while they stream. It is a light caller
//! (trunx's sans-IO `OutboundCall`s on one SIP socket, one RTP socket that counts what the sim
//! sends, optionally silence sent back on the 20 ms grid, no AMD), so the figure is the sim's
//! cost, not the dialer's.
//!
//! ```text
//! trunx carrier-sim --listen 127.0.0.1:5090 --seed 1 --answer-ms 200-1000 &
//! cargo run --release --example carrier_sim_load -- 127.0.0.1:5090 $! 1000 100 20 1 1
//!   (SIM_ADDR SIM_PID CALLS CPS PLATEAU_SECS SEED SEND_MEDIA)
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;
use trunx::runtime::call::routing::call_id_of;
use trunx::runtime::clock;
use trunx::sip::call::{CallEvent, CallParams, Ids, OutboundCall, Timers};
use trunx::sip::sdp;
use trunx::tools::carrier_sim::{PopulationMix, scenario_for};

/// CPU seconds (user + system) of a process, from /proc/PID/stat.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the process runs");
    let rest = stat.rsplit_once(") ").expect("a stat line").1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // SAFETY: sysconf only reads a system constant.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

struct Live {
    call: OutboundCall,
    media_to: Option<SocketAddr>,
    ended: bool,
    /// Which 2 ms slot of the 20 ms grid this call sends in (spread like real calls).
    phase: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 8 {
        eprintln!("usage: SIM_ADDR SIM_PID CALLS CPS PLATEAU_SECS SEED SEND_MEDIA(0|1)");
        std::process::exit(2);
    }
    let sim: SocketAddr = args[1].parse().expect("SIM_ADDR");
    let pid = args[2].clone();
    let calls: usize = args[3].parse().expect("CALLS");
    let cps: f64 = args[4].parse().expect("CPS");
    let plateau = Duration::from_secs(args[5].parse().expect("PLATEAU_SECS"));
    let seed: u64 = args[6].parse().expect("SEED");
    let send_media = args[7] == "1";

    let mix = PopulationMix::default();
    let numbers: Vec<String> = (0..)
        .map(|i| format!("+1444{i:07}"))
        .filter(|n| scenario_for(n, &mix, seed).expected_outcome() == "answered")
        .take(calls)
        .collect();

    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    let rtp = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    // All calls share this socket: a large receive buffer keeps the count honest when the
    // driver's thread is not scheduled for a few milliseconds (each of trunx's calls has its
    // own socket, so the dialer does not need this).
    {
        use std::os::fd::AsRawFd;
        let size: libc::c_int = 4 << 20;
        // SAFETY: setsockopt on a socket we own, with a c_int option value of the right size.
        unsafe {
            libc::setsockopt(
                rtp.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    let offer = sdp::offer(local.ip(), rtp.local_addr().unwrap().port(), 1, 1);
    let received = Arc::new(AtomicU64::new(0));
    {
        let (rtp, received) = (rtp.clone(), received.clone());
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while rtp.recv_from(&mut buf).await.is_ok() {
                received.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    let start = clock::now();
    let interval = Duration::from_secs_f64(1.0 / cps);
    let mut next_start = start;
    let mut next_media = start;
    let mut media_slot = 0u64;
    let mut live: HashMap<String, Live> = HashMap::new();
    let mut started = 0usize;
    let (mut answered, mut failed) = (0usize, 0usize);
    let mut plateau_start: Option<(std::time::Instant, f64, f64, u64, u64)> = None;
    let mut hung_up = false;
    let mut buf = vec![0u8; 65_535];
    let mut silence = [0xFFu8; 172];
    silence[..12].copy_from_slice(&[0x80, 0, 0, 1, 0, 0, 0, 0, 0x10, 0xAD, 0, 1]);
    let mut sent_media = 0u64;
    loop {
        let now = clock::now();
        while !hung_up && started < calls && now >= next_start {
            let n = started as u64;
            let ids = Ids {
                call_id: format!("load-{n}@{local}"),
                from_tag: format!("l{n}"),
                seed: n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5EED,
            };
            let call = OutboundCall::new(
                now,
                CallParams {
                    request_uri: format!("sip:{}@{sim}", numbers[started]),
                    from_uri: format!("sip:+15550001111@{}", local.ip()),
                    p_asserted_identity: None,
                    local,
                    trunk: sim,
                    sdp_offer: offer.clone(),
                    username: None,
                    password: None,
                    ring_timeout: Duration::from_secs(60),
                    timers: Timers::default(),
                },
                ids.clone(),
            );
            live.insert(
                ids.call_id,
                Live {
                    call,
                    media_to: None,
                    ended: false,
                    phase: n % 10,
                },
            );
            started += 1;
            next_start += interval;
        }
        for l in live.values_mut() {
            while let Some(t) = l.call.poll_transmit() {
                let _ = socket.send_to(&t.bytes, t.to).await;
            }
            while let Some(event) = l.call.poll_event() {
                match event {
                    CallEvent::Answered { media } => {
                        answered += 1;
                        l.media_to = media.map(|m| m.remote_rtp);
                    }
                    CallEvent::Ended(o) => {
                        if !l.ended && !hung_up {
                            failed += 1;
                            eprintln!("call ended early: {o:?}");
                        }
                        l.ended = true;
                        l.media_to = None;
                    }
                    CallEvent::Ringing { .. } => {}
                }
            }
        }
        live.retain(|_, l| !l.call.is_terminated());
        if hung_up && live.is_empty() {
            break;
        }
        // All calls up: measure the plateau, then hang everything up.
        if plateau_start.is_none() && answered + failed == calls {
            plateau_start = Some((
                now,
                cpu_seconds(&pid),
                cpu_seconds("self"),
                received.load(Ordering::Relaxed),
                sent_media,
            ));
            eprintln!(
                "{answered} calls answered after {:.1} s; measuring {plateau:?}",
                clock::seconds_since(start)
            );
        }
        if let Some((t0, sim0, self0, rx0, tx0)) = plateau_start
            && !hung_up
            && now >= t0 + plateau
        {
            let secs = now.duration_since(t0).as_secs_f64();
            let report = serde_json::json!({
                "concurrent_calls": answered,
                "failed": failed,
                "plateau_s": (secs * 10.0).round() / 10.0,
                "sim_cpu_percent_of_one_core": ((cpu_seconds(&pid) - sim0) / secs * 1000.0).round() / 10.0,
                "driver_cpu_percent_of_one_core": ((cpu_seconds("self") - self0) / secs * 1000.0).round() / 10.0,
                "rtp_received_per_s": ((received.load(Ordering::Relaxed) - rx0) as f64 / secs).round(),
                "rtp_sent_to_sim_per_s": ((sent_media - tx0) as f64 / secs).round(),
            });
            println!("{report}");
            hung_up = true;
            for l in live.values_mut() {
                l.call.hangup(now);
            }
            continue;
        }
        if send_media && !hung_up && now >= next_media {
            let phase = media_slot % 10;
            for l in live.values().filter(|l| l.phase == phase) {
                if let Some(to) = l.media_to
                    && rtp.send_to(&silence, to).await.is_ok()
                {
                    sent_media += 1;
                }
            }
            media_slot += 1;
            next_media += Duration::from_millis(2);
        }
        let mut deadline = live
            .values()
            .filter_map(|l| l.call.poll_timeout())
            .min()
            .unwrap_or(now + Duration::from_millis(100));
        if started < calls {
            deadline = deadline.min(next_start);
        }
        if send_media {
            deadline = deadline.min(next_media);
        }
        if let Some((t0, ..)) = plateau_start {
            deadline = deadline.min(t0 + plateau);
        }
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { continue };
                if let Some(l) = call_id_of(&buf[..n]).and_then(|id| live.get_mut(id)) {
                    l.call.handle_datagram(clock::now(), from, &buf[..n]);
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
}
