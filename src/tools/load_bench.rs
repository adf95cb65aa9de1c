//! `trunx bench load`: the whole dialer (store, pacing, caller ID, SIP, RTP both ways, AMD,
//! call flow, message playback) against the simulated carrier run as a separate process
//! (`trunx carrier-sim`), every call answered with a recorded human or voicemail greeting.
//! Reports calls completed, concurrent calls held, CPU per call, late RTP frames sent and the
//! AMD accuracy under load against the carrier's truth.
//!
//! With `--nodes N` (N > 1) the same load runs three times, side by side: one node on SQLite,
//! one node on PostgreSQL, and N nodes sharing that PostgreSQL (a throwaway server started from
//! the Debian package, [`crate::tools::pg_local`]). The nodes run in this process, each with its own
//! store handle (connection pool, node id, leases), SIP socket, RTP ports and heartbeat, as
//! `trunx serve --node-id` would. Each run adds calls completed per second and the latency of
//! the store's claims (`due_prospects`, `begin_attempt`).

use std::collections::HashMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::amd::AmdConfig;
use crate::audio::prompt::{Prompt, PromptOptions};
use crate::campaign::callerid::CallerIdConfig;
use crate::campaign::scheduler::NodeLimits;
use crate::campaign::{Action, Channel};
use crate::runtime::campaigns::dialer::{self, DialerSettings, Messages};
use crate::store::{ClusterSettings, NewCampaign, PageRequest, PgStore, SqliteStore, Store};
use crate::tools::carrier_sim::{PopulationMix, ScenarioKind, scenario_for};

use crate::runtime::clock;
use crate::runtime::clock::{os_random, wall_ms};

#[derive(Debug, thiserror::Error)]
pub enum LoadBenchError {
    #[error("load bench set-up failed: {0}")]
    Setup(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub calls: usize,
    pub concurrent: u32,
    /// New calls per second (default: enough to reach `concurrent` with ~15 s calls).
    pub cps: Option<f64>,
    /// The message every answered call plays (it also sets how long calls last).
    pub message: PathBuf,
    pub seed: u64,
    /// Without the ONNX beep model (rules only).
    pub no_model: bool,
    /// Nodes of the cluster run (1: one SQLite node only; N > 1: SQLite x 1, PostgreSQL x 1
    /// and PostgreSQL x N). `concurrent` is per node.
    pub nodes: usize,
}

/// Which store a run used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct LoadReport {
    pub backend: Backend,
    pub nodes: usize,
    pub calls_requested: usize,
    pub calls_completed: u64,
    /// Calls completed per second of the run (start to the campaign's completion).
    pub calls_per_second_completed: f64,
    /// Calls placed by each node.
    pub calls_by_node: Vec<u64>,
    /// `begin_attempt` (claim one prospect for a call, take the shared tokens), all nodes.
    pub claim_latency: crate::runtime::latency::LatencyHistogram,
    /// `due_prospects` (read and lease a batch of due prospects), all nodes.
    pub lease_latency: crate::runtime::latency::LatencyHistogram,
    /// The most calls held at once (with several nodes: the sum of each node's peak).
    pub peak_concurrent: u32,
    pub cps: f64,
    pub wall_seconds: f64,
    /// CPU of the trunx process (user + system) per completed call, in milliseconds.
    pub cpu_ms_per_call: f64,
    pub cpu_seconds: f64,
    /// CPU of the carrier simulator process over the run.
    pub sim_cpu_seconds: f64,
    pub frames_sent: u64,
    pub frames_late: u64,
    pub late_ratio: f64,
    pub amd_judged: u64,
    pub amd_accuracy: f64,
}

struct Prepared(HashMap<String, Arc<Prompt>>);

impl Messages for Prepared {
    fn get(&self, url: &str) -> Option<Arc<Prompt>> {
        self.0.get(url).cloned()
    }
}

struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// utime + stime of another process, from /proc.
fn child_cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    (field(11) + field(12)) / ticks
}

