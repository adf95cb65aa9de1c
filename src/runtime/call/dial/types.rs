//! What one call of `dial` takes and gives: its options (`DialOptions`), the campaign's plan
//! for the verdict (`CallPlan`), the shared SIP endpoint it is placed through
//! (`SharedEndpoint`), the report it ends with (`DialReport`, the JSON `trunx dial` prints),
//! and how a SIP outcome maps onto the report's fields. Plain data: it must not open sockets,
//! read the clock or run any part of the call (that is `dial`).

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::audio::prompt::Prompt;
use crate::call::{FlowOutcome, VoiceMode};
use crate::runtime::call::agent_bridge::AgentStats;
use crate::runtime::call::agent_ws::AgentTarget;
use crate::runtime::call::endpoint::SipEndpoint;
use crate::sip::call::Outcome;

#[derive(Clone, Debug)]
pub struct DialOptions {
    /// E.164 number or SIP URI to call.
    pub target: String,
    /// Caller ID (E.164).
    pub from: String,
    /// `sip:host[:port]` of the trunk.
    pub trunk: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub ring_timeout: Duration,
    pub sip_addr: SocketAddr,
    pub rtp_ports: RangeInclusive<u16>,
    /// Also send the caller ID as P-Asserted-Identity.
    pub send_pai: bool,
    /// The prepared message: played after the beep to a machine, or at once to a person.
    pub voicemail: Option<Arc<Prompt>>,
    /// The AI agent a person is bridged to (`ai` campaigns, `trunx dial --agent-url`).
    pub agent: Option<AgentTarget>,
    /// The campaign placing the call (told to the agent).
    pub campaign_id: Option<String>,
}

/// The JSON `trunx dial` prints.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DialReport {
    pub outcome: &'static str,
    pub cause: Option<&'static str>,
    pub amd: Option<&'static str>,
    pub amd_cause: Option<String>,
    pub sip_status: Option<u16>,
    pub answered_ms: Option<u64>,
    pub amd_ms: Option<u64>,
    pub beep_end_ms: Option<u64>,
    /// How the machine's greeting was found to end: `beep` or `silence` (the configured end
    /// silence without a beep); `None` for people and undecided greetings.
    pub machine_end: Option<&'static str>,
    pub call_id: String,
    /// With `--voicemail`: the audio time (ms from the first answered sample) at which the
    /// message started, and how much of it was sent.
    pub playback_start_ms: Option<u64>,
    pub played_ms: Option<u64>,
    /// With `--voicemail`: `voicemail`, `voicemail_incomplete`, `humanConnected`, ...
    pub message: Option<&'static str>,
    /// Answered time until the call ended, in ms.
    pub talk_ms: Option<u64>,
    /// RTP frames sent, and how many left later than one packet time after their slot (or
    /// were skipped because the sender woke too late).
    pub frames_sent: u64,
    pub frames_late: u64,
    /// Received frames that arrived after their playout slot, and frames never received
    /// (concealed), from the jitter buffer.
    pub rx_late: u64,
    pub rx_lost: u64,
    /// Answered, but too little audio arrived for the detector to decide in its analysis time.
    pub no_media: bool,
    /// With an agent: when its websocket was open (ms after the answer), how long it talked
    /// to the person, and why the bridge ended (or why it never started).
    pub agent_connected_ms: Option<u64>,
    pub agent_talk_ms: Option<u64>,
    pub agent_end: Option<String>,
    /// With an agent: the handoff and audio latencies, reconnects, fallback and counters.
    pub agent_stats: Option<AgentStats>,
    /// Answered calls: whose AMD result stood, `builtin`, `external` or `builtin_fallback`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amd_engine: Option<&'static str>,
    /// The call flow's verdict (the dialer maps it to the campaign outcome).
    #[serde(skip)]
    pub flow: Option<FlowOutcome>,
    /// Answered calls: the first 10 s of audio and the detector's trace.
    #[serde(skip)]
    pub amd_record: Option<Box<crate::call::amd_record::AmdRecord>>,
}

/// What the call does with the detector's verdict when it is placed by a campaign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallPlan {
    pub mode: VoiceMode,
}

/// A SIP endpoint shared by many calls, with the address the trunk sees it at.
pub struct SharedEndpoint<'a> {
    pub endpoint: &'a SipEndpoint,
    pub local_ip: IpAddr,
    pub trunk: SocketAddr,
    pub trunk_host: &'a str,
    pub trunk_port: u16,
}

/// The report's `outcome`, `cause` and `sip_status` for how the SIP call ended.
pub(super) fn outcome_fields(o: &Outcome) -> (&'static str, Option<&'static str>, Option<u16>) {
    match o {
        Outcome::Completed { .. } => ("answered", None, Some(200)),
        Outcome::Busy { sip_status } => ("busy", None, Some(*sip_status)),
        Outcome::NoAnswer { sip_status, cause } => ("noAnswer", Some(*cause), *sip_status),
        Outcome::Failed {
            sip_status, cause, ..
        } => ("failed", Some(*cause), *sip_status),
        Outcome::Cancelled => ("cancelled", None, None),
    }
}
