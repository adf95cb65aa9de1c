//! `trunx dial`: one outbound call over real UDP sockets. This task owns the SIP and RTP
//! sockets and the clock; the call (`sip::call`), the media (`rtp`) and the detector (`amd`)
//! are the sans-IO state machines it feeds. It hangs up once the AMD has decided (for a
//! machine: once the beep or the end of the greeting is heard).
//!
//! Files: this one runs the call; `types` holds its options, plan and report (plain data).

mod types;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::amd::{AmdConfig, AmdEvent, AmdEventKind, BeepModel};
use crate::audio::FRAME_SAMPLES;
use crate::audio::g711::Law;
use crate::audio::player::Player;
use crate::call::{CallAction, CallFlow, FlowOutcome, VoiceMode};
use crate::rtp::RtpReceiver;
use crate::rtp::pacer::Pacer;
use crate::rtp::packet;
use crate::rtp::rtcp::{RtcpReporter, SendStats};
use crate::sip::call::{CallEvent, CallParams, Ids, OutboundCall, Outcome, Timers};
use crate::sip::sdp;

use crate::agent::StartInfo;
use crate::runtime::call::agent_bridge::{AgentBridge, BridgeAction, BridgeIn, LegContext};
use crate::runtime::call::amd_external::ExternalTarget;
use crate::runtime::call::endpoint::SipEndpoint;
use crate::runtime::call::net::{
    DialError, bind_rtp, local_ip_towards, media_target, resolve_trunk,
};
use crate::runtime::clock;
use tokio_util::sync::CancellationToken;

use types::outcome_fields;
pub use types::{CallPlan, DialOptions, DialReport, SharedEndpoint};

/// How far behind its 20 ms slot a sent frame counts as late (one packet time).
const LATE_AFTER: Duration = Duration::from_millis(20);

/// Jitter buffer delay: how long a missing packet is waited for before it is concealed (sipp's
/// millisecond-tick sender sends two packets 0.1 ms apart every 40 ms). The AMD's frames are
/// released in order as soon as they arrive, so this delays a decision only across a loss.
pub const PLAYOUT_DELAY: Duration = Duration::from_millis(40);