/// One SQLite node.
pub fn run(opts: &LoadOptions) -> Result<LoadReport, LoadBenchError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("trunx-load")
        .build()?;
    rt.block_on(run_async(opts, Backend::Sqlite, 1, None))
}

/// SQLite x 1, PostgreSQL x 1, PostgreSQL x `opts.nodes`, one after the other (each with its
/// own carrier simulator and a fresh database).
pub fn run_compared(opts: &LoadOptions) -> Result<Vec<LoadReport>, LoadBenchError> {
    let setup = |e: &dyn std::fmt::Display| LoadBenchError::Setup(e.to_string());
    let pg = crate::tools::pg_local::LocalPg::start().map_err(|e| setup(&e))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("trunx-load")
        .build()?;
    let mut out = vec![rt.block_on(run_async(opts, Backend::Sqlite, 1, None))?];
    for (i, nodes) in [1, opts.nodes.max(2)].into_iter().enumerate() {
        let url = pg
            .create_database(&format!("load{i}"))
            .map_err(|e| setup(&e))?;
        out.push(rt.block_on(run_async(opts, Backend::Postgres, nodes, Some(&url)))?);
    }
    drop(rt);
    drop(pg);
    Ok(out)
}

/// The runs side by side, as a Markdown table.
pub fn render_table(runs: &[LoadReport]) -> String {
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    let mut t = String::from(
        "| store | nodes | calls completed | wall s | calls completed/s | peak concurrent | \
         claim p50 ms | claim p99 ms | lease batch p50 ms | lease batch p99 ms | calls by node |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in runs {
        t.push_str(&format!(
            "| {:?} | {} | {} | {:.1} | {:.2} | {} | {} | {} | {} | {} | {} |\n",
            r.backend,
            r.nodes,
            r.calls_completed,
            r.wall_seconds,
            r.calls_per_second_completed,
            r.peak_concurrent,
            ms(r.claim_latency.percentile_ms(50.0)),
            ms(r.claim_latency.percentile_ms(99.0)),
            ms(r.lease_latency.percentile_ms(50.0)),
            ms(r.lease_latency.percentile_ms(99.0)),
            r.calls_by_node
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" / "),
        ));
    }
    t
}

