//! Shared by the store suites (`tests/store_*.rs`): a fresh store of each backend, the
//! `on_both_backends!` macro that makes each test twice (`NAME::sqlite` and `NAME::postgres`)
//! and the campaign and counter helpers. It holds no tests. A test file using it declares
//! `mod pg_server;` and `#[macro_use] mod store_common;` and imports `store_common::*`.
#![allow(dead_code, unused_macros)]

use serde_json::json;
use trunx::campaign::Channel;
use trunx::store::{ClusterSettings, NewCampaign, PageRequest, PgStore, SqliteStore, Store};

use crate::pg_server;

pub fn temp_store() -> (tempfile::TempDir, SqliteStore) {
    // /dev/shm when present: the suite commits thousands of transactions with fsync.
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let store = SqliteStore::open(&dir.path().join("t.db"), 42).unwrap();
    (dir, store)
}

/// A PostgreSQL store on a fresh database (node `n1`), or `None` after a loud SKIPPED line.
pub fn pg_store(test: &str) -> Option<PgStore> {
    let url = pg_server::database_or_skip(test)?;
    Some(PgStore::open(&url, 42, ClusterSettings::single("n1")).unwrap())
}

/// Each `fn NAME(s) { ... }` becomes two tests, `NAME::sqlite` and `NAME::postgres`, with
/// `s: &dyn Store` on a fresh store of each backend.
macro_rules! on_both_backends {
    ($(fn $name:ident($s:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn sqlite() {
                let (_d, store) = temp_store();
                let $s: &dyn Store = &store;
                $body
            }
            #[test]
            fn postgres() {
                let Some(store) = pg_store(concat!(stringify!($name), "::postgres")) else {
                    return;
                };
                let $s: &dyn Store = &store;
                $body
            }
        }
    )*};
}

pub fn voice(name: &str) -> NewCampaign {
    NewCampaign {
        name: Some(name.to_string()),
        channel: Channel::Voice,
        mode: json!({"ai": true, "custom": 1}),
        caller_ids: vec!["+17145550000".into()],
        caller_id_strategy: json!({"selection": "sticky"}),
        schedule: None,
        webhook_url: None,
    }
}

pub fn phones(n: usize, base: u64) -> Vec<String> {
    (0..n)
        .map(|i| format!("+1714{:07}", base + i as u64))
        .collect()
}

pub fn all_prospect_ids(s: &dyn Store, campaign: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .list_prospects(campaign, &PageRequest { limit: 1000, after })
            .unwrap();
        ids.extend(page.items.iter().map(|p| p.id.clone()));
        match page.next_cursor {
            Some(c) => after = Some(c),
            None => return ids,
        }
    }
}

pub fn voice_with_retries(max_retries: u32) -> NewCampaign {
    NewCampaign {
        mode: json!({"max_retries": max_retries, "retry_delay": "1h"}),
        ..voice("dialer")
    }
}

pub fn all_prospects(s: &dyn Store, campaign: &str) -> Vec<trunx::store::Prospect> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .list_prospects(campaign, &PageRequest { limit: 7, after })
            .unwrap();
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => after = Some(c),
            None => return out,
        }
    }
}

/// The stored counters equal the sum over a scan of the prospects (an independent
/// computation from the incremental updates), and the spec's invariants hold.
pub fn assert_counters_exact(s: &dyn Store, campaign: &str) -> trunx::campaign::Counters {
    use trunx::campaign::prospect::{ProspectState, contribution};
    let mut scanned = trunx::campaign::Counters::default();
    for p in all_prospects(s, campaign) {
        scanned.add(&contribution(ProspectState {
            status: p.status,
            last_outcome: p.last_outcome,
        }));
    }
    let stored = s.stats(campaign).unwrap();
    assert_eq!(
        stored, scanned,
        "stored counters drifted from the prospects"
    );
    assert!(stored.invariants_hold(), "{stored:?}");
    stored
}
