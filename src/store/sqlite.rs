//! The embedded SQLite backend: one file, WAL journal, `synchronous=FULL` (a commit is on disk
//! before the call returns), migrations applied in order at open.
//!
//! One connection behind a mutex serialises writes (SQLite has a single writer anyway); every
//! writing method is one `BEGIN IMMEDIATE` transaction. Reads go through a second, read-only
//! connection that sees the last commit without waiting for an open write. Statements are
//! cached per connection.

use std::path::Path;
use std::sync::Mutex;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};
use serde_json::Value;

use super::ids::new_id;
use super::{
    ApiKey, Attempt, AttemptResult, AudioAsset, Campaign, Did, DidState, DidUpdate, NewCampaign,
    Page, PageRequest, Prospect, Store, StoreError,
};
use crate::campaign::prospect::{self, ProspectState};
use crate::campaign::status;
use crate::campaign::{
    Action, AmdResult, CampaignStatus, Channel, Counters, Outcome, ProspectEvent, ProspectStatus,
};

/// Schema versions, applied in order; each runs once, in its own transaction.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE api_keys (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    key_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE UNIQUE INDEX api_keys_active_name ON api_keys(name) WHERE revoked_at IS NULL;
CREATE TABLE campaigns (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    mode TEXT NOT NULL,
    caller_ids TEXT NOT NULL,
    caller_id_strategy TEXT NOT NULL,
    schedule TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    total INTEGER NOT NULL DEFAULT 0,
    queued INTEGER NOT NULL DEFAULT 0,
    dialing INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    cancelled INTEGER NOT NULL DEFAULT 0,
    no_answer INTEGER NOT NULL DEFAULT 0,
    busy INTEGER NOT NULL DEFAULT 0,
    voicemail INTEGER NOT NULL DEFAULT 0,
    human_connected INTEGER NOT NULL DEFAULT 0,
    sending INTEGER NOT NULL DEFAULT 0,
    sent INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX campaigns_by_status ON campaigns(status, seq);
CREATE TABLE prospects (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    campaign_seq INTEGER NOT NULL REFERENCES campaigns(seq),
    phone TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_outcome TEXT,
    amd_result TEXT,
    next_attempt_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (campaign_seq, phone)
);
CREATE INDEX prospects_by_status ON prospects(campaign_seq, status);
CREATE TABLE audio_assets (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    duration_seconds REAL NOT NULL,
    data BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE dids (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    number TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    health_score REAL NOT NULL,
    calls_placed INTEGER NOT NULL DEFAULT 0,
    calls_answered INTEGER NOT NULL DEFAULT 0,
    cooling_until INTEGER,
    last_used_at INTEGER,
    created_at INTEGER NOT NULL
);
"#,
    ),
    (
        2,
        r#"
ALTER TABLE prospects ADD COLUMN wait_reason TEXT;
CREATE INDEX prospects_due ON prospects(campaign_seq, status, next_attempt_at);
CREATE TABLE attempts (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    campaign_seq INTEGER NOT NULL REFERENCES campaigns(seq),
    prospect_seq INTEGER NOT NULL REFERENCES prospects(seq),
    number INTEGER NOT NULL,
    caller_id TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    outcome TEXT,
    cause TEXT,
    sip_status INTEGER,
    sip_call_id TEXT,
    answered_ms INTEGER,
    amd_result TEXT,
    amd_cause TEXT,
    amd_ms INTEGER,
    machine_end TEXT,
    playback_start_ms INTEGER,
    played_ms INTEGER,
    talk_ms INTEGER,
    UNIQUE (prospect_seq, number)
);
-- At most one live call per prospect, whatever the code above does.
CREATE UNIQUE INDEX attempts_one_live ON attempts(prospect_seq) WHERE ended_at IS NULL;
CREATE INDEX attempts_by_campaign ON attempts(campaign_seq, seq);
CREATE INDEX attempts_by_start ON attempts(started_at);
"#,
    ),
];

