//! `trunx bench api`: the control API measured in-process through the real router and a real
//! SQLite file (WAL, synchronous=FULL): adding 10,000 prospects in one request, and stats
//! reads. HTTP over loopback is measured with an external load generator (see the README).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde::Serialize;
use tower::ServiceExt;

use crate::api::{self, AppState, auth};
use crate::runtime::clock;
use crate::runtime::clock::{os_random, wall_ms};
use crate::runtime::fetch::{FetchConfig, VoicemailLibrary};
use crate::runtime::server::ServerError;
use crate::store::{SqliteStore, Store};

#[derive(Debug, Serialize)]
pub struct ApiBenchReport {
    pub database: String,
    pub prospects_per_request: usize,
    pub add_runs: usize,
    pub add_ms_min: f64,
    pub add_ms_median: f64,
    pub add_ms_max: f64,
    pub stats_reads: usize,
    pub stats_us_p50: f64,
    pub stats_us_p99: f64,
    pub stats_us_max: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Runs the benchmark on a fresh database file in `dir`, removed afterwards.
pub fn run(
    dir: &std::path::Path,
    runs: usize,
    stats_reads: usize,
) -> Result<ApiBenchReport, ServerError> {
    let name = format!(
        "trunx-bench-{:016x}.db",
        u64::from_le_bytes(os_random::<8>()?)
    );
    let path = dir.join(name);
    let result = run_on(&path, runs, stats_reads);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    result
}

fn run_on(
    path: &std::path::Path,
    runs: usize,
    stats_reads: usize,
) -> Result<ApiBenchReport, ServerError> {
    let store = Arc::new(SqliteStore::open(path, 1)?);
    let key = auth::new_key(&os_random::<32>()?);
    store.create_api_key("bench", &auth::hash_key(&key), wall_ms())?;
    let state = AppState {
        store: store.clone(),
        now_ms: Arc::new(wall_ms),
        max_cps: 10.0,
        log_phone_numbers: false,
        voicemail: Arc::new(VoicemailLibrary::new(
            FetchConfig::default(),
            store.clone(),
        )?),
        max_abandon_rate: crate::campaign::abandon::DEFAULT_MAX_RATE,
    };
    let router = api::router(state);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let bearer = format!("Bearer {key}");
    rt.block_on(async move {
        let send = |method: &str, uri: String, body: Option<String>| {
            let mut b = Request::builder()
                .method(method)
                .uri(uri)
                .header(header::AUTHORIZATION, bearer.as_str());
            if body.is_some() {
                b = b.header(header::CONTENT_TYPE, "application/json");
            }
            let req = b
                .body(body.map(Body::from).unwrap_or_else(Body::empty))
                .expect("valid request");
            router.clone().oneshot(req)
        };
        let mut add_ms = Vec::new();
        let mut campaign = String::new();
        for run in 0..runs.max(1) {
            let resp = send("POST", "/campaigns".into(), Some("{}".into()))
                .await
                .expect("infallible");
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap_or_default();
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            campaign = v["id"].as_str().unwrap_or_default().to_string();
            let phones: Vec<String> = (0..10_000)
                .map(|i| format!("+1{}{:07}", 200 + run, i))
                .collect();
            let body = serde_json::json!({ "phones": phones }).to_string();
            let t0 = clock::now();
            let resp = send(
                "POST",
                format!("/campaigns/{campaign}/prospects"),
                Some(body),
            )
            .await
            .expect("infallible");
            let status = resp.status();
            let _ = axum::body::to_bytes(resp.into_body(), usize::MAX).await;
            add_ms.push(clock::seconds_since(t0) * 1000.0);
            assert_eq!(status, StatusCode::OK, "adding prospects failed");
        }
        let mut stats_us = Vec::with_capacity(stats_reads);
        for _ in 0..stats_reads {
            let t0 = clock::now();
            let resp = send("GET", format!("/campaigns/{campaign}/stats"), None)
                .await
                .expect("infallible");
            let _ = axum::body::to_bytes(resp.into_body(), usize::MAX).await;
            stats_us.push(clock::seconds_since(t0) * 1e6);
        }
        add_ms.sort_by(f64::total_cmp);
        stats_us.sort_by(f64::total_cmp);
        Ok(ApiBenchReport {
            database: "sqlite (WAL, synchronous=FULL)".into(),
            prospects_per_request: 10_000,
            add_runs: add_ms.len(),
            add_ms_min: add_ms[0],
            add_ms_median: percentile(&add_ms, 50.0),
            add_ms_max: add_ms[add_ms.len() - 1],
            stats_reads,
            stats_us_p50: percentile(&stats_us, 50.0),
            stats_us_p99: percentile(&stats_us, 99.0),
            stats_us_max: stats_us.last().copied().unwrap_or(0.0),
        })
    })
}
