//! Validation of the flexible JSON objects of a campaign: `mode` (fields by channel) and
//! `callerIdStrategy`. Known fields are checked; unknown fields are left alone (the API keeps
//! and echoes them). Errors name the field as the client wrote it, e.g. `mode.max_retries`.

use serde_json::{Map, Value};

use super::status::Channel;

/// One invalid field: its path in the request body and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What a valid `mode` refers to that only the store can check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModeRefs {
    /// The audio asset id of a `voicemailAudioUrl` written as this server's relative path
    /// `/audio/<id>/file`.
    pub audio_asset: Option<String>,
    /// The same for `identificationAudioUrl`.
    pub identification_asset: Option<String>,
}

/// Most characters of an SMS `message`.
pub const SMS_MAX_CHARS: usize = 1600;
/// Most retries per prospect.
pub const MAX_RETRIES: u64 = 20;
/// Longest `retry_delay`: 30 days.
pub const MAX_RETRY_DELAY_S: u64 = 30 * 24 * 3600;

/// Checks `mode` for `channel`. `max_cps` is the trunk limit from the configuration.
pub fn validate_mode(channel: Channel, mode: &Value, max_cps: f64) -> Result<ModeRefs, FieldError> {
    let obj = mode
        .as_object()
        .ok_or_else(|| FieldError::new("mode", "must be a JSON object"))?;
    // Compliance keys of both channels (issue 20).
    if let Some(v) = obj.get("requireConsent")
        && !v.is_boolean()
    {
        return Err(FieldError::new(
            "mode.requireConsent",
            "must be true or false",
        ));
    }
    if let Some(v) = obj.get("max_abandon_rate")
        && !v.as_f64().is_some_and(|r| r > 0.0 && r <= 0.03)
    {
        return Err(FieldError::new(
            "mode.max_abandon_rate",
            "must be a fraction above 0 and at most 0.03 (3 %)",
        ));
    }
    match channel {
        Channel::Voice => validate_voice(obj, max_cps),
        Channel::Sms => validate_sms(obj).map(|_| ModeRefs::default()),
    }
}

