//! `trunx amd serve`: the built-in detector served to other systems, three ways on two ports.
//!
//! - The WebSocket port (default 9310): the trunx AMD stream protocol at `/amd/v1/stream` (and
//!   `/`), so one trunx node can be another's external engine; a FreeSWITCH
//!   `mod_audio_stream` / `mod_audio_fork` style path at `/freeswitch[/UUID][?rate=16000]`
//!   (binary L16 frames in, decision JSON text out); and `GET /amd/v1/result/{uuid}` (add
//!   `?format=text` for the bare result word), for dialplans that fetch the decision by call id.
//! - The AudioSocket port (default 9311): Asterisk's `AudioSocket()` (UUID frame, 8 kHz slin
//!   frames, hangup). At the final decision the server stores it under the UUID, sends a
//!   hangup frame and closes, so the dialplan continues and reads the result endpoint.
//!
//! Owns the listening sockets, one task per session (bounded by `max_sessions`, each with an
//! idle timeout and the session's audio limit), and the book of recent decisions. The
//! protocol and the analysis are `amd::provider::external`'s sessions; nothing here decides.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::amd::provider::external::audiosocket::{self, AsFrame, Decoder};
use crate::amd::provider::external::session::Session;
use crate::amd::provider::external::{Decision, Encoding, Start, error_message};
use crate::amd::{Amd, AmdConfig, BeepModel};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot bind {what} {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

#[derive(Clone)]
pub struct ServeOptions {
    /// WebSocket + HTTP port (stream protocol, FreeSWITCH path, result endpoint).
    pub ws: SocketAddr,
    /// AudioSocket (TCP) port.
    pub audiosocket: SocketAddr,
    /// Sessions analysed at once, all paths together; more are refused (HTTP 503, or an
    /// AudioSocket error frame).
    pub max_sessions: usize,
    pub amd: AmdConfig,
    pub model: Option<BeepModel>,
}

/// Decisions kept for the result endpoint (the oldest are forgotten first).
const RESULTS_KEPT: usize = 10_000;
/// A session with no data for this long is closed.
const IDLE: Duration = Duration::from_secs(15);
/// Longest HTTP request head read before a WebSocket upgrade or a result request.
const MAX_HEAD: usize = 8192;
/// WebSocket messages accepted at most.
const MAX_WS_MESSAGE: usize = 64 * 1024;

struct Shared {
    amd: AmdConfig,
    model: Option<BeepModel>,
    sessions: Arc<Semaphore>,
    results: Mutex<ResultBook>,
}

impl Shared {
    fn session(&self) -> Session {
        Session::new(Amd::new(self.amd.clone(), self.model.clone()))
    }

    fn record(&self, d: &Decision) {
        if let Ok(mut book) = self.results.lock() {
            book.record(d);
        }
    }

    fn open(&self, call_id: &str) {
        if let Ok(mut book) = self.results.lock() {
            book.open(call_id);
        }
    }
}

/// The decisions of recent sessions by call id.
#[derive(Default)]
struct ResultBook {
    by_id: HashMap<String, Vec<Decision>>,
    order: VecDeque<String>,
}

impl ResultBook {
    fn open(&mut self, call_id: &str) {
        if self.by_id.contains_key(call_id) {
            return;
        }
        if self.order.len() >= RESULTS_KEPT
            && let Some(old) = self.order.pop_front()
        {
            self.by_id.remove(&old);
        }
        self.order.push_back(call_id.to_string());
        self.by_id.insert(call_id.to_string(), Vec::new());
    }

    fn record(&mut self, d: &Decision) {
        self.open(&d.call_id);
        if let Some(v) = self.by_id.get_mut(&d.call_id)
            && v.len() < 8
        {
            v.push(d.clone());
        }
    }

    /// The result document of a call: its latest decision's fields and every event.
    fn json(&self, call_id: &str) -> Option<serde_json::Value> {
        let events = self.by_id.get(call_id)?;
        let last = events.last();
        Some(serde_json::json!({
            "call_id": call_id,
            "state": if last.is_some_and(|d| d.is_final) { "decided" } else { "listening" },
            "result": last.and_then(|d| d.result.clone()),
            "kind": last.map(|d| d.kind.clone()),
            "cause": last.map(|d| d.cause.clone()),
            "confidence": last.map(|d| d.confidence),
            "at_ms": last.map(|d| d.at_ms),
            "beep_end_ms": last.and_then(|d| d.beep_end_ms),
            "events": events,
        }))
    }

    /// The bare result word (`human`, `machine_end_beep`, ...; `pending` before any).
    fn text(&self, call_id: &str) -> Option<String> {
        let events = self.by_id.get(call_id)?;
        Some(
            events
                .last()
                .map(|d| d.result.clone().unwrap_or_else(|| d.kind.clone()))
                .unwrap_or_else(|| "pending".into()),
        )
    }
}

/// A running server.
pub struct AmdServer {
    ws: SocketAddr,
    audiosocket: SocketAddr,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl AmdServer {
    pub async fn start(opts: ServeOptions) -> Result<AmdServer, ServeError> {
        let bind = |what, addr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { what, addr, source })
        };
        let ws = bind("the WebSocket port", opts.ws).await?;
        let aus = bind("the AudioSocket port", opts.audiosocket).await?;
        let shared = Arc::new(Shared {
            amd: opts.amd,
            model: opts.model,
            sessions: Arc::new(Semaphore::new(opts.max_sessions.max(1))),
            results: Mutex::new(ResultBook::default()),
        });
        let server = AmdServer {
            ws: ws.local_addr()?,
            audiosocket: aus.local_addr()?,
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        };
        for (listener, audiosocket) in [(ws, false), (aus, true)] {
            let (shared, stop, tasks) = (shared.clone(), server.stop.clone(), server.tasks.clone());
            server.tasks.spawn(async move {
                loop {
                    let (stream, _) = tokio::select! {
                        _ = stop.cancelled() => return,
                        r = listener.accept() => match r {
                            Ok(s) => s,
                            Err(e) => {
                                tracing::warn!(error = %e, "accept failed");
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                continue;
                            }
                        },
                    };
                    let _ = stream.set_nodelay(true);
                    let (shared, stop) = (shared.clone(), stop.clone());
                    tasks.spawn(async move {
                        tokio::select! {
                            _ = stop.cancelled() => {}
                            _ = async {
                                if audiosocket {
                                    serve_audiosocket(stream, &shared).await
                                } else {
                                    serve_http(stream, &shared).await
                                }
                            } => {}
                        }
                    });
                }
            });
        }
        Ok(server)
    }

    pub fn ws_addr(&self) -> SocketAddr {
        self.ws
    }

    pub fn audiosocket_addr(&self) -> SocketAddr {
        self.audiosocket
    }

    /// Stops accepting, ends every session and waits for the tasks.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run_until_signal(opts: ServeOptions) -> Result<(), ServeError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let server = AmdServer::start(opts).await?;
        // Scripts and tests wait for this line.
        println!(
            "trunx amd serve: websocket ws://{}/amd/v1/stream, freeswitch ws://{}/freeswitch, \
             audiosocket {}, results http://{}/amd/v1/result/{{uuid}}",
            server.ws_addr(),
            server.ws_addr(),
            server.audiosocket_addr(),
            server.ws_addr()
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        server.shutdown().await;
        Ok(())
    })
}

