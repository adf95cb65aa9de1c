//! Row decoding and the shared statement pieces of the SQLite store: the column lists, the
//! row-to-value decoders, the page helpers and the one-prospect reader every table family
//! uses. It must not open transactions or write: it only turns rows into values.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;

use crate::campaign::{AmdResult, CampaignStatus, Channel, Counters, Outcome, ProspectStatus};
use crate::store::{
    ApiKey, Attempt, AttemptResult, Campaign, Did, DidState, Message, MessageStatus, Page,
    PageRequest, Prospect, StoreError,
};

pub(super) const CAMPAIGN_COLUMNS: &str = "seq, id, name, channel, status, mode, caller_ids, \
    caller_id_strategy, schedule, created_at, updated_at, webhook_url";

pub(super) const COUNTER_COLUMNS: &str = "total, queued, dialing, completed, failed, cancelled, no_answer, \
    busy, voicemail, human_connected, sending, sent, delivered";

pub(super) const PROSPECT_COLUMNS: &str = "p.seq, p.id, c.id, p.phone, p.status, p.attempts, \
    p.last_outcome, p.amd_result, p.next_attempt_at, p.created_at, p.updated_at, p.wait_reason";

pub(super) const ATTEMPT_COLUMNS: &str = "a.seq, a.id, c.id, p.id, p.phone, a.number, a.caller_id, \
    a.started_at, a.ended_at, a.outcome, a.cause, a.sip_status, a.sip_call_id, a.answered_ms, \
    a.amd_result, a.amd_cause, a.amd_ms, a.machine_end, a.playback_start_ms, a.played_ms, \
    a.talk_ms, a.agent_connected_ms, a.agent_talk_ms, a.agent_reconnects, a.agent_end, \
    a.abandoned";

pub(super) const ATTEMPT_FROM: &str = "attempts a JOIN prospects p ON p.seq = a.prospect_seq \
    JOIN campaigns c ON c.seq = a.campaign_seq";

pub(super) const MESSAGE_COLUMNS: &str = "m.seq, m.id, c.id, p.id, p.phone, m.did, m.parts, \
    m.smpp_message_ids, m.status, m.error_code, m.submitted_at, m.receipt_at, m.created_at, \
    m.campaign_seq";

pub(super) const MESSAGE_FROM: &str = "messages m JOIN prospects p ON p.seq = m.prospect_seq \
    JOIN campaigns c ON c.seq = m.campaign_seq";

pub(super) const DID_COLUMNS: &str = "seq, id, number, state, health_score, calls_placed, calls_answered, \
    cooling_until, last_used_at, created_at";

fn corrupt(what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("unknown {what} {value:?}").into(),
    )
}

fn json_col(row: &Row, idx: usize) -> rusqlite::Result<Value> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(super) fn campaign_row(row: &Row) -> rusqlite::Result<(i64, Campaign)> {
    let channel: String = row.get(3)?;
    let status: String = row.get(4)?;
    let schedule: Option<String> = row.get(8)?;
    let caller_ids: Value = json_col(row, 6)?;
    Ok((
        row.get(0)?,
        Campaign {
            id: row.get(1)?,
            name: row.get(2)?,
            channel: Channel::parse(&channel).ok_or_else(|| corrupt("channel", &channel))?,
            status: CampaignStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
            mode: json_col(row, 5)?,
            caller_ids: caller_ids
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            caller_id_strategy: json_col(row, 7)?,
            schedule: match schedule {
                Some(s) => Some(serde_json::from_str(&s).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        8,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })?),
                None => None,
            },
            created_at_ms: row.get(9)?,
            updated_at_ms: row.get(10)?,
            webhook_url: row.get(11)?,
        },
    ))
}

pub(super) fn prospect_row(row: &Row) -> rusqlite::Result<(i64, Prospect)> {
    let status: String = row.get(4)?;
    let outcome: Option<String> = row.get(6)?;
    let amd: Option<String> = row.get(7)?;
    Ok((
        row.get(0)?,
        Prospect {
            id: row.get(1)?,
            campaign_id: row.get(2)?,
            phone: row.get(3)?,
            status: ProspectStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
            attempts: row.get(5)?,
            last_outcome: match outcome {
                Some(o) => Some(Outcome::parse(&o).ok_or_else(|| corrupt("outcome", &o))?),
                None => None,
            },
            amd_result: match amd {
                Some(a) => Some(AmdResult::parse(&a).ok_or_else(|| corrupt("amd result", &a))?),
                None => None,
            },
            next_attempt_at_ms: row.get(8)?,
            created_at_ms: row.get(9)?,
            updated_at_ms: row.get(10)?,
            wait_reason: row.get(11)?,
        },
    ))
}

