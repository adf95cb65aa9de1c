//! What several nodes share beyond the tables of one node: the `nodes` heartbeat rows, the
//! leases (a heartbeat renews this node's attempts; an attempt whose lease ran out belongs to
//! a dead node and is ended by whichever node beats next, as `failed` / `node_lost`, never
//! re-dialled: its INVITE may have reached the trunk), and the token buckets that hold the
//! campaign's `calls_per_second` and the trunk's calls per second across every node.

use super::rows::{ATTEMPT_COLUMNS, ATTEMPT_FROM, attempt_row, items};
use super::{PgStore, Tx, claims, compliance};
use crate::campaign::{Outcome, ProspectEvent};
use crate::store::{AttemptResult, NodeStatus, StoreError};

/// Who this node is, and its limits that hold across nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSettings {
    /// `trunx serve --node-id` (default: the host name).
    pub node_id: String,
    /// How long a lease lasts without a heartbeat renewing it.
    pub lease_ms: i64,
    /// The trunk's calls per second over every node (`trunk_max_cps`); `None`: unlimited.
    pub trunk_cps: Option<f64>,
    /// Whether `begin_attempt` takes a token from the campaign's shared bucket (its
    /// `calls_per_second`, default 1, over every node). Off for tools and store tests that
    /// write attempts at made-up times.
    pub shared_pacing: bool,
}

impl ClusterSettings {
    /// One node alone (tests, tools): its id and a 10 s lease.
    pub fn single(node_id: &str) -> ClusterSettings {
        ClusterSettings {
            node_id: node_id.to_string(),
            lease_ms: 10_000,
            trunk_cps: None,
            shared_pacing: false,
        }
    }
}

/// Takes one token from a bucket of `rate` tokens per second holding at most one token (calls
/// are spaced evenly: any one-second window holds at most `rate` + 1 starts); `Err(Paced)` with
/// the time of the next token when empty. `tokens`/`at` are the bucket's stored state.
fn take(tokens: Option<f64>, at: Option<i64>, rate: f64, now_ms: i64) -> Result<f64, i64> {
    let cap = 1.0;
    let elapsed = (now_ms - at.unwrap_or(now_ms)).max(0) as f64 / 1000.0;
    let have = (tokens.unwrap_or(cap) + elapsed * rate).min(cap);
    if have >= 1.0 - 1e-9 {
        Ok(have - 1.0)
    } else {
        Err(now_ms + (((1.0 - have) / rate) * 1000.0).ceil() as i64)
    }
}

/// The campaign's `calls_per_second` bucket, on its (already locked) row.
pub(super) fn take_campaign_token(tx: &mut Tx, seq: i64, now_ms: i64) -> Result<(), StoreError> {
    let row = tx.one(
        "SELECT mode, pace_tokens, pace_at FROM campaigns WHERE seq = $1",
        &[&seq],
    )?;
    let mode: String = row.get(0);
    let rate = serde_json::from_str::<serde_json::Value>(&mode)
        .ok()
        .and_then(|m| m.get("calls_per_second").and_then(|v| v.as_f64()))
        .unwrap_or(1.0);
    if rate <= 0.0 {
        return Ok(());
    }
    let left = take(row.get(1), row.get(2), rate, now_ms)
        .map_err(|until_ms| StoreError::Paced { until_ms })?;
    tx.exec(
        "UPDATE campaigns SET pace_tokens = $2, pace_at = $3 WHERE seq = $1",
        &[&seq, &left, &now_ms],
    )?;
    Ok(())
}

/// The trunk's bucket (one row, locked for the rest of the transaction).
pub(super) fn take_trunk_token(
    tx: &mut Tx,
    cluster: &ClusterSettings,
    now_ms: i64,
) -> Result<(), StoreError> {
    let Some(rate) = cluster.trunk_cps.filter(|r| *r > 0.0) else {
        return Ok(());
    };
    tx.exec(
        "INSERT INTO shared_pacing (key, tokens, at) VALUES ('trunk', 1, $1) \
         ON CONFLICT (key) DO NOTHING",
        &[&now_ms],
    )?;
    let row = tx.one(
        "SELECT tokens, at FROM shared_pacing WHERE key = 'trunk' FOR UPDATE",
        &[],
    )?;
    let left = take(row.get(0), row.get(1), rate, now_ms)
        .map_err(|until_ms| StoreError::Paced { until_ms })?;
    tx.exec(
        "UPDATE shared_pacing SET tokens = $1, at = $2 WHERE key = 'trunk'",
        &[&left, &now_ms],
    )?;
    Ok(())
}

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

#[cfg(test)]
mod tests {
    use super::take;

    #[test]
    fn the_bucket_spaces_calls_evenly() {
        // Full bucket: one call now, the next after 1/rate.
        let left = take(None, None, 4.0, 1_000).unwrap();
        assert!(left.abs() < 1e-9);
        assert_eq!(take(Some(left), Some(1_000), 4.0, 1_100), Err(1_250));
        assert!(take(Some(left), Some(1_000), 4.0, 1_250).is_ok());
        // Idle time never stores more than one call.
        let l = take(Some(0.0), Some(0), 4.0, 60_000).unwrap();
        assert!(l.abs() < 1e-9);
    }
}
