//! The `api_keys` table of the SQLite store: creating, revoking, listing and checking API
//! keys (by hash only). It must not touch any other table.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::SqliteStore;
use super::rows::api_key_row;
use crate::store::ids::new_id;
use crate::store::{ApiKey, StoreError};

impl SqliteStore {
    pub(super) fn create_api_key_impl(
        &self,
        name: &str,
        key_hash: &[u8; 32],
        now_ms: i64,
    ) -> Result<ApiKey, StoreError> {
        let mut inner = self.lock();
        let id = new_id(&mut inner.rng, "key");
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let taken: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM api_keys WHERE name = ?1 AND revoked_at IS NULL)",
            [name],
            |r| r.get(0),
        )?;
        if taken {
            return Err(StoreError::Duplicate {
                what: "API key name",
                value: name.to_string(),
            });
        }
        tx.execute(
            "INSERT INTO api_keys (id, name, key_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![id, name, &key_hash[..], now_ms],
        )?;
        tx.commit()?;
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
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let key = tx
            .query_row(
                "SELECT id, name, created_at, revoked_at FROM api_keys \
                 WHERE (id = ?1 OR name = ?1) AND revoked_at IS NULL",
                [name_or_id],
                api_key_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound {
                what: "active API key",
                id: name_or_id.to_string(),
            })?;
        tx.execute(
            "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1",
            params![key.id, now_ms],
        )?;
        tx.commit()?;
        Ok(ApiKey {
            revoked_at_ms: Some(now_ms),
            ..key
        })
    }

    pub(super) fn list_api_keys_impl(&self) -> Result<Vec<ApiKey>, StoreError> {
        let inner = self.read();
        let mut stmt = inner
            .conn
            .prepare_cached("SELECT id, name, created_at, revoked_at FROM api_keys ORDER BY seq")?;
        let rows = stmt.query_map([], api_key_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(super) fn authenticate_impl(
        &self,
        key_hash: &[u8; 32],
    ) -> Result<Option<ApiKey>, StoreError> {
        let inner = self.read();
        Ok(inner
            .conn
            .prepare_cached(
                "SELECT id, name, created_at, revoked_at FROM api_keys \
                 WHERE key_hash = ?1 AND revoked_at IS NULL",
            )?
            .query_row([&key_hash[..]], api_key_row)
            .optional()?)
    }
}
