//! RFC 4475 (SIP torture test messages), section 3, against trunx's user agent. The messages
//! are in tests/rfc4475/*.dat with CRLF line ends and their raw bytes (NUL, BEL, UTF-8).
//!
//! trunx is a UAC: it answers requests only inside its own calls, so every one of these,
//! arriving out of the blue, is dropped and counted, never answered (no amplification). What
//! is checked: (1) the parser gives valid messages their meaning and rejects the invalid ones
//! it can tell at the syntax level; (2) inside a live call (its Call-ID spliced in) none of
//! them derails the INVITE transaction, the call still answers on the real 200; (3) over UDP
//! at a running UA, all of them several times, then a real call still completes with the right
//! AMD result.

use std::net::SocketAddr;
use std::time::Duration;

use trunx::sip::call::{CallEvent, CallParams, Ids, OutboundCall, Timers};
use trunx::sip::message::{Incoming, param, parse};

fn dat(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/rfc4475/{name}.dat", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn all() -> Vec<(String, Vec<u8>)> {
    let dir = format!("{}/tests/rfc4475", env!("CARGO_MANIFEST_DIR"));
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// §3.1.1 valid messages (and §3.2.1, RFC 2543 syntax): method or status, Call-ID, CSeq,
/// number of Vias, top branch, body length.
#[test]
fn valid_messages_parse_with_their_meaning() {
    type Want = (
        &'static str,
        &'static str,
        &'static str,
        u32,
        &'static str,
        usize,
        Option<&'static str>,
        usize,
    );
    let cases: &[Want] = &[
        (
            "wsinv",
            "INVITE",
            "wsinv.ndaksdj@192.0.2.1",
            9,
            "INVITE",
            3,
            Some("390skdjuw"),
            150,
        ),
        (
            "esc01",
            "INVITE",
            "esc01.239409asdfakjkn23onasd0-3234",
            234234,
            "INVITE",
            1,
            Some("z9hG4bKkdjuw"),
            150,
        ),
        (
            "escnull",
            "REGISTER",
            "escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd",
            14398234,
            "REGISTER",
            1,
            Some("z9hG4bKkdjuw"),
            0,
        ),
        (
            "lwsdisp",
            "OPTIONS",
            "lwsdisp.1234abcd@funky.example.com",
            60,
            "OPTIONS",
            1,
            Some("z9hG4bKkdjuw"),
            0,
        ),
        // Two requests in one datagram: the second is past Content-Length and discarded.
        (
            "dblreq",
            "REGISTER",
            "dblreq.0ha0isndaksdj99sdfafnl3lk233412",
            8,
            "REGISTER",
            1,
            Some("z9hG4bKkdjuw23492"),
            0,
        ),
        (
            "transports",
            "OPTIONS",
            "transports.kijh4akdnaqjkwendsasfdj",
            60,
            "OPTIONS",
            5,
            Some("z9hG4bKkdjuw"),
            0,
        ),
        (
            "inv2543",
            "INVITE",
            "inv2543.1717@ift.client.example.com",
            56,
            "INVITE",
            1,
            None,
            150,
        ),
        (
            "unreason",
            "200",
            "unreason.1234ksdfak3j2erwedfsASdf",
            35,
            "INVITE",
            1,
            Some("z9hG4bK1324923"),
            154,
        ),
        (
            "noreason",
            "100",
            "noreason.asndj203insdf99223ndf",
            35,
            "INVITE",
            1,
            Some("z9hG4bK2398ndaoe"),
            0,
        ),
    ];
    for &(name, what, call_id, cseq, cseq_method, vias, branch, body) in cases {
        let m = parse(&dat(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = match &m {
            Incoming::Request(r) => (
                r.method.clone(),
                r.call_id.clone(),
                r.cseq,
                r.cseq_method.clone(),
                r.vias.len(),
                param(&r.vias[0], "branch"),
                r.body.len(),
            ),
            Incoming::Response(r) => (
                r.status.to_string(),
                r.call_id.clone(),
                r.cseq,
                r.cseq_method.clone(),
                1,
                Some(r.branch.clone()),
                r.body.len(),
            ),
        };
        let want = (
            what.to_string(),
            call_id.to_string(),
            cseq,
            cseq_method.to_string(),
            vias,
            branch.map(str::to_string),
            body,
        );
        assert_eq!(got, want, "{name}");
    }
    // wsinv's folded To keeps its tag; its folded Vias are three.
    let Ok(Incoming::Request(w)) = parse(&dat("wsinv")) else {
        panic!()
    };
    assert_eq!(param(&w.to, "tag").as_deref(), Some("1918181833n"));
    assert_eq!(param(&w.vias[2], "branch").as_deref(), Some("z9hG4bK30239"));
}

/// Valid per the RFC, but outside what rsip's request line accepts (an unknown method with
/// token characters, a `;` user part): trunx never sends or expects such requests, so they
/// are dropped as unparsable like junk (counted, never answered). A known deviation.
#[test]
fn valid_requests_rsip_cannot_read_are_dropped() {
    for name in ["intmeth", "esc02", "semiuri"] {
        assert!(parse(&dat(name)).is_err(), "{name}");
    }
}

/// §3.1.2 syntactically invalid messages the parser rejects: dropped and counted.
#[test]
fn invalid_messages_are_rejected() {
    for name in [
        "clerr",
        "ncl",
        "scalar02",
        "scalarlg",
        "lwsruri",
        "lwsstart",
        "trws",
        "escruri",
        "badvers",
        "mismatch02",
        "bigcode",
        "insuf",
        "mcl01",
        "unkscm",
    ] {
        assert!(parse(&dat(name)).is_err(), "{name} must be rejected");
    }
}

fn params() -> CallParams {
    CallParams {
        request_uri: "sip:+15551234567@127.0.0.1:5070".into(),
        from_uri: "sip:+15550001111@127.0.0.1".into(),
        p_asserted_identity: None,
        local: "127.0.0.1:5062".parse().unwrap(),
        trunk: "127.0.0.1:5070".parse().unwrap(),
        sdp_offer: trunx::sip::sdp::offer("127.0.0.1".parse().unwrap(), 6000, 1, 1),
        username: None,
        password: None,
        ring_timeout: Duration::from_secs(30),
        timers: Timers::default(),
    }
}

fn splice_call_id(data: &[u8], call_id: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut in_head = true;
    for line in data.split_inclusive(|&b| b == b'\n') {
        let lower = line.to_ascii_lowercase();
        if in_head && (lower.starts_with(b"call-id:") || lower.starts_with(b"i:")) {
            out.extend_from_slice(format!("Call-ID: {call_id}\r\n").as_bytes());
        } else {
            out.extend_from_slice(line);
        }
        if line == b"\r\n" {
            in_head = false;
        }
    }
    out
}

/// Every message inside a ringing call's dialog (its Call-ID spliced in): the call neither
/// ends nor answers; requests get at most one response each, never larger than the request
/// plus its status line; an ACK gets none; then the real 200 answers the call.
#[test]
fn torture_inside_a_ringing_call_leaves_it_intact() {
    let t0 = trunx::runtime::clock::now();
    let ids = Ids {
        call_id: "torture-1".into(),
        from_tag: "ft1".into(),
        seed: 3,
    };
    let mut call = OutboundCall::new(t0, params(), ids);
    let invite = call.poll_transmit().expect("the INVITE");
    let Ok(Incoming::Request(inv)) = parse(&invite.bytes) else {
        panic!()
    };
    let trunk: SocketAddr = "127.0.0.1:5070".parse().unwrap();
    let head = |status: &str| {
        format!(
            "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=uas1\r\nCall-ID: torture-1\r\nCSeq: {} INVITE\r\nContact: <sip:uas@127.0.0.1:5070>\r\n",
            inv.vias[0], inv.from, inv.to, inv.cseq
        )
    };
    call.handle_datagram(
        t0,
        trunk,
        format!("{}Content-Length: 0\r\n\r\n", head("180 Ringing")).as_bytes(),
    );
    assert!(matches!(call.poll_event(), Some(CallEvent::Ringing { .. })));
    let mut now = t0;
    for (name, bytes) in all() {
        // Responses that would be accepted as ours are excluded: the 200 OKs (unreason, bcast)
        // answer the INVITE by design when they carry our Call-ID and a 2xx.
        if ["unreason", "bcast"].contains(&name.as_str()) {
            continue;
        }
        now += Duration::from_millis(10);
        let spliced = splice_call_id(&bytes, "torture-1");
        call.handle_datagram(now, trunk, &spliced);
        let mut answers = 0;
        while let Some(t) = call.poll_transmit() {
            answers += 1;
            assert!(
                t.bytes.len() <= spliced.len() + 64,
                "{name}: a {} byte answer to a {} byte request",
                t.bytes.len(),
                spliced.len()
            );
        }
        assert!(answers <= 1, "{name}: {answers} datagrams sent");
        assert_eq!(call.poll_event(), None, "{name} changed the call");
        assert!(!call.is_terminated(), "{name} ended the call");
    }
    let ack = b"ACK sip:trunx@127.0.0.1:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKa\r\nFrom: <sip:a@b>;tag=x\r\nTo: <sip:c@d>;tag=y\r\nCall-ID: torture-1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n";
    call.handle_datagram(now, trunk, ack);
    assert_eq!(call.poll_transmit(), None, "an ACK is never answered");
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6002 RTP/AVP 0\r\n";
    let ok = format!(
        "{}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        head("200 OK"),
        sdp.len()
    );
    call.handle_datagram(now, trunk, ok.as_bytes());
    assert!(matches!(
        call.poll_event(),
        Some(CallEvent::Answered { media: Some(_) })
    ));
}

/// Over UDP at a running UA: every message five times while a call rings and talks, then the
/// call's result is the carrier's truth and a second call after the torture completes too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ua_keeps_serving_calls_after_the_torture() {
    use trunx::amd::AmdConfig;
    use trunx::runtime::call::dial::{DialOptions, dial};
    use trunx::tools::carrier_sim::{
        CarrierSim, CarrierSimConfig, PopulationMix, Scenario, SimTiming, scenario_for,
    };
    let seed = 42;
    let sim = CarrierSim::start(CarrierSimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        rtp_ports: 35_000..=35_099,
        seed,
        mix: PopulationMix::default(),
        timing: SimTiming {
            alert_ms: 20..=50,
            answer_ms: 300..=500,
            ..SimTiming::default()
        },
        max_calls: 100,
    })
    .await
    .unwrap();
    let number = (0..200_000)
        .map(|i| format!("+1555{i:07}"))
        .find(|n| {
            let s = scenario_for(n, &PopulationMix::default(), seed);
            matches!(s, Scenario::Human { .. })
                && s.playback()
                    .is_some_and(|p| p.file() == "0008-human_hello_hello.wav")
        })
        .unwrap();
    let model =
        trunx::runtime::amd::files::load_beep_model(None, None).unwrap_or_else(|e| panic!("{e}"));
    let sip_addr: SocketAddr = "127.0.0.1:35200".parse().unwrap();
    let options = |rtp: u16| DialOptions {
        target: number.clone(),
        from: "+15550001111".into(),
        trunk: format!("sip:{}", sim.sip_addr()),
        username: None,
        password: None,
        ring_timeout: Duration::from_secs(20),
        sip_addr,
        rtp_ports: rtp..=rtp + 1,
        send_pai: false,
        voicemail: None,
        agent: None,
        campaign_id: None,
    };
    let first = options(35_300);
    let call = {
        let model = model.clone();
        tokio::spawn(async move { dial(&first, &AmdConfig::default(), Some(model)).await })
    };
    let sender = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut sent = 0u64;
    for round in 0..5 {
        for (_, bytes) in all() {
            sender.send_to(&bytes, sip_addr).await.unwrap();
            sent += bytes.len() as u64;
        }
        tokio::time::sleep(Duration::from_millis(100 * round)).await;
    }
    let report = tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(report.outcome, "answered", "{report:?}");
    assert_eq!(report.amd, Some("human"), "{report:?}");
    // Nothing came back to the torturer.
    let mut buf = [0u8; 2048];
    let answered =
        tokio::time::timeout(Duration::from_millis(300), sender.recv_from(&mut buf)).await;
    assert!(
        answered.is_err(),
        "the UA answered a torture message ({sent} bytes sent)"
    );
    let second = options(35_302);
    let again = tokio::time::timeout(
        Duration::from_secs(60),
        dial(&second, &AmdConfig::default(), Some(model)),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        (again.outcome, again.amd),
        ("answered", Some("human")),
        "{again:?}"
    );
    sim.shutdown().await;
}
