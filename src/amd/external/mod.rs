//! AMD as a service: the wire protocol of an external AMD engine, pure and sans-IO.
//!
//! Owns the messages of the *trunx AMD stream* protocol (a WebSocket carrying one call's
//! answered audio one way and the detector's decisions the other, documented in the README
//! section "AMD as a service"), the server-side [`session::Session`] that feeds received audio
//! to the built-in detector, the AudioSocket frame codec ([`audiosocket`]), and the
//! [`arbiter::Arbiter`] that chooses, per call, between an external engine's decisions and the
//! built-in detector running alongside it. It never touches a socket or the clock: the socket
//! tasks live in `runtime::call::amd_external` (client) and `runtime::amd::serve` (server), and every
//! time-dependent method takes `now`.
//!
//! Client to server: one text message `{"event":"start","start":{"callId":ID,"mediaFormat":
//! {"encoding":"audio/l16"|"audio/x-mulaw"|"audio/x-alaw","sampleRate":8000,"channels":1}}}`,
//! then the audio as binary messages (raw payload in that encoding; L16 is little-endian) or as
//! text `{"event":"media","media":{"payload":BASE64}}`, then `{"event":"stop"}` when the call
//! ends. Server to client: one text message per detector event, `{"event":"amd","call_id":ID,
//! "kind":K,"result":R,"cause":C,"confidence":X,"at_ms":T[,"beep_start_ms":S,"beep_end_ms":E],
//! "final":B}`; `final` is true on the last event of the call. `{"event":"error","reason":..}`
//! precedes a close on a protocol error.

pub mod arbiter;
pub mod audiosocket;
pub mod session;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::amd::{AmdEvent, AmdEventKind, Cause};
use crate::audio::SampleTime;

/// The longest call id accepted (AudioSocket UUIDs are 36 characters).
pub const MAX_CALL_ID: usize = 128;
/// The largest audio message accepted, in bytes (one second of L16 at 16 kHz is 32,000).
pub const MAX_AUDIO_MESSAGE: usize = 32_000;
/// The largest text message accepted (a base64 media message of `MAX_AUDIO_MESSAGE`).
pub const MAX_TEXT_MESSAGE: usize = 48_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("audio before the start message")]
    NotStarted,
    #[error("a second start message")]
    StartedTwice,
    #[error("unsupported encoding {0:?}: use audio/l16, audio/x-mulaw or audio/x-alaw")]
    Encoding(String),
    #[error("unsupported sample rate {0}: use 8000 (or 16000 for audio/l16)")]
    SampleRate(u32),
    #[error("a call id must be 1 to {MAX_CALL_ID} printable characters")]
    CallId,
    #[error("message of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("an L16 payload must be a whole number of 16-bit samples")]
    OddLength,
}

/// How the audio of a session is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Signed 16-bit little-endian linear PCM.
    L16,
    Ulaw,
    Alaw,
}

impl Encoding {
    pub fn parse(s: &str) -> Result<Encoding, ProtocolError> {
        match s.to_ascii_lowercase().as_str() {
            "audio/l16" | "l16" | "slin" | "audio/pcm" => Ok(Encoding::L16),
            "audio/x-mulaw" | "audio/pcmu" | "pcmu" | "mulaw" => Ok(Encoding::Ulaw),
            "audio/x-alaw" | "audio/pcma" | "pcma" | "alaw" => Ok(Encoding::Alaw),
            other => Err(ProtocolError::Encoding(other.chars().take(40).collect())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::L16 => "audio/l16",
            Encoding::Ulaw => "audio/x-mulaw",
            Encoding::Alaw => "audio/x-alaw",
        }
    }
}

/// The `start` message's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Start {
    pub call_id: String,
    pub encoding: Encoding,
    pub sample_rate: u32,
}

/// What a client sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientMessage {
    Start(Start),
    /// Audio in the session's encoding (decoded from base64 for a text media message).
    Media(Vec<u8>),
    Stop,
    /// Anything else with an `event` field (`connected`, `mark`, ...): ignored.
    Other,
}

