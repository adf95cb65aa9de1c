//! The real binaries for the live-surface tests: `trunx carrier-sim` as the carrier, `trunx
//! keys` and `trunx serve` (restartable on one database), and an API client. Every process is
//! killed when its guard drops.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use trunx::runtime::clock;

pub const CALLER_IDS: [&str; 2] = ["+12125550100", "+13125550100"];

pub struct Proc {
    pub child: Child,
    pub name: &'static str,
}

impl Proc {
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the pid of our own child.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = clock::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
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

pub fn trunx_command(env: &[(&str, String)]) -> Command {
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

/// The simulated carrier; returns it and its SIP address.
pub fn start_sim(seed: u64, rtp_ports: &str) -> (Proc, String) {
    let mut sim = Proc {
        child: trunx_command(&[])
            .args(["carrier-sim", "--listen", "127.0.0.1:0"])
            .args(["--seed", &seed.to_string(), "--rtp-ports", rtp_ports])
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("trunx carrier-sim starts"),
        name: "trunx carrier-sim",
    };
    let mut out = BufReader::new(sim.child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let ready: Value = serde_json::from_str(&line).expect("carrier-sim prints a JSON ready line");
    // Keep reading (and dropping) its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in out.lines() {});
    (sim, ready["sip"].as_str().unwrap().to_string())
}

/// A new API key in the database `db`.
pub fn create_key(db: &str) -> String {
    let keys = trunx_command(&[("TRUNX_DATABASE_URL", db.to_string())])
        .args(["keys", "create", "--name", "live"])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        keys.status.success(),
        "{}",
        String::from_utf8_lossy(&keys.stderr)
    );
    String::from_utf8(keys.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string()
}

/// The environment of a `trunx serve` dialing `sim_sip`.
pub fn serve_env(
    api_port: u16,
    sip_port: u16,
    db: &str,
    sim_sip: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("TRUNX_API_ADDR", format!("127.0.0.1:{api_port}")),
        ("TRUNX_DATABASE_URL", db.to_string()),
        ("TRUNX_TRUNK_URI", format!("sip:{sim_sip}")),
        ("TRUNX_SIP_ADDR", format!("127.0.0.1:{sip_port}")),
        (
            "TRUNX_RTP_PORTS",
            format!(
                "{}-{}",
                30_000 + (sip_port % 100) * 100,
                30_099 + (sip_port % 100) * 100
            ),
        ),
        ("TRUNX_TRUNK_MAX_CPS", "20".to_string()),
        ("TRUNX_TRUNK_MAX_CONCURRENT", "50".to_string()),
        ("TRUNX_RING_TIMEOUT", "15".to_string()),
    ]
}

pub fn start_serve(env: &[(&str, String)], log: &Path) -> Proc {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = trunx_command(env)
        .arg("serve")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("trunx serve starts");
    Proc {
        child,
        name: "trunx serve",
    }
}

pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub key: String,
}

impl Api {
    pub fn new(port: u16, key: String) -> Api {
        trunx::runtime::fetch::ensure_crypto_provider();
        Api {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            base: format!("http://127.0.0.1:{port}"),
            key,
        }
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
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

    pub async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Option<Value>) -> Value {
        self.call(reqwest::Method::POST, path, body).await
    }

    /// Waits (bounded) until the API answers.
    pub async fn ready(&self, within: Duration) {
        let deadline = clock::now() + within;
        loop {
            let r = self
                .http
                .get(format!("{}/campaigns?limit=1", self.base))
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

    /// Creates and starts a voice campaign of `phones` (no retries, no message), with `extra`
    /// top-level fields merged in; returns its id.
    pub async fn start_campaign(&self, phones: &[String], extra: Value) -> String {
        self.post("/dids", Some(json!({"numbers": CALLER_IDS})))
            .await;
        let mut body = json!({
            "name": "live",
            "channel": "voice",
            "mode": {"calls_per_second": 5, "max_retries": 0},
            "callerIds": CALLER_IDS,
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        let campaign = self.post("/campaigns", Some(body)).await;
        let id = campaign["id"].as_str().unwrap().to_string();
        self.post(
            &format!("/campaigns/{id}/prospects"),
            Some(json!({"phones": phones})),
        )
        .await;
        self.post(&format!("/campaigns/{id}/start"), None).await;
        id
    }

    /// Waits (bounded) until the campaign is `completed`; returns its stats.
    pub async fn until_completed(&self, id: &str, within: Duration, log: &Path) -> Value {
        let deadline = clock::now() + within;
        loop {
            let c = self.get(&format!("/campaigns/{id}")).await;
            if c["status"] == "completed" {
                return self.get(&format!("/campaigns/{id}/stats")).await;
            }
            assert!(
                clock::now() < deadline,
                "campaign not completed: {c}\n{}",
                log_tail(log)
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// A temporary directory with a database path in it.
pub fn db_in(dir: &Path) -> (PathBuf, String) {
    let path = dir.join("live.db");
    let url = format!("sqlite://{}", path.display());
    (path, url)
}

/// A carrier-sim seed under which `phones` hold at least one person and one machine and no
/// number rings out (so a campaign ends in seconds, not ring timeouts).
pub fn quick_seed(phones: &[String], base: u64) -> u64 {
    use trunx::tools::carrier_sim::{PopulationMix, ScenarioKind, scenario_for};
    let mix = PopulationMix::default();
    (base..base + 5000)
        .find(|seed| {
            let kinds: Vec<ScenarioKind> = phones
                .iter()
                .map(|p| scenario_for(p, &mix, *seed).kind())
                .collect();
            !kinds.contains(&ScenarioKind::NoAnswer)
                && kinds.contains(&ScenarioKind::Human)
                && kinds.contains(&ScenarioKind::MachineBeep)
        })
        .expect("some seed gives a quick population")
}
