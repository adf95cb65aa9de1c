//! Router tests of prospects and what acts on them, through `tower::ServiceExt::oneshot` on a
//! real SQLite store: adding (all or nothing, deduplicated), listing with the dialer's fields,
//! the suppression list, and a campaign's SMS messages.

mod api_common;

use axum::http::StatusCode;
use serde_json::{Value, json};
use trunx::campaign::{Outcome, ProspectEvent};
use trunx::store::Store;

use api_common::*;

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
