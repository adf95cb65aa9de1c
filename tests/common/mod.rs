//! Real peers shared by the peer tests: sipp as the carrier's UAS and kamailio as its edge
//! proxy, each stopped when its guard drops. A missing peer fails the test loudly with the
//! command that installs it.
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use trunx::audio::g711::Law;
use trunx::audio::wav::read_telephone_wav;

pub fn sipp_path() -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("sipp"))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("sipp is not installed: run `make deps` (apt-get install -y sip-tester)")
    })
}

pub struct Sipp(pub Child);

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts sipp as a UAS on `port` (media on `media_port`) with a scenario from tests/peers.
pub fn start_sipp(
    dir: &Path,
    scenario: &str,
    audio: Option<&Path>,
    port: u16,
    media_port: u16,
) -> Sipp {
    start_sipp_calls(dir, scenario, audio, port, media_port, 1)
}

/// Starts sipp as a UAS that ends after `calls` calls.
pub fn start_sipp_calls(
    dir: &Path,
    scenario: &str,
    audio: Option<&Path>,
    port: u16,
    media_port: u16,
    calls: usize,
) -> Sipp {
    let template = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/peers")
            .join(scenario),
    )
    .unwrap();
    let text = match audio {
        Some(a) => template.replace("@AUDIO@", &a.display().to_string()),
        None => template,
    };
    let path = dir.join(scenario);
    std::fs::write(&path, text).unwrap();
    let child = Command::new(sipp_path())
        .args(["-sf", &path.display().to_string()])
        .args(["-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-mi", "127.0.0.1", "-mp", &media_port.to_string()])
        .args(["-m", &calls.to_string(), "-nostdin", "-timeout", "120s"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("sipp.stderr")).unwrap())
        .spawn()
        .expect("sipp starts");
    Sipp(child)
}

