//! trunx against a real SIP peer: sipp (Debian package sip-tester, installed by `make deps`)
//! plays the carrier on loopback. It answers and streams a recorded call as RTP; trunx places
//! the call, runs the AMD on the live audio and hangs up after the decision.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::*;
use trunx::amd::AmdConfig;
use trunx::amd::bench::parse_labels;
use trunx::runtime::amd::files::load_beep_model;
use trunx::runtime::call::dial::{DialOptions, DialReport, dial};

async fn place(sip_port: u16, trunk_port: u16, rtp: u16) -> DialReport {
    place_with_ring(sip_port, trunk_port, rtp, Duration::from_secs(20)).await
}

async fn place_with_ring(sip_port: u16, trunk_port: u16, rtp: u16, ring: Duration) -> DialReport {
    place_as(sip_port, trunk_port, rtp, ring, None).await
}

async fn place_as(
    sip_port: u16,
    trunk_port: u16,
    rtp: u16,
    ring: Duration,
    credentials: Option<(&str, &str)>,
) -> DialReport {
    // sipp needs a moment to bind its sockets; a call sent before that is retransmitted by
    // Timer A anyway, so a short pause only saves a retransmission.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let model = load_beep_model(None, None).unwrap_or_else(|e| panic!("{e}"));
    let options = DialOptions {
        target: "+15551234567".into(),
        from: "+15550001111".into(),
        trunk: format!("sip:127.0.0.1:{trunk_port}"),
        username: credentials.map(|c| c.0.to_string()),
        password: credentials.map(|c| c.1.to_string()),
        ring_timeout: ring,
        sip_addr: format!("127.0.0.1:{sip_port}").parse().unwrap(),
        rtp_ports: rtp..=rtp + 20,
        send_pai: false,
        voicemail: None,
        agent: None,
        campaign_id: None,
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        dial(&options, &AmdConfig::default(), Some(model)),
    )
    .await
    .expect("the call finishes")
    .unwrap()
}

fn label_of(wav: &str) -> trunx::amd::bench::Label {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("audio-fixtures/calls");
    parse_labels(&std::fs::read_to_string(dir.join("labels.csv")).unwrap())
        .unwrap()
        .into_iter()
        .find(|l| l.file == wav)
        .unwrap()
}

#[tokio::test]
async fn sipp_streaming_a_voicemail_greeting_with_a_beep_gives_machine_end_beep() {
    let dir = tempfile::tempdir().unwrap();
    let wav = "0087-machine_beep_single.wav";
    let audio = ulaw_file(dir.path(), wav);
    let sipp = start_sipp(dir.path(), "uas_stream.xml", Some(&audio), 15170, 16170);
    let report = place(15162, 15170, 17100).await;
    assert!(completed(sipp).await, "sipp saw no BYE after the decision");
    assert_eq!(report.outcome, "answered", "{report:?}");
    assert_eq!(report.amd, Some("machine_end_beep"), "{report:?}");
    let (_, label_end) = label_of(wav).beep_ms.unwrap();
    let got = report.beep_end_ms.unwrap();
    // Live audio through sipp's millisecond-tick sender and our jitter buffer.
    assert!(
        got.abs_diff(label_end) <= 60,
        "beep end {got} ms, labelled {label_end} ms"
    );
    assert!(report.answered_ms.is_some() && report.sip_status == Some(200));
}

#[tokio::test]
async fn sipp_streaming_a_human_hello_gives_human() {
    let dir = tempfile::tempdir().unwrap();
    let audio = ulaw_file(dir.path(), "0008-human_hello_hello.wav");
    let sipp = start_sipp(dir.path(), "uas_stream.xml", Some(&audio), 15270, 16270);
    let report = place(15262, 15270, 17200).await;
    assert!(completed(sipp).await, "sipp saw no BYE after the decision");
    assert_eq!(report.outcome, "answered", "{report:?}");
    assert_eq!(report.amd, Some("human"), "{report:?}");
    // The greeting rule's verdict seconded by the model, or the model's own.
    let cause = report.amd_cause.as_deref().unwrap();
    assert!(
        cause.starts_with("HUMAN-") || cause.starts_with("MODEL-HUMAN-"),
        "{report:?}"
    );
}

