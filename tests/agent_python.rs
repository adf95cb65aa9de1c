//! The agent bridge against an independent agent: `tests/peers/agent.py`, written with
//! Python's `websockets` from PyPI (installed into `.venv-agent` by `make test`). It answers
//! `start` by speaking five seconds of recorded speech at once, as agents do, then a mark.
//!
//! - baresip is the person: it says "hello", trunx decides `human` and bridges; the agent
//!   barges in with `clear` 1.5 s into its utterance. baresip's recording proves the agent's
//!   audio reached the caller, and that the `clear` cut it.
//! - sipp is the person in the failure cases: the agent sends garbage then hangs up; the agent's
//!   connection drops mid-call (trunx reconnects and restarts the stream); the agent refuses
//!   every connection (trunx gives up within its budget and plays the fallback message).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::Value;
use trunx::agent::ReconnectPolicy;
use trunx::amd::AmdConfig;
use trunx::audio::g711::Law;
use trunx::audio::prompt::{Prompt, PromptOptions};
use trunx::audio::wav::read_telephone_wav;
use trunx::runtime::amd::files::load_beep_model;
use trunx::runtime::call::agent_ws::AgentTarget;
use trunx::runtime::call::dial::{DialOptions, DialReport, dial};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Python agent, stopped when dropped.
struct PythonAgent {
    child: Child,
    log: PathBuf,
    url: String,
}

impl Drop for PythonAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PythonAgent {
    async fn start(dir: &Path, port: u16, utterance: &Path, flags: &[&str]) -> PythonAgent {
        let python = repo().join(".venv-agent/bin/python");
        assert!(
            python.is_file(),
            "the test agent's Python environment is missing: run `make agent-venv` \
             (python3 -m venv .venv-agent && .venv-agent/bin/pip install -r tests/peers/requirements.txt)"
        );
        let log = dir.join(format!("agent-{port}.jsonl"));
        let child = Command::new(python)
            .arg(repo().join("tests/peers/agent.py"))
            .args(["--port", &port.to_string()])
            .args(["--utterance", &utterance.display().to_string()])
            .args(["--log", &log.display().to_string()])
            .args(flags)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("agent-{port}.err"))).unwrap())
            .spawn()
            .expect("python starts");
        let agent = PythonAgent {
            child,
            log,
            url: format!("ws://127.0.0.1:{port}"),
        };
        for _ in 0..200 {
            if agent.events().iter().any(|e| e["event"] == "_listening") {
                return agent;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the Python agent did not start: {}",
            std::fs::read_to_string(dir.join(format!("agent-{port}.err"))).unwrap_or_default()
        );
    }

    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// Five seconds of continuous recorded speech as μ-law (what the agent sends), and the PCM
/// it decodes to (what the caller should hear).
fn utterance(dir: &Path) -> (PathBuf, Vec<i16>) {
    let pcm = read_telephone_wav(&repo().join("audio-fixtures/calls/0076-machine_long.wav"))
        .unwrap()[4_000..44_000]
        .to_vec();
    let mut codes = vec![0u8; pcm.len()];
    Law::Ulaw.encode_into(&pcm, &mut codes);
    let mut heard = vec![0i16; pcm.len()];
    Law::Ulaw.decode_into(&codes, &mut heard);
    let path = dir.join("utterance.ulaw");
    std::fs::write(&path, codes).unwrap();
    (path, heard)
}

async fn place(
    target: &str,
    trunk_port: u16,
    sip_port: u16,
    rtp: u16,
    agent: AgentTarget,
) -> DialReport {
    let model = load_beep_model(None, None).unwrap_or_else(|e| panic!("{e}"));
    let options = DialOptions {
        target: target.into(),
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
        campaign_id: Some("camp_py".into()),
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        dial(&options, &AmdConfig::default(), Some(model)),
    )
    .await
    .expect("the call finishes")
    .unwrap()
}

fn of<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

fn energy(x: &[i16]) -> f64 {
    x.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / x.len().max(1) as f64
}

/// Normalised correlation of two equal-length blocks.
fn correlation(a: &[i16], b: &[i16]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let (ea, eb) = (energy(a) * a.len() as f64, energy(b) * b.len() as f64);
    dot / (ea * eb).sqrt().max(1.0)
}

