//! SIP over a byte stream (TCP, TLS): message framing by Content-Length (RFC 3261 §18.3) and
//! the transport parts of our requests (Via `SIP/2.0/TLS`, Contact `;transport=tls`).
//!
//! Sans-IO: the runtime pushes the bytes it read and takes whole messages out; it owns the
//! socket. The buffer is bounded by the largest message accepted; a message over it, a
//! start line that is not SIP or a missing/invalid Content-Length is an error after which the
//! stream cannot be resynchronised (the runtime closes the connection). Keepalive CRLFs
//! between messages (RFC 5626 §3.5.1) are skipped. This module must not parse beyond what
//! framing needs: `sip::message` parses the messages it hands out.

/// Where a header section ends.
const HEADER_END: &[u8] = b"\r\n\r\n";

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StreamError {
    #[error("SIP message over {max} bytes on the stream")]
    Oversized { max: usize },
    #[error("not a SIP start line on the stream")]
    Garbage,
    #[error("SIP message on a stream without a valid Content-Length")]
    ContentLength,
}

/// Splits a SIP byte stream into messages.
#[derive(Debug)]
pub struct StreamFramer {
    buf: Vec<u8>,
    max_message: usize,
    failed: Option<StreamError>,
}

impl StreamFramer {
    /// `max_message`: the largest message (headers and body) accepted.
    pub fn new(max_message: usize) -> StreamFramer {
        StreamFramer {
            buf: Vec::with_capacity(max_message.min(16 * 1024)),
            max_message,
            failed: None,
        }
    }

    /// Bytes waiting for the rest of their message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Appends bytes read from the stream. The buffer never holds more than one message's
    /// worth: bytes that would overflow it fail the stream.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        // Room for one whole message plus the start of the next one read with it.
        if self.buf.len() + bytes.len() > 2 * self.max_message {
            return self.fail(StreamError::Oversized {
                max: self.max_message,
            });
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// The next whole message, `Ok(None)` while more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, StreamError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let skip = self
            .buf
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(self.buf.len());
        self.buf.drain(..skip);
        if self.buf.is_empty() {
            return Ok(None);
        }
        // The start line, as soon as it is complete: reject garbage before buffering more.
        if let Some(eol) = find(&self.buf, b"\r\n") {
            if !is_start_line(&self.buf[..eol]) {
                return self.fail(StreamError::Garbage);
            }
        } else if self.buf.len() > 1024 {
            return self.fail(StreamError::Garbage);
        }
        let Some(end) = find(&self.buf, HEADER_END) else {
            if self.buf.len() > self.max_message {
                return self.fail(StreamError::Oversized {
                    max: self.max_message,
                });
            }
            return Ok(None);
        };
        let body_start = end + HEADER_END.len();
        let Some(length) = content_length(&self.buf[..end]) else {
            return self.fail(StreamError::ContentLength);
        };
        let total = body_start
            .checked_add(length)
            .filter(|&t| t <= self.max_message)
            .ok_or(StreamError::Oversized {
                max: self.max_message,
            });
        let total = match total {
            Ok(t) => t,
            Err(e) => return self.fail(e),
        };
        if self.buf.len() < total {
            return Ok(None);
        }
        let rest = self.buf.split_off(total);
        Ok(Some(std::mem::replace(&mut self.buf, rest)))
    }

    fn fail<T>(&mut self, e: StreamError) -> Result<T, StreamError> {
        self.buf.clear();
        self.failed = Some(e.clone());
        Err(e)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `SIP/2.0 NNN ...` or `METHOD uri SIP/2.0`.
fn is_start_line(line: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(line) else {
        return false;
    };
    if let Some(rest) = text.strip_prefix("SIP/2.0 ") {
        return rest.len() >= 3 && rest.as_bytes()[..3].iter().all(u8::is_ascii_digit);
    }
    let mut parts = text.split(' ');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(m), Some(u), Some("SIP/2.0"), None)
            if !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphabetic()) && !u.is_empty()
    )
}

/// The Content-Length (or compact `l`) of a header section; `None` when absent, repeated
/// with different values, or not a number.
fn content_length(headers: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(headers).ok()?;
    let mut found: Option<usize> = None;
    for line in text.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            let v = value.trim();
            if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: usize = v.parse().ok()?;
            if found.is_some_and(|f| f != n) {
                return None;
            }
            found = Some(n);
        }
    }
    found
}

