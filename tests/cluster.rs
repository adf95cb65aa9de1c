//! Two engine nodes, one campaign, one PostgreSQL: `trunx serve --node-id a` and `--node-id b`
//! share a database the test starts itself (Debian's `postgresql`, see `tests/pg_server`) and
//! dial a 2,000-prospect campaign against `trunx carrier-sim`. Node `a` is killed with SIGKILL
//! mid-campaign. Checked: every prospect ends exactly once, no number is called twice (the
//! carrier's own count of INVITEs per number), no outcome is lost (stats equal the attempt
//! records, counters' invariants hold), the carrier never sees more new calls in one second
//! than the campaign's `calls_per_second` allows over both nodes, and the survivor has taken
//! over the dead node's work (its calls ended, its leased prospects dialled) within the lease
//! expiry + 5 s.

mod common;
mod pg_server;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use trunx::runtime::clock;
use trunx::store::{ClusterSettings, PgStore, Store};

/// An attempt as read back: prospect position, outcome, cause, node.
type AttemptRow = (String, Option<String>, Option<String>, Option<String>);

const PROSPECTS: usize = 2_000;
const CPS: f64 = 25.0;
const LEASE_MS: i64 = 5_000;
const MESSAGE: &str = "audio-fixtures/prompts/voicemail-10s.mp3";
const CALLER_IDS: [&str; 4] = [
    "+12125550100",
    "+12125550101",
    "+13125550100",
    "+13125550101",
];

/// A child process, killed (SIGKILL) and reaped when dropped.
struct Proc {
    child: Child,
    name: String,
}

