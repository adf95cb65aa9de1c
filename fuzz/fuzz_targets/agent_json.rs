//! A text frame from the AI agent (Twilio Media Streams inbound JSON).
#![no_main]
use libfuzzer_sys::fuzz_target;
use trunx::agent::{InboundLimits, parse_inbound};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_inbound(text, &InboundLimits::default());
    }
});
