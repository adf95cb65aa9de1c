//! What several nodes sharing one PostgreSQL must hold together, beyond leases and the campaign's
//! rate (those are in `tests/store_cluster.rs` and `tests/cluster.rs`): a caller ID's hourly and
//! daily caps and an SMS DID's per-hour cap and least gap are counted over every node, and a
//! webhook event is posted by one node only. Two `PgStore` handles with their own node ids and
//! connection pools are the two nodes; they race from two threads (or two webhook senders) against
//! one server the test starts from the Debian package (`tests/pg_server`).

mod pg_server;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use trunx::campaign::{Action, Channel, Outcome, ProspectEvent};
use trunx::egress::EgressPolicy;
use trunx::runtime::clock;
use trunx::runtime::fetch::FetchConfig;
use trunx::runtime::webhooks::{self, WebhookSettings};
use trunx::store::{
    AttemptResult, ClusterSettings, DidLimits, NewCampaign, PgStore, Store, StoreError,
};

const HOUR_MS: i64 = 3_600_000;
const DID: &str = "+17145550000";

fn node(id: &str, url: &str, did_limits: DidLimits) -> PgStore {
    let cluster = ClusterSettings {
        did_limits,
        ..ClusterSettings::single(id)
    };
    PgStore::open(url, 7, cluster).unwrap()
}

fn phones(n: usize, base: u64) -> Vec<String> {
    (0..n)
        .map(|i| format!("+1714{:07}", base + i as u64))
        .collect()
}

fn campaign(channel: Channel, webhook_url: Option<String>) -> NewCampaign {
    NewCampaign {
        name: Some("shared".into()),
        channel,
        mode: match channel {
            Channel::Sms => json!({"message": "hello"}),
            _ => json!({"max_retries": 0}),
        },
        caller_ids: vec![DID.into()],
        caller_id_strategy: json!({}),
        schedule: None,
        webhook_url,
    }
}

/// Both nodes try to start a call with `DID` for every due prospect they lease, at `now`, at
/// the same moment from two threads. Returns (calls started, refusals' `until_ms`).
fn race_calls(a: &PgStore, b: &PgStore, campaign: &str, now: i64) -> (usize, Vec<i64>) {
    let one = |s: &PgStore| {
        let mut out = (0, Vec::new());
        for p in s.due_prospects(campaign, now, 5).unwrap() {
            match s.begin_attempt(campaign, &p.id, DID, now) {
                Ok(_) => out.0 += 1,
                Err(StoreError::DidLimit {
                    did,
                    until_ms,
                    recent_ms,
                }) => {
                    assert_eq!(did, DID);
                    assert!(until_ms > now && !recent_ms.is_empty());
                    out.1.push(until_ms);
                }
                Err(e) => panic!("{e}"),
            }
        }
        out
    };
    std::thread::scope(|sc| {
        let ta = sc.spawn(|| one(a));
        let tb = sc.spawn(|| one(b));
        let (ra, rb) = (ta.join().unwrap(), tb.join().unwrap());
        (ra.0 + rb.0, [ra.1, rb.1].concat())
    })
}

#[test]
fn postgres_a_caller_ids_hourly_and_daily_caps_hold_across_nodes() {
    let Some(url) = pg_server::database_or_skip("caller_id_caps_across_nodes") else {
        return;
    };
    let limits = DidLimits {
        calls_per_hour: Some(3),
        calls_per_day: Some(5),
        ..DidLimits::default()
    };
    let (a, b) = (node("a", &url, limits), node("b", &url, limits));
    let c = a
        .create_campaign(campaign(Channel::Voice, None), 0)
        .unwrap();
    a.add_prospects(&c.id, &phones(40, 100), 1).unwrap();
    a.transition_campaign(&c.id, Action::Start, 2).unwrap();

    // Ten prospects race for the DID at 10 s: 3 calls over both nodes, the rest refused until
    // the first of them is an hour old.
    let t0 = 10_000;
    let (started, refused) = race_calls(&a, &b, &c.id, t0);
    assert_eq!(started, 3, "hourly cap over both nodes");
    assert_eq!(refused.len(), 7);
    assert!(refused.iter().all(|u| *u == t0 + HOUR_MS), "{refused:?}");
    // Still refused a minute before the hour (leases are 10 s: the nodes read new ones).
    let (started, _) = race_calls(&a, &b, &c.id, t0 + HOUR_MS - 60_000);
    assert_eq!(started, 0);
    // The next hour: 2 more (the day's cap is 5), then nothing until a day after the first.
    let (started, _) = race_calls(&a, &b, &c.id, t0 + HOUR_MS);
    assert_eq!(started, 2, "daily cap over both nodes");
    let (started, refused) = race_calls(&a, &b, &c.id, t0 + 3 * HOUR_MS);
    assert_eq!(started, 0);
    assert!(
        refused.iter().all(|u| *u == t0 + 24 * HOUR_MS),
        "{refused:?}"
    );
    // A day after the first: those 3 aged out of the day, the hour's cap allows 3 again.
    let (started, _) = race_calls(&a, &b, &c.id, t0 + 24 * HOUR_MS);
    assert_eq!(started, 3, "the first hour's calls aged out of the day");
    assert_eq!(a.stats(&c.id).unwrap().dialing, 8);

    // A store without limits (SQLite's behaviour, a tool's store) refuses nothing.
    let free = node("c", &url, DidLimits::default());
    let t = t0 + 24 * HOUR_MS + 1;
    let p = free.due_prospects(&c.id, t, 1).unwrap();
    free.begin_attempt(&c.id, &p[0].id, DID, t).unwrap();
    assert!(matches!(
        race_calls(&a, &b, &c.id, t),
        (0, refused) if !refused.is_empty()
    ));
}

