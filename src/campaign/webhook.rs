//! Webhooks, the pure part: which URLs are accepted, how a delivery is signed, and when a
//! failed delivery is tried again.
//!
//! A delivery is `POST url` with the event's JSON as the body and
//! `X-Trunx-Signature: t=UNIX,v1=HEX(HMAC-SHA256(secret, "UNIX.BODY"))`, the scheme Stripe
//! uses: the receiver recomputes the HMAC over the timestamp, a dot and the raw body, compares
//! in constant time, and refuses old timestamps (replays). Time is an argument here; the
//! sender in `runtime::webhooks` reads the clock and does the I/O.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Longest accepted webhook URL.
pub const MAX_URL_CHARS: usize = 2048;
/// First retry delay; each failure doubles it up to [`MAX_DELAY_MS`].
pub const FIRST_DELAY_MS: i64 = 1_000;
/// Longest wait between two tries of one event.
pub const MAX_DELAY_MS: i64 = 10 * 60_000;
/// An event still not delivered this long after it happened is given up (kept, marked
/// `failed`).
pub const GIVE_UP_AFTER_MS: i64 = 24 * 3_600_000;

/// Checks a webhook URL: `http` or `https`, a host, no credentials, at most 2048 characters.
/// The address checks (private ranges, allow-list) are the egress policy's, at send time.
pub fn check_webhook_url(v: &str) -> Result<(), &'static str> {
    if v.chars().count() > MAX_URL_CHARS {
        return Err("must be at most 2048 characters");
    }
    let url = reqwest::Url::parse(v).map_err(|_| "must be an http(s) URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http(s) URL");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials (the signature authenticates trunx)");
    }
    Ok(())
}

/// The `X-Trunx-Signature` value of `body` sent at `unix_s`.
pub fn signature(secret: &[u8], unix_s: i64, body: &[u8]) -> String {
    let mut out = String::with_capacity(16 + 4 + 64);
    out.push_str("t=");
    out.push_str(&unix_s.to_string());
    out.push_str(",v1=");
    for b in mac(secret, unix_s, body) {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn mac(secret: &[u8], unix_s: i64, body: &[u8]) -> [u8; 32] {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(unix_s.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().into()
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the header is not `t=UNIX,v1=HEX`")]
    Malformed,
    #[error("the timestamp is more than {tolerance_s} s from now")]
    Stale { tolerance_s: i64 },
    #[error("no v1 signature matches")]
    Mismatch,
}

/// Checks a received `X-Trunx-Signature` (what a receiver does; the tests use it): the
/// timestamp within `tolerance_s` of `now_unix_s` and a `v1` that matches, compared in
/// constant time.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now_unix_s: i64,
    tolerance_s: i64,
) -> Result<(), SignatureError> {
    let mut t: Option<i64> = None;
    let mut sigs: Vec<&str> = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse().ok(),
            Some(("v1", v)) => sigs.push(v),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if sigs.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now_unix_s - t).abs() > tolerance_s {
        return Err(SignatureError::Stale { tolerance_s });
    }
    let expected = mac(secret, t, body);
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    for sig in sigs {
        let Some(bytes) = unhex(sig) else { continue };
        // `verify_slice` compares in constant time.
        if m.clone().verify_slice(&bytes).is_ok() {
            debug_assert_eq!(bytes, expected);
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What to do after a failed try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Try again at this Unix millisecond.
    At(i64),
    /// Stop: the event is older than [`GIVE_UP_AFTER_MS`].
    GiveUp,
}

/// After the `tries`-th failed try (1 for the first) of an event created at `created_ms`, at
/// `now_ms`: 1 s, 2 s, 4 s ... doubling to 10 min, given up after 24 h.
pub fn next_try(tries: u32, created_ms: i64, now_ms: i64) -> Retry {
    if now_ms - created_ms >= GIVE_UP_AFTER_MS {
        return Retry::GiveUp;
    }
    let exp = tries.saturating_sub(1).min(20);
    let delay = FIRST_DELAY_MS.saturating_mul(1i64 << exp).min(MAX_DELAY_MS);
    Retry::At(now_ms + delay)
}

/// Whether an HTTP status means "delivered": any 2xx.
pub fn delivered(status: u16) -> bool {
    (200..300).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_for_scheme_host_credentials_and_length() {
        assert!(check_webhook_url("https://hooks.example.com/trunx?x=1").is_ok());
        assert!(check_webhook_url("http://127.0.0.1:9000/h").is_ok());
        assert_eq!(
            check_webhook_url("ftp://x.io/h"),
            Err("must be an http(s) URL")
        );
        assert_eq!(
            check_webhook_url("not a url"),
            Err("must be an http(s) URL")
        );
        assert!(check_webhook_url("https://u:p@x.io/").is_err());
        let long = format!("https://x.io/{}", "a".repeat(2040));
        assert_eq!(
            check_webhook_url(&long),
            Err("must be at most 2048 characters")
        );
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Python: hmac.new(b"whsec_test_key_123", b"1700000000.{\"a\":1}", "sha256").hexdigest()
        let sig = signature(b"whsec_test_key_123", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            sig,
            "t=1700000000,v1=351eec0985d3eeaf6aeef0bd3c7751e4078a40f17e0f45d015b040c123edb718"
        );
        let body = br#"{"a":1}"#;
        assert_eq!(
            verify(b"whsec_test_key_123", &sig, body, 1_700_000_100, 300),
            Ok(())
        );
        assert_eq!(
            verify(b"another_secret_key", &sig, body, 1_700_000_100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                b"whsec_test_key_123",
                &sig,
                br#"{"a":2}"#,
                1_700_000_100,
                300
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"whsec_test_key_123", &sig, body, 1_700_001_000, 300),
            Err(SignatureError::Stale { tolerance_s: 300 })
        );
        assert_eq!(
            verify(b"k", "v1=00", body, 0, 300),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn retries_back_off_exponentially_to_a_cap_and_give_up_after_a_day() {
        assert_eq!(next_try(1, 0, 10), Retry::At(10 + 1_000));
        assert_eq!(next_try(2, 0, 10), Retry::At(10 + 2_000));
        assert_eq!(next_try(3, 0, 10), Retry::At(10 + 4_000));
        assert_eq!(next_try(11, 0, 10), Retry::At(10 + MAX_DELAY_MS));
        assert_eq!(next_try(u32::MAX, 0, 10), Retry::At(10 + MAX_DELAY_MS));
        assert_eq!(next_try(5, 0, GIVE_UP_AFTER_MS), Retry::GiveUp);
        assert!(delivered(204) && !delivered(301) && !delivered(500));
    }
}
