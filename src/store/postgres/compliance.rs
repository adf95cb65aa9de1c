//! DNC list versions and the attempt audit on PostgreSQL. As on SQLite, an import writes its
//! numbers in chunks (their own transactions), then makes the version the one in force in a
//! short last transaction that cancels the queued prospects it holds. The in-memory book of
//! every node follows: the importing node swaps it at once, the others at their next heartbeat
//! (they compare the active version rows).

use std::sync::Arc;

use serde_json::Value;

use super::PgStore;
use super::rows::*;
use crate::campaign::ProspectStatus;
use crate::campaign::dnc::DncSet;
use crate::store::sqlite::compliance::DncBook;
use crate::store::{Attempt, DNC_REASON, DncImported, DncList, Page, PageRequest, StoreError};

/// Numbers written per transaction during an import.
const CHUNK: usize = 50_000;

/// Loads the DNC versions in force when they differ from the ones in memory (`force`: always),
/// first removing what an interrupted import left.
pub(super) fn reload_dnc(store: &PgStore, force: bool) -> Result<(), StoreError> {
    if force {
        store.write(|tx| {
            tx.exec(
                "DELETE FROM dnc_numbers WHERE version_seq IN \
                 (SELECT seq FROM dnc_versions WHERE NOT active AND count < 0)",
                &[],
            )?;
            tx.exec(
                "DELETE FROM dnc_versions WHERE NOT active AND count < 0",
                &[],
            )?;
            Ok(())
        })?;
    }
    let active: Vec<i64> = store.read(|tx| {
        Ok(tx
            .query(
                "SELECT seq FROM dnc_versions WHERE active ORDER BY list",
                &[],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
    })?;
    {
        let known = store.dnc_versions.lock().unwrap_or_else(|p| p.into_inner());
        if !force && *known == active {
            return Ok(());
        }
    }
    let lists = store.read(|tx| {
        let versions = tx.query(
            "SELECT seq, list, version, imported_at, count, source FROM dnc_versions \
             WHERE active ORDER BY list",
            &[],
        )?;
        let mut lists = Vec::new();
        for v in versions {
            let seq: i64 = v.get(0);
            let list = DncList {
                name: v.get(1),
                version: v.get::<_, i64>(2).clamp(0, i64::from(u32::MAX)) as u32,
                imported_at_ms: v.get(3),
                count: v.get::<_, i64>(4).max(0) as u64,
                source: v.get(5),
            };
            let numbers: Vec<u64> = tx
                .query(
                    "SELECT number FROM dnc_numbers WHERE version_seq = $1 ORDER BY number",
                    &[&seq],
                )?
                .iter()
                .map(|r| r.get::<_, i64>(0) as u64)
                .collect();
            lists.push((list, DncSet::from_sorted(numbers)));
        }
        Ok(lists)
    })?;
    *store.dnc.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(DncBook { lists });
    *store.dnc_versions.lock().unwrap_or_else(|p| p.into_inner()) = active;
    Ok(())
}

impl PgStore {
    pub(super) fn import_dnc_impl(
        &self,
        list: &str,
        numbers: &[u64],
        source: &str,
        now_ms: i64,
    ) -> Result<DncImported, StoreError> {
        // 1. The new version, not in force (`count` -1 marks it as an orphan until the end).
        let (vseq, version): (i64, i64) = self.write(|tx| {
            tx.exec("SELECT pg_advisory_xact_lock(hashtext($1)::BIGINT)", &[&list])?;
            let version: i64 = tx
                .one(
                    "SELECT COALESCE(MAX(version), 0)::BIGINT + 1 FROM dnc_versions WHERE list = $1",
                    &[&list],
                )?
                .get(0);
            let vseq: i64 = tx
                .one(
                    "INSERT INTO dnc_versions (list, version, imported_at, count, source, active) \
                     VALUES ($1, $2, $3, -1, $4, FALSE) RETURNING seq",
                    &[&list, &version, &now_ms, &source],
                )?
                .get(0);
            Ok((vseq, version))
        })?;
        // 2. The numbers, in chunks.
        for chunk in numbers.chunks(CHUNK) {
            let values: Vec<i64> = chunk.iter().map(|n| *n as i64).collect();
            self.write(|tx| {
                tx.exec(
                    "INSERT INTO dnc_numbers (version_seq, number) SELECT $1, unnest($2::BIGINT[]) \
                     ON CONFLICT DO NOTHING",
                    &[&vseq, &values],
                )
            })?;
        }
        let set = DncSet::from_sorted(numbers.to_vec());
        let listed = DncList {
            name: list.to_string(),
            version: version.clamp(0, i64::from(u32::MAX)) as u32,
            imported_at_ms: now_ms,
            count: numbers.len() as u64,
            source: source.to_string(),
        };
        // 3. In force; queued prospects on the list cancelled.
        let (old, cancelled) = self.write(|tx| {
            let old: Option<i64> = tx
                .opt(
                    "SELECT seq FROM dnc_versions WHERE list = $1 AND active",
                    &[&list],
                )?
                .map(|r| r.get(0));
            tx.exec(
                "UPDATE dnc_versions SET active = FALSE WHERE list = $1 AND active",
                &[&list],
            )?;
            tx.exec(
                "UPDATE dnc_versions SET active = TRUE, count = $2 WHERE seq = $1",
                &[&vseq, &(numbers.len() as i64)],
            )?;
            let queued: Vec<(i64, String, String)> = tx
                .query(
                    "SELECT campaign_seq, id, phone FROM prospects WHERE status = $1 ORDER BY seq",
                    &[&ProspectStatus::Queued.as_str()],
                )?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .filter(|(_, _, phone): &(i64, String, String)| set.contains_phone(phone))
                .collect();
            let mut campaigns: Vec<i64> = queued.iter().map(|q| q.0).collect();
            campaigns.sort_unstable();
            campaigns.dedup();
            for c in &campaigns {
                lock_campaign_seq(tx, *c)?;
            }
            let mut cancelled = 0u64;
            for (cseq, pid, _) in &queued {
                let (pseq, p) = prospect_in(tx, *cseq, pid)?;
                if p.status != ProspectStatus::Queued {
                    continue;
                }
                cancel_with_reason_in(tx, *cseq, pseq, p, DNC_REASON, now_ms)?;
                cancelled += 1;
            }
            for c in campaigns {
                complete_if_done_in(tx, c, now_ms)?;
            }
            Ok((old, cancelled))
        })?;
        {
            let mut guard = self.dnc.write().unwrap_or_else(|p| p.into_inner());
            let mut lists: Vec<(DncList, DncSet)> = guard
                .lists
                .iter()
                .filter(|(l, _)| l.name != list)
                .map(|(l, s)| (l.clone(), s.clone()))
                .collect();
            lists.push((listed.clone(), set));
            lists.sort_by(|a, b| a.0.name.cmp(&b.0.name));
            *guard = Arc::new(DncBook { lists });
        }
        // The version rows in memory now match the database (no reload at the next beat).
        let _ = self
            .read(|tx| {
                Ok(tx
                    .query(
                        "SELECT seq FROM dnc_versions WHERE active ORDER BY list",
                        &[],
                    )?
                    .iter()
                    .map(|r| r.get(0))
                    .collect::<Vec<i64>>())
            })
            .map(|v| *self.dnc_versions.lock().unwrap_or_else(|p| p.into_inner()) = v);
        // 4. The retired version's numbers go; its row stays for the audit trail.
        if let Some(old) = old {
            self.write(|tx| tx.exec("DELETE FROM dnc_numbers WHERE version_seq = $1", &[&old]))?;
        }
        Ok(DncImported {
            list: listed,
            prospects_cancelled: cancelled,
        })
    }

    pub(super) fn attempt_audit_impl(
        &self,
        attempt_id: &str,
    ) -> Result<(Attempt, Value), StoreError> {
        self.read(|tx| {
            let row = tx
                .opt(
                    &format!(
                        "SELECT {ATTEMPT_COLUMNS}, a.audit FROM {ATTEMPT_FROM} WHERE a.id = $1"
                    ),
                    &[&attempt_id],
                )?
                .ok_or_else(|| StoreError::NotFound {
                    what: "attempt",
                    id: attempt_id.to_string(),
                })?;
            let (_, a) = attempt_row(&row)?;
            let audit = with_abandoned(audit_of(row.try_get(26)?), a.result.abandoned);
            Ok((a, audit))
        })
    }

    pub(super) fn campaign_audit_impl(
        &self,
        campaign_id: &str,
        req: &PageRequest,
    ) -> Result<Page<(Attempt, Value)>, StoreError> {
        self.read(|tx| {
            let cseq = campaign_seq(tx, campaign_id)?;
            let rows = tx.query(
                &format!(
                    "SELECT {ATTEMPT_COLUMNS}, a.audit FROM {ATTEMPT_FROM} \
                     WHERE a.campaign_seq = $1 AND a.seq > $2 ORDER BY a.seq LIMIT $3"
                ),
                &[&cseq, &req.after.unwrap_or(0), &(i64::from(req.limit) + 1)],
            )?;
            let rows = decode(&rows, |r| {
                let (seq, a) = attempt_row(r)?;
                let audit = with_abandoned(audit_of(r.try_get(26)?), a.result.abandoned);
                Ok((seq, (a, audit)))
            })?;
            Ok(page(rows, req.limit))
        })
    }
}

fn audit_of(text: Option<String>) -> Value {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| Value::Object(Default::default()))
}

fn with_abandoned(mut audit: Value, abandoned: Option<bool>) -> Value {
    if let (Value::Object(m), Some(a)) = (&mut audit, abandoned) {
        m.insert("abandoned".into(), Value::Bool(a));
    }
    audit
}