#[tokio::test]
async fn sipp_answering_486_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let sipp = start_sipp(dir.path(), "uas_busy.xml", None, 15370, 16370);
    let report = place(15362, 15370, 17300).await;
    assert!(completed(sipp).await, "sipp saw no ACK for its 486");
    assert_eq!(report.outcome, "busy", "{report:?}");
    assert_eq!(report.sip_status, Some(486));
    assert_eq!(report.amd, None);
}

#[tokio::test]
async fn sipp_answering_404_is_an_invalid_number() {
    let dir = tempfile::tempdir().unwrap();
    let _sipp = start_sipp(dir.path(), "uas_not_found.xml", None, 15470, 16470);
    let report = place(15462, 15470, 17400).await;
    assert_eq!(
        (report.outcome, report.cause),
        ("failed", Some("invalid_number")),
        "{report:?}"
    );
    assert_eq!(report.sip_status, Some(404));
}

#[tokio::test]
async fn sipp_ringing_past_the_ring_timeout_is_cancelled_as_no_answer() {
    let dir = tempfile::tempdir().unwrap();
    let sipp = start_sipp(dir.path(), "uas_ring_forever.xml", None, 15570, 16570);
    let report = place_with_ring(15562, 15570, 17500, Duration::from_secs(2)).await;
    assert_eq!(
        (report.outcome, report.cause),
        ("noAnswer", Some("ring_timeout")),
        "{report:?}"
    );
    // sipp only completes its scenario (exit 0) after it saw CANCEL and our ACK to the 487.
    assert!(
        completed(sipp).await,
        "sipp saw no CANCEL, or no ACK for its 487"
    );
}

#[tokio::test]
async fn a_load_run_against_sipp_completes_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let calls: usize = std::env::var("TRUNX_SIP_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let cps: f64 = std::env::var("TRUNX_SIP_BENCH_CPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150.0);
    let template = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/uas_load.xml"),
    )
    .unwrap();
    let scenario = dir.path().join("uas_load.xml");
    std::fs::write(&scenario, template).unwrap();
    let sipp = Sipp(
        Command::new(sipp_path())
            .args(["-sf", &scenario.display().to_string()])
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                "15670",
                "-mi",
                "127.0.0.1",
                "-mp",
                "16670",
            ])
            .args(["-m", &calls.to_string(), "-nostdin", "-timeout", "120s"])
            .args(["-buff_size", "4194304"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp starts"),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = trunx::tools::sip_bench::run(&trunx::tools::sip_bench::SipBenchOptions {
        target: "127.0.0.1:15670".parse().unwrap(),
        local: "127.0.0.1:15662".parse().unwrap(),
        calls,
        cps,
        concurrent: 1000,
    })
    .await
    .unwrap();
    eprintln!("{}", serde_json::to_string(&report).unwrap());
    assert_eq!(report.failures, 0, "{report:?}");
    assert_eq!(report.answered, calls, "{report:?}");
    assert!(completed(sipp).await, "sipp did not see every call through");
}

#[tokio::test]
async fn through_kamailio_demanding_digest_the_call_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let audio = ulaw_file(dir.path(), "0087-machine_beep_single.wav");
    let sipp = start_sipp(dir.path(), "uas_stream.xml", Some(&audio), 15770, 16770);
    let _kamailio = start_kamailio(dir.path(), 15780, 15770);
    kamailio_ready(15780).await;
    let report = place_as(
        15762,
        15780,
        17700,
        Duration::from_secs(20),
        Some(("dialer", "s3cret")),
    )
    .await;
    assert_eq!(report.outcome, "answered", "{report:?}");
    assert_eq!(report.amd, Some("machine_end_beep"), "{report:?}");
    assert!(completed(sipp).await, "sipp saw no BYE through the proxy");
}

