//! SIP messages in: a datagram parsed by rsip into the fields a user agent client needs, with
//! compact header names expanded first (rsip does not know them) and Content-Length checked
//! against the body (rsip does not). Messages out are printed by the state machines themselves,
//! byte for byte, so tests can compare them exactly.

use rsip::headers::untyped::UntypedHeader;
use rsip::{Header, SipMessage};

/// Largest datagram accepted (RFC 3261 allows 65,535 over UDP).
pub const MAX_SIP_DATAGRAM: usize = 65_535;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum MessageError {
    #[error("datagram of {0} bytes is too large")]
    TooLarge(usize),
    #[error("not a SIP message: {0}")]
    Unparsable(String),
    #[error("missing or malformed {0} header")]
    Header(&'static str),
    #[error("Content-Length {declared} but the body has {actual} bytes")]
    ContentLength { declared: usize, actual: usize },
}

/// A response as the client transaction and dialog see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseInfo {
    pub status: u16,
    pub reason: String,
    pub branch: String,
    pub cseq: u32,
    pub cseq_method: String,
    pub call_id: String,
    pub to: String,
    pub to_tag: Option<String>,
    pub contact_uri: Option<String>,
    pub record_route: Vec<String>,
    pub proxy_authenticate: Option<String>,
    pub www_authenticate: Option<String>,
    pub body: Vec<u8>,
}

/// A request from the far end (BYE, OPTIONS, re-INVITE...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestInfo {
    pub method: String,
    pub uri: String,
    pub vias: Vec<String>,
    pub from: String,
    pub to: String,
    pub call_id: String,
    pub cseq: u32,
    pub cseq_method: String,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    Response(ResponseInfo),
    Request(RequestInfo),
}

const COMPACT: &[(u8, &str)] = &[
    (b'i', "Call-ID"),
    (b'm', "Contact"),
    (b'e', "Content-Encoding"),
    (b'l', "Content-Length"),
    (b'c', "Content-Type"),
    (b'f', "From"),
    (b's', "Subject"),
    (b'k', "Supported"),
    (b't', "To"),
    (b'v', "Via"),
];

/// Rewrites the header section into the plain form rsip reads: folded lines (a line that
/// starts with SP or HT continues the previous one, RFC 3261 §7.3.1) joined with one SP,
/// whitespace around the colon removed, compact names (`v:`) expanded. The body is cut to
/// Content-Length: over UDP, octets past it are discarded (RFC 3261 §18.3: the second request
/// of RFC 4475's dblreq); a body shorter than declared, a negative, unreadable or repeated
/// conflicting Content-Length is an error.
fn normalize(datagram: &[u8]) -> Result<Vec<u8>, MessageError> {
    let split = datagram
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, p + 4))
        .ok_or_else(|| MessageError::Unparsable("no empty line after the headers".into()))?;
    let (head, body) = (&datagram[..split.0], &datagram[split.1..]);
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let folded = matches!(line.first(), Some(b' ' | b'\t')) && lines.len() > 1;
        match lines.last_mut() {
            Some(prev) if folded => {
                prev.push(b' ');
                prev.extend_from_slice(line.trim_ascii());
            }
            _ => lines.push(line.to_vec()),
        }
    }
    let mut out = Vec::with_capacity(datagram.len() + 64);
    let mut content_length: Option<usize> = None;
    for (i, line) in lines.iter().enumerate() {
        let colon = (i > 0)
            .then(|| line.iter().position(|&b| b == b':'))
            .flatten();
        match colon {
            Some(colon) => {
                let name = line[..colon].trim_ascii();
                let value = line[colon + 1..].trim_ascii();
                let full = (name.len() == 1)
                    .then(|| {
                        COMPACT
                            .iter()
                            .find(|(c, _)| c.eq_ignore_ascii_case(&name[0]))
                    })
                    .flatten()
                    .map(|(_, full)| full.as_bytes())
                    .unwrap_or(name);
                if full.eq_ignore_ascii_case(b"Content-Length") {
                    let n = std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.parse::<usize>().ok())
                        .ok_or(MessageError::Header("Content-Length"))?;
                    if content_length.is_some_and(|c| c != n) {
                        return Err(MessageError::Header("Content-Length"));
                    }
                    content_length = Some(n);
                }
                out.extend_from_slice(full);
                out.extend_from_slice(b": ");
                out.extend_from_slice(value);
            }
            None => out.extend_from_slice(line),
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    let body = match content_length {
        Some(declared) if declared > body.len() => {
            return Err(MessageError::ContentLength {
                declared,
                actual: body.len(),
            });
        }
        Some(declared) => &body[..declared],
        None => body,
    };
    out.extend_from_slice(body);
    Ok(out)
}

