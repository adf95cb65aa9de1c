//! The AI agent bridge end to end: sipp (the carrier) answers and streams a recorded "hello";
//! trunx decides `human` and bridges the person to a test agent, a websocket server in this
//! test speaking the Twilio Media Streams protocol. The agent answers `start` with a second of
//! audio and a mark, garbage, then closes; the call must end cleanly with every step recorded.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use trunx::amd::AmdConfig;
use trunx::audio::g711::Law;
use trunx::runtime::amd::files::load_beep_model;
use trunx::runtime::call::agent_ws::AgentTarget;
use trunx::runtime::call::dial::{DialOptions, DialReport, dial};

/// One second of a 1 kHz tone as μ-law, base64 in 20 ms media messages.
fn tone_messages() -> Vec<String> {
    use base64::Engine;
    let pcm: Vec<i16> = (0..8000)
        .map(|i| ((i as f64 * 2.0 * std::f64::consts::PI * 1000.0 / 8000.0).sin() * 8000.0) as i16)
        .collect();
    let mut codes = vec![0u8; pcm.len()];
    Law::Ulaw.encode_into(&pcm, &mut codes);
    codes
        .chunks(160)
        .map(|c| {
            json!({"event": "media", "streamSid": "MZx",
                   "media": {"payload": base64::engine::general_purpose::STANDARD.encode(c)}})
            .to_string()
        })
        .collect()
}

/// The test agent: records every event it gets; on `start` speaks a second of tone, a mark,
/// one garbage message, and closes once the mark comes back.
// The handshake callback's error type is tungstenite's (a whole HTTP response), not ours.
#[allow(clippy::result_large_err)]
async fn agent(
    listener: tokio::net::TcpListener,
    seen: Arc<Mutex<Vec<Value>>>,
    auth: Arc<std::sync::Mutex<Option<String>>>,
) {
    let (tcp, _) = listener.accept().await.unwrap();
    let capture =
        |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
         resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
            *auth.lock().unwrap() = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            Ok(resp)
        };
    let mut ws = tokio_tungstenite::accept_hdr_async(tcp, capture)
        .await
        .unwrap();
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(&text).unwrap();
        seen.lock().await.push(v.clone());
        match v["event"].as_str() {
            Some("start") => {
                for m in tone_messages() {
                    ws.send(Message::Text(m.into())).await.unwrap();
                }
                ws.send(Message::Text(
                    json!({"event": "mark", "streamSid": "MZx", "mark": {"name": "utt-1"}})
                        .to_string()
                        .into(),
                ))
                .await
                .unwrap();
                ws.send(Message::Text("not json at all".into()))
                    .await
                    .unwrap();
            }
            Some("mark") => {
                // The mark came back once the second of audio had played: hang up the agent.
                tokio::time::sleep(Duration::from_millis(300)).await;
                let _ = ws.close(None).await;
                break;
            }
            _ => {}
        }
    }
}

