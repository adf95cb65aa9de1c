//! `GET /events` of a real `trunx serve` during a campaign: it needs the API key, streams
//! every attempt and campaign event as Server-Sent Events with the event's position as its
//! id, and a reconnect with `Last-Event-ID` resumes right after that event.

mod common;
mod live;

use std::time::Duration;

use common::numbers_open_now;
use live::{Api, create_key, db_in, log_tail, serve_env, start_serve, start_sim};
use serde_json::{Value, json};
use trunx::runtime::clock;

/// One parsed SSE event.
#[derive(Debug, Clone)]
struct Sse {
    id: i64,
    event: String,
    data: Value,
}

/// Reads SSE events from `resp` until `done` says so or `within` passes.
async fn read_events(
    mut resp: reqwest::Response,
    within: Duration,
    done: impl Fn(&[Sse]) -> bool,
) -> Vec<Sse> {
    let deadline = clock::now() + within;
    let mut buf = String::new();
    let mut out: Vec<Sse> = Vec::new();
    while !done(&out) {
        let left = deadline.saturating_duration_since(clock::now());
        assert!(!left.is_zero(), "stream ended early or too slow: {out:?}");
        let chunk = tokio::time::timeout(left, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("timed out; got {out:?}"))
            .unwrap()
            .expect("the stream stays open");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut id = None;
            let mut event = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if let Some(id) = id {
                out.push(Sse {
                    id,
                    event,
                    data: serde_json::from_str(&data).unwrap(),
                });
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_live_and_resume_after_last_event_id() {
    const API_PORT: u16 = 16_561;
    let dir = tempfile::tempdir().unwrap();
    let (_, db) = db_in(dir.path());
    let log = dir.path().join("serve.log");
    let phones = numbers_open_now(4, 30 * 60_000);
    let (_sim, sim_sip) = start_sim(live::quick_seed(&phones, 700), "27400-27499");
    let key = create_key(&db);
    let env = serve_env(API_PORT, 16_562, &db, &sim_sip);
    let _serve = start_serve(&env, &log);
    let api = Api::new(API_PORT, key);
    api.ready(Duration::from_secs(20)).await;
    let url = format!("{}/events", api.base);

    let anon = api.http.get(&url).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    let bad = api
        .http
        .get(&url)
        .bearer_auth(&api.key)
        .header("Last-Event-ID", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("Last-Event-ID"));

    // Opened before the campaign exists: live events only.
    let stream = api
        .http
        .get(&url)
        .bearer_auth(&api.key)
        .timeout(Duration::from_secs(300))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let id = api.start_campaign(&phones, json!({})).await;
    let n = phones.len();
    let completed = |evs: &[Sse]| {
        evs.iter()
            .any(|e| e.event == "campaign.status" && e.data["data"]["status"] == "completed")
    };
    let live_events = read_events(stream, Duration::from_secs(120), completed).await;
    let _ = log_tail(&log);
    // Ids increase, one event per change: dialing, n started, n ended, completed.
    assert!(
        live_events.windows(2).all(|w| w[0].id < w[1].id),
        "{live_events:?}"
    );
    let count = |t: &str| live_events.iter().filter(|e| e.event == t).count();
    assert_eq!(count("attempt.started"), n, "{live_events:?}");
    assert_eq!(count("attempt.ended"), n, "{live_events:?}");
    assert_eq!(count("campaign.status"), 2, "{live_events:?}");
    assert_eq!(live_events[0].data["data"]["status"], "dialing");
    for e in &live_events {
        assert_eq!(e.data["seq"], e.id);
        assert_eq!(e.data["type"], e.event.as_str());
        assert_eq!(e.data["campaignId"], id.as_str());
    }

    // Resume after the third event: exactly the rest, in order.
    let from = live_events[2].id;
    let resumed = api
        .http
        .get(&url)
        .bearer_auth(&api.key)
        .header("Last-Event-ID", from.to_string())
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    let rest = read_events(resumed, Duration::from_secs(20), completed).await;
    let want: Vec<i64> = live_events[3..].iter().map(|e| e.id).collect();
    let got: Vec<i64> = rest.iter().map(|e| e.id).collect();
    assert_eq!(got, want);
}
