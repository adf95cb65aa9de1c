//! The embedded SQLite backend: one file, WAL journal, `synchronous=FULL` (a commit is on disk
//! before the call returns), migrations applied in order at open.
//!
//! One connection behind a mutex serialises writes (SQLite has a single writer anyway); every
//! writing method is one `BEGIN IMMEDIATE` transaction. Reads go through a second, read-only
//! connection that sees the last commit without waiting for an open write. Statements are
//! cached per connection.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};
use serde_json::Value;

pub(crate) mod compliance;
mod events;

use compliance::DncBook;

use super::ids::new_id;
use super::{
    ApiKey, Attempt, AttemptResult, AudioAsset, Campaign, DNC_REASON, Did, DidState, DidUpdate,
    DncImported, DncList, Message, MessageStatus, NO_CONSENT_REASON, NewCampaign, NodeStatus, Page,
    PageRequest, Prospect, ReceiptOutcome, SUPPRESSED_REASON, Store, StoreError, StoredEvent,
    Suppressed, Suppression, WebhookJob,
};
use crate::campaign::prospect::{self, ProspectState};
use crate::campaign::status;
use crate::campaign::{
    Action, AmdResult, CampaignStatus, Channel, Counters, Outcome, ProspectEvent, ProspectStatus,
};

/// Schema versions, applied in order; each runs once, in its own transaction.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE api_keys (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    key_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE UNIQUE INDEX api_keys_active_name ON api_keys(name) WHERE revoked_at IS NULL;
CREATE TABLE campaigns (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    mode TEXT NOT NULL,
    caller_ids TEXT NOT NULL,
    caller_id_strategy TEXT NOT NULL,
    schedule TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    total INTEGER NOT NULL DEFAULT 0,
    queued INTEGER NOT NULL DEFAULT 0,
    dialing INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    cancelled INTEGER NOT NULL DEFAULT 0,
    no_answer INTEGER NOT NULL DEFAULT 0,
    busy INTEGER NOT NULL DEFAULT 0,
    voicemail INTEGER NOT NULL DEFAULT 0,
    human_connected INTEGER NOT NULL DEFAULT 0,
    sending INTEGER NOT NULL DEFAULT 0,
    sent INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX campaigns_by_status ON campaigns(status, seq);
CREATE TABLE prospects (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    campaign_seq INTEGER NOT NULL REFERENCES campaigns(seq),
    phone TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_outcome TEXT,
    amd_result TEXT,
    next_attempt_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (campaign_seq, phone)
);
CREATE INDEX prospects_by_status ON prospects(campaign_seq, status);
CREATE TABLE audio_assets (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    duration_seconds REAL NOT NULL,
    data BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE dids (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    number TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    health_score REAL NOT NULL,
    calls_placed INTEGER NOT NULL DEFAULT 0,
    calls_answered INTEGER NOT NULL DEFAULT 0,
    cooling_until INTEGER,
    last_used_at INTEGER,
    created_at INTEGER NOT NULL
);
"#,
    ),
    (
        2,
        r#"
ALTER TABLE prospects ADD COLUMN wait_reason TEXT;
CREATE INDEX prospects_due ON prospects(campaign_seq, status, next_attempt_at);
CREATE TABLE attempts (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    campaign_seq INTEGER NOT NULL REFERENCES campaigns(seq),
    prospect_seq INTEGER NOT NULL REFERENCES prospects(seq),
    number INTEGER NOT NULL,
    caller_id TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    outcome TEXT,
    cause TEXT,
    sip_status INTEGER,
    sip_call_id TEXT,
    answered_ms INTEGER,
    amd_result TEXT,
    amd_cause TEXT,
    amd_ms INTEGER,
    machine_end TEXT,
    playback_start_ms INTEGER,
    played_ms INTEGER,
    talk_ms INTEGER,
    UNIQUE (prospect_seq, number)
);
-- At most one live call per prospect, whatever the code above does.
CREATE UNIQUE INDEX attempts_one_live ON attempts(prospect_seq) WHERE ended_at IS NULL;
CREATE INDEX attempts_by_campaign ON attempts(campaign_seq, seq);
CREATE INDEX attempts_by_start ON attempts(started_at);
"#,
    ),
    (
        3,
        r#"
-- Suppressing a number finds its queued prospects in every campaign.
CREATE INDEX prospects_by_phone ON prospects(phone, status);
-- The do-not-contact list. `seq` orders pages; the phone is the identity.
CREATE TABLE suppression (
    seq INTEGER PRIMARY KEY,
    phone TEXT NOT NULL UNIQUE,
    reason TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    campaign_seq INTEGER NOT NULL REFERENCES campaigns(seq),
    prospect_seq INTEGER NOT NULL REFERENCES prospects(seq),
    did TEXT NOT NULL,
    parts INTEGER NOT NULL,
    smpp_message_ids TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL,
    error_code TEXT,
    submitted_at INTEGER,
    receipt_at INTEGER,
    created_at INTEGER NOT NULL
);
-- At most one live message per prospect, whatever the code above does.
CREATE UNIQUE INDEX messages_one_live ON messages(prospect_seq)
    WHERE status IN ('sending', 'sent');
CREATE INDEX messages_by_campaign ON messages(campaign_seq, seq);
CREATE INDEX messages_by_created ON messages(created_at);
-- One row per accepted part: receipts arrive per part, by the carrier's message id.
CREATE TABLE message_parts (
    message_seq INTEGER NOT NULL REFERENCES messages(seq),
    part INTEGER NOT NULL,
    smpp_message_id TEXT NOT NULL,
    delivered_at INTEGER,
    PRIMARY KEY (message_seq, part)
);
CREATE INDEX message_parts_by_smpp_id ON message_parts(smpp_message_id);
"#,
    ),
    (
        4,
        r#"
-- The AI agent bridge of an attempt: when the agent connected (ms after the answer), how
-- long it talked, how often it was reconnected, and why the bridge ended.
ALTER TABLE attempts ADD COLUMN agent_connected_ms INTEGER;
ALTER TABLE attempts ADD COLUMN agent_talk_ms INTEGER;
ALTER TABLE attempts ADD COLUMN agent_reconnects INTEGER;
ALTER TABLE attempts ADD COLUMN agent_end TEXT;
"#,
    ),
    (
        5,
        r#"
-- Where a campaign's events are POSTed (else the node's webhook_url).
ALTER TABLE campaigns ADD COLUMN webhook_url TEXT;
-- Every attempt and campaign state change, written in the transaction of the change. `seq`
-- (never reused: AUTOINCREMENT) is the SSE id and resume position; `id` the idempotency id.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    campaign_seq INTEGER NOT NULL REFERENCES campaigns(seq),
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
-- The webhook outbox: one row per event, pending until delivered or given up.
CREATE TABLE webhook_outbox (
    event_seq INTEGER PRIMARY KEY REFERENCES events(seq),
    state TEXT NOT NULL DEFAULT 'pending',
    tries INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    last_error TEXT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox(state, next_at);
"#,
    ),
    (
        6,
        r#"
-- Do-not-call lists (issue 20). Each import is a new version of its list; the numbers of a
-- version are the u64 of their E.164 digits, in a WITHOUT ROWID table (the key is the row).
-- A version becomes `active` only once all its numbers are in, so a crash mid-import leaves
-- the previous version in force (and the orphan is removed at the next open).
CREATE TABLE dnc_versions (
    seq INTEGER PRIMARY KEY,
    list TEXT NOT NULL,
    version INTEGER NOT NULL,
    imported_at INTEGER NOT NULL,
    count INTEGER NOT NULL,
    source TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 0,
    UNIQUE (list, version)
);
CREATE UNIQUE INDEX dnc_one_active ON dnc_versions(list) WHERE active = 1;
CREATE TABLE dnc_numbers (
    version_seq INTEGER NOT NULL,
    number INTEGER NOT NULL,
    PRIMARY KEY (version_seq, number)
) WITHOUT ROWID;
-- What allowed each attempt when it was dialled (JSON), and whether it was abandoned.
ALTER TABLE attempts ADD COLUMN audit TEXT;
ALTER TABLE attempts ADD COLUMN abandoned INTEGER;
-- A prospect's consent record (JSON: source, timestamp, textId).
ALTER TABLE prospects ADD COLUMN consent TEXT;
"#,
    ),
    (
        7,
        r#"
-- The engine nodes sharing this store (one, on SQLite): each writes its row at every beat.
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    calls INTEGER NOT NULL DEFAULT 0,
    calls_placed INTEGER NOT NULL DEFAULT 0,
    cps REAL NOT NULL DEFAULT 0
);
"#,
    ),
];