#[tokio::test]
async fn through_kamailio_a_wrong_password_is_auth_failed_after_one_retry() {
    let dir = tempfile::tempdir().unwrap();
    let _kamailio = start_kamailio(dir.path(), 15880, 15870);
    kamailio_ready(15880).await;
    let report = place_as(
        15862,
        15880,
        17800,
        Duration::from_secs(20),
        Some(("dialer", "wrong")),
    )
    .await;
    assert_eq!(
        (report.outcome, report.cause),
        ("failed", Some("auth_failed")),
        "{report:?}"
    );
    assert_eq!(report.sip_status, Some(407));
}

#[tokio::test]
async fn stopping_a_ringing_call_sends_cancel_and_waits_for_the_487() {
    let dir = tempfile::tempdir().unwrap();
    let sipp = start_sipp(dir.path(), "uas_ring_forever.xml", None, 15970, 16970);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let trigger = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        trigger.cancel();
    });
    let options = DialOptions {
        target: "+15551234567".into(),
        from: "+15550001111".into(),
        trunk: "sip:127.0.0.1:15970".into(),
        username: None,
        password: None,
        ring_timeout: Duration::from_secs(60),
        sip_addr: "127.0.0.1:15962".parse().unwrap(),
        rtp_ports: 17900..=17920,
        send_pai: false,
        voicemail: None,
        agent: None,
        campaign_id: None,
    };
    let report = tokio::time::timeout(
        Duration::from_secs(20),
        trunx::runtime::call::dial::dial_until(&options, &AmdConfig::default(), None, stop),
    )
    .await
    .expect("the call ends soon after the stop")
    .unwrap();
    assert_eq!(report.outcome, "cancelled", "{report:?}");
    assert!(
        completed(sipp).await,
        "sipp saw no CANCEL, or no ACK for its 487"
    );
}

#[tokio::test]
async fn an_answered_call_without_media_ends_as_no_media_instead_of_hanging_on() {
    let dir = tempfile::tempdir().unwrap();
    let sipp = start_sipp(dir.path(), "uas_silent.xml", None, 15990, 16990);
    let report = place(15992, 15990, 17990).await;
    assert_eq!(report.outcome, "answered", "{report:?}");
    assert!(report.no_media, "{report:?}");
    // The longest analysis (max_analysis_ms) plus 3 s of slack, not the far end's patience.
    let talk = report.talk_ms.unwrap();
    let limit = u64::from(AmdConfig::default().max_analysis_ms);
    assert!((limit + 3_000..limit + 6_000).contains(&talk), "{report:?}");
    assert!(completed(sipp).await, "sipp saw no BYE");
}

#[tokio::test]
async fn the_binary_dials_a_full_sip_uri_directly_when_no_trunk_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let audio = ulaw_file(dir.path(), "0008-human_hello_hello.wav");
    let sipp = start_sipp(dir.path(), "uas_stream.xml", Some(&audio), 15690, 16690);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Run from an empty directory with no trunk in the environment or a config file: the
    // target's host is the next hop.
    let empty = tempfile::tempdir().unwrap();
    let output = tokio::task::spawn_blocking({
        let cwd = empty.path().to_path_buf();
        move || {
            Command::new(env!("CARGO_BIN_EXE_trunx"))
                .args(["dial", "sip:+15551234567@127.0.0.1:15690"])
                .args(["--from", "+15550001111", "--json"])
                .env_remove("TRUNX_TRUNK_URI")
                .env("TRUNX_SIP_ADDR", "127.0.0.1:15692")
                .env("TRUNX_RTP_PORTS", "17640-17660")
                .current_dir(cwd)
                .output()
                .expect("trunx dial runs")
        }
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "trunx dial failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)));
    assert!(completed(sipp).await, "sipp saw no call through to its BYE");
    assert_eq!(report["outcome"], "answered", "{report}");
    assert_eq!(report["sip_status"], 200, "{report}");
    assert_eq!(report["amd"], "human", "{report}");
}
