//! Fetching `voicemailAudioUrl` against a local HTTP server started in each test (`server`:
//! a raw tokio listener, so a test can lie about Content-Length, stall or redirect as it
//! likes): audio served and prepared, ETag and Last-Modified revalidation, every refusal with
//! the URL and reason, this server's own assets read from the store, and campaign start
//! through the API.
//!
//! The test server listens on loopback, so the tests that must reach it set
//! `allow_private`; the refusal tests leave it off and check the server saw no request.

mod server;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode as HttpStatus, header};
use reqwest::Url;
use serde_json::{Value, json};
use tower::ServiceExt;
use trunx::api::{self, AppState, auth};
use trunx::audio::prompt::PromptError;
use trunx::egress::{AddressRange, EgressError, EgressPolicy, HostPattern, LocalOrigins};
use trunx::runtime::fetch::{FetchConfig, FetchError, FetchFailure, VoicemailLibrary};
use trunx::store::{SqliteStore, Store};

use server::{Reply, TestServer, chunked, close_delimited, ok_audio, response};

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("audio-fixtures/prompts")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// 1 s, 44.1 kHz stereo, 176,444 bytes.
fn wav() -> Vec<u8> {
    fixture("tone1k-44k1-stereo.wav")
}

/// 11.5 s (despite its name), 44.1 kHz mono, 64 kbit/s.
fn mp3() -> Vec<u8> {
    fixture("voicemail-10s.mp3")
}

struct Fixture {
    library: Arc<VoicemailLibrary>,
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

fn library(config: FetchConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("fetch.db"), 11).unwrap());
    let library = VoicemailLibrary::new(config, store.clone()).unwrap();
    Fixture {
        library: Arc::new(library),
        store,
        _dir: dir,
    }
}

/// Reaches the loopback test server.
fn open_config() -> FetchConfig {
    FetchConfig {
        timeout: Duration::from_secs(10),
        policy: EgressPolicy {
            allow_hosts: Vec::new(),
            allow_private: true,
        },
        ..FetchConfig::default()
    }
}

/// The defaults: internal addresses refused.
fn strict_config() -> FetchConfig {
    FetchConfig::default()
}

async fn failure(library: &VoicemailLibrary, url: &str) -> FetchError {
    match library.prepare(url).await {
        Ok(p) => panic!("{url}: prepared {} ms, expected an error", p.duration_ms()),
        Err(e) => e,
    }
}

#[tokio::test]
async fn wav_and_mp3_are_fetched_decoded_and_shared() {
    let server = TestServer::start(|req| match req.path.as_str() {
        "/greeting.wav" => ok_audio(&wav(), "audio/wav"),
        // A server that does not know what it serves: the bytes decide.
        "/greeting.mp3" => ok_audio(&mp3(), "application/octet-stream"),
        _ => Reply::Raw(response("404 Not Found", &[], b"")),
    })
    .await;
    let f = library(open_config());
    let wav_url = server.url("/greeting.wav");
    let mp3_url = server.url("/greeting.mp3");
    assert!(f.library.get(&wav_url).is_none());

    let w = f.library.prepare(&wav_url).await.unwrap();
    assert_eq!((w.source_rate, w.source_channels), (44_100, 2));
    assert_eq!(w.duration_ms(), 1000);
    assert_eq!(w.ulaw_frames.len(), 50);
    let m = f.library.prepare(&mp3_url).await.unwrap();
    assert_eq!(m.source_rate, 44_100);
    assert!(
        (11_400..11_600).contains(&m.duration_ms()),
        "{}",
        m.duration_ms()
    );
    assert_eq!(m.ulaw_frames.len() as u64, m.duration_ms() / 20);

    // The dialer's read: the same prepared prompt, no I/O.
    assert!(Arc::ptr_eq(&f.library.get(&wav_url).unwrap(), &w));
    assert!(Arc::ptr_eq(&f.library.get(&mp3_url).unwrap(), &m));
    let c = f.library.counters();
    assert_eq!((c.requests, c.decodes, c.not_modified), (2, 2, 0));
    assert_eq!(server.seen().len(), 2);
    assert!(
        server.seen()[0]
            .header("user-agent")
            .is_some_and(|ua| ua.starts_with("trunx/"))
    );
}

