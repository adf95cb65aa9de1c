//! The SMPP PDU framer on a TCP byte stream: frame PDUs until it needs more bytes, skipping
//! what it cannot decode as the session does; every decoded PDU re-encodes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use trunx::sms::pdu::{decode, encode};

fuzz_target!(|data: &[u8]| {
    let mut buf = data;
    for _ in 0..1024 {
        match decode(buf, 4096) {
            Ok(Some((pdu, used))) => {
                assert!(used > 0 && used <= buf.len(), "framer used {used} of {}", buf.len());
                let _ = encode(&pdu);
                buf = &buf[used..];
            }
            Ok(None) => break,
            Err(e) => match e.skip() {
                Some(n) if n > 0 && n <= buf.len() => buf = &buf[n..],
                _ => break,
            },
        }
    }
});
