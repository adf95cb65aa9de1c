//! The voicemail drop against a real far end: baresip (Debian baresip-core) answers like a
//! voicemail box or a person, plays a recorded greeting, and records what it hears (`sndfile`
//! module). The prepared message is found in that recording by cross-correlation: it must start
//! where the call flow says (after the beep, after the greeting's end silence, right after the
//! `human` decision), be all there, and be followed by our BYE. A last test measures the start
//! delay after the labelled beep over every recorded machine call with a beep.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustfft::FftPlanner;
use rustfft::num_complex::Complex64;
use trunx::amd::bench::{Label, parse_labels};
use trunx::amd::{AmdConfig, AmdEventKind};
use trunx::audio::prompt::{Prompt, PromptOptions};
use trunx::audio::wav::read_telephone_wav;
use trunx::call::replay::message_start;
use trunx::runtime::amd::files::load_beep_model;
use trunx::runtime::call::dial::{DialOptions, DialReport, dial};

/// The far end's budget: the message must start within this of the end of the greeting's
/// beep (or of the `human` decision, or of the end silence).
const START_BUDGET_MS: u64 = 150;

/// The p95 on the wire of the message's first packet after the labelled end of a beep. Its
/// floor is the detector's wait for a multi-tone beep's next tone (60 ms: one hop more than
/// the longest gap between tones, `beep_gap_ms`), the wait for a next tone group of the same
/// sequence (`beep_sequence_wait_ms`, 200 ms) and the rest of the deciding 20 ms frame.
const BEEP_WIRE_P95_MS: i64 = 300;

/// How far the estimate of the far end's packet clock (the median of its packets' send times
/// less their audio times) may be off for one packet: baresip's packets leave within a few ms
/// of their slots (measured -0.1 and -1.6 ms for a message started the moment the deciding
/// frame arrived).
const WIRE_CLOCK_TOLERANCE_MS: f64 = 5.0;

/// The real-peer tests run one after another: concurrent calls on a loaded 2-core machine
/// would measure the machine, not the dialer.
static PEERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn calls_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("audio-fixtures/calls")
}

fn labels() -> Vec<Label> {
    parse_labels(&std::fs::read_to_string(calls_dir().join("labels.csv")).unwrap()).unwrap()
}

fn label_of(wav: &str) -> Label {
    labels().into_iter().find(|l| l.file == wav).unwrap()
}

/// A `key=value` number from a label's notes.
fn note_ms(label: &Label, key: &str) -> u64 {
    label
        .notes
        .split(';')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        .unwrap_or_else(|| panic!("{}: no {key} in {:?}", label.file, label.notes))
}

fn fixture(wav: &str) -> Vec<i16> {
    read_telephone_wav(&calls_dir().join(wav)).unwrap()
}

/// The prepared message.
fn message() -> Arc<Prompt> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("audio-fixtures/prompts/voicemail-10s.mp3");
    Arc::new(Prompt::load(&path, &PromptOptions::default()).unwrap())
}

/// A baresip that auto-answers on its own ports, plays `greeting` and records the call.
struct FarEnd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    capture: Option<Stopped>,
    /// The ports of this call: baresip's SIP port, trunx's SIP port, trunx's RTP range.
    sip_port: u16,
    local_sip_port: u16,
    local_rtp: u16,
}

