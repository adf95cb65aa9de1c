//! Shared by the router tests (`tests/api_*.rs`): an [`App`] on a real SQLite store with one
//! API key, request helpers, the spec's JSON examples verbatim, and error and upload helpers.
//! It holds no tests. A test file declares `mod api_common;` and imports `api_common::*`.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;
use trunx::api::{self, AppState, auth};
use trunx::runtime::fetch::{FetchConfig, VoicemailLibrary};
use trunx::store::{SqliteStore, Store};

pub const KEY: &str = "trunx_test_key";

pub struct App {
    pub router: Router,
    pub store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

pub fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("api.db"), 7).unwrap());
    store
        .create_api_key("test", &auth::hash_key(KEY), 0)
        .unwrap();
    let clock = Arc::new(AtomicI64::new(1_795_000_000_000));
    let state = AppState {
        store: store.clone(),
        now_ms: Arc::new(move || clock.fetch_add(1, Ordering::Relaxed)),
        max_cps: 10.0,
        log_phone_numbers: false,
        voicemail: Arc::new(VoicemailLibrary::new(FetchConfig::default(), store.clone()).unwrap()),
        max_abandon_rate: trunx::campaign::abandon::DEFAULT_MAX_RATE,
    };
    App {
        router: api::router(state),
        store,
        _dir: dir,
    }
}

impl App {
    pub async fn send(&self, req: Request<Body>) -> (StatusCode, Value, Vec<u8>) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, json, bytes)
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<&str>) -> (StatusCode, Value) {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {KEY}"));
        if body.is_some() {
            b = b.header(header::CONTENT_TYPE, "application/json");
        }
        let req = b
            .body(
                body.map(|s| Body::from(s.to_string()))
                    .unwrap_or_else(Body::empty),
            )
            .unwrap();
        let (s, v, _) = self.send(req).await;
        (s, v)
    }

    pub async fn create(&self, body: &str) -> Value {
        let (s, v) = self.call("POST", "/campaigns", Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v
    }
}

pub fn assert_error(v: &Value, code: &str) {
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
}

pub fn phones(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("+1818{:07}", i)).collect()
}

// The spec's examples, verbatim.
pub const SPEC_MODE_1: &str = r#"{
  "channel": "voice",
  "mode": {
    "voicemailAudioUrl": "https://api.trunx.io/audio/aud_001/file",
    "max_retries": 2,
    "retry_delay": "4h"
  }
}"#;
pub const SPEC_MODE_2: &str = r#"{
  "channel": "voice",
  "mode": {
    "ai": true,
    "voicemailAudioUrl": "https://api.trunx.io/audio/aud_001/file",
    "calls_per_second": 10,
    "max_retries": 2,
    "retry_delay": "4h"
  }
}"#;
pub const SPEC_MODE_3: &str = r#"{
  "channel": "voice",
  "mode": {
    "ai": true,
    "calls_per_second": 5
  }
}"#;
pub const SPEC_MODE_4: &str = r#"{
  "channel": "sms",
  "mode": {
    "message": "Hi, this is Acme Solar. We have a special offer for homeowners in your area. Reply YES to learn more."
  }
}"#;
pub const SPEC_CALLER_ID: &str = r#"{
  "callerIdStrategy": {
    "selection": "health_score",
    "local_presence": true
  }
}"#;
pub const SPEC_PROSPECTS: &str = r#"{
    "phones": ["+17145551001", "+16195551002", "+18185551003"]
  }"#;

pub fn upload(ct: &str, uri: &str, body: Vec<u8>) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .header(header::CONTENT_TYPE, ct)
        .header(header::HOST, "dialer.example:8080")
        .body(Body::from(body))
        .unwrap()
}