#[test]
fn postgres_sms_per_did_pacing_holds_across_nodes() {
    let Some(url) = pg_server::database_or_skip("sms_pacing_across_nodes") else {
        return;
    };
    let gap = 15 * 60_000;
    let limits = DidLimits {
        sms_per_hour: Some(3),
        sms_min_gap_ms: Some(gap),
        ..DidLimits::default()
    };
    let (a, b) = (node("a", &url, limits), node("b", &url, limits));
    let c = a.create_campaign(campaign(Channel::Sms, None), 0).unwrap();
    let numbers = phones(40, 300);
    a.add_prospects(&c.id, &numbers, 1).unwrap();
    a.transition_campaign(&c.id, Action::Start, 2).unwrap();
    // Every minute for two hours, both nodes try to text the next number from the one DID at
    // once (node a the even numbers, b the odd ones).
    let mut sent: Vec<i64> = Vec::new();
    let mut next = [0usize, 1usize];
    for minute in 0..120 {
        let now = 10_000 + minute * 60_000;
        let run = |s: &PgStore, i: usize| match s.begin_message(&c.id, &numbers[i], DID, 1, now) {
            Ok(_) => Ok(now),
            Err(StoreError::DidLimit { until_ms, .. }) => {
                assert!(until_ms > now);
                Err(())
            }
            Err(e) => panic!("{e}"),
        };
        let (run, a, b) = (&run, &a, &b);
        let tried = std::thread::scope(|sc| {
            let ta = sc.spawn(move || run(a, next[0]));
            let tb = sc.spawn(move || run(b, next[1]));
            [ta.join().unwrap(), tb.join().unwrap()]
        });
        for (k, r) in tried.iter().enumerate() {
            if let Ok(t) = r {
                sent.push(*t);
                next[k] += 2;
            }
        }
    }
    // Over both nodes: 15 minutes apart at least, at most 3 in any rolling hour. So texts at
    // minutes 0, 15, 30, then 60 (the first one's hour is over), 75, 90, and none after.
    let minutes: Vec<i64> = sent.iter().map(|t| (t - 10_000) / 60_000).collect();
    assert_eq!(minutes, [0, 15, 30, 60, 75, 90], "{sent:?}");
    for w in sent.windows(2) {
        assert!(w[1] - w[0] >= gap, "{sent:?}");
    }
    for (i, t) in sent.iter().enumerate() {
        let in_hour = sent[i..].iter().filter(|u| **u - t < HOUR_MS).count();
        assert!(in_hour <= 3, "{sent:?}");
    }
    let page = trunx::store::PageRequest {
        limit: 100,
        after: None,
    };
    assert_eq!(b.list_messages(&c.id, &page).unwrap().items.len(), 6);
}

/// Two campaigns share caller IDs; node a dials for one, node b for the other, and at each
/// round both claim a call with the same fresh DID at the same instant (a barrier between the
/// lease and the claim). Only the per-DID lock keeps this at one call per DID: each node's
/// campaign row lock is its own, so without it both would count zero and both would insert.
#[test]
fn postgres_two_campaigns_sharing_a_did_stay_under_its_cap() {
    let Some(url) = pg_server::database_or_skip("two_campaigns_share_a_did") else {
        return;
    };
    let limits = DidLimits {
        calls_per_hour: Some(1),
        ..DidLimits::default()
    };
    let (a, b) = (node("a", &url, limits), node("b", &url, limits));
    let rounds = 40;
    let dids: Vec<String> = (0..rounds).map(|k| format!("+1949555{k:04}")).collect();
    let make = |s: &PgStore, base: u64| {
        let mut new = campaign(Channel::Voice, None);
        new.caller_ids = dids.clone();
        let c = s.create_campaign(new, 0).unwrap();
        s.add_prospects(&c.id, &phones(rounds, base), 1).unwrap();
        s.transition_campaign(&c.id, Action::Start, 2).unwrap();
        c.id
    };
    let (ca, cb) = (make(&a, 700), make(&b, 800));
    let now = 10_000;
    let mut started = [0usize; 2];
    for did in &dids {
        let gate = std::sync::Barrier::new(2);
        let claim = |s: &PgStore, c: &str| {
            let p = s.due_prospects(c, now, 1).unwrap().remove(0);
            gate.wait();
            match s.begin_attempt(c, &p.id, did, now) {
                Ok(_) => true,
                Err(StoreError::DidLimit { did: d, .. }) => {
                    // The prospect stays this node's (its own lease) for the next round.
                    assert_eq!(&d, did);
                    false
                }
                Err(e) => panic!("{e}"),
            }
        };
        let won = std::thread::scope(|sc| {
            let ta = sc.spawn(|| claim(&a, &ca));
            let tb = sc.spawn(|| claim(&b, &cb));
            [ta.join().unwrap(), tb.join().unwrap()]
        });
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{did}: {won:?}");
        for (k, w) in won.iter().enumerate() {
            started[k] += usize::from(*w);
        }
    }
    let dialing = a.stats(&ca).unwrap().dialing + b.stats(&cb).unwrap().dialing;
    assert_eq!(
        dialing as usize, rounds,
        "one call per DID over both campaigns"
    );
    // Both nodes won some rounds: the lock queued real contenders, not one idle node.
    assert!(started.iter().all(|n| *n > 0), "{started:?}");
}

