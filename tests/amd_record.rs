//! Per-call AMD records from a real `trunx serve` with `amd_record = true`: every answered
//! call keeps its first seconds of audio and its trace; the trace's decision event is the
//! attempt's recorded decision time; the audio is a WAV of the trace's length; calls never
//! answered have none.

mod common;
mod live;

use std::time::Duration;

use common::numbers_open_now;
use live::{Api, create_key, db_in, serve_env, start_serve, start_sim};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_calls_keep_their_audio_and_trace_with_the_recorded_decision() {
    const API_PORT: u16 = 16_571;
    let dir = tempfile::tempdir().unwrap();
    let (_, db) = db_in(dir.path());
    let log = dir.path().join("serve.log");
    let records = dir.path().join("records");
    let phones = numbers_open_now(8, 30 * 60_000);
    let (_sim, sim_sip) = start_sim(live::quick_seed(&phones, 900), "27500-27599");
    let key = create_key(&db);
    let mut env = serve_env(API_PORT, 16_572, &db, &sim_sip);
    env.push(("TRUNX_AMD_RECORD", "true".to_string()));
    env.push(("TRUNX_AMD_RECORD_DIR", records.display().to_string()));
    let _serve = start_serve(&env, &log);
    let api = Api::new(API_PORT, key);
    api.ready(Duration::from_secs(20)).await;
    let id = api.start_campaign(&phones, json!({})).await;
    api.until_completed(&id, Duration::from_secs(120), &log)
        .await;
    let attempts: Value = api
        .get(&format!("/campaigns/{id}/attempts?limit=100"))
        .await;
    let attempts = attempts["data"].as_array().unwrap().clone();
    let mut answered = 0;
    for a in &attempts {
        let aid = a["id"].as_str().unwrap();
        let amd = api
            .http
            .get(format!("{}/attempts/{aid}/amd", api.base))
            .bearer_auth(&api.key)
            .send()
            .await
            .unwrap();
        if a["answeredMs"].is_null() {
            assert_eq!(amd.status(), 404, "{a}");
            continue;
        }
        answered += 1;
        assert_eq!(amd.status(), 200, "{a}");
        let trace: Value = serde_json::from_str(&amd.text().await.unwrap()).unwrap();
        assert_eq!(trace["attemptId"], aid);
        assert_eq!(trace["amdMs"], a["amdMs"], "{trace}");
        assert_eq!(trace["amdResult"], a["amdResult"], "{trace}");
        let audio_ms = trace["audioMs"].as_u64().unwrap();
        assert!(audio_ms > 0 && audio_ms <= 10_000, "{trace}");
        let points = trace["points"].as_array().unwrap();
        assert_eq!(points.len() as u64, audio_ms / 100, "{trace}");
        for (i, p) in points.iter().enumerate() {
            assert_eq!(p["tMs"], (i * 100) as u64);
            assert!(p["levelDb"].as_f64().unwrap() <= 0.0);
            assert!(p["speech"].is_boolean());
        }
        // The first event is the decision, at the attempt's recorded decision time; a beep
        // verdict carries the beep's bounds.
        if let Some(amd_ms) = a["amdMs"].as_u64() {
            let first = &trace["events"][0];
            assert_eq!(first["atMs"].as_u64(), Some(amd_ms), "{trace}");
            assert!(first["cause"].as_str().is_some_and(|c| !c.is_empty()));
        }
        if a["amdResult"] == "machine_end_beep" {
            let beep = trace["events"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["kind"] == "machine_end_beep")
                .unwrap_or_else(|| panic!("{trace}"));
            assert!(beep["beepEndMs"].as_u64() > beep["beepStartMs"].as_u64());
        }
        // Someone speaking shows up as speech and as level.
        assert!(points.iter().any(|p| p["speech"] == true), "{trace}");

        let wav = api
            .http
            .get(format!("{}/attempts/{aid}/audio", api.base))
            .bearer_auth(&api.key)
            .send()
            .await
            .unwrap();
        assert_eq!(wav.status(), 200);
        assert_eq!(wav.headers()["content-type"], "audio/wav");
        let bytes = wav.bytes().await.unwrap();
        let reader = hound::WavReader::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
        assert_eq!(reader.spec().sample_rate, 8000);
        assert_eq!(reader.len() as u64, audio_ms * 8);
    }
    assert!(answered >= 2, "{attempts:?}");
    // Keys are required, and unknown or unsafe ids are 404.
    let anon = api
        .http
        .get(format!(
            "{}/attempts/{}/amd",
            api.base,
            attempts[0]["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    for bad in ["att_nope", "..%2F..%2Fetc%2Fpasswd"] {
        let r = api
            .http
            .get(format!("{}/attempts/{bad}/audio", api.base))
            .bearer_auth(&api.key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{bad}");
    }
}
