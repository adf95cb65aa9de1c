//! SDP offer/answer for a G.711 call (RFC 4566, RFC 3264): our offer (PCMU, PCMA,
//! telephone-event/8000, ptime 20) and what the answer chose. Parsing is bounded and never
//! panics; anything the call cannot use is an error naming what is wrong.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use crate::audio::g711::Law;

/// Largest SDP body accepted.
pub const MAX_SDP: usize = 8192;
/// Payload type we offer for telephone-event.
pub const DTMF_PAYLOAD_TYPE: u8 = 101;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SdpError {
    #[error("SDP body too large ({0} bytes)")]
    TooLarge(usize),
    #[error("SDP line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("SDP has no audio stream")]
    NoAudio,
    #[error("SDP has no connection address for audio")]
    NoConnection,
    #[error("the answer chose no codec we offered (PCMU or PCMA)")]
    NoCommonCodec,
}

/// One `m=` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Media {
    pub kind: String,
    pub port: u16,
    pub protocol: String,
    pub formats: Vec<u8>,
    pub connection: Option<IpAddr>,
    /// (payload type, encoding name, clock rate)
    pub rtpmaps: Vec<(u8, String, u32)>,
    pub ptime: Option<u32>,
    pub direction: Direction,
    /// The first usable `a=crypto` (SDES, RFC 4568) of the section.
    pub crypto: Option<super::sdes::SdesKey>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin_address: Option<IpAddr>,
    pub connection: Option<IpAddr>,
    pub media: Vec<Media>,
}

/// What the call uses, from the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub remote_rtp: SocketAddr,
    pub law: Law,
    pub dtmf_payload_type: Option<u8>,
    pub ptime_ms: u32,
    pub direction: Direction,
    /// The answerer's SRTP key when it accepted SDES.
    pub srtp: Option<super::sdes::SdesKey>,
}

/// Our offer. `session_id` and `version` go in `o=` (version increments on re-offers).
pub fn offer(local: IpAddr, rtp_port: u16, session_id: u64, version: u64) -> String {
    let family = if local.is_ipv4() { "IP4" } else { "IP6" };
    let mut s = String::with_capacity(320);
    let _ = write!(
        s,
        "v=0\r\no=trunx {session_id} {version} IN {family} {local}\r\ns=trunx\r\nc=IN {family} {local}\r\nt=0 0\r\n\
         m=audio {rtp_port} RTP/AVP 0 8 {DTMF_PAYLOAD_TYPE}\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:{DTMF_PAYLOAD_TYPE} telephone-event/8000\r\na=fmtp:{DTMF_PAYLOAD_TYPE} 0-16\r\n\
         a=ptime:20\r\na=sendrecv\r\n"
    );
    s
}

fn connection_address(value: &str) -> Option<IpAddr> {
    let mut parts = value.split_whitespace();
    let (_net, _family, addr) = (parts.next()?, parts.next()?, parts.next()?);
    // Multicast "addr/ttl" forms are cut at the slash.
    addr.split('/').next()?.parse().ok()
}