const CAMPAIGN_COLUMNS: &str = "seq, id, name, channel, status, mode, caller_ids, \
    caller_id_strategy, schedule, created_at, updated_at";
const COUNTER_COLUMNS: &str = "total, queued, dialing, completed, failed, cancelled, no_answer, \
    busy, voicemail, human_connected, sending, sent, delivered";
const PROSPECT_COLUMNS: &str = "p.seq, p.id, c.id, p.phone, p.status, p.attempts, \
    p.last_outcome, p.amd_result, p.next_attempt_at, p.created_at, p.updated_at, p.wait_reason";
const ATTEMPT_COLUMNS: &str = "a.seq, a.id, c.id, p.id, p.phone, a.number, a.caller_id, \
    a.started_at, a.ended_at, a.outcome, a.cause, a.sip_status, a.sip_call_id, a.answered_ms, \
    a.amd_result, a.amd_cause, a.amd_ms, a.machine_end, a.playback_start_ms, a.played_ms, \
    a.talk_ms";
const ATTEMPT_FROM: &str = "attempts a JOIN prospects p ON p.seq = a.prospect_seq \
    JOIN campaigns c ON c.seq = a.campaign_seq";
const DID_COLUMNS: &str = "seq, id, number, state, health_score, calls_placed, calls_answered, \
    cooling_until, last_used_at, created_at";

struct Inner {
    conn: Connection,
    rng: StdRng,
}

/// The read-only connection: in WAL mode it reads the last commit while a write is open, so
/// stats polls and key checks never wait for a 10,000-prospect insert.
struct Reader {
    conn: Connection,
}

/// SQLite implementation of [`Store`].
pub struct SqliteStore {
    inner: Mutex<Inner>,
    reader: Mutex<Reader>,
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        backend(e)
    }
}

fn corrupt(what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("unknown {what} {value:?}").into(),
    )
}

fn json_col(row: &Row, idx: usize) -> rusqlite::Result<Value> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn campaign_row(row: &Row) -> rusqlite::Result<(i64, Campaign)> {
    let channel: String = row.get(3)?;
    let status: String = row.get(4)?;
    let schedule: Option<String> = row.get(8)?;
    let caller_ids: Value = json_col(row, 6)?;
    Ok((
        row.get(0)?,
        Campaign {
            id: row.get(1)?,
            name: row.get(2)?,
            channel: Channel::parse(&channel).ok_or_else(|| corrupt("channel", &channel))?,
            status: CampaignStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
            mode: json_col(row, 5)?,
            caller_ids: caller_ids
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            caller_id_strategy: json_col(row, 7)?,
            schedule: match schedule {
                Some(s) => Some(serde_json::from_str(&s).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        8,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })?),
                None => None,
            },
            created_at_ms: row.get(9)?,
            updated_at_ms: row.get(10)?,
        },
    ))
}

fn prospect_row(row: &Row) -> rusqlite::Result<(i64, Prospect)> {
    let status: String = row.get(4)?;
    let outcome: Option<String> = row.get(6)?;
    let amd: Option<String> = row.get(7)?;
    Ok((
        row.get(0)?,
        Prospect {
            id: row.get(1)?,
            campaign_id: row.get(2)?,
            phone: row.get(3)?,
            status: ProspectStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
            attempts: row.get(5)?,
            last_outcome: match outcome {
                Some(o) => Some(Outcome::parse(&o).ok_or_else(|| corrupt("outcome", &o))?),
                None => None,
            },
            amd_result: match amd {
                Some(a) => Some(AmdResult::parse(&a).ok_or_else(|| corrupt("amd result", &a))?),
                None => None,
            },
            next_attempt_at_ms: row.get(8)?,
            created_at_ms: row.get(9)?,
            updated_at_ms: row.get(10)?,
            wait_reason: row.get(11)?,
        },
    ))
}

