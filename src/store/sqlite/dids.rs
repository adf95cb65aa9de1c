//! The `dids` table of the SQLite store: adding, listing and updating caller-ID numbers and
//! their health. It must not touch any other table.

use rusqlite::{TransactionBehavior, params};

use super::rows::{DID_COLUMNS, did_row, page};
use super::{Inner, SqliteStore};
use crate::store::ids::new_id;
use crate::store::{Did, DidState, DidUpdate, Page, PageRequest, StoreError};

impl SqliteStore {
    pub(super) fn update_did_impl(&self, number: &str, u: &DidUpdate) -> Result<(), StoreError> {
        let inner = self.lock();
        let n = inner
            .conn
            .prepare_cached(
                "UPDATE dids SET state = ?2, health_score = ?3, calls_placed = ?4, \
                 calls_answered = ?5, cooling_until = ?6, last_used_at = ?7 WHERE number = ?1",
            )?
            .execute(params![
                number,
                u.state.as_str(),
                u.health_score,
                u.placed as i64,
                u.answered as i64,
                u.cooling_until_ms,
                u.last_used_at_ms
            ])?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "caller ID",
                id: number.to_string(),
            });
        }
        Ok(())
    }

    pub(super) fn add_dids_impl(
        &self,
        numbers: &[String],
        now_ms: i64,
    ) -> Result<Vec<Did>, StoreError> {
        let mut guard = self.lock();
        let Inner { conn, rng } = &mut *guard;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut added = Vec::new();
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO dids (id, number, state, health_score, created_at) \
                 VALUES (?1, ?2, 'active', 100.0, ?3) ON CONFLICT (number) DO NOTHING",
            )?;
            for number in numbers {
                let id = new_id(rng, "did");
                if insert.execute(params![id, number, now_ms])? == 1 {
                    added.push(Did {
                        id,
                        number: number.clone(),
                        state: DidState::Active,
                        health_score: 100.0,
                        calls_placed: 0,
                        calls_answered: 0,
                        cooling_until_ms: None,
                        last_used_at_ms: None,
                        created_at_ms: now_ms,
                    });
                }
            }
        }
        tx.commit()?;
        Ok(added)
    }

    pub(super) fn list_dids_impl(
        &self,
        state: Option<DidState>,
        req: &PageRequest,
    ) -> Result<Page<Did>, StoreError> {
        let inner = self.read();
        let mut stmt = inner.conn.prepare_cached(&format!(
            "SELECT {DID_COLUMNS} FROM dids WHERE seq > ?1 AND (?2 IS NULL OR state = ?2) \
             ORDER BY seq LIMIT ?3"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    req.after.unwrap_or(0),
                    state.map(DidState::as_str),
                    i64::from(req.limit) + 1
                ],
                did_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(rows, req.limit))
    }
}
