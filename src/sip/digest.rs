//! HTTP digest authentication for SIP (RFC 2617, RFC 7616, RFC 8760): parsing a 401/407
//! challenge, and answering it with MD5 or SHA-256, `qop=auth` (chosen from a list), an
//! injected cnonce and a counting `nc`. Pure: no I/O, no randomness of its own.

use md5::{Digest as _, Md5};
use sha2::Sha256;

/// Longest challenge header accepted.
pub const MAX_CHALLENGE: usize = 2048;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    fn parse(s: &str) -> Option<Algorithm> {
        match s.to_ascii_uppercase().as_str() {
            "MD5" => Some(Algorithm::Md5),
            "MD5-SESS" => Some(Algorithm::Md5Sess),
            "SHA-256" => Some(Algorithm::Sha256),
            "SHA-256-SESS" => Some(Algorithm::Sha256Sess),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn hash(self, input: &str) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex(&Md5::digest(input.as_bytes())),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex(&Sha256::digest(input.as_bytes())),
        }
    }

    fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DigestError {
    #[error("challenge is not a Digest challenge")]
    NotDigest,
    #[error("challenge too long ({0} bytes)")]
    TooLong(usize),
    #[error("challenge has no {0}")]
    Missing(&'static str),
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("challenge offers qop {0:?} but not auth")]
    UnsupportedQop(String),
    #[error("malformed challenge: {0}")]
    Malformed(&'static str),
}

/// A parsed `WWW-Authenticate` / `Proxy-Authenticate` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// Whether `qop=auth` was offered (a list may offer several).
    pub qop_auth: bool,
    pub stale: bool,
}

/// Splits `k=v, k="v, with comma", ...` into pairs, honouring quotes and escapes.
fn params(s: &str) -> Result<Vec<(String, String)>, DigestError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(DigestError::Malformed("parameter without ="));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => return Err(DigestError::Malformed("unterminated quoted string")),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        out.push((key.to_ascii_lowercase(), value));
    }
}

