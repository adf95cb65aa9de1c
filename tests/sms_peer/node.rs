//! One trunx node of the SMS peer tests: the control API and the SMS sender in-process on one
//! store (a real SQLite file unless a test brings its own), the sender's settings towards the
//! carrier, and HTTP calls to the API (campaigns, stats, messages). It runs the node and
//! reports what the API answers: it must not decide whether a test passed beyond a request's
//! expected status.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use trunx::api::{AppState, auth};
use trunx::campaign::sms_pacing::SmsPacingConfig;
use trunx::runtime::campaigns::smpp::SmppSettings;
use trunx::runtime::campaigns::sms_sender::{self, SmsSenderSettings, SmsSenderStats};
use trunx::runtime::clock::wall_ms;
use trunx::runtime::fetch::{FetchConfig, VoicemailLibrary};
use trunx::runtime::server::serve_on;
use trunx::sms::inbound::Replies;
use trunx::sms::session::{Backoff, SessionConfig, SmppPassword};
use trunx::store::{SqliteStore, Store};

use crate::{HELP_REPLY, KEY, STOP_REPLY};

pub(crate) fn settings(port: u16, pacing: SmsPacingConfig) -> SmsSenderSettings {
    let session = SessionConfig::new("trunx", SmppPassword::new("secret"));
    let mut smpp = SmppSettings::new(format!("127.0.0.1:{port}"), session);
    smpp.reconnect = Backoff::new(Duration::from_millis(200), Duration::from_secs(2));
    SmsSenderSettings {
        smpp,
        pacing,
        replies: Replies {
            stop: Some(STOP_REPLY.into()),
            help: Some(HELP_REPLY.into()),
        },
        log_phone_numbers: false,
        claim_batch: 100,
        caller_id: Default::default(),
        receipt_timeout: Duration::from_secs(3600),
        rules: std::sync::Arc::new(trunx::campaign::rules::RuleSet::embedded()),
    }
}

/// Pacing out of the way, for tests about the connection rather than the pace.
pub(crate) fn unpaced() -> SmsPacingConfig {
    SmsPacingConfig {
        max_per_hour: 100_000,
        min_gap_ms: 0,
        max_jitter_ms: 0,
    }
}

/// The API and the SMS sender on one store.
pub(crate) struct Node {
    pub(crate) store: Arc<dyn Store>,
    api: SocketAddr,
    stop: CancellationToken,
    sender: tokio::task::JoinHandle<Result<SmsSenderStats, sms_sender::SmsSenderError>>,
    _dir: tempfile::TempDir,
}

impl Node {
    pub(crate) async fn start(settings: SmsSenderSettings) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteStore::open(&dir.path().join("sms.db"), 9).unwrap();
        sqlite.create_api_key("t", &auth::hash_key(KEY), 0).unwrap();
        let store: Arc<dyn Store> = Arc::new(sqlite);
        Self::start_on(store, settings, dir).await
    }

    pub(crate) async fn start_on(
        store: Arc<dyn Store>,
        settings: SmsSenderSettings,
        dir: tempfile::TempDir,
    ) -> Node {
        let state = AppState {
            store: store.clone(),
            now_ms: Arc::new(wall_ms),
            max_cps: 10.0,
            log_phone_numbers: false,
            voicemail: Arc::new(
                VoicemailLibrary::new(FetchConfig::default(), store.clone()).unwrap(),
            ),
            max_abandon_rate: trunx::campaign::abandon::DEFAULT_MAX_RATE,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let api_stop = stop.clone();
        tokio::spawn(serve_on(listener, state, async move {
            api_stop.cancelled().await
        }));
        let sender = tokio::spawn(sms_sender::run(settings, store.clone(), stop.clone()));
        Node {
            store,
            api,
            stop,
            sender,
            _dir: dir,
        }
    }

    pub(crate) async fn http(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut s = tokio::net::TcpStream::connect(self.api).await.unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        let text = String::from_utf8(buf).unwrap();
        let status: u16 = text[9..12].parse().unwrap();
        let json = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .filter(|b| !b.is_empty())
            .map(|b| serde_json::from_str(b).unwrap_or_else(|e| panic!("{e}: {b}")))
            .unwrap_or(Value::Null);
        (status, json)
    }

    /// Creates and starts an SMS campaign over the API; returns its id.
    pub(crate) async fn campaign(
        &self,
        message: &str,
        dids: &[String],
        phones: &[String],
    ) -> String {
        let (status, c) = self
            .http(
                "POST",
                "/campaigns",
                Some(
                    json!({"name": "sms", "channel": "sms", "mode": {"message": message},
                    "callerIds": dids, "callerIdStrategy": {"selection": "round_robin"}}),
                ),
            )
            .await;
        assert_eq!(status, 201, "{c}");
        let id = c["id"].as_str().unwrap().to_string();
        let (status, added) = self
            .http(
                "POST",
                &format!("/campaigns/{id}/prospects"),
                Some(json!({ "phones": phones })),
            )
            .await;
        assert_eq!(status, 200, "{added}");
        let (status, started) = self
            .http("POST", &format!("/campaigns/{id}/start"), None)
            .await;
        assert_eq!(status, 200, "{started}");
        id
    }

    pub(crate) async fn stats(&self, id: &str) -> Value {
        let (status, st) = self
            .http("GET", &format!("/campaigns/{id}/stats"), None)
            .await;
        assert_eq!(status, 200, "{st}");
        st
    }

    /// Polls the stats until `done` holds (at most `secs`).
    pub(crate) async fn wait_stats(
        &self,
        id: &str,
        secs: u64,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = wall_ms() + secs as i64 * 1000;
        loop {
            let st = self.stats(id).await;
            if done(&st) {
                return st;
            }
            assert!(wall_ms() < deadline, "stats never got there: {st}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn messages(&self, id: &str) -> Vec<Value> {
        let (status, page) = self
            .http("GET", &format!("/campaigns/{id}/messages?limit=1000"), None)
            .await;
        assert_eq!(status, 200, "{page}");
        page["data"].as_array().unwrap().clone()
    }

    pub(crate) async fn shutdown(self) -> (Arc<dyn Store>, SmsSenderStats) {
        self.stop.cancel();
        let stats = self.sender.await.unwrap().unwrap();
        (self.store, stats)
    }
}
