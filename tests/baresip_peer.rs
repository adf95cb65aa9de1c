//! A two-way call with a real softphone: baresip (Debian baresip-core) auto-answers and plays a
//! recorded human "hello"; trunx calls it, runs the AMD and hangs up. tshark (Debian tshark),
//! an independent observer on loopback, counts the RTP in both directions: 50 packets a second
//! each way. `make deps` installs both.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use trunx::amd::AmdConfig;
use trunx::runtime::amd::files::load_beep_model;
use trunx::runtime::call::dial::{DialOptions, dial};

fn binary(name: &str, package: &str) -> PathBuf {
    ["/usr/bin", "/usr/sbin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: run `make deps` (apt-get install -y {package})")
        })
}

struct Killed(Child, i32);

impl Drop for Killed {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of a child we started.
        unsafe {
            libc::kill(self.0.id() as i32, self.1);
        }
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_two_way_call_with_baresip_carries_50_packets_a_second_each_way() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The greeting: a golden human answer, padded so baresip does not hang up first.
    let pcm = trunx::audio::wav::read_telephone_wav(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("audio-fixtures/calls/0014-human_short.wav"),
    )
    .unwrap();
    let mut padded = pcm.clone();
    padded.extend(std::iter::repeat_n(0i16, 8000 * 3));
    trunx::audio::wav::write_telephone_wav(&d.join("greeting.wav"), &padded).unwrap();
    std::fs::write(
        d.join("config"),
        format!(
            "poll_method epoll\nsip_listen 127.0.0.1:16970\nnet_interface 127.0.0.1\n\
             audio_source aufile,{}\naudio_player alsa,null\naudio_alert alsa,null\n\
             rtp_ports 18950-18990\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\n\
             module aufile.so\nmodule alsa.so\nmodule_app account.so\nmodule_app menu.so\n",
            d.join("greeting.wav").display()
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("accounts"),
        "<sip:vm@127.0.0.1:16970>;regint=0;answermode=auto;audio_codecs=PCMU,PCMA\n",
    )
    .unwrap();

    let pcap = d.join("call.pcap");
    let mut tshark = Command::new(binary("tshark", "tshark"))
        .args(["-i", "lo", "-f", "udp portrange 18900-18990", "-F", "pcap"])
        .args(["-w", &pcap.display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tshark starts");
    // Wait for "Capturing on" before placing the call.
    let stderr = tshark.stderr.take().unwrap();
    let ready = tokio::task::spawn_blocking(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("Capturing on"))
    });
    let tshark = Killed(tshark, libc::SIGINT);
    assert!(
        tokio::time::timeout(Duration::from_secs(20), ready)
            .await
            .unwrap()
            .unwrap(),
        "tshark did not start capturing"
    );
    let baresip = Killed(
        Command::new(binary("baresip", "baresip-core"))
            .args(["-f", &d.display().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("baresip starts"),
        libc::SIGTERM,
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let model = load_beep_model(None, None).unwrap_or_else(|e| panic!("{e}"));
    let options = DialOptions {
        target: "sip:vm@127.0.0.1:16970".into(),
        from: "+15550001111".into(),
        trunk: "sip:127.0.0.1:16970".into(),
        username: None,
        password: None,
        ring_timeout: Duration::from_secs(10),
        sip_addr: "127.0.0.1:16962".parse().unwrap(),
        rtp_ports: 18900..=18920,
        send_pai: false,
        voicemail: None,
        agent: None,
        campaign_id: None,
    };
    let report = tokio::time::timeout(
        Duration::from_secs(30),
        dial(&options, &AmdConfig::default(), Some(model)),
    )
    .await
    .expect("the call finishes")
    .unwrap();
    assert_eq!(report.outcome, "answered", "{report:?}");
    assert_eq!(report.amd, Some("human"), "{report:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(baresip);
    drop(tshark);

    let fields = Command::new(binary("tshark", "tshark"))
        .args([
            "-r",
            &pcap.display().to_string(),
            "-o",
            "rtp.heuristic_rtp:TRUE",
            "-Y",
            "rtp",
        ])
        .args([
            "-T",
            "fields",
            "-e",
            "udp.srcport",
            "-e",
            "frame.time_relative",
        ])
        .output()
        .expect("tshark reads the capture");
    let text = String::from_utf8_lossy(&fields.stdout);
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for line in text.lines() {
        let mut cols = line.split_whitespace();
        let (Some(port), Some(t)) = (cols.next(), cols.next()) else {
            continue;
        };
        let (port, t): (u16, f64) = (port.parse().unwrap(), t.parse().unwrap());
        if (18900..=18920).contains(&port) {
            ours.push(t);
        } else {
            theirs.push(t);
        }
    }
    // RTCP from our odd port: at least the BYE report sent when we hung up.
    let all = Command::new(binary("tshark", "tshark"))
        .args([
            "-r",
            &pcap.display().to_string(),
            "-T",
            "fields",
            "-e",
            "udp.srcport",
        ])
        .output()
        .expect("tshark reads the capture");
    let rtcp_from_us = String::from_utf8_lossy(&all.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<u16>().ok())
        .filter(|p| (18901..=18921).contains(p) && p % 2 == 1)
        .count();
    assert!(rtcp_from_us >= 1, "no RTCP from trunx");
    for (who, times) in [("trunx -> baresip", &ours), ("baresip -> trunx", &theirs)] {
        assert!(times.len() >= 60, "{who}: only {} RTP packets", times.len());
        let span = times.last().unwrap() - times.first().unwrap();
        let rate = (times.len() - 1) as f64 / span;
        assert!((45.0..=55.0).contains(&rate), "{who}: {rate:.1} packets/s");
    }
}
