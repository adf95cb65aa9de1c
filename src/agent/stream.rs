//! Outgoing events of one media stream (trunx → agent), as JSON text frames.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::MULAW_FRAME_BYTES;
use crate::audio::SampleTime;

/// The ids of one stream. The caller generates them (randomness is injected, DESIGN.md §2);
/// Twilio's shapes are `AC…`, `MZ…` and `CA…` followed by 32 hex digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamIds {
    pub stream_sid: String,
    pub call_sid: String,
    pub account_sid: String,
}

impl StreamIds {
    /// Fresh `MZ`/`CA` ids from `rng` (seeded in tests) under a fixed `account_sid`.
    pub fn generate(rng: &mut impl rand::Rng, account_sid: String) -> StreamIds {
        StreamIds {
            stream_sid: format!("MZ{:032x}", rng.random::<u128>()),
            call_sid: format!("CA{:032x}", rng.random::<u128>()),
            account_sid,
        }
    }
}

/// What the agent learns about the call in `start.customParameters`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StartInfo {
    /// `campaignId`.
    pub campaign_id: String,
    /// `prospect`: the called number (E.164).
    pub prospect: String,
    /// `callerId`: the number presented to the prospect.
    pub caller_id: String,
    /// `amdResult`: the AMD verdict that led to the bridge (`human`, `unknown`, …).
    pub amd_result: String,
    /// `amdCause`: why the detector decided so.
    pub amd_cause: String,
    /// Further parameters, sent as given. A key equal to one of the fixed ones above is skipped
    /// so the object never carries a duplicate key.
    pub extra: Vec<(String, String)>,
}

/// Phone numbers are redacted: this value ends up in logs.
impl fmt::Debug for StartInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartInfo")
            .field("campaign_id", &self.campaign_id)
            .field("prospect", &crate::campaign::redact(&self.prospect, false))
            .field(
                "caller_id",
                &crate::campaign::redact(&self.caller_id, false),
            )
            .field("amd_result", &self.amd_result)
            .field("amd_cause", &self.amd_cause)
            .field(
                "extra_keys",
                &self.extra.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

const FIXED_PARAMETER_KEYS: [&str; 5] = [
    "campaignId",
    "prospect",
    "callerId",
    "amdResult",
    "amdCause",
];

impl Serialize for StartInfo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("campaignId", &self.campaign_id)?;
        map.serialize_entry("prospect", &self.prospect)?;
        map.serialize_entry("callerId", &self.caller_id)?;
        map.serialize_entry("amdResult", &self.amd_result)?;
        map.serialize_entry("amdCause", &self.amd_cause)?;
        for (key, value) in &self.extra {
            if !FIXED_PARAMETER_KEYS.contains(&key.as_str()) {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

/// One stream's outgoing side: builds each event's text and keeps the counters the protocol
/// carries. `sequenceNumber` counts every event after `connected` (so `start` is `"1"`),
/// `chunk` counts `media` events from `"1"`, `timestamp` is ms of audio since `start`.
#[derive(Debug)]
pub struct AgentStream {
    ids: StreamIds,
    last_sequence: u64,
    last_chunk: u64,
    origin: SampleTime,
    /// Reused for the base64 of each frame so the media path allocates only the output text.
    payload_scratch: String,
}

/// Serializes a counter as a JSON string without an intermediate `String`.
fn decimal<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

#[derive(Serialize)]
struct Connected {
    event: &'static str,
    protocol: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct Start<'a> {
    event: &'static str,
    #[serde(rename = "sequenceNumber", serialize_with = "decimal")]
    sequence_number: u64,
    #[serde(rename = "streamSid")]
    stream_sid: &'a str,
    start: StartBody<'a>,
}

#[derive(Serialize)]
struct StartBody<'a> {
    #[serde(rename = "accountSid")]
    account_sid: &'a str,
    #[serde(rename = "streamSid")]
    stream_sid: &'a str,
    #[serde(rename = "callSid")]
    call_sid: &'a str,
    tracks: [&'static str; 1],
    #[serde(rename = "customParameters")]
    custom_parameters: &'a StartInfo,
    #[serde(rename = "mediaFormat")]
    media_format: MediaFormat,
}

#[derive(Serialize)]
struct MediaFormat {
    encoding: &'static str,
    #[serde(rename = "sampleRate")]
    sample_rate: u32,
    channels: u32,
}

#[derive(Serialize)]
struct Media<'a> {
    event: &'static str,
    #[serde(rename = "sequenceNumber", serialize_with = "decimal")]
    sequence_number: u64,
    #[serde(rename = "streamSid")]
    stream_sid: &'a str,
    media: MediaBody<'a>,
}

#[derive(Serialize)]
struct MediaBody<'a> {
    track: &'static str,
    #[serde(serialize_with = "decimal")]
    chunk: u64,
    #[serde(serialize_with = "decimal")]
    timestamp: u64,
    payload: &'a str,
}

#[derive(Serialize)]
struct Dtmf<'a> {
    event: &'static str,
    #[serde(rename = "sequenceNumber", serialize_with = "decimal")]
    sequence_number: u64,
    #[serde(rename = "streamSid")]
    stream_sid: &'a str,
    dtmf: DtmfBody,
}

