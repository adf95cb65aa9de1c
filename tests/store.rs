//! The store suite, written against the `Store` trait (any backend must pass it), run on both
//! backends: SQLite with real files, and PostgreSQL started by the test itself from the Debian
//! package (`tests/pg_server`). `on_both_backends!` makes each test twice, `NAME::sqlite` and
//! `NAME::postgres`. PostgreSQL-only tests at the end: leases, shared pacing, dead nodes.

mod pg_server;

use serde_json::json;
use trunx::campaign::{
    Action, AmdResult, CampaignStatus, Channel, Outcome, ProspectEvent, ProspectStatus,
};
use trunx::store::{
    ClusterSettings, NewCampaign, PageRequest, PgStore, SqliteStore, Store, StoreError,
};

fn temp_store() -> (tempfile::TempDir, SqliteStore) {
    // /dev/shm when present: the suite commits thousands of transactions with fsync.
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let store = SqliteStore::open(&dir.path().join("t.db"), 42).unwrap();
    (dir, store)
}

/// A PostgreSQL store on a fresh database (node `n1`), or `None` after a loud SKIPPED line.
fn pg_store(test: &str) -> Option<PgStore> {
    let url = pg_server::database_or_skip(test)?;
    Some(PgStore::open(&url, 42, ClusterSettings::single("n1")).unwrap())
}

/// Each `fn NAME(s) { ... }` becomes two tests, `NAME::sqlite` and `NAME::postgres`, with
/// `s: &dyn Store` on a fresh store of each backend.
macro_rules! on_both_backends {
    ($(fn $name:ident($s:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn sqlite() {
                let (_d, store) = temp_store();
                let $s: &dyn Store = &store;
                $body
            }
            #[test]
            fn postgres() {
                let Some(store) = pg_store(concat!(stringify!($name), "::postgres")) else {
                    return;
                };
                let $s: &dyn Store = &store;
                $body
            }
        }
    )*};
}

fn voice(name: &str) -> NewCampaign {
    NewCampaign {
        name: Some(name.to_string()),
        channel: Channel::Voice,
        mode: json!({"ai": true, "custom": 1}),
        caller_ids: vec!["+17145550000".into()],
        caller_id_strategy: json!({"selection": "sticky"}),
        schedule: None,
        webhook_url: None,
    }
}

fn phones(n: usize, base: u64) -> Vec<String> {
    (0..n)
        .map(|i| format!("+1714{:07}", base + i as u64))
        .collect()
}

fn all_prospect_ids(s: &dyn Store, campaign: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .list_prospects(campaign, &PageRequest { limit: 1000, after })
            .unwrap();
        ids.extend(page.items.iter().map(|p| p.id.clone()));
        match page.next_cursor {
            Some(c) => after = Some(c),
            None => return ids,
        }
    }
}

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

fn voice_with_retries(max_retries: u32) -> NewCampaign {
    NewCampaign {
        mode: json!({"max_retries": max_retries, "retry_delay": "1h"}),
        ..voice("dialer")
    }
}

on_both_backends! {
    fn attempts_are_recorded_before_the_call_and_once(s) {
        let c = s.create_campaign(voice_with_retries(1), 0).unwrap();
        s.add_prospects(&c.id, &phones(3, 100), 1).unwrap();
        let due = s.due_prospects(&c.id, 2, 10).unwrap();
        assert_eq!(
            due.len(),
            3,
            "queued prospects are due; only dialing is refused"
        );
        // Not dialing yet: no attempt can begin.
        let ids = all_prospect_ids(s, &c.id);
        assert!(matches!(
            s.begin_attempt(&c.id, &ids[0], "+17145550000", 2),
            Err(StoreError::WrongStatus { .. })
        ));
        s.transition_campaign(&c.id, Action::Start, 3).unwrap();
        let due = s.due_prospects(&c.id, 4, 10).unwrap();
        assert_eq!(due.len(), 3);
        let a = s
            .begin_attempt(&c.id, &due[0].id, "+17145550000", 5)
            .unwrap();
        assert_eq!((a.number, a.ended_at_ms), (1, None));
        assert_eq!(s.stats(&c.id).unwrap().dialing, 1);
        // A second live call to the same prospect is refused.
        assert!(
            s.begin_attempt(&c.id, &due[0].id, "+17145550000", 6)
                .is_err()
        );
        assert_eq!(s.live_attempts().unwrap().len(), 1);
        // Busy with a retry left: back to the queue with a turn an hour later.
        let result = trunx::store::AttemptResult {
            outcome: Some(Outcome::Busy),
            sip_status: Some(486),
            ..Default::default()
        };
        let retry = ProspectEvent::RetryLater {
            outcome: Outcome::Busy,
            amd: None,
            next_attempt_at_ms: 3_600_010,
        };
        let p = s.finish_attempt(&a.id, &result, &retry, 10).unwrap();
        assert_eq!(p.status, ProspectStatus::Queued);
        assert_eq!(p.wait_reason.as_deref(), Some("retry after busy"));
        // Ending it twice is refused and counts nothing twice.
        assert!(s.finish_attempt(&a.id, &result, &retry, 11).is_err());
        let st = s.stats(&c.id).unwrap();
        assert_eq!((st.queued, st.dialing, st.busy), (3, 0, 0));
        // Not due before its turn.
        assert_eq!(s.due_prospects(&c.id, 20, 10).unwrap().len(), 2);
        assert_eq!(s.due_prospects(&c.id, 3_600_010, 10).unwrap().len(), 3);
        let page = s
            .list_attempts(
                &c.id,
                &PageRequest {
                    limit: 10,
                    after: None,
                },
            )
            .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].result.sip_status, Some(486));
        assert_eq!(page.items[0].ended_at_ms, Some(10));
    }
}

