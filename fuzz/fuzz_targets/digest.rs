//! A Proxy-/WWW-Authenticate value: parse, then answer it (RFC 2617/7616 digest).
#![no_main]
use libfuzzer_sys::fuzz_target;
use trunx::sip::digest::{Challenge, Credentials, authorization};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(c) = Challenge::parse(text)
    {
        let creds = Credentials { username: "alice", password: "secret" };
        let _ = authorization(&c, creds, "INVITE", "sip:+15551234567@127.0.0.1", "0a4f113b", 1);
    }
});
