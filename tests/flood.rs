//! Floods while real calls run: junk SIP (garbage, truncated messages, INVITE/OPTIONS from an
//! unknown source), junk RTP/RTCP and well-formed RTP from a foreign source and SSRC, sent as
//! fast as one thread can (target `FLOOD_PPS`, default 50,000 packets/s) at the SIP ports and
//! the RTP/RTCP ports of 50 live calls: 40 against the carrier simulator and 10 against real
//! sipp UASes streaming recorded calls. The same calls are placed once quietly and once under
//! the flood: the AMD results (and beep ends) must not change, the junk is counted in
//! `trunx_sip_dropped_total` / `trunx_rtp_dropped_total` and dropped, the flooder gets no
//! answer at all (no amplification) and memory stays bounded.

mod common;

use std::net::{SocketAddr, UdpSocket as StdUdp};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Sipp, completed, start_sipp, ulaw_file};
use trunx::amd::AmdConfig;
use trunx::runtime::amd::files::load_beep_model;
use trunx::runtime::call::dial::{DialOptions, DialReport, dial};
use trunx::runtime::metrics;
use trunx::tools::carrier_sim::{
    CarrierSim, CarrierSimConfig, PopulationMix, Scenario, SimTiming, scenario_for,
};

const SEED: u64 = 42;
/// Calls against the carrier simulator (half people, half voicemails with a beep).
const SIM_CALLS: usize = 40;
/// Calls against sipp UASes (one sipp per call, half people, half voicemails).
const SIPP_CALLS: usize = 10;
const CALLS: usize = SIM_CALLS + SIPP_CALLS;
const SIP_BASE: u16 = 34_600;
const RTP_BASE: u16 = 34_700;
const SIPP_SIP_BASE: u16 = 34_950;
const SIPP_MEDIA_BASE: u16 = 35_000;
const HUMAN_WAV: &str = "0008-human_hello_hello.wav";
const MACHINE_WAV: &str = "0087-machine_beep_single.wav";

fn numbers(n: usize, accept: impl Fn(Scenario) -> bool) -> Vec<String> {
    (0..400_000)
        .map(|i| format!("+1555{i:07}"))
        .filter(|n| accept(scenario_for(n, &PopulationMix::default(), SEED)))
        .take(n)
        .collect()
}

fn plays(s: Scenario, files: &[&str]) -> bool {
    s.playback().is_some_and(|p| files.contains(&p.file()))
}

/// The recording sipp call `k` streams: even calls a person, odd ones a voicemail.
fn sipp_wav(k: usize) -> &'static str {
    if k.is_multiple_of(2) {
        HUMAN_WAV
    } else {
        MACHINE_WAV
    }
}

/// One sipp UAS per sipp call, each for one call, streaming its recording.
fn start_sipps(dir: &Path) -> Vec<Sipp> {
    (0..SIPP_CALLS)
        .map(|k| {
            // Each sipp gets its own copy: rewriting a shared file while another sipp caches it
            // makes that sipp exit with "Cannot read/cache rtpstream file".
            let sub = dir.join(format!("sipp{k}"));
            std::fs::create_dir_all(&sub).unwrap();
            let audio = ulaw_file(&sub, sipp_wav(k));
            start_sipp(
                &sub,
                "uas_stream.xml",
                Some(&audio),
                SIPP_SIP_BASE + k as u16,
                SIPP_MEDIA_BASE + 10 * k as u16,
            )
        })
        .collect()
}

/// Where call `i` goes: the simulator for the first `SIM_CALLS`, then sipp `i - SIM_CALLS`.
fn trunk_of(i: usize, sim: SocketAddr) -> SocketAddr {
    if i < SIM_CALLS {
        sim
    } else {
        SocketAddr::from(([127, 0, 0, 1], SIPP_SIP_BASE + (i - SIM_CALLS) as u16))
    }
}

