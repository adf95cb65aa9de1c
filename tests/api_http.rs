//! Router tests of what every endpoint shares, through `tower::ServiceExt::oneshot`: auth
//! everywhere but the OpenAPI document, body errors (400, 413, 415), unknown ids, routes and
//! methods, and the OpenAPI document listing every route that is served.

mod api_common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use trunx::api;
use trunx::store::Store;

use api_common::*;

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
