//! Campaigns, prospects and attempts on PostgreSQL: the dialer's side of the [`Store`] trait.
//! Same rules as SQLite; what differs is how several nodes share the work: `due_prospects`
//! leases what it returns to this node (`FOR UPDATE SKIP LOCKED`, so two nodes never read the
//! same prospects), and `begin_attempt_audited` refuses a prospect leased by another live node,
//! takes a token from the campaign's shared bucket (`StoreError::Paced` when empty) and stamps
//! the attempt with this node and its lease.

use serde_json::Value;

use super::rows::*;
use super::{PgStore, Tx, events, pacing};
use crate::campaign::prospect::{self, ProspectState};
use crate::campaign::status;
use crate::campaign::{
    Action, AmdResult, CampaignStatus, Counters, Outcome, ProspectEvent, ProspectStatus,
};
use crate::store::{
    ApiKey, Attempt, AttemptResult, Campaign, DNC_REASON, NO_CONSENT_REASON, NewCampaign, Page,
    PageRequest, Prospect, SUPPRESSED_REASON, StoreError,
};

impl PgStore {
    pub(super) fn create_api_key_impl(
        &self,
        name: &str,
        key_hash: &[u8; 32],
        now_ms: i64,
    ) -> Result<ApiKey, StoreError> {
        let id = self.new_id("key");
        self.write(|tx| {
            // One key name at a time, whatever node (the unique index is the last guard).
            tx.exec("LOCK TABLE api_keys IN SHARE ROW EXCLUSIVE MODE", &[])?;
            let taken: bool = tx
                .one(
                    "SELECT EXISTS(SELECT 1 FROM api_keys WHERE name = $1 AND revoked_at IS NULL)",
                    &[&name],
                )?
                .get(0);
            if taken {
                return Err(StoreError::Duplicate {
                    what: "API key name",
                    value: name.to_string(),
                });
            }
            tx.exec(
                "INSERT INTO api_keys (id, name, key_hash, created_at) VALUES ($1, $2, $3, $4)",
                &[&id, &name, &&key_hash[..], &now_ms],
            )?;
            Ok(())
        })?;
        Ok(ApiKey {
            id,
            name: name.to_string(),
            created_at_ms: now_ms,
            revoked_at_ms: None,
        })
    }

    pub(super) fn revoke_api_key_impl(
        &self,
        name_or_id: &str,
        now_ms: i64,
    ) -> Result<ApiKey, StoreError> {
        self.write(|tx| {
            let row = tx
                .opt(
                    "SELECT id, name, created_at, revoked_at FROM api_keys \
                     WHERE (id = $1 OR name = $1) AND revoked_at IS NULL FOR UPDATE",
                    &[&name_or_id],
                )?
                .ok_or_else(|| StoreError::NotFound {
                    what: "active API key",
                    id: name_or_id.to_string(),
                })?;
            let key = api_key_row(&row)?;
            tx.exec(
                "UPDATE api_keys SET revoked_at = $2 WHERE id = $1",
                &[&key.id, &now_ms],
            )?;
            Ok(ApiKey {
                revoked_at_ms: Some(now_ms),
                ..key
            })
        })
    }

    pub(super) fn list_api_keys_impl(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.read(|tx| {
            tx.query(
                "SELECT id, name, created_at, revoked_at FROM api_keys ORDER BY seq",
                &[],
            )?
            .iter()
            .map(api_key_row)
            .collect()
        })
    }

    pub(super) fn authenticate_impl(
        &self,
        key_hash: &[u8; 32],
    ) -> Result<Option<ApiKey>, StoreError> {
        self.read(|tx| {
            tx.opt(
                "SELECT id, name, created_at, revoked_at FROM api_keys \
                 WHERE key_hash = $1 AND revoked_at IS NULL",
                &[&&key_hash[..]],
            )?
            .as_ref()
            .map(api_key_row)
            .transpose()
        })
    }