fn attempt_row(row: &Row) -> rusqlite::Result<(i64, Attempt)> {
    let outcome: Option<String> = row.get(9)?;
    let amd: Option<String> = row.get(14)?;
    Ok((
        row.get(0)?,
        Attempt {
            id: row.get(1)?,
            campaign_id: row.get(2)?,
            prospect_id: row.get(3)?,
            phone: row.get(4)?,
            number: row.get(5)?,
            caller_id: row.get(6)?,
            started_at_ms: row.get(7)?,
            ended_at_ms: row.get(8)?,
            result: AttemptResult {
                outcome: match outcome {
                    Some(o) => Some(Outcome::parse(&o).ok_or_else(|| corrupt("outcome", &o))?),
                    None => None,
                },
                cause: row.get(10)?,
                sip_status: row.get(11)?,
                sip_call_id: row.get(12)?,
                answered_ms: row.get(13)?,
                amd_result: match amd {
                    Some(a) => Some(AmdResult::parse(&a).ok_or_else(|| corrupt("amd result", &a))?),
                    None => None,
                },
                amd_cause: row.get(15)?,
                amd_ms: row.get(16)?,
                machine_end: row.get(17)?,
                playback_start_ms: row.get(18)?,
                played_ms: row.get(19)?,
                talk_ms: row.get(20)?,
            },
        },
    ))
}

/// The row position of a campaign.
fn campaign_seq(conn: &Connection, id: &str) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT seq FROM campaigns WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| campaign_not_found(id))
}

/// One prospect of a campaign, with its row position.
fn prospect_in(
    conn: &Connection,
    campaign_seq: i64,
    prospect_id: &str,
) -> Result<(i64, Prospect), StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {PROSPECT_COLUMNS} FROM prospects p JOIN campaigns c \
         ON c.seq = p.campaign_seq WHERE p.id = ?1 AND p.campaign_seq = ?2"
    ))?
    .query_row(params![prospect_id, campaign_seq], prospect_row)
    .optional()?
    .ok_or_else(|| StoreError::NotFound {
        what: "prospect",
        id: prospect_id.to_string(),
    })
}

/// Applies a prospect event inside a transaction: the prospect row and the campaign counters.
fn apply_event_in(
    tx: &Transaction,
    campaign_seq: i64,
    prospect_id: &str,
    event: &ProspectEvent,
    now_ms: i64,
) -> Result<(i64, Prospect), StoreError> {
    let (pseq, before) = prospect_in(tx, campaign_seq, prospect_id)?;
    let old = ProspectState {
        status: before.status,
        last_outcome: before.last_outcome,
    };
    let new = prospect::apply(old, event)?;
    let mut after = Prospect {
        status: new.status,
        last_outcome: new.last_outcome,
        updated_at_ms: now_ms,
        ..before
    };
    match *event {
        ProspectEvent::Dialing | ProspectEvent::Sending => {
            after.attempts += 1;
            after.next_attempt_at_ms = None;
            after.wait_reason = None;
        }
        ProspectEvent::Finished { amd, .. } => {
            after.amd_result = amd.or(after.amd_result);
            after.next_attempt_at_ms = None;
        }
        ProspectEvent::RetryLater {
            amd,
            next_attempt_at_ms,
            outcome,
        } => {
            after.amd_result = amd.or(after.amd_result);
            after.next_attempt_at_ms = Some(next_attempt_at_ms);
            after.wait_reason = Some(format!("retry after {}", outcome.as_str()));
        }
        ProspectEvent::Sent | ProspectEvent::Cancel => {}
    }
    tx.prepare_cached(
        "UPDATE prospects SET status = ?2, attempts = ?3, last_outcome = ?4, amd_result = ?5, \
         next_attempt_at = ?6, updated_at = ?7, wait_reason = ?8 WHERE id = ?1",
    )?
    .execute(params![
        after.id,
        after.status.as_str(),
        after.attempts,
        after.last_outcome.map(Outcome::as_str),
        after.amd_result.map(AmdResult::as_str),
        after.next_attempt_at_ms,
        now_ms,
        after.wait_reason,
    ])?;
    bump_counters(tx, campaign_seq, &Counters::delta(old, new))?;
    Ok((pseq, after))
}