#[derive(Deserialize)]
struct RawClient {
    event: String,
    #[serde(default)]
    start: Option<RawStart>,
    #[serde(default)]
    media: Option<RawMedia>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStart {
    #[serde(default, alias = "callSid", alias = "uuid")]
    call_id: Option<String>,
    #[serde(default)]
    media_format: Option<RawFormat>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFormat {
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    sample_rate: Option<u32>,
    #[serde(default)]
    channels: Option<u32>,
}

#[derive(Deserialize)]
struct RawMedia {
    payload: String,
}

/// Checks a call id: 1 to [`MAX_CALL_ID`] printable ASCII characters without `/`.
pub fn check_call_id(id: &str) -> Result<(), ProtocolError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_CALL_ID
        && id.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
    if ok {
        Ok(())
    } else {
        Err(ProtocolError::CallId)
    }
}

/// Checks a sample rate for an encoding: 8 kHz, or 16 kHz L16 (halved by the session).
pub fn check_rate(encoding: Encoding, rate: u32) -> Result<(), ProtocolError> {
    match (encoding, rate) {
        (_, 8000) | (Encoding::L16, 16000) => Ok(()),
        _ => Err(ProtocolError::SampleRate(rate)),
    }
}

/// Parses a client's text message.
pub fn parse_client_text(text: &str) -> Result<ClientMessage, ProtocolError> {
    if text.len() > MAX_TEXT_MESSAGE {
        return Err(ProtocolError::TooLarge(text.len()));
    }
    let raw: RawClient =
        serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    match raw.event.as_str() {
        "start" => {
            let start = raw
                .start
                .ok_or_else(|| ProtocolError::Malformed("start without `start`".into()))?;
            let call_id = start
                .call_id
                .ok_or_else(|| ProtocolError::Malformed("start without `callId`".into()))?;
            check_call_id(&call_id)?;
            let format = start.media_format;
            let encoding = match format.as_ref().and_then(|f| f.encoding.as_deref()) {
                Some(e) => Encoding::parse(e)?,
                None => Encoding::L16,
            };
            let sample_rate = format.as_ref().and_then(|f| f.sample_rate).unwrap_or(8000);
            check_rate(encoding, sample_rate)?;
            if format.and_then(|f| f.channels).is_some_and(|c| c != 1) {
                return Err(ProtocolError::Malformed(
                    "only mono audio (channels 1)".into(),
                ));
            }
            Ok(ClientMessage::Start(Start {
                call_id,
                encoding,
                sample_rate,
            }))
        }
        "media" => {
            let media = raw
                .media
                .ok_or_else(|| ProtocolError::Malformed("media without `media`".into()))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(media.payload.as_bytes())
                .map_err(|e| ProtocolError::Malformed(format!("payload: {e}")))?;
            if bytes.len() > MAX_AUDIO_MESSAGE {
                return Err(ProtocolError::TooLarge(bytes.len()));
            }
            Ok(ClientMessage::Media(bytes))
        }
        "stop" => Ok(ClientMessage::Stop),
        _ => Ok(ClientMessage::Other),
    }
}

/// The `start` message a client sends.
pub fn start_message(call_id: &str, encoding: Encoding, sample_rate: u32) -> String {
    serde_json::json!({
        "event": "start",
        "start": {
            "callId": call_id,
            "mediaFormat": {"encoding": encoding.as_str(), "sampleRate": sample_rate, "channels": 1}
        }
    })
    .to_string()
}

/// The `stop` message a client sends at the end of the call.
pub const STOP_MESSAGE: &str = r#"{"event":"stop"}"#;

/// One 20 ms frame as an L16 binary message.
pub fn l16_bytes(samples: &[i16], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(samples.len() * 2);
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
}

/// A decision as it travels on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub event: String,
    #[serde(default)]
    pub call_id: String,
    pub kind: String,
    pub result: Option<String>,
    pub cause: String,
    pub confidence: f32,
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beep_start_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beep_end_ms: Option<u64>,
    #[serde(rename = "final")]
    pub is_final: bool,
}

/// Whether an event ends the detector's work on a call (only `machine` is followed by more).
pub fn is_final(kind: &AmdEventKind) -> bool {
    !matches!(kind, AmdEventKind::Machine)
}