/// Where the utterance's first second starts in `recording` (brute force over 20 ms steps,
/// refined to the sample), with its correlation.
fn locate(recording: &[i16], utterance: &[i16]) -> (usize, f64) {
    let needle = &utterance[..8000];
    let at = |lag: usize| {
        (lag + needle.len() <= recording.len()).then(|| {
            (
                lag,
                correlation(&recording[lag..lag + needle.len()], needle),
            )
        })
    };
    let best = |lags: &mut dyn Iterator<Item = usize>| {
        lags.filter_map(at)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, f64::MIN))
    };
    let coarse = best(&mut (0..recording.len()).step_by(160)).0;
    best(&mut (coarse.saturating_sub(160)..coarse + 160))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_hears_the_agent_and_clear_cuts_it_off() {
    let dir = tempfile::tempdir().unwrap();
    let (utterance_path, utterance) = utterance(dir.path());
    let hello =
        read_telephone_wav(&repo().join("audio-fixtures/calls/0014-human_short.wav")).unwrap();
    let callee = Baresip::start(23070, 23100, &hello, 12).await;
    let agent = PythonAgent::start(
        dir.path(),
        23090,
        &utterance_path,
        &["--clear-after-ms", "1500", "--close-after-ms", "3500"],
    )
    .await;
    let report = place(
        "sip:callee@127.0.0.1:23070",
        23070,
        23062,
        23000,
        AgentTarget::new(agent.url.clone()),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = agent.events();
    let (recording, log) = tokio::task::spawn_blocking(move || callee.stop_and_read())
        .await
        .unwrap();

    assert_eq!(report.outcome, "answered", "{report:?}");
    assert_eq!(report.amd, Some("human"), "{report:?}");
    assert!(
        report
            .agent_end
            .as_deref()
            .unwrap_or("")
            .contains("1000 goodbye"),
        "{report:?}"
    );
    let stats = report.agent_stats.clone().unwrap();
    assert_eq!(stats.clears, 1, "{report:?}");
    assert_eq!(stats.marks_echoed, 1, "{report:?}");
    assert_eq!(stats.reconnects, 0, "{report:?}");
    assert!(log.contains("session closed"), "baresip saw no BYE:\n{log}");

    // The agent got the stream: start with the call's details, then the caller as media.
    let starts = of(&events, "start");
    assert_eq!(starts.len(), 1, "{events:?}");
    let params = &starts[0]["start"]["customParameters"];
    assert_eq!(params["campaignId"], "camp_py");
    assert_eq!(params["amdResult"], "human");
    assert!(
        of(&events, "media").len() > 100,
        "the agent heard too little"
    );
    // The pending mark came back at the clear, not after the five seconds of audio.
    let cleared = of(&events, "_cleared")[0]["t"].as_f64().unwrap();
    let spoke = of(&events, "_spoke")[0]["t"].as_f64().unwrap();
    let mark = of(&events, "mark");
    assert_eq!(mark.len(), 1, "{events:?}");
    assert_eq!(mark[0]["mark"]["name"], "utterance-end");
    let mark_after_clear = mark[0]["t"].as_f64().unwrap() - cleared;
    assert!(
        (0.0..0.3).contains(&mark_after_clear),
        "mark echoed {mark_after_clear:.3} s after the clear"
    );

    // baresip heard the agent's words, sample for sample (μ-law both ways is lossless) ...
    let (lag, corr) = locate(&recording, &utterance);
    assert!(
        corr > 0.95,
        "agent audio not found in the recording (correlation {corr:.3})"
    );
    // ... until the clear: how long the utterance played, in 20 ms blocks that match it.
    let played_blocks = (0..utterance.len() / 160)
        .take_while(|b| {
            let at = lag + b * 160;
            at + 160 <= recording.len()
                && correlation(&recording[at..at + 160], &utterance[b * 160..(b + 1) * 160]) > 0.9
        })
        .count();
    let played_ms = played_blocks * 20;
    let spoke_to_clear_ms = ((cleared - spoke) * 1000.0) as usize;
    assert!(
        (1_200..=1_900).contains(&played_ms),
        "the caller heard {played_ms} ms of the utterance; the clear came {spoke_to_clear_ms} ms after it was sent"
    );
    // After the cut: the three seconds the agent had queued are silence on the line.
    let from = lag + (played_ms + 200) * 8;
    let to = (lag + 4_800 * 8).min(recording.len());
    let heard = energy(&recording[from..to]);
    let would_have = energy(&utterance[from - lag..to - lag]);
    assert!(
        heard < would_have * 0.01,
        "after the clear the caller still heard audio: energy {heard:.0} vs {would_have:.0}"
    );
    eprintln!(
        "clear: played {played_ms} ms of 5000 (clear sent {spoke_to_clear_ms} ms after the utterance); \
         handoff {:?} ms; audio latency {:?}",
        stats.handoff_ms, stats.audio_latency_ms
    );
}

async fn sipp_call(dir: &Path, slot: u16, agent: AgentTarget) -> (DialReport, bool) {
    sipp_scenario(dir, slot, "uas_stream.xml", agent).await
}

async fn sipp_scenario(
    dir: &Path,
    slot: u16,
    scenario: &str,
    agent: AgentTarget,
) -> (DialReport, bool) {
    let audio = ulaw_file(dir, "0014-human_short.wav");
    let base = 23200 + 100 * slot;
    let sipp = start_sipp(dir, scenario, Some(&audio), base, base + 50);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = place("+15551234567", base, base + 2, base + 20, agent).await;
    (report, completed(sipp).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_then_a_goodbye_from_the_agent_ends_the_call_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (utterance_path, _) = utterance(dir.path());
    let agent = PythonAgent::start(
        dir.path(),
        23290,
        &utterance_path,
        &["--garbage", "--close-after-ms", "1500"],
    )
    .await;
    let (report, bye) = sipp_call(dir.path(), 0, AgentTarget::new(agent.url.clone())).await;
    assert!(bye, "sipp saw no BYE");
    assert_eq!(report.amd, Some("human"), "{report:?}");
    let stats = report.agent_stats.clone().unwrap();
    assert_eq!(stats.rejected, 2, "both bad messages counted: {report:?}");
    assert_eq!(
        stats.reconnects, 0,
        "a goodbye is not an outage: {report:?}"
    );
    assert!(stats.frames_played >= 60, "{report:?}");
    assert!(
        report
            .agent_end
            .as_deref()
            .unwrap_or("")
            .contains("1000 goodbye"),
        "{report:?}"
    );
    let talk = report.agent_talk_ms.unwrap();
    assert!((1_400..3_000).contains(&talk), "{report:?}");
    assert_eq!(
        of(&agent.events(), "stop").len(),
        0,
        "the agent closed first"
    );
    // trunx answered the agent's close frame with its own (RFC 6455 §5.5.1), so the agent's
    // library saw a clean closing handshake, not "no close frame received".
    let events = agent.events();
    let closed = of(&events, "_closed");
    assert_eq!(closed.len(), 1, "{events:?}");
    assert_eq!(closed[0]["close_rcvd"], 1000, "{closed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_agent_is_reconnected_and_the_stream_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let (utterance_path, _) = utterance(dir.path());
    let agent = PythonAgent::start(
        dir.path(),
        23390,
        &utterance_path,
        &["--drop-after-ms", "700", "--close-after-ms", "2500"],
    )
    .await;
    let (report, bye) = sipp_call(dir.path(), 1, AgentTarget::new(agent.url.clone())).await;
    assert!(bye, "sipp saw no BYE");
    let stats = report.agent_stats.clone().unwrap();
    assert_eq!(stats.reconnects, 1, "{report:?}");
    assert!(!stats.fallback);
    let events = agent.events();
    let starts = of(&events, "start");
    assert_eq!(starts.len(), 2, "{events:?}");
    assert_eq!(starts[0]["connection"], 1);
    assert_eq!(starts[1]["connection"], 2);
    assert_ne!(starts[0]["streamSid"], starts[1]["streamSid"]);
    assert_eq!(
        starts[0]["start"]["customParameters"],
        starts[1]["start"]["customParameters"]
    );
    // The second connection came about a second after the drop (the first backoff step).
    let dropped = of(&events, "_dropping")[0]["t"].as_f64().unwrap();
    let second = events
        .iter()
        .find(|e| e["event"] == "_connection" && e["n"] == 2)
        .unwrap()["t"]
        .as_f64()
        .unwrap();
    assert!(
        (0.9..1.6).contains(&(second - dropped)),
        "reconnected after {:.3} s",
        second - dropped
    );
    assert!(
        report
            .agent_end
            .as_deref()
            .unwrap_or("")
            .contains("1000 goodbye"),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_stays_down_gets_the_fallback_message_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (utterance_path, _) = utterance(dir.path());
    let agent = PythonAgent::start(dir.path(), 23490, &utterance_path, &["--refuse", "100"]).await;
    let fallback = Arc::new(
        Prompt::load(
            &repo().join("audio-fixtures/prompts/tone1k-8k.wav"),
            &PromptOptions::default(),
        )
        .unwrap(),
    );
    let target = AgentTarget {
        reconnect: ReconnectPolicy {
            budget: Duration::from_secs(4),
            ..ReconnectPolicy::default()
        },
        fallback: Some(fallback),
        ..AgentTarget::new(agent.url.clone())
    };
    let (report, bye) = sipp_call(dir.path(), 2, target).await;
    assert!(bye, "sipp saw no BYE");
    let stats = report.agent_stats.clone().unwrap();
    assert!(stats.fallback, "{report:?}");
    assert_eq!(stats.reconnects, 2, "{report:?}");
    // The whole one-second message was sent, then the call hung up.
    assert_eq!(report.played_ms, Some(1_000), "{report:?}");
    let end = report.agent_end.clone().unwrap();
    assert!(
        end.contains("503") && end.contains("gave up after 2 reconnects"),
        "{end}"
    );
    assert_eq!(report.agent_connected_ms, None);
    assert_eq!(of(&agent.events(), "_refused").len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_the_person_presses_reach_the_agent_as_dtmf_events() {
    let dir = tempfile::tempdir().unwrap();
    let (utterance_path, _) = utterance(dir.path());
    let agent = PythonAgent::start(
        dir.path(),
        23590,
        &utterance_path,
        &["--close-after-ms", "4000"],
    )
    .await;
    let (report, bye) = sipp_scenario(
        dir.path(),
        3,
        "uas_dtmf.xml",
        AgentTarget::new(agent.url.clone()),
    )
    .await;
    assert!(bye, "sipp saw no BYE");
    assert_eq!(report.amd, Some("human"), "{report:?}");
    let events = agent.events();
    let digits: Vec<&Value> = of(&events, "dtmf").iter().map(|e| &e["dtmf"]).collect();
    assert_eq!(
        digits,
        vec![
            &serde_json::json!({"track": "inbound_track", "digit": "1"}),
            &serde_json::json!({"track": "inbound_track", "digit": "9"})
        ],
        "{events:?}"
    );
    assert_eq!(report.agent_stats.unwrap().dtmf_sent, 2);
}

/// What a campaign needs of prepared messages: none here (an `ai` campaign without voicemail).
struct NoMessages;

impl trunx::runtime::campaigns::dialer::Messages for NoMessages {
    fn get(&self, _url: &str) -> Option<Arc<Prompt>> {
        None
    }
}

/// An `ai` campaign through the dialer: each person is handed to the agent named by
/// `mode.agentUrl`; the attempts keep when it connected, how long it talked and why it ended,
/// and the stats count every bridged call as `humanConnected`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ai_campaign_hands_every_person_to_the_agent_and_records_the_bridge() {
    use trunx::campaign::{Action, Channel};
    use trunx::store::{NewCampaign, PageRequest, SqliteStore, Store};
    const PROSPECTS: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let (utterance_path, _) = utterance(dir.path());
    let agent = PythonAgent::start(
        dir.path(),
        23990,
        &utterance_path,
        &["--close-after-ms", "1200"],
    )
    .await;
    let audio = ulaw_file(dir.path(), "0014-human_short.wav");
    let sipp = start_sipp_calls(
        dir.path(),
        "uas_stream.xml",
        Some(&audio),
        23970,
        23950,
        PROSPECTS,
    );
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("t.db"), 3).unwrap());
    let c = store
        .create_campaign(
            NewCampaign {
                name: Some("ai".into()),
                channel: Channel::Voice,
                mode: serde_json::json!({"ai": true, "agentUrl": agent.url, "calls_per_second": 2}),
                caller_ids: vec!["+12125550100".into()],
                caller_id_strategy: serde_json::json!({}),
                schedule: None,
                webhook_url: None,
            },
            0,
        )
        .unwrap();
    store
        .add_prospects(&c.id, &numbers_open_now(PROSPECTS, 30 * 60_000), 0)
        .unwrap();
    store
        .transition_campaign(&c.id, Action::Start, trunx::runtime::clock::wall_ms())
        .unwrap();
    let settings = trunx::runtime::campaigns::dialer::DialerSettings {
        trunk_uri: "sip:127.0.0.1:23970".into(),
        sip_addr: "127.0.0.1:23962".parse().unwrap(),
        rtp_ports: 23900..=23940,
        username: None,
        password: None,
        send_pai: false,
        ring_timeout: Duration::from_secs(20),
        limits: trunx::campaign::scheduler::NodeLimits {
            max_concurrent: 10,
            max_cps: 5.0,
        },
        amd: AmdConfig::default(),
        model: Some(load_beep_model(None, None).unwrap_or_else(|e| panic!("{e}"))),
        amd_engines: Default::default(),
        log_phone_numbers: false,
        agent: None,
        agent_defaults: AgentTarget::new(String::new()),
        claim_batch: 10,
        caller_id: Default::default(),
        amd_record: None,
        compliance: Default::default(),
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(trunx::runtime::campaigns::dialer::run(
        settings,
        store.clone(),
        Arc::new(NoMessages),
        stop.clone(),
    ));
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let st = store.stats(&c.id).unwrap();
        if st.completed as usize == PROSPECTS && st.dialing == 0 {
            break;
        }
    }
    stop.cancel();
    run.await.unwrap().unwrap();
    let st = store.stats(&c.id).unwrap();
    assert_eq!(
        (st.completed, st.human_connected, st.failed),
        (PROSPECTS as i64, PROSPECTS as i64, 0),
        "{st:?}"
    );
    let attempts = store
        .list_attempts(
            &c.id,
            &PageRequest {
                limit: 10,
                after: None,
            },
        )
        .unwrap()
        .items;
    assert_eq!(attempts.len(), PROSPECTS);
    for a in &attempts {
        let r = &a.result;
        assert!(r.agent_connected_ms.is_some(), "{a:?}");
        let talk = r.agent_talk_ms.unwrap();
        assert!((1_000..3_000).contains(&talk), "{a:?}");
        assert_eq!(r.agent_reconnects, Some(0));
        assert!(
            r.agent_end.as_deref().unwrap().contains("1000 goodbye"),
            "{a:?}"
        );
    }
    let starts: Vec<Value> = of(&agent.events(), "start").into_iter().cloned().collect();
    assert_eq!(starts.len(), PROSPECTS);
    for s in &starts {
        assert_eq!(s["start"]["customParameters"]["campaignId"], c.id.as_str());
    }
    assert!(completed(sipp).await, "sipp did not see every call end");
}

/// A machine never reaches the agent: the socket opened at the answer carries nothing, and
/// the call ends at `machine` (no voicemail configured).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_never_reaches_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let (utterance_path, _) = utterance(dir.path());
    let agent = PythonAgent::start(dir.path(), 23690, &utterance_path, &[]).await;
    let audio = ulaw_file(dir.path(), "0087-machine_beep_single.wav");
    let sipp = start_sipp(dir.path(), "uas_stream.xml", Some(&audio), 23680, 23685);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = place(
        "+15551234567",
        23680,
        23682,
        23640,
        AgentTarget::new(agent.url.clone()),
    )
    .await;
    assert!(completed(sipp).await, "sipp saw no BYE");
    // `machine` while the greeting plays, or `machine_end_beep` when the greeting model kept
    // the rules' `machine` waiting until the beep: either way no message is left.
    assert!(
        matches!(report.amd, Some("machine" | "machine_end_beep")),
        "{report:?}"
    );
    assert!(
        matches!(
            report.message,
            Some("skip_voicemail" | "no_voicemail_audio")
        ),
        "{report:?}"
    );
    assert_eq!(report.agent_talk_ms, None, "{report:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = agent.events();
    // The socket was open (no connect time at a handoff), but not one message crossed it.
    assert_eq!(of(&events, "_connection").len(), 1, "{events:?}");
    let protocol: Vec<&Value> = events
        .iter()
        .filter(|e| !e["event"].as_str().unwrap_or("_").starts_with('_'))
        .collect();
    assert!(
        protocol.is_empty(),
        "the agent heard from a machine call: {protocol:?}"
    );
}