/// `completed` for a dialing campaign with nothing queued or in progress.
fn complete_if_done_in(tx: &Transaction, campaign_seq: i64, now_ms: i64) -> rusqlite::Result<bool> {
    let n = tx
        .prepare_cached(
            "UPDATE campaigns SET status = 'completed', updated_at = ?2 WHERE seq = ?1 \
             AND status = 'dialing' AND queued = 0 AND dialing = 0 AND sending = 0 AND sent = 0",
        )?
        .execute(params![campaign_seq, now_ms])?;
    Ok(n == 1)
}

fn did_row(row: &Row) -> rusqlite::Result<(i64, Did)> {
    let state: String = row.get(3)?;
    Ok((
        row.get(0)?,
        Did {
            id: row.get(1)?,
            number: row.get(2)?,
            state: DidState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
            health_score: row.get(4)?,
            calls_placed: row.get::<_, i64>(5)?.max(0) as u64,
            calls_answered: row.get::<_, i64>(6)?.max(0) as u64,
            cooling_until_ms: row.get(7)?,
            last_used_at_ms: row.get(8)?,
            created_at_ms: row.get(9)?,
        },
    ))
}

fn api_key_row(row: &Row) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: row.get(0)?,
        name: row.get(1)?,
        created_at_ms: row.get(2)?,
        revoked_at_ms: row.get(3)?,
    })
}

fn counters_row(row: &Row) -> rusqlite::Result<Counters> {
    Ok(Counters {
        total: row.get(0)?,
        queued: row.get(1)?,
        dialing: row.get(2)?,
        completed: row.get(3)?,
        failed: row.get(4)?,
        cancelled: row.get(5)?,
        no_answer: row.get(6)?,
        busy: row.get(7)?,
        voicemail: row.get(8)?,
        human_connected: row.get(9)?,
        sending: row.get(10)?,
        sent: row.get(11)?,
        delivered: row.get(12)?,
    })
}

fn page<T>(mut rows: Vec<(i64, T)>, limit: u32) -> Page<T> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|(seq, _)| *seq)
    } else {
        None
    };
    Page {
        items: rows.into_iter().map(|(_, t)| t).collect(),
        next_cursor,
    }
}

/// Adds `d` to the campaign's counters.
fn bump_counters(tx: &Transaction, campaign_seq: i64, d: &Counters) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE campaigns SET total = total + ?2, queued = queued + ?3, dialing = dialing + ?4, \
         completed = completed + ?5, failed = failed + ?6, cancelled = cancelled + ?7, \
         no_answer = no_answer + ?8, busy = busy + ?9, voicemail = voicemail + ?10, \
         human_connected = human_connected + ?11, sending = sending + ?12, sent = sent + ?13, \
         delivered = delivered + ?14 WHERE seq = ?1",
    )?
    .execute(params![
        campaign_seq,
        d.total,
        d.queued,
        d.dialing,
        d.completed,
        d.failed,
        d.cancelled,
        d.no_answer,
        d.busy,
        d.voicemail,
        d.human_connected,
        d.sending,
        d.sent,
        d.delivered
    ])?;
    Ok(())
}

fn campaign_not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        what: "campaign",
        id: id.to_string(),
    }
}

/// The campaign's row position and status, inside a transaction.
fn campaign_seq_status(tx: &Transaction, id: &str) -> Result<(i64, CampaignStatus), StoreError> {
    let found: Option<(i64, String)> = tx
        .prepare_cached("SELECT seq, status FROM campaigns WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, status) = found.ok_or_else(|| campaign_not_found(id))?;
    let status =
        CampaignStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(status.clone()))?;
    Ok((seq, status))
}