impl Decision {
    pub fn from_event(call_id: &str, e: &AmdEvent) -> Decision {
        let (beep_start_ms, beep_end_ms) = match e.kind {
            AmdEventKind::MachineEndBeep {
                beep_start,
                beep_end,
            } => (Some(beep_start.as_ms()), Some(beep_end.as_ms())),
            _ => (None, None),
        };
        Decision {
            event: "amd".into(),
            call_id: call_id.to_string(),
            kind: e.kind.as_str().into(),
            result: e.kind.public_result().map(str::to_string),
            cause: e.cause.as_str().to_string(),
            confidence: (e.confidence * 1000.0).round() / 1000.0,
            at_ms: e.at.as_ms(),
            beep_start_ms,
            beep_end_ms,
            is_final: is_final(&e.kind),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The detector event this decision stands for.
    pub fn to_event(&self) -> Result<AmdEvent, ProtocolError> {
        let kind = match self.kind.as_str() {
            "human" => AmdEventKind::Human,
            "machine" => AmdEventKind::Machine,
            "machine_end_beep" => AmdEventKind::MachineEndBeep {
                beep_start: SampleTime::from_ms(self.beep_start_ms.unwrap_or(self.at_ms)),
                beep_end: SampleTime::from_ms(self.beep_end_ms.unwrap_or(self.at_ms)),
            },
            "machine_end_silence" => AmdEventKind::MachineEndSilence,
            "beep_timeout" => AmdEventKind::BeepTimeout,
            "unknown" => AmdEventKind::Unknown,
            "fax" => AmdEventKind::Fax,
            "sit" => AmdEventKind::Sit,
            other => {
                return Err(ProtocolError::Malformed(format!(
                    "unknown kind {:?}",
                    other.chars().take(40).collect::<String>()
                )));
            }
        };
        Ok(AmdEvent {
            kind,
            at: SampleTime::from_ms(self.at_ms),
            confidence: self.confidence.clamp(0.0, 1.0),
            cause: Cause::new(format_args!("{}", self.cause)),
        })
    }
}

/// What a server sent.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerMessage {
    Decision(Decision),
    Error(String),
    Other,
}

/// Parses a server's text message.
pub fn parse_server_text(text: &str) -> Result<ServerMessage, ProtocolError> {
    if text.len() > MAX_TEXT_MESSAGE {
        return Err(ProtocolError::TooLarge(text.len()));
    }
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    match v.get("event").and_then(|e| e.as_str()) {
        Some("amd") => serde_json::from_value(v)
            .map(ServerMessage::Decision)
            .map_err(|e| ProtocolError::Malformed(e.to_string())),
        Some("error") => Ok(ServerMessage::Error(
            v.get("reason")
                .and_then(|r| r.as_str())
                .unwrap_or("")
                .chars()
                .take(200)
                .collect(),
        )),
        _ => Ok(ServerMessage::Other),
    }
}

/// The error message a server sends before closing.
pub fn error_message(reason: &str) -> String {
    serde_json::json!({"event": "error", "reason": reason}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_round_trips_and_twilio_names_are_accepted() {
        let text = start_message("call-1", Encoding::L16, 8000);
        assert_eq!(
            parse_client_text(&text).unwrap(),
            ClientMessage::Start(Start {
                call_id: "call-1".into(),
                encoding: Encoding::L16,
                sample_rate: 8000
            })
        );
        let twilio = r#"{"event":"start","start":{"callSid":"CA1","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#;
        match parse_client_text(twilio).unwrap() {
            ClientMessage::Start(s) => {
                assert_eq!((s.call_id.as_str(), s.encoding), ("CA1", Encoding::Ulaw))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_client_text(STOP_MESSAGE).unwrap(),
            ClientMessage::Stop
        );
        assert_eq!(
            parse_client_text(r#"{"event":"mark"}"#).unwrap(),
            ClientMessage::Other
        );
    }

    #[test]
    fn bad_starts_are_refused() {
        for (text, err) in [
            (
                r#"{"event":"start","start":{"callId":""}}"#,
                ProtocolError::CallId,
            ),
            (
                r#"{"event":"start","start":{"callId":"a","mediaFormat":{"sampleRate":44100}}}"#,
                ProtocolError::SampleRate(44100),
            ),
            (
                r#"{"event":"start","start":{"callId":"a","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":16000}}}"#,
                ProtocolError::SampleRate(16000),
            ),
        ] {
            assert_eq!(parse_client_text(text).unwrap_err(), err, "{text}");
        }
        assert!(matches!(
            parse_client_text("{nope"),
            Err(ProtocolError::Malformed(_))
        ));
        let long = "x".repeat(MAX_TEXT_MESSAGE + 1);
        assert!(matches!(
            parse_client_text(&long),
            Err(ProtocolError::TooLarge(_))
        ));
    }

    #[test]
    fn media_payload_is_base64() {
        let m = r#"{"event":"media","media":{"payload":"AAEC"}}"#;
        assert_eq!(
            parse_client_text(m).unwrap(),
            ClientMessage::Media(vec![0, 1, 2])
        );
    }

    #[test]
    fn a_decision_round_trips_to_the_same_event() {
        let e = AmdEvent {
            kind: AmdEventKind::MachineEndBeep {
                beep_start: SampleTime::from_ms(5000),
                beep_end: SampleTime::from_ms(5400),
            },
            at: SampleTime::from_ms(5420),
            confidence: 0.875,
            cause: Cause::new(format_args!("BEEP-1000HZ-400MS-1T")),
        };
        let d = Decision::from_event("c", &e);
        assert!(d.is_final);
        let text = d.to_json();
        assert!(text.contains(r#""beep_end_ms":5400"#), "{text}");
        match parse_server_text(&text).unwrap() {
            ServerMessage::Decision(back) => assert_eq!(back.to_event().unwrap(), e),
            other => panic!("{other:?}"),
        }
        let machine = AmdEvent {
            kind: AmdEventKind::Machine,
            ..e
        };
        assert!(!Decision::from_event("c", &machine).is_final);
    }
}
