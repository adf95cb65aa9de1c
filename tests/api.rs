//! Router tests: every endpoint, status and error of the control API through
//! `tower::ServiceExt::oneshot`, on a real SQLite store, including the spec's JSON examples
//! sent verbatim.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;
use trunx::api::{self, AppState, auth};
use trunx::campaign::{Outcome, ProspectEvent};
use trunx::runtime::fetch::{FetchConfig, VoicemailLibrary};
use trunx::store::{SqliteStore, Store};

const KEY: &str = "trunx_test_key";

struct App {
    router: Router,
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

fn app() -> App {
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
    async fn send(&self, req: Request<Body>) -> (StatusCode, Value, Vec<u8>) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, json, bytes)
    }

    async fn call(&self, method: &str, path: &str, body: Option<&str>) -> (StatusCode, Value) {
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

    async fn create(&self, body: &str) -> Value {
        let (s, v) = self.call("POST", "/campaigns", Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v
    }
}

fn assert_error(v: &Value, code: &str) {
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
}

fn phones(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("+1818{:07}", i)).collect()
}

// The spec's examples, verbatim.
const SPEC_MODE_1: &str = r#"{
  "channel": "voice",
  "mode": {
    "voicemailAudioUrl": "https://api.trunx.io/audio/aud_001/file",
    "max_retries": 2,
    "retry_delay": "4h"
  }
}"#;
const SPEC_MODE_2: &str = r#"{
  "channel": "voice",
  "mode": {
    "ai": true,
    "voicemailAudioUrl": "https://api.trunx.io/audio/aud_001/file",
    "calls_per_second": 10,
    "max_retries": 2,
    "retry_delay": "4h"
  }
}"#;
const SPEC_MODE_3: &str = r#"{
  "channel": "voice",
  "mode": {
    "ai": true,
    "calls_per_second": 5
  }
}"#;
const SPEC_MODE_4: &str = r#"{
  "channel": "sms",
  "mode": {
    "message": "Hi, this is Acme Solar. We have a special offer for homeowners in your area. Reply YES to learn more."
  }
}"#;
const SPEC_CALLER_ID: &str = r#"{
  "callerIdStrategy": {
    "selection": "health_score",
    "local_presence": true
  }
}"#;
const SPEC_PROSPECTS: &str = r#"{
    "phones": ["+17145551001", "+16195551002", "+18185551003"]
  }"#;

#[tokio::test]
async fn spec_examples_are_accepted_verbatim_and_echoed() {
    let app = app();
    for (body, channel) in [
        (SPEC_MODE_1, "voice"),
        (SPEC_MODE_2, "voice"),
        (SPEC_MODE_3, "voice"),
        (SPEC_MODE_4, "sms"),
        (SPEC_CALLER_ID, "voice"),
    ] {
        let sent: Value = serde_json::from_str(body).unwrap();
        let v = app.create(body).await;
        assert_eq!(v["channel"], channel);
        assert_eq!(v["status"], "created");
        assert!(v["id"].as_str().unwrap().starts_with("camp_"));
        assert_eq!(
            v["name"], v["id"],
            "unnamed campaigns are named after their id"
        );
        if let Some(mode) = sent.get("mode") {
            assert_eq!(&v["mode"], mode);
        }
        if let Some(s) = sent.get("callerIdStrategy") {
            assert_eq!(&v["callerIdStrategy"], s);
        }
        let (s, got) = app
            .call(
                "GET",
                &format!("/campaigns/{}", v["id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        // GET adds the campaign's 30-day abandonment (issue 20) to the contract's keys.
        let mut got = got;
        let abandonment = got.as_object_mut().unwrap().remove("abandonment").unwrap();
        assert_eq!(abandonment["liveAnswers30d"], 0);
        assert_eq!(abandonment["maxRate"], 0.03);
        assert_eq!(got, v);
    }
    // The prospects body of the spec's curl example.
    let c = app.create(r#"{"name": "Acme"}"#).await;
    let id = c["id"].as_str().unwrap();
    let (s, v) = app
        .call(
            "POST",
            &format!("/campaigns/{id}/prospects"),
            Some(SPEC_PROSPECTS),
        )
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!({"added": 3})));
}

#[tokio::test]
async fn create_campaign_full_body_and_unknown_mode_keys() {
    let app = app();
    let v = app
        .create(
            r#"{"name": "Solar Q4", "channel": "voice",
                "mode": {"ai": false, "calls_per_second": 2.5, "max_retries": 0,
                         "retry_delay": "1h30m", "future_flag": {"x": [1, 2]}},
                "callerIds": ["+17145550100", "+16195550101"],
                "callerIdStrategy": {"selection": "round_robin", "weights": [1]},
                "schedule": {"days": ["mon", "tue"]}}"#,
        )
        .await;
    assert_eq!(v["name"], "Solar Q4");
    assert_eq!(v["mode"]["future_flag"], json!({"x": [1, 2]}));
    assert_eq!(v["callerIds"], json!(["+17145550100", "+16195550101"]));
    assert_eq!(v["callerIdStrategy"]["weights"], json!([1]));
    assert_eq!(v["schedule"], json!({"days": ["mon", "tue"]}));
    assert_eq!(v["createdAt"], "2026-11-18T11:06:40.000Z");
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 10);
}

