//! RFC 4733 telephone-event payloads: a stream of (timestamp, payload) records.
#![no_main]
use libfuzzer_sys::fuzz_target;
use trunx::rtp::dtmf::DtmfReceiver;

fuzz_target!(|data: &[u8]| {
    let mut rx = DtmfReceiver::default();
    let mut rest = data;
    while rest.len() >= 5 {
        let ts = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let len = usize::from(rest[4] % 8);
        let payload = rest.get(5..5 + len).unwrap_or(&rest[5..]);
        let _ = rx.handle(ts, payload, 8000);
        rest = &rest[(5 + len).min(rest.len())..];
    }
});
