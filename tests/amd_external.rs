//! AMD as a service, end to end over real sockets:
//! - trunx dials the simulated carrier with the external provider pointed at a second process
//!   running `trunx amd serve`, and every call is decided exactly as the built-in engine
//!   decides the same recorded call (result, cause, beep end), by the external engine;
//! - an engine that stalls falls back at its deadline, one that dies (SIGKILL) or refuses the
//!   connection falls back at once, and the calls are still decided, with the fallback counted;
//! - AudioSocket and the FreeSWITCH path, driven by clients written here, decide each recorded
//!   call exactly as `trunx amd FILE --json` does, and the result endpoint serves it.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use trunx::amd::AmdConfig;
use trunx::amd::provider::external::audiosocket;
use trunx::runtime::amd::files::{load_beep_model, read_call_audio};
use trunx::runtime::call::amd_external::ExternalTarget;
use trunx::runtime::call::dial::dial_with_engine;
use trunx::runtime::call::dial::{DialOptions, DialReport};
use trunx::tools::carrier_sim::{
    CarrierSim, CarrierSimConfig, PopulationMix, SimTiming, scenario_for,
};

const SEED: u64 = 42;
const BIN: &str = env!("CARGO_BIN_EXE_trunx");

/// `trunx amd serve` in its own process on free ports; killed on drop.
struct Served {
    child: Child,
    ws: SocketAddr,
    audiosocket: SocketAddr,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve() -> Served {
    let mut child = Command::new(BIN)
        .args([
            "amd",
            "serve",
            "--ws",
            "127.0.0.1:0",
            "--audiosocket",
            "127.0.0.1:0",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("trunx amd serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "trunx amd serve: websocket ws://A/amd/v1/stream, freeswitch ..., audiosocket B, ..."
    let ws = line
        .split("ws://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no websocket address in {line:?}"));
    let audiosocket = line
        .split("audiosocket ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no audiosocket address in {line:?}"));
    Served {
        child,
        ws,
        audiosocket,
    }
}

async fn start_sim(rtp_ports: std::ops::RangeInclusive<u16>) -> CarrierSim {
    CarrierSim::start(CarrierSimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        rtp_ports,
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
    .expect("the sim starts")
}

/// A test number whose scenario plays `file`.
fn number_playing(file: &str) -> String {
    (0..200_000)
        .map(|i| format!("+1555{i:07}"))
        .find(|n| {
            scenario_for(n, &PopulationMix::default(), SEED)
                .playback()
                .is_some_and(|p| p.file() == file)
        })
        .unwrap_or_else(|| panic!("no number plays {file}"))
}

fn target(url: String, timeout: Duration) -> ExternalTarget {
    ExternalTarget {
        url,
        headers: Vec::new(),
        timeout,
    }
}

async fn place(
    sim: SocketAddr,
    number: &str,
    rtp: u16,
    external: Option<ExternalTarget>,
) -> DialReport {
    let model = load_beep_model(None, None).unwrap_or_else(|e| panic!("{e}"));
    let options = DialOptions {
        target: number.to_string(),
        from: "+15550001111".into(),
        trunk: format!("sip:{sim}"),
        username: None,
        password: None,
        ring_timeout: Duration::from_secs(20),
        sip_addr: "127.0.0.1:0".parse().unwrap(),
        rtp_ports: rtp..=rtp + 40,
        send_pai: false,
        voicemail: None,
        agent: None,
        campaign_id: None,
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        dial_with_engine(
            &options,
            &AmdConfig::default(),
            Some(model),
            external,
            CancellationToken::new(),
        ),
    )
    .await
    .expect("the call finishes")
    .expect("the call runs")
}

fn fallbacks(reason: &str) -> u64 {
    trunx::runtime::metrics::global()
        .amd_external_fallbacks
        .with_label_values(&[reason])
        .get()
}

/// Two calls of the same recorded call decided alike: the same outcome and verdict; with every
/// packet on time (both detectors fed the same recording) the same cause, and times within
/// the one frame a call's first packet can land on either side of the answer. A late or lost
/// packet (concealed) makes the audio differ: then only the verdict is compared.
fn assert_same_decision(x: &DialReport, b: &DialReport, what: &str) {
    assert_eq!(x.outcome, b.outcome, "{what}");
    assert_eq!((x.amd, x.machine_end), (b.amd, b.machine_end), "{what}");
    if x.rx_late + x.rx_lost + b.rx_late + b.rx_lost > 0 {
        return;
    }
    assert_eq!(x.amd_cause, b.amd_cause, "{what}");
    for (x, b) in [(x.amd_ms, b.amd_ms), (x.beep_end_ms, b.beep_end_ms)] {
        assert_eq!(x.is_some(), b.is_some(), "{what}");
        assert!(
            x.unwrap_or(0).abs_diff(b.unwrap_or(0)) <= 20,
            "{what}: {x:?} {b:?}"
        );
    }
}

/// People, machines with and without a beep, from the simulator's recordings.
const CALLS: [&str; 6] = [
    "0008-human_hello_hello.wav",
    "0001-human_tv.wav",
    "0002-machine_short.wav",
    "0087-machine_beep_single.wav",
    "0016-machine_beep_dual.wav",
    "0000-machine_nobeep.wav",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_trunx_decides_every_call_like_the_builtin_engine() {
    let served = serve();
    let sim = start_sim(34_000..=34_099).await;
    let url = format!("ws://{}/amd/v1/stream", served.ws);
    for (i, file) in CALLS.iter().enumerate() {
        let number = number_playing(file);
        let rtp = 34_200 + (i as u16) * 100;
        // Both at once: the same recorded call, one decided in-process, one by the server.
        let (builtin, external) = tokio::join!(
            place(sim.sip_addr(), &number, rtp, None),
            place(
                sim.sip_addr(),
                &number,
                rtp + 50,
                // Longer than any decision of these calls takes (greetings run past 4 s).
                Some(target(url.clone(), Duration::from_secs(15))),
            )
        );
        assert_eq!(builtin.outcome, "answered", "{file}");
        assert!(builtin.amd.is_some(), "{file}");
        assert_eq!(builtin.amd_engine, Some("builtin"));
        assert_eq!(external.amd_engine, Some("external"), "{file}");
        assert_same_decision(&external, &builtin, file);
        // What the call acted on is what the engine decided for it (by its SIP Call-ID).
        let (status, body) =
            http_get(served.ws, &format!("/amd/v1/result/{}", external.call_id)).await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v["events"][0]["cause"].as_str(),
            external.amd_cause.as_deref(),
            "{body}"
        );
        assert_eq!(v["beep_end_ms"].as_u64(), external.beep_end_ms, "{body}");
    }
    sim.shutdown().await;
}

/// A WebSocket server that accepts the stream and reads it, but never answers.
async fn stalling_engine() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await {
                    while let Some(Ok(_)) = ws.next().await {}
                }
            });
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalling_engine_falls_back_at_its_deadline_and_the_call_is_decided() {
    let sim = start_sim(35_000..=35_099).await;
    let (addr, engine) = stalling_engine().await;
    // The built-in engine decides this person at 2.48 s of audio; the engine gets 3 s.
    let number = number_playing("0008-human_hello_hello.wav");
    let builtin = place(sim.sip_addr(), &number, 35_200, None).await;
    let before = fallbacks("timeout");
    let deadline = Duration::from_secs(3);
    let report = place(
        sim.sip_addr(),
        &number,
        35_300,
        Some(target(format!("ws://{addr}/amd/v1/stream"), deadline)),
    )
    .await;
    assert_eq!(report.amd_engine, Some("builtin_fallback"));
    assert_same_decision(&report, &builtin, "fallback");
    // The call hangs up as soon as its decision stands: at the deadline, not much after.
    let talk = report.talk_ms.unwrap();
    assert!(
        talk >= deadline.as_millis() as u64 && talk < deadline.as_millis() as u64 + 600,
        "decided {talk} ms after the answer, deadline {deadline:?}"
    );
    assert!(fallbacks("timeout") > before);
    engine.abort();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_dies_or_is_not_there_falls_back_at_once() {
    let sim = start_sim(36_000..=36_099).await;
    let file = "0087-machine_beep_single.wav";
    let number = number_playing(file);
    let builtin = place(sim.sip_addr(), &number, 36_200, None).await;
    assert_eq!(builtin.amd, Some("machine_end_beep"));
    let long = Duration::from_secs(30);

    // Killed with SIGKILL half a second into the call.
    let mut served = serve();
    let url = format!("ws://{}/amd/v1/stream", served.ws);
    let before = fallbacks("lost");
    let started = trunx::runtime::clock::now();
    let call = tokio::spawn({
        let sim = sim.sip_addr();
        let number = number.clone();
        async move { place(sim, &number, 36_300, Some(target(url, long))).await }
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    served.child.kill().unwrap();
    let report = call.await.unwrap();
    assert_eq!(report.amd_engine, Some("builtin_fallback"));
    assert_same_decision(&report, &builtin, "fallback");
    assert!(fallbacks("lost") > before);
    // Nothing waited for the 30 s deadline.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(
        report.talk_ms.unwrap() < builtin.talk_ms.unwrap() + 1_000,
        "{:?} vs {:?}",
        report.talk_ms,
        builtin.talk_ms
    );

    // Nobody listening at the URL.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/amd/v1/stream", closed.local_addr().unwrap());
    drop(closed);
    let report = place(sim.sip_addr(), &number, 36_400, Some(target(url, long))).await;
    assert_eq!(report.amd_engine, Some("builtin_fallback"));
    assert_same_decision(&report, &builtin, "fallback");
    sim.shutdown().await;
}

/// `trunx amd FILE --json`'s events: (event, cause, at_ms, beep_end_ms).
fn cli_events(file: &str) -> Vec<(String, String, u64, Option<u64>)> {
    let out = Command::new(BIN)
        .args(["amd", &format!("audio-fixtures/calls/{file}"), "--json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    events_of(&v["events"], "event")
}

fn events_of(events: &Value, kind_key: &str) -> Vec<(String, String, u64, Option<u64>)> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e[kind_key].as_str().unwrap().to_string(),
                e["cause"].as_str().unwrap().to_string(),
                e["at_ms"].as_u64().unwrap(),
                e["beep_end_ms"].as_u64(),
            )
        })
        .collect()
}

fn pcm_of(file: &str) -> Vec<i16> {
    let path = format!("{}/audio-fixtures/calls/{file}", env!("CARGO_MANIFEST_DIR"));
    read_call_audio(std::path::Path::new(&path)).unwrap()
}

/// A plain HTTP GET on the server's WebSocket port.
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_string();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audiosocket_sessions_decide_like_trunx_amd_file() {
    let served = serve();
    for (i, file) in CALLS.iter().enumerate() {
        let uuid = format!("0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8{i:02x}");
        let stream = TcpStream::connect(served.audiosocket).await.unwrap();
        let (mut rx, mut tx) = stream.into_split();
        let pcm = pcm_of(file);
        let uuid_bytes = audiosocket::parse_uuid(&uuid).unwrap();
        // Asterisk's side: the UUID, then 20 ms slin frames, then a hangup.
        let writer = tokio::spawn(async move {
            let mut out = Vec::new();
            audiosocket::encode(audiosocket::KIND_UUID, &uuid_bytes, &mut out);
            for chunk in pcm.chunks(160) {
                audiosocket::encode_audio(chunk, &mut out);
            }
            audiosocket::encode(audiosocket::KIND_HANGUP, &[], &mut out);
            for piece in out.chunks(323 * 10) {
                if tx.write_all(piece).await.is_err() {
                    return;
                }
            }
        });
        // trunx answers with a hangup frame once decided.
        let mut got = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(20), rx.read_to_end(&mut got)).await;
        assert!(read.is_ok(), "{file}: the session ended");
        assert_eq!(got, vec![audiosocket::KIND_HANGUP, 0, 0], "{file}");
        writer.abort();
        let (status, body) = http_get(served.ws, &format!("/amd/v1/result/{uuid}")).await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["state"], "decided", "{body}");
        assert_eq!(events_of(&v["events"], "kind"), cli_events(file), "{file}");
        let (_, word) = http_get(served.ws, &format!("/amd/v1/result/{uuid}?format=text")).await;
        assert_eq!(Some(word.as_str()), v["result"].as_str(), "{file}");
    }
    let (status, _) = http_get(served.ws, "/amd/v1/result/no-such-call").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_freeswitch_path_decides_like_trunx_amd_file() {
    let served = serve();
    for (i, file) in CALLS.iter().enumerate() {
        let uuid = format!("fs-call-{i}");
        // mod_audio_fork at 16 kHz: every 8 kHz sample twice (halved back exactly by trunx).
        let url = format!("ws://{}/freeswitch/{uuid}?rate=16000", served.ws);
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let (mut sink, mut stream) = ws.split();
        let pcm = pcm_of(file);
        let writer = tokio::spawn(async move {
            for chunk in pcm.chunks(160) {
                let bytes: Vec<u8> = chunk
                    .iter()
                    .flat_map(|s| [s.to_le_bytes(), s.to_le_bytes()].concat())
                    .collect();
                if sink.send(Message::Binary(bytes.into())).await.is_err() {
                    return;
                }
            }
            let _ = sink.send(Message::Close(None)).await;
        });
        let mut events = Vec::new();
        while let Ok(Some(Ok(m))) =
            tokio::time::timeout(Duration::from_secs(20), stream.next()).await
        {
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_str(&t).unwrap();
                assert_eq!(v["call_id"], uuid.as_str());
                let last = v["final"] == true;
                events.push(v);
                if last {
                    break;
                }
            }
        }
        writer.abort();
        // mod_audio_fork closes the socket at hangup: a decision the end of the audio forced
        // (`HANGUP-...`, the call ended undecided) comes after the close, so it is not on the
        // socket but in the result book. Every event sent is the CLI's, in order, and the book
        // holds them all.
        let want = cli_events(file);
        let sent = events_of(&Value::Array(events), "kind");
        assert_eq!(sent[..], want[..sent.len().min(want.len())], "{file}");
        if sent.len() < want.len() {
            assert!(
                want[sent.len()..]
                    .iter()
                    .all(|e| e.1.starts_with("HANGUP-")),
                "{file}"
            );
        }
        let (status, body) = http_get(served.ws, &format!("/amd/v1/result/{uuid}")).await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(events_of(&v["events"], "kind"), want, "{file}");
    }
}

