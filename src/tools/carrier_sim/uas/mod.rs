//! The simulated carrier's SIP side: a sans-IO user agent server for many calls at once.
//! Datagrams and `now` go in; datagrams to send, media commands and the next deadline come
//! out. It reads no clock and owns no socket (the tool in `carrier_sim.rs` and `media.rs` does).
//!
//! Per call: INVITE -> `100 Trying` at once, then by the number's scenario: `180 Ringing`
//! after the post-dial delay and `200 OK` (SDP answer, PCMU or PCMA as the offer prefers) after
//! the ring time; `486 Busy Here` or `404 Not Found` after the post-dial delay without
//! alerting (as networks reject before ringing); or `180` and nothing until CANCEL (`200` +
//! `487`) or the ring cap (`480`). Final responses are retransmitted (Timer G, doubling to T2)
//! until the ACK, for at most 64*T1 (Timer H; an unacknowledged 2xx then ends with BYE). A
//! retransmitted INVITE gets the last response again. BYE from the caller gets `200`; the sim
//! sends BYE itself after the hold cap. OPTIONS gets `200`. Malformed datagrams are counted
//! and dropped. Finished calls linger 32 s to answer retransmissions, then are forgotten.
//!
//! Responses go back to the datagram's source address (what `rport` asks for, RFC 3581), and
//! the sim's own BYE goes there too, with the INVITE's Record-Route as its Route set.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::population::{
    Playback, PopulationMix, Scenario, ScenarioKind, catalogue, jitter_ms, number_hash,
    scenario_for,
};
use crate::audio::g711::Law;
use crate::sip::call::Transmit;
use crate::sip::message::{self, Incoming, RequestInfo, ResponseInfo};
use crate::sip::sdp::SessionDescription;

use messages::raw_headers;

mod messages;

/// Largest SIP datagram the sim accepts (a trunx INVITE is about 1 KB).
pub const MAX_SIM_DATAGRAM: usize = 16 * 1024;
/// How long a finished call is remembered (Timer J / 64*T1 with the default T1).
const LINGER: Duration = Duration::from_secs(32);
const SALT_ALERT: u64 = 11;
const SALT_ANSWER: u64 = 12;
const SALT_SSRC: u64 = 13;

/// When things happen on a call.
#[derive(Clone, Debug, PartialEq)]
pub struct SimTiming {
    /// Post-dial delay before `180 Ringing` (or before busy/invalid), ms, jittered per number.
    pub alert_ms: std::ops::RangeInclusive<u64>,
    /// Ring time from `180` to the answer, ms, jittered per number.
    pub answer_ms: std::ops::RangeInclusive<u64>,
    /// A call nobody answers rings this long, then gets `480 Temporarily Unavailable`.
    pub ring_cap: Duration,
    /// The sim hangs up (BYE) an answered call the caller has not ended after this long.
    pub max_call: Duration,
    /// RFC 3261 T1 and T2 for retransmissions.
    pub t1: Duration,
    pub t2: Duration,
}

impl Default for SimTiming {
    fn default() -> Self {
        SimTiming {
            alert_ms: 50..=250,
            answer_ms: 1000..=4000,
            ring_cap: Duration::from_secs(90),
            max_call: Duration::from_secs(120),
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
        }
    }
}

#[derive(Clone, Debug)]
pub struct UasConfig {
    /// The SIP address (Contact, Via of our BYE).
    pub local: SocketAddr,
    /// The shared RTP socket every answer's SDP names.
    pub rtp: SocketAddr,
    pub seed: u64,
    pub mix: PopulationMix,
    pub timing: SimTiming,
    /// Calls held at once (ringing, talking or lingering); more get `503`.
    pub max_calls: usize,
}

/// What the media side must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaCommand {
    /// Stream `playback` (then silence) to `to` from the next 20 ms tick.
    Start {
        stream: u64,
        to: SocketAddr,
        law: Law,
        playback: Playback,
        ssrc: u32,
    },
    Stop {
        stream: u64,
    },
}