fn get_campaign_in(conn: &Connection, id: &str) -> Result<Campaign, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = ?1"
    ))?
    .query_row([id], campaign_row)
    .optional()?
    .map(|(_, c)| c)
    .ok_or_else(|| campaign_not_found(id))
}

impl SqliteStore {
    /// Opens (creating if missing) the database file and applies pending migrations. `seed`
    /// seeds the id generator.
    pub fn open(path: &Path, seed: u64) -> Result<SqliteStore, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.set_prepared_statement_cache_capacity(64);
        migrate(&mut conn)?;
        let reader = Connection::open(path)?;
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        reader.pragma_update(None, "query_only", "ON")?;
        reader.set_prepared_statement_cache_capacity(64);
        Ok(SqliteStore {
            inner: Mutex::new(Inner {
                conn,
                rng: StdRng::seed_from_u64(seed),
            }),
            reader: Mutex::new(Reader { conn: reader }),
        })
    }

    /// The schema version after migrations.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let inner = self.read();
        Ok(inner
            .conn
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
                r.get(0)
            })?)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a transaction open (rusqlite rolls
        // back on drop), so a poisoned lock is still a consistent connection.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::MutexGuard<'_, Reader> {
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, \
         applied_at INTEGER NOT NULL DEFAULT (unixepoch()))",
    )?;
    let current: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    for (version, sql) in MIGRATIONS {
        if *version <= current {
            continue;
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES (?1)",
            [version],
        )?;
        tx.commit()?;
    }
    Ok(())
}

