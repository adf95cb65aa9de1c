//! The `nodes` table of the SQLite store: the one engine node's heartbeat and the node list.
//! It must not touch any other table.

use rusqlite::params;

use super::SqliteStore;
use crate::store::{NodeStatus, StoreError};

impl SqliteStore {
    pub(super) fn heartbeat_impl(&self, b: &NodeStatus) -> Result<u64, StoreError> {
        let inner = self.lock();
        inner
            .conn
            .prepare_cached(
                "INSERT INTO nodes (id, started_at, heartbeat_at, calls, calls_placed, cps) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO UPDATE SET \
                 started_at = ?2, heartbeat_at = ?3, calls = ?4, calls_placed = ?5, cps = ?6",
            )?
            .execute(params![
                b.id,
                b.started_at_ms,
                b.heartbeat_at_ms,
                b.calls as i64,
                b.calls_placed as i64,
                b.cps
            ])?;
        Ok(0)
    }

    pub(super) fn list_nodes_impl(&self) -> Result<Vec<NodeStatus>, StoreError> {
        let inner = self.read();
        let rows = inner
            .conn
            .prepare_cached(
                "SELECT id, started_at, heartbeat_at, calls, calls_placed, cps FROM nodes \
                 ORDER BY id",
            )?
            .query_map([], |r| {
                Ok(NodeStatus {
                    id: r.get(0)?,
                    started_at_ms: r.get(1)?,
                    heartbeat_at_ms: r.get(2)?,
                    calls: r.get::<_, i64>(3)?.max(0) as u64,
                    calls_placed: r.get::<_, i64>(4)?.max(0) as u64,
                    cps: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}