async fn place(sip_port: u16, trunk_port: u16, rtp: u16, agent: AgentTarget) -> DialReport {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let model = load_beep_model(None, None).unwrap_or_else(|e| panic!("{e}"));
    let options = DialOptions {
        target: "+15551234567".into(),
        from: "+15550001111".into(),
        trunk: format!("sip:127.0.0.1:{trunk_port}"),
        username: None,
        password: None,
        ring_timeout: Duration::from_secs(20),
        sip_addr: format!("127.0.0.1:{sip_port}").parse().unwrap(),
        rtp_ports: rtp..=rtp + 1,
        send_pai: false,
        voicemail: None,
        agent: Some(agent),
        campaign_id: Some("camp_test".into()),
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        dial(&options, &AmdConfig::default(), Some(model)),
    )
    .await
    .expect("the call finishes")
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_is_bridged_to_the_agent_which_hears_them_and_is_heard() {
    let dir = tempfile::tempdir().unwrap();
    let audio = ulaw_file(dir.path(), "0014-human_short.wav");
    let sipp = start_sipp(dir.path(), "uas_stream.xml", Some(&audio), 15950, 16950);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let auth = Arc::new(std::sync::Mutex::new(None));
    let agent_task = tokio::spawn(agent(listener, seen.clone(), auth.clone()));
    let target = AgentTarget {
        headers: vec![("Authorization".into(), "Bearer t0ken".into())],
        ..AgentTarget::new(url)
    };
    let report = place(15952, 15950, 17950, target).await;
    agent_task.await.unwrap();
    let seen = seen.lock().await.clone();

    assert_eq!(report.outcome, "answered", "{report:?}");
    assert_eq!(report.amd, Some("human"), "{report:?}");
    assert_eq!(auth.lock().unwrap().as_deref(), Some("Bearer t0ken"));
    // The socket was open before the decision, so the handoff cost no connect time.
    let connected = report.agent_connected_ms.expect("agent connected");
    assert!(connected < report.amd_ms.unwrap() + 200, "{report:?}");
    assert!(
        report
            .agent_end
            .as_deref()
            .unwrap()
            .contains("closed by the agent"),
        "{report:?}"
    );
    // A second of agent audio was played before the mark came back.
    assert!(report.agent_talk_ms.unwrap() >= 1_000, "{report:?}");

    let events: Vec<&str> = seen.iter().filter_map(|v| v["event"].as_str()).collect();
    assert_eq!(&events[..2], &["connected", "start"], "{events:?}");
    assert_eq!(
        seen[0],
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    );
    let start = &seen[1];
    assert_eq!(start["sequenceNumber"], "1");
    assert_eq!(
        start["start"]["mediaFormat"],
        json!({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1})
    );
    let params = &start["start"]["customParameters"];
    assert_eq!(params["prospect"], "+15551234567", "{start}");
    assert_eq!(params["campaignId"], "camp_test", "{start}");
    assert_eq!(params["amdResult"], "human", "{start}");
    let media: Vec<&Value> = seen.iter().filter(|v| v["event"] == "media").collect();
    assert!(media.len() >= 25, "the agent heard {} frames", media.len());
    for (i, m) in media.iter().enumerate() {
        assert_eq!(m["media"]["track"], "inbound");
        assert_eq!(m["media"]["chunk"], (i + 1).to_string());
    }
    let mark = seen
        .iter()
        .find(|v| v["event"] == "mark")
        .expect("mark echoed");
    assert_eq!(mark["mark"]["name"], "utt-1");
    assert!(completed(sipp).await, "sipp saw no BYE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_agent_ends_the_call_cleanly_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let audio = ulaw_file(dir.path(), "0014-human_short.wav");
    let sipp = start_sipp(dir.path(), "uas_stream.xml", Some(&audio), 15960, 16960);
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}", closed.local_addr().unwrap());
    drop(closed);
    let report = place(15962, 15960, 17960, AgentTarget::new(url)).await;
    assert_eq!(report.outcome, "answered", "{report:?}");
    assert_eq!(report.amd, Some("human"), "{report:?}");
    assert_eq!(report.agent_connected_ms, None, "{report:?}");
    assert!(
        report
            .agent_end
            .as_deref()
            .unwrap()
            .contains("cannot connect"),
        "{report:?}"
    );
    // Retried 1, 3 and 7 s into the outage (the default 10 s budget), then hung up.
    let stats = report.agent_stats.clone().unwrap();
    assert_eq!((stats.reconnects, stats.fallback), (3, false), "{report:?}");
    assert!(
        report
            .agent_end
            .as_deref()
            .unwrap()
            .contains("gave up after 3 reconnects"),
        "{report:?}"
    );
    assert!(completed(sipp).await, "sipp saw no BYE");
}

/// Normalised correlation of `needle` at its best lag in `hay` (20 ms steps, refined).
fn best_match(hay: &[i16], needle: &[i16]) -> (usize, f64) {
    let corr = |lag: usize| {
        let seg = &hay[lag..lag + needle.len()];
        let dot: f64 = seg
            .iter()
            .zip(needle)
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum();
        let e1: f64 = seg.iter().map(|a| f64::from(*a).powi(2)).sum();
        let e2: f64 = needle.iter().map(|b| f64::from(*b).powi(2)).sum();
        dot / (e1 * e2).sqrt().max(1.0)
    };
    let last = hay.len().saturating_sub(needle.len());
    let pick = |lags: &mut dyn Iterator<Item = usize>| {
        lags.map(|l| (l, corr(l)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, f64::MIN))
    };
    let coarse = pick(&mut (0..=last).step_by(160)).0;
    pick(&mut (coarse.saturating_sub(160)..=(coarse + 160).min(last)))
}

/// Share of the 100 ms blocks of `needle` found intact (correlation > 0.9) somewhere in
/// `hay`, each located on its own: a relay may shift the audio by a frame when the two legs'
/// 20 ms ticks slip under load, which one long correlation would count as a loss.
fn blocks_heard(hay: &[i16], needle: &[i16]) -> f64 {
    let blocks: Vec<&[i16]> = needle.chunks_exact(800).collect();
    let found = blocks.iter().filter(|b| best_match(hay, b).1 > 0.9).count();
    found as f64 / blocks.len() as f64
}

fn fixture(name: &str) -> Vec<i16> {
    trunx::audio::wav::read_telephone_wav(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("audio-fixtures/calls")
            .join(name),
    )
    .unwrap()
}

/// `mode.agentSipUri`: at `human` trunx places a second call to a SIP agent (a second
/// baresip) and relays media both ways. The person's recording holds the agent's words, the
/// agent's recording holds what the person said after the handoff, and the person's hang-up
/// ends the agent's leg too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_handed_to_a_sip_agent_and_the_agent_hear_each_other() {
    let hello = fixture("0014-human_short.wav");
    let later = fixture("0056-human_long.wav")[3_200..19_200].to_vec();
    let mut person_says = hello[..32_000].to_vec();
    person_says.extend_from_slice(&later);
    let agent_says = fixture("0076-machine_long.wav")[4_000..44_000].to_vec();
    let person = Baresip::start(23670, 23700, &person_says, 3).await;
    let agent = Baresip::start(23770, 23800, &agent_says, 20).await;
    let model = load_beep_model(None, None).unwrap_or_else(|e| panic!("{e}"));
    let options = DialOptions {
        target: "sip:callee@127.0.0.1:23670".into(),
        from: "+15550001111".into(),
        trunk: "sip:127.0.0.1:23670".into(),
        username: None,
        password: None,
        ring_timeout: Duration::from_secs(10),
        sip_addr: "127.0.0.1:23662".parse().unwrap(),
        rtp_ports: 23600..=23603,
        send_pai: false,
        voicemail: None,
        agent: Some(AgentTarget {
            sip_uri: Some("sip:callee@127.0.0.1:23770".into()),
            ..AgentTarget::new(String::new())
        }),
        campaign_id: Some("camp_sip".into()),
    };
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        dial(&options, &AmdConfig::default(), Some(model)),
    )
    .await
    .expect("the call finishes")
    .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let ((heard_by_person, person_log), (heard_by_agent, agent_log)) =
        tokio::task::spawn_blocking(move || (person.stop_and_read(), agent.stop_and_read()))
            .await
            .unwrap();

    assert_eq!(report.amd, Some("human"), "{report:?}");
    assert_eq!(report.message, Some("humanConnected"), "{report:?}");
    let connected = report.agent_connected_ms.expect("the SIP agent answered");
    // `amd_ms` is audio time and `agent_connected_ms` wall time since the answer; frames reach
    // the detector as they arrive, so audio time may lead the wall clock by a packet or two.
    // The handoff (decision to the agent's answer, one clock) proves the order.
    assert!(
        connected + 60 >= report.amd_ms.unwrap(),
        "the agent is called at human only: {report:?}"
    );
    let handoff = report.agent_stats.as_ref().and_then(|s| s.handoff_ms);
    assert!(
        handoff.is_some_and(|h| h >= 0.0),
        "the agent answered after the decision: {handoff:?}"
    );
    assert!(report.agent_talk_ms.unwrap() >= 3_000, "{report:?}");
    assert_eq!(
        report.agent_end.as_deref(),
        Some("call ended"),
        "{report:?}"
    );
    assert!(
        agent_log.contains("session closed"),
        "the agent's leg was not hung up:\n{agent_log}"
    );
    // The person hung up (their file ended), which ended the whole call.
    assert!(person_log.contains("terminated (duration"), "{person_log}");

    let to_person = blocks_heard(&heard_by_person, &agent_says[..16_000]);
    assert!(
        to_person >= 0.9,
        "the person heard {to_person:.2} of the agent's first 2 s"
    );
    let to_agent = blocks_heard(&heard_by_agent, &later[..16_000]);
    assert!(
        to_agent >= 0.9,
        "the agent heard {to_agent:.2} of the person's 2 s"
    );
    let stats = report.agent_stats.unwrap();
    assert!(stats.frames_played >= 150, "{stats:?}");
    eprintln!(
        "sip handoff: decision -> agent answered {:?} ms, frames relayed to the person {}, \
         dropped {} / {}; blocks heard {to_person:.2} {to_agent:.2}",
        stats.handoff_ms, stats.frames_played, stats.frames_dropped, stats.dropped_to_agent
    );
}

