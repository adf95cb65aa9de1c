//! The `prospects` table of the SQLite store: adding, listing, deferring and cancelling
//! prospects, applying their events (row and campaign counters in one transaction) and
//! claiming one for a call or a message. It must not create attempts or messages itself.

use rusqlite::{Transaction, TransactionBehavior, params};
use serde_json::Value;

use super::campaigns::{bump_counters, campaign_seq, campaign_seq_status, complete_if_done_in};
use super::rows::{PROSPECT_COLUMNS, page, prospect_in, prospect_row};
use super::suppression::{cancel_suppressed_in, cancel_with_reason_in, is_suppressed_in};
use super::{Inner, SqliteStore, compliance::DncBook};
use crate::campaign::prospect::{self, ProspectState};
use crate::campaign::{
    AmdResult, CampaignStatus, Counters, Outcome, ProspectEvent, ProspectStatus,
};
use crate::store::ids::new_id;
use crate::store::{
    DNC_REASON, NO_CONSENT_REASON, Page, PageRequest, Prospect, SUPPRESSED_REASON, StoreError,
};

/// Applies a prospect event inside a transaction: the prospect row and the campaign counters.
pub(super) fn apply_event_in(
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

/// The result of claiming a queued prospect for a call or a message.
pub(super) enum Claim {
    Claimed(i64, Prospect),
    /// Its number is suppressed: it was cancelled instead (commit, then report).
    Suppressed(Prospect),
    /// Its number is on a do-not-call list: cancelled with reason `dnc` instead.
    Blocked(Prospect, &'static str),
}

/// Claims a prospect with `event` (`Dialing` or `Sending`), the last check before contact:
/// a suppressed number (or one on a do-not-call list) is cancelled, never claimed.
pub(super) fn claim_in(
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

impl SqliteStore {
    pub(super) fn add_prospects_consented_impl(
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

    pub(super) fn list_prospects_impl(
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

    pub(super) fn record_prospect_event_impl(
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

    pub(super) fn due_prospects_impl(
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

    pub(super) fn defer_prospect_impl(
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

    pub(super) fn cancel_prospect_impl(
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
}
