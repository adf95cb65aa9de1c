//! One call's bridge to the AI agent, as the call task drives it: the socket opened at the
//! answer, the stream started at `human`, caller audio and DTMF out, agent audio into the
//! playout queue, marks echoed, reconnects within the budget, and the figures the call record
//! keeps (when the agent connected, how long it talked, why it ended, the two latencies).
//! With `mode.agentSipUri` the agent is a second SIP call ([`crate::runtime::call::sip_leg`]) placed at
//! `human`, its audio relayed frame for frame; the same budget and fallback apply.
//! With an identification message ([`AgentTarget::identification`]), a person the agent has
//! not taken within 2 s of their greeting hears it instead, and the agent is let go
//! ([`crate::call::identification`] decides when).
//!
//! Owns the agent's link and stream for one call; it must not touch the RTP socket or the SIP
//! dialog: it tells the call task what to do ([`BridgeAction`]) and hands it 20 ms frames. Every
//! send to the agent is a `try_send` on a bounded queue: a slow agent costs counted drops,
//! never a late media tick.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::agent::{
    AgentStream, Inbound, InboundLimits, MULAW_FRAME_BYTES, Playout, Reconnect, ReconnectStep,
    StartInfo, StreamIds, parse_inbound,
};
use crate::audio::g711::Law;
use crate::audio::prompt::Prompt;
use crate::audio::{FRAME_SAMPLES, SampleTime};
use crate::call::identification::{GRACE, Identification};
use crate::runtime::call::agent_ws::{self, AgentIn, AgentLink, AgentTarget, Outbound};
use crate::runtime::call::endpoint::EndpointHandle;
use crate::runtime::call::sip_leg::{self, LegEvent, LegLink, LegParams};

/// What the call needs to place a SIP agent leg of its own.
#[derive(Clone)]
pub struct LegContext {
    pub endpoint: EndpointHandle,
    pub local_ip: IpAddr,
    pub rtp_ports: RangeInclusive<u16>,
}

/// An event of the agent's transport.
#[derive(Debug)]
pub enum BridgeIn {
    Socket(Option<AgentIn>),
    Leg(Option<LegEvent>),
    /// The person's 2 s since their greeting are up.
    Deadline,
}

/// What the call must do after a bridge event.
#[derive(Debug)]
pub enum BridgeAction {
    Continue,
    /// The conversation is over (the agent closed on purpose): hang up.
    HangUp,
    /// The agent cannot be reached within the budget, or not within 2 s of the person's
    /// greeting (the identification message): play this, then hang up.
    PlayFallback(Arc<Prompt>),
}

/// Latencies over one call, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

impl LatencySummary {
    pub fn of(samples_us: &[u32]) -> Option<LatencySummary> {
        if samples_us.is_empty() {
            return None;
        }
        let mut v = samples_us.to_vec();
        v.sort_unstable();
        // Nearest rank: the smallest sample with at least q of them at or below it.
        let at = |q: f64| {
            let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
            v[rank - 1] as f64 / 1000.0
        };
        Some(LatencySummary {
            count: v.len(),
            p50: at(0.5),
            p95: at(0.95),
            max: at(1.0),
        })
    }
}

/// The bridge's figures for the call record and `trunx dial`'s JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AgentStats {
    /// From the `human` decision to the agent's `start` written on its socket.
    pub handoff_ms: Option<f64>,
    /// From agent audio arriving into an idle playout queue to its first RTP packet sent.
    pub audio_latency_ms: Option<LatencySummary>,
    /// Reconnects started after the socket was refused or lost.
    pub reconnects: u32,
    /// The fallback message was played because the agent could not be reached.
    pub fallback: bool,
    /// The identification message was played because the agent did not take the person
    /// within 2 s of their greeting (the call is abandoned).
    pub identification: bool,
    pub frames_played: u64,
    pub clears: u64,
    pub marks_echoed: u64,
    pub dtmf_sent: u64,
    /// Agent messages that were not the protocol (counted and dropped).
    pub rejected: u64,
    /// Messages dropped because a queue was full: to the agent (slow agent), from the agent
    /// (slow call task), and agent audio beyond the playout bound.
    pub dropped_to_agent: u64,
    pub dropped_from_agent: u64,
    pub frames_dropped: u64,
}

