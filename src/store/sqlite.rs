//! The embedded SQLite backend: one file, WAL journal, `synchronous=FULL` (a commit is on disk
//! before the call returns), migrations applied in order at open.
//!
//! One connection behind a mutex serialises writes (SQLite has a single writer anyway); every
//! writing method is one `BEGIN IMMEDIATE` transaction. Reads go through a second, read-only
//! connection that sees the last commit without waiting for an open write. Statements are
//! cached per connection.
//!
//! This file owns the connections and opening the store; it holds no table's statements.
//! Files: `migrations` (schema versions), `rows` (row decoding, column lists, page helpers),
//! `store_impl` ([`Store`](super::Store) forwarding to the files below), one file per table
//! family: `keys`, `campaigns`, `prospects`, `attempts`, `messages`, `assets` (audio), `dids`,
//! `suppression`, `nodes`; plus `compliance` (DNC lists, audit) and `events` (event log,
//! webhook outbox).

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rusqlite::Connection;

mod assets;
mod attempts;
mod campaigns;
pub(crate) mod compliance;
mod dids;
mod events;
mod keys;
mod messages;
mod migrations;
mod nodes;
mod prospects;
mod rows;
mod store_impl;
mod suppression;

use compliance::DncBook;
use migrations::migrate;

use super::StoreError;

struct Inner {
    conn: Connection,
    rng: StdRng,
}

/// The read-only connection: in WAL mode it reads the last commit while a write is open, so
/// stats polls and key checks never wait for a 10,000-prospect insert.
struct Reader {
    conn: Connection,
}

/// SQLite implementation of [`Store`](super::Store).
pub struct SqliteStore {
    inner: Mutex<Inner>,
    reader: Mutex<Reader>,
    /// The DNC list versions in force, in memory (swapped whole by an import).
    dnc: RwLock<Arc<DncBook>>,
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        backend(e)
    }
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
        let dnc = compliance::load_dnc(&mut conn)?;
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
            dnc: RwLock::new(Arc::new(dnc)),
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

    fn dnc_book(&self) -> Arc<DncBook> {
        self.dnc.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
