//! The store's SMS messages and suppression list, on both backends: every counter exact
//! through every message transition, and suppressed numbers cancelled everywhere and never
//! claimed. It must not test calls (see `store_attempts`).

mod pg_server;
#[macro_use]
mod store_common;

use serde_json::json;
use store_common::*;
use trunx::campaign::{Action, CampaignStatus, Channel, Outcome, ProspectEvent, ProspectStatus};
use trunx::store::{NewCampaign, PageRequest, Store, StoreError};

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
