//! Router tests of campaigns through `tower::ServiceExt::oneshot` on a real SQLite store: the
//! spec's JSON examples sent verbatim, creation and its named field errors, listing, the
//! lifecycle table, cancel, and the stats body. Prospects, audio and HTTP-level errors are in
//! the other `api_*` files.

mod api_common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use trunx::campaign::{Outcome, ProspectEvent};
use trunx::store::Store;

use api_common::*;

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
