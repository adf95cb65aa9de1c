//! The PostgreSQL backend, for several trunx nodes sharing one database: the same [`Store`]
//! contract as SQLite (same tables, same transactions, same counters), plus what several nodes
//! need: prospects claimed under a lease (`FOR UPDATE SKIP LOCKED`), attempts owned by a node
//! whose heartbeat renews their lease, a `nodes` table, and the campaign's pacing (a token
//! bucket on its row) shared by every node.
//!
//! Built on the synchronous `postgres` client, like the rest of the store (the trait is
//! blocking; callers run it on blocking threads). A call made from inside an async task runs
//! on a scoped thread so the client's own runtime never nests in the caller's. Connections come
//! from a small pool. Every write is one READ COMMITTED transaction that locks its campaign row
//! first (`FOR UPDATE`), so two nodes' writes to one campaign queue behind each other exactly
//! like SQLite's single writer, and counters stay exact; a serialization failure or deadlock
//! (possible only across campaigns) is retried whole.
//!
//! Files: `migrations` (schema, mirrors SQLite's versions 1..7, plus 8 for leases and pacing),
//! `rows` (row decoding, shared statements), `claims` (campaigns, prospects, attempts), `more`
//! (audio, caller IDs, SMS, suppression), `compliance` (DNC lists, audit), `events` (event log,
//! webhook outbox, deliveries claimed by one node), `cluster` (nodes, heartbeat, leases, shared
//! pacing), `did_limits` (caller-ID caps and SMS per-DID pacing over every node).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use postgres::{Client, NoTls, Statement, types::ToSql};
use rand::SeedableRng;
use rand::rngs::StdRng;

mod claims;
mod cluster;
mod compliance;
mod did_limits;
mod events;
mod migrations;
mod more;
mod pacing;
mod rows;
mod store_impl;

pub use pacing::{ClusterSettings, DidLimits};

use super::StoreError;
use super::sqlite::compliance::DncBook;

/// Idle connections kept for reuse.
const POOL_IDLE: usize = 16;
/// Tries of a transaction that lost a serialization conflict or a deadlock.
const TX_TRIES: u32 = 8;

/// One pooled connection and its prepared statements.
pub(crate) struct Conn {
    client: Client,
    stmts: HashMap<String, Statement>,
}

/// A transaction on a pooled connection, with the connection's statement cache.
pub(crate) struct Tx<'a> {
    tx: postgres::Transaction<'a>,
    stmts: &'a mut HashMap<String, Statement>,
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl Tx<'_> {
    fn stmt(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql)?;
        self.stmts.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    /// Every row.
    pub(crate) fn query(&mut self, sql: &str, p: Params) -> Result<Vec<postgres::Row>, StoreError> {
        let s = self.stmt(sql)?;
        Ok(self.tx.query(&s, p)?)
    }

    /// At most one row.
    pub(crate) fn opt(
        &mut self,
        sql: &str,
        p: Params,
    ) -> Result<Option<postgres::Row>, StoreError> {
        let s = self.stmt(sql)?;
        Ok(self.tx.query_opt(&s, p)?)
    }

    /// Exactly one row.
    pub(crate) fn one(&mut self, sql: &str, p: Params) -> Result<postgres::Row, StoreError> {
        let s = self.stmt(sql)?;
        Ok(self.tx.query_one(&s, p)?)
    }

    /// Rows changed.
    pub(crate) fn exec(&mut self, sql: &str, p: Params) -> Result<u64, StoreError> {
        let s = self.stmt(sql)?;
        Ok(self.tx.execute(&s, p)?)
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        use postgres::error::SqlState;
        match e.code() {
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE => {
                StoreError::Conflict(e.to_string())
            }
            Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED => StoreError::Conflict(e.to_string()),
            _ => StoreError::Backend(match e.as_db_error() {
                Some(db) => format!("{} ({})", db.message(), db.code().code()),
                None => e.to_string(),
            }),
        }
    }
}