impl Challenge {
    pub fn parse(header_value: &str) -> Result<Challenge, DigestError> {
        if header_value.len() > MAX_CHALLENGE {
            return Err(DigestError::TooLong(header_value.len()));
        }
        let trimmed = header_value.trim_start();
        let rest = trimmed
            .get(..6)
            .filter(|scheme| scheme.eq_ignore_ascii_case("digest"))
            .map(|_| &trimmed[6..])
            .ok_or(DigestError::NotDigest)?;
        let pairs = params(rest)?;
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let algorithm = match get("algorithm") {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(&a).ok_or(DigestError::UnsupportedAlgorithm(a))?,
        };
        let qop_auth = match get("qop") {
            None => false,
            Some(q) => {
                if q.split(',').any(|t| t.trim().eq_ignore_ascii_case("auth")) {
                    true
                } else {
                    return Err(DigestError::UnsupportedQop(q));
                }
            }
        };
        Ok(Challenge {
            realm: get("realm").ok_or(DigestError::Missing("realm"))?,
            nonce: get("nonce").ok_or(DigestError::Missing("nonce"))?,
            opaque: get("opaque"),
            algorithm,
            qop_auth,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }
}

/// What a request needs to answer a challenge.
#[derive(Clone, Copy, Debug)]
pub struct Credentials<'a> {
    pub username: &'a str,
    pub password: &'a str,
}

/// Computes the `response` value.
pub fn response(
    challenge: &Challenge,
    creds: Credentials<'_>,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
) -> String {
    let alg = challenge.algorithm;
    let mut ha1 = alg.hash(&format!(
        "{}:{}:{}",
        creds.username, challenge.realm, creds.password
    ));
    if alg.is_sess() {
        ha1 = alg.hash(&format!("{ha1}:{}:{cnonce}", challenge.nonce));
    }
    let ha2 = alg.hash(&format!("{method}:{uri}"));
    if challenge.qop_auth {
        alg.hash(&format!(
            "{ha1}:{}:{nc:08x}:{cnonce}:auth:{ha2}",
            challenge.nonce
        ))
    } else {
        alg.hash(&format!("{ha1}:{}:{ha2}", challenge.nonce))
    }
}

/// The full `Authorization` / `Proxy-Authorization` header value.
pub fn authorization(
    challenge: &Challenge,
    creds: Credentials<'_>,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
) -> String {
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let resp = response(challenge, creds, method, uri, cnonce, nc);
    let mut v = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{resp}\", algorithm={}",
        quote(creds.username),
        quote(&challenge.realm),
        quote(&challenge.nonce),
        quote(uri),
        challenge.algorithm.as_str()
    );
    if challenge.qop_auth || challenge.algorithm.is_sess() {
        v.push_str(&format!(", cnonce=\"{}\"", quote(cnonce)));
    }
    if challenge.qop_auth {
        v.push_str(&format!(", qop=auth, nc={nc:08x}"));
    }
    if let Some(opaque) = &challenge.opaque {
        v.push_str(&format!(", opaque=\"{}\"", quote(opaque)));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc2617_example() {
        let c = Challenge::parse(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        assert!(c.qop_auth);
        let creds = Credentials {
            username: "Mufasa",
            password: "Circle Of Life",
        };
        let r = response(&c, creds, "GET", "/dir/index.html", "0a4f113b", 1);
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
        let header = authorization(&c, creds, "GET", "/dir/index.html", "0a4f113b", 1);
        assert!(header.contains("qop=auth, nc=00000001"), "{header}");
        assert!(header.contains(r#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#));
    }

    #[test]
    fn rfc7616_sha256_and_md5_examples() {
        let creds = Credentials {
            username: "Mufasa",
            password: "Circle of Life",
        };
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        for (alg, want) in [
            (
                "SHA-256",
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ] {
            let c = Challenge::parse(&format!(
                "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm={alg}, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
            ))
            .unwrap();
            assert_eq!(
                response(&c, creds, "GET", "/dir/index.html", cnonce, 1),
                want,
                "{alg}"
            );
        }
    }

    #[test]
    fn no_qop_and_sess_variants() {
        let c = Challenge::parse(r#"Digest realm="r", nonce="n""#).unwrap();
        let creds = Credentials {
            username: "u",
            password: "p",
        };
        let h = authorization(&c, creds, "INVITE", "sip:1@x", "c", 1);
        assert!(!h.contains("qop") && !h.contains("cnonce"), "{h}");
        // HA1 = MD5(u:r:p); response = MD5(HA1:n:MD5(INVITE:sip:1@x))
        let ha1 = Algorithm::Md5.hash("u:r:p");
        let ha2 = Algorithm::Md5.hash("INVITE:sip:1@x");
        assert_eq!(
            response(&c, creds, "INVITE", "sip:1@x", "c", 1),
            Algorithm::Md5.hash(&format!("{ha1}:n:{ha2}"))
        );
        let s = Challenge::parse(r#"Digest realm="r", nonce="n", algorithm=MD5-sess, qop=auth"#)
            .unwrap();
        let sess_ha1 = Algorithm::Md5.hash(&format!("{ha1}:n:c"));
        assert_eq!(
            response(&s, creds, "INVITE", "sip:1@x", "c", 10),
            Algorithm::Md5.hash(&format!("{sess_ha1}:n:0000000a:c:auth:{ha2}"))
        );
    }

    #[test]
    fn bad_challenges_are_errors() {
        assert_eq!(
            Challenge::parse("Basic realm=\"x\""),
            Err(DigestError::NotDigest)
        );
        assert_eq!(
            Challenge::parse("Digest nonce=\"n\""),
            Err(DigestError::Missing("realm"))
        );
        assert!(matches!(
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256"),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\""),
            Err(DigestError::UnsupportedQop(_))
        ));
        assert!(matches!(
            Challenge::parse("Digest realm=\"r"),
            Err(DigestError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_challenges_never_panic(s in ".{0,300}") {
            let _ = Challenge::parse(&s);
            let _ = Challenge::parse(&format!("Digest {s}"));
        }
    }
}