/// NTP time (seconds since 1900 in the high 32 bits) for RTCP sender reports.
fn ntp_now() -> u64 {
    let since_unix = clock::wall_now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since_unix.as_secs() + 2_208_988_800;
    let frac = ((since_unix.subsec_nanos() as u64) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// Places the call and runs it to its end.
pub async fn dial(
    opts: &DialOptions,
    amd_config: &AmdConfig,
    model: Option<BeepModel>,
) -> Result<DialReport, DialError> {
    dial_until(opts, amd_config, model, CancellationToken::new()).await
}

/// Like [`dial`], hanging up gracefully (CANCEL while ringing, BYE when answered) as soon as
/// `stop` is cancelled (Ctrl-C in `trunx dial`).
pub async fn dial_until(
    opts: &DialOptions,
    amd_config: &AmdConfig,
    model: Option<BeepModel>,
    stop: CancellationToken,
) -> Result<DialReport, DialError> {
    dial_with_engine(opts, amd_config, model, None, stop).await
}

/// `trunx dial` with an external engine: [`dial_until`] whose AMD is `external`
/// (the built-in detector alongside as its fallback).
pub async fn dial_with_engine(
    opts: &DialOptions,
    amd_config: &AmdConfig,
    model: Option<BeepModel>,
    external: Option<ExternalTarget>,
    stop: CancellationToken,
) -> Result<DialReport, DialError> {
    let (trunk, host, port) = resolve_trunk(&opts.trunk).await?;
    let endpoint = SipEndpoint::open(opts.sip_addr, &opts.trunk, trunk, &host).await?;
    // The address the trunk sees us at: the route's source address when bound to any.
    let local_ip = local_ip_towards(opts.sip_addr.ip(), trunk).await?;
    let shared = SharedEndpoint {
        endpoint: &endpoint,
        local_ip,
        trunk,
        trunk_host: &host,
        trunk_port: port,
    };
    let plan = (opts.voicemail.is_some() || opts.agent.is_some()).then_some(CallPlan {
        mode: VoiceMode {
            has_message: opts.voicemail.is_some(),
            ai: opts.agent.is_some(),
        },
    });
    let report = run_call_with(&shared, opts, plan, amd_config, model, external, stop).await;
    endpoint.shutdown().await;
    report
}

static CALL_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Places one call through a shared endpoint and runs it to its end. Without a `plan` the
/// call only listens: it hangs up once the AMD has decided (for a machine, once the beep or
/// the end of the greeting is heard).
pub async fn run_call(
    shared: &SharedEndpoint<'_>,
    opts: &DialOptions,
    plan: Option<CallPlan>,
    amd_config: &AmdConfig,
    model: Option<BeepModel>,
    stop: CancellationToken,
) -> Result<DialReport, DialError> {
    run_call_with(shared, opts, plan, amd_config, model, None, stop).await
}

/// [`run_call`] with an external AMD engine (`runtime::call::amd_external`) deciding the call, the
/// built-in detector running alongside as its fallback.
pub async fn run_call_with(
    shared: &SharedEndpoint<'_>,
    opts: &DialOptions,
    plan: Option<CallPlan>,
    amd_config: &AmdConfig,
    model: Option<BeepModel>,
    external: Option<crate::runtime::call::amd_external::ExternalTarget>,
    stop: CancellationToken,
) -> Result<DialReport, DialError> {
    let endpoint = shared.endpoint;
    let local_ip = shared.local_ip;
    let trunk = shared.trunk;
    let (host, port) = (shared.trunk_host, shared.trunk_port);
    let local = SocketAddr::new(local_ip, endpoint.local().port());
    let (rtp, rtcp) = bind_rtp(opts.sip_addr.ip(), &opts.rtp_ports).await?;
    let rtp_port = rtp.local_addr()?.port();

    let seed = clock::wall_now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ ((std::process::id() as u64) << 32)
        ^ CALL_COUNTER
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let ids = Ids {
        call_id: format!("{seed:016x}@{local_ip}"),
        from_tag: format!("{:08x}", (seed >> 17) as u32),
        seed,
    };
    let tls = endpoint.is_tls();
    let target = if opts.target.starts_with("sip:") || opts.target.starts_with("sips:") {
        opts.target.clone()
    } else if tls {
        format!("sip:{}@{host}:{port};transport=tls", opts.target)
    } else {
        format!("sip:{}@{host}:{port}", opts.target)
    };
    // SRTP (SDES): required over TLS unless configured otherwise.
    let srtp_policy = crate::runtime::call::sip_tls::settings()
        .srtp
        .effective(tls);
    let (sdp_offer, srtp_key) = crate::runtime::call::sip_tls::media_offer(
        srtp_policy,
        sdp::offer(local_ip, rtp_port, seed >> 1, 1),
    )?;
    let start = clock::now();
    let mut call = OutboundCall::new(
        start,
        CallParams {
            request_uri: target,
            from_uri: format!("sip:{}@{local_ip}", opts.from),
            p_asserted_identity: opts
                .send_pai
                .then(|| format!("sip:{}@{local_ip}", opts.from)),
            local,
            trunk,
            sdp_offer,
            username: opts.username.clone(),
            password: opts.password.clone(),
            ring_timeout: opts.ring_timeout,
            timers: Timers::default(),
        },
        ids,
    );
    let call_id = call.call_id().to_string();
    let mut inbound = endpoint.register(&call_id).await;
    let leg_context = LegContext {
        endpoint: endpoint.handle(),
        local_ip,
        rtp_ports: opts.rtp_ports.clone(),
    };
    let out = endpoint.sender();
    let shutdown = stop;
    let amd_config = amd_config.clone();
    let opts_voicemail = opts.voicemail.clone();
    let agent_target = opts
        .agent
        .clone()
        .filter(|_| plan.is_some_and(|p| p.mode.ai));
    let agent_info = StartInfo {
        campaign_id: opts.campaign_id.clone().unwrap_or_default(),
        prospect: opts.target.clone(),
        caller_id: opts.from.clone(),
        ..StartInfo::default()
    };
    // Wall time an answered call may go without the detector deciding: its analysis limit plus
    // slack. Past it the far end is sending too little audio (a dead stream, ports taken by
    // another stream) and the call ends as `no_media` instead of hanging on.
    let no_media_after = Duration::from_millis(u64::from(amd_config.max_analysis_ms) + 3_000);
    let task = endpoint.spawn(async move {
        let mut receiver: Option<RtpReceiver> = None;
        // Our media: silence on the 20 ms grid until a later issue plays prompts, so the far end
        // (and any NAT or SBC on the way) sees a live two-way stream.
        let mut sender: Option<(Pacer, Law, SocketAddr)> = None;
        let ssrc = (seed >> 7) as u32;
        let mut reporter: Option<RtcpReporter> = None;
        let voicemail = opts_voicemail;
        let mut flow = plan.map(|p| CallFlow::new(p.mode));
        let mut player: Option<Player> = None;
        let mut playback_start_ms: Option<u64> = None;
        let mut sent_stats = SendStats::default();
        let mut rtcp_buf = vec![0u8; 1500];
        let mut rtp_out = [0u8; 256];
        let mut amd =
            crate::runtime::call::amd_external::CallAmd::new(amd_config, model, external.as_ref(), &call_id);
        let mut answered_at: Option<Instant> = None;
        let mut recorder: Option<crate::call::amd_record::AmdRecorder> = None;
        let mut first_decision: Option<AmdEvent> = None;
        let mut beep_end: Option<u64> = None;
        let mut machine_end: Option<&'static str> = None;
        let mut outcome: Option<Outcome> = None;
        let mut hung_up = false;
        let mut stopping = false;
        let mut rtp_buf = vec![0u8; 2048];
        let mut frames_late: u64 = 0;
        let mut no_media = false;
        let mut srtp: Option<crate::rtp::srtp::SrtpSession> = None;
        let mut srtp_refused = false;
        // The agent bridge: the socket opens at the answer, the stream starts at `human`.
        let mut agent = agent_target.map(|t| {
            AgentBridge::new(
                t,
                agent_info,
                seed,
                shutdown.child_token(),
                Some(leg_context),
            )
        });
        // The agent could not be reached: the fallback message plays, then the call ends.
        let mut hang_up_after_playback = false;
        // One timer re-armed every turn: a new one per wake-up would churn the timer wheel
        // 50 times a second per call.
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
                        let now = clock::now();
                        answered_at = Some(now);
                        recorder = Some(crate::call::amd_record::AmdRecorder::new());
                        let (law, dtmf) = media
                            .map(|m| (m.law, m.dtmf_payload_type))
                            .unwrap_or((Law::Ulaw, None));
                        // The AMD takes audio the moment it is complete: the playout delay
                        // only bounds the wait for a lost or late packet.
                        let mut rx = RtpReceiver::new(law, dtmf, PLAYOUT_DELAY).with_early_release();
                        if let Some(m) = media.as_ref() {
                            rx = rx.with_expected_source(m.remote_rtp);
                        }
                        receiver = Some(rx);
                        if let Some(a) = agent.as_mut() {
                            a.on_answer(now);
                        }
                        reporter = Some(RtcpReporter::new(now, ssrc, &format!("trunx@{local_ip}")));
                        if let Some(ours) = srtp_key.as_ref() {
                            match media.as_ref().and_then(|m| m.srtp) {
                                Some(theirs) => match crate::rtp::srtp::SrtpSession::new(ours, &theirs) {
                                    Ok(s) => srtp = Some(s),
                                    Err(e) => {
                                        tracing::warn!(error = %e, "SRTP setup failed; hanging up");
                                        srtp_refused = true;
                                    }
                                },
                                None if srtp_policy == crate::runtime::call::sip_tls::SrtpPolicy::Required => {
                                    tracing::warn!("the answer has no SRTP key (SDES) but SRTP is required; hanging up");
                                    srtp_refused = true;
                                }
                                None => {}
                            }
                            if srtp_refused && !hung_up {
                                hung_up = true;
                                call.hangup(now);
                            }
                        }
                        if let Some(m) = media {
                            sender = Some((
                                Pacer::new(now, (seed >> 3) as u16, (seed >> 21) as u32),
                                law,
                                m.remote_rtp,
                            ));
                        }
                    }
                    CallEvent::Ended(o) => {
                        if matches!(o, Outcome::Completed { by_remote: true })
                            && let Some(f) = flow.as_mut()
                        {
                            f.on_remote_hangup();
                        }
                        outcome = Some(o);
                    }
                    CallEvent::Ringing { .. } => {}
                }
            }
            if call.is_terminated()
                || (outcome.is_some() && hung_up && call.poll_timeout().is_none())
            {
                break;
            }
            // Never answered and over: the ACK for the final response is out; Timer D would
            // only absorb retransmissions of it.
            if outcome.is_some() && answered_at.is_none() {
                break;
            }
            let now = clock::now();
            if let Some(rx) = receiver.as_mut() {
                while let Some(d) = rx.poll_dtmf() {
                    if let Some(a) = agent.as_mut() {
                        a.caller_dtmf(d.digit);
                    }
                }
                while let Some(frame) = rx.poll_frame(now) {
                    // Bridged: the caller's audio goes to the agent; a full queue (slow
                    // agent) drops the frame, never the tick.
                    if let Some(a) = agent.as_mut() {
                        a.caller_frame(&frame.frame.samples, frame.frame.start);
                    }
                    if amd.is_done() {
                        if let Some(r) = recorder.as_mut() {
                            r.push_frame(&frame.frame.samples, false, amd.last_model_probability());
                        }
                        continue;
                    }
                    let event = amd.process(&frame.frame);
                    if let Some(r) = recorder.as_mut() {
                        r.push_frame(
                            &frame.frame.samples,
                            amd.in_speech(),
                            amd.last_model_probability(),
                        );
                        if let Some(e) = &event {
                            r.push_event(e);
                        }
                    }
                    if let Some(e) = event {
                        if first_decision.is_none() {
                            first_decision = Some(e);
                        }
                        match e.kind {
                            AmdEventKind::MachineEndBeep { beep_end: end, .. } => {
                                beep_end = Some(end.as_ms());
                                machine_end = Some("beep");
                            }
                            AmdEventKind::MachineEndSilence => machine_end = Some("silence"),
                            _ => {}
                        }
                        match flow.as_mut().and_then(|f| f.on_amd(&e)) {
                            Some(CallAction::StartPlayback) => {
                                if let (Some(prompt), Some((pacer, law, _))) =
                                    (voicemail.as_ref(), sender.as_mut())
                                {
                                    player = Some(Player::new(prompt.clone(), *law));
                                    playback_start_ms = Some(e.at.as_ms());
                                    pacer.start_talkspurt_now(now);
                                }
                            }
                            Some(CallAction::BridgeAgent) if agent.is_some() => {
                                let result = e.kind.public_result().unwrap_or("human");
                                let action = agent
                                    .as_mut()
                                    .map(|a| a.on_human(clock::now(), result, e.cause.as_str()));
                                match action {
                                    Some(BridgeAction::PlayFallback(prompt)) => {
                                        if let Some((pacer, law, _)) = sender.as_mut() {
                                            player = Some(Player::new(prompt, *law));
                                            playback_start_ms = Some(e.at.as_ms());
                                            hang_up_after_playback = true;
                                            pacer.start_talkspurt_now(now);
                                        }
                                    }
                                    Some(BridgeAction::HangUp) if !hung_up => {
                                        hung_up = true;
                                        call.hangup(now);
                                    }
                                    _ => {}
                                }
                            }
                            Some(CallAction::HangUp | CallAction::BridgeAgent) if !hung_up => {
                                hung_up = true;
                                call.hangup(now);
                            }
                            _ => {}
                        }
                    }
                }
                if flow.is_none() && amd.is_done() && !hung_up {
                    hung_up = true;
                    call.hangup(now);
                    continue;
                }
            }
            if let Some(a) = answered_at
                && first_decision.is_none()
                && !hung_up
                && now.saturating_duration_since(a) >= no_media_after
            {
                no_media = true;
                hung_up = true;
                call.hangup(now);
            }
            if let Some((pacer, law, sdp_addr)) = sender.as_mut()
                && !hung_up
            {
                let silence = [law.silence(); FRAME_SAMPLES];
                loop {
                    let due = pacer.next_deadline();
                    let Some(slot) = pacer.poll(now) else {
                        break;
                    };
                    // A frame is late when it leaves a whole packet time after its slot, or
                    // its slot was skipped because the task woke too late to send it.
                    frames_late += u64::from(slot.skipped);
                    if slot.skipped == 0 && now.saturating_duration_since(due) > LATE_AFTER {
                        frames_late += 1;
                    }
                    let mut payload = silence;
                    let mut agent_frame = false;
                    if let Some(f) = agent.as_mut().and_then(|a| a.next_frame()) {
                        agent_frame = true;
                        payload = law.from_ulaw_frame(&f);
                    }
                    if let Some(p) = player.as_mut() {
                        p.skip(slot.skipped as usize);
                        match p.next_frame() {
                            Some((frame, _)) => payload = *frame,
                            None => {
                                let flow_action =
                                    flow.as_mut().and_then(|f| f.on_playback_finished());
                                if hang_up_after_playback
                                    || matches!(flow_action, Some(CallAction::HangUp))
                                {
                                    hung_up = true;
                                    call.hangup(now);
                                }
                                break;
                            }
                        }
                    }
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
                        match srtp.as_mut().map(|s| s.protect_rtp(&rtp_out[..n])) {
                            None => {
                                rtp.send_to(&rtp_out[..n], to).await?;
                            }
                            Some(Ok(p)) => {
                                rtp.send_to(&p, to).await?;
                            }
                            Some(Err(_)) => continue,
                        }
                        if agent_frame && let Some(a) = agent.as_mut() {
                            a.frame_sent(clock::now());
                        }
                        sent_stats.packets += 1;
                        sent_stats.octets += FRAME_SAMPLES as u32;
                        sent_stats.last_timestamp = slot.timestamp;
                    }
                }
            }
            // RTCP every 5 s to the port above the far end's RTP (RFC 3550 §11), and a BYE
            // once we hang up.
            if let Some(rep) = reporter.as_mut()
                && let Some((_, _, sdp_addr)) = sender.as_ref()
            {
                let rtp_to = receiver
                    .as_ref()
                    .and_then(|r| r.remote())
                    .unwrap_or(*sdp_addr);
                let to = SocketAddr::new(rtp_to.ip(), rtp_to.port().wrapping_add(1));
                let stats = receiver.as_ref().map(|r| r.receive_stats());
                let report = if hung_up {
                    let bye = rep.bye(now, ntp_now(), Some(sent_stats), stats.as_ref());
                    reporter = None;
                    Some(bye)
                } else {
                    rep.poll(now, ntp_now(), Some(sent_stats), stats.as_ref())
                };
                if let Some(Ok(bytes)) = report {
                    match srtp.as_mut() {
                        Some(s) => {
                            if let Ok(p) = s.protect_rtcp(&bytes) {
                                let _ = rtcp.send_to(&p, to).await;
                            }
                        }
                        None => {
                            let _ = rtcp.send_to(&bytes, to).await;
                        }
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
                reporter.as_ref().map(|r| r.next_deadline()),
                answered_at
                    .filter(|_| first_decision.is_none() && !hung_up)
                    .map(|a| a + no_media_after),
                agent.as_ref().and_then(|a| a.next_deadline()),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + Duration::from_secs(1));
            wake.as_mut().reset(deadline.into());
            tokio::select! {
                m = inbound.recv() => {
                    match m {
                        Some(m) => {
                            let before = call.malformed();
                            call.handle_datagram(clock::now(), m.from, &m.bytes);
                            if call.malformed() > before {
                                crate::runtime::metrics::global().sip_dropped.with_label_values(&["malformed"]).inc();
                            }
                        }
                        None => break,
                    }
                }
                _ = shutdown.cancelled(), if !stopping => {
                    // Graceful shutdown: CANCEL while ringing, BYE when answered.
                    stopping = true;
                    hung_up = true;
                    call.hangup(clock::now());
                }
                r = rtcp.recv_from(&mut rtcp_buf) => {
                    let (n, _) = r?;
                    let plain = match srtp.as_mut().map(|s| s.unprotect_rtcp(&rtcp_buf[..n])) {
                        Some(Ok(p)) => Some(p),
                        Some(Err(_)) => None,
                        None => Some(bytes::Bytes::copy_from_slice(&rtcp_buf[..n])),
                    };
                    // Malformed RTCP is counted and dropped; the report only feeds statistics.
                    if let Some(rep) = reporter.as_mut()
                        && plain.is_none_or(|p| rep.handle(clock::now(), &p).is_err())
                    {
                        crate::runtime::metrics::global().rtp_dropped.with_label_values(&["rtcp_malformed"]).inc();
                    }
                }
                r = rtp.recv_from(&mut rtp_buf) => {
                    let (n, from) = r?;
                    match receiver.as_mut() {
                        Some(rx) => {
                            let before = rx.drops();
                            match srtp.as_mut().map(|s| s.unprotect_rtp(&rtp_buf[..n])) {
                                None => rx.handle_datagram(clock::now(), from, &rtp_buf[..n]),
                                Some(Ok(p)) => rx.handle_datagram(clock::now(), from, &p),
                                Some(Err(_)) => crate::runtime::metrics::global().rtp_dropped.with_label_values(&["srtp_auth"]).inc(),
                            }
                            crate::runtime::metrics::global().rtp_drops(before, rx.drops());
                        }
                        None => crate::runtime::metrics::global().rtp_dropped.with_label_values(&["before_answer"]).inc(),
                    }
                }
                a = recv_agent(&mut agent) => {
                    let now = clock::now();
                    let action = match agent.as_mut() {
                        Some(bridge) => bridge.handle(a, now),
                        None => BridgeAction::Continue,
                    };
                    match action {
                        BridgeAction::Continue => {}
                        BridgeAction::HangUp => {
                            if !hung_up {
                                hung_up = true;
                                call.hangup(now);
                            }
                        }
                        BridgeAction::PlayFallback(prompt) => {
                            if let Some((pacer, law, _)) = sender.as_mut()
                                && !hung_up
                            {
                                player = Some(Player::new(prompt, *law));
                                hang_up_after_playback = true;
                                pacer.start_talkspurt_now(now);
                            }
                        }
                    }
                    // Agent audio into an idle queue leaves now, not at the next 20 ms slot.
                    if let Some(a) = agent.as_mut()
                        && a.take_talkspurt()
                        && let Some((pacer, _, _)) = sender.as_mut()
                    {
                        pacer.start_talkspurt_now(now);
                    }
                }
                _ = &mut wake => {
                    let now = clock::now();
                    call.handle_timeout(now);
                    if let Some(a) = agent.as_mut() {
                        a.on_timeout(now);
                    }
                }
            }
        }
        // The call ended before the detector decided (a hang-up during analysis).
        if answered_at.is_some()
            && first_decision.is_none()
            && let Some(e) = amd.finish()
        {
            if let Some(r) = recorder.as_mut() {
                r.push_event(&e);
            }
            first_decision = Some(e);
        }
        let outcome = outcome.unwrap_or(Outcome::Failed {
            sip_status: None,
            cause: "internal",
            retryable: true,
        });
        let (mut name, mut cause, sip_status) = outcome_fields(&outcome);
        if srtp_refused {
            (name, cause) = ("failed", Some("srtp_not_accepted"));
        }
        let ended = clock::now();
        if let Some(a) = agent.as_mut() {
            a.on_call_end();
        }
        let flow_outcome = flow.as_ref().and_then(|f| f.outcome());
        let rx_jitter = receiver.as_ref().map(|r| r.jitter_stats());
        Ok(DialReport {
            outcome: name,
            cause,
            amd: first_decision.and_then(|e| {
                // The public result: machine_end_beep wins over machine when a beep followed.
                if beep_end.is_some() {
                    Some("machine_end_beep")
                } else {
                    e.kind.public_result()
                }
            }),
            amd_cause: first_decision.map(|e| e.cause.as_str().to_string()),
            sip_status,
            answered_ms: answered_at.map(|a| a.duration_since(start).as_millis() as u64),
            amd_ms: first_decision.map(|e| e.at.as_ms()),
            beep_end_ms: beep_end,
            machine_end,
            call_id,
            playback_start_ms,
            played_ms: player.as_ref().map(|p| p.played_ms()),
            frames_sent: sent_stats.packets as u64,
            frames_late,
            rx_late: rx_jitter.map_or(0, |j| j.late),
            rx_lost: rx_jitter.map_or(0, |j| j.concealed),
            no_media,
            agent_connected_ms: agent.as_ref().and_then(|a| a.connected_ms()),
            agent_talk_ms: agent.as_ref().and_then(|a| a.talk_ms(ended)),
            agent_end: agent.as_ref().and_then(|a| a.end_reason()),
            agent_stats: agent.as_ref().map(|a| a.stats()),
            amd_engine: answered_at.map(|_| amd.engine()),
            talk_ms: answered_at.map(|a| ended.duration_since(a).as_millis() as u64),
            flow: flow_outcome,
            amd_record: recorder.map(|r| Box::new(r.finish())),
            message: flow_outcome.map(|o| match o {
                FlowOutcome::Voicemail { complete: true, .. } => "voicemail",
                FlowOutcome::Voicemail {
                    complete: false, ..
                } => "voicemail_incomplete",
                FlowOutcome::HumanConnected { complete: true } => "humanConnected",
                FlowOutcome::HumanConnected { complete: false } => "humanConnected_incomplete",
                FlowOutcome::MachineNoMessage { cause } => cause,
                FlowOutcome::Failed { cause } => cause,
            }),
        })
    });
    task.await
        .map_err(|e| DialError::Io(std::io::Error::other(e)))?
}

/// The next event of the agent's socket, or never when there is no agent.
async fn recv_agent(agent: &mut Option<AgentBridge>) -> BridgeIn {
    match agent.as_mut() {
        Some(a) => a.recv().await,
        None => std::future::pending().await,
    }
}