pub(super) fn attempt_row(row: &Row) -> rusqlite::Result<(i64, Attempt)> {
    let outcome: Option<String> = row.get(9)?;
    let amd: Option<String> = row.get(14)?;
    Ok((
        row.get(0)?,
        Attempt {
            id: row.get(1)?,
            campaign_id: row.get(2)?,
            prospect_id: row.get(3)?,
            phone: row.get(4)?,
            number: row.get(5)?,
            caller_id: row.get(6)?,
            started_at_ms: row.get(7)?,
            ended_at_ms: row.get(8)?,
            result: AttemptResult {
                outcome: match outcome {
                    Some(o) => Some(Outcome::parse(&o).ok_or_else(|| corrupt("outcome", &o))?),
                    None => None,
                },
                cause: row.get(10)?,
                sip_status: row.get(11)?,
                sip_call_id: row.get(12)?,
                answered_ms: row.get(13)?,
                amd_result: match amd {
                    Some(a) => Some(AmdResult::parse(&a).ok_or_else(|| corrupt("amd result", &a))?),
                    None => None,
                },
                amd_cause: row.get(15)?,
                amd_ms: row.get(16)?,
                machine_end: row.get(17)?,
                playback_start_ms: row.get(18)?,
                played_ms: row.get(19)?,
                talk_ms: row.get(20)?,
                agent_connected_ms: row.get(21)?,
                agent_talk_ms: row.get(22)?,
                agent_reconnects: row.get(23)?,
                agent_end: row.get(24)?,
                abandoned: row.get(25)?,
            },
        },
    ))
}

pub(super) fn message_row(row: &Row) -> rusqlite::Result<(i64, Message)> {
    let ids: Value = json_col(row, 7)?;
    let status: String = row.get(8)?;
    Ok((
        row.get(0)?,
        Message {
            id: row.get(1)?,
            campaign_id: row.get(2)?,
            prospect_id: row.get(3)?,
            phone: row.get(4)?,
            did: row.get(5)?,
            parts: row.get(6)?,
            smpp_message_ids: ids
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            status: MessageStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
            error_code: row.get(9)?,
            submitted_at_ms: row.get(10)?,
            receipt_at_ms: row.get(11)?,
            created_at_ms: row.get(12)?,
        },
    ))
}

pub(super) fn did_row(row: &Row) -> rusqlite::Result<(i64, Did)> {
    let state: String = row.get(3)?;
    Ok((
        row.get(0)?,
        Did {
            id: row.get(1)?,
            number: row.get(2)?,
            state: DidState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
            health_score: row.get(4)?,
            calls_placed: row.get::<_, i64>(5)?.max(0) as u64,
            calls_answered: row.get::<_, i64>(6)?.max(0) as u64,
            cooling_until_ms: row.get(7)?,
            last_used_at_ms: row.get(8)?,
            created_at_ms: row.get(9)?,
        },
    ))
}

pub(super) fn api_key_row(row: &Row) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: row.get(0)?,
        name: row.get(1)?,
        created_at_ms: row.get(2)?,
        revoked_at_ms: row.get(3)?,
    })
}

pub(super) fn counters_row(row: &Row) -> rusqlite::Result<Counters> {
    Ok(Counters {
        total: row.get(0)?,
        queued: row.get(1)?,
        dialing: row.get(2)?,
        completed: row.get(3)?,
        failed: row.get(4)?,
        cancelled: row.get(5)?,
        no_answer: row.get(6)?,
        busy: row.get(7)?,
        voicemail: row.get(8)?,
        human_connected: row.get(9)?,
        sending: row.get(10)?,
        sent: row.get(11)?,
        delivered: row.get(12)?,
    })
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

/// Every row `sql` selects, without its `seq`.
pub(super) fn rows_of<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    row: impl FnMut(&Row) -> rusqlite::Result<(i64, T)>,
) -> Result<Vec<T>, StoreError> {
    Ok(conn
        .prepare_cached(sql)?
        .query_map(params, row)?
        .map(|r| r.map(|(_, t)| t))
        .collect::<Result<Vec<_>, _>>()?)
}

/// One page of a campaign's rows in `seq` order: `sql` takes the campaign's seq (?1), the
/// cursor (?2) and the limit plus one (?3).
pub(super) fn campaign_page<T>(
    conn: &Connection,
    sql: &str,
    campaign_seq: i64,
    req: &PageRequest,
    row: impl FnMut(&Row) -> rusqlite::Result<(i64, T)>,
) -> Result<Page<T>, StoreError> {
    let rows = conn
        .prepare_cached(sql)?
        .query_map(
            params![
                campaign_seq,
                req.after.unwrap_or(0),
                i64::from(req.limit) + 1
            ],
            row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page(rows, req.limit))
}

/// One prospect of a campaign, with its row position.
pub(super) fn prospect_in(
    conn: &Connection,
    campaign_seq: i64,
    prospect_id: &str,
) -> Result<(i64, Prospect), StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {PROSPECT_COLUMNS} FROM prospects p JOIN campaigns c \
         ON c.seq = p.campaign_seq WHERE p.id = ?1 AND p.campaign_seq = ?2"
    ))?
    .query_row(params![prospect_id, campaign_seq], prospect_row)
    .optional()?
    .ok_or_else(|| StoreError::NotFound {
        what: "prospect",
        id: prospect_id.to_string(),
    })
}