/// The user part to show the SIP agent as the caller: the prospect's number, or the user of
/// a SIP URI dialled directly.
fn caller_user(prospect: &str) -> &str {
    let rest = prospect
        .strip_prefix("sips:")
        .or_else(|| prospect.strip_prefix("sip:"))
        .unwrap_or(prospect);
    rest.split(['@', ';', '>']).next().unwrap_or(rest)
}

/// Agent audio arriving this long after the last agent frame left starts a new talk spurt.
const SPURT_GAP: Duration = Duration::from_millis(40);

/// Bounded so a long call cannot grow it; the first spurts are the ones that matter.
const MAX_LATENCY_SAMPLES: usize = 4096;

pub struct AgentBridge {
    target: AgentTarget,
    stop: CancellationToken,
    seed: u64,
    info: StartInfo,
    link: Option<AgentLink>,
    ready: bool,
    stream: Option<AgentStream>,
    playout: Playout,
    limits: InboundLimits,
    reconnect: Reconnect,
    retry_at: Option<Instant>,
    gave_up: bool,
    /// The `human` decision (wall time), once made.
    wanted_at: Option<Instant>,
    handoff_pending: bool,
    handoff: Option<Duration>,
    answered_at: Option<Instant>,
    connected_after: Option<Duration>,
    bridged_at: Option<Instant>,
    end: Option<String>,
    last_audio_at: SampleTime,
    /// Agent audio arrived into an empty queue at this instant and has not been sent yet.
    spurt_arrived: Option<Instant>,
    /// When the last agent frame left: audio arriving within two packet times of it is the
    /// same talk spurt and keeps the grid.
    last_frame_sent: Option<Instant>,
    talkspurt: bool,
    latencies_us: Vec<u32>,
    stats: AgentStats,
    ulaw: [u8; FRAME_SAMPLES],
    /// The SIP agent path: how to place the leg, the leg, and its audio waiting for a tick.
    leg_context: Option<LegContext>,
    leg: Option<LegLink>,
    leg_answered: bool,
    leg_audio: VecDeque<[u8; FRAME_SAMPLES]>,
    /// The person's 2 s deadline (armed only with an identification message).
    identification: Identification,
}

/// Agent frames from a SIP leg held for the media tick: the two legs tick on their own 20 ms
/// grids, and a loaded machine wakes them late in bursts; 120 ms of slack absorbs that
/// without dropping (dropping or starving shifts the audio the person hears).
const LEG_AUDIO_FRAMES: usize = 6;

impl AgentBridge {
    pub fn new(
        target: AgentTarget,
        info: StartInfo,
        seed: u64,
        stop: CancellationToken,
        leg_context: Option<LegContext>,
    ) -> Self {
        AgentBridge {
            identification: Identification::new(target.identification.is_some()),
            leg_context,
            leg: None,
            leg_answered: false,
            leg_audio: VecDeque::with_capacity(LEG_AUDIO_FRAMES),
            reconnect: Reconnect::new(target.reconnect),
            limits: InboundLimits::default(),
            target,
            stop,
            seed,
            info,
            link: None,
            ready: false,
            stream: None,
            playout: Playout::default(),
            retry_at: None,
            gave_up: false,
            wanted_at: None,
            handoff_pending: false,
            handoff: None,
            answered_at: None,
            connected_after: None,
            bridged_at: None,
            end: None,
            last_audio_at: SampleTime::default(),
            spurt_arrived: None,
            last_frame_sent: None,
            talkspurt: false,
            latencies_us: Vec::new(),
            stats: AgentStats::default(),
            ulaw: [0; FRAME_SAMPLES],
        }
    }

    /// The call is answered and the detector is running: connect now, so the handoff at
    /// `human` costs no connect time. Nothing is sent before the decision.
    /// A SIP agent is only called at `human`: a machine must never take an agent's line.
    pub fn on_answer(&mut self, now: Instant) {
        self.answered_at = Some(now);
        if !self.is_sip() {
            self.connect(self.target.connect_timeout);
        }
    }

