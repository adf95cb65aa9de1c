//! Row decoding and the statements several operations share (the prospect state change and its
//! counters, claims, campaign completion), each run inside the caller's transaction. They are
//! the PostgreSQL twins of the helpers in `store::sqlite`, with the same rules.

use postgres::Row;
use serde_json::Value;

use super::Tx;
use super::events;
use crate::campaign::prospect::{self, ProspectState};
use crate::campaign::{
    AmdResult, CampaignStatus, Channel, Counters, Outcome, ProspectEvent, ProspectStatus,
};
use crate::store::sqlite::compliance::DncBook;
use crate::store::{
    ApiKey, Attempt, AttemptResult, Campaign, DNC_REASON, Did, DidState, Message, MessageStatus,
    Page, Prospect, SUPPRESSED_REASON, StoreError,
};

pub(super) const CAMPAIGN_COLUMNS: &str = "seq, id, name, channel, status, mode, caller_ids, \
    caller_id_strategy, schedule, created_at, updated_at, webhook_url";
pub(super) const COUNTER_COLUMNS: &str = "total, queued, dialing, completed, failed, cancelled, \
    no_answer, busy, voicemail, human_connected, sending, sent, delivered";
pub(super) const PROSPECT_COLUMNS: &str = "p.seq, p.id, c.id, p.phone, p.status, p.attempts, \
    p.last_outcome, p.amd_result, p.next_attempt_at, p.created_at, p.updated_at, p.wait_reason";
pub(super) const ATTEMPT_COLUMNS: &str = "a.seq, a.id, c.id, p.id, p.phone, a.number, \
    a.caller_id, a.started_at, a.ended_at, a.outcome, a.cause, a.sip_status, a.sip_call_id, \
    a.answered_ms, a.amd_result, a.amd_cause, a.amd_ms, a.machine_end, a.playback_start_ms, \
    a.played_ms, a.talk_ms, a.agent_connected_ms, a.agent_talk_ms, a.agent_reconnects, \
    a.agent_end, a.abandoned";
pub(super) const ATTEMPT_FROM: &str = "attempts a JOIN prospects p ON p.seq = a.prospect_seq \
    JOIN campaigns c ON c.seq = a.campaign_seq";
pub(super) const MESSAGE_COLUMNS: &str = "m.seq, m.id, c.id, p.id, p.phone, m.did, m.parts, \
    m.smpp_message_ids, m.status, m.error_code, m.submitted_at, m.receipt_at, m.created_at, \
    m.campaign_seq";
pub(super) const MESSAGE_FROM: &str = "messages m JOIN prospects p ON p.seq = m.prospect_seq \
    JOIN campaigns c ON c.seq = m.campaign_seq";
pub(super) const DID_COLUMNS: &str = "seq, id, number, state, health_score, calls_placed, \
    calls_answered, cooling_until, last_used_at, created_at";

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} {value:?}"))
}

