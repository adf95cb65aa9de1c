//! The AMD of one call as the call task sees it: the built-in detector alone, or an external
//! engine (`ACTIVE_AMD_PROVIDER=external`, `mode.amdProvider`) with the built-in detector
//! running alongside as its fallback.
//!
//! Owns the external engine's WebSocket for one call (a task that sends the answered audio as
//! L16 binary frames and reads decisions back; the protocol is `amd::provider::external`) and
//! reads the clock for the arbiter's deadline. It decides nothing itself: which detector stands
//! is `external::arbiter::Arbiter`'s rule. Fallbacks are counted in
//! `trunx_amd_external_fallbacks_total{reason}`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use crate::amd::provider::external::arbiter::Arbiter;
use crate::amd::provider::external::{
    Encoding, ServerMessage, l16_bytes, parse_server_text, start_message,
};
use crate::amd::{Amd, AmdConfig, AmdEvent, BeepModel};
use crate::audio::{FRAME_SAMPLES, Frame};
use crate::config::{AmdProviderKind, Config, Secret};
use crate::runtime::clock;

/// Where the external engine is and how long it may take.
#[derive(Clone)]
pub struct ExternalTarget {
    pub url: String,
    /// Extra request headers (tokens): never logged.
    pub headers: Vec<(String, Secret)>,
    pub timeout: Duration,
}

impl std::fmt::Debug for ExternalTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalTarget")
            .field("url", &self.url)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The node's choice of AMD engine and its external engine's settings.
#[derive(Clone, Debug)]
pub struct AmdEngines {
    pub provider: AmdProviderKind,
    /// URL (empty when unset), headers and deadline of the external engine.
    pub external: ExternalTarget,
}

impl Default for AmdEngines {
    /// The built-in engine; an external one would get the default 4 s deadline.
    fn default() -> AmdEngines {
        AmdEngines {
            provider: AmdProviderKind::Builtin,
            external: ExternalTarget {
                url: String::new(),
                headers: Vec::new(),
                timeout: Duration::from_secs(4),
            },
        }
    }
}

impl AmdEngines {
    pub fn from_config(config: &Config) -> AmdEngines {
        AmdEngines {
            provider: config.amd_provider,
            external: ExternalTarget {
                url: config.amd_external_url.clone().unwrap_or_default(),
                headers: config.amd_external_headers.clone(),
                timeout: Duration::from_millis(u64::from(config.amd_external_timeout_ms)),
            },
        }
    }

    /// The node's external engine pointed at `url`.
    pub fn external_at(url: &str, timeout: Duration) -> AmdEngines {
        AmdEngines {
            provider: AmdProviderKind::External,
            external: ExternalTarget {
                url: url.to_string(),
                headers: Vec::new(),
                timeout,
            },
        }
    }

    /// The external engine of a call of a campaign (`mode.amdProvider`,
    /// `mode.amdExternalUrl`), or `None` for the built-in engine. An external engine with no
    /// URL anywhere cannot connect: its calls fall back (and are counted) rather than fail.
    pub fn for_campaign(
        &self,
        provider: Option<AmdProviderKind>,
        url: Option<&str>,
    ) -> Option<ExternalTarget> {
        match provider.unwrap_or(self.provider) {
            AmdProviderKind::Builtin => None,
            AmdProviderKind::External => Some(ExternalTarget {
                url: url
                    .map(str::to_string)
                    .unwrap_or_else(|| self.external.url.clone()),
                ..self.external.clone()
            }),
        }
    }
}

/// Frames queued for the engine at most (10 s): a full queue means the engine stalls.
const QUEUE: usize = 500;
/// Longest wait for the close handshake when the call is done with the engine.
const CLOSE_WAIT: Duration = Duration::from_millis(500);

// Frames travel inline (no allocation per frame); `Stop` is sent once.
#[allow(clippy::large_enum_variant)]
enum ToEngine {
    Frame([i16; FRAME_SAMPLES]),
    Stop,
}

enum FromEngine {
    Decision(AmdEvent),
    Lost(String),
}

struct Link {
    arbiter: Arbiter,
    target: ExternalTarget,
    call_id: String,
    to_engine: Option<mpsc::Sender<ToEngine>>,
    from_engine: Option<mpsc::Receiver<FromEngine>>,
    stop: CancellationToken,
    stopped: bool,
    /// Why the engine was lost, for the fallback's log line.
    lost: Option<String>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The detector of one call.
pub struct CallAmd {
    builtin: Amd,
    link: Option<Link>,
}

impl CallAmd {
    /// The built-in detector alone, or paired with `external`. `call_id` names the call to
    /// the engine.
    pub fn new(
        config: AmdConfig,
        model: Option<BeepModel>,
        external: Option<&ExternalTarget>,
        call_id: &str,
    ) -> CallAmd {
        CallAmd {
            builtin: Amd::new(config, model),
            link: external.map(|t| Link {
                arbiter: Arbiter::new(t.timeout),
                target: t.clone(),
                call_id: call_id.to_string(),
                to_engine: None,
                from_engine: None,
                stop: CancellationToken::new(),
                stopped: false,
                lost: None,
            }),
        }
    }

