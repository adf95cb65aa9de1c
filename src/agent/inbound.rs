//! Messages from the agent (agent → trunx), parsed within fixed bounds.

use std::borrow::Cow;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;

/// Standard alphabet; padding optional, since agents differ on it and it carries no data.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Size bounds for one agent message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboundLimits {
    /// Longest text frame accepted, in bytes. 64 KiB holds ~6 s of μ-law in base64.
    pub max_message_bytes: usize,
    /// Longest mark name accepted, in bytes (names are echoed back and held while pending).
    pub max_mark_name_bytes: usize,
}

impl Default for InboundLimits {
    fn default() -> Self {
        InboundLimits {
            max_message_bytes: 64 * 1024,
            max_mark_name_bytes: 256,
        }
    }
}

/// One message from the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// μ-law 8 kHz audio to play to the prospect, any length (not necessarily whole frames).
    Media(Vec<u8>),
    /// Echo this name once the audio queued before it has played.
    Mark(String),
    /// Barge-in: drop the queued audio, echo the pending marks.
    Clear,
    /// A well-formed event we do not act on (its name); the caller counts and ignores it.
    Other(String),
}

/// Why an agent message was refused. The runtime counts these and drops the message.
#[derive(Debug, thiserror::Error)]
pub enum AgentProtocolError {
    #[error("agent message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("agent message is not a JSON object with a string `event`: {0}")]
    NotAnEvent(serde_json::Error),
    #[error("agent `{event}` event is malformed: {source}")]
    Malformed {
        event: &'static str,
        source: serde_json::Error,
    },
    #[error("agent media payload is not valid base64: {0}")]
    BadBase64(base64::DecodeError),
    #[error("agent media payload is empty")]
    EmptyPayload,
    #[error("agent mark name of {len} bytes exceeds the {max}-byte limit")]
    MarkNameTooLong { len: usize, max: usize },
}

#[derive(Deserialize)]
struct EventName<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
}

#[derive(Deserialize)]
struct MediaMessage<'a> {
    #[serde(borrow)]
    media: MediaBody<'a>,
}

#[derive(Deserialize)]
struct MediaBody<'a> {
    /// Borrowed unless the agent escaped a `/` as `\/`.
    #[serde(borrow)]
    payload: Cow<'a, str>,
}

#[derive(Deserialize)]
struct MarkMessage {
    mark: MarkBody,
}

#[derive(Deserialize)]
struct MarkBody {
    name: String,
}

