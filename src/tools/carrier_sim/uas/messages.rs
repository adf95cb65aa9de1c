//! The SIP messages the simulated carrier writes: responses (with the answer SDP) and its own
//! BYE, and the raw header lookups they need.

use std::fmt::Write as _;
use std::time::Instant;

use super::{MediaCommand, OwnBye, Retransmit, State, Uas};
use crate::audio::g711::Law;
use crate::sip::message::{self, RequestInfo};
use crate::tools::carrier_sim::population::number_hash;

/// Values of a header (full and compact name), from the raw datagram: rsip's parse in
/// `sip::message` keeps only what a client needs, and a server also needs Contact and
/// Record-Route of the INVITE.
pub(super) fn raw_headers<'a>(
    datagram: &'a [u8],
    full: &str,
    compact: Option<&str>,
) -> Vec<&'a str> {
    let Ok(text) = std::str::from_utf8(datagram) else {
        return Vec::new();
    };
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    head.split("\r\n")
        .skip(1)
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            let name = name.trim();
            (name.eq_ignore_ascii_case(full)
                || compact.is_some_and(|c| name.eq_ignore_ascii_case(c)))
            .then(|| value.trim())
        })
        .collect()
}

pub(super) fn reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

impl Uas {
    /// A response to `req` (Via, From, To, Call-ID and CSeq copied; our To tag added).
    pub(super) fn response(
        &self,
        code: u16,
        req: &RequestInfo,
        record_route: &[String],
        tag: Option<&str>,
        sdp: Option<&str>,
    ) -> Vec<u8> {
        let mut m = String::with_capacity(512 + sdp.map_or(0, str::len));
        let _ = write!(m, "SIP/2.0 {code} {}\r\n", reason(code));
        for via in &req.vias {
            let _ = write!(m, "Via: {via}\r\n");
        }
        for rr in record_route {
            let _ = write!(m, "Record-Route: {rr}\r\n");
        }
        let _ = write!(m, "From: {}\r\n", req.from);
        match tag {
            Some(tag) if code > 100 && message::param(&req.to, "tag").is_none() => {
                let _ = write!(m, "To: {};tag={tag}\r\n", req.to);
            }
            _ => {
                let _ = write!(m, "To: {}\r\n", req.to);
            }
        }
        let _ = write!(
            m,
            "Call-ID: {}\r\nCSeq: {} {}\r\n",
            req.call_id, req.cseq, req.cseq_method
        );
        if req.method == "INVITE" && (101..300).contains(&code) {
            let _ = write!(m, "Contact: <sip:carrier@{}>\r\n", self.config.local);
        }
        if matches!(req.method.as_str(), "OPTIONS") || code == 405 {
            m.push_str("Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\nAccept: application/sdp\r\n");
        }
        m.push_str("Server: trunx-carrier-sim\r\n");
        match sdp {
            Some(body) => {
                let _ = write!(
                    m,
                    "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
            None => m.push_str("Content-Length: 0\r\n\r\n"),
        }
        m.into_bytes()
    }

    pub(super) fn answer_sdp(&self, serial: u64, law: Law) -> String {
        let rtp = self.config.rtp;
        let family = if rtp.is_ipv4() { "IP4" } else { "IP6" };
        let (pt, name) = match law {
            Law::Ulaw => (0, "PCMU"),
            Law::Alaw => (8, "PCMA"),
        };
        format!(
            "v=0\r\no=carrier {serial} 1 IN {family} {ip}\r\ns=trunx carrier-sim\r\nc=IN {family} {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {pt}\r\na=rtpmap:{pt} {name}/8000\r\na=ptime:20\r\na=sendrecv\r\n",
            ip = rtp.ip(),
            port = rtp.port()
        )
    }

    /// Our BYE for an answered call (hold cap, unacknowledged 2xx, shutdown).
    pub(super) fn send_bye(&mut self, now: Instant, serial: u64) {
        let call = &self.calls[&serial];
        let branch = format!(
            "z9hG4bKsim{:012x}",
            number_hash(&call.invite.call_id, self.config.seed, serial ^ 0xB7E) >> 16
        );
        let target = call
            .contact
            .clone()
            .unwrap_or_else(|| message::uri_of(&call.invite.from));
        let mut m = String::with_capacity(512);
        let _ = write!(
            m,
            "BYE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={branch};rport\r\nMax-Forwards: 70\r\n",
            self.config.local
        );
        for route in &call.record_route {
            let _ = write!(m, "Route: {route}\r\n");
        }
        let _ = write!(
            m,
            "From: {};tag={}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 BYE\r\nServer: trunx-carrier-sim\r\nContent-Length: 0\r\n\r\n",
            call.invite.to, call.tag, call.invite.from, call.invite.call_id
        );
        let bytes = m.into_bytes();
        let to = call.remote;
        let t1 = self.config.timing.t1;
        self.send(to, bytes.clone());
        let call = self.calls.get_mut(&serial).expect("the call exists");
        call.retransmit = None;
        call.hangup_at = None;
        call.bye = Some(OwnBye {
            bytes,
            branch,
            retransmit: Retransmit {
                next: now + t1,
                interval: t1,
                give_up: now + t1 * 64,
            },
        });
        if call.streaming {
            call.streaming = false;
            self.media.push_back(MediaCommand::Stop { stream: serial });
        }
        self.set_state(serial, State::Hanging, now);
    }
}
