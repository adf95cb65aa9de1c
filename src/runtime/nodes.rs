//! The node heartbeat: every second this node writes its row in the shared store (calls in
//! progress, calls placed, calls per second over the last beat). On PostgreSQL the same beat
//! renews the node's leases and ends the live attempts of nodes that stopped beating.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::{NodeStatus, Store};

/// How often the node beats.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

static PLACED: AtomicU64 = AtomicU64::new(0);

/// The dialer placed a call (counted for the heartbeat's `callsPlaced` and `cps`).
pub fn call_placed() {
    PLACED.fetch_add(1, Ordering::Relaxed);
}

/// Beats until `stop` is cancelled.
pub async fn run(node_id: String, store: Arc<dyn Store>, stop: CancellationToken) {
    let started_at_ms = crate::runtime::clock::wall_ms();
    let mut last = (started_at_ms, PLACED.load(Ordering::Relaxed));
    loop {
        let now = crate::runtime::clock::wall_ms();
        let placed = PLACED.load(Ordering::Relaxed);
        let secs = ((now - last.0).max(1) as f64) / 1000.0;
        let beat = NodeStatus {
            id: node_id.clone(),
            started_at_ms,
            heartbeat_at_ms: now,
            calls: super::metrics::global().active_calls.get().max(0) as u64,
            calls_placed: placed,
            cps: (placed - last.1) as f64 / secs,
        };
        last = (now, placed);
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.heartbeat(&beat)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::warn!(attempts = n, "ended the live attempts of a lost node"),
            Ok(Err(e)) => tracing::warn!(error = %e, "heartbeat not written"),
            Err(e) => tracing::warn!(error = %e, "heartbeat task failed"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(HEARTBEAT) => {}
        }
    }
}
