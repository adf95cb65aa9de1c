//! Unit tests of the SMPP session: binding, keepalive, timeouts, unbind, deliver_sm and
//! reconnect backoff, driven through bytes and `now` only, and the helpers every session test
//! uses; the submit window's tests (parts, throttling, submit results) are in `window`. Tests
//! must not open sockets or sleep.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::sms::keywords::Keyword;
use crate::sms::pdu::{DEFAULT_MAX_PDU_BYTES, ShortMessage, Tlv, decode, encode, tag};
use crate::sms::receipt::ReceiptOutcome;
use crate::sms::text::DATA_CODING_GSM7;

mod window;

const SECOND: Duration = Duration::from_secs(1);

fn config() -> SessionConfig {
    let mut c = SessionConfig::new("trunx", SmppPassword::new("pw123"));
    c.system_type = "bulk".into();
    c
}

/// Everything the session wants written, decoded.
fn written(s: &mut Session) -> Vec<Pdu> {
    std::iter::from_fn(|| s.poll_transmit())
        .map(|bytes| {
            let (pdu, used) = decode(&bytes, DEFAULT_MAX_PDU_BYTES).unwrap().unwrap();
            assert_eq!(used, bytes.len(), "one PDU per transmit");
            pdu
        })
        .collect()
}

fn events(s: &mut Session) -> Vec<SessionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn feed(s: &mut Session, pdu: Pdu, now: Instant) {
    s.on_bytes(&encode(&pdu).unwrap(), now);
}

fn resp(to: &Pdu, status: CommandStatus, body: Body) -> Pdu {
    Pdu {
        status,
        sequence: to.sequence,
        body,
    }
}

fn submit_resp(to: &Pdu, id: &str) -> Pdu {
    resp(
        to,
        CommandStatus::ROK,
        Body::SubmitSmResp {
            message_id: id.into(),
        },
    )
}

fn bound(t0: Instant) -> Session {
    bound_with(config(), t0)
}

fn bound_with(config: SessionConfig, t0: Instant) -> Session {
    let mut s = Session::new(config);
    s.connected(t0);
    let bind = written(&mut s).remove(0);
    feed(
        &mut s,
        resp(
            &bind,
            CommandStatus::ROK,
            Body::BindTransceiverResp(pdu::BindResp {
                system_id: "smsc".into(),
                tlvs: vec![],
            }),
        ),
        t0,
    );
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Bound {
            system_id: "smsc".into()
        }]
    );
    s
}

fn request(key: u64, text: &str) -> SubmitRequest {
    SubmitRequest {
        key,
        source: "+15550001111".into(),
        destination: "+15550002222".into(),
        text: text.into(),
        reference: 7,
    }
}

fn short_message(pdu: &Pdu) -> &ShortMessage {
    match &pdu.body {
        Body::SubmitSm(sm) | Body::DeliverSm(sm) => sm,
        other => panic!("expected a short message PDU, got {other:?}"),
    }
}

fn deliver(sequence: u32, esm_class: u8, source: &str, body: &[u8], tlvs: Vec<Tlv>) -> Pdu {
    Pdu::new(
        sequence,
        Body::DeliverSm(ShortMessage {
            source: Address {
                ton: 1,
                npi: 1,
                addr: source.into(),
            },
            destination: Address {
                ton: 1,
                npi: 1,
                addr: "15550001111".into(),
            },
            esm_class,
            data_coding: DATA_CODING_GSM7,
            short_message: body.to_vec(),
            tlvs,
            ..ShortMessage::default()
        }),
    )
}

#[test]
fn bind_sends_credentials_and_reports_bound() {
    let t0 = crate::runtime::clock::now();
    let mut s = Session::new(config());
    assert_eq!(s.poll_timeout(), None);
    s.connected(t0);
    assert_eq!(s.state(), State::Binding);
    let sent = written(&mut s);
    assert_eq!(sent.len(), 1);
    let Body::BindTransceiver(bind) = &sent[0].body else {
        panic!("{:?}", sent[0]);
    };
    assert_eq!(
        (
            bind.system_id.as_str(),
            bind.password.as_str(),
            bind.system_type.as_str()
        ),
        ("trunx", "pw123", "bulk")
    );
    assert_eq!(bind.interface_version, 0x34);
    assert_eq!(
        s.poll_timeout(),
        Some(t0 + 10 * SECOND),
        "bind response deadline"
    );
    // Submits wait for the bind.
    assert_eq!(
        s.submit(request(1, "hi"), t0),
        Err(SubmitRejected::NotBound {
            state: State::Binding
        })
    );
    let s = bound(t0);
    assert_eq!(s.state(), State::Bound);
    assert_eq!(
        s.poll_timeout(),
        Some(t0 + 30 * SECOND),
        "next enquire_link"
    );
}

