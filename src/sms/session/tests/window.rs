//! Unit tests of the session's submit window (`super::super::window`): the parts of a message
//! in order, throttling pauses, generic_nack and failed parts, window and input checks, and
//! submit_sm responses, driven through bytes and `now` only, with the helpers of `super`.
//! Tests must not open sockets or sleep.

use super::*;
use crate::sms::text::{DATA_CODING_UCS2, ESM_CLASS_UDHI, TextError};

#[test]
fn a_three_part_ucs2_message_goes_out_in_order_and_is_accepted_when_all_parts_are() {
    let t0 = crate::runtime::clock::now();
    let mut s = bound(t0);
    let text = "Привет! ".repeat(19); // 152 UCS-2 units: 67 + 67 + 18
    s.submit(request(42, &text), t0).unwrap();
    let sent = written(&mut s);
    assert_eq!(sent.len(), 3);
    for (i, pdu) in sent.iter().enumerate() {
        let sm = short_message(pdu);
        assert_eq!(sm.data_coding, DATA_CODING_UCS2);
        assert_eq!(sm.esm_class, ESM_CLASS_UDHI);
        assert_eq!(sm.registered_delivery, 1);
        assert_eq!(
            (sm.source.ton, sm.source.npi, sm.source.addr.as_str()),
            (1, 1, "15550001111")
        );
        assert_eq!(sm.destination.addr, "15550002222");
        assert_eq!(&sm.short_message[..6], &[5, 0, 3, 7, 3, i as u8 + 1]);
    }
    // Responses out of order: the message is accepted only with the last of them.
    feed(&mut s, submit_resp(&sent[1], "id-2"), t0);
    feed(&mut s, submit_resp(&sent[2], "id-3"), t0);
    let partial = events(&mut s);
    assert_eq!(partial.len(), 2);
    assert!(partial.iter().all(|e| matches!(
        e,
        SessionEvent::PartAccepted {
            key: 42,
            parts: 3,
            ..
        }
    )));
    feed(&mut s, submit_resp(&sent[0], "id-1"), t0);
    assert_eq!(
        events(&mut s),
        vec![
            SessionEvent::PartAccepted {
                key: 42,
                part: 1,
                parts: 3,
                message_id: "id-1".into()
            },
            SessionEvent::Accepted {
                key: 42,
                message_ids: vec!["id-1".into(), "id-2".into(), "id-3".into()]
            }
        ]
    );
    assert_eq!(s.messages_in_flight(), 0);
}

#[test]
fn a_throttled_part_pauses_submits_then_goes_again() {
    let t0 = crate::runtime::clock::now();
    let mut s = bound(t0);
    s.submit(request(1, "hello"), t0).unwrap();
    let first = written(&mut s).remove(0);
    feed(
        &mut s,
        resp(
            &first,
            CommandStatus::RTHROTTLED,
            Body::SubmitSmResp {
                message_id: String::new(),
            },
        ),
        t0,
    );
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Throttled {
            key: 1,
            retry_after: SECOND
        }]
    );
    assert!(
        written(&mut s).is_empty(),
        "nothing goes out during the pause"
    );
    assert_eq!(
        s.submit(request(2, "other"), t0),
        Err(SubmitRejected::Paused { until: t0 + SECOND })
    );
    assert_eq!(s.poll_timeout(), Some(t0 + SECOND));
    s.handle_timeout(t0 + SECOND);
    let again = written(&mut s).remove(0);
    assert_ne!(again.sequence, first.sequence);
    assert_eq!(short_message(&again), short_message(&first));
    // A second throttle in a row doubles the pause (queue full this time).
    let t1 = t0 + SECOND;
    feed(
        &mut s,
        resp(
            &again,
            CommandStatus::RMSGQFUL,
            Body::SubmitSmResp {
                message_id: String::new(),
            },
        ),
        t1,
    );
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Throttled {
            key: 1,
            retry_after: 2 * SECOND
        }]
    );
    s.handle_timeout(t1 + 2 * SECOND);
    let third = written(&mut s).remove(0);
    feed(&mut s, submit_resp(&third, "m1"), t1 + 2 * SECOND);
    let ev = events(&mut s);
    assert_eq!(
        ev.last(),
        Some(&SessionEvent::Accepted {
            key: 1,
            message_ids: vec!["m1".into()]
        })
    );
    assert!(!ev.iter().any(|e| matches!(e, SessionEvent::Failed { .. })));
    // Success resets the pause: the next throttle waits 1 s again.
    let t2 = t1 + 3 * SECOND;
    s.submit(request(3, "x"), t2).unwrap();
    let p = written(&mut s).remove(0);
    feed(
        &mut s,
        resp(
            &p,
            CommandStatus::RTHROTTLED,
            Body::SubmitSmResp {
                message_id: String::new(),
            },
        ),
        t2,
    );
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Throttled {
            key: 3,
            retry_after: SECOND
        }]
    );
}

