//! An RTP datagram: the packet parser, then the receive session (sequence/timestamp
//! bookkeeping, one-stream rule) fed the same packet at several arrival times.
#![no_main]
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use trunx::rtp::packet::parse;
use trunx::rtp::session::ReceiveSession;

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut session = ReceiveSession::new(8000);
    // Several packets: the input split on a marker so one input can hold a stream.
    for (i, chunk) in data.split(|&b| b == 0xA5).enumerate() {
        if let Ok(p) = parse(chunk) {
            let _ = session.place(t0 + Duration::from_millis(20 * i as u64), &p);
        }
    }
    let _ = session.stats().lost();
});