impl FarEnd {
    /// `slot` keeps concurrent tests apart: every port of the call is offset by 100 * slot.
    async fn start(slot: u16, greeting: &[i16]) -> FarEnd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (sip_port, rtp_low) = (16070 + 100 * slot, 18050 + 100 * slot);
        // Room after the greeting for our message: baresip hangs up when its file ends.
        let baresip = common::baresip_setup(d, sip_port, rtp_low, "vm", greeting, 16);
        let capture = start_capture(d, rtp_low - 50, rtp_low + 40).await;
        let log = std::fs::File::create(d.join("baresip.log")).unwrap();
        let child = Command::new(baresip)
            .args(["-f", &d.display().to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("baresip starts");
        tokio::time::sleep(Duration::from_millis(1000)).await;
        FarEnd {
            dir,
            child: Some(child),
            capture: Some(capture),
            sip_port,
            local_sip_port: sip_port - 8,
            local_rtp: rtp_low - 50,
        }
    }

    /// Calls this far end with `trunx dial --voicemail` and the real beep model.
    async fn drop_message(&self, prompt: &Arc<Prompt>) -> DialReport {
        let options = DialOptions {
            target: format!("sip:vm@127.0.0.1:{}", self.sip_port),
            from: "+15550001111".into(),
            trunk: format!("sip:127.0.0.1:{}", self.sip_port),
            username: None,
            password: None,
            ring_timeout: Duration::from_secs(10),
            sip_addr: format!("127.0.0.1:{}", self.local_sip_port)
                .parse()
                .unwrap(),
            // One pair, so the capture knows which port is ours.
            rtp_ports: self.local_rtp..=self.local_rtp + 1,
            send_pai: false,
            voicemail: Some(prompt.clone()),
            agent: None,
            campaign_id: None,
        };
        let model = load_beep_model(None, None).unwrap_or_else(|e| panic!("{e}"));
        tokio::time::timeout(
            Duration::from_secs(60),
            dial(&options, &AmdConfig::default(), Some(model)),
        )
        .await
        .expect("the call finishes")
        .unwrap()
    }

    /// Stops baresip (after a moment for the call's end to reach it) and returns what it
    /// heard and whether it saw our BYE.
    async fn finish(self) -> Heard {
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Stopping the peers and reading the capture block for a second or two: off the
        // runtime, so that a concurrent call's media keeps flowing.
        tokio::task::spawn_blocking(move || self.stop_and_read())
            .await
            .expect("reading the call's results does not panic")
    }

    fn stop_and_read(mut self) -> Heard {
        let log = std::fs::read_to_string(self.dir.path().join("baresip.log")).unwrap();
        drop(self.child.take().map(|c| Stopped(c, libc::SIGTERM)));
        drop(self.capture.take());
        let wire = read_capture(&self.dir.path().join("call.pcap"), self.local_rtp);
        let recording = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .expect("baresip recorded what it heard");
        Heard {
            pcm: read_telephone_wav(&recording)
                .unwrap()
                .iter()
                .map(|s| *s as f64)
                .collect(),
            // What baresip 1.0 logs when the peer's BYE closes the session.
            got_bye: log.contains("session closed: Connection reset by peer"),
            log,
            wire,
        }
    }
}

/// Stops a peer we started when dropped (also on a failed assertion): baresip with SIGTERM,
/// tshark with SIGINT so that it completes its capture file.
struct Stopped(Child, i32);

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of a child we started.
        unsafe {
            libc::kill(self.0.id() as i32, self.1);
        }
        let _ = self.0.wait();
    }
}

fn binary(name: &str, package: &str) -> PathBuf {
    ["/usr/bin", "/usr/sbin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: run `make deps` (apt-get install -y {package})")
        })
}

/// tshark on loopback, an observer independent of both ends, capturing the call's RTP
/// (ports `low..=high`) into DIR/call.pcap; returns once it is capturing.
async fn start_capture(dir: &Path, low: u16, high: u16) -> Stopped {
    let mut child = Command::new(binary("tshark", "tshark"))
        .args([
            "-i",
            "lo",
            "-f",
            &format!("udp portrange {low}-{high}"),
            "-F",
            "pcap",
        ])
        .args(["-w", &dir.join("call.pcap").display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tshark starts");
    let stderr = child.stderr.take().unwrap();
    let ready = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("Capturing on"))
    });
    let capture = Stopped(child, libc::SIGINT);
    assert!(
        tokio::time::timeout(Duration::from_secs(30), ready)
            .await
            .expect("tshark starts capturing within 30 s")
            .unwrap(),
        "tshark did not start capturing"
    );
    capture
}

