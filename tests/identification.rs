//! The identification message (TSR 16 CFR 310.4(b)(4)(iii)) against real peers, through the
//! campaign dialer: baresip is the person (it says "hello" and records what it hears), the
//! Python agent `tests/peers/agent.py` (PyPI `websockets`, in `.venv-agent`) is the AI agent.
//!
//! - A slow agent (it answers the websocket handshake 4.5 s late): 2 s after the person's
//!   greeting they hear the built-in identification clip, to its end, then the call hangs up;
//!   the late agent is never handed the person; the attempt is `abandoned`.
//! - An agent that refuses every connection (its reconnect budget outlasts the 2 s), on a
//!   campaign with its own `mode.identificationAudioUrl`: the person hears that clip.
//! - An agent in time: the person hears the agent, never the clip; the attempt is not abandoned.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use trunx::amd::AmdConfig;
use trunx::audio::g711::Law;
use trunx::audio::prompt::{Prompt, PromptOptions};
use trunx::audio::wav::read_telephone_wav;
use trunx::campaign::scheduler::NodeLimits;
use trunx::campaign::{Action, AmdResult, CampaignStatus, Channel, Outcome};
use trunx::runtime::amd::files::load_beep_model;
use trunx::runtime::call::agent_ws::AgentTarget;
use trunx::runtime::campaigns::dialer::{self, DialerSettings, Messages};
use trunx::store::{Attempt, NewCampaign, PageRequest, SqliteStore, Store};

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
        let err = dir.join(format!("agent-{port}.err"));
        let child = Command::new(python)
            .arg(repo().join("tests/peers/agent.py"))
            .args(["--port", &port.to_string()])
            .args(["--utterance", &utterance.display().to_string()])
            .args(["--log", &log.display().to_string()])
            .args(flags)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
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
            std::fs::read_to_string(err).unwrap_or_default()
        );
    }

    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn count(&self, event: &str) -> usize {
        self.events().iter().filter(|e| e["event"] == event).count()
    }
}

/// Five seconds of recorded speech as μ-law (what the agent says), and the PCM the person
/// should hear.
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