/// The campaign path: two campaigns on the same numbers, one with the node's built-in engine,
/// one with `mode.amdProvider = external` at `trunx amd serve`; every number ends the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_with_mode_amd_provider_external_ends_like_a_builtin_one() {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Arc;
    use trunx::audio::prompt::{Prompt, PromptOptions};
    use trunx::campaign::scheduler::NodeLimits;
    use trunx::campaign::{Action, CampaignStatus, Channel};
    use trunx::runtime::campaigns::dialer::{self, DialerSettings, Messages};
    use trunx::store::{NewCampaign, PageRequest, SqliteStore, Store};

    struct Prepared(HashMap<String, Arc<Prompt>>);
    impl Messages for Prepared {
        fn get(&self, url: &str) -> Option<Arc<Prompt>> {
            self.0.get(url).cloned()
        }
    }

    const PROSPECTS: usize = 12;
    let served = serve();
    let dir = tempfile::tempdir().unwrap();
    let phones = common::numbers_open_now(PROSPECTS, 30 * 60_000);
    let sim = CarrierSim::start(CarrierSimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        rtp_ports: 37_000..=37_099,
        seed: SEED,
        ..CarrierSimConfig::default()
    })
    .await
    .unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("t.db"), 5).unwrap());
    let url = "https://media.example/vm.mp3";
    let prompt = Prompt::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("audio-fixtures/prompts/voicemail-10s.mp3"),
        &PromptOptions::default(),
    )
    .unwrap();
    let messages = Arc::new(Prepared(HashMap::from([(
        url.to_string(),
        Arc::new(prompt),
    )])));
    let now = trunx::runtime::clock::wall_ms();
    let dids = vec!["+12125550100".to_string(), "+13125550100".to_string()];
    store.add_dids(&dids, now).unwrap();
    let engine = format!("ws://{}/amd/v1/stream", served.ws);
    let mut campaigns = Vec::new();
    for mode in [
        serde_json::json!({"voicemailAudioUrl": url, "calls_per_second": 10}),
        serde_json::json!({"voicemailAudioUrl": url, "calls_per_second": 10,
                           "amdProvider": "external", "amdExternalUrl": engine}),
    ] {
        let c = store
            .create_campaign(
                NewCampaign {
                    name: None,
                    channel: Channel::Voice,
                    mode,
                    caller_ids: dids.clone(),
                    caller_id_strategy: serde_json::json!({}),
                    schedule: None,
                    webhook_url: None,
                },
                now,
            )
            .unwrap();
        store.add_prospects(&c.id, &phones, now).unwrap();
        store
            .transition_campaign(&c.id, Action::Start, trunx::runtime::clock::wall_ms())
            .unwrap();
        campaigns.push(c.id);
    }
    let stop = CancellationToken::new();
    let mut engines = trunx::runtime::call::amd_external::AmdEngines::default();
    // Long greetings decide after 4 s: the engine gets longer than any of them takes.
    engines.external.timeout = Duration::from_secs(15);
    let run = tokio::spawn(dialer::run(
        DialerSettings {
            trunk_uri: format!("sip:{}", sim.sip_addr()),
            sip_addr: "127.0.0.1:0".parse().unwrap(),
            rtp_ports: 37_200..=37_999,
            username: None,
            password: None,
            send_pai: false,
            ring_timeout: Duration::from_secs(15),
            limits: NodeLimits {
                max_concurrent: 100,
                max_cps: 20.0,
            },
            amd: AmdConfig::default(),
            model: Some(load_beep_model(None, None).unwrap_or_else(|e| panic!("{e}"))),
            log_phone_numbers: false,
            agent: None,
            agent_defaults: trunx::runtime::call::agent_ws::AgentTarget::new(String::new()),
            claim_batch: 100,
            caller_id: Default::default(),
            amd_record: None,
            amd_engines: engines,
            compliance: Default::default(),
        },
        store.clone(),
        messages,
        stop.clone(),
    ));
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if campaigns
            .iter()
            .all(|c| store.get_campaign(c).unwrap().status == CampaignStatus::Completed)
        {
            break;
        }
    }
    stop.cancel();
    run.await.unwrap().unwrap();
    sim.shutdown().await;
    let attempts: Vec<Vec<trunx::store::Attempt>> = campaigns
        .iter()
        .map(|c| {
            assert_eq!(
                store.get_campaign(c).unwrap().status,
                CampaignStatus::Completed
            );
            let page = PageRequest {
                limit: 500,
                after: None,
            };
            store.list_attempts(c, &page).unwrap().items
        })
        .collect();
    // Two calls of one number are two calls (the answer lands anywhere in the carrier's media
    // clock), so a borderline greeting may measure a frame apart: the verdicts must agree.
    let ends: Vec<BTreeMap<String, _>> = attempts
        .iter()
        .map(|list| {
            list.iter()
                .map(|a| {
                    let r = &a.result;
                    (
                        a.phone.clone(),
                        (r.outcome, r.amd_result, r.machine_end.clone()),
                    )
                })
                .collect()
        })
        .collect();
    assert_eq!(ends[0].len(), PROSPECTS);
    assert_eq!(ends[1], ends[0]);
    // And what the external campaign recorded is exactly what the engine decided for that
    // call (its SIP Call-ID is the engine's call id).
    let mut answered = 0;
    for a in &attempts[1] {
        let (Some(call_id), Some(cause)) = (&a.result.sip_call_id, &a.result.amd_cause) else {
            continue;
        };
        answered += 1;
        let (status, body) = http_get(served.ws, &format!("/amd/v1/result/{call_id}")).await;
        assert_eq!(status, 200, "{call_id}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v["events"][0]["cause"].as_str(),
            Some(cause.as_str()),
            "{body}"
        );
    }
    assert!(
        answered >= 3,
        "too few answered calls to compare: {:?}",
        ends[1]
    );
}