/// Counters of the UAS (the runtime adds its media counters).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UasCounters {
    /// New calls (INVITEs with a new Call-ID), by scenario kind in [`ScenarioKind::ALL`] order.
    pub calls_by_scenario: [u64; 6],
    /// Answered calls by the recording they played (index into the catalogue).
    pub calls_by_recording: Vec<u64>,
    pub answered: u64,
    pub rejected_busy: u64,
    pub rejected_invalid: u64,
    pub cancelled: u64,
    pub ring_cap_reached: u64,
    pub no_acceptable_codec: u64,
    pub overload_rejected: u64,
    pub ack_timeouts: u64,
    pub bye_received: u64,
    pub sim_hangups: u64,
    pub invite_retransmissions: u64,
    pub options: u64,
    pub unknown_dialog: u64,
    pub malformed_dropped: u64,
    pub keepalives: u64,
    pub concurrent_calls: u64,
    pub peak_concurrent_calls: u64,
    /// New calls (INVITEs with a new Call-ID) by dialled number, overload-rejected ones too:
    /// the carrier's own count that proves no prospect was dialled twice.
    pub invites_by_number: std::collections::BTreeMap<String, u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// INVITE received, nothing but 100 sent.
    Trying,
    /// 180 sent.
    Ringing,
    /// Final response sent, waiting for the ACK (`answered` when it was a 2xx).
    AwaitingAck {
        answered: bool,
    },
    Confirmed,
    /// Our BYE is out.
    Hanging,
    /// Over; kept to answer retransmissions.
    Done,
}

struct Retransmit {
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

struct OwnBye {
    bytes: Vec<u8>,
    branch: String,
    retransmit: Retransmit,
}

struct Call {
    scenario: Scenario,
    number: String,
    remote: SocketAddr,
    invite: RequestInfo,
    branch: String,
    record_route: Vec<String>,
    contact: Option<String>,
    tag: String,
    state: State,
    last_response: Vec<u8>,
    alert_at: Option<Instant>,
    final_at: Option<Instant>,
    /// Timer G/H for our final response.
    retransmit: Option<Retransmit>,
    hangup_at: Option<Instant>,
    bye: Option<OwnBye>,
    linger_until: Option<Instant>,
    /// The negotiated law and where the caller wants media, when the offer was usable.
    media: Option<(Law, SocketAddr)>,
    streaming: bool,
    /// The earliest timer entry queued for this call.
    scheduled: Option<Instant>,
}

impl Call {
    fn next_deadline(&self) -> Option<Instant> {
        [
            self.alert_at,
            self.final_at,
            self.retransmit.as_ref().map(|r| r.next.min(r.give_up)),
            self.hangup_at,
            self.bye
                .as_ref()
                .map(|b| b.retransmit.next.min(b.retransmit.give_up)),
            self.linger_until,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

pub struct Uas {
    config: UasConfig,
    calls: HashMap<u64, Call>,
    by_call_id: HashMap<String, u64>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    next_serial: u64,
    transmits: VecDeque<Transmit>,
    media: VecDeque<MediaCommand>,
    counters: UasCounters,
}

/// The user part of a request URI: `sip:+15551234567@host;user=phone` -> `+15551234567`.
pub fn dialled_number(uri: &str) -> &str {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))
        .or_else(|| uri.strip_prefix("tel:"))
        .unwrap_or(uri);
    let user = match rest.split_once('@') {
        Some((user, _)) => user,
        None if uri.starts_with("tel:") => rest,
        None => "",
    };
    user.split(';').next().unwrap_or("").trim()
}

impl Uas {
    pub fn new(config: UasConfig) -> Self {
        let recordings = catalogue().recordings.len();
        Uas {
            config,
            calls: HashMap::new(),
            by_call_id: HashMap::new(),
            timers: BinaryHeap::new(),
            next_serial: 1,
            transmits: VecDeque::new(),
            media: VecDeque::new(),
            counters: UasCounters {
                calls_by_recording: vec![0; recordings],
                ..UasCounters::default()
            },
        }
    }

