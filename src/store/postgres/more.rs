//! Audio assets, caller IDs, SMS messages and the suppression list on PostgreSQL: the same
//! operations and rules as `store::sqlite`, each one transaction that locks the campaign row
//! it changes first.

use super::rows::*;
use super::{PgStore, Tx};
use crate::campaign::prospect::{self, ProspectState};
use crate::campaign::{Channel, Counters, Outcome, ProspectEvent, ProspectStatus};
use crate::store::{
    AudioAsset, Did, DidState, DidUpdate, Message, MessageStatus, Page, PageRequest, Prospect,
    ReceiptOutcome, SUPPRESSED_REASON, StoreError, Suppressed, Suppression,
};

/// A message with its row position and its campaign's.
fn message_in(tx: &mut Tx, message_id: &str) -> Result<(i64, i64, Message), StoreError> {
    let row = tx
        .opt(
            &format!("SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.id = $1"),
            &[&message_id],
        )?
        .ok_or_else(|| StoreError::NotFound {
            what: "message",
            id: message_id.to_string(),
        })?;
    let (seq, m) = message_row(&row)?;
    Ok((seq, row.try_get(13)?, m))
}

/// A message after locking its campaign's row (the lock every write to the campaign takes).
fn locked_message_in(tx: &mut Tx, message_id: &str) -> Result<(i64, i64, Message), StoreError> {
    let (_, cseq, _) = message_in(tx, message_id)?;
    lock_campaign_seq(tx, cseq)?;
    message_in(tx, message_id)
}