/// A SIP agent behind a proxy that demands digest auth (kamailio in front of baresip): with
/// `agent_sip_username`/`agent_sip_password` the leg authenticates and the person hears the
/// agent; with a wrong password the leg fails as `auth_failed` and, with no budget left and
/// no fallback, the person's call ends at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sip_agent_that_demands_digest_auth_gets_the_configured_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let hello = fixture("0014-human_short.wav");
    let mut person_says = hello[..32_000].to_vec();
    person_says.extend_from_slice(&fixture("0056-human_long.wav")[3_200..19_200]);
    let agent_says = fixture("0076-machine_long.wav")[4_000..44_000].to_vec();
    let agent = Baresip::start(24170, 24200, &agent_says, 40).await;
    let _kamailio = start_kamailio(dir.path(), 24180, 24170);
    kamailio_ready(24180).await;
    let model = load_beep_model(None, None).unwrap_or_else(|e| panic!("{e}"));
    let call = |person_port: u16, sip_port: u16, rtp: u16, password: &str| {
        let options = DialOptions {
            target: format!("sip:callee@127.0.0.1:{person_port}"),
            from: "+15550001111".into(),
            trunk: format!("sip:127.0.0.1:{person_port}"),
            username: None,
            password: None,
            ring_timeout: Duration::from_secs(10),
            sip_addr: format!("127.0.0.1:{sip_port}").parse().unwrap(),
            rtp_ports: rtp..=rtp + 3,
            send_pai: false,
            voicemail: None,
            agent: Some(AgentTarget {
                sip_uri: Some("sip:callee@127.0.0.1:24180".into()),
                sip_username: Some("dialer".into()),
                sip_password: Some(password.into()),
                reconnect: trunx::agent::ReconnectPolicy {
                    budget: Duration::ZERO,
                    ..Default::default()
                },
                ..AgentTarget::new(String::new())
            }),
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
            .unwrap()
        }
    };

    let person = Baresip::start(24070, 24100, &person_says, 3).await;
    let refused = call(24070, 24062, 24000, "wrong").await;
    drop(person);
    assert_eq!(refused.amd, Some("human"), "{refused:?}");
    assert_eq!(refused.agent_connected_ms, None, "{refused:?}");
    assert!(
        refused
            .agent_end
            .as_deref()
            .unwrap_or("")
            .contains("auth_failed"),
        "{refused:?}"
    );
    // Hung up right at the give-up, long before the person's file would have ended it.
    assert!(refused.talk_ms.unwrap() < 4_000, "{refused:?}");

    let person = Baresip::start(24070, 24100, &person_says, 3).await;
    let report = call(24070, 24062, 24010, "s3cret").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (heard_by_person, _) = tokio::task::spawn_blocking(move || person.stop_and_read())
        .await
        .unwrap();
    drop(agent);
    assert!(report.agent_connected_ms.is_some(), "{report:?}");
    assert_eq!(
        report.agent_end.as_deref(),
        Some("call ended"),
        "{report:?}"
    );
    let to_person = blocks_heard(&heard_by_person, &agent_says[..16_000]);
    assert!(
        to_person >= 0.9,
        "the person heard {to_person:.2} of the agent's first 2 s"
    );
}