const CAMPAIGN_COLUMNS: &str = "seq, id, name, channel, status, mode, caller_ids, \
    caller_id_strategy, schedule, created_at, updated_at, webhook_url";
const COUNTER_COLUMNS: &str = "total, queued, dialing, completed, failed, cancelled, no_answer, \
    busy, voicemail, human_connected, sending, sent, delivered";
const PROSPECT_COLUMNS: &str = "p.seq, p.id, c.id, p.phone, p.status, p.attempts, \
    p.last_outcome, p.amd_result, p.next_attempt_at, p.created_at, p.updated_at, p.wait_reason";
const ATTEMPT_COLUMNS: &str = "a.seq, a.id, c.id, p.id, p.phone, a.number, a.caller_id, \
    a.started_at, a.ended_at, a.outcome, a.cause, a.sip_status, a.sip_call_id, a.answered_ms, \
    a.amd_result, a.amd_cause, a.amd_ms, a.machine_end, a.playback_start_ms, a.played_ms, \
    a.talk_ms, a.agent_connected_ms, a.agent_talk_ms, a.agent_reconnects, a.agent_end, \
    a.abandoned";
const ATTEMPT_FROM: &str = "attempts a JOIN prospects p ON p.seq = a.prospect_seq \
    JOIN campaigns c ON c.seq = a.campaign_seq";
const MESSAGE_COLUMNS: &str = "m.seq, m.id, c.id, p.id, p.phone, m.did, m.parts, \
    m.smpp_message_ids, m.status, m.error_code, m.submitted_at, m.receipt_at, m.created_at, \
    m.campaign_seq";
const MESSAGE_FROM: &str = "messages m JOIN prospects p ON p.seq = m.prospect_seq \
    JOIN campaigns c ON c.seq = m.campaign_seq";
const DID_COLUMNS: &str = "seq, id, number, state, health_score, calls_placed, calls_answered, \
    cooling_until, last_used_at, created_at";

struct Inner {
    conn: Connection,
    rng: StdRng,
}

/// The read-only connection: in WAL mode it reads the last commit while a write is open, so
/// stats polls and key checks never wait for a 10,000-prospect insert.
struct Reader {
    conn: Connection,
}

/// SQLite implementation of [`Store`].
pub struct SqliteStore {
    inner: Mutex<Inner>,
    reader: Mutex<Reader>,
    /// The DNC list versions in force, in memory (swapped whole by an import).
    dnc: RwLock<Arc<DncBook>>,
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        backend(e)
    }
}

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

