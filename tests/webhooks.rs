//! Webhooks from a real `trunx serve` to a real HTTP receiver: a receiver that fails the first
//! three deliveries and is down while the engine is killed and restarted still gets every
//! event (each idempotency id at least once, all signatures valid); a receiver on a private
//! address is refused unless `fetch_allow_private` opens it.

mod common;
mod live;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::numbers_open_now;
use live::{Api, create_key, db_in, log_tail, serve_env, start_serve, start_sim};
use serde_json::{Value, json};
use trunx::campaign::webhook;
use trunx::runtime::clock;
use trunx::store::{SqliteStore, Store};

const SECRET: &str = "whsec_live_test_secret_0123456789";

#[derive(Clone, Debug)]
struct Delivery {
    id: String,
    idempotency_key: String,
    event_type: String,
    signature_ok: Result<(), String>,
    body: Value,
}

#[derive(Clone, Default)]
struct Receiver {
    /// Requests to answer 500 before accepting.
    fail_first: Arc<AtomicU32>,
    requests: Arc<AtomicU32>,
    accepted: Arc<Mutex<Vec<Delivery>>>,
}

async fn hook(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.requests.fetch_add(1, Ordering::SeqCst);
    let left = r.fail_first.load(Ordering::SeqCst);
    if left > 0 {
        r.fail_first.store(left - 1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let now = trunx::runtime::clock::wall_ms() / 1000;
    let signature_ok = webhook::verify(SECRET.as_bytes(), &h("x-trunx-signature"), &body, now, 300)
        .map_err(|e| format!("{e}: {}", h("x-trunx-signature")));
    r.accepted.lock().unwrap().push(Delivery {
        id: h("x-trunx-event-id"),
        idempotency_key: h("idempotency-key"),
        event_type: h("x-trunx-event-type"),
        signature_ok,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    StatusCode::NO_CONTENT
}

/// Serves the receiver on `addr` until the returned sender is dropped or fired.
async fn receiver_up(addr: SocketAddr, r: Receiver) -> tokio::sync::oneshot::Sender<()> {
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(r);
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    tx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_signed_through_failures_downtime_and_a_kill_9_restart() {
    const API_PORT: u16 = 16_541;
    const HOOK_PORT: u16 = 16_549;
    let started = clock::now();
    let dir = tempfile::tempdir().unwrap();
    let (db_path, db) = db_in(dir.path());
    let log = dir.path().join("serve.log");
    let phones = numbers_open_now(10, 30 * 60_000);
    let (_sim, sim_sip) = start_sim(live::quick_seed(&phones, 300), "27200-27299");
    let key = create_key(&db);
    let mut env = serve_env(API_PORT, 16_542, &db, &sim_sip);
    env.push(("TRUNX_WEBHOOK_SECRET", SECRET.to_string()));
    env.push(("TRUNX_FETCH_ALLOW_PRIVATE", "true".to_string()));
    let hook_addr: SocketAddr = ([127, 0, 0, 1], HOOK_PORT).into();
    let receiver = Receiver::default();
    receiver.fail_first.store(3, Ordering::SeqCst);
    let down = receiver_up(hook_addr, receiver.clone()).await;

    let mut serve = start_serve(&env, &log);
    let api = Api::new(API_PORT, key);
    api.ready(Duration::from_secs(20)).await;
    // The URL is checked when the campaign is made, naming the field.
    let bad = api
        .http
        .post(format!("{}/campaigns", api.base))
        .bearer_auth(&api.key)
        .header("content-type", "application/json")
        .body(json!({"name": "x", "webhookUrl": "ftp://hooks.example.com/x"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("webhookUrl"));

    let url = format!("http://localhost:{HOOK_PORT}/hook");
    let id = api
        .start_campaign(&phones, json!({"webhookUrl": url}))
        .await;
    let c = api.get(&format!("/campaigns/{id}")).await;
    assert_eq!(c["webhookUrl"], url.as_str());

    // Some deliveries get through after the three failures; then the receiver goes down and
    // the engine is killed mid-campaign.
    loop {
        let got = receiver.accepted.lock().unwrap().len();
        if got >= 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no delivery after the failures\n{}",
            log_tail(&log)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(receiver.requests.load(Ordering::SeqCst) >= 5);
    let _ = down.send(());
    serve.signal(libc::SIGKILL);
    serve.wait_exit(Duration::from_secs(10)).await;
    drop(serve);

    let _serve = start_serve(&env, &log);
    api.ready(Duration::from_secs(20)).await;
    api.until_completed(&id, Duration::from_secs(120), &log)
        .await;
    // Everything that happened is in the log of events; now the receiver comes back.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let accepted_while_down = receiver.accepted.lock().unwrap().len();
    let _up = receiver_up(hook_addr, receiver.clone()).await;

    let all: Vec<trunx::store::StoredEvent> = SqliteStore::open(&db_path, 5)
        .unwrap()
        .events_after(0, 10_000)
        .unwrap();
    let expected: BTreeSet<String> = all.iter().map(|e| e.id.clone()).collect();
    let deadline = clock::now() + Duration::from_secs(90);
    let got: Vec<Delivery> = loop {
        let got = receiver.accepted.lock().unwrap().clone();
        let ids: BTreeSet<String> = got.iter().map(|d| d.id.clone()).collect();
        if ids == expected {
            break got;
        }
        assert!(
            clock::now() < deadline,
            "delivered {} of {} events\n{}",
            ids.len(),
            expected.len(),
            log_tail(&log)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(got.len() > accepted_while_down);

    // Every event exactly once by idempotency id (a duplicate delivery would carry the same
    // id and body), each signed, its headers matching its body.
    let mut by_id: BTreeMap<&str, &Delivery> = BTreeMap::new();
    for d in &got {
        assert_eq!(d.signature_ok, Ok(()), "{d:?}");
        assert_eq!(d.idempotency_key, d.id);
        assert_eq!(d.body["id"], d.id.as_str());
        assert_eq!(d.body["type"], d.event_type.as_str());
        assert_eq!(d.body["campaignId"], id.as_str());
        if let Some(prev) = by_id.insert(&d.id, d) {
            assert_eq!(prev.body, d.body, "a redelivery changed the event");
        }
    }
    assert_eq!(by_id.len(), expected.len());
    let count = |t: &str| by_id.values().filter(|d| d.event_type == t).count();
    let attempts = api
        .get(&format!("/campaigns/{id}/attempts?limit=100"))
        .await;
    let attempts = attempts["data"].as_array().unwrap().len();
    assert_eq!(count("attempt.started"), attempts);
    assert_eq!(count("attempt.ended"), attempts);
    let statuses: Vec<&str> = by_id
        .values()
        .filter(|d| d.event_type == "campaign.status")
        .map(|d| d.body["data"]["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.contains(&"dialing") && statuses.contains(&"completed"),
        "{statuses:?}"
    );
    // An ended attempt carries its outcome.
    for d in by_id.values().filter(|d| d.event_type == "attempt.ended") {
        assert!(d.body["data"]["outcome"].is_string(), "{:?}", d.body);
        assert!(d.body["data"]["attemptId"].is_string(), "{:?}", d.body);
    }
    // The outbox is empty.
    let metrics = reqwest_text(&api, "/metrics").await;
    let deadline = clock::now() + Duration::from_secs(5);
    let mut metrics = metrics;
    while !metrics.contains("trunx_webhook_queue_depth 0") {
        assert!(clock::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        metrics = reqwest_text(&api, "/metrics").await;
    }
}

async fn reqwest_text(api: &Api, path: &str) -> String {
    api.http
        .get(format!("{}{path}", api.base))
        .bearer_auth(&api.key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_on_a_private_address_is_refused_unless_allowed() {
    const API_PORT: u16 = 16_551;
    const HOOK_PORT: u16 = 16_559;
    let dir = tempfile::tempdir().unwrap();
    let (_, db) = db_in(dir.path());
    let log = dir.path().join("serve.log");
    let phones = numbers_open_now(3, 30 * 60_000);
    let (_sim, sim_sip) = start_sim(live::quick_seed(&phones, 500), "27300-27399");
    let key = create_key(&db);
    // fetch_allow_private stays at its default (false); the node default URL is used.
    let mut env = serve_env(API_PORT, 16_552, &db, &sim_sip);
    env.push((
        "TRUNX_WEBHOOK_URL",
        format!("http://localhost:{HOOK_PORT}/hook"),
    ));
    let receiver = Receiver::default();
    let _up = receiver_up(([127, 0, 0, 1], HOOK_PORT).into(), receiver.clone()).await;
    let _serve = start_serve(&env, &log);
    let api = Api::new(API_PORT, key);
    api.ready(Duration::from_secs(20)).await;
    let id = api.start_campaign(&phones, json!({})).await;
    api.until_completed(&id, Duration::from_secs(120), &log)
        .await;
    // Every event is tried once, refused by the egress policy, and never reaches the
    // receiver; nothing is left queued.
    let deadline = clock::now() + Duration::from_secs(10);
    loop {
        let m = reqwest_text(&api, "/metrics").await;
        let refused = m
            .lines()
            .find_map(|l| l.strip_prefix("trunx_webhook_deliveries_total{result=\"refused\"} "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        // 2 events per call, dialing and completed.
        if refused as usize >= 2 * phones.len() + 2 && m.contains("trunx_webhook_queue_depth 0") {
            break;
        }
        assert!(clock::now() < deadline, "{m}\n{}", log_tail(&log));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(receiver.requests.load(Ordering::SeqCst), 0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("webhook refused by the egress policy"),
        "{}",
        log_tail(&log)
    );
    assert!(!text.contains(SECRET));
}
