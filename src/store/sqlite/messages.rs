//! The `messages` and `message_parts` tables of the SQLite store: beginning an SMS, its
//! carrier acceptance, delivery receipts, failures and requeues, and the reads over messages.
//! It must not create attempts.

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::SqliteStore;
use super::campaigns::{bump_counters, campaign_seq, campaign_seq_status, complete_if_done_in};
use super::prospects::{Claim, apply_event_in, claim_in};
use super::rows::prospect_in;
use super::rows::{MESSAGE_COLUMNS, MESSAGE_FROM, campaign_page, message_row, rows_of};
use super::suppression::{cancel_suppressed_in, is_suppressed_in};
use crate::campaign::prospect::{self, ProspectState};
use crate::campaign::{CampaignStatus, Channel, Counters, Outcome, ProspectEvent, ProspectStatus};
use crate::store::ids::new_id;
use crate::store::{
    Message, MessageStatus, Page, PageRequest, Prospect, ReceiptOutcome, StoreError,
};

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

impl SqliteStore {
    pub(super) fn begin_message_impl(
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

    pub(super) fn message_accepted_impl(
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

    pub(super) fn message_receipt_impl(
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

    pub(super) fn message_failed_impl(
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

    pub(super) fn message_requeued_impl(
        &self,
        message_id: &str,
        now_ms: i64,
    ) -> Result<Prospect, StoreError> {
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

    pub(super) fn live_messages_impl(&self) -> Result<Vec<Message>, StoreError> {
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

    pub(super) fn messages_since_impl(&self, since_ms: i64) -> Result<Vec<Message>, StoreError> {
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

    pub(super) fn list_messages_impl(
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
}