fn json(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn u32_of(v: i64) -> u32 {
    v.clamp(0, i64::from(u32::MAX)) as u32
}

pub(super) fn campaign_row(row: &Row) -> Result<(i64, Campaign), StoreError> {
    let channel: String = row.try_get(3)?;
    let status: String = row.try_get(4)?;
    let schedule: Option<String> = row.try_get(8)?;
    let caller_ids: String = row.try_get(6)?;
    Ok((
        row.try_get(0)?,
        Campaign {
            id: row.try_get(1)?,
            name: row.try_get(2)?,
            channel: Channel::parse(&channel).ok_or_else(|| corrupt("channel", &channel))?,
            status: CampaignStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
            mode: json(row.try_get(5)?)?,
            caller_ids: strings(&json(&caller_ids)?),
            caller_id_strategy: json(row.try_get(7)?)?,
            schedule: schedule.as_deref().map(json).transpose()?,
            created_at_ms: row.try_get(9)?,
            updated_at_ms: row.try_get(10)?,
            webhook_url: row.try_get(11)?,
        },
    ))
}

pub(super) fn prospect_row(row: &Row) -> Result<(i64, Prospect), StoreError> {
    let status: String = row.try_get(4)?;
    let outcome: Option<String> = row.try_get(6)?;
    let amd: Option<String> = row.try_get(7)?;
    Ok((
        row.try_get(0)?,
        Prospect {
            id: row.try_get(1)?,
            campaign_id: row.try_get(2)?,
            phone: row.try_get(3)?,
            status: ProspectStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
            attempts: u32_of(row.try_get(5)?),
            last_outcome: outcome
                .map(|o| Outcome::parse(&o).ok_or_else(|| corrupt("outcome", &o)))
                .transpose()?,
            amd_result: amd
                .map(|a| AmdResult::parse(&a).ok_or_else(|| corrupt("amd result", &a)))
                .transpose()?,
            next_attempt_at_ms: row.try_get(8)?,
            created_at_ms: row.try_get(9)?,
            updated_at_ms: row.try_get(10)?,
            wait_reason: row.try_get(11)?,
        },
    ))
}

pub(super) fn attempt_row(row: &Row) -> Result<(i64, Attempt), StoreError> {
    let outcome: Option<String> = row.try_get(9)?;
    let amd: Option<String> = row.try_get(14)?;
    let sip: Option<i64> = row.try_get(11)?;
    Ok((
        row.try_get(0)?,
        Attempt {
            id: row.try_get(1)?,
            campaign_id: row.try_get(2)?,
            prospect_id: row.try_get(3)?,
            phone: row.try_get(4)?,
            number: u32_of(row.try_get(5)?),
            caller_id: row.try_get(6)?,
            started_at_ms: row.try_get(7)?,
            ended_at_ms: row.try_get(8)?,
            result: AttemptResult {
                outcome: outcome
                    .map(|o| Outcome::parse(&o).ok_or_else(|| corrupt("outcome", &o)))
                    .transpose()?,
                cause: row.try_get(10)?,
                sip_status: sip.map(|s| s.clamp(0, i64::from(u16::MAX)) as u16),
                sip_call_id: row.try_get(12)?,
                answered_ms: row.try_get(13)?,
                amd_result: amd
                    .map(|a| AmdResult::parse(&a).ok_or_else(|| corrupt("amd result", &a)))
                    .transpose()?,
                amd_cause: row.try_get(15)?,
                amd_ms: row.try_get(16)?,
                machine_end: row.try_get(17)?,
                playback_start_ms: row.try_get(18)?,
                played_ms: row.try_get(19)?,
                talk_ms: row.try_get(20)?,
                agent_connected_ms: row.try_get(21)?,
                agent_talk_ms: row.try_get(22)?,
                agent_reconnects: row.try_get(23)?,
                agent_end: row.try_get(24)?,
                abandoned: row.try_get(25)?,
            },
        },
    ))
}

pub(super) fn message_row(row: &Row) -> Result<(i64, Message), StoreError> {
    let ids: String = row.try_get(7)?;
    let status: String = row.try_get(8)?;
    Ok((
        row.try_get(0)?,
        Message {
            id: row.try_get(1)?,
            campaign_id: row.try_get(2)?,
            prospect_id: row.try_get(3)?,
            phone: row.try_get(4)?,
            did: row.try_get(5)?,
            parts: u32_of(row.try_get(6)?),
            smpp_message_ids: strings(&json(&ids)?),
            status: MessageStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
            error_code: row.try_get(9)?,
            submitted_at_ms: row.try_get(10)?,
            receipt_at_ms: row.try_get(11)?,
            created_at_ms: row.try_get(12)?,
        },
    ))
}

pub(super) fn did_row(row: &Row) -> Result<(i64, Did), StoreError> {
    let state: String = row.try_get(3)?;
    Ok((
        row.try_get(0)?,
        Did {
            id: row.try_get(1)?,
            number: row.try_get(2)?,
            state: DidState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
            health_score: row.try_get(4)?,
            calls_placed: row.try_get::<_, i64>(5)?.max(0) as u64,
            calls_answered: row.try_get::<_, i64>(6)?.max(0) as u64,
            cooling_until_ms: row.try_get(7)?,
            last_used_at_ms: row.try_get(8)?,
            created_at_ms: row.try_get(9)?,
        },
    ))
}

pub(super) fn api_key_row(row: &Row) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        created_at_ms: row.try_get(2)?,
        revoked_at_ms: row.try_get(3)?,
    })
}