    pub fn config(&self) -> &UasConfig {
        &self.config
    }

    pub fn counters(&self) -> &UasCounters {
        &self.counters
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_media(&mut self) -> Option<MediaCommand> {
        self.media.pop_front()
    }

    /// The earliest time to call [`Uas::handle_timeout`] at.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        // Entries for calls whose deadline moved are dropped lazily here.
        while let Some(Reverse((at, serial))) = self.timers.peek().copied() {
            match self.calls.get(&serial) {
                Some(c) if c.scheduled == Some(at) => return Some(at),
                _ => {
                    self.timers.pop();
                }
            }
        }
        None
    }

    fn send(&mut self, to: SocketAddr, bytes: Vec<u8>) {
        self.transmits.push_back(Transmit { to, bytes });
    }

    /// Queues a timer entry when the call's earliest deadline moved earlier (or was none).
    fn reschedule(&mut self, serial: u64) {
        let Some(call) = self.calls.get_mut(&serial) else {
            return;
        };
        let next = call.next_deadline();
        if next != call.scheduled {
            call.scheduled = next;
            if let Some(at) = next {
                self.timers.push(Reverse((at, serial)));
            }
        }
    }

    fn set_state(&mut self, serial: u64, state: State, now: Instant) {
        let Some(call) = self.calls.get_mut(&serial) else {
            return;
        };
        let was_live = call.state != State::Done;
        call.state = state;
        if state == State::Done {
            call.alert_at = None;
            call.final_at = None;
            call.retransmit = None;
            call.hangup_at = None;
            call.bye = None;
            call.linger_until = Some(now + LINGER);
            if call.streaming {
                call.streaming = false;
                self.media.push_back(MediaCommand::Stop { stream: serial });
            }
            if was_live {
                self.counters.concurrent_calls -= 1;
            }
        }
    }

    /// Feeds one datagram from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        if datagram.len() > MAX_SIM_DATAGRAM {
            self.counters.malformed_dropped += 1;
            return;
        }
        if datagram.iter().all(u8::is_ascii_whitespace) {
            // RFC 5626 CRLF keepalives.
            self.counters.keepalives += 1;
            return;
        }
        match message::parse(datagram) {
            Ok(Incoming::Request(req)) => self.on_request(now, from, req, datagram),
            Ok(Incoming::Response(resp)) => self.on_response(now, resp),
            Err(_) => self.counters.malformed_dropped += 1,
        }
    }

    fn on_request(&mut self, now: Instant, from: SocketAddr, req: RequestInfo, raw: &[u8]) {
        let serial = self.by_call_id.get(&req.call_id).copied();
        let branch = req
            .vias
            .first()
            .and_then(|v| message::param(v, "branch"))
            .unwrap_or_default();
        match (req.method.as_str(), serial) {
            ("INVITE", None) => self.new_call(now, from, req, branch, raw),
            ("INVITE", Some(serial)) => {
                let call = &self.calls[&serial];
                if call.branch == branch || message::param(&req.to, "tag").is_none() {
                    self.counters.invite_retransmissions += 1;
                    let (to, bytes) = (call.remote, call.last_response.clone());
                    self.send(to, bytes);
                } else {
                    // A re-INVITE (session refresh): the same answer again, its ACK absorbed.
                    let sdp = call.media.map(|(law, _)| self.answer_sdp(serial, law));
                    let code = if sdp.is_some() && call.state == State::Confirmed {
                        200
                    } else {
                        488
                    };
                    let bytes = self.response(
                        code,
                        &req,
                        &call.record_route,
                        Some(&call.tag),
                        sdp.as_deref().filter(|_| code == 200),
                    );
                    self.send(from, bytes);
                }
            }
            ("ACK", Some(serial)) => self.on_ack(now, serial),
            ("ACK", None) => {}
            ("CANCEL", Some(serial)) => self.on_cancel(now, from, serial, &req, &branch),
            ("BYE", Some(serial)) => {
                let call = &self.calls[&serial];
                let bytes = self.response(200, &req, &[], Some(&call.tag), None);
                let live = call.state != State::Done;
                self.send(from, bytes);
                if live {
                    self.counters.bye_received += 1;
                    self.set_state(serial, State::Done, now);
                    self.reschedule(serial);
                }
            }
            ("CANCEL" | "BYE", None) => {
                self.counters.unknown_dialog += 1;
                let bytes = self.response(481, &req, &[], Some("sim"), None);
                self.send(from, bytes);
            }
            ("OPTIONS", _) => {
                self.counters.options += 1;
                let bytes = self.response(200, &req, &[], Some("sim"), None);
                self.send(from, bytes);
            }
            _ => {
                let bytes = self.response(405, &req, &[], Some("sim"), None);
                self.send(from, bytes);
            }
        }
    }

