//! `trunx demo`: one whole voice campaign in one process on embedded defaults. SQLite in a
//! temporary directory, the control API on loopback, the built-in simulated carrier on
//! loopback, and the dialer between them. The campaign is driven only through the HTTP API
//! (audio upload, caller IDs, campaign, 200 prospects, start), progress is read from
//! `GET /campaigns/:id/stats`, and the end compares every attempt with the simulator's truth.
//!
//! It owns nothing of the engine: it wires the same parts `trunx serve` runs.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::api;
use crate::campaign::window::{VOICE_WINDOW, WindowCheck, check};
use crate::config::Config;
use crate::runtime::campaigns::dialer::{self, DialerStats, Messages};
use crate::store::{SqliteStore, Store};
use crate::tools::carrier_sim::{CarrierSim, CarrierSimConfig, ScenarioKind};

use crate::runtime::clock::{self, os_random, wall_ms};
use crate::runtime::server;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo set-up failed: {0}")]
    Setup(String),
    #[error("API call {what} failed: {reason}")]
    Api { what: String, reason: String },
    #[error(transparent)]
    Server(#[from] server::ServerError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The demo's final answer (`trunx demo --json` prints exactly this).
#[derive(Clone, Debug, serde::Serialize)]
pub struct DemoReport {
    pub stats: Value,
    pub amd_accuracy: f64,
    pub calls: u64,
}

/// Number blocks across the world's time zones (each + 4 digits is a valid E.164 number);
/// the demo dials the blocks inside their calling window now, so it runs at any hour while
/// the window rule stays on.
const ZONE_BLOCKS: [&str; 16] = [
    "+1212555", "+1312555", "+1303555", "+1213555", "+1907555", "+1808555", "+1787555", "+4420794",
    "+4930901", "+9714555", "+9122610", "+6565550", "+8135550", "+6128555", "+6493555", "+5511355",
];

const PROSPECTS: usize = 200;
/// The demo's voicemail message, embedded so the binary runs its demo from any directory.
const DEMO_VOICEMAIL: &[u8] = include_bytes!("../../audio-fixtures/prompts/voicemail-10s.mp3");

/// `n` numbers spread over every block inside its calling window now and for at least the
/// next 15 minutes (fewer if the open blocks cannot hold `n`).
pub fn numbers_open_now(n: usize, now_ms: i64) -> Vec<String> {
    let open: Vec<&str> = ZONE_BLOCKS
        .iter()
        .copied()
        .filter(|b| {
            matches!(check(&format!("{b}0000"), &VOICE_WINDOW, now_ms),
                WindowCheck::Open { closes_at_ms } if closes_at_ms - now_ms >= 15 * 60_000)
        })
        .collect();
    if open.is_empty() {
        return Vec::new();
    }
    (0..n)
        .map(|i| (open[i % open.len()], i / open.len()))
        .take_while(|(_, k)| *k < 10_000)
        .map(|(block, k)| format!("{block}{k:04}"))
        .collect()
}

struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, DemoError> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        self.send(req, &format!("{method} {path}")).await
    }

    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> Result<Value, DemoError> {
        let err = |reason: String| DemoError::Api {
            what: what.to_string(),
            reason,
        };
        let resp = req.send().await.map_err(|e| err(e.to_string()))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| err(e.to_string()))?;
        if !status.is_success() {
            return Err(err(format!("{status}: {text}")));
        }
        serde_json::from_str(&text).map_err(|e| err(e.to_string()))
    }
}

fn progress_line(stats: &Value, elapsed_s: f64) -> String {
    let n = |k: &str| stats.get(k).and_then(Value::as_i64).unwrap_or(0);
    let pct = n("progress");
    let filled = (pct as usize * 30 / 100).min(30);
    format!(
        "\r[{}{}] {pct:>3}%  dialing {:>3}  queued {:>3}  voicemail {:>3}  human {:>3}  noAnswer {:>3}  busy {:>3}  failed {:>3}  {elapsed_s:>5.1}s",
        "#".repeat(filled),
        "-".repeat(30 - filled),
        n("dialing"),
        n("queued"),
        n("voicemail"),
        n("humanConnected"),
        n("noAnswer"),
        n("busy"),
        n("failed"),
    )
}

/// Runs the demo; `json` prints only the final object.
pub fn run(json_only: bool) -> Result<DemoReport, DemoError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("trunx-demo")
        .build()?;
    rt.block_on(run_async(json_only))
}