/// Waits (bounded) for sipp to finish its scenario and returns whether it completed.
pub async fn completed(mut sipp: Sipp) -> bool {
    for _ in 0..100 {
        if let Some(status) = sipp.0.try_wait().unwrap() {
            return status.success();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A golden call as raw u-law, the format sipp's rtp_stream plays.
pub fn ulaw_file(dir: &Path, wav: &str) -> PathBuf {
    let pcm = read_telephone_wav(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("audio-fixtures/calls")
            .join(wav),
    )
    .unwrap();
    let mut codes = vec![0u8; pcm.len()];
    Law::Ulaw.encode_into(&pcm, &mut codes);
    let path = dir.join(wav.replace(".wav", ".ulaw"));
    std::fs::write(&path, codes).unwrap();
    path
}

/// Kamailio as the carrier's edge proxy: digest-challenges every INVITE, then relays to sipp.
pub struct Kamailio(pub Child);

impl Drop for Kamailio {
    fn drop(&mut self) {
        // Kamailio runs in its own process group with its workers; its SIGTERM shutdown can
        // wait a minute for busy workers, so stop the whole group at once.
        // SAFETY: kill(2) on the process group of a child we started in its own group.
        unsafe {
            libc::kill(-(self.0.id() as i32), libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

/// Waits until kamailio answers on `port` (it replies 405 to OPTIONS), at most 20 s.
pub async fn kamailio_ready(port: u16) {
    let probe = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let options = format!(
        "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKready\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:127.0.0.1:{port}>\r\nCall-ID: ready\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        probe.local_addr().unwrap()
    );
    let mut buf = [0u8; 2048];
    for _ in 0..100 {
        probe
            .send_to(options.as_bytes(), ("127.0.0.1", port))
            .await
            .unwrap();
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(200), probe.recv_from(&mut buf)).await
        {
            return;
        }
    }
    panic!("kamailio did not answer on port {port}");
}

pub fn start_kamailio(dir: &Path, port: u16, uas_port: u16) -> Kamailio {
    let binary = ["/usr/sbin/kamailio", "/usr/bin/kamailio"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("kamailio is not installed: run `make deps` (apt-get install -y kamailio)")
        });
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/kamailio.cfg");
    let child = Command::new(binary)
        .process_group(0)
        .args([
            "-f",
            &config.display().to_string(),
            "-DD",
            "-E",
            "-m",
            "64",
            "-M",
            "8",
        ])
        .args(["-P", &dir.join("kamailio.pid").display().to_string()])
        .args(["-Y", &dir.display().to_string()])
        .args(["-l", &format!("udp:127.0.0.1:{port}")])
        .args(["-A", &format!("UAS=\"sip:127.0.0.1:{uas_port}\"")])
        .args(["-A", "REALM=\"trunx.test\"", "-A", "AUTH_USER=\"dialer\""])
        .args(["-A", "AUTH_PASS=\"s3cret\""])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kamailio starts");
    Kamailio(child)
}

/// Number prefixes across the world's time zones (each followed by 4 digits is a valid
/// E.164 number), so at any hour some are inside the voice calling window and some are not.
const ZONE_PREFIXES: [&str; 14] = [
    "+1212555", "+1312555", "+1213555", "+1808555", "+1907555", "+4420794", "+4930901", "+9122610",
    "+8135550", "+6128555", "+6493555", "+5511355", "+9714555", "+2711555",
];

/// `n` numbers that may be called now and for at least the next `margin_ms` (the voice
/// window, 08:00-21:00 in their zone).
pub fn numbers_open_now(n: usize, margin_ms: i64) -> Vec<String> {
    use trunx::campaign::window::{VOICE_WINDOW, WindowCheck, check};
    let now = trunx::runtime::clock::wall_ms();
    let prefix = ZONE_PREFIXES
        .iter()
        .find(|p| {
            matches!(check(&format!("{p}0000"), &VOICE_WINDOW, now),
                WindowCheck::Open { closes_at_ms } if closes_at_ms - now >= margin_ms)
        })
        .expect("some zone of the list is inside its calling window");
    (0..n).map(|i| format!("{prefix}{:04}", i)).collect()
}

/// `n` numbers that may not be called now nor for the next `margin_ms`.
pub fn numbers_closed_now(n: usize, margin_ms: i64) -> Vec<String> {
    use trunx::campaign::window::{VOICE_WINDOW, WindowCheck, check};
    let now = trunx::runtime::clock::wall_ms();
    let prefix = ZONE_PREFIXES
        .iter()
        .find(|p| {
            matches!(check(&format!("{p}0000"), &VOICE_WINDOW, now),
                WindowCheck::Closed { opens_at_ms: Some(t), .. } if t - now >= margin_ms)
        })
        .expect("some zone of the list is outside its calling window");
    (0..n).map(|i| format!("{prefix}{:04}", 5000 + i)).collect()
}

/// Writes baresip's configuration into `d`: SIP on `sip_port`, RTP on `rtp_low..rtp_low+40`,
/// auto-answer as `user`, play `greeting` then `tail_s` seconds of silence (baresip hangs up
/// when its file ends), record what it hears. Returns the baresip binary.
pub fn baresip_setup(
    d: &Path,
    sip_port: u16,
    rtp_low: u16,
    user: &str,
    greeting: &[i16],
    tail_s: usize,
) -> PathBuf {
    let mut padded = greeting.to_vec();
    padded.extend(std::iter::repeat_n(0i16, 8000 * tail_s));
    trunx::audio::wav::write_telephone_wav(&d.join("greeting.wav"), &padded).unwrap();
    std::fs::write(
        d.join("config"),
        format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\nnet_interface 127.0.0.1\n\
             audio_source aufile,{}\naudio_player alsa,null\naudio_alert alsa,null\n\
             rtp_ports {rtp_low}-{}\nsnd_path {}\nmodule_path /usr/lib/baresip/modules\n\
             module g711.so\nmodule aufile.so\nmodule alsa.so\nmodule sndfile.so\n\
             module_app account.so\nmodule_app menu.so\n",
            d.join("greeting.wav").display(),
            rtp_low + 40,
            d.display()
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("accounts"),
        format!(
            "<sip:{user}@127.0.0.1:{sip_port}>;regint=0;answermode=auto;audio_codecs=PCMU,PCMA\n"
        ),
    )
    .unwrap();
    ["/usr/bin/baresip", "/usr/local/bin/baresip"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("baresip is not installed: run `make deps` (apt-get install -y baresip-core)")
        })
}

/// baresip (Debian baresip-core) as the callee: auto-answers on its own ports, plays a
/// greeting, and records what it hears (`*-dec.wav`). Stopped with SIGTERM when dropped.
pub struct Baresip {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    pub sip_port: u16,
}

impl Baresip {
    /// Plays `greeting` followed by `tail_s` seconds of silence (baresip hangs up when its
    /// file ends), RTP on `rtp_low..rtp_low+40`.
    pub async fn start(sip_port: u16, rtp_low: u16, greeting: &[i16], tail_s: usize) -> Baresip {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let baresip = baresip_setup(d, sip_port, rtp_low, "callee", greeting, tail_s);
        let log = std::fs::File::create(d.join("baresip.log")).unwrap();
        let child = Command::new(baresip)
            .args(["-f", &d.display().to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("baresip starts");
        tokio::time::sleep(Duration::from_millis(1000)).await;
        Baresip {
            dir,
            child: Some(child),
            sip_port,
        }
    }

    /// Stops baresip and returns what it recorded (8 kHz PCM) and its log.
    pub fn stop_and_read(mut self) -> (Vec<i16>, String) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on the pid of a child we started.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let _ = c.wait();
        }
        let log = std::fs::read_to_string(self.dir.path().join("baresip.log")).unwrap();
        let recording = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .unwrap_or_else(|| panic!("baresip recorded nothing; its log:\n{log}"));
        (read_telephone_wav(&recording).unwrap(), log)
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `n` numbers inside the SMS window (07:00-19:00 in their zone) now and for at least the
/// next `margin_ms`.
pub fn sms_numbers_open_now(n: usize, margin_ms: i64) -> Vec<String> {
    use trunx::campaign::window::{SMS_WINDOW, WindowCheck, check};
    let now = trunx::runtime::clock::wall_ms();
    let prefix = ZONE_PREFIXES
        .iter()
        .find(|p| {
            matches!(check(&format!("{p}0000"), &SMS_WINDOW, now),
                WindowCheck::Open { closes_at_ms } if closes_at_ms - now >= margin_ms)
        })
        .expect("some zone of the list is inside its SMS window");
    (0..n).map(|i| format!("{prefix}{:04}", i)).collect()
}