#[test]
fn a_refused_bind_closes_with_its_status() {
    let t0 = crate::runtime::clock::now();
    let mut s = Session::new(config());
    s.connected(t0);
    let bind = written(&mut s).remove(0);
    // An error response without a body, as SMSCs send it.
    feed(
        &mut s,
        resp(
            &bind,
            CommandStatus::RINVPASWD,
            Body::BindTransceiverResp(Default::default()),
        ),
        t0,
    );
    assert_eq!(
        events(&mut s),
        vec![
            SessionEvent::BindRejected {
                status: CommandStatus::RINVPASWD,
                name: "ESME_RINVPASWD"
            },
            SessionEvent::ConnectionLost {
                unacknowledged: vec![],
                reason: LostReason::BindRejected
            }
        ]
    );
    assert_eq!(s.state(), State::Closed);
}

#[test]
fn receipts_and_inbound_messages_are_acknowledged_with_their_sequence() {
    let t0 = crate::runtime::clock::now();
    let mut s = bound(t0);
    let receipt = b"id:id-1 sub:001 dlvrd:001 submit date:2611271405 done date:2611271406 \
                    stat:DELIVRD err:000 text:hello";
    feed(
        &mut s,
        deliver(900, 0x04, "15550002222", receipt, vec![]),
        t0,
    );
    let failed = b"id:id-2 stat:UNDELIV err:034";
    feed(
        &mut s,
        deliver(901, 0x04, "15550002222", failed, vec![]),
        t0,
    );
    feed(
        &mut s,
        deliver(902, 0x00, "15550002222", b" Stop ", vec![]),
        t0,
    );
    let acks = written(&mut s);
    assert_eq!(
        acks.iter()
            .map(|p| (p.sequence, p.status, p.body.command_id()))
            .collect::<Vec<_>>(),
        [900, 901, 902].map(|seq| (seq, CommandStatus::ROK, pdu::command::DELIVER_SM_RESP))
    );
    assert_eq!(
        events(&mut s),
        vec![
            SessionEvent::Receipt {
                message_id: "id-1".into(),
                outcome: ReceiptOutcome::Delivered,
                stat: "DELIVRD".into(),
                error_code: Some("000".into())
            },
            SessionEvent::Receipt {
                message_id: "id-2".into(),
                outcome: ReceiptOutcome::Failed,
                stat: "UNDELIV".into(),
                error_code: Some("034".into())
            },
            SessionEvent::Inbound {
                source: "+15550002222".into(),
                destination: "+15550001111".into(),
                text: " Stop ".into(),
                keyword: Keyword::OptOut
            }
        ]
    );
}

#[test]
fn a_receipt_by_tlv_and_an_unparsable_one() {
    let t0 = crate::runtime::clock::now();
    let mut s = bound(t0);
    let tlvs = vec![
        Tlv {
            tag: tag::RECEIPTED_MESSAGE_ID,
            value: b"abc\0".to_vec(),
        },
        Tlv {
            tag: tag::MESSAGE_STATE,
            value: vec![2],
        },
    ];
    feed(&mut s, deliver(5, 0x00, "1", b"", tlvs), t0);
    feed(&mut s, deliver(6, 0x04, "1", b"garbage", vec![]), t0);
    assert_eq!(written(&mut s).len(), 2, "both acknowledged");
    let ev = events(&mut s);
    assert!(
        matches!(&ev[..], [SessionEvent::Receipt { message_id, outcome: ReceiptOutcome::Delivered, .. }] if message_id == "abc")
    );
    assert_eq!(s.counters().unparsable_receipts, 1);
}