on_both_backends! {
    fn deferral_moves_the_turn_with_a_reason_and_counts_no_attempt(s) {
        let c = s.create_campaign(voice_with_retries(0), 0).unwrap();
        s.add_prospects(&c.id, &phones(1, 200), 1).unwrap();
        s.transition_campaign(&c.id, Action::Start, 2).unwrap();
        let p = &s.due_prospects(&c.id, 3, 1).unwrap()[0];
        let d = s
            .defer_prospect(
                &c.id,
                &p.id,
                50_000,
                "outside 08:00-21:00 in America/Chicago",
                3,
            )
            .unwrap();
        assert_eq!(d.attempts, 0);
        assert_eq!(d.next_attempt_at_ms, Some(50_000));
        assert!(d.wait_reason.unwrap().contains("America/Chicago"));
        assert!(s.due_prospects(&c.id, 49_999, 1).unwrap().is_empty());
        assert_eq!(s.due_prospects(&c.id, 50_000, 1).unwrap().len(), 1);
        assert_eq!(s.stats(&c.id).unwrap().queued, 1);
    }
}

on_both_backends! {
    fn a_campaign_completes_when_its_last_call_ends_and_cancel_takes_no_retry(s) {
        let c = s.create_campaign(voice_with_retries(3), 0).unwrap();
        s.add_prospects(&c.id, &phones(2, 300), 1).unwrap();
        s.transition_campaign(&c.id, Action::Start, 2).unwrap();
        let due = s.due_prospects(&c.id, 3, 10).unwrap();
        let a1 = s
            .begin_attempt(&c.id, &due[0].id, "+17145550000", 4)
            .unwrap();
        let a2 = s
            .begin_attempt(&c.id, &due[1].id, "+17145550000", 4)
            .unwrap();
        let vm = trunx::store::AttemptResult {
            outcome: Some(Outcome::Voicemail),
            amd_result: Some(AmdResult::MachineEndBeep),
            machine_end: Some("beep".into()),
            ..Default::default()
        };
        s.finish_attempt(
            &a1.id,
            &vm,
            &ProspectEvent::Finished {
                outcome: Outcome::Voicemail,
                amd: Some(AmdResult::MachineEndBeep),
            },
            5,
        )
        .unwrap();
        assert_eq!(
            s.get_campaign(&c.id).unwrap().status,
            CampaignStatus::Dialing
        );
        // Cancelled while the second call is live: it finishes and counts, with no retry.
        s.transition_campaign(&c.id, Action::Cancel, 6).unwrap();
        let p = s
            .finish_attempt(
                &a2.id,
                &trunx::store::AttemptResult {
                    outcome: Some(Outcome::NoAnswer),
                    ..Default::default()
                },
                &ProspectEvent::RetryLater {
                    outcome: Outcome::NoAnswer,
                    amd: None,
                    next_attempt_at_ms: 100,
                },
                7,
            )
            .unwrap();
        assert_eq!(p.status, ProspectStatus::Completed);
        let st = s.stats(&c.id).unwrap();
        assert_eq!(
            (
                st.total,
                st.completed,
                st.voicemail,
                st.no_answer,
                st.queued,
                st.dialing
            ),
            (2, 2, 1, 1, 0, 0)
        );
        assert!(st.invariants_hold());

        // A campaign whose calls all end completes by itself.
        let c2 = s.create_campaign(voice_with_retries(0), 10).unwrap();
        s.add_prospects(&c2.id, &phones(1, 400), 11).unwrap();
        s.transition_campaign(&c2.id, Action::Start, 12).unwrap();
        assert!(!s.complete_if_done(&c2.id, 12).unwrap());
        let p = &s.due_prospects(&c2.id, 13, 1).unwrap()[0];
        let a = s.begin_attempt(&c2.id, &p.id, "+17145550000", 13).unwrap();
        s.finish_attempt(
            &a.id,
            &trunx::store::AttemptResult::default(),
            &ProspectEvent::Finished {
                outcome: Outcome::HumanConnected,
                amd: Some(AmdResult::Human),
            },
            14,
        )
        .unwrap();
        assert_eq!(
            s.get_campaign(&c2.id).unwrap().status,
            CampaignStatus::Completed
        );
    }
}