async fn run_async(json_only: bool) -> Result<DemoReport, DemoError> {
    let say = |s: &str| {
        if !json_only {
            println!("{s}");
        }
    };
    let dir = tempfile_dir()?;
    let started = clock::now();
    let sim = CarrierSim::start(CarrierSimConfig {
        listen: "127.0.0.1:0".parse().expect("literal address"),
        seed: 7,
        ..CarrierSimConfig::default()
    })
    .await
    .map_err(|e| DemoError::Setup(format!("simulated carrier: {e}")))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api_addr = listener.local_addr()?;
    let db = dir.join("demo.db");
    let env = [
        ("TRUNX_API_ADDR", api_addr.to_string()),
        ("TRUNX_DATABASE_URL", format!("sqlite://{}", db.display())),
        ("TRUNX_TRUNK_URI", format!("sip:{}", sim.sip_addr())),
        ("TRUNX_SIP_ADDR", "127.0.0.1:0".to_string()),
        ("TRUNX_RTP_PORTS", "20000-29999".to_string()),
        ("TRUNX_TRUNK_MAX_CPS", "20".to_string()),
        ("TRUNX_TRUNK_MAX_CONCURRENT", "300".to_string()),
        ("TRUNX_RING_TIMEOUT", "15".to_string()),
        ("TRUNX_AMD_RECORD", "true".to_string()),
        (
            "TRUNX_AMD_RECORD_DIR",
            dir.join("amd-records").display().to_string(),
        ),
    ];
    let config = Config::load(None, |k| {
        env.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(k).ok().filter(|_| k.starts_with("ORT_")))
    })
    .map_err(|e| DemoError::Setup(e.to_string()))?;
    let store = SqliteStore::open(&db, u64::from_le_bytes(os_random::<8>()?))
        .map_err(|e| DemoError::Setup(e.to_string()))?;
    let key = api::auth::new_key(&os_random::<32>()?);
    store
        .create_api_key("demo", &api::auth::hash_key(&key), wall_ms())
        .map_err(|e| DemoError::Setup(e.to_string()))?;
    let store: Arc<dyn Store> = Arc::new(store);
    let state = server::app_state(&config, store.clone())?;
    let messages: Arc<dyn Messages> = state.voicemail.clone();
    let settings = server::dialer_settings(&config)?
        .ok_or_else(|| DemoError::Setup("no trunk configured".into()))?;
    let stop = CancellationToken::new();
    // The API outlives the dialer: on a terminal it keeps serving the dashboard until Ctrl-C.
    let api_stop = CancellationToken::new();
    let live = api::Live {
        stop: api_stop.clone(),
        ..server::live_options(&config)?
    };
    let serving = api_stop.clone();
    let api = tokio::spawn(server::serve_router(
        listener,
        api::router_live(state, live),
        async move { serving.cancelled().await },
    ));
    let interactive = !json_only && std::io::stdout().is_terminal();
    let dashboard = format!("http://{api_addr}/#key={key}");
    let dialing = tokio::spawn(dialer::run(settings, store.clone(), messages, stop.clone()));

    say(&format!(
        "trunx demo: a voice campaign of {PROSPECTS} prospects through the control API (http://{api_addr}),"
    ));
    say(&format!(
        "dialled through a simulated carrier at sip:{} answering with recorded calls",
        sim.sip_addr()
    ));
    say(
        "(humans, voicemails with a beep, greetings without one, busy, no answer, invalid numbers).\n",
    );
    if interactive {
        say(&format!("watch it live: {dashboard}\n"));
    }

    crate::runtime::fetch::ensure_crypto_provider();
    let client = Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| DemoError::Setup(e.to_string()))?,
        base: format!("http://{api_addr}"),
        key,
    };
    let message = DEMO_VOICEMAIL.to_vec();
    let audio = client
        .send(
            client
                .http
                .post(format!("{}/audio/upload?name=voicemail.mp3", client.base))
                .bearer_auth(&client.key)
                .header("content-type", "audio/mpeg")
                .body(message),
            "POST /audio/upload",
        )
        .await?;
    let audio_url = audio["url"].as_str().unwrap_or_default().to_string();
    say(&format!("uploaded the voicemail message: {audio_url}"));
    let dids: Vec<String> = ["212", "312", "303", "213", "907", "808"]
        .iter()
        .flat_map(|npa| (0..2).map(move |i| format!("+1{npa}555010{i}")))
        .collect();
    client
        .call(
            reqwest::Method::POST,
            "/dids",
            Some(json!({"numbers": dids})),
        )
        .await?;
    let campaign = client
        .call(
            reqwest::Method::POST,
            "/campaigns",
            Some(json!({
                "name": "demo",
                "channel": "voice",
                "mode": {"voicemailAudioUrl": audio_url, "calls_per_second": 10,
                         "max_retries": 1, "retry_delay": "5s"},
                "callerIds": dids,
                "callerIdStrategy": {"selection": "round_robin", "local_presence": true},
            })),
        )
        .await?;
    let id = campaign["id"].as_str().unwrap_or_default().to_string();
    let phones = numbers_open_now(PROSPECTS, wall_ms());
    if phones.is_empty() {
        return Err(DemoError::Setup(
            "no time zone of the demo's number blocks is inside its calling window".into(),
        ));
    }
    client
        .call(
            reqwest::Method::POST,
            &format!("/campaigns/{id}/prospects"),
            Some(json!({"phones": phones})),
        )
        .await?;
    client
        .call(
            reqwest::Method::POST,
            &format!("/campaigns/{id}/start"),
            None,
        )
        .await?;
    say(&format!(
        "campaign {id}: {} prospects inside their calling window, 10 calls/s, 1 retry after 5 s\n",
        phones.len()
    ));

    let mut stats;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        stats = client
            .call(
                reqwest::Method::GET,
                &format!("/campaigns/{id}/stats"),
                None,
            )
            .await?;
        if !json_only {
            print!("{}", progress_line(&stats, clock::seconds_since(started)));
            std::io::stdout().flush()?;
        }
        let c = client
            .call(reqwest::Method::GET, &format!("/campaigns/{id}"), None)
            .await?;
        if c["status"] == "completed" || clock::seconds_since(started) > 170.0 {
            break;
        }
    }
    say("\n");
    stop.cancel();
    let dialer_stats: DialerStats = dialing
        .await
        .map_err(|e| DemoError::Setup(e.to_string()))?
        .map_err(server::ServerError::from)?;
    // Every attempt, from the API, against the simulator's truth.
    let mut attempts = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor
            .as_ref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let client_path = format!("/campaigns/{id}/attempts?limit=500{q}");
        // The API has stopped: read the store the API served.
        let page = store
            .list_attempts(
                &id,
                &crate::store::PageRequest {
                    limit: 500,
                    after: cursor.as_ref().and_then(|c| c.parse().ok()),
                },
            )
            .map_err(|e| DemoError::Api {
                what: client_path,
                reason: e.to_string(),
            })?;
        attempts.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let (mut judged, mut right) = (0u64, 0u64);
    let mut confusion: std::collections::BTreeMap<(String, String), u64> = Default::default();
    for a in &attempts {
        let truth = sim.truth(&a.phone).kind();
        let truth_str = match truth {
            ScenarioKind::Human => "human",
            ScenarioKind::MachineBeep | ScenarioKind::MachineNoBeep => "machine",
            _ => continue,
        };
        let Some(amd) = a.result.amd_result else {
            continue;
        };
        let said = match amd.as_str() {
            "human" | "unknown" => "human",
            _ => "machine",
        };
        judged += 1;
        right += u64::from(said == truth_str);
        *confusion
            .entry((truth.as_str().to_string(), amd.as_str().to_string()))
            .or_default() += 1;
    }
    let sim_counters = sim.shutdown().await;
    let accuracy = if judged > 0 {
        right as f64 / judged as f64
    } else {
        0.0
    };
    let report = DemoReport {
        stats: stats.clone(),
        amd_accuracy: (accuracy * 10_000.0).round() / 10_000.0,
        calls: attempts.len() as u64,
    };
    if !json_only {
        println!("final stats (GET /campaigns/{id}/stats):");
        println!(
            "{}",
            serde_json::to_string_pretty(&stats).unwrap_or_default()
        );
        println!(
            "\n{} calls placed ({} retries), peak {} at once; the carrier saw {} calls",
            attempts.len(),
            attempts.len().saturating_sub(phones.len()),
            dialer_stats.peak_concurrent,
            sim_counters.calls
        );
        println!(
            "AMD against the simulator's truth on {judged} answered calls: accuracy {:.1} %",
            accuracy * 100.0
        );
        for ((truth, said), n) in &confusion {
            println!("    truth {truth:<15} AMD {said:<17} {n}");
        }
        println!(
            "\nfinished in {:.1} s; the database was {}",
            clock::seconds_since(started),
            db.display()
        );
    } else {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    }
    if interactive {
        let ctrl_c = server::shutdown_signal();
        println!("\ndashboard (each call's AMD timeline): {dashboard}");
        println!("serving until Ctrl-C");
        ctrl_c.await;
    }
    api_stop.cancel();
    let _ = api.await;
    Ok(report)
}

/// A fresh directory under the system temp dir.
fn tempfile_dir() -> Result<std::path::PathBuf, DemoError> {
    let suffix = u64::from_le_bytes(os_random::<8>()?);
    let dir = std::env::temp_dir().join(format!("trunx-demo-{suffix:016x}"));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