#[test]
fn a_server_unbind_is_answered_and_returns_unacknowledged_messages() {
    let t0 = crate::runtime::clock::now();
    let mut s = bound(t0);
    s.submit(request(10, "one"), t0).unwrap();
    s.submit(request(11, "two"), t0).unwrap();
    let sent = written(&mut s);
    feed(&mut s, submit_resp(&sent[0], "a"), t0);
    events(&mut s);
    feed(&mut s, Pdu::new(77, Body::Unbind), t0);
    assert_eq!(written(&mut s), vec![Pdu::new(77, Body::UnbindResp)]);
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::ConnectionLost {
            unacknowledged: vec![11],
            reason: LostReason::ServerUnbind
        }]
    );
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.poll_timeout(), None);
    // A late response on the dead connection changes nothing.
    feed(&mut s, submit_resp(&sent[1], "b"), t0);
    assert!(events(&mut s).is_empty());
}

#[test]
fn a_response_timeout_declares_the_connection_dead_and_returns_every_unacked_submit() {
    let t0 = crate::runtime::clock::now();
    let mut s = bound(t0);
    let long = "a".repeat(300); // 2 parts
    s.submit(request(1, &long), t0).unwrap();
    s.submit(request(2, "short"), t0 + SECOND).unwrap();
    let sent = written(&mut s);
    assert_eq!(sent.len(), 3);
    feed(&mut s, submit_resp(&sent[0], "p1"), t0 + SECOND); // part 1 of 2 only
    events(&mut s);
    let deadline = s.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + 10 * SECOND, "the oldest unanswered submit");
    s.handle_timeout(deadline - Duration::from_millis(1));
    assert!(events(&mut s).is_empty());
    s.handle_timeout(deadline);
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::ConnectionLost {
            unacknowledged: vec![1, 2],
            reason: LostReason::ResponseTimeout
        }]
    );
    assert_eq!(s.state(), State::Closed);
}

#[test]
fn keepalive_when_idle_and_dead_without_its_answer() {
    let t0 = crate::runtime::clock::now();
    let mut s = bound(t0);
    // The SMSC's own enquire_link is answered with its sequence.
    feed(&mut s, Pdu::new(31, Body::EnquireLink), t0 + 5 * SECOND);
    assert_eq!(written(&mut s), vec![Pdu::new(31, Body::EnquireLinkResp)]);
    // Traffic moved the idle deadline.
    assert_eq!(s.poll_timeout(), Some(t0 + 35 * SECOND));
    s.handle_timeout(t0 + 35 * SECOND);
    let ping = written(&mut s);
    assert_eq!(ping.len(), 1);
    assert_eq!(ping[0].body, Body::EnquireLink);
    feed(
        &mut s,
        resp(&ping[0], CommandStatus::ROK, Body::EnquireLinkResp),
        t0 + 36 * SECOND,
    );
    assert_eq!(s.poll_timeout(), Some(t0 + 66 * SECOND));
    s.handle_timeout(t0 + 66 * SECOND);
    written(&mut s);
    assert_eq!(s.poll_timeout(), Some(t0 + 76 * SECOND));
    s.handle_timeout(t0 + 76 * SECOND);
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::ConnectionLost {
            unacknowledged: vec![],
            reason: LostReason::ResponseTimeout
        }]
    );
}

#[test]
fn local_unbind_waits_for_its_response() {
    let t0 = crate::runtime::clock::now();
    let mut s = bound(t0);
    s.submit(request(1, "a"), t0).unwrap();
    let sm = written(&mut s).remove(0);
    s.unbind(t0);
    assert_eq!(s.state(), State::Unbinding);
    let unbind = written(&mut s).remove(0);
    assert_eq!(unbind.body, Body::Unbind);
    assert!(matches!(
        s.submit(request(2, "b"), t0),
        Err(SubmitRejected::NotBound { .. })
    ));
    // A response to an earlier submit still counts.
    feed(&mut s, submit_resp(&sm, "m"), t0);
    feed(
        &mut s,
        resp(&unbind, CommandStatus::ROK, Body::UnbindResp),
        t0,
    );
    let ev = events(&mut s);
    assert_eq!(
        &ev[ev.len() - 2..],
        &[
            SessionEvent::Accepted {
                key: 1,
                message_ids: vec!["m".into()]
            },
            SessionEvent::ConnectionLost {
                unacknowledged: vec![],
                reason: LostReason::LocalUnbind
            }
        ]
    );
}

