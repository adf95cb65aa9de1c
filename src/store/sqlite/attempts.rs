//! The `attempts` table of the SQLite store: beginning a call (with its audit), finishing it,
//! and the reads over live and past attempts. It must not change a campaign's status except
//! through the shared completion check.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde_json::Value;

use super::campaigns::{campaign_seq, campaign_seq_status, complete_if_done_in};
use super::prospects::{Claim, apply_event_in, claim_in};
use super::rows::{ATTEMPT_COLUMNS, ATTEMPT_FROM, attempt_row, campaign_page, rows_of};
use super::{SqliteStore, events};
use crate::campaign::{AmdResult, CampaignStatus, Outcome, ProspectEvent};
use crate::store::ids::new_id;
use crate::store::{Attempt, AttemptResult, Page, PageRequest, Prospect, StoreError};

impl SqliteStore {
    pub(super) fn begin_attempt_audited_impl(
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

    pub(super) fn finish_attempt_impl(
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

    pub(super) fn live_attempts_impl(&self) -> Result<Vec<Attempt>, StoreError> {
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

    pub(super) fn list_attempts_impl(
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

    pub(super) fn attempts_since_impl(&self, since_ms: i64) -> Result<Vec<Attempt>, StoreError> {
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

    pub(super) fn live_answers_since_impl(
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
}
