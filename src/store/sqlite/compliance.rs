//! The compliance tables of the SQLite store: do-not-call list versions (persisted as `u64`
//! numbers in a WITHOUT ROWID table, checked against an in-memory [`DncSet`] per list) and the
//! audit record of each attempt.
//!
//! A DNC import writes its numbers in chunks of [`CHUNK`] rows, each its own transaction, so
//! the dialer's writes are never held up for the whole import; the new version becomes the one
//! in force in a last, short transaction that also cancels the queued prospects it holds. The
//! previous version's numbers are then deleted in chunks (its row stays, for the audit).

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::Value;

use super::SqliteStore;
use super::campaigns::{campaign_seq, complete_if_done_in};
use super::rows::prospect_in;
use super::rows::{ATTEMPT_COLUMNS, ATTEMPT_FROM, attempt_row, campaign_page};
use super::suppression::cancel_with_reason_in;
use crate::campaign::ProspectStatus;
use crate::campaign::dnc::DncSet;
use crate::store::{Attempt, DNC_REASON, DncImported, DncList, Page, PageRequest, StoreError};

/// Numbers written per transaction during an import.
const CHUNK: usize = 250_000;

/// The DNC list versions in force and their sets.
#[derive(Debug, Default)]
pub(crate) struct DncBook {
    pub(crate) lists: Vec<(DncList, DncSet)>,
}

impl DncBook {
    /// The first list holding an E.164 number.
    pub(crate) fn hit(&self, phone: &str) -> Option<&DncList> {
        let n = crate::campaign::dnc::e164_value(phone)?;
        self.lists
            .iter()
            .find(|(_, set)| set.contains(n))
            .map(|(l, _)| l)
    }

    pub(crate) fn lists(&self) -> Vec<DncList> {
        self.lists.iter().map(|(l, _)| l.clone()).collect()
    }
}

fn list_row(row: &rusqlite::Row) -> rusqlite::Result<(i64, DncList)> {
    Ok((
        row.get(0)?,
        DncList {
            name: row.get(1)?,
            version: row.get(2)?,
            imported_at_ms: row.get(3)?,
            count: row.get::<_, i64>(4)? as u64,
            source: row.get(5)?,
        },
    ))
}

/// Removes what an interrupted import left (a version never made active), then loads every
/// version in force.
pub(super) fn load_dnc(conn: &mut Connection) -> Result<DncBook, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Versions never activated (an import interrupted before its last step).
    let orphans: Vec<i64> = tx
        .prepare("SELECT seq FROM dnc_versions WHERE active = 0 AND count < 0")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for seq in orphans {
        tx.execute("DELETE FROM dnc_numbers WHERE version_seq = ?1", [seq])?;
        tx.execute("DELETE FROM dnc_versions WHERE seq = ?1", [seq])?;
    }
    tx.commit()?;
    let versions: Vec<(i64, DncList)> = conn
        .prepare(
            "SELECT seq, list, version, imported_at, count, source FROM dnc_versions \
             WHERE active = 1 ORDER BY list",
        )?
        .query_map([], list_row)?
        .collect::<Result<_, _>>()?;
    let mut book = DncBook::default();
    for (seq, list) in versions {
        let mut numbers = Vec::with_capacity(list.count as usize);
        let mut stmt =
            conn.prepare("SELECT number FROM dnc_numbers WHERE version_seq = ?1 ORDER BY number")?;
        let mut rows = stmt.query([seq])?;
        while let Some(r) = rows.next()? {
            numbers.push(r.get::<_, i64>(0)? as u64);
        }
        book.lists.push((list, DncSet::from_sorted(numbers)));
    }
    Ok(book)
}

