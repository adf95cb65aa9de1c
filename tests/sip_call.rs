//! The outbound call state machine against a scripted far end on a simulated network:
//! virtual time, no sockets, no sleeps. Covers RFC 3261 timers, digest retry, CANCEL, the 200
//! that crosses a CANCEL, retransmissions, remote BYE and the outcome of every final status.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use trunx::sip::call::{CallEvent, CallParams, Ids, OutboundCall, Outcome, Timers, Transmit};
use trunx::sip::digest::{self, Challenge, Credentials};
use trunx::sip::message::{self, Incoming, RequestInfo};
use trunx::sip::sdp;

const LOCAL: &str = "127.0.0.1:5062";
const TRUNK: &str = "127.0.0.1:5070";

fn params(ring_timeout_s: u64) -> CallParams {
    CallParams {
        request_uri: "sip:+15551234567@127.0.0.1:5070".into(),
        from_uri: "sip:+15550001111@127.0.0.1".into(),
        p_asserted_identity: Some("sip:+15550001111@127.0.0.1".into()),
        local: LOCAL.parse().unwrap(),
        trunk: TRUNK.parse().unwrap(),
        sdp_offer: sdp::offer("127.0.0.1".parse().unwrap(), 10000, 1, 1),
        username: Some("dialer".into()),
        password: Some("s3cret".into()),
        ring_timeout: Duration::from_secs(ring_timeout_s),
        timers: Timers::default(),
    }
}

fn ids() -> Ids {
    Ids {
        call_id: "c0ffee@127.0.0.1".into(),
        from_tag: "f1".into(),
        seed: 42,
    }
}

fn request(t: &Transmit) -> RequestInfo {
    match message::parse(&t.bytes).unwrap() {
        Incoming::Request(r) => r,
        other => panic!("expected a request, got {other:?}"),
    }
}

/// A response to `req` from the far end, printed the way a real UAS would.
fn respond(
    req: &RequestInfo,
    status: u16,
    to_tag: Option<&str>,
    extra: &str,
    body: &str,
) -> Vec<u8> {
    let mut m = format!("SIP/2.0 {status} Reason\r\n");
    for v in &req.vias {
        m.push_str(&format!("Via: {v}\r\n"));
    }
    let to = match to_tag {
        Some(tag) if !req.to.contains("tag=") => format!("{};tag={tag}", req.to),
        _ => req.to.clone(),
    };
    m.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {} {}\r\n{extra}",
        req.from, req.call_id, req.cseq, req.cseq_method
    ));
    if !body.is_empty() {
        m.push_str("Content-Type: application/sdp\r\n");
    }
    m.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    m.into_bytes()
}

const ANSWER_SDP: &str = "v=0\r\no=uas 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

struct Sim {
    t0: Instant,
    now: Instant,
    call: OutboundCall,
    sent: Vec<(Duration, Transmit)>,
    events: Vec<(Duration, CallEvent)>,
}

impl Sim {
    fn new(p: CallParams) -> Sim {
        let t0 = trunx::runtime::clock::now();
        let call = OutboundCall::new(t0, p, ids());
        let mut s = Sim {
            t0,
            now: t0,
            call,
            sent: Vec::new(),
            events: Vec::new(),
        };
        s.drain();
        s
    }

    fn drain(&mut self) {
        while let Some(t) = self.call.poll_transmit() {
            self.sent.push((self.now - self.t0, t));
        }
        while let Some(e) = self.call.poll_event() {
            self.events.push((self.now - self.t0, e));
        }
    }

    /// Runs the timers until `at` (virtual time).
    fn run_until(&mut self, at: Duration) {
        while let Some(d) = self.call.poll_timeout() {
            if d > self.t0 + at {
                break;
            }
            self.now = d;
            self.call.handle_timeout(d);
            self.drain();
        }
        self.now = self.t0 + at;
    }

    fn deliver(&mut self, bytes: &[u8]) {
        self.call
            .handle_datagram(self.now, TRUNK.parse::<SocketAddr>().unwrap(), bytes);
        self.drain();
    }