/// One captured RTP packet.
struct Packet {
    /// Seconds since the start of the capture.
    time: f64,
    marker: bool,
    timestamp: u32,
    payload: Vec<u8>,
}

/// The call's RTP as seen on loopback: what the far end sent us and what we sent it.
struct Wire {
    theirs: Vec<Packet>,
    ours: Vec<Packet>,
}

fn read_capture(pcap: &Path, our_port: u16) -> Wire {
    let out = Command::new(binary("tshark", "tshark"))
        .args(["-r", &pcap.display().to_string()])
        .args(["-o", "rtp.heuristic_rtp:TRUE", "-Y", "rtp", "-T", "fields"])
        .args([
            "-e",
            "frame.time_relative",
            "-e",
            "udp.srcport",
            "-e",
            "udp.dstport",
        ])
        .args(["-e", "rtp.marker", "-e", "rtp.timestamp"])
        .args(["-e", "rtp.payload"])
        .output()
        .expect("tshark reads the capture");
    let mut wire = Wire {
        theirs: Vec::new(),
        ours: Vec::new(),
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        let [time, src, dst, marker, timestamp, payload] = cols[..] else {
            continue;
        };
        let packet = Packet {
            time: time.parse().unwrap(),
            marker: marker == "1" || marker == "True",
            timestamp: timestamp.parse().unwrap(),
            // Hex, with or without colons between the bytes (tshark versions differ).
            payload: payload
                .replace(':', "")
                .as_bytes()
                .chunks(2)
                .map(|b| u8::from_str_radix(std::str::from_utf8(b).unwrap(), 16).unwrap())
                .collect(),
        };
        if src.parse::<u16>().unwrap() == our_port {
            wire.ours.push(packet);
        } else if dst.parse::<u16>().unwrap() == our_port {
            wire.theirs.push(packet);
        }
    }
    assert!(
        wire.theirs.len() > 50 && wire.ours.len() > 50,
        "the capture holds {} packets from the far end and {} from trunx",
        wire.theirs.len(),
        wire.ours.len()
    );
    wire
}

impl Wire {
    /// When (capture seconds) the far end sent the sample at `audio_ms` of its stream: the
    /// packet holding it leaves once its last sample is in, so each packet gives the stream's
    /// origin as its time minus the audio up to its end; the median over the packets within
    /// a second of `audio_ms` absorbs the sender's scheduling jitter.
    fn their_time_of(&self, audio_ms: u64) -> f64 {
        let first = self.theirs[0].timestamp;
        let mut origins: Vec<f64> = self
            .theirs
            .iter()
            .map(|p| {
                let end_ms = (p.timestamp.wrapping_sub(first) as u64 + 160) / 8;
                (end_ms, p.time - end_ms as f64 / 1000.0)
            })
            .filter(|(end_ms, _)| end_ms.abs_diff(audio_ms) <= 1000)
            .map(|(_, origin)| origin)
            .collect();
        assert!(
            origins.len() > 10,
            "no far-end packets around {audio_ms} ms"
        );
        origins.sort_by(f64::total_cmp);
        origins[origins.len() / 2] + audio_ms as f64 / 1000.0
    }

    /// Our packets from the start of the message: the one with the marker bit after the first
    /// (the stream's own first packet carries one too) and all after it.
    fn message(&self) -> &[Packet] {
        let markers: Vec<usize> = (1..self.ours.len())
            .filter(|&i| self.ours[i].marker)
            .collect();
        assert_eq!(
            markers.len(),
            1,
            "one talk spurt (the message) after the first packet"
        );
        &self.ours[markers[0]..]
    }
}

impl Drop for FarEnd {
    fn drop(&mut self) {
        drop(self.child.take().map(|c| Stopped(c, libc::SIGTERM)));
        drop(self.capture.take());
    }
}

struct Heard {
    pcm: Vec<f64>,
    got_bye: bool,
    log: String,
    wire: Wire,
}