impl SessionDescription {
    pub fn parse(body: &str) -> Result<SessionDescription, SdpError> {
        if body.len() > MAX_SDP {
            return Err(SdpError::TooLarge(body.len()));
        }
        let mut sd = SessionDescription {
            origin_address: None,
            connection: None,
            media: Vec::new(),
        };
        for (i, raw) in body.lines().enumerate() {
            let line = raw.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let err = |reason: &str| SdpError::Line {
                line: i + 1,
                reason: reason.to_string(),
            };
            let (kind, value) = line
                .split_once('=')
                .filter(|(k, _)| k.len() == 1)
                .ok_or_else(|| err("expected x=value"))?;
            match (kind, sd.media.last_mut()) {
                ("o", _) => {
                    sd.origin_address = value.split_whitespace().nth(5).and_then(|a| a.parse().ok())
                }
                ("c", None) => {
                    sd.connection =
                        Some(connection_address(value).ok_or_else(|| err("bad c= line"))?)
                }
                ("c", Some(m)) => {
                    m.connection =
                        Some(connection_address(value).ok_or_else(|| err("bad c= line"))?)
                }
                ("m", _) => {
                    let mut parts = value.split_whitespace();
                    let kind = parts.next().ok_or_else(|| err("m= without media"))?;
                    let port = parts
                        .next()
                        .and_then(|p| p.split('/').next())
                        .and_then(|p| p.parse().ok())
                        .ok_or_else(|| err("m= without a port"))?;
                    let protocol = parts.next().ok_or_else(|| err("m= without protocol"))?;
                    let formats = parts.filter_map(|f| f.parse().ok()).take(32).collect();
                    if sd.media.len() >= 16 {
                        return Err(err("too many media sections"));
                    }
                    sd.media.push(Media {
                        kind: kind.to_string(),
                        port,
                        protocol: protocol.to_string(),
                        formats,
                        connection: None,
                        rtpmaps: Vec::new(),
                        ptime: None,
                        direction: Direction::SendRecv,
                        crypto: None,
                    });
                }
                ("a", Some(m)) => {
                    let (name, arg) = value.split_once(':').unwrap_or((value, ""));
                    match name {
                        "rtpmap" if m.rtpmaps.len() < 32 => {
                            let (pt, enc) = arg.split_once(' ').ok_or_else(|| err("bad rtpmap"))?;
                            let pt: u8 = pt
                                .trim()
                                .parse()
                                .map_err(|_| err("bad rtpmap payload type"))?;
                            let mut enc = enc.trim().split('/');
                            let name = enc.next().unwrap_or("").to_string();
                            let rate = enc.next().and_then(|r| r.parse().ok()).unwrap_or(8000);
                            m.rtpmaps.push((pt, name, rate));
                        }
                        "ptime" => m.ptime = arg.trim().parse().ok(),
                        "crypto" if m.crypto.is_none() => {
                            m.crypto = super::sdes::SdesKey::parse(arg)
                        }
                        "sendrecv" => m.direction = Direction::SendRecv,
                        "sendonly" => m.direction = Direction::SendOnly,
                        "recvonly" => m.direction = Direction::RecvOnly,
                        "inactive" => m.direction = Direction::Inactive,
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        Ok(sd)
    }

    /// Reads the answer to our offer.
    pub fn negotiate(&self) -> Result<Negotiated, SdpError> {
        let audio = self
            .media
            .iter()
            .find(|m| m.kind == "audio" && m.port != 0)
            .ok_or(SdpError::NoAudio)?;
        let address = audio
            .connection
            .or(self.connection)
            .ok_or(SdpError::NoConnection)?;
        let encoding = |pt: u8| {
            audio
                .rtpmaps
                .iter()
                .find(|(p, _, _)| *p == pt)
                .map(|(_, name, rate)| (name.to_ascii_uppercase(), *rate))
        };
        // The answerer lists its choice first; static types may come without rtpmap.
        let law = audio
            .formats
            .iter()
            .find_map(|&pt| match (pt, encoding(pt)) {
                (0, None) => Some(Law::Ulaw),
                (8, None) => Some(Law::Alaw),
                (_, Some((name, 8000))) if name == "PCMU" => Some(Law::Ulaw),
                (_, Some((name, 8000))) if name == "PCMA" => Some(Law::Alaw),
                _ => None,
            })
            .ok_or(SdpError::NoCommonCodec)?;
        let dtmf_payload_type = audio.formats.iter().copied().find(|&pt| {
            encoding(pt).is_some_and(|(name, rate)| name == "TELEPHONE-EVENT" && rate == 8000)
        });
        Ok(Negotiated {
            remote_rtp: SocketAddr::new(address, audio.port),
            law,
            dtmf_payload_type,
            ptime_ms: audio.ptime.unwrap_or(20),
            direction: audio.direction,
            srtp: audio.crypto,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn our_offer_parses_and_negotiates_to_pcmu() {
        let o = offer("127.0.0.1".parse().unwrap(), 10000, 42, 1);
        let sd = SessionDescription::parse(&o).unwrap();
        let n = sd.negotiate().unwrap();
        assert_eq!(n.remote_rtp, "127.0.0.1:10000".parse().unwrap());
        assert_eq!(
            (n.law, n.dtmf_payload_type, n.ptime_ms),
            (Law::Ulaw, Some(101), 20)
        );
        assert!(
            o.ends_with("a=sendrecv\r\n") && o.contains("\r\nm=audio 10000 RTP/AVP 0 8 101\r\n")
        );
    }

    #[test]
    fn sipp_style_answer_choosing_pcma() {
        let answer = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
        let n = SessionDescription::parse(answer)
            .unwrap()
            .negotiate()
            .unwrap();
        assert_eq!(n.law, Law::Alaw);
        assert_eq!(n.remote_rtp.port(), 6000);
        assert_eq!(n.dtmf_payload_type, Some(101));
    }

    #[test]
    fn media_level_connection_wins_and_static_types_need_no_rtpmap() {
        let answer = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 4000 RTP/AVP 0\nc=IN IP4 198.51.100.7\na=recvonly\n";
        let n = SessionDescription::parse(answer)
            .unwrap()
            .negotiate()
            .unwrap();
        assert_eq!(n.remote_rtp, "198.51.100.7:4000".parse().unwrap());
        assert_eq!((n.law, n.direction), (Law::Ulaw, Direction::RecvOnly));
    }

    #[test]
    fn unusable_answers_are_named() {
        let no_codec = "v=0\nc=IN IP4 127.0.0.1\nm=audio 4000 RTP/AVP 18\na=rtpmap:18 G729/8000\n";
        assert_eq!(
            SessionDescription::parse(no_codec).unwrap().negotiate(),
            Err(SdpError::NoCommonCodec)
        );
        let rejected = "v=0\nc=IN IP4 127.0.0.1\nm=audio 0 RTP/AVP 0\n";
        assert_eq!(
            SessionDescription::parse(rejected).unwrap().negotiate(),
            Err(SdpError::NoAudio)
        );
        let no_c = "v=0\nm=audio 4000 RTP/AVP 0\n";
        assert_eq!(
            SessionDescription::parse(no_c).unwrap().negotiate(),
            Err(SdpError::NoConnection)
        );
        assert!(matches!(
            SessionDescription::parse("garbage"),
            Err(SdpError::Line { line: 1, .. })
        ));
        assert!(matches!(
            SessionDescription::parse(&"a".repeat(9000)),
            Err(SdpError::TooLarge(_))
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "(?s).{0,600}") {
            if let Ok(sd) = SessionDescription::parse(&s) {
                let _ = sd.negotiate();
            }
        }

        #[test]
        fn offer_round_trips(port in 1024u16.., a in any::<[u8; 4]>(), id: u64) {
            let ip = IpAddr::from(a);
            let n = SessionDescription::parse(&offer(ip, port, id, 1)).unwrap().negotiate().unwrap();
            prop_assert_eq!(n.remote_rtp, SocketAddr::new(ip, port));
        }
    }
}