    fn is_sip(&self) -> bool {
        self.target.sip_uri.is_some()
    }

    fn place_leg(&mut self, timeout: Duration) {
        let (Some(uri), Some(ctx)) = (self.target.sip_uri.clone(), self.leg_context.clone()) else {
            return;
        };
        self.leg = Some(sip_leg::place(
            ctx.endpoint,
            LegParams {
                uri,
                from: caller_user(&self.info.prospect).to_string(),
                local_ip: ctx.local_ip,
                rtp_ports: ctx.rtp_ports,
                ring_timeout: timeout,
                seed: self.seed.rotate_left(17) ^ u64::from(self.stats.reconnects),
                username: self.target.sip_username.clone(),
                password: self.target.sip_password.clone(),
            },
        ));
    }

    fn connect(&mut self, timeout: Duration) {
        if self.is_sip() {
            // A SIP agent answers like a phone: give it the configured ring time (at least
            // the connect timeout), cut to the budget left.
            self.place_leg(timeout.max(Duration::from_secs(5)));
            return;
        }
        self.link = Some(agent_ws::open(
            self.target.clone(),
            timeout,
            self.stop.child_token(),
        ));
    }

    /// The detector said a person (or could not tell): hand them to the agent.
    pub fn on_human(&mut self, now: Instant, result: &str, cause: &str) -> BridgeAction {
        self.wanted_at = Some(now);
        self.info.amd_result = result.to_string();
        self.info.amd_cause = cause.to_string();
        self.identification.on_greeting_end(now);
        if self.gave_up {
            return self.give_up_action(now);
        }
        if self.is_sip() {
            if self.leg.is_none() && self.retry_at.is_none() {
                if self.leg_context.is_none() {
                    self.end = Some("no SIP endpoint for the agent leg".into());
                    return self.give_up_action(now);
                }
                self.bridged_at = None;
                self.place_leg(self.target.connect_timeout.max(Duration::from_secs(20)));
            }
            return BridgeAction::Continue;
        }
        if self.ready && self.stream.is_none() {
            self.start_stream(now);
        }
        BridgeAction::Continue
    }

    pub fn is_bridged(&self) -> bool {
        self.stream.is_some() || self.leg_answered
    }

    fn send(&mut self, text: String, confirm: bool) {
        if let Some(link) = self.link.as_ref()
            && link.to_agent.try_send(Outbound { text, confirm }).is_err()
        {
            self.stats.dropped_to_agent += 1;
        }
    }

    fn start_stream(&mut self, now: Instant) {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(
            self.seed ^ u64::from(self.stats.reconnects),
        );
        let account = format!("AC{:032x}", self.seed as u128 * 0x9e37_79b9);
        let mut stream = AgentStream::new(StreamIds::generate(&mut rng, account));
        let connected = stream.connected();
        let start = stream.start(&self.info, self.last_audio_at);
        self.send(connected, false);
        self.handoff_pending = self.handoff.is_none();
        self.send(start, true);
        self.stream = Some(stream);
        self.identification.on_connected();
        if self.bridged_at.is_none() {
            self.bridged_at = Some(now);
        }
    }

    /// One 20 ms frame of the caller, for the agent once bridged.
    pub fn caller_frame(&mut self, samples: &[i16; FRAME_SAMPLES], at: SampleTime) {
        self.last_audio_at = at;
        if self.leg_answered {
            Law::Ulaw.encode_into(samples, &mut self.ulaw);
            if let Some(leg) = self.leg.as_ref()
                && leg.to_leg.try_send(self.ulaw).is_err()
            {
                self.stats.dropped_to_agent += 1;
            }
            return;
        }
        if self.stream.is_none() {
            return;
        }
        Law::Ulaw.encode_into(samples, &mut self.ulaw);
        let ulaw = self.ulaw;
        if let Some(st) = self.stream.as_mut() {
            let text = st.media(&ulaw, at);
            self.send(text, false);
        }
    }