    pub(super) fn create_campaign_impl(
        &self,
        new: NewCampaign,
        now_ms: i64,
    ) -> Result<Campaign, StoreError> {
        let id = self.new_id("camp");
        let name = new.name.clone().unwrap_or_else(|| id.clone());
        let caller_ids = serde_json::to_string(&new.caller_ids).unwrap_or_else(|_| "[]".into());
        self.write(|tx| {
            tx.exec(
                "INSERT INTO campaigns (id, name, channel, status, mode, caller_ids, \
                 caller_id_strategy, schedule, created_at, updated_at, webhook_url) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)",
                &[
                    &id,
                    &name,
                    &new.channel.as_str(),
                    &CampaignStatus::Created.as_str(),
                    &new.mode.to_string(),
                    &caller_ids,
                    &new.caller_id_strategy.to_string(),
                    &new.schedule.as_ref().map(Value::to_string),
                    &now_ms,
                    &new.webhook_url,
                ],
            )
        })?;
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
        self.read(|tx| get_campaign_in(tx, id))
    }

    pub(super) fn list_campaigns_impl(
        &self,
        status: Option<CampaignStatus>,
        req: &PageRequest,
    ) -> Result<Page<Campaign>, StoreError> {
        self.read(|tx| {
            let rows = tx.query(
                &format!(
                    "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE seq > $1 \
                     AND ($2::TEXT IS NULL OR status = $2) ORDER BY seq LIMIT $3"
                ),
                &[
                    &req.after.unwrap_or(0),
                    &status.map(CampaignStatus::as_str),
                    &(i64::from(req.limit) + 1),
                ],
            )?;
            Ok(page(decode(&rows, campaign_row)?, req.limit))
        })
    }

    pub(super) fn transition_campaign_impl(
        &self,
        id: &str,
        action: Action,
        now_ms: i64,
    ) -> Result<Campaign, StoreError> {
        self.write(|tx| {
            let (seq, current) = lock_campaign(tx, id)?;
            let next = status::apply(current, action).map_err(|e| StoreError::WrongStatus {
                action: e.action,
                current: e.current,
            })?;
            tx.exec(
                "UPDATE campaigns SET status = $2, updated_at = $3 WHERE seq = $1",
                &[&seq, &next.as_str(), &now_ms],
            )?;
            if next == CampaignStatus::Cancelled {
                let n = tx.exec(
                    "UPDATE prospects SET status = 'cancelled', next_attempt_at = NULL, \
                     updated_at = $2, lease_node = NULL, lease_until = NULL \
                     WHERE campaign_seq = $1 AND status = 'queued'",
                    &[&seq, &now_ms],
                )? as i64;
                let one = Counters::delta(
                    ProspectState::NEW,
                    ProspectState {
                        status: ProspectStatus::Cancelled,
                        last_outcome: None,
                    },
                );
                bump_counters(tx, seq, &one.scaled(n))?;
            }
            events::campaign_status(tx, seq, current, next, action.as_str(), now_ms)?;
            get_campaign_in(tx, id)
        })
    }

