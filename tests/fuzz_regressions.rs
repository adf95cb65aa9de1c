//! Inputs the fuzz targets (fuzz/) crashed on, kept as regressions: each must be rejected or
//! accepted without a panic, exactly as the fuzz target feeds it.

fn input(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fuzz-regressions/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// fuzz/rtp: an RTP packet whose header extension runs past the datagram made webrtc-rs'
/// unmarshal panic (advance out of bounds).
#[test]
fn rtp_extension_past_the_end() {
    let data = input("rtp-crash-f6c2c82e");
    let mut malformed = 0;
    for chunk in data.split(|&b| b == 0xA5) {
        if trunx::rtp::packet::parse(chunk).is_err() {
            malformed += 1;
        }
    }
    assert!(malformed > 0);
}

/// fuzz/rtcp: a compound RTCP datagram with a short report made webrtc-rs' unmarshal panic.
#[test]
fn rtcp_short_report() {
    let t0 = trunx::runtime::clock::now();
    let mut r = trunx::rtp::rtcp::RtcpReporter::new(t0, 1, "trunx@test");
    assert!(r.handle(t0, &input("rtcp-crash-10174c22")).is_err());
}
