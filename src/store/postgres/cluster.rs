//! What several nodes share beyond the tables of one node: the `nodes` heartbeat rows and the
//! leases (a heartbeat renews this node's attempts; an attempt whose lease ran out belongs to
//! a dead node and is ended by whichever node beats next, as `failed` / `node_lost`, never
//! re-dialled: its INVITE may have reached the trunk). The same heartbeat renews the node's
//! claims on webhook deliveries. The shared token buckets are [`super::pacing`]'s.

use super::rows::{ATTEMPT_COLUMNS, ATTEMPT_FROM, attempt_row, items};
use super::{PgStore, claims, compliance};
use crate::campaign::{Outcome, ProspectEvent};
use crate::store::{AttemptResult, NodeStatus, StoreError};

impl PgStore {
    /// Writes this node's row, renews its leases, ends the attempts of dead nodes (lease run
    /// out) and reloads the DNC lists if another node imported one. Returns how many attempts
    /// of dead nodes it ended.
    pub(super) fn heartbeat_impl(&self, beat: &NodeStatus) -> Result<u64, StoreError> {
        let now_ms = beat.heartbeat_at_ms;
        let until = now_ms + self.cluster.lease_ms;
        self.write(|tx| {
            tx.exec(
                "INSERT INTO nodes (id, started_at, heartbeat_at, calls, calls_placed, cps) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET \
                 started_at = $2, heartbeat_at = $3, calls = $4, calls_placed = $5, cps = $6",
                &[
                    &beat.id,
                    &beat.started_at_ms,
                    &now_ms,
                    &(beat.calls as i64),
                    &(beat.calls_placed as i64),
                    &beat.cps,
                ],
            )?;
            tx.exec(
                "UPDATE attempts SET lease_until = $2 WHERE node_id = $1 AND ended_at IS NULL",
                &[&beat.id, &until],
            )?;
            tx.exec(
                "UPDATE prospects SET lease_until = $2 WHERE lease_node = $1 \
                 AND status = 'queued' AND lease_until > $3",
                &[&beat.id, &until, &now_ms],
            )?;
            // The webhook deliveries this node is posting stay its own while it lives.
            tx.exec(
                "UPDATE webhook_outbox SET claim_until = $2 WHERE claim_node = $1 \
                 AND state = 'pending' AND claim_until > $3",
                &[&beat.id, &until, &now_ms],
            )?;
            Ok(())
        })?;
        let reaped = self.reap_expired(now_ms)?;
        compliance::reload_dnc(self, false)?;
        Ok(reaped)
    }

    /// Ends every live attempt whose lease ran out (its node stopped beating): `failed`,
    /// cause `node_lost`, final (the call may have been placed; it is never placed again).
    fn reap_expired(&self, now_ms: i64) -> Result<u64, StoreError> {
        let expired = self.read(|tx| {
            let rows = tx.query(
                &format!(
                    "SELECT {ATTEMPT_COLUMNS} FROM {ATTEMPT_FROM} WHERE a.ended_at IS NULL \
                     AND a.lease_until IS NOT NULL AND a.lease_until < $1 ORDER BY a.seq"
                ),
                &[&now_ms],
            )?;
            items(&rows, attempt_row)
        })?;
        let mut ended = 0;
        for a in expired {
            let result = AttemptResult {
                outcome: Some(Outcome::Failed),
                cause: Some("node_lost".into()),
                ..AttemptResult::default()
            };
            let event = ProspectEvent::Finished {
                outcome: Outcome::Failed,
                amd: None,
            };
            match self.write(|tx| claims::finish_attempt_in(tx, &a.id, &result, &event, now_ms)) {
                Ok(_) => ended += 1,
                // Ended meanwhile (its node was only slow, or another node reaped it).
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ended)
    }

    pub(super) fn list_nodes_impl(&self) -> Result<Vec<NodeStatus>, StoreError> {
        self.read(|tx| {
            tx.query(
                "SELECT id, started_at, heartbeat_at, calls, calls_placed, cps FROM nodes \
                 ORDER BY id",
                &[],
            )?
            .iter()
            .map(|r| {
                Ok(NodeStatus {
                    id: r.try_get(0)?,
                    started_at_ms: r.try_get(1)?,
                    heartbeat_at_ms: r.try_get(2)?,
                    calls: r.try_get::<_, i64>(3)?.max(0) as u64,
                    calls_placed: r.try_get::<_, i64>(4)?.max(0) as u64,
                    cps: r.try_get(5)?,
                })
            })
            .collect()
        })
    }
}