pub(super) fn counters_row(row: &Row) -> Result<Counters, StoreError> {
    Ok(Counters {
        total: row.try_get(0)?,
        queued: row.try_get(1)?,
        dialing: row.try_get(2)?,
        completed: row.try_get(3)?,
        failed: row.try_get(4)?,
        cancelled: row.try_get(5)?,
        no_answer: row.try_get(6)?,
        busy: row.try_get(7)?,
        voicemail: row.try_get(8)?,
        human_connected: row.try_get(9)?,
        sending: row.try_get(10)?,
        sent: row.try_get(11)?,
        delivered: row.try_get(12)?,
    })
}

/// Decodes every row, keeping `seq`.
pub(super) fn decode<T>(
    rows: &[Row],
    f: impl Fn(&Row) -> Result<(i64, T), StoreError>,
) -> Result<Vec<(i64, T)>, StoreError> {
    rows.iter().map(f).collect()
}

/// Decodes every row, dropping `seq`.
pub(super) fn items<T>(
    rows: &[Row],
    f: impl Fn(&Row) -> Result<(i64, T), StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(|r| f(r).map(|(_, t)| t)).collect()
}

pub(super) fn page<T>(mut rows: Vec<(i64, T)>, limit: u32) -> Page<T> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|(seq, _)| *seq)
    } else {
        None
    };
    Page {
        items: rows.into_iter().map(|(_, t)| t).collect(),
        next_cursor,
    }
}

pub(super) fn campaign_not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        what: "campaign",
        id: id.to_string(),
    }
}

/// The row position of a campaign (no lock).
pub(super) fn campaign_seq(tx: &mut Tx, id: &str) -> Result<i64, StoreError> {
    tx.opt("SELECT seq FROM campaigns WHERE id = $1", &[&id])?
        .map(|r| r.get(0))
        .ok_or_else(|| campaign_not_found(id))
}

/// Locks the campaign's row (every write to a campaign's prospects or counters takes this lock
/// first) and returns its position and status.
pub(super) fn lock_campaign(tx: &mut Tx, id: &str) -> Result<(i64, CampaignStatus), StoreError> {
    let row = tx
        .opt(
            "SELECT seq, status FROM campaigns WHERE id = $1 FOR UPDATE",
            &[&id],
        )?
        .ok_or_else(|| campaign_not_found(id))?;
    let status: String = row.get(1);
    let status = CampaignStatus::parse(&status).ok_or(StoreError::Corrupt(status))?;
    Ok((row.get(0), status))
}

/// Locks a campaign's row by position.
pub(super) fn lock_campaign_seq(tx: &mut Tx, seq: i64) -> Result<CampaignStatus, StoreError> {
    let row = tx.one(
        "SELECT status FROM campaigns WHERE seq = $1 FOR UPDATE",
        &[&seq],
    )?;
    let status: String = row.get(0);
    CampaignStatus::parse(&status).ok_or(StoreError::Corrupt(status))
}

pub(super) fn get_campaign_in(tx: &mut Tx, id: &str) -> Result<Campaign, StoreError> {
    let row = tx
        .opt(
            &format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1"),
            &[&id],
        )?
        .ok_or_else(|| campaign_not_found(id))?;
    Ok(campaign_row(&row)?.1)
}

