//! SIP over TLS with SRTP to a real peer: baresip (Debian baresip-core, its `srtp` module for
//! SDES) listens for TLS with a certificate from a CA made at test time (openssl CLI), answers
//! with a recorded voicemail greeting ending in a beep, and trunx calls it over `sips:` with
//! RTP/SAVP. The call completes with the AMD's `machine_end_beep`, the message dropped after
//! the beep reaches baresip decrypted (its recording), and nothing on the wire is plain RTP.
//! A CA that did not sign the peer's certificate fails the call with a clear TLS error.
//! `make deps` installs baresip-core, openssl and tshark.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use trunx::amd::AmdConfig;
use trunx::audio::prompt::{Prompt, PromptOptions};
use trunx::runtime::amd::files::load_beep_model;
use trunx::runtime::call::dial::{DialOptions, dial};
use trunx::runtime::call::net::DialError;
use trunx::runtime::call::sip_tls::{self, SrtpPolicy, TlsError, TrunkTls};

const SIP_PORT: u16 = 17090;
/// baresip listens for TLS one above its UDP/TCP port.
const TLS_PORT: u16 = SIP_PORT + 1;
const PEER_RTP: u16 = 17100;
const OUR_RTP: u16 = 17200;

fn binary(name: &str, package: &str) -> PathBuf {
    ["/usr/bin", "/usr/sbin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: run `make deps` (apt-get install -y {package})")
        })
}

