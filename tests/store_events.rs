//! The store's event log and webhook outbox, on both backends: each state change writes its
//! events and outbox rows in the transaction of the change. It must not test delivery.

mod pg_server;
#[macro_use]
mod store_common;

use store_common::*;
use trunx::campaign::{Action, AmdResult, Outcome, ProspectEvent};
use trunx::store::{NewCampaign, Store};

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
