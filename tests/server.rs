//! The runtime side of the API: `trunx keys` through the real binary, and `serve_on` over a
//! real loopback socket with graceful shutdown.

use std::process::Command;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use trunx::api::{AppState, auth};
use trunx::runtime::fetch::{FetchConfig, VoicemailLibrary};
use trunx::runtime::server::serve_on;
use trunx::store::{SqliteStore, Store};

fn trunx(db: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_trunx"))
        .args(args)
        .env("TRUNX_DATABASE_URL", db)
        .env("RUST_LOG", "error")
        .output()
        .unwrap()
}

#[test]
fn keys_create_prints_the_key_alone_on_the_last_line_and_revoke_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let db = format!("sqlite://{}", path.display());
    let out = trunx(&db, &["keys", "create", "--name", "ops"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout.lines().last().unwrap();
    assert!(key.starts_with("trunx_") && !key.contains(' '), "{stdout}");
    // Only the hash is stored.
    let raw = std::fs::read(&path).unwrap();
    assert!(!raw.windows(key.len()).any(|w| w == key.as_bytes()));
    let store = SqliteStore::open(&path, 1).unwrap();
    assert_eq!(
        store
            .authenticate(&auth::hash_key(key))
            .unwrap()
            .unwrap()
            .name,
        "ops"
    );
    // The name is taken while the key is active.
    assert!(
        !trunx(&db, &["keys", "create", "--name", "ops"])
            .status
            .success()
    );
    assert!(
        !trunx(&db, &["keys", "create", "--name", "bad name"])
            .status
            .success()
    );
    let list = trunx(&db, &["keys", "list"]);
    assert!(
        String::from_utf8(list.stdout)
            .unwrap()
            .contains("\tops\tactive")
    );
    let out = trunx(&db, &["keys", "revoke", "ops"]);
    assert!(out.status.success());
    assert!(store.authenticate(&auth::hash_key(key)).unwrap().is_none());
    assert!(!trunx(&db, &["keys", "revoke", "ops"]).status.success());
}

async fn http(addr: std::net::SocketAddr, request: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn serves_over_loopback_and_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("s.db"), 3).unwrap());
    store
        .create_api_key("t", &auth::hash_key("trunx_k"), 0)
        .unwrap();
    let state = AppState {
        store: store.clone(),
        now_ms: Arc::new(|| 0),
        max_cps: 10.0,
        log_phone_numbers: false,
        voicemail: Arc::new(VoicemailLibrary::new(FetchConfig::default(), store.clone()).unwrap()),
        max_abandon_rate: trunx::campaign::abandon::DEFAULT_MAX_RATE,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_on(listener, state, async move {
        let _ = stop_rx.await;
    }));
    let resp = http(
        addr,
        "GET /campaigns HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");
    assert!(resp.contains(r#""code":"unauthorized""#));
    let body = r#"{"name": "loop"}"#;
    let resp = http(
        addr,
        &format!(
            "POST /campaigns HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer trunx_k\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
    // A connection that is open but idle when the stop comes is closed by the
    // server, not left hanging; the port itself may be re-taken by anyone at once.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
    let mut rest = [0u8; 64];
    let after_stop =
        tokio::time::timeout(std::time::Duration::from_secs(5), idle.read(&mut rest)).await;
    match after_stop {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        other => panic!("the idle connection was not closed by the shutdown: {other:?}"),
    }
    // The write was committed before the answer.
    let page = store
        .list_campaigns(
            None,
            &trunx::store::PageRequest {
                limit: 10,
                after: None,
            },
        )
        .unwrap();
    assert_eq!(page.items[0].name, "loop");
}
