//! The JSON the API sends: campaign, prospect, stats, audio, DID, message and suppression objects, camelCase as the
//! spec spells them, with RFC 3339 UTC timestamps.

use serde::Serialize;
use serde_json::Value;

use crate::campaign::Counters;
use crate::store::{Attempt, AudioAsset, Campaign, Did, Message, Page, Prospect, Suppression};

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// A campaign, fields in the order of the create request.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignDto<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub channel: &'static str,
    pub status: &'static str,
    pub mode: &'a Value,
    pub caller_ids: &'a [String],
    pub caller_id_strategy: &'a Value,
    pub schedule: &'a Option<Value>,
    /// Only present when set, so campaigns without one read exactly as the spec shows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<&'a str>,
    pub created_at: String,
    pub updated_at: String,
}

pub fn campaign(c: &Campaign) -> CampaignDto<'_> {
    CampaignDto {
        id: &c.id,
        name: &c.name,
        channel: c.channel.as_str(),
        status: c.status.as_str(),
        mode: &c.mode,
        caller_ids: &c.caller_ids,
        caller_id_strategy: &c.caller_id_strategy,
        schedule: &c.schedule,
        webhook_url: c.webhook_url.as_deref(),
        created_at: rfc3339(c.created_at_ms),
        updated_at: rfc3339(c.updated_at_ms),
    }
}

/// What every lifecycle endpoint returns: `{ id, name, status, channel }`.
#[derive(Debug, Serialize)]
pub struct LifecycleDto<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub status: &'static str,
    pub channel: &'static str,
}

pub fn lifecycle(c: &Campaign) -> LifecycleDto<'_> {
    LifecycleDto {
        id: &c.id,
        name: &c.name,
        status: c.status.as_str(),
        channel: c.channel.as_str(),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProspectDto<'a> {
    pub id: &'a str,
    pub phone: &'a str,
    pub status: &'static str,
    pub attempts: u32,
    pub last_outcome: Option<&'static str>,
    pub amd_result: Option<&'static str>,
    pub next_attempt_at: Option<String>,
    pub wait_reason: Option<&'a str>,
    pub created_at: String,
    pub updated_at: String,
}

pub fn prospect(p: &Prospect) -> ProspectDto<'_> {
    ProspectDto {
        id: &p.id,
        phone: &p.phone,
        status: p.status.as_str(),
        attempts: p.attempts,
        last_outcome: p.last_outcome.map(|o| o.as_str()),
        amd_result: p.amd_result.map(|a| a.as_str()),
        next_attempt_at: p.next_attempt_at_ms.map(rfc3339),
        wait_reason: p.wait_reason.as_deref(),
        created_at: rfc3339(p.created_at_ms),
        updated_at: rfc3339(p.updated_at_ms),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioDto<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub url: &'a str,
    pub duration_seconds: f64,
}

pub fn audio<'a>(a: &'a AudioAsset, url: &'a str) -> AudioDto<'a> {
    AudioDto {
        id: &a.id,
        name: &a.name,
        url,
        duration_seconds: a.duration_seconds,
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DidDto<'a> {
    pub id: &'a str,
    pub number: &'a str,
    pub state: &'static str,
    pub health_score: f64,
    pub calls_placed: u64,
    pub calls_answered: u64,
    pub answer_rate: Option<f64>,
    pub cooling_until: Option<String>,
    pub last_used_at: Option<String>,
    pub created_at: String,
}

pub fn did(d: &Did) -> DidDto<'_> {
    DidDto {
        id: &d.id,
        number: &d.number,
        state: d.state.as_str(),
        health_score: d.health_score,
        calls_placed: d.calls_placed,
        calls_answered: d.calls_answered,
        answer_rate: (d.calls_placed > 0).then(|| d.calls_answered as f64 / d.calls_placed as f64),
        cooling_until: d.cooling_until_ms.map(rfc3339),
        last_used_at: d.last_used_at_ms.map(rfc3339),
        created_at: rfc3339(d.created_at_ms),
    }
}

/// A page: `{"data": [...], "nextCursor": "..." | null}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageDto<D> {
    pub data: Vec<D>,
    pub next_cursor: Option<String>,
}

pub fn page<'a, T, D: Serialize>(p: &'a Page<T>, item: impl Fn(&'a T) -> D) -> PageDto<D> {
    PageDto {
        data: p.items.iter().map(item).collect(),
        next_cursor: p.next_cursor.map(|c| c.to_string()),
    }
}