    fn new_call(
        &mut self,
        now: Instant,
        from: SocketAddr,
        invite: RequestInfo,
        branch: String,
        raw: &[u8],
    ) {
        let record_route: Vec<String> = raw_headers(raw, "Record-Route", None)
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
            .take(16)
            .collect();
        *self
            .counters
            .invites_by_number
            .entry(dialled_number(&invite.uri).to_string())
            .or_insert(0) += 1;
        if self.calls.len() >= self.config.max_calls {
            self.counters.overload_rejected += 1;
            let bytes = self.response(503, &invite, &record_route, Some("sim"), None);
            self.send(from, bytes);
            return;
        }
        let serial = self.next_serial;
        self.next_serial += 1;
        let number = dialled_number(&invite.uri).to_string();
        let (seed, timing) = (self.config.seed, &self.config.timing);
        let scenario = if number.is_empty() {
            Scenario::Invalid
        } else {
            scenario_for(&number, &self.config.mix, seed)
        };
        let alert = Duration::from_millis(jitter_ms(&number, seed, SALT_ALERT, &timing.alert_ms));
        let ring = Duration::from_millis(jitter_ms(&number, seed, SALT_ANSWER, &timing.answer_ms));
        let (alert_at, final_at) = match scenario.kind() {
            ScenarioKind::Busy | ScenarioKind::Invalid => (None, Some(now + alert)),
            ScenarioKind::NoAnswer => (Some(now + alert), Some(now + alert + timing.ring_cap)),
            _ => (Some(now + alert), Some(now + alert + ring)),
        };
        let media = std::str::from_utf8(&invite.body)
            .ok()
            .and_then(|b| SessionDescription::parse(b).ok())
            .and_then(|sd| sd.negotiate().ok())
            .map(|n| (n.law, n.remote_rtp));
        let contact = raw_headers(raw, "Contact", Some("m"))
            .first()
            .map(|c| message::uri_of(c));
        let tag = format!(
            "cs{:012x}",
            number_hash(&invite.call_id, seed, serial) >> 16
        );
        let trying = self.response(100, &invite, &record_route, None, None);
        self.send(from, trying.clone());
        self.counters.calls_by_scenario[scenario.kind().index()] += 1;
        self.counters.concurrent_calls += 1;
        self.counters.peak_concurrent_calls = self
            .counters
            .peak_concurrent_calls
            .max(self.counters.concurrent_calls);
        self.by_call_id.insert(invite.call_id.clone(), serial);
        self.calls.insert(
            serial,
            Call {
                scenario,
                number,
                remote: from,
                invite,
                branch,
                record_route,
                contact,
                tag,
                state: State::Trying,
                last_response: trying,
                alert_at,
                final_at,
                retransmit: None,
                hangup_at: None,
                bye: None,
                linger_until: None,
                media,
                streaming: false,
                scheduled: None,
            },
        );
        self.reschedule(serial);
    }