    /// Which engine's result stands: `builtin`, `external`, or `builtin_fallback` (the
    /// external engine was late or failed).
    pub fn engine(&self) -> &'static str {
        match &self.link {
            None => "builtin",
            Some(l) if l.arbiter.external_decided() => "external",
            Some(l) if l.arbiter.fallback().is_some() => "builtin_fallback",
            Some(_) => "builtin",
        }
    }

    pub fn in_speech(&self) -> bool {
        self.builtin.in_speech()
    }

    pub fn last_model_probability(&self) -> Option<f32> {
        self.builtin.last_model_probability()
    }

    pub fn is_done(&self) -> bool {
        match &self.link {
            None => self.builtin.is_done(),
            Some(l) => l.arbiter.is_done(),
        }
    }

    /// One answered frame; at most one event per call, like `Amd::process`.
    pub fn process(&mut self, frame: &Frame) -> Option<AmdEvent> {
        let Some(link) = self.link.as_mut() else {
            return self.builtin.process(frame);
        };
        let now = clock::now();
        if link.from_engine.is_none() {
            link.open(now);
        }
        // Decisions already in come first: an engine that closes after its final decision
        // has decided, not failed.
        link.drain(now);
        if let Some(tx) = &link.to_engine {
            match tx.try_send(ToEngine::Frame(frame.samples)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    // The engine stopped reading: what it would decide is now on audio with
                    // a hole in it.
                    link.to_engine = None;
                    link.lost = Some("the engine does not take the audio (queue full)".into());
                    link.arbiter.on_external_lost(now);
                }
                // The socket task ended; it reports why itself.
                Err(mpsc::error::TrySendError::Closed(_)) => link.to_engine = None,
            }
        }
        if !self.builtin.is_done()
            && let Some(e) = self.builtin.process(frame)
        {
            link.arbiter.on_builtin(now, e);
        }
        link.pump(now)
    }

    /// The call ended: what is still owed, then `None`.
    pub fn finish(&mut self) -> Option<AmdEvent> {
        let Some(link) = self.link.as_mut() else {
            return self.builtin.finish();
        };
        let now = clock::now();
        link.drain(now);
        link.arbiter.on_call_end(now);
        while let Some(e) = self.builtin.finish() {
            link.arbiter.on_builtin(now, e);
        }
        link.pump(now)
    }
}

impl Link {
    fn open(&mut self, now: std::time::Instant) {
        self.arbiter.on_start(now);
        let (to_engine, frames) = mpsc::channel(QUEUE);
        let (decisions, from_engine) = mpsc::channel(16);
        self.to_engine = Some(to_engine);
        self.from_engine = Some(from_engine);
        let target = self.target.clone();
        let call_id = self.call_id.clone();
        let stop = self.stop.clone();
        tokio::spawn(async move {
            let result = tokio::select! {
                r = run_link(&target, &call_id, frames, &decisions) => r,
                _ = stop.cancelled() => Ok(()),
            };
            if let Err(reason) = result {
                tracing::debug!(call_id, %reason, "external AMD engine lost");
                let _ = decisions.try_send(FromEngine::Lost(reason));
            }
        });
    }

    fn drain(&mut self, now: std::time::Instant) {
        let Some(rx) = self.from_engine.as_mut() else {
            return;
        };
        while let Ok(m) = rx.try_recv() {
            match m {
                FromEngine::Decision(e) => self.arbiter.on_external(now, e),
                FromEngine::Lost(reason) => {
                    self.lost = Some(reason);
                    self.arbiter.on_external_lost(now);
                }
            }
        }
    }

    fn pump(&mut self, now: std::time::Instant) -> Option<AmdEvent> {
        self.drain(now);
        let event = self.arbiter.poll_event(now);
        if let Some(reason) = self.arbiter.take_fallback() {
            crate::runtime::metrics::global()
                .amd_external_fallbacks
                .with_label_values(&[reason.as_str()])
                .inc();
            tracing::warn!(
                call_id = %self.call_id,
                reason = reason.as_str(),
                detail = self.lost.as_deref().unwrap_or("no decision within the deadline"),
                "external AMD engine fell back to the built-in detector"
            );
        }
        if self.arbiter.is_done() && !self.stopped {
            // Done with the engine: it is told the call's audio ended and the socket closes.
            self.stopped = true;
            if let Some(tx) = self.to_engine.take() {
                let _ = tx.try_send(ToEngine::Stop);
            }
        }
        event
    }
}