/// The answer to `POST /dids`.
#[derive(Debug, Serialize)]
pub struct DidsAddedDto<'a> {
    pub added: usize,
    pub data: Vec<DidDto<'a>>,
}

/// The spec's stats object: exactly these 14 keys, in this order.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub total: i64,
    pub queued: i64,
    pub dialing: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub no_answer: i64,
    pub busy: i64,
    pub voicemail: i64,
    pub human_connected: i64,
    pub sending: i64,
    pub sent: i64,
    pub delivered: i64,
    pub progress: i64,
}

impl From<&Counters> for Stats {
    fn from(c: &Counters) -> Stats {
        Stats {
            total: c.total,
            queued: c.queued,
            dialing: c.dialing,
            completed: c.completed,
            failed: c.failed,
            cancelled: c.cancelled,
            no_answer: c.no_answer,
            busy: c.busy,
            voicemail: c.voicemail,
            human_connected: c.human_connected,
            sending: c.sending,
            sent: c.sent,
            delivered: c.delivered,
            progress: c.progress(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}

/// One call attempt, for auditing a campaign call by call.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptDto<'a> {
    pub id: &'a str,
    pub prospect_id: &'a str,
    pub phone: &'a str,
    pub attempt: u32,
    pub caller_id: &'a str,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub outcome: Option<&'static str>,
    pub cause: Option<&'a str>,
    pub sip_status: Option<u16>,
    pub answered_ms: Option<i64>,
    pub amd_result: Option<&'static str>,
    pub amd_cause: Option<&'a str>,
    pub amd_ms: Option<i64>,
    pub machine_end: Option<&'a str>,
    pub playback_start_ms: Option<i64>,
    pub played_ms: Option<i64>,
    pub talk_ms: Option<i64>,
    pub agent_connected_ms: Option<i64>,
    pub agent_talk_ms: Option<i64>,
    pub agent_reconnects: Option<i64>,
    pub agent_end: Option<&'a str>,
}

pub fn attempt(a: &Attempt) -> AttemptDto<'_> {
    AttemptDto {
        id: &a.id,
        prospect_id: &a.prospect_id,
        phone: &a.phone,
        attempt: a.number,
        caller_id: &a.caller_id,
        started_at: rfc3339(a.started_at_ms),
        ended_at: a.ended_at_ms.map(rfc3339),
        outcome: a.result.outcome.map(|o| o.as_str()),
        cause: a.result.cause.as_deref(),
        sip_status: a.result.sip_status,
        answered_ms: a.result.answered_ms,
        amd_result: a.result.amd_result.map(|r| r.as_str()),
        amd_cause: a.result.amd_cause.as_deref(),
        amd_ms: a.result.amd_ms,
        machine_end: a.result.machine_end.as_deref(),
        playback_start_ms: a.result.playback_start_ms,
        played_ms: a.result.played_ms,
        talk_ms: a.result.talk_ms,
        agent_connected_ms: a.result.agent_connected_ms,
        agent_talk_ms: a.result.agent_talk_ms,
        agent_reconnects: a.result.agent_reconnects,
        agent_end: a.result.agent_end.as_deref(),
    }
}

/// One SMS message, for auditing a campaign message by message.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageDto<'a> {
    pub id: &'a str,
    pub prospect_id: &'a str,
    pub phone: &'a str,
    pub did: &'a str,
    pub parts: u32,
    pub message_ids: &'a [String],
    pub status: &'static str,
    pub error_code: Option<&'a str>,
    pub submitted_at: Option<String>,
    pub receipt_at: Option<String>,
    pub created_at: String,
}

pub fn message(m: &Message) -> MessageDto<'_> {
    MessageDto {
        id: &m.id,
        prospect_id: &m.prospect_id,
        phone: &m.phone,
        did: &m.did,
        parts: m.parts,
        message_ids: &m.smpp_message_ids,
        status: m.status.as_str(),
        error_code: m.error_code.as_deref(),
        submitted_at: m.submitted_at_ms.map(rfc3339),
        receipt_at: m.receipt_at_ms.map(rfc3339),
        created_at: rfc3339(m.created_at_ms),
    }
}

/// A number on the suppression list.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SuppressionDto<'a> {
    pub phone: &'a str,
    pub reason: &'a str,
    pub source: &'a str,
    pub created_at: String,
}

pub fn suppression(x: &Suppression) -> SuppressionDto<'_> {
    SuppressionDto {
        phone: &x.phone,
        reason: &x.reason,
        source: &x.source,
        created_at: rfc3339(x.created_at_ms),
    }
}