pub(super) fn import_dnc(
    store: &SqliteStore,
    list: &str,
    numbers: &[u64],
    source: &str,
    now_ms: i64,
) -> Result<DncImported, StoreError> {
    // 1. The new version, not yet in force. `count` is -1 until every number is written, which
    // marks it as an orphan to remove if the process dies before the end.
    let (vseq, version) = {
        let mut inner = store.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: u32 = tx.query_row(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM dnc_versions WHERE list = ?1",
            [list],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO dnc_versions (list, version, imported_at, count, source, active) \
             VALUES (?1, ?2, ?3, -1, ?4, 0)",
            params![list, version, now_ms, source],
        )?;
        let vseq = tx.last_insert_rowid();
        tx.commit()?;
        (vseq, version)
    };
    // 2. The numbers, in chunks (sorted input appends to the B-tree).
    for chunk in numbers.chunks(CHUNK) {
        let mut inner = store.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO dnc_numbers (version_seq, number) VALUES (?1, ?2)",
            )?;
            for n in chunk {
                insert.execute(params![vseq, *n as i64])?;
            }
        }
        tx.commit()?;
    }
    let set = DncSet::from_sorted(numbers.to_vec());
    let listed = DncList {
        name: list.to_string(),
        version,
        imported_at_ms: now_ms,
        count: numbers.len() as u64,
        source: source.to_string(),
    };
    // 3. In force: the old version retires, queued prospects on the list are cancelled, and
    // the in-memory book is swapped before the writer lock is released.
    let (old, cancelled) = {
        let mut inner = store.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let old: Option<i64> = tx
            .query_row(
                "SELECT seq FROM dnc_versions WHERE list = ?1 AND active = 1",
                [list],
                |r| r.get(0),
            )
            .optional()?;
        tx.execute(
            "UPDATE dnc_versions SET active = 0 WHERE list = ?1 AND active = 1",
            [list],
        )?;
        tx.execute(
            "UPDATE dnc_versions SET active = 1, count = ?2 WHERE seq = ?1",
            params![vseq, numbers.len() as i64],
        )?;
        let queued: Vec<(i64, String, String)> = tx
            .prepare_cached(
                "SELECT campaign_seq, id, phone FROM prospects WHERE status = ?1 ORDER BY seq",
            )?
            .query_map([ProspectStatus::Queued.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut cancelled = 0u64;
        let mut campaigns = Vec::new();
        for (cseq, pid, phone) in queued {
            if !set.contains_phone(&phone) {
                continue;
            }
            let (pseq, p) = prospect_in(&tx, cseq, &pid)?;
            cancel_with_reason_in(&tx, cseq, pseq, p, DNC_REASON, now_ms)?;
            cancelled += 1;
            if !campaigns.contains(&cseq) {
                campaigns.push(cseq);
            }
        }
        for cseq in campaigns {
            complete_if_done_in(&tx, cseq, now_ms)?;
        }
        tx.commit()?;
        let mut guard = store.dnc.write().unwrap_or_else(|p| p.into_inner());
        let mut lists: Vec<(DncList, DncSet)> = guard
            .lists
            .iter()
            .filter(|(l, _)| l.name != list)
            .map(|(l, s)| (l.clone(), s.clone()))
            .collect();
        lists.push((listed.clone(), set));
        lists.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        *guard = std::sync::Arc::new(DncBook { lists });
        (old, cancelled)
    };
    // 4. The retired version's numbers go, in chunks; its row stays for the audit trail.
    if let Some(old) = old {
        loop {
            let inner = store.lock();
            let n = inner.conn.execute(
                "DELETE FROM dnc_numbers WHERE version_seq = ?1 AND number IN \
                 (SELECT number FROM dnc_numbers WHERE version_seq = ?1 LIMIT ?2)",
                params![old, CHUNK as i64],
            )?;
            if n == 0 {
                break;
            }
        }
    }
    Ok(DncImported {
        list: listed,
        prospects_cancelled: cancelled,
    })
}

fn audit_of(text: Option<String>) -> Value {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| Value::Object(Default::default()))
}

pub(super) fn attempt_audit(
    store: &SqliteStore,
    attempt_id: &str,
) -> Result<(Attempt, Value), StoreError> {
    let inner = store.read();
    inner
        .conn
        .prepare_cached(&format!(
            "SELECT {ATTEMPT_COLUMNS}, a.audit FROM {ATTEMPT_FROM} WHERE a.id = ?1"
        ))?
        .query_row([attempt_id], |r| {
            let (_, a) = attempt_row(r)?;
            let audit = with_abandoned(audit_of(r.get(26)?), a.result.abandoned);
            Ok((a, audit))
        })
        .optional()?
        .ok_or_else(|| StoreError::NotFound {
            what: "attempt",
            id: attempt_id.to_string(),
        })
}

/// The audit object with the attempt's `abandoned` flag (known once the call ended).
fn with_abandoned(mut audit: Value, abandoned: Option<bool>) -> Value {
    if let (Value::Object(m), Some(a)) = (&mut audit, abandoned) {
        m.insert("abandoned".into(), Value::Bool(a));
    }
    audit
}

pub(super) fn campaign_audit(
    store: &SqliteStore,
    campaign_id: &str,
    req: &PageRequest,
) -> Result<Page<(Attempt, Value)>, StoreError> {
    let inner = store.read();
    let cseq = campaign_seq(&inner.conn, campaign_id)?;
    campaign_page(
        &inner.conn,
        &format!(
            "SELECT {ATTEMPT_COLUMNS}, a.audit FROM {ATTEMPT_FROM} \
             WHERE a.campaign_seq = ?1 AND a.seq > ?2 ORDER BY a.seq LIMIT ?3"
        ),
        cseq,
        req,
        |r| {
            let (seq, a) = attempt_row(r)?;
            let audit = with_abandoned(audit_of(r.get(26)?), a.result.abandoned);
            Ok((seq, (a, audit)))
        },
    )
}
