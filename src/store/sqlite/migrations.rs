//! The SQLite schema: its versions, applied in order at open, each once and in its own
//! transaction. It owns no queries on the tables it creates; a change to the schema is a new
//! version appended here, never an edit of an applied one.

use rusqlite::{Connection, TransactionBehavior};

use crate::store::StoreError;

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
    (
        3,
        r#"
-- Suppressing a number finds its queued prospects in every campaign.
CREATE INDEX prospects_by_phone ON prospects(phone, status);
-- The do-not-contact list. `seq` orders pages; the phone is the identity.
CREATE TABLE suppression (
    seq INTEGER PRIMARY KEY,
    phone TEXT NOT NULL UNIQUE,
    reason TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    campaign_seq INTEGER NOT NULL REFERENCES campaigns(seq),
    prospect_seq INTEGER NOT NULL REFERENCES prospects(seq),
    did TEXT NOT NULL,
    parts INTEGER NOT NULL,
    smpp_message_ids TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL,
    error_code TEXT,
    submitted_at INTEGER,
    receipt_at INTEGER,
    created_at INTEGER NOT NULL
);
-- At most one live message per prospect, whatever the code above does.
CREATE UNIQUE INDEX messages_one_live ON messages(prospect_seq)
    WHERE status IN ('sending', 'sent');
CREATE INDEX messages_by_campaign ON messages(campaign_seq, seq);
CREATE INDEX messages_by_created ON messages(created_at);
-- One row per accepted part: receipts arrive per part, by the carrier's message id.
CREATE TABLE message_parts (
    message_seq INTEGER NOT NULL REFERENCES messages(seq),
    part INTEGER NOT NULL,
    smpp_message_id TEXT NOT NULL,
    delivered_at INTEGER,
    PRIMARY KEY (message_seq, part)
);
CREATE INDEX message_parts_by_smpp_id ON message_parts(smpp_message_id);
"#,
    ),
    (
        4,
        r#"
-- The AI agent bridge of an attempt: when the agent connected (ms after the answer), how
-- long it talked, how often it was reconnected, and why the bridge ended.
ALTER TABLE attempts ADD COLUMN agent_connected_ms INTEGER;
ALTER TABLE attempts ADD COLUMN agent_talk_ms INTEGER;
ALTER TABLE attempts ADD COLUMN agent_reconnects INTEGER;
ALTER TABLE attempts ADD COLUMN agent_end TEXT;
"#,
    ),
    (
        5,
        r#"
-- Where a campaign's events are POSTed (else the node's webhook_url).
ALTER TABLE campaigns ADD COLUMN webhook_url TEXT;
-- Every attempt and campaign state change, written in the transaction of the change. `seq`
-- (never reused: AUTOINCREMENT) is the SSE id and resume position; `id` the idempotency id.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    campaign_seq INTEGER NOT NULL REFERENCES campaigns(seq),
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
-- The webhook outbox: one row per event, pending until delivered or given up.
CREATE TABLE webhook_outbox (
    event_seq INTEGER PRIMARY KEY REFERENCES events(seq),
    state TEXT NOT NULL DEFAULT 'pending',
    tries INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    last_error TEXT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox(state, next_at);
"#,
    ),
    (
        6,
        r#"
-- Do-not-call lists (issue 20). Each import is a new version of its list; the numbers of a
-- version are the u64 of their E.164 digits, in a WITHOUT ROWID table (the key is the row).
-- A version becomes `active` only once all its numbers are in, so a crash mid-import leaves
-- the previous version in force (and the orphan is removed at the next open).
CREATE TABLE dnc_versions (
    seq INTEGER PRIMARY KEY,
    list TEXT NOT NULL,
    version INTEGER NOT NULL,
    imported_at INTEGER NOT NULL,
    count INTEGER NOT NULL,
    source TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 0,
    UNIQUE (list, version)
);
CREATE UNIQUE INDEX dnc_one_active ON dnc_versions(list) WHERE active = 1;
CREATE TABLE dnc_numbers (
    version_seq INTEGER NOT NULL,
    number INTEGER NOT NULL,
    PRIMARY KEY (version_seq, number)
) WITHOUT ROWID;
-- What allowed each attempt when it was dialled (JSON), and whether it was abandoned.
ALTER TABLE attempts ADD COLUMN audit TEXT;
ALTER TABLE attempts ADD COLUMN abandoned INTEGER;
-- A prospect's consent record (JSON: source, timestamp, textId).
ALTER TABLE prospects ADD COLUMN consent TEXT;
"#,
    ),
    (
        7,
        r#"
-- The engine nodes sharing this store (one, on SQLite): each writes its row at every beat.
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    calls INTEGER NOT NULL DEFAULT 0,
    calls_placed INTEGER NOT NULL DEFAULT 0,
    cps REAL NOT NULL DEFAULT 0
);
"#,
    ),
];

pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
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
