//! One outbound call as a sans-IO state machine: the INVITE client transaction (RFC 3261
//! §17.1.1, Timers A, B, D), CANCEL and BYE non-INVITE transactions (Timers E, F, K), the
//! dialog (remote target, route set, CSeq), digest retry once on 401/407, and the mapping of
//! every ending to an outcome event (busy, noAnswer, failed with a cause).
//!
//! Input: datagrams and `now`; output: datagrams to send, events, the next deadline. It owns
//! no socket and reads no clock; randomness (Call-ID, tags, branches, cnonce) comes in `Ids`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::digest::{self, Challenge, Credentials};
use super::message::{self, Incoming, RequestInfo, ResponseInfo};
use super::sdp::{Negotiated, SessionDescription};

/// RFC 3261 Table 4 timer values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
    /// Cap on the INVITE retransmission interval (Timer A). RFC 3261 doubles it without a cap
    /// (0.5, 1, 2, 4, 8, 16 s); some carriers expect it capped at T2 like non-INVITE requests
    /// (0.5, 1, 2, 4, 4, ... s). `None` follows the RFC.
    pub invite_retransmit_cap: Option<Duration>,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            invite_retransmit_cap: None,
        }
    }
}

/// What to call and how.
#[derive(Clone, Debug)]
pub struct CallParams {
    pub request_uri: String,
    /// Caller ID, e.g. `sip:+15550001111@trunk.example.net`.
    pub from_uri: String,
    pub p_asserted_identity: Option<String>,
    pub local: SocketAddr,
    /// Where every request goes (the trunk or its outbound proxy).
    pub trunk: SocketAddr,
    pub sdp_offer: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub ring_timeout: Duration,
    pub timers: Timers,
}

/// Injected randomness.
#[derive(Clone, Debug)]
pub struct Ids {
    pub call_id: String,
    pub from_tag: String,
    /// Seed of branch and cnonce values.
    pub seed: u64,
}

/// Why a call ended without being answered, or how an answered call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered, then ended (`by_remote`: the far end sent BYE).
    Completed {
        by_remote: bool,
    },
    Busy {
        sip_status: u16,
    },
    NoAnswer {
        sip_status: Option<u16>,
        cause: &'static str,
    },
    Failed {
        sip_status: Option<u16>,
        cause: &'static str,
        retryable: bool,
    },
    /// Hung up by us before an answer.
    Cancelled,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallEvent {
    /// 180/183; `early_media` when the provisional response carried SDP (heard, never an
    /// answer).
    Ringing {
        sip_status: u16,
        early_media: Option<Negotiated>,
    },
    /// 200 OK to the INVITE: the call is up.
    Answered { media: Option<Negotiated> },
    /// The call is over; no more events follow.
    Ended(Outcome),
}

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Calling,
    Proceeding,
    /// Final non-2xx answered with ACK; absorbing retransmissions until Timer D.
    Completed,
    Confirmed,
    Terminating,
    Terminated,
}

#[derive(Clone, Debug)]
struct NonInvite {
    bytes: Vec<u8>,
    branch: String,
    cseq: u32,
    next_retransmit: Instant,
    interval: Duration,
    deadline: Instant,
}

pub struct OutboundCall {
    p: CallParams,
    ids: Ids,
    state: State,
    cseq: u32,
    branch: String,
    branch_counter: u64,
    invite: Vec<u8>,
    authorized: bool,
    /// Timer A (next retransmission, interval) and Timer B.
    timer_a: Option<(Instant, Duration)>,
    timer_b: Option<Instant>,
    timer_d: Option<Instant>,
    ring_deadline: Instant,
    got_provisional: bool,
    cancel_wanted: Option<Outcome>,
    cancel: Option<NonInvite>,
    bye: Option<NonInvite>,
    /// ACK sent for the final response (resent on its retransmissions).
    last_ack: Option<Vec<u8>>,
    remote_tag: Option<String>,
    remote_target: Option<String>,
    route_set: Vec<String>,
    ended: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<CallEvent>,
    malformed: u64,
}