impl Heard {
    /// Where (ms into the recording) the message starts, and its normalised correlation.
    fn message_at(&self, prompt: &Prompt) -> (u64, f64) {
        let sent: Vec<f64> = prompt.pcm.iter().map(|s| *s as f64).collect();
        let (lag, corr) = find(&self.pcm, &sent);
        (lag as u64 / 8, corr)
    }
}

/// Lag (samples) and normalised correlation of `needle` inside `hay` (zero-padded at the end,
/// so a message cut short by the hang-up still matches).
fn find(hay: &[f64], needle: &[f64]) -> (usize, f64) {
    let n = (hay.len() + 2 * needle.len()).next_power_of_two();
    let mut planner = FftPlanner::<f64>::new();
    let (fwd, inv) = (planner.plan_fft_forward(n), planner.plan_fft_inverse(n));
    let mut a: Vec<Complex64> = (0..n)
        .map(|i| Complex64::new(*hay.get(i).unwrap_or(&0.0), 0.0))
        .collect();
    let mut b: Vec<Complex64> = (0..n)
        .map(|i| Complex64::new(*needle.get(i).unwrap_or(&0.0), 0.0))
        .collect();
    fwd.process(&mut a);
    fwd.process(&mut b);
    let mut c: Vec<Complex64> = a.iter().zip(&b).map(|(x, y)| x * y.conj()).collect();
    inv.process(&mut c);
    let lag = (0..hay.len())
        .max_by(|&i, &j| c[i].re.total_cmp(&c[j].re))
        .unwrap();
    let seg: Vec<f64> = (0..needle.len())
        .map(|i| *hay.get(lag + i).unwrap_or(&0.0))
        .collect();
    let dot: f64 = seg.iter().zip(needle).map(|(x, y)| x * y).sum();
    let e1: f64 = seg.iter().map(|x| x * x).sum();
    let e2: f64 = needle.iter().map(|x| x * x).sum();
    (lag, dot / (e1 * e2).sqrt())
}

/// The checks every drop shares: the whole message went out on the wire, each frame where its
/// RTP timestamp puts it (at most 1% skipped by late wake-ups), it arrived whole (given a
/// minimum, the correlation in baresip's recording), and our BYE ended the call. Returns the wire delay (ms) from the far end's sample at `reference_ms` to our first
/// message packet, asserted to be positive and, given a budget, within it.
fn assert_complete_drop(
    what: &str,
    report: &DialReport,
    heard: &Heard,
    prompt: &Prompt,
    reference_ms: u64,
    budget_ms: Option<u64>,
    min_correlation: Option<f64>,
) -> f64 {
    assert_eq!(report.outcome, "answered", "{what}: {report:?}");
    assert_eq!(
        report.played_ms,
        Some(prompt.duration_ms()),
        "{what}: {report:?}"
    );
    let sent = heard.wire.message();
    let frames = if sent[0].payload == prompt.alaw_frames[0]
        && prompt.ulaw_frames[0] != prompt.alaw_frames[0]
    {
        &prompt.alaw_frames
    } else {
        &prompt.ulaw_frames
    };
    // Each packet must carry the frame its RTP timestamp says; frames whose send slot a late
    // wake-up missed are skipped by design (the pacer keeps the wall-clock grid).
    let mut carried = vec![false; frames.len()];
    for packet in sent
        .iter()
        .take_while(|p| (p.timestamp.wrapping_sub(sent[0].timestamp) as usize) / 160 < frames.len())
    {
        let index = packet.timestamp.wrapping_sub(sent[0].timestamp) as usize / 160;
        assert_eq!(
            packet.payload,
            frames[index].as_slice(),
            "{what}: message frame {index} differs"
        );
        carried[index] = true;
    }
    let missing: Vec<usize> = (0..frames.len()).filter(|&i| !carried[i]).collect();
    assert!(
        missing.len() * 100 <= frames.len(),
        "{what}: {} of {} message frames never went out: {missing:?}",
        missing.len(),
        frames.len()
    );
    let missing = missing.len();
    let delay_ms = (sent[0].time - heard.wire.their_time_of(reference_ms)) * 1000.0;
    // The far end's clock is an estimate (see WIRE_CLOCK_TOLERANCE_MS): a message started the
    // moment the deciding frame arrived (the human decision at a frame's end) may read as a
    // little before it.
    assert!(
        delay_ms > -WIRE_CLOCK_TOLERANCE_MS && budget_ms.is_none_or(|b| delay_ms <= b as f64),
        "{what}: the message left {delay_ms:.1} ms after the far end's {reference_ms} ms, budget {budget_ms:?} ms; {report:?}"
    );
    let (recorded_ms, corr) = heard.message_at(prompt);
    assert!(
        min_correlation.is_none_or(|min| corr >= min),
        "{what}: the message is not all there: correlation {corr:.3}"
    );
    assert!(
        heard.got_bye,
        "{what}: baresip saw no BYE; its log:\n{}",
        heard.log
    );
    if missing > 0 {
        eprintln!("{what}: {missing} message frames skipped by late wake-ups");
    }
    eprintln!(
        "{what}: message on the wire {delay_ms:.1} ms after the far end's {reference_ms} ms; \
         in baresip's recording at {recorded_ms} ms ({:+} ms), correlation {corr:.3}",
        recorded_ms as i64 - reference_ms as i64
    );
    delay_ms
}