#[derive(Serialize)]
struct DtmfBody {
    track: &'static str,
    digit: char,
}

#[derive(Serialize)]
struct Mark<'a> {
    event: &'static str,
    #[serde(rename = "sequenceNumber", serialize_with = "decimal")]
    sequence_number: u64,
    #[serde(rename = "streamSid")]
    stream_sid: &'a str,
    mark: MarkBody<'a>,
}

#[derive(Serialize)]
struct MarkBody<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct Stop<'a> {
    event: &'static str,
    #[serde(rename = "sequenceNumber", serialize_with = "decimal")]
    sequence_number: u64,
    #[serde(rename = "streamSid")]
    stream_sid: &'a str,
    stop: StopBody<'a>,
}

#[derive(Serialize)]
struct StopBody<'a> {
    #[serde(rename = "accountSid")]
    account_sid: &'a str,
    #[serde(rename = "callSid")]
    call_sid: &'a str,
    /// Not in Twilio's docs; `sipgate-sip-stream-bridge` sends it (e.g. `dial-forward`).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// serde_json cannot fail on these structs (string keys, no maps with non-string keys, no
/// floats), and its output is UTF-8.
fn to_text<T: Serialize>(value: &T, capacity: usize) -> String {
    let mut out = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut out, value).expect("event structs always serialize");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Base64 of 160 bytes is 216 characters; the envelope around it is under 200.
const MEDIA_TEXT_CAPACITY: usize = 448;

impl AgentStream {
    pub fn new(ids: StreamIds) -> AgentStream {
        AgentStream {
            ids,
            last_sequence: 0,
            last_chunk: 0,
            origin: SampleTime::ZERO,
            payload_scratch: String::with_capacity(MULAW_FRAME_BYTES.div_ceil(3) * 4),
        }
    }

    pub fn ids(&self) -> &StreamIds {
        &self.ids
    }

    /// `sequenceNumber` of the last event built (0 before `start`).
    pub fn last_sequence_number(&self) -> u64 {
        self.last_sequence
    }

    fn next_sequence(&mut self) -> u64 {
        self.last_sequence += 1;
        self.last_sequence
    }

    /// `{"event":"connected","protocol":"Call","version":"1.0.0"}`: the first text frame.
    pub fn connected(&self) -> String {
        to_text(
            &Connected {
                event: "connected",
                protocol: "Call",
                version: "1.0.0",
            },
            64,
        )
    }

    /// The `start` event. `origin` is the call's audio time at which the stream starts: every
    /// `media.timestamp` is counted from it.
    pub fn start(&mut self, info: &StartInfo, origin: SampleTime) -> String {
        self.origin = origin;
        let sequence_number = self.next_sequence();
        to_text(
            &Start {
                event: "start",
                sequence_number,
                stream_sid: &self.ids.stream_sid,
                start: StartBody {
                    account_sid: &self.ids.account_sid,
                    stream_sid: &self.ids.stream_sid,
                    call_sid: &self.ids.call_sid,
                    tracks: ["inbound"],
                    custom_parameters: info,
                    media_format: MediaFormat {
                        encoding: "audio/x-mulaw",
                        sample_rate: crate::audio::SAMPLE_RATE,
                        channels: 1,
                    },
                },
            },
            512,
        )
    }