#[tokio::test]
async fn etag_revalidation_reuses_the_prepared_prompt_until_the_file_changes() {
    let version = Arc::new(AtomicUsize::new(1));
    let v = version.clone();
    let server = TestServer::start(move |req| {
        let current = v.load(Ordering::SeqCst);
        let etag = format!("\"v{current}\"");
        if req.header("if-none-match") == Some(etag.as_str()) {
            return Reply::Raw(response("304 Not Modified", &[("ETag", &etag)], b""));
        }
        let body = if current == 1 { wav() } else { mp3() };
        Reply::Raw(response(
            "200 OK",
            &[("ETag", &etag), ("Content-Type", "audio/mpeg")],
            &body,
        ))
    })
    .await;
    let f = library(open_config());
    let url = server.url("/vm");
    let first = f.library.prepare(&url).await.unwrap();
    assert_eq!(f.library.counters().decodes, 1);

    let again = f.library.prepare(&url).await.unwrap();
    let seen = server.seen();
    assert_eq!(seen[0].header("if-none-match"), None);
    assert_eq!(seen[1].header("if-none-match"), Some("\"v1\""));
    assert!(
        Arc::ptr_eq(&first, &again),
        "a 304 reuses the prepared prompt"
    );
    let c = f.library.counters();
    assert_eq!((c.requests, c.decodes, c.not_modified), (2, 1, 1));

    version.store(2, Ordering::SeqCst);
    let changed = f.library.prepare(&url).await.unwrap();
    assert!(!Arc::ptr_eq(&first, &changed));
    assert!(
        changed.duration_ms() > 9_000,
        "the new file is the 11.5 s MP3"
    );
    assert_eq!(server.seen()[2].header("if-none-match"), Some("\"v1\""));
    assert_eq!(f.library.counters().decodes, 2);
    assert!(Arc::ptr_eq(&f.library.get(&url).unwrap(), &changed));
}

#[tokio::test]
async fn last_modified_revalidation_sends_if_modified_since() {
    const DATE: &str = "Wed, 25 Nov 2026 08:00:00 GMT";
    let server = TestServer::start(|req| {
        if req.header("if-modified-since") == Some(DATE) {
            return Reply::Raw(response("304 Not Modified", &[], b""));
        }
        Reply::Raw(response(
            "200 OK",
            &[("Last-Modified", DATE), ("Content-Type", "audio/wav")],
            &wav(),
        ))
    })
    .await;
    let f = library(open_config());
    let url = server.url("/vm.wav");
    let first = f.library.prepare(&url).await.unwrap();
    let again = f.library.prepare(&url).await.unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].header("if-modified-since"), Some(DATE));
    assert_eq!(seen[1].header("if-none-match"), None);
    let c = f.library.counters();
    assert_eq!((c.decodes, c.not_modified), (1, 1));
}

#[tokio::test]
async fn a_404_names_the_url_and_the_status_without_secrets() {
    let server = TestServer::start(|_| {
        Reply::Raw(response(
            "404 Not Found",
            &[("Content-Type", "text/html")],
            b"<html>gone</html>",
        ))
    })
    .await;
    let f = library(open_config());
    let url = format!(
        "http://user:hunter2@{}/missing.wav?token=s3cr3t",
        server.addr
    );
    let e = failure(&f.library, &url).await;
    assert!(
        matches!(e.reason, FetchFailure::Status { status } if status.as_u16() == 404),
        "{e}"
    );
    let text = e.to_string();
    assert_eq!(
        text,
        format!(
            "http://***@{}/missing.wav?token=***: HTTP status 404 Not Found",
            server.addr
        )
    );
    assert!(!text.contains("hunter2") && !text.contains("s3cr3t"));
    // The credentials still went to the server: only the logs and errors hide them.
    assert!(server.seen()[0].header("authorization").is_some());
    assert!(f.library.get(&url).is_none());
    // Nothing was decoded for an error page.
    assert_eq!(f.library.counters().decodes, 0);
}

