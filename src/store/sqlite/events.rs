//! The event log and the webhook outbox of the SQLite store: each state change writes its
//! event (and the event's outbox row) in the transaction that makes the change, so an event
//! exists exactly when its change was committed, and survives restarts until it is delivered.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde_json::{Value, json};

use super::SqliteStore;
use super::rows::rows_of;
use crate::campaign::{AmdResult, CampaignStatus, Outcome};
use crate::store::{AttemptResult, Prospect, StoreError, StoredEvent, WebhookJob};

/// Appends an event and its pending outbox row. The id is 96 random bits from SQLite.
fn insert(
    tx: &Transaction,
    kind: &str,
    campaign_seq: i64,
    data: &Value,
    now_ms: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO events (id, kind, campaign_seq, data, created_at) \
         VALUES ('evt_' || lower(hex(randomblob(12))), ?1, ?2, ?3, ?4)",
    )?
    .execute(params![kind, campaign_seq, data.to_string(), now_ms])?;
    let seq = tx.last_insert_rowid();
    tx.prepare_cached("INSERT INTO webhook_outbox (event_seq, next_at) VALUES (?1, ?2)")?
        .execute(params![seq, now_ms])?;
    Ok(())
}

/// `campaign.status`: the campaign moved from `from` to `to` by `action`.
pub(super) fn campaign_status(
    tx: &Transaction,
    campaign_seq: i64,
    from: CampaignStatus,
    to: CampaignStatus,
    action: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    if from == to {
        return Ok(());
    }
    let data = json!({
        "status": to.as_str(),
        "previousStatus": from.as_str(),
        "action": action,
    });
    insert(tx, "campaign.status", campaign_seq, &data, now_ms)
}

/// `attempt.started`: a call to the prospect is being placed.
pub(super) fn attempt_started(
    tx: &Transaction,
    campaign_seq: i64,
    attempt_id: &str,
    p: &Prospect,
    caller_id: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let data = json!({
        "attemptId": attempt_id,
        "prospectId": p.id,
        "phone": p.phone,
        "attempt": p.attempts,
        "callerId": caller_id,
        "prospectStatus": p.status.as_str(),
    });
    insert(tx, "attempt.started", campaign_seq, &data, now_ms)
}

/// `attempt.ended`: the call ended with its outcome; the prospect's new status.
pub(super) fn attempt_ended(
    tx: &Transaction,
    campaign_seq: i64,
    attempt_id: &str,
    p: &Prospect,
    r: &AttemptResult,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let data = json!({
        "attemptId": attempt_id,
        "prospectId": p.id,
        "phone": p.phone,
        "attempt": p.attempts,
        "outcome": r.outcome.map(Outcome::as_str),
        "cause": r.cause,
        "sipStatus": r.sip_status,
        "amdResult": r.amd_result.map(AmdResult::as_str),
        "amdCause": r.amd_cause,
        "amdMs": r.amd_ms,
        "prospectStatus": p.status.as_str(),
        "nextAttemptAt": p.next_attempt_at_ms.map(crate::api::dto::rfc3339),
    });
    insert(tx, "attempt.ended", campaign_seq, &data, now_ms)
}

const EVENT_COLUMNS: &str = "e.seq, e.id, e.kind, c.id, e.data, e.created_at";

fn event_row(row: &Row) -> rusqlite::Result<StoredEvent> {
    let data: String = row.get(4)?;
    Ok(StoredEvent {
        seq: row.get(0)?,
        id: row.get(1)?,
        kind: row.get(2)?,
        campaign_id: row.get(3)?,
        data: serde_json::from_str(&data).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
        })?,
        created_at_ms: row.get(5)?,
    })
}

pub(super) fn events_after(
    conn: &Connection,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<StoredEvent>, StoreError> {
    rows_of(
        conn,
        &format!(
            "SELECT {EVENT_COLUMNS} FROM events e JOIN campaigns c ON c.seq = e.campaign_seq \
             WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2"
        ),
        params![after_seq, i64::from(limit)],
        |row| event_row(row).map(|e| (e.seq, e)),
    )
}

pub(super) fn due_webhooks(
    conn: &Connection,
    now_ms: i64,
    limit: u32,
) -> Result<Vec<WebhookJob>, StoreError> {
    rows_of(
        conn,
        &format!(
            "SELECT {EVENT_COLUMNS}, c.webhook_url, o.tries FROM webhook_outbox o \
             JOIN events e ON e.seq = o.event_seq JOIN campaigns c ON c.seq = e.campaign_seq \
             WHERE o.state = 'pending' AND o.next_at <= ?1 ORDER BY o.event_seq LIMIT ?2"
        ),
        params![now_ms, i64::from(limit)],
        |row| {
            let event = event_row(row)?;
            Ok((
                event.seq,
                WebhookJob {
                    event,
                    url: row.get(6)?,
                    tries: row.get::<_, i64>(7)?.clamp(0, i64::from(u32::MAX)) as u32,
                },
            ))
        },
    )
}

pub(super) fn webhook_tried(
    conn: &Connection,
    event_seq: i64,
    state: &str,
    next_at_ms: Option<i64>,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE webhook_outbox SET tries = tries + 1, state = ?2, \
             next_at = COALESCE(?3, next_at), last_error = ?4 \
             WHERE event_seq = ?1 AND state = 'pending'",
        )?
        .execute(params![event_seq, state, next_at_ms, error])?;
    if n == 0 {
        return Err(StoreError::NotFound {
            what: "pending webhook",
            id: event_seq.to_string(),
        });
    }
    Ok(())
}

pub(super) fn webhook_queue_depth(conn: &Connection) -> Result<u64, StoreError> {
    let n: Option<i64> = conn
        .prepare_cached("SELECT COUNT(*) FROM webhook_outbox WHERE state = 'pending'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(n.unwrap_or(0).max(0) as u64)
}

impl SqliteStore {
    pub(super) fn events_after_impl(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        events_after(&self.read().conn, after_seq, limit)
    }

    pub(super) fn last_event_seq_impl(&self) -> Result<i64, StoreError> {
        let inner = self.read();
        let seq: Option<i64> = inner
            .conn
            .prepare_cached("SELECT MAX(seq) FROM events")?
            .query_row([], |r| r.get(0))?;
        Ok(seq.unwrap_or(0))
    }

    pub(super) fn due_webhooks_impl(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<WebhookJob>, StoreError> {
        due_webhooks(&self.read().conn, now_ms, limit)
    }

    pub(super) fn webhook_tried_impl(
        &self,
        event_seq: i64,
        state: &str,
        next_at_ms: Option<i64>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        webhook_tried(&self.lock().conn, event_seq, state, next_at_ms, error)
    }

    pub(super) fn webhook_queue_depth_impl(&self) -> Result<u64, StoreError> {
        webhook_queue_depth(&self.read().conn)
    }
}