#[test]
fn disconnect_returns_messages_and_reconnect_binds_again() {
    let t0 = crate::runtime::clock::now();
    let mut s = bound(t0);
    s.submit(request(9, "a"), t0).unwrap();
    s.disconnected(t0);
    assert!(
        s.poll_transmit().is_none(),
        "nothing is left for a dead socket"
    );
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::ConnectionLost {
            unacknowledged: vec![9],
            reason: LostReason::Disconnected
        }]
    );
    s.disconnected(t0);
    assert!(events(&mut s).is_empty(), "reported once");
    s.connected(t0 + SECOND);
    assert!(matches!(
        written(&mut s)[..],
        [Pdu {
            body: Body::BindTransceiver(_),
            ..
        }]
    ));
}

#[test]
fn bad_input_from_the_smsc() {
    let t0 = crate::runtime::clock::now();
    let mut s = bound(t0);
    // An unknown command: generic_nack RINVCMDID with its sequence, session stays bound.
    let mut query = vec![0, 0, 0, 0x14, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0x2A];
    query.extend_from_slice(b"ABC\0");
    s.on_bytes(&query, t0);
    assert_eq!(
        written(&mut s),
        vec![Pdu::generic_nack(42, CommandStatus::RINVCMDID)]
    );
    assert_eq!(s.state(), State::Bound);
    // A submit_sm to an ESME is refused the same way.
    feed(
        &mut s,
        Pdu::new(43, Body::SubmitSm(ShortMessage::default())),
        t0,
    );
    assert_eq!(
        written(&mut s),
        vec![Pdu::generic_nack(43, CommandStatus::RINVCMDID)]
    );
    // A response that matches nothing is counted and ignored.
    feed(
        &mut s,
        submit_resp(&Pdu::new(999, Body::EnquireLink), "x"),
        t0,
    );
    assert_eq!(s.counters().stray_responses, 1);
    // A length below the header loses framing: nack RINVCMDLEN, then the connection ends.
    s.submit(request(1, "a"), t0).unwrap();
    written(&mut s);
    s.on_bytes(&[0, 0, 0, 8, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 5], t0);
    assert_eq!(
        written(&mut s),
        vec![Pdu::generic_nack(5, CommandStatus::RINVCMDLEN)]
    );
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::ConnectionLost {
            unacknowledged: vec![1],
            reason: LostReason::FramingLost
        }]
    );
}

#[test]
fn bytes_may_arrive_one_at_a_time() {
    let t0 = crate::runtime::clock::now();
    let mut s = bound(t0);
    let stream = [
        encode(&deliver(1, 0, "15550002222", b"HELP", vec![])).unwrap(),
        encode(&Pdu::new(2, Body::EnquireLink)).unwrap(),
    ]
    .concat();
    for b in &stream {
        s.on_bytes(std::slice::from_ref(b), t0);
    }
    assert_eq!(written(&mut s).len(), 2);
    assert!(matches!(
        &events(&mut s)[..],
        [SessionEvent::Inbound {
            keyword: Keyword::Help,
            ..
        }]
    ));
}

#[test]
fn backoff_doubles_to_the_cap_and_resets() {
    let mut b = Backoff::default();
    let delays: Vec<u64> = (0..9).map(|_| b.next_delay(0.0).as_secs()).collect();
    assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    for _ in 0..100 {
        assert_eq!(b.next_delay(0.0), Duration::from_secs(60), "no overflow");
    }
    b.reset();
    assert_eq!(
        b.next_delay(1.0),
        Duration::from_millis(500),
        "full jitter halves"
    );
    assert_eq!(b.next_delay(0.5), Duration::from_millis(1500));
    assert_eq!(
        b.next_delay(7.0),
        Duration::from_secs(2),
        "jitter is clamped"
    );
    assert_eq!(b.next_delay(f64::NAN), Duration::from_secs(8));
}

#[test]
fn the_password_never_prints() {
    let shown = format!("{:?}", config());
    assert!(!shown.contains("pw123"), "{shown}");
}

proptest! {
    #[test]
    fn random_bytes_never_panic_and_the_buffer_stays_bounded(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..20),
    ) {
        let t0 = crate::runtime::clock::now();
        let mut cfg = config();
        cfg.max_pdu_bytes = 256;
        let mut s = bound_with(cfg, t0);
        s.submit(request(1, "hello"), t0).unwrap();
        for chunk in &chunks {
            s.on_bytes(chunk, t0);
            prop_assert!(s.rx.len() < 256);
            while s.poll_transmit().is_some() {}
            while s.poll_event().is_some() {}
        }
    }
}