fn validate_voice(obj: &Map<String, Value>, max_cps: f64) -> Result<ModeRefs, FieldError> {
    let mut refs = ModeRefs::default();
    if let Some(v) = obj.get("ai")
        && !v.is_boolean()
    {
        return Err(FieldError::new("mode.ai", "must be true or false"));
    }
    if let Some(v) = obj.get("calls_per_second") {
        let cps = v
            .as_f64()
            .ok_or_else(|| FieldError::new("mode.calls_per_second", "must be a number"))?;
        if !(cps > 0.0 && cps <= max_cps) {
            return Err(FieldError::new(
                "mode.calls_per_second",
                format!("must be greater than 0 and at most the trunk limit of {max_cps}"),
            ));
        }
    }
    if let Some(v) = obj.get("max_retries") {
        match v.as_u64() {
            Some(n) if n <= MAX_RETRIES => {}
            _ => {
                return Err(FieldError::new(
                    "mode.max_retries",
                    format!("must be a whole number from 0 to {MAX_RETRIES}"),
                ));
            }
        }
    }
    if let Some(v) = obj.get("retry_delay") {
        let s = v.as_str().ok_or_else(|| {
            FieldError::new("mode.retry_delay", "must be a duration string like \"4h\"")
        })?;
        parse_duration(s).map_err(|m| FieldError::new("mode.retry_delay", m))?;
    }
    if let Some(v) = obj.get("voicemailAudioUrl") {
        let s = v
            .as_str()
            .ok_or_else(|| FieldError::new("mode.voicemailAudioUrl", "must be a URL string"))?;
        refs.audio_asset =
            check_audio_url(s).map_err(|m| FieldError::new("mode.voicemailAudioUrl", m))?;
    }
    let ai = obj.get("ai").and_then(Value::as_bool).unwrap_or(false);
    if let Some(v) = obj.get("identificationAudioUrl") {
        let field = "mode.identificationAudioUrl";
        let s = v
            .as_str()
            .ok_or_else(|| FieldError::new(field, "must be a URL string"))?;
        refs.identification_asset = check_audio_url(s).map_err(|m| FieldError::new(field, m))?;
        if !ai {
            return Err(FieldError::new(
                field,
                "only means something with \"ai\": true (a person the agent does not take \
                 within 2 s hears it)",
            ));
        }
    }
    for (key, schemes) in [
        ("agentUrl", &["ws://", "wss://"][..]),
        ("agentSipUri", &["sip:", "sips:"][..]),
    ] {
        let field = format!("mode.{key}");
        let Some(v) = obj.get(key) else { continue };
        let s = v
            .as_str()
            .ok_or_else(|| FieldError::new(&field, "must be a string"))?;
        if s.len() > MAX_AGENT_ADDRESS || !schemes.iter().any(|p| s.starts_with(p)) {
            return Err(FieldError::new(
                &field,
                format!(
                    "must start with {} and be at most {MAX_AGENT_ADDRESS} characters",
                    schemes.join(" or ")
                ),
            ));
        }
        if !ai {
            return Err(FieldError::new(
                &field,
                "only means something with \"ai\": true (humans are bridged to the agent)",
            ));
        }
    }
    if let Some(v) = obj.get("amdProvider")
        && !matches!(v.as_str(), Some("builtin" | "external"))
    {
        return Err(FieldError::new(
            "mode.amdProvider",
            "must be \"builtin\" or \"external\"",
        ));
    }
    if let Some(v) = obj.get("amdExternalUrl") {
        let s = v
            .as_str()
            .ok_or_else(|| FieldError::new("mode.amdExternalUrl", "must be a string"))?;
        if s.len() > MAX_AGENT_ADDRESS {
            return Err(FieldError::new(
                "mode.amdExternalUrl",
                format!("must be at most {MAX_AGENT_ADDRESS} characters"),
            ));
        }
        parse_ws_url(s).map_err(|m| FieldError::new("mode.amdExternalUrl", m))?;
        if obj.get("amdProvider").and_then(Value::as_str) != Some("external") {
            return Err(FieldError::new(
                "mode.amdExternalUrl",
                "only means something with \"amdProvider\": \"external\"",
            ));
        }
    }
    if obj.contains_key("agentUrl") && obj.contains_key("agentSipUri") {
        return Err(FieldError::new(
            "mode.agentSipUri",
            "give the agent as agentUrl (websocket) or agentSipUri (SIP), not both",
        ));
    }
    Ok(refs)
}

/// Longest `mode.agentUrl` / `mode.agentSipUri` accepted.
const MAX_AGENT_ADDRESS: usize = 2048;

fn validate_sms(obj: &Map<String, Value>) -> Result<(), FieldError> {
    let message = obj
        .get("message")
        .ok_or_else(|| FieldError::new("mode.message", "is required for an sms campaign"))?;
    let text = message
        .as_str()
        .ok_or_else(|| FieldError::new("mode.message", "must be a string"))?;
    let n = text.chars().count();
    if n == 0 || n > SMS_MAX_CHARS {
        return Err(FieldError::new(
            "mode.message",
            format!("must be 1 to {SMS_MAX_CHARS} characters (got {n})"),
        ));
    }
    Ok(())
}

/// `http(s)://host/...`, or this server's asset path `/audio/<id>/file` (returned as the id).
fn check_audio_url(s: &str) -> Result<Option<String>, String> {
    if let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        if host.is_empty() || s.contains(char::is_whitespace) {
            return Err("must be an http(s) URL with a host".into());
        }
        return Ok(None);
    }
    if let Some(id) = s
        .strip_prefix("/audio/")
        .and_then(|r| r.strip_suffix("/file"))
        && !id.is_empty()
        && !id.contains('/')
    {
        return Ok(Some(id.to_string()));
    }
    Err("must be an http(s) URL or an audio asset URL (/audio/<id>/file)".into())
}