    pub(super) fn add_prospects_impl(
        &self,
        campaign_id: &str,
        phones: &[String],
        consents: &std::collections::BTreeMap<String, Value>,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let dnc = self.dnc_book();
        let ids: Vec<String> = phones.iter().map(|_| self.new_id("pro")).collect();
        self.write(|tx| {
            let (seq, current) = lock_campaign(tx, campaign_id)?;
            if !current.accepts_prospects() {
                return Err(StoreError::WrongStatus {
                    action: "add prospects to",
                    current,
                });
            }
            let mode: String = tx
                .one("SELECT mode FROM campaigns WHERE seq = $1", &[&seq])?
                .get(0);
            let require_consent = serde_json::from_str::<Value>(&mode)
                .ok()
                .and_then(|m| m.get("requireConsent").and_then(Value::as_bool))
                .unwrap_or(false);
            // Suppressed numbers in one query, not one per phone.
            let suppressed: std::collections::HashSet<String> = tx
                .query(
                    "SELECT phone FROM suppression WHERE phone = ANY($1)",
                    &[&phones],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            // One multi-row insert per chunk (10,000 single inserts would be 10,000 trips).
            let (mut queued, mut cancelled): (i64, i64) = (0, 0);
            for (chunk_ids, chunk) in ids.chunks(1000).zip(phones.chunks(1000)) {
                let mut v_id = Vec::with_capacity(chunk.len());
                let mut v_phone = Vec::with_capacity(chunk.len());
                let mut v_status = Vec::with_capacity(chunk.len());
                let mut v_reason: Vec<Option<&str>> = Vec::with_capacity(chunk.len());
                let mut v_consent: Vec<Option<String>> = Vec::with_capacity(chunk.len());
                for (id, phone) in chunk_ids.iter().zip(chunk) {
                    let consent = consents.get(phone);
                    let blocked = if suppressed.contains(phone) {
                        Some(SUPPRESSED_REASON)
                    } else if dnc.hit(phone).is_some() {
                        Some(DNC_REASON)
                    } else if require_consent && consent.is_none() {
                        Some(NO_CONSENT_REASON)
                    } else {
                        None
                    };
                    v_id.push(id.as_str());
                    v_phone.push(phone.as_str());
                    v_status.push(if blocked.is_some() {
                        ProspectStatus::Cancelled.as_str()
                    } else {
                        ProspectStatus::Queued.as_str()
                    });
                    v_reason.push(blocked);
                    v_consent.push(consent.map(Value::to_string));
                }
                let rows = tx.query(
                    "INSERT INTO prospects (id, campaign_seq, phone, status, wait_reason, \
                     created_at, updated_at, consent) \
                     SELECT i, $1, ph, st, wr, $2, $2, co FROM \
                     unnest($3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[]) \
                     WITH ORDINALITY AS u(i, ph, st, wr, co, n) ORDER BY n \
                     ON CONFLICT (campaign_seq, phone) DO NOTHING RETURNING status",
                    &[
                        &seq, &now_ms, &v_id, &v_phone, &v_status, &v_reason, &v_consent,
                    ],
                )?;
                for r in rows {
                    let st: &str = r.get(0);
                    if st == ProspectStatus::Queued.as_str() {
                        queued += 1;
                    } else {
                        cancelled += 1;
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
            bump_counters(tx, seq, &delta)?;
            Ok((queued + cancelled) as u64)
        })
    }

    pub(super) fn list_prospects_impl(
        &self,
        campaign_id: &str,
        req: &PageRequest,
    ) -> Result<Page<Prospect>, StoreError> {
        self.read(|tx| {
            let seq = campaign_seq(tx, campaign_id)?;
            let rows = tx.query(
                &format!(
                    "SELECT {PROSPECT_COLUMNS} FROM prospects p JOIN campaigns c \
                     ON c.seq = p.campaign_seq WHERE p.campaign_seq = $1 AND p.seq > $2 \
                     ORDER BY p.seq LIMIT $3"
                ),
                &[&seq, &req.after.unwrap_or(0), &(i64::from(req.limit) + 1)],
            )?;
            Ok(page(decode(&rows, prospect_row)?, req.limit))
        })
    }

    pub(super) fn record_prospect_event_impl(
        &self,
        campaign_id: &str,
        prospect_id: &str,
        event: &ProspectEvent,
        now_ms: i64,
    ) -> Result<Prospect, StoreError> {
        let dnc = self.dnc_book();
        self.write(|tx| {
            let (seq, current) = lock_campaign(tx, campaign_id)?;
            let claim = matches!(event, ProspectEvent::Dialing | ProspectEvent::Sending);
            if claim && current != CampaignStatus::Dialing {
                return Err(StoreError::WrongStatus {
                    action: "dial a prospect of",
                    current,
                });
            }
            if claim {
                match claim_in(tx, &dnc, seq, prospect_id, event, now_ms)? {
                    Claim::Claimed(_, p) => Ok(p),
                    Claim::Refused(e) => Err(e),
                }
            } else {
                Ok(apply_event_in(tx, seq, prospect_id, event, now_ms)?.1)
            }
        })
    }

    /// Due prospects, leased to this node: another node's `due_prospects` skips them until
    /// the lease ends (rows locked by a concurrent claim are skipped, never waited for).
    pub(super) fn due_prospects_impl(
        &self,
        campaign_id: &str,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<Prospect>, StoreError> {
        let node = self.cluster.node_id.as_str();
        let until = now_ms + self.cluster.lease_ms;
        self.write(|tx| {
            let seq = campaign_seq(tx, campaign_id)?;
            let rows = tx.query(
                &format!(
                    "WITH due AS (SELECT seq FROM prospects q WHERE q.campaign_seq = $1 \
                     AND q.status = 'queued' AND COALESCE(q.next_attempt_at, 0) <= $2 \
                     AND (q.lease_until IS NULL OR q.lease_until <= $2 OR q.lease_node = $4) \
                     AND NOT EXISTS (SELECT 1 FROM suppression s WHERE s.phone = q.phone) \
                     ORDER BY COALESCE(q.next_attempt_at, 0), q.seq LIMIT $3 \
                     FOR UPDATE SKIP LOCKED) \
                     UPDATE prospects p SET lease_node = $4, lease_until = $5 FROM due, campaigns c \
                     WHERE p.seq = due.seq AND c.seq = p.campaign_seq RETURNING {PROSPECT_COLUMNS}"
                ),
                &[&seq, &now_ms, &i64::from(limit), &node, &until],
            )?;
            let mut due = decode(&rows, prospect_row)?;
            due.sort_by_key(|(seq, p)| (p.next_attempt_at_ms.unwrap_or(0), *seq));
            Ok(due.into_iter().map(|(_, p)| p).collect())
        })
    }

    pub(super) fn defer_prospect_impl(
        &self,
        campaign_id: &str,
        prospect_id: &str,
        until_ms: i64,
        reason: &str,
        now_ms: i64,
    ) -> Result<Prospect, StoreError> {
        self.write(|tx| {
            let (seq, _) = lock_campaign(tx, campaign_id)?;
            let n = tx.exec(
                "UPDATE prospects SET next_attempt_at = $3, wait_reason = $4, updated_at = $5, \
                 lease_node = NULL, lease_until = NULL \
                 WHERE id = $1 AND campaign_seq = $2 AND status = 'queued'",
                &[&prospect_id, &seq, &until_ms, &reason, &now_ms],
            )?;
            let (_, p) = prospect_in(tx, seq, prospect_id)?;
            if n == 0 {
                return Err(StoreError::Prospect(prospect::ProspectTransitionError {
                    from: p.status,
                    event: "defer",
                }));
            }
            Ok(p)
        })
    }

    pub(super) fn begin_attempt_impl(
        &self,
        campaign_id: &str,
        prospect_id: &str,
        caller_id: &str,
        audit: serde_json::Map<String, Value>,
        now_ms: i64,
    ) -> Result<Attempt, StoreError> {
        let dnc = self.dnc_book();
        let id = self.new_id("att");
        let node = self.cluster.node_id.as_str();
        let lease_until = now_ms + self.cluster.lease_ms;
        self.write(|tx| {
            let mut audit = audit.clone();
            let (seq, current) = lock_campaign(tx, campaign_id)?;
            if current != CampaignStatus::Dialing {
                return Err(StoreError::WrongStatus {
                    action: "dial a prospect of",
                    current,
                });
            }
            // Leased by another node that is still alive: it dials this one.
            let lease: Option<(Option<String>, Option<i64>)> = tx
                .opt(
                    "SELECT lease_node, lease_until FROM prospects \
                     WHERE id = $1 AND campaign_seq = $2",
                    &[&prospect_id, &seq],
                )?
                .map(|r| (r.get(0), r.get(1)));
            if let Some((Some(owner), Some(until))) = lease
                && owner != node
                && until > now_ms
            {
                return Err(StoreError::Leased {
                    prospect_id: prospect_id.to_string(),
                    node: owner,
                });
            }
            super::did_limits::check_calls(tx, &self.cluster.did_limits, caller_id, now_ms)?;
            if self.cluster.shared_pacing {
                pacing::take_campaign_token(tx, seq, now_ms)?;
                pacing::take_trunk_token(tx, &self.cluster, now_ms)?;
            }
            let (pseq, p) =
                match claim_in(tx, &dnc, seq, prospect_id, &ProspectEvent::Dialing, now_ms)? {
                    Claim::Claimed(pseq, p) => (pseq, p),
                    Claim::Refused(e) => return Err(e),
                };
            audit.insert(
                "dnc".into(),
                serde_json::to_value(dnc.lists()).unwrap_or_default(),
            );
            audit.insert("suppression".into(), Value::from("clear"));
            audit.insert("node".into(), Value::from(node));
            let consent: Option<String> = tx
                .one("SELECT consent FROM prospects WHERE seq = $1", &[&pseq])?
                .get(0);
            audit.insert(
                "consent".into(),
                consent
                    .and_then(|c| serde_json::from_str(&c).ok())
                    .unwrap_or(Value::Null),
            );
            tx.exec(
                "INSERT INTO attempts (id, campaign_seq, prospect_seq, number, caller_id, \
                 started_at, audit, node_id, lease_until) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &id,
                    &seq,
                    &pseq,
                    &i64::from(p.attempts),
                    &caller_id,
                    &now_ms,
                    &Value::Object(audit).to_string(),
                    &node,
                    &lease_until,
                ],
            )?;
            tx.exec(
                "UPDATE prospects SET lease_node = NULL, lease_until = NULL WHERE seq = $1",
                &[&pseq],
            )?;
            events::attempt_started(tx, seq, &id, &p, caller_id, now_ms)?;
            Ok(Attempt {
                id: id.clone(),
                campaign_id: campaign_id.to_string(),
                prospect_id: p.id,
                phone: p.phone,
                number: p.attempts,
                caller_id: caller_id.to_string(),
                started_at_ms: now_ms,
                ended_at_ms: None,
                result: AttemptResult::default(),
            })
        })
    }

    pub(super) fn finish_attempt_impl(
        &self,
        attempt_id: &str,
        result: &AttemptResult,
        event: &ProspectEvent,
        now_ms: i64,
    ) -> Result<Prospect, StoreError> {
        self.write(|tx| finish_attempt_in(tx, attempt_id, result, event, now_ms))
    }

    /// This node's live attempts (another node's are its own until its lease runs out; then
    /// the heartbeat of any node ends them).
    pub(super) fn live_attempts_impl(&self) -> Result<Vec<Attempt>, StoreError> {
        let node = self.cluster.node_id.as_str();
        self.read(|tx| {
            let rows = tx.query(
                &format!(
                    "SELECT {ATTEMPT_COLUMNS} FROM {ATTEMPT_FROM} WHERE a.ended_at IS NULL \
                     AND (a.node_id = $1 OR a.node_id IS NULL) ORDER BY a.seq"
                ),
                &[&node],
            )?;
            items(&rows, attempt_row)
        })
    }

    pub(super) fn list_attempts_impl(
        &self,
        campaign_id: &str,
        req: &PageRequest,
    ) -> Result<Page<Attempt>, StoreError> {
        self.read(|tx| {
            let cseq = campaign_seq(tx, campaign_id)?;
            let rows = tx.query(
                &format!(
                    "SELECT {ATTEMPT_COLUMNS} FROM {ATTEMPT_FROM} WHERE a.campaign_seq = $1 \
                     AND a.seq > $2 ORDER BY a.seq LIMIT $3"
                ),
                &[&cseq, &req.after.unwrap_or(0), &(i64::from(req.limit) + 1)],
            )?;
            Ok(page(decode(&rows, attempt_row)?, req.limit))
        })
    }

    pub(super) fn attempts_since_impl(&self, since_ms: i64) -> Result<Vec<Attempt>, StoreError> {
        self.read(|tx| {
            let rows = tx.query(
                &format!(
                    "SELECT {ATTEMPT_COLUMNS} FROM {ATTEMPT_FROM} WHERE a.started_at >= $1 \
                     ORDER BY a.started_at, a.seq"
                ),
                &[&since_ms],
            )?;
            items(&rows, attempt_row)
        })
    }

    pub(super) fn complete_if_done_impl(
        &self,
        campaign_id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.write(|tx| {
            let (seq, _) = lock_campaign(tx, campaign_id)?;
            complete_if_done_in(tx, seq, now_ms)
        })
    }

    pub(super) fn stats_impl(&self, campaign_id: &str) -> Result<Counters, StoreError> {
        self.read(|tx| {
            let row = tx
                .opt(
                    &format!("SELECT {COUNTER_COLUMNS} FROM campaigns WHERE id = $1"),
                    &[&campaign_id],
                )?
                .ok_or_else(|| campaign_not_found(campaign_id))?;
            counters_row(&row)
        })
    }
}

/// Ends a live attempt with its result and applies `event` (a retry becomes final in a
/// cancelled campaign), in the caller's transaction.
pub(super) fn finish_attempt_in(
    tx: &mut Tx,
    attempt_id: &str,
    result: &AttemptResult,
    event: &ProspectEvent,
    now_ms: i64,
) -> Result<Prospect, StoreError> {
    let live = tx.opt(
        "SELECT a.campaign_seq, p.id FROM attempts a JOIN prospects p ON p.seq = a.prospect_seq \
         WHERE a.id = $1 AND a.ended_at IS NULL",
        &[&attempt_id],
    )?;
    let not_live = || StoreError::NotFound {
        what: "live attempt",
        id: attempt_id.to_string(),
    };
    let (cseq, prospect_id): (i64, String) =
        live.map(|r| (r.get(0), r.get(1))).ok_or_else(not_live)?;
    let status = lock_campaign_seq(tx, cseq)?;
    // Ended meanwhile by another node (its lease had run out): refused, never counted twice.
    let n = tx.exec(
        "UPDATE attempts SET ended_at = $2, outcome = $3, cause = $4, sip_status = $5, \
         sip_call_id = $6, answered_ms = $7, amd_result = $8, amd_cause = $9, amd_ms = $10, \
         machine_end = $11, playback_start_ms = $12, played_ms = $13, talk_ms = $14, \
         agent_connected_ms = $15, agent_talk_ms = $16, agent_reconnects = $17, \
         agent_end = $18, abandoned = $19, lease_until = NULL \
         WHERE id = $1 AND ended_at IS NULL",
        &[
            &attempt_id,
            &now_ms,
            &result.outcome.map(Outcome::as_str),
            &result.cause,
            &result.sip_status.map(i64::from),
            &result.sip_call_id,
            &result.answered_ms,
            &result.amd_result.map(AmdResult::as_str),
            &result.amd_cause,
            &result.amd_ms,
            &result.machine_end,
            &result.playback_start_ms,
            &result.played_ms,
            &result.talk_ms,
            &result.agent_connected_ms,
            &result.agent_talk_ms,
            &result.agent_reconnects,
            &result.agent_end,
            &result.abandoned,
        ],
    )?;
    if n == 0 {
        return Err(not_live());
    }
    let event = match (*event, status) {
        (ProspectEvent::RetryLater { outcome, amd, .. }, s) if s.is_terminal() => {
            ProspectEvent::Finished { outcome, amd }
        }
        (e, _) => e,
    };
    let (_, p) = apply_event_in(tx, cseq, &prospect_id, &event, now_ms)?;
    events::attempt_ended(tx, cseq, attempt_id, &p, result, now_ms)?;
    complete_if_done_in(tx, cseq, now_ms)?;
    Ok(p)
}