    /// A DTMF digit the caller pressed (RFC 4733), for the agent once bridged.
    pub fn caller_dtmf(&mut self, digit: char) {
        if let Some(st) = self.stream.as_mut() {
            let text = st.dtmf(digit);
            self.stats.dtmf_sent += 1;
            self.send(text, false);
        }
    }

    /// The agent's next 20 ms of μ-law for the caller, if any is queued.
    pub fn next_frame(&mut self) -> Option<[u8; MULAW_FRAME_BYTES]> {
        if self.leg_answered {
            let frame = self.leg_audio.pop_front();
            if frame.is_some() {
                self.stats.frames_played += 1;
            }
            return frame;
        }
        self.stream.as_ref()?;
        let frame = self.playout.next_frame();
        self.echo_marks();
        frame
    }

    /// Agent audio arrived into an idle queue since the last call: the sender should start a
    /// talk spurt now rather than wait for its next 20 ms slot.
    pub fn take_talkspurt(&mut self) -> bool {
        std::mem::take(&mut self.talkspurt)
    }

    /// The frame from [`AgentBridge::next_frame`] left in an RTP packet at `now`.
    pub fn frame_sent(&mut self, now: Instant) {
        self.last_frame_sent = Some(now);
        if let Some(arrived) = self.spurt_arrived.take()
            && self.latencies_us.len() < MAX_LATENCY_SAMPLES
        {
            let us = now.saturating_duration_since(arrived).as_micros();
            self.latencies_us.push(us.min(u128::from(u32::MAX)) as u32);
        }
    }

    fn echo_marks(&mut self) {
        while let Some(name) = self.playout.poll_mark() {
            if let Some(st) = self.stream.as_mut() {
                let text = st.mark(&name);
                self.send(text, false);
            }
        }
    }

    /// The next event of the agent's socket or SIP leg, or the person's identification
    /// deadline; pending forever without any.
    pub async fn recv(&mut self) -> BridgeIn {
        let deadline = self.identification.deadline();
        let transport = async {
            match (self.link.as_mut(), self.leg.as_mut()) {
                (Some(l), _) => BridgeIn::Socket(l.from_agent.recv().await),
                (None, Some(leg)) => BridgeIn::Leg(leg.from_leg.recv().await),
                (None, None) => std::future::pending().await,
            }
        };
        match deadline {
            Some(at) => tokio::select! {
                e = transport => e,
                _ = tokio::time::sleep_until(at.into()) => BridgeIn::Deadline,
            },
            None => transport.await,
        }
    }