/// A real HTTP receiver: how many POSTs each event id got.
#[derive(Clone, Default)]
struct Receiver {
    posts: Arc<Mutex<BTreeMap<String, u32>>>,
}

async fn hook(State(r): State<Receiver>, headers: HeaderMap) -> StatusCode {
    let id = headers
        .get("x-trunx-event-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    // A receiver that takes a moment, as real ones do: both nodes are polling meanwhile.
    tokio::time::sleep(Duration::from_millis(5)).await;
    *r.posts.lock().unwrap().entry(id).or_default() += 1;
    StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_nodes_post_each_webhook_event_once() {
    let Some(url) = tokio::task::block_in_place(|| {
        pg_server::database_or_skip("two_nodes_post_each_webhook_event_once")
    }) else {
        return;
    };
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(receiver.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let stores: Vec<Arc<dyn Store>> = tokio::task::block_in_place(|| {
        ["a", "b"]
            .iter()
            .map(|id| Arc::new(node(id, &url, DidLimits::default())) as Arc<dyn Store>)
            .collect()
    });
    // Events first: a campaign started, 40 calls begun and ended (81+ events), all pending.
    let events = tokio::task::block_in_place(|| {
        let s = &stores[0];
        let c = s
            .create_campaign(
                campaign(Channel::Voice, Some(format!("http://{addr}/hook"))),
                0,
            )
            .unwrap();
        s.add_prospects(&c.id, &phones(40, 500), 1).unwrap();
        s.transition_campaign(&c.id, Action::Start, 2).unwrap();
        for p in s.due_prospects(&c.id, 10, 40).unwrap() {
            let att = s.begin_attempt(&c.id, &p.id, DID, 10).unwrap();
            let result = AttemptResult {
                outcome: Some(Outcome::Busy),
                ..AttemptResult::default()
            };
            let end = ProspectEvent::Finished {
                outcome: Outcome::Busy,
                amd: None,
            };
            s.finish_attempt(&att.id, &result, &end, 20).unwrap();
        }
        s.webhook_queue_depth().unwrap()
    });
    assert!(events >= 81, "{events} events");

    // Both nodes' webhook senders (and heartbeats) start together on the same outbox.
    let stop = CancellationToken::new();
    let settings = WebhookSettings {
        default_url: None,
        secret: Some(Arc::from(&b"whsec_cluster_test"[..])),
        fetch: FetchConfig {
            policy: EgressPolicy {
                allow_hosts: Vec::new(),
                allow_private: true,
            },
            ..FetchConfig::default()
        },
    };
    let (mut tasks, mut beats) = (Vec::new(), Vec::new());
    for (i, s) in stores.iter().enumerate() {
        tasks.push(tokio::spawn(webhooks::run(
            settings.clone(),
            s.clone(),
            stop.clone(),
        )));
        beats.push(tokio::spawn(trunx::runtime::nodes::run(
            ["a", "b"][i].to_string(),
            s.clone(),
            stop.clone(),
        )));
    }
    let deadline = clock::now() + Duration::from_secs(60);
    loop {
        let depth = {
            let s = stores[1].clone();
            tokio::task::spawn_blocking(move || s.webhook_queue_depth().unwrap())
                .await
                .unwrap()
        };
        if depth == 0 {
            break;
        }
        assert!(clock::now() < deadline, "{depth} deliveries still pending");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Time for a late duplicate to arrive, had a second node taken the same event.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    for b in beats {
        b.await.unwrap();
    }
    server.abort();
    let posts = receiver.posts.lock().unwrap().clone();
    assert_eq!(posts.len() as u64, events, "every event posted");
    let twice: Vec<_> = posts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "posted more than once: {twice:?}");
    assert!(posts.keys().all(|k| k.starts_with("evt_")));
    tokio::task::block_in_place(|| drop(stores));
}
