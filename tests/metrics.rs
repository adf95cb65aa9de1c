//! `GET /metrics` of a real `trunx serve` after a campaign against the simulated carrier: it
//! needs the API key (no `metrics_public`), passes `promtool check metrics`, and its call
//! counters add up to the campaign's attempts.

mod common;
mod live;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::numbers_open_now;
use live::{Api, create_key, db_in, log_tail, serve_env, start_serve, start_sim};
use serde_json::{Value, json};

const PROMTOOL_INSTALL: &str =
    "promtool is missing: install it with `sudo apt-get install prometheus` (or `make deps`)";

/// The value of the sample `name{labels}` (or `name` without labels) in the text format.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

fn sum_of(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_campaign_pass_promtool_and_match_the_attempts() {
    let promtool = Command::new("promtool").arg("--version").output();
    assert!(
        matches!(&promtool, Ok(o) if o.status.success()),
        "{PROMTOOL_INSTALL}"
    );
    const API_PORT: u16 = 16_531;
    let dir = tempfile::tempdir().unwrap();
    let (_, db) = db_in(dir.path());
    let log = dir.path().join("serve.log");
    let phones = numbers_open_now(8, 30 * 60_000);
    let (_sim, sim_sip) = start_sim(live::quick_seed(&phones, 100), "27100-27199");
    let key = create_key(&db);
    let env = serve_env(API_PORT, 16_532, &db, &sim_sip);
    let _serve = start_serve(&env, &log);
    let api = Api::new(API_PORT, key);
    api.ready(Duration::from_secs(20)).await;

    // Without a key: 401, like every other route.
    let anon = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);

    let id = api.start_campaign(&phones, json!({})).await;
    let stats = api
        .until_completed(&id, Duration::from_secs(120), &log)
        .await;

    let resp = api
        .http
        .get(format!("{}/metrics", api.base))
        .bearer_auth(&api.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    let text = resp.text().await.unwrap();

    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(PROMTOOL_INSTALL);
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Every attempt ended once: the outcome counters add up to the attempts, and the
    // campaign's own counters by outcome match.
    let attempts: Value = api
        .get(&format!("/campaigns/{id}/attempts?limit=100"))
        .await;
    let attempts = attempts["data"].as_array().unwrap().clone();
    assert_eq!(attempts.len(), phones.len(), "{stats}");
    assert_eq!(
        sum_of(&text, "trunx_calls_total"),
        phones.len() as f64,
        "{text}"
    );
    for (outcome, key) in [
        ("voicemail", "voicemail"),
        ("humanConnected", "humanConnected"),
        ("busy", "busy"),
        ("noAnswer", "noAnswer"),
        ("failed", "failed"),
    ] {
        let counted = sample(
            &text,
            &format!("trunx_calls_total{{outcome=\"{outcome}\"}}"),
        )
        .unwrap_or(0.0);
        assert_eq!(
            counted,
            stats[key].as_f64().unwrap(),
            "{outcome}: {stats}\n{text}"
        );
    }
    // AMD results and their latency histogram: one observation per decided call.
    let decided = attempts
        .iter()
        .filter(|a| a["amdResult"].is_string())
        .count() as f64;
    assert!(decided > 0.0, "no answered call: {attempts:?}");
    assert_eq!(sum_of(&text, "trunx_amd_results_total"), decided, "{text}");
    let observed: f64 = text
        .lines()
        .filter(|l| l.starts_with("trunx_amd_decision_seconds_count{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(observed, decided, "{text}");
    assert_eq!(sample(&text, "trunx_active_calls"), Some(0.0), "{text}");
    assert_eq!(sample(&text, "trunx_trunk_up"), Some(1.0), "{text}");
    assert!(
        sample(&text, "trunx_sip_responses_total{code=\"200\"}").unwrap_or(0.0) >= decided,
        "{text}"
    );
    for series in [
        "trunx_rtp_frames_total{direction=\"rx\",kind=\"lost\"}",
        "trunx_rtp_frames_total{direction=\"rx\",kind=\"late\"}",
        "trunx_rtp_frames_total{direction=\"tx\",kind=\"late\"}",
        "trunx_webhook_queue_depth",
    ] {
        assert!(sample(&text, series).is_some(), "{series} missing:\n{text}");
    }
    assert!(
        text.contains("# TYPE trunx_amd_decision_seconds histogram"),
        "{text}"
    );
    let _ = log_tail(&log);
}
