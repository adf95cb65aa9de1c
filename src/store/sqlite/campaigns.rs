//! The `campaigns` table of the SQLite store: creating, reading and transitioning campaigns,
//! their counters and their completion. Per-prospect work lives in `prospects`, calls in
//! `attempts`; this file must not change a prospect row.

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde_json::Value;

use super::rows::{CAMPAIGN_COLUMNS, COUNTER_COLUMNS, campaign_row, counters_row, page};
use super::{SqliteStore, events};
use crate::campaign::prospect::ProspectState;
use crate::campaign::status;
use crate::campaign::{Action, CampaignStatus, Counters, ProspectStatus};
use crate::store::ids::new_id;
use crate::store::{Campaign, NewCampaign, Page, PageRequest, StoreError};

/// The row position of a campaign.
pub(super) fn campaign_seq(conn: &Connection, id: &str) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT seq FROM campaigns WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| campaign_not_found(id))
}

/// `completed` for a dialing campaign with nothing queued or in progress.
pub(super) fn complete_if_done_in(
    tx: &Transaction,
    campaign_seq: i64,
    now_ms: i64,
) -> rusqlite::Result<bool> {
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

/// Adds `d` to the campaign's counters.
pub(super) fn bump_counters(
    tx: &Transaction,
    campaign_seq: i64,
    d: &Counters,
) -> rusqlite::Result<()> {
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
pub(super) fn campaign_seq_status(
    tx: &Transaction,
    id: &str,
) -> Result<(i64, CampaignStatus), StoreError> {
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
    pub(super) fn create_campaign_impl(
        &self,
        new: NewCampaign,
        now_ms: i64,
    ) -> Result<Campaign, StoreError> {
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

    pub(super) fn get_campaign_impl(&self, id: &str) -> Result<Campaign, StoreError> {
        let inner = self.read();
        get_campaign_in(&inner.conn, id)
    }

    pub(super) fn list_campaigns_impl(
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

    pub(super) fn transition_campaign_impl(
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

    pub(super) fn complete_if_done_impl(
        &self,
        campaign_id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (seq, _) = campaign_seq_status(&tx, campaign_id)?;
        let done = complete_if_done_in(&tx, seq, now_ms)?;
        tx.commit()?;
        Ok(done)
    }

    pub(super) fn stats_impl(&self, campaign_id: &str) -> Result<Counters, StoreError> {
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
}
