//! The store's calls, on both backends: attempts recorded before the call and once, deferral,
//! a campaign's completion and cancel, crash recovery (SQLite) and pause/resume with calls in
//! flight. It must not test SMS or several nodes (see `store_sms`, `store_cluster`).

mod pg_server;
#[macro_use]
mod store_common;

use store_common::*;
use trunx::campaign::{Action, AmdResult, CampaignStatus, Outcome, ProspectEvent, ProspectStatus};
use trunx::store::{PageRequest, SqliteStore, Store, StoreError};

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
