//! The event log and the webhook outbox on PostgreSQL: each state change writes its event (and
//! the event's outbox row) in the transaction that makes the change, exactly as on SQLite. The
//! outbox is shared by every node: any node's webhook task may deliver a due event, so with
//! several nodes an event can be posted twice (receivers deduplicate by the event id, as they
//! must after any retry; the slower node's `webhook_tried` finds it done and logs a warning).

use postgres::Row;
use serde_json::{Value, json};

use super::{PgStore, Tx};
use crate::campaign::{AmdResult, CampaignStatus, Outcome};
use crate::store::{AttemptResult, Prospect, StoreError, StoredEvent, WebhookJob};

/// Appends an event and its pending outbox row. The id is 96 random bits from PostgreSQL.
fn insert(
    tx: &mut Tx,
    kind: &str,
    campaign_seq: i64,
    data: &Value,
    now_ms: i64,
) -> Result<(), StoreError> {
    let seq: i64 = tx
        .one(
            "INSERT INTO events (id, kind, campaign_seq, data, created_at) \
             VALUES ('evt_' || substr(md5(gen_random_uuid()::text), 1, 24), $1, $2, $3, $4) \
             RETURNING seq",
            &[&kind, &campaign_seq, &data.to_string(), &now_ms],
        )?
        .get(0);
    tx.exec(
        "INSERT INTO webhook_outbox (event_seq, next_at) VALUES ($1, $2)",
        &[&seq, &now_ms],
    )?;
    Ok(())
}

/// `campaign.status`: the campaign moved from `from` to `to` by `action`.
pub(super) fn campaign_status(
    tx: &mut Tx,
    campaign_seq: i64,
    from: CampaignStatus,
    to: CampaignStatus,
    action: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
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
    tx: &mut Tx,
    campaign_seq: i64,
    attempt_id: &str,
    p: &Prospect,
    caller_id: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
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
    tx: &mut Tx,
    campaign_seq: i64,
    attempt_id: &str,
    p: &Prospect,
    r: &AttemptResult,
    now_ms: i64,
) -> Result<(), StoreError> {
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

fn event_row(row: &Row) -> Result<StoredEvent, StoreError> {
    let data: String = row.try_get(4)?;
    Ok(StoredEvent {
        seq: row.try_get(0)?,
        id: row.try_get(1)?,
        kind: row.try_get(2)?,
        campaign_id: row.try_get(3)?,
        data: serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at_ms: row.try_get(5)?,
    })
}

impl PgStore {
    pub(super) fn events_after_impl(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(|tx| {
            tx.query(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events e JOIN campaigns c \
                     ON c.seq = e.campaign_seq WHERE e.seq > $1 ORDER BY e.seq LIMIT $2"
                ),
                &[&after_seq, &i64::from(limit)],
            )?
            .iter()
            .map(event_row)
            .collect()
        })
    }

    pub(super) fn last_event_seq_impl(&self) -> Result<i64, StoreError> {
        self.read(|tx| {
            Ok(tx
                .one("SELECT COALESCE(MAX(seq), 0)::BIGINT FROM events", &[])?
                .get(0))
        })
    }

    pub(super) fn due_webhooks_impl(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<WebhookJob>, StoreError> {
        self.read(|tx| {
            tx.query(
                &format!(
                    "SELECT {EVENT_COLUMNS}, c.webhook_url, o.tries FROM webhook_outbox o \
                     JOIN events e ON e.seq = o.event_seq JOIN campaigns c \
                     ON c.seq = e.campaign_seq WHERE o.state = 'pending' AND o.next_at <= $1 \
                     ORDER BY o.event_seq LIMIT $2"
                ),
                &[&now_ms, &i64::from(limit)],
            )?
            .iter()
            .map(|row| {
                Ok(WebhookJob {
                    event: event_row(row)?,
                    url: row.try_get(6)?,
                    tries: row.try_get::<_, i64>(7)?.clamp(0, i64::from(u32::MAX)) as u32,
                })
            })
            .collect()
        })
    }

    pub(super) fn webhook_tried_impl(
        &self,
        event_seq: i64,
        state: &str,
        next_at_ms: Option<i64>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let n = self.write(|tx| {
            tx.exec(
                "UPDATE webhook_outbox SET tries = tries + 1, state = $2, \
                 next_at = COALESCE($3, next_at), last_error = $4 \
                 WHERE event_seq = $1 AND state = 'pending'",
                &[&event_seq, &state, &next_at_ms, &error],
            )
        })?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "pending webhook",
                id: event_seq.to_string(),
            });
        }
        Ok(())
    }

    pub(super) fn webhook_queue_depth_impl(&self) -> Result<u64, StoreError> {
        self.read(|tx| {
            let n: i64 = tx
                .one(
                    "SELECT COUNT(*) FROM webhook_outbox WHERE state = 'pending'",
                    &[],
                )?
                .get(0);
            Ok(n.max(0) as u64)
        })
    }
}
