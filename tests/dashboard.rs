//! The dashboard in headless Chromium (Debian's `chromium`, driven over the DevTools
//! protocol) while a demo-like campaign runs on a real `trunx serve`: the campaign's row fills
//! in live from `/events` and ends equal to `GET /stats`, and a call page draws the AMD record
//! with its decision marker within 20 ms of the attempt's recorded decision time.

mod common;
mod live;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::numbers_open_now;
use futures_util::{SinkExt, StreamExt};
use live::{Api, Proc, create_key, db_in, log_tail, serve_env, start_serve, start_sim};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use trunx::runtime::clock;

const CHROMIUM_INSTALL: &str =
    "chromium is missing: install it with `sudo apt-get install chromium` (or `make deps`)";
const MESSAGE: &str = "audio-fixtures/prompts/voicemail-10s.mp3";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One page of a headless Chromium, spoken to over the DevTools protocol.
struct Browser {
    _proc: Proc,
    ws: Ws,
    next_id: u64,
}

impl Browser {
    async fn start(profile: &Path) -> Browser {
        let proc = Proc {
            child: Command::new("chromium")
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--remote-debugging-port=0",
                    "--remote-allow-origins=*",
                ])
                .arg(format!("--user-data-dir={}", profile.display()))
                .arg("about:blank")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect(CHROMIUM_INSTALL),
            name: "chromium",
        };
        // Chromium writes its DevTools port into the profile.
        let deadline = clock::now() + Duration::from_secs(30);
        let port: u16 = loop {
            if let Ok(text) = std::fs::read_to_string(profile.join("DevToolsActivePort"))
                && let Some(p) = text.lines().next().and_then(|l| l.trim().parse().ok())
            {
                break p;
            }
            assert!(
                clock::now() < deadline,
                "chromium did not start its DevTools"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let http = reqwest::Client::new();
        let targets: Value = serde_json::from_str(
            &http
                .get(format!("http://127.0.0.1:{port}/json/list"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        )
        .unwrap();
        let page = targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .unwrap_or_else(|| panic!("no page target: {targets}"));
        let url = page["webSocketDebuggerUrl"].as_str().unwrap();
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Browser {
            _proc: proc,
            ws,
            next_id: 0,
        }
    }

    async fn send(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::text(msg)).await.unwrap();
        loop {
            let m = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .expect("DevTools answers")
                .unwrap()
                .unwrap();
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["id"] == id {
                    assert!(v.get("error").is_none(), "{method}: {v}");
                    return v["result"].clone();
                }
            }
        }
    }

    /// Evaluates `expr` in the page; returns its JSON value.
    async fn eval(&mut self, expr: &str) -> Value {
        let r = self
            .send(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Evaluates `expr` until it returns something other than null (bounded).
    async fn until(&mut self, expr: &str, within: Duration) -> Value {
        let deadline = clock::now() + within;
        // Not there yet (the page still loading) reads as null too.
        let guarded =
            format!("(() => {{ try {{ return ({expr}); }} catch (e) {{ return null; }} }})()");
        loop {
            let v = self.eval(&guarded).await;
            if !v.is_null() {
                return v;
            }
            let page = self
                .eval("document.body ? document.body.outerHTML.slice(0, 3000) : ''")
                .await;
            assert!(clock::now() < deadline, "{expr} stayed null; page: {page}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_live_stats_and_draws_the_decision_on_the_call() {
    let version = Command::new("chromium").arg("--version").output();
    assert!(
        matches!(&version, Ok(o) if o.status.success()),
        "{CHROMIUM_INSTALL}"
    );
    const API_PORT: u16 = 16_581;
    let dir = tempfile::tempdir().unwrap();
    let (_, db) = db_in(dir.path());
    let log = dir.path().join("serve.log");
    let phones = numbers_open_now(12, 30 * 60_000);
    let (_sim, sim_sip) = start_sim(live::quick_seed(&phones, 1100), "27600-27699");
    let key = create_key(&db);
    let mut env = serve_env(API_PORT, 16_582, &db, &sim_sip);
    env.push(("TRUNX_AMD_RECORD", "true".to_string()));
    env.push((
        "TRUNX_AMD_RECORD_DIR",
        dir.path().join("records").display().to_string(),
    ));
    let _serve = start_serve(&env, &log);
    let api = Api::new(API_PORT, key.clone());
    api.ready(Duration::from_secs(20)).await;

    let profile = tempfile::tempdir().unwrap();
    let mut browser = Browser::start(profile.path()).await;
    browser.send("Page.enable", json!({})).await;
    browser
        .send(
            "Page.navigate",
            json!({"url": format!("{}/#key={key}", api.base)}),
        )
        .await;
    browser
        .until(
            "document.body.dataset.live === '1' && document.body.dataset.campaignsLoaded === '1' || null",
            Duration::from_secs(20),
        )
        .await;
    // The key left the address bar.
    let href = browser.eval("location.href").await;
    assert!(!href.as_str().unwrap().contains("key="), "{href}");

    // A demo-like campaign: a voicemail message, machines with and without beeps, people.
    let audio = api
        .http
        .post(format!("{}/audio/upload?name=vm.mp3", api.base))
        .bearer_auth(&api.key)
        .header("content-type", "audio/mpeg")
        .body(std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(MESSAGE)).unwrap())
        .send()
        .await
        .unwrap();
    let audio: Value = serde_json::from_str(&audio.text().await.unwrap()).unwrap();
    let id = api
        .start_campaign(
            &phones,
            json!({"mode": {"voicemailAudioUrl": audio["url"], "calls_per_second": 5, "max_retries": 0}}),
        )
        .await;
    let row = format!("document.querySelector('tr[data-campaign=\"{id}\"]')");
    // Live: the row appears and shows a campaign in progress before it ends.
    let mid = browser
        .until(
            &format!("({row} && {row}.dataset.stats && {row}.dataset.status === 'dialing') ? JSON.parse({row}.dataset.stats) : null"),
            Duration::from_secs(60),
        )
        .await;
    assert!(mid["progress"].as_i64().unwrap() < 100, "{mid}");
    api.until_completed(&id, Duration::from_secs(150), &log)
        .await;
    let stats = api.get(&format!("/campaigns/{id}/stats")).await;
    let shown = browser
        .until(
            &format!("({row} && {row}.dataset.status === 'completed' && {row}.dataset.stats) ? JSON.parse({row}.dataset.stats) : null"),
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(shown, stats, "{}", log_tail(&log));
    // The cells show the same numbers as the API.
    let cells = browser
        .eval(&format!(
            "Object.fromEntries([...{row}.querySelectorAll('[data-stat]')].map(td => [td.dataset.stat, Number(td.textContent)]))"
        ))
        .await;
    for (k, v) in cells.as_object().unwrap() {
        assert_eq!(v, &stats[k], "{k}");
    }
    let bar = browser
        .eval(&format!("{row}.querySelector('.bar > div').style.width"))
        .await;
    assert_eq!(bar, format!("{}%", stats["progress"]).as_str());

    // A call page: a voicemail with a beep when there is one, else any decided call.
    let attempts = api
        .get(&format!("/campaigns/{id}/attempts?limit=100"))
        .await;
    let attempts = attempts["data"].as_array().unwrap();
    let call = attempts
        .iter()
        .find(|a| a["amdResult"] == "machine_end_beep")
        .or_else(|| attempts.iter().find(|a| a["amdMs"].is_u64()))
        .expect("a decided call");
    let recorded = call["amdMs"].as_i64().unwrap();
    browser
        .eval(&format!(
            "location.hash = 'call={}'",
            call["id"].as_str().unwrap()
        ))
        .await;
    browser
        .until(
            "document.body.dataset.callReady === '1' || null",
            Duration::from_secs(20),
        )
        .await;
    let m = browser
        .eval("(() => { const m = document.querySelector('.marker.decision'); return m && {ms: Number(m.dataset.ms), x: Number(m.dataset.x), left: m.style.left, pxPerMs: Number(document.querySelector('#timeline').dataset.pxPerMs)}; })()")
        .await;
    let shown_ms = m["ms"].as_i64().unwrap();
    assert!(
        (shown_ms - recorded).abs() <= 20,
        "marker at {shown_ms} ms, decided at {recorded} ms: {m}"
    );
    // The marker is drawn where its data says.
    assert_eq!(m["left"], format!("{}px", m["x"]).as_str());
    let from_position = m["x"].as_f64().unwrap() / m["pxPerMs"].as_f64().unwrap();
    assert!((from_position - recorded as f64).abs() <= 20.0, "{m}");
    if call["amdResult"] == "machine_end_beep" {
        let beeps = browser
            .eval("document.querySelectorAll('.marker.beep').length")
            .await;
        assert_eq!(beeps, 2);
    }
    // Something was drawn, and the play button is armed.
    let inked = browser
        .eval("(() => { const c = document.querySelector('#wave'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; })()")
        .await;
    assert!(inked.as_u64().unwrap() > 1_000, "{inked}");
    let play = browser
        .eval("document.querySelector('#play').disabled")
        .await;
    assert_eq!(play, false);
}