async fn place_all(sim: SocketAddr, phones: &[String]) -> Vec<DialReport> {
    let model = load_beep_model(None, None).unwrap_or_else(|e| panic!("{e}"));
    let calls = phones.iter().enumerate().map(|(i, number)| {
        let options = DialOptions {
            target: number.clone(),
            from: "+15550001111".into(),
            trunk: format!("sip:{}", trunk_of(i, sim)),
            username: None,
            password: None,
            ring_timeout: Duration::from_secs(20),
            sip_addr: SocketAddr::from(([127, 0, 0, 1], SIP_BASE + i as u16)),
            rtp_ports: RTP_BASE + 4 * i as u16..=RTP_BASE + 4 * i as u16 + 1,
            send_pai: false,
            voicemail: None,
            agent: None,
            campaign_id: None,
        };
        let model = model.clone();
        async move {
            tokio::time::timeout(
                Duration::from_secs(60),
                dial(&options, &AmdConfig::default(), Some(model)),
            )
            .await
            .expect("the call finishes")
            .expect("the call runs")
        }
    });
    futures_util::future::join_all(calls).await
}

/// Places every call with fresh sipp UASes; each sipp must see its BYE.
async fn place_round(sim: SocketAddr, phones: &[String], dir: &Path) -> Vec<DialReport> {
    let mut sipps = start_sipps(dir);
    // sipp needs a moment to bind its sockets (Timer A would retransmit anyway).
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (k, sipp) in sipps.iter_mut().enumerate() {
        let exited = sipp.0.try_wait().unwrap();
        let stderr = std::fs::read_to_string(dir.join(format!("sipp{k}/sipp.stderr")));
        assert!(
            exited.is_none(),
            "sipp {k} exited before its call: {exited:?} {stderr:?}"
        );
    }
    let reports = place_all(sim, phones).await;
    for (k, sipp) in sipps.into_iter().enumerate() {
        let report = &reports[SIM_CALLS + k];
        assert!(
            completed(sipp).await,
            "sipp {k} did not end its scenario after the call: {report:?}"
        );
    }
    reports
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[derive(Debug, Default)]
struct FloodReport {
    sent: u64,
    send_errors: u64,
    sip_requests_sent_bytes: u64,
    answers_received: u64,
    answer_bytes_received: u64,
    seconds: f64,
}

/// One thread, one socket (the "unknown source"): a rotating mix of junk at the targets.
fn flood(
    stop: Arc<AtomicBool>,
    sip: Vec<SocketAddr>,
    media: Vec<SocketAddr>,
    pps: u64,
) -> FloodReport {
    let sock = StdUdp::bind("127.0.0.1:0").unwrap();
    sock.set_nonblocking(true).unwrap();
    let mut r = FloodReport::default();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let start = trunx::runtime::clock::now();
    let mut buf = [0u8; 2048];
    let mut rx = [0u8; 65_536];
    let mut i: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        // Pace in bursts of 64 against the target rate.
        let due = (start.elapsed().as_secs_f64() * pps as f64) as u64;
        if i >= due {
            pace(Duration::from_micros(200));
            while let Ok(n) = sock.recv(&mut rx) {
                r.answers_received += 1;
                r.answer_bytes_received += n as u64;
            }
            continue;
        }
        for _ in 0..64 {
            let v = rnd();
            let (to, len) = match i % 8 {
                // Garbage at a SIP port.
                0 => {
                    let len = 1 + (v % 400) as usize;
                    for b in buf[..len].iter_mut() {
                        *b = rnd() as u8;
                    }
                    (sip[(v >> 32) as usize % sip.len()], len)
                }
                // An INVITE or OPTIONS from an unknown source (a scanner), sometimes truncated.
                1 | 2 => {
                    let method = if i % 8 == 1 { "INVITE" } else { "OPTIONS" };
                    let m = format!(
                        "{method} sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bK{v:x}\r\nFrom: <sip:scan@10.9.9.9>;tag={v:x}\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: flood-{v:x}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\nContact: <sip:scan@10.9.9.9>\r\nContent-Length: 0\r\n\r\n"
                    );
                    let len = if v % 5 == 0 {
                        (v as usize >> 8) % m.len()
                    } else {
                        m.len()
                    };
                    buf[..len].copy_from_slice(&m.as_bytes()[..len]);
                    r.sip_requests_sent_bytes += len as u64;
                    (sip[(v >> 32) as usize % sip.len()], len)
                }
                // Well-formed PCMU RTP from a foreign source and SSRC (an injection attempt).
                3 | 4 => {
                    let hdr = [
                        0x80,
                        0x00,
                        (v >> 8) as u8,
                        v as u8,
                        (v >> 16) as u8,
                        (v >> 24) as u8,
                        0,
                        0,
                        0xDE,
                        0xAD,
                        (v >> 40) as u8,
                        (v >> 48) as u8,
                    ];
                    buf[..12].copy_from_slice(&hdr);
                    buf[12..172].fill(0x00); // loud μ-law: it would show in the AMD if it got in
                    (media[(v >> 32) as usize % media.len()], 172)
                }
                // Junk RTP/RTCP: random bytes with a version-2 first octet.
                _ => {
                    let len = 4 + (v % 200) as usize;
                    for b in buf[..len].iter_mut() {
                        *b = rnd() as u8;
                    }
                    buf[0] = 0x80 | (buf[0] & 0x3F);
                    if i.is_multiple_of(2) {
                        buf[1] = 200 + (v % 5) as u8;
                    }
                    (media[(v >> 32) as usize % media.len()], len)
                }
            };
            match sock.send_to(&buf[..len], to) {
                Ok(_) => r.sent += 1,
                Err(_) => r.send_errors += 1,
            }
            i += 1;
        }
    }
    r.seconds = start.elapsed().as_secs_f64();
    pace(Duration::from_millis(300));
    while let Ok(n) = sock.recv(&mut rx) {
        r.answers_received += 1;
        r.answer_bytes_received += n as u64;
    }
    r
}