#[tokio::test]
async fn the_message_starts_right_after_the_beep_and_is_complete() {
    let _peers = PEERS.lock().await;
    let wav = "0087-machine_beep_single.wav";
    let (_, beep_end_ms) = label_of(wav).beep_ms.unwrap();
    let prompt = message();
    let far = FarEnd::start(1, &fixture(wav)).await;
    let report = far.drop_message(&prompt).await;
    let heard = far.finish().await;
    assert_eq!(report.amd, Some("machine_end_beep"), "{report:?}");
    assert_eq!(report.machine_end, Some("beep"), "{report:?}");
    assert_eq!(report.message, Some("voicemail"), "{report:?}");
    assert_complete_drop(
        "beep",
        &report,
        &heard,
        &prompt,
        beep_end_ms,
        // The detector waits beep_sequence_wait_ms for a next tone before it reports a beep.
        Some(START_BUDGET_MS + u64::from(AmdConfig::default().beep_sequence_wait_ms)),
        Some(0.9),
    );
}

/// A long machine greeting with its beep replaced by the line noise of the gap before it:
/// a box that ends its greeting in silence. Returns the audio and where the greeting ends.
fn greeting_without_beep(wav: &str) -> (Vec<i16>, u64) {
    let label = label_of(wav);
    let (beep_start_ms, _) = label.beep_ms.unwrap();
    let greeting_end_ms = beep_start_ms - note_ms(&label, "beep_gap_ms");
    let mut pcm = fixture(wav);
    let noise: Vec<i16> =
        pcm[(greeting_end_ms as usize + 20) * 8..(beep_start_ms as usize - 20) * 8].to_vec();
    for (i, s) in pcm[(beep_start_ms as usize - 20) * 8..]
        .iter_mut()
        .enumerate()
    {
        *s = noise[i % noise.len()];
    }
    (pcm, greeting_end_ms)
}

#[tokio::test]
async fn without_a_beep_the_message_starts_after_the_end_silence_and_is_complete() {
    let _peers = PEERS.lock().await;
    // The one labelled machine_nobeep fixture (0000) has a 2.2 s greeting that the detector
    // takes for a person (a known miss in `trunx bench amd`), so the end-silence path is
    // driven by a long greeting whose beep is taken out.
    let (greeting, greeting_end_ms) = greeting_without_beep("0076-machine_long.wav");
    let end_silence_ms = AmdConfig::default().greeting_end_silence_ms as u64;
    let prompt = message();
    let far = FarEnd::start(2, &greeting).await;
    let report = far.drop_message(&prompt).await;
    let heard = far.finish().await;
    assert_eq!(report.amd, Some("machine"), "{report:?}");
    assert_eq!(report.machine_end, Some("silence"), "{report:?}");
    assert_eq!(report.beep_end_ms, None, "{report:?}");
    assert_eq!(report.message, Some("voicemail"), "{report:?}");
    assert_complete_drop(
        "end silence",
        &report,
        &heard,
        &prompt,
        greeting_end_ms,
        Some(end_silence_ms + START_BUDGET_MS),
        Some(0.9),
    );
}