/// A duration like `"4h"`, `"30m"`, `"90s"`, `"2d"` or `"1h30m"`, in seconds (1 s to 30 days).
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a duration like \"4h\", \"30m\" or \"90s\"");
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut num: Option<u64> = None;
    for c in s.chars() {
        if let Some(d) = c.to_digit(10) {
            num = Some(
                num.unwrap_or(0)
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(d)))
                    .ok_or_else(bad)?,
            );
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n = num.take().ok_or_else(bad)?;
        total = n
            .checked_mul(unit)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(bad)?;
    }
    if num.is_some() {
        return Err(bad());
    }
    if total == 0 || total > MAX_RETRY_DELAY_S {
        return Err(format!("{s:?} must be between 1 s and 30 days"));
    }
    Ok(total)
}

/// Selections of `callerIdStrategy.selection`.
pub const SELECTIONS: [&str; 4] = ["round_robin", "random", "health_score", "sticky"];

/// Checks `callerIdStrategy`: an object whose optional `selection` is one of [`SELECTIONS`]
/// and whose optional `local_presence` is a boolean. Other keys are kept.
pub fn validate_caller_id_strategy(v: &Value) -> Result<(), FieldError> {
    let obj = v
        .as_object()
        .ok_or_else(|| FieldError::new("callerIdStrategy", "must be a JSON object"))?;
    if let Some(sel) = obj.get("selection") {
        match sel.as_str() {
            Some(s) if SELECTIONS.contains(&s) => {}
            _ => {
                return Err(FieldError::new(
                    "callerIdStrategy.selection",
                    format!("must be one of {}", SELECTIONS.join(", ")),
                ));
            }
        }
    }
    if let Some(lp) = obj.get("local_presence")
        && !lp.is_boolean()
    {
        return Err(FieldError::new(
            "callerIdStrategy.local_presence",
            "must be true or false",
        ));
    }
    Ok(())
}