    /// One inbound (prospect → us) 20 ms μ-law frame whose first sample is at call audio time
    /// `at`. `timestamp` is `at` minus the stream origin in ms (0 if `at` is earlier), so gaps
    /// in the RTP stream show up as jumps, as on Twilio.
    pub fn media(&mut self, frame: &[u8; MULAW_FRAME_BYTES], at: SampleTime) -> String {
        let sequence_number = self.next_sequence();
        self.last_chunk += 1;
        self.payload_scratch.clear();
        BASE64.encode_string(frame, &mut self.payload_scratch);
        to_text(
            &Media {
                event: "media",
                sequence_number,
                stream_sid: &self.ids.stream_sid,
                media: MediaBody {
                    track: "inbound",
                    chunk: self.last_chunk,
                    timestamp: at.saturating_sub(self.origin).as_ms(),
                    payload: &self.payload_scratch,
                },
            },
            MEDIA_TEXT_CAPACITY,
        )
    }

    /// A DTMF digit the prospect pressed (`0`–`9`, `*`, `#`, `A`–`D`). Twilio names this
    /// track `inbound_track`, unlike the media track.
    pub fn dtmf(&mut self, digit: char) -> String {
        let sequence_number = self.next_sequence();
        to_text(
            &Dtmf {
                event: "dtmf",
                sequence_number,
                stream_sid: &self.ids.stream_sid,
                dtmf: DtmfBody {
                    track: "inbound_track",
                    digit,
                },
            },
            128,
        )
    }

    /// Echo of the agent's mark `name`: the audio queued before it has played, or a `clear`
    /// flushed it.
    pub fn mark(&mut self, name: &str) -> String {
        let sequence_number = self.next_sequence();
        to_text(
            &Mark {
                event: "mark",
                sequence_number,
                stream_sid: &self.ids.stream_sid,
                mark: MarkBody { name },
            },
            128 + name.len(),
        )
    }