#[test]
fn attempts_left_live_by_a_crash_are_resolved_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let (cid, pids) = {
        let s = SqliteStore::open(&path, 1).unwrap();
        let c = s.create_campaign(voice_with_retries(1), 0).unwrap();
        s.add_prospects(&c.id, &phones(2, 500), 1).unwrap();
        s.transition_campaign(&c.id, Action::Start, 2).unwrap();
        let due = s.due_prospects(&c.id, 3, 10).unwrap();
        for p in &due {
            s.begin_attempt(&c.id, &p.id, "+17145550000", 4).unwrap();
        }
        (c.id, due.into_iter().map(|p| p.id).collect::<Vec<_>>())
        // dropped without finishing: what a kill -9 leaves on disk
    };
    let s = SqliteStore::open(&path, 2).unwrap();
    assert_eq!(s.live_attempts().unwrap().len(), 2);
    let n = trunx::runtime::campaigns::dialer::recover_interrupted(&s, 1_000).unwrap();
    assert_eq!(n, 2);
    assert!(s.live_attempts().unwrap().is_empty());
    let st = s.stats(&cid).unwrap();
    // One retry left: both back in the queue, nothing counted as an outcome yet.
    assert_eq!((st.queued, st.dialing, st.failed), (2, 0, 0));
    let due = s.due_prospects(&cid, 1_000 + 3_600_000, 10).unwrap();
    assert_eq!(due.len(), 2);
    for p in &due {
        assert!(pids.contains(&p.id));
        assert_eq!(p.attempts, 1);
    }
    let attempts = s
        .list_attempts(
            &cid,
            &PageRequest {
                limit: 10,
                after: None,
            },
        )
        .unwrap();
    assert!(
        attempts
            .items
            .iter()
            .all(|a| a.result.cause.as_deref() == Some("interrupted")
                && a.result.outcome == Some(Outcome::Failed))
    );
}

on_both_backends! {
    fn pause_lets_calls_in_flight_finish_and_count_and_resume_continues(s) {
        let c = s.create_campaign(voice_with_retries(0), 0).unwrap();
        s.add_prospects(&c.id, &phones(3, 600), 1).unwrap();
        s.transition_campaign(&c.id, Action::Start, 2).unwrap();
        let due = s.due_prospects(&c.id, 3, 10).unwrap();
        let live = s
            .begin_attempt(&c.id, &due[0].id, "+17145550000", 4)
            .unwrap();
        s.transition_campaign(&c.id, Action::Pause, 5).unwrap();
        // No new call while paused...
        assert!(matches!(
            s.begin_attempt(&c.id, &due[1].id, "+17145550000", 6),
            Err(StoreError::WrongStatus { .. })
        ));
        // ...but the call in flight ends and counts, and the paused campaign does not complete.
        s.finish_attempt(
            &live.id,
            &trunx::store::AttemptResult::default(),
            &ProspectEvent::Finished {
                outcome: Outcome::Busy,
                amd: None,
            },
            7,
        )
        .unwrap();
        let st = s.stats(&c.id).unwrap();
        assert_eq!((st.busy, st.completed, st.queued, st.dialing), (1, 1, 2, 0));
        assert_eq!(
            s.get_campaign(&c.id).unwrap().status,
            CampaignStatus::Paused
        );
        assert!(!s.complete_if_done(&c.id, 8).unwrap());
        s.transition_campaign(&c.id, Action::Resume, 9).unwrap();
        for p in s.due_prospects(&c.id, 10, 10).unwrap() {
            let a = s.begin_attempt(&c.id, &p.id, "+17145550000", 10).unwrap();
            s.finish_attempt(
                &a.id,
                &trunx::store::AttemptResult::default(),
                &ProspectEvent::Finished {
                    outcome: Outcome::HumanConnected,
                    amd: Some(AmdResult::Human),
                },
                11,
            )
            .unwrap();
        }
        assert_eq!(
            s.get_campaign(&c.id).unwrap().status,
            CampaignStatus::Completed
        );
        let st = s.stats(&c.id).unwrap();
        assert_eq!((st.completed, st.human_connected, st.busy), (3, 2, 1));
        assert!(st.invariants_hold());
    }
}

// ---------------------------------------------------------------------------------------------
// SMS messages and the suppression list

fn sms(name: &str) -> NewCampaign {
    NewCampaign {
        name: Some(name.to_string()),
        channel: Channel::Sms,
        mode: json!({"message": "hello"}),
        caller_ids: vec!["+17145550000".into(), "+17145550001".into()],
        caller_id_strategy: json!({}),
        schedule: None,
        webhook_url: None,
    }
}

fn all_prospects(s: &dyn Store, campaign: &str) -> Vec<trunx::store::Prospect> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .list_prospects(campaign, &PageRequest { limit: 7, after })
            .unwrap();
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => after = Some(c),
            None => return out,
        }
    }
}

/// The stored counters equal the sum over a scan of the prospects (an independent
/// computation from the incremental updates), and the spec's invariants hold.
fn assert_counters_exact(s: &dyn Store, campaign: &str) -> trunx::campaign::Counters {
    use trunx::campaign::prospect::{ProspectState, contribution};
    let mut scanned = trunx::campaign::Counters::default();
    for p in all_prospects(s, campaign) {
        scanned.add(&contribution(ProspectState {
            status: p.status,
            last_outcome: p.last_outcome,
        }));
    }
    let stored = s.stats(campaign).unwrap();
    assert_eq!(
        stored, scanned,
        "stored counters drifted from the prospects"
    );
    assert!(stored.invariants_hold(), "{stored:?}");
    stored
}