/// The socket's life: connect, `start`, frames out and decisions in, `stop` and close. An
/// `Err` is a lost engine.
async fn run_link(
    target: &ExternalTarget,
    call_id: &str,
    mut frames: mpsc::Receiver<ToEngine>,
    decisions: &mpsc::Sender<FromEngine>,
) -> Result<(), String> {
    let mut request = target
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("invalid URL: {e}"))?;
    for (k, v) in &target.headers {
        match (
            k.parse::<tokio_tungstenite::tungstenite::http::HeaderName>(),
            v.expose().parse(),
        ) {
            (Ok(k), Ok(v)) => {
                request.headers_mut().insert(k, v);
            }
            _ => return Err(format!("invalid header {k:?}")),
        }
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(64 * 1024))
        .max_frame_size(Some(64 * 1024));
    let connecting = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
    let (ws, _) = tokio::time::timeout(target.timeout, connecting)
        .await
        .map_err(|_| "no connection within the deadline".to_string())?
        .map_err(|e| format!("cannot connect: {e}"))?;
    let (mut sink, mut stream) = ws.split();
    sink.send(Message::Text(
        start_message(call_id, Encoding::L16, 8000).into(),
    ))
    .await
    .map_err(|e| format!("send failed: {e}"))?;
    let mut bytes = Vec::with_capacity(FRAME_SAMPLES * 2);
    loop {
        tokio::select! {
            out = frames.recv() => match out {
                Some(ToEngine::Frame(samples)) => {
                    l16_bytes(&samples, &mut bytes);
                    sink.send(Message::Binary(bytes.clone().into()))
                        .await
                        .map_err(|e| format!("send failed: {e}"))?;
                }
                Some(ToEngine::Stop) | None => {
                    let _ = tokio::time::timeout(CLOSE_WAIT, async {
                        let _ = sink
                            .send(Message::Text(
                                crate::amd::provider::external::STOP_MESSAGE.into(),
                            ))
                            .await;
                        let _ = sink.send(Message::Close(None)).await;
                        while let Some(Ok(_)) = stream.next().await {}
                    })
                    .await;
                    return Ok(());
                }
            },
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(t))) => match parse_server_text(&t) {
                    Ok(ServerMessage::Decision(d)) => {
                        let e = d.to_event().map_err(|e| e.to_string())?;
                        tracing::debug!(call_id, kind = %d.kind, cause = %d.cause, at_ms = d.at_ms, "external AMD decision");
                        decisions
                            .send(FromEngine::Decision(e))
                            .await
                            .map_err(|_| "the call is gone".to_string())?;
                    }
                    Ok(ServerMessage::Error(reason)) => {
                        return Err(format!("the engine reported: {reason}"));
                    }
                    Ok(ServerMessage::Other) => {}
                    Err(e) => return Err(format!("malformed message from the engine: {e}")),
                },
                Some(Ok(Message::Close(_))) | None => {
                    return Err("the engine closed the connection".into());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("socket error: {e}")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::frames_of;

    #[test]
    fn a_campaign_picks_its_engine_and_url() {
        let node = AmdEngines::default();
        assert!(node.for_campaign(None, None).is_none());
        let t = node
            .for_campaign(Some(AmdProviderKind::External), Some("ws://c/amd"))
            .unwrap();
        assert_eq!(
            (t.url.as_str(), t.timeout),
            ("ws://c/amd", Duration::from_secs(4))
        );
        let node = AmdEngines::external_at("ws://node/amd", Duration::from_secs(2));
        assert_eq!(node.for_campaign(None, None).unwrap().url, "ws://node/amd");
        assert!(
            node.for_campaign(Some(AmdProviderKind::Builtin), None)
                .is_none()
        );
        let plan = crate::runtime::campaigns::dialer::voice_plan(&serde_json::json!({
            "amdProvider": "external", "amdExternalUrl": "ws://c/amd"
        }));
        assert_eq!(plan.amd_provider, Some(AmdProviderKind::External));
        assert_eq!(plan.amd_external_url.as_deref(), Some("ws://c/amd"));
    }

    #[test]
    fn without_an_engine_the_call_amd_is_the_builtin_detector() {
        let pcm: Vec<i16> = (0..48_000)
            .map(|i| {
                if i < 8000 {
                    ((i % 40) as i16 - 20) * 400
                } else {
                    0
                }
            })
            .collect();
        let (want, _) = crate::amd::analyse_recording(&pcm, &AmdConfig::default(), None);
        let mut amd = CallAmd::new(AmdConfig::default(), None, None, "c");
        let mut got = Vec::new();
        for frame in frames_of(&pcm) {
            if amd.is_done() {
                break;
            }
            got.extend(amd.process(&frame));
        }
        got.extend(std::iter::from_fn(|| amd.finish()));
        assert_eq!(got, want);
        assert_eq!(amd.engine(), "builtin");
    }
}
