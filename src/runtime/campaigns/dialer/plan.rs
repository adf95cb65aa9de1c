//! A campaign's `mode` as the dialer reads it (`VoicePlan`), with its defaults.

use serde_json::Value;

/// A campaign's `mode`, as the dialer uses it.
#[derive(Clone, Debug, PartialEq)]
pub struct VoicePlan {
    pub calls_per_second: f64,
    pub max_retries: u32,
    pub retry_delay_ms: i64,
    pub voicemail_url: Option<String>,
    /// `mode.amdProvider`: this campaign's AMD engine instead of the node's.
    pub amd_provider: Option<crate::config::AmdProviderKind>,
    /// `mode.amdExternalUrl`: this campaign's external AMD engine.
    pub amd_external_url: Option<String>,
    pub ai: bool,
    /// `mode.agentUrl`: this campaign's agent instead of the configured one.
    pub agent_url: Option<String>,
    /// `mode.agentSipUri`: hand humans to a SIP agent (a second call) instead.
    pub agent_sip_uri: Option<String>,
    /// `mode.identificationAudioUrl`: what a person the agent did not take within 2 s hears
    /// (the built-in clip without it).
    pub identification_url: Option<String>,
}

/// Defaults where `mode` is silent: one call per second (a gentle start a carrier will not
/// flag), no retries, and a 4 h retry delay (the spec's examples).
pub fn voice_plan(mode: &Value) -> VoicePlan {
    let retry_delay_s = mode
        .get("retry_delay")
        .and_then(Value::as_str)
        .and_then(|s| crate::campaign::mode::parse_duration(s).ok())
        .unwrap_or(4 * 3600);
    VoicePlan {
        calls_per_second: mode
            .get("calls_per_second")
            .and_then(Value::as_f64)
            .unwrap_or(1.0),
        max_retries: mode
            .get("max_retries")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            .min(u32::MAX as u64) as u32,
        retry_delay_ms: retry_delay_s as i64 * 1000,
        voicemail_url: mode
            .get("voicemailAudioUrl")
            .and_then(Value::as_str)
            .map(str::to_string),
        amd_provider: match mode.get("amdProvider").and_then(Value::as_str) {
            Some("external") => Some(crate::config::AmdProviderKind::External),
            Some("builtin") => Some(crate::config::AmdProviderKind::Builtin),
            _ => None,
        },
        amd_external_url: mode
            .get("amdExternalUrl")
            .and_then(Value::as_str)
            .map(str::to_string),
        ai: mode.get("ai").and_then(Value::as_bool).unwrap_or(false),
        agent_url: mode
            .get("agentUrl")
            .and_then(Value::as_str)
            .map(str::to_string),
        agent_sip_uri: mode
            .get("agentSipUri")
            .and_then(Value::as_str)
            .map(str::to_string),
        identification_url: mode
            .get("identificationAudioUrl")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}
