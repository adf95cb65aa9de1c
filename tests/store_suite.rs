//! The store suite, written against the `Store` trait (any backend must pass it), run on both
//! backends: SQLite with real files, and PostgreSQL started by the test itself from the Debian
//! package (`tests/pg_server`): API keys, campaigns, their lifecycle, prospects, SMS, audio
//! and DIDs, the spec's stats example; plus SQLite's reopening, migrations and database URLs.
//! Attempts, SMS counters, events and PostgreSQL-only tests live in the other `store_*` files.

mod pg_server;
#[macro_use]
mod store_common;

use serde_json::json;
use store_common::*;
use trunx::campaign::{
    Action, AmdResult, CampaignStatus, Channel, Outcome, ProspectEvent, ProspectStatus,
};
use trunx::store::{ClusterSettings, NewCampaign, PageRequest, SqliteStore, Store, StoreError};

fn suite_api_keys(s: &dyn Store) {
    let h1 = [1u8; 32];
    let k = s.create_api_key("ops", &h1, 10).unwrap();
    assert!(k.id.starts_with("key_"));
    assert_eq!(s.authenticate(&h1).unwrap().unwrap().name, "ops");
    assert!(s.authenticate(&[2u8; 32]).unwrap().is_none());
    assert!(matches!(
        s.create_api_key("ops", &[3u8; 32], 11),
        Err(StoreError::Duplicate { .. })
    ));
    let r = s.revoke_api_key("ops", 12).unwrap();
    assert_eq!(r.revoked_at_ms, Some(12));
    assert!(s.authenticate(&h1).unwrap().is_none());
    assert!(matches!(
        s.revoke_api_key("ops", 13),
        Err(StoreError::NotFound { .. })
    ));
    // The name is free again after revocation; revoke by id works.
    let k2 = s.create_api_key("ops", &[4u8; 32], 14).unwrap();
    s.revoke_api_key(&k2.id, 15).unwrap();
    assert_eq!(s.list_api_keys().unwrap().len(), 2);
}