/// PostgreSQL implementation of [`super::Store`].
pub struct PgStore {
    config: postgres::Config,
    pool: Mutex<Vec<Conn>>,
    rng: Mutex<StdRng>,
    dnc: RwLock<Arc<DncBook>>,
    /// The active DNC version rows the book was loaded from (reloaded when another node
    /// imports a list).
    dnc_versions: Mutex<Vec<i64>>,
    cluster: ClusterSettings,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("node", &self.cluster.node_id)
            .finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    /// The pooled clients each own a small runtime, which must not be dropped on a thread that
    /// drives async tasks: they are dropped on a thread of their own.
    fn drop(&mut self) {
        let conns = std::mem::take(self.pool.get_mut().unwrap_or_else(|p| p.into_inner()));
        if !conns.is_empty() {
            let _ = std::thread::spawn(move || drop(conns)).join();
        }
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user:pw@host:port/db`, or with `?host=/run/dir` for a
    /// Unix socket), applies pending migrations (one node at a time, under an advisory lock)
    /// and loads the DNC lists. `seed` seeds the id generator (mixed with the node id, so two
    /// nodes started with one seed still make different ids).
    pub fn open(url: &str, seed: u64, cluster: ClusterSettings) -> Result<PgStore, StoreError> {
        let config: postgres::Config =
            url.parse().map_err(|e: postgres::Error| StoreError::Url {
                url: crate::config::mask_secret("database_url", url),
                reason: e.to_string(),
            })?;
        let node_mix = cluster
            .node_id
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        let store = PgStore {
            config,
            pool: Mutex::new(Vec::new()),
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ node_mix)),
            dnc: RwLock::new(Arc::new(DncBook::default())),
            dnc_versions: Mutex::new(Vec::new()),
            cluster,
        };
        store.with_conn(|c| migrations::migrate(&mut c.client))?;
        compliance::reload_dnc(&store, true)?;
        Ok(store)
    }

    /// The schema version after migrations.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.read(|tx| {
            Ok(tx
                .one("SELECT MAX(version) FROM schema_migrations", &[])?
                .get(0))
        })
    }

    /// This node's id and lease.
    pub fn cluster(&self) -> &ClusterSettings {
        &self.cluster
    }

    fn checkout(&self) -> Result<Conn, StoreError> {
        let idle = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(c) if !c.client.is_closed() => Ok(c),
            _ => Ok(Conn {
                client: self.config.connect(NoTls)?,
                stmts: HashMap::new(),
            }),
        }
    }

    fn checkin(&self, conn: Conn) {
        if conn.client.is_closed() {
            return;
        }
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < POOL_IDLE {
            pool.push(conn);
        }
    }

    /// Runs `f` on a pooled connection, on a scoped thread when called from inside an async
    /// runtime (the blocking client must not nest its runtime in the caller's).
    fn with_conn<T: Send>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        let run = || {
            let mut conn = self.checkout()?;
            let out = f(&mut conn);
            self.checkin(conn);
            out
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| {
                s.spawn(run)
                    .join()
                    .unwrap_or_else(|_| Err(StoreError::Backend("store thread panicked".into())))
            })
        } else {
            run()
        }
    }

    /// One write transaction: committed when `f` succeeds, and also when it reports that a
    /// prospect was cancelled instead of claimed (`Suppressed`, `Blocked`: the cancellation
    /// stands); rolled back otherwise. Retried whole after a serialization conflict.
    pub(crate) fn write<T: Send>(
        &self,
        mut f: impl FnMut(&mut Tx) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        self.with_conn(|conn| {
            let mut tries = 0;
            loop {
                tries += 1;
                let out = Self::attempt_tx(conn, false, &mut f);
                match out {
                    Err(StoreError::Conflict(_)) if tries < TX_TRIES => continue,
                    other => return other,
                }
            }
        })
    }

    /// A read-only transaction (one snapshot for every statement of `f`).
    pub(crate) fn read<T: Send>(
        &self,
        mut f: impl FnMut(&mut Tx) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        self.with_conn(|conn| Self::attempt_tx(conn, true, &mut f))
    }

    fn attempt_tx<T>(
        conn: &mut Conn,
        read_only: bool,
        f: &mut impl FnMut(&mut Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let Conn { client, stmts } = conn;
        let tx = if read_only {
            client
                .build_transaction()
                .read_only(true)
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .start()?
        } else {
            client.transaction()?
        };
        let mut tx = Tx { tx, stmts };
        let out = f(&mut tx);
        match out {
            Ok(v) => {
                tx.tx.commit()?;
                Ok(v)
            }
            Err(e @ (StoreError::Suppressed { .. } | StoreError::Blocked { .. })) => {
                tx.tx.commit()?;
                Err(e)
            }
            Err(e) => {
                // Dropping the transaction rolls it back.
                drop(tx);
                Err(e)
            }
        }
    }

    fn new_id(&self, prefix: &str) -> String {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        super::ids::new_id(&mut *rng, prefix)
    }

    fn dnc_book(&self) -> Arc<DncBook> {
        self.dnc.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