/// A `ws://` or `wss://` URL with a host.
pub fn parse_ws_url(v: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(v).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "ws" | "wss") || url.host_str().is_none() {
        return Err("must be a ws:// or wss:// URL with a host".into());
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("4h"), Ok(14_400));
        assert_eq!(parse_duration("30m"), Ok(1_800));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("1h30m"), Ok(5_400));
        for bad in ["", "4", "h", "4x", "0s", "31d", "-4h", "4 h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn identification_audio_url() {
        let ok = json!({"ai": true, "identificationAudioUrl": "/audio/aud_id/file"});
        assert_eq!(
            validate_mode(Channel::Voice, &ok, 10.0).unwrap(),
            ModeRefs {
                audio_asset: None,
                identification_asset: Some("aud_id".into()),
            }
        );
        let remote = json!({"ai": true, "identificationAudioUrl": "https://x.io/id.wav"});
        assert!(validate_mode(Channel::Voice, &remote, 10.0).is_ok());
        for (mode, why) in [
            (
                json!({"ai": true, "identificationAudioUrl": 3}),
                "URL string",
            ),
            (
                json!({"ai": true, "identificationAudioUrl": "ftp://x"}),
                "http(s)",
            ),
            (
                json!({"identificationAudioUrl": "https://x.io/id.wav"}),
                "\"ai\": true",
            ),
        ] {
            let e = validate_mode(Channel::Voice, &mode, 10.0).unwrap_err();
            assert_eq!(e.field, "mode.identificationAudioUrl", "{mode}");
            assert!(e.message.contains(why), "{e}");
        }
    }

    #[test]
    fn voice_fields() {
        let ok = json!({"ai": true, "calls_per_second": 10, "max_retries": 2,
                        "retry_delay": "4h", "voicemailAudioUrl": "https://x.io/a.mp3",
                        "agentUrl": "wss://agent.example/stream", "custom": {"kept": 1}});
        assert_eq!(
            validate_mode(Channel::Voice, &ok, 10.0),
            Ok(ModeRefs::default())
        );
        let amd =
            json!({"amdProvider": "external", "amdExternalUrl": "ws://amd:9310/amd/v1/stream"});
        assert_eq!(
            validate_mode(Channel::Voice, &amd, 10.0),
            Ok(ModeRefs::default())
        );
        let sip = json!({"ai": true, "agentSipUri": "sip:agent@sip.example:5060"});
        assert_eq!(
            validate_mode(Channel::Voice, &sip, 10.0),
            Ok(ModeRefs::default())
        );
        let cases = [
            (json!({"calls_per_second": 0}), "mode.calls_per_second"),
            (json!({"calls_per_second": 11}), "mode.calls_per_second"),
            (json!({"calls_per_second": "5"}), "mode.calls_per_second"),
            (json!({"max_retries": 21}), "mode.max_retries"),
            (json!({"max_retries": -1}), "mode.max_retries"),
            (json!({"max_retries": 1.5}), "mode.max_retries"),
            (json!({"retry_delay": "soon"}), "mode.retry_delay"),
            (json!({"ai": "yes"}), "mode.ai"),
            (json!({"ai": true, "agentUrl": "http://x"}), "mode.agentUrl"),
            (json!({"agentUrl": "ws://x"}), "mode.agentUrl"),
            (json!({"amdProvider": "magic"}), "mode.amdProvider"),
            (json!({"amdProvider": 1}), "mode.amdProvider"),
            (
                json!({"amdProvider": "external", "amdExternalUrl": "http://amd"}),
                "mode.amdExternalUrl",
            ),
            (
                json!({"amdExternalUrl": "ws://amd:9310/amd/v1/stream"}),
                "mode.amdExternalUrl",
            ),
            (
                json!({"ai": true, "agentSipUri": "tel:+1"}),
                "mode.agentSipUri",
            ),
            (
                json!({"ai": true, "agentUrl": "ws://x", "agentSipUri": "sip:a@b"}),
                "mode.agentSipUri",
            ),
            (
                json!({"voicemailAudioUrl": "ftp://x"}),
                "mode.voicemailAudioUrl",
            ),
            (json!([]), "mode"),
        ];
        for (mode, field) in cases {
            assert_eq!(
                validate_mode(Channel::Voice, &mode, 10.0)
                    .unwrap_err()
                    .field,
                field,
                "{mode}"
            );
        }
        let asset = json!({"voicemailAudioUrl": "/audio/aud_1/file"});
        assert_eq!(
            validate_mode(Channel::Voice, &asset, 10.0)
                .unwrap()
                .audio_asset
                .as_deref(),
            Some("aud_1")
        );
    }

    #[test]
    fn sms_requires_a_message() {
        assert!(validate_mode(Channel::Sms, &json!({"message": "hi"}), 1.0).is_ok());
        for m in [
            json!({}),
            json!({"message": ""}),
            json!({"message": 5}),
            json!({"message": "x".repeat(1601)}),
        ] {
            assert_eq!(
                validate_mode(Channel::Sms, &m, 1.0).unwrap_err().field,
                "mode.message"
            );
        }
    }

    #[test]
    fn caller_id_strategy() {
        assert!(
            validate_caller_id_strategy(
                &json!({"selection": "health_score", "local_presence": true})
            )
            .is_ok()
        );
        assert!(validate_caller_id_strategy(&json!({})).is_ok());
        assert_eq!(
            validate_caller_id_strategy(&json!({"selection": "best"}))
                .unwrap_err()
                .field,
            "callerIdStrategy.selection"
        );
        assert_eq!(
            validate_caller_id_strategy(&json!({"local_presence": 1}))
                .unwrap_err()
                .field,
            "callerIdStrategy.local_presence"
        );
    }
}
