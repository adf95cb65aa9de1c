//! The limits that hold across nodes and the token buckets that enforce them in the claim's
//! transaction: the campaign's `calls_per_second` (on its `campaigns` row) and the trunk's
//! calls per second (the `shared_pacing` row). It must not know about leases or heartbeats
//! (that is [`super::cluster`]'s), so a claim can take a token without importing them.

use super::Tx;
use crate::store::StoreError;

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
    /// Per-DID limits counted over every node (see [`super::did_limits`]); all `None` in
    /// [`ClusterSettings::single`].
    pub did_limits: DidLimits,
}

/// A DID's limits that hold across nodes: checked in the claim's transaction against the
/// shared `attempts` / `messages` rows. `None`: not checked by the store.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DidLimits {
    /// Calls presenting one caller ID in any rolling hour (`max_calls_per_hour`).
    pub calls_per_hour: Option<u32>,
    /// Calls presenting one caller ID in any rolling 24 h (`max_calls_per_day`).
    pub calls_per_day: Option<u32>,
    /// Texts from one DID in any rolling hour (`sms_did_per_hour`).
    pub sms_per_hour: Option<u32>,
    /// Least time between two texts of one DID (`sms_min_gap`, without the jitter).
    pub sms_min_gap_ms: Option<i64>,
}

impl ClusterSettings {
    /// One node alone (tests, tools): its id and a 10 s lease.
    pub fn single(node_id: &str) -> ClusterSettings {
        ClusterSettings {
            node_id: node_id.to_string(),
            lease_ms: 10_000,
            trunk_cps: None,
            shared_pacing: false,
            did_limits: DidLimits::default(),
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