#[test]
fn generic_nack_fails_or_throttles_the_matching_submit() {
    let t0 = crate::runtime::clock::now();
    let mut s = bound(t0);
    s.submit(request(1, "a"), t0).unwrap();
    s.submit(request(2, "b"), t0).unwrap();
    let sent = written(&mut s);
    feed(
        &mut s,
        Pdu::generic_nack(sent[0].sequence, CommandStatus::RINVCMDLEN),
        t0,
    );
    feed(
        &mut s,
        Pdu::generic_nack(sent[1].sequence, CommandStatus::RTHROTTLED),
        t0,
    );
    assert_eq!(
        events(&mut s),
        vec![
            SessionEvent::Failed {
                key: 1,
                status: CommandStatus::RINVCMDLEN,
                name: "ESME_RINVCMDLEN"
            },
            SessionEvent::Throttled {
                key: 2,
                retry_after: SECOND
            }
        ]
    );
    assert_eq!(s.messages_in_flight(), 1);
}

#[test]
fn a_failed_part_fails_the_message_and_stops_its_other_parts() {
    let t0 = crate::runtime::clock::now();
    let mut cfg = config();
    cfg.window = 1;
    let mut s = bound_with(cfg, t0);
    s.submit(request(5, &"b".repeat(400)), t0).unwrap(); // 3 parts, window 1
    let p1 = written(&mut s);
    assert_eq!(p1.len(), 1, "the window holds one PDU on the wire");
    feed(&mut s, submit_resp(&p1[0], "x1"), t0);
    let p2 = written(&mut s);
    assert_eq!(
        &short_message(&p2[0]).short_message[..6],
        &[5, 0, 3, 7, 3, 2]
    );
    feed(
        &mut s,
        resp(
            &p2[0],
            CommandStatus::RINVDSTADR,
            Body::SubmitSmResp {
                message_id: String::new(),
            },
        ),
        t0,
    );
    let ev = events(&mut s);
    assert_eq!(
        ev.last(),
        Some(&SessionEvent::Failed {
            key: 5,
            status: CommandStatus::RINVDSTADR,
            name: "ESME_RINVDSTADR"
        })
    );
    assert!(written(&mut s).is_empty(), "part 3 is not sent");
    assert_eq!(s.messages_in_flight(), 0);
}

#[test]
fn window_and_input_checks() {
    let t0 = crate::runtime::clock::now();
    let mut cfg = config();
    cfg.window = 2;
    let mut s = bound_with(cfg, t0);
    s.submit(request(1, "a"), t0).unwrap();
    assert_eq!(
        s.submit(request(1, "a"), t0),
        Err(SubmitRejected::DuplicateKey { key: 1 })
    );
    s.submit(request(2, "b"), t0).unwrap();
    let full = s.submit(request(3, "c"), t0).unwrap_err();
    assert_eq!(full, SubmitRejected::WindowFull { window: 2 });
    assert!(full.is_momentary());
    let mut bad = request(4, "x");
    bad.destination = "+1555abc".into();
    let mut s2 = bound(t0);
    assert!(matches!(
        s2.submit(bad, t0),
        Err(SubmitRejected::Address {
            field: "destination",
            ..
        })
    ));
    let mut alpha = request(5, "x");
    alpha.source = "TRUNX".into();
    s2.submit(alpha, t0).unwrap();
    let sm = written(&mut s2).remove(0);
    assert_eq!(
        (
            short_message(&sm).source.ton,
            short_message(&sm).source.addr.as_str()
        ),
        (5, "TRUNX")
    );
    let err = s2.submit(request(6, &"a".repeat(1601)), t0).unwrap_err();
    assert!(matches!(
        err,
        SubmitRejected::Text(TextError::TooLong {
            characters: 1601,
            ..
        })
    ));
    assert!(!err.is_momentary());
}

#[test]
fn a_malformed_submit_response_still_settles_the_part() {
    let t0 = crate::runtime::clock::now();
    let mut s = bound(t0);
    s.submit(request(1, "a"), t0).unwrap();
    let sm = written(&mut s).remove(0);
    // submit_sm_resp, ROK, message_id without its NUL.
    let mut bytes = vec![0, 0, 0, 19, 0x80, 0, 0, 4, 0, 0, 0, 0];
    bytes.extend_from_slice(&sm.sequence.to_be_bytes());
    bytes.extend_from_slice(b"abc");
    s.on_bytes(&bytes, t0);
    assert!(written(&mut s).is_empty(), "no nack for a response");
    assert_eq!(
        events(&mut s).last(),
        Some(&SessionEvent::Accepted {
            key: 1,
            message_ids: vec![String::new()]
        })
    );
    assert_eq!(s.counters().malformed_pdus, 1);
}
