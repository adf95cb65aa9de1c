//! Router tests of uploaded assets, through `tower::ServiceExt::oneshot` on a real SQLite
//! store: audio uploaded raw and multipart, served back and used by a campaign, and caller-ID
//! DIDs registered and listed with their health.

mod api_common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use api_common::*;

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
