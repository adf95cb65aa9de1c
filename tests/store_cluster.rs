//! PostgreSQL only: what several nodes sharing one database rely on: migrations run once,
//! leases split the queue, a dead node's calls end as `node_lost` and are never redialled,
//! calls per second hold across nodes. Skipped (loudly) without a PostgreSQL server.

mod pg_server;
#[macro_use]
mod store_common;

use serde_json::json;
use store_common::*;
use trunx::campaign::{Action, Outcome, ProspectEvent, ProspectStatus};
use trunx::store::{ClusterSettings, NewCampaign, PageRequest, PgStore, Store, StoreError};

fn node(id: &str, url: &str, pacing: bool) -> PgStore {
    let cluster = ClusterSettings {
        lease_ms: 5_000,
        shared_pacing: pacing,
        ..ClusterSettings::single(id)
    };
    PgStore::open(url, 7, cluster).unwrap()
}

#[test]
fn postgres_migrations_run_once_for_two_nodes() {
    let Some(url) = pg_server::database_or_skip("postgres_migrations_run_once_for_two_nodes")
    else {
        return;
    };
    // Two nodes opening one new database at once: the advisory lock serialises them.
    let (a, b) = std::thread::scope(|sc| {
        let a = sc.spawn(|| node("a", &url, false));
        let b = sc.spawn(|| node("b", &url, false));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.schema_version().unwrap(), 9);
    assert_eq!(b.schema_version().unwrap(), 9);
    let c = a.create_campaign(voice("shared"), 1).unwrap();
    assert_eq!(b.get_campaign(&c.id).unwrap().name, "shared");
}

#[test]
fn postgres_leases_split_the_queue_between_nodes_and_nobody_dials_twice() {
    let Some(url) = pg_server::database_or_skip("postgres_leases_split_the_queue") else {
        return;
    };
    let (a, b) = (node("a", &url, false), node("b", &url, false));
    let c = a.create_campaign(voice_with_retries(0), 0).unwrap();
    a.add_prospects(&c.id, &phones(10, 100), 1).unwrap();
    a.transition_campaign(&c.id, Action::Start, 2).unwrap();
    let due_a = a.due_prospects(&c.id, 1_000, 6).unwrap();
    let due_b = b.due_prospects(&c.id, 1_000, 6).unwrap();
    assert_eq!((due_a.len(), due_b.len()), (6, 4));
    let mut ids: Vec<&str> = due_a.iter().chain(&due_b).map(|p| p.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10, "each prospect leased to one node");
    // B may not dial what A leased while A's lease runs; A may.
    assert!(matches!(
        b.begin_attempt(&c.id, &due_a[0].id, "+17145550000", 1_100),
        Err(StoreError::Leased { .. })
    ));
    a.begin_attempt(&c.id, &due_a[0].id, "+17145550000", 1_100)
        .unwrap();
    // Once A's lease ran out (A died), B takes A's remaining prospects.
    // (B's own 4 come back to B too; A's prospect in a call does not.)
    let later = b.due_prospects(&c.id, 1_000 + 5_001, 10).unwrap();
    assert_eq!(later.len(), 9);
    assert!(
        due_a[1..]
            .iter()
            .all(|q| later.iter().any(|p| p.id == q.id))
    );
    assert!(!later.iter().any(|p| p.id == due_a[0].id));
    // A prospect in a call is never handed out again, and never begun twice.
    assert!(
        b.begin_attempt(&c.id, &due_a[0].id, "+17145550000", 7_000)
            .is_err()
    );
    assert_eq!(a.stats(&c.id).unwrap().dialing, 1);
}

#[test]
fn postgres_a_dead_nodes_calls_end_as_node_lost_and_are_never_redialled() {
    use trunx::store::NodeStatus;
    let Some(url) = pg_server::database_or_skip("postgres_a_dead_nodes_calls_end") else {
        return;
    };
    let (a, b) = (node("a", &url, false), node("b", &url, false));
    let c = a.create_campaign(voice_with_retries(3), 0).unwrap();
    a.add_prospects(&c.id, &phones(2, 700), 1).unwrap();
    a.transition_campaign(&c.id, Action::Start, 2).unwrap();
    let due = a.due_prospects(&c.id, 10, 2).unwrap();
    let att = a
        .begin_attempt(&c.id, &due[0].id, "+17145550000", 10)
        .unwrap();
    let beat = |id: &str, at: i64| NodeStatus {
        id: id.into(),
        started_at_ms: 0,
        heartbeat_at_ms: at,
        calls: 0,
        calls_placed: 0,
        cps: 0.0,
    };
    // A beats (lease renewed to 2,000 + 5,000); B's beat before that ends nothing.
    assert_eq!(a.heartbeat(&beat("a", 2_000)).unwrap(), 0);
    assert_eq!(b.heartbeat(&beat("b", 6_000)).unwrap(), 0);
    // A stops beating; after its lease B's beat ends A's call: failed, final despite retries.
    assert_eq!(b.heartbeat(&beat("b", 7_001)).unwrap(), 1);
    let p = all_prospects(&b, &c.id)
        .into_iter()
        .find(|p| p.id == att.prospect_id)
        .unwrap();
    assert_eq!(p.status, ProspectStatus::Completed);
    assert_eq!(p.last_outcome, Some(Outcome::Failed));
    assert_eq!(p.attempts, 1);
    let ended = b
        .list_attempts(
            &c.id,
            &PageRequest {
                limit: 10,
                after: None,
            },
        )
        .unwrap();
    assert_eq!(ended.items[0].result.cause.as_deref(), Some("node_lost"));
    // A's late report is refused: the outcome is counted once.
    assert!(matches!(
        a.finish_attempt(
            &att.id,
            &Default::default(),
            &ProspectEvent::Finished {
                outcome: Outcome::Busy,
                amd: None
            },
            8_000
        ),
        Err(StoreError::NotFound { .. })
    ));
    let st = assert_counters_exact(&b, &c.id);
    assert_eq!((st.failed, st.busy, st.dialing), (1, 0, 0));
    let nodes = b.list_nodes().unwrap();
    assert_eq!(
        nodes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
}

#[test]
fn postgres_calls_per_second_holds_across_nodes() {
    let Some(url) = pg_server::database_or_skip("postgres_calls_per_second_holds") else {
        return;
    };
    let (a, b) = (node("a", &url, true), node("b", &url, true));
    let c = a
        .create_campaign(
            NewCampaign {
                mode: json!({"calls_per_second": 2}),
                ..voice("paced")
            },
            0,
        )
        .unwrap();
    a.add_prospects(&c.id, &phones(20, 800), 1).unwrap();
    a.transition_campaign(&c.id, Action::Start, 2).unwrap();
    let mut started = Vec::new();
    // Both nodes try every 50 ms for 3 s: together they start at most 2 calls a second.
    for t in (10_000..13_000).step_by(50) {
        for s in [&a, &b] {
            for p in s.due_prospects(&c.id, t, 2).unwrap() {
                match s.begin_attempt(&c.id, &p.id, "+17145550000", t) {
                    Ok(_) => started.push(t),
                    Err(StoreError::Paced { until_ms }) => assert!(until_ms > t),
                    Err(e) => panic!("{e}"),
                }
            }
        }
    }
    assert_eq!(started.len(), 6, "{started:?}");
    for w in started.windows(2) {
        assert!(w[1] - w[0] >= 500, "{started:?}");
    }
}
