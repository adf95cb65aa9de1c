//! The AI agent's websocket for one call: connects (with the configured headers) as soon as
//! the call is answered, then carries text messages both ways over bounded channels, so the
//! call's 20 ms media tick never waits on the agent. Owns the socket only: what is said on it
//! (`connected`, `start`, `media`, marks, `clear`) is `crate::agent`, driven by the call task.
//! A slow agent costs counted drops, never a late frame.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use crate::runtime::clock;

/// What the socket task tells the call.
#[derive(Debug, PartialEq)]
pub enum AgentIn {
    /// The websocket is open, `after` the call asked for it.
    Connected { after: Duration },
    /// One text message from the agent (at most `max_message_bytes`), and when it arrived.
    Text { text: String, at: Instant },
    /// A message sent with [`Outbound::confirm`] is written to the socket.
    Written { at: Instant },
    /// The socket is gone (refused, timed out, closed by the agent, or failed).
    Closed {
        reason: String,
        /// The agent closed it on purpose (a close frame with no code or 1000): the
        /// conversation is over. Anything else is an outage worth reconnecting.
        deliberate: bool,
    },
}

/// One message for the agent.
#[derive(Debug)]
pub struct Outbound {
    pub text: String,
    /// Report [`AgentIn::Written`] once it is on the socket (to measure the handoff).
    pub confirm: bool,
}

impl Outbound {
    pub fn text(text: String) -> Outbound {
        Outbound {
            text,
            confirm: false,
        }
    }
}

/// Where the agent is and how to reach it. `Debug` hides the header values (tokens).
#[derive(Clone)]
pub struct AgentTarget {
    /// `ws://` or `wss://` URL.
    pub url: String,
    /// `mode.agentSipUri`: hand the person to a SIP agent instead (a second call, media
    /// relayed); `url` and `headers` are then unused.
    pub sip_uri: Option<String>,
    /// Digest credentials the SIP agent may demand (`agent_sip_username`/`agent_sip_password`).
    pub sip_username: Option<String>,
    pub sip_password: Option<String>,
    /// Extra request headers (e.g. an auth token); never logged.
    pub headers: Vec<(String, String)>,
    pub connect_timeout: Duration,
    pub max_message_bytes: usize,
    /// Retrying a lost or refused socket while the person waits.
    pub reconnect: crate::agent::ReconnectPolicy,
    /// Played to a person the agent cannot take (budget spent) before hanging up; without
    /// one the call hangs up at once.
    pub fallback: Option<Arc<crate::audio::prompt::Prompt>>,
    /// Played to a person nobody took within 2 s of their greeting, before hanging up (TSR
    /// 16 CFR 310.4(b)(4)(iii)); the dialer sets it for every `ai` campaign's call
    /// (`mode.identificationAudioUrl` or the built-in clip). `None`: the person waits for the
    /// agent as long as the reconnect budget lasts.
    pub identification: Option<Arc<crate::audio::prompt::Prompt>>,
}

impl std::fmt::Debug for AgentTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentTarget")
            .field("url", &self.url)
            .field("sip_uri", &self.sip_uri)
            .field("sip_username", &self.sip_username)
            .field("sip_password", &self.sip_password.as_ref().map(|_| "***"))
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(k, _)| (k, "***"))
                    .collect::<Vec<_>>(),
            )
            .field("connect_timeout", &self.connect_timeout)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("reconnect", &self.reconnect)
            .field("fallback", &self.fallback.is_some())
            .field("identification", &self.identification.is_some())
            .finish()
    }
}

impl AgentTarget {
    /// A URL with no extra headers, a 5 s connect timeout, 64 KiB messages, the default
    /// reconnect budget and no fallback or identification message.
    pub fn new(url: String) -> AgentTarget {
        AgentTarget {
            url,
            sip_uri: None,
            sip_username: None,
            sip_password: None,
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            max_message_bytes: 64 * 1024,
            reconnect: crate::agent::ReconnectPolicy::default(),
            fallback: None,
            identification: None,
        }
    }
}

/// The call's end of the agent socket.
pub struct AgentLink {
    /// Messages to the agent; full means the agent is slow: the call drops and counts.
    pub to_agent: mpsc::Sender<Outbound>,
    pub from_agent: mpsc::Receiver<AgentIn>,
    /// Messages from the agent dropped because the call did not take them in time.
    pub dropped_from_agent: Arc<AtomicU64>,
}

/// Longest wait for the agent to end the TCP connection after our close reply.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(1);