    /// Sends a final response to the INVITE and starts Timer G/H.
    fn send_final(&mut self, now: Instant, serial: u64, code: u16) {
        let call = &self.calls[&serial];
        let sdp = (code == 200)
            .then(|| call.media.map(|(law, _)| self.answer_sdp(serial, law)))
            .flatten();
        let bytes = self.response(
            code,
            &call.invite,
            &call.record_route,
            Some(&call.tag),
            sdp.as_deref(),
        );
        let to = call.remote;
        let t1 = self.config.timing.t1;
        let call = self.calls.get_mut(&serial).expect("the call exists");
        call.last_response = bytes.clone();
        call.alert_at = None;
        call.final_at = None;
        call.retransmit = Some(Retransmit {
            next: now + t1,
            interval: t1,
            give_up: now + t1 * 64,
        });
        self.send(to, bytes);
        self.set_state(
            serial,
            State::AwaitingAck {
                answered: code == 200,
            },
            now,
        );
    }

    fn answer(&mut self, now: Instant, serial: u64) {
        let call = &self.calls[&serial];
        let (Some((law, to)), Some(playback)) = (call.media, call.scenario.playback()) else {
            self.counters.no_acceptable_codec += 1;
            self.send_final(now, serial, 488);
            return;
        };
        let ssrc = number_hash(&call.number, self.config.seed, SALT_SSRC ^ serial) as u32;
        self.send_final(now, serial, 200);
        self.counters.answered += 1;
        self.counters.calls_by_recording[playback.recording] += 1;
        self.media.push_back(MediaCommand::Start {
            stream: serial,
            to,
            law,
            playback,
            ssrc,
        });
        if let Some(call) = self.calls.get_mut(&serial) {
            call.streaming = true;
            call.hangup_at = Some(now + self.config.timing.max_call);
        }
    }

    fn on_ack(&mut self, now: Instant, serial: u64) {
        let call = self.calls.get_mut(&serial).expect("the call exists");
        if let State::AwaitingAck { answered } = call.state {
            call.retransmit = None;
            if answered {
                self.set_state(serial, State::Confirmed, now);
            } else {
                self.set_state(serial, State::Done, now);
            }
            self.reschedule(serial);
        }
    }

    fn on_cancel(
        &mut self,
        now: Instant,
        from: SocketAddr,
        serial: u64,
        req: &RequestInfo,
        branch: &str,
    ) {
        let call = &self.calls[&serial];
        if call.branch != branch {
            self.counters.unknown_dialog += 1;
            let bytes = self.response(481, req, &[], Some(&call.tag), None);
            self.send(from, bytes);
            return;
        }
        let ok = self.response(200, req, &[], Some(&call.tag), None);
        let ringing = matches!(call.state, State::Trying | State::Ringing);
        self.send(from, ok);
        if ringing {
            self.counters.cancelled += 1;
            self.send_final(now, serial, 487);
            self.reschedule(serial);
        }
    }

    fn on_response(&mut self, now: Instant, resp: ResponseInfo) {
        let Some(&serial) = self.by_call_id.get(&resp.call_id) else {
            return;
        };
        let call = self.calls.get_mut(&serial).expect("the call exists");
        if resp.cseq_method == "BYE"
            && resp.status >= 200
            && call.bye.as_ref().is_some_and(|b| b.branch == resp.branch)
        {
            call.bye = None;
            self.set_state(serial, State::Done, now);
            self.reschedule(serial);
        }
    }

