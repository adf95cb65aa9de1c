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

/// fuzz/rtp (second run, after the panic was caught with `catch_unwind`, which libFuzzer's
/// panic hook still reports): a one-byte-header extension element running past its block.
/// The checked header reader that replaced webrtc-rs' unmarshal reads it without a panic.
#[test]
fn rtp_extension_element_past_its_block() {
    let data = input("rtp-crash-20a088bb");
    // Two CSRCs, then a 0xBEDE block of one word whose element claims two more bytes than
    // the block holds: the block ends where its length says, the 4-byte payload follows.
    let p = trunx::rtp::packet::parse(&data).unwrap();
    assert_eq!((p.payload_type, p.sequence, p.ssrc), (0, 1, 0xA000_0001));
    assert_eq!(&p.payload[..], &[0, 0, 0, 0]);
}

/// fuzz/rtcp (second run): a feedback packet followed by a version-0 header made webrtc-rs'
/// unmarshal panic; the checked compound walker rejects the datagram.
#[test]
fn rtcp_feedback_then_garbage() {
    let t0 = trunx::runtime::clock::now();
    let mut r = trunx::rtp::rtcp::RtcpReporter::new(t0, 1, "trunx@test");
    assert!(r.handle(t0, &input("rtcp-crash-32ff9a71")).is_err());
    assert_eq!(r.remote().sender_reports, 0);
}

/// fuzz/prompt_decode: a WAV header claiming 125,283,396 Hz made the resampler ask for more
/// than 1 GB; the sample rate is now bounded and the file refused by name.
#[test]
fn prompt_with_an_absurd_sample_rate() {
    use trunx::audio::prompt::{Prompt, PromptError, PromptOptions};
    let options = PromptOptions {
        max_seconds: 5,
        ..PromptOptions::default()
    };
    let err = Prompt::from_bytes("fuzz", input("prompt-oom-c9077a08"), &options).unwrap_err();
    assert!(
        matches!(&err, PromptError::Malformed { reason, .. } if reason.contains("125283396 Hz")),
        "{err}"
    );
}