/// One prospect of a campaign, with its row position.
pub(super) fn prospect_in(
    tx: &mut Tx,
    campaign_seq: i64,
    prospect_id: &str,
) -> Result<(i64, Prospect), StoreError> {
    let row = tx
        .opt(
            &format!(
                "SELECT {PROSPECT_COLUMNS} FROM prospects p JOIN campaigns c \
                 ON c.seq = p.campaign_seq WHERE p.id = $1 AND p.campaign_seq = $2"
            ),
            &[&prospect_id, &campaign_seq],
        )?
        .ok_or_else(|| StoreError::NotFound {
            what: "prospect",
            id: prospect_id.to_string(),
        })?;
    prospect_row(&row)
}

/// Adds `d` to the campaign's counters.
pub(super) fn bump_counters(
    tx: &mut Tx,
    campaign_seq: i64,
    d: &Counters,
) -> Result<(), StoreError> {
    tx.exec(
        "UPDATE campaigns SET total = total + $2, queued = queued + $3, dialing = dialing + $4, \
         completed = completed + $5, failed = failed + $6, cancelled = cancelled + $7, \
         no_answer = no_answer + $8, busy = busy + $9, voicemail = voicemail + $10, \
         human_connected = human_connected + $11, sending = sending + $12, sent = sent + $13, \
         delivered = delivered + $14 WHERE seq = $1",
        &[
            &campaign_seq,
            &d.total,
            &d.queued,
            &d.dialing,
            &d.completed,
            &d.failed,
            &d.cancelled,
            &d.no_answer,
            &d.busy,
            &d.voicemail,
            &d.human_connected,
            &d.sending,
            &d.sent,
            &d.delivered,
        ],
    )?;
    Ok(())
}

pub(super) fn is_suppressed_in(tx: &mut Tx, phone: &str) -> Result<bool, StoreError> {
    Ok(tx
        .one(
            "SELECT EXISTS(SELECT 1 FROM suppression WHERE phone = $1)",
            &[&phone],
        )?
        .get(0))
}

/// Applies a prospect event: the prospect row and the campaign counters.
pub(super) fn apply_event_in(
    tx: &mut Tx,
    campaign_seq: i64,
    prospect_id: &str,
    event: &ProspectEvent,
    now_ms: i64,
) -> Result<(i64, Prospect), StoreError> {
    let (pseq, before) = prospect_in(tx, campaign_seq, prospect_id)?;
    let old = ProspectState {
        status: before.status,
        last_outcome: before.last_outcome,
    };
    let new = prospect::apply(old, event)?;
    let mut after = Prospect {
        status: new.status,
        last_outcome: new.last_outcome,
        updated_at_ms: now_ms,
        ..before
    };
    match *event {
        ProspectEvent::Dialing | ProspectEvent::Sending => {
            after.attempts += 1;
            after.next_attempt_at_ms = None;
            after.wait_reason = None;
        }
        ProspectEvent::Finished { amd, .. } => {
            after.amd_result = amd.or(after.amd_result);
            after.next_attempt_at_ms = None;
        }
        ProspectEvent::RetryLater {
            amd,
            next_attempt_at_ms,
            outcome,
        } => {
            after.amd_result = amd.or(after.amd_result);
            after.next_attempt_at_ms = Some(next_attempt_at_ms);
            after.wait_reason = Some(format!("retry after {}", outcome.as_str()));
        }
        ProspectEvent::Sent | ProspectEvent::Cancel => {}
    }
    tx.exec(
        "UPDATE prospects SET status = $2, attempts = $3, last_outcome = $4, amd_result = $5, \
         next_attempt_at = $6, updated_at = $7, wait_reason = $8 WHERE seq = $1",
        &[
            &pseq,
            &after.status.as_str(),
            &i64::from(after.attempts),
            &after.last_outcome.map(Outcome::as_str),
            &after.amd_result.map(AmdResult::as_str),
            &after.next_attempt_at_ms,
            &now_ms,
            &after.wait_reason,
        ],
    )?;
    bump_counters(tx, campaign_seq, &Counters::delta(old, new))?;
    // A retry must not bring a suppressed number back into the queue.
    if after.status == ProspectStatus::Queued && is_suppressed_in(tx, &after.phone)? {
        let cancelled =
            cancel_with_reason_in(tx, campaign_seq, pseq, after, SUPPRESSED_REASON, now_ms)?;
        return Ok((pseq, cancelled));
    }
    Ok((pseq, after))
}

