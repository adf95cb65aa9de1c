//! An SDP body: parse, then offer/answer negotiation.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(sdp) = trunx::sip::sdp::SessionDescription::parse(text)
    {
        let _ = sdp.negotiate();
    }
});