/// Ends a live message with `status` and completes its prospect.
fn finish_message_in(
    tx: &mut Tx,
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
    tx.exec(
        "UPDATE messages SET status = $2, error_code = $3, receipt_at = $4 WHERE seq = $1",
        &[&message_seq, &status.as_str(), &error_code, &now_ms],
    )?;
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

impl PgStore {
    pub(super) fn update_did_impl(&self, number: &str, u: &DidUpdate) -> Result<(), StoreError> {
        let n = self.write(|tx| {
            tx.exec(
                "UPDATE dids SET state = $2, health_score = $3, calls_placed = $4, \
                 calls_answered = $5, cooling_until = $6, last_used_at = $7 WHERE number = $1",
                &[
                    &number,
                    &u.state.as_str(),
                    &u.health_score,
                    &(u.placed as i64),
                    &(u.answered as i64),
                    &u.cooling_until_ms,
                    &u.last_used_at_ms,
                ],
            )
        })?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "caller ID",
                id: number.to_string(),
            });
        }
        Ok(())
    }

    pub(super) fn create_audio_impl(
        &self,
        name: &str,
        content_type: &str,
        bytes: &[u8],
        duration_seconds: f64,
        now_ms: i64,
    ) -> Result<AudioAsset, StoreError> {
        let id = self.new_id("aud");
        self.write(|tx| {
            tx.exec(
                "INSERT INTO audio_assets (id, name, content_type, size_bytes, duration_seconds, \
                 data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &id,
                    &name,
                    &content_type,
                    &(bytes.len() as i64),
                    &duration_seconds,
                    &bytes,
                    &now_ms,
                ],
            )
        })?;
        Ok(AudioAsset {
            id,
            name: name.to_string(),
            content_type: content_type.to_string(),
            size_bytes: bytes.len() as u64,
            duration_seconds,
            created_at_ms: now_ms,
        })
    }

    pub(super) fn get_audio_impl(
        &self,
        id: &str,
        with_data: bool,
    ) -> Result<(AudioAsset, Vec<u8>), StoreError> {
        self.read(|tx| {
            let row = tx
                .opt(
                    "SELECT id, name, content_type, size_bytes, duration_seconds, created_at, \
                     CASE WHEN $2 THEN data ELSE NULL END FROM audio_assets WHERE id = $1",
                    &[&id, &with_data],
                )?
                .ok_or_else(|| StoreError::NotFound {
                    what: "audio asset",
                    id: id.to_string(),
                })?;
            let data: Option<Vec<u8>> = row.try_get(6)?;
            Ok((
                AudioAsset {
                    id: row.try_get(0)?,
                    name: row.try_get(1)?,
                    content_type: row.try_get(2)?,
                    size_bytes: row.try_get::<_, i64>(3)?.max(0) as u64,
                    duration_seconds: row.try_get(4)?,
                    created_at_ms: row.try_get(5)?,
                },
                data.unwrap_or_default(),
            ))
        })
    }

    pub(super) fn add_dids_impl(
        &self,
        numbers: &[String],
        now_ms: i64,
    ) -> Result<Vec<Did>, StoreError> {
        let ids: Vec<String> = numbers.iter().map(|_| self.new_id("did")).collect();
        self.write(|tx| {
            let mut added = Vec::new();
            for (id, number) in ids.iter().zip(numbers) {
                let n = tx.exec(
                    "INSERT INTO dids (id, number, state, health_score, created_at) \
                     VALUES ($1, $2, 'active', 100.0, $3) ON CONFLICT (number) DO NOTHING",
                    &[id, number, &now_ms],
                )?;
                if n == 1 {
                    added.push(Did {
                        id: id.clone(),
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
            Ok(added)
        })
    }

    pub(super) fn list_dids_impl(
        &self,
        state: Option<DidState>,
        req: &PageRequest,
    ) -> Result<Page<Did>, StoreError> {
        self.read(|tx| {
            let rows = tx.query(
                &format!(
                    "SELECT {DID_COLUMNS} FROM dids WHERE seq > $1 \
                     AND ($2::TEXT IS NULL OR state = $2) ORDER BY seq LIMIT $3"
                ),
                &[
                    &req.after.unwrap_or(0),
                    &state.map(DidState::as_str),
                    &(i64::from(req.limit) + 1),
                ],
            )?;
            Ok(page(decode(&rows, did_row)?, req.limit))
        })
    }

    pub(super) fn begin_message_impl(
        &self,
        campaign_id: &str,
        phone: &str,
        did: &str,
        parts: u32,
        now_ms: i64,
    ) -> Result<Message, StoreError> {
        let dnc = self.dnc_book();
        let id = self.new_id("msg");
        self.write(|tx| {
            let (seq, current) = lock_campaign(tx, campaign_id)?;
            let channel: String = tx
                .one("SELECT channel FROM campaigns WHERE seq = $1", &[&seq])?
                .get(0);
            let channel = Channel::parse(&channel).ok_or(StoreError::Corrupt(channel))?;
            if channel != Channel::Sms {
                return Err(StoreError::WrongChannel {
                    id: campaign_id.to_string(),
                    channel,
                });
            }
            if current != crate::campaign::CampaignStatus::Dialing {
                return Err(StoreError::WrongStatus {
                    action: "send a message for",
                    current,
                });
            }
            let prospect_id: String = tx
                .opt(
                    "SELECT id FROM prospects WHERE campaign_seq = $1 AND phone = $2",
                    &[&seq, &phone],
                )?
                .map(|r| r.get(0))
                .ok_or_else(|| StoreError::NotFound {
                    what: "prospect with number",
                    id: crate::campaign::redact(phone, false),
                })?;
            let (pseq, p) =
                match claim_in(tx, &dnc, seq, &prospect_id, &ProspectEvent::Sending, now_ms)? {
                    Claim::Claimed(pseq, p) => (pseq, p),
                    Claim::Refused(e) => return Err(e),
                };
            tx.exec(
                "INSERT INTO messages (id, campaign_seq, prospect_seq, did, parts, status, \
                 created_at) VALUES ($1, $2, $3, $4, $5, 'sending', $6)",
                &[&id, &seq, &pseq, &did, &i64::from(parts), &now_ms],
            )?;
            Ok(Message {
                id: id.clone(),
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
        })
    }

    pub(super) fn message_accepted_impl(
        &self,
        message_id: &str,
        smpp_message_ids: &[String],
        now_ms: i64,
    ) -> Result<Message, StoreError> {
        self.write(|tx| {
            let (mseq, cseq, m) = locked_message_in(tx, message_id)?;
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
            tx.exec(
                "UPDATE messages SET status = 'sent', smpp_message_ids = $2, submitted_at = $3 \
                 WHERE seq = $1",
                &[&mseq, &ids_json, &now_ms],
            )?;
            for (part, smpp_id) in smpp_message_ids.iter().enumerate() {
                tx.exec(
                    "INSERT INTO message_parts (message_seq, part, smpp_message_id) \
                     VALUES ($1, $2, $3)",
                    &[&mseq, &(part as i64 + 1), smpp_id],
                )?;
            }
            apply_event_in(tx, cseq, &m.prospect_id, &ProspectEvent::Sent, now_ms)?;
            Ok(Message {
                status: MessageStatus::Sent,
                smpp_message_ids: smpp_message_ids.to_vec(),
                submitted_at_ms: Some(now_ms),
                ..m
            })
        })
    }

    pub(super) fn message_receipt_impl(
        &self,
        smpp_message_id: &str,
        delivered: bool,
        error_code: Option<&str>,
        now_ms: i64,
    ) -> Result<ReceiptOutcome, StoreError> {
        self.write(|tx| {
            // Carriers may reuse ids over months: the newest message with this id is the one.
            let id: String = tx
                .opt(
                    "SELECT m.id FROM message_parts mp JOIN messages m ON m.seq = mp.message_seq \
                     WHERE mp.smpp_message_id = $1 ORDER BY mp.message_seq DESC LIMIT 1",
                    &[&smpp_message_id],
                )?
                .map(|r| r.get(0))
                .ok_or_else(|| StoreError::NotFound {
                    what: "message with carrier id",
                    id: smpp_message_id.to_string(),
                })?;
            let (mseq, cseq, m) = locked_message_in(tx, &id)?;
            if !m.status.is_live() {
                return Ok(ReceiptOutcome::AlreadyFinal(m));
            }
            if delivered {
                tx.exec(
                    "UPDATE message_parts SET delivered_at = COALESCE(delivered_at, $3) \
                     WHERE message_seq = $1 AND smpp_message_id = $2",
                    &[&mseq, &smpp_message_id, &now_ms],
                )?;
                let waiting: i64 = tx
                    .one(
                        "SELECT COUNT(*) FROM message_parts WHERE message_seq = $1 \
                         AND delivered_at IS NULL",
                        &[&mseq],
                    )?
                    .get(0);
                if waiting > 0 {
                    return Ok(ReceiptOutcome::PartDelivered(m));
                }
                let m = finish_message_in(
                    tx,
                    mseq,
                    cseq,
                    m,
                    MessageStatus::Delivered,
                    error_code,
                    now_ms,
                )?;
                Ok(ReceiptOutcome::Finished(m))
            } else {
                let m = finish_message_in(
                    tx,
                    mseq,
                    cseq,
                    m,
                    MessageStatus::Failed,
                    error_code,
                    now_ms,
                )?;
                Ok(ReceiptOutcome::Finished(m))
            }
        })
    }

    pub(super) fn message_failed_impl(
        &self,
        message_id: &str,
        error_code: &str,
        now_ms: i64,
    ) -> Result<Message, StoreError> {
        self.write(|tx| {
            let (mseq, cseq, m) = locked_message_in(tx, message_id)?;
            if !m.status.is_live() {
                return Err(StoreError::MessageState {
                    id: m.id,
                    status: m.status,
                    action: "fail",
                });
            }
            finish_message_in(
                tx,
                mseq,
                cseq,
                m,
                MessageStatus::Failed,
                Some(error_code),
                now_ms,
            )
        })
    }

    pub(super) fn message_requeued_impl(
        &self,
        message_id: &str,
        now_ms: i64,
    ) -> Result<Prospect, StoreError> {
        self.write(|tx| {
            let (mseq, cseq, m) = locked_message_in(tx, message_id)?;
            if m.status != MessageStatus::Sending {
                return Err(StoreError::MessageState {
                    id: m.id,
                    status: m.status,
                    action: "requeue",
                });
            }
            tx.exec(
                "UPDATE messages SET status = 'requeued' WHERE seq = $1",
                &[&mseq],
            )?;
            let (pseq, before) = prospect_in(tx, cseq, &m.prospect_id)?;
            if before.status != ProspectStatus::Sending {
                return Err(StoreError::Prospect(prospect::ProspectTransitionError {
                    from: before.status,
                    event: "requeue",
                }));
            }
            let old = ProspectState {
                status: before.status,
                last_outcome: before.last_outcome,
            };
            let new = ProspectState {
                status: ProspectStatus::Queued,
                ..old
            };
            let attempts = before.attempts.saturating_sub(1);
            tx.exec(
                "UPDATE prospects SET status = 'queued', attempts = $2, updated_at = $3 \
                 WHERE seq = $1",
                &[&pseq, &i64::from(attempts), &now_ms],
            )?;
            bump_counters(tx, cseq, &Counters::delta(old, new))?;
            let mut p = Prospect {
                status: ProspectStatus::Queued,
                attempts,
                updated_at_ms: now_ms,
                ..before
            };
            let campaign_status = lock_campaign_seq(tx, cseq)?;
            if is_suppressed_in(tx, &p.phone)? {
                p = cancel_with_reason_in(tx, cseq, pseq, p, SUPPRESSED_REASON, now_ms)?;
            } else if campaign_status.is_terminal() {
                let (_, cancelled) =
                    apply_event_in(tx, cseq, &p.id, &ProspectEvent::Cancel, now_ms)?;
                p = cancelled;
            }
            complete_if_done_in(tx, cseq, now_ms)?;
            Ok(p)
        })
    }

    pub(super) fn messages_where(
        &self,
        filter: &str,
        param: Option<i64>,
    ) -> Result<Vec<Message>, StoreError> {
        self.read(|tx| {
            let sql = format!("SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE {filter}");
            let rows = match param {
                Some(v) => tx.query(&sql, &[&v])?,
                None => tx.query(&sql, &[])?,
            };
            items(&rows, message_row)
        })
    }

    pub(super) fn list_messages_impl(
        &self,
        campaign_id: &str,
        req: &PageRequest,
    ) -> Result<Page<Message>, StoreError> {
        self.read(|tx| {
            let cseq = campaign_seq(tx, campaign_id)?;
            let rows = tx.query(
                &format!(
                    "SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.campaign_seq = $1 \
                     AND m.seq > $2 ORDER BY m.seq LIMIT $3"
                ),
                &[&cseq, &req.after.unwrap_or(0), &(i64::from(req.limit) + 1)],
            )?;
            Ok(page(decode(&rows, message_row)?, req.limit))
        })
    }

    pub(super) fn suppress_impl(
        &self,
        phones: &[String],
        reason: &str,
        source: &str,
        now_ms: i64,
    ) -> Result<Suppressed, StoreError> {
        self.write(|tx| {
            let mut out = Suppressed::default();
            // Campaign rows first, in position order (every writer locks campaigns first).
            let campaigns: Vec<i64> = tx
                .query(
                    "SELECT DISTINCT campaign_seq FROM prospects WHERE phone = ANY($1) \
                     AND status = 'queued' ORDER BY campaign_seq",
                    &[&phones],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            for cseq in &campaigns {
                lock_campaign_seq(tx, *cseq)?;
            }
            let one = Counters::delta(
                ProspectState::NEW,
                ProspectState {
                    status: ProspectStatus::Cancelled,
                    last_outcome: None,
                },
            );
            for phone in phones {
                out.added += tx.exec(
                    "INSERT INTO suppression (phone, reason, source, created_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (phone) DO NOTHING",
                    &[phone, &reason, &source, &now_ms],
                )?;
                let found = tx.query(
                    "UPDATE prospects SET status = 'cancelled', next_attempt_at = NULL, \
                     wait_reason = $2, updated_at = $3, lease_node = NULL, lease_until = NULL \
                     WHERE phone = $1 AND status = 'queued' RETURNING campaign_seq",
                    &[phone, &SUPPRESSED_REASON, &now_ms],
                )?;
                for r in found {
                    let cseq: i64 = r.get(0);
                    bump_counters(tx, cseq, &one)?;
                    out.prospects_cancelled += 1;
                }
            }
            for cseq in campaigns {
                complete_if_done_in(tx, cseq, now_ms)?;
            }
            Ok(out)
        })
    }

    pub(super) fn unsuppress_impl(&self, phone: &str) -> Result<bool, StoreError> {
        Ok(self.write(|tx| tx.exec("DELETE FROM suppression WHERE phone = $1", &[&phone]))? == 1)
    }

    pub(super) fn is_suppressed_impl(&self, phone: &str) -> Result<bool, StoreError> {
        self.read(|tx| is_suppressed_in(tx, phone))
    }

    pub(super) fn list_suppressed_impl(
        &self,
        req: &PageRequest,
    ) -> Result<Page<Suppression>, StoreError> {
        self.read(|tx| {
            let rows = tx.query(
                "SELECT seq, phone, reason, source, created_at FROM suppression WHERE seq > $1 \
                 ORDER BY seq LIMIT $2",
                &[&req.after.unwrap_or(0), &(i64::from(req.limit) + 1)],
            )?;
            let rows = decode(&rows, |r| {
                Ok((
                    r.try_get(0)?,
                    Suppression {
                        phone: r.try_get(1)?,
                        reason: r.try_get(2)?,
                        source: r.try_get(3)?,
                        created_at_ms: r.try_get(4)?,
                    },
                ))
            })?;
            Ok(page(rows, req.limit))
        })
    }

    pub(super) fn cancel_prospect_impl(
        &self,
        campaign_id: &str,
        prospect_id: &str,
        reason: &'static str,
        now_ms: i64,
    ) -> Result<Prospect, StoreError> {
        self.write(|tx| {
            let (seq, _) = lock_campaign(tx, campaign_id)?;
            let (pseq, p) = prospect_in(tx, seq, prospect_id)?;
            let p = cancel_with_reason_in(tx, seq, pseq, p, reason, now_ms)?;
            complete_if_done_in(tx, seq, now_ms)?;
            Ok(p)
        })
    }

    pub(super) fn live_answers_since_impl(
        &self,
        campaign_id: &str,
        since_ms: i64,
    ) -> Result<Vec<(i64, bool)>, StoreError> {
        self.read(|tx| {
            let cseq = campaign_seq(tx, campaign_id)?;
            Ok(tx
                .query(
                    "SELECT started_at, abandoned FROM attempts WHERE campaign_seq = $1 \
                     AND started_at >= $2 AND abandoned IS NOT NULL ORDER BY started_at",
                    &[&cseq, &since_ms],
                )?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect())
        })
    }
}