/// Cancels a queued prospect with `reason` (its `wait_reason`), counted in `cancelled`.
pub(super) fn cancel_with_reason_in(
    tx: &mut Tx,
    campaign_seq: i64,
    prospect_seq: i64,
    before: Prospect,
    reason: &str,
    now_ms: i64,
) -> Result<Prospect, StoreError> {
    let old = ProspectState {
        status: before.status,
        last_outcome: before.last_outcome,
    };
    let new = prospect::apply(old, &ProspectEvent::Cancel)?;
    tx.exec(
        "UPDATE prospects SET status = $2, next_attempt_at = NULL, wait_reason = $3, \
         updated_at = $4, lease_node = NULL, lease_until = NULL WHERE seq = $1",
        &[&prospect_seq, &new.status.as_str(), &reason, &now_ms],
    )?;
    bump_counters(tx, campaign_seq, &Counters::delta(old, new))?;
    Ok(Prospect {
        status: new.status,
        next_attempt_at_ms: None,
        wait_reason: Some(reason.to_string()),
        updated_at_ms: now_ms,
        ..before
    })
}

/// The result of claiming a queued prospect for a call or a message.
pub(super) enum Claim {
    Claimed(i64, Prospect),
    /// Cancelled instead (suppressed, or on a DNC list): the error to report after commit.
    Refused(StoreError),
}

/// Claims a prospect with `event` (`Dialing` or `Sending`), the last check before contact: a
/// suppressed number (or one on a DNC list) is cancelled, never claimed. The campaign row is
/// already locked by the caller.
pub(super) fn claim_in(
    tx: &mut Tx,
    dnc: &DncBook,
    campaign_seq: i64,
    prospect_id: &str,
    event: &ProspectEvent,
    now_ms: i64,
) -> Result<Claim, StoreError> {
    let (pseq, p) = prospect_in(tx, campaign_seq, prospect_id)?;
    if p.status == ProspectStatus::Queued && is_suppressed_in(tx, &p.phone)? {
        let p = cancel_with_reason_in(tx, campaign_seq, pseq, p, SUPPRESSED_REASON, now_ms)?;
        complete_if_done_in(tx, campaign_seq, now_ms)?;
        return Ok(Claim::Refused(StoreError::Suppressed { prospect_id: p.id }));
    }
    if p.status == ProspectStatus::Queued && dnc.hit(&p.phone).is_some() {
        let p = cancel_with_reason_in(tx, campaign_seq, pseq, p, DNC_REASON, now_ms)?;
        complete_if_done_in(tx, campaign_seq, now_ms)?;
        return Ok(Claim::Refused(StoreError::Blocked {
            prospect_id: p.id,
            reason: DNC_REASON,
        }));
    }
    let (pseq, p) = apply_event_in(tx, campaign_seq, prospect_id, event, now_ms)?;
    Ok(Claim::Claimed(pseq, p))
}

/// `completed` for a dialing campaign with nothing queued or in progress.
pub(super) fn complete_if_done_in(
    tx: &mut Tx,
    campaign_seq: i64,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let n = tx.exec(
        "UPDATE campaigns SET status = 'completed', updated_at = $2 WHERE seq = $1 \
         AND status = 'dialing' AND queued = 0 AND dialing = 0 AND sending = 0 AND sent = 0",
        &[&campaign_seq, &now_ms],
    )?;
    if n == 1 {
        events::campaign_status(
            tx,
            campaign_seq,
            CampaignStatus::Dialing,
            CampaignStatus::Completed,
            "complete",
            now_ms,
        )?;
    }
    Ok(n == 1)
}