impl Store for SqliteStore {
    fn create_api_key(
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

    fn revoke_api_key(&self, name_or_id: &str, now_ms: i64) -> Result<ApiKey, StoreError> {
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

    fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let inner = self.read();
        let mut stmt = inner
            .conn
            .prepare_cached("SELECT id, name, created_at, revoked_at FROM api_keys ORDER BY seq")?;
        let rows = stmt.query_map([], api_key_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn authenticate(&self, key_hash: &[u8; 32]) -> Result<Option<ApiKey>, StoreError> {
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

    fn create_campaign(&self, new: NewCampaign, now_ms: i64) -> Result<Campaign, StoreError> {
        let mut inner = self.lock();
        let id = new_id(&mut inner.rng, "camp");
        let name = new.name.unwrap_or_else(|| id.clone());
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO campaigns (id, name, channel, status, mode, caller_ids, \
             caller_id_strategy, schedule, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
            params![
                id,
                name,
                new.channel.as_str(),
                CampaignStatus::Created.as_str(),
                new.mode.to_string(),
                serde_json::to_string(&new.caller_ids).unwrap_or_else(|_| "[]".into()),
                new.caller_id_strategy.to_string(),
                new.schedule.as_ref().map(Value::to_string),
                now_ms
            ],
        )?;
        tx.commit()?;
        Ok(Campaign {
            id,
            name,
            channel: new.channel,
            status: CampaignStatus::Created,
            mode: new.mode,
            caller_ids: new.caller_ids,
            caller_id_strategy: new.caller_id_strategy,
            schedule: new.schedule,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        })
    }

    fn get_campaign(&self, id: &str) -> Result<Campaign, StoreError> {
        let inner = self.read();
        get_campaign_in(&inner.conn, id)
    }

    fn list_campaigns(
        &self,
        status: Option<CampaignStatus>,
        req: &PageRequest,
    ) -> Result<Page<Campaign>, StoreError> {
        let inner = self.read();
        let mut stmt = inner.conn.prepare_cached(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns \
             WHERE seq > ?1 AND (?2 IS NULL OR status = ?2) ORDER BY seq LIMIT ?3"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    req.after.unwrap_or(0),
                    status.map(CampaignStatus::as_str),
                    i64::from(req.limit) + 1
                ],
                campaign_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(rows, req.limit))
    }

    fn transition_campaign(
        &self,
        id: &str,
        action: Action,
        now_ms: i64,
    ) -> Result<Campaign, StoreError> {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (seq, current) = campaign_seq_status(&tx, id)?;
        let next = status::apply(current, action).map_err(|e| StoreError::WrongStatus {
            action: e.action,
            current: e.current,
        })?;
        tx.prepare_cached("UPDATE campaigns SET status = ?2, updated_at = ?3 WHERE seq = ?1")?
            .execute(params![seq, next.as_str(), now_ms])?;
        if next == CampaignStatus::Cancelled {
            let n = tx
                .prepare_cached(
                    "UPDATE prospects SET status = 'cancelled', next_attempt_at = NULL, \
                     updated_at = ?2 WHERE campaign_seq = ?1 AND status = 'queued'",
                )?
                .execute(params![seq, now_ms])? as i64;
            let one = Counters::delta(
                ProspectState::NEW,
                ProspectState {
                    status: ProspectStatus::Cancelled,
                    last_outcome: None,
                },
            );
            bump_counters(&tx, seq, &one.scaled(n))?;
        }
        let campaign = get_campaign_in(&tx, id)?;
        tx.commit()?;
        Ok(campaign)
    }

    fn add_prospects(
        &self,
        campaign_id: &str,
        phones: &[String],
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let mut guard = self.lock();
        let Inner { conn, rng } = &mut *guard;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (seq, current) = campaign_seq_status(&tx, campaign_id)?;
        if !current.accepts_prospects() {
            return Err(StoreError::WrongStatus {
                action: "add prospects to",
                current,
            });
        }
        let mut added: u64 = 0;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO prospects (id, campaign_seq, phone, status, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, 'queued', ?4, ?4) ON CONFLICT (campaign_seq, phone) DO NOTHING",
            )?;
            for phone in phones {
                let id = new_id(rng, "pro");
                added += insert.execute(params![id, seq, phone, now_ms])? as u64;
            }
        }
        let one = prospect::contribution(ProspectState::NEW);
        bump_counters(&tx, seq, &one.scaled(added as i64))?;
        tx.commit()?;
        Ok(added)
    }

    fn list_prospects(
        &self,
        campaign_id: &str,
        req: &PageRequest,
    ) -> Result<Page<Prospect>, StoreError> {
        let inner = self.read();
        let seq = campaign_seq(&inner.conn, campaign_id)?;
        let mut stmt = inner.conn.prepare_cached(&format!(
            "SELECT {PROSPECT_COLUMNS} FROM prospects p JOIN campaigns c ON c.seq = p.campaign_seq \
             WHERE p.campaign_seq = ?1 AND p.seq > ?2 ORDER BY p.seq LIMIT ?3"
        ))?;
        let rows = stmt
            .query_map(
                params![seq, req.after.unwrap_or(0), i64::from(req.limit) + 1],
                prospect_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(rows, req.limit))
    }

    fn record_prospect_event(
        &self,
        campaign_id: &str,
        prospect_id: &str,
        event: &ProspectEvent,
        now_ms: i64,
    ) -> Result<Prospect, StoreError> {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (seq, current) = campaign_seq_status(&tx, campaign_id)?;
        if matches!(event, ProspectEvent::Dialing | ProspectEvent::Sending)
            && current != CampaignStatus::Dialing
        {
            return Err(StoreError::WrongStatus {
                action: "dial a prospect of",
                current,
            });
        }
        let (_, after) = apply_event_in(&tx, seq, prospect_id, event, now_ms)?;
        tx.commit()?;
        Ok(after)
    }

    fn due_prospects(
        &self,
        campaign_id: &str,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<Prospect>, StoreError> {
        let inner = self.read();
        let rows = inner
            .conn
            .prepare_cached(&format!(
                "SELECT {PROSPECT_COLUMNS} FROM prospects p JOIN campaigns c \
                 ON c.seq = p.campaign_seq WHERE c.id = ?1 AND p.status = 'queued' \
                 AND COALESCE(p.next_attempt_at, 0) <= ?2 \
                 ORDER BY COALESCE(p.next_attempt_at, 0), p.seq LIMIT ?3"
            ))?
            .query_map(params![campaign_id, now_ms, limit], prospect_row)?
            .map(|r| r.map(|(_, p)| p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn defer_prospect(
        &self,
        campaign_id: &str,
        prospect_id: &str,
        until_ms: i64,
        reason: &str,
        now_ms: i64,
    ) -> Result<Prospect, StoreError> {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (seq, _) = campaign_seq_status(&tx, campaign_id)?;
        let n = tx
            .prepare_cached(
                "UPDATE prospects SET next_attempt_at = ?3, wait_reason = ?4, updated_at = ?5 \
                 WHERE id = ?1 AND campaign_seq = ?2 AND status = 'queued'",
            )?
            .execute(params![prospect_id, seq, until_ms, reason, now_ms])?;
        let (_, p) = prospect_in(&tx, seq, prospect_id)?;
        if n == 0 {
            return Err(StoreError::Prospect(
                crate::campaign::prospect::ProspectTransitionError {
                    from: p.status,
                    event: "defer",
                },
            ));
        }
        tx.commit()?;
        Ok(p)
    }

    fn begin_attempt(
        &self,
        campaign_id: &str,
        prospect_id: &str,
        caller_id: &str,
        now_ms: i64,
    ) -> Result<Attempt, StoreError> {
        let mut inner = self.lock();
        let id = new_id(&mut inner.rng, "att");
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (seq, current) = campaign_seq_status(&tx, campaign_id)?;
        if current != CampaignStatus::Dialing {
            return Err(StoreError::WrongStatus {
                action: "dial a prospect of",
                current,
            });
        }
        let (pseq, p) = apply_event_in(&tx, seq, prospect_id, &ProspectEvent::Dialing, now_ms)?;
        tx.prepare_cached(
            "INSERT INTO attempts (id, campaign_seq, prospect_seq, number, caller_id, started_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![id, seq, pseq, p.attempts, caller_id, now_ms])?;
        tx.commit()?;
        Ok(Attempt {
            id,
            campaign_id: campaign_id.to_string(),
            prospect_id: p.id,
            phone: p.phone,
            number: p.attempts,
            caller_id: caller_id.to_string(),
            started_at_ms: now_ms,
            ended_at_ms: None,
            result: AttemptResult::default(),
        })
    }

    fn finish_attempt(
        &self,
        attempt_id: &str,
        result: &AttemptResult,
        event: &ProspectEvent,
        now_ms: i64,
    ) -> Result<Prospect, StoreError> {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let live: Option<(i64, String)> = tx
            .prepare_cached(
                "SELECT a.campaign_seq, p.id FROM attempts a JOIN prospects p \
                 ON p.seq = a.prospect_seq WHERE a.id = ?1 AND a.ended_at IS NULL",
            )?
            .query_row([attempt_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (cseq, prospect_id) = live.ok_or_else(|| StoreError::NotFound {
            what: "live attempt",
            id: attempt_id.to_string(),
        })?;
        tx.prepare_cached(
            "UPDATE attempts SET ended_at = ?2, outcome = ?3, cause = ?4, sip_status = ?5, \
             sip_call_id = ?6, answered_ms = ?7, amd_result = ?8, amd_cause = ?9, amd_ms = ?10, \
             machine_end = ?11, playback_start_ms = ?12, played_ms = ?13, talk_ms = ?14 \
             WHERE id = ?1",
        )?
        .execute(params![
            attempt_id,
            now_ms,
            result.outcome.map(Outcome::as_str),
            result.cause,
            result.sip_status,
            result.sip_call_id,
            result.answered_ms,
            result.amd_result.map(AmdResult::as_str),
            result.amd_cause,
            result.amd_ms,
            result.machine_end,
            result.playback_start_ms,
            result.played_ms,
            result.talk_ms,
        ])?;
        let status: String = tx
            .prepare_cached("SELECT status FROM campaigns WHERE seq = ?1")?
            .query_row([cseq], |r| r.get(0))?;
        // A cancelled campaign takes no retries: the attempt's outcome is final.
        let event = match (*event, CampaignStatus::parse(&status)) {
            (ProspectEvent::RetryLater { outcome, amd, .. }, Some(s)) if s.is_terminal() => {
                ProspectEvent::Finished { outcome, amd }
            }
            (e, _) => e,
        };
        let (_, p) = apply_event_in(&tx, cseq, &prospect_id, &event, now_ms)?;
        complete_if_done_in(&tx, cseq, now_ms)?;
        tx.commit()?;
        Ok(p)
    }

    fn live_attempts(&self) -> Result<Vec<Attempt>, StoreError> {
        let inner = self.read();
        let rows = inner
            .conn
            .prepare_cached(&format!(
                "SELECT {ATTEMPT_COLUMNS} FROM {ATTEMPT_FROM} WHERE a.ended_at IS NULL ORDER BY a.seq"
            ))?
            .query_map([], attempt_row)?
            .map(|r| r.map(|(_, a)| a))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn list_attempts(
        &self,
        campaign_id: &str,
        page_req: &PageRequest,
    ) -> Result<Page<Attempt>, StoreError> {
        let inner = self.read();
        let cseq = campaign_seq(&inner.conn, campaign_id)?;
        let rows = inner
            .conn
            .prepare_cached(&format!(
                "SELECT {ATTEMPT_COLUMNS} FROM {ATTEMPT_FROM} WHERE a.campaign_seq = ?1 \
                 AND a.seq > ?2 ORDER BY a.seq LIMIT ?3"
            ))?
            .query_map(
                params![cseq, page_req.after.unwrap_or(0), page_req.limit + 1],
                attempt_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(rows, page_req.limit))
    }

    fn attempts_since(&self, since_ms: i64) -> Result<Vec<Attempt>, StoreError> {
        let inner = self.read();
        let rows = inner
            .conn
            .prepare_cached(&format!(
                "SELECT {ATTEMPT_COLUMNS} FROM {ATTEMPT_FROM} WHERE a.started_at >= ?1 \
                 ORDER BY a.started_at, a.seq"
            ))?
            .query_map([since_ms], attempt_row)?
            .map(|r| r.map(|(_, a)| a))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn complete_if_done(&self, campaign_id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (seq, _) = campaign_seq_status(&tx, campaign_id)?;
        let done = complete_if_done_in(&tx, seq, now_ms)?;
        tx.commit()?;
        Ok(done)
    }

    fn update_did(&self, number: &str, u: &DidUpdate) -> Result<(), StoreError> {
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

    fn stats(&self, campaign_id: &str) -> Result<Counters, StoreError> {
        let inner = self.read();
        inner
            .conn
            .prepare_cached(&format!(
                "SELECT {COUNTER_COLUMNS} FROM campaigns WHERE id = ?1"
            ))?
            .query_row([campaign_id], counters_row)
            .optional()?
            .ok_or_else(|| campaign_not_found(campaign_id))
    }

    fn create_audio(
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

    fn get_audio(&self, id: &str) -> Result<AudioAsset, StoreError> {
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

    fn get_audio_file(&self, id: &str) -> Result<(AudioAsset, Vec<u8>), StoreError> {
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

    fn add_dids(&self, numbers: &[String], now_ms: i64) -> Result<Vec<Did>, StoreError> {
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

    fn list_dids(
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