/// Ten seconds of 20 ms media each way.
const QUEUE: usize = 512;

/// Starts connecting to the agent, giving up after `connect_timeout`; the socket task ends
/// when `stop` is cancelled, the agent closes, or the call drops its [`AgentLink`].
pub fn open(target: AgentTarget, connect_timeout: Duration, stop: CancellationToken) -> AgentLink {
    let (to_agent, mut outgoing) = mpsc::channel::<Outbound>(QUEUE);
    let (incoming, from_agent) = mpsc::channel::<AgentIn>(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let dropped_task = dropped.clone();
    tokio::spawn(async move {
        let asked = clock::now();
        let closed = |reason: String| AgentIn::Closed {
            reason,
            deliberate: false,
        };
        let request = match target.url.as_str().into_client_request() {
            Ok(mut r) => {
                for (k, v) in &target.headers {
                    match (
                        k.parse::<tokio_tungstenite::tungstenite::http::HeaderName>(),
                        v.parse(),
                    ) {
                        (Ok(k), Ok(v)) => {
                            r.headers_mut().insert(k, v);
                        }
                        _ => {
                            let _ = incoming.send(closed(format!("invalid header {k:?}"))).await;
                            return;
                        }
                    }
                }
                r
            }
            Err(e) => {
                let _ = incoming
                    .send(closed(format!("invalid agent URL: {e}")))
                    .await;
                return;
            }
        };
        let config = WebSocketConfig::default()
            .max_message_size(Some(target.max_message_bytes))
            .max_frame_size(Some(target.max_message_bytes));
        let connecting = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
        let ws = tokio::select! {
            _ = stop.cancelled() => return,
            r = tokio::time::timeout(connect_timeout, connecting) => match r {
                Ok(Ok((ws, _))) => ws,
                Ok(Err(e)) => {
                    let _ = incoming.send(closed(format!("cannot connect: {e}"))).await;
                    return;
                }
                Err(_) => {
                    let _ = incoming
                        .send(closed(format!(
                            "no connection within {} ms",
                            connect_timeout.as_millis()
                        )))
                        .await;
                    return;
                }
            },
        };
        let (mut sink, mut stream) = ws.split();
        if incoming
            .send(AgentIn::Connected {
                after: clock::now().duration_since(asked),
            })
            .await
            .is_err()
        {
            return;
        }
        let reason = loop {
            tokio::select! {
                _ = stop.cancelled() => {
                    let _ = sink.send(Message::Close(None)).await;
                    break None;
                }
                out = outgoing.recv() => match out {
                    Some(Outbound { text, confirm }) => {
                        if let Err(e) = sink.send(Message::Text(text.into())).await {
                            break Some((format!("send failed: {e}"), false));
                        }
                        if confirm {
                            let _ = incoming.try_send(AgentIn::Written { at: clock::now() });
                        }
                    }
                    // The call is over and dropped its link.
                    None => {
                        let _ = sink.send(Message::Close(None)).await;
                        break None;
                    }
                },
                msg = stream.next() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        let message = AgentIn::Text { text: t.to_string(), at: clock::now() };
                        if incoming.try_send(message).is_err() {
                            dropped_task.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let deliberate = frame.as_ref().is_none_or(|f| u16::from(f.code) == 1000);
                        let reason = format!(
                            "closed by the agent{}",
                            frame.map(|f| format!(" ({} {})", u16::from(f.code), f.reason)).unwrap_or_default()
                        );
                        let _ = incoming.send(AgentIn::Closed { reason, deliberate }).await;
                        // RFC 6455 §5.5.1: the close frame tungstenite queued in reply leaves
                        // on the next flush; the agent then ends the TCP connection. The call
                        // already knows, so a slow agent delays nothing.
                        let _ = tokio::time::timeout(CLOSE_HANDSHAKE, async {
                            let _ = sink.flush().await;
                            while let Some(Ok(_)) = stream.next().await {}
                        })
                        .await;
                        break None;
                    }
                    // Pings are answered by tungstenite; binary frames are not the protocol.
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break Some((format!("socket error: {e}"), false)),
                    None => break Some(("the agent went away".to_string(), false)),
                },
            }
        };
        if let Some((reason, deliberate)) = reason {
            let _ = incoming.send(AgentIn::Closed { reason, deliberate }).await;
        }
    });
    AgentLink {
        to_agent,
        from_agent,
        dropped_from_agent: dropped,
    }
}
