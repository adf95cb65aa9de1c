//! The SIP agent leg (`mode.agentSipUri`): a second outbound call, placed when the detector
//! says `human`, to a SIP voice agent (LiveKit, OpenAI SIP, Ultravox-style endpoints), with
//! its media relayed to and from the person's call as 20 ms μ-law frames over bounded
//! channels.
//!
//! Owns this leg's dialog (the sans-IO `sip::call` machine), its RTP socket pair, jitter
//! buffer and send pacer. It must not touch the person's call: frames and events cross over
//! [`LegLink`], and a full queue drops a frame (counted by the caller), never waits.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::audio::FRAME_SAMPLES;
use crate::audio::g711::Law;
use crate::rtp::RtpReceiver;
use crate::rtp::pacer::Pacer;
use crate::rtp::packet;
use crate::runtime::call::endpoint::EndpointHandle;
use crate::runtime::call::net::{bind_rtp, media_target, resolve_trunk};
use crate::runtime::clock;
use crate::sip::call::{CallEvent, CallParams, Ids, OutboundCall, Outcome, Timers};
use crate::sip::sdp;

/// What the leg tells the person's call.
#[derive(Debug, PartialEq)]
pub enum LegEvent {
    /// The agent answered; media flows both ways from now on.
    Answered,
    /// 20 ms of the agent's voice as μ-law.
    Audio([u8; FRAME_SAMPLES]),
    /// The leg is over: never answered (busy, refused, no answer), or hung up.
    Ended { reason: String, answered: bool },
}

/// The person's call's end of the leg.
pub struct LegLink {
    /// The person's voice for the agent, μ-law.
    pub to_leg: mpsc::Sender<[u8; FRAME_SAMPLES]>,
    pub from_leg: mpsc::Receiver<LegEvent>,
    /// Cancel to hang up the leg (CANCEL while ringing, BYE once answered).
    pub hang_up: CancellationToken,
}