fn campaign_row(row: &Row) -> rusqlite::Result<(i64, Campaign)> {
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

fn prospect_row(row: &Row) -> rusqlite::Result<(i64, Prospect)> {
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

fn attempt_row(row: &Row) -> rusqlite::Result<(i64, Attempt)> {
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

/// The row position of a campaign.
fn campaign_seq(conn: &Connection, id: &str) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT seq FROM campaigns WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| campaign_not_found(id))
}

/// One prospect of a campaign, with its row position.
fn prospect_in(
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

/// Applies a prospect event inside a transaction: the prospect row and the campaign counters.
fn apply_event_in(
    tx: &Transaction,
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
    tx.prepare_cached(
        "UPDATE prospects SET status = ?2, attempts = ?3, last_outcome = ?4, amd_result = ?5, \
         next_attempt_at = ?6, updated_at = ?7, wait_reason = ?8 WHERE id = ?1",
    )?
    .execute(params![
        after.id,
        after.status.as_str(),
        after.attempts,
        after.last_outcome.map(Outcome::as_str),
        after.amd_result.map(AmdResult::as_str),
        after.next_attempt_at_ms,
        now_ms,
        after.wait_reason,
    ])?;
    bump_counters(tx, campaign_seq, &Counters::delta(old, new))?;
    // A retry must not bring a suppressed number back into the queue.
    if after.status == ProspectStatus::Queued && is_suppressed_in(tx, &after.phone)? {
        let cancelled = cancel_suppressed_in(tx, campaign_seq, pseq, after, now_ms)?;
        return Ok((pseq, cancelled));
    }
    Ok((pseq, after))
}

fn is_suppressed_in(conn: &Connection, phone: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS(SELECT 1 FROM suppression WHERE phone = ?1)")?
        .query_row([phone], |r| r.get(0))
}

/// Cancels a queued prospect whose number is suppressed: reason `suppressed`, counted in
/// `cancelled`.
fn cancel_suppressed_in(
    tx: &Transaction,
    campaign_seq: i64,
    prospect_seq: i64,
    before: Prospect,
    now_ms: i64,
) -> Result<Prospect, StoreError> {
    cancel_with_reason_in(
        tx,
        campaign_seq,
        prospect_seq,
        before,
        SUPPRESSED_REASON,
        now_ms,
    )
}

/// Cancels a queued prospect with `reason` (its `wait_reason`), counted in `cancelled`.
fn cancel_with_reason_in(
    tx: &Transaction,
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
    tx.prepare_cached(
        "UPDATE prospects SET status = ?2, next_attempt_at = NULL, wait_reason = ?3, \
         updated_at = ?4 WHERE seq = ?1",
    )?
    .execute(params![prospect_seq, new.status.as_str(), reason, now_ms])?;
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
enum Claim {
    Claimed(i64, Prospect),
    /// Its number is suppressed: it was cancelled instead (commit, then report).
    Suppressed(Prospect),
    /// Its number is on a do-not-call list: cancelled with reason `dnc` instead.
    Blocked(Prospect, &'static str),
}

/// Claims a prospect with `event` (`Dialing` or `Sending`), the last check before contact:
/// a suppressed number (or one on a do-not-call list) is cancelled, never claimed.
fn claim_in(
    tx: &Transaction,
    dnc: &DncBook,
    campaign_seq: i64,
    prospect_id: &str,
    event: &ProspectEvent,
    now_ms: i64,
) -> Result<Claim, StoreError> {
    let (pseq, p) = prospect_in(tx, campaign_seq, prospect_id)?;
    if p.status == ProspectStatus::Queued && is_suppressed_in(tx, &p.phone)? {
        let p = cancel_suppressed_in(tx, campaign_seq, pseq, p, now_ms)?;
        complete_if_done_in(tx, campaign_seq, now_ms)?;
        return Ok(Claim::Suppressed(p));
    }
    if p.status == ProspectStatus::Queued && dnc.hit(&p.phone).is_some() {
        let p = cancel_with_reason_in(tx, campaign_seq, pseq, p, DNC_REASON, now_ms)?;
        complete_if_done_in(tx, campaign_seq, now_ms)?;
        return Ok(Claim::Blocked(p, DNC_REASON));
    }
    let (pseq, p) = apply_event_in(tx, campaign_seq, prospect_id, event, now_ms)?;
    Ok(Claim::Claimed(pseq, p))
}

fn message_row(row: &Row) -> rusqlite::Result<(i64, Message)> {
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

/// A message with its row position and its campaign's.
fn message_in(conn: &Connection, message_id: &str) -> Result<(i64, i64, Message), StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.id = ?1"
    ))?
    .query_row([message_id], |r| {
        let (seq, m) = message_row(r)?;
        Ok((seq, r.get(13)?, m))
    })
    .optional()?
    .ok_or_else(|| StoreError::NotFound {
        what: "message",
        id: message_id.to_string(),
    })
}

/// A live message, or the error naming its status.
fn live_message_in(
    conn: &Connection,
    message_id: &str,
    action: &'static str,
) -> Result<(i64, i64, Message), StoreError> {
    let (seq, cseq, m) = message_in(conn, message_id)?;
    if !m.status.is_live() {
        return Err(StoreError::MessageState {
            id: m.id,
            status: m.status,
            action,
        });
    }
    Ok((seq, cseq, m))
}

/// Ends a live message with `status` and completes its prospect with the matching outcome (and
/// the campaign when nothing is left), in the caller's transaction.
fn finish_message_in(
    tx: &Transaction,
    message_seq: i64,
    campaign_seq: i64,
    message: Message,
    status: MessageStatus,
    error_code: Option<&str>,
    now_ms: i64,
) -> Result<Message, StoreError> {
    let outcome = match status {
        MessageStatus::Delivered => Outcome::Delivered,
        _ => Outcome::Failed,
    };
    tx.prepare_cached(
        "UPDATE messages SET status = ?2, error_code = ?3, receipt_at = ?4 WHERE seq = ?1",
    )?
    .execute(params![message_seq, status.as_str(), error_code, now_ms])?;
    apply_event_in(
        tx,
        campaign_seq,
        &message.prospect_id,
        &ProspectEvent::Finished { outcome, amd: None },
        now_ms,
    )?;
    complete_if_done_in(tx, campaign_seq, now_ms)?;
    Ok(Message {
        status,
        error_code: error_code.map(str::to_string),
        receipt_at_ms: Some(now_ms),
        ..message
    })
}

/// `completed` for a dialing campaign with nothing queued or in progress.
fn complete_if_done_in(tx: &Transaction, campaign_seq: i64, now_ms: i64) -> rusqlite::Result<bool> {
    let n = tx
        .prepare_cached(
            "UPDATE campaigns SET status = 'completed', updated_at = ?2 WHERE seq = ?1 \
             AND status = 'dialing' AND queued = 0 AND dialing = 0 AND sending = 0 AND sent = 0",
        )?
        .execute(params![campaign_seq, now_ms])?;
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

fn did_row(row: &Row) -> rusqlite::Result<(i64, Did)> {
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

fn api_key_row(row: &Row) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: row.get(0)?,
        name: row.get(1)?,
        created_at_ms: row.get(2)?,
        revoked_at_ms: row.get(3)?,
    })
}

fn counters_row(row: &Row) -> rusqlite::Result<Counters> {
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

fn page<T>(mut rows: Vec<(i64, T)>, limit: u32) -> Page<T> {
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
fn rows_of<T, P: rusqlite::Params>(
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
fn campaign_page<T>(
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

/// Adds `d` to the campaign's counters.
fn bump_counters(tx: &Transaction, campaign_seq: i64, d: &Counters) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE campaigns SET total = total + ?2, queued = queued + ?3, dialing = dialing + ?4, \
         completed = completed + ?5, failed = failed + ?6, cancelled = cancelled + ?7, \
         no_answer = no_answer + ?8, busy = busy + ?9, voicemail = voicemail + ?10, \
         human_connected = human_connected + ?11, sending = sending + ?12, sent = sent + ?13, \
         delivered = delivered + ?14 WHERE seq = ?1",
    )?
    .execute(params![
        campaign_seq,
        d.total,
        d.queued,
        d.dialing,
        d.completed,
        d.failed,
        d.cancelled,
        d.no_answer,
        d.busy,
        d.voicemail,
        d.human_connected,
        d.sending,
        d.sent,
        d.delivered
    ])?;
    Ok(())
}

fn campaign_not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        what: "campaign",
        id: id.to_string(),
    }
}

/// The campaign's row position and status, inside a transaction.
fn campaign_seq_status(tx: &Transaction, id: &str) -> Result<(i64, CampaignStatus), StoreError> {
    let found: Option<(i64, String)> = tx
        .prepare_cached("SELECT seq, status FROM campaigns WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, status) = found.ok_or_else(|| campaign_not_found(id))?;
    let status =
        CampaignStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(status.clone()))?;
    Ok((seq, status))
}

fn get_campaign_in(conn: &Connection, id: &str) -> Result<Campaign, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = ?1"
    ))?
    .query_row([id], campaign_row)
    .optional()?
    .map(|(_, c)| c)
    .ok_or_else(|| campaign_not_found(id))
}

impl SqliteStore {
    /// Opens (creating if missing) the database file and applies pending migrations. `seed`
    /// seeds the id generator.
    pub fn open(path: &Path, seed: u64) -> Result<SqliteStore, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.set_prepared_statement_cache_capacity(64);
        migrate(&mut conn)?;
        let dnc = compliance::load_dnc(&mut conn)?;
        let reader = Connection::open(path)?;
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        reader.pragma_update(None, "query_only", "ON")?;
        reader.set_prepared_statement_cache_capacity(64);
        Ok(SqliteStore {
            inner: Mutex::new(Inner {
                conn,
                rng: StdRng::seed_from_u64(seed),
            }),
            reader: Mutex::new(Reader { conn: reader }),
            dnc: RwLock::new(Arc::new(dnc)),
        })
    }

    /// The schema version after migrations.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let inner = self.read();
        Ok(inner
            .conn
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
                r.get(0)
            })?)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a transaction open (rusqlite rolls
        // back on drop), so a poisoned lock is still a consistent connection.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::MutexGuard<'_, Reader> {
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn dnc_book(&self) -> Arc<DncBook> {
        self.dnc.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, \
         applied_at INTEGER NOT NULL DEFAULT (unixepoch()))",
    )?;
    let current: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    for (version, sql) in MIGRATIONS {
        if *version <= current {
            continue;
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES (?1)",
            [version],
        )?;
        tx.commit()?;
    }
    Ok(())
}

