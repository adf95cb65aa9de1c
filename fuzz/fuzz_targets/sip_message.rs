//! A SIP datagram: the parser, then the same bytes as a response to a live INVITE client
//! transaction (the state machine must count and drop what it cannot use, never panic).
#![no_main]
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use trunx::sip::call::{CallParams, Ids, OutboundCall, Timers};
use trunx::sip::message::{Incoming, parse};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = parse(data) {
        let body = match &m {
            Incoming::Response(r) => &r.body,
            Incoming::Request(r) => &r.body,
        };
        if let Ok(text) = std::str::from_utf8(body) {
            let _ = trunx::sip::sdp::SessionDescription::parse(text).map(|s| s.negotiate());
        }
        if let Incoming::Response(r) = &m {
            for c in [&r.proxy_authenticate, &r.www_authenticate].into_iter().flatten() {
                let _ = trunx::sip::digest::Challenge::parse(c);
            }
        }
    }
    let t0 = Instant::now();
    let params = CallParams {
        request_uri: "sip:+15551234567@127.0.0.1:5070".into(),
        from_uri: "sip:+15550001111@127.0.0.1".into(),
        p_asserted_identity: None,
        local: "127.0.0.1:5062".parse().unwrap(),
        trunk: "127.0.0.1:5070".parse().unwrap(),
        sdp_offer: trunx::sip::sdp::offer("127.0.0.1".parse().unwrap(), 6000, 1, 1),
        username: Some("u".into()),
        password: Some("p".into()),
        ring_timeout: Duration::from_secs(30),
        timers: Timers::default(),
    };
    let ids = Ids { call_id: "fuzz-call".into(), from_tag: "ft".into(), seed: 7 };
    let mut call = OutboundCall::new(t0, params, ids);
    while call.poll_transmit().is_some() {}
    // The datagram, with the call's Call-ID spliced in when it has one, so responses reach the
    // transaction logic; then twice more (retransmissions) and the timers to the end.
    let from = "127.0.0.1:5070".parse().unwrap();
    call.handle_datagram(t0, from, data);
    let spliced = splice_call_id(data);
    for i in 0..2 {
        call.handle_datagram(t0 + Duration::from_millis(i), from, &spliced);
        while call.poll_transmit().is_some() {}
        while call.poll_event().is_some() {}
    }
    let mut now = t0;
    for _ in 0..64 {
        let Some(at) = call.poll_timeout() else { break };
        now = now.max(at);
        call.handle_timeout(now);
        while call.poll_transmit().is_some() {}
        while call.poll_event().is_some() {}
    }
});

fn splice_call_id(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 16);
    for line in data.split_inclusive(|&b| b == b'\n') {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with(b"call-id:") || lower.starts_with(b"i:") {
            out.extend_from_slice(b"Call-ID: fuzz-call\r\n");
        } else {
            out.extend_from_slice(line);
        }
    }
    out
}
