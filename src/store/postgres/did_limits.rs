//! Per-DID limits that hold across nodes: a caller ID's hourly and daily call caps and an SMS
//! DID's hourly cap and least gap, counted from the shared `attempts` / `messages` rows inside
//! the claim's transaction (`begin_attempt`, `begin_message`), under a transaction-scoped
//! advisory lock per DID, so two nodes claiming with one DID queue behind each other and the
//! second sees the first's row. A DID over its limit refuses the claim with
//! [`StoreError::DidLimit`] (the transaction rolls back: no token, no row) carrying the uses
//! that were counted, so the node's own caller-ID book and pacer catch up with the others'.
//!
//! The node keeps its finer rules (reduced-health share of the hourly cap, the cooling rest,
//! SMS jitter); the store holds only the hard limits, the ones no two nodes may exceed
//! together. Lock order: campaign row, then DID, then the trunk bucket.
//!
//! Must not: run on SQLite (one node there: the node's own book is the whole truth).

use super::Tx;
use super::pacing::DidLimits;
use crate::store::StoreError;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Most uses read back per check (a day's cap is far below).
const MAX_ROWS: i64 = 10_000;
/// The advisory lock class of DID locks ("did" + 0).
const DID_LOCK_CLASS: i32 = 0x0064_6964;

/// A stable 32-bit key of the DID for `pg_advisory_xact_lock(class, key)`.
fn did_key(did: &str) -> i32 {
    let h = did.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    h as i32
}

fn lock_did(tx: &mut Tx, did: &str) -> Result<(), StoreError> {
    tx.query(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&DID_LOCK_CLASS, &did_key(did)],
    )?;
    Ok(())
}

/// When a rolling `window_ms` holding the sorted `times` (all inside it) admits one more use
/// under `cap`: `None` now, else the time the oldest use that must age out does.
fn rolling_wait(times: &[i64], cap: u32, window_ms: i64, now_ms: i64) -> Option<i64> {
    let inside: Vec<i64> = times
        .iter()
        .copied()
        .filter(|t| now_ms - t < window_ms)
        .collect();
    let cap = cap as usize;
    if inside.len() < cap {
        return None;
    }
    Some(inside[inside.len() - cap] + window_ms)
}

fn refuse(did: &str, until_ms: i64, recent_ms: Vec<i64>) -> StoreError {
    StoreError::DidLimit {
        did: did.to_string(),
        until_ms,
        recent_ms,
    }
}

/// The caller ID's calls over every node in the last day, against its caps.
pub(super) fn check_calls(
    tx: &mut Tx,
    limits: &DidLimits,
    caller_id: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    if limits.calls_per_hour.is_none() && limits.calls_per_day.is_none() {
        return Ok(());
    }
    lock_did(tx, caller_id)?;
    let since = now_ms - DAY_MS;
    // The common case, under both caps: two counts off the index, no rows read back.
    let counts = tx.one(
        "SELECT COUNT(*) FILTER (WHERE started_at > $3), COUNT(*) FROM attempts \
         WHERE caller_id = $1 AND started_at > $2",
        &[&caller_id, &since, &(now_ms - HOUR_MS)],
    )?;
    let under = |n: i64, cap: Option<u32>| cap.is_none_or(|c| n < i64::from(c));
    if under(counts.get(0), limits.calls_per_hour) && under(counts.get(1), limits.calls_per_day) {
        return Ok(());
    }
    let times: Vec<i64> = tx
        .query(
            "SELECT started_at FROM attempts WHERE caller_id = $1 AND started_at > $2 \
             ORDER BY started_at DESC LIMIT $3",
            &[&caller_id, &since, &MAX_ROWS],
        )?
        .iter()
        .rev()
        .map(|r| r.get(0))
        .collect();
    let hour = limits
        .calls_per_hour
        .and_then(|cap| rolling_wait(&times, cap, HOUR_MS, now_ms));
    let day = limits
        .calls_per_day
        .and_then(|cap| rolling_wait(&times, cap, DAY_MS, now_ms));
    match hour.max(day) {
        None => Ok(()),
        Some(until) => Err(refuse(caller_id, until, times)),
    }
}

/// The DID's texts over every node in the last hour, against its hourly cap and least gap.
pub(super) fn check_texts(
    tx: &mut Tx,
    limits: &DidLimits,
    did: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    if limits.sms_per_hour.is_none() && limits.sms_min_gap_ms.is_none() {
        return Ok(());
    }
    lock_did(tx, did)?;
    let since = now_ms - HOUR_MS;
    let counts = tx.one(
        "SELECT COUNT(*), COALESCE(MAX(created_at), 0)::BIGINT FROM messages \
         WHERE did = $1 AND created_at > $2",
        &[&did, &since],
    )?;
    let (n, last): (i64, i64) = (counts.get(0), counts.get(1));
    let under_cap = limits.sms_per_hour.is_none_or(|c| n < i64::from(c));
    let gap_kept = n == 0 || limits.sms_min_gap_ms.is_none_or(|g| now_ms - last >= g);
    if under_cap && gap_kept {
        return Ok(());
    }
    let times: Vec<i64> = tx
        .query(
            "SELECT created_at FROM messages WHERE did = $1 AND created_at > $2 \
             ORDER BY created_at DESC LIMIT $3",
            &[&did, &since, &MAX_ROWS],
        )?
        .iter()
        .rev()
        .map(|r| r.get(0))
        .collect();
    let cap = limits
        .sms_per_hour
        .and_then(|cap| rolling_wait(&times, cap, HOUR_MS, now_ms));
    let gap = match (limits.sms_min_gap_ms, times.last()) {
        (Some(gap), Some(last)) if now_ms - last < gap => Some(last + gap),
        _ => None,
    };
    match cap.max(gap) {
        None => Ok(()),
        Some(until) => Err(refuse(did, until, times)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rolling_window_admits_a_use_when_the_oldest_counted_one_ages_out() {
        assert_eq!(rolling_wait(&[], 2, HOUR_MS, 0), None);
        assert_eq!(rolling_wait(&[10], 2, HOUR_MS, 20), None);
        assert_eq!(rolling_wait(&[10, 15], 2, HOUR_MS, 20), Some(10 + HOUR_MS));
        assert_eq!(
            rolling_wait(&[10, 15, 18], 2, HOUR_MS, 20),
            Some(15 + HOUR_MS)
        );
        // Uses older than the window do not count.
        assert_eq!(rolling_wait(&[10, 15], 2, HOUR_MS, 10 + HOUR_MS), None);
        assert_ne!(did_key("+12125550100"), did_key("+12125550101"));
    }
}