impl Store for SqliteStore {
    fn create_api_key(
        &self,
        name: &str,
        key_hash: &[u8; 32],
        now_ms: i64,
    ) -> Result<ApiKey, StoreError> {
        let mut inner = self.lock();
        let id = new_id(&mut inner.rng, "key");
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let taken: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM api_keys WHERE name = ?1 AND revoked_at IS NULL)",
            [name],
            |r| r.get(0),
        )?;
        if taken {
            return Err(StoreError::Duplicate {
                what: "API key name",
                value: name.to_string(),
            });
        }
        tx.execute(
            "INSERT INTO api_keys (id, name, key_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![id, name, &key_hash[..], now_ms],
        )?;
        tx.commit()?;
        Ok(ApiKey {
            id,
            name: name.to_string(),
            created_at_ms: now_ms,
            revoked_at_ms: None,
        })
    }

    fn revoke_api_key(&self, name_or_id: &str, now_ms: i64) -> Result<ApiKey, StoreError> {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let key = tx
            .query_row(
                "SELECT id, name, created_at, revoked_at FROM api_keys \
                 WHERE (id = ?1 OR name = ?1) AND revoked_at IS NULL",
                [name_or_id],
                api_key_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound {
                what: "active API key",
                id: name_or_id.to_string(),
            })?;
        tx.execute(
            "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1",
            params![key.id, now_ms],
        )?;
        tx.commit()?;
        Ok(ApiKey {
            revoked_at_ms: Some(now_ms),
            ..key
        })
    }

    fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let inner = self.read();
        let mut stmt = inner
            .conn
            .prepare_cached("SELECT id, name, created_at, revoked_at FROM api_keys ORDER BY seq")?;
        let rows = stmt.query_map([], api_key_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn authenticate(&self, key_hash: &[u8; 32]) -> Result<Option<ApiKey>, StoreError> {
        let inner = self.read();
        Ok(inner
            .conn
            .prepare_cached(
                "SELECT id, name, created_at, revoked_at FROM api_keys \
                 WHERE key_hash = ?1 AND revoked_at IS NULL",
            )?
            .query_row([&key_hash[..]], api_key_row)
            .optional()?)
    }

    fn create_campaign(&self, new: NewCampaign, now_ms: i64) -> Result<Campaign, StoreError> {
        let mut inner = self.lock();
        let id = new_id(&mut inner.rng, "camp");
        let name = new.name.unwrap_or_else(|| id.clone());
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO campaigns (id, name, channel, status, mode, caller_ids, \
             caller_id_strategy, schedule, created_at, updated_at, webhook_url) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)",
            params![
                id,
                name,
                new.channel.as_str(),
                CampaignStatus::Created.as_str(),
                new.mode.to_string(),
                serde_json::to_string(&new.caller_ids).unwrap_or_else(|_| "[]".into()),
                new.caller_id_strategy.to_string(),
                new.schedule.as_ref().map(Value::to_string),
                now_ms,
                new.webhook_url,
            ],
        )?;
        tx.commit()?;
        Ok(Campaign {
            id,
            name,
            channel: new.channel,
            status: CampaignStatus::Created,
            mode: new.mode,
            caller_ids: new.caller_ids,
            caller_id_strategy: new.caller_id_strategy,
            schedule: new.schedule,
            webhook_url: new.webhook_url,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        })
    }

    fn get_campaign(&self, id: &str) -> Result<Campaign, StoreError> {
        let inner = self.read();
        get_campaign_in(&inner.conn, id)
    }

    fn list_campaigns(
        &self,
        status: Option<CampaignStatus>,
        req: &PageRequest,
    ) -> Result<Page<Campaign>, StoreError> {
        let inner = self.read();
        let mut stmt = inner.conn.prepare_cached(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns \
             WHERE seq > ?1 AND (?2 IS NULL OR status = ?2) ORDER BY seq LIMIT ?3"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    req.after.unwrap_or(0),
                    status.map(CampaignStatus::as_str),
                    i64::from(req.limit) + 1
                ],
                campaign_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(rows, req.limit))
    }

    fn transition_campaign(
        &self,
        id: &str,
        action: Action,
        now_ms: i64,
    ) -> Result<Campaign, StoreError> {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (seq, current) = campaign_seq_status(&tx, id)?;
        let next = status::apply(current, action).map_err(|e| StoreError::WrongStatus {
            action: e.action,
            current: e.current,
        })?;
        tx.prepare_cached("UPDATE campaigns SET status = ?2, updated_at = ?3 WHERE seq = ?1")?
            .execute(params![seq, next.as_str(), now_ms])?;
        if next == CampaignStatus::Cancelled {
            let n = tx
                .prepare_cached(
                    "UPDATE prospects SET status = 'cancelled', next_attempt_at = NULL, \
                     updated_at = ?2 WHERE campaign_seq = ?1 AND status = 'queued'",
                )?
                .execute(params![seq, now_ms])? as i64;
            let one = Counters::delta(
                ProspectState::NEW,
                ProspectState {
                    status: ProspectStatus::Cancelled,
                    last_outcome: None,
                },
            );
            bump_counters(&tx, seq, &one.scaled(n))?;
        }
        events::campaign_status(&tx, seq, current, next, action.as_str(), now_ms)?;
        let campaign = get_campaign_in(&tx, id)?;
        tx.commit()?;
        Ok(campaign)
    }

    fn add_prospects_consented(
        &self,
        campaign_id: &str,
        phones: &[String],
        consents: &std::collections::BTreeMap<String, Value>,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let mut guard = self.lock();
        let dnc = self.dnc_book();
        let Inner { conn, rng } = &mut *guard;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (seq, current) = campaign_seq_status(&tx, campaign_id)?;
        if !current.accepts_prospects() {
            return Err(StoreError::WrongStatus {
                action: "add prospects to",
                current,
            });
        }
        let mode: String = tx
            .prepare_cached("SELECT mode FROM campaigns WHERE seq = ?1")?
            .query_row([seq], |r| r.get(0))?;
        let require_consent = serde_json::from_str::<Value>(&mode)
            .ok()
            .and_then(|m| m.get("requireConsent").and_then(Value::as_bool))
            .unwrap_or(false);
        // A suppressed number is still added (the client sees it in the campaign, with its
        // reason) but already cancelled, so it is never contacted and counts as `cancelled`;
        // so is a number on a DNC list, and one without consent in a `requireConsent` campaign.
        let (mut queued, mut cancelled): (i64, i64) = (0, 0);
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO prospects (id, campaign_seq, phone, status, wait_reason, created_at, \
                 updated_at, consent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7) \
                 ON CONFLICT (campaign_seq, phone) DO NOTHING",
            )?;
            for phone in phones {
                let id = new_id(rng, "pro");
                let consent = consents.get(phone);
                let blocked = if is_suppressed_in(&tx, phone)? {
                    Some(SUPPRESSED_REASON)
                } else if dnc.hit(phone).is_some() {
                    Some(DNC_REASON)
                } else if require_consent && consent.is_none() {
                    Some(NO_CONSENT_REASON)
                } else {
                    None
                };
                let consent = consent.map(Value::to_string);
                if let Some(reason) = blocked {
                    cancelled += insert.execute(params![
                        id,
                        seq,
                        phone,
                        ProspectStatus::Cancelled.as_str(),
                        reason,
                        now_ms,
                        consent
                    ])? as i64;
                } else {
                    queued += insert.execute(params![
                        id,
                        seq,
                        phone,
                        ProspectStatus::Queued.as_str(),
                        None::<&str>,
                        now_ms,
                        consent
                    ])? as i64;
                }
            }
        }
        let mut delta = prospect::contribution(ProspectState::NEW).scaled(queued);
        delta.add(
            &prospect::contribution(ProspectState {
                status: ProspectStatus::Cancelled,
                last_outcome: None,
            })
            .scaled(cancelled),
        );
        bump_counters(&tx, seq, &delta)?;
        tx.commit()?;
        Ok((queued + cancelled) as u64)
    }

    fn list_prospects(
        &self,
        campaign_id: &str,
        req: &PageRequest,
    ) -> Result<Page<Prospect>, StoreError> {
        let inner = self.read();
        let seq = campaign_seq(&inner.conn, campaign_id)?;
        let mut stmt = inner.conn.prepare_cached(&format!(
            "SELECT {PROSPECT_COLUMNS} FROM prospects p JOIN campaigns c ON c.seq = p.campaign_seq \
             WHERE p.campaign_seq = ?1 AND p.seq > ?2 ORDER BY p.seq LIMIT ?3"
        ))?;
        let rows = stmt
            .query_map(
                params![seq, req.after.unwrap_or(0), i64::from(req.limit) + 1],
                prospect_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(rows, req.limit))
    }

    fn record_prospect_event(
        &self,
        campaign_id: &str,
        prospect_id: &str,
        event: &ProspectEvent,
        now_ms: i64,
    ) -> Result<Prospect, StoreError> {
        let mut inner = self.lock();
        let dnc = self.dnc_book();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (seq, current) = campaign_seq_status(&tx, campaign_id)?;
        if matches!(event, ProspectEvent::Dialing | ProspectEvent::Sending)
            && current != CampaignStatus::Dialing
        {
            return Err(StoreError::WrongStatus {
                action: "dial a prospect of",
                current,
            });
        }
        let after = if matches!(event, ProspectEvent::Dialing | ProspectEvent::Sending) {
            match claim_in(&tx, &dnc, seq, prospect_id, event, now_ms)? {
                Claim::Claimed(_, p) => p,
                Claim::Suppressed(p) => {
                    tx.commit()?;
                    return Err(StoreError::Suppressed { prospect_id: p.id });
                }
                Claim::Blocked(p, reason) => {
                    tx.commit()?;
                    return Err(StoreError::Blocked {
                        prospect_id: p.id,
                        reason,
                    });
                }
            }
        } else {
            apply_event_in(&tx, seq, prospect_id, event, now_ms)?.1
        };
        tx.commit()?;
        Ok(after)
    }

    fn due_prospects(
        &self,
        campaign_id: &str,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<Prospect>, StoreError> {
        let inner = self.read();
        let rows = inner
            .conn
            .prepare_cached(&format!(
                "SELECT {PROSPECT_COLUMNS} FROM prospects p JOIN campaigns c \
                 ON c.seq = p.campaign_seq WHERE c.id = ?1 AND p.status = 'queued' \
                 AND COALESCE(p.next_attempt_at, 0) <= ?2 \
                 AND NOT EXISTS (SELECT 1 FROM suppression s WHERE s.phone = p.phone) \
                 ORDER BY COALESCE(p.next_attempt_at, 0), p.seq LIMIT ?3"
            ))?
            .query_map(params![campaign_id, now_ms, limit], prospect_row)?
            .map(|r| r.map(|(_, p)| p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn defer_prospect(
        &self,
        campaign_id: &str,
        prospect_id: &str,
        until_ms: i64,
        reason: &str,
        now_ms: i64,
    ) -> Result<Prospect, StoreError> {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (seq, _) = campaign_seq_status(&tx, campaign_id)?;
        let n = tx
            .prepare_cached(
                "UPDATE prospects SET next_attempt_at = ?3, wait_reason = ?4, updated_at = ?5 \
                 WHERE id = ?1 AND campaign_seq = ?2 AND status = 'queued'",
            )?
            .execute(params![prospect_id, seq, until_ms, reason, now_ms])?;
        let (_, p) = prospect_in(&tx, seq, prospect_id)?;
        if n == 0 {
            return Err(StoreError::Prospect(
                crate::campaign::prospect::ProspectTransitionError {
                    from: p.status,
                    event: "defer",
                },
            ));
        }
        tx.commit()?;
        Ok(p)
    }

    fn begin_attempt_audited(
        &self,
        campaign_id: &str,
        prospect_id: &str,
        caller_id: &str,
        mut audit: serde_json::Map<String, Value>,
        now_ms: i64,
    ) -> Result<Attempt, StoreError> {
        let mut inner = self.lock();
        let dnc = self.dnc_book();
        let id = new_id(&mut inner.rng, "att");
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (seq, current) = campaign_seq_status(&tx, campaign_id)?;
        if current != CampaignStatus::Dialing {
            return Err(StoreError::WrongStatus {
                action: "dial a prospect of",
                current,
            });
        }
        let claim = claim_in(&tx, &dnc, seq, prospect_id, &ProspectEvent::Dialing, now_ms)?;
        let (pseq, p) = match claim {
            Claim::Claimed(pseq, p) => (pseq, p),
            Claim::Suppressed(p) => {
                tx.commit()?;
                return Err(StoreError::Suppressed { prospect_id: p.id });
            }
            Claim::Blocked(p, reason) => {
                tx.commit()?;
                return Err(StoreError::Blocked {
                    prospect_id: p.id,
                    reason,
                });
            }
        };
        // The store's own checks, made in this transaction: every DNC list version in force
        // (none held the number) and the suppression list (it did not hold it).
        audit.insert(
            "dnc".into(),
            serde_json::to_value(dnc.lists()).unwrap_or_default(),
        );
        audit.insert("suppression".into(), Value::from("clear"));
        let consent: Option<String> = tx
            .prepare_cached("SELECT consent FROM prospects WHERE seq = ?1")?
            .query_row([pseq], |r| r.get(0))?;
        audit.insert(
            "consent".into(),
            consent
                .and_then(|c| serde_json::from_str(&c).ok())
                .unwrap_or(Value::Null),
        );
        tx.prepare_cached(
            "INSERT INTO attempts (id, campaign_seq, prospect_seq, number, caller_id, started_at, \
             audit) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            id,
            seq,
            pseq,
            p.attempts,
            caller_id,
            now_ms,
            Value::Object(audit).to_string()
        ])?;
        events::attempt_started(&tx, seq, &id, &p, caller_id, now_ms)?;
        tx.commit()?;
        Ok(Attempt {
            id,
            campaign_id: campaign_id.to_string(),
            prospect_id: p.id,
            phone: p.phone,
            number: p.attempts,
            caller_id: caller_id.to_string(),
            started_at_ms: now_ms,
            ended_at_ms: None,
            result: AttemptResult::default(),
        })
    }

    fn finish_attempt(
        &self,
        attempt_id: &str,
        result: &AttemptResult,
        event: &ProspectEvent,
        now_ms: i64,
    ) -> Result<Prospect, StoreError> {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let live: Option<(i64, String)> = tx
            .prepare_cached(
                "SELECT a.campaign_seq, p.id FROM attempts a JOIN prospects p \
                 ON p.seq = a.prospect_seq WHERE a.id = ?1 AND a.ended_at IS NULL",
            )?
            .query_row([attempt_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (cseq, prospect_id) = live.ok_or_else(|| StoreError::NotFound {
            what: "live attempt",
            id: attempt_id.to_string(),
        })?;
        tx.prepare_cached(
            "UPDATE attempts SET ended_at = ?2, outcome = ?3, cause = ?4, sip_status = ?5, \
             sip_call_id = ?6, answered_ms = ?7, amd_result = ?8, amd_cause = ?9, amd_ms = ?10, \
             machine_end = ?11, playback_start_ms = ?12, played_ms = ?13, talk_ms = ?14, \
             agent_connected_ms = ?15, agent_talk_ms = ?16, agent_reconnects = ?17, \
             agent_end = ?18, abandoned = ?19 WHERE id = ?1",
        )?
        .execute(params![
            attempt_id,
            now_ms,
            result.outcome.map(Outcome::as_str),
            result.cause,
            result.sip_status,
            result.sip_call_id,
            result.answered_ms,
            result.amd_result.map(AmdResult::as_str),
            result.amd_cause,
            result.amd_ms,
            result.machine_end,
            result.playback_start_ms,
            result.played_ms,
            result.talk_ms,
            result.agent_connected_ms,
            result.agent_talk_ms,
            result.agent_reconnects,
            result.agent_end,
            result.abandoned,
        ])?;
        let status: String = tx
            .prepare_cached("SELECT status FROM campaigns WHERE seq = ?1")?
            .query_row([cseq], |r| r.get(0))?;
        // A cancelled campaign takes no retries: the attempt's outcome is final.
        let event = match (*event, CampaignStatus::parse(&status)) {
            (ProspectEvent::RetryLater { outcome, amd, .. }, Some(s)) if s.is_terminal() => {
                ProspectEvent::Finished { outcome, amd }
            }
            (e, _) => e,
        };
        let (_, p) = apply_event_in(&tx, cseq, &prospect_id, &event, now_ms)?;
        events::attempt_ended(&tx, cseq, attempt_id, &p, result, now_ms)?;
        complete_if_done_in(&tx, cseq, now_ms)?;
        tx.commit()?;
        Ok(p)
    }

    fn live_attempts(&self) -> Result<Vec<Attempt>, StoreError> {
        let inner = self.read();
        rows_of(
            &inner.conn,
            &format!(
                "SELECT {ATTEMPT_COLUMNS} FROM {ATTEMPT_FROM} WHERE a.ended_at IS NULL ORDER BY a.seq"
            ),
            [],
            attempt_row,
        )
    }

    fn list_attempts(
        &self,
        campaign_id: &str,
        page_req: &PageRequest,
    ) -> Result<Page<Attempt>, StoreError> {
        let inner = self.read();
        let cseq = campaign_seq(&inner.conn, campaign_id)?;
        campaign_page(
            &inner.conn,
            &format!(
                "SELECT {ATTEMPT_COLUMNS} FROM {ATTEMPT_FROM} WHERE a.campaign_seq = ?1 \
                 AND a.seq > ?2 ORDER BY a.seq LIMIT ?3"
            ),
            cseq,
            page_req,
            attempt_row,
        )
    }

    fn attempts_since(&self, since_ms: i64) -> Result<Vec<Attempt>, StoreError> {
        let inner = self.read();
        rows_of(
            &inner.conn,
            &format!(
                "SELECT {ATTEMPT_COLUMNS} FROM {ATTEMPT_FROM} WHERE a.started_at >= ?1 \
                 ORDER BY a.started_at, a.seq"
            ),
            [since_ms],
            attempt_row,
        )
    }

    fn complete_if_done(&self, campaign_id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (seq, _) = campaign_seq_status(&tx, campaign_id)?;
        let done = complete_if_done_in(&tx, seq, now_ms)?;
        tx.commit()?;
        Ok(done)
    }

    fn update_did(&self, number: &str, u: &DidUpdate) -> Result<(), StoreError> {
        let inner = self.lock();
        let n = inner
            .conn
            .prepare_cached(
                "UPDATE dids SET state = ?2, health_score = ?3, calls_placed = ?4, \
                 calls_answered = ?5, cooling_until = ?6, last_used_at = ?7 WHERE number = ?1",
            )?
            .execute(params![
                number,
                u.state.as_str(),
                u.health_score,
                u.placed as i64,
                u.answered as i64,
                u.cooling_until_ms,
                u.last_used_at_ms
            ])?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "caller ID",
                id: number.to_string(),
            });
        }
        Ok(())
    }

    fn events_after(&self, after_seq: i64, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        self.events_after_impl(after_seq, limit)
    }

    fn last_event_seq(&self) -> Result<i64, StoreError> {
        self.last_event_seq_impl()
    }

    fn due_webhooks(&self, now_ms: i64, limit: u32) -> Result<Vec<WebhookJob>, StoreError> {
        self.due_webhooks_impl(now_ms, limit)
    }

    fn webhook_tried(
        &self,
        event_seq: i64,
        state: &str,
        next_at_ms: Option<i64>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.webhook_tried_impl(event_seq, state, next_at_ms, error)
    }

    fn webhook_queue_depth(&self) -> Result<u64, StoreError> {
        self.webhook_queue_depth_impl()
    }

    fn stats(&self, campaign_id: &str) -> Result<Counters, StoreError> {
        let inner = self.read();
        inner
            .conn
            .prepare_cached(&format!(
                "SELECT {COUNTER_COLUMNS} FROM campaigns WHERE id = ?1"
            ))?
            .query_row([campaign_id], counters_row)
            .optional()?
            .ok_or_else(|| campaign_not_found(campaign_id))
    }

    fn create_audio(
        &self,
        name: &str,
        content_type: &str,
        bytes: &[u8],
        duration_seconds: f64,
        now_ms: i64,
    ) -> Result<AudioAsset, StoreError> {
        let mut inner = self.lock();
        let id = new_id(&mut inner.rng, "aud");
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO audio_assets (id, name, content_type, size_bytes, duration_seconds, \
             data, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                name,
                content_type,
                bytes.len() as i64,
                duration_seconds,
                bytes,
                now_ms
            ],
        )?;
        tx.commit()?;
        Ok(AudioAsset {
            id,
            name: name.to_string(),
            content_type: content_type.to_string(),
            size_bytes: bytes.len() as u64,
            duration_seconds,
            created_at_ms: now_ms,
        })
    }

    fn get_audio(&self, id: &str) -> Result<AudioAsset, StoreError> {
        let inner = self.read();
        inner
            .conn
            .prepare_cached(
                "SELECT id, name, content_type, size_bytes, duration_seconds, created_at \
                 FROM audio_assets WHERE id = ?1",
            )?
            .query_row([id], |r| {
                Ok(AudioAsset {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    content_type: r.get(2)?,
                    size_bytes: r.get::<_, i64>(3)?.max(0) as u64,
                    duration_seconds: r.get(4)?,
                    created_at_ms: r.get(5)?,
                })
            })
            .optional()?
            .ok_or_else(|| StoreError::NotFound {
                what: "audio asset",
                id: id.to_string(),
            })
    }

    fn get_audio_file(&self, id: &str) -> Result<(AudioAsset, Vec<u8>), StoreError> {
        let meta = self.get_audio(id)?;
        let inner = self.read();
        let data: Vec<u8> = inner
            .conn
            .prepare_cached("SELECT data FROM audio_assets WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NotFound {
                what: "audio asset",
                id: id.to_string(),
            })?;
        Ok((meta, data))
    }

    fn add_dids(&self, numbers: &[String], now_ms: i64) -> Result<Vec<Did>, StoreError> {
        let mut guard = self.lock();
        let Inner { conn, rng } = &mut *guard;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut added = Vec::new();
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO dids (id, number, state, health_score, created_at) \
                 VALUES (?1, ?2, 'active', 100.0, ?3) ON CONFLICT (number) DO NOTHING",
            )?;
            for number in numbers {
                let id = new_id(rng, "did");
                if insert.execute(params![id, number, now_ms])? == 1 {
                    added.push(Did {
                        id,
                        number: number.clone(),
                        state: DidState::Active,
                        health_score: 100.0,
                        calls_placed: 0,
                        calls_answered: 0,
                        cooling_until_ms: None,
                        last_used_at_ms: None,
                        created_at_ms: now_ms,
                    });
                }
            }
        }
        tx.commit()?;
        Ok(added)
    }

    fn list_dids(
        &self,
        state: Option<DidState>,
        req: &PageRequest,
    ) -> Result<Page<Did>, StoreError> {
        let inner = self.read();
        let mut stmt = inner.conn.prepare_cached(&format!(
            "SELECT {DID_COLUMNS} FROM dids WHERE seq > ?1 AND (?2 IS NULL OR state = ?2) \
             ORDER BY seq LIMIT ?3"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    req.after.unwrap_or(0),
                    state.map(DidState::as_str),
                    i64::from(req.limit) + 1
                ],
                did_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(rows, req.limit))
    }
    fn begin_message(
        &self,
        campaign_id: &str,
        phone: &str,
        did: &str,
        parts: u32,
        now_ms: i64,
    ) -> Result<Message, StoreError> {
        let mut inner = self.lock();
        let dnc = self.dnc_book();
        let id = new_id(&mut inner.rng, "msg");
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (seq, current) = campaign_seq_status(&tx, campaign_id)?;
        let channel: String = tx
            .prepare_cached("SELECT channel FROM campaigns WHERE seq = ?1")?
            .query_row([seq], |r| r.get(0))?;
        let channel = Channel::parse(&channel).ok_or(StoreError::Corrupt(channel))?;
        if channel != Channel::Sms {
            return Err(StoreError::WrongChannel {
                id: campaign_id.to_string(),
                channel,
            });
        }
        if current != CampaignStatus::Dialing {
            return Err(StoreError::WrongStatus {
                action: "send a message for",
                current,
            });
        }
        let prospect_id: String = tx
            .prepare_cached("SELECT id FROM prospects WHERE campaign_seq = ?1 AND phone = ?2")?
            .query_row(params![seq, phone], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NotFound {
                what: "prospect with number",
                id: crate::campaign::redact(phone, false),
            })?;
        let claim = claim_in(
            &tx,
            &dnc,
            seq,
            &prospect_id,
            &ProspectEvent::Sending,
            now_ms,
        )?;
        let (pseq, p) = match claim {
            Claim::Claimed(pseq, p) => (pseq, p),
            Claim::Suppressed(p) => {
                tx.commit()?;
                return Err(StoreError::Suppressed { prospect_id: p.id });
            }
            Claim::Blocked(p, reason) => {
                tx.commit()?;
                return Err(StoreError::Blocked {
                    prospect_id: p.id,
                    reason,
                });
            }
        };
        tx.prepare_cached(
            "INSERT INTO messages (id, campaign_seq, prospect_seq, did, parts, status, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'sending', ?6)",
        )?
        .execute(params![id, seq, pseq, did, parts, now_ms])?;
        tx.commit()?;
        Ok(Message {
            id,
            campaign_id: campaign_id.to_string(),
            prospect_id: p.id,
            phone: p.phone,
            did: did.to_string(),
            parts,
            smpp_message_ids: Vec::new(),
            status: MessageStatus::Sending,
            error_code: None,
            submitted_at_ms: None,
            receipt_at_ms: None,
            created_at_ms: now_ms,
        })
    }

    fn message_accepted(
        &self,
        message_id: &str,
        smpp_message_ids: &[String],
        now_ms: i64,
    ) -> Result<Message, StoreError> {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (mseq, cseq, m) = message_in(&tx, message_id)?;
        if m.status != MessageStatus::Sending {
            return Err(StoreError::MessageState {
                id: m.id,
                status: m.status,
                action: "accept",
            });
        }
        if smpp_message_ids.len() != m.parts as usize {
            return Err(StoreError::MessageState {
                id: m.id,
                status: m.status,
                action: "accept without exactly one message id per part",
            });
        }
        let ids_json = serde_json::to_string(smpp_message_ids)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        tx.prepare_cached(
            "UPDATE messages SET status = 'sent', smpp_message_ids = ?2, submitted_at = ?3 \
             WHERE seq = ?1",
        )?
        .execute(params![mseq, ids_json, now_ms])?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO message_parts (message_seq, part, smpp_message_id) VALUES (?1, ?2, ?3)",
            )?;
            for (part, smpp_id) in smpp_message_ids.iter().enumerate() {
                insert.execute(params![mseq, part as i64 + 1, smpp_id])?;
            }
        }
        apply_event_in(&tx, cseq, &m.prospect_id, &ProspectEvent::Sent, now_ms)?;
        tx.commit()?;
        Ok(Message {
            status: MessageStatus::Sent,
            smpp_message_ids: smpp_message_ids.to_vec(),
            submitted_at_ms: Some(now_ms),
            ..m
        })
    }

    fn message_receipt(
        &self,
        smpp_message_id: &str,
        delivered: bool,
        error_code: Option<&str>,
        now_ms: i64,
    ) -> Result<ReceiptOutcome, StoreError> {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Carriers may reuse ids over months: the newest message with this id is the one.
        let id: String = tx
            .prepare_cached(
                "SELECT m.id FROM message_parts mp JOIN messages m ON m.seq = mp.message_seq \
                 WHERE mp.smpp_message_id = ?1 ORDER BY mp.message_seq DESC LIMIT 1",
            )?
            .query_row([smpp_message_id], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NotFound {
                what: "message with carrier id",
                id: smpp_message_id.to_string(),
            })?;
        let (mseq, cseq, m) = message_in(&tx, &id)?;
        if !m.status.is_live() {
            return Ok(ReceiptOutcome::AlreadyFinal(m));
        }
        let outcome = if delivered {
            tx.prepare_cached(
                "UPDATE message_parts SET delivered_at = COALESCE(delivered_at, ?3) \
                 WHERE message_seq = ?1 AND smpp_message_id = ?2",
            )?
            .execute(params![mseq, smpp_message_id, now_ms])?;
            let waiting: i64 = tx
                .prepare_cached(
                    "SELECT COUNT(*) FROM message_parts WHERE message_seq = ?1 \
                     AND delivered_at IS NULL",
                )?
                .query_row([mseq], |r| r.get(0))?;
            if waiting > 0 {
                ReceiptOutcome::PartDelivered(m)
            } else {
                ReceiptOutcome::Finished(finish_message_in(
                    &tx,
                    mseq,
                    cseq,
                    m,
                    MessageStatus::Delivered,
                    error_code,
                    now_ms,
                )?)
            }
        } else {
            ReceiptOutcome::Finished(finish_message_in(
                &tx,
                mseq,
                cseq,
                m,
                MessageStatus::Failed,
                error_code,
                now_ms,
            )?)
        };
        tx.commit()?;
        Ok(outcome)
    }

    fn message_failed(
        &self,
        message_id: &str,
        error_code: &str,
        now_ms: i64,
    ) -> Result<Message, StoreError> {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (mseq, cseq, m) = live_message_in(&tx, message_id, "fail")?;
        let m = finish_message_in(
            &tx,
            mseq,
            cseq,
            m,
            MessageStatus::Failed,
            Some(error_code),
            now_ms,
        )?;
        tx.commit()?;
        Ok(m)
    }

    fn message_requeued(&self, message_id: &str, now_ms: i64) -> Result<Prospect, StoreError> {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (mseq, cseq, m) = message_in(&tx, message_id)?;
        if m.status != MessageStatus::Sending {
            return Err(StoreError::MessageState {
                id: m.id,
                status: m.status,
                action: "requeue",
            });
        }
        tx.prepare_cached("UPDATE messages SET status = 'requeued' WHERE seq = ?1")?
            .execute([mseq])?;
        let (pseq, before) = prospect_in(&tx, cseq, &m.prospect_id)?;
        if before.status != ProspectStatus::Sending {
            return Err(StoreError::Prospect(prospect::ProspectTransitionError {
                from: before.status,
                event: "requeue",
            }));
        }
        // Not an event of `campaign::prospect`: the send never happened as far as anyone
        // knows, so the prospect is exactly as before `begin_message` (attempt not counted).
        let old = ProspectState {
            status: before.status,
            last_outcome: before.last_outcome,
        };
        let new = ProspectState {
            status: ProspectStatus::Queued,
            ..old
        };
        let attempts = before.attempts.saturating_sub(1);
        tx.prepare_cached(
            "UPDATE prospects SET status = 'queued', attempts = ?2, updated_at = ?3 WHERE seq = ?1",
        )?
        .execute(params![pseq, attempts, now_ms])?;
        bump_counters(&tx, cseq, &Counters::delta(old, new))?;
        let mut p = Prospect {
            status: ProspectStatus::Queued,
            attempts,
            updated_at_ms: now_ms,
            ..before
        };
        let (_, campaign_status) = campaign_seq_status(&tx, &p.campaign_id)?;
        if is_suppressed_in(&tx, &p.phone)? {
            p = cancel_suppressed_in(&tx, cseq, pseq, p, now_ms)?;
        } else if campaign_status.is_terminal() {
            // A cancelled campaign cancelled its queue already; this one joins it.
            let (_, cancelled) = apply_event_in(&tx, cseq, &p.id, &ProspectEvent::Cancel, now_ms)?;
            p = cancelled;
        }
        complete_if_done_in(&tx, cseq, now_ms)?;
        tx.commit()?;
        Ok(p)
    }

    fn live_messages(&self) -> Result<Vec<Message>, StoreError> {
        let inner = self.read();
        rows_of(
            &inner.conn,
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} \
                 WHERE m.status IN ('sending', 'sent') ORDER BY m.seq"
            ),
            [],
            message_row,
        )
    }

    fn messages_since(&self, since_ms: i64) -> Result<Vec<Message>, StoreError> {
        let inner = self.read();
        rows_of(
            &inner.conn,
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.created_at >= ?1 \
                 ORDER BY m.created_at, m.seq"
            ),
            [since_ms],
            message_row,
        )
    }

    fn list_messages(
        &self,
        campaign_id: &str,
        page_req: &PageRequest,
    ) -> Result<Page<Message>, StoreError> {
        let inner = self.read();
        let cseq = campaign_seq(&inner.conn, campaign_id)?;
        campaign_page(
            &inner.conn,
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.campaign_seq = ?1 \
                 AND m.seq > ?2 ORDER BY m.seq LIMIT ?3"
            ),
            cseq,
            page_req,
            message_row,
        )
    }

    fn suppress(
        &self,
        phones: &[String],
        reason: &str,
        source: &str,
        now_ms: i64,
    ) -> Result<Suppressed, StoreError> {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = Suppressed::default();
        let mut touched: Vec<i64> = Vec::new();
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO suppression (phone, reason, source, created_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (phone) DO NOTHING",
            )?;
            let mut queued = tx.prepare_cached(
                "SELECT seq, campaign_seq FROM prospects WHERE phone = ?1 AND status = 'queued'",
            )?;
            let mut cancel = tx.prepare_cached(
                "UPDATE prospects SET status = 'cancelled', next_attempt_at = NULL, \
                 wait_reason = ?2, updated_at = ?3 WHERE seq = ?1",
            )?;
            let one = Counters::delta(
                ProspectState::NEW,
                ProspectState {
                    status: ProspectStatus::Cancelled,
                    last_outcome: None,
                },
            );
            for phone in phones {
                out.added += insert.execute(params![phone, reason, source, now_ms])? as u64;
                let found = queued
                    .query_map([phone], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                for (pseq, cseq) in found {
                    cancel.execute(params![pseq, SUPPRESSED_REASON, now_ms])?;
                    bump_counters(&tx, cseq, &one)?;
                    out.prospects_cancelled += 1;
                    if !touched.contains(&cseq) {
                        touched.push(cseq);
                    }
                }
            }
        }
        // The last queued prospect of a running campaign may just have been cancelled.
        for cseq in touched {
            complete_if_done_in(&tx, cseq, now_ms)?;
        }
        tx.commit()?;
        Ok(out)
    }

    fn unsuppress(&self, phone: &str) -> Result<bool, StoreError> {
        let inner = self.lock();
        let n = inner
            .conn
            .prepare_cached("DELETE FROM suppression WHERE phone = ?1")?
            .execute([phone])?;
        Ok(n == 1)
    }

    fn is_suppressed(&self, phone: &str) -> Result<bool, StoreError> {
        let inner = self.read();
        Ok(is_suppressed_in(&inner.conn, phone)?)
    }

    fn list_suppressed(&self, req: &PageRequest) -> Result<Page<Suppression>, StoreError> {
        let inner = self.read();
        let rows = inner
            .conn
            .prepare_cached(
                "SELECT seq, phone, reason, source, created_at FROM suppression WHERE seq > ?1 \
                 ORDER BY seq LIMIT ?2",
            )?
            .query_map(
                params![req.after.unwrap_or(0), i64::from(req.limit) + 1],
                |r| {
                    Ok((
                        r.get(0)?,
                        Suppression {
                            phone: r.get(1)?,
                            reason: r.get(2)?,
                            source: r.get(3)?,
                            created_at_ms: r.get(4)?,
                        },
                    ))
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(rows, req.limit))
    }

    fn import_dnc(
        &self,
        list: &str,
        numbers: &[u64],
        source: &str,
        now_ms: i64,
    ) -> Result<DncImported, StoreError> {
        compliance::import_dnc(self, list, numbers, source, now_ms)
    }

    fn dnc_lists(&self) -> Vec<DncList> {
        self.dnc_book().lists()
    }

    fn dnc_hit(&self, phone: &str) -> Option<DncList> {
        self.dnc_book().hit(phone).cloned()
    }

    fn cancel_prospect(
        &self,
        campaign_id: &str,
        prospect_id: &str,
        reason: &'static str,
        now_ms: i64,
    ) -> Result<Prospect, StoreError> {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let seq = campaign_seq(&tx, campaign_id)?;
        let (pseq, p) = prospect_in(&tx, seq, prospect_id)?;
        // Only a queued prospect may be cancelled (the transition refuses the rest).
        let p = cancel_with_reason_in(&tx, seq, pseq, p, reason, now_ms)?;
        complete_if_done_in(&tx, seq, now_ms)?;
        tx.commit()?;
        Ok(p)
    }

    fn live_answers_since(
        &self,
        campaign_id: &str,
        since_ms: i64,
    ) -> Result<Vec<(i64, bool)>, StoreError> {
        let inner = self.read();
        let cseq = campaign_seq(&inner.conn, campaign_id)?;
        Ok(inner
            .conn
            .prepare_cached(
                "SELECT started_at, abandoned FROM attempts WHERE campaign_seq = ?1 \
                 AND started_at >= ?2 AND abandoned IS NOT NULL ORDER BY started_at",
            )?
            .query_map(params![cseq, since_ms], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?)
    }

    fn attempt_audit(&self, attempt_id: &str) -> Result<(Attempt, Value), StoreError> {
        compliance::attempt_audit(self, attempt_id)
    }

    fn campaign_audit(
        &self,
        campaign_id: &str,
        req: &PageRequest,
    ) -> Result<Page<(Attempt, Value)>, StoreError> {
        compliance::campaign_audit(self, campaign_id, req)
    }

    fn heartbeat(&self, b: &NodeStatus) -> Result<u64, StoreError> {
        let inner = self.lock();
        inner
            .conn
            .prepare_cached(
                "INSERT INTO nodes (id, started_at, heartbeat_at, calls, calls_placed, cps) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO UPDATE SET \
                 started_at = ?2, heartbeat_at = ?3, calls = ?4, calls_placed = ?5, cps = ?6",
            )?
            .execute(params![
                b.id,
                b.started_at_ms,
                b.heartbeat_at_ms,
                b.calls as i64,
                b.calls_placed as i64,
                b.cps
            ])?;
        Ok(0)
    }

    fn list_nodes(&self) -> Result<Vec<NodeStatus>, StoreError> {
        let inner = self.read();
        let rows = inner
            .conn
            .prepare_cached(
                "SELECT id, started_at, heartbeat_at, calls, calls_placed, cps FROM nodes \
                 ORDER BY id",
            )?
            .query_map([], |r| {
                Ok(NodeStatus {
                    id: r.get(0)?,
                    started_at_ms: r.get(1)?,
                    heartbeat_at_ms: r.get(2)?,
                    calls: r.get::<_, i64>(3)?.max(0) as u64,
                    calls_placed: r.get::<_, i64>(4)?.max(0) as u64,
                    cps: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}
