//! The `suppression` table of the SQLite store (the do-not-contact list): suppressing a
//! number (cancelling its queued prospects), lifting it, and checking and listing it, and the
//! cancel-with-a-reason step the do-not-call check shares. The do-not-call list versions live
//! in `compliance`, not here.

use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use super::SqliteStore;
use super::campaigns::{bump_counters, complete_if_done_in};
use super::rows::page;
use crate::campaign::prospect::{self, ProspectState};
use crate::campaign::{Counters, ProspectEvent, ProspectStatus};
use crate::store::{
    Page, PageRequest, Prospect, SUPPRESSED_REASON, StoreError, Suppressed, Suppression,
};

pub(super) fn is_suppressed_in(conn: &Connection, phone: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS(SELECT 1 FROM suppression WHERE phone = ?1)")?
        .query_row([phone], |r| r.get(0))
}

/// Cancels a queued prospect with `reason` (its `wait_reason`), counted in `cancelled`.
pub(super) fn cancel_with_reason_in(
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

/// Cancels a queued prospect whose number is suppressed: reason `suppressed`, counted in
/// `cancelled`.
pub(super) fn cancel_suppressed_in(
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

impl SqliteStore {
    pub(super) fn suppress_impl(
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

    pub(super) fn unsuppress_impl(&self, phone: &str) -> Result<bool, StoreError> {
        let inner = self.lock();
        let n = inner
            .conn
            .prepare_cached("DELETE FROM suppression WHERE phone = ?1")?
            .execute([phone])?;
        Ok(n == 1)
    }

    pub(super) fn is_suppressed_impl(&self, phone: &str) -> Result<bool, StoreError> {
        let inner = self.read();
        Ok(is_suppressed_in(&inner.conn, phone)?)
    }

    pub(super) fn list_suppressed_impl(
        &self,
        req: &PageRequest,
    ) -> Result<Page<Suppression>, StoreError> {
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
}