    /// Runs every timer that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, serial))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(call) = self.calls.get_mut(&serial) else {
                continue;
            };
            if call.scheduled != Some(at) {
                continue;
            }
            call.scheduled = None;
            self.on_call_timeout(now, serial);
            if self.calls.contains_key(&serial) {
                self.reschedule(serial);
            }
        }
    }

    fn on_call_timeout(&mut self, now: Instant, serial: u64) {
        let t2 = self.config.timing.t2;
        if self.calls[&serial].linger_until.is_some_and(|t| now >= t) {
            let call = self.calls.remove(&serial).expect("the call exists");
            self.by_call_id.remove(&call.invite.call_id);
            return;
        }
        if self.calls[&serial].alert_at.is_some_and(|t| now >= t) {
            let call = &self.calls[&serial];
            let ringing =
                self.response(180, &call.invite, &call.record_route, Some(&call.tag), None);
            let call = self.calls.get_mut(&serial).expect("the call exists");
            call.alert_at = None;
            call.last_response = ringing.clone();
            let to = call.remote;
            self.send(to, ringing);
            self.set_state(serial, State::Ringing, now);
        }
        let call = self.calls.get_mut(&serial).expect("the call exists");
        if call.final_at.is_some_and(|t| now >= t) {
            call.final_at = None;
            match call.scenario.kind() {
                ScenarioKind::Busy => {
                    self.counters.rejected_busy += 1;
                    self.send_final(now, serial, 486);
                }
                ScenarioKind::Invalid => {
                    self.counters.rejected_invalid += 1;
                    self.send_final(now, serial, 404);
                }
                ScenarioKind::NoAnswer => {
                    self.counters.ring_cap_reached += 1;
                    self.send_final(now, serial, 480);
                }
                _ => self.answer(now, serial),
            }
            return;
        }
        let call = self.calls.get_mut(&serial).expect("the call exists");
        if let Some(r) = call.retransmit.as_mut() {
            if now >= r.give_up {
                // Timer H: no ACK came. An answered call is ended with BYE (RFC 3261 §13.3.1.4).
                call.retransmit = None;
                self.counters.ack_timeouts += 1;
                if matches!(call.state, State::AwaitingAck { answered: true }) {
                    self.send_bye(now, serial);
                } else {
                    self.set_state(serial, State::Done, now);
                }
                return;
            }
            if now >= r.next {
                r.interval = (r.interval * 2).min(t2);
                r.next = now + r.interval;
                let (to, bytes) = (call.remote, call.last_response.clone());
                self.send(to, bytes);
            }
        }
        let call = self.calls.get_mut(&serial).expect("the call exists");
        if call.hangup_at.is_some_and(|t| now >= t) {
            self.counters.sim_hangups += 1;
            self.send_bye(now, serial);
            return;
        }
        let call = self.calls.get_mut(&serial).expect("the call exists");
        if let Some(bye) = call.bye.as_mut() {
            if now >= bye.retransmit.give_up {
                call.bye = None;
                self.set_state(serial, State::Done, now);
            } else if now >= bye.retransmit.next {
                bye.retransmit.interval = (bye.retransmit.interval * 2).min(t2);
                bye.retransmit.next = now + bye.retransmit.interval;
                let (to, bytes) = (call.remote, bye.bytes.clone());
                self.send(to, bytes);
            }
        }
    }

    /// Ends every call at shutdown: BYE for answered ones, `503` for ringing ones. Nothing is
    /// retransmitted afterwards.
    pub fn shutdown(&mut self, now: Instant) {
        let mut serials: Vec<u64> = self.calls.keys().copied().collect();
        serials.sort_unstable();
        for serial in serials {
            match self.calls[&serial].state {
                State::Trying | State::Ringing => {
                    self.send_final(now, serial, 503);
                    self.set_state(serial, State::Done, now);
                }
                State::Confirmed | State::AwaitingAck { answered: true } => {
                    self.send_bye(now, serial);
                    self.set_state(serial, State::Done, now);
                }
                State::AwaitingAck { answered: false } | State::Hanging => {
                    self.set_state(serial, State::Done, now);
                }
                State::Done => {}
            }
        }
    }

    /// The scenario the sim applied to a Call-ID it still remembers.
    pub fn scenario_of_call(&self, call_id: &str) -> Option<Scenario> {
        self.by_call_id
            .get(call_id)
            .and_then(|s| self.calls.get(s))
            .map(|c| c.scenario)
    }

    /// Calls remembered (live or lingering).
    pub fn remembered_calls(&self) -> usize {
        self.calls.len()
    }
}

#[cfg(test)]
mod tests;
