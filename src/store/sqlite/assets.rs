//! The `audio_assets` table of the SQLite store: storing and reading uploaded audio. It must
//! not touch any other table.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::SqliteStore;
use crate::store::ids::new_id;
use crate::store::{AudioAsset, Store, StoreError};

impl SqliteStore {
    pub(super) fn create_audio_impl(
        &self,
        name: &str,
        content_type: &str,
        bytes: &[u8],
        duration_seconds: f64,
        now_ms: i64,
    ) -> Result<AudioAsset, StoreError> {
        let mut inner = self.lock();
        let id = new_id(&mut inner.rng, "aud");
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO audio_assets (id, name, content_type, size_bytes, duration_seconds, \
             data, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                name,
                content_type,
                bytes.len() as i64,
                duration_seconds,
                bytes,
                now_ms
            ],
        )?;
        tx.commit()?;
        Ok(AudioAsset {
            id,
            name: name.to_string(),
            content_type: content_type.to_string(),
            size_bytes: bytes.len() as u64,
            duration_seconds,
            created_at_ms: now_ms,
        })
    }

    pub(super) fn get_audio_impl(&self, id: &str) -> Result<AudioAsset, StoreError> {
        let inner = self.read();
        inner
            .conn
            .prepare_cached(
                "SELECT id, name, content_type, size_bytes, duration_seconds, created_at \
                 FROM audio_assets WHERE id = ?1",
            )?
            .query_row([id], |r| {
                Ok(AudioAsset {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    content_type: r.get(2)?,
                    size_bytes: r.get::<_, i64>(3)?.max(0) as u64,
                    duration_seconds: r.get(4)?,
                    created_at_ms: r.get(5)?,
                })
            })
            .optional()?
            .ok_or_else(|| StoreError::NotFound {
                what: "audio asset",
                id: id.to_string(),
            })
    }

    pub(super) fn get_audio_file_impl(
        &self,
        id: &str,
    ) -> Result<(AudioAsset, Vec<u8>), StoreError> {
        let meta = self.get_audio(id)?;
        let inner = self.read();
        let data: Vec<u8> = inner
            .conn
            .prepare_cached("SELECT data FROM audio_assets WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NotFound {
                what: "audio asset",
                id: id.to_string(),
            })?;
        Ok((meta, data))
    }
}