#[tokio::test]
async fn a_person_gets_the_message_right_after_the_human_decision() {
    let _peers = PEERS.lock().await;
    let prompt = message();
    let far = FarEnd::start(3, &fixture("0014-human_short.wav")).await;
    let report = far.drop_message(&prompt).await;
    let heard = far.finish().await;
    assert_eq!(report.amd, Some("human"), "{report:?}");
    assert_eq!(report.machine_end, None, "{report:?}");
    assert_eq!(report.message, Some("humanConnected"), "{report:?}");
    let amd_ms = report.amd_ms.unwrap();
    assert_eq!(report.playback_start_ms, Some(amd_ms), "{report:?}");
    assert_complete_drop(
        "human",
        &report,
        &heard,
        &prompt,
        amd_ms,
        Some(START_BUDGET_MS),
        Some(0.9),
    );
}

/// p50, p95 and max of a set of delays (nearest rank).
fn percentiles(delays: &[i64]) -> (i64, i64, i64) {
    let mut sorted = delays.to_vec();
    sorted.sort_unstable();
    let rank =
        |p: f64| sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
    (rank(0.50), rank(0.95), *sorted.last().unwrap())
}

/// Every labelled machine call with a beep.
fn beep_fixtures() -> Vec<(String, u64)> {
    let fixtures: Vec<(String, u64)> = labels()
        .into_iter()
        .filter_map(|l| Some((l.file.clone(), l.beep_ms?.1)))
        .collect();
    assert!(
        fixtures.len() >= 10,
        "only {} beep fixtures",
        fixtures.len()
    );
    fixtures
}

#[test]
fn in_audio_time_every_beep_fixture_gets_the_message_after_its_last_tone() {
    // Replayed frame by frame as a live call feeds the detector; the delay a far end hears is
    // the end of the deciding frame (a call's frames reach the detector as soon as they
    // arrive; the jitter buffer's delay only bounds the wait for a lost packet).
    let model = load_beep_model(None, None).unwrap_or_else(|e| panic!("{e}"));
    let mut delays = Vec::new();
    for (wav, beep_end_ms) in beep_fixtures() {
        let start = message_start(&fixture(&wav), &AmdConfig::default(), Some(model.clone()))
            .unwrap_or_else(|| panic!("{wav}: the message never starts"));
        assert!(
            matches!(start.trigger.kind, AmdEventKind::MachineEndBeep { .. }),
            "{wav}: the message starts on {:?}",
            start.trigger
        );
        let delay = start.frame_end.as_ms() as i64 - beep_end_ms as i64;
        eprintln!(
            "{wav}: decision {} ms, delay {delay} ms",
            start.trigger.at.as_ms()
        );
        delays.push((wav, delay));
    }
    let values: Vec<i64> = delays.iter().map(|d| d.1).collect();
    let (p50, p95, max) = percentiles(&values);
    eprintln!(
        "audio-time start delay after the labelled beep end over {} calls: p50 {p50} ms, p95 {p95} ms, max {max} ms",
        values.len()
    );
    // Never before the end of the last tone, and within the wait for a next tone (one hop
    // more than the longest gap between the tones of one beep) plus the rest of its frame.
    let wait =
        (AmdConfig::default().beep_gap_ms + AmdConfig::default().beep_sequence_wait_ms) as i64 + 10;
    for (wav, delay) in &delays {
        assert!(
            (1..=wait + 20).contains(delay),
            "{wav}: the message starts {delay} ms after the beep end"
        );
    }
}