impl OutboundCall {
    /// Builds the INVITE and queues it; the call starts now.
    pub fn new(now: Instant, p: CallParams, ids: Ids) -> Self {
        let ring_deadline = now + p.ring_timeout;
        let mut call = OutboundCall {
            state: State::Calling,
            cseq: 1,
            branch: String::new(),
            branch_counter: 0,
            invite: Vec::new(),
            authorized: false,
            timer_a: None,
            timer_b: None,
            timer_d: None,
            ring_deadline,
            got_provisional: false,
            cancel_wanted: None,
            cancel: None,
            bye: None,
            last_ack: None,
            remote_tag: None,
            remote_target: None,
            route_set: Vec::new(),
            ended: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            malformed: 0,
            p,
            ids,
        };
        call.send_invite(now, None);
        call
    }

    fn next_branch(&mut self) -> String {
        self.branch_counter += 1;
        let v = self
            .ids
            .seed
            .wrapping_add(self.branch_counter.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        format!("z9hG4bK{v:016x}")
    }

    fn local_party(&self) -> String {
        format!("<{}>;tag={}", self.p.from_uri, self.ids.from_tag)
    }

    fn remote_party(&self) -> String {
        match &self.remote_tag {
            Some(tag) => format!("<{}>;tag={tag}", self.p.request_uri),
            None => format!("<{}>", self.p.request_uri),
        }
    }

    fn send_invite(&mut self, now: Instant, authorization: Option<(&'static str, String)>) {
        self.branch = self.next_branch();
        let mut m = String::with_capacity(800);
        m.push_str(&format!("INVITE {} SIP/2.0\r\n", self.p.request_uri));
        m.push_str(&format!(
            "Via: SIP/2.0/UDP {};branch={};rport\r\n",
            self.p.local, self.branch
        ));
        m.push_str("Max-Forwards: 70\r\n");
        m.push_str(&format!("From: {}\r\n", self.local_party()));
        m.push_str(&format!("To: <{}>\r\n", self.p.request_uri));
        m.push_str(&format!("Call-ID: {}\r\n", self.ids.call_id));
        m.push_str(&format!("CSeq: {} INVITE\r\n", self.cseq));
        m.push_str(&format!("Contact: <sip:trunx@{}>\r\n", self.p.local));
        if let Some(pai) = &self.p.p_asserted_identity {
            m.push_str(&format!("P-Asserted-Identity: <{pai}>\r\n"));
        }
        if let Some((name, value)) = authorization {
            m.push_str(&format!("{name}: {value}\r\n"));
        }
        m.push_str("Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n");
        m.push_str("User-Agent: trunx\r\n");
        m.push_str("Content-Type: application/sdp\r\n");
        m.push_str(&format!(
            "Content-Length: {}\r\n\r\n{}",
            self.p.sdp_offer.len(),
            self.p.sdp_offer
        ));
        self.invite = m.into_bytes();
        self.state = State::Calling;
        self.timer_a = Some((now + self.p.timers.t1, self.p.timers.t1));
        self.timer_b = Some(now + self.p.timers.t1 * 64);
        self.push(self.invite.clone());
    }

    fn push(&mut self, bytes: Vec<u8>) {
        self.transmits.push_back(Transmit {
            to: self.p.trunk,
            bytes,
        });
    }

    fn end(&mut self, outcome: Outcome) {
        if !self.ended {
            self.ended = true;
            self.events.push_back(CallEvent::Ended(outcome));
        }
    }

    /// The ACK for a non-2xx final response: same branch, part of the INVITE transaction.
    fn ack_non_2xx(&self, to: &str) -> Vec<u8> {
        format!(
            "ACK {} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={};rport\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {} ACK\r\nContent-Length: 0\r\n\r\n",
            self.p.request_uri, self.p.local, self.branch, self.local_party(), self.ids.call_id, self.cseq
        )
        .into_bytes()
    }

    /// An in-dialog request (ACK for 2xx, BYE) to the remote target through the route set.
    fn in_dialog(&mut self, method: &str, cseq: u32) -> (Vec<u8>, String) {
        let branch = self.next_branch();
        let target = self
            .remote_target
            .clone()
            .unwrap_or_else(|| self.p.request_uri.clone());
        let mut m = format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={branch};rport\r\nMax-Forwards: 70\r\n",
            self.p.local
        );
        for route in &self.route_set {
            m.push_str(&format!("Route: {route}\r\n"));
        }
        m.push_str(&format!(
            "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
            self.local_party(),
            self.remote_party(),
            self.ids.call_id
        ));
        (m.into_bytes(), branch)
    }

    fn start_non_invite(
        &mut self,
        now: Instant,
        bytes: Vec<u8>,
        branch: String,
        cseq: u32,
    ) -> NonInvite {
        self.push(bytes.clone());
        NonInvite {
            bytes,
            branch,
            cseq,
            next_retransmit: now + self.p.timers.t1,
            interval: self.p.timers.t1,
            deadline: now + self.p.timers.t1 * 64,
        }
    }

    fn send_cancel(&mut self, now: Instant) {
        let bytes = format!(
            "CANCEL {} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={};rport\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: <{}>\r\nCall-ID: {}\r\nCSeq: {} CANCEL\r\nContent-Length: 0\r\n\r\n",
            self.p.request_uri, self.p.local, self.branch, self.local_party(), self.p.request_uri, self.ids.call_id, self.cseq
        )
        .into_bytes();
        let branch = self.branch.clone();
        let cseq = self.cseq;
        self.cancel = Some(self.start_non_invite(now, bytes, branch, cseq));
        // RFC 3261 §9.1: with no final response 64*T1 after the CANCEL, the INVITE is over.
        self.timer_b = Some(now + self.p.timers.t1 * 64);
    }

    fn send_bye(&mut self, now: Instant) {
        self.cseq += 1;
        let cseq = self.cseq;
        let (bytes, branch) = self.in_dialog("BYE", cseq);
        self.bye = Some(self.start_non_invite(now, bytes, branch, cseq));
        self.state = State::Terminating;
    }

    /// Hang up: BYE when answered, CANCEL while ringing (or as soon as a provisional response
    /// makes CANCEL allowed), nothing once over.
    pub fn hangup(&mut self, now: Instant) {
        match self.state {
            State::Confirmed => {
                self.send_bye(now);
                self.end(Outcome::Completed { by_remote: false });
            }
            State::Proceeding if self.cancel.is_none() => {
                self.cancel_wanted = Some(Outcome::Cancelled);
                self.send_cancel(now);
            }
            State::Calling => self.cancel_wanted = Some(Outcome::Cancelled),
            _ => {}
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated && self.transmits.is_empty()
    }

    /// Datagrams that did not parse or did not belong to this call.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    pub fn call_id(&self) -> &str {
        &self.ids.call_id
    }

    /// The earliest deadline to call `handle_timeout` at.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut consider = |d: Option<Instant>| {
            if let Some(d) = d {
                t = Some(t.map_or(d, |x| x.min(d)));
            }
        };
        if matches!(self.state, State::Calling | State::Proceeding) {
            consider(self.timer_a.map(|a| a.0));
            consider(self.timer_b);
            if self.cancel_wanted.is_none() {
                consider(Some(self.ring_deadline));
            }
        }
        consider(self.timer_d);
        for tx in [&self.cancel, &self.bye].into_iter().flatten() {
            consider(Some(tx.next_retransmit.min(tx.deadline)));
        }
        t
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.state, State::Calling | State::Proceeding) {
            if now >= self.ring_deadline && self.cancel_wanted.is_none() {
                self.cancel_wanted = Some(Outcome::NoAnswer {
                    sip_status: None,
                    cause: "ring_timeout",
                });
                if self.got_provisional {
                    self.send_cancel(now);
                }
            }
            if let Some((at, interval)) = self.timer_a
                && self.state == State::Calling
                && now >= at
            {
                self.push(self.invite.clone());
                let next = match self.p.timers.invite_retransmit_cap {
                    Some(cap) => (interval * 2).min(cap),
                    None => interval * 2,
                };
                self.timer_a = Some((now + next, next));
            }
            if self.timer_b.is_some_and(|b| now >= b) {
                self.state = State::Terminated;
                self.timer_a = None;
                self.timer_b = None;
                let outcome = match self.cancel_wanted.take() {
                    Some(o) if self.got_provisional => o,
                    _ => Outcome::Failed {
                        sip_status: None,
                        cause: "timeout",
                        retryable: true,
                    },
                };
                self.end(outcome);
            }
        }
        if self.timer_d.is_some_and(|d| now >= d) {
            self.timer_d = None;
            if self.state == State::Completed {
                self.state = State::Terminated;
            }
        }
        let t2 = self.p.timers.t2;
        let mut resend = Vec::new();
        for (is_bye, tx) in [(false, &mut self.cancel), (true, &mut self.bye)] {
            if let Some(t) = tx {
                if now >= t.deadline {
                    *tx = None;
                    if is_bye {
                        self.state = State::Terminated;
                    }
                } else if now >= t.next_retransmit {
                    resend.push(t.bytes.clone());
                    t.interval = (t.interval * 2).min(t2);
                    t.next_retransmit = now + t.interval;
                }
            }
        }
        for bytes in resend {
            self.push(bytes);
        }
    }

    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        match message::parse(datagram) {
            Ok(Incoming::Response(r)) if r.call_id == self.ids.call_id => self.on_response(now, r),
            Ok(Incoming::Request(r)) if r.call_id == self.ids.call_id => {
                self.on_request(now, from, r)
            }
            _ => self.malformed += 1,
        }
    }

    fn on_response(&mut self, now: Instant, r: ResponseInfo) {
        match r.cseq_method.as_str() {
            "INVITE" if r.cseq == self.cseq || (r.status < 300 && r.status >= 200) => {
                self.on_invite_response(now, r)
            }
            "CANCEL" => {
                if self.cancel.as_ref().is_some_and(|c| c.branch == r.branch) && r.status >= 200 {
                    self.cancel = None;
                }
            }
            "BYE" => {
                if self
                    .bye
                    .as_ref()
                    .is_some_and(|b| b.branch == r.branch && b.cseq == r.cseq)
                    && r.status >= 200
                {
                    self.bye = None;
                    self.state = State::Terminated;
                }
            }
            _ => self.malformed += 1,
        }
    }

    fn on_invite_response(&mut self, now: Instant, r: ResponseInfo) {
        let status = r.status;
        if (200..300).contains(&status) {
            return self.on_invite_2xx(now, r);
        }
        if r.branch != self.branch {
            // A late response to an INVITE we already replaced (after a challenge).
            return;
        }
        match self.state {
            State::Calling | State::Proceeding if status < 200 => {
                // Timer B only guards the Calling state (RFC 3261 §17.1.1.2); from here the
                // ring timeout decides.
                self.state = State::Proceeding;
                self.timer_a = None;
                self.timer_b = None;
                if status > 100 {
                    let early_media = (!r.body.is_empty())
                        .then(|| std::str::from_utf8(&r.body).ok())
                        .flatten()
                        .and_then(|b| SessionDescription::parse(b).ok())
                        .and_then(|sd| sd.negotiate().ok());
                    self.events.push_back(CallEvent::Ringing {
                        sip_status: status,
                        early_media,
                    });
                }
                if !self.got_provisional {
                    self.got_provisional = true;
                    if self.cancel_wanted.is_some() && self.cancel.is_none() {
                        self.send_cancel(now);
                    }
                }
            }
            State::Calling | State::Proceeding => {
                let ack = self.ack_non_2xx(&r.to);
                self.push(ack.clone());
                self.last_ack = Some(ack);
                self.timer_a = None;
                self.timer_b = None;
                self.state = State::Completed;
                self.timer_d = Some(now + Duration::from_secs(32).max(self.p.timers.t1 * 64 / 2));
                if (status == 401 || status == 407) && self.cancel_wanted.is_none() {
                    if let Some(auth) = self.authorize(&r) {
                        self.cseq += 1;
                        self.timer_d = None;
                        self.last_ack = None;
                        self.got_provisional = false;
                        self.send_invite(now, Some(auth));
                        return;
                    }
                    self.state = State::Completed;
                    return self.end(Outcome::Failed {
                        sip_status: Some(status),
                        cause: "auth_failed",
                        retryable: false,
                    });
                }
                let outcome = match self.cancel_wanted.take() {
                    Some(o) if status == 487 => o,
                    _ => map_final(status),
                };
                self.end(outcome);
            }
            State::Completed if status >= 300 => {
                // Retransmitted final response: the ACK was lost.
                if let Some(ack) = self.last_ack.clone() {
                    self.push(ack);
                }
            }
            _ => {}
        }
    }

    /// Answers a challenge once; `None` when there is nothing (more) to answer with.
    fn authorize(&mut self, r: &ResponseInfo) -> Option<(&'static str, String)> {
        if self.authorized {
            return None;
        }
        let (username, password) = (self.p.username.as_deref()?, self.p.password.as_deref()?);
        let (header, value) = match r.status {
            407 => ("Proxy-Authorization", r.proxy_authenticate.as_deref()?),
            _ => ("Authorization", r.www_authenticate.as_deref()?),
        };
        let challenge = Challenge::parse(value).ok()?;
        self.authorized = true;
        let cnonce = format!(
            "{:016x}",
            self.ids.seed.rotate_left(17) ^ 0x5DEE_CE66_D1CE_4E5B
        );
        Some((
            header,
            digest::authorization(
                &challenge,
                Credentials { username, password },
                "INVITE",
                &self.p.request_uri,
                &cnonce,
                1,
            ),
        ))
    }

    fn on_invite_2xx(&mut self, now: Instant, r: ResponseInfo) {
        let first = self.remote_tag.is_none();
        if first {
            self.remote_tag = r.to_tag.clone();
            self.remote_target = r.contact_uri.clone();
            self.route_set = r.record_route.iter().rev().cloned().collect();
        }
        if r.to_tag != self.remote_tag {
            return;
        }
        let (ack, _) = self.in_dialog("ACK", r.cseq);
        self.push(ack);
        if !first || self.ended {
            return;
        }
        self.timer_a = None;
        self.timer_b = None;
        self.state = State::Confirmed;
        if let Some(outcome) = self.cancel_wanted.take() {
            // Our CANCEL crossed the 200: the call is up, so end it with BYE.
            self.cancel = None;
            self.send_bye(now);
            return self.end(outcome);
        }
        let media = std::str::from_utf8(&r.body)
            .ok()
            .and_then(|b| SessionDescription::parse(b).ok())
            .and_then(|sd| sd.negotiate().ok());
        self.events.push_back(CallEvent::Answered { media });
    }

    fn on_request(&mut self, _now: Instant, from: SocketAddr, r: RequestInfo) {
        // An ACK is never answered (RFC 3261 §17.2.1): ours need none, a stray one is dropped.
        if r.method == "ACK" {
            self.malformed += 1;
            return;
        }
        let mut m = String::from(if r.method != r.cseq_method {
            // RFC 4475 mismatch01: the CSeq method must be the request's.
            "SIP/2.0 400 Bad Request\r\n"
        } else if r.method == "BYE" || r.method == "OPTIONS" {
            "SIP/2.0 200 OK\r\n"
        } else {
            "SIP/2.0 501 Not Implemented\r\n"
        });
        for via in &r.vias {
            m.push_str(&format!("Via: {via}\r\n"));
        }
        m.push_str(&format!(
            "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {}\r\nContent-Length: 0\r\n\r\n",
            r.from, r.to, r.call_id, r.cseq, r.cseq_method
        ));
        self.transmits.push_back(Transmit {
            to: from,
            bytes: m.into_bytes(),
        });
        if r.method == "BYE" && r.cseq_method == "BYE" && self.state == State::Confirmed {
            self.state = State::Terminated;
            self.end(Outcome::Completed { by_remote: true });
        }
    }
}

/// RFC 3261 final statuses to dialer outcomes.
fn map_final(status: u16) -> Outcome {
    match status {
        486 | 600 => Outcome::Busy { sip_status: status },
        404 | 410 | 484 | 604 => Outcome::Failed {
            sip_status: Some(status),
            cause: "invalid_number",
            retryable: false,
        },
        408 | 480 => Outcome::NoAnswer {
            sip_status: Some(status),
            cause: "no_answer",
        },
        500..=599 => Outcome::Failed {
            sip_status: Some(status),
            cause: "server_error",
            retryable: true,
        },
        _ => Outcome::Failed {
            sip_status: Some(status),
            cause: "rejected",
            retryable: false,
        },
    }
}