fn suite_campaigns(s: &dyn Store) {
    let c = s.create_campaign(voice("a"), 100).unwrap();
    assert!(c.id.starts_with("camp_"));
    assert_eq!(c.status, CampaignStatus::Created);
    let got = s.get_campaign(&c.id).unwrap();
    assert_eq!(got, c);
    assert_eq!(got.mode["custom"], 1);
    let unnamed = s
        .create_campaign(
            NewCampaign {
                name: None,
                ..voice("")
            },
            101,
        )
        .unwrap();
    assert_eq!(unnamed.name, unnamed.id);
    for i in 0..5 {
        s.create_campaign(voice(&format!("c{i}")), 102 + i).unwrap();
    }
    s.transition_campaign(&c.id, Action::Start, 200).unwrap();
    // Pagination covers every campaign once, in creation order.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let p = s
            .list_campaigns(None, &PageRequest { limit: 2, after })
            .unwrap();
        assert!(p.items.len() <= 2);
        seen.extend(p.items.iter().map(|c| c.id.clone()));
        match p.next_cursor {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(seen[0], c.id);
    let dialing = s
        .list_campaigns(
            Some(CampaignStatus::Dialing),
            &PageRequest {
                limit: 50,
                after: None,
            },
        )
        .unwrap();
    assert_eq!(dialing.items.len(), 1);
    assert_eq!(dialing.items[0].id, c.id);
    assert!(matches!(
        s.get_campaign("camp_nope"),
        Err(StoreError::NotFound { .. })
    ));
}

fn suite_lifecycle(s: &dyn Store) {
    let c = s.create_campaign(voice("life"), 1).unwrap();
    let wrong = s.transition_campaign(&c.id, Action::Pause, 2).unwrap_err();
    assert!(matches!(
        wrong,
        StoreError::WrongStatus {
            current: CampaignStatus::Created,
            ..
        }
    ));
    assert_eq!(
        s.transition_campaign(&c.id, Action::Start, 3)
            .unwrap()
            .status,
        CampaignStatus::Dialing
    );
    assert_eq!(
        s.transition_campaign(&c.id, Action::Pause, 4)
            .unwrap()
            .status,
        CampaignStatus::Paused
    );
    assert_eq!(
        s.transition_campaign(&c.id, Action::Resume, 5)
            .unwrap()
            .status,
        CampaignStatus::Dialing
    );
    let done = s.transition_campaign(&c.id, Action::Cancel, 6).unwrap();
    assert_eq!(done.status, CampaignStatus::Cancelled);
    assert_eq!(done.updated_at_ms, 6);
    for a in [Action::Start, Action::Pause, Action::Resume, Action::Cancel] {
        assert!(matches!(
            s.transition_campaign(&c.id, a, 7),
            Err(StoreError::WrongStatus {
                current: CampaignStatus::Cancelled,
                ..
            })
        ));
    }
}

fn suite_prospects(s: &dyn Store) {
    let c = s.create_campaign(voice("p"), 1).unwrap();
    assert_eq!(s.add_prospects(&c.id, &phones(3, 0), 2).unwrap(), 3);
    // Already present and repeated within the request: added once, not counted.
    let again = vec![
        "+17140000001".to_string(),
        "+17149999999".to_string(),
        "+17149999999".to_string(),
    ];
    assert_eq!(s.add_prospects(&c.id, &again, 3).unwrap(), 1);
    let st = s.stats(&c.id).unwrap();
    assert_eq!((st.total, st.queued), (4, 4));
    let page = s
        .list_prospects(
            &c.id,
            &PageRequest {
                limit: 10,
                after: None,
            },
        )
        .unwrap();
    assert_eq!(page.items.len(), 4);
    let p = &page.items[0];
    assert_eq!(p.phone, "+17140000000");
    assert_eq!(p.status, ProspectStatus::Queued);
    assert_eq!(p.attempts, 0);
    assert!(p.last_outcome.is_none() && p.amd_result.is_none() && p.next_attempt_at_ms.is_none());
    // The same number may be in another campaign.
    let other = s.create_campaign(voice("other"), 4).unwrap();
    assert_eq!(s.add_prospects(&other.id, &phones(3, 0), 5).unwrap(), 3);
    // Only in created or paused.
    s.transition_campaign(&c.id, Action::Start, 6).unwrap();
    assert!(matches!(
        s.add_prospects(&c.id, &phones(1, 100), 7),
        Err(StoreError::WrongStatus {
            current: CampaignStatus::Dialing,
            ..
        })
    ));
    s.transition_campaign(&c.id, Action::Pause, 8).unwrap();
    assert_eq!(s.add_prospects(&c.id, &phones(1, 100), 9).unwrap(), 1);
    assert!(matches!(
        s.add_prospects("camp_nope", &phones(1, 0), 9),
        Err(StoreError::NotFound { .. })
    ));
    // Dialing a prospect needs a dialing campaign.
    let id = &page.items[0].id;
    assert!(matches!(
        s.record_prospect_event(&c.id, id, &ProspectEvent::Dialing, 10),
        Err(StoreError::WrongStatus { .. })
    ));
    s.transition_campaign(&c.id, Action::Resume, 11).unwrap();
    let d = s
        .record_prospect_event(&c.id, id, &ProspectEvent::Dialing, 12)
        .unwrap();
    assert_eq!((d.status, d.attempts), (ProspectStatus::Dialing, 1));
    let r = s
        .record_prospect_event(
            &c.id,
            id,
            &ProspectEvent::RetryLater {
                outcome: Outcome::NoAnswer,
                amd: None,
                next_attempt_at_ms: 99,
            },
            13,
        )
        .unwrap();
    assert_eq!(r.status, ProspectStatus::Queued);
    assert_eq!(r.last_outcome, Some(Outcome::NoAnswer));
    assert_eq!(r.next_attempt_at_ms, Some(99));
    // An event that does not fit the prospect's state changes nothing.
    assert!(matches!(
        s.record_prospect_event(&c.id, id, &ProspectEvent::Sent, 14),
        Err(StoreError::Prospect(_))
    ));
    // Cancel: every queued prospect cancelled in the same transaction; a dialing one stays.
    let second = &page.items[1].id;
    s.record_prospect_event(&c.id, second, &ProspectEvent::Dialing, 15)
        .unwrap();
    s.transition_campaign(&c.id, Action::Cancel, 16).unwrap();
    let st = s.stats(&c.id).unwrap();
    assert_eq!(
        (st.total, st.queued, st.dialing, st.cancelled),
        (5, 0, 1, 4)
    );
    assert!(st.invariants_hold());
    let listed = s
        .list_prospects(
            &c.id,
            &PageRequest {
                limit: 10,
                after: None,
            },
        )
        .unwrap();
    assert_eq!(listed.items[0].status, ProspectStatus::Cancelled);
    assert_eq!(listed.items[1].status, ProspectStatus::Dialing);
    // The in-flight call still reports its outcome.
    s.record_prospect_event(
        &c.id,
        second,
        &ProspectEvent::Finished {
            outcome: Outcome::HumanConnected,
            amd: Some(AmdResult::Human),
        },
        17,
    )
    .unwrap();
    let st = s.stats(&c.id).unwrap();
    assert_eq!((st.completed, st.human_connected, st.dialing), (1, 1, 0));
    assert!(st.invariants_hold());
}

/// The spec's example, reproduced by driving prospects through the store: total 5000 =
/// 2100 queued + 10 dialing + 2890 completed + 0 cancelled; completed 2890 = 284 noAnswer +
/// 42 busy + 2312 voicemail + 203 humanConnected + 49 failed; progress 57.
fn suite_stats_spec_example(s: &dyn Store) {
    let c = s.create_campaign(voice("spec"), 1).unwrap();
    let all = phones(5000, 1_000_000);
    for chunk in all.chunks(2000) {
        s.add_prospects(&c.id, chunk, 2).unwrap();
    }
    s.transition_campaign(&c.id, Action::Start, 3).unwrap();
    let ids = all_prospect_ids(s, &c.id);
    assert_eq!(ids.len(), 5000);
    let plan: [(Outcome, Option<AmdResult>, usize); 5] = [
        (Outcome::NoAnswer, None, 284),
        (Outcome::Busy, None, 42),
        (Outcome::Voicemail, Some(AmdResult::MachineEndBeep), 2312),
        (Outcome::HumanConnected, Some(AmdResult::Human), 203),
        (Outcome::Failed, None, 49),
    ];
    let mut it = ids.iter();
    let mut now = 10;
    for (outcome, amd, n) in plan {
        for id in it.by_ref().take(n) {
            now += 1;
            s.record_prospect_event(&c.id, id, &ProspectEvent::Dialing, now)
                .unwrap();
            s.record_prospect_event(&c.id, id, &ProspectEvent::Finished { outcome, amd }, now)
                .unwrap();
        }
    }
    for id in it.by_ref().take(10) {
        s.record_prospect_event(&c.id, id, &ProspectEvent::Dialing, now)
            .unwrap();
    }
    // 100 of the queued wait for a retry: they count as queued, not as noAnswer.
    for id in it.by_ref().take(100) {
        s.record_prospect_event(&c.id, id, &ProspectEvent::Dialing, now)
            .unwrap();
        s.record_prospect_event(
            &c.id,
            id,
            &ProspectEvent::RetryLater {
                outcome: Outcome::NoAnswer,
                amd: None,
                next_attempt_at_ms: now + 14_400_000,
            },
            now,
        )
        .unwrap();
    }
    let st = s.stats(&c.id).unwrap();
    assert_eq!(st.total, 5000);
    assert_eq!(st.queued, 2100);
    assert_eq!(st.dialing, 10);
    assert_eq!(st.completed, 2890);
    assert_eq!(st.cancelled, 0);
    assert_eq!(st.no_answer, 284);
    assert_eq!(st.busy, 42);
    assert_eq!(st.voicemail, 2312);
    assert_eq!(st.human_connected, 203);
    assert_eq!(st.failed, 49);
    assert_eq!((st.sending, st.sent, st.delivered), (0, 0, 0));
    assert_eq!(st.progress(), 57);
    assert!(st.invariants_hold());
}

fn suite_sms(s: &dyn Store) {
    let c = s
        .create_campaign(
            NewCampaign {
                name: Some("sms".into()),
                channel: Channel::Sms,
                mode: json!({"message": "hi"}),
                caller_ids: vec![],
                caller_id_strategy: json!({}),
                schedule: Some(json!({"timezone": "auto"})),
                webhook_url: None,
            },
            1,
        )
        .unwrap();
    s.add_prospects(&c.id, &phones(3, 0), 2).unwrap();
    s.transition_campaign(&c.id, Action::Start, 3).unwrap();
    let ids = all_prospect_ids(s, &c.id);
    for id in &ids[..2] {
        s.record_prospect_event(&c.id, id, &ProspectEvent::Sending, 4)
            .unwrap();
        s.record_prospect_event(&c.id, id, &ProspectEvent::Sent, 5)
            .unwrap();
    }
    s.record_prospect_event(
        &c.id,
        &ids[0],
        &ProspectEvent::Finished {
            outcome: Outcome::Delivered,
            amd: None,
        },
        6,
    )
    .unwrap();
    let st = s.stats(&c.id).unwrap();
    assert_eq!(
        (st.total, st.queued, st.sent, st.completed, st.delivered),
        (3, 1, 1, 1, 1)
    );
    assert!(st.invariants_hold());
    assert_eq!(
        s.get_campaign(&c.id).unwrap().schedule,
        Some(json!({"timezone": "auto"}))
    );
}

fn suite_audio_and_dids(s: &dyn Store) {
    let a = s
        .create_audio("vm.wav", "audio/wav", b"RIFF....", 1.5, 1)
        .unwrap();
    assert!(a.id.starts_with("aud_"));
    let (meta, data) = s.get_audio_file(&a.id).unwrap();
    assert_eq!((meta, data.as_slice()), (a.clone(), &b"RIFF...."[..]));
    assert!(matches!(
        s.get_audio("aud_nope"),
        Err(StoreError::NotFound { .. })
    ));
    let added = s.add_dids(&phones(3, 0), 2).unwrap();
    assert_eq!(added.len(), 3);
    assert_eq!(s.add_dids(&phones(4, 0), 3).unwrap().len(), 1);
    let all = s
        .list_dids(
            None,
            &PageRequest {
                limit: 2,
                after: None,
            },
        )
        .unwrap();
    assert_eq!(all.items.len(), 2);
    assert!(all.next_cursor.is_some());
    let active = s
        .list_dids(
            Some(trunx::store::DidState::Active),
            &PageRequest {
                limit: 50,
                after: None,
            },
        )
        .unwrap();
    assert_eq!(active.items.len(), 4);
    assert_eq!(active.items[0].health_score, 100.0);
    let burned = s
        .list_dids(
            Some(trunx::store::DidState::Burned),
            &PageRequest {
                limit: 50,
                after: None,
            },
        )
        .unwrap();
    assert!(burned.items.is_empty());
}

on_both_backends! {
    fn passes_the_store_suite(store) {
        let s: &dyn Store = store;
        suite_api_keys(s);
        suite_campaigns(s);
        suite_lifecycle(s);
        suite_prospects(s);
        suite_sms(s);
        suite_audio_and_dids(s);
    }
}

on_both_backends! {
    fn reproduces_the_spec_stats_example(store) {
        suite_stats_spec_example(store);
    }
}

#[test]
fn writes_survive_reopening_and_migrations_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let id = {
        let s = SqliteStore::open(&path, 1).unwrap();
        assert_eq!(s.schema_version().unwrap(), 7);
        let c = s.create_campaign(voice("durable"), 1).unwrap();
        s.add_prospects(&c.id, &phones(2, 0), 2).unwrap();
        c.id
    };
    let s = SqliteStore::open(&path, 2).unwrap();
    assert_eq!(s.schema_version().unwrap(), 7);
    assert_eq!(s.get_campaign(&id).unwrap().name, "durable");
    assert_eq!(s.stats(&id).unwrap().total, 2);
    let mode: String = rusqlite_journal_mode(&path);
    assert_eq!(mode, "wal");
}

fn rusqlite_journal_mode(path: &std::path::Path) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn database_urls() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("u.db").display());
    let node = ClusterSettings::single("n1");
    assert!(trunx::store::open(&url, 1, &node).is_ok());
    assert!(matches!(
        trunx::store::open("mysql://x", 1, &node),
        Err(StoreError::Url { .. })
    ));
    assert!(matches!(
        trunx::store::open("sqlite://", 1, &node),
        Err(StoreError::Url { .. })
    ));
    if let Some(pg) = pg_server::database_or_skip("database_urls (postgres://)") {
        let s = trunx::store::open(&pg, 1, &node).unwrap();
        assert!(s.list_nodes().unwrap().is_empty());
    }
}