#[test]
fn against_baresip_every_beep_fixture_gets_the_message_right_after_the_beep() {
    let _peers = PEERS.blocking_lock();
    // Every labelled beep call through the real path, two calls at a time, each on its own
    // thread and runtime like two independent dialers (so one call's analysis never stalls
    // the other's media): baresip plays the
    // recorded call and records what trunx sends. The delay after the labelled beep end is
    // taken from the JSON (`playback_start_ms`, the audio time of the decision) and on the wire
    // (tshark: our first message packet against the far end's packet clock). Under load
    // baresip's own recording drops frames, so here the wire, not the recording, proves the
    // message complete.
    let prompt = message();
    // Every beep fixture, then the multi-tone and dual ones again (where a message could start
    // between two tones): at least 20 calls.
    let mut fixtures = beep_fixtures();
    let again: Vec<(String, u64)> = labels()
        .into_iter()
        .filter(|l| {
            ["beep=seq", "beep=triple", "beep=dual"]
                .iter()
                .any(|k| l.notes.contains(k))
        })
        .filter_map(|l| Some((l.file.clone(), l.beep_ms?.1)))
        .collect();
    fixtures.extend(again);
    assert!(fixtures.len() >= 20, "only {} calls", fixtures.len());
    let mut results = Vec::new();
    for pair in fixtures.chunks(2) {
        let mut calls = Vec::new();
        for (i, (wav, beep_end_ms)) in pair.iter().cloned().enumerate() {
            let prompt = prompt.clone();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            calls.push(std::thread::spawn(move || {
                runtime.block_on(async move {
                    let far = FarEnd::start(4 + i as u16, &fixture(&wav)).await;
                    let report = far.drop_message(&prompt).await;
                    let heard = far.finish().await;
                    assert_eq!(report.machine_end, Some("beep"), "{wav}: {report:?}");
                    assert_eq!(report.message, Some("voicemail"), "{wav}: {report:?}");
                    let json = report.playback_start_ms.unwrap() as i64 - beep_end_ms as i64;
                    let wire = assert_complete_drop(
                        &wav,
                        &report,
                        &heard,
                        &prompt,
                        beep_end_ms,
                        None,
                        None,
                    )
                    .round() as i64;
                    eprintln!("{wav}: JSON delay {json} ms, wire delay {wire} ms");
                    (wav, json, wire)
                })
            }));
        }
        for call in calls {
            results.push(call.join().expect("the call's thread ends without a panic"));
        }
    }
    let json: Vec<i64> = results.iter().map(|r| r.1).collect();
    let wire: Vec<i64> = results.iter().map(|r| r.2).collect();
    let (j50, j95, jmax) = percentiles(&json);
    let (w50, w95, wmax) = percentiles(&wire);
    eprintln!(
        "start delay after the labelled beep end over {} calls: JSON playback_start_ms p50 {j50} / p95 {j95} / max {jmax} ms; on the wire p50 {w50} / p95 {w95} / max {wmax} ms",
        results.len()
    );
    // Never over the tone: every first packet leaves after the labelled end of the last tone.
    // The wire p95 must hold BEEP_WIRE_P95_MS (measured 78 ms over 22 calls on a loaded 2-core machine,
    // from 146 ms before frames reached the detector at arrival).
    for (wav, json, wire) in &results {
        assert!(
            (1..=(START_BUDGET_MS + AmdConfig::default().beep_sequence_wait_ms as u64) as i64)
                .contains(json),
            "{wav}: by the JSON, the message starts {json} ms after the beep end"
        );
        assert!(
            (1..=(START_BUDGET_MS + AmdConfig::default().beep_sequence_wait_ms as u64) as i64)
                .contains(wire),
            "{wav}: on the wire, the message starts {wire} ms after the beep end"
        );
    }
    assert!(w95 <= BEEP_WIRE_P95_MS, "wire p95 {w95} ms");
}