/// A parsed HTTP request head.
#[derive(Debug, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    pub path: String,
    pub query: String,
    pub upgrade: bool,
}

/// Parses a request head (up to the blank line).
pub fn parse_head(bytes: &[u8]) -> Option<Head> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let upgrade = lines.take_while(|l| !l.is_empty()).any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("upgrade") && v.trim().eq_ignore_ascii_case("websocket")
        })
    });
    Some(Head {
        method,
        path: path.to_string(),
        query: query.to_string(),
        upgrade,
    })
}

fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Reads (without consuming) the request head, so the WebSocket handshake can read it again.
async fn peek_head(stream: &TcpStream) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; MAX_HEAD];
    let read = async {
        loop {
            let n = stream.peek(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            if let Some(end) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
                return Some(buf[..end + 4].to_vec());
            }
            if n == buf.len() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()
        .flatten()
}

async fn reply(mut stream: TcpStream, status: &str, content_type: &str, body: &str) {
    let text = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(text.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn serve_http(stream: TcpStream, shared: &Shared) {
    let Some(head) = peek_head(&stream).await.as_deref().and_then(parse_head) else {
        return reply(stream, "400 Bad Request", "text/plain", "bad request\n").await;
    };
    if !head.upgrade {
        if head.method != "GET" {
            return reply(stream, "405 Method Not Allowed", "text/plain", "GET only\n").await;
        }
        if head.path == "/healthz" {
            return reply(stream, "200 OK", "text/plain", "ok\n").await;
        }
        let Some(id) = head.path.strip_prefix("/amd/v1/result/") else {
            return reply(stream, "404 Not Found", "text/plain", "not found\n").await;
        };
        let text = query_value(&head.query, "format") == Some("text");
        let found = shared.results.lock().ok().and_then(|book| {
            if text {
                book.text(id)
            } else {
                book.json(id).map(|v| v.to_string())
            }
        });
        return match (found, text) {
            (Some(body), true) => reply(stream, "200 OK", "text/plain", &body).await,
            (Some(body), false) => reply(stream, "200 OK", "application/json", &body).await,
            (None, _) => {
                let body =
                    r#"{"error":{"code":"not_found","message":"no session with this call id"}}"#;
                reply(stream, "404 Not Found", "application/json", body).await
            }
        };
    }
    let freeswitch = head.path == "/freeswitch" || head.path.starts_with("/freeswitch/");
    if !(freeswitch || head.path == "/amd/v1/stream" || head.path == "/") {
        return reply(stream, "404 Not Found", "text/plain", "not found\n").await;
    }
    let Ok(_permit) = shared.sessions.clone().try_acquire_owned() else {
        return reply(
            stream,
            "503 Service Unavailable",
            "text/plain",
            "too many sessions\n",
        )
        .await;
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE))
        .max_frame_size(Some(MAX_WS_MESSAGE));
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let mut session = shared.session();
    if freeswitch {
        let id = head
            .path
            .strip_prefix("/freeswitch/")
            .filter(|s| !s.is_empty())
            .or_else(|| query_value(&head.query, "uuid"));
        let rate = match query_value(&head.query, "rate") {
            Some("16000") => 16000,
            _ => 8000,
        };
        if let Some(id) = id {
            if session.start(fs_start(id, rate)).is_err() {
                return;
            }
            shared.open(id);
        }
        run_ws(ws, session, shared, Some(rate)).await
    } else {
        run_ws(ws, session, shared, None).await
    }
}

fn fs_start(id: &str, rate: u32) -> Start {
    Start {
        call_id: id.to_string(),
        encoding: Encoding::L16,
        sample_rate: rate,
    }
}

/// A WebSocket session. `freeswitch`: binary L16 at this rate, started by the path or by the
/// first text message's `uuid` / `callId` (mod_audio_fork's metadata).
async fn run_ws<S>(
    ws: tokio_tungstenite::WebSocketStream<S>,
    mut session: Session,
    shared: &Shared,
    freeswitch: Option<u32>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    loop {
        let msg = match tokio::time::timeout(IDLE, stream.next()).await {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(_))) | Err(_) => break,
            Ok(None) => {
                session.finish();
                Message::Close(None)
            }
        };
        let handled = match (&msg, freeswitch) {
            (Message::Text(t), Some(rate)) if session.call_id().is_none() => {
                let v: serde_json::Value = serde_json::from_str(t).unwrap_or_default();
                let id = ["uuid", "callId", "call_id"]
                    .iter()
                    .find_map(|k| v.get(*k).and_then(|x| x.as_str()))
                    .map(str::to_string);
                match id {
                    Some(id) => session
                        .start(fs_start(&id, rate))
                        .map(|()| shared.open(&id)),
                    None => Ok(()),
                }
            }
            (Message::Text(_), Some(_)) => Ok(()),
            (Message::Binary(b), Some(rate)) => {
                if session.call_id().is_none() {
                    static ANONYMOUS: std::sync::atomic::AtomicU64 =
                        std::sync::atomic::AtomicU64::new(1);
                    let n = ANONYMOUS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let id = format!("freeswitch-{n}");
                    let _ = session.start(fs_start(&id, rate));
                    shared.open(&id);
                }
                session.handle_audio(b)
            }
            (Message::Text(t), None) => {
                let was_started = session.call_id().is_some();
                let r = session.handle_text(t);
                if !was_started && let Some(id) = session.call_id() {
                    shared.open(id);
                }
                r
            }
            (Message::Binary(b), None) => session.handle_audio(b),
            (Message::Close(_), _) => {
                session.finish();
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = handled {
            let _ = sink
                .send(Message::Text(error_message(&e.to_string()).into()))
                .await;
            let _ = sink.send(Message::Close(None)).await;
            return;
        }
        while let Some(d) = session.poll_decision() {
            shared.record(&d);
            if sink.send(Message::Text(d.to_json().into())).await.is_err() {
                // The peer closed (a hangup): what is still owed goes to the result book.
                while let Some(d) = session.poll_decision() {
                    shared.record(&d);
                }
                return;
            }
        }
        if session.is_decided() || session.is_finished() || matches!(msg, Message::Close(_)) {
            break;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = sink.send(Message::Close(None)).await;
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
}

/// An AudioSocket session: UUID, audio, and the decision stored under the UUID; a hangup
/// frame at the final decision.
async fn serve_audiosocket(mut stream: TcpStream, shared: &Shared) {
    let mut out = Vec::new();
    let Ok(_permit) = shared.sessions.clone().try_acquire_owned() else {
        audiosocket::encode(audiosocket::KIND_ERROR, b"too many sessions", &mut out);
        let _ = stream.write_all(&out).await;
        return;
    };
    let mut session = shared.session();
    let mut decoder = Decoder::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match tokio::time::timeout(IDLE, stream.read(&mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) | Err(_) => break,
        };
        if n == 0 {
            session.finish();
        } else {
            decoder.push(&buf[..n]);
        }
        loop {
            match decoder.poll() {
                Ok(None) => break,
                Ok(Some(AsFrame::Uuid(id))) => {
                    if session.start(fs_start(&id, 8000)).is_ok() {
                        shared.open(&id);
                    }
                }
                Ok(Some(AsFrame::Audio(pcm))) => {
                    if session.call_id().is_none() {
                        audiosocket::encode(
                            audiosocket::KIND_ERROR,
                            b"audio before uuid",
                            &mut out,
                        );
                        let _ = stream.write_all(&out).await;
                        return;
                    }
                    session.push_pcm(&pcm);
                }
                Ok(Some(AsFrame::Hangup | AsFrame::Error(_))) => session.finish(),
                Err(e) => {
                    tracing::debug!(error = %e, "bad AudioSocket frame");
                    audiosocket::encode(audiosocket::KIND_ERROR, b"protocol error", &mut out);
                    let _ = stream.write_all(&out).await;
                    return;
                }
            }
        }
        while let Some(d) = session.poll_decision() {
            shared.record(&d);
        }
        if session.is_decided() || session.is_finished() {
            out.clear();
            audiosocket::encode(audiosocket::KIND_HANGUP, &[], &mut out);
            let _ = stream.write_all(&out).await;
            let _ = stream.shutdown().await;
            return;
        }
        if n == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads() {
        let h =
            parse_head(b"GET /amd/v1/result/abc?format=text HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(
            h,
            Head {
                method: "GET".into(),
                path: "/amd/v1/result/abc".into(),
                query: "format=text".into(),
                upgrade: false
            }
        );
        let h = parse_head(
            b"GET /freeswitch HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\r\n",
        )
        .unwrap();
        assert!(h.upgrade);
        assert_eq!(query_value("a=1&rate=16000", "rate"), Some("16000"));
        assert_eq!(parse_head(b"\xff\xfe"), None);
    }

    #[test]
    fn the_result_book_forgets_the_oldest() {
        let mut book = ResultBook::default();
        for i in 0..RESULTS_KEPT + 1 {
            book.open(&format!("c{i}"));
        }
        assert!(book.json("c0").is_none());
        assert_eq!(book.text("c1").as_deref(), Some("pending"));
        assert_eq!(book.by_id.len(), RESULTS_KEPT);
    }

    #[tokio::test]
    async fn sessions_over_the_limit_and_bad_frames_are_refused() {
        let server = AmdServer::start(ServeOptions {
            ws: "127.0.0.1:0".parse().unwrap(),
            audiosocket: "127.0.0.1:0".parse().unwrap(),
            max_sessions: 1,
            amd: AmdConfig::default(),
            model: None,
        })
        .await
        .unwrap();
        let url = format!("ws://{}/amd/v1/stream", server.ws_addr());
        let (first, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap();
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 503),
            other => panic!("a second session was not refused: {:?}", other.map(|_| ())),
        }
        let mut aus = TcpStream::connect(server.audiosocket_addr()).await.unwrap();
        let mut got = Vec::new();
        aus.read_to_end(&mut got).await.unwrap();
        assert_eq!(got[0], audiosocket::KIND_ERROR, "{got:?}");
        drop(first);
        // Audio before the start message is a protocol error, answered before the close.
        let mut ws = None;
        for _ in 0..100 {
            // The first session's permit returns once the server has seen it close.
            if let Ok((s, _)) = tokio_tungstenite::connect_async(url.as_str()).await {
                ws = Some(s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut ws = ws.expect("a session once the first one closed");
        ws.send(Message::Binary(vec![0u8; 320].into()))
            .await
            .unwrap();
        match ws.next().await {
            Some(Ok(Message::Text(t))) => assert!(t.contains("\"error\""), "{t}"),
            other => panic!("{other:?}"),
        }
        server.shutdown().await;
    }
}
