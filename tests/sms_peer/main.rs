//! SMS campaigns end to end against an independent SMPP carrier (`tests/peers/smpp_carrier.pl`,
//! Debian's libnet-smpp-perl as the SMSC): the control API and the SMS sender run in-process
//! on a real SQLite file, campaigns are driven over HTTP, and what the carrier received is read
//! from its PDU log. Pacing is real (the contract's defaults wherever a test has one DID per
//! message), and so is the 07:00-19:00 window: the numbers are chosen in a zone where it is
//! open now. Needs perl and Net::SMPP: `make deps` (or `apt-get install -y libnet-smpp-perl`).
//!
//! Files: this one holds the tests and their small helpers; `carrier` the SMPP carrier
//! process and its PDU log; `node` the trunx node (API and SMS sender) and its settings.

mod carrier;
#[path = "../common/mod.rs"]
mod common;
mod node;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use trunx::api::auth;
use trunx::campaign::sms_pacing::SmsPacingConfig;
use trunx::runtime::clock::wall_ms;
use trunx::store::{MessageStatus, PageRequest, SqliteStore, Store};

use carrier::Carrier;
use node::{Node, settings, unpaced};

const KEY: &str = "trunx_test_key";
const STOP_REPLY: &str = "Acme: you are unsubscribed. No more messages.";
const HELP_REPLY: &str = "Acme help: call +1 212 555 0100";

fn dids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("+1312555{:04}", 7000 + i)).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every prospect's message ends `delivered` and the counters agree exactly.
fn assert_all_delivered(st: &Value, n: u64) {
    assert_eq!(st["delivered"], n, "{st}");
    assert_eq!(st["completed"], n, "{st}");
    assert_eq!(st["total"], n, "{st}");
    assert_eq!(st["sent"], 0, "{st}");
    assert_eq!(st["sending"], 0, "{st}");
    assert_eq!(st["queued"], 0, "{st}");
    assert_eq!(st["failed"], 0, "{st}");
    assert_eq!(st["progress"], 100, "{st}");
}