#[tokio::test]
async fn create_campaign_invalid_fields_are_named() {
    let app = app();
    let cases = [
        (
            r#"{"mode": {"calls_per_second": 11}}"#,
            "mode.calls_per_second",
        ),
        (
            r#"{"mode": {"calls_per_second": 0}}"#,
            "mode.calls_per_second",
        ),
        (r#"{"mode": {"max_retries": 21}}"#, "mode.max_retries"),
        (r#"{"mode": {"max_retries": 1.5}}"#, "mode.max_retries"),
        (r#"{"mode": {"retry_delay": "soon"}}"#, "mode.retry_delay"),
        (r#"{"mode": {"retry_delay": 4}}"#, "mode.retry_delay"),
        (r#"{"mode": {"ai": "yes"}}"#, "mode.ai"),
        (
            r#"{"mode": {"voicemailAudioUrl": "ftp://x/y"}}"#,
            "mode.voicemailAudioUrl",
        ),
        (
            r#"{"mode": {"voicemailAudioUrl": "/audio/aud_missing/file"}}"#,
            "mode.voicemailAudioUrl",
        ),
        (r#"{"mode": "fast"}"#, "mode"),
        (r#"{"channel": "sms"}"#, "mode.message"),
        (
            r#"{"channel": "sms", "mode": {"message": ""}}"#,
            "mode.message",
        ),
        (r#"{"channel": "fax"}"#, "channel"),
        (r#"{"name": 5}"#, "name"),
        (r#"{"name": "  "}"#, "name"),
        (
            r#"{"callerIdStrategy": {"selection": "best"}}"#,
            "callerIdStrategy.selection",
        ),
        (
            r#"{"callerIdStrategy": {"local_presence": "yes"}}"#,
            "callerIdStrategy.local_presence",
        ),
        (r#"{"callerIdStrategy": []}"#, "callerIdStrategy"),
        (
            r#"{"caller_id_strategy": {"selection": "random"}}"#,
            "caller_id_strategy",
        ),
        (
            r#"{"callerIds": ["+17145550100", "7145550101"]}"#,
            "callerIds[1]",
        ),
        (r#"{"callerIds": "+17145550100"}"#, "callerIds"),
        (r#"{"schedule": "weekdays"}"#, "schedule"),
        (r#"[1, 2]"#, "body"),
    ];
    for (body, field) in cases {
        let (s, v) = app.call("POST", "/campaigns", Some(body)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert_error(&v, "invalid_field");
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
    }
    let long = format!(
        r#"{{"channel": "sms", "mode": {{"message": "{}"}}}}"#,
        "x".repeat(1601)
    );
    let (s, v) = app.call("POST", "/campaigns", Some(&long)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "mode.message");
    let ok = format!(
        r#"{{"channel": "sms", "mode": {{"message": "{}"}}}}"#,
        "x".repeat(1600)
    );
    app.create(&ok).await;
    // Nothing was created by the rejected requests.
    let (_, list) = app.call("GET", "/campaigns", None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn auth_is_required_everywhere_but_openapi() {
    let app = app();
    let c = app.create("{}").await;
    let id = c["id"].as_str().unwrap();
    let paths = [
        ("POST", "/campaigns".to_string()),
        ("GET", "/campaigns".to_string()),
        ("GET", format!("/campaigns/{id}")),
        ("POST", format!("/campaigns/{id}/prospects")),
        ("GET", format!("/campaigns/{id}/prospects")),
        ("POST", format!("/campaigns/{id}/start")),
        ("POST", format!("/campaigns/{id}/pause")),
        ("POST", format!("/campaigns/{id}/resume")),
        ("POST", format!("/campaigns/{id}/cancel")),
        ("GET", format!("/campaigns/{id}/stats")),
        ("POST", "/audio/upload".to_string()),
        ("GET", "/audio/aud_x/file".to_string()),
        ("POST", "/dids".to_string()),
        ("GET", "/dids".to_string()),
        ("GET", "/events".to_string()),
        ("GET", "/metrics".to_string()),
    ];
    for (method, path) in &paths {
        for auth in [
            None,
            Some("Bearer nope"),
            Some("Basic dXNlcjpwYXNz"),
            Some("Bearer "),
        ] {
            let mut b = Request::builder().method(*method).uri(path);
            if let Some(a) = auth {
                b = b.header(header::AUTHORIZATION, a);
            }
            let (s, v, _) = app.send(b.body(Body::empty()).unwrap()).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path} {auth:?}");
            assert_error(&v, "unauthorized");
        }
    }
    // Lower-case scheme works; a revoked key does not.
    let req = Request::builder()
        .uri("/campaigns")
        .header(header::AUTHORIZATION, format!("bearer {KEY}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(req).await.0, StatusCode::OK);
    app.store.revoke_api_key("test", 1).unwrap();
    let (s, _) = app.call("GET", "/campaigns", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let req = Request::builder()
        .uri("/openapi.json")
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(req).await.0, StatusCode::OK);
}

#[tokio::test]
async fn body_errors_400_413_415() {
    let app = app();
    let (s, v) = app.call("POST", "/campaigns", Some(r#"{"name": "#)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_error(&v, "malformed_json");
    let (s, v) = app.call("POST", "/campaigns", Some("")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_error(&v, "malformed_json");
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut b = Request::builder()
            .method("POST")
            .uri("/campaigns")
            .header(header::AUTHORIZATION, format!("Bearer {KEY}"));
        if let Some(ct) = ct {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        let (s, v, _) = app.send(b.body(Body::from("{}")).unwrap()).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
        assert_error(&v, "unsupported_media_type");
    }
    let req = Request::builder()
        .method("POST")
        .uri("/campaigns")
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(app.send(req).await.0, StatusCode::CREATED);
    let huge = format!(r#"{{"name": "{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let (s, v) = app.call("POST", "/campaigns", Some(&huge)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&v, "payload_too_large");
}

#[tokio::test]
async fn unknown_ids_routes_and_methods() {
    let app = app();
    for (m, p) in [
        ("GET", "/campaigns/camp_nope"),
        ("GET", "/campaigns/camp_nope/stats"),
        ("GET", "/campaigns/camp_nope/prospects"),
        ("POST", "/campaigns/camp_nope/start"),
        ("POST", "/campaigns/camp_nope/pause"),
        ("POST", "/campaigns/camp_nope/resume"),
        ("POST", "/campaigns/camp_nope/cancel"),
        ("GET", "/audio/aud_nope/file"),
        ("GET", "/nowhere"),
    ] {
        let (s, v) = app.call(m, p, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{m} {p}");
        assert_error(&v, "not_found");
    }
    let (s, v) = app
        .call(
            "POST",
            "/campaigns/camp_nope/prospects",
            Some(SPEC_PROSPECTS),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_error(&v, "not_found");
    let (s, v) = app.call("DELETE", "/campaigns", None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&v, "method_not_allowed");
}

#[tokio::test]
async fn prospects_all_or_nothing_dedup_and_status() {
    let app = app();
    let c = app.create(r#"{"name": "p"}"#).await;
    let id = c["id"].as_str().unwrap();
    let path = format!("/campaigns/{id}/prospects");
    // One bad number rejects the whole request, naming index and value.
    let (s, v) = app
        .call(
            "POST",
            &path,
            Some(r#"{"phones": ["+17145551001", "+16195551002", "555-1234"]}"#),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&v, "invalid_field");
    assert_eq!(v["error"]["field"], "phones[2]");
    assert_eq!(v["error"]["index"], 2);
    assert_eq!(v["error"]["value"], "555-1234");
    let (_, st) = app
        .call("GET", &format!("/campaigns/{id}/stats"), None)
        .await;
    assert_eq!(st["total"], 0);
    let (s, v) = app
        .call("POST", &path, Some(r#"{"phones": ["+17145551001", 5]}"#))
        .await;
    assert_eq!(
        (s, &v["error"]["index"], &v["error"]["value"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!(1), &json!(5))
    );
    for body in [
        r#"{"phones": []}"#,
        r#"{}"#,
        r#"{"phones": "+17145551001"}"#,
    ] {
        let (s, v) = app.call("POST", &path, Some(body)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(v["error"]["field"], "phones");
    }
    let too_many = json!({ "phones": phones(10_001) }).to_string();
    let (s, v) = app.call("POST", &path, Some(&too_many)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "phones");
    // 10,000 in one request.
    let max = json!({ "phones": phones(10_000) }).to_string();
    let (s, v) = app.call("POST", &path, Some(&max)).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"added": 10_000})));
    // Numbers already in the campaign, or repeated, are not added twice nor counted.
    let body = json!({"phones": ["+18180000000", "+18180000001", "+19995550000", "+19995550000"]})
        .to_string();
    let (s, v) = app.call("POST", &path, Some(&body)).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"added": 1})));
    let (_, st) = app
        .call("GET", &format!("/campaigns/{id}/stats"), None)
        .await;
    assert_eq!(
        (st["total"].as_i64(), st["queued"].as_i64()),
        (Some(10_001), Some(10_001))
    );
    // Only in created or paused.
    app.call("POST", &format!("/campaigns/{id}/start"), None)
        .await;
    let (s, v) = app.call("POST", &path, Some(SPEC_PROSPECTS)).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_error(&v, "invalid_status");
    assert_eq!(v["error"]["status"], "dialing");
    app.call("POST", &format!("/campaigns/{id}/pause"), None)
        .await;
    let (s, v) = app.call("POST", &path, Some(SPEC_PROSPECTS)).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"added": 3})));
    app.call("POST", &format!("/campaigns/{id}/cancel"), None)
        .await;
    let (s, v) = app.call("POST", &path, Some(SPEC_PROSPECTS)).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["error"]["status"], "cancelled");
}

#[tokio::test]
async fn prospects_list_paginated_with_dialer_fields() {
    let app = app();
    let c = app.create("{}").await;
    let id = c["id"].as_str().unwrap();
    app.call(
        "POST",
        &format!("/campaigns/{id}/prospects"),
        Some(SPEC_PROSPECTS),
    )
    .await;
    app.call("POST", &format!("/campaigns/{id}/start"), None)
        .await;
    let (_, page) = app
        .call("GET", &format!("/campaigns/{id}/prospects?limit=2"), None)
        .await;
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["phone"], "+17145551001");
    assert_eq!(data[0]["status"], "queued");
    assert_eq!(data[0]["attempts"], 0);
    for k in ["lastOutcome", "amdResult", "nextAttemptAt"] {
        assert_eq!(data[0][k], Value::Null, "{k}");
    }
    // The dialer records an outcome; the list shows it.
    let pid = data[0]["id"].as_str().unwrap();
    app.store
        .record_prospect_event(id, pid, &ProspectEvent::Dialing, 5)
        .unwrap();
    app.store
        .record_prospect_event(
            id,
            pid,
            &ProspectEvent::RetryLater {
                outcome: Outcome::Voicemail,
                amd: Some(trunx::campaign::AmdResult::Machine),
                next_attempt_at_ms: 1_795_000_000_000,
            },
            6,
        )
        .unwrap();
    let cursor = page["nextCursor"].as_str().unwrap().to_string();
    let (_, page2) = app
        .call(
            "GET",
            &format!("/campaigns/{id}/prospects?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(page2["data"].as_array().unwrap().len(), 1);
    assert_eq!(page2["nextCursor"], Value::Null);
    let (_, all) = app
        .call("GET", &format!("/campaigns/{id}/prospects"), None)
        .await;
    let first = &all["data"][0];
    assert_eq!(first["attempts"], 1);
    assert_eq!(first["lastOutcome"], "voicemail");
    assert_eq!(first["amdResult"], "machine");
    assert_eq!(first["nextAttemptAt"], "2026-11-18T11:06:40.000Z");
    for q in [
        "limit=0",
        "limit=1001",
        "limit=x",
        "cursor=abc",
        "cursor=-1",
    ] {
        let (s, v) = app
            .call("GET", &format!("/campaigns/{id}/prospects?{q}"), None)
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{q}");
        assert_eq!(v["error"]["field"], q.split('=').next().unwrap());
    }
}

#[tokio::test]
async fn campaigns_list_paginated_and_filtered() {
    let app = app();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            app.create(&format!(r#"{{"name": "c{i}"}}"#)).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    app.call("POST", &format!("/campaigns/{}/start", ids[1]), None)
        .await;
    app.call("POST", &format!("/campaigns/{}/cancel", ids[3]), None)
        .await;
    let mut seen = Vec::new();
    let mut url = "/campaigns?limit=2".to_string();
    loop {
        let (s, page) = app.call("GET", &url, None).await;
        assert_eq!(s, StatusCode::OK);
        for c in page["data"].as_array().unwrap() {
            seen.push(c["id"].as_str().unwrap().to_string());
        }
        match page["nextCursor"].as_str() {
            Some(c) => url = format!("/campaigns?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let (_, d) = app.call("GET", "/campaigns?status=dialing", None).await;
    assert_eq!(d["data"].as_array().unwrap().len(), 1);
    assert_eq!(d["data"][0]["id"], ids[1].as_str());
    let (_, c) = app
        .call("GET", "/campaigns?status=created&limit=10", None)
        .await;
    assert_eq!(c["data"].as_array().unwrap().len(), 3);
    let (s, v) = app.call("GET", "/campaigns?status=running", None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "status");
}

#[tokio::test]
async fn lifecycle_follows_the_spec_table() {
    let app = app();
    let c = app
        .create(r#"{"name": "Life", "channel": "sms", "mode": {"message": "hi"}}"#)
        .await;
    let id = c["id"].as_str().unwrap();
    let act = |a: &str| format!("/campaigns/{id}/{a}");
    let expect_409 = |v: &Value, status: &str| {
        assert_error(v, "invalid_status");
        assert_eq!(v["error"]["status"], status, "{v}");
    };
    for a in ["pause", "resume"] {
        let (s, v) = app.call("POST", &act(a), None).await;
        assert_eq!(s, StatusCode::CONFLICT);
        expect_409(&v, "created");
    }
    let (s, v) = app.call("POST", &act("start"), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v,
        json!({"id": id, "name": "Life", "status": "dialing", "channel": "sms"})
    );
    assert_eq!(
        serde_json::to_string(&v).unwrap().len(),
        serde_json::to_string(
            &json!({"id": id, "name": "Life", "status": "dialing", "channel": "sms"})
        )
        .unwrap()
        .len()
    );
    for a in ["start", "resume"] {
        let (s, v) = app.call("POST", &act(a), None).await;
        assert_eq!(s, StatusCode::CONFLICT);
        expect_409(&v, "dialing");
    }
    let (_, v) = app.call("POST", &act("pause"), None).await;
    assert_eq!(v["status"], "paused");
    for a in ["start", "pause"] {
        let (s, v) = app.call("POST", &act(a), None).await;
        assert_eq!(s, StatusCode::CONFLICT);
        expect_409(&v, "paused");
    }
    let (_, v) = app.call("POST", &act("resume"), None).await;
    assert_eq!(v["status"], "dialing");
    let (s, v) = app.call("POST", &act("cancel"), None).await;
    assert_eq!((s, &v["status"]), (StatusCode::OK, &json!("cancelled")));
    for a in ["start", "pause", "resume", "cancel"] {
        let (s, v) = app.call("POST", &act(a), None).await;
        assert_eq!(s, StatusCode::CONFLICT);
        expect_409(&v, "cancelled");
    }
    // Cancel from created works too.
    let c2 = app.create("{}").await;
    let (s, v) = app
        .call(
            "POST",
            &format!("/campaigns/{}/cancel", c2["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!((s, &v["status"]), (StatusCode::OK, &json!("cancelled")));
}

#[tokio::test]
async fn cancel_marks_queued_prospects_and_stats_have_the_14_keys() {
    let app = app();
    let c = app.create("{}").await;
    let id = c["id"].as_str().unwrap();
    app.call(
        "POST",
        &format!("/campaigns/{id}/prospects"),
        Some(SPEC_PROSPECTS),
    )
    .await;
    app.call("POST", &format!("/campaigns/{id}/start"), None)
        .await;
    let (_, page) = app
        .call("GET", &format!("/campaigns/{id}/prospects"), None)
        .await;
    let first = page["data"][0]["id"].as_str().unwrap();
    app.store
        .record_prospect_event(id, first, &ProspectEvent::Dialing, 1)
        .unwrap();
    app.store
        .record_prospect_event(
            id,
            first,
            &ProspectEvent::Finished {
                outcome: Outcome::Busy,
                amd: None,
            },
            2,
        )
        .unwrap();
    let (s, st) = app
        .call("GET", &format!("/campaigns/{id}/stats"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let keys: Vec<&str> = st.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = vec![
        "total",
        "queued",
        "dialing",
        "completed",
        "failed",
        "cancelled",
        "noAnswer",
        "busy",
        "voicemail",
        "humanConnected",
        "sending",
        "sent",
        "delivered",
        "progress",
    ];
    let mut got = keys.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    assert_eq!(
        (
            st["completed"].as_i64(),
            st["busy"].as_i64(),
            st["progress"].as_i64()
        ),
        (Some(1), Some(1), Some(33))
    );
    app.call("POST", &format!("/campaigns/{id}/cancel"), None)
        .await;
    let (_, st) = app
        .call("GET", &format!("/campaigns/{id}/stats"), None)
        .await;
    assert_eq!(
        st,
        json!({"total": 3, "queued": 0, "dialing": 0, "completed": 1, "failed": 0, "cancelled": 2,
               "noAnswer": 0, "busy": 1, "voicemail": 0, "humanConnected": 0, "sending": 0,
               "sent": 0, "delivered": 0, "progress": 33})
    );
    let (_, page) = app
        .call("GET", &format!("/campaigns/{id}/prospects"), None)
        .await;
    let statuses: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["completed", "cancelled", "cancelled"]);
}

#[tokio::test]
async fn stats_body_is_in_the_spec_order() {
    let app = app();
    let c = app.create("{}").await;
    let req = Request::builder()
        .uri(format!("/campaigns/{}/stats", c["id"].as_str().unwrap()))
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .body(Body::empty())
        .unwrap();
    let (_, _, raw) = app.send(req).await;
    assert_eq!(
        String::from_utf8(raw).unwrap(),
        r#"{"total":0,"queued":0,"dialing":0,"completed":0,"failed":0,"cancelled":0,"noAnswer":0,"busy":0,"voicemail":0,"humanConnected":0,"sending":0,"sent":0,"delivered":0,"progress":0}"#
    );
}

fn wav_bytes(seconds: f32) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cur = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
        for i in 0..(8000.0 * seconds) as usize {
            let x = (i as f32 * 2.0 * std::f32::consts::PI * 440.0 / 8000.0).sin();
            w.write_sample((x * 8000.0) as i16).unwrap();
        }
        w.finalize().unwrap();
    }
    cur.into_inner()
}

fn upload(ct: &str, uri: &str, body: Vec<u8>) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .header(header::CONTENT_TYPE, ct)
        .header(header::HOST, "dialer.example:8080")
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn audio_upload_raw_and_multipart_then_serve_and_use() {
    let app = app();
    let wav = wav_bytes(1.5);
    let (s, v, _) = app
        .send(upload(
            "audio/wav",
            "/audio/upload?name=vm.wav",
            wav.clone(),
        ))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap();
    assert!(id.starts_with("aud_"));
    assert_eq!(v["name"], "vm.wav");
    assert_eq!(v["durationSeconds"], 1.5);
    assert_eq!(
        v["url"],
        format!("http://dialer.example:8080/audio/{id}/file")
    );
    assert_eq!(v.as_object().unwrap().len(), 4);
    let req = Request::builder()
        .uri(format!("/audio/{id}/file"))
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .body(Body::empty())
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "audio/wav");
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(body.as_ref(), wav.as_slice());
    // Multipart with a `file` part.
    let boundary = "XyZbOuNdArY";
    let mut mp = Vec::new();
    mp.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"greeting.wav\"\r\nContent-Type: audio/wav\r\n\r\n").as_bytes());
    mp.extend_from_slice(&wav_bytes(0.5));
    mp.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let (s, v2, _) = app
        .send(upload(
            &format!("multipart/form-data; boundary={boundary}"),
            "/audio/upload",
            mp,
        ))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v2}");
    assert_eq!(v2["name"], "greeting.wav");
    assert_eq!(v2["durationSeconds"], 0.5);
    // The URL works as voicemailAudioUrl, absolute or as the relative asset path.
    let body = json!({"mode": {"voicemailAudioUrl": v["url"]}}).to_string();
    app.create(&body).await;
    let body = json!({"mode": {"voicemailAudioUrl": format!("/audio/{id}/file")}}).to_string();
    app.create(&body).await;
    // Errors.
    let (s, v, _) = app
        .send(upload(
            "audio/mpeg",
            "/audio/upload",
            b"not audio at all".to_vec(),
        ))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "file");
    let (s, v, _) = app
        .send(upload("audio/wav", "/audio/upload", Vec::new()))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "file");
    let (s, v, _) = app
        .send(upload("text/plain", "/audio/upload", wav.clone()))
        .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_error(&v, "unsupported_media_type");
    let (s, v, _) = app
        .send(upload(
            "audio/wav",
            "/audio/upload",
            vec![0u8; 17 * 1024 * 1024],
        ))
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&v, "payload_too_large");
}

#[tokio::test]
async fn dids_register_and_list_with_health() {
    let app = app();
    let (s, v) = app
        .call(
            "POST",
            "/dids",
            Some(r#"{"numbers": ["+17145550100", "+16195550101", "+17145550100"]}"#),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["added"], 2);
    let d = &v["data"][0];
    assert!(d["id"].as_str().unwrap().starts_with("did_"));
    assert_eq!(d["state"], "active");
    assert_eq!(d["healthScore"], 100.0);
    assert_eq!(d["callsPlaced"], 0);
    assert_eq!(d["answerRate"], Value::Null);
    let (s, v) = app
        .call("POST", "/dids", Some(r#"{"numbers": ["+17145550100"]}"#))
        .await;
    assert_eq!((s, &v["added"]), (StatusCode::CREATED, &json!(0)));
    let (_, list) = app.call("GET", "/dids", None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    let (_, active) = app.call("GET", "/dids?state=active&limit=1", None).await;
    assert_eq!(active["data"].as_array().unwrap().len(), 1);
    assert!(active["nextCursor"].is_string());
    let (_, burned) = app.call("GET", "/dids?state=burned", None).await;
    assert!(burned["data"].as_array().unwrap().is_empty());
    let (s, v) = app.call("GET", "/dids?state=hot", None).await;
    assert_eq!(
        (s, &v["error"]["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("state"))
    );
    let (s, v) = app
        .call(
            "POST",
            "/dids",
            Some(r#"{"numbers": ["+17145550100", "12"]}"#),
        )
        .await;
    assert_eq!(
        (s, &v["error"]["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("numbers[1]"))
    );
    let (s, _) = app.call("POST", "/dids", Some(r#"{"numbers": []}"#)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn openapi_lists_every_route_and_every_route_is_served() {
    let app = app();
    let req = Request::builder()
        .uri("/openapi.json")
        .body(Body::empty())
        .unwrap();
    let (s, doc, _) = app.send(req).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for r in api::openapi::ROUTES {
        let op = &doc["paths"][r.path][r.method];
        assert!(op.is_object(), "{} {} missing", r.method, r.path);
        assert!(op["responses"][r.ok.0.to_string()].is_object());
        // The router serves it: not the unknown-route 404 nor 405.
        let path = r
            .path
            .replace("{id}", "x_unknown")
            .replace("{phone}", "%2B15550000000");
        // A good request to /events is an endless stream: ask with a bad position instead.
        let path = if r.path == "/events" {
            "/events?after=x".to_string()
        } else {
            path
        };
        let (s, v) = app.call(&r.method.to_uppercase(), &path, None).await;
        assert_ne!(s, StatusCode::METHOD_NOT_ALLOWED, "{} {}", r.method, r.path);
        let msg = v["error"]["message"].as_str().unwrap_or("");
        assert!(!msg.starts_with("no route"), "{} {}: {v}", r.method, r.path);
    }
    let stats = &doc["components"]["schemas"]["Stats"]["required"];
    assert_eq!(stats.as_array().unwrap().len(), 14);
}

#[tokio::test]
async fn suppression_list_is_managed_and_cancels_queued_prospects() {
    let app = app();
    let c = app.create(SPEC_MODE_4).await;
    let id = c["id"].as_str().unwrap();
    let numbers = phones(3);
    let body = json!({ "phones": numbers }).to_string();
    let (s, _) = app
        .call("POST", &format!("/campaigns/{id}/prospects"), Some(&body))
        .await;
    assert_eq!(s, StatusCode::OK);

    // Invalid bodies name the field.
    for (body, field) in [
        (json!({}), "phones"),
        (json!({"phones": []}), "phones"),
        (json!({"phones": ["+18180000000", "0818"]}), "phones[1]"),
        (json!({"phones": ["+18180000000"], "reason": 7}), "reason"),
        (json!({"phones": ["+18180000000"], "reason": ""}), "reason"),
        (
            json!({"phones": ["+18180000000"], "reason": "x".repeat(65)}),
            "reason",
        ),
        (json!({"phones": phones(10_001)}), "phones"),
    ] {
        let (s, v) = app
            .call("POST", "/suppression", Some(&body.to_string()))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_error(&v, "invalid_field");
        assert_eq!(v["error"]["field"], field, "{v}");
    }
    let (s, v) = app.call("GET", "/suppression", None).await;
    assert_eq!(
        (s, v["data"].as_array().unwrap().len()),
        (StatusCode::OK, 0),
        "nothing half-applied"
    );

    let body = json!({"phones": [numbers[0], "+442071838750"], "reason": "complaint"}).to_string();
    let (s, v) = app.call("POST", "/suppression", Some(&body)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"added": 2, "prospectsCancelled": 1}));
    let (_, st) = app
        .call("GET", &format!("/campaigns/{id}/stats"), None)
        .await;
    assert_eq!(
        (
            st["total"].as_i64(),
            st["queued"].as_i64(),
            st["cancelled"].as_i64()
        ),
        (Some(3), Some(2), Some(1))
    );
    let (_, ps) = app
        .call("GET", &format!("/campaigns/{id}/prospects"), None)
        .await;
    let first = &ps["data"][0];
    assert_eq!(
        (&first["phone"], &first["status"], &first["waitReason"]),
        (
            &json!(numbers[0]),
            &json!("cancelled"),
            &json!("suppressed")
        )
    );

    // Listed in order, paged, with reason and source.
    let (s, page1) = app.call("GET", "/suppression?limit=1", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page1["data"][0]["phone"], json!(numbers[0]));
    assert_eq!(page1["data"][0]["reason"], "complaint");
    assert_eq!(page1["data"][0]["source"], "api");
    assert!(
        page1["data"][0]["createdAt"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let cursor = page1["nextCursor"].as_str().unwrap();
    let (_, page2) = app
        .call(
            "GET",
            &format!("/suppression?limit=1&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(page2["data"][0]["phone"], "+442071838750");
    assert_eq!(page2["nextCursor"], Value::Null);

    // A suppressed number added later is accepted and counted, but cancelled.
    let c2 = app.create(SPEC_MODE_4).await;
    let id2 = c2["id"].as_str().unwrap();
    let body = json!({"phones": [numbers[0], numbers[1]]}).to_string();
    let (_, v) = app
        .call("POST", &format!("/campaigns/{id2}/prospects"), Some(&body))
        .await;
    assert_eq!(v["added"], 2);
    let (_, st) = app
        .call("GET", &format!("/campaigns/{id2}/stats"), None)
        .await;
    assert_eq!(
        (st["queued"].as_i64(), st["cancelled"].as_i64()),
        (Some(1), Some(1))
    );

    // Delete: `+` written as %2B (or literally), 204, then 404; a non-number is 422.
    let encoded = numbers[0].replace('+', "%2B");
    let (s, _) = app
        .call("DELETE", &format!("/suppression/{encoded}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = app
        .call("DELETE", &format!("/suppression/{}", numbers[0]), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_error(&v, "not_found");
    let (s, v) = app.call("DELETE", "/suppression/12345", None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "phone");
    assert!(!app.store.is_suppressed(&numbers[0]).unwrap());
    assert!(app.store.is_suppressed("+442071838750").unwrap());
}

#[tokio::test]
async fn campaign_messages_are_listed_with_carrier_ids_and_status() {
    let app = app();
    let c = app.create(SPEC_MODE_4).await;
    let id = c["id"].as_str().unwrap();
    let numbers = phones(3);
    app.store.add_prospects(id, &numbers, 1).unwrap();
    let (s, _) = app
        .call("POST", &format!("/campaigns/{id}/start"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    for (i, n) in numbers.iter().enumerate() {
        let m = app
            .store
            .begin_message(id, n, "+17145550000", 2, 1_795_000_100_000)
            .unwrap();
        if i < 2 {
            let ids = vec![format!("a{i}"), format!("b{i}")];
            app.store
                .message_accepted(&m.id, &ids, 1_795_000_100_500)
                .unwrap();
        }
    }
    app.store
        .message_receipt("a0", false, Some("001"), 1_795_000_200_000)
        .unwrap();
    let (s, v) = app
        .call("GET", &format!("/campaigns/{id}/messages?limit=2"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let m0 = &v["data"][0];
    assert_eq!(m0["phone"], json!(numbers[0]));
    assert_eq!(m0["did"], "+17145550000");
    assert_eq!(m0["parts"], 2);
    assert_eq!(m0["messageIds"], json!(["a0", "b0"]));
    assert_eq!(m0["status"], "failed");
    assert_eq!(m0["errorCode"], "001");
    assert_eq!(m0["submittedAt"], "2026-11-18T11:08:20.500Z");
    assert_eq!(m0["receiptAt"], "2026-11-18T11:10:00.000Z");
    assert_eq!(v["data"][1]["status"], "sent");
    let cursor = v["nextCursor"].as_str().unwrap();
    let (_, v) = app
        .call(
            "GET",
            &format!("/campaigns/{id}/messages?cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(v["data"][0]["status"], "sending");
    assert_eq!(v["data"][0]["messageIds"], json!([]));
    assert_eq!(v["data"][0]["receiptAt"], Value::Null);
    let (_, st) = app
        .call("GET", &format!("/campaigns/{id}/stats"), None)
        .await;
    assert_eq!(
        (
            st["sending"].as_i64(),
            st["sent"].as_i64(),
            st["failed"].as_i64()
        ),
        (Some(1), Some(1), Some(1))
    );
    let (s, v) = app.call("GET", "/campaigns/camp_nope/messages", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_error(&v, "not_found");
}