/// Parses one text frame from the agent. Shapes (Twilio Media Streams, bidirectional):
/// `{"event":"media","streamSid":…,"media":{"payload":"<base64 μ-law>"}}`,
/// `{"event":"mark","streamSid":…,"mark":{"name":"…"}}`, `{"event":"clear","streamSid":…}`.
/// Extra fields are ignored; the size bound is checked before any parsing.
pub fn parse_inbound(text: &str, limits: &InboundLimits) -> Result<Inbound, AgentProtocolError> {
    if text.len() > limits.max_message_bytes {
        return Err(AgentProtocolError::TooLarge {
            len: text.len(),
            max: limits.max_message_bytes,
        });
    }
    // First pass reads only `event` (the rest is validated as JSON and skipped), so an unknown
    // event with an unexpected body is still "unknown", not garbage.
    let name: EventName<'_> = serde_json::from_str(text).map_err(AgentProtocolError::NotAnEvent)?;
    match name.event.as_ref() {
        "media" => {
            let message: MediaMessage<'_> =
                serde_json::from_str(text).map_err(|source| AgentProtocolError::Malformed {
                    event: "media",
                    source,
                })?;
            let audio = LENIENT_BASE64
                .decode(message.media.payload.as_bytes())
                .map_err(AgentProtocolError::BadBase64)?;
            if audio.is_empty() {
                return Err(AgentProtocolError::EmptyPayload);
            }
            Ok(Inbound::Media(audio))
        }
        "mark" => {
            let message: MarkMessage =
                serde_json::from_str(text).map_err(|source| AgentProtocolError::Malformed {
                    event: "mark",
                    source,
                })?;
            let name = message.mark.name;
            if name.len() > limits.max_mark_name_bytes {
                return Err(AgentProtocolError::MarkNameTooLong {
                    len: name.len(),
                    max: limits.max_mark_name_bytes,
                });
            }
            Ok(Inbound::Mark(name))
        }
        "clear" => Ok(Inbound::Clear),
        other => Ok(Inbound::Other(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn parse(text: &str) -> Result<Inbound, AgentProtocolError> {
        parse_inbound(text, &InboundLimits::default())
    }

    #[test]
    fn media_decodes_payload() {
        let audio: Vec<u8> = (0..=255).chain(0..64).collect();
        let text = format!(
            r#"{{"event":"media","streamSid":"MZ1","media":{{"payload":"{}"}}}}"#,
            STANDARD.encode(&audio)
        );
        assert_eq!(parse(&text).unwrap(), Inbound::Media(audio));
    }

    #[test]
    fn media_accepts_escaped_slash_and_missing_padding() {
        // 0xFF 0xFF encodes as "//8=": escaped slashes and no padding.
        let text = r#"{"event":"media","streamSid":"MZ1","media":{"payload":"\/\/8"}}"#;
        assert_eq!(parse(text).unwrap(), Inbound::Media(vec![0xFF, 0xFF]));
    }

    #[test]
    fn mark_and_clear() {
        assert_eq!(
            parse(r#"{"event":"mark","streamSid":"MZ1","mark":{"name":"utt-17"}}"#).unwrap(),
            Inbound::Mark("utt-17".into())
        );
        assert_eq!(
            parse(r#"{"event":"clear","streamSid":"MZ1"}"#).unwrap(),
            Inbound::Clear
        );
    }

    #[test]
    fn unknown_events_are_other_even_with_odd_bodies() {
        assert_eq!(
            parse(r#"{"event":"transcript","text":[1,2,{"x":null}]}"#).unwrap(),
            Inbound::Other("transcript".into())
        );
        assert_eq!(
            parse(r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#).unwrap(),
            Inbound::Other("connected".into())
        );
    }

    #[test]
    fn garbage_is_an_error() {
        for text in [
            "",
            "not json",
            "[]",
            "{}",
            r#"{"event":5}"#,
            r#"{"event":"media""#,
        ] {
            assert!(
                matches!(parse(text), Err(AgentProtocolError::NotAnEvent(_))),
                "{text:?} -> {:?}",
                parse(text)
            );
        }
        for text in [
            r#"{"event":"media","streamSid":"MZ1"}"#,
            r#"{"event":"media","media":{"payload":7}}"#,
            r#"{"event":"mark","mark":{}}"#,
            r#"{"event":"mark","mark":"utt"}"#,
        ] {
            assert!(
                matches!(parse(text), Err(AgentProtocolError::Malformed { .. })),
                "{text:?} -> {:?}",
                parse(text)
            );
        }
        assert!(matches!(
            parse(r#"{"event":"media","media":{"payload":"!!!!"}}"#),
            Err(AgentProtocolError::BadBase64(_))
        ));
        assert!(matches!(
            parse(r#"{"event":"media","media":{"payload":""}}"#),
            Err(AgentProtocolError::EmptyPayload)
        ));
    }

    #[test]
    fn oversized_messages_and_mark_names_are_refused() {
        let limits = InboundLimits {
            max_message_bytes: 100,
            max_mark_name_bytes: 8,
        };
        let payload = STANDARD.encode([0xFFu8; 160]);
        let text = format!(r#"{{"event":"media","media":{{"payload":"{payload}"}}}}"#);
        assert!(matches!(
            parse_inbound(&text, &limits),
            Err(AgentProtocolError::TooLarge { len, max: 100 }) if len == text.len()
        ));
        assert!(matches!(
            parse_inbound(r#"{"event":"mark","mark":{"name":"123456789"}}"#, &limits),
            Err(AgentProtocolError::MarkNameTooLong { len: 9, max: 8 })
        ));
        assert_eq!(
            parse_inbound(r#"{"event":"mark","mark":{"name":"12345678"}}"#, &limits).unwrap(),
            Inbound::Mark("12345678".into())
        );
        // The default bound: just over 64 KiB is refused whatever it holds.
        let big = format!(r#"{{"event":"clear","pad":"{}"}}"#, "x".repeat(64 * 1024));
        assert!(matches!(
            parse(&big),
            Err(AgentProtocolError::TooLarge { .. })
        ));
    }
}
