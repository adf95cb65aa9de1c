use super::*;

fn uas(mix: PopulationMix) -> Uas {
    Uas::new(UasConfig {
        local: "127.0.0.1:5090".parse().unwrap(),
        rtp: "127.0.0.1:31000".parse().unwrap(),
        seed: 5,
        mix,
        timing: SimTiming {
            alert_ms: 100..=100,
            answer_ms: 1000..=1000,
            ring_cap: Duration::from_secs(10),
            max_call: Duration::from_secs(30),
            ..SimTiming::default()
        },
        max_calls: 4,
    })
}

const CALLER: &str = "127.0.0.1:5062";

fn invite(call_id: &str, branch: &str, number: &str) -> Vec<u8> {
    invite_offering(call_id, branch, number, "0 8 101")
}

fn invite_offering(call_id: &str, branch: &str, number: &str, formats: &str) -> Vec<u8> {
    let sdp = crate::sip::sdp::offer("127.0.0.1".parse().unwrap(), 40000, 1, 1)
        .replace("RTP/AVP 0 8 101", &format!("RTP/AVP {formats}"));
    format!(
        "INVITE sip:{number}@127.0.0.1:5090 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:+15550001111@127.0.0.1>;tag=abc\r\nTo: <sip:{number}@127.0.0.1:5090>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:trunx@{CALLER}>\r\nRecord-Route: <sip:10.0.0.1;lr>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
    .into_bytes()
}

fn request(method: &str, call_id: &str, branch: &str, to_tag: Option<&str>, cseq: u32) -> Vec<u8> {
    let to = match to_tag {
        Some(t) => format!("<sip:x@127.0.0.1>;tag={t}"),
        None => "<sip:x@127.0.0.1>".into(),
    };
    format!(
        "{method} sip:carrier@127.0.0.1:5090 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch={branch};rport\r\nFrom: <sip:+15550001111@127.0.0.1>;tag=abc\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn responses(u: &mut Uas) -> Vec<ResponseInfo> {
    std::iter::from_fn(|| u.poll_transmit())
        .filter_map(|t| match message::parse(&t.bytes) {
            Ok(Incoming::Response(r)) => Some(r),
            _ => None,
        })
        .collect()
}

fn number_for(kind: ScenarioKind, mix: &PopulationMix) -> String {
    (0..10_000)
        .map(|i| format!("+1555{i:07}"))
        .find(|n| scenario_for(n, mix, 5).kind() == kind)
        .unwrap()
}

fn caller() -> SocketAddr {
    CALLER.parse().unwrap()
}

#[test]
fn an_answered_call_rings_answers_streams_and_ends_on_bye() {
    let mix = PopulationMix::default();
    let mut u = uas(mix.clone());
    let number = number_for(ScenarioKind::Human, &mix);
    let t0 = crate::runtime::clock::now();
    u.handle_datagram(t0, caller(), &invite("c1", "z9hG4bK1", &number));
    let r = responses(&mut u);
    assert_eq!(r.iter().map(|r| r.status).collect::<Vec<_>>(), [100]);
    assert_eq!(r[0].to_tag, None);
    assert_eq!(u.poll_timeout(), Some(t0 + Duration::from_millis(100)));
    u.handle_timeout(t0 + Duration::from_millis(100));
    let r = responses(&mut u);
    assert_eq!(r[0].status, 180);
    assert_eq!(r[0].record_route, ["<sip:10.0.0.1;lr>"]);
    // A retransmitted INVITE gets the 180 again.
    u.handle_datagram(
        t0 + Duration::from_millis(500),
        caller(),
        &invite("c1", "z9hG4bK1", &number),
    );
    assert_eq!(responses(&mut u)[0].status, 180);
    let answer_at = t0 + Duration::from_millis(1100);
    assert_eq!(u.poll_timeout(), Some(answer_at));
    u.handle_timeout(answer_at);
    let ok = responses(&mut u).remove(0);
    assert_eq!(ok.status, 200);
    let tag = ok.to_tag.clone().unwrap();
    let sdp = SessionDescription::parse(std::str::from_utf8(&ok.body).unwrap())
        .unwrap()
        .negotiate()
        .unwrap();
    assert_eq!((sdp.law, sdp.remote_rtp.port()), (Law::Ulaw, 31000));
    let Some(MediaCommand::Start {
        stream,
        to,
        law,
        playback,
        ..
    }) = u.poll_media()
    else {
        panic!("media starts on answer")
    };
    assert_eq!((to.port(), law), (40000, Law::Ulaw));
    assert_eq!(Some(playback), scenario_for(&number, &mix, 5).playback());
    // 2xx retransmitted until the ACK.
    u.handle_timeout(answer_at + Duration::from_millis(500));
    assert_eq!(responses(&mut u)[0].status, 200);
    u.handle_datagram(
        answer_at + Duration::from_millis(600),
        caller(),
        &request("ACK", "c1", "z9hG4bK2", Some(&tag), 1),
    );
    u.handle_timeout(answer_at + Duration::from_secs(3));
    assert!(
        responses(&mut u).is_empty(),
        "no retransmission after the ACK"
    );
    assert_eq!(u.counters().concurrent_calls, 1);
    u.handle_datagram(
        answer_at + Duration::from_secs(4),
        caller(),
        &request("BYE", "c1", "z9hG4bK3", Some(&tag), 2),
    );
    let r = responses(&mut u);
    assert_eq!((r[0].status, r[0].cseq_method.as_str()), (200, "BYE"));
    assert_eq!(u.poll_media(), Some(MediaCommand::Stop { stream }));
    assert_eq!(u.counters().concurrent_calls, 0);
    assert_eq!(u.counters().bye_received, 1);
    // Forgotten after the linger time.
    u.handle_timeout(answer_at + Duration::from_secs(40));
    assert_eq!(u.remembered_calls(), 0);
    assert_eq!(u.counters().peak_concurrent_calls, 1);
    assert_eq!(u.counters().invite_retransmissions, 1);
}

#[test]
fn busy_and_invalid_are_rejected_and_acked() {
    let mix = PopulationMix::default();
    for (kind, code) in [(ScenarioKind::Busy, 486), (ScenarioKind::Invalid, 404)] {
        let mut u = uas(mix.clone());
        let t0 = crate::runtime::clock::now();
        u.handle_datagram(
            t0,
            caller(),
            &invite("c2", "z9hG4bKb", &number_for(kind, &mix)),
        );
        u.handle_timeout(t0 + Duration::from_millis(100));
        let r = responses(&mut u);
        assert_eq!(r.iter().map(|r| r.status).collect::<Vec<_>>(), [100, code]);
        // Timer G until the ACK.
        u.handle_timeout(t0 + Duration::from_millis(600));
        assert_eq!(responses(&mut u)[0].status, code);
        u.handle_datagram(
            t0 + Duration::from_millis(700),
            caller(),
            &request("ACK", "c2", "z9hG4bKb", r[1].to_tag.as_deref(), 1),
        );
        assert_eq!(u.counters().concurrent_calls, 0);
        assert!(u.poll_media().is_none());
    }
}

#[test]
fn cancel_while_ringing_gives_200_and_487() {
    let mix = PopulationMix::default();
    let mut u = uas(mix.clone());
    let t0 = crate::runtime::clock::now();
    u.handle_datagram(
        t0,
        caller(),
        &invite("c3", "z9hG4bKc", &number_for(ScenarioKind::NoAnswer, &mix)),
    );
    u.handle_timeout(t0 + Duration::from_millis(100));
    responses(&mut u);
    u.handle_datagram(
        t0 + Duration::from_secs(2),
        caller(),
        &request("CANCEL", "c3", "z9hG4bKc", None, 1),
    );
    let r = responses(&mut u);
    assert_eq!(
        r.iter()
            .map(|r| (r.status, r.cseq_method.as_str()))
            .collect::<Vec<_>>(),
        [(200, "CANCEL"), (487, "INVITE")]
    );
    u.handle_datagram(
        t0 + Duration::from_secs(2),
        caller(),
        &request("ACK", "c3", "z9hG4bKc", r[1].to_tag.as_deref(), 1),
    );
    assert_eq!(
        (u.counters().cancelled, u.counters().concurrent_calls),
        (1, 0)
    );
    // Without a CANCEL the ring cap answers 480.
    u.handle_datagram(
        t0,
        caller(),
        &invite("c4", "z9hG4bKd", &number_for(ScenarioKind::NoAnswer, &mix)),
    );
    u.handle_timeout(t0 + Duration::from_millis(10_100));
    let r = responses(&mut u);
    assert_eq!(r.last().unwrap().status, 480);
}

#[test]
fn the_sim_hangs_up_after_the_hold_cap_and_retransmits_its_bye() {
    let mix = PopulationMix::none().with(ScenarioKind::MachineBeep, 1.0);
    let mut u = uas(mix);
    let t0 = crate::runtime::clock::now();
    u.handle_datagram(t0, caller(), &invite("c5", "z9hG4bKe", "+15550000001"));
    u.handle_timeout(t0 + Duration::from_millis(1100));
    let tag = responses(&mut u).pop().unwrap().to_tag.unwrap();
    u.handle_datagram(
        t0 + Duration::from_millis(1200),
        caller(),
        &request("ACK", "c5", "z9hG4bKf", Some(&tag), 1),
    );
    let cap = t0 + Duration::from_millis(1100) + Duration::from_secs(30);
    u.handle_timeout(cap);
    let bye = u.poll_transmit().unwrap();
    let Ok(Incoming::Request(req)) = message::parse(&bye.bytes) else {
        panic!("a BYE")
    };
    assert_eq!(
        (req.method.as_str(), req.uri.as_str()),
        ("BYE", "sip:trunx@127.0.0.1:5062")
    );
    assert_eq!(
        message::param(&req.from, "tag").as_deref(),
        Some(tag.as_str())
    );
    assert_eq!(message::param(&req.to, "tag").as_deref(), Some("abc"));
    let bye_text = String::from_utf8(bye.bytes.clone()).unwrap();
    assert!(
        bye_text.contains("\r\nRoute: <sip:10.0.0.1;lr>\r\n"),
        "{bye_text}"
    );
    u.handle_timeout(cap + Duration::from_millis(500));
    assert_eq!(u.poll_transmit().unwrap().bytes, bye.bytes, "Timer E");
    let branch = message::param(&req.vias[0], "branch").unwrap();
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: c5\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        req.vias[0], req.from, req.to
    );
    assert!(branch.starts_with("z9hG4bK"));
    u.handle_datagram(cap + Duration::from_millis(600), caller(), ok.as_bytes());
    assert_eq!(
        (u.counters().sim_hangups, u.counters().concurrent_calls),
        (1, 0)
    );
    u.handle_timeout(cap + Duration::from_secs(5));
    assert!(u.poll_transmit().is_none());
}

#[test]
fn options_garbage_overload_and_unknown_dialogs() {
    let mut u = uas(PopulationMix::default());
    let t0 = crate::runtime::clock::now();
    u.handle_datagram(t0, caller(), &request("OPTIONS", "o1", "z9hG4bKo", None, 1));
    assert_eq!(responses(&mut u)[0].status, 200);
    u.handle_datagram(t0, caller(), b"\x00\x01garbage");
    u.handle_datagram(t0, caller(), &vec![b'A'; MAX_SIM_DATAGRAM + 1]);
    u.handle_datagram(t0, caller(), b"\r\n\r\n");
    assert_eq!(
        (u.counters().malformed_dropped, u.counters().keepalives),
        (2, 1)
    );
    u.handle_datagram(
        t0,
        caller(),
        &request("BYE", "nope", "z9hG4bKn", Some("t"), 2),
    );
    assert_eq!(responses(&mut u)[0].status, 481);
    for i in 0..5 {
        u.handle_datagram(
            t0,
            caller(),
            &invite(&format!("m{i}"), "z9hG4bKm", "+15550000001"),
        );
    }
    let r = responses(&mut u);
    assert_eq!(r.iter().filter(|r| r.status == 100).count(), 4);
    assert_eq!(r.iter().filter(|r| r.status == 503).count(), 1);
    assert_eq!(
        u.scenario_of_call("m0"),
        Some(scenario_for("+15550000001", &PopulationMix::default(), 5))
    );
}

#[test]
fn numbers_come_from_the_request_uri() {
    assert_eq!(
        dialled_number("sip:+15551234567@h:5090;user=phone"),
        "+15551234567"
    );
    assert_eq!(dialled_number("sip:+1555;x=y@h"), "+1555");
    assert_eq!(dialled_number("tel:+15551234567"), "+15551234567");
    assert_eq!(dialled_number("sip:h:5090"), "");
}

#[test]
fn pcma_first_in_the_offer_gets_pcma() {
    let mix = PopulationMix::none().with(ScenarioKind::Human, 1.0);
    let mut u = uas(mix);
    let t0 = crate::runtime::clock::now();
    u.handle_datagram(
        t0,
        caller(),
        &invite_offering("a1", "z9hG4bKa", "+15550000002", "8 0 101"),
    );
    u.handle_timeout(t0 + Duration::from_millis(1100));
    let ok = responses(&mut u).pop().unwrap();
    assert!(
        String::from_utf8(ok.body)
            .unwrap()
            .contains("m=audio 31000 RTP/AVP 8\r\n")
    );
    // No usable codec: 488.
    u.handle_datagram(
        t0,
        caller(),
        &invite_offering("a2", "z9hG4bKa", "+15550000003", "18"),
    );
    u.handle_timeout(t0 + Duration::from_millis(1100));
    assert_eq!(responses(&mut u).pop().unwrap().status, 488);
}