fn counter(name: &str, reason: &str) -> u64 {
    let text = metrics::global().render();
    let key = format!("{name}{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_keep_their_amd_results_under_a_junk_flood() {
    let sim = CarrierSim::start(CarrierSimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        rtp_ports: 34_400..=34_599,
        seed: SEED,
        mix: PopulationMix::default(),
        timing: SimTiming {
            alert_ms: 20..=50,
            answer_ms: 100..=300,
            ..SimTiming::default()
        },
        max_calls: 1000,
    })
    .await
    .expect("the sim starts");
    let mut phones = numbers(SIM_CALLS / 2, |s| {
        matches!(s, Scenario::Human { .. }) && plays(s, &[HUMAN_WAV])
    });
    phones.extend(numbers(SIM_CALLS - phones.len(), |s| {
        matches!(s, Scenario::MachineBeep { .. }) && plays(s, &[MACHINE_WAV])
    }));
    phones.extend((0..SIPP_CALLS).map(|k| format!("+1555900{k:04}")));
    assert_eq!(phones.len(), CALLS);
    let dir = tempfile::tempdir().unwrap();

    let quiet = place_round(sim.sip_addr(), &phones, dir.path()).await;
    for (i, r) in quiet.iter().enumerate() {
        assert_eq!(r.outcome, "answered", "{r:?}");
        let wav = if i < SIM_CALLS {
            if i < SIM_CALLS / 2 {
                HUMAN_WAV
            } else {
                MACHINE_WAV
            }
        } else {
            sipp_wav(i - SIM_CALLS)
        };
        let want = if wav == HUMAN_WAV {
            "human"
        } else {
            "machine_end_beep"
        };
        assert_eq!(r.amd, Some(want), "call {i} ({wav}): {r:?}");
    }

    let pps: u64 = std::env::var("FLOOD_PPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let sip: Vec<SocketAddr> = (0..CALLS as u16)
        .map(|i| SocketAddr::from(([127, 0, 0, 1], SIP_BASE + i)))
        .collect();
    let media: Vec<SocketAddr> = (0..CALLS as u16)
        .flat_map(|i| [0, 1].map(|k| SocketAddr::from(([127, 0, 0, 1], RTP_BASE + 4 * i + k))))
        .collect();
    let before = (
        counter("trunx_sip_dropped_total", "unrouted"),
        counter("trunx_rtp_dropped_total", "foreign"),
        counter("trunx_rtp_dropped_total", "malformed")
            + counter("trunx_rtp_dropped_total", "rtcp_malformed")
            + counter("trunx_rtp_dropped_total", "before_answer"),
    );
    let rss_before = rss_kb();
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let stop = stop.clone();
        std::thread::spawn(move || flood(stop, sip, media, pps))
    };
    // The flood is on before the calls start and lasts until they all ended.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let loud = place_round(sim.sip_addr(), &phones, dir.path()).await;
    stop.store(true, Ordering::Relaxed);
    let f = tokio::task::spawn_blocking(move || flooder.join().unwrap())
        .await
        .unwrap();
    let rss_after = rss_kb();
    let after = (
        counter("trunx_sip_dropped_total", "unrouted"),
        counter("trunx_rtp_dropped_total", "foreign"),
        counter("trunx_rtp_dropped_total", "malformed")
            + counter("trunx_rtp_dropped_total", "rtcp_malformed")
            + counter("trunx_rtp_dropped_total", "before_answer"),
    );
    let rate = f.sent as f64 / f.seconds;
    eprintln!(
        "flood: {} packets in {:.1} s = {:.0} packets/s (target {pps}), send errors {}; \
         dropped: sip unrouted {}, rtp foreign {}, rtp/rtcp junk {}; answers to the flooder {} \
         ({} bytes for {} bytes of requests); RSS {} -> {} kB",
        f.sent,
        f.seconds,
        rate,
        f.send_errors,
        after.0 - before.0,
        after.1 - before.1,
        after.2 - before.2,
        f.answers_received,
        f.answer_bytes_received,
        f.sip_requests_sent_bytes,
        rss_before,
        rss_after
    );
    let skipped = sim.counters().await.media_slots_skipped;
    let lost = |r: &[DialReport]| r.iter().map(|d| d.rx_lost + d.rx_late).sum::<u64>();
    eprintln!(
        "frames lost or late at the receiver: quiet {}, flooded {}; sim media slots skipped {skipped}",
        lost(&quiet),
        lost(&loud)
    );
    for (q, l) in quiet.iter().zip(&loud) {
        assert_eq!(l.outcome, "answered", "{l:?}");
        assert_eq!(
            l.amd, q.amd,
            "the flood changed the AMD result: {q:?} vs {l:?}"
        );
        if let (Some(a), Some(b)) = (q.beep_end_ms, l.beep_end_ms) {
            assert!(
                a.abs_diff(b) <= 60,
                "beep end {a} ms quiet, {b} ms flooded (sim media slots skipped: {skipped}): \
                 {q:?} vs {l:?}"
            );
        }
        assert!(!l.no_media, "{l:?}");
    }
    assert!(
        f.sent as f64 > 5.0 * f.seconds * 1000.0,
        "the flood ran: {f:?}"
    );
    // Junk was counted: SIP from the unknown source never routed, RTP injections dropped.
    assert!(
        after.0 - before.0 > f.sent / 8,
        "unrouted SIP counted: {before:?} {after:?}"
    );
    assert!(
        after.1 > before.1,
        "foreign RTP counted: {before:?} {after:?}"
    );
    assert!(
        after.2 > before.2,
        "junk RTP/RTCP counted: {before:?} {after:?}"
    );
    // No amplification: the unknown source got nothing back.
    assert!(
        f.answer_bytes_received <= f.sip_requests_sent_bytes,
        "{f:?}"
    );
    assert_eq!(f.answers_received, 0, "the flooder was answered: {f:?}");
    assert!(
        rss_after < rss_before + 64 * 1024,
        "RSS {rss_before} -> {rss_after} kB"
    );
    sim.shutdown().await;
}

/// The flooders are plain threads outside the system under test; they pace themselves.
#[allow(clippy::disallowed_methods)]
fn pace(d: Duration) {
    std::thread::sleep(d)
}