/// What the person hears of a prompt: its μ-law frames decoded (baresip takes PCMU).
fn heard(prompt: &Prompt) -> Vec<i16> {
    let mut out = Vec::with_capacity(prompt.ulaw_frames.len() * 160);
    let mut pcm = [0i16; 160];
    for f in &prompt.ulaw_frames {
        Law::Ulaw.decode_into(f, &mut pcm);
        out.extend_from_slice(&pcm);
    }
    out
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

/// Where one second of `clip` starting at `from` is in `recording` (20 ms steps refined to
/// the sample), with its correlation; the lag is where the clip itself starts.
fn locate(recording: &[i16], clip: &[i16], from: usize) -> (usize, f64) {
    let needle = &clip[from..from + 8000];
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
    let (lag, corr) = best(&mut (coarse.saturating_sub(160)..coarse + 160));
    (lag.saturating_sub(from), corr)
}

/// The first sample of speech in a clip (the clip may start with silence).
fn speech_start(clip: &[i16]) -> usize {
    clip.iter().position(|s| s.unsigned_abs() > 1_000).unwrap()
}

/// baresip as the person `phone`: auto-answers, says "hello", then stays on the line for
/// `tail_s` seconds, recording what it hears.
struct Person {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Person {
    async fn start(sip_port: u16, rtp_low: u16, phone: &str, tail_s: usize) -> Person {
        let hello =
            read_telephone_wav(&repo().join("audio-fixtures/calls/0014-human_short.wav")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let baresip = common::baresip_setup(d, sip_port, rtp_low, phone, &hello, tail_s);
        let log = std::fs::File::create(d.join("baresip.log")).unwrap();
        let child = Command::new(baresip)
            .args(["-f", &d.display().to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("baresip starts");
        tokio::time::sleep(Duration::from_millis(1000)).await;
        Person {
            dir,
            child: Some(child),
        }
    }

    /// Stops baresip; what it heard (8 kHz PCM) and its log.
    fn stop_and_read(mut self) -> (Vec<i16>, String) {
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

impl Drop for Person {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Prepared campaign audio by URL.
struct Prepared(Vec<(String, Arc<Prompt>)>);

impl Messages for Prepared {
    fn get(&self, url: &str) -> Option<Arc<Prompt>> {
        self.0
            .iter()
            .find(|(u, _)| u == url)
            .map(|(_, p)| p.clone())
    }
}

/// One `ai` campaign of one prospect (baresip on `sip_port`, reached as the trunk) with
/// `mode`, run through the dialer until it completes; its attempt.
async fn run_campaign(
    dir: &Path,
    mode: Value,
    phone: &str,
    sip_port: u16,
    local: u16,
    messages: Prepared,
) -> Attempt {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("t.db"), 7).unwrap());
    let c = store
        .create_campaign(
            NewCampaign {
                name: Some("identification".into()),
                channel: Channel::Voice,
                mode,
                caller_ids: vec!["+12125550100".into()],
                caller_id_strategy: json!({}),
                schedule: None,
                webhook_url: None,
            },
            0,
        )
        .unwrap();
    store.add_prospects(&c.id, &[phone.to_string()], 0).unwrap();
    let now = trunx::runtime::clock::wall_ms();
    store
        .transition_campaign(&c.id, Action::Start, now)
        .unwrap();
    let settings = DialerSettings {
        trunk_uri: format!("sip:127.0.0.1:{sip_port}"),
        sip_addr: format!("127.0.0.1:{local}").parse().unwrap(),
        rtp_ports: local + 10..=local + 50,
        username: None,
        password: None,
        send_pai: false,
        ring_timeout: Duration::from_secs(20),
        limits: NodeLimits {
            max_concurrent: 4,
            max_cps: 5.0,
        },
        amd: AmdConfig::default(),
        model: Some(load_beep_model(None, None).unwrap_or_else(|e| panic!("{e}"))),
        log_phone_numbers: false,
        agent: None,
        agent_defaults: AgentTarget::new(String::new()),
        claim_batch: 10,
        caller_id: Default::default(),
        amd_record: None,
        amd_engines: Default::default(),
        compliance: Default::default(),
    };
    let stop = CancellationToken::new();
    let run = tokio::spawn(dialer::run(
        settings,
        store.clone(),
        Arc::new(messages),
        stop.clone(),
    ));
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if store.get_campaign(&c.id).unwrap().status == CampaignStatus::Completed {
            break;
        }
    }
    stop.cancel();
    run.await.unwrap().unwrap();
    assert_eq!(
        store.get_campaign(&c.id).unwrap().status,
        CampaignStatus::Completed
    );
    let mut attempts = store
        .list_attempts(
            &c.id,
            &PageRequest {
                limit: 10,
                after: None,
            },
        )
        .unwrap()
        .items;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    attempts.remove(0)
}

/// Follows `clip` through `recording` in half-second blocks from its first speech to its last:
/// each block's lag is searched to the sample around the last one (the person's jitter buffer
/// may shift the audio by a few ms as it adapts). Returns where the clip starts in the
/// recording (samples) and each block's correlation.
fn follow(recording: &[i16], clip: &[i16]) -> (usize, Vec<f64>) {
    const BLOCK: usize = 4_000;
    const DRIFT: usize = 400;
    let from = speech_start(clip);
    let last = clip.iter().rposition(|s| s.unsigned_abs() > 1_000).unwrap();
    let best = |needle: &[i16], lags: &mut dyn Iterator<Item = usize>| {
        lags.filter(|l| l + needle.len() <= recording.len())
            .map(|l| (l, correlation(&recording[l..l + needle.len()], needle)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, f64::MIN))
    };
    let first = &clip[from..from + BLOCK];
    let coarse = best(first, &mut (0..recording.len()).step_by(2)).0;
    let (mut lag, c0) = best(first, &mut (coarse.saturating_sub(2)..coarse + 3));
    let start = lag.saturating_sub(from);
    let mut corrs = vec![c0];
    let mut at = from + BLOCK;
    while at + BLOCK <= last + 1 {
        let needle = &clip[at..at + BLOCK];
        let expected = lag + BLOCK;
        let (l, c) = best(
            needle,
            &mut (expected.saturating_sub(DRIFT)..expected + DRIFT),
        );
        corrs.push(c);
        lag = l;
        at += BLOCK;
    }
    (start, corrs)
}

/// Checks the person heard `clip` whole, starting about `after_ms` after their greeting ended.
fn assert_heard_whole(recording: &[i16], clip: &[i16], greeting_end_ms: i64, after_ms: i64) {
    let (start, corrs) = follow(recording, clip);
    let mut sorted = corrs.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let weak = corrs.iter().filter(|c| **c < 0.9).count();
    eprintln!(
        "identification: heard from {} ms (greeting ended at {greeting_end_ms} ms); \
         correlation per 0.5 s block: median {median:.3}, {weak} of {} below 0.9: {corrs:.2?}",
        start / 8,
        corrs.len()
    );
    assert!(
        median > 0.95 && weak * 5 <= corrs.len(),
        "the identification message is not what the person heard: {corrs:.2?}"
    );
    let start_ms = (start / 8) as i64;
    let wanted = greeting_end_ms + after_ms;
    assert!(
        (wanted - 150..=wanted + 700).contains(&start_ms),
        "the message started {start_ms} ms into the call; the greeting ended at \
         {greeting_end_ms} ms, so it was due at {wanted} ms"
    );
    // Its last block too: the message was not cut.
    assert!(
        *corrs.last().unwrap() > 0.8,
        "the message's end was not heard: {corrs:.2?}"
    );
}

/// Whether any half second of `clip` shows in `recording` (correlation above 0.5).
fn any_of(recording: &[i16], clip: &[i16]) -> f64 {
    let from = speech_start(clip);
    clip[from..]
        .chunks_exact(4_000)
        .take(2)
        .map(|needle| {
            (0..recording.len().saturating_sub(needle.len()))
                .map(|l| correlation(&recording[l..l + needle.len()], needle))
                .fold(f64::MIN, f64::max)
        })
        .fold(f64::MIN, f64::max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_the_slow_agent_misses_hears_the_built_in_identification_and_is_abandoned() {
    let dir = tempfile::tempdir().unwrap();
    let (utterance_path, _) = utterance(dir.path());
    let phone = common::numbers_open_now(1, 30 * 60_000).remove(0);
    let agent = PythonAgent::start(
        dir.path(),
        28_090,
        &utterance_path,
        &["--accept-delay-ms", "4500", "--close-after-ms", "3000"],
    )
    .await;
    let person = Person::start(28_070, 28_100, &phone, 16).await;
    let attempt = run_campaign(
        dir.path(),
        json!({"ai": true, "agentUrl": agent.url, "calls_per_second": 1}),
        &phone,
        28_070,
        28_000,
        Prepared(vec![]),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (recording, log) = tokio::task::spawn_blocking(move || person.stop_and_read())
        .await
        .unwrap();
    let r = &attempt.result;
    assert_eq!(r.outcome, Some(Outcome::HumanConnected), "{attempt:?}");
    assert_eq!(r.amd_result, Some(AmdResult::Human), "{attempt:?}");
    assert_eq!(r.abandoned, Some(true), "{attempt:?}");
    assert!(
        r.agent_end
            .as_deref()
            .unwrap_or("")
            .contains("identification message played"),
        "{attempt:?}"
    );
    assert!(log.contains("session closed"), "baresip saw no BYE:\n{log}");
    let clip = heard(&trunx::audio::identification::default_prompt().unwrap());
    assert_eq!(r.played_ms, Some(clip.len() as i64 / 8), "{attempt:?}");
    assert_heard_whole(&recording, &clip, r.amd_ms.unwrap(), 2_000);
    // The agent was asked for (and was slow), but never handed the person.
    assert!(agent.count("_request") >= 1, "{:?}", agent.events());
    assert_eq!(agent.count("start"), 0, "{:?}", agent.events());
    assert_eq!(agent.count("media"), 0, "{:?}", agent.events());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_s_own_identification_plays_when_the_agent_stays_down() {
    let dir = tempfile::tempdir().unwrap();
    let (utterance_path, _) = utterance(dir.path());
    let phone = common::numbers_open_now(1, 30 * 60_000).remove(0);
    // Refused at every try: the reconnect budget (10 s) outlasts the 2 s, so the message
    // plays at the deadline.
    let agent = PythonAgent::start(dir.path(), 28_290, &utterance_path, &["--refuse", "100"]).await;
    let person = Person::start(28_270, 28_300, &phone, 18).await;
    let url = "/audio/aud_identify/file";
    let own = Arc::new(
        Prompt::load(
            &repo().join("audio-fixtures/prompts/voicemail-10s.mp3"),
            &PromptOptions::default(),
        )
        .unwrap(),
    );
    let attempt = run_campaign(
        dir.path(),
        json!({"ai": true, "agentUrl": agent.url, "identificationAudioUrl": url}),
        &phone,
        28_270,
        28_200,
        Prepared(vec![(url.to_string(), own.clone())]),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (recording, _) = tokio::task::spawn_blocking(move || person.stop_and_read())
        .await
        .unwrap();
    let r = &attempt.result;
    assert_eq!(r.abandoned, Some(true), "{attempt:?}");
    assert_eq!(r.agent_connected_ms, None, "{attempt:?}");
    let clip = heard(&own);
    assert_heard_whole(&recording, &clip, r.amd_ms.unwrap(), 2_000);
    // Not the built-in clip.
    let built_in = heard(&trunx::audio::identification::default_prompt().unwrap());
    let corr = any_of(&recording, &built_in);
    assert!(corr < 0.5, "the built-in clip was heard too ({corr:.3})");
    assert!(agent.count("_refused") >= 1);
    assert_eq!(agent.count("start"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_bridged_in_time_never_hears_the_identification() {
    let dir = tempfile::tempdir().unwrap();
    let (utterance_path, utterance) = utterance(dir.path());
    let phone = common::numbers_open_now(1, 30 * 60_000).remove(0);
    let agent = PythonAgent::start(
        dir.path(),
        28_490,
        &utterance_path,
        &["--close-after-ms", "6000"],
    )
    .await;
    let person = Person::start(28_470, 28_500, &phone, 16).await;
    let attempt = run_campaign(
        dir.path(),
        json!({"ai": true, "agentUrl": agent.url}),
        &phone,
        28_470,
        28_400,
        Prepared(vec![]),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (recording, _) = tokio::task::spawn_blocking(move || person.stop_and_read())
        .await
        .unwrap();
    let r = &attempt.result;
    assert_eq!(r.outcome, Some(Outcome::HumanConnected), "{attempt:?}");
    assert_eq!(r.abandoned, Some(false), "{attempt:?}");
    assert!(
        r.agent_end
            .as_deref()
            .unwrap_or("")
            .contains("1000 goodbye"),
        "{attempt:?}"
    );
    assert_eq!(agent.count("start"), 1);
    // The person heard the agent ...
    let (_, corr) = locate(&recording, &utterance, 0);
    assert!(corr > 0.95, "the agent was not heard ({corr:.3})");
    // ... and never the identification message.
    let clip = heard(&trunx::audio::identification::default_prompt().unwrap());
    let corr = any_of(&recording, &clip);
    assert!(
        corr < 0.5,
        "the identification message was heard ({corr:.3})"
    );
}

/// The API side of `mode.identificationAudioUrl`: validated at create (ai only, an existing
/// asset), prepared at start (a URL that cannot be fetched is refused with the field named and
/// the campaign left as it was), and shown by `GET /campaigns/:id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_validates_and_prepares_the_identification_url() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use tower::ServiceExt;
    use trunx::api::{self, AppState, auth};
    use trunx::runtime::fetch::{FetchConfig, VoicemailLibrary};
    const KEY: &str = "trunx_test_key";
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("api.db"), 7).unwrap());
    store
        .create_api_key("test", &auth::hash_key(KEY), 0)
        .unwrap();
    let router = api::router(AppState {
        store: store.clone(),
        now_ms: Arc::new(trunx::runtime::clock::wall_ms),
        max_cps: 10.0,
        log_phone_numbers: false,
        voicemail: Arc::new(VoicemailLibrary::new(FetchConfig::default(), store.clone()).unwrap()),
        max_abandon_rate: 0.02,
    });
    let call = |method: &str, path: &str, body: Option<Value>| {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {KEY}"));
        if body.is_some() {
            b = b.header(header::CONTENT_TYPE, "application/json");
        }
        let req = b
            .body(body.map_or_else(Body::empty, |v| Body::from(v.to_string())))
            .unwrap();
        let router = router.clone();
        async move {
            let resp = router.oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };
    let field = |v: &Value| v["error"]["message"].as_str().unwrap_or("").to_string();
    let (s, v) = call(
        "POST",
        "/campaigns",
        Some(json!({"mode": {"ai": true, "identificationAudioUrl": "/audio/aud_nope/file"}})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(field(&v).starts_with("mode.identificationAudioUrl"), "{v}");
    let (s, v) = call(
        "POST",
        "/campaigns",
        Some(json!({"mode": {"identificationAudioUrl": "https://x.example/id.wav"}})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(field(&v).starts_with("mode.identificationAudioUrl"), "{v}");
    // Loopback is outside the egress policy: the start is refused before any dial.
    let (s, v) = call(
        "POST",
        "/campaigns",
        Some(json!({"mode": {"ai": true, "identificationAudioUrl": "http://127.0.0.1:9/id.wav"}})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let (s, v) = call("POST", &format!("/campaigns/{id}/start"), None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(field(&v).starts_with("mode.identificationAudioUrl"), "{v}");
    let (s, v) = call("GET", &format!("/campaigns/{id}"), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "created", "{v}");
    // The configured limit, passed in the API's state (no process-wide setting).
    assert_eq!(v["abandonment"]["maxRate"], 0.02, "{v}");
}