#[tokio::test]
async fn a_stalled_server_times_out_before_and_during_the_body() {
    let server = TestServer::start(|req| match req.path.as_str() {
        "/silent" => Reply::ThenStall(Vec::new()),
        _ => {
            let body = wav();
            let mut head = response("200 OK", &[("Content-Length", "176444")], b"");
            head.extend_from_slice(&body[..10_000]);
            Reply::ThenStall(head)
        }
    })
    .await;
    let f = library(FetchConfig {
        timeout: Duration::from_millis(500),
        ..open_config()
    });
    for path in ["/silent", "/half-body"] {
        let started = trunx::runtime::clock::now();
        let e = failure(&f.library, &server.url(path)).await;
        let waited = started.elapsed();
        assert!(
            matches!(e.reason, FetchFailure::TimedOut { .. }),
            "{path}: {e}"
        );
        assert!(e.to_string().ends_with("timed out after 0.5 s"), "{e}");
        assert!(
            waited >= Duration::from_millis(450) && waited < Duration::from_secs(3),
            "{path}: {waited:?}"
        );
    }
}

#[tokio::test]
async fn too_large_with_and_without_content_length_and_with_a_lying_one() {
    let body = wav();
    let big = body.clone();
    let server = TestServer::start(move |req| match req.path.as_str() {
        "/declared" => ok_audio(&big, "audio/wav"),
        "/chunked" => Reply::Raw(chunked(&big)),
        "/until-close" => Reply::Raw(close_delimited(&big)),
        // Claims more than the cap, sends little: refused on the header alone.
        "/overstated" => Reply::Raw(response(
            "200 OK",
            &[("Content-Length", "999999999")],
            &big[..1000],
        )),
        // Claims 2,000 bytes and sends all 176,444: only the 2,000 are ever read.
        "/understated" => Reply::Raw(response("200 OK", &[("Content-Length", "2000")], &big)),
        _ => Reply::Raw(response("404 Not Found", &[], b"")),
    })
    .await;
    let f = library(FetchConfig {
        max_bytes: 50_000,
        ..open_config()
    });
    let e = failure(&f.library, &server.url("/declared")).await;
    assert!(
        matches!(
            e.reason,
            FetchFailure::TooLarge {
                limit: 50_000,
                declared: Some(176_444)
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .ends_with("larger than 50000 bytes (Content-Length 176444)"),
        "{e}"
    );
    for path in ["/chunked", "/until-close"] {
        let e = failure(&f.library, &server.url(path)).await;
        assert!(
            matches!(
                e.reason,
                FetchFailure::TooLarge {
                    limit: 50_000,
                    declared: None
                }
            ),
            "{path}: {e}"
        );
    }
    let e = failure(&f.library, &server.url("/overstated")).await;
    assert!(
        matches!(
            e.reason,
            FetchFailure::TooLarge {
                declared: Some(999_999_999),
                ..
            }
        ),
        "{e}"
    );
    let e = failure(&f.library, &server.url("/understated")).await;
    assert!(
        matches!(
            e.reason,
            FetchFailure::Decode(PromptError::Truncated { .. })
        ),
        "the body ends where its Content-Length says: {e}"
    );
    // The same file under the cap is fine.
    let roomy = library(open_config());
    assert!(roomy.library.prepare(&server.url("/chunked")).await.is_ok());
    assert!(
        roomy
            .library
            .prepare(&server.url("/until-close"))
            .await
            .is_ok()
    );
    assert_eq!(body.len(), 176_444);
}

#[tokio::test]
async fn html_and_other_non_audio_bodies_are_refused_by_their_bytes() {
    let server = TestServer::start(|req| match req.path.as_str() {
        "/page" => Reply::Raw(response(
            "200 OK",
            &[("Content-Type", "text/html; charset=utf-8")],
            b"<!DOCTYPE html><html><body>Sign in</body></html>",
        )),
        // Labelled audio, but JSON.
        "/json" => ok_audio(b"{\"error\": \"expired\"}", "audio/mpeg"),
        // Sniffed as WAV, but not decodable.
        _ => ok_audio(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunkjunk", "audio/wav"),
    })
    .await;
    let f = library(open_config());
    let e = failure(&f.library, &server.url("/page")).await;
    assert!(
        matches!(&e.reason, FetchFailure::NotAudio { sniffed, content_type }
            if sniffed == "html" && content_type.as_deref() == Some("text/html; charset=utf-8")),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("not audio (sniffed: html; Content-Type text/html; charset=utf-8)"),
        "{e}"
    );
    let e = failure(&f.library, &server.url("/json")).await;
    assert!(
        matches!(&e.reason, FetchFailure::NotAudio { sniffed, .. } if sniffed == "json"),
        "{e}"
    );
    assert_eq!(f.library.counters().decodes, 0);
    let e = failure(&f.library, &server.url("/broken.wav")).await;
    assert!(matches!(e.reason, FetchFailure::Decode(_)), "{e}");
    assert!(e.to_string().contains("wav audio"), "{e}");
}

#[tokio::test]
async fn refused_addresses_are_never_contacted() {
    let server = TestServer::start(|_| ok_audio(&wav(), "audio/wav")).await;
    let port = server.addr.port();
    let strict = library(strict_config());
    let refused = |e: &FetchError, want: AddressRange| match &e.reason {
        FetchFailure::Refused(EgressError::RefusedInternal { range, .. })
        | FetchFailure::Refused(EgressError::Refused { range, .. }) => *range == want,
        FetchFailure::RefusedHost {
            error: EgressError::RefusedInternal { range, .. },
            ..
        } => *range == want,
        _ => false,
    };
    let cases = [
        (
            format!("http://127.0.0.1:{port}/a.wav"),
            AddressRange::Loopback,
        ),
        (format!("http://[::1]:{port}/a.wav"), AddressRange::Loopback),
        // A name is resolved and its answer checked before any connection.
        (
            format!("http://localhost:{port}/a.wav"),
            AddressRange::Loopback,
        ),
        ("http://10.0.0.1/a.wav".to_string(), AddressRange::Private),
        (
            "http://169.254.169.254/latest/meta-data/".to_string(),
            AddressRange::LinkLocal,
        ),
        (
            "http://[fd00::1]/a.wav".to_string(),
            AddressRange::UniqueLocal,
        ),
        (
            "http://100.64.1.1/a.wav".to_string(),
            AddressRange::SharedCgnat,
        ),
    ];
    for (url, range) in &cases {
        let e = failure(&strict.library, url).await;
        assert!(refused(&e, *range), "{url}: {e}");
        assert!(e.to_string().contains("refused address"), "{e}");
    }
    let e = failure(&strict.library, &format!("http://127.0.0.1:{port}/a.wav")).await;
    assert!(
        e.to_string()
            .ends_with("refused address 127.0.0.1 (loopback); set fetch_allow_private to allow it"),
        "{e}"
    );
    // fetch_allow_private opens internal networks, not metadata or multicast.
    let open = library(open_config());
    for (url, range) in [
        (
            "http://169.254.169.254/latest/meta-data/",
            AddressRange::LinkLocal,
        ),
        ("http://0.0.0.0/a.wav", AddressRange::Unspecified),
        ("http://224.0.0.1/a.wav", AddressRange::Multicast),
    ] {
        let e = failure(&open.library, url).await;
        assert!(refused(&e, range), "{url}: {e}");
    }
    // The allow-list applies to names and literals alike.
    let listed = library(FetchConfig {
        policy: EgressPolicy {
            allow_hosts: vec![HostPattern::parse("cdn.example.com").unwrap()],
            allow_private: true,
        },
        ..open_config()
    });
    let e = failure(&listed.library, &server.url("/a.wav")).await;
    assert!(
        matches!(
            e.reason,
            FetchFailure::Refused(EgressError::HostNotAllowed { .. })
        ),
        "{e}"
    );
    let e = failure(&strict.library, "ftp://cdn.example.com/a.wav").await;
    assert!(
        matches!(e.reason, FetchFailure::Refused(EgressError::Scheme { .. })),
        "{e}"
    );
    assert!(server.seen().is_empty(), "{:?}", server.seen());
}

#[tokio::test]
async fn redirects_are_bounded_and_each_target_is_checked() {
    let server = TestServer::start(|req| {
        if let Some(n) = req.path.strip_prefix("/hop/") {
            let n: u32 = n.parse().unwrap();
            if n == 0 {
                return ok_audio(&wav(), "audio/wav");
            }
            let next = format!("/hop/{}", n - 1);
            return Reply::Raw(response("302 Found", &[("Location", &next)], b""));
        }
        let target = match req.path.as_str() {
            "/to-metadata" => "http://169.254.169.254/latest/meta-data/".to_string(),
            "/to-ftp" => "ftp://files.example.com/a.wav".to_string(),
            "/to-localhost" => format!(
                "http://localhost:{}/hop/0",
                req.header("host").unwrap().rsplit(':').next().unwrap()
            ),
            _ => return Reply::Raw(response("404 Not Found", &[], b"")),
        };
        Reply::Raw(response(
            "301 Moved Permanently",
            &[("Location", &target)],
            b"",
        ))
    })
    .await;
    let f = library(open_config());
    let ok = f.library.prepare(&server.url("/hop/5")).await;
    assert!(ok.is_ok(), "5 redirects are followed: {:?}", ok.err());
    assert_eq!(server.seen().len(), 6);

    let e = failure(&f.library, &server.url("/hop/6")).await;
    assert!(
        matches!(e.reason, FetchFailure::TooManyRedirects { max: 5 }),
        "{e}"
    );
    assert!(
        e.to_string().ends_with("too many redirects (more than 5)"),
        "{e}"
    );
    assert_eq!(server.seen().len(), 6 + 6, "the 7th hop is not requested");

    let e = failure(&f.library, &server.url("/to-metadata")).await;
    assert!(
        matches!(&e.reason, FetchFailure::RedirectRefused { target, error: EgressError::Refused { range: AddressRange::LinkLocal, .. } }
            if target == "http://169.254.169.254/latest/meta-data/"),
        "{e}"
    );
    let e = failure(&f.library, &server.url("/to-ftp")).await;
    assert!(
        matches!(
            &e.reason,
            FetchFailure::RedirectRefused {
                error: EgressError::Scheme { .. },
                ..
            }
        ),
        "{e}"
    );
    // A redirect to a name outside the allow-list is refused by name...
    let listed = library(FetchConfig {
        policy: EgressPolicy {
            allow_hosts: vec![HostPattern::parse("127.0.0.1").unwrap()],
            allow_private: true,
        },
        ..open_config()
    });
    let e = failure(&listed.library, &server.url("/to-localhost")).await;
    assert!(
        matches!(
            &e.reason,
            FetchFailure::RedirectRefused {
                error: EgressError::HostNotAllowed { .. },
                ..
            }
        ),
        "{e}"
    );
    // ...and with the name allowed, its answer is still checked before connecting.
    let before = server.seen().len();
    let mut strict_names = strict_config();
    strict_names.policy.allow_hosts = vec![HostPattern::parse("localhost").unwrap()];
    let strict = library(strict_names);
    let e = failure(
        &strict.library,
        &format!("http://localhost:{}/hop/0", server.addr.port()),
    )
    .await;
    assert!(
        matches!(&e.reason, FetchFailure::RefusedHost { host, .. } if host == "localhost"),
        "{e}"
    );
    assert_eq!(server.seen().len(), before);
}

#[tokio::test]
async fn own_assets_are_read_from_the_store_without_http() {
    let server = TestServer::start(|_| ok_audio(&wav(), "audio/wav")).await;
    let mut config = strict_config();
    config.origins = LocalOrigins {
        public_base: Some(Url::parse("https://api.trunx.io").unwrap()),
        listen: server.addr,
    };
    let f = library(config);
    let asset = f
        .store
        .create_audio("vm.wav", "audio/wav", &wav(), 1.0, 0)
        .unwrap();
    let by_listen = format!("http://{}/audio/{}/file", server.addr, asset.id);
    let by_base = format!("https://api.trunx.io/audio/{}/file", asset.id);
    let relative = format!("/audio/{}/file", asset.id);
    for url in [&by_listen, &by_base, &relative] {
        let p = f.library.prepare(url).await.unwrap();
        assert_eq!(p.duration_ms(), 1000, "{url}");
        assert!(f.library.get(url).is_some());
    }
    // Read once per URL; a second prepare of an asset reuses the prompt (assets never change).
    let again = f.library.prepare(&by_listen).await.unwrap();
    assert!(Arc::ptr_eq(&again, &f.library.get(&by_listen).unwrap()));
    let c = f.library.counters();
    assert_eq!((c.asset_reads, c.decodes, c.requests), (3, 3, 0));
    assert!(server.seen().is_empty(), "{:?}", server.seen());

    let e = failure(
        &f.library,
        &format!("http://{}/audio/aud_missing/file", server.addr),
    )
    .await;
    assert!(
        matches!(&e.reason, FetchFailure::AssetNotFound { id } if id == "aud_missing"),
        "{e}"
    );
    // Any other path on the same origin is an ordinary fetch, refused here as loopback.
    let e = failure(&f.library, &server.url("/audio/x/other")).await;
    assert!(matches!(e.reason, FetchFailure::Refused(_)), "{e}");
    assert!(server.seen().is_empty());
}

const KEY: &str = "trunx_fetch_test";

async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (HttpStatus, Value) {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"));
    if body.is_some() {
        b = b.header(header::CONTENT_TYPE, "application/json");
    }
    let req = b
        .body(
            body.map(|v| Body::from(v.to_string()))
                .unwrap_or_else(Body::empty),
        )
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn campaign_start_fails_on_an_unusable_url_and_nothing_changes() {
    let serving = Arc::new(AtomicUsize::new(0));
    let s = serving.clone();
    let server = TestServer::start(move |_| match s.load(Ordering::SeqCst) {
        0 => Reply::Raw(response("404 Not Found", &[], b"")),
        1 => ok_audio(&wav(), "audio/wav"),
        _ => Reply::Raw(response("500 Internal Server Error", &[], b"")),
    })
    .await;
    let f = library(open_config());
    f.store
        .create_api_key("t", &auth::hash_key(KEY), 0)
        .unwrap();
    let clock = Arc::new(AtomicI64::new(1_795_000_000_000));
    let state = AppState {
        store: f.store.clone(),
        now_ms: Arc::new(move || clock.fetch_add(1, Ordering::Relaxed)),
        max_cps: 10.0,
        log_phone_numbers: false,
        voicemail: f.library.clone(),
        max_abandon_rate: trunx::campaign::abandon::DEFAULT_MAX_RATE,
    };
    let router = api::router(state.clone());
    let url = server.url("/drop.wav");
    let (status, c) = call(
        &router,
        "POST",
        "/campaigns",
        Some(json!({"name": "Drop", "mode": {"voicemailAudioUrl": url}})),
    )
    .await;
    assert_eq!(status, HttpStatus::CREATED, "{c}");
    let id = c["id"].as_str().unwrap().to_string();
    let (status, _) = call(
        &router,
        "POST",
        &format!("/campaigns/{id}/prospects"),
        Some(json!({"phones": ["+17145551001", "+16195551002"]})),
    )
    .await;
    assert_eq!(status, HttpStatus::OK);

    let (status, v) = call(&router, "POST", &format!("/campaigns/{id}/start"), None).await;
    assert_eq!(status, HttpStatus::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "invalid_field");
    assert_eq!(v["error"]["field"], "mode.voicemailAudioUrl");
    assert_eq!(v["error"]["url"], url.as_str());
    assert_eq!(
        v["error"]["message"],
        format!("mode.voicemailAudioUrl: {url}: HTTP status 404 Not Found")
    );
    let (_, c) = call(&router, "GET", &format!("/campaigns/{id}"), None).await;
    assert_eq!(c["status"], "created");
    let (_, stats) = call(&router, "GET", &format!("/campaigns/{id}/stats"), None).await;
    assert_eq!(
        (stats["queued"].as_u64(), stats["dialing"].as_u64()),
        (Some(2), Some(0))
    );
    assert!(state.voicemail.get(&url).is_none());

    serving.store(1, Ordering::SeqCst);
    let (status, v) = call(&router, "POST", &format!("/campaigns/{id}/start"), None).await;
    assert_eq!(status, HttpStatus::OK, "{v}");
    assert_eq!(v["status"], "dialing");
    let prompt = state
        .voicemail
        .get(&url)
        .expect("prepared before the first dial");
    assert_eq!(prompt.duration_ms(), 1000);

    // Resume revalidates; a server error then keeps the campaign paused.
    call(&router, "POST", &format!("/campaigns/{id}/pause"), None).await;
    serving.store(2, Ordering::SeqCst);
    let (status, v) = call(&router, "POST", &format!("/campaigns/{id}/resume"), None).await;
    assert_eq!(status, HttpStatus::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("HTTP status 500 Internal Server Error"),
        "{v}"
    );
    let (_, c) = call(&router, "GET", &format!("/campaigns/{id}"), None).await;
    assert_eq!(c["status"], "paused");

    // A disallowed transition is a 409 without any fetch.
    let requests = server.seen().len();
    let (status, _) = call(&router, "POST", &format!("/campaigns/{id}/start"), None).await;
    assert_eq!(status, HttpStatus::CONFLICT);
    assert_eq!(server.seen().len(), requests);
}