/// Our request as sent over TLS: the top Via says `SIP/2.0/TLS` and our Contact carries
/// `;transport=tls`, so the far end answers and sends in-dialog requests over the
/// connection. Responses (theirs to answer, their Vias copied) pass unchanged.
pub fn request_for_tls(message: &[u8]) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(message) else {
        return message.to_vec();
    };
    if text.starts_with("SIP/2.0 ") {
        return message.to_vec();
    }
    let (head, body) = text.split_at(text.find("\r\n\r\n").unwrap_or(text.len()));
    let mut out = String::with_capacity(message.len() + 16);
    let mut via_done = false;
    for (i, line) in head.split("\r\n").enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        if !via_done && let Some(rest) = line.strip_prefix("Via: SIP/2.0/UDP ") {
            via_done = true;
            out.push_str("Via: SIP/2.0/TLS ");
            out.push_str(rest);
        } else if let Some(uri) = line
            .strip_prefix("Contact: <")
            .and_then(|r| r.strip_suffix('>'))
            .filter(|u| !u.contains("transport="))
        {
            out.push_str("Contact: <");
            out.push_str(uri);
            out.push_str(";transport=tls>");
        } else {
            out.push_str(line);
        }
    }
    out.push_str(body);
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1;rport\r\nCall-ID: c1\r\nContact: <sip:trunx@127.0.0.1:5062>\r\nContent-Length: 4\r\n\r\nv=0\n";
    const OK: &str =
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\nl: 0\r\nCall-ID: c1\r\n\r\n";

    #[test]
    fn messages_split_across_reads_come_out_whole() {
        let mut f = StreamFramer::new(65_535);
        let bytes = INVITE.as_bytes();
        for chunk in bytes.chunks(7) {
            assert_eq!(f.next_message(), Ok(None));
            f.push(chunk).unwrap();
        }
        assert_eq!(f.next_message().unwrap().unwrap(), bytes);
        assert_eq!(f.next_message(), Ok(None));
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn merged_messages_and_keepalives_come_out_one_by_one() {
        let mut f = StreamFramer::new(65_535);
        f.push(format!("\r\n\r\n{OK}{INVITE}\r\n{OK}").as_bytes())
            .unwrap();
        assert_eq!(f.next_message().unwrap().unwrap(), OK.as_bytes());
        assert_eq!(f.next_message().unwrap().unwrap(), INVITE.as_bytes());
        assert_eq!(f.next_message().unwrap().unwrap(), OK.as_bytes());
        assert_eq!(f.next_message(), Ok(None));
    }

    #[test]
    fn a_body_is_taken_by_content_length_not_by_what_follows() {
        let mut f = StreamFramer::new(65_535);
        let msg = "SIP/2.0 200 OK\r\nContent-Length: 8\r\n\r\n\r\n\r\nabcd";
        f.push(&msg.as_bytes()[..msg.len() - 1]).unwrap();
        assert_eq!(f.next_message(), Ok(None));
        f.push(b"d").unwrap();
        assert_eq!(f.next_message().unwrap().unwrap(), msg.as_bytes());
    }

    #[test]
    fn oversized_messages_fail_the_stream() {
        let mut f = StreamFramer::new(200);
        f.push(b"SIP/2.0 200 OK\r\nContent-Length: 1000\r\n\r\n")
            .unwrap();
        assert_eq!(f.next_message(), Err(StreamError::Oversized { max: 200 }));
        assert_eq!(f.buffered(), 0);
        // Failed for good: framing is lost.
        assert!(f.push(OK.as_bytes()).is_err());
        // Headers that never end.
        let mut f = StreamFramer::new(200);
        f.push(b"SIP/2.0 200 OK\r\n").unwrap();
        for _ in 0..10 {
            let _ = f.push(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert_eq!(f.next_message(), Err(StreamError::Oversized { max: 200 }));
        // A read that would overflow the buffer is refused at once.
        let mut f = StreamFramer::new(200);
        assert!(f.push(&[b'a'; 401]).is_err());
    }

    #[test]
    fn garbage_and_missing_lengths_fail_the_stream() {
        for bad in [
            "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "\x16\x03\x01\x00\x05hello\r\n\r\n",
            "INVITE sip:a@b SIP/2.0 extra\r\n\r\n",
        ] {
            let mut f = StreamFramer::new(65_535);
            f.push(bad.as_bytes()).unwrap();
            assert_eq!(f.next_message(), Err(StreamError::Garbage), "{bad:?}");
        }
        let mut f = StreamFramer::new(65_535);
        f.push(&[b'x'; 2000]).unwrap();
        assert_eq!(f.next_message(), Err(StreamError::Garbage));
        for bad in [
            "SIP/2.0 200 OK\r\nCall-ID: c\r\n\r\n",
            "SIP/2.0 200 OK\r\nContent-Length: -1\r\n\r\n",
            "SIP/2.0 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            "SIP/2.0 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        ] {
            let mut f = StreamFramer::new(65_535);
            f.push(bad.as_bytes()).unwrap();
            assert_eq!(f.next_message(), Err(StreamError::ContentLength), "{bad:?}");
        }
    }

    #[test]
    fn requests_name_tls_in_the_top_via_and_contact_responses_pass() {
        let tls = String::from_utf8(request_for_tls(INVITE.as_bytes())).unwrap();
        assert!(tls.contains("\r\nVia: SIP/2.0/TLS 127.0.0.1:5062;branch=z9hG4bK1;rport\r\n"));
        assert!(tls.contains("\r\nContact: <sip:trunx@127.0.0.1:5062;transport=tls>\r\n"));
        assert!(tls.ends_with("\r\n\r\nv=0\n"));
        assert_eq!(tls.len(), INVITE.len() + 14);
        let response = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(request_for_tls(response.as_bytes()), response.as_bytes());
    }
}