    /// The last event of the stream. `reason` (e.g. `"hangup"`, `"dial-forward"`) is added as
    /// `stop.reason` when given.
    pub fn stop(&mut self, reason: Option<&str>) -> String {
        let sequence_number = self.next_sequence();
        to_text(
            &Stop {
                event: "stop",
                sequence_number,
                stream_sid: &self.ids.stream_sid,
                stop: StopBody {
                    account_sid: &self.ids.account_sid,
                    call_sid: &self.ids.call_sid,
                    reason,
                },
            },
            256,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use serde_json::{Value, json};

    fn ids() -> StreamIds {
        StreamIds {
            stream_sid: "MZ0123".into(),
            call_sid: "CA4567".into(),
            account_sid: "AC89ab".into(),
        }
    }

    fn info() -> StartInfo {
        StartInfo {
            campaign_id: "cmp_1".into(),
            prospect: "+15551230000".into(),
            caller_id: "+15559870000".into(),
            amd_result: "human".into(),
            amd_cause: "short greeting then silence".into(),
            extra: vec![
                ("tenant".into(), "acme".into()),
                ("prospect".into(), "+19999999999".into()),
            ],
        }
    }

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("output is JSON")
    }

    #[test]
    fn connected_shape() {
        let stream = AgentStream::new(ids());
        assert_eq!(
            parse(&stream.connected()),
            json!({"event":"connected","protocol":"Call","version":"1.0.0"})
        );
    }

    #[test]
    fn start_shape_with_custom_parameters_and_numeric_media_format() {
        let mut stream = AgentStream::new(ids());
        let _ = stream.connected();
        let text = stream.start(&info(), SampleTime(8000));
        assert_eq!(
            parse(&text),
            json!({
                "event": "start",
                "sequenceNumber": "1",
                "streamSid": "MZ0123",
                "start": {
                    "accountSid": "AC89ab",
                    "streamSid": "MZ0123",
                    "callSid": "CA4567",
                    "tracks": ["inbound"],
                    "customParameters": {
                        "campaignId": "cmp_1",
                        "prospect": "+15551230000",
                        "callerId": "+15559870000",
                        "amdResult": "human",
                        "amdCause": "short greeting then silence",
                        "tenant": "acme"
                    },
                    "mediaFormat": {"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}
                }
            })
        );
        // The colliding extra key is skipped, not emitted twice.
        assert_eq!(text.matches("\"prospect\"").count(), 1);
    }

    #[test]
    fn media_shape_and_payload_round_trip() {
        let mut stream = AgentStream::new(ids());
        let _ = stream.start(&info(), SampleTime(1000));
        let mut frame = [0u8; MULAW_FRAME_BYTES];
        for (i, b) in frame.iter_mut().enumerate() {
            *b = (i * 7 % 256) as u8;
        }
        let value = parse(&stream.media(&frame, SampleTime(1160)));
        let payload = value["media"]["payload"]
            .as_str()
            .expect("payload string")
            .to_owned();
        assert_eq!(
            BASE64.decode(&payload).expect("valid base64"),
            frame.to_vec()
        );
        assert_eq!(
            value,
            json!({
                "event": "media",
                "sequenceNumber": "2",
                "streamSid": "MZ0123",
                "media": {"track":"inbound","chunk":"1","timestamp":"20","payload":payload}
            })
        );
    }

    #[test]
    fn counters_progress_over_media_frames_and_other_events() {
        let mut stream = AgentStream::new(ids());
        let origin = SampleTime(4000);
        let _ = stream.start(&info(), origin);
        let frame = [MULAW_SILENCE_FOR_TEST; MULAW_FRAME_BYTES];
        for n in 1..=5u64 {
            let at = SampleTime(origin.0 + (n - 1) * 160);
            let value = parse(&stream.media(&frame, at));
            assert_eq!(value["sequenceNumber"], json!((n + 1).to_string()));
            assert_eq!(value["media"]["chunk"], json!(n.to_string()));
            assert_eq!(
                value["media"]["timestamp"],
                json!(((n - 1) * 20).to_string())
            );
        }
        // A lost packet: the timestamp jumps, the chunk does not.
        let value = parse(&stream.media(&frame, SampleTime(origin.0 + 7 * 160)));
        assert_eq!(value["media"]["chunk"], json!("6"));
        assert_eq!(value["media"]["timestamp"], json!("140"));
        assert_eq!(value["sequenceNumber"], json!("7"));
        // Non-media events share the sequence but not the chunk counter.
        assert_eq!(parse(&stream.dtmf('5'))["sequenceNumber"], json!("8"));
        let value = parse(&stream.media(&frame, SampleTime(origin.0 + 8 * 160)));
        assert_eq!(value["sequenceNumber"], json!("9"));
        assert_eq!(value["media"]["chunk"], json!("7"));
        assert_eq!(stream.last_sequence_number(), 9);
    }

    const MULAW_SILENCE_FOR_TEST: u8 = super::super::MULAW_SILENCE;

    #[test]
    fn dtmf_mark_and_stop_shapes() {
        let mut stream = AgentStream::new(ids());
        let _ = stream.start(&info(), SampleTime::ZERO);
        assert_eq!(
            parse(&stream.dtmf('#')),
            json!({"event":"dtmf","sequenceNumber":"2","streamSid":"MZ0123",
                   "dtmf":{"track":"inbound_track","digit":"#"}})
        );
        assert_eq!(
            parse(&stream.mark("utt-17")),
            json!({"event":"mark","sequenceNumber":"3","streamSid":"MZ0123",
                   "mark":{"name":"utt-17"}})
        );
        assert_eq!(
            parse(&stream.stop(None)),
            json!({"event":"stop","sequenceNumber":"4","streamSid":"MZ0123",
                   "stop":{"accountSid":"AC89ab","callSid":"CA4567"}})
        );
        assert_eq!(
            parse(&stream.stop(Some("dial-forward"))),
            json!({"event":"stop","sequenceNumber":"5","streamSid":"MZ0123",
                   "stop":{"accountSid":"AC89ab","callSid":"CA4567","reason":"dial-forward"}})
        );
    }

    #[test]
    fn mark_names_are_json_escaped() {
        let mut stream = AgentStream::new(ids());
        let name = "a\"b\\c\n";
        assert_eq!(parse(&stream.mark(name))["mark"]["name"], json!(name));
    }

    #[test]
    fn generated_ids_have_twilio_shapes_and_follow_the_seed() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let a = StreamIds::generate(&mut rng, "AC00".into());
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let b = StreamIds::generate(&mut rng, "AC00".into());
        assert_eq!(a, b);
        assert_ne!(a.stream_sid[2..], a.call_sid[2..]);
        for (id, prefix) in [(&a.stream_sid, "MZ"), (&a.call_sid, "CA")] {
            assert!(id.starts_with(prefix), "{id}");
            assert_eq!(id.len(), 34, "{id}");
            assert!(id[2..].bytes().all(|c| c.is_ascii_hexdigit()), "{id}");
        }
    }

    #[test]
    fn debug_redacts_phone_numbers() {
        let shown = format!("{:?}", info());
        assert!(!shown.contains("5551230000"), "{shown}");
        assert!(!shown.contains("5559870000"), "{shown}");
        assert!(shown.contains("0000"), "{shown}");
    }
}