fn median(mut v: Vec<i64>) -> i64 {
    v.sort_unstable();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_prospects_are_texted_once_each_from_twenty_paced_dids_and_all_delivered() {
    let carrier = Carrier::start(&[]);
    // The contract's pacing (4/h, 15 min gaps + jitter): with one DID per prospect every
    // message may leave at once, each DID exactly once.
    let node = Node::start(settings(carrier.port, SmsPacingConfig::default())).await;
    let phones = common::sms_numbers_open_now(20, 10 * 60_000);
    let senders = dids(20);
    let t0 = wall_ms();
    let id = node
        .campaign(
            "Your solar survey is ready: reply STOP to opt out",
            &senders,
            &phones,
        )
        .await;
    let st = node
        .wait_stats(&id, 20, |st| st["completed"] == 20 && st["sent"] == 0)
        .await;
    let elapsed_ms = wall_ms() - t0;
    assert_all_delivered(&st, 20);
    let (status, c) = node.http("GET", &format!("/campaigns/{id}"), None).await;
    assert_eq!((status, c["status"].as_str()), (200, Some("completed")));

    let messages = node.messages(&id).await;
    assert_eq!(messages.len(), 20);
    let mut carrier_ids = HashSet::new();
    for m in &messages {
        assert_eq!(m["status"], "delivered", "{m}");
        assert_eq!(m["parts"], 1, "{m}");
        let ids = m["messageIds"].as_array().unwrap();
        assert_eq!(ids.len(), 1, "{m}");
        assert!(carrier_ids.insert(ids[0].as_str().unwrap().to_string()));
        assert!(
            m["submittedAt"].is_string() && m["receiptAt"].is_string(),
            "{m}"
        );
    }
    let used: HashSet<&str> = messages
        .iter()
        .map(|m| m["did"].as_str().unwrap())
        .collect();
    assert_eq!(used.len(), 20, "pacing spreads the messages over every DID");
    let texted: HashSet<&str> = messages
        .iter()
        .map(|m| m["phone"].as_str().unwrap())
        .collect();
    assert_eq!(texted, phones.iter().map(String::as_str).collect());

    // What the carrier got: 20 submits, one per number, GSM 7-bit, receipts asked for.
    let submits = carrier.logged("submit_sm");
    assert_eq!(submits.len(), 20);
    let mut to = carrier.submitted_to();
    to.sort();
    let mut expected = phones.clone();
    expected.sort();
    assert_eq!(to, expected);
    for s in &submits {
        assert_eq!(
            (s["data_coding"].as_u64(), s["registered_delivery"].as_u64()),
            (Some(0), Some(1)),
            "{s}"
        );
        assert_eq!(
            s["short_message"],
            hex(b"Your solar survey is ready: reply STOP to opt out"),
            "{s}"
        );
    }
    assert_eq!(carrier.logged("bind_transceiver").len(), 1);

    let (store, stats) = node.shutdown().await;
    // Figures: submit -> final receipt (the carrier waits 100 ms before each receipt).
    let rows = store
        .list_messages(
            &id,
            &PageRequest {
                limit: 100,
                after: None,
            },
        )
        .unwrap()
        .items;
    let round_trip: Vec<i64> = rows
        .iter()
        .map(|m| m.receipt_at_ms.unwrap() - m.created_at_ms)
        .collect();
    eprintln!(
        "20 messages delivered in {elapsed_ms} ms; begin -> receipt median {} ms, max {} ms; {stats:?}",
        median(round_trip.clone()),
        round_trip.iter().max().unwrap()
    );
    assert_eq!(stats.messages_begun, 20);
    assert_eq!((stats.requeued, stats.failed_on_submit), (0, 0));
    assert!(
        carrier.logged("unbind").len() == 1,
        "a graceful unbind on stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_pacing_holds_each_did_to_its_gap() {
    let carrier = Carrier::start(&[]);
    let node = Node::start(settings(carrier.port, SmsPacingConfig::default())).await;
    let phones = common::sms_numbers_open_now(5, 10 * 60_000);
    let id = node.campaign("hello from acme", &dids(2), &phones).await;
    let st = node.wait_stats(&id, 10, |st| st["delivered"] == 2).await;
    // Two DIDs, one message each; the next is 15-25 minutes away, so nothing else leaves.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let st2 = node.stats(&id).await;
    assert_eq!(st2, st, "nothing more leaves within the gap");
    assert_eq!(
        (st["queued"].as_u64(), st["delivered"].as_u64()),
        (Some(3), Some(2)),
        "{st}"
    );
    assert_eq!(carrier.logged("submit_sm").len(), 2);
    let used: HashSet<String> = node
        .messages(&id)
        .await
        .iter()
        .map(|m| m["did"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(used.len(), 2, "one message per DID");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_from_the_carrier_suppresses_the_number_with_one_confirmation_for_good() {
    let phones = common::sms_numbers_open_now(5, 10 * 60_000);
    let stopper = phones[2].clone();
    let asker = "+12125559999";
    let stop1 = format!("{stopper}:STOP");
    let stop2 = format!("{stopper}:  stop ");
    let help = format!("{asker}:help");
    // Two STOPs from one number (one confirmation only) and a HELP from another.
    let carrier = Carrier::start(&["--mo", &stop1, "--mo", &stop2, "--mo", &help]);
    let node = Node::start(settings(carrier.port, SmsPacingConfig::default())).await;
    let (status, _) = node
        .http("POST", "/dids", Some(json!({"numbers": ["+13125550001"]})))
        .await;
    assert_eq!(status, 201);

    // The opt-out lands on the suppression list.
    let deadline = wall_ms() + 10_000;
    let listed = loop {
        let (status, page) = node.http("GET", "/suppression", None).await;
        assert_eq!(status, 200);
        if let Some(row) = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["phone"] == stopper.as_str())
        {
            break row.clone();
        }
        assert!(
            wall_ms() < deadline,
            "the STOP never suppressed the number: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (listed["reason"].as_str(), listed["source"].as_str()),
        (Some("opt_out_sms"), Some("smpp"))
    );
    // Exactly one confirmation to the stopper, the help text to the asker.
    let deadline = wall_ms() + 10_000;
    while carrier.logged("submit_sm").len() < 2 {
        assert!(wall_ms() < deadline, "replies never submitted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let replies: HashMap<String, Vec<String>> =
        carrier
            .logged("submit_sm")
            .iter()
            .fold(HashMap::new(), |mut m, s| {
                m.entry(format!("+{}", s["destination"].as_str().unwrap()))
                    .or_default()
                    .push(s["short_message"].as_str().unwrap().to_string());
                m
            });
    assert_eq!(
        replies[&stopper],
        vec![hex(STOP_REPLY.as_bytes())],
        "one confirmation"
    );
    assert_eq!(replies[asker], vec![hex(HELP_REPLY.as_bytes())]);
    assert_eq!(replies.len(), 2);
    for s in carrier.logged("submit_sm") {
        assert_eq!(
            s["source"], "13125550001",
            "replies come from the registered DID: {s}"
        );
    }

    // A later campaign with the number: it is never texted and counts as cancelled.
    let id = node.campaign("spring offer", &dids(5), &phones).await;
    let st = node
        .wait_stats(&id, 15, |st| st["completed"] == 4 && st["sent"] == 0)
        .await;
    assert_eq!(
        (st["delivered"].as_u64(), st["cancelled"].as_u64()),
        (Some(4), Some(1)),
        "{st}"
    );
    assert_eq!(st["total"], 5);
    assert_eq!(st["progress"], 80, "{st}");
    let to_stopper = carrier
        .submitted_to()
        .iter()
        .filter(|d| **d == stopper)
        .count();
    assert_eq!(
        to_stopper, 1,
        "only the confirmation ever went to the number"
    );
    let (_, prospects) = node
        .http("GET", &format!("/campaigns/{id}/prospects"), None)
        .await;
    let p = prospects["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phone"] == stopper.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (p["status"].as_str(), p["attempts"].as_u64()),
        (Some("cancelled"), Some(0)),
        "{p}"
    );
    let (_, stats) = node.shutdown().await;
    assert_eq!((stats.opt_outs, stats.replies_sent), (2, 2), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_carrier_slows_the_sends_without_losing_one() {
    let carrier = Carrier::start(&["--throttle", "5"]);
    let node = Node::start(settings(carrier.port, SmsPacingConfig::default())).await;
    let phones = common::sms_numbers_open_now(20, 10 * 60_000);
    let t0 = wall_ms();
    let id = node.campaign("throttled hello", &dids(20), &phones).await;
    let st = node
        .wait_stats(&id, 20, |st| st["completed"] == 20 && st["sent"] == 0)
        .await;
    let elapsed_ms = wall_ms() - t0;
    assert_all_delivered(&st, 20);
    let to = carrier.submitted_to();
    assert_eq!(to.len(), 25, "5 throttled submits sent again: {to:?}");
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for d in &to {
        *counts.entry(d.as_str()).or_default() += 1;
    }
    assert_eq!(counts.len(), 20);
    // The carrier throttled the first 5 submits it saw (a resend may be throttled again):
    // each of them was sent again later, and nothing else was.
    for (i, d) in to[..5].iter().enumerate() {
        assert!(
            to[i + 1..].contains(d),
            "{d} was throttled but not resent: {to:?}"
        );
    }
    assert_eq!(
        counts.values().map(|n| n - 1).sum::<usize>(),
        5,
        "{counts:?}"
    );
    let messages = node.messages(&id).await;
    assert_eq!(messages.len(), 20, "a throttle is not a new message");
    let (_, stats) = node.shutdown().await;
    assert_eq!(stats.throttled, 5, "{stats:?}");
    assert_eq!(stats.requeued, 0);
    assert!(
        elapsed_ms >= 500,
        "the throttle pause slowed the sends ({elapsed_ms} ms)"
    );
    eprintln!("throttled campaign: 20 delivered in {elapsed_ms} ms; {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_loses_nothing_and_resends_only_unanswered_submits() {
    let carrier = Carrier::start(&["--drop-after", "7"]);
    let node = Node::start(settings(carrier.port, unpaced())).await;
    let phones = common::sms_numbers_open_now(20, 10 * 60_000);
    let id = node.campaign("drop test", &dids(2), &phones).await;
    let st = node
        .wait_stats(&id, 25, |st| st["completed"] == 20 && st["sent"] == 0)
        .await;
    assert_all_delivered(&st, 20);
    assert!(carrier.logged("bind_transceiver").len() >= 2, "reconnected");
    let messages = node.messages(&id).await;
    let delivered: Vec<&str> = messages
        .iter()
        .filter(|m| m["status"] == "delivered")
        .map(|m| m["phone"].as_str().unwrap())
        .collect();
    assert_eq!(delivered.len(), 20);
    assert_eq!(
        delivered.iter().collect::<HashSet<_>>().len(),
        20,
        "one delivered message per prospect"
    );
    let requeued: HashSet<&str> = messages
        .iter()
        .filter(|m| m["status"] == "requeued")
        .map(|m| m["phone"].as_str().unwrap())
        .collect();
    assert!(!requeued.is_empty(), "the unanswered submit was requeued");
    // The rule: a number is submitted twice only when its first submit went unanswered.
    let mut counts: HashMap<String, usize> = HashMap::new();
    for d in carrier.submitted_to() {
        *counts.entry(d).or_default() += 1;
    }
    assert_eq!(counts.len(), 20);
    for (phone, n) in &counts {
        assert!(*n <= 2, "{phone} submitted {n} times");
        if *n == 2 {
            assert!(
                requeued.contains(phone.as_str()),
                "{phone} resent without a requeue"
            );
        }
    }
    let twice = counts.values().filter(|&&n| n == 2).count();
    let (_, stats) = node.shutdown().await;
    assert!(
        stats.connections_lost >= 1 && stats.smpp.binds >= 2,
        "{stats:?}"
    );
    eprintln!(
        "drop: {} requeued, {twice} numbers submitted twice; {stats:?}",
        requeued.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_ucs2_message_goes_out_as_concatenated_parts_and_is_delivered_once_all_are() {
    let carrier = Carrier::start(&[]);
    let node = Node::start(settings(carrier.port, SmsPacingConfig::default())).await;
    let phones = common::sms_numbers_open_now(1, 10 * 60_000);
    let text = "Привет! ".repeat(19); // 152 UCS-2 units: 67 + 67 + 18
    let id = node.campaign(&text, &dids(1), &phones).await;
    let st = node
        .wait_stats(&id, 15, |st| st["completed"] == 1 && st["sent"] == 0)
        .await;
    assert_all_delivered(&st, 1);
    let submits = carrier.logged("submit_sm");
    assert_eq!(submits.len(), 3);
    let mut reference = None;
    for (i, s) in submits.iter().enumerate() {
        assert_eq!(
            (s["data_coding"].as_u64(), s["esm_class"].as_u64()),
            (Some(8), Some(0x40)),
            "{s}"
        );
        let sm = s["short_message"].as_str().unwrap();
        // UDH: 05 00 03 <ref> <total 3> <part i+1>.
        assert_eq!(&sm[..6], "050003", "{s}");
        assert_eq!(&sm[8..12], format!("03{:02x}", i + 1), "{s}");
        let r = &sm[6..8];
        assert_eq!(
            *reference.get_or_insert(r.to_string()),
            r,
            "one reference for all parts"
        );
    }
    let m = &node.messages(&id).await[0];
    assert_eq!(m["parts"], 3, "{m}");
    assert_eq!(m["messageIds"].as_array().unwrap().len(), 3, "{m}");
    assert_eq!(m["status"], "delivered", "{m}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_a_message_left_sending_is_requeued_and_sent_once() {
    let carrier = Carrier::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("sms.db"), 9).unwrap();
    sqlite.create_api_key("t", &auth::hash_key(KEY), 0).unwrap();
    let store: Arc<dyn Store> = Arc::new(sqlite);
    let phones = common::sms_numbers_open_now(2, 10 * 60_000);
    let c = store
        .create_campaign(
            trunx::store::NewCampaign {
                name: None,
                channel: trunx::campaign::Channel::Sms,
                mode: json!({"message": "after the crash"}),
                caller_ids: dids(2),
                caller_id_strategy: json!({}),
                schedule: None,
                webhook_url: None,
            },
            0,
        )
        .unwrap();
    store.add_prospects(&c.id, &phones, 0).unwrap();
    let now = wall_ms();
    store
        .transition_campaign(&c.id, trunx::campaign::Action::Start, now)
        .unwrap();
    // The crash: a message row written, its submit never answered.
    let orphan = store
        .begin_message(&c.id, &phones[0], &dids(2)[0], 1, now)
        .unwrap();
    let node = Node::start_on(store, settings(carrier.port, unpaced()), dir).await;
    let st = node
        .wait_stats(&c.id, 15, |st| st["completed"] == 2 && st["sent"] == 0)
        .await;
    assert_all_delivered(&st, 2);
    let rows = node
        .store
        .list_messages(
            &c.id,
            &PageRequest {
                limit: 10,
                after: None,
            },
        )
        .unwrap()
        .items;
    let old = rows.iter().find(|m| m.id == orphan.id).unwrap();
    assert_eq!(old.status, MessageStatus::Requeued);
    assert_eq!(
        carrier.submitted_to().len(),
        2,
        "each number submitted once"
    );
    let (_, stats) = node.shutdown().await;
    assert_eq!(stats.recovered_requeued, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_that_never_comes_fails_the_message_after_the_timeout_and_the_campaign_completes()
{
    let phones = common::sms_numbers_open_now(3, 10 * 60_000);
    let carrier = Carrier::start(&["--silent-number", &phones[0]]);
    let mut s = settings(carrier.port, unpaced());
    s.receipt_timeout = Duration::from_secs(2);
    let node = Node::start(s).await;
    let id = node.campaign("is anyone there", &dids(3), &phones).await;
    let st = node
        .wait_stats(&id, 20, |st| st["completed"] == 3 && st["sent"] == 0)
        .await;
    assert_eq!(
        (
            st["delivered"].as_u64(),
            st["failed"].as_u64(),
            st["progress"].as_u64()
        ),
        (Some(2), Some(1), Some(100)),
        "{st}"
    );
    let messages = node.messages(&id).await;
    let silent = messages
        .iter()
        .find(|m| m["phone"] == phones[0].as_str())
        .unwrap();
    assert_eq!(silent["status"], "failed", "{silent}");
    assert_eq!(silent["errorCode"], "no_receipt", "{silent}");
    let (_, stats) = node.shutdown().await;
    assert_eq!(stats.receipts_timed_out, 1, "{stats:?}");
}

/// The `health_score` strategy on SMS: a DID whose texts the carrier stops delivering loses
/// its health and is pulled out of rotation; the rest of the campaign goes out from the DID
/// that still delivers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_did_whose_texts_stop_arriving_is_pulled_by_the_health_strategy() {
    let dids = dids(2);
    let carrier = Carrier::start(&["--fail-source", &dids[0], "--receipt-delay-ms", "10"]);
    let mut s = settings(
        carrier.port,
        SmsPacingConfig {
            max_per_hour: 100_000,
            min_gap_ms: 150,
            max_jitter_ms: 0,
        },
    );
    s.caller_id.health_min_calls = 4;
    let node = Node::start(s).await;
    let phones = common::sms_numbers_open_now(30, 10 * 60_000);
    let (status, c) = node
        .http(
            "POST",
            "/campaigns",
            Some(
                json!({"name": "health", "channel": "sms", "mode": {"message": "hi"},
                        "callerIds": dids, "callerIdStrategy": {"selection": "health_score"}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    let id = c["id"].as_str().unwrap().to_string();
    node.http(
        "POST",
        &format!("/campaigns/{id}/prospects"),
        Some(json!({ "phones": phones })),
    )
    .await;
    node.http("POST", &format!("/campaigns/{id}/start"), None)
        .await;
    node.wait_stats(&id, 30, |st| st["completed"] == 30 && st["sent"] == 0)
        .await;
    let messages = node.messages(&id).await;
    let from_bad: Vec<usize> = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m["did"] == dids[0].as_str())
        .map(|(i, _)| i)
        .collect();
    assert!(
        (4..=10).contains(&from_bad.len()),
        "the failing DID should send until its health is known, then stop: {from_bad:?}"
    );
    assert!(
        messages[20..].iter().all(|m| m["did"] == dids[1].as_str()),
        "the last third still went out from the failing DID: {from_bad:?}"
    );
    node.shutdown().await;
}