impl Proc {
    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the pid of a child we spawned and have not reaped yet.
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0, "cannot signal {}", self.name);
    }

    async fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = clock::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(clock::now() < deadline, "{} did not exit", self.name);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn trunx_command(env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trunx"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TRUNX_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn start_node(id: &str, env: &[(&str, String)], log: &Path) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    let child = trunx_command(env)
        .args(["serve", "--node-id", id])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("trunx serve starts");
    Proc {
        child,
        name: format!("node {id}"),
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Option<Value>) -> Value {
        self.call(reqwest::Method::POST, path, body).await
    }

    async fn ready(&self, within: Duration) {
        let deadline = clock::now() + within;
        loop {
            let r = self
                .http
                .get(format!("{}/nodes", self.base))
                .bearer_auth(&self.key)
                .send()
                .await;
            if matches!(&r, Ok(resp) if resp.status().is_success()) {
                return;
            }
            assert!(clock::now() < deadline, "the API did not come up: {r:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn n(v: &Value, key: &str) -> i64 {
    v[key]
        .as_i64()
        .unwrap_or_else(|| panic!("{key} missing: {v}"))
}

fn wall_ms() -> i64 {
    trunx::runtime::clock::wall_ms()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_one_killed_nobody_dialled_twice_nothing_lost() {
    let Some(db) =
        tokio::task::block_in_place(|| pg_server::database_or_skip("two_nodes_one_killed"))
    else {
        return;
    };
    let started = clock::now();
    let dir = tempfile::tempdir().unwrap();
    let phones = common::numbers_open_now(PROSPECTS, 30 * 60_000);
    assert_eq!(phones.iter().collect::<HashSet<_>>().len(), PROSPECTS);

    // The carrier: mostly quick answers (busy, invalid), a fifth answered with media.
    let mut sim = Proc {
        child: trunx_command(&[])
            .args(["carrier-sim", "--listen", "127.0.0.1:0", "--seed", "15"])
            .args(["--rtp-ports", "27200-27299", "--answer-ms", "300-1000"])
            .args(["--mix", "human=10,machine_beep=10,busy=50,invalid=30"])
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("trunx carrier-sim starts"),
        name: "carrier-sim".into(),
    };
    let mut sim_out = BufReader::new(sim.child.stdout.take().unwrap());
    let mut line = String::new();
    sim_out.read_line(&mut line).unwrap();
    let ready: Value = serde_json::from_str(&line).expect("carrier-sim ready line");
    let sim_sip = ready["sip"].as_str().unwrap().to_string();

    let keys = trunx_command(&[("TRUNX_DATABASE_URL", db.clone())])
        .args(["keys", "create", "--name", "cluster"])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        keys.status.success(),
        "{}",
        String::from_utf8_lossy(&keys.stderr)
    );
    let key = String::from_utf8(keys.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    // Caller-ID caps and health out of the way: this test is about the nodes.
    let policy = dir.path().join("callerid.toml");
    std::fs::write(
        &policy,
        "max_calls_per_hour = 100000\nmax_calls_per_day = 100000\nhealthy_min = 0.0\npulled_below = 0.0\n",
    )
    .unwrap();
    let env = |api: u16, sip: u16, rtp: &str| {
        vec![
            ("TRUNX_API_ADDR", format!("127.0.0.1:{api}")),
            ("TRUNX_DATABASE_URL", db.clone()),
            ("TRUNX_TRUNK_URI", format!("sip:{sim_sip}")),
            ("TRUNX_SIP_ADDR", format!("127.0.0.1:{sip}")),
            ("TRUNX_RTP_PORTS", rtp.to_string()),
            ("TRUNX_TRUNK_MAX_CPS", "100".to_string()),
            ("TRUNX_TRUNK_MAX_CONCURRENT", "400".to_string()),
            ("TRUNX_RING_TIMEOUT", "15".to_string()),
            ("TRUNX_CALLER_ID_POLICY", policy.display().to_string()),
            ("TRUNX_LEASE_MS", LEASE_MS.to_string()),
            // One public address for the cluster: every node serves (and reads from the
            // shared store) the assets under it, whichever node stored them.
            (
                "TRUNX_PUBLIC_BASE_URL",
                "http://trunx.cluster.test".to_string(),
            ),
        ]
    };
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let mut node_a = start_node("a", &env(16_531, 16_532, "41000-44999"), &log_a);
    let mut node_b = start_node("b", &env(16_541, 16_542, "45000-48999"), &log_b);
    trunx::runtime::fetch::ensure_crypto_provider();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let api_a = Api {
        http: http.clone(),
        base: "http://127.0.0.1:16531".into(),
        key: key.clone(),
    };
    let api = Api {
        http,
        base: "http://127.0.0.1:16541".into(),
        key,
    };
    api_a.ready(Duration::from_secs(30)).await;
    api.ready(Duration::from_secs(30)).await;

    // The campaign, through node b's API (node a sees it through the database).
    let audio = api
        .http
        .post(format!("{}/audio/upload?name=vm.mp3", api.base))
        .bearer_auth(&api.key)
        .header("content-type", "audio/mpeg")
        .body(std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(MESSAGE)).unwrap())
        .send()
        .await
        .unwrap();
    assert!(audio.status().is_success(), "{audio:?}");
    let audio: Value = serde_json::from_str(&audio.text().await.unwrap()).unwrap();
    api.post("/dids", Some(json!({"numbers": CALLER_IDS})))
        .await;
    let campaign = api
        .post(
            "/campaigns",
            Some(json!({
                "name": "cluster",
                "channel": "voice",
                "mode": {"voicemailAudioUrl": format!("/audio/{}/file", audio["id"].as_str().unwrap()),
                         "calls_per_second": CPS,
                         "max_retries": 0},
                "callerIds": CALLER_IDS,
            })),
        )
        .await;
    let id = campaign["id"].as_str().unwrap().to_string();
    api.post(
        &format!("/campaigns/{id}/prospects"),
        Some(json!({"phones": phones})),
    )
    .await;
    api.post(&format!("/campaigns/{id}/start"), None).await;

    // Both nodes dial; kill a once both have placed calls and a has calls live.
    let store = tokio::task::block_in_place(|| {
        PgStore::open(&db, 3, ClusterSettings::single("test")).unwrap()
    });
    // The sync client, on this thread only inside `block_in_place` (it owns a runtime).
    let sql = |f: &mut dyn FnMut(&mut postgres::Client)| {
        tokio::task::block_in_place(|| {
            let mut c = postgres::Client::connect(&db, postgres::NoTls).unwrap();
            f(&mut c);
        })
    };
    let count = |q: &str| -> i64 {
        let mut n = 0;
        sql(&mut |c| n = c.query_one(q, &[]).unwrap().get(0));
        n
    };
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let a_live =
            count("SELECT COUNT(*) FROM attempts WHERE node_id = 'a' AND ended_at IS NULL");
        let b_any = count("SELECT COUNT(*) FROM attempts WHERE node_id = 'b'");
        let done = store.stats(&id).unwrap().completed;
        if a_live > 0 && b_any > 50 && done > 300 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no moment to kill: a live {a_live}, b {b_any}, done {done}\n{}\n{}",
            log_tail(&log_a),
            log_tail(&log_b)
        );
    }
    node_a.signal(libc::SIGKILL);
    assert!(!node_a.wait_exit(Duration::from_secs(10)).await.success());
    let killed_ms = wall_ms();
    // What the dead node left: live calls and prospects leased to it.
    let (mut orphan_calls, mut orphan_prospects, mut lease_expiry_ms) =
        (Vec::<String>::new(), Vec::<String>::new(), 0i64);
    sql(&mut |pg| {
        orphan_calls = pg
            .query(
                "SELECT id FROM attempts WHERE node_id = 'a' AND ended_at IS NULL",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        orphan_prospects = pg
            .query(
                "SELECT id FROM prospects WHERE lease_node = 'a' AND status = 'queued' \
                 AND lease_until > $1",
                &[&killed_ms],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        lease_expiry_ms = pg
            .query_one(
                "SELECT GREATEST(COALESCE((SELECT MAX(lease_until) FROM attempts \
                 WHERE node_id = 'a' AND ended_at IS NULL), 0), COALESCE((SELECT \
                 MAX(lease_until) FROM prospects WHERE lease_node = 'a' AND status = 'queued'), \
                 0))::BIGINT",
                &[],
            )
            .unwrap()
            .get(0);
    });
    assert!(!orphan_calls.is_empty(), "node a had no call live");
    // The survivor takes over: a's calls ended (node_lost), a's prospects dialled by b.
    let taken_over_ms = loop {
        let (mut calls_left, mut prospects_left) = (0i64, 0i64);
        sql(&mut |pg| {
            calls_left = pg
                .query_one(
                    "SELECT COUNT(*) FROM attempts WHERE id = ANY($1) AND ended_at IS NULL",
                    &[&orphan_calls],
                )
                .unwrap()
                .get(0);
            prospects_left = pg
                .query_one(
                    "SELECT COUNT(*) FROM prospects WHERE id = ANY($1) AND status = 'queued'",
                    &[&orphan_prospects],
                )
                .unwrap()
                .get(0);
        });
        if calls_left == 0 && prospects_left == 0 {
            break wall_ms();
        }
        assert!(
            wall_ms() < lease_expiry_ms.max(killed_ms) + 30_000,
            "b did not take over: {calls_left} calls, {prospects_left} prospects\n{}",
            log_tail(&log_b)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // The survivor finishes the campaign.
    let mut status = String::new();
    while started.elapsed() < Duration::from_secs(170) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        status = api.get(&format!("/campaigns/{id}")).await["status"]
            .as_str()
            .unwrap()
            .to_string();
        if status == "completed" {
            break;
        }
    }
    let total_s = started.elapsed().as_secs_f64();
    let stats = api.get(&format!("/campaigns/{id}/stats")).await;
    assert_eq!(
        status,
        "completed",
        "after {total_s:.0} s: {stats}\n{}",
        log_tail(&log_b)
    );
    let nodes = api.get("/nodes").await;
    node_b.signal(libc::SIGTERM);
    assert!(node_b.wait_exit(Duration::from_secs(30)).await.success());
    sim.signal(libc::SIGTERM);
    let mut last = String::new();
    for l in sim_out.lines() {
        last = l.unwrap();
    }
    sim.wait_exit(Duration::from_secs(10)).await;
    let sim_counters: Value = serde_json::from_str(&last).expect("JSON counters on exit");

    // Every prospect ended exactly once: one attempt each, ended, completed.
    let mut per_prospect: Vec<(String, i64, String)> = Vec::new();
    let mut attempts: Vec<AttemptRow> = Vec::new();
    sql(&mut |pg| {
        per_prospect = pg
            .query(
                "SELECT p.id, p.attempts, p.status FROM prospects p JOIN campaigns c \
                 ON c.seq = p.campaign_seq WHERE c.id = $1",
                &[&id],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        attempts = pg
            .query(
                "SELECT a.prospect_seq::TEXT, a.outcome, a.cause, a.node_id FROM attempts a \
                 JOIN campaigns c ON c.seq = a.campaign_seq WHERE c.id = $1",
                &[&id],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
    });
    assert_eq!(per_prospect.len(), PROSPECTS);
    for (pid, attempts, st) in &per_prospect {
        assert_eq!((*attempts, st.as_str()), (1, "completed"), "{pid}");
    }
    assert_eq!(attempts.len(), PROSPECTS, "one attempt per prospect");
    assert_eq!(
        attempts.iter().map(|a| &a.0).collect::<HashSet<_>>().len(),
        PROSPECTS
    );
    assert!(
        attempts.iter().all(|a| a.1.is_some()),
        "an attempt has no outcome"
    );
    let by_node: BTreeMap<String, usize> = attempts.iter().fold(BTreeMap::new(), |mut m, a| {
        *m.entry(a.3.clone().unwrap_or_default()).or_default() += 1;
        m
    });
    let lost = attempts
        .iter()
        .filter(|a| a.2.as_deref() == Some("node_lost"))
        .count();
    assert_eq!(
        lost,
        orphan_calls.len(),
        "only the dead node's live calls are lost"
    );

    // Nobody dialled twice, by the carrier's own count.
    assert_eq!(sim_counters["numbers_called_twice"], 0, "{sim_counters}");
    assert_eq!(sim_counters["max_calls_per_number"], 1, "{sim_counters}");
    let calls = sim_counters["calls"].as_u64().unwrap() as usize;
    assert!(
        calls <= PROSPECTS && calls >= PROSPECTS - orphan_calls.len(),
        "{calls}"
    );

    // No outcome lost: stats equal the records; the counters' invariants hold.
    let counters = store.stats(&id).unwrap();
    assert!(counters.invariants_hold(), "{counters:?}");
    let mut by_outcome: BTreeMap<String, i64> = BTreeMap::new();
    for a in &attempts {
        *by_outcome.entry(a.1.clone().unwrap()).or_default() += 1;
    }
    let c = |k: &str| by_outcome.get(k).copied().unwrap_or(0);
    assert_eq!(
        (n(&stats, "total"), n(&stats, "completed")),
        (PROSPECTS as i64, PROSPECTS as i64)
    );
    assert_eq!((n(&stats, "queued"), n(&stats, "dialing")), (0, 0));
    for key in ["busy", "noAnswer", "voicemail", "humanConnected", "failed"] {
        assert_eq!(n(&stats, key), c(key), "{key}: {stats} vs {by_outcome:?}");
    }

    // The campaign's rate held over both nodes, by the carrier's arrival times: the shared
    // bucket spaces calls 1/CPS apart, so any second holds at most CPS + 1 (+1 for jitter).
    let peak = sim_counters["peak_calls_per_second"].as_u64().unwrap();
    assert!(
        peak as f64 <= CPS + 2.0,
        "peak {peak} new calls in one second"
    );

    // The survivor took over within the lease expiry + 5 s.
    let takeover_s = (taken_over_ms - lease_expiry_ms) as f64 / 1000.0;
    assert!(
        taken_over_ms <= lease_expiry_ms + 5_000,
        "took over {takeover_s:.1} s after the lease expired"
    );
    eprintln!(
        "cluster: {PROSPECTS} prospects, 2 nodes, cps {CPS}; a killed at {:.1} s with {} calls live and {} prospects leased; \
         lease expired {:.1} s after the kill, b took over {takeover_s:.1} s after expiry; completed at {total_s:.1} s; \
         attempts by node {by_node:?}; node_lost {lost}; carrier: {calls} calls, peak {peak}/s, max per number {}; outcomes {by_outcome:?}; nodes {nodes}",
        (killed_ms - (wall_ms() - (started.elapsed().as_millis() as i64))) as f64 / 1000.0,
        orphan_calls.len(),
        orphan_prospects.len(),
        (lease_expiry_ms - killed_ms) as f64 / 1000.0,
        sim_counters["max_calls_per_number"],
    );
}
