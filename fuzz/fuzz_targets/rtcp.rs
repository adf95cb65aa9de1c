//! An RTCP datagram (compound: SR/RR/SDES/BYE/APP...) into the reporter.
#![no_main]
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use trunx::rtp::rtcp::RtcpReporter;

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut r = RtcpReporter::new(t0, 0x1234_5678, "trunx@fuzz");
    let _ = r.handle(t0 + Duration::from_millis(5), data);
    let _ = r.remote();
});