/// The value of parameter `name` in a header value (`;tag=abc`, `;branch=z9hG4bK...`).
pub fn param(value: &str, name: &str) -> Option<String> {
    // Parameters of the header itself follow the URI's closing '>' when there is one.
    let tail = value.rsplit_once('>').map(|(_, t)| t).unwrap_or(value);
    tail.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The URI inside `<...>`, or the bare value up to its first parameter.
pub fn uri_of(value: &str) -> String {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if b > a => value[a + 1..b].to_string(),
        _ => value.split(';').next().unwrap_or("").trim().to_string(),
    }
}

fn split_cseq(v: &str) -> Result<(u32, String), MessageError> {
    let mut parts = v.split_whitespace();
    let n = parts
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or(MessageError::Header("CSeq"))?;
    let method = parts.next().ok_or(MessageError::Header("CSeq"))?;
    Ok((n, method.to_string()))
}

/// Parses one datagram.
pub fn parse(datagram: &[u8]) -> Result<Incoming, MessageError> {
    if datagram.len() > MAX_SIP_DATAGRAM {
        return Err(MessageError::TooLarge(datagram.len()));
    }
    let expanded = normalize(datagram)?;
    let message = SipMessage::try_from(expanded.as_slice())
        .map_err(|e| MessageError::Unparsable(e.to_string().chars().take(120).collect()))?;
    let headers = match &message {
        SipMessage::Request(r) => &r.headers,
        SipMessage::Response(r) => &r.headers,
    };
    let mut vias = Vec::new();
    let (mut from, mut to, mut call_id, mut cseq, mut contact) = (None, None, None, None, None);
    let (mut content_length, mut proxy_auth, mut www_auth) = (None, None, None);
    let mut record_route = Vec::new();
    for h in headers.iter() {
        match h {
            // `Via: a, b` is two Vias (RFC 3261 §7.3.1).
            Header::Via(v) => vias.extend(
                v.value()
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()),
            ),
            Header::From(v) => from = Some(v.value().to_string()),
            Header::To(v) => to = Some(v.value().to_string()),
            Header::CallId(v) => call_id = Some(v.value().to_string()),
            Header::CSeq(v) => cseq = Some(v.value().to_string()),
            Header::Contact(v) => contact = contact.or(Some(v.value().to_string())),
            Header::RecordRoute(v) => record_route.extend(
                v.value()
                    .split(',')
                    .map(|r| r.trim().to_string())
                    .filter(|r| !r.is_empty()),
            ),
            Header::ContentLength(v) => content_length = v.value().trim().parse::<usize>().ok(),
            Header::ProxyAuthenticate(v) => proxy_auth = Some(v.value().to_string()),
            Header::WwwAuthenticate(v) => www_auth = Some(v.value().to_string()),
            _ => {}
        }
    }
    let body = message.body().clone();
    if let Some(declared) = content_length
        && declared != body.len()
    {
        return Err(MessageError::ContentLength {
            declared,
            actual: body.len(),
        });
    }
    let call_id = call_id.ok_or(MessageError::Header("Call-ID"))?;
    let (cseq, cseq_method) = split_cseq(&cseq.ok_or(MessageError::Header("CSeq"))?)?;
    let to = to.ok_or(MessageError::Header("To"))?;
    let from = from.ok_or(MessageError::Header("From"))?;
    let top_via = vias.first().ok_or(MessageError::Header("Via"))?;
    Ok(match message {
        SipMessage::Response(r) => Incoming::Response(ResponseInfo {
            status: r.status_code.code(),
            reason: r.status_code.to_string(),
            branch: param(top_via, "branch").ok_or(MessageError::Header("Via"))?,
            cseq,
            cseq_method,
            call_id,
            to_tag: param(&to, "tag"),
            to,
            contact_uri: contact.as_deref().map(uri_of),
            record_route,
            proxy_authenticate: proxy_auth,
            www_authenticate: www_auth,
            body,
        }),
        SipMessage::Request(r) => Incoming::Request(RequestInfo {
            method: r.method.to_string(),
            uri: r.uri.to_string(),
            vias,
            from,
            to,
            call_id,
            cseq,
            cseq_method,
            body,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RINGING: &str = "SIP/2.0 180 Ringing\r\n\
        v: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKabc;rport=5062\r\n\
        f: <sip:+15550001111@127.0.0.1>;tag=ours\r\n\
        t: <sip:+15551234567@127.0.0.1:5070>;tag=theirs\r\n\
        i: call-1@127.0.0.1\r\n\
        CSeq: 1 INVITE\r\n\
        m: <sip:uas@127.0.0.1:5070;transport=udp>\r\n\
        Record-Route: <sip:127.0.0.1:5080;lr>, <sip:10.0.0.1;lr>\r\n\
        l: 0\r\n\r\n";

    #[test]
    fn compact_headers_record_route_and_tags() {
        let Incoming::Response(r) = parse(RINGING.as_bytes()).unwrap() else {
            panic!("not a response")
        };
        assert_eq!(
            (r.status, r.cseq, r.cseq_method.as_str()),
            (180, 1, "INVITE")
        );
        assert_eq!(r.branch, "z9hG4bKabc");
        assert_eq!(r.to_tag.as_deref(), Some("theirs"));
        assert_eq!(r.call_id, "call-1@127.0.0.1");
        assert_eq!(
            r.contact_uri.as_deref(),
            Some("sip:uas@127.0.0.1:5070;transport=udp")
        );
        assert_eq!(
            r.record_route,
            ["<sip:127.0.0.1:5080;lr>", "<sip:10.0.0.1;lr>"]
        );
    }

    #[test]
    fn requests_keep_every_via() {
        let bye = "BYE sip:trunx@127.0.0.1:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK2\r\nFrom: <sip:b@x>;tag=theirs\r\nTo: <sip:a@y>;tag=ours\r\nCall-ID: c1\r\nCSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n";
        let Incoming::Request(r) = parse(bye.as_bytes()).unwrap() else {
            panic!("not a request")
        };
        assert_eq!(r.method, "BYE");
        assert_eq!(r.vias.len(), 2);
        assert_eq!((r.cseq, r.cseq_method.as_str()), (7, "BYE"));
    }

    #[test]
    fn bad_messages_are_errors() {
        assert!(matches!(parse(b"hello"), Err(MessageError::Unparsable(_))));
        let wrong_length = RINGING.replace("l: 0", "l: 10");
        assert!(matches!(
            parse(wrong_length.as_bytes()),
            Err(MessageError::ContentLength {
                declared: 10,
                actual: 0
            })
        ));
        let no_cseq = RINGING.replace("CSeq: 1 INVITE\r\n", "");
        assert_eq!(parse(no_cseq.as_bytes()), Err(MessageError::Header("CSeq")));
    }

    #[test]
    fn params_and_uris() {
        assert_eq!(param("<sip:a@b;lr>;tag=x1", "tag").as_deref(), Some("x1"));
        assert_eq!(param("<sip:a@b;tag=inuri>", "tag"), None);
        assert_eq!(
            param("SIP/2.0/UDP h;branch=z9hG4bKq;rport", "branch").as_deref(),
            Some("z9hG4bKq")
        );
        assert_eq!(uri_of("\"A\" <sip:a@b:5060>;tag=1"), "sip:a@b:5060");
        assert_eq!(uri_of("sip:a@b;tag=1"), "sip:a@b");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn mutated_messages_never_panic(cut in 0usize..400, byte: u8, at in 0usize..400) {
            let mut m = RINGING.as_bytes().to_vec();
            if at < m.len() { m[at] = byte; }
            m.truncate(cut.max(1));
            let _ = parse(&m);
        }
    }
}

#[cfg(test)]
mod record_route_tests {
    use super::*;

    #[test]
    fn a_proxied_200_keeps_its_record_route() {
        let ok = "SIP/2.0 200 OK\r\nRecord-Route: <sip:127.0.0.1:5080;lr>\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKx;rport=5062\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: k\r\nCSeq: 2 INVITE\r\nContact: <sip:127.0.0.1:5070;transport=UDP>\r\nContent-Length: 0\r\n\r\n";
        let Incoming::Response(r) = parse(ok.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(r.record_route, ["<sip:127.0.0.1:5080;lr>"]);
    }
}