    /// When a reconnect is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.retry_at
    }

    pub fn on_timeout(&mut self, now: Instant) {
        if self.retry_at.is_some_and(|at| at <= now) {
            self.retry_at = None;
            let timeout = self
                .reconnect
                .connect_timeout(now, self.target.connect_timeout);
            self.stats.reconnects += 1;
            self.connect(timeout);
        }
    }

    /// Applies one event of the agent's transport.
    pub fn handle(&mut self, event: BridgeIn, now: Instant) -> BridgeAction {
        match event {
            BridgeIn::Socket(e) => self.handle_socket(e, now),
            BridgeIn::Leg(e) => self.handle_leg(e, now),
            BridgeIn::Deadline if self.identification.poll(now) => self.identify(),
            BridgeIn::Deadline => BridgeAction::Continue,
        }
    }

    fn handle_leg(&mut self, event: Option<LegEvent>, now: Instant) -> BridgeAction {
        match event {
            Some(LegEvent::Answered) => {
                self.leg_answered = true;
                self.identification.on_connected();
                self.reconnect.connected();
                if self.connected_after.is_none() {
                    self.connected_after =
                        self.answered_at.map(|t| now.saturating_duration_since(t));
                }
                if let Some(wanted) = self.wanted_at
                    && self.handoff.is_none()
                {
                    self.handoff = Some(now.saturating_duration_since(wanted));
                }
                if self.bridged_at.is_none() {
                    self.bridged_at = Some(now);
                }
                BridgeAction::Continue
            }
            Some(LegEvent::Audio(frame)) => {
                if self.leg_audio.len() >= LEG_AUDIO_FRAMES {
                    // Behind by more than the slack: the oldest frame goes, latency stays low.
                    self.leg_audio.pop_front();
                    self.stats.frames_dropped += 1;
                }
                self.leg_audio.push_back(frame);
                BridgeAction::Continue
            }
            Some(LegEvent::Ended { reason, answered }) => {
                self.leg = None;
                self.leg_answered = false;
                self.leg_audio.clear();
                if answered {
                    // The agent hung up its leg: the conversation is over.
                    self.end = Some(reason);
                    return BridgeAction::HangUp;
                }
                self.outage(reason, now)
            }
            None => {
                self.leg = None;
                self.leg_answered = false;
                BridgeAction::Continue
            }
        }
    }

    /// The agent could not be reached or was lost: retry within the budget, or give up.
    fn outage(&mut self, reason: String, now: Instant) -> BridgeAction {
        match self.reconnect.lost(now) {
            ReconnectStep::RetryAt(at) => {
                self.retry_at = Some(at);
                self.end = Some(reason);
                BridgeAction::Continue
            }
            ReconnectStep::GiveUp { retries, outage } => {
                self.gave_up = true;
                self.end = Some(if retries == 0 {
                    reason
                } else {
                    format!(
                        "{reason} (gave up after {retries} reconnects in {} ms)",
                        outage.as_millis()
                    )
                });
                if self.wanted_at.is_some() {
                    self.give_up_action(now)
                } else {
                    BridgeAction::Continue
                }
            }
        }
    }

    fn handle_socket(&mut self, event: Option<AgentIn>, now: Instant) -> BridgeAction {
        match event {
            Some(AgentIn::Connected { after }) => {
                self.ready = true;
                self.reconnect.connected();
                if self.connected_after.is_none() {
                    self.connected_after = Some(
                        self.answered_at
                            .map(|t| now.saturating_duration_since(t))
                            .unwrap_or(after),
                    );
                }
                if self.wanted_at.is_some() && self.stream.is_none() {
                    self.start_stream(now);
                }
                BridgeAction::Continue
            }
            Some(AgentIn::Written { at }) => {
                if std::mem::take(&mut self.handoff_pending)
                    && let Some(wanted) = self.wanted_at
                {
                    self.handoff = Some(at.saturating_duration_since(wanted));
                }
                BridgeAction::Continue
            }
            Some(AgentIn::Text { text, at }) => {
                match parse_inbound(&text, &self.limits) {
                    Ok(message) => {
                        let idle = self.playout.queued_frames() == 0;
                        let is_media = matches!(message, Inbound::Media(_));
                        self.playout.handle(message);
                        if is_media && idle && self.playout.queued_frames() > 0 {
                            self.spurt_arrived = Some(at);
                            // A new talk spurt after silence starts at once; audio that only
                            // caught up with a real-time agent waits for its slot.
                            self.talkspurt = self
                                .last_frame_sent
                                .is_none_or(|t| at.saturating_duration_since(t) >= SPURT_GAP);
                        }
                        self.echo_marks();
                    }
                    // Garbage from the agent is counted and dropped.
                    Err(_) => self.playout.count_rejected(),
                }
                BridgeAction::Continue
            }
            Some(AgentIn::Closed { reason, deliberate }) => {
                self.lost();
                if deliberate && self.wanted_at.is_some() {
                    self.end = Some(reason);
                    return BridgeAction::HangUp;
                }
                self.outage(reason, now)
            }
            None => {
                self.lost();
                BridgeAction::Continue
            }
        }
    }

    /// The socket is gone: the stream with it, and the audio the agent had queued.
    fn lost(&mut self) {
        if let Some(link) = self.link.take() {
            self.stats.dropped_from_agent += link.dropped_from_agent.load(Ordering::Relaxed);
        }
        self.ready = false;
        self.stream = None;
        self.playout.discard();
        self.spurt_arrived = None;
    }

    /// The agent is out of reach for good: its fallback message (the person is given a
    /// message, as the operator chose), else the identification message to a person still
    /// waiting, else hang up.
    fn give_up_action(&mut self, now: Instant) -> BridgeAction {
        match self.target.fallback.clone() {
            Some(prompt) => {
                self.stats.fallback = true;
                // The person now has a message: no identification over it.
                self.identification.on_connected();
                BridgeAction::PlayFallback(prompt)
            }
            None if self.identification.give_up(now) => self.identify(),
            None => BridgeAction::HangUp,
        }
    }

    /// Nobody took the person in time: the identification message plays and the agent is let
    /// go for good (no stream, no reconnect, no late handover), so the call ends with the
    /// message.
    fn identify(&mut self) -> BridgeAction {
        let Some(prompt) = self.target.identification.clone() else {
            return BridgeAction::HangUp;
        };
        self.lost();
        if let Some(leg) = self.leg.take() {
            leg.hang_up.cancel();
        }
        self.leg_answered = false;
        self.leg_audio.clear();
        self.retry_at = None;
        self.gave_up = true;
        self.stats.identification = true;
        let why = format!(
            "identification message played: the agent did not take the person within {} s of their greeting",
            GRACE.as_secs()
        );
        self.end = Some(match self.end.take() {
            Some(last) => format!("{why} ({last})"),
            None => why,
        });
        BridgeAction::PlayFallback(prompt)
    }

    /// The call is over: `stop` to the agent, and the socket closed behind it.
    pub fn on_call_end(&mut self) {
        if let Some(leg) = self.leg.take() {
            leg.hang_up.cancel();
            if self.end.is_none() {
                self.end = Some("call ended".into());
            }
        }
        if let Some(st) = self.stream.as_mut() {
            let text = st.stop(Some("hangup"));
            self.send(text, false);
            if self.end.is_none() {
                self.end = Some("call ended".into());
            }
        }
        if self.wanted_at.is_some() && self.end.is_none() {
            self.end = Some("call ended before the agent connected".into());
        }
        if let Some(link) = self.link.take() {
            self.stats.dropped_from_agent += link.dropped_from_agent.load(Ordering::Relaxed);
        }
    }

    /// Milliseconds from the answer to the first open socket.
    pub fn connected_ms(&self) -> Option<u64> {
        self.connected_after.map(|d| d.as_millis() as u64)
    }

    /// Milliseconds from the first bridge to `ended`.
    pub fn talk_ms(&self, ended: Instant) -> Option<u64> {
        self.bridged_at
            .map(|t| ended.saturating_duration_since(t).as_millis() as u64)
    }

    pub fn end_reason(&self) -> Option<String> {
        self.end.clone()
    }

    pub fn stats(&self) -> AgentStats {
        let c = self.playout.counters();
        AgentStats {
            handoff_ms: self.handoff.map(|d| d.as_secs_f64() * 1000.0),
            audio_latency_ms: LatencySummary::of(&self.latencies_us),
            // The SIP path counts its relayed frames itself; the websocket path's playout does.
            frames_played: c.frames_played + self.stats.frames_played,
            clears: c.clears,
            marks_echoed: c.marks_echoed,
            rejected: c.rejected_messages,
            frames_dropped: c.frames_dropped + self.stats.frames_dropped,
            ..self.stats.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sip_agent_sees_the_prospect_as_the_caller() {
        assert_eq!(caller_user("+15551234567"), "+15551234567");
        assert_eq!(caller_user("sip:callee@127.0.0.1:5060"), "callee");
        assert_eq!(caller_user("sips:+1555@h;transport=tls"), "+1555");
    }

    #[test]
    fn latency_summary_uses_nearest_rank() {
        assert_eq!(LatencySummary::of(&[]), None);
        let s = LatencySummary::of(&[20_000, 100]).unwrap();
        assert_eq!((s.count, s.p50, s.p95, s.max), (2, 0.1, 20.0, 20.0));
        let many: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        let s = LatencySummary::of(&many).unwrap();
        assert_eq!((s.p50, s.p95, s.max), (50.0, 95.0, 100.0));
    }
}