/// Where and how the leg is placed. `Debug` hides the password.
#[derive(Clone)]
pub struct LegParams {
    /// `sip:agent@host[:port]`; the INVITE goes straight to that host.
    pub uri: String,
    /// Shown to the agent as the caller: the prospect's number.
    pub from: String,
    pub local_ip: IpAddr,
    pub rtp_ports: RangeInclusive<u16>,
    pub ring_timeout: Duration,
    pub seed: u64,
    /// Digest credentials, answered once per challenge like the trunk's.
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for LegParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegParams")
            .field("uri", &self.uri)
            .field("from", &self.from)
            .field("local_ip", &self.local_ip)
            .field("rtp_ports", &self.rtp_ports)
            .field("ring_timeout", &self.ring_timeout)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Frames buffered each way: 200 ms. A relay that falls further behind drops, it never
/// delays the person's audio.
const RELAY_QUEUE: usize = 10;
const PLAYOUT_DELAY: Duration = Duration::from_millis(40);

/// Places the leg; it runs in its own task until either side hangs up.
pub fn place(endpoint: EndpointHandle, params: LegParams) -> LegLink {
    let (to_leg, from_person) = mpsc::channel(RELAY_QUEUE);
    let (events, from_leg) = mpsc::channel(RELAY_QUEUE * 2);
    let hang_up = CancellationToken::new();
    let stop = hang_up.clone();
    tokio::spawn(async move {
        let ended = match run_leg(endpoint, params, from_person, events.clone(), stop).await {
            Ok(end) => end,
            Err(reason) => LegEvent::Ended {
                reason,
                answered: false,
            },
        };
        let _ = events.send(ended).await;
    });
    LegLink {
        to_leg,
        from_leg,
        hang_up,
    }
}

async fn run_leg(
    endpoint: EndpointHandle,
    params: LegParams,
    mut from_person: mpsc::Receiver<[u8; FRAME_SAMPLES]>,
    events: mpsc::Sender<LegEvent>,
    stop: CancellationToken,
) -> Result<LegEvent, String> {
    let (agent_addr, _, _) = resolve_trunk(&params.uri)
        .await
        .map_err(|e| format!("agent SIP URI: {e}"))?;
    let (rtp, _rtcp) = bind_rtp(params.local_ip, &params.rtp_ports)
        .await
        .map_err(|e| e.to_string())?;
    let rtp_port = rtp.local_addr().map_err(|e| e.to_string())?.port();
    let local_ip = params.local_ip;
    let local = SocketAddr::new(local_ip, endpoint.local().port());
    let seed = params.seed;
    let mut call = OutboundCall::new(
        clock::now(),
        CallParams {
            request_uri: params.uri.clone(),
            from_uri: format!("sip:{}@{local_ip}", params.from),
            p_asserted_identity: None,
            local,
            trunk: agent_addr,
            sdp_offer: sdp::offer(local_ip, rtp_port, seed >> 1, 1),
            username: params.username.clone(),
            password: params.password.clone(),
            ring_timeout: params.ring_timeout,
            timers: Timers::default(),
        },
        Ids {
            call_id: format!("{seed:016x}-agent@{local_ip}"),
            from_tag: format!("{:08x}", (seed >> 13) as u32),
            seed,
        },
    );
    let mut inbound = endpoint.register(call.call_id()).await;
    let out = endpoint.sender();
    let mut receiver: Option<RtpReceiver> = None;
    let mut sender: Option<(Pacer, Law, SocketAddr)> = None;
    let mut outcome: Option<Outcome> = None;
    let mut answered = false;
    let mut hung_up = false;
    let mut rtp_buf = vec![0u8; 2048];
    let mut rtp_out = [0u8; 256];
    let mut ulaw = [0u8; FRAME_SAMPLES];
    let ssrc = (seed >> 5) as u32;
    let wake = tokio::time::sleep_until(clock::now().into());
    tokio::pin!(wake);
    loop {
        while let Some(t) = call.poll_transmit() {
            if out.send(t).await.is_err() {
                break;
            }
        }
        while let Some(event) = call.poll_event() {
            match event {
                CallEvent::Answered { media } => {
                    answered = true;
                    let now = clock::now();
                    let (law, dtmf) = media
                        .map(|m| (m.law, m.dtmf_payload_type))
                        .unwrap_or((Law::Ulaw, None));
                    receiver = Some(RtpReceiver::new(law, dtmf, PLAYOUT_DELAY));
                    if let Some(m) = media {
                        sender = Some((
                            Pacer::new(now, (seed >> 3) as u16, (seed >> 21) as u32),
                            law,
                            m.remote_rtp,
                        ));
                    }
                    let _ = events.send(LegEvent::Answered).await;
                }
                CallEvent::Ended(o) => outcome = Some(o),
                CallEvent::Ringing { .. } => {}
            }
        }
        if call.is_terminated()
            || (outcome.is_some() && (!answered || call.poll_timeout().is_none()))
        {
            break;
        }
        let now = clock::now();
        if let Some(rx) = receiver.as_mut() {
            while let Some(frame) = rx.poll_frame(now) {
                Law::Ulaw.encode_into(&frame.frame.samples, &mut ulaw);
                // A person's call that is not taking audio loses this frame, not its tick.
                let _ = events.try_send(LegEvent::Audio(ulaw));
            }
        }
        if let Some((pacer, law, sdp_addr)) = sender.as_mut()
            && !hung_up
        {
            while let Some(slot) = pacer.poll(now) {
                let payload = match from_person.try_recv() {
                    Ok(f) => law.from_ulaw_frame(&f),
                    Err(_) => [law.silence(); FRAME_SAMPLES],
                };
                if let Ok(n) = packet::write(
                    law.payload_type(),
                    slot.marker,
                    slot.sequence,
                    slot.timestamp,
                    ssrc,
                    &payload,
                    &mut rtp_out,
                ) {
                    let to = media_target(receiver.as_ref(), *sdp_addr);
                    let _ = rtp.send_to(&rtp_out[..n], to).await;
                }
            }
        }
        let deadline = [
            call.poll_timeout(),
            receiver.as_ref().and_then(|r| r.next_deadline()),
            sender
                .as_ref()
                .filter(|_| !hung_up)
                .map(|(p, _, _)| p.next_deadline()),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now + Duration::from_secs(1));
        wake.as_mut().reset(deadline.into());
        tokio::select! {
            m = inbound.recv() => match m {
                Some(m) => call.handle_datagram(clock::now(), m.from, &m.bytes),
                None => break,
            },
            _ = stop.cancelled(), if !hung_up => {
                hung_up = true;
                call.hangup(clock::now());
            }
            r = rtp.recv_from(&mut rtp_buf) => {
                if let (Ok((n, from)), Some(rx)) = (r, receiver.as_mut()) {
                    rx.handle_datagram(clock::now(), from, &rtp_buf[..n]);
                }
            }
            _ = &mut wake => call.handle_timeout(clock::now()),
        }
    }
    let reason = match outcome {
        Some(Outcome::Completed { by_remote: true }) => "the SIP agent hung up".to_string(),
        Some(Outcome::Completed { by_remote: false }) => "call ended".to_string(),
        Some(Outcome::Busy { sip_status }) => format!("SIP agent busy ({sip_status})"),
        Some(Outcome::NoAnswer { sip_status, cause }) => {
            format!(
                "SIP agent did not answer ({cause}{})",
                status_suffix(sip_status)
            )
        }
        Some(Outcome::Failed {
            sip_status, cause, ..
        }) => format!(
            "SIP agent call failed ({cause}{})",
            status_suffix(sip_status)
        ),
        Some(Outcome::Cancelled) => "call ended before the SIP agent answered".to_string(),
        None => "SIP agent leg ended".to_string(),
    };
    Ok(LegEvent::Ended { reason, answered })
}

fn status_suffix(status: Option<u16>) -> String {
    status.map(|s| format!(", {s}")).unwrap_or_default()
}