async fn run_async(
    opts: &LoadOptions,
    backend: Backend,
    nodes: usize,
    pg_url: Option<&str>,
) -> Result<LoadReport, LoadBenchError> {
    let setup = |e: &dyn std::fmt::Display| LoadBenchError::Setup(e.to_string());
    let mix: PopulationMix = "human=50,machine_beep=50".parse().map_err(|e| setup(&e))?;
    // The simulator in its own process, on a port the OS picked for a probe socket.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let sim_addr: SocketAddr = format!("127.0.0.1:{port}").parse().map_err(|e| setup(&e))?;
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["carrier-sim", "--listen", &sim_addr.to_string()])
        .args([
            "--seed",
            &opts.seed.to_string(),
            "--mix",
            "human=50,machine_beep=50",
        ])
        .args(["--max-calls", "50000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| setup(&"no stdout"))?;
    let sim = Sim(child);
    let mut first = String::new();
    std::io::BufReader::new(stdout).read_line(&mut first)?;
    if !first.contains("listening") {
        return Err(setup(&format!("carrier-sim did not start: {first}")));
    }
    let sim_cpu_start = child_cpu_seconds(sim.0.id());

    let dir = std::env::temp_dir().join(format!(
        "trunx-load-{:016x}",
        u64::from_le_bytes(os_random::<8>()?)
    ));
    std::fs::create_dir_all(&dir)?;
    let seed = u64::from_le_bytes(os_random::<8>()?);
    let stores: Vec<Arc<dyn Store>> = match (backend, pg_url) {
        (Backend::Postgres, Some(url)) => (0..nodes)
            .map(|i| {
                let cluster = ClusterSettings {
                    shared_pacing: true,
                    ..ClusterSettings::single(&format!("bench-{i}"))
                };
                PgStore::open(url, seed, cluster)
                    .map(|s| Arc::new(s) as Arc<dyn Store>)
                    .map_err(|e| setup(&e))
            })
            .collect::<Result<_, _>>()?,
        _ => vec![Arc::new(
            SqliteStore::open(&dir.join("load.db"), seed).map_err(|e| setup(&e))?,
        )],
    };
    let store = stores[0].clone();
    let prompt =
        Arc::new(Prompt::load(&opts.message, &PromptOptions::default()).map_err(|e| setup(&e))?);
    let url = "bench://message".to_string();
    let messages = Arc::new(Prepared(HashMap::from([(url.clone(), prompt.clone())])));
    // Calls last about ring (1-4 s) + greeting or hello + the message.
    let call_s = 3.0 + 4.0 + prompt.duration_ms() as f64 / 1000.0;
    // The campaign's rate fills every node of the largest run (the same load for each run).
    let cps = opts
        .cps
        .unwrap_or((opts.concurrent as f64 * opts.nodes.max(1) as f64 / call_s).clamp(1.0, 500.0));
    let phones = crate::tools::demo::numbers_open_now(opts.calls, wall_ms());
    if phones.len() < opts.calls {
        return Err(setup(
            &"not enough number blocks inside their calling window",
        ));
    }
    let c = store
        .create_campaign(
            NewCampaign {
                name: Some("load".into()),
                channel: Channel::Voice,
                mode: json!({"voicemailAudioUrl": url, "calls_per_second": cps, "max_retries": 0}),
                caller_ids: vec!["+12125550100".into()],
                caller_id_strategy: json!({}),
                schedule: None,
                webhook_url: None,
            },
            wall_ms(),
        )
        .map_err(|e| setup(&e))?;
    store
        .add_prospects(&c.id, &phones, wall_ms())
        .map_err(|e| setup(&e))?;
    store
        .transition_campaign(&c.id, Action::Start, wall_ms())
        .map_err(|e| setup(&e))?;
    let model = if opts.no_model {
        None
    } else {
        Some(crate::runtime::amd::files::load_beep_model(None, None).map_err(|e| setup(&e))?)
    };
    let settings = DialerSettings {
        trunk_uri: format!("sip:{sim_addr}"),
        sip_addr: "127.0.0.1:0".parse().map_err(|e| setup(&e))?,
        rtp_ports: 40_000..=59_999,
        username: None,
        password: None,
        send_pai: false,
        ring_timeout: Duration::from_secs(30),
        limits: NodeLimits {
            max_concurrent: opts.concurrent,
            max_cps: cps.max(1.0),
        },
        amd: AmdConfig::default(),
        model,
        amd_engines: Default::default(),
        log_phone_numbers: false,
        agent: None,
        agent_defaults: crate::runtime::call::agent_ws::AgentTarget::new(String::new()),
        // As `trunx serve` does: on PostgreSQL a small lease per node.
        claim_batch: if backend == Backend::Postgres {
            25
        } else {
            500
        },
        // One test DID carries the whole load: the per-DID caps are a compliance policy,
        // not what this bench measures.
        caller_id: CallerIdConfig {
            max_calls_per_hour: 1_000_000,
            max_calls_per_day: 1_000_000,
            ..CallerIdConfig::default()
        },
        amd_record: None,
        compliance: Default::default(),
    };
    let stop = CancellationToken::new();
    let started = clock::now();
    let cpu_start = process_cpu_seconds();
    // Each node: its own RTP ports (a share of 40000-59999), SIP socket and heartbeat.
    let share = (20_000 / stores.len()) as u16;
    let mut dialers = Vec::new();
    let mut beats = Vec::new();
    for (i, s) in stores.iter().enumerate() {
        let first = 40_000 + share * i as u16;
        let node = DialerSettings {
            rtp_ports: first..=first + share - 1,
            ..settings.clone()
        };
        dialers.push(tokio::spawn(dialer::run(
            node,
            s.clone(),
            messages.clone(),
            stop.clone(),
        )));
        if backend == Backend::Postgres {
            beats.push(tokio::spawn(crate::runtime::nodes::run(
                format!("bench-{i}"),
                s.clone(),
                stop.clone(),
            )));
        }
    }
    let rate = cps.min(opts.concurrent as f64 * stores.len() as f64 / call_s);
    let limit = opts.calls as f64 / rate.max(0.1) + call_s * 3.0 + 60.0;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let done = store
            .get_campaign(&c.id)
            .map(|c| c.status == crate::campaign::CampaignStatus::Completed)
            .unwrap_or(false);
        if done || clock::seconds_since(started) > limit {
            break;
        }
    }
    let wall = clock::seconds_since(started);
    stop.cancel();
    let mut stats = dialer::DialerStats::default();
    let mut calls_by_node = Vec::new();
    for d in dialers {
        let s = d.await.map_err(|e| setup(&e))?.map_err(|e| setup(&e))?;
        calls_by_node.push(s.calls_placed);
        stats.calls_ended += s.calls_ended;
        stats.peak_concurrent += s.peak_concurrent;
        stats.frames_sent += s.frames_sent;
        stats.frames_late += s.frames_late;
        stats.claim_latency.merge(&s.claim_latency);
        stats.lease_latency.merge(&s.lease_latency);
    }
    for b in beats {
        let _ = b.await;
    }
    let cpu = process_cpu_seconds() - cpu_start;
    let sim_cpu = child_cpu_seconds(sim.0.id()) - sim_cpu_start;
    drop(sim);

    let (mut judged, mut right) = (0u64, 0u64);
    let mut after = None;
    loop {
        let page = store
            .list_attempts(&c.id, &PageRequest { limit: 1000, after })
            .map_err(|e| setup(&e))?;
        for a in &page.items {
            let truth = match scenario_for(&a.phone, &mix, opts.seed).kind() {
                ScenarioKind::Human => "human",
                ScenarioKind::MachineBeep | ScenarioKind::MachineNoBeep => "machine",
                _ => continue,
            };
            if let Some(amd) = a.result.amd_result {
                let said = match amd.as_str() {
                    "human" | "unknown" => "human",
                    _ => "machine",
                };
                judged += 1;
                right += u64::from(said == truth);
            }
        }
        match page.next_cursor {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    // The PostgreSQL pools close on a thread of their own (see `PgStore`'s Drop).
    drop(store);
    tokio::task::spawn_blocking(move || drop(stores))
        .await
        .map_err(|e| setup(&e))?;
    Ok(LoadReport {
        backend,
        nodes,
        calls_requested: opts.calls,
        calls_completed: stats.calls_ended,
        calls_per_second_completed: (stats.calls_ended as f64 / wall.max(0.001) * 100.0).round()
            / 100.0,
        calls_by_node,
        claim_latency: stats.claim_latency.clone(),
        lease_latency: stats.lease_latency.clone(),
        peak_concurrent: stats.peak_concurrent,
        cps,
        wall_seconds: (wall * 10.0).round() / 10.0,
        cpu_ms_per_call: if stats.calls_ended > 0 {
            (cpu * 1000.0 / stats.calls_ended as f64 * 10.0).round() / 10.0
        } else {
            0.0
        },
        cpu_seconds: (cpu * 10.0).round() / 10.0,
        sim_cpu_seconds: (sim_cpu * 10.0).round() / 10.0,
        frames_sent: stats.frames_sent,
        frames_late: stats.frames_late,
        late_ratio: if stats.frames_sent > 0 {
            stats.frames_late as f64 / stats.frames_sent as f64
        } else {
            0.0
        },
        amd_judged: judged,
        amd_accuracy: if judged > 0 {
            right as f64 / judged as f64
        } else {
            0.0
        },
    })
}