fn openssl(d: &Path, args: &[&str]) {
    let out = Command::new(binary("openssl", "openssl"))
        .current_dir(d)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and a server certificate for 127.0.0.1 signed by it (`server.pem`: cert + key). Also
/// a second CA that signed nothing (`other-ca.pem`).
fn make_certificates(d: &Path) {
    for (key, cert, cn) in [
        ("ca.key", "ca.pem", "trunx test CA"),
        ("other-ca.key", "other-ca.pem", "unrelated CA"),
    ] {
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                key,
                "-out",
                cert,
                "-days",
                "2",
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
    }
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    let pem = [
        std::fs::read(d.join("server.crt")).unwrap(),
        std::fs::read(d.join("server.key")).unwrap(),
    ]
    .concat();
    std::fs::write(d.join("server.pem"), pem).unwrap();
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

/// baresip answering over TLS only with mandatory SRTP (SDES), playing a voicemail greeting
/// with its beep and then silence long enough for our message, recording what it hears.
fn start_baresip(d: &Path) -> Killed {
    let greeting = trunx::audio::wav::read_telephone_wav(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("audio-fixtures/calls/0087-machine_beep_single.wav"),
    )
    .unwrap();
    let mut padded = greeting.clone();
    padded.extend(std::iter::repeat_n(0i16, 8000 * 14));
    trunx::audio::wav::write_telephone_wav(&d.join("greeting.wav"), &padded).unwrap();
    let modules = Path::new("/usr/lib/baresip/modules");
    assert!(
        modules.join("srtp.so").is_file(),
        "baresip's srtp module is missing: run `make deps` (apt-get install -y baresip-core)"
    );
    std::fs::write(
        d.join("config"),
        format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{SIP_PORT}\nsip_certificate {}\n\
             net_interface 127.0.0.1\naudio_source aufile,{}\naudio_player alsa,null\n\
             audio_alert alsa,null\nrtp_ports {PEER_RTP}-{}\nsnd_path {}\n\
             module_path {}\nmodule g711.so\nmodule aufile.so\nmodule alsa.so\n\
             module sndfile.so\nmodule srtp.so\nmodule_app account.so\nmodule_app menu.so\n",
            d.join("server.pem").display(),
            d.join("greeting.wav").display(),
            PEER_RTP + 40,
            d.display(),
            modules.display(),
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("accounts"),
        format!(
            "<sip:vm@127.0.0.1:{TLS_PORT};transport=tls>;regint=0;answermode=auto;\
             audio_codecs=PCMU,PCMA;mediaenc=srtp-mand\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(d.join("baresip.log")).unwrap();
    Killed(
        Command::new(binary("baresip", "baresip-core"))
            .args(["-f", &d.display().to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("baresip starts"),
        libc::SIGTERM,
    )
}

async fn wait_for_listener(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("baresip is not listening for TLS on {port}");
}

fn options(voicemail: Option<Arc<Prompt>>) -> DialOptions {
    DialOptions {
        target: format!("sip:vm@127.0.0.1:{TLS_PORT};transport=tls"),
        from: "+15550001111".into(),
        trunk: format!("sips:127.0.0.1:{TLS_PORT}"),
        username: None,
        password: None,
        ring_timeout: Duration::from_secs(10),
        sip_addr: "127.0.0.1:0".parse().unwrap(),
        rtp_ports: OUR_RTP..=OUR_RTP + 40,
        send_pai: false,
        voicemail,
        agent: None,
        campaign_id: None,
    }
}

/// Starts a tshark capture of our RTP ports; returns once it is capturing.
async fn capture(pcap: &Path) -> Killed {
    let mut tshark = Command::new(binary("tshark", "tshark"))
        .args([
            "-i",
            "lo",
            "-f",
            &format!("udp portrange {OUR_RTP}-{}", OUR_RTP + 41),
        ])
        .args(["-F", "pcap", "-w", &pcap.display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tshark starts");
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
    tshark
}

fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

// One test: the trusted CA is process-wide configuration (`trunk_tls_ca_file`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_srtp_call_to_baresip_completes_with_amd_and_a_wrong_ca_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_certificates(d);
    let baresip = start_baresip(d);
    wait_for_listener(TLS_PORT).await;
    let model = load_beep_model(None, None).unwrap_or_else(|e| panic!("{e}"));

    // A CA that did not sign baresip's certificate: the handshake is refused, no call.
    sip_tls::configure(TrunkTls {
        ca_file: Some(d.join("other-ca.pem")),
        srtp: SrtpPolicy::Auto,
    });
    let err = dial(&options(None), &AmdConfig::default(), Some(model.clone()))
        .await
        .expect_err("a certificate from an untrusted CA must fail the call");
    let text = err.to_string();
    assert!(
        matches!(&err, DialError::Tls(TlsError::Connect { .. })),
        "{err:?}"
    );
    assert!(
        text.contains("TLS connection to the trunk 127.0.0.1:17091 failed")
            && text.contains("invalid peer certificate")
            && text.contains("UnknownIssuer"),
        "{text}"
    );
    // Without the CA at all (webpki roots only) it fails the same way.
    sip_tls::configure(TrunkTls::default());
    let err = dial(&options(None), &AmdConfig::default(), Some(model.clone()))
        .await
        .expect_err("the test CA is not a public root");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");

    // The right CA: TLS, SRTP required (auto over TLS), the greeting's beep, the message.
    sip_tls::configure(TrunkTls {
        ca_file: Some(d.join("ca.pem")),
        srtp: SrtpPolicy::Auto,
    });
    let pcap = d.join("rtp.pcap");
    let tshark = capture(&pcap).await;
    let prompt = Arc::new(
        Prompt::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("audio-fixtures/prompts/voicemail-10s.mp3"),
            &PromptOptions::default(),
        )
        .unwrap(),
    );
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        dial(&options(Some(prompt)), &AmdConfig::default(), Some(model)),
    )
    .await
    .expect("the call finishes")
    .unwrap_or_else(|e| {
        let log = std::fs::read_to_string(d.join("baresip.log")).unwrap_or_default();
        panic!("{e}\nbaresip log:\n{log}")
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(tshark);
    drop(baresip);
    let log = std::fs::read_to_string(d.join("baresip.log")).unwrap();
    assert_eq!(report.outcome, "answered", "{report:?}\n{log}");
    assert_eq!(report.amd, Some("machine_end_beep"), "{report:?}\n{log}");
    assert_eq!(report.machine_end, Some("beep"), "{report:?}");
    assert_eq!(report.message, Some("voicemail"), "{report:?}");
    assert!(report.played_ms.unwrap_or(0) >= 9_000, "{report:?}");
    assert!(report.rx_lost < 10, "{report:?}");
    assert!(
        log.contains("srtp"),
        "baresip did not use its SRTP module:\n{log}"
    );

    // baresip decrypted our message: its recording holds the voicemail, not silence.
    let recording = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .unwrap_or_else(|| panic!("baresip recorded nothing; its log:\n{log}"));
    let heard = trunx::audio::wav::read_telephone_wav(&recording).unwrap();
    let start = report.playback_start_ms.unwrap() as usize * 8;
    let message = &heard[start.min(heard.len())..];
    assert!(
        message.len() >= 8000 * 8 && rms(message) > 300.0,
        "baresip heard {} samples after the beep, rms {:.0}",
        message.len(),
        rms(message)
    );

    // On the wire our media is SRTP: tshark's RTP dissector sees the packets, but each carries
    // the 10-byte auth tag (172 + 10 bytes for 160 samples of G.711).
    let out = Command::new(binary("tshark", "tshark"))
        .args([
            "-r",
            &pcap.display().to_string(),
            "-o",
            "rtp.heuristic_rtp:TRUE",
        ])
        .args([
            "-Y",
            &format!(
                "rtp && udp.srcport >= {OUR_RTP} && udp.srcport <= {}",
                OUR_RTP + 40
            ),
        ])
        .args(["-T", "fields", "-e", "udp.length"])
        .output()
        .expect("tshark reads the capture");
    let lengths: Vec<usize> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert!(
        lengths.len() >= 400,
        "only {} RTP packets from us",
        lengths.len()
    );
    // udp.length counts the 8-byte UDP header: 8 + 12 + 160 + 10.
    assert!(
        lengths.iter().all(|&l| l == 190),
        "not all SRTP-sized: {:?}",
        &lengths[..lengths.len().min(20)]
    );
}