    fn sent_methods(&self) -> Vec<String> {
        self.sent
            .iter()
            .map(|(_, t)| {
                String::from_utf8_lossy(&t.bytes)
                    .split(' ')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    fn last(&self, method: &str) -> RequestInfo {
        let t = self
            .sent
            .iter()
            .rev()
            .find(|(_, t)| t.bytes.starts_with(method.as_bytes()))
            .unwrap();
        request(&t.1)
    }

    fn ended(&self) -> Option<Outcome> {
        self.events.iter().find_map(|(_, e)| match e {
            CallEvent::Ended(o) => Some(o.clone()),
            _ => None,
        })
    }
}

#[test]
fn invite_is_byte_exact_for_a_fixed_seed() {
    let s = Sim::new(params(30));
    let invite = String::from_utf8(s.sent[0].1.bytes.clone()).unwrap();
    let head = invite.split("\r\n\r\n").next().unwrap();
    assert_eq!(
        head,
        "INVITE sip:+15551234567@127.0.0.1:5070 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK9e3779b97f4a7c3f;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+15550001111@127.0.0.1>;tag=f1\r\n\
         To: <sip:+15551234567@127.0.0.1:5070>\r\n\
         Call-ID: c0ffee@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:trunx@127.0.0.1:5062>\r\n\
         P-Asserted-Identity: <sip:+15550001111@127.0.0.1>\r\n\
         Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n\
         User-Agent: trunx\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: 222"
    );
    assert_eq!(s.sent[0].1.to, TRUNK.parse::<SocketAddr>().unwrap());
    // Our own parser reads what we print.
    let r = request(&s.sent[0].1);
    assert_eq!((r.method.as_str(), r.cseq), ("INVITE", 1));
}

#[test]
fn timer_a_doubles_and_timer_b_fails_the_call_at_32_s() {
    let mut s = Sim::new(params(60));
    s.run_until(Duration::from_secs(40));
    let times: Vec<u64> = s.sent.iter().map(|(t, _)| t.as_millis() as u64).collect();
    assert_eq!(times, [0, 500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(
        s.ended(),
        Some(Outcome::Failed {
            sip_status: None,
            cause: "timeout",
            retryable: true
        })
    );
    assert_eq!(s.events.last().unwrap().0, Duration::from_secs(32));
}

#[test]
fn timer_a_capped_at_t2_gives_half_one_two_four_four() {
    let mut p = params(60);
    p.timers.invite_retransmit_cap = Some(p.timers.t2);
    let mut s = Sim::new(p);
    s.run_until(Duration::from_secs(40));
    let gaps: Vec<u64> = s
        .sent
        .windows(2)
        .map(|w| (w[1].0 - w[0].0).as_millis() as u64)
        .collect();
    assert_eq!(&gaps[..5], [500, 1000, 2000, 4000, 4000]);
    assert!(gaps.iter().all(|&g| g <= 4000));
    assert_eq!(
        s.ended(),
        Some(Outcome::Failed {
            sip_status: None,
            cause: "timeout",
            retryable: true
        })
    );
}

#[test]
fn ringing_for_a_minute_then_answered() {
    let mut s = Sim::new(params(90));
    let invite = request(&s.sent[0].1);
    s.deliver(&respond(&invite, 100, None, "", ""));
    s.deliver(&respond(&invite, 180, Some("uas1"), "", ""));
    s.run_until(Duration::from_secs(60));
    assert_eq!(
        s.sent.len(),
        1,
        "no retransmission after a provisional response"
    );
    s.deliver(&respond(
        &invite,
        200,
        Some("uas1"),
        "Contact: <sip:uas@127.0.0.1:5071>\r\nRecord-Route: <sip:127.0.0.1:5080;lr>\r\n",
        ANSWER_SDP,
    ));
    assert!(matches!(
        s.events[0].1,
        CallEvent::Ringing {
            sip_status: 180,
            early_media: None
        }
    ));
    let CallEvent::Answered { media: Some(media) } = &s.events[1].1 else {
        panic!("{:?}", s.events)
    };
    assert_eq!(media.remote_rtp, "127.0.0.1:6000".parse().unwrap());
    let ack = s.last("ACK");
    assert_eq!(ack.uri, "sip:uas@127.0.0.1:5071");
    assert!(ack.to.contains("tag=uas1"));
    let text = String::from_utf8(s.sent.last().unwrap().1.bytes.clone()).unwrap();
    assert!(
        text.contains("Route: <sip:127.0.0.1:5080;lr>\r\n"),
        "{text}"
    );
    // A retransmitted 200 gets the ACK again, and no second Answered.
    s.deliver(&respond(
        &invite,
        200,
        Some("uas1"),
        "Contact: <sip:uas@127.0.0.1:5071>\r\n",
        ANSWER_SDP,
    ));
    assert_eq!(s.sent_methods().iter().filter(|m| *m == "ACK").count(), 2);
    assert_eq!(s.events.len(), 2);
    // The far end hangs up.
    let bye = "BYE sip:trunx@127.0.0.1:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKbye\r\nFrom: <sip:+15551234567@127.0.0.1:5070>;tag=uas1\r\nTo: <sip:+15550001111@127.0.0.1>;tag=f1\r\nCall-ID: c0ffee@127.0.0.1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n";
    s.deliver(bye.as_bytes());
    let ok = String::from_utf8(s.sent.last().unwrap().1.bytes.clone()).unwrap();
    assert!(
        ok.starts_with("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKbye\r\n"),
        "{ok}"
    );
    assert_eq!(s.ended(), Some(Outcome::Completed { by_remote: true }));
}

fn proxy_challenge(invite: &RequestInfo) -> Vec<u8> {
    respond(
        invite,
        407,
        Some("proxy"),
        "Proxy-Authenticate: Digest realm=\"trunk\", nonce=\"abc123\", qop=\"auth,auth-int\", algorithm=MD5\r\n",
        "",
    )
}

#[test]
fn a_407_is_answered_once_with_a_correct_digest() {
    let mut s = Sim::new(params(30));
    let first = request(&s.sent[0].1);
    s.deliver(&proxy_challenge(&first));
    let methods = s.sent_methods();
    assert_eq!(methods, ["INVITE", "ACK", "INVITE"]);
    let second = request(&s.sent[2].1);
    assert_eq!(second.cseq, 2);
    let text = String::from_utf8(s.sent[2].1.bytes.clone()).unwrap();
    let auth_line = text
        .lines()
        .find(|l| l.starts_with("Proxy-Authorization: "))
        .unwrap();
    let value = auth_line.trim_start_matches("Proxy-Authorization: ");
    // Check it the way the proxy does: recompute the response from the password.
    let cnonce = value
        .split("cnonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let challenge =
        Challenge::parse("Digest realm=\"trunk\", nonce=\"abc123\", qop=\"auth\"").unwrap();
    let expected = digest::response(
        &challenge,
        Credentials {
            username: "dialer",
            password: "s3cret",
        },
        "INVITE",
        "sip:+15551234567@127.0.0.1:5070",
        cnonce,
        1,
    );
    assert!(
        value.contains(&format!("response=\"{expected}\"")),
        "{value}"
    );
    assert!(value.contains("qop=auth, nc=00000001"));
    s.deliver(&respond(
        &second,
        200,
        Some("uas"),
        "Contact: <sip:uas@127.0.0.1:5070>\r\n",
        ANSWER_SDP,
    ));
    assert!(
        s.events
            .iter()
            .any(|(_, e)| matches!(e, CallEvent::Answered { .. }))
    );
}

#[test]
fn a_second_challenge_fails_with_auth_failed() {
    let mut s = Sim::new(params(30));
    let first = request(&s.sent[0].1);
    s.deliver(&proxy_challenge(&first));
    let second = request(&s.sent[2].1);
    s.deliver(&proxy_challenge(&second));
    assert_eq!(s.sent_methods(), ["INVITE", "ACK", "INVITE", "ACK"]);
    assert_eq!(
        s.ended(),
        Some(Outcome::Failed {
            sip_status: Some(407),
            cause: "auth_failed",
            retryable: false
        })
    );
}

#[test]
fn ring_timeout_cancels_the_early_dialog() {
    let mut s = Sim::new(params(10));
    let invite = request(&s.sent[0].1);
    s.deliver(&respond(&invite, 180, Some("uas"), "", ""));
    s.run_until(Duration::from_secs(10));
    let cancel = s.last("CANCEL");
    assert_eq!(s.sent.last().unwrap().0, Duration::from_secs(10));
    assert_eq!(
        (cancel.cseq, cancel.vias[0].clone()),
        (1, invite.vias[0].clone())
    );
    s.deliver(&respond(&cancel, 200, Some("uas"), "", ""));
    s.deliver(&respond(&invite, 487, Some("uas"), "", ""));
    assert_eq!(s.sent_methods(), ["INVITE", "CANCEL", "ACK"]);
    assert_eq!(
        s.ended(),
        Some(Outcome::NoAnswer {
            sip_status: None,
            cause: "ring_timeout"
        })
    );
    // The 487 retransmitted: the ACK is sent again, nothing else happens.
    s.deliver(&respond(&invite, 487, Some("uas"), "", ""));
    assert_eq!(s.sent_methods(), ["INVITE", "CANCEL", "ACK", "ACK"]);
    s.run_until(Duration::from_secs(60));
    assert!(s.call.is_terminated());
}

#[test]
fn a_far_end_that_ignores_our_cancel_still_ends_the_call() {
    let mut s = Sim::new(params(10));
    let invite = request(&s.sent[0].1);
    s.deliver(&respond(&invite, 180, Some("uas"), "", ""));
    s.run_until(Duration::from_secs(10 + 40));
    assert_eq!(s.events.last().unwrap().0, Duration::from_secs(10 + 32));
    assert_eq!(
        s.ended(),
        Some(Outcome::NoAnswer {
            sip_status: None,
            cause: "ring_timeout"
        })
    );
    let cancels = s.sent_methods().iter().filter(|m| *m == "CANCEL").count();
    assert!(cancels >= 8, "CANCEL retransmitted on Timer E: {cancels}");
}

#[test]
fn a_200_crossing_our_cancel_gets_ack_and_bye() {
    let mut s = Sim::new(params(5));
    let invite = request(&s.sent[0].1);
    s.deliver(&respond(&invite, 183, Some("uas"), "", ANSWER_SDP));
    assert!(matches!(
        s.events[0].1,
        CallEvent::Ringing {
            sip_status: 183,
            early_media: Some(_)
        }
    ));
    s.run_until(Duration::from_secs(5));
    s.deliver(&respond(
        &invite,
        200,
        Some("uas"),
        "Contact: <sip:uas@127.0.0.1:5070>\r\n",
        ANSWER_SDP,
    ));
    assert_eq!(s.sent_methods(), ["INVITE", "CANCEL", "ACK", "BYE"]);
    assert!(
        !s.events
            .iter()
            .any(|(_, e)| matches!(e, CallEvent::Answered { .. }))
    );
    assert_eq!(
        s.ended(),
        Some(Outcome::NoAnswer {
            sip_status: None,
            cause: "ring_timeout"
        })
    );
    let bye = s.last("BYE");
    s.deliver(&respond(&bye, 200, None, "", ""));
    assert!(s.call.is_terminated());
}

#[test]
fn final_statuses_map_to_outcomes() {
    for (status, outcome) in [
        (486, Outcome::Busy { sip_status: 486 }),
        (600, Outcome::Busy { sip_status: 600 }),
        (
            404,
            Outcome::Failed {
                sip_status: Some(404),
                cause: "invalid_number",
                retryable: false,
            },
        ),
        (
            484,
            Outcome::Failed {
                sip_status: Some(484),
                cause: "invalid_number",
                retryable: false,
            },
        ),
        (
            480,
            Outcome::NoAnswer {
                sip_status: Some(480),
                cause: "no_answer",
            },
        ),
        (
            408,
            Outcome::NoAnswer {
                sip_status: Some(408),
                cause: "no_answer",
            },
        ),
        (
            503,
            Outcome::Failed {
                sip_status: Some(503),
                cause: "server_error",
                retryable: true,
            },
        ),
        (
            403,
            Outcome::Failed {
                sip_status: Some(403),
                cause: "rejected",
                retryable: false,
            },
        ),
    ] {
        let mut s = Sim::new(params(30));
        let invite = request(&s.sent[0].1);
        s.deliver(&respond(&invite, status, Some("uas"), "", ""));
        assert_eq!(s.ended(), Some(outcome), "{status}");
        assert_eq!(s.sent_methods(), ["INVITE", "ACK"], "{status}");
    }
}

#[test]
fn our_hangup_sends_bye_with_timer_e_retransmissions() {
    let mut s = Sim::new(params(30));
    let invite = request(&s.sent[0].1);
    s.deliver(&respond(
        &invite,
        200,
        Some("uas"),
        "Contact: <sip:uas@127.0.0.1:5070>\r\n",
        ANSWER_SDP,
    ));
    s.now += Duration::from_secs(3);
    let at = s.now;
    s.call.hangup(at);
    s.drain();
    s.run_until(Duration::from_secs(3 + 40));
    let bye_times: Vec<u64> = s
        .sent
        .iter()
        .filter(|(_, t)| t.bytes.starts_with(b"BYE"))
        .map(|(t, _)| t.as_millis() as u64 - 3000)
        .collect();
    // T1 doubling, capped at T2 (4 s), until Timer F at 64*T1.
    assert_eq!(&bye_times[..6], [0, 500, 1500, 3500, 7500, 11500]);
    assert!(s.call.is_terminated());
    assert_eq!(s.ended(), Some(Outcome::Completed { by_remote: false }));
}

#[test]
fn garbage_and_foreign_datagrams_are_counted_and_dropped() {
    let mut s = Sim::new(params(30));
    s.deliver(b"\x00\x01garbage");
    let invite = request(&s.sent[0].1);
    let mut other = respond(&invite, 486, Some("x"), "", "");
    let text = String::from_utf8(other.clone())
        .unwrap()
        .replace("c0ffee@127.0.0.1", "someone-else");
    other = text.into_bytes();
    s.deliver(&other);
    assert_eq!(s.call.malformed(), 2);
    assert!(s.ended().is_none());
}

proptest::proptest! {
    /// What we print, our parser reads back field for field (INVITE with random identities).
    #[test]
    fn printed_invites_parse_back(
        user in "[0-9]{4,15}",
        caller in "[0-9]{4,15}",
        call_id in "[a-zA-Z0-9]{1,24}",
        tag in "[a-z0-9]{1,12}",
        seed: u64,
        port in 1024u16..65000,
    ) {
        let mut p = params(30);
        p.request_uri = format!("sip:+{user}@127.0.0.1:{port}");
        p.from_uri = format!("sip:+{caller}@127.0.0.1");
        let t0 = trunx::runtime::clock::now();
        let mut call = OutboundCall::new(t0, p, Ids { call_id: call_id.clone(), from_tag: tag.clone(), seed });
        let t = call.poll_transmit().unwrap();
        let r = request(&t);
        proptest::prop_assert_eq!(r.method.as_str(), "INVITE");
        proptest::prop_assert_eq!(r.uri, format!("sip:+{user}@127.0.0.1:{port}"));
        proptest::prop_assert_eq!(r.call_id, call_id);
        proptest::prop_assert_eq!(r.cseq, 1);
        proptest::prop_assert_eq!(message::param(&r.from, "tag"), Some(tag));
        proptest::prop_assert_eq!(message::uri_of(&r.from), format!("sip:+{caller}@127.0.0.1"));
        let body = String::from_utf8(r.body).unwrap();
        let offer = sdp::SessionDescription::parse(&body).unwrap();
        proptest::prop_assert_eq!(offer.negotiate().unwrap().remote_rtp.port(), 10000);
    }
}
