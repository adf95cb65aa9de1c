//! The API's JSON bodies: a campaign's mode, caller-ID strategy and schedule, a prospect's
//! consent, as the handlers validate them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use trunx::campaign::{Channel, validate_caller_id_strategy, validate_mode};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    let field = |k: &str| body.get(k).cloned().unwrap_or(Value::Null);
    for channel in [Channel::Voice, Channel::Sms] {
        let _ = validate_mode(channel, &field("mode"), 10.0);
        let _ = trunx::campaign::window::validate_schedule(channel, &field("schedule"));
    }
    let _ = validate_caller_id_strategy(&field("callerIdStrategy"));
    let _ = trunx::campaign::consent::validate("consents", &field("consents"), 1_760_000_000_000);
    if let Some(phone) = body.get("phone").and_then(Value::as_str) {
        let _ = trunx::campaign::is_e164(phone);
        let _ = trunx::campaign::redact(phone, false);
    }
});