fn counts(c: &trunx::campaign::Counters) -> [i64; 8] {
    [
        c.total,
        c.queued,
        c.sending,
        c.sent,
        c.delivered,
        c.failed,
        c.cancelled,
        c.completed,
    ]
}

on_both_backends! {
    fn sms_messages_keep_every_counter_exact_through_every_transition(s) {
        use trunx::store::{MessageStatus, ReceiptOutcome};
        let c = s.create_campaign(sms("drip"), 0).unwrap();
        let numbers = phones(20, 500);
        s.add_prospects(&c.id, &numbers, 1).unwrap();
        // Not before start.
        assert!(matches!(
            s.begin_message(&c.id, &numbers[0], "+17145550000", 1, 2),
            Err(StoreError::WrongStatus { .. })
        ));
        s.transition_campaign(&c.id, Action::Start, 2).unwrap();
        // total queued sending sent delivered failed cancelled completed
        assert_eq!(
            counts(&assert_counters_exact(s, &c.id)),
            [20, 20, 0, 0, 0, 0, 0, 0]
        );

        // Every prospect starts a message; prospect 0 needs 2 parts.
        let mut msgs = Vec::new();
        for (i, phone) in numbers.iter().enumerate() {
            let did = if i % 2 == 0 {
                "+17145550000"
            } else {
                "+17145550001"
            };
            let parts = if i == 0 { 2 } else { 1 };
            let m = s
                .begin_message(&c.id, phone, did, parts, 10 + i as i64)
                .unwrap();
            assert!(m.id.starts_with("msg_"));
            assert_eq!(
                (m.status, m.parts, m.phone.as_str()),
                (MessageStatus::Sending, parts, phone.as_str())
            );
            let st = assert_counters_exact(s, &c.id);
            assert_eq!((st.queued, st.sending), (19 - i as i64, i as i64 + 1));
            msgs.push(m);
        }
        // A prospect with a live message cannot get a second one.
        assert!(matches!(
            s.begin_message(&c.id, &numbers[3], "+17145550000", 1, 40),
            Err(StoreError::Prospect(_))
        ));
        assert!(matches!(
            s.begin_message(&c.id, "+19999999999", "+17145550000", 1, 40),
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(s.live_messages().unwrap().len(), 20);

        // The connection drops before prospects 18 and 19 got their submit answer: back to the
        // queue, attempt not counted, then sent again as new messages.
        for m in &msgs[18..] {
            let p = s.message_requeued(&m.id, 50).unwrap();
            assert_eq!((p.status, p.attempts), (ProspectStatus::Queued, 0));
            assert_counters_exact(s, &c.id);
        }
        assert_eq!(
            counts(&assert_counters_exact(s, &c.id)),
            [20, 2, 18, 0, 0, 0, 0, 0]
        );
        assert!(matches!(
            s.message_requeued(&msgs[18].id, 51),
            Err(StoreError::MessageState {
                status: MessageStatus::Requeued,
                ..
            })
        ));
        for i in 18..20 {
            msgs[i] = s
                .begin_message(&c.id, &numbers[i], "+17145550001", 1, 60)
                .unwrap();
        }
        assert_eq!(
            counts(&assert_counters_exact(s, &c.id)),
            [20, 0, 20, 0, 0, 0, 0, 0]
        );

        // Accepted: one carrier id per part, or refused.
        assert!(matches!(
            s.message_accepted(&msgs[0].id, &["only-one".to_string()], 70),
            Err(StoreError::MessageState { .. })
        ));
        for (i, m) in msgs.iter().enumerate() {
            let ids: Vec<String> = (0..m.parts).map(|k| format!("smsc-{i}-{k}")).collect();
            let accepted = s.message_accepted(&m.id, &ids, 70 + i as i64).unwrap();
            assert_eq!(accepted.status, MessageStatus::Sent);
            assert_eq!(accepted.smpp_message_ids, ids);
            let st = assert_counters_exact(s, &c.id);
            assert_eq!((st.sending, st.sent), (19 - i as i64, i as i64 + 1));
        }
        assert!(matches!(
            s.message_accepted(&msgs[1].id, &["again".to_string()], 95),
            Err(StoreError::MessageState {
                status: MessageStatus::Sent,
                ..
            })
        ));

        // Two parts: the first receipt alone changes no counter.
        match s
            .message_receipt("smsc-0-0", true, Some("000"), 100)
            .unwrap()
        {
            ReceiptOutcome::PartDelivered(m) => assert_eq!(m.status, MessageStatus::Sent),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            counts(&assert_counters_exact(s, &c.id)),
            [20, 0, 0, 20, 0, 0, 0, 0]
        );
        match s
            .message_receipt("smsc-0-1", true, Some("000"), 101)
            .unwrap()
        {
            ReceiptOutcome::Finished(m) => {
                assert_eq!(
                    (m.status, m.receipt_at_ms),
                    (MessageStatus::Delivered, Some(101))
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            counts(&assert_counters_exact(s, &c.id)),
            [20, 0, 0, 19, 1, 0, 0, 1]
        );
        // An undeliverable receipt fails the message with the carrier's error.
        match s
            .message_receipt("smsc-1-0", false, Some("001"), 102)
            .unwrap()
        {
            ReceiptOutcome::Finished(m) => {
                assert_eq!(m.status, MessageStatus::Failed);
                assert_eq!(m.error_code.as_deref(), Some("001"));
            }
            other => panic!("{other:?}"),
        }
        // A duplicate receipt changes nothing.
        assert!(matches!(
            s.message_receipt("smsc-1-0", true, None, 103).unwrap(),
            ReceiptOutcome::AlreadyFinal(_)
        ));
        assert!(matches!(
            s.message_receipt("nobody-knows", true, None, 103),
            Err(StoreError::NotFound { .. })
        ));
        // No receipt ever came: the runtime fails it.
        let failed = s
            .message_failed(&msgs[2].id, "receipt_timeout", 104)
            .unwrap();
        assert_eq!(failed.error_code.as_deref(), Some("receipt_timeout"));
        assert!(matches!(
            s.message_failed(&msgs[2].id, "again", 105),
            Err(StoreError::MessageState { .. })
        ));
        assert_eq!(
            counts(&assert_counters_exact(s, &c.id)),
            [20, 0, 0, 17, 1, 2, 0, 3]
        );
        assert_eq!(
            s.get_campaign(&c.id).unwrap().status,
            CampaignStatus::Dialing
        );

        // The rest are delivered; the campaign completes with the last one, not before.
        for i in 3..20 {
            let out = s
                .message_receipt(&format!("smsc-{i}-0"), true, Some("000"), 110 + i as i64)
                .unwrap();
            assert!(matches!(out, ReceiptOutcome::Finished(_)));
            let st = assert_counters_exact(s, &c.id);
            assert_eq!(st.delivered, i as i64 - 1);
            assert_eq!(st.progress(), 100 * (i as i64 + 1) / 20);
            let status = s.get_campaign(&c.id).unwrap().status;
            let expect = if i == 19 {
                CampaignStatus::Completed
            } else {
                CampaignStatus::Dialing
            };
            assert_eq!(status, expect, "after receipt {i}");
        }
        assert_eq!(
            counts(&assert_counters_exact(s, &c.id)),
            [20, 0, 0, 0, 18, 2, 0, 20]
        );
        assert!(s.live_messages().unwrap().is_empty());

        // The audit: 22 rows (two requeued), in order, paged; the prospect shows the outcome.
        let mut rows = Vec::new();
        let mut after = None;
        loop {
            let p = s
                .list_messages(&c.id, &PageRequest { limit: 5, after })
                .unwrap();
            assert!(p.items.len() <= 5);
            rows.extend(p.items);
            match p.next_cursor {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(rows.len(), 22);
        let requeued = rows
            .iter()
            .filter(|m| m.status == MessageStatus::Requeued)
            .count();
        assert_eq!(requeued, 2);
        assert_eq!(rows[0].smpp_message_ids, vec!["smsc-0-0", "smsc-0-1"]);
        assert_eq!(rows[0].submitted_at_ms, Some(70));
        assert_eq!(s.messages_since(60).unwrap().len(), 2);
        let p0 = &all_prospects(s, &c.id)[0];
        assert_eq!(
            (p0.last_outcome, p0.attempts),
            (Some(Outcome::Delivered), 1)
        );

        // Messages only for SMS campaigns.
        let v = s.create_campaign(voice("calls"), 200).unwrap();
        s.add_prospects(&v.id, &numbers[..1], 201).unwrap();
        s.transition_campaign(&v.id, Action::Start, 202).unwrap();
        assert!(matches!(
            s.begin_message(&v.id, &numbers[0], "+17145550000", 1, 203),
            Err(StoreError::WrongChannel { .. })
        ));
    }
}

on_both_backends! {
    fn suppressed_numbers_are_cancelled_everywhere_and_never_claimed(s) {
        use trunx::store::SUPPRESSED_REASON;
        let numbers = phones(4, 900);
        let (x, y, z) = (&numbers[0], &numbers[1], &numbers[2]);
        // X is queued in a running voice campaign, a running SMS campaign and a created one.
        let a = s.create_campaign(voice_with_retries(2), 0).unwrap();
        let b = s.create_campaign(sms("b"), 0).unwrap();
        let created = s.create_campaign(voice("later"), 0).unwrap();
        s.add_prospects(&a.id, &numbers, 1).unwrap();
        s.add_prospects(&b.id, &numbers, 1).unwrap();
        s.add_prospects(&created.id, &numbers[..1], 1).unwrap();
        s.transition_campaign(&a.id, Action::Start, 2).unwrap();
        s.transition_campaign(&b.id, Action::Start, 2).unwrap();
        // Y is in a call in A; Z has a message being submitted in B.
        let y_prospect = all_prospects(s, &a.id)
            .into_iter()
            .find(|p| &p.phone == y)
            .unwrap();
        let attempt = s
            .begin_attempt(&a.id, &y_prospect.id, "+17145550000", 3)
            .unwrap();
        let z_message = s.begin_message(&b.id, z, "+17145550000", 1, 3).unwrap();

        let out = s
            .suppress(
                &[x.clone(), y.clone(), z.clone()],
                "opt_out_sms",
                "smpp",
                10,
            )
            .unwrap();
        assert_eq!(out.added, 3);
        // X in A, B and the created campaign, Y in B, Z in A: every queued one.
        assert_eq!(out.prospects_cancelled, 5);
        for (id, cancelled) in [(&a.id, 2), (&b.id, 2), (&created.id, 1)] {
            let st = assert_counters_exact(s, id);
            assert_eq!(st.cancelled, cancelled, "{id}");
            let px = all_prospects(s, id)
                .into_iter()
                .find(|p| &p.phone == x)
                .unwrap();
            assert_eq!(px.status, ProspectStatus::Cancelled);
            assert_eq!(px.wait_reason.as_deref(), Some(SUPPRESSED_REASON));
        }
        assert!(s.is_suppressed(x).unwrap());
        assert!(!s.is_suppressed(&numbers[3]).unwrap());
        let due: Vec<String> = s
            .due_prospects(&a.id, 100, 10)
            .unwrap()
            .into_iter()
            .map(|p| p.phone)
            .collect();
        assert_eq!(
            due,
            vec![numbers[3].clone()],
            "only the number never suppressed"
        );

        // Y's call ends with a retry: it does not come back to the queue.
        let p = s
            .finish_attempt(
                &attempt.id,
                &trunx::store::AttemptResult {
                    outcome: Some(Outcome::NoAnswer),
                    ..Default::default()
                },
                &ProspectEvent::RetryLater {
                    outcome: Outcome::NoAnswer,
                    amd: None,
                    next_attempt_at_ms: 1000,
                },
                20,
            )
            .unwrap();
        assert_eq!(p.status, ProspectStatus::Cancelled);
        assert_eq!(p.wait_reason.as_deref(), Some(SUPPRESSED_REASON));
        assert_eq!(assert_counters_exact(s, &a.id).cancelled, 3);
        // Z's submit got no answer before a disconnect: cancelled instead of requeued.
        let p = s.message_requeued(&z_message.id, 21).unwrap();
        assert_eq!(p.status, ProspectStatus::Cancelled);
        assert_eq!(assert_counters_exact(s, &b.id).cancelled, 3);
        // A claim of a suppressed number is refused (the SMS claim goes by number).
        assert!(matches!(
            s.begin_message(&b.id, y, "+17145550000", 1, 22),
            Err(StoreError::Prospect(_))
        ));

        // Added later to another campaign: accepted, counted, but cancelled at once.
        let c = s.create_campaign(sms("c"), 30).unwrap();
        assert_eq!(s.add_prospects(&c.id, &numbers, 31).unwrap(), 4);
        let st = assert_counters_exact(s, &c.id);
        assert_eq!((st.total, st.queued, st.cancelled), (4, 1, 3));

        // A running campaign whose last queued prospect is suppressed completes.
        let d = s.create_campaign(sms("d"), 40).unwrap();
        s.add_prospects(&d.id, &numbers[3..], 41).unwrap();
        s.transition_campaign(&d.id, Action::Start, 42).unwrap();
        let again = s
            .suppress(&[numbers[3].clone(), x.clone()], "api", "api", 43)
            .unwrap();
        assert_eq!(again.added, 1, "X was already listed");
        assert_eq!(
            s.get_campaign(&d.id).unwrap().status,
            CampaignStatus::Completed
        );
        assert_eq!(assert_counters_exact(s, &d.id).cancelled, 1);

        // The list, paged, keeps the first reason of a number.
        let mut listed = Vec::new();
        let mut after = None;
        loop {
            let p = s.list_suppressed(&PageRequest { limit: 3, after }).unwrap();
            listed.extend(p.items);
            match p.next_cursor {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(listed.len(), 4);
        assert_eq!(
            (
                listed[0].phone.as_str(),
                listed[0].reason.as_str(),
                listed[0].source.as_str()
            ),
            (x.as_str(), "opt_out_sms", "smpp")
        );
        assert_eq!(listed[0].created_at_ms, 10);

        // Taking a number off the list lets new prospects in; cancelled ones stay cancelled.
        assert!(s.unsuppress(x).unwrap());
        assert!(!s.unsuppress(x).unwrap());
        assert!(!s.is_suppressed(x).unwrap());
        let e = s.create_campaign(sms("e"), 50).unwrap();
        s.add_prospects(&e.id, &numbers[..1], 51).unwrap();
        assert_eq!(assert_counters_exact(s, &e.id).queued, 1);
        // A lost its last number to the second suppression too; nothing came back.
        let st = assert_counters_exact(s, &a.id);
        assert_eq!((st.cancelled, st.queued), (4, 0));
    }
}

on_both_backends! {
    fn state_changes_write_their_events_and_outbox_rows_in_the_same_transaction(s) {
        let c = s
            .create_campaign(
                NewCampaign {
                    webhook_url: Some("https://hooks.example.com/t".into()),
                    ..voice_with_retries(0)
                },
                0,
            )
            .unwrap();
        assert_eq!(
            c.webhook_url.as_deref(),
            Some("https://hooks.example.com/t")
        );
        assert_eq!(
            s.get_campaign(&c.id).unwrap().webhook_url.as_deref(),
            Some("https://hooks.example.com/t")
        );
        s.add_prospects(&c.id, &phones(1, 300), 1).unwrap();
        assert_eq!(s.last_event_seq().unwrap(), 0);
        s.transition_campaign(&c.id, Action::Start, 2).unwrap();
        // A refused transition writes nothing.
        assert!(s.transition_campaign(&c.id, Action::Start, 3).is_err());
        let p = s.due_prospects(&c.id, 3, 1).unwrap().remove(0);
        let a = s.begin_attempt(&c.id, &p.id, "+17145550000", 4).unwrap();
        let result = trunx::store::AttemptResult {
            outcome: Some(Outcome::Voicemail),
            sip_status: Some(200),
            amd_result: Some(AmdResult::MachineEndBeep),
            amd_ms: Some(2_400),
            ..Default::default()
        };
        let done = ProspectEvent::Finished {
            outcome: Outcome::Voicemail,
            amd: Some(AmdResult::MachineEndBeep),
        };
        s.finish_attempt(&a.id, &result, &done, 9).unwrap();
        let events = s.events_after(0, 100).unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "campaign.status",
                "attempt.started",
                "attempt.ended",
                "campaign.status"
            ]
        );
        assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(s.last_event_seq().unwrap(), events[3].seq);
        assert_eq!(events[0].data["status"], "dialing");
        assert_eq!(events[1].data["attemptId"], a.id.as_str());
        assert_eq!(events[2].data["outcome"], "voicemail");
        assert_eq!(events[2].data["amdResult"], "machine_end_beep");
        assert_eq!(events[2].data["amdMs"], 2_400);
        assert_eq!(events[3].data["status"], "completed");
        assert_eq!(events[3].data["action"], "complete");
        assert!(
            events
                .iter()
                .all(|e| e.id.starts_with("evt_") && e.id.len() == 28)
        );
        assert_eq!(s.events_after(events[1].seq, 100).unwrap().len(), 2);

        // The outbox: every event pending and due, with the campaign's URL.
        assert_eq!(s.webhook_queue_depth().unwrap(), 4);
        let due = s.due_webhooks(10, 100).unwrap();
        assert_eq!(due.len(), 4);
        assert!(
            due.iter()
                .all(|j| j.url.as_deref() == Some("https://hooks.example.com/t"))
        );
        s.webhook_tried(due[0].event.seq, "delivered", None, None)
            .unwrap();
        s.webhook_tried(
            due[1].event.seq,
            "pending",
            Some(5_000),
            Some("HTTP status 500"),
        )
        .unwrap();
        // A finished delivery cannot be tried again.
        assert!(
            s.webhook_tried(due[0].event.seq, "delivered", None, None)
                .is_err()
        );
        let due_now = s.due_webhooks(10, 100).unwrap();
        assert_eq!(due_now.len(), 2);
        let later = s.due_webhooks(5_000, 100).unwrap();
        assert_eq!(later.len(), 3);
        assert_eq!(later[0].tries, 1);
        assert_eq!(s.webhook_queue_depth().unwrap(), 3);
    }
}

// PostgreSQL only: what several nodes sharing one database rely on.

fn node(id: &str, url: &str, pacing: bool) -> PgStore {
    let cluster = ClusterSettings {
        lease_ms: 5_000,
        shared_pacing: pacing,
        ..ClusterSettings::single(id)
    };
    PgStore::open(url, 7, cluster).unwrap()
}

#[test]
fn postgres_migrations_run_once_for_two_nodes() {
    let Some(url) = pg_server::database_or_skip("postgres_migrations_run_once_for_two_nodes")
    else {
        return;
    };
    // Two nodes opening one new database at once: the advisory lock serialises them.
    let (a, b) = std::thread::scope(|sc| {
        let a = sc.spawn(|| node("a", &url, false));
        let b = sc.spawn(|| node("b", &url, false));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.schema_version().unwrap(), 9);
    assert_eq!(b.schema_version().unwrap(), 9);
    let c = a.create_campaign(voice("shared"), 1).unwrap();
    assert_eq!(b.get_campaign(&c.id).unwrap().name, "shared");
}

#[test]
fn postgres_leases_split_the_queue_between_nodes_and_nobody_dials_twice() {
    let Some(url) = pg_server::database_or_skip("postgres_leases_split_the_queue") else {
        return;
    };
    let (a, b) = (node("a", &url, false), node("b", &url, false));
    let c = a.create_campaign(voice_with_retries(0), 0).unwrap();
    a.add_prospects(&c.id, &phones(10, 100), 1).unwrap();
    a.transition_campaign(&c.id, Action::Start, 2).unwrap();
    let due_a = a.due_prospects(&c.id, 1_000, 6).unwrap();
    let due_b = b.due_prospects(&c.id, 1_000, 6).unwrap();
    assert_eq!((due_a.len(), due_b.len()), (6, 4));
    let mut ids: Vec<&str> = due_a.iter().chain(&due_b).map(|p| p.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10, "each prospect leased to one node");
    // B may not dial what A leased while A's lease runs; A may.
    assert!(matches!(
        b.begin_attempt(&c.id, &due_a[0].id, "+17145550000", 1_100),
        Err(StoreError::Leased { .. })
    ));
    a.begin_attempt(&c.id, &due_a[0].id, "+17145550000", 1_100)
        .unwrap();
    // Once A's lease ran out (A died), B takes A's remaining prospects.
    // (B's own 4 come back to B too; A's prospect in a call does not.)
    let later = b.due_prospects(&c.id, 1_000 + 5_001, 10).unwrap();
    assert_eq!(later.len(), 9);
    assert!(
        due_a[1..]
            .iter()
            .all(|q| later.iter().any(|p| p.id == q.id))
    );
    assert!(!later.iter().any(|p| p.id == due_a[0].id));
    // A prospect in a call is never handed out again, and never begun twice.
    assert!(
        b.begin_attempt(&c.id, &due_a[0].id, "+17145550000", 7_000)
            .is_err()
    );
    assert_eq!(a.stats(&c.id).unwrap().dialing, 1);
}

#[test]
fn postgres_a_dead_nodes_calls_end_as_node_lost_and_are_never_redialled() {
    use trunx::store::NodeStatus;
    let Some(url) = pg_server::database_or_skip("postgres_a_dead_nodes_calls_end") else {
        return;
    };
    let (a, b) = (node("a", &url, false), node("b", &url, false));
    let c = a.create_campaign(voice_with_retries(3), 0).unwrap();
    a.add_prospects(&c.id, &phones(2, 700), 1).unwrap();
    a.transition_campaign(&c.id, Action::Start, 2).unwrap();
    let due = a.due_prospects(&c.id, 10, 2).unwrap();
    let att = a
        .begin_attempt(&c.id, &due[0].id, "+17145550000", 10)
        .unwrap();
    let beat = |id: &str, at: i64| NodeStatus {
        id: id.into(),
        started_at_ms: 0,
        heartbeat_at_ms: at,
        calls: 0,
        calls_placed: 0,
        cps: 0.0,
    };
    // A beats (lease renewed to 2,000 + 5,000); B's beat before that ends nothing.
    assert_eq!(a.heartbeat(&beat("a", 2_000)).unwrap(), 0);
    assert_eq!(b.heartbeat(&beat("b", 6_000)).unwrap(), 0);
    // A stops beating; after its lease B's beat ends A's call: failed, final despite retries.
    assert_eq!(b.heartbeat(&beat("b", 7_001)).unwrap(), 1);
    let p = all_prospects(&b, &c.id)
        .into_iter()
        .find(|p| p.id == att.prospect_id)
        .unwrap();
    assert_eq!(p.status, ProspectStatus::Completed);
    assert_eq!(p.last_outcome, Some(Outcome::Failed));
    assert_eq!(p.attempts, 1);
    let ended = b
        .list_attempts(
            &c.id,
            &PageRequest {
                limit: 10,
                after: None,
            },
        )
        .unwrap();
    assert_eq!(ended.items[0].result.cause.as_deref(), Some("node_lost"));
    // A's late report is refused: the outcome is counted once.
    assert!(matches!(
        a.finish_attempt(
            &att.id,
            &Default::default(),
            &ProspectEvent::Finished {
                outcome: Outcome::Busy,
                amd: None
            },
            8_000
        ),
        Err(StoreError::NotFound { .. })
    ));
    let st = assert_counters_exact(&b, &c.id);
    assert_eq!((st.failed, st.busy, st.dialing), (1, 0, 0));
    let nodes = b.list_nodes().unwrap();
    assert_eq!(
        nodes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
}

#[test]
fn postgres_calls_per_second_holds_across_nodes() {
    let Some(url) = pg_server::database_or_skip("postgres_calls_per_second_holds") else {
        return;
    };
    let (a, b) = (node("a", &url, true), node("b", &url, true));
    let c = a
        .create_campaign(
            NewCampaign {
                mode: json!({"calls_per_second": 2}),
                ..voice("paced")
            },
            0,
        )
        .unwrap();
    a.add_prospects(&c.id, &phones(20, 800), 1).unwrap();
    a.transition_campaign(&c.id, Action::Start, 2).unwrap();
    let mut started = Vec::new();
    // Both nodes try every 50 ms for 3 s: together they start at most 2 calls a second.
    for t in (10_000..13_000).step_by(50) {
        for s in [&a, &b] {
            for p in s.due_prospects(&c.id, t, 2).unwrap() {
                match s.begin_attempt(&c.id, &p.id, "+17145550000", t) {
                    Ok(_) => started.push(t),
                    Err(StoreError::Paced { until_ms }) => assert!(until_ms > t),
                    Err(e) => panic!("{e}"),
                }
            }
        }
    }
    assert_eq!(started.len(), 6, "{started:?}");
    for w in started.windows(2) {
        assert!(w[1] - w[0] >= 500, "{started:?}");
    }
}
